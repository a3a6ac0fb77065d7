"""Requirements in, one lock per target out.

One HTTP client, cache, index client and metadata fetcher serve every target
of a run, so a project's page and a file's metadata are fetched once even
when several targets need them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol
from urllib.parse import unquote, urlsplit

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from lockship import __version__
from lockship._compat import tomllib
from lockship._urls import has_query, public_url, redact_url
from lockship.cache import Cache, default_cache_dir
from lockship.errors import InputError, LockshipError
from lockship.hashing import file_digest
from lockship.index import IndexClient
from lockship.inputs import Inputs, merge_inputs, read_pyproject, read_requirements
from lockship.inputs.conda import is_environment_file, read_environment
from lockship.lockfile import lock_paths, read_lock, render_requirements, write_lock
from lockship.metadata import MetadataFetcher, metadata_digest, read_headers
from lockship.models import (
    Artifact,
    InputFile,
    Lock,
    LockedPackage,
    LockSettings,
    TargetInfo,
    source_date_epoch,
)
from lockship.origins import (
    KNOWN_FILE_HOSTS,
    find_listed,
    location_root,
    lock_problems,
    lock_sources,
    source_config,
    under,
)
from lockship.pipconfig import IndexConfig
from lockship.resolve import Resolution, ResolveOptions, Root, resolve
from lockship.targets import Target

if TYPE_CHECKING:
    from lockship.http import HttpClient

__all__ = [
    "LockReporter",
    "LockRequest",
    "Session",
    "TargetResult",
    "canonical_only_binary",
    "gather_inputs",
    "lock",
    "open_session",
]



class LockReporter(Protocol):
    """Progress callbacks; the CLI draws them, the library never prints."""

    def target_started(self, target: Target) -> None: ...
    def target_finished(self, result: TargetResult) -> None: ...
    def warning(self, message: str) -> None: ...


class _QuietReporter:
    def target_started(self, target: Target) -> None:
        pass

    def target_finished(self, result: TargetResult) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class LockRequest:
    inputs: Inputs
    targets: tuple[Target, ...]
    index_config: IndexConfig
    output_dir: Path = Path("locks")
    exclude_newer: Optional[datetime] = None
    pre: bool = False
    only_binary: frozenset[str] = frozenset()
    allow_compiled_sdist: bool = False  # lock sdists that look compiled for a foreign target
    upgrade: frozenset[str] = frozenset()
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    offline: bool = False
    refresh: bool = False
    jobs: int = 16
    command: str = "lockship lock"
    check: bool = False
    reuse: bool = False  # keep a lock whose inputs did not change, without resolving
    cache_dir: Optional[Path] = None
    inputs_base: Optional[Path] = None  # inputs are recorded relative to it (None: the cwd)


class Session:
    """The HTTP client, cache, index client and metadata memo of one run.

    Every target of a ``lock`` (several ``--target``) or a ``run`` (several
    targets) shares them, so a project's page is read and a file's metadata
    parsed once per run, not once per target. The HTTP client and what needs it
    are made on first use: keeping unchanged locks needs neither, nor the
    network stack's imports.
    """

    def __init__(
        self,
        index_config: IndexConfig,
        *,
        cache_dir: Optional[Path],
        offline: bool,
        refresh: bool,
        jobs: int,
        exclude_newer: Optional[datetime],
    ) -> None:
        self.index_config = index_config
        self.exclude_newer = exclude_newer
        self.cache = Cache(cache_dir or default_cache_dir())
        self._offline, self._refresh, self._jobs = offline, refresh, jobs

    @functools.cached_property
    def http(self) -> HttpClient:
        from lockship.http import HttpClient  # noqa: PLC0415 - urllib3 and ssl, on first use

        return HttpClient(self.index_config, pool_size=max(4, self._jobs), offline=self._offline)

    @functools.cached_property
    def index(self) -> IndexClient:
        return IndexClient(
            self.http, self.cache, self.index_config, refresh=self._refresh,
            exclude_newer=self.exclude_newer,
        )

    @functools.cached_property
    def metadata(self) -> MetadataFetcher:
        from lockship.sdists import build_env  # noqa: PLC0415

        env = build_env(
            self.index_config, source_date_epoch=source_date_epoch(self.exclude_newer),
            exclude_newer=self.exclude_newer,
        )
        return MetadataFetcher(self.http, self.cache, build_env=env)

    def close(self) -> None:
        """Close the HTTP client's connections, if it was made."""
        if "http" in self.__dict__:
            self.http.close()


