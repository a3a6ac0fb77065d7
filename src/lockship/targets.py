"""Targets: the foreign interpreter a lock is made for.

A target is a PEP 508 marker environment plus the ordered list of wheel tags
the target's pip accepts (best first). Markers and Requires-Python are always
evaluated against the target, never against the interpreter running lockship,
and wheels are ranked by the target's own tag order.

A target comes from a short name (``linux-cp39``), which implies a documented
platform floor (glibc, musl or macOS version), or from a probe file written by
``lockship probe`` on the real machine (exact environment and tags).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Optional

from packaging import tags as pkgtags
from packaging.markers import default_environment
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict

from lockship.errors import InputError

__all__ = [
    "DEFAULT_FLOORS",
    "MARKER_KEYS",
    "Floors",
    "Target",
    "environment_target",
    "host_target",
    "load_probe_file",
    "make_floors",
    "parse_target",
    "parse_targets",
    "short_name_examples",
    "short_name_target",
]

MARKER_KEYS = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)


@dataclass(frozen=True)
class Floors:
    """Oldest OS ABI a short-name target is assumed to have.

    The defaults match uv's ``--python-platform`` defaults (uv 0.13), so the
    two tools agree on what ``linux`` means: manylinux_2_28 (glibc 2.28: RHEL 8,
    Debian 10, Ubuntu 20.04 and newer), musllinux_1_2, and macOS 13.0 (the
    oldest macOS still supported by Apple). Many current releases publish no
    manylinux2014 (glibc 2.17) wheels any more; for an older machine pass
    ``--glibc 2.17`` or, better, a probe file.
    """

    glibc: tuple[int, int] = (2, 28)
    musl: tuple[int, int] = (1, 2)
    macos: tuple[int, int] = (13, 0)


DEFAULT_FLOORS = Floors()


class Target(BaseModel):
    """One target interpreter: where a lock will be installed."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    marker_environment: dict[str, str]
    tags: tuple[str, ...]
    floor: Optional[str] = None  # e.g. "glibc 2.28"; None for an exact (probed) target
    source: str  # "short name", "host", or the probe file's path

    @cached_property
    def python_full_version(self) -> Version:
        return Version(self.marker_environment["python_full_version"])

    @cached_property
    def tag_ranks(self) -> dict[pkgtags.Tag, int]:
        """Each supported tag with its rank (0 is best)."""
        ranks: dict[pkgtags.Tag, int] = {}
        for rank, text in enumerate(self.tags):
            for tag in pkgtags.parse_tag(text):
                ranks.setdefault(tag, rank)
        return ranks

    @cached_property
    def tags_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.tags).encode()).hexdigest()

    def best_rank(self, wheel_tags: Iterable[pkgtags.Tag]) -> Optional[int]:
        """Rank of the best tag a wheel supports on this target, or None if none fits."""
        ranks = [self.tag_ranks[t] for t in wheel_tags if t in self.tag_ranks]
        return min(ranks) if ranks else None


# --- short names ---------------------------------------------------------

_SHORT = re.compile(r"^(?P<plat>[a-z0-9_]+)-cp(?P<major>3)(?P<minor>\d{1,2})$")


@dataclass(frozen=True)
class _Platform:
    system: str  # platform_system
    sys_platform: str
    os_name: str
    machine: str  # platform_machine as the target reports it
    arch: str  # architecture as it appears in wheel platform tags
    kind: str  # "manylinux", "musllinux", "macos", "windows"


