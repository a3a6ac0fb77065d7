"""``lockship fetch``: a lock in, a bundle directory that can cross the air gap out.

Layout (documented in the README and in ``models.py``)::

    dist/<target>/
      wheels/*.whl            exactly the locked files; sdists replaced by wheels built from them
      requirements.txt        name==version --hash=sha256:<the file in wheels/>
      pylock.<target>.toml    the lock that was fetched, byte for byte
      bundle.json             what is here and where each file came from

Files are downloaded (in parallel) into the shared content-addressed cache,
verified there, and then placed in the bundle as reflinks (copy-on-write
clones) where the filesystem supports them, else as copies, and hashed again
as they are placed: a bundle never shares writable bytes with the cache or
another bundle unless ``--link-mode hardlink`` asks for it. Each wheel's
core metadata must be the metadata the lock was resolved from.
``bundle.json`` is written last: a bundle without it is incomplete. A bundle
that already matches the lock is left untouched without any network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Protocol

from packaging.utils import canonicalize_name, parse_wheel_filename

from lockship import __version__
from lockship._fs import (
    atomic_write_bytes,
    atomic_write_text,
    exclusive_lock,
    filesystem_error,
    safe_join,
)
from lockship.cache import Cache, default_cache_dir
from lockship.download import download_to_cache
from lockship.errors import BuildError, InputError, IntegrityError, NetworkError
from lockship.hashing import CHUNK, file_digest
from lockship.http import HttpClient
from lockship.index import IndexClient
from lockship.lockfile import read_lock
from lockship.metadata import CoreMetadata, parse_core_metadata, read_wheel_metadata
from lockship.models import (
    SIGN_OUTPUTS,
    BuiltFrom,
    BundleFile,
    BundleRecord,
    Lock,
    LockedPackage,
    source_date_epoch,
)
from lockship.origins import find_listed, lock_problems, source_config
from lockship.pipconfig import IndexConfig
from lockship.sdists import build_cached, build_env, build_key, built_from
from lockship.targets import Target

__all__ = [
    "LINK_MODES",
    "FetchReporter",
    "FetchRequest",
    "FetchResult",
    "LinkMode",
    "fetch",
    "render_bundle_requirements",
]

LinkMode = Literal["clone", "copy", "hardlink"]
LINK_MODES: tuple[LinkMode, ...] = ("clone", "copy", "hardlink")



class FetchReporter(Protocol):
    def started(self, files: int, to_download: int, total_bytes: int) -> None: ...
    def advance(self, count: int) -> None: ...  # bytes received (negative: discarded)
    def file_done(self, filename: str, source: str) -> None: ...  # cache|download|build|bundle


class _Silent:
    def started(self, files: int, to_download: int, total_bytes: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def file_done(self, filename: str, source: str) -> None:
        pass


@dataclass(frozen=True)
class FetchRequest:
    lock_path: Path
    dest: Path
    target: Target
    index_config: IndexConfig
    offline: bool = False
    jobs: int = 8
    cache_dir: Optional[Path] = None
    include_self: bool = False  # also carry lockship and its dependencies for the target
    # How bundle files are made from cache entries: "clone" (a reflink where the
    # filesystem can, else a copy), "copy", or "hardlink" (shares the cache's inode:
    # a write to one bundle's file changes the cache and every other bundle).
    link_mode: LinkMode = "clone"


@dataclass(frozen=True)
class FetchResult:
    dest: Path
    record: BundleRecord
    downloaded: int  # files downloaded in this run
    downloaded_bytes: int
    built: int
    changed: bool  # False: the bundle already matched the lock
    seconds: float

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.record.files)


@dataclass
class _Planned:
    package: LockedPackage
    cache_file: Optional[Path] = None  # the locked file (wheel or sdist) in the cache
    wheel: Optional[Path] = None  # the wheel that goes into the bundle (a cache path)
    wheel_name: str = ""  # its filename in wheels/
    built_from: Optional[BuiltFrom] = None
    verified: bool = False  # its bytes were hashed in this run (downloaded or built)
    url: str = ""  # where to download it: the lock's URL, or the index's fresh link
    wheel_sha256: str = ""  # of the wheel for wheels/ (a built wheel's from its build record)
    wheel_size: int = 0
    build_key: str = ""  # a built wheel's cache key


def fetch(
    request: FetchRequest,
    reporter: Optional[FetchReporter] = None,
    *,
    http: Optional[HttpClient] = None,
) -> FetchResult:
    """Fill ``request.dest`` with exactly the files of the lock, verified.

    :param http: the run's HTTP client (``lockship run`` passes its lock session's,
        so that its connections serve every step and target); None: one for this call.

    :raises InputError: when the lock is missing, invalid, or for another target.
    :raises HashMismatchError: when a file's bytes do not match the lock.
    :raises NetworkError: when a file cannot be downloaded after retries.
    :raises BuildError: when an sdist cannot become a wheel usable on the target.
    :raises BusyError: when another lockship is filling the same bundle.
    """
    started = time.monotonic()
    reporter = reporter or _Silent()
    lock = read_lock(request.lock_path)
    _check_target(lock, request.target, request.lock_path)
    _check_origins(lock, request.lock_path)
    dest = request.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(
        dest.parent / f".{dest.name}.lock", what=f"bundle {dest}", wait=0
    ), contextlib.ExitStack() as closing:
        cache = Cache(request.cache_dir or default_cache_dir())
        current = _complete_bundle(dest, lock, cache, include_self=request.include_self)
        if current is not None:
            reporter.started(len(current.files), 0, 0)
            return FetchResult(
                dest, current, 0, 0, 0, changed=False, seconds=time.monotonic() - started
            )
        if http is None:
            http = closing.enter_context(contextlib.closing(
                HttpClient(request.index_config, pool_size=request.jobs, offline=request.offline)
            ))  # fmt: skip
        plan = [_Planned(p) for p in lock.packages]
        self_plan = []
        if request.include_self:
            from lockship.selfbundle import lock_self  # noqa: PLC0415

            self_plan = [_Planned(p) for p in lock_self(
                    lock, target=request.target, index_config=request.index_config,
                    offline=request.offline, jobs=request.jobs, cache_dir=request.cache_dir,
                ).packages]
        everything = plan + self_plan
        _fresh_links(everything, cache, http, request)
        downloaded, downloaded_bytes = _download_all(
            everything, cache, http, request.jobs, reporter
        )
        built = _build_sdists(everything, cache, http, lock, request)
        for item in everything:
            if item.package.artifact.kind == "sdist":
                reporter.file_done(item.wheel_name, "build")
        if request.include_self:
            from lockship.selfbundle import build_self  # noqa: PLC0415

            package, wheel, provenance = build_self(cache, lock, request.index_config)
            sha256, size = file_digest(wheel)
            self_plan.append(
                _Planned(
                    package, wheel, wheel, wheel.name, provenance, verified=True,
                    wheel_sha256=sha256, wheel_size=size,
                )
            )
        record = _assemble(dest, lock, plan, request, self_plan, cache=cache)
    return FetchResult(
        dest, record, downloaded, downloaded_bytes, built, changed=True,
        seconds=time.monotonic() - started,
    )


# --- checks ----------------------------------------------------------------------------


def _check_target(lock: Lock, target: Target, path: Path) -> None:
    if lock.target.tags_sha256 != target.tags_sha256 or dict(
        lock.target.marker_environment
    ) != dict(sorted(target.marker_environment.items())):
        raise InputError(
            f"this lock was made for {lock.target.name} ({lock.target.description}), "
            f"not for {target.name} ({target.description})",
            where=str(path),
            hint="pass the same --target (and --glibc/--musl/--macos/--python-version) "
            "as when locking",
        )


def _check_origins(lock: Lock, path: Path) -> None:
    """Refuse a lock that disagrees with itself: a file outside its recorded sources."""
    problems = [f"{p.name} {p.version}: {message}" for p, _, message in lock_problems(lock)]
    if problems:
        raise IntegrityError(
            "the lock disagrees with itself (edited by hand?): " + "; ".join(problems),
            where=str(path),
            hint="`lockship lock --check` checks it against the configured indexes, and "
            "`lockship diff` against the approved lock shows what changed",
        )


def _complete_bundle(
    dest: Path, lock: Lock, cache: Cache, *, include_self: bool
) -> Optional[BundleRecord]:
    """The bundle's record if it already holds exactly this lock's files, else None.

    A file unchanged since fetch placed and hashed it (same inode, size, mtime
    and ctime: any write changes the ctime) is trusted; any other is hashed again.
    """
    try:
        record = BundleRecord.model_validate_json((dest / "bundle.json").read_bytes())
    except (OSError, ValueError):
        return None
    if record.lock_fingerprint != lock.fingerprint or record.lockship_version != __version__:
        return None
    if (record.self_requirements is not None) != include_self:
        return None
    expected = {f.path for f in record.files}
    present = {f"wheels/{p.name}" for p in (dest / "wheels").glob("*")}
    if expected != present:
        return None
    for item in record.files:
        path = dest / item.path
        stat = path.stat()
        if stat.st_size != item.size:
            return None
        if cache.placed_intact(path, item.sha256):
            continue
        if file_digest(path)[0] != item.sha256:
            return None
        cache.remember_placed(path, item.sha256)  # the next run need not hash it again
    return record


_FIELDS = (
    ("requires_dist", "Requires-Dist"),
    ("requires_python", "Requires-Python"),
    ("provides_extra", "Provides-Extra"),
)


def _check_wheel_metadata(item: _Planned, path: Path, cache: Cache) -> None:
    """The METADATA of a wheel placed in the bundle must be what the lock was resolved from.

    Its name and version must be the pin's, and the fields resolution reads must
    hash to the lock's ``metadata-sha256``. An index can answer the range requests
    that locking reads METADATA with from another file than the one it serves
    whole; ``path`` was hashed as it was placed, so its METADATA is the truth,
    and it replaces what the cache holds for the file so the next lock uses it.

    :raises IntegrityError: naming the fields that differ.
    """
    package = item.package
    data = read_wheel_metadata(path, item.wheel_name)
    meta = parse_core_metadata(data, where=item.wheel_name)
    if meta.name != canonicalize_name(package.name) or str(meta.version) != package.version:
        raise IntegrityError(
            f"the wheel's METADATA says {meta.name} {meta.version}, "
            f"the lock says {package.name} {package.version}",
            where=item.wheel_name,
        )
    expected = package.metadata_sha256
    if expected is None or meta.sha256 == expected:
        return
    resolved = _resolved_metadata(cache, package)
    differ = [label for field, label in _FIELDS if resolved is not None
              and getattr(resolved, field) != getattr(meta, field)]
    cache.put_metadata(package.artifact.sha256, data)
    what = (" and ".join(differ) + (" differs" if len(differ) == 1 else " differ")) if differ else (
        "Requires-Dist, Requires-Python or Provides-Extra differ"
    )
    raise IntegrityError(
        f"its METADATA is not the metadata the lock was resolved from ({what}); "
        "the file was refused",
        where=item.wheel_name,
        hint="the index served other bytes to the lock's range requests than to the "
        "download, or the file changed since locking. The cache now holds this file's "
        "own metadata: lock again and review the diff",
    )


def _resolved_metadata(cache: Cache, package: LockedPackage) -> Optional[CoreMetadata]:
    """The metadata the lock was resolved from, if the cache still holds it."""
    data = cache.get_metadata(package.artifact.sha256)
    if data is None:
        return None
    try:
        meta = parse_core_metadata(data, where=package.artifact.filename)
    except IntegrityError:
        return None
    return meta if meta.sha256 == package.metadata_sha256 else None


# --- downloads ---------------------------------------------------------------------------


def _fresh_links(
    plan: Sequence[_Planned], cache: Cache, http: HttpClient, request: FetchRequest
) -> None:
    """Ask the index again for the links a lock records without their query string.

    Such a link (a pre-signed URL, a token) may carry a credential and expire,
    so the lock holds the URL without it, and the file is fetched with the
    link its index gives now, for the same name, URL and sha256.
    """
    clients: dict[str, IndexClient] = {}
    for item in plan:
        artifact = item.package.artifact
        item.url = artifact.url
        if not artifact.query_removed or cache.has_file(artifact.sha256, artifact.size):
            continue
        origin = item.package.index or ""
        if origin not in clients:
            config = source_config(request.index_config, origin)
            if config is None:
                raise InputError(
                    f"its index linked it with a query string, which the lock does not "
                    f"record; fetch asks {origin} for a fresh link, but it is not configured",
                    where=artifact.filename,
                    hint=f"pass --index-url {origin} (or its find-links location), with "
                    "its credentials",
                )
            clients[origin] = IndexClient(http, cache, config, refresh=True)
        listed = find_listed(clients[origin], item.package)
        if listed is None:
            raise NetworkError(
                f"{origin} no longer lists it at {artifact.url} with sha256 {artifact.sha256}",
                where=artifact.filename,
                hint="lock again, and review the diff",
            )
        item.url = listed.url


def _download_all(
    plan: Sequence[_Planned],
    cache: Cache,
    http: HttpClient,
    jobs: int,
    reporter: FetchReporter,
) -> tuple[int, int]:
    missing = [
        item
        for item in plan
        if not cache.has_file(item.package.artifact.sha256, item.package.artifact.size)
    ]
    reporter.started(len(plan), len(missing), sum(i.package.artifact.size for i in missing))
    for item in plan:
        if item not in missing:
            item.cache_file = cache.file_path(item.package.artifact.sha256)
            reporter.file_done(item.package.artifact.filename, "cache")
    errors: list[BaseException] = []

    def one(item: _Planned) -> None:
        artifact = item.package.artifact
        path, _, _ = download_to_cache(
            http,
            cache,
            item.url or artifact.url,
            sha256=artifact.sha256,
            size=artifact.size,
            what=artifact.filename,
            progress=reporter.advance,
        )
        item.cache_file = path
        item.verified = True  # hashed while downloading
        reporter.file_done(artifact.filename, "download")

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, item) for item in missing]
        for future in as_completed(futures):
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
    if errors:
        # Everything else finished and is cached, so a re-run resumes from here.
        raise errors[0]
    for item in plan:
        artifact = item.package.artifact
        if artifact.kind == "wheel":
            item.wheel = item.cache_file
            item.wheel_name = artifact.filename
            item.wheel_sha256, item.wheel_size = artifact.sha256, artifact.size
    return len(missing), sum(i.package.artifact.size for i in missing)


# --- sdists --------------------------------------------------------------------------------


def _build_sdists(
    plan: Sequence[_Planned], cache: Cache, http: HttpClient, lock: Lock, request: FetchRequest
) -> int:
    """Give each sdist its wheel: built once per build key, checked against its record on use."""
    epoch = source_date_epoch(lock.exclude_newer)
    env = build_env(
        request.index_config, source_date_epoch=epoch, exclude_newer=lock.exclude_newer
    )
    built = 0
    for item in plan:
        artifact = item.package.artifact
        if artifact.kind != "sdist":
            continue
        assert item.cache_file is not None  # noqa: S101 - downloaded above
        key = build_key(artifact.sha256, env)
        wheel = cache.built_wheel(key)
        if wheel is None:
            if http.offline:
                raise BuildError(
                    "this sdist must be built and --offline forbids installing its build tools",
                    where=artifact.filename,
                    hint="run once online (lockship lock does it too) so the wheel is cached",
                )
            if not item.verified:  # a cache entry is checked before its code runs
                _verify_cached(item.cache_file, artifact.sha256, artifact.filename)
            wheel = build_cached(cache, item.cache_file, key, env=env, what=artifact.filename)
            built += 1
        _check_built_tags(wheel, request.target, artifact.filename)
        info = cache.build_info(key) or {}
        item.wheel, item.wheel_name, item.build_key = wheel, wheel.name, key
        item.wheel_sha256 = str(info.get("wheel_sha256", ""))
        item.wheel_size = int(info.get("wheel_size", -1))
        item.built_from = built_from(
            cache, key, filename=artifact.filename, url=artifact.url, sha256=artifact.sha256,
            size=artifact.size, epoch=epoch,
        )
    return built


def _verify_cached(path: Path, sha256: str, what: str) -> None:
    actual, _ = file_digest(path)
    if actual != sha256:
        path.unlink(missing_ok=True)
        raise _corrupt_entry(what, f"the cached copy had sha256 {actual}, expected {sha256}")


def _corrupt_entry(what: str, message: str) -> IntegrityError:
    return IntegrityError(
        f"{message}; it was removed from the cache",
        where=what,
        hint="run lockship fetch again to download or build it anew",
    )


def _check_built_tags(wheel: Path, target: Target, sdist: str) -> None:
    """A wheel built on this host is trusted only if it is pure (or the host is the target)."""
    _, _, _, tags = parse_wheel_filename(wheel.name)
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    if target.best_rank(tags) is not None and (pure or target.source == "host"):
        return
    shown = ", ".join(sorted(str(t) for t in tags))
    raise BuildError(
        f"building it produced {wheel.name} ({shown}), which is not a pure-Python wheel, "
        f"so it cannot be trusted to run on {target.name} ({target.description})",
        where=sdist,
        hint="build it on a machine like the target and add the wheel to a --find-links "
        "directory, pin a version that has wheels for the target, or drop the requirement",
    )


# --- assembling the bundle ------------------------------------------------------------------


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def _clone(source: Path, dest: Path) -> bool:
    """Make ``dest`` a reflink of ``source`` (copy on write); False where it cannot."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:
        return False
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        with source.open("rb") as src:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
        os.fsync(fd)
    except OSError:  # EOPNOTSUPP, EXDEV, EINVAL: this filesystem (pair) cannot
        os.close(fd)
        dest.unlink()
        return False
    os.close(fd)
    return True


