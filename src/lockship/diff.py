"""``lockship diff OLD NEW``: what changed between two transfers, red flags first.

OLD and NEW are locks (``pylock.<target>.toml``), bundle directories or bundle
archives for the same target. Names are compared canonically and versions as
PEP 440 versions (``1.0`` is ``1.0.0``). A package's origin is taken from its
URL: the index or find-links location whose recorded file locations the URL
lies under (``origins.py``), never from the lock's ``origin`` field alone.
A reviewer reads, in this order:

red flags
    - the same name and version with any new sha256, whatever the file name
      (a re-upload, a build-tagged re-upload, or tampering), old and new files
      side by side;
    - a new sdist in the lock, or a new wheel built from an sdist in the bundle
      (code that was compiled or built on the online side, not by the publisher);
    - a file whose URL is not under a location the lock records for its origin,
      or whose name is not its package's (a lock edited by hand);
    - a package from an index or find-links location the old transfer never used,
      or from a file location its index never used before;
    - a package that moved to another index or find-links location.
    - an advisory in the new bundle's ``audit.json`` that the old transfer's audit
      did not list (all of them, when the old transfer has no audit).
changes
    packages added, removed, upgraded and downgraded; files added and removed.

A lock compared with a bundle fetched from it shows no changes: the bundle's
wheels built from sdists are compared only with another bundle's.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Optional, Union, get_args

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError

from lockship.audit import read_bundle_audit
from lockship.errors import InputError
from lockship.lockfile import read_lock
from lockship.models import BundleFile, BundleRecord, Lock, Manifest, format_timestamp
from lockship.origins import lock_problems, origin_of, under

__all__ = ["Diff", "FileView", "PackageView", "diff", "load_view"]


@dataclass(frozen=True)
class FileView:
    filename: str
    sha256: str
    kind: str  # "wheel", "sdist" (the locked file) or "built-wheel" (in a bundle)
    url: str


@dataclass(frozen=True)
class PackageView:
    name: str  # canonical
    version: str  # as written
    locked: FileView  # the file the lock pins
    origin: Optional[str] = None  # the source its URL is under
    location: Optional[str] = None  # the file location of that source it is under
    built: Optional[FileView] = None  # in a bundle: the wheel built from the locked sdist
    problems: tuple[tuple[str, str], ...] = ()  # (kind, message): the lock disagrees with itself

    def files(self, *, built: bool) -> tuple[FileView, ...]:
        return (self.locked, self.built) if built and self.built is not None else (self.locked,)


@dataclass(frozen=True)
class View:
    """A lock or bundle reduced to what a diff compares."""

    source: str  # the path as the user gave it
    target: str
    tags_sha256: str
    packages: dict[str, PackageView]
    locations: dict[str, frozenset[str]]  # file locations the lock records, per source
    is_bundle: bool = False
    legacy: bool = False  # a lock from before format 2: no sources, no metadata digests
    # (name, version, advisory id, summary) of the audit.json findings not ignored;
    # None: no audit (a lock, or a bundle signed without an advisory database)
    advisories: Optional[frozenset[tuple[str, str, str, str]]] = None
    signing: Optional[Signing] = None  # a signed bundle: its place in its series


@dataclass(frozen=True)
class Signing:
    """manifest.json's series, sequence and signing time (lockship.sign)."""

    series: Optional[str]
    sequence: int  # 0: signed before lockship recorded sequences
    signed_at: Optional[datetime]

    def describe(self) -> str:
        when = format_timestamp(self.signed_at) if self.signed_at else "an unknown time"
        return f"series {self.series or '(none)'}, sequence {self.sequence}, signed {when}"


RedFlag = Literal[
    "same-version-new-hash",
    "new-sdist",
    "new-built-wheel",
    "unlisted-location",
    "foreign-file",
    "new-origin",
    "new-file-location",
    "moved-index",
    "new-advisory",
    "not-newer",
]
OtherChange = Literal["added", "removed", "upgraded", "downgraded", "file-added", "file-removed"]
ChangeKind = Union[RedFlag, OtherChange]
RED_FLAGS: tuple[RedFlag, ...] = get_args(RedFlag)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    name: str
    old: str = ""
    new: str = ""
    detail: str = ""
    old_files: tuple[FileView, ...] = ()  # same-version-new-hash: every file on each side
    new_files: tuple[FileView, ...] = ()

    @property
    def red_flag(self) -> bool:
        return self.kind in RED_FLAGS


