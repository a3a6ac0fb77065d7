"""Core metadata of distribution files, fetched as cheaply as possible.

For a wheel, in order: the cache (keyed by the file's sha256, so an entry is
valid forever), the PEP 658 ``.metadata`` file when the index advertises one
(checked against the advertised hash), then ``*.dist-info/METADATA`` read out
of the remote wheel by :mod:`zipfile` over HTTP Range requests
(:class:`lockship._zip.RangeFile`: the file's tail, where the central directory
is, then one request for the member unless the tail holds it, wherever it
sits), and only when the server ignores Range, a full verified download into
the file cache.

For an sdist: its PKG-INFO when PEP 643 makes it static, otherwise the
METADATA of a wheel built from it in an isolated environment.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from lockship._memo import Memo
from lockship._urls import redact_url, url_to_path
from lockship._zip import BLOCK, RangeFile, dist_info_metadata_chooser, local_file, read_member
from lockship.errors import BuildError, HashMismatchError, IntegrityError, NetworkError

if TYPE_CHECKING:  # the fetcher's half: verify, sign and the dossier read local wheels only
    from lockship.cache import Cache
    from lockship.http import Fetcher
    from lockship.index import DistFile

__all__ = [
    "CoreMetadata",
    "MetadataError",
    "MetadataFetcher",
    "metadata_digest",
    "parse_core_metadata",
    "read_wheel_metadata",
]


class MetadataError(IntegrityError):
    """A distribution's metadata is unreadable or contradicts its filename."""


@dataclass(frozen=True)
class CoreMetadata:
    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...]
    requires_python: Optional[SpecifierSet]
    provides_extra: frozenset[NormalizedName]
    sha256: str = ""  # metadata_digest() of the fields above, as the file wrote them