_PLATFORMS: dict[str, _Platform] = {
    "linux": _Platform("Linux", "linux", "posix", "x86_64", "x86_64", "manylinux"),
    "linux_x86_64": _Platform("Linux", "linux", "posix", "x86_64", "x86_64", "manylinux"),
    "linux_aarch64": _Platform("Linux", "linux", "posix", "aarch64", "aarch64", "manylinux"),
    "linux_i686": _Platform("Linux", "linux", "posix", "i686", "i686", "manylinux"),
    "musllinux": _Platform("Linux", "linux", "posix", "x86_64", "x86_64", "musllinux"),
    "musllinux_x86_64": _Platform("Linux", "linux", "posix", "x86_64", "x86_64", "musllinux"),
    "musllinux_aarch64": _Platform("Linux", "linux", "posix", "aarch64", "aarch64", "musllinux"),
    "macos_arm64": _Platform("Darwin", "darwin", "posix", "arm64", "arm64", "macos"),
    "macos_x86_64": _Platform("Darwin", "darwin", "posix", "x86_64", "x86_64", "macos"),
    "windows": _Platform("Windows", "win32", "nt", "AMD64", "amd64", "windows"),
    "windows_amd64": _Platform("Windows", "win32", "nt", "AMD64", "amd64", "windows"),
    "windows_arm64": _Platform("Windows", "win32", "nt", "ARM64", "arm64", "windows"),
}

def short_name_examples() -> list[str]:
    """One short name per platform, for ``lockship targets``."""
    return [
        "linux-cp39",
        "linux_aarch64-cp311",
        "linux_i686-cp311",
        "musllinux-cp312",
        "musllinux_aarch64-cp312",
        "macos_arm64-cp312",
        "macos_x86_64-cp312",
        "windows-cp312",
        "windows_arm64-cp312",
    ]


_KNOWN_SHORT_NAMES = (
    "linux-cp39, linux_aarch64-cp311, musllinux-cp312, macos_arm64-cp312, "
    "macos_x86_64-cp312, windows-cp312 (any cp3X; see `lockship targets`)"
)


def _manylinux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    # Same order as pip/packaging on a real machine: newest glibc first, each
    # legacy alias right after the glibc version it stands for, linux_<arch> last.
    legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
    lowest = 17 if arch in ("aarch64", "ppc64le", "s390x", "armv7l") else 5
    out: list[str] = []
    for minor in range(glibc[1], lowest - 1, -1):
        out.append(f"manylinux_{glibc[0]}_{minor}_{arch}")
        alias = legacy.get((glibc[0], minor))
        if alias and (alias == "manylinux2014" or arch in ("x86_64", "i686")):
            out.append(f"{alias}_{arch}")
    out.append(f"linux_{arch}")
    return out


def _platform_tags(plat: _Platform, floors: Floors) -> tuple[list[str], str]:
    if plat.kind == "manylinux":
        return _manylinux_platforms(plat.arch, floors.glibc), "glibc {}.{}".format(*floors.glibc)
    if plat.kind == "musllinux":
        major, minor = floors.musl
        tags = [f"musllinux_{major}_{m}_{plat.arch}" for m in range(minor, -1, -1)]
        return [*tags, f"linux_{plat.arch}"], f"musl {major}.{minor}"
    if plat.kind == "macos":
        platforms = list(pkgtags.mac_platforms(floors.macos, plat.arch))
        return platforms, "macOS {}.{}".format(*floors.macos)
    return [f"win_{plat.arch}"], ""


def short_name_target(
    name: str, floors: Floors = DEFAULT_FLOORS, python_version: Optional[str] = None
) -> Target:
    """Build the target a short name such as ``linux-cp39`` stands for.

    The Python version is ``X.Y.0`` (the lowest patch release, as uv assumes),
    so a lock is valid on every patch release of that minor version, unless
    ``python_version`` (``--python-version X.Y.Z``) gives the real one.

    :raises InputError: for a name that is not a known short name, or a
        ``python_version`` that is not ``X.Y.Z`` of the name's ``X.Y``.
    """
    match = _SHORT.match(name)
    plat = _PLATFORMS.get(match.group("plat")) if match else None
    if match is None or plat is None:
        raise InputError(
            f"unknown target {name!r}",
            where="--target",
            hint=f"use a short name such as {_KNOWN_SHORT_NAMES}, or a probe file (.json)",
        )
    major, minor = int(match.group("major")), int(match.group("minor"))
    if minor < 8:
        raise InputError(f"target {name!r}: CPython 3.{minor} is not supported (3.8+)")
    platforms, floor = _platform_tags(plat, floors)
    version = (major, minor)
    abi = f"cp{major}{minor}"
    tag_list = [
        *pkgtags.cpython_tags(version, [abi], platforms),
        *pkgtags.compatible_tags(version, abi, platforms),
    ]
    full = f"{major}.{minor}.0"
    if python_version is not None:
        if _minor_of(python_version) != (major, minor):
            raise InputError(
                f"--python-version {python_version} is not a CPython {major}.{minor} version",
                where=name,
                hint=f"give the full version of the target's Python, e.g. {major}.{minor}.2",
            )
        full = python_version
    env = {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": plat.os_name,
        "platform_machine": plat.machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": plat.system,
        "platform_version": "",
        "python_full_version": full,
        "python_version": f"{major}.{minor}",
        "sys_platform": plat.sys_platform,
    }
    where = f"{plat.system} {plat.machine}" + (f", {plat.kind} {floor}+" if floor else "")
    return Target(
        name=name,
        description=f"CPython {python_version or f'{major}.{minor}'} on {where}",
        marker_environment=env,
        tags=tuple(str(t) for t in tag_list),
        floor=floor or None,
        source="short name",
    )