@contextlib.contextmanager
def open_session(
    index_config: IndexConfig,
    *,
    cache_dir: Optional[Path] = None,
    offline: bool = False,
    refresh: bool = False,
    jobs: int = 16,
    exclude_newer: Optional[datetime] = None,
) -> Iterator[Session]:
    """One run's session; its connections are closed on exit."""
    session = Session(
        index_config, cache_dir=cache_dir, offline=offline, refresh=refresh, jobs=jobs,
        exclude_newer=exclude_newer,
    )
    try:
        yield session
    finally:
        session.close()


def _session_for(
    request: LockRequest, session: Optional[Session]
) -> contextlib.AbstractContextManager[Session]:
    """``session`` when it was opened with ``request``'s settings, else a new one."""
    if session is not None:
        if (session.index_config, session.exclude_newer) != (
            request.index_config, request.exclude_newer
        ):
            msg = "a session serves requests with its own index settings and --exclude-newer"
            raise ValueError(msg)
        return contextlib.nullcontext(session)
    return open_session(
        request.index_config, cache_dir=request.cache_dir, offline=request.offline,
        refresh=request.refresh, jobs=request.jobs, exclude_newer=request.exclude_newer,
    )


@dataclass(frozen=True)
class TargetResult:
    target: Target
    lock: Lock
    txt_path: Path
    pylock_path: Path
    changed: bool  # the files on disk differ (or differed, with --check) from this lock
    seconds: float
    reasons: tuple[str, ...] = ()  # with --check: why the lock is out of date

    @property
    def sdists(self) -> int:
        return sum(1 for p in self.lock.packages if p.artifact.kind == "sdist")


def gather_inputs(
    requirement_files: Sequence[Path],
    constraint_files: Sequence[Path] = (),
    *,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
    base: Path = Path(),
) -> Inputs:
    """Read the requirement inputs; with none given, ``requirements.in``, ``pyproject.toml``
    or ``requirements.txt`` (the first that exists). ``.yml``/``.yaml`` files are
    conda environments (``lockship.inputs.conda``).

    :param base: directory the default files are looked for in.
    :raises InputError: when there is nothing to read, or a file is malformed.
    """
    files = list(requirement_files)
    notes: tuple[str, ...] = ()
    if not files:
        for default in ("requirements.in", "pyproject.toml", "requirements.txt"):
            if (base / default).is_file():
                files = [base / default]
                break
        else:
            raise InputError(
                "no inputs found",
                where=str(base.resolve()),
                hint="pass -r requirements.in, or create requirements.in, a pyproject.toml "
                "or a requirements.txt",
            )
        if files[0].name == "requirements.txt":
            notes = (f"no requirements.in or pyproject.toml: locking {_display(files[0])}",)
    parts = [Inputs(notes=notes)]
    parts.extend(
        read_environment(f, _display(f)) for f in files if is_environment_file(f)
    )
    plain = [f for f in files if f.name != "pyproject.toml" and not is_environment_file(f)]
    if plain or constraint_files:
        parts.append(read_requirements(plain, constraints=constraint_files))
    parts.extend(
        read_pyproject(f, extras=extras, all_extras=all_extras, groups=groups)
        for f in files
        if f.name == "pyproject.toml"
    )
    return merge_inputs(*parts)


def _display(path: Path, base: Optional[Path] = None) -> str:
    """An input as recorded: relative to ``base`` (a pipeline's), or to the cwd when under it."""
    if base is not None:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _roots(inputs: Inputs, base: Optional[Path]) -> list[Root]:
    roots = []
    for item in inputs.requirements:
        if item.requirement.url:
            local = item.requirement.url.startswith("file:")
            raise InputError(
                f"direct URL requirement {item.requirement} cannot be locked by name and hash",
                where=str(item.source),
                hint=(
                    "pip freeze writes `name @ file://...` for a package installed from a local "
                    "file or directory: build its wheel, put it in a --find-links directory and "
                    f"write {item.requirement.name}==VERSION instead"
                    if local
                    else f"download the file into a directory, pass -f DIR, and require "
                    f"{item.requirement.name} by name"
                ),
            )
        path = item.source.path if base is None else _display(Path(item.source.path), base)
        label = path if path.endswith("pyproject.toml") else f"-r {path}"
        roots.append(Root(item.requirement, label, item.hashes))
    return roots


