"""``lockship fetch``: a lock in, a bundle directory that can cross the air gap out.

Layout (documented in the README and in ``models.py``)::

    dist/<target>/
      wheels/*.whl            exactly the locked files; sdists replaced by wheels built from them
      requirements.txt        name==version --hash=sha256:<the file in wheels/>
      pylock.<target>.toml    the lock that was fetched, byte for byte
      bundle.json             what is here and where each file came from

Files are downloaded (in parallel) into the shared content-addressed cache,
verified there, and then hard-linked (or copied, verifying again) into the
bundle. ``bundle.json`` is written last: a bundle without it is incomplete.
A bundle that already matches the lock is left untouched without any network.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from packaging.utils import canonicalize_name, parse_wheel_filename

from lockship import __version__
from lockship._fs import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    exclusive_lock,
    safe_join,
)
from lockship._urls import redact_url
from lockship.cache import Cache, default_cache_dir
from lockship.download import download_to_cache
from lockship.errors import BuildError, HashMismatchError, InputError, IntegrityError
from lockship.hashing import CHUNK, file_digest
from lockship.http import HttpClient
from lockship.lockfile import read_lock
from lockship.metadata import parse_core_metadata, read_wheel_metadata
from lockship.models import BuiltFrom, BundleFile, BundleRecord, Lock, LockedPackage
from lockship.pipconfig import IndexConfig
from lockship.sdists import build_env, build_wheel, source_date_epoch
from lockship.sign import SIGN_OUTPUTS
from lockship.targets import Target

__all__ = ["FetchReporter", "FetchRequest", "FetchResult", "fetch", "render_bundle_requirements"]



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


def fetch(request: FetchRequest, reporter: Optional[FetchReporter] = None) -> FetchResult:
    """Fill ``request.dest`` with exactly the files of the lock, verified.

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
    dest = request.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dest.parent / f".{dest.name}.lock", what=f"bundle {dest}", wait=0):
        cache = Cache(request.cache_dir or default_cache_dir())
        current = _complete_bundle(dest, lock, cache, include_self=request.include_self)
        if current is not None:
            reporter.started(len(current.files), 0, 0)
            return FetchResult(
                dest, current, 0, 0, 0, changed=False, seconds=time.monotonic() - started
            )
        http = HttpClient(request.index_config, pool_size=request.jobs, offline=request.offline)
        plan = [_Planned(p) for p in lock.packages]
        self_plan = []
        if request.include_self:
            from lockship.selfbundle import lock_self  # noqa: PLC0415

            self_plan = [_Planned(p) for p in lock_self(lock, request).packages]
        everything = plan + self_plan
        downloaded, downloaded_bytes = _download_all(
            everything, cache, http, request.jobs, reporter
        )
        built = _build_sdists(everything, cache, http, lock, request)
        for item in everything:
            _check_wheel_metadata(item)
            if item.package.artifact.kind == "sdist":
                reporter.file_done(item.wheel_name, "build")
        if request.include_self:
            from lockship.selfbundle import build_self  # noqa: PLC0415

            package, wheel, provenance = build_self(cache, lock, request)
            self_plan.append(_Planned(package, wheel, wheel, wheel.name, provenance))
            _check_wheel_metadata(self_plan[-1])
        record = _assemble(dest, lock, plan, request, self_plan)
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
            hint="pass the same --target (and --glibc/--musl/--macos) as when locking",
        )


def _complete_bundle(
    dest: Path, lock: Lock, cache: Cache, *, include_self: bool
) -> Optional[BundleRecord]:
    """The bundle's record if it already holds exactly this lock's files, else None.

    A file that is the very cache entry named by its sha256 (a hard link) was
    hashed when it entered the cache; any other file is hashed again here.
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
        cached = cache.file_path(item.sha256)
        linked = cached.exists() and os.path.samestat(stat, cached.stat())
        if not linked and file_digest(path)[0] != item.sha256:
            return None
    return record


def _check_wheel_metadata(item: _Planned) -> None:
    """Each wheel's own METADATA must name the locked project and version."""
    assert item.wheel is not None  # noqa: S101 - set by download/build
    package = item.package
    meta = parse_core_metadata(
        read_wheel_metadata(item.wheel, item.wheel_name), where=item.wheel_name
    )
    if meta.name != canonicalize_name(package.name) or str(meta.version) != package.version:
        raise IntegrityError(
            f"the wheel's METADATA says {meta.name} {meta.version}, "
            f"the lock says {package.name} {package.version}",
            where=item.wheel_name,
        )


# --- downloads ---------------------------------------------------------------------------


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
            artifact.url,
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
        if item.package.artifact.kind == "wheel":
            item.wheel = item.cache_file
            item.wheel_name = item.package.artifact.filename
    return len(missing), sum(i.package.artifact.size for i in missing)