# --- probe files and the host ------------------------------------------------


def _target_from_probe(data: Mapping[str, object], *, name: str, source: str) -> Target:
    env = data.get("marker_environment")
    tags = data.get("tags")
    if not isinstance(env, dict) or not isinstance(tags, list) or not tags:
        raise InputError(
            "not a probe file: needs 'marker_environment' (object) and 'tags' (non-empty list)",
            where=source,
            hint="create it on the target with `lockship probe` or `python3 probe.py`",
        )
    missing = [k for k in MARKER_KEYS if not isinstance(env.get(k), str)]
    if missing:
        raise InputError(
            f"marker_environment lacks {', '.join(missing)}", where=source
        )
    # Values end up in PEP 508 markers ("...") and in one-line lock headers.
    texts = {k: str(env[k]) for k in MARKER_KEYS}
    described = [k for k in ("glibc", "pip_version") if isinstance(data.get(k), str)]
    texts.update({k: str(data[k]) for k in described})
    unsafe = [k for k, value in texts.items() if not value.isprintable() or '"' in value]
    if not re.fullmatch(r"[0-9]+\.[0-9]+", texts["python_version"]):  # locks split it
        unsafe.append("python_version")
    if unsafe:
        raise InputError(f"invalid {unsafe[0]} {texts[unsafe[0]]!r}", where=source)
    bad_tags = [str(t) for t in tags if not _is_tag(str(t))]
    if bad_tags:
        raise InputError(f"invalid wheel tag {bad_tags[0]!r} in 'tags'", where=source)
    try:
        Version(str(env["python_full_version"]))
    except InvalidVersion:
        raise InputError(
            f"invalid python_full_version {env['python_full_version']!r}", where=source
        ) from None
    extra = []
    if isinstance(data.get("glibc"), str):
        extra.append(str(data["glibc"]))
    if isinstance(data.get("pip_version"), str):
        extra.append(f"pip {data['pip_version']}")
    extra.append(f"{len(tags)} tags")
    desc = (
        f"{env['platform_python_implementation']} {env['python_full_version']} on "
        f"{env['platform_system']} {env['platform_machine']} ({', '.join(extra)})"
    )
    return Target(
        name=name,
        description=desc,
        marker_environment={k: str(env[k]) for k in MARKER_KEYS},
        tags=tuple(str(t) for t in tags),
        floor=None,
        source=source,
    )


