"""Which file of a release the target would install (pip's and unearth's "evaluator").

For one version of a project, every file on the index is checked against the
target and the options: yanked, ``--exclude-newer``, Requires-Python (the
index's ``requires-python``) against the target's full Python version, and the
``--hash`` values given. Of the usable files, the wheel whose best tag ranks
highest in the target's ordered tag list wins (then the highest build tag, then
the first file name); with no such wheel, an sdist (``.tar.gz`` first), unless
``--only-binary`` excludes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName

from lockship.index import DistFile
from lockship.targets import Target

if TYPE_CHECKING:
    from lockship.resolve import ResolveOptions

__all__ = ["FileChooser", "metadata_donor"]


class FileChooser:
    """Picks the one file of a version that the target would install."""

    def __init__(self, target: Target, options: ResolveOptions) -> None:
        self.target = target
        self.options = options
        self._python = target.python_full_version

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
            return sdists[0], None
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
