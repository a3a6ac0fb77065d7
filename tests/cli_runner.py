"""Run the real lockship CLI in-process and return (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from typer.testing import CliRunner

from lockship.cli import app


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click 8.2+ always captures them separately
        return CliRunner()


def run(*args: str, env: Optional[Mapping[str, str]] = None) -> tuple[int, str, str]:
    result = _runner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