def _is_tag(text: str) -> bool:
    try:
        pkgtags.parse_tag(text)
    except (ValueError, pkgtags.InvalidTag):
        return False
    return text.count("-") == 2


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def load_probe_file(path: Path) -> Target:
    """Read a target from a probe JSON file (``lockship probe`` output).

    The name is the file's ``target`` field when present, else the file stem.

    :raises InputError: when the file is missing or not a probe file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read probe file: {exc.strerror}", where=str(path)) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise InputError(f"invalid JSON: {exc}", where=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("not a probe file: expected a JSON object", where=str(path))
    name = data.get("target") if isinstance(data.get("target"), str) else None
    name = name or path.stem
    if not _SAFE_NAME.match(name):
        name = path.stem
    return _target_from_probe(data, name=name, source=str(path))


def host_target() -> Target:
    """The interpreter running lockship, as a target named ``host``."""
    env = default_environment()
    data = {"marker_environment": dict(env), "tags": [str(t) for t in pkgtags.sys_tags()]}
    return _target_from_probe(data, name="host", source="host")


def parse_target(spec: str, floors: Floors = DEFAULT_FLOORS) -> Target:
    """Turn a ``--target`` value into a Target: ``host``, a short name or a probe file."""
    if spec == "host":
        return host_target()
    if spec.endswith(".json") or "/" in spec or Path(spec).is_file():
        return load_probe_file(Path(spec))
    return short_name_target(spec, floors)


_FULL_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _minor_of(python_version: str) -> tuple[int, int]:
    match = _FULL_VERSION.match(python_version)
    if match is None:
        raise InputError(
            f"invalid Python version {python_version!r}; expected X.Y.Z such as 3.9.2",
            where="--python-version",
        )
    return int(match.group(1)), int(match.group(2))


def parse_targets(
    specs: Iterable[str], floors: Floors = DEFAULT_FLOORS, python_versions: Iterable[str] = ()
) -> tuple[Target, ...]:
    """``parse_target`` for each spec, each short name with the ``--python-version`` of its X.Y.

    Several values serve a run with several short-name targets (``3.9.2`` for
    ``linux-cp39``, ``3.12.4`` for ``windows-cp312``); probe files and ``host``
    carry their own exact version.

    :raises InputError: for two values of one X.Y, or a value no short-name target uses.
    """
    by_minor: dict[tuple[int, int], str] = {}
    for value in python_versions:
        minor = _minor_of(value)
        if by_minor.setdefault(minor, value) != value:
            raise InputError(
                f"two Python versions for CPython {minor[0]}.{minor[1]}: "
                f"{by_minor[minor]} and {value}",
                where="--python-version",
            )
    used: set[tuple[int, int]] = set()
    targets = []
    for spec in specs:
        short = _SHORT.match(spec)
        wanted = (int(short.group("major")), int(short.group("minor"))) if short else None
        if wanted is not None and wanted in by_minor:
            used.add(wanted)
            targets.append(short_name_target(spec, floors, by_minor[wanted]))
        else:
            targets.append(parse_target(spec, floors))
    unused = [value for minor, value in by_minor.items() if minor not in used]
    if unused:
        raise InputError(
            f"--python-version {unused[0]} matches no short-name target",
            where="--python-version",
            hint="it sets the patch version of a short name of the same X.Y (linux-cp39 "
            "with 3.9.2); probe files and 'host' carry their own version",
        )
    return tuple(targets)


def environment_target(
    python_version: str, specs: Sequence[str], python_versions: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(target specs, --python-version values) with a conda environment's ``python=X.Y[.Z]``.

    With no target given, ``linux-cpXY`` (conda environments are mostly Linux
    ones). A full ``X.Y.Z`` becomes the Python version of the short-name
    targets of that X.Y, unless ``--python-version`` gives one.
    """
    major, minor, *micro = python_version.split(".")
    specs = list(specs) or [f"linux-cp{major}{minor}"]
    same = any(
        (m := _SHORT.match(spec)) is not None and m.group("minor") == minor for spec in specs
    )
    pythons = list(python_versions) or ([python_version] if micro and same else [])
    return specs, pythons


def make_floors(
    glibc: Optional[str] = None, musl: Optional[str] = None, macos: Optional[str] = None
) -> Floors:
    """Floors from ``--glibc``/``--musl``/``--macos`` values; the defaults where None."""
    return Floors(
        glibc=parse_floor(glibc, what="glibc") if glibc else DEFAULT_FLOORS.glibc,
        musl=parse_floor(musl, what="musl") if musl else DEFAULT_FLOORS.musl,
        macos=parse_floor(macos, what="macos") if macos else DEFAULT_FLOORS.macos,
    )


def parse_floor(value: str, *, what: str) -> tuple[int, int]:
    """Parse ``2.31`` into ``(2, 31)`` for --glibc/--musl/--macos."""
    parts = value.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(
            f"invalid version {value!r}; expected MAJOR.MINOR such as 2.28", where=what
        )
    return int(parts[0]), int(parts[1])
