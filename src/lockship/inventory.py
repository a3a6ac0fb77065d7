"""What a transfer carries: the (name, version) pins of a lock, or a bundle's distributions.

:func:`read_pins` reads any of the things a reviewer is handed: a bundle
directory, its ``.tar`` archive, a PEP 751 ``pylock.*.toml`` (lockship's or
another tool's), or a ``name==version`` requirements file (``locks/<target>.txt``,
pip-compile output, ``pip freeze``).

:func:`read_inventory` describes a bundle directory for the SBOM and the report:
per wheel, its file, sha256, origin and index, dependencies from the lock,
build provenance, the licence its METADATA declares (:mod:`lockship.licenses`)
and the SBOMs it carries itself (PEP 770, ``*.dist-info/sboms/``). Wheels are
read with :mod:`zipfile` and ``metadata.read_wheel_metadata``, member by
member; a wheel is never loaded into memory whole.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from lockship._install_script import logical_lines, read_bytes, strip_comment
from lockship.errors import InputError, IntegrityError
from lockship.licenses import LicenseInfo, license_from_metadata
from lockship.lockfile import parse_pylock, read_lock
from lockship.metadata import MetadataError, read_wheel_metadata
from lockship.models import BundleFile, BundleRecord, Lock
from lockship.sign import read_record

__all__ = [
    "CarriedSbom",
    "Distribution",
    "Inventory",
    "Pins",
    "read_inventory",
    "read_pins",
]

_SBOM_MEMBER = re.compile(r"[^/]+\.dist-info/sboms/.+")
_MAX_SBOM = 64 * 1024 * 1024
_MAX_LOCK = 64 * 1024 * 1024


@dataclass(frozen=True)
class Pins:
    """The releases a lock or bundle pins."""

    source: str
    target: Optional[str]  # the lockship target, when the file names one
    packages: tuple[tuple[str, str], ...]  # (canonical name, version), sorted


@dataclass(frozen=True)
class CarriedSbom:
    """An SBOM a wheel carries in ``*.dist-info/sboms/`` (PEP 770)."""

    member: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Distribution:
    """One wheel of a bundle with everything the dossier says about it."""

    file: BundleFile
    license: LicenseInfo
    summary: str
    index: Optional[str]  # index or find-links location (from the lock)
    dependencies: tuple[str, ...]  # canonical names of locked packages
    via: tuple[str, ...]
    upload_time: Optional[datetime]
    sboms: tuple[CarriedSbom, ...]

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def version(self) -> str:
        return self.file.version

    @property
    def filename(self) -> str:
        return self.file.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Inventory:
    """A bundle directory described: its record, lock and distributions (sorted by name)."""

    root: Path
    record: BundleRecord
    lock: Lock
    distributions: tuple[Distribution, ...]


# --- pins ------------------------------------------------------------------------------------


def _requirements_pins(path: Path, text: str) -> list[tuple[str, str]]:
    pins: list[tuple[str, str]] = []
    for number, line in logical_lines(text):
        content = strip_comment(line).strip()
        if not content:
            continue
        if re.match(r"(-r|-e|--requirement|--editable)\b", content):
            raise InputError(
                "audit a lock of pinned releases, not a file that includes others or "
                "editable projects",
                where=f"{path}:{number}",
            )
        if content.startswith("-"):
            continue  # an option line: -i, --find-links, -c, --no-binary ...
        # "--hash=..." options follow the requirement (pip's requirements file syntax)
        requirement_text = re.split(r"\s+--?[a-z]", content)[0].strip()
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as exc:
            raise InputError(f"not a requirement: {exc}", where=f"{path}:{number}") from None
        pinned = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if len(pinned) != 1 or "*" in pinned[0].version:
            raise InputError(
                f"{requirement.name} is not pinned to one version (name==version)",
                where=f"{path}:{number}",
                hint="audit a lock: lockship lock, pip-compile or pip freeze output",
            )
        pins.append((canonicalize_name(requirement.name), pinned[0].version))
    return pins


def _pylock_pins(path: Path, text: str) -> tuple[Optional[str], list[tuple[str, str]]]:
    pylock = parse_pylock(text, where=str(path))
    header = (pylock.tool or {}).get("lockship")
    target = header.get("target", {}).get("name") if isinstance(header, dict) else None
    pins: list[tuple[str, str]] = []
    for package in pylock.packages:
        if package.version is None:
            raise InputError(f"{package.name} has no version", where=str(path))
        pins.append((canonicalize_name(package.name), str(package.version)))
    return (target if isinstance(target, str) else None), pins


def read_pins(path: Path) -> Pins:
    """The (name, version) pairs a bundle, archive, pylock or requirements file pins.

    :raises InputError: naming the file (and line) when it is none of these or malformed.
    """
    if path.is_dir() or path.name.endswith(".tar"):
        from lockship.verify import open_bundle  # noqa: PLC0415 - verify checks the dossier

        with open_bundle(path) as root:
            record = read_record(root)
        found = {(str(canonicalize_name(f.name)), f.version) for f in record.files}
        return Pins(str(path), record.target.name, tuple(sorted(found)))
    try:
        text = read_bytes(str(path), _MAX_LOCK).decode("utf-8")
    except FileNotFoundError:
        raise InputError("no such lock, bundle or archive", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(path)) from None
    if path.name.endswith(".toml"):
        target, pairs = _pylock_pins(path, text)
    else:
        target, pairs = None, _requirements_pins(path, text)
    return Pins(str(path), target, tuple(sorted(set(pairs))))


# --- bundles ------------------------------------------------------------------------------


def _carried_sboms(wheel: Path) -> tuple[CarriedSbom, ...]:
    found = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not _SBOM_MEMBER.fullmatch(info.filename):
                continue
            digest, size = hashlib.sha256(), 0
            with archive.open(info) as member:
                while block := member.read(128 * 1024):
                    size += len(block)
                    if size > _MAX_SBOM:
                        raise IntegrityError(
                            f"{info.filename}: larger than {_MAX_SBOM} bytes", where=wheel.name
                        )
                    digest.update(block)
            found.append(CarriedSbom(info.filename, digest.hexdigest(), size))
    return tuple(sorted(found, key=lambda s: s.member))


def _summary(metadata: bytes) -> str:
    raw, _ = parse_email(metadata)
    return " ".join((raw.get("summary") or "").split())[:200]


def read_inventory(root: Path, *, strict: bool = True) -> Inventory:
    """Describe the bundle directory ``root`` (fetched, or signed).

    :param strict: refuse an unreadable wheel; else describe it as having no metadata.

    :raises InputError: for a missing or invalid bundle.json or lock.
    :raises IntegrityError: for a wheel whose METADATA or zip directory is unreadable.
    """
    record = read_record(root)
    lock = read_lock(root / record.lock_file)
    locked = {canonicalize_name(p.name): p for p in lock.packages}
    distributions = []
    for file in record.files:
        wheel = root / file.path
        filename = wheel.name
        try:
            metadata = read_wheel_metadata(wheel, filename)
            sboms = _carried_sboms(wheel)
        except (MetadataError, zipfile.BadZipFile, OSError, ValueError) as exc:
            if strict:
                raise IntegrityError(f"unreadable wheel: {exc}", where=file.path) from None
            # a report still describes a damaged bundle; its file check says why
            metadata, sboms = b"Metadata-Version: 2.1\nLicense: (unreadable wheel)\n", ()
        package = locked.get(canonicalize_name(file.name))
        same = package is not None and package.version == file.version
        distributions.append(
            Distribution(
                file=file,
                license=license_from_metadata(metadata),
                summary=_summary(metadata),
                index=package.index if same and package else None,
                dependencies=package.dependencies if same and package else (),
                via=package.via if same and package else (),
                upload_time=package.artifact.upload_time if same and package else None,
                sboms=sboms,
            )
        )
    distributions.sort(key=lambda d: (canonicalize_name(d.name), d.file.path))
    return Inventory(root, record, lock, tuple(distributions))
