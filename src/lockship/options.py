"""Project settings: ``[tool.lockship]`` in pyproject.toml.

Keys use TOML's kebab-case (``exclude-newer``); an unknown key or a value of
the wrong type is an error that names the file, the line and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from lockship._toml import parse_toml
from lockship.errors import InputError
from lockship.pipconfig import IndexConfig, IndexStrategy

if TYPE_CHECKING:
    from lockship.inputs import Inputs
    from lockship.lock import LockRequest
    from lockship.targets import Target

__all__ = [
    "LockConfig",
    "LockPlan",
    "key_line",
    "load_tool_config",
    "located",
    "parse_targets",
    "parse_timestamp",
    "plan_lock",
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
    no_index: StrictBool = False
    index_strategy: Optional[IndexStrategy] = None
    use_pip_config: StrictBool = True
    pre: StrictBool = False
    only_binary: list[str] = []
    extras: list[str] = []
    all_extras: StrictBool = False
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
        if value is not None and not isinstance(value, datetime):  # not seconds since 1970
            raise ValueError("must be a date or an RFC 3339 timestamp")
        return value


    def with_flags(self, **flags: Any) -> LockConfig:
        """This config with the command line's flags over it.

        A flag that was given (not empty, not False, not None) replaces the
        file's value; ``extra-index-urls`` and ``find-links`` are appended to it.
        """
        update: dict[str, Any] = {}
        for key, value in flags.items():
            if value is None or value is False or value == []:
                continue
            update[key] = [*getattr(self, key), *value] if key in _APPENDED else value
        return self.model_copy(update=update)


_APPENDED = frozenset({"extra_index_urls", "find_links"})


@dataclass(frozen=True)
class LockPlan:
    """The settings of one lock run, merged once for ``lockship lock`` and pipelines alike."""

    inputs: Inputs
    targets: tuple[Target, ...]
    index_config: IndexConfig
    output_dir: Path
    exclude_newer: Optional[datetime]
    pre: bool
    only_binary: frozenset[str]
    extras: tuple[str, ...]
    groups: tuple[str, ...]
    allow_compiled_sdist: bool = False
    inputs_base: Optional[Path] = None

    def request(self, target: Target, *, command: str, **run: Any) -> LockRequest:
        """The request that locks ``target``; ``run`` holds the per-run switches
        (upgrade, offline, refresh, jobs, check, reuse, cache_dir)."""
        from lockship.lock import LockRequest  # noqa: PLC0415

        shared = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "targets"}
        return LockRequest(**shared, targets=(target,), command=command, **run)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def parse_targets(
    cfg: LockConfig, *, base: Path = Path(), environment_python: Optional[str] = None
) -> tuple[Target, ...]:
    """The targets ``cfg`` names (the host when none), each once.

    :param base: the directory a relative probe file is looked for in.
    :param environment_python: a conda environment's ``python=X.Y[.Z]``, which
        names the target when ``cfg`` names none (``targets.environment_target``).
    :raises InputError: for an unknown target, or two targets of one name.
    """
    from lockship import targets as _targets  # noqa: PLC0415

    specs, pythons = list(cfg.targets), list(cfg.python_version)
    if environment_python:
        specs, pythons = _targets.environment_target(environment_python, specs, pythons)
    floors = _targets.make_floors(cfg.glibc, cfg.musl, cfg.macos)
    named = []
    for spec in specs or ["host"]:
        probe = _resolve(base, spec)  # a probe file beside the pipeline, or a short name
        named.append(str(probe) if base != Path() and probe.is_file() else spec)
    targets = _targets.parse_targets(named, floors, pythons)
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"two targets are named {dupes[0]!r}; their locks would collide", where="--target"
        )
    return tuple(targets)


def plan_lock(
    cfg: LockConfig,
    *,
    base: Path = Path(),
    default_inputs: Sequence[Path] = (),
    output_dir: Optional[Path] = None,
    inputs_base: Optional[Path] = None,
) -> LockPlan:
    """Read the inputs, targets and index configuration that ``cfg`` names.

    :param base: the directory relative paths of ``cfg`` start from (the
        pipeline file's, or the current one's for ``lockship lock``).
    :param default_inputs: the inputs when ``cfg`` lists none.
    :param output_dir: where the locks go, over ``cfg``'s ``output-dir``.
    :param inputs_base: the directory inputs are recorded relative to
        (None: the current one).
    :raises InputError: naming the file, target or option at fault.
    """
    from lockship.lock import canonical_only_binary, gather_inputs  # noqa: PLC0415
    from lockship.pipconfig import load_index_config  # noqa: PLC0415

    inputs = gather_inputs(
        [_resolve(base, f) for f in cfg.requirements] or list(default_inputs),
        [_resolve(base, f) for f in cfg.constraints],
        extras=cfg.extras,
        all_extras=cfg.all_extras,
        groups=cfg.groups,
        base=base,
    )
    targets = parse_targets(cfg, base=base, environment_python=inputs.python_version)
    index_config = load_index_config(
        use_pip_config=cfg.use_pip_config,
        file_options=inputs.options,
        index_url=cfg.index_url,
        extra_index_urls=cfg.extra_index_urls,
        find_links=[f if "://" in f else str(_resolve(base, f)) for f in cfg.find_links],
        no_index=cfg.no_index,
        strategy=cfg.index_strategy,
    )
    return LockPlan(
        inputs=inputs,
        targets=tuple(targets),
        index_config=index_config,
        output_dir=output_dir or _resolve(base, cfg.output_dir or "locks"),
        exclude_newer=cfg.exclude_newer,
        pre=cfg.pre or inputs.options.pre,
        only_binary=canonical_only_binary([*cfg.only_binary, *inputs.options.only_binary]),
        extras=tuple(cfg.extras),
        groups=tuple(cfg.groups),
        allow_compiled_sdist=cfg.allow_compiled_sdist,
        inputs_base=inputs_base,
    )


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
    if first["type"] == "extra_forbidden":
        what = f"[{table}] {key}: unknown key" if key else f"[{table}]: unknown table"
        return InputError(what, where=where)
    if "ctx" in first and "error" in first["ctx"]:
        return InputError(f"[{table}] {key}: {first['ctx']['error']}", where=where)
    subject = f"[{table}] {key}" if key else f"[{table}]"
    return InputError(f"{subject} {_english(first, key)}", where=where)


# What a list holds, for "requirements must be a list of files".
_ITEMS = {
    "requirements": "files",
    "constraints": "files",
    "targets": "target names or probe files",
    "extra-index-urls": "URLs",
    "find-links": "paths or URLs",
    "only-binary": "project names",
    "extras": "extra names",
    "groups": "group names",
    "allow-licenses": "SPDX identifiers",
    "deny-licenses": "SPDX identifiers",
}


def _english(error: Any, key: str) -> str:
    """pydantic's error type as what the key must be ("must be a list of files")."""
    kind = error["type"]
    if kind == "list_type":
        items = _ITEMS.get(key)
        return f"must be a list of {items}" if items else "must be a list"
    if kind.startswith(("string_", "str_")):
        return "must be a string"
    if kind.startswith("bool_"):
        return "must be true or false"
    if kind.startswith("int_"):
        return "must be a whole number"
    if kind.startswith(("dict_", "model_")):
        return "must be a table"
    if kind in ("literal_error", "enum"):
        return f"must be one of {error['ctx']['expected']}"
    if kind == "missing":
        return "is missing"
    if kind.startswith("datetime_"):
        return "must be a date or an RFC 3339 timestamp"
    return f"is not valid: {error['msg']}"


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
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid TOML: not UTF-8 ({exc.reason})", where=str(path)) from None
    return text, parse_toml(text, where=str(path))


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
