"""Publishing verified bundles into a static package repository, and to running indexes.

``lockship publish BUNDLE... --to DIR`` verifies each bundle with the very call
``lockship verify`` makes, then merges its wheels into a tree of plain files that
any static web server (nginx, an object store behind a CDN) serves, with
``DIR/simple/`` as the index URL::

    simple/index.html  simple/index.json        every project (PEP 503 / PEP 691)
    simple/<project>/index.html, index.json     its files: sha256, Requires-Python,
                                                core metadata (PEP 658/714), size and
                                                upload time (PEP 700)
    files/<project>/<wheel>                     each file exactly once
    files/<project>/<wheel>.metadata            its METADATA (PEP 658)
    provenance.json  provenance.html            which bundles, signed by whom, when
    .lockship/state.json                        what is published: the commit point
    .lockship/lock  .lockship/tmp/              serialises publishes; staging

Every step keeps the tree consistent if the process is killed at any point
(each file is written to a temporary file in its directory, fsynced, and renamed):

1. under the lock, each bundle is copied (or its archive extracted) into
   ``.lockship/tmp`` and verified there, so what is published is exactly what
   was verified, and its METADATA is extracted and checked against the wheel's
   RECORD. A bundle that does not verify, or a file name already published with
   other bytes, refuses the whole run before anything outside the staging
   directory is written;
2. new files are renamed into ``files/``, where no page links them yet;
3. ``state.json`` is replaced: the commit point;
4. every page that differs from what the state says is rewritten, project pages
   before the root, then the provenance, so a re-run after a kill repairs the tree;
5. with ``prune``, pages stop linking files before the files are deleted.

Pages depend only on the published set, never on the publishing order or clock,
so the same bundles give byte-identical pages.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol
from urllib.parse import quote

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, ValidationError

from lockship._fs import (
    atomic_write_bytes,
    exclusive_lock,
    filesystem_error,
    fsync_dir,
    safe_join,
)
from lockship._install_script import MANIFEST, SUMS, WHEEL_KINDS, list_files
from lockship._zip import dist_info_metadata_chooser
from lockship.archive import extract_archive
from lockship.errors import (
    BusyError,
    ConflictError,
    InputError,
    IntegrityError,
    LockshipError,
    VerificationError,
)
from lockship.hashing import CHUNK, HashingWriter, file_digest
from lockship.lockfile import read_lock
from lockship.metadata import parse_core_metadata
from lockship.models import Manifest, describe_validation_error, format_timestamp
from lockship.sign import read_record
from lockship.sshsig import load_allowed_signers
from lockship.verify import resolve_identity, verify_bundle

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "API_VERSION",
    "PublishRequest",
    "PublishResult",
    "PublishedBundle",
    "PublishedFile",
    "RepositoryState",
    "StagedBundle",
    "StagedFile",
    "publish",
    "read_state",
    "render_pages",
    "stage_bundle",
]

API_VERSION = "1.1"  # PEP 700: sizes, upload times and versions in the JSON pages
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
STATE_DIR = ".lockship"
STATE_FILE = f"{STATE_DIR}/state.json"
METADATA_LIMIT = 16 * 1024 * 1024  # a METADATA file larger than this is not metadata
RECORD_LIMIT = 64 * 1024 * 1024
STATE_LIMIT = 512 * 1024 * 1024


# --- what is published ------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PublishedFile(_Frozen):
    """One wheel in the repository; kept after ``prune`` removes it, so its name is never reused."""

    filename: str
    project: str  # normalized
    version: str
    sha256: str
    size: int
    metadata_sha256: str
    metadata_size: int
    requires_python: Optional[str] = None  # the wheel's own Requires-Python
    upload_time: Optional[datetime] = None  # when the original index received it (PEP 700)
    origin_url: Optional[str] = None  # where the bundle's manifest says it came from
    bundle: str  # id of the bundle that first brought it
    removed_at: Optional[datetime] = None  # deleted by prune

    @property
    def path(self) -> str:
        return f"files/{self.project}/{self.filename}"


class PublishedBundle(_Frozen):
    """A bundle merged into the repository, as the provenance page lists it."""

    id: str  # "sha256:" + the digest of its SHA256SUMS, the document its signature covers
    name: str  # the directory or archive name it was published from
    target: str
    signer: str  # the principal allowed_signers accepted
    key: str  # the signing key's fingerprint
    series: Optional[str] = None
    sequence: Optional[int] = None
    signed_at: Optional[datetime] = None
    expires: Optional[datetime] = None
    lock_fingerprint: str
    exclude_newer: Optional[datetime] = None
    published_at: datetime
    retired_at: Optional[datetime] = None  # superseded and retired by prune
    files: tuple[str, ...]  # wheel file names, sorted

    @property
    def lineage(self) -> tuple[str, str]:
        """What a newer bundle supersedes: the same series (else signer) and target."""
        return (self.series or self.signer, self.target)


class RepositoryState(_Frozen):
    """``.lockship/state.json``, also published as ``provenance.json``."""

    format: int = 1
    bundles: tuple[PublishedBundle, ...] = ()  # in publishing order
    files: tuple[PublishedFile, ...] = ()  # sorted by path

    def active_files(self) -> dict[str, PublishedFile]:
        """The files that active bundles list, by file name."""
        names = {name for b in self.bundles if b.retired_at is None for name in b.files}
        return {f.filename: f for f in self.files if f.filename in names}


def read_state(dest: Path) -> RepositoryState:
    """The repository's state; empty when ``dest`` holds no repository yet.

    :raises InputError: when the state file is unreadable or not lockship's.
    """
    path = dest / STATE_FILE
    try:
        with path.open("rb") as handle:
            data = handle.read(STATE_LIMIT + 1)
    except FileNotFoundError:
        return RepositoryState()
    except OSError as exc:
        raise filesystem_error(exc, path, action="cannot read") from None
    if len(data) > STATE_LIMIT:
        raise InputError(f"larger than {STATE_LIMIT} bytes", where=str(path))
    try:
        return RepositoryState.model_validate_json(data)
    except ValidationError as exc:
        raise InputError(
            f"not a lockship repository state: {describe_validation_error(exc)}",
            where=str(path),
            hint="publish into an empty directory, or restore this file from a backup",
        ) from None


# --- staging: copy, verify, extract metadata ---------------------------------------------


@dataclass(frozen=True)
class StagedFile:
    """A verified wheel in the staging directory, and its extracted METADATA."""

    record: PublishedFile
    wheel: Path
    metadata: Path


@dataclass(frozen=True)
class StagedBundle:
    """A bundle copied into a private directory and verified there."""

    source: Path  # as given
    root: Path  # the verified copy
    bundle: PublishedBundle
    files: tuple[StagedFile, ...]


def _copy_bundle(source: Path, dest: Path) -> Path:
    """Copy a bundle directory's regular files; links and special files refuse it."""
    files, refused = list_files(str(source))
    if refused:
        raise VerificationError(refused, where=str(source))
    for relative in files:
        target = dest.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(source.joinpath(*relative.split("/")), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise filesystem_error(exc, source / relative, action="cannot read") from None
        with os.fdopen(fd, "rb") as reader, target.open("xb") as writer:
            shutil.copyfileobj(reader, writer, CHUNK)
    return dest


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _b64_sha256(hex_digest: str) -> str:
    """A wheel RECORD's digest encoding (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()


def _check_size(member: str, size: int, limit: int) -> None:
    if size > limit:
        raise ValueError(f"{member} is implausibly large ({size} bytes)")


def _record_digest(archive: zipfile.ZipFile, member: str) -> str:
    """The sha256 the wheel's RECORD gives for ``member`` (urlsafe base64)."""
    record = member.rsplit("/", 1)[0] + "/RECORD"
    try:
        info = archive.getinfo(record)
    except KeyError:
        raise ValueError(f"no {record}") from None
    _check_size(record, info.file_size, RECORD_LIMIT)
    text = archive.read(info).decode("utf-8", "replace")
    for row in csv.reader(text.splitlines()):
        if row and row[0] == member:
            algorithm, _, value = (row[1] if len(row) > 1 else "").partition("=")
            if algorithm != "sha256" or not value:
                raise ValueError(f"{record} has no sha256 for {member}")
            return value.rstrip("=")
    raise ValueError(f"{record} does not list {member}")


def _extract_metadata(
    wheel: Path, name: str, version: str, dest: Path
) -> tuple[str, int, Optional[str]]:
    """Stream the wheel's METADATA to ``dest``; return its sha256, size and Requires-Python.

    The bytes must match the sha256 the wheel's own RECORD gives (zipfile also
    checks the CRC), so the ``.metadata`` file is exactly the wheel's METADATA.

    :raises IntegrityError: for a wheel whose METADATA cannot be extracted or is not
        the one its RECORD describes.
    """
    where = wheel.name
    try:
        with zipfile.ZipFile(wheel) as archive:
            member = dist_info_metadata_chooser(name, version)(archive.namelist())
            info = archive.getinfo(member)
            _check_size(member, info.file_size, METADATA_LIMIT)
            expected = _record_digest(archive, member)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, dest.open("xb") as out:
                writer = HashingWriter(out, limit=METADATA_LIMIT)
                shutil.copyfileobj(source, writer, CHUNK)
                out.flush()
                os.fsync(out.fileno())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise IntegrityError(f"cannot extract its METADATA: {exc}", where=where) from None
    except OSError as exc:
        raise filesystem_error(exc, dest) from None
    digest = writer.hexdigest()
    if _b64_sha256(digest) != expected:
        raise IntegrityError(
            f"{member} does not match the sha256 the wheel's RECORD gives", where=where
        )
    metadata = parse_core_metadata(dest.read_bytes(), where=f"{where}: {member}")
    requires_python = str(metadata.requires_python) if metadata.requires_python else None
    return digest, writer.size, requires_python


def stage_bundle(
    source: Path,
    workdir: Path,
    *,
    allowed_signers: Path,
    identity: str,
    now: datetime,
) -> StagedBundle:
    """Copy or extract ``source`` into ``workdir``, verify the copy, extract each METADATA.

    :raises InputError: no such bundle, or an unsafe archive.
    :raises SignatureError: see :func:`lockship.verify.verify_bundle`.
    :raises VerificationError: see :func:`lockship.verify.verify_bundle`.
    :raises IntegrityError: a wheel's METADATA does not match its RECORD.
    """
    work = Path(tempfile.mkdtemp(prefix="bundle-", dir=workdir))
    copy = work / "bundle"  # beside work/metadata, whatever the bundle's own names
    copy.mkdir()
    if source.is_dir():
        root = _copy_bundle(source, copy / (source.resolve().name or "bundle"))
    elif source.is_file():
        root = extract_archive(source, copy)
    else:
        raise InputError("no such bundle directory or archive", where=str(source))
    try:
        report = verify_bundle(root, allowed_signers, identity=identity)
    except LockshipError as exc:
        if exc.where == str(root):
            exc.where = str(source)  # the bundle as given, not its private copy
        raise
    # Everything below reads only the verified copy.
    manifest = Manifest.model_validate_json((root / MANIFEST).read_bytes())
    lock = read_lock(root / read_record(root).lock_file)
    bundle_id = "sha256:" + file_digest(root / SUMS)[0]
    by_file = {p.artifact.filename: p.artifact.upload_time for p in lock.packages}
    by_project = {canonicalize_name(p.name): p.artifact.upload_time for p in lock.packages}
    files = []
    for entry in manifest.files:
        if entry.kind not in WHEEL_KINDS:
            continue
        wheel = safe_join(root, entry.path, what=str(source))
        filename = wheel.name
        project = canonicalize_name(parse_wheel_filename(filename)[0])
        metadata = work / "metadata" / f"{filename}.metadata"
        meta_sha256, meta_size, requires_python = _extract_metadata(
            wheel, entry.name or project, entry.version or "", metadata
        )
        # A wheel built from an sdist was available once the sdist was: its upload time.
        uploaded = by_file.get(filename)
        if uploaded is None and entry.kind == "built-wheel":
            uploaded = by_project.get(project)
        record = PublishedFile(
            filename=filename,
            project=project,
            version=str(parse_wheel_filename(filename)[1]),
            sha256=entry.sha256,
            size=entry.size,
            metadata_sha256=meta_sha256,
            metadata_size=meta_size,
            requires_python=requires_python,
            upload_time=uploaded,
            origin_url=entry.origin_url,
            bundle=bundle_id,
        )
        files.append(StagedFile(record, wheel, metadata))
    bundle = PublishedBundle(
        id=bundle_id,
        name=source.resolve().name,
        target=report.target,
        signer=report.principal,
        key=report.fingerprint,
        series=manifest.series,
        sequence=manifest.sequence or None,  # 0: signed before sequences were recorded
        signed_at=manifest.signed_at,
        expires=manifest.expires,
        lock_fingerprint=manifest.lock_fingerprint,
        exclude_newer=manifest.exclude_newer,
        published_at=now,
        files=tuple(sorted(f.record.filename for f in files)),
    )
    return StagedBundle(source, root, bundle, tuple(files))


# --- merging --------------------------------------------------------------------------


def _describe(bundle: PublishedBundle) -> str:
    sequence = f", sequence {bundle.sequence}" if bundle.sequence is not None else ""
    return f"bundle {bundle.name} ({bundle.target}, signed by {bundle.signer}{sequence})"


def _origin(file: PublishedFile, bundle: Optional[PublishedBundle]) -> str:
    text = f"sha256 {file.sha256}"
    if bundle is not None:
        text += f" from {_describe(bundle)}"
        if bundle.published_at != file.removed_at:
            text += f", published {format_timestamp(bundle.published_at)}"
    if file.origin_url:
        text += f", origin {file.origin_url}"
    if file.removed_at is not None:
        text += f", removed by prune {format_timestamp(file.removed_at)}"
    return text


def _same_file_key(filename: str) -> tuple[str, ...]:
    """Two spellings of one wheel (``Foo_Bar`` and ``foo_bar``) are one file to an installer."""
    name, version, build, tags = parse_wheel_filename(filename)
    return (name, str(version), str(build), *sorted(str(t) for t in tags))


@dataclass
class _Plan:
    state: RepositoryState
    place: list[StagedFile] = field(default_factory=list)  # files to put into files/
    published: list[PublishedBundle] = field(default_factory=list)
    unchanged: list[PublishedBundle] = field(default_factory=list)
    retired: list[PublishedBundle] = field(default_factory=list)
    removed: list[PublishedFile] = field(default_factory=list)


def _merge(state: RepositoryState, staged: Sequence[StagedBundle]) -> _Plan:
    """The state with ``staged`` published; every conflict raises before anything is written.

    :raises ConflictError: a file name (or another spelling of it) already published,
        or offered by another bundle of this run, with other bytes; or two different
        bundles signed with the same sequence number of one series and target.
    """
    bundles = {b.id: b for b in state.bundles}
    files = {f.filename: f for f in state.files}
    keys = {_same_file_key(f.filename): f for f in state.files}
    plan = _Plan(state)
    placed: set[str] = set()
    for item in staged:
        new = item.bundle
        known_bundle = bundles.get(new.id)
        if known_bundle is not None and known_bundle.retired_at is None:
            plan.unchanged.append(known_bundle)
        elif new.sequence is not None:
            for other in bundles.values():
                if (
                    other.retired_at is None
                    and other.lineage == new.lineage
                    and other.sequence == new.sequence
                ):
                    raise ConflictError(
                        path=f"sequence {new.sequence} of {new.lineage[0]} for {new.target}",
                        published=_describe(other),
                        offered=f"{_describe(new)}, which has other contents",
                        hint="each signing of a series must have its own sequence number",
                    )
        for staged_file in item.files:
            offered = staged_file.record
            known = files.get(offered.filename) or keys.get(_same_file_key(offered.filename))
            if known is not None and (
                known.sha256 != offered.sha256 or known.filename != offered.filename
            ):
                raise ConflictError(
                    path=known.path,
                    published=_origin(known, bundles.get(known.bundle)),
                    offered=f"{offered.filename} {_origin(offered, new)}",
                )
            if known is None:
                files[offered.filename] = offered
                keys[_same_file_key(offered.filename)] = offered
            elif known.removed_at is not None:  # published again after a prune
                files[offered.filename] = known.model_copy(update={"removed_at": None})
            if offered.filename not in placed:
                placed.add(offered.filename)
                plan.place.append(staged_file)
        if known_bundle is None:
            bundles[new.id] = new
            plan.published.append(new)
        elif known_bundle.retired_at is not None:  # published again after being retired
            bundles[new.id] = known_bundle.model_copy(update={"retired_at": None})
            plan.published.append(bundles[new.id])
    plan.state = RepositoryState(
        bundles=tuple(bundles.values()),
        files=tuple(sorted(files.values(), key=lambda f: f.path)),
    )
    return plan


def _prune(plan: _Plan, now: datetime) -> None:
    """Retire every bundle a newer one of its series and target supersedes; drop their files."""
    state = plan.state
    newest: dict[tuple[str, str], tuple[tuple[bool, int, int], str]] = {}
    for position, bundle in enumerate(state.bundles):
        if bundle.retired_at is not None:
            continue
        rank = (bundle.sequence is not None, bundle.sequence or 0, position)
        current = newest.get(bundle.lineage)
        if current is None or rank > current[0]:
            newest[bundle.lineage] = (rank, bundle.id)
    keep = {bundle_id for _, bundle_id in newest.values()}
    bundles = []
    for bundle in state.bundles:
        if bundle.retired_at is None and bundle.id not in keep:
            bundle = bundle.model_copy(update={"retired_at": now})  # noqa: PLW2901
            plan.retired.append(bundle)
        bundles.append(bundle)
    live = {name for b in bundles if b.retired_at is None for name in b.files}
    files = []
    for file in state.files:
        if file.removed_at is None and file.filename not in live:
            file = file.model_copy(update={"removed_at": now})  # noqa: PLW2901
            plan.removed.append(file)
        files.append(file)
    plan.state = RepositoryState(bundles=tuple(bundles), files=tuple(files))


# --- pages ------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415 - only publishing renders pages

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lockship", "templates"),
        autoescape=True,  # every name, version and URL is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    env.filters["timestamp"] = lambda value: format_timestamp(value) if value else ""
    return env


def _file_url(file: PublishedFile) -> str:
    """The file's URL relative to its project page ``simple/<project>/``."""
    return f"../../files/{quote(file.project, safe='')}/{quote(file.filename, safe='')}"


def _json(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def render_pages(state: RepositoryState) -> dict[str, bytes]:
    """Every page of the repository, by path relative to its root (deterministic)."""
    env = _environment()
    by_project: dict[str, list[PublishedFile]] = {}
    for file in state.active_files().values():
        by_project.setdefault(file.project, []).append(file)
    pages: dict[str, bytes] = {}
    meta = {"api-version": API_VERSION}
    for project, files in sorted(by_project.items()):
        files.sort(key=lambda f: (Version(f.version), f.filename))
        entries = []
        for f in files:
            entry: dict[str, object] = {
                "filename": f.filename,
                "url": _file_url(f),
                "hashes": {"sha256": f.sha256},
                "size": f.size,
                "core-metadata": {"sha256": f.metadata_sha256},
                "dist-info-metadata": {"sha256": f.metadata_sha256},  # PEP 714: both keys
            }
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if f.upload_time is not None:
                entry["upload-time"] = format_timestamp(f.upload_time)
            entries.append(entry)
        versions = sorted({f.version for f in files}, key=Version)
        pages[f"simple/{project}/index.json"] = _json(
            {"meta": meta, "name": project, "versions": versions, "files": entries}
        )
        html = env.get_template("simple-project.html").render(
            api_version=API_VERSION,
            project=project,
            files=[
                {
                    "filename": f.filename,
                    "url": _file_url(f),
                    "sha256": f.sha256,
                    "requires_python": f.requires_python,
                    "metadata_sha256": f.metadata_sha256,
                }
                for f in files
            ],
        )
        pages[f"simple/{project}/index.html"] = html.encode()
    projects = sorted(by_project)
    pages["simple/index.json"] = _json({"meta": meta, "projects": [{"name": p} for p in projects]})
    root = env.get_template("simple-root.html").render(
        api_version=API_VERSION, projects=projects
    )
    pages["simple/index.html"] = root.encode()
    pages["provenance.json"] = _json(state.model_dump(mode="json"))
    provenance = env.get_template("provenance.html").render(
        bundles=state.bundles,
        active=sum(1 for b in state.bundles if b.retired_at is None),
        files=len(state.active_files()),
    )
    pages["provenance.html"] = provenance.encode()
    return pages


def _is_leftover(name: str) -> bool:
    """A temporary file of an interrupted atomic write (see ``_fs.atomic_write``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _write_pages(dest: Path, pages: dict[str, bytes]) -> list[str]:
    """Write every page that differs, project pages first; remove pages of gone projects."""
    written = []
    order = sorted(pages, key=lambda p: (p.count("/") != 2, not p.startswith("simple/"), p))
    for relative in order:
        path = dest / relative
        try:
            same = path.read_bytes() == pages[relative]
        except OSError:
            same = False
        if not same:
            atomic_write_bytes(path, pages[relative])
            written.append(relative)
    simple = dest / "simple"
    for directory in sorted(simple.iterdir()) if simple.is_dir() else ():
        if directory.is_dir() and f"simple/{directory.name}/index.html" not in pages:
            for name in ("index.html", "index.json"):
                if (directory / name).is_file():
                    (directory / name).unlink()
                    written.append(f"simple/{directory.name}/{name}")
            for leftover in directory.iterdir():
                if _is_leftover(leftover.name):
                    leftover.unlink()
            with contextlib.suppress(OSError):  # not empty: someone else's file; keep it
                directory.rmdir()
    return written


def _remove_leftovers(dest: Path) -> None:
    """Temporary files of writes a kill interrupted; only this process writes here now."""
    simple = dest / "simple"
    projects = [d for d in simple.iterdir() if d.is_dir()] if simple.is_dir() else []
    for directory in (dest, dest / STATE_DIR, simple, *projects):
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_file() and _is_leftover(entry.name):
                    entry.unlink()


def _unpublished(dest: Path, state: RepositoryState) -> list[str]:
    """Paths under files/ that no active bundle lists: pruned files, or left by a kill."""
    live = state.active_files()
    found = []
    files = dest / "files"
    for directory in sorted(files.iterdir()) if files.is_dir() else ():
        if not directory.is_dir():
            found.append(f"files/{directory.name}")
            continue
        for entry in sorted(directory.iterdir()):
            name = entry.name.removesuffix(".metadata")
            known = live.get(name)
            if known is None or known.project != directory.name:
                found.append(f"files/{directory.name}/{entry.name}")
    return found


# --- the tree ---------------------------------------------------------------------------


def _place(staged: StagedFile, dest: Path, known: Optional[PublishedFile]) -> bool:
    """Rename a verified wheel and its METADATA into files/ (not linked yet); True if moved.

    A file already there is kept when the state knows it (its bytes were checked
    when it was placed); one the state does not know was left by an interrupted
    run, never published: it is kept if its bytes are the same, else replaced.
    """
    record = staged.record
    moved = False
    for source, relative, sha256 in (
        (staged.metadata, f"{record.path}.metadata", record.metadata_sha256),
        (staged.wheel, record.path, record.sha256),
    ):
        final = dest / relative
        if final.is_file() and (
            (known is not None and known.removed_at is None) or file_digest(final)[0] == sha256
        ):
            continue
        try:
            _fsync(source)
            final.parent.mkdir(parents=True, exist_ok=True)
            source.replace(final)
        except OSError as exc:
            raise filesystem_error(exc, final) from None
        moved = True
    return moved


class PublishReporter(Protocol):
    def note(self, message: str) -> None: ...


class _Silent:
    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class PublishRequest:
    """What ``lockship publish`` was asked to do."""

    bundles: tuple[Path, ...] = ()
    dest: Optional[Path] = None  # the static tree (--to)
    allowed_signers: Optional[Path] = None
    identity: Optional[str] = None
    prune: bool = False
    dry_run: bool = False
    upload_url: Optional[str] = None  # --upload
    index_url: Optional[str] = None  # the upload index's simple API, to check what it holds
    wait: Optional[float] = None  # seconds to wait for another publish; None: as long as it takes


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did (or, with ``dry_run``, would do)."""

    dest: Optional[Path]
    published: tuple[PublishedBundle, ...]  # newly published (or published again)
    unchanged: tuple[PublishedBundle, ...]  # already published: nothing to do
    files_added: tuple[str, ...]  # tree paths of wheels placed
    pages_written: tuple[str, ...]
    retired: tuple[PublishedBundle, ...]
    removed: tuple[str, ...]  # tree paths deleted by prune
    uploaded: tuple[str, ...] = ()  # file names uploaded
    already_uploaded: tuple[str, ...] = ()  # file names the index already had, same sha256
    dry_run: bool = False


@contextlib.contextmanager
def _repository_lock(
    dest: Path, reporter: PublishReporter, wait: Optional[float]
) -> Iterator[None]:
    what = f"the repository {dest}"
    lock = dest / STATE_DIR / "lock"
    try:
        with exclusive_lock(lock, what=what, wait=0):
            pass
    except BusyError:
        reporter.note(f"waiting for another lockship publish into {dest} to finish")
    except OSError as exc:
        raise filesystem_error(exc, lock) from None
    with exclusive_lock(lock, what=what, wait=wait):
        yield


def _stage_all(
    request: PublishRequest, workdir: Path, now: datetime
) -> list[StagedBundle]:
    if not request.bundles:
        return []
    if request.allowed_signers is None:
        raise InputError(
            "publishing a bundle needs --allowed-signers (and --identity, unless the file "
            "lists one principal)",
            where="lockship publish",
        )
    # Before anything is copied: with an organisation-wide allowed_signers, any
    # listed key would do unless the principal is named (lockship.verify).
    identity = resolve_identity(load_allowed_signers(request.allowed_signers), request.identity)
    return [
        stage_bundle(
            path, workdir, allowed_signers=request.allowed_signers, identity=identity, now=now,
        )
        for path in request.bundles
    ]


def _publish_tree(
    dest: Path, staged: Sequence[StagedBundle], request: PublishRequest, now: datetime
) -> tuple[_Plan, list[str], list[str], list[str]]:
    """Merge into the tree; return the plan, files added, pages written, paths removed."""
    state = read_state(dest)
    plan = _merge(state, staged)
    if request.prune:
        _prune(plan, now)
    if request.dry_run:
        added = [f.record.path for f in plan.place if not (dest / f.record.path).is_file()]
        return plan, added, [], _unpublished(dest, plan.state) if request.prune else []
    _remove_leftovers(dest)
    known = {f.filename: f for f in state.files}
    added = [f.record.path for f in plan.place if _place(f, dest, known.get(f.record.filename))]
    for directory in {(dest / f.record.path).parent for f in plan.place}:
        fsync_dir(directory)
    if plan.state != state or not (dest / STATE_FILE).is_file():
        atomic_write_bytes(dest / STATE_FILE, _json(plan.state.model_dump(mode="json")))
    written = _write_pages(dest, render_pages(plan.state))
    removed: list[str] = []
    if request.prune:  # pages no longer link these: delete them
        for relative in _unpublished(dest, plan.state):
            path = dest / relative
            try:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                raise filesystem_error(exc, path, action="cannot remove") from None
            removed.append(relative)
        for directory in (dest / "files").iterdir() if (dest / "files").is_dir() else ():
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
    return plan, added, written, removed


def publish(request: PublishRequest, reporter: Optional[PublishReporter] = None) -> PublishResult:
    """Verify ``request.bundles`` and publish them into a static tree and/or upload them.

    Nothing is written (and nothing uploaded) unless every bundle verifies and no
    file conflicts with what is already published.

    :raises InputError: a bundle is missing or malformed, or options are missing.
    :raises SignatureError: a bundle's signature is missing, invalid or not allowed.
    :raises VerificationError: a bundle's files do not match its signed file list.
    :raises ConflictError: a file name already published with other bytes.
    :raises NetworkError: the upload index could not be reached or refused a file.
    :raises BusyError: ``request.wait`` expired while another publish held the tree.
    """
    reporter = reporter or _Silent()
    if request.dest is None and request.upload_url is None:
        raise InputError("nothing to do: give --to DIR, --upload URL, or both")
    if request.upload_url is not None and request.index_url is None:
        raise InputError(
            "--upload needs --index-url: the index's simple API, "
            "to check which files it already holds",
            where="lockship publish",
        )
    now = datetime.now(timezone.utc).replace(microsecond=0)
    dest = request.dest
    holding = dest is not None and (not request.dry_run or (dest / STATE_DIR).is_dir())
    with contextlib.ExitStack() as stack:
        if dest is not None and holding:
            stack.enter_context(_repository_lock(dest, reporter, request.wait))
        if dest is not None and not request.dry_run:
            # Staging inside the tree: verified files are renamed into place, never copied again.
            workdir = dest / STATE_DIR / "tmp"
            shutil.rmtree(workdir, ignore_errors=True)  # left by a killed run; the lock is ours
            workdir.mkdir(parents=True)
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lockship-")))
        staged = _stage_all(request, workdir, now)
        plan, added, written, removed = (
            _publish_tree(dest, staged, request, now)
            if dest is not None
            else (_merge(RepositoryState(), staged), [], [], [])
        )
        uploaded: tuple[str, ...] = ()
        already: tuple[str, ...] = ()
        if request.upload_url is not None:
            from lockship.upload import upload_staged  # noqa: PLC0415 - twine is optional

            # A file the tree holds was moved there from staging; upload that copy.
            uploads = [
                (f.record, f.wheel if f.wheel.is_file() else dest / f.record.path)  # type: ignore[operator]
                for f in plan.place
            ]
            uploaded, already = upload_staged(
                uploads,
                upload_url=request.upload_url,
                index_url=request.index_url or "",
                dry_run=request.dry_run,
                reporter=reporter,
            )
    return PublishResult(
        dest=dest,
        published=tuple(plan.published),
        unchanged=tuple(plan.unchanged),
        files_added=tuple(added),
        pages_written=tuple(written),
        retired=tuple(plan.retired),
        removed=tuple(removed),
        uploaded=uploaded,
        already_uploaded=already,
        dry_run=request.dry_run,
    )
