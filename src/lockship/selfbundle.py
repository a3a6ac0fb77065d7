"""``fetch --include-self``: lockship and its dependencies, for the target, in the bundle.

The offline machine can then install lockship itself from the bundle, hash
checked, and use it to verify the next bundle. lockship's own requirements
(its installed metadata's Requires-Dist) are resolved for the bundle's target
with the bundle lock's exclude-newer, and fetched like any lock. lockship's own
wheel is built reproducibly from the source tree it was installed from (via an
sdist, so the provenance records the sdist's digest), or taken from the wheel
file it was installed from.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from packaging.requirements import Requirement

from lockship import __version__
from lockship._urls import url_to_path
from lockship.cache import Cache
from lockship.errors import BuildError, InputError
from lockship.hashing import file_digest
from lockship.inputs import InputRequirement, Inputs, Source
from lockship.models import Artifact, BuiltFrom, Lock, LockedPackage, source_date_epoch
from lockship.sdists import build_cached, build_env, build_key, built_from

if TYPE_CHECKING:
    from lockship.pipconfig import IndexConfig
    from lockship.targets import Target

__all__ = ["build_self", "lock_self"]

def lock_self(
    lock: Lock,
    *,
    target: Target,
    index_config: IndexConfig,
    offline: bool,
    jobs: int,
    cache_dir: Optional[Path],
) -> Lock:
    """lockship's runtime requirements, resolved for ``lock``'s target (in memory)."""
    requires = importlib.metadata.distribution("lockship").requires or []
    from lockship.lock import LockRequest  # noqa: PLC0415 - compile imports bundle
    from lockship.lock import lock as compile_lock  # noqa: PLC0415

    source = Source("lockship's own requirements", None)
    inputs = Inputs(requirements=tuple(InputRequirement(Requirement(r), source) for r in requires))
    with tempfile.TemporaryDirectory(prefix="lockship-self-") as tmp:
        (result,) = compile_lock(
            LockRequest(
                inputs=inputs,
                targets=(target,),
                index_config=index_config,
                output_dir=Path(tmp),
                exclude_newer=lock.exclude_newer,
                offline=offline,
                jobs=jobs,
                command="lockship fetch --include-self",
                cache_dir=cache_dir,
            )
        )
    return result.lock


def build_self(
    cache: Cache, lock: Lock, index_config: IndexConfig
) -> tuple[LockedPackage, Path, BuiltFrom]:
    """lockship's own wheel for the bundle: (its pin, the wheel, where it came from).

    :raises InputError: when lockship was not installed from a source tree.
    :raises BuildError: when the wheel cannot be built.
    """
    recorded = importlib.metadata.distribution("lockship").read_text("direct_url.json")
    direct = json.loads(recorded or "null")
    url = direct.get("url", "") if isinstance(direct, dict) else ""
    if not (isinstance(direct, dict) and "dir_info" in direct and url.startswith("file:")):
        raise InputError(
            "cannot include lockship itself: it was not installed from a source tree",
            where="--include-self",
            hint="install lockship with `pip install /path/to/lockship` (or -e) and fetch again",
        )
    source = Path(url_to_path(url))
    epoch = source_date_epoch(lock.exclude_newer)
    env = build_env(
        index_config, source_date_epoch=epoch, exclude_newer=lock.exclude_newer
    )
    with tempfile.TemporaryDirectory(prefix="lockship-self-sdist-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "build", "--sdist", "--outdir", tmp, str(source)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or len(sdists) != 1:
            log = (proc.stdout + proc.stderr).strip().splitlines()
            tail = " | ".join(line.strip() for line in log[-6:])
            raise BuildError(f"building lockship's sdist failed: {tail}", where=str(source))
        sdist = sdists[0]
        sha256, size = file_digest(sdist)
        key = build_key(sha256, env)
        wheel = build_cached(cache, sdist, key, env=env, what=sdist.name)
    origin = f"{url}{_git_commit(source)}"
    package = LockedPackage(
        name="lockship",
        version=__version__,
        artifact=Artifact(kind="sdist", filename=sdist.name, url=origin, sha256=sha256, size=size),
        via=("--include-self",),
    )
    provenance = built_from(
        cache, key, filename=sdist.name, url=origin, sha256=sha256, size=size, epoch=epoch
    )
    return package, wheel, provenance


def _git_commit(source: Path) -> str:
    """``#commit=<sha>`` of the source tree when it is a clean git checkout, else ''."""
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"#commit={head}" + ("+modified" if dirty else "")
