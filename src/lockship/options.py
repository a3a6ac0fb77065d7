"""Project settings: ``[tool.lockship]`` in pyproject.toml.

Keys use TOML's kebab-case (``exclude-newer``); an unknown key or a value of
the wrong type is an error that names the file, the line and the key.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from lockship._compat import tomllib
from lockship.errors import InputError
from lockship.pipconfig import IndexStrategy

__all__ = [
    "LockConfig",
    "key_line",
    "load_tool_config",
    "located",
    "parse_timestamp",
    "read_toml",
    "validation_error",
]


def parse_timestamp(value: str, *, where: str) -> datetime:
    """Parse ``2026-11-01`` or an RFC 3339 timestamp; naive values are UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(
            f"invalid timestamp {value!r}",
            where=where,
            hint="use a date (2026-11-01) or RFC 3339 (2026-11-01T12:00:00Z)",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class LockConfig(BaseModel):
    """Options for ``lockship lock`` that can live in a file."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=_kebab, populate_by_name=True
    )

    requirements: list[str] = []
    constraints: list[str] = []
    targets: list[str] = []
    exclude_newer: Optional[datetime] = None
    output_dir: Optional[str] = None
    index_url: Optional[str] = None
    extra_index_urls: list[str] = []
    find_links: list[str] = []
    no_index: bool = False
    index_strategy: Optional[IndexStrategy] = None
    use_pip_config: bool = True
    pre: bool = False
    only_binary: list[str] = []
    extras: list[str] = []
    all_extras: bool = False
    groups: list[str] = []
    glibc: Optional[str] = None
    musl: Optional[str] = None
    macos: Optional[str] = None
    python_version: list[str] = []  # X.Y.Z per short-name target X.Y (--python-version)
    allow_compiled_sdist: bool = False
    allow_licenses: list[str] = []  # SPDX identifiers; see lockship.licenses
    deny_licenses: list[str] = []

    @field_validator("allow_licenses", "deny_licenses", mode="after")
    @classmethod
    def _licenses(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from lockship.licenses import normalize_policy_entry  # noqa: PLC0415

        where = _kebab(info.field_name or "")
        return [normalize_policy_entry(entry, where=where) for entry in value]

    @field_validator("python_version", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("exclude_newer", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_timestamp(value, where="exclude-newer")
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


def key_line(text: str, key: str, table: Optional[str] = None) -> Optional[int]:
    """1-based line of ``key =`` (inside ``[table]`` when given), or of ``[key]`` itself.

    TOML parsers keep no positions, so error messages find the line again here.
    """
    current = ""
    assignment = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            current = header.group(1).strip()
            if table is None and current == key:
                return number
        elif (table is None or current == table) and assignment.match(line):
            return number
    return None


def validation_error(
    exc: ValidationError, *, path: Path, text: str, table: Optional[str]
) -> InputError:
    """Turn pydantic's first error into "file:line: [table] key: message".

    :param table: the TOML table the model was read from; None when the
        model is the whole document and its first-level keys are tables.
    """
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"] if not isinstance(part, int)]
    if table is None:
        table, loc = (loc[0], loc[1:]) if loc else ("", [])
    key = ".".join(loc)
    line = key_line(text, loc[0], table) if loc else key_line(text, table)
    where = f"{path}:{line}" if line else str(path)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key" if key else "unknown table"
    elif "ctx" in first and "error" in first["ctx"]:
        message = str(first["ctx"]["error"])
    return InputError(f"[{table}]{' ' + key if key else ''}: {message}", where=where)


def located(exc: InputError, *, path: Path, text: str, table: str) -> InputError:
    """A field validator's error (``where`` is the key) as "file:line: [table] key: ..."."""
    line = key_line(text, exc.where or "", table)
    return InputError(
        f"[{table}] {exc.where}: {exc.message}",
        where=f"{path}:{line}" if line else str(path),
        hint=exc.hint,
    )


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """(text, document) of a TOML file.

    :raises InputError: naming the file when it cannot be read or parsed.
    """
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except (tomllib.TOMLDecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", where=str(path)) from None  # deep nesting too


def load_tool_config(path: Path) -> Optional[LockConfig]:
    """The ``[tool.lockship]`` table of ``path``, or None when it has none."""
    text, document = read_toml(path)
    table = document.get("tool", {}).get("lockship")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise InputError("[tool.lockship] must be a table", where=str(path))
    try:
        return LockConfig.model_validate(table)
    except ValidationError as exc:
        raise validation_error(exc, path=path, text=text, table="tool.lockship") from None
    except InputError as exc:  # raised by a field validator (exclude-newer)
        raise located(exc, path=path, text=text, table="tool.lockship") from None
