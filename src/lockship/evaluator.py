"""Which file of a release the target would install (pip's and unearth's "evaluator").

For one version of a project, every file on the index is checked against the
target and the options: yanked, ``--exclude-newer``, Requires-Python (the
index's ``requires-python``) against the target's full Python version, and the
``--hash`` values given. Of the usable files, the wheel whose best tag ranks
highest in the target's ordered tag list wins (then the highest build tag, then
the first file name); with no such wheel, an sdist (``.tar.gz`` first), unless
``--only-binary`` excludes it or, for a foreign target, it looks compiled
(``FileChooser.looks_compiled``; ``--allow-compiled-sdist`` keeps it).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName
from packaging.version import Version

from lockship.index import DistFile, IndexClient
from lockship.targets import Target

if TYPE_CHECKING:
    from lockship.resolve import ResolveOptions

__all__ = ["FileChooser", "metadata_donor"]


class FileChooser:
    """Picks the one file of a version that the target would install."""

    def __init__(
        self, target: Target, options: ResolveOptions, index: Optional[IndexClient] = None
    ) -> None:
        """:param index: where the other releases of a project are looked up, to tell
        whether an sdist looks compiled (see ``looks_compiled``); None skips that test."""
        self.target = target
        self.options = options
        self.index = index
        self._python = target.python_full_version
        self._nearest: dict[NormalizedName, Optional[tuple[Version, list[DistFile]]]] = {}

    def requires_python_ok(self, spec: Optional[str]) -> bool:
        if not spec:
            return True
        try:
            return SpecifierSet(spec).contains(self._python, prereleases=True)
        except InvalidSpecifier:
            return True  # pip ignores an invalid data-requires-python, and so do we

    def choose(
        self,
        name: NormalizedName,
        files: Sequence[DistFile],
        *,
        allow_yanked: bool,
        hashes: frozenset[str],
    ) -> tuple[Optional[DistFile], Optional[str]]:
        """Return (file, None) or (None, why no file fits)."""
        usable: list[DistFile] = []
        reasons: list[str] = []
        for dist in files:
            if dist.yanked is not None and not allow_yanked:
                reasons.append("yanked" + (f" ({dist.yanked})" if dist.yanked else ""))
                continue
            if self.options.exclude_newer is not None and not self._old_enough(dist):
                reasons.append("uploaded after --exclude-newer")
                continue
            if not self.requires_python_ok(dist.requires_python):
                reasons.append(
                    f"requires Python {dist.requires_python} "
                    f"(target has {self.target.python_full_version})"
                )
                continue
            if hashes and (dist.sha256 is None or f"sha256:{dist.sha256}" not in hashes):
                reasons.append("hash not among the --hash values given")
                continue
            usable.append(dist)
        best: Optional[tuple[int, tuple[Any, ...], str, DistFile]] = None  # rank, build, name
        wheel_tags: list[str] = []
        for dist in usable:
            if not dist.is_wheel:
                continue
            try:
                _, _, build, tags = dist.wheel_info()
            except ValueError:
                continue
            rank = self.target.best_rank(tags)
            if rank is None:
                wheel_tags.extend(sorted(str(t) for t in tags))
                continue
            # Best tag first; for equal tags the highest build tag wins, as in pip
            # (a wheel without one has the lowest, ()); then the first name, for determinism.
            if best is None or (rank, best[1], dist.filename) < (best[0], build, best[2]):
                best = (rank, build, dist.filename, dist)
        if best is not None:
            return best[3], None
        only_binary = ":all:" in self.options.only_binary or name in self.options.only_binary
        sdists = sorted(
            (d for d in usable if not d.is_wheel),
            key=lambda d: (not d.filename.endswith(".tar.gz"), d.filename),
        )
        if sdists and not only_binary:
            compiled = self._refuse_compiled(name, files)
            if compiled is None:
                return sdists[0], None
            return None, compiled
        if wheel_tags:
            shown = sorted(set(wheel_tags))
            more = f" and {len(shown) - 6} more" if len(shown) > 6 else ""
            return None, (
                f"no wheel for {self.target.name} (its wheels are tagged "
                f"{', '.join(shown[:6])}{more})"
                + ("; sdists are excluded by --only-binary" if sdists else "")
            )
        if sdists:
            return None, "only an sdist, and --only-binary excludes sdists"
        return None, "; ".join(sorted(set(reasons))) or "no usable file"

    def _refuse_compiled(self, name: NormalizedName, files: Sequence[DistFile]) -> Optional[str]:
        """Why an sdist may not stand for its release on this target (None: it may).

        ``lockship fetch`` builds an sdist for a foreign target only when the
        build gives a pure-Python wheel, so a compiled one would be locked only
        to be refused later. On ``host`` it builds anything.
        """
        if self.target.source == "host" or self.options.allow_compiled_sdist:
            return None
        evidence = self.looks_compiled(name, files)
        if evidence is None:
            return None
        return (
            f"only an sdist, which is most likely compiled ({evidence}), and `lockship fetch` "
            f"cannot build a compiled sdist for {self.target.name}; "
            "--allow-compiled-sdist locks it anyway"
        )

    def looks_compiled(self, name: NormalizedName, files: Sequence[DistFile]) -> Optional[str]:
        """Evidence that a release's sdist builds a platform wheel, or None.

        The heuristic: take the wheels of this release or, when it has none, of
        the newest other release that has wheels (the sdist of a release comes
        out before its wheels, or its wheels were never built for it). The sdist
        looks compiled when those wheels exist and none is pure (platform tag
        ``any``). A project with no wheel at all is taken to be pure Python, as
        fetch then builds it and checks the result.
        """
        wheels = [d for d in files if d.is_wheel]
        where = "its wheels are all platform-specific"
        if not wheels:
            if name not in self._nearest:  # the same answer for every wheel-less release
                self._nearest[name] = self._newest_wheels(name)
            found = self._nearest[name]
            if found is None:
                return None
            version, wheels = found
            where = f"the wheels of {name} {version} are all platform-specific"
        tags: list[Tag] = []
        for dist in wheels:
            try:
                tags.extend(dist.wheel_info()[3])
            except ValueError:
                continue
        if not tags or any(tag.platform == "any" for tag in tags):
            return None
        return where

    def _newest_wheels(self, name: NormalizedName) -> Optional[tuple[Version, list[DistFile]]]:
        if self.index is None:
            return None
        project = self.index.project(name)
        for version in sorted(project.versions(), reverse=True):
            wheels = [d for d in project.files(version) if d.is_wheel]
            if wheels:
                return version, wheels
        return None

    def later_patch(self, name: NormalizedName, files: Sequence[DistFile]) -> Optional[Version]:
        """The first later patch release of a short-name target's ``X.Y.0`` that gets a file.

        A short name stands for ``X.Y.0``, and Requires-Python such as
        ``!=3.9.0,!=3.9.1`` (cryptography 44+) excludes that alone. None when the
        release has a file for ``X.Y.0`` already, or for no patch up to ``X.Y.30``.
        """
        python = self._python
        if self.target.source != "short name" or python.micro != 0:
            return None
        if self.choose(name, files, allow_yanked=False, hashes=frozenset())[0] is not None:
            return None
        for micro in range(1, 31):
            later = copy.copy(self)
            later._python = Version(f"{python.major}.{python.minor}.{micro}")  # noqa: SLF001
            if later.choose(name, files, allow_yanked=False, hashes=frozenset())[0] is not None:
                return later._python  # noqa: SLF001
        return None

    def _old_enough(self, dist: DistFile) -> bool:
        uploaded = dist.upload_datetime()
        if uploaded is None:
            # Files with no upload time are kept only from local sources
            # (file:// indexes, find-links directories): the operator controls those.
            return dist.is_local
        assert self.options.exclude_newer is not None  # noqa: S101 - checked by the caller
        return uploaded <= self.options.exclude_newer


def metadata_donor(files: Sequence[DistFile]) -> Optional[DistFile]:
    """The wheel of a release whose metadata stands for the release's sdist."""
    wheels = [f for f in files if f.is_wheel and f.yanked is None]
    # Cheapest first: advertised PEP 658 metadata, then pure wheels (small), then any.
    wheels.sort(key=lambda f: (not f.has_metadata_file, "-none-any" not in f.filename, f.filename))
    return wheels[0] if wheels else None