def _copy(source: Path, dest: Path) -> str:
    """Copy ``source`` to a new file ``dest`` in blocks; return the sha256 of what was written."""
    digest = hashlib.sha256()
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with source.open("rb") as src, os.fdopen(fd, "wb") as out:
        while block := src.read(CHUNK):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _place(
    source: Path, dest: Path, sha256: str, *, mode: LinkMode, corrupt: Callable[[str], Exception]
) -> None:
    """Put the cache file ``source`` at ``dest``, checking its bytes as it goes.

    ``clone`` makes a reflink where the filesystem supports it (btrfs, XFS,
    APFS...: no bytes copied, and a write to either file leaves the other as it
    was), else a copy; ``copy`` always copies; ``hardlink`` shares the cache
    entry's inode. The placed bytes are hashed in every mode, so a corrupt
    cache entry never reaches a bundle.

    :param corrupt: the error to raise, given the digest found, when they do not
        match ``sha256`` (it removes the cache entry).
    """
    if dest.is_file() and not dest.is_symlink() and file_digest(dest)[0] == sha256:
        return  # already there (an earlier run was stopped before bundle.json)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if mode == "hardlink":
            actual = file_digest(source)[0]
            try:
                os.link(source, tmp)
            except OSError:  # another filesystem, or links not supported
                actual = _copy(source, tmp)
        elif mode == "clone" and _clone(source, tmp):
            actual = file_digest(tmp)[0]  # the clone's blocks are the cache entry's
        else:
            actual = _copy(source, tmp)
        if actual != sha256:
            raise corrupt(actual)
        tmp.replace(dest)
    except OSError as exc:  # disk full, permissions
        raise filesystem_error(exc, dest) from None
    finally:
        tmp.unlink(missing_ok=True)


