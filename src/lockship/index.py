"""Simple repository API client: PEP 691 JSON, PEP 503 HTML, find-links.

A project's files are gathered from the configured indexes according to the
index strategy (by default a project comes only from the *first* index that
has it: the dependency-confusion guard), plus any find-links locations.

A page's file entries (PEP 691 dicts; HTML anchors are turned into the same
form) are only grouped by the version in their filename. Everything else is
deferred to the versions the resolver looks at: a project like pydantic-core
lists thousands of files, and a lock needs a handful of them. The page cache
stores each version's entries as their own JSON text for the same reason.
"""

from __future__ import annotations

import gc
import html.parser
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union
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
from lockship.errors import NetworkError
from lockship.pipconfig import IndexConfig, IndexStrategy

if TYPE_CHECKING:
    from lockship.http import Fetcher

__all__ = ["DistFile", "IndexClient", "Project", "entry_to_dist", "html_entries", "json_entries"]

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
SDIST_SUFFIXES = (".tar.gz", ".zip")
_ANCHOR_TEXT = re.compile(r"<a\b[^>]*>\s*([^<\s]+)\s*</a>", re.IGNORECASE)
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call


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



Entry = dict[str, Any]
"""A file entry in PEP 691 form, as the index sent it (not yet validated)."""

Groups = dict[str, Union[str, list[Entry]]]
"""One source's entries by version text; a str is their JSON text from the page cache."""


@dataclass(frozen=True)
class Source:
    origin: str  # index or find-links location, without credentials
    page_url: str  # the page relative links are resolved against
    groups: Groups
    is_index: bool = True


class Project:
    """All files of one project, grouped by version, from one or more sources.

    Versions are parsed, and entries decoded and validated, only on demand.

    :param sources: in priority order.
    :param first_match: take each version only from the first index that has it
        (find-links locations are always merged in).
    """

    def __init__(
        self, name: NormalizedName, sources: Sequence[Source], *, first_match: bool = False
    ) -> None:
        self.name = name
        self._sources = [source for source in sources if source.groups]
        self._first_match = first_match
        self._by_version: Optional[dict[Version, list[str]]] = None
        self._files: dict[Version, list[DistFile]] = {}

    @property
    def exists(self) -> bool:
        return bool(self._sources)

    def versions(self) -> list[Version]:
        return list(self._texts())

    def _texts(self) -> dict[Version, list[str]]:
        if self._by_version is None:
            parsed: dict[Version, list[str]] = {}
            for text in dict.fromkeys(t for source in self._sources for t in source.groups):
                version = _parse_version(text)
                if version is not None:
                    parsed.setdefault(version, []).append(text)
            self._by_version = parsed
        return self._by_version

    def files(self, version: Version) -> list[DistFile]:
        """Every valid file of ``version`` (several spellings of it are merged)."""
        found = self._files.get(version)
        if found is None:
            found = []
            for text in self._texts().get(version, []):
                taken = False
                for source in self._sources:
                    group = source.groups.get(text)
                    if group is None or (taken and self._first_match and source.is_index):
                        continue
                    entries = json.loads(group) if isinstance(group, str) else group
                    for entry in entries:
                        dist = entry_to_dist(entry, source.page_url, source.origin)
                        if dist is not None:
                            found.append(dist)
                    taken = taken or source.is_index
            self._files[version] = found
        return found


