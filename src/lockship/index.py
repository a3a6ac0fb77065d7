"""Simple repository API client: PEP 691 JSON, PEP 503 HTML, find-links.

A project's files are gathered from the configured indexes according to the
index strategy (by default a project comes only from the *first* index that
has it: the dependency-confusion guard), plus any find-links locations.

Pages are parsed into compact records and grouped by version without parsing
every filename: a project like botocore has thousands of files, and only the
few versions the resolver looks at need their wheel tags parsed.
"""

from __future__ import annotations

import html.parser
import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, Optional
from urllib.parse import quote, unquote, urljoin, urlsplit

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from lockship._memo import Memo
from lockship._urls import redact_url, split_credentials, url_to_path
from lockship.cache import Cache
from lockship.config import IndexConfig, IndexStrategy
from lockship.errors import NetworkError
from lockship.http import HttpClient

__all__ = ["DistFile", "IndexClient", "Project", "parse_html_page", "parse_json_page"]

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
SDIST_SUFFIXES = (".tar.gz", ".zip")


class DistFile(NamedTuple):
    """One file of a project as an index or find-links location lists it.

    A NamedTuple because a large project has thousands of files and they are
    rebuilt from the page cache on every run.
    """

    filename: str
    url: str  # absolute, credentials stripped
    sha256: Optional[str] = None
    size: Optional[int] = None
    requires_python: Optional[str] = None
    yanked: Optional[str] = None  # None: not yanked; otherwise the reason ("" if none given)
    upload_time: Optional[str] = None  # ISO 8601, as the index gave it
    metadata_sha256: Optional[str] = None  # PEP 658/714 core metadata: None absent, "" no hash
    origin: str = ""  # the index or find-links location it came from (no credentials)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    @property
    def has_metadata_file(self) -> bool:
        return self.metadata_sha256 is not None

    def wheel_info(self) -> tuple[NormalizedName, Version, BuildTag, frozenset[Tag]]:
        return parse_wheel_filename(self.filename)

    def upload_datetime(self) -> Optional[datetime]:
        if not self.upload_time:
            return None
        try:
            parsed = datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    def to_record(self) -> list[Any]:
        return list(self[:8])

    @classmethod
    def from_record(cls, origin: str, record: Sequence[Any]) -> DistFile:
        filename, url, sha256, size, requires_python, yanked, upload, meta = record[:8]
        return cls(filename, url, sha256, size, requires_python, yanked, upload, meta, origin)


class Project:
    """All files of one project, grouped by version (versions parsed lazily)."""

    def __init__(
        self, name: NormalizedName, files: Iterable[tuple[str, DistFile]], origins: tuple[str, ...]
    ) -> None:
        self.name = name
        self.origins = origins  # indexes/find-links locations that contributed files
        self._texts: dict[str, list[DistFile]] = {}
        for text, dist in files:
            self._texts.setdefault(text, []).append(dist)
        self._by_version: Optional[dict[Version, list[DistFile]]] = None

    @property
    def files(self) -> list[DistFile]:
        return [dist for dists in self._texts.values() for dist in dists]

    def by_version(self) -> dict[Version, list[DistFile]]:
        if self._by_version is None:
            parsed: dict[Version, list[DistFile]] = {}
            for text, dists in self._texts.items():
                version = _parse_version(text)
                if version is not None:
                    parsed.setdefault(version, []).extend(dists)
            self._by_version = parsed
        return self._by_version


def _parse_version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def files_of(project: NormalizedName, files: Iterable[DistFile]) -> list[tuple[str, DistFile]]:
    """Pair each file of ``project`` with its version text; drop every other file.

    Files whose name does not belong to ``project`` (after normalization) are
    dropped, so an index cannot smuggle another project's files in. Name
    prefixes repeat across a project's files, so their normalization is cached.
    """
    known: dict[str, bool] = {}

    def same(prefix: str) -> bool:
        hit = known.get(prefix)
        if hit is None:
            hit = known[prefix] = canonicalize_name(prefix) == project
        return hit

    out: list[tuple[str, DistFile]] = []
    for dist in files:
        text = _version_text(dist.filename, same)
        if text is not None:
            out.append((text, dist))
    return out


def _version_text(filename: str, same: Callable[[str], bool]) -> Optional[str]:
    if "/" in filename or "\\" in filename or filename.startswith(".") or "\0" in filename:
        return None
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6) or not same(parts[0]):
            return None
        return parts[1]
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            # Legacy sdist names may contain dashes ("python-dateutil-2.8.2"):
            # find the dash after which the remainder is the version.
            for i, char in enumerate(stem):
                if char == "-" and same(stem[:i]):
                    return stem[i + 1 :]
            return None
    return None