def _target_info(target: Target) -> TargetInfo:
    return TargetInfo(
        name=target.name,
        description=target.description,
        floor=target.floor,
        python_full_version=target.marker_environment["python_full_version"],
        marker_environment=dict(sorted(target.marker_environment.items())),
        tags_sha256=target.tags_sha256,
        tags_count=len(target.tags),
        source=target.source if target.source in ("short name", "host") else "probe file",
    )


def canonical_only_binary(values: Iterable[str]) -> frozenset[str]:
    """``--only-binary`` names canonicalized, however the CLI, pyproject or pipeline spelled them.

    It is a security control (no build code runs for these projects), so
    ``DocOpt`` must mean ``docopt`` wherever it was written.
    """
    return frozenset(
        name if name.startswith(":") else canonicalize_name(name)
        for name in values
        if name != ":none:"
    )


def _settings(request: LockRequest) -> LockSettings:
    config = request.index_config
    return LockSettings(
        indexes=tuple(redact_url(u) for u in config.indexes),
        find_links=tuple(redact_url(u) for u in config.find_links),
        index_strategy=config.strategy.value,
        pre=request.pre,
        only_binary=tuple(sorted(canonical_only_binary(request.only_binary))),
        extras=tuple(sorted(request.extras)),
        groups=tuple(sorted(request.groups)),
    )


def _previous_pins(path: Path, target: Target) -> dict[NormalizedName, Version]:
    """Pins of an existing lock, preferred on re-lock (pip-compile's behaviour).

    None from a lock made for another environment (a new --python-version or
    floor): its pins answered a different question.
    """
    if not path.is_file():
        return {}
    try:
        previous = read_lock(path)
    except InputError:
        return {}  # an unreadable old lock is simply replaced
    info = _target_info(target)
    if (previous.target.marker_environment, previous.target.tags_sha256) != (
        info.marker_environment, info.tags_sha256
    ):
        return {}
    # Versions were parsed by packaging.pylock when the lock was read.
    return {NormalizedName(p.name): Version(p.version) for p in previous.packages}


def _build_lock(
    resolution: Resolution,
    *,
    target: Target,
    inputs: tuple[InputFile, ...],
    settings: LockSettings,
    request: LockRequest,
    metadata: MetadataFetcher,
) -> Lock:
    packages = []
    for package in resolution.packages:
        sha256, size = metadata.digest(package.dist)
        dist = package.dist
        rp = package.metadata.requires_python
        packages.append(
            LockedPackage(
                name=package.name,
                version=str(package.version),
                artifact=Artifact(
                    kind="wheel" if dist.is_wheel else "sdist",
                    filename=dist.filename,
                    url=public_url(dist.url),
                    sha256=sha256,
                    size=size,
                    upload_time=dist.upload_datetime(),
                    query_removed=has_query(dist.url),
                ),
                index=dist.origin or None,
                requires_python=str(rp) if rp is not None else dist.requires_python,
                extras=tuple(package.extras),
                dependencies=package.dependencies,
                via=package.via,
                metadata_sha256=package.metadata.sha256,
            )
        )
    urls = {str(p.name): p.dist.url for p in resolution.packages}
    return Lock(
        lockship_version=__version__,
        target=_target_info(target),
        inputs=inputs,
        exclude_newer=request.exclude_newer,
        settings=settings,
        command=request.command,
        fingerprint="",
        packages=tuple(packages),
        sources=lock_sources(packages, settings, urls=urls),
    ).fingerprinted()


def check_lock(
    request: LockRequest,
    target: Target,
    *,
    inputs: tuple[InputFile, ...],
    settings: LockSettings,
    lister: Optional[Lister] = None,
) -> TargetResult:
    """Compare a target's lock on disk with its inputs and sources, without resolving.

    :param inputs: the digests of ``request``'s input files, computed once per run.
    :param lister: asks an index whether it lists a file (see ``_unproven``);
        None checks only what needs no network.
    :raises InputError: when there is no readable lock.
    """
    started = time.monotonic()
    txt, toml = lock_paths(request.output_dir, target.name)
    current = read_lock(toml)
    reasons = stale_reasons(
        current,
        inputs=inputs,
        target=_target_info(target),
        exclude_newer=request.exclude_newer,
        settings=settings,
    )
    rendered = render_requirements(current).encode("utf-8")
    if not txt.is_file() or txt.read_bytes() != rendered:
        reasons.append(f"{txt} does not match {toml.name} (edited by hand, or missing)")
    if current.fingerprint != current.computed_fingerprint():
        reasons.append("the fingerprint does not match the lock's contents (edited by hand?)")
    # Only sources that are the configured ones are asked about the pins.
    configured = current.settings == settings
    reasons += _unproven(current, lister if configured else None)
    return TargetResult(
        target, current, txt, toml, bool(reasons), time.monotonic() - started,
        reasons=tuple(reasons),
    )