_ORDER = {kind: i for i, kind in enumerate((*RED_FLAGS, *get_args(OtherChange)))}


@dataclass(frozen=True)
class Diff:
    old: str
    new: str
    target: str
    changes: tuple[Change, ...] = field(default=())
    old_signing: Optional[Signing] = None
    new_signing: Optional[Signing] = None

    @property
    def red_flags(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.red_flag)


# --- loading -----------------------------------------------------------------------------


def _lock_packages(lock: Lock) -> dict[str, PackageView]:
    problems: dict[str, list[tuple[str, str]]] = {}
    for package, kind, message in lock_problems(lock) if lock.sources else ():
        problems.setdefault(package.name, []).append((kind, message))
    packages: dict[str, PackageView] = {}
    for p in lock.packages:
        # A lock from before format 2 records no sources: its origin field is all there is.
        origin = origin_of(p.artifact.url, lock.sources, p.index) if lock.sources else p.index
        source = next((s for s in lock.sources if s.url == origin), None)
        location = next(
            (x for x in (source.file_locations if source else ()) if under(p.artifact.url, x)),
            None,
        )
        artifact = p.artifact
        packages[canonicalize_name(p.name)] = PackageView(
            canonicalize_name(p.name),
            p.version,
            FileView(artifact.filename, artifact.sha256, artifact.kind, artifact.url),
            origin,
            location,
            problems=tuple(problems.get(p.name, [])),
        )
    return packages


def _locations(lock: Lock) -> dict[str, frozenset[str]]:
    return {s.url: frozenset(s.file_locations) for s in lock.sources}


def _legacy(lock: Lock) -> bool:
    return not lock.sources or any(p.metadata_sha256 is None for p in lock.packages)


def _lock_view(lock: Lock, source: str) -> View:
    return View(
        source, lock.target.name, lock.target.tags_sha256, _lock_packages(lock), _locations(lock),
        legacy=_legacy(lock),
    )


def _file_view(item: BundleFile) -> FileView:
    return FileView(Path(item.path).name, item.sha256, item.kind, item.origin_url)


def _bundle_view(bundle: Path, source: str) -> View:
    try:
        record = BundleRecord.model_validate_json((bundle / "bundle.json").read_bytes())
    except OSError as exc:
        raise InputError(
            f"not a lockship bundle: {exc.strerror}", where=f"{source}: bundle.json"
        ) from None
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise InputError(f"invalid bundle.json: {message}", where=source) from None
    lock = read_lock(bundle / record.lock_file, legacy=True)
    packages = _lock_packages(lock)
    for item in record.files:
        name = canonicalize_name(item.name)
        package = packages.get(name)
        if package is None:  # --include-self: lockship and its dependencies, not in the lock
            packages[name] = PackageView(name, item.version, _file_view(item))
        elif item.built_from is not None and package.version == item.version:
            packages[name] = PackageView(
                package.name, package.version, package.locked, package.origin,
                package.location, _file_view(item), package.problems,
            )
    signing = None
    if (bundle / "manifest.json").is_file():
        try:
            manifest = Manifest.model_validate_json((bundle / "manifest.json").read_bytes())
        except (OSError, ValidationError) as exc:
            raise InputError(f"invalid manifest.json: {exc}", where=source) from None
        signing = Signing(manifest.series, manifest.sequence, manifest.signed_at)
    audit = read_bundle_audit(bundle)
    advisories = (
        frozenset((f.name, f.version, f.id, f.summary) for f in audit.active)
        if audit is not None
        else None
    )
    return View(
        source, record.target.name, record.target.tags_sha256, packages, _locations(lock),
        is_bundle=True, legacy=_legacy(lock),
        advisories=advisories, signing=signing,
    )


@contextmanager
def load_view(path: Path) -> Iterator[View]:
    """Open a lock file, a bundle directory or a bundle archive for comparison.

    Messages and the report name ``path`` as given, not where an archive was extracted.
    """
    if path.is_dir():
        yield _bundle_view(path, str(path))
    elif path.name.endswith(".tar"):
        from lockship.archive import extract_archive  # noqa: PLC0415

        with tempfile.TemporaryDirectory(prefix="lockship-diff-") as tmp:
            yield _bundle_view(extract_archive(path, Path(tmp)), str(path))
    elif path.name.endswith(".toml"):
        yield _lock_view(read_lock(path, legacy=True), str(path))
    elif not path.exists():
        raise InputError("no such lock, bundle or archive", where=str(path))
    else:
        raise InputError(
            "expected a pylock.<target>.toml lock, a bundle directory or a .tar archive",
            where=str(path),
        )


