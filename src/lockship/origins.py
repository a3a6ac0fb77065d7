"""Where a lock's files come from: under which index or find-links location each lies.

A lock records its sources (``Lock.sources``): each index or find-links location
that gave it a file, with the URL prefixes its files lie under. A file's
origin is read from its URL, never from the lock's ``origin``/``index`` field
alone, so a hand-edited lock cannot send a package to another host without it
showing:

* ``lock_problems`` checks that a lock agrees with itself (fetch refuses a
  lock that does not, and ``diff`` shows each problem as a red flag);
* ``lock --check`` (in ``lock.py``) also checks that the sources are the
  configured ones, and asks an index about any file that lies outside the
  index's own root and its known file host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from lockship._urls import public_url, redact_url
from lockship.index import DistFile, IndexClient
from lockship.models import Lock, LockedPackage, LockSettings, LockSource
from lockship.pipconfig import IndexConfig

__all__ = [
    "KNOWN_FILE_HOSTS",
    "filename_problem",
    "find_listed",
    "location_root",
    "lock_problems",
    "lock_sources",
    "origin_of",
    "source_config",
    "under",
]

# Indexes whose files live on another host, as pip's models/index.py records for PyPI.
KNOWN_FILE_HOSTS: Mapping[str, tuple[str, ...]] = {
    "https://pypi.org/simple/": ("https://files.pythonhosted.org/",),
    "https://test.pypi.org/simple/": ("https://test-files.pythonhosted.org/",),
}


def _normal(url: str) -> str:
    """Scheme and host in lower case (they are case-insensitive), the rest as given."""
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :] if parts.netloc else ""
    if not parts.netloc:
        return url
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{rest}"


def under(url: str, prefix: str) -> bool:
    """Tell whether ``url`` lies under ``prefix`` (which ends with ``/``).

    A path with ``.`` or ``..`` segments (encoded or not) lies under nothing:
    the server would resolve it somewhere else.
    """
    path = urlsplit(url).path
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return False
    return _normal(public_url(url)).startswith(_normal(prefix))


def location_root(location: str, kind: Literal["index", "find-links"]) -> str:
    """The prefix a location's own files lie under, ending in ``/``.

    An index's URL without its last ``simple/`` (or devpi's ``+simple/``)
    segment: ``https://host/simple/`` gives ``https://host/``, and a static
    mirror's ``file:///srv/pypi/simple`` gives ``file:///srv/pypi/``. A
    find-links directory (a path or ``file:`` URL) is the directory itself; a
    find-links page, the directory of the page.
    """
    url = public_url(location)
    if "://" not in url:
        return Path(url).resolve().as_uri().rstrip("/") + "/"
    if kind == "find-links":
        if url.startswith("file:") and Path(unquote(urlsplit(url).path)).is_dir():
            return url.rstrip("/") + "/"
        return url.rsplit("/", 1)[0] + "/"
    parts = url.rstrip("/").rsplit("/", 1)
    if len(parts) == 2 and parts[1] in ("simple", "+simple") and urlsplit(parts[0]).netloc:
        return parts[0] + "/"
    return url.rstrip("/") + "/"


def _file_location(root: str, url: str) -> str:
    """The prefix recorded for a file: the location's root, else the file's host or directory."""
    if under(url, root):
        return root
    parts = urlsplit(public_url(url))
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}/"
    return public_url(url).rsplit("/", 1)[0] + "/"


def _kind(origin: str, settings: LockSettings) -> Literal["index", "find-links"]:
    return "index" if origin in settings.indexes else "find-links"


def lock_sources(
    packages: Iterable[LockedPackage], settings: LockSettings, *, urls: Mapping[str, str]
) -> tuple[LockSource, ...]:
    """The sources of these packages, in the order of the settings.

    :param urls: each package's file URL as the index gave it, by package name
        (the artifact's URL has its query string removed).
    """
    found: dict[str, set[str]] = {}
    for package in packages:
        origin = package.index or ""
        root = location_root(origin, _kind(origin, settings))
        found.setdefault(origin, set()).add(_file_location(root, urls[package.name]))
    order = {url: i for i, url in enumerate((*settings.indexes, *settings.find_links))}
    ranked = sorted(found.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return tuple(
        LockSource(url=url, kind=_kind(url, settings), file_locations=tuple(sorted(prefixes)))
        for url, prefixes in ranked
    )


def origin_of(url: str, sources: Sequence[LockSource], claimed: Optional[str]) -> Optional[str]:
    """The source whose file locations ``url`` lies under (``claimed`` among several)."""
    candidates = [s.url for s in sources if any(under(url, p) for p in s.file_locations)]
    if claimed in candidates:
        return claimed
    return candidates[0] if candidates else None


def _version_or_none(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def filename_problem(package: LockedPackage) -> Optional[str]:
    """Why the file's name does not belong to the package's name and version, if it does not."""
    filename, wanted = package.artifact.filename, (package.name, Version(package.version))
    if filename.endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            name, version = canonicalize_name(""), None
        if (name, version) == wanted:
            return None
    else:
        stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
        # Legacy sdist names: any dash may end the name ("python-dateutil-2.8.2").
        for i, char in enumerate(stem):
            name_part, version_part = stem[:i], stem[i + 1 :]
            named = char == "-" and canonicalize_name(name_part) == package.name
            if named and _version_or_none(version_part) == wanted[1]:
                return None
    return f"{filename} is not a file name of {package.name} {package.version}"


Problem = tuple[LockedPackage, Literal["filename", "unlisted", "elsewhere", "unconfigured"], str]


def lock_problems(lock: Lock) -> list[Problem]:
    """Where a lock disagrees with itself, as (package, kind, message).

    Every file's name must be its package's, its origin must be one of the
    lock's settings, and its URL must lie under a file location that the lock
    records for that origin. A lock that lockship wrote has none of these
    problems.
    """
    configured = {*lock.settings.indexes, *lock.settings.find_links}
    problems: list[Problem] = []
    for package in lock.packages:
        url = package.artifact.url
        bad_name = filename_problem(package)
        if bad_name:
            problems.append((package, "filename", bad_name))
        origin = origin_of(url, lock.sources, package.index)
        if origin is None:
            message = f"{url} is not under any index or find-links location the lock records"
            problems.append((package, "unlisted", message))
        elif origin != package.index:
            message = (
                f"{url} is under {origin}, not under {package.index} "
                "that the lock names as its origin"
            )
            problems.append((package, "elsewhere", message))
        elif origin not in configured:
            message = f"its origin {origin} is not in the lock's settings"
            problems.append((package, "unconfigured", message))
    return problems


# --- asking a source -------------------------------------------------------------------------


def source_config(config: IndexConfig, origin: str) -> Optional[IndexConfig]:
    """``config`` reduced to the one configured index or find-links location ``origin`` names."""
    for url in config.indexes:
        if redact_url(url) == origin:
            return replace(
                config, index_url=url, extra_index_urls=(), find_links=(), no_index=False
            )
    for url in config.find_links:
        if redact_url(url) == origin:
            return replace(config, extra_index_urls=(), find_links=(url,), no_index=True)
    return None


def find_listed(client: IndexClient, package: LockedPackage) -> Optional[DistFile]:
    """The file as the source lists it now (with its query string), if it lists it.

    It must have the locked name, URL (compared without query string) and,
    when the source gives one, sha256.
    """
    artifact = package.artifact
    project = client.project(canonicalize_name(package.name))
    for dist in project.files(Version(package.version)):
        if (
            dist.filename == artifact.filename
            and public_url(dist.url) == artifact.url
            and dist.sha256 in (None, artifact.sha256)
        ):
            return dist
    return None