# --- sdists --------------------------------------------------------------------------------


def _build_sdists(
    plan: Sequence[_Planned], cache: Cache, http: HttpClient, lock: Lock, request: FetchRequest
) -> int:
    epoch = source_date_epoch(lock.exclude_newer)
    env = build_env(request.index_config, source_date_epoch=epoch)
    built = 0
    for item in plan:
        artifact = item.package.artifact
        if artifact.kind != "sdist":
            continue
        assert item.cache_file is not None  # noqa: S101 - downloaded above
        wheel = cache.built_wheel(artifact.sha256)
        if wheel is None:
            if http.offline:
                raise BuildError(
                    "this sdist must be built and --offline forbids installing its build tools",
                    where=artifact.filename,
                    hint="run once online (lockship lock does it too) so the wheel is cached",
                )
            staging = cache.build_staging(artifact.sha256)
            result = build_wheel(item.cache_file, staging, env=env, what=artifact.filename)
            wheel = cache.store_built_wheel(
                artifact.sha256,
                result.path,
                {"backend": result.backend, "requires": list(result.requires),
                 "source_date_epoch": epoch},
            )
            built += 1
        _check_built_tags(wheel, request.target, artifact.filename)
        info = cache.build_info(artifact.sha256) or {}
        item.wheel = wheel
        item.wheel_name = wheel.name
        item.built_from = BuiltFrom(
            sdist_filename=artifact.filename,
            sdist_url=redact_url(artifact.url),
            sdist_sha256=artifact.sha256,
            sdist_size=artifact.size,
            build_backend=str(info.get("backend", "unknown")),
            build_requires=tuple(str(r) for r in info.get("requires", [])),
            source_date_epoch=int(info.get("source_date_epoch", epoch)),
        )
    return built


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


def _place(source: Path, dest: Path, sha256: str, size: int, *, verified: bool) -> None:
    """Put a cache file at ``dest`` (a hard link, else a copy), checking its bytes.

    :param verified: the source was hashed in this run already.
    :raises IntegrityError: when the cached copy is corrupt; it is removed from the
        cache, so the next run downloads it again.
    """
    if not verified:
        actual, _ = file_digest(source)
        if actual != sha256:
            source.unlink(missing_ok=True)
            raise IntegrityError(
                f"the cached copy had sha256 {actual}, expected {sha256}; it was removed "
                "from the cache",
                where=dest.name,
                hint="run lockship fetch again to download it anew",
            )
    if dest.exists():
        same = dest.stat()
        if (same.st_ino, same.st_dev) == (source.stat().st_ino, source.stat().st_dev):
            return
        if same.st_size == size and file_digest(dest)[0] == sha256:
            return
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        _copy_verified(source, tmp, sha256)
    tmp.replace(dest)


def _copy_verified(source: Path, dest: Path, sha256: str) -> None:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    with source.open("rb") as src, atomic_write(dest) as out:
        while True:
            block = src.read(CHUNK)
            if not block:
                break
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != sha256:
        dest.unlink(missing_ok=True)
        raise HashMismatchError(
            what=dest.name, url=None, expected_sha256=sha256, actual_sha256=digest.hexdigest()
        )


def render_bundle_requirements(lock: Lock, files: Sequence[BundleFile]) -> str:
    """The installable lock of a bundle: pins and hashes of exactly its wheels."""
    install = "python -m pip install --no-index --find-links wheels --require-hashes"
    lines = [
        f"# lockship bundle for {lock.target.name} ({lock.target.description}): install with",
        f"#   {install} -r requirements.txt",
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
    files = _place_all(wheels_dir, plan, lock_name)
    self_files = _place_all(wheels_dir, self_plan, lock_name)
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
        atomic_write_text(dest / SELF_REQUIREMENTS, render_bundle_requirements(lock, self_files))
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


def _place_all(wheels_dir: Path, plan: Sequence[_Planned], lock_name: str) -> list[BundleFile]:
    files: list[BundleFile] = []
    for item in plan:
        assert item.wheel is not None  # noqa: S101 - set by download/build
        package = item.package
        if item.built_from is None:
            sha256, size = package.artifact.sha256, package.artifact.size
        else:
            sha256, size = file_digest(item.wheel)
        # The name comes from the lock (and so from an index): it must not escape wheels/.
        target = safe_join(wheels_dir, item.wheel_name, what=lock_name)
        _place(item.wheel, target, sha256, size, verified=item.verified or bool(item.built_from))
        files.append(
            BundleFile(
                path=f"wheels/{item.wheel_name}",
                name=package.name,
                version=package.version,
                sha256=sha256,
                size=size,
                origin_url=redact_url(package.artifact.url),
                kind="built-wheel" if item.built_from else "wheel",
                built_from=item.built_from,
            )
        )
    return files
