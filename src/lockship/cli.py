"""Command line: the only module that prints, draws progress or exits."""

from __future__ import annotations

import typer

from lockship import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help="lockship " + __version__)


@app.callback()
def _root() -> None:
    """Carry Python dependencies across an air gap."""


@app.command()
def version() -> None:
    """Print lockship's version."""
    typer.echo(__version__)


def main() -> None:
    app()
