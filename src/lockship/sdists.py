"""Source distributions: static metadata, safe extraction, isolated wheel builds.

An sdist whose PKG-INFO is Metadata-Version 2.2+ and does not mark
Requires-Dist or Requires-Python as Dynamic has static metadata (PEP 643), so
no build is needed to lock it. Otherwise, and to produce the wheel that
crosses the air gap, the sdist is built with ``python -m build --wheel`` in an
isolated environment that uses lockship's own index settings, with
``SOURCE_DATE_EPOCH`` set so the wheel is reproducible.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from lockship._fs import fsync_dir, safe_join
from lockship.cache import Cache
from lockship.errors import BuildError, InputError
from lockship.models import BuiltFrom
from lockship.pipconfig import IndexConfig

__all__ = [
    "BuiltWheel",
    "build_cached",
    "build_env",
    "build_key",
    "build_wheel",
    "built_from",
    "extract_sdist",
    "read_pkg_info",
    "static_pkg_info",
]

_MAX_PKG_INFO = 16 * 1024 * 1024
def _top_dir_member(names: list[str], leaf: str) -> Optional[str]:
    matches = [n for n in names if n.count("/") == 1 and n.endswith("/" + leaf)]
    return min(matches) if matches else None


def read_pkg_info(path: Path) -> Optional[bytes]:
    """The sdist's top-level PKG-INFO, or None if it has none."""
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                member = _top_dir_member(archive.namelist(), "PKG-INFO")
                if member is None:
                    return None
                with archive.open(member) as handle:
                    return handle.read(_MAX_PKG_INFO)
        with tarfile.open(path, "r:*") as archive:
            names = [m.name.lstrip("./") for m in archive.getmembers()]
            member = _top_dir_member(names, "PKG-INFO")
            if member is None:
                return None
            for info in archive.getmembers():
                if info.name.lstrip("./") == member and info.isfile():
                    extracted = archive.extractfile(info)
                    return extracted.read(_MAX_PKG_INFO) if extracted is not None else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise BuildError(f"unreadable sdist: {exc}", where=path.name) from None
    return None


def static_pkg_info(data: bytes) -> bool:
    """Tell whether PKG-INFO can be trusted for dependencies without a build (PEP 643)."""
    text = data.decode("utf-8", "replace")
    version = ""
    dynamic: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            break  # end of headers
        key, _, value = line.partition(":")
        if key.lower() == "metadata-version":
            version = value.strip()
        elif key.lower() == "dynamic":
            dynamic.add(value.strip().lower())
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 2) and not ({"requires-dist", "requires-python"} & dynamic)


def extract_sdist(path: Path, dest: Path, *, what: Optional[str] = None) -> Path:
    """Extract an sdist under ``dest`` refusing links, devices and escaping names.

    :param what: names the sdist in messages (default: the file's name, which in
        the cache is its sha256).
    :returns: the project directory (the archive's single top-level directory).
    """
    what = what or path.name
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for entry in archive.infolist():
                    target = safe_join(dest, entry.filename.rstrip("/"), what=what)
                    if entry.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(entry) as src, target.open("wb") as out:
                        shutil.copyfileobj(src, out)
        else:
            with tarfile.open(path, "r:*") as archive:
                for info in archive.getmembers():
                    name = info.name.lstrip("./") if info.name.startswith("./") else info.name
                    if not name:
                        continue
                    target = safe_join(dest, name.rstrip("/"), what=what)
                    if info.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif info.isfile():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        member = archive.extractfile(info)
                        if member is None:
                            continue
                        with member, target.open("wb") as out:
                            shutil.copyfileobj(member, out)
                        target.chmod(0o755 if info.mode & 0o111 else 0o644)
                    else:
                        raise InputError(
                            f"refusing link or special file {info.name!r}", where=what
                        )
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise BuildError(f"cannot extract sdist: {exc}", where=what) from None
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BuildError("sdist does not have exactly one top-level directory", where=what)
    return tops[0]


