"""Read one member of a wheel with :mod:`zipfile`, fetching only the bytes it needs.

:class:`RangeFile` is a read-only, seekable file whose bytes come from a
``fetch(start, length)`` callable on demand: HTTP Range requests for a remote
wheel (the approach of pip's ``lazy_wheel``), ``os.pread`` for a local one.
zipfile then reads the end of central directory record, the central directory
and the one member asked for, and nothing else, wherever in the file that
member sits: memory stays bounded whatever the wheel's size.

A wheel is untrusted input, so every read is bounded: the bytes fetched per
archive (which bounds the central directory and so the member count), the
member count, the member's declared size and compression ratio, its
compression method (PEP 427 wheels are stored or deflated), and its name.
zipfile itself checks the local header against the central directory and the
CRC-32 of what it inflates, and never inflates past the declared size.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

__all__ = ["RangeFile", "dist_info_metadata_chooser", "local_file", "read_member"]

BLOCK = 64 * 1024  # read-ahead: one request usually covers a member's header and body
MAX_FETCHED = 32 * 1024 * 1024  # bytes read per archive: central directory and member
MAX_MEMBERS = 200_000  # a tensorflow wheel has ~20,000
MAX_MEMBER = 16 * 1024 * 1024  # METADATA larger than this is not metadata
MAX_RATIO = 200  # inflated / compressed beyond this (and over 1 MiB) is a bomb

# zipfile's errors for a malformed archive; callers get one ValueError instead.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,  # unsupported compression method
    RuntimeError,  # encrypted member
    struct.error,
    KeyError,
    OSError,
)


class RangeFile(io.RawIOBase):
    """A seekable read-only file of ``size`` bytes served by ``fetch(start, length)``.

    Fetched ranges are kept, so revisiting the tail costs nothing; a miss
    fetches at least ``BLOCK`` bytes. The total fetched is bounded by ``limit``.

    :param prefetched: bytes already known, ``{start: data}`` (the tail that
        told the size of a remote file).
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        prefetched: dict[int, bytes] | None = None,
        limit: int = MAX_FETCHED,
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._limit = limit
        self._pos = 0
        self.fetched = sum(len(data) for data in (prefetched or {}).values())
        self.requests = 0
        self._starts: list[int] = sorted(prefetched or {})
        self._chunks: dict[int, bytes] = dict(prefetched or {})

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:  # a zip directory pointing before the start of the file
            msg = "zip directory points before the start of the file"
            raise ValueError(msg)
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _read_at(self, start: int, length: int) -> bytes:
        end = min(start + length, self._size)
        out = bytearray()
        pos = start
        while pos < end:
            index = bisect.bisect_right(self._starts, pos) - 1
            if index >= 0:
                first = self._starts[index]
                chunk = self._chunks[first]
                if pos < first + len(chunk):
                    piece = chunk[pos - first : end - first]
                    out += piece
                    pos += len(piece)
                    continue
            following = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            stop = min(max(end, pos + BLOCK), following, self._size)
            self._store(pos, self._get(pos, stop - pos))
        return bytes(out)

    def _get(self, start: int, length: int) -> bytes:
        if self.fetched + length > self._limit:
            msg = f"reading it would take more than {self._limit} bytes of the archive"
            raise ValueError(msg)
        data = self._fetch(start, length)
        if len(data) != length:
            msg = "file is shorter than its zip directory says"
            raise ValueError(msg)
        self.fetched += length
        self.requests += 1
        return data

    def _store(self, start: int, data: bytes) -> None:
        bisect.insort(self._starts, start)
        self._chunks[start] = data


def local_file(handle: IO[bytes]) -> RangeFile:
    """A :class:`RangeFile` over an open local file (``os.pread``: no shared position)."""
    fd = handle.fileno()
    return RangeFile(lambda start, length: os.pread(fd, length, start), os.fstat(fd).st_size)


def read_member(archive: RangeFile, choose: Callable[[list[str]], str]) -> tuple[str, bytes]:
    """Read the member that ``choose`` picks from the archive's member names.

    :returns: the member name and its uncompressed, CRC-checked bytes.
    :raises ValueError: for anything that is not a sound, plausible zip archive.
    """
    try:
        with zipfile.ZipFile(archive) as opened:
            infos = opened.infolist()
            if len(infos) > MAX_MEMBERS:
                msg = f"implausibly many members ({len(infos)})"
                raise ValueError(msg)
            wanted = choose([info.filename for info in infos])
            info = opened.getinfo(wanted)
            _check_member(info)
            with opened.open(info) as member:
                content = member.read(MAX_MEMBER + 1)
    except _ZIP_ERRORS as exc:
        msg = f"not a sound zip archive: {exc}"
        raise ValueError(msg) from None
    return wanted, content


def _check_member(info: zipfile.ZipInfo) -> None:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        msg = f"unsupported zip compression method {info.compress_type} for {info.filename}"
        raise ValueError(msg)
    if info.file_size > MAX_MEMBER:
        msg = f"{info.filename} is implausibly large ({info.file_size} bytes)"
        raise ValueError(msg)
    if info.file_size > max(1024 * 1024, info.compress_size * MAX_RATIO):
        msg = (
            f"{info.filename} inflates {info.compress_size} bytes to {info.file_size}: "
            "a zip bomb"
        )
        raise ValueError(msg)


# The dist-info directory is one path segment: no separator, NUL, or dot-only name.
_DIST_INFO_METADATA = re.compile(r"^(?!\.+\.dist-info/)([^/\\\x00]+)\.dist-info/METADATA$")


def dist_info_metadata_chooser(project: str, version: str) -> Callable[[list[str]], str]:
    """Pick ``<name>-<version>.dist-info/METADATA`` among a wheel's members."""
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    def choose(names: list[str]) -> str:
        candidates = [n for n in names if _DIST_INFO_METADATA.match(n)]
        if len(candidates) == 1:
            return candidates[0]
        for name in candidates:
            stem = name.split(".dist-info/")[0]
            dist, _, ver = stem.rpartition("-")
            if canonicalize_name(dist) == canonicalize_name(project) and ver == version:
                return name
        msg = (
            "no .dist-info/METADATA in the wheel"
            if not candidates
            else f"several .dist-info directories: {', '.join(sorted(candidates))}"
        )
        raise ValueError(msg)

    return choose