# --- comparing ------------------------------------------------------------------------------


def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _same_version(a: str, b: str) -> bool:
    va, vb = _version(a), _version(b)
    return a == b if va is None or vb is None else va == vb


def diff(old: View, new: View) -> Diff:
    """Everything that changed from ``old`` to ``new``, red flags first.

    :raises InputError: when the two are for different targets.
    """
    if old.target != new.target or old.tags_sha256 != new.tags_sha256:
        raise InputError(
            f"{old.source} is for {old.target} and {new.source} for {new.target}: "
            "a diff compares two transfers for the same target",
            where="lockship diff",
        )
    if new.legacy:  # its origins could not be read from its URLs
        raise InputError(
            "made by an older lockship (no sources or metadata digests): only the old side "
            "of a diff may be",
            where=new.source,
            hint="lock it again with this lockship",
        )
    built = old.is_bundle and new.is_bundle  # compare built wheels only between bundles
    changes: list[Change] = []
    old_origins = {p.origin for p in old.packages.values() if p.origin}
    for name in sorted(old.packages.keys() | new.packages.keys()):
        before, after = old.packages.get(name), new.packages.get(name)
        if after is None:
            if before is not None:
                changes.append(Change("removed", name, old=before.version))
            continue
        if before is None:
            changes.append(Change("added", name, new=after.version))
        else:
            changes += _package_changes(before, after, built=built)
            changes += _location_changes(before, after, old)
        changes += _new_kinds(name, before, after)
        changes += _problems(after)
        if after.origin and after.origin not in old_origins:
            changes.append(Change("new-origin", name, new=after.version, detail=after.origin))
    known = {(name, identifier) for name, _, identifier, _ in old.advisories or ()}
    for name, version, identifier, summary in sorted(new.advisories or ()):
        if (name, identifier) not in known:
            detail = f"{identifier}: {summary}"
            changes.append(Change("new-advisory", name, new=version, detail=detail))
    changes += _freshness(old.signing, new.signing)
    changes.sort(key=lambda c: (_ORDER[c.kind], c.name))
    return Diff(
        old.source, new.source, new.target, tuple(changes), old.signing, new.signing
    )


def _freshness(old: Optional[Signing], new: Optional[Signing]) -> list[Change]:
    """A red flag when the new bundle is not newer: a rollback or a replay, or a mix-up."""
    if old is None or new is None:
        return []
    reasons = []
    if old.series is not None and old.series == new.series and new.sequence <= old.sequence:
        reasons.append(f"sequence {new.sequence} is not above {old.sequence}")
    if old.signed_at and new.signed_at and new.signed_at < old.signed_at:
        reasons.append("it was signed before the old one")
    if not reasons:
        return []
    return [
        Change(
            "not-newer", "(bundle)", old=old.describe(), new=new.describe(),
            detail="; ".join(reasons),
        )
    ]


def _side(files: tuple[FileView, ...]) -> str:
    return ", ".join(f"{f.filename} sha256:{f.sha256}" for f in files)


def _package_changes(before: PackageView, after: PackageView, *, built: bool) -> list[Change]:
    out: list[Change] = []
    old_files, new_files = before.files(built=built), after.files(built=built)
    if _same_version(before.version, after.version):
        if {f.sha256 for f in new_files} - {f.sha256 for f in old_files}:
            out.append(
                Change(
                    "same-version-new-hash", after.name, before.version, after.version,
                    f"{_side(old_files)} -> {_side(new_files)}", old_files, new_files,
                )
            )
        return out
    older, newer = _version(before.version), _version(after.version)
    upgraded = older is None or newer is None or newer > older
    kind: Literal["upgraded", "downgraded"] = "upgraded" if upgraded else "downgraded"
    out.append(Change(kind, after.name, before.version, after.version))
    old_names = {f.filename for f in old_files}
    new_names = {f.filename for f in new_files}
    out += [
        Change("file-added", after.name, new=after.version, detail=f)
        for f in sorted(new_names - old_names)
    ]
    out += [
        Change("file-removed", after.name, old=before.version, detail=f)
        for f in sorted(old_names - new_names)
    ]
    return out