def render_bundle_requirements(
    lock: Lock, files: Sequence[BundleFile], name: str = "requirements.txt"
) -> str:
    """The installable lock of a bundle: pins and hashes of exactly its wheels.

    :param name: the file it is written to, named in its install command.
    """
    install = "python -m pip install --no-index --find-links wheels --require-hashes"
    what = "lockship itself" if name == SELF_REQUIREMENTS else "lockship bundle"
    lines = [
        f"# {what} for {lock.target.name} ({lock.target.description}): install with",
        f"#   {install} -r {name}",
    ]
    for item in sorted(files, key=lambda f: f.name):
        lines.append(f"{item.name}=={item.version} \\")
        lines.append(f"    --hash=sha256:{item.sha256}")
    return "\n".join(lines) + "\n"


SELF_REQUIREMENTS = "lockship-requirements.txt"


def _assemble(
    dest: Path,
    lock: Lock,
    plan: Sequence[_Planned],
    request: FetchRequest,
    self_plan: Sequence[_Planned] = (),
    *,
    cache: Cache,
) -> BundleRecord:
    wheels_dir = dest / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    lock_name = request.lock_path.name
    # A changed bundle invalidates an earlier signature: remove its outputs first.
    for name in (*SIGN_OUTPUTS, "bundle.json", SELF_REQUIREMENTS):
        (dest / name).unlink(missing_ok=True)
    # A run killed mid-write (kill -9) left temporary files, which sign would refuse.
    for name in (*SIGN_OUTPUTS, "bundle.json", SELF_REQUIREMENTS, "requirements.txt", lock_name):
        for stale in dest.glob(f".{name}.*.tmp"):
            stale.unlink()
    files = _place_all(wheels_dir, plan, lock_name, cache, request.link_mode)
    self_files = _place_all(wheels_dir, self_plan, lock_name, cache, request.link_mode)
    by_path = {f.path: f for f in files}
    for item in self_files:
        other = by_path.setdefault(item.path, item)
        if other.sha256 != item.sha256:
            raise IntegrityError(
                f"the bundle's lock and lockship's own lock want different files named "
                f"{Path(item.path).name}",
                where=str(dest),
            )
    keep = {Path(path).name for path in by_path}
    for stale in wheels_dir.iterdir():
        if stale.name not in keep:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    atomic_write_bytes(dest / lock_name, request.lock_path.read_bytes())
    atomic_write_text(dest / "requirements.txt", render_bundle_requirements(lock, files))
    if self_plan:
        text = render_bundle_requirements(lock, self_files, SELF_REQUIREMENTS)
        atomic_write_text(dest / SELF_REQUIREMENTS, text)
    record = BundleRecord(
        lockship_version=__version__,
        target=lock.target,
        lock_file=lock_name,
        lock_fingerprint=lock.fingerprint,
        inputs=lock.inputs,
        exclude_newer=lock.exclude_newer,
        files=tuple(sorted(by_path.values(), key=lambda f: f.path)),
        self_requirements=SELF_REQUIREMENTS if self_plan else None,
    )
    text = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    atomic_write_text(dest / "bundle.json", text)
    return record


