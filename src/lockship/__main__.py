"""``python -m lockship``, and the ``lockship`` script's entry point."""

from __future__ import annotations

import sys

from lockship import __version__


def main() -> None:
    """Run the CLI; ``--version`` answers before the CLI (typer, rich, pydantic) is imported."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        sys.stdout.write(f"lockship {__version__}\n")
        return
    from lockship.cli import main as cli_main  # noqa: PLC0415 - the point of this module

    cli_main()


if __name__ == "__main__":
    main()