def _parse_version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def group_entries(project: NormalizedName, entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """Group the entries of ``project`` by the version in their filename; drop the others.

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

    out: dict[str, list[Entry]] = {}
    for entry in entries:
        filename = entry.get("filename")
        text = _version_text(filename, same) if isinstance(filename, str) else None
        if text is not None:
            out.setdefault(text, []).append(entry)
    return out


def _version_text(filename: str, same: Callable[[str], bool]) -> Optional[str]:
    if any(c in filename for c in "/\\\0\t\n\r") or filename.startswith("."):
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


def _absolute_link(page_url: str, link: str) -> Optional[str]:
    """The link made absolute, without fragment or credentials; None if not allowed.

    An http(s) index may link only to http(s) files; a local index also to
    ``file:`` URLs. The common case, an absolute https URL with no
    credentials (every PyPI file), avoids urllib.parse: a large project
    page has thousands of links.
    """
    if not link.startswith(("https://", "http://")):
        link = urljoin(page_url, link)
    link = link.split("#", 1)[0]
    if link.startswith(("https://", "http://")):
        return split_credentials(link)[0] if "@" in link else link
    if link.startswith("file:") and page_url.startswith("file:"):
        return link
    return None


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


def _loads(data: bytes) -> Any:
    """``json.loads`` with the cyclic garbage collector paused.

    A page builds hundreds of thousands of objects and no cycles, so the
    collector's passes during parsing are wasted; and a hostile page nested a
    thousand levels deep would otherwise run some unrelated object's finaliser
    at the bottom of the C stack, where it fails with a RecursionError of its own.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(data)
    finally:
        if enabled:
            gc.enable()


def json_entries(data: bytes) -> list[Entry]:
    """The file entries of a PEP 691 JSON project page.

    :raises ValueError: when the document is not a PEP 691 page.
    """
    try:
        doc = _loads(data)
    except RecursionError:  # a hostile page nesting thousands of arrays
        msg = "JSON nested too deeply"
        raise ValueError(msg) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        msg = "not a PEP 691 project page (no 'files' list)"
        raise ValueError(msg)  # noqa: TRY004 - callers treat every malformed page alike
    return [entry for entry in doc["files"] if isinstance(entry, dict)]


def entry_to_dist(entry: Entry, page_url: str, origin: str) -> Optional[DistFile]:
    """Validate one PEP 691 entry; None when it is unusable (bad types, forbidden link)."""
    filename, url = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        return None
    try:
        absolute = _absolute_link(page_url, url)
    except ValueError:  # urllib.parse: an invalid port or IPv6 literal
        return None
    if absolute is None:
        return None
    yanked = entry.get("yanked")
    size = entry.get("size")
    rp = entry.get("requires-python")
    upload = entry.get("upload-time")
    meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
    return DistFile(
        filename=filename,
        url=absolute,
        origin=origin,
        sha256=_sha256_of(entry.get("hashes")),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        requires_python=rp if isinstance(rp, str) and rp.strip() else None,
        yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
        upload_time=upload if isinstance(upload, str) else None,
        metadata_sha256=_core_metadata(meta),
    )


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


def html_entries(text: str, page_url: str) -> list[Entry]:
    """The file entries of a PEP 503 HTML page (or find-links page), in PEP 691 form."""
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out: list[Entry] = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        try:
            url = urljoin(base, href)
        except ValueError:  # a bad port or IPv6 literal: skip this link, not the page
            continue
        fragment = href.partition("#")[2]
        entry: Entry = {
            "filename": unquote(urlsplit(url).path.rsplit("/", 1)[-1]),
            "url": url,
            "hashes": {"sha256": fragment[7:].lower()} if fragment.startswith("sha256=") else {},
        }
        meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        if meta is not None and meta.lower() != "false":
            hashed = meta.startswith("sha256=")
            entry["core-metadata"] = {"sha256": meta[7:].lower()} if hashed else True
        if "data-yanked" in attrs:
            entry["yanked"] = attrs.get("data-yanked") or True
        if attrs.get("data-requires-python"):
            entry["requires-python"] = attrs["data-requires-python"]
        out.append(entry)
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
        http: Fetcher,
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
        self._find_links: Memo[str, tuple[str, list[Entry]]] = Memo()

    def project(self, name: NormalizedName) -> Project:
        """All usable files of ``name`` (empty when no location has it)."""
        return self._projects.get(name, self._gather)

    def _gather(self, name: NormalizedName) -> Project:
        sources: list[Source] = []
        for index in self.config.indexes:
            page = self._index_page(index, name)
            if page is None or not page[1]:
                continue
            sources.append(Source(redact_url(index), page[0], page[1]))
            if self.config.strategy is IndexStrategy.FIRST_INDEX:
                break
        # find-links locations are the operator's own: always merged in.
        for location in self.config.find_links:
            page_url, entries = self._find_links.get(location, self._find_links_location)
            groups = group_entries(name, entries)
            if groups:
                sources.append(Source(redact_url(location), page_url, dict(groups), is_index=False))
        first_match = self.config.strategy is IndexStrategy.UNSAFE_FIRST_MATCH
        return Project(name, sources, first_match=first_match)

    def project_names(self, max_bytes: int = 64 * 1024 * 1024) -> list[str]:
        """The project names the first index lists on its root page (for "did you mean").

        Bounded by ``max_bytes`` (PyPI's root page is about 30 MB); empty when
        there is no index, the page is too large or malformed, or --offline.
        """
        if not self.config.indexes or self.http.offline:
            return []
        url = self.config.indexes[0].rstrip("/") + "/"
        try:
            response = self.http.get(
                url, headers={"Accept": ACCEPT}, what="the index's project list",
                max_bytes=max_bytes,
            )
            content_type = str(response.headers.get("content-type", "")).split(";")[0].strip()
            if content_type == "application/vnd.pypi.simple.v1+json":
                projects = json.loads(response.body).get("projects", [])
                return [str(p["name"]) for p in projects if isinstance(p, dict) and "name" in p]
            # PEP 503: one anchor per project, its text the name. A regex, not
            # html.parser: PyPI's page has ~900,000 anchors (0.2 s instead of 8 s).
            return _ANCHOR_TEXT.findall(response.body.decode("utf-8", "replace"))
        except (NetworkError, ValueError, AttributeError):
            return []  # suggestions are a courtesy: never a second error

    # --- index pages ---------------------------------------------------------

    def _index_page(self, index: str, name: NormalizedName) -> Optional[tuple[str, Groups]]:
        """(page URL, entries by version) of ``name`` on this index, None if it lacks it."""
        origin = redact_url(index)
        local = index.startswith("file:")
        if not local:
            cached = self.cache.get_page(origin, name)
            if cached is not None and self._cache_usable(cached[0]):
                header, versions = cached
                return (str(header.get("url", "")), dict(versions)) if header.get("found") else None
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
        groups: Optional[dict[str, list[Entry]]] = None
        if response.status != 404:
            entries = self._parse(response.body, response.headers, response.url, name)
            groups = group_entries(name, entries)
        page_url = split_credentials(response.url)[0]
        if not local:
            # Each version's entries are stored as their own JSON text, so a later
            # run decodes only the versions it looks at.
            self.cache.put_page(
                origin,
                name,
                {"fetched_at": time.time(), "found": groups is not None, "url": page_url},
                {t: _COMPACT.encode(e) for t, e in (groups or {}).items()},
            )
        return (page_url, dict(groups)) if groups is not None else None

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

    def _parse(self, body: bytes, headers: Any, url: str, name: NormalizedName) -> list[Entry]:
        content_type = str(headers.get("content-type", "")).split(";")[0].strip().lower()
        try:
            if content_type == "application/vnd.pypi.simple.v1+json":
                return json_entries(body)
            return html_entries(body.decode("utf-8", "replace"), url)
        except (ValueError, UnicodeDecodeError) as exc:
            raise NetworkError(
                f"malformed index page for {name}: {exc}", where=redact_url(url)
            ) from None

    # --- find-links ------------------------------------------------------------

    def _find_links_location(self, location: str) -> tuple[str, list[Entry]]:
        """(page URL, entries) of a find-links directory or page."""
        path = Path(url_to_path(location)) if location.startswith("file:") else Path(location)
        if "://" not in location or location.startswith("file:"):
            if path.is_dir():
                page_url = path.resolve().as_uri() + "/"
                return page_url, [
                    {
                        "filename": entry.name,
                        "url": entry.resolve().as_uri(),
                        "size": entry.stat().st_size,
                    }
                    for entry in sorted(path.iterdir())
                    if entry.is_file()
                    and (entry.name.endswith(".whl") or entry.name.endswith(SDIST_SUFFIXES))
                ]
            if not path.exists():
                return "", []  # pip ignores a missing find-links directory, and so do we
            url = path.resolve().as_uri()
        else:
            url = location
        response = self.http.get(url, what=f"the find-links page {redact_url(location)}")
        page_url = split_credentials(response.url)[0]
        return page_url, html_entries(response.body.decode("utf-8", "replace"), page_url)
