"""TOML documents, with the line of a syntax error: ``file:line: invalid TOML: ...``."""

from __future__ import annotations

import re
from typing import Any

from lockship._compat import tomllib
from lockship.errors import InputError

__all__ = ["parse_toml"]

_LINE = re.compile(r"at line (\d+)")


def parse_toml(text: str, *, where: str, what: str = "TOML") -> dict[str, Any]:
    """Parse ``text``, read from ``where`` (a file name).

    :param what: how the message names the syntax ("TOML in lockfile").
    :raises InputError: ``where:line: invalid TOML: ...`` when it is malformed.
    """
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # deep nesting: malformed too
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        match = _LINE.search(message)
        raise InputError(
            f"invalid {what}: {message}", where=f"{where}:{match.group(1)}" if match else where
        ) from None
    return document
