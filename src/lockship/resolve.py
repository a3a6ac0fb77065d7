"""Resolve requirements for one target with resolvelib.

Everything is evaluated for the *target*, never for the interpreter running
lockship:

- environment markers (top-level, transitive, and ``extra == ...``) against
  the target's PEP 508 environment;
- Requires-Python (the index's ``requires-python`` and the metadata's) against
  the target's full Python version;
- each version is represented by exactly one file: the wheel whose best tag
  ranks highest in the target's ordered tag list (then the highest build
  tag), else an sdist that fetch can build for the target
  (``lockship.evaluator``).

A prefetcher walks the dependency graph ahead of the resolver on a thread
pool, so index pages and metadata are usually in memory by the time the
resolver asks for them.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import RequirementInformation, ResolutionImpossible, ResolutionTooDeep

from lockship.errors import LockshipError, ResolutionError
from lockship.evaluator import FileChooser, metadata_donor
from lockship.index import DistFile, IndexClient, Project
from lockship.metadata import CoreMetadata, MetadataError, MetadataFetcher
from lockship.targets import Target

__all__ = [
    "Candidate",
    "Resolution",
    "ResolveOptions",
    "ResolvedPackage",
    "Root",
    "resolve",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Root:
    """A top-level requirement and where it was written (for ``# via``)."""

    requirement: Requirement
    source: str  # e.g. "-r requirements.in" or "pyproject.toml"
    hashes: tuple[str, ...] = ()  # "sha256:<hex>" allowed for this project, if any


@dataclass(frozen=True)
class ResolveOptions:
    exclude_newer: Optional[datetime] = None
    pre: bool = False
    only_binary: frozenset[str] = frozenset()  # canonical names, or ":all:"
    allow_compiled_sdist: bool = False  # see evaluator.looks_compiled
    prefer: Mapping[NormalizedName, Version] = field(default_factory=dict)  # previous pins
    upgrade: frozenset[str] = frozenset()  # names to not prefer, or ":all:"
    jobs: int = 16


@dataclass(frozen=True)
class Req:
    identifier: str
    name: NormalizedName
    extras: frozenset[NormalizedName]
    specifier: SpecifierSet
    source: Optional[str] = None  # set on top-level requirements only

    @property
    def is_pinned(self) -> bool:
        return any(s.operator in ("==", "===") and "*" not in s.version for s in self.specifier)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class Candidate:
    identifier: str
    name: NormalizedName
    extras: frozenset[NormalizedName]
    version: Version
    dist: DistFile
    metadata: CoreMetadata

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class ResolvedPackage:
    name: NormalizedName
    version: Version
    dist: DistFile
    metadata: CoreMetadata
    extras: tuple[NormalizedName, ...]
    dependencies: tuple[NormalizedName, ...]
    via: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    packages: tuple[ResolvedPackage, ...]
    warnings: tuple[str, ...]


def _identifier(name: NormalizedName, extras: Iterable[str]) -> str:
    extras = sorted(canonicalize_name(e) for e in extras)
    return f"{name}[{','.join(extras)}]" if extras else name


def _split_identifier(identifier: str) -> tuple[NormalizedName, frozenset[NormalizedName]]:
    name, _, rest = identifier.partition("[")
    extras = frozenset(NormalizedName(e) for e in rest.rstrip("]").split(",") if e)
    return NormalizedName(name), extras


# --- the provider --------------------------------------------------------------


class Provider(AbstractProvider[Req, Candidate, str]):
    def __init__(
        self,
        *,
        target: Target,
        index: IndexClient,
        metadata: MetadataFetcher,
        options: ResolveOptions,
        constraints: Mapping[NormalizedName, SpecifierSet],
        hashes: Mapping[NormalizedName, frozenset[str]],
        pool: ThreadPoolExecutor,
    ) -> None:
        self.target = target
        self.env = dict(target.marker_environment)
        self.index = index
        self.metadata = metadata
        self.options = options
        self.constraints = constraints
        self.hashes = hashes
        self.prefetch = Prefetcher(pool, self)
        self.chooser = FileChooser(target, options, index)
        self.rejections: dict[NormalizedName, dict[Version, str]] = {}
        # Warnings about what the resolver looked at, by (identifier, version);
        # only those about the final pins are reported (see ``_final_warnings``).
        self.warnings: dict[tuple[str, Version], list[str]] = {}
        self._lock = threading.Lock()
        self._satisfied: dict[int, tuple[SpecifierSet, dict[Version, bool]]] = {}
        self._sorted: dict[NormalizedName, list[Version]] = {}
        self._releases: dict[Version, SpecifierSet] = {}
        self._ordered: dict[
            tuple[NormalizedName, frozenset[int]],
            tuple[tuple[SpecifierSet, ...], list[Version], list[Version]],
        ] = {}
        self._prereleases: dict[int, tuple[SpecifierSet, bool]] = {}
        self._matching_by_id: dict[tuple[NormalizedName, int], tuple[SpecifierSet, set[Version]]]
        self._matching_by_id = {}
        self._matching: dict[tuple[NormalizedName, SpecifierSet], set[Version]] = {}
        # Backtracking asks for the same candidates and their dependencies again
        # and again (ipython[all]: 11,573 get_dependencies calls for ~1,000
        # candidates); everything below depends only on its key and the target,
        # so it is computed once per resolution.
        self._made: dict[tuple[str, Version, bool], Optional[Candidate]] = {}
        self._dependencies: dict[tuple[str, Version], list[Req]] = {}
        self._applies_memo: dict[tuple[int, frozenset[NormalizedName]], tuple[Marker, bool]] = {}
        self._marker_results: dict[tuple[str, frozenset[NormalizedName]], bool] = {}

    # resolvelib API ------------------------------------------------------------

    def identify(self, requirement_or_candidate: Any) -> str:
        return str(requirement_or_candidate.identifier)

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],  # noqa: ARG002 - resolvelib passes it by name
        candidates: Mapping[str, Iterator[Candidate]],  # noqa: ARG002
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> Any:
        infos = list(information[identifier])
        pinned = any(info.requirement.is_pinned for info in infos)
        direct = any(info.parent is None for info in infos)
        causes = {c.requirement.name for c in backtrack_causes}
        causes |= {c.parent.name for c in backtrack_causes if c.parent is not None}
        name, _ = _split_identifier(identifier)
        return (not pinned, name not in causes, not direct, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        name, extras = _split_identifier(identifier)
        reqs = list(requirements[identifier])
        specifiers = [req.specifier for req in reqs]
        if name in self.constraints:
            specifiers.append(self.constraints[name])
        bad = {c.version for c in incompatibilities[identifier]}
        allow_yanked = any(r.is_pinned for r in reqs)
        project = self.index.project(name)

        def candidates() -> Iterator[Candidate]:
            yield from self._candidates(
                identifier, project, extras, specifiers, bad, allow_yanked=allow_yanked
            )

        return candidates

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        # resolvelib re-checks every pin against every requirement each round;
        # SpecifierSet.contains is slow enough for that to dominate a warm lock.
        # Keyed by the specifier object's identity (hashing a SpecifierSet
        # canonicalizes it, which costs as much as the check); the entry keeps
        # the object alive so its id cannot be reused.
        spec = requirement.specifier
        entry = self._satisfied.get(id(spec))
        if entry is None:
            entry = self._satisfied[id(spec)] = (spec, {})
        hit = entry[1].get(candidate.version)
        if hit is None:
            hit = entry[1][candidate.version] = spec.contains(candidate.version, prereleases=True)
        return hit

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        key = (candidate.identifier, candidate.version)
        deps = self._dependencies.get(key)
        if deps is None:
            deps = self._dependencies[key] = self._compute_dependencies(candidate)
        return deps

    def _compute_dependencies(self, candidate: Candidate) -> list[Req]:
        deps: list[Req] = []
        if candidate.extras:
            # An extras candidate depends on its base at the very same version.
            base = self._same_release(candidate.version)
            deps.append(Req(candidate.name, candidate.name, frozenset(), base))
            missing = candidate.extras - candidate.metadata.provides_extra
            if missing:
                self._warn(
                    candidate.identifier, candidate.version,
                    f"{candidate} does not provide the extra(s) {', '.join(sorted(missing))}",
                )
        for requirement in candidate.metadata.requires_dist:
            if not self._applies(requirement.marker, candidate.extras):
                continue
            name = canonicalize_name(requirement.name)
            specifier = requirement.specifier
            if name == candidate.name:
                if not requirement.extras:
                    continue  # a self-reference adds nothing
                # ipython[all] requires ipython[doc,test,...]: the very release, since
                # only one can be installed. Saying so spares the resolver every
                # other release of each such extras set (thousands of pairs).
                specifier = self._same_release(candidate.version) & specifier
            req = Req(
                _identifier(name, requirement.extras),
                name,
                frozenset(canonicalize_name(e) for e in requirement.extras),
                specifier,
            )
            deps.append(req)
            self.prefetch(name, requirement.specifier)
        return deps

    # helpers -------------------------------------------------------------------

    def _same_release(self, version: Version) -> SpecifierSet:
        """``==version``, one object per version (the memos key specifiers by identity)."""
        specifier = self._releases.get(version)
        if specifier is None:
            specifier = self._releases[version] = SpecifierSet(f"=={version}")
        return specifier

    def _applies(self, marker: Optional[Marker], extras: frozenset[NormalizedName]) -> bool:
        """Does a Requires-Dist marker hold on the target, for the base or these extras?

        Memoized twice: by the marker object's identity (the metadata is
        memoized, so the same objects come back on every backtrack; the entry
        keeps the marker alive, so its id cannot be reused), then by its text,
        which releases of a project mostly share.
        """
        if marker is None:
            return not extras  # unconditional deps belong to the base candidate
        key = (id(marker), extras)
        hit = self._applies_memo.get(key)
        if hit is None:
            text = (str(marker), extras)
            result = self._marker_results.get(text)
            if result is None:
                result = self._marker_results[text] = self._evaluate(marker, extras)
            hit = self._applies_memo[key] = (marker, result)
        return hit[1]

    def _evaluate(self, marker: Marker, extras: frozenset[NormalizedName]) -> bool:
        if not extras:
            return marker.evaluate({**self.env, "extra": ""})
        return any(marker.evaluate({**self.env, "extra": e}) for e in extras) and not (
            marker.evaluate({**self.env, "extra": ""})
        )

    def _warn(self, identifier: str, version: Version, message: str) -> None:
        with self._lock:
            messages = self.warnings.setdefault((identifier, version), [])
            if message not in messages:
                messages.append(message)

    def _reject(self, name: NormalizedName, version: Version, reason: str) -> None:
        with self._lock:
            self.rejections.setdefault(name, {}).setdefault(version, reason)

    def _prefer_first(self, name: NormalizedName, versions: list[Version]) -> list[Version]:
        preferred = self.options.prefer.get(name)
        upgrade = self.options.upgrade
        if preferred is None or ":all:" in upgrade or name in upgrade or preferred not in versions:
            return versions
        return [preferred, *[v for v in versions if v != preferred]]

    def _candidates(
        self,
        identifier: str,
        project: Project,
        extras: frozenset[NormalizedName],
        specifiers: Sequence[SpecifierSet],
        bad: set[Version],
        *,
        allow_yanked: bool,
    ) -> Iterator[Candidate]:
        finals, pres = self._ordered_versions(project, specifiers)
        if bad:
            finals = [v for v in finals if v not in bad]
            pres = [v for v in pres if v not in bad]
        yielded = False
        for group in (self._prefer_first(project.name, finals), pres):
            if yielded:
                return  # pre-releases only when no final release fits (pip's rule)
            for version in group:
                key = (identifier, version, allow_yanked)
                if key in self._made:
                    candidate = self._made[key]
                else:
                    candidate = self._made[key] = self.make_candidate(
                        identifier, project.name, extras, version, project.files(version),
                        allow_yanked=allow_yanked,
                    )
                if candidate is not None:
                    yielded = True
                    yield candidate

    def _ordered_versions(
        self, project: Project, specifiers: Sequence[SpecifierSet]
    ) -> tuple[list[Version], list[Version]]:
        """(final releases, pre-releases) of ``project`` in every one of ``specifiers``,
        newest first; the pre-releases are empty when the finals may include them.

        Cached by the specifiers' identities, in any order (the entry keeps them
        alive): the same requirement objects meet again on every backtrack.
        """
        key = (project.name, frozenset(id(s) for s in specifiers))
        hit = self._ordered.get(key)
        if hit is not None:
            return hit[1], hit[2]
        ordered = self._sorted.get(project.name)
        if ordered is None:
            ordered = self._sorted[project.name] = sorted(project.versions(), reverse=True)
        # Smallest set first: with a pin among them, the intersection is one version.
        sets = sorted((self._matching_versions(project, s) for s in specifiers), key=len)
        if not sets:
            versions = ordered
        else:
            allowed = sets[0].intersection(*sets[1:])
            small = len(allowed) * 8 < len(ordered)
            versions = (
                sorted(allowed, reverse=True) if small else [v for v in ordered if v in allowed]
            )
        # What SpecifierSet intersection would say: pre-releases are in when a
        # specifier names one (or --pre).
        allow_pre = self.options.pre or any(self._names_prerelease(s) for s in specifiers)
        finals = [v for v in versions if allow_pre or not v.is_prerelease]
        pres = [v for v in versions if not allow_pre and v.is_prerelease]
        self._ordered[key] = (tuple(specifiers), finals, pres)
        return finals, pres

    def _names_prerelease(self, specifier: SpecifierSet) -> bool:
        """``specifier.prereleases``, once per specifier object (a slow property)."""
        hit = self._prereleases.get(id(specifier))
        if hit is None:
            hit = self._prereleases[id(specifier)] = (specifier, bool(specifier.prereleases))
        return hit[1]

    def _matching_versions(self, project: Project, specifier: SpecifierSet) -> set[Version]:
        """The versions of ``project`` in ``specifier``, computed once per specifier.

        Looked up by the object's identity first (the requirements of memoized
        metadata come back on every backtrack; the entry keeps the object alive),
        then by value: hashing a SpecifierSet canonicalizes it, which costs less
        than matching it against hundreds of versions again.
        """
        by_id = self._matching_by_id.get((project.name, id(specifier)))
        if by_id is not None:
            return by_id[1]
        key = (project.name, specifier)
        found = self._matching.get(key)
        if found is None:
            found = self._matching[key] = {
                v for v in project.versions() if specifier.contains(v, prereleases=True)
            }
        self._matching_by_id[(project.name, id(specifier))] = (specifier, found)
        return found

    def make_candidate(
        self,
        identifier: str,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        version: Version,
        files: Sequence[DistFile],
        *,
        allow_yanked: bool,
    ) -> Optional[Candidate]:
        dist, why = self.chooser.choose(
            name, files, allow_yanked=allow_yanked,
            hashes=self.hashes.get(name, frozenset()),
        )
        if dist is None:
            self._reject(name, version, why or "no usable file")
            return None
        # An sdist chosen because no wheel fits this target: its dependencies are
        # read from a wheel of the same release for another platform when there is
        # one (as uv does), instead of compiling the project just to learn them.
        # Platform differences are expressed by markers, evaluated for the target.
        source = dist if dist.is_wheel else (metadata_donor(files) or dist)
        try:
            meta = self.metadata.get(source)
        except MetadataError as exc:
            self._warn(name, version, f"ignoring {name} {version}: {exc}")
            self._reject(name, version, str(exc))
            return None
        if meta.name != name or meta.version != version:  # sdists: not checked by metadata
            reason = f"{dist.filename}: its metadata says {meta.name} {meta.version}"
            self._warn(name, version, f"ignoring {name} {version}: {reason}")
            self._reject(name, version, reason)
            return None
        if meta.requires_python is not None and not meta.requires_python.contains(
            self.target.python_full_version, prereleases=True
        ):
            self._reject(
                name,
                version,
                f"requires Python {meta.requires_python} "
                f"(target has {self.target.python_full_version})",
            )
            return None
        return Candidate(identifier, name, extras, version, dist, meta)


# --- prefetching -----------------------------------------------------------------


class Prefetcher:
    """Speculatively fetch index pages and metadata along the dependency graph."""

    def __init__(self, pool: ThreadPoolExecutor, provider: Provider) -> None:
        self.pool = pool
        self.provider = provider
        self._seen: set[tuple[NormalizedName, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, name: NormalizedName, specifier: SpecifierSet) -> None:
        key = (name, str(specifier))
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        self.pool.submit(self._run, name, specifier)

    def _run(self, name: NormalizedName, specifier: SpecifierSet) -> None:
        provider = self.provider
        try:
            project = provider.index.project(name)
            candidate = next(
                provider._candidates(  # noqa: SLF001 - same module
                    name, project, frozenset(), [specifier], set(), allow_yanked=False
                ),
                None,
            )
            if candidate is None:
                return
            for requirement in candidate.metadata.requires_dist:
                if provider._applies(requirement.marker, frozenset()):  # noqa: SLF001
                    self(canonicalize_name(requirement.name), requirement.specifier)
        except LockshipError:
            return  # the resolver meets the same error (memoized) if it needs this


# --- entry point ----------------------------------------------------------------


def resolve(
    roots: Sequence[Root],
    *,
    constraints: Sequence[Requirement],
    target: Target,
    index: IndexClient,
    metadata: MetadataFetcher,
    options: ResolveOptions,
    reporter: Optional[BaseReporter[Req, Candidate, str]] = None,
) -> Resolution:
    """Resolve ``roots`` for ``target``.

    :raises ResolutionError: with an explanation of the conflict for this target.
    """
    env = {**target.marker_environment, "extra": ""}
    active = [
        r for r in roots if r.requirement.marker is None or r.requirement.marker.evaluate(env)
    ]
    constraint_specs: dict[NormalizedName, SpecifierSet] = {}
    for c in constraints:
        if c.marker is None or c.marker.evaluate(env):
            name = canonicalize_name(c.name)
            constraint_specs[name] = constraint_specs.get(name, SpecifierSet()) & c.specifier
    hashes: dict[NormalizedName, frozenset[str]] = {}
    for root in active:
        if root.hashes:
            name = canonicalize_name(root.requirement.name)
            hashes[name] = hashes.get(name, frozenset()) | frozenset(root.hashes)
    reqs = [
        Req(
            _identifier(canonicalize_name(r.requirement.name), r.requirement.extras),
            canonicalize_name(r.requirement.name),
            frozenset(canonicalize_name(e) for e in r.requirement.extras),
            r.requirement.specifier,
            source=r.source,
        )
        for r in active
    ]
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        provider = Provider(
            target=target,
            index=index,
            metadata=metadata,
            options=options,
            constraints=constraint_specs,
            hashes=hashes,
            pool=pool,
        )
        for req in reqs:
            limit = constraint_specs.get(req.name, SpecifierSet())
            provider.prefetch(req.name, req.specifier & limit)
        resolver: Resolver[Req, Candidate, str] = Resolver(provider, reporter or BaseReporter())
        try:
            result = resolver.resolve(reqs, max_rounds=20000)
        except ResolutionImpossible as exc:
            raise _explain(exc, provider, target) from None
        except ResolutionTooDeep:
            raise ResolutionError(
                "the resolver gave up after too many rounds of backtracking",
                where=target.name,
                hint="add tighter version bounds or constraints (-c) to guide it",
            ) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return _collect(result, provider)


def _collect(result: Any, provider: Provider) -> Resolution:
    by_name: dict[NormalizedName, list[Candidate]] = {}
    for candidate in result.mapping.values():
        by_name.setdefault(candidate.name, []).append(candidate)
    parents: dict[NormalizedName, set[str]] = {}
    for identifier, criterion in result.criteria.items():
        name, _ = _split_identifier(identifier)
        for info in criterion.information:
            if info.parent is None:
                parents.setdefault(name, set()).add(info.requirement.source or "-r")
            elif info.parent.name != name:
                parents.setdefault(name, set()).add(info.parent.name)
    packages = []
    for name in sorted(by_name):
        candidates = by_name[name]
        base = next((c for c in candidates if not c.extras), candidates[0])
        if not base.dist.is_wheel:
            _warn_compiled_sdist(provider, base)
        _warn_patch_excluded(provider, base)
        extras = sorted({e for c in candidates for e in c.extras})
        deps = sorted(
            {
                canonicalize_name(r.name)
                for c in candidates
                for r in c.metadata.requires_dist
                if provider._applies(r.marker, c.extras)  # noqa: SLF001 - same module
                and canonicalize_name(r.name) in by_name
                and canonicalize_name(r.name) != name
            }
        )
        packages.append(
            ResolvedPackage(
                name=name,
                version=base.version,
                dist=base.dist,
                metadata=base.metadata,
                extras=tuple(extras),
                dependencies=tuple(deps),
                via=tuple(sorted(parents.get(name, set()), key=_via_order)),
            )
        )
    return Resolution(tuple(packages), _final_warnings(provider.warnings, result.mapping))


def _final_warnings(
    warnings: Mapping[tuple[str, Version], list[str]], final: Mapping[str, Candidate]
) -> tuple[str, ...]:
    """The warnings that concern the lock, each once: about a final pin, or about
    a skipped (unusable) version of a pinned project ("ignoring ...").

    The candidates backtracking tried and dropped are not the lock's business
    (ipython[all] would print some 480 lines about releases it does not pin).
    """
    pinned = {c.name for c in final.values()}
    out: list[str] = []
    for (identifier, version), messages in sorted(warnings.items()):
        name, _ = _split_identifier(identifier)
        chosen = final.get(identifier)
        for message in messages:
            keep = (chosen is not None and chosen.version == version) or (
                name in pinned and message.startswith("ignoring ")
            )
            if keep and message not in out:
                out.append(message)
    return tuple(out)


def _warn_compiled_sdist(provider: Provider, candidate: Candidate) -> None:
    """Say at lock time what fetch will refuse: building a compiled project here."""
    files = provider.index.project(candidate.name).files(candidate.version)
    target = provider.target
    if target.source != "host" and provider.chooser.looks_compiled(candidate.name, files):
        provider._warn(  # noqa: SLF001 - same module
            candidate.name, candidate.version,
            f"{candidate} has no wheel for {target.name}, only an sdist, and its wheels are "
            "all platform-specific: it is most likely compiled, and `lockship fetch` will "
            "refuse to build it for this target. Pin a version with a wheel for the target, "
            "give the real glibc with --glibc or a probe file, or build it on a machine like "
            "the target and add it with --find-links"
        )


def _warn_patch_excluded(provider: Provider, candidate: Candidate) -> None:
    """Say when a newer release was passed over only because a short name means X.Y.0."""
    rejected = provider.rejections.get(candidate.name, {})
    project = provider.index.project(candidate.name)
    for version in sorted((v for v in rejected if v > candidate.version), reverse=True):
        if not rejected[version].startswith("requires Python"):
            continue
        patch = provider.chooser.later_patch(candidate.name, project.files(version))
        if patch is None:
            continue
        target = provider.target
        provider._warn(  # noqa: SLF001 - same module
            candidate.name, candidate.version,
            f"{candidate.name} {version} {rejected[version]}, so {candidate} was locked: "
            f"{target.name} stands for Python {target.python_full_version}, and a target on "
            f"{patch} or later gets {candidate.name} {version}. Pass --python-version with the "
            f"target's real version (e.g. --python-version {patch}) or use its probe file"
        )
        return


def _via_order(parent: str) -> tuple[bool, str]:
    return (not parent.startswith("-"), parent)  # "-r file" entries first, as pip-tools does


def _explain(
    exc: ResolutionImpossible[Req, Candidate], provider: Provider, target: Target
) -> ResolutionError:
    lines: list[str] = []
    names: list[NormalizedName] = []
    for info in exc.causes:
        req: Req = info.requirement
        who = str(info.parent) if info.parent is not None else (req.source or "the inputs")
        lines.append(f"{req} (required by {who})")
        if req.name not in names:
            names.append(req.name)
    notes: list[str] = []
    for name in names:
        rejected = provider.rejections.get(name, {})
        notes.extend(
            f"{name} {version}: {rejected[version]}"
            for version in sorted(rejected, reverse=True)[:3]
        )
        if len(rejected) > 3:
            notes.append(f"{len(rejected) - 3} older versions of {name} were checked too")
        if rejected:
            newest = _newest_fitting(provider, name)
            notes.append(
                f"newest {name} usable on {target.name}: {', '.join(newest)}"
                if newest
                else f"no version of {name} is usable on {target.name}"
            )
        elif not provider.index.project(name).exists:
            close = _close_names(name, provider.index.project_names())
            notes.append(
                f"{name} was not found on any configured index or find-links location"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
            )
        else:
            newest = _newest_fitting(provider, name, count=5)
            notes.append(
                f"no version of {name} matches; the newest for {target.name}: {', '.join(newest)}"
                if newest
                else f"no version of {name} is usable on {target.name}"
            )
    unique = list(dict.fromkeys(lines))
    subject = ", ".join(names)
    message = f"cannot satisfy {subject} for {target.name} ({target.description}): " + "; ".join(
        unique
    )
    if notes:
        message += ". " + "; ".join(dict.fromkeys(notes))
    return ResolutionError(message, where=target.name, hint=_hint(notes))


def _close_names(name: NormalizedName, names: list[str]) -> list[str]:
    """Up to three index names like ``name`` (difflib), among names of about its length.

    The length window (3 characters either way) keeps PyPI's ~900,000 names
    to a second of work; a typo rarely changes a name's length more.
    """
    near = {
        canonicalize_name(n) for n in names if abs(len(n) - len(name)) <= 3
    }
    return difflib.get_close_matches(name, sorted(near - {name}), n=3)


def _hint(notes: list[str]) -> Optional[str]:
    text = " ".join(notes)
    if "requires Python" in text:
        return "pin an older version that supports the target's Python, or choose a newer target"
    if "most likely compiled" in text:
        return (
            "pin a version with a wheel for this target, use a probe file of the real target, "
            "or build it on a machine like the target and pass --allow-compiled-sdist"
        )
    if "did you mean" in text:
        return "check the spelling of the project name"
    if "no version of" in text and "matches" in text:
        return "relax the version specifier to one of the versions listed"
    if "no wheel for" in text:
        return "pin a version with a wheel for this target, or use a probe file of the real target"
    return None


def _newest_fitting(provider: Provider, name: NormalizedName, count: int = 1) -> list[str]:
    """The newest ``count`` versions of ``name`` with a file for the target."""
    project = provider.index.project(name)
    found: list[str] = []
    for version in sorted(project.versions(), reverse=True):
        if version.is_prerelease and not provider.options.pre:
            continue
        dist, _ = provider.chooser.choose(
            name, project.files(version), allow_yanked=False, hashes=frozenset()
        )
        if dist is not None:
            found.append(str(version))
            if len(found) == count:
                break
    return found