# --- page parsing ------------------------------------------------------------


def _allowed_link(page_url: str, link: str) -> bool:
    """An http(s) index may link only to http(s) files; a local index also to files."""
    scheme = urlsplit(link).scheme
    if scheme in ("http", "https"):
        return True
    return scheme == "file" and page_url.startswith("file:")


def _sha256_of(hashes: object) -> Optional[str]:
    if isinstance(hashes, dict):
        value = hashes.get("sha256")
        if isinstance(value, str) and len(value) == 64:
            return value.lower()
    return None


def _core_metadata(value: object) -> Optional[str]:
    if value is True:
        return ""
    if isinstance(value, dict):
        return _sha256_of(value) or ""
    return None


def parse_json_page(data: bytes, page_url: str, origin: str) -> list[DistFile]:
    """Files of a PEP 691 JSON project page.

    :raises ValueError: when the document is not a PEP 691 page.
    """
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        msg = "not a PEP 691 project page (no 'files' list)"
        raise ValueError(msg)  # noqa: TRY004 - callers treat every malformed page alike
    out: list[DistFile] = []
    for entry in doc["files"]:
        if not isinstance(entry, dict):
            continue
        filename, url = entry.get("filename"), entry.get("url")
        if not isinstance(filename, str) or not isinstance(url, str):
            continue
        absolute = urljoin(page_url, url)
        if not _allowed_link(page_url, absolute):
            continue
        yanked = entry.get("yanked")
        size = entry.get("size")
        rp = entry.get("requires-python")
        upload = entry.get("upload-time")
        meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
        out.append(
            DistFile(
                filename=filename,
                url=split_credentials(absolute.split("#", 1)[0])[0],
                origin=origin,
                sha256=_sha256_of(entry.get("hashes")),
                size=size if isinstance(size, int) and size >= 0 else None,
                requires_python=rp if isinstance(rp, str) and rp.strip() else None,
                yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
                upload_time=upload if isinstance(upload, str) else None,
                metadata_sha256=_core_metadata(meta),
            )
        )
    return out


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: Optional[str] = None
        self.anchors: list[dict[str, Optional[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def parse_html_page(text: str, page_url: str, origin: str) -> list[DistFile]:
    """Files of a PEP 503 HTML page (also used for find-links pages)."""
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[DistFile] = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        absolute = urljoin(base, href)
        if not _allowed_link(page_url, absolute):
            continue
        clean, _, fragment = absolute.partition("#")
        filename = urlsplit(clean).path.rsplit("/", 1)[-1]
        filename = unquote(filename)
        sha256 = None
        if fragment.startswith("sha256="):
            candidate = fragment[7:].lower()
            sha256 = candidate if len(candidate) == 64 else None
        meta_attr = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        metadata_sha256: Optional[str] = None
        if meta_attr is not None and meta_attr.lower() != "false":
            metadata_sha256 = meta_attr[7:].lower() if meta_attr.startswith("sha256=") else ""
        yanked = (attrs.get("data-yanked") or "") if "data-yanked" in attrs else None
        rp = attrs.get("data-requires-python")
        out.append(
            DistFile(
                filename=filename,
                url=split_credentials(clean)[0],
                origin=origin,
                sha256=sha256,
                requires_python=rp.strip() if rp and rp.strip() else None,
                yanked=yanked,
                metadata_sha256=metadata_sha256,
            )
        )
    return out


# --- the client ----------------------------------------------------------------


class IndexClient:
    """Finds a project's files on the configured indexes and find-links locations.

    Thread-safe: concurrent requests for the same project share one fetch.

    :param page_ttl: seconds a cached index page is reused without asking the
        index again (PyPI itself advertises 600 s).
    :param exclude_newer: a cached page fetched after this cut-off holds every
        file the resolution may use, so it is reused regardless of its age.
    """

    def __init__(
        self,
        http: HttpClient,
        cache: Cache,
        config: IndexConfig,
        *,
        refresh: bool = False,
        page_ttl: float = 600.0,
        exclude_newer: Optional[datetime] = None,
    ) -> None:
        self.http = http
        self.cache = cache
        self.config = config
        self.refresh = refresh
        self.page_ttl = page_ttl
        self.exclude_newer = exclude_newer
        self._projects: Memo[NormalizedName, Project] = Memo()
        self._find_links: Memo[str, list[DistFile]] = Memo()
        self.pages_fetched = 0
        self.pages_from_cache = 0

    def project(self, name: NormalizedName) -> Project:
        """All usable files of ``name`` (empty when no location has it)."""
        return self._projects.get(name, self._gather)

    def _gather(self, name: NormalizedName) -> Project:
        pages: list[tuple[str, list[tuple[str, DistFile]]]] = []
        for index in self.config.indexes:
            files = files_of(name, self._index_page(index, name) or [])
            if not files:
                continue
            pages.append((redact_url(index), files))
            if self.config.strategy is IndexStrategy.FIRST_INDEX:
                break
        merged = _merge(pages, self.config.strategy)
        links = files_of(name, self._find_links_files())
        origins = tuple(dict.fromkeys([o for o, _ in pages] + [d.origin for _, d in links]))
        return Project(name, merged + links, origins)

    # --- index pages ---------------------------------------------------------

    def _index_page(self, index: str, name: NormalizedName) -> Optional[list[DistFile]]:
        origin = redact_url(index)
        local = index.startswith("file:")
        if not local:
            cached = self.cache.get_page(origin, name)
            if cached is not None and self._cache_usable(cached):
                self.pages_from_cache += 1
                return _page_from_cache(cached, origin)
        url = index.rstrip("/") + "/" + quote(name) + "/"
        try:
            response = self.http.get(
                url, headers={"Accept": ACCEPT}, what=f"the index page of {name}", ok=(200, 404)
            )
        except NetworkError:
            if not local and self.http.offline:
                raise NetworkError(
                    f"no cached index page for {name!r} and --offline forbids the network",
                    where=origin,
                    hint="run `lockship lock` once online to fill the cache",
                ) from None
            raise
        self.pages_fetched += 1
        if response.status == 404:
            files: Optional[list[DistFile]] = None
        else:
            files = self._parse(response.body, response.headers, response.url, origin, name)
        if not local:
            self.cache.put_page(
                origin,
                name,
                {
                    "fetched_at": time.time(),
                    "found": files is not None,
                    "files": [f.to_record() for f in files or []],
                },
            )
        return files

    def _cache_usable(self, cached: dict[str, Any]) -> bool:
        if self.http.offline:
            return True
        if self.refresh:
            return False
        fetched_at = float(cached.get("fetched_at", 0))
        if time.time() - fetched_at < self.page_ttl:
            return True
        return (
            self.exclude_newer is not None and self.exclude_newer.timestamp() <= fetched_at
        )

    def _parse(
        self,
        body: bytes,
        headers: Any,
        url: str,
        origin: str,
        name: NormalizedName,
    ) -> list[DistFile]:
        content_type = str(headers.get("content-type", "")).split(";")[0].strip().lower()
        try:
            if content_type == "application/vnd.pypi.simple.v1+json":
                return parse_json_page(body, url, origin)
            return parse_html_page(body.decode("utf-8", "replace"), url, origin)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NetworkError(
                f"malformed index page for {name}: {exc}", where=redact_url(url)
            ) from None

    # --- find-links ------------------------------------------------------------

    def _find_links_files(self) -> list[DistFile]:
        return [
            dist
            for location in self.config.find_links
            for dist in self._find_links.get(location, self._find_links_location)
        ]

    def _find_links_location(self, location: str) -> list[DistFile]:
        origin = redact_url(location)
        path = Path(url_to_path(location)) if location.startswith("file:") else Path(location)
        if "://" not in location or location.startswith("file:"):
            if path.is_dir():
                return [
                    DistFile(
                        filename=entry.name,
                        url=entry.resolve().as_uri(),
                        origin=origin,
                        size=entry.stat().st_size,
                    )
                    for entry in sorted(path.iterdir())
                    if entry.is_file()
                    and (entry.name.endswith(".whl") or entry.name.endswith(SDIST_SUFFIXES))
                ]
            if not path.exists():
                return []  # pip ignores a missing find-links directory, and so do we
            url = path.resolve().as_uri()
        else:
            url = location
        response = self.http.get(url, what=f"the find-links page {origin}")
        return parse_html_page(response.body.decode("utf-8", "replace"), response.url, origin)


def _page_from_cache(cached: dict[str, Any], origin: str) -> Optional[list[DistFile]]:
    if not cached.get("found"):
        return None
    return [DistFile.from_record(origin, record) for record in cached.get("files", [])]


def _merge(
    pages: Sequence[tuple[str, list[tuple[str, DistFile]]]], strategy: IndexStrategy
) -> list[tuple[str, DistFile]]:
    if strategy is not IndexStrategy.UNSAFE_FIRST_MATCH:
        return [item for _, files in pages for item in files]
    # Each version from the first index that lists it.
    taken: dict[str, str] = {}
    out: list[tuple[str, DistFile]] = []
    for origin, files in pages:
        for text, dist in files:
            if taken.setdefault(text, origin) == origin:
                out.append((text, dist))
    return out