def build_env(
    config: IndexConfig, *, source_date_epoch: int, exclude_newer: Optional[datetime] = None
) -> dict[str, str]:
    """Environment for the isolated build: lockship's indexes, not the host's defaults.

    :param exclude_newer: the lock's cut-off; the build environment is then
        installed from what the indexes had at that time (pip's
        ``--uploaded-prior-to``), so the same lock builds with the same tools.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    # Everything pip needs is passed explicitly; the host's pip.conf must not add
    # indexes or find-links that lockship was told not to use.
    env["PIP_CONFIG_FILE"] = os.devnull
    env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if exclude_newer is not None:
        env["PIP_UPLOADED_PRIOR_TO"] = exclude_newer.astimezone(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    if config.no_index or not config.indexes:
        env["PIP_NO_INDEX"] = "1"
    else:
        env["PIP_INDEX_URL"] = config.indexes[0]
        if len(config.indexes) > 1:
            env["PIP_EXTRA_INDEX_URL"] = " ".join(config.indexes[1:])
    if config.find_links:
        env["PIP_FIND_LINKS"] = " ".join(config.find_links)
    if config.trusted_hosts:
        env["PIP_TRUSTED_HOST"] = " ".join(config.trusted_hosts)
    if config.cert:
        env["PIP_CERT"] = config.cert
    return env


def build_key(sdist_sha256: str, env: Mapping[str, str]) -> str:
    """The cache key of a wheel built from this sdist in this environment (sha256 hex).

    It covers what goes into the build: the sdist's bytes (and so its backend
    and build requirements), SOURCE_DATE_EPOCH, the cut-off the build
    environment is installed up to (``PIP_UPLOADED_PRIOR_TO``), the interpreter
    that runs the build, the build frontend's and pip's versions and lockship's
    build driver. The index the build tools come from is not part of it: the
    exact environment they made is recorded beside the wheel (``build.json``)
    and in the bundle, so a wheel built at lock time serves fetch too.
    """
    document = {
        "sdist": sdist_sha256,
        "source_date_epoch": env.get("SOURCE_DATE_EPOCH"),
        "uploaded_prior_to": env.get("PIP_UPLOADED_PRIOR_TO"),
        "python": [sys.implementation.name, platform.python_version(), sys.platform,
                   platform.machine()],
        "frontend": [_version_of("build"), _version_of("pip")],
        "driver": hashlib.sha256(_DRIVER.encode()).hexdigest(),
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


# Runs in a child process so the build sees only the environment we give it, and
# reports what the isolated environment really contained (the provenance).
_DRIVER = """
import json, subprocess, sys
from build import ProjectBuilder
from build.env import DefaultIsolatedEnv
src, out = sys.argv[1], sys.argv[2]
with DefaultIsolatedEnv() as env:
    builder = ProjectBuilder.from_isolated_env(env, src)
    env.install(builder.build_system_requires)
    env.install(builder.get_requires_for_build("wheel"))
    listing = "import importlib.metadata as m; print(*sorted(set(" \\
        "d.metadata['Name'] + '==' + d.version for d in m.distributions())))"
    frozen = subprocess.run(
        [env.python_executable, "-c", listing],
        stdout=subprocess.PIPE, universal_newlines=True, check=True,
    ).stdout.split()
    wheel = builder.build("wheel", out)
    try:
        import tomllib
    except ImportError:  # Python < 3.11: build itself depends on tomli
        import tomli as tomllib
    try:
        with open(src + "/pyproject.toml", "rb") as f:
            system = tomllib.load(f).get("build-system", {})
    except OSError:
        system = {}
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    print("LOCKSHIP-BUILD:" + json.dumps({"wheel": wheel, "backend": backend, "requires": frozen}))
"""


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    backend: str
    requires: tuple[str, ...]  # name==version of everything in the isolated environment


def build_wheel(sdist: Path, out_dir: Path, *, env: Mapping[str, str], what: str) -> BuiltWheel:
    """Build ``sdist`` into one wheel in ``out_dir`` in an isolated environment.

    :raises BuildError: with the tail of the build log when the build fails.
    """
    with tempfile.TemporaryDirectory(prefix="lockship-build-") as tmp:
        project_dir = extract_sdist(sdist, Path(tmp) / "src", what=what)
        wheel_dir = Path(tmp) / "wheel"
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(project_dir), str(wheel_dir)],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        output = proc.stdout.decode("utf-8", "replace")
        result = [line for line in output.splitlines() if line.startswith("LOCKSHIP-BUILD:")]
        if proc.returncode != 0 or not result:
            log = [line.strip() for line in output.splitlines() if line.strip()]
            raise BuildError(
                f"building a wheel from the sdist failed: {' | '.join(log[-6:]) or 'no output'}",
                where=what,
                hint="pick a version that has wheels, or build it on a machine like the target",
            )
        info = json.loads(result[-1].split(":", 1)[1])
        out_dir.mkdir(parents=True, exist_ok=True)
        built = Path(info["wheel"])
        final = out_dir / built.name
        shutil.move(str(built), final)
        fsync_dir(out_dir)
        return BuiltWheel(final, str(info["backend"]), tuple(sorted(info["requires"])))


def build_cached(
    cache: Cache, sdist: Path, key: str, *, env: Mapping[str, str], what: str
) -> Path:
    """The wheel built from ``sdist`` under build ``key``: from ``cache``, else built now
    and stored there with what its provenance needs (``built_from``)."""
    wheel = cache.built_wheel(key)
    if wheel is not None:
        return wheel
    built = build_wheel(sdist, cache.build_staging(key), env=env, what=what)
    record = {
        "backend": built.backend,
        "requires": list(built.requires),
        "source_date_epoch": int(env.get("SOURCE_DATE_EPOCH", "0")),
    }
    return cache.store_built_wheel(key, built.path, record)


def built_from(
    cache: Cache, key: str, *, filename: str, url: str, sha256: str, size: int, epoch: int
) -> BuiltFrom:
    """The provenance of the wheel built under ``key`` from the sdist named here."""
    info = cache.build_info(key) or {}
    return BuiltFrom(
        sdist_filename=filename,
        sdist_url=url,
        sdist_sha256=sha256,
        sdist_size=size,
        build_backend=str(info.get("backend", "unknown")),
        build_requires=tuple(str(r) for r in info.get("requires", [])),
        source_date_epoch=int(info.get("source_date_epoch", epoch)),
    )