def metadata_digest(fields: dict[str, list[str]]) -> str:
    """sha256 of the core metadata fields resolution reads, as the file spells them.

    The values are taken as written (stripped), not re-rendered by ``packaging``,
    so the digest does not change with the ``packaging`` version that computes it;
    Requires-Dist and Provides-Extra are sorted, since their order means nothing.
    """
    document = {
        "name": canonicalize_name((fields.get("name") or [""])[0]),
        "version": str(Version((fields.get("version") or ["0"])[0])),
        "requires-dist": sorted(fields.get("requires-dist", [])),
        "requires-python": (fields.get("requires-python") or [""])[0],
        "provides-extra": sorted({canonicalize_name(e) for e in fields.get("provides-extra", [])}),
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


_FIELDS = frozenset({"name", "version", "requires-dist", "requires-python", "provides-extra"})


def read_headers(data: bytes) -> dict[str, list[str]]:
    """The core-metadata header fields lockship needs (RFC 822 style, folded lines joined).

    Only the header block is read: it ends at the first empty line, and the long
    description that follows (often most of the file) is never parsed. This is
    much faster than ``email.parser``, which matters when a lock reads hundreds of
    METADATA files.
    """
    fields: dict[str, list[str]] = {}
    key: Optional[str] = None
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        if not line:
            break  # only a truly empty line ends the headers; "   " is a folded line
        if line[0] in " \t":
            if key is not None:  # a folded continuation of the previous field
                fields[key][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        key = name.strip().lower() if sep else None
        if key in _FIELDS:
            fields.setdefault(key, []).append(value.strip())
        else:
            key = None
    return fields


@functools.lru_cache(maxsize=65536)
def _requirement(text: str) -> Requirement:
    """``Requirement(text)``, parsed once per run: the releases of a project repeat
    most of their Requires-Dist lines, and parsing dominated resolving a project
    with hundreds of releases. Callers never mutate the shared object.
    """
    return Requirement(text)


def parse_core_metadata(data: bytes, *, where: str) -> CoreMetadata:
    """Parse METADATA / PKG-INFO bytes.

    :raises MetadataError: for a missing name or version, or an invalid
        Requires-Dist or Requires-Python entry.
    """
    raw = read_headers(data)
    name, version = (raw.get("name") or [""])[0], (raw.get("version") or [""])[0]
    if not name or not version:
        raise MetadataError("metadata has no Name or Version", where=where)
    try:
        parsed_version = Version(version)
        requires = tuple(_requirement(r) for r in raw.get("requires-dist", []))
        rp = (raw.get("requires-python") or [""])[0]
        requires_python = SpecifierSet(rp) if rp.strip() else None
    except (InvalidVersion, InvalidRequirement, InvalidSpecifier) as exc:
        raise MetadataError(f"invalid metadata: {exc}", where=where) from None
    return CoreMetadata(
        name=canonicalize_name(name),
        version=parsed_version,
        requires_dist=requires,
        requires_python=requires_python,
        provides_extra=frozenset(canonicalize_name(e) for e in raw.get("provides-extra", [])),
        sha256=metadata_digest(raw),
    )


def read_wheel_metadata(path: Path, filename: str) -> bytes:
    """The ``*.dist-info/METADATA`` of the local wheel ``path``, named ``filename``.

    :raises MetadataError: when it is not a readable wheel of that name and version.
    """
    try:
        name, version, _, _ = parse_wheel_filename(filename)
        with path.open("rb") as handle:
            chooser = dist_info_metadata_chooser(name, str(version))
            _, data = read_member(local_file(handle), chooser)
    except ValueError as exc:  # InvalidWheelFilename included
        raise MetadataError(f"cannot read the wheel's METADATA: {exc}", where=filename) from None
    return data


class RangeNotSupportedError(Exception):
    """The server answered a Range request with the whole file."""


class HttpRangeReader:
    """Byte ranges of a remote file through HTTP Range requests."""

    def __init__(self, http: Fetcher, url: str, *, what: str, size: Optional[int]) -> None:
        self.http = http
        self.url = url
        self.what = what
        self.size = size

    def _get(self, header: str, limit: int) -> tuple[bytes, int]:
        with self.http.stream(
            self.url,
            headers={"Range": header, "Accept-Encoding": "identity"},
            what=self.what,
            ok=(200, 206),
        ) as response:
            if response.status != 206:
                raise RangeNotSupportedError
            total = _content_range_total(response.headers.get("content-range", ""))
            body = bytearray()
            for chunk in response.chunks():
                body += chunk
                if len(body) > limit:
                    msg = "server sent more bytes than the range asked for"
                    raise ValueError(msg)
        if self.size is not None and total != self.size:
            msg = f"server reports {total} bytes, the index said {self.size}"
            raise ValueError(msg)
        return bytes(body), total

    def tail(self, length: int) -> tuple[bytes, int]:
        return self._get(f"bytes=-{length}", length)

    def read(self, start: int, length: int) -> bytes:
        data, _ = self._get(f"bytes={start}-{start + length - 1}", length)
        if len(data) != length:
            msg = "short range response"
            raise ValueError(msg)
        return data

    def open(self) -> RangeFile:
        """The remote file as a seekable file; its tail (where the zip directory is) is read."""
        tail, size = self.tail(BLOCK)
        return RangeFile(self.read, size, prefetched={size - len(tail): tail})


def _content_range_total(value: str) -> int:
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        msg = f"bad Content-Range {value!r}"
        raise ValueError(msg) from None


class MetadataFetcher:
    """Gets and caches core metadata for distribution files. Thread-safe."""

    def __init__(
        self,
        http: Fetcher,
        cache: Cache,
        *,
        build_env: Optional[dict[str, str]] = None,
    ) -> None:
        self.http = http
        self.cache = cache
        self.build_env = build_env
        self._memo: Memo[str, CoreMetadata] = Memo()
        self._hashes: Memo[str, tuple[str, int]] = Memo()

    # --- hashes --------------------------------------------------------------

    def digest(self, dist: DistFile) -> tuple[str, int]:
        """sha256 and size of ``dist``, downloading it only if the index gave no hash."""
        if dist.sha256 is not None and dist.size is not None:
            return dist.sha256, dist.size
        return self._hashes.get(dist.url, lambda _url: self._compute_digest(dist))

    def _compute_digest(self, dist: DistFile) -> tuple[str, int]:
        from lockship.download import download_to_cache  # noqa: PLC0415

        if dist.is_local:
            return self.cache.local_file_sha256(Path(url_to_path(dist.url)))
        if dist.sha256 is not None:
            # Hash known, size unknown (HTML pages): the metadata read learns the size.
            size = self._remote_size(dist)
            if size is not None:
                return dist.sha256, size
        _, sha256, size = download_to_cache(
            self.http, self.cache, dist.url, sha256=dist.sha256, size=None, what=dist.filename
        )
        return sha256, size

    def _remote_size(self, dist: DistFile) -> Optional[int]:
        reader = HttpRangeReader(self.http, dist.url, what=dist.filename, size=None)
        try:
            _, total = reader.tail(1)
        except (RangeNotSupportedError, ValueError, NetworkError):
            return None
        return total

    # --- metadata ------------------------------------------------------------

    def get(self, dist: DistFile) -> CoreMetadata:
        """Core metadata of ``dist`` (memoized per URL for this run).

        :raises MetadataError: when the metadata is invalid or names another project/version.
        """
        return self._memo.get(dist.url, lambda _url: self._load(dist))

    def _load(self, dist: DistFile) -> CoreMetadata:
        sha256, _size = self.digest(dist)
        data = self.cache.get_metadata(sha256)
        if data is None:
            data = self._fetch(dist, sha256)
            self.cache.put_metadata(sha256, data)
        meta = parse_core_metadata(data, where=dist.filename)
        self._check_consistent(dist, meta)
        return meta

    def _check_consistent(self, dist: DistFile, meta: CoreMetadata) -> None:
        if dist.is_wheel:
            name, version, _, _ = dist.wheel_info()
            if meta.name != name or meta.version != version:
                raise MetadataError(
                    f"metadata says {meta.name} {meta.version}, the filename says "
                    f"{name} {version}",
                    where=dist.filename,
                )

    def _fetch(self, dist: DistFile, sha256: str) -> bytes:
        from lockship.download import download_to_cache  # noqa: PLC0415

        if not dist.is_wheel:
            return self._sdist_metadata(dist, sha256)
        if dist.has_metadata_file and not dist.is_local:
            data = self._pep658(dist)
            if data is not None:
                return data
        if dist.is_local:
            return read_wheel_metadata(Path(url_to_path(dist.url)), dist.filename)
        try:
            reader = HttpRangeReader(self.http, dist.url, what=dist.filename, size=dist.size)
            _, data = read_member(reader.open(), self._chooser(dist))
        except RangeNotSupportedError:
            pass  # the server sends whole files only: download it (verified) below
        except ValueError as exc:
            raise MetadataError(
                f"cannot read the wheel's METADATA: {exc}", where=dist.filename
            ) from None
        else:
            return data
        path, _, _ = download_to_cache(
            self.http, self.cache, dist.url, sha256=sha256, size=dist.size, what=dist.filename
        )
        return read_wheel_metadata(path, dist.filename)

    def _chooser(self, dist: DistFile) -> Callable[[list[str]], str]:
        name, version, _, _ = dist.wheel_info()
        return dist_info_metadata_chooser(name, str(version))

    def _pep658(self, dist: DistFile) -> Optional[bytes]:
        try:
            response = self.http.get(
                dist.url + ".metadata", what=f"metadata of {dist.filename}", ok=(200, 404)
            )
        except NetworkError:
            return None
        if response.status != 200:
            return None
        actual = hashlib.sha256(response.body).hexdigest()
        if dist.metadata_sha256 and actual != dist.metadata_sha256:
            raise HashMismatchError(
                what=f"{dist.filename}.metadata",
                url=redact_url(dist.url + ".metadata"),
                expected_sha256=dist.metadata_sha256,
                actual_sha256=actual,
            )
        return response.body

    # --- sdists --------------------------------------------------------------

    def sdist_path(self, dist: DistFile, sha256: str) -> Path:
        from lockship.download import download_to_cache  # noqa: PLC0415

        if dist.is_local:
            return Path(url_to_path(dist.url))
        path, _, _ = download_to_cache(
            self.http, self.cache, dist.url, sha256=sha256, size=dist.size, what=dist.filename
        )
        return path

    def _sdist_metadata(self, dist: DistFile, sha256: str) -> bytes:
        from lockship.sdists import read_pkg_info, static_pkg_info  # noqa: PLC0415

        path = self.sdist_path(dist, sha256)
        pkg_info = read_pkg_info(path)
        if pkg_info is not None and static_pkg_info(pkg_info):
            return pkg_info
        wheel = self.built_wheel(dist, sha256)
        return read_wheel_metadata(wheel, wheel.name)

    def built_wheel(self, dist: DistFile, sha256: str) -> Path:
        """The wheel built from this sdist (cached by ``sdists.build_key``)."""
        from lockship.sdists import build_cached, build_key  # noqa: PLC0415

        if self.build_env is None:
            raise BuildError(
                "this sdist needs a build and builds are disabled",
                where=dist.filename,
            )
        key = build_key(sha256, self.build_env)
        existing = self.cache.built_wheel(key)
        if existing is not None:
            return existing
        if self.http.offline:
            raise BuildError(
                "this sdist must be built, and its build dependencies cannot be "
                "installed with --offline",
                where=dist.filename,
                hint="run once online so the built wheel is cached",
            )
        path = self.sdist_path(dist, sha256)
        return build_cached(self.cache, path, key, env=self.build_env, what=dist.filename)
