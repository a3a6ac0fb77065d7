"""``lockship diff OLD NEW``: what changed between two transfers, red flags first.

OLD and NEW are locks (``pylock.<target>.toml``), bundle directories or bundle
archives for the same target. A reviewer reads, in this order:

red flags
    - the same name and version with a different hash (a re-upload, or tampering);
    - a new sdist in the lock, or a new wheel built from an sdist in the bundle
      (code that was compiled or built on the online side, not by the publisher);
    - a package from an index or find-links location the old transfer never used;
    - a package that moved to another index;
    - an advisory in the new bundle's ``audit.json`` that the old transfer's audit
      did not list (all of them, when the old transfer has no audit).
changes
    packages added, removed, upgraded and downgraded; files added and removed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from packaging.version import InvalidVersion, Version
from pydantic import ValidationError

from lockship.audit import read_bundle_audit
from lockship.errors import InputError
from lockship.lockfile import read_lock
from lockship.models import BundleRecord, Lock

__all__ = ["Diff", "FileView", "PackageView", "diff", "load_view"]


@dataclass(frozen=True)
class FileView:
    filename: str
    sha256: str
    kind: str  # "wheel", "sdist" (in a lock) or "built-wheel" (in a bundle)
    origin: Optional[str]  # index or find-links location
    url: str


@dataclass(frozen=True)
class PackageView:
    name: str
    version: str
    files: tuple[FileView, ...]

    @property
    def origins(self) -> set[str]:
        return {f.origin for f in self.files if f.origin}


@dataclass(frozen=True)
class View:
    """A lock or bundle reduced to what a diff compares."""

    source: str
    target: str
    tags_sha256: str
    packages: dict[str, PackageView]
    # (name, version, advisory id, summary) of the audit.json findings not ignored;
    # None: no audit (a lock, or a bundle signed without an advisory database)
    advisories: Optional[frozenset[tuple[str, str, str, str]]] = None


@dataclass(frozen=True)
class Change:
    kind: Literal[
        "same-version-new-hash",
        "new-sdist",
        "new-built-wheel",
        "new-origin",
        "moved-index",
        "added",
        "removed",
        "upgraded",
        "downgraded",
        "file-added",
        "file-removed",
        "new-advisory",
    ]
    name: str
    old: str = ""
    new: str = ""
    detail: str = ""

    @property
    def red_flag(self) -> bool:
        return self.kind in RED_FLAGS


RED_FLAGS = (
    "same-version-new-hash", "new-sdist", "new-built-wheel", "new-origin", "moved-index",
    "new-advisory",
)
_ORDER = {
    kind: i
    for i, kind in enumerate(
        (*RED_FLAGS, "added", "removed", "upgraded", "downgraded", "file-added", "file-removed")
    )
}


@dataclass(frozen=True)
class Diff:
    old: str
    new: str
    target: str
    changes: tuple[Change, ...] = field(default=())

    @property
    def red_flags(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.red_flag)


# --- loading -----------------------------------------------------------------------------


def _lock_view(lock: Lock, source: str) -> View:
    packages = {
        p.name: PackageView(
            p.name,
            p.version,
            (
                FileView(
                    p.artifact.filename, p.artifact.sha256, p.artifact.kind, p.index, p.artifact.url
                ),
            ),
        )
        for p in lock.packages
    }
    return View(source, lock.target.name, lock.target.tags_sha256, packages)


def _bundle_view(bundle: Path) -> View:
    try:
        record = BundleRecord.model_validate_json((bundle / "bundle.json").read_bytes())
    except OSError as exc:
        raise InputError(
            f"not a lockship bundle: {exc.strerror}", where=str(bundle / "bundle.json")
        ) from None
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise InputError(f"invalid bundle.json: {message}", where=str(bundle)) from None
    lock = read_lock(bundle / record.lock_file)
    origins = {p.name: p.index for p in lock.packages}
    grouped: dict[str, list[FileView]] = {}
    versions: dict[str, str] = {}
    for item in record.files:
        versions[item.name] = item.version
        grouped.setdefault(item.name, []).append(
            FileView(
                Path(item.path).name,
                item.sha256,
                item.kind,
                origins.get(item.name),
                item.origin_url,
            )
        )
    packages = {
        name: PackageView(name, versions[name], tuple(files)) for name, files in grouped.items()
    }
    audit = read_bundle_audit(bundle)
    advisories = (
        frozenset((f.name, f.version, f.id, f.summary) for f in audit.active)
        if audit is not None
        else None
    )
    return View(
        str(bundle), record.target.name, record.target.tags_sha256, packages, advisories
    )


@contextmanager
def load_view(path: Path) -> Iterator[View]:
    """Open a lock file, a bundle directory or a bundle archive for comparison."""
    if path.is_dir():
        yield _bundle_view(path)
    elif path.name.endswith(".tar"):
        from lockship.archive import extract_archive  # noqa: PLC0415

        with tempfile.TemporaryDirectory(prefix="lockship-diff-") as tmp:
            yield _bundle_view(extract_archive(path, Path(tmp)))
    elif path.name.endswith(".toml"):
        yield _lock_view(read_lock(path), str(path))
    elif not path.exists():
        raise InputError("no such lock, bundle or archive", where=str(path))
    else:
        raise InputError(
            "expected a pylock.<target>.toml lock, a bundle directory or a .tar archive",
            where=str(path),
        )


# --- comparing ------------------------------------------------------------------------------


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


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
    changes: list[Change] = []
    old_origins = {o for p in old.packages.values() for o in p.origins}
    for name in sorted(old.packages.keys() | new.packages.keys()):
        before, after = old.packages.get(name), new.packages.get(name)
        if before is None and after is not None:
            changes.append(Change("added", name, new=after.version))
        elif after is None and before is not None:
            changes.append(Change("removed", name, old=before.version))
        elif before is not None and after is not None:
            changes += _package_changes(before, after)
        if after is not None:
            changes += _new_kinds(name, before, after)
            for origin in sorted(after.origins - old_origins):
                changes.append(Change("new-origin", name, new=after.version, detail=origin))
    known = {(name, identifier) for name, _, identifier, _ in old.advisories or ()}
    for name, version, identifier, summary in sorted(new.advisories or ()):
        if (name, identifier) not in known:
            detail = f"{identifier}: {summary}"
            changes.append(Change("new-advisory", name, new=version, detail=detail))
    changes.sort(key=lambda c: (_ORDER[c.kind], c.name))
    return Diff(old.source, new.source, new.target, tuple(changes))


def _package_changes(before: PackageView, after: PackageView) -> list[Change]:
    out: list[Change] = []
    if before.version != after.version:
        kind: Literal["upgraded", "downgraded"] = (
            "upgraded" if _version(after.version) > _version(before.version) else "downgraded"
        )
        out.append(Change(kind, after.name, before.version, after.version))
    else:
        old_hashes = {f.filename: f.sha256 for f in before.files}
        for file in after.files:
            previous = old_hashes.get(file.filename)
            if previous is not None and previous != file.sha256:
                out.append(
                    Change(
                        "same-version-new-hash",
                        after.name,
                        before.version,
                        after.version,
                        f"{file.filename}: sha256 {previous[:16]}... -> {file.sha256[:16]}...",
                    )
                )
    if before.origins and after.origins and not (before.origins & after.origins):
        out.append(
            Change(
                "moved-index",
                after.name,
                before.version,
                after.version,
                f"{', '.join(sorted(before.origins))} -> {', '.join(sorted(after.origins))}",
            )
        )
    old_files = {f.filename for f in before.files}
    new_files = {f.filename for f in after.files}
    out += [
        Change("file-added", after.name, new=after.version, detail=f)
        for f in sorted(new_files - old_files)
    ]
    out += [
        Change("file-removed", after.name, old=before.version, detail=f)
        for f in sorted(old_files - new_files)
    ]
    return out


def _new_kinds(name: str, before: Optional[PackageView], after: PackageView) -> list[Change]:
    """Every sdist, or wheel built from one, that the old transfer did not carry."""
    seen = {(f.kind, f.filename) for f in before.files} if before is not None else set()
    out = []
    for file in after.files:
        if (file.kind, file.filename) in seen:
            continue
        if file.kind == "sdist":
            out.append(Change("new-sdist", name, new=after.version, detail=file.filename))
        elif file.kind == "built-wheel":
            out.append(Change("new-built-wheel", name, new=after.version, detail=file.filename))
    return out


# --- rendering ------------------------------------------------------------------------------

_LABELS = {
    "same-version-new-hash": "same version, different hash",
    "new-sdist": "new sdist",
    "new-built-wheel": "new wheel built from an sdist",
    "new-origin": "new index origin",
    "moved-index": "moved to another index",
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
        "changes": [
            {
                "kind": c.kind,
                "red_flag": c.red_flag,
                "name": c.name,
                "old": c.old or None,
                "new": c.new or None,
                "detail": c.detail or None,
            }
            for c in result.changes
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