def stale_reasons(
    lock: Lock,
    *,
    inputs: tuple[InputFile, ...],
    target: TargetInfo,
    exclude_newer: Optional[datetime],
    settings: LockSettings,
) -> list[str]:
    """Why ``lock`` no longer matches these inputs (empty when it does)."""
    reasons = []
    old = {i.path: i.sha256 for i in lock.inputs}
    new = {i.path: i.sha256 for i in inputs}
    reasons += [f"input {p} changed" for p in sorted(old.keys() & new.keys()) if old[p] != new[p]]
    reasons += [f"input {p} is new" for p in sorted(new.keys() - old.keys())]
    reasons += [f"input {p} is no longer used" for p in sorted(old.keys() - new.keys())]
    if lock.target.marker_environment != target.marker_environment:
        reasons.append("the target's marker environment differs")
    if lock.target.tags_sha256 != target.tags_sha256:
        reasons.append("the target's wheel tags differ")
    if lock.exclude_newer != exclude_newer:
        reasons.append("--exclude-newer differs")
    before, after = lock.settings.model_dump(), settings.model_dump()
    reasons += [
        f"{key.replace('_', '-')} differs ({before[key]} -> {after[key]})"
        for key in sorted(before)
        if before[key] != after[key]
    ]
    return reasons


class Lister(Protocol):
    """Says why a source does not list a locked file (None: it does)."""

    def __call__(self, package: LockedPackage) -> Optional[str]: ...


def _unproven(lock: Lock, lister: Optional[Lister]) -> list[str]:
    """Why pins of ``lock`` could not have come from its sources (the configured ones).

    A file under its source's own root (or PyPI's file host), with its name at
    the end of its URL, is proven by where it lies. Any other file must be
    listed by its source, which ``lister`` asks (one page per project, cached).
    """
    reasons = []
    flagged = set()
    for package, kind, problem in lock_problems(lock):
        url = package.artifact.url
        if kind == "unlisted":
            problem = f"{url} is not under a configured index or find-links location"  # noqa: PLW2901
        reasons.append(f"{package.name} {package.version}: {problem}")
        flagged.add(package.name)
    sources = {s.url: s for s in lock.sources}
    for package in lock.packages:
        if package.name in flagged:
            continue
        url, source = package.artifact.url, sources[package.index or ""]
        own = (location_root(source.url, source.kind), *KNOWN_FILE_HOSTS.get(source.url, ()))
        named = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) == package.artifact.filename
        if named and any(under(url, prefix) for prefix in own):
            continue
        unlisted = lister(package) if lister is not None else None
        if unlisted is not None:
            reasons.append(f"{package.name} {package.version}: {unlisted}")
    return reasons


def _index_lister(request: LockRequest, session: Session) -> Lister:
    """A Lister over the configured sources (their pages cached as for locking)."""
    http, cache = session.http, session.cache
    clients: dict[str, IndexClient] = {}

    def lister(package: LockedPackage) -> Optional[str]:
        origin, artifact = package.index or "", package.artifact
        if origin not in clients:
            config = source_config(request.index_config, origin)
            if config is None:
                return f"its origin {origin} is not a configured index or find-links location"
            clients[origin] = IndexClient(
                http, cache, config, refresh=request.refresh, exclude_newer=request.exclude_newer
            )
        if find_listed(clients[origin], package) is not None:
            return None
        return (
            f"{origin} does not list {artifact.filename} with sha256 {artifact.sha256} "
            f"at {artifact.url}"
        )

    return lister