def _place_all(
    wheels_dir: Path, plan: Sequence[_Planned], lock_name: str, cache: Cache, mode: LinkMode
) -> list[BundleFile]:
    files: list[BundleFile] = []
    for item in plan:
        assert item.wheel is not None  # noqa: S101 - set by download/build
        package = item.package
        sha256, size = item.wheel_sha256, item.wheel_size
        # The name comes from the lock (and so from an index): it must not escape wheels/.
        target = safe_join(wheels_dir, item.wheel_name, what=lock_name)
        _place(item.wheel, target, sha256, mode=mode, corrupt=_on_corrupt(item, cache))
        try:
            _check_wheel_metadata(item, target, cache)
        except IntegrityError:
            target.unlink()  # refused: it must not sit in the bundle
            raise
        cache.remember_placed(target, sha256)
        files.append(
            BundleFile(
                path=f"wheels/{item.wheel_name}",
                name=package.name,
                version=package.version,
                sha256=sha256,
                size=size,
                origin_url=package.artifact.url,
                kind="built-wheel" if item.built_from else "wheel",
                built_from=item.built_from,
                origin_url_query_removed=package.artifact.query_removed,
            )
        )
    return files


def _on_corrupt(item: _Planned, cache: Cache) -> Callable[[str], Exception]:
    """The error for a cache entry whose bytes are not what its key says; it removes the entry."""
    assert item.wheel is not None  # noqa: S101 - set by download/build

    def corrupt(actual: str) -> Exception:
        expected = item.wheel_sha256
        if item.build_key:  # a wheel lockship built
            cache.remove_build(item.build_key)
            sdist = item.package.artifact.filename
            message = (
                f"the cached wheel built from {sdist} had sha256 {actual}, expected {expected}"
            )
        else:
            assert item.wheel is not None  # noqa: S101
            item.wheel.unlink(missing_ok=True)
            message = f"the cached copy had sha256 {actual}, expected {expected}"
        return _corrupt_entry(item.wheel_name, message)

    return corrupt