def _location_changes(before: PackageView, after: PackageView, old: View) -> list[Change]:
    out = []
    if before.origin and after.origin and before.origin != after.origin:
        out.append(
            Change(
                "moved-index", after.name, before.version, after.version,
                f"{before.origin} -> {after.origin}",
            )
        )
    known = old.locations.get(after.origin or "")
    if after.location and known is not None and after.location not in known:
        out.append(
            Change(
                "new-file-location", after.name, before.version, after.version,
                f"{after.origin} now serves files from {after.location}",
            )
        )
    return out


def _new_kinds(name: str, before: Optional[PackageView], after: PackageView) -> list[Change]:
    """An sdist the old transfer did not lock: built into a wheel, in a bundle."""
    locked = after.locked
    if locked.kind != "sdist" or (before is not None and before.locked.sha256 == locked.sha256):
        return []
    if after.built is not None:
        return [Change("new-built-wheel", name, new=after.version, detail=after.built.filename)]
    return [Change("new-sdist", name, new=after.version, detail=locked.filename)]


def _problems(after: PackageView) -> list[Change]:
    out = []
    for kind, message in after.problems:
        flag: ChangeKind = "foreign-file" if kind == "filename" else "unlisted-location"
        out.append(Change(flag, after.name, new=after.version, detail=message))
    return out


# --- rendering ------------------------------------------------------------------------------

_LABELS = {
    "same-version-new-hash": "same version, different hash",
    "new-sdist": "new sdist",
    "new-built-wheel": "new wheel built from an sdist",
    "unlisted-location": "file from an unrecorded location",
    "foreign-file": "file of another package",
    "new-origin": "new index origin",
    "new-file-location": "files from a new location",
    "moved-index": "moved to another index",
    "not-newer": "new bundle is not newer (rollback or replay?)",
    "added": "added",
    "removed": "removed",
    "upgraded": "upgraded",
    "downgraded": "downgraded",
    "file-added": "file added",
    "file-removed": "file removed",
    "new-advisory": "new known vulnerability",
}


def label(change: Change) -> str:
    return _LABELS[change.kind]


_HEADER = "| change | package | old | new | detail |"


def render_markdown(result: Diff) -> str:
    lines = [f"## lockship diff for {result.target}", "", f"`{result.old}` → `{result.new}`", ""]
    if result.old_signing or result.new_signing:
        lines += [
            f"- old: {result.old_signing.describe() if result.old_signing else 'not signed'}",
            f"- new: {result.new_signing.describe() if result.new_signing else 'not signed'}",
            "",
        ]
    if not result.changes:
        return "\n".join([*lines, "No changes.", ""])
    flags = result.red_flags
    if flags:
        lines += [f"### Red flags ({len(flags)})", "", _HEADER, "|---|---|---|---|---|"]
        lines += [_row(c) for c in flags]
        lines.append("")
    rest = [c for c in result.changes if not c.red_flag]
    if rest:
        lines += [f"### Changes ({len(rest)})", "", _HEADER, "|---|---|---|---|---|"]
        lines += [_row(c) for c in rest]
        lines.append("")
    return "\n".join(lines)


def _row(change: Change) -> str:
    cells = [label(change), change.name, change.old, change.new, change.detail]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_json(result: Diff) -> str:
    document = {
        "old": result.old,
        "new": result.new,
        "target": result.target,
        "red_flags": len(result.red_flags),
        "signing": {
            side: None
            if signing is None
            else {
                "series": signing.series,
                "sequence": signing.sequence,
                "signed_at": format_timestamp(signing.signed_at) if signing.signed_at else None,
            }
            for side, signing in (("old", result.old_signing), ("new", result.new_signing))
        },
        "changes": [
            {
                "kind": c.kind,
                "red_flag": c.red_flag,
                "name": c.name,
                "old": c.old or None,
                "new": c.new or None,
                "detail": c.detail or None,
                "old_files": [{"filename": f.filename, "sha256": f.sha256} for f in c.old_files],
                "new_files": [{"filename": f.filename, "sha256": f.sha256} for f in c.new_files],
            }
            for c in result.changes
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