def _metadata_corrected(lock: Lock, cache: Cache) -> bool:
    """Does the cache now hold other metadata for a pinned file than the lock was
    resolved from? (fetch corrects the cache when a file's own METADATA differs
    from what a range read gave; the lock must then be resolved again.)
    """
    for package in lock.packages:
        data = cache.get_metadata(package.artifact.sha256)
        if data is not None and package.metadata_sha256 and (
            metadata_digest(read_headers(data)) != package.metadata_sha256
        ):
            return True
    return False


PYPROJECT_SCOPE = "dependency tables"


def input_file(path: Path, base: Optional[Path] = None) -> InputFile:
    """An input's digest: the whole file, or a pyproject.toml's dependency tables."""
    if path.name != "pyproject.toml":
        return InputFile(path=_display(path, base), sha256=file_digest(path)[0])
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    project = document.get("project", {})
    relevant = {
        "name": project.get("name"),
        "dependencies": project.get("dependencies"),
        "optional-dependencies": project.get("optional-dependencies"),
        "dependency-groups": document.get("dependency-groups"),
    }
    encoded = json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()
    return InputFile(
        path=_display(path, base), sha256=hashlib.sha256(encoded).hexdigest(), scope=PYPROJECT_SCOPE
    )


def _input_files(request: LockRequest) -> tuple[InputFile, ...]:
    return tuple(input_file(p, request.inputs_base) for p in request.inputs.files)


def lock(
    request: LockRequest,
    reporter: Optional[LockReporter] = None,
    *,
    session: Optional[Session] = None,
) -> list[TargetResult]:
    """Lock ``request.inputs`` for every target (or check the locks with ``request.check``).

    :param session: the run's session (``open_session``), shared by the
        requests of one run; None opens one for this call.
    :raises LockshipError: the first target's failure, with what and where.
    """
    if not request.targets:
        raise InputError("no target given", where="--target", hint="e.g. --target linux-cp39")
    if request.index_config.constraints:  # pip's ``constraint``: files, as pip reads them
        pip_constraints = [Path(c) for c in request.index_config.constraints]
        more = read_requirements([], constraints=pip_constraints)
        request = replace(request, inputs=merge_inputs(request.inputs, more))
    with _session_for(request, session) as opened:
        return _lock(request, reporter or _QuietReporter(), opened)


def _lock(request: LockRequest, reporter: LockReporter, session: Session) -> list[TargetResult]:
    inputs = _input_files(request)
    settings = _settings(request)
    if request.check:
        lister = _index_lister(request, session)
        return [
            check_lock(request, target, inputs=inputs, settings=settings, lister=lister)
            for target in request.targets
        ]
    roots = _roots(request.inputs, request.inputs_base)
    if not roots:
        raise InputError(
            "no requirements to lock",
            where=", ".join(_display(p) for p in request.inputs.files) or "inputs",
            hint="list packages in requirements.in or [project] dependencies",
        )
    constraints: list[Requirement] = [c.requirement for c in request.inputs.constraints]
    results = []
    for target in request.targets:
        reporter.target_started(target)
        started = time.monotonic()
        txt, toml = lock_paths(request.output_dir, target.name)
        if request.reuse and toml.is_file():
            try:
                kept = check_lock(request, target, inputs=inputs, settings=settings)
            except InputError:
                kept = None  # unreadable: lock afresh
            if kept is not None and not kept.changed and not _metadata_corrected(
                kept.lock, session.cache
            ):
                reporter.target_finished(kept)
                results.append(kept)
                continue
        options = ResolveOptions(
            exclude_newer=request.exclude_newer,
            pre=request.pre,
            only_binary=canonical_only_binary(request.only_binary),
            allow_compiled_sdist=request.allow_compiled_sdist,
            prefer=_previous_pins(toml, target),
            upgrade=request.upgrade,
            jobs=request.jobs,
        )
        try:
            resolution = resolve(
                roots,
                constraints=constraints,
                target=target,
                index=session.index,
                metadata=session.metadata,
                options=options,
            )
        except LockshipError as exc:
            if exc.where is None:
                exc.where = target.name
            raise
        for warning in resolution.warnings:
            reporter.warning(f"{target.name}: {warning}")
        new = _build_lock(
            resolution, target=target, inputs=inputs, settings=settings, request=request,
            metadata=session.metadata,
        )
        changed = write_lock(new, request.output_dir)
        result = TargetResult(target, new, txt, toml, changed, time.monotonic() - started)
        reporter.target_finished(result)
        results.append(result)
    return results


