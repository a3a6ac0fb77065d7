"""Read one member of a zip archive through byte-range reads.

A wheel's central directory sits at the end of the file, and build tools
write ``*.dist-info/`` last, so the METADATA of a remote wheel usually comes
with a single HTTP Range request for the file's tail. The reader fetches
more only when the central directory or the member lies before that tail.
Zip format: APPNOTE.TXT sections 4.3.7 (local header), 4.3.12 (central
directory), 4.3.14-16 (zip64 and end of central directory records).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Protocol

__all__ = ["FileRangeReader", "RangeReader", "ZipMember", "read_member"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_MAX_MEMBER = 64 * 1024 * 1024  # METADATA larger than this is not metadata


class RangeReader(Protocol):
    """Byte-range access to a file that may be remote."""

    def tail(self, length: int) -> tuple[bytes, int]:
        """Return the last ``length`` bytes (or the whole file) and the file size."""
        ...

    def read(self, start: int, length: int) -> bytes:
        """Return exactly ``length`` bytes starting at ``start``."""
        ...


class FileRangeReader:
    """RangeReader over a seekable local file."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        handle.seek(0, 2)
        self._size = handle.tell()

    def tail(self, length: int) -> tuple[bytes, int]:
        start = max(0, self._size - length)
        return self.read(start, self._size - start), self._size

    def read(self, start: int, length: int) -> bytes:
        if start < 0 or length < 0:  # seek() would raise OSError on a real file
            msg = "zip directory points before the start of the file"
            raise ValueError(msg)
        self._handle.seek(start)
        data = self._handle.read(length)
        if len(data) != length:
            msg = "file is shorter than its zip directory says"
            raise ValueError(msg)
        return data


@dataclass(frozen=True)
class ZipMember:
    name: str
    method: int
    crc32: int
    compressed_size: int
    size: int
    offset: int


class _Window:
    """The bytes fetched so far, as one contiguous window [start, start+len)."""

    def __init__(self, reader: RangeReader, data: bytes, start: int) -> None:
        self.reader = reader
        self.data = data
        self.start = start
        self.requests = 1

    def get(self, start: int, length: int) -> bytes:
        end = start + length
        if start >= self.start and end <= self.start + len(self.data):
            return self.data[start - self.start : end - self.start]
        if start < self.start and end <= self.start + len(self.data):
            # Extend the window backwards with one request.
            self.data = self.reader.read(start, self.start - start) + self.data
            self.start = start
            self.requests += 1
            return self.data[: length]
        self.requests += 1
        return self.reader.read(start, length)


def _eocd(window: _Window, size: int) -> tuple[int, int, int]:
    """Return (entries, central directory size, central directory offset)."""
    pos = window.data.rfind(_EOCD)
    if pos < 0 or len(window.data) - pos < 22:
        msg = "not a zip file (no end of central directory record)"
        raise ValueError(msg)
    (_, _, _, _, entries, cd_size, cd_offset, _) = struct.unpack(
        "<4sHHHHIIH", window.data[pos : pos + 22]
    )
    if entries == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        eocd_abs = window.start + pos
        locator = window.get(eocd_abs - 20, 20)
        if locator[:4] != _EOCD64_LOCATOR:
            msg = "zip64 archive without a zip64 locator"
            raise ValueError(msg)
        (eocd64_offset,) = struct.unpack("<Q", locator[8:16])
        record = window.get(eocd64_offset, 56)
        if record[:4] != _EOCD64:
            msg = "bad zip64 end of central directory record"
            raise ValueError(msg)
        entries, cd_size, cd_offset = struct.unpack("<QQQ", record[32:56])
    if cd_offset + cd_size > size:
        msg = "central directory lies beyond the end of the file"
        raise ValueError(msg)
    return entries, cd_size, cd_offset


_ENTRY = struct.Struct("<4s6xHHHIIIHHH8xI")  # central directory file header, 46 bytes


def _entry_at(data: bytes, pos: int) -> tuple[ZipMember, int]:
    """The central directory entry at ``pos`` and the position of the next one."""
    sig, method, _t, _d, crc, csize, usize, nlen, xlen, clen, offset = _ENTRY.unpack_from(data, pos)
    if sig != _CENTRAL:
        msg = "corrupt zip central directory"
        raise ValueError(msg)
    name = data[pos + 46 : pos + 46 + nlen].decode("utf-8", "replace")
    if 0xFFFFFFFF in (csize, usize, offset):
        extra = data[pos + 46 + nlen : pos + 46 + nlen + xlen]
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
    return ZipMember(name, method, crc, csize, usize, offset), pos + 46 + nlen + xlen + clen


def _central_directory(data: bytes, suffix: str = "") -> list[ZipMember]:
    """Entries of the central directory; with ``suffix``, only names ending with it.

    A large wheel lists thousands of files; finding the few wanted names with
    ``bytes.find`` and decoding only those entries is far cheaper than decoding all.
    """
    members: list[ZipMember] = []
    if not suffix:
        pos = 0
        while pos + 46 <= len(data):
            member, pos = _entry_at(data, pos)
            members.append(member)
        return members
    needle = suffix.encode()
    hit = data.find(needle)
    while hit >= 0:
        # The entry's header is the nearest signature before the name that ends here.
        start = data.rfind(_CENTRAL, 0, hit)
        while start >= 0:
            if start + 46 <= len(data):
                nlen = struct.unpack_from("<H", data, start + 28)[0]
                if start + 46 + nlen == hit + len(needle):
                    members.append(_entry_at(data, start)[0])
                    break
            start = data.rfind(_CENTRAL, 0, start)
        hit = data.find(needle, hit + 1)
    return members


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[pos : pos + 4])
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            values = [struct.unpack("<Q", body[i : i + 8])[0] for i in range(0, len(body) - 7, 8)]
            it = iter(values)
            if usize == 0xFFFFFFFF:
                usize = next(it)
            if csize == 0xFFFFFFFF:
                csize = next(it)
            if offset == 0xFFFFFFFF:
                offset = next(it)
            break
        pos += 4 + length
    return usize, csize, offset


def read_member(
    reader: RangeReader,
    choose: Callable[[list[str]], str],
    *,
    suffix: str = "",
    tail_size: int = 64 * 1024,
) -> tuple[str, bytes, int]:
    """Read the member that ``choose`` picks from the archive's member names.

    :param suffix: consider only members whose name ends with this.

    :returns: the member name, its uncompressed bytes (CRC-checked), and the
        number of range reads it took.
    :raises ValueError: for anything that is not a sound zip archive.
    """
    data, size = reader.tail(tail_size)
    window = _Window(reader, data, size - len(data))
    _entries, cd_size, cd_offset = _eocd(window, size)
    members = _central_directory(window.get(cd_offset, cd_size), suffix)
    wanted = choose([m.name for m in members])
    member = next(m for m in members if m.name == wanted)
    if member.size > _MAX_MEMBER or member.compressed_size > _MAX_MEMBER:
        msg = f"{wanted} is implausibly large ({member.size} bytes)"
        raise ValueError(msg)
    # The local header repeats the name and may carry a different extra field.
    guess = 30 + len(wanted.encode()) + 256 + member.compressed_size
    head = window.get(member.offset, min(guess, size - member.offset))
    if head[:4] != _LOCAL:
        msg = f"bad local header for {wanted}"
        raise ValueError(msg)
    nlen, xlen = struct.unpack("<HH", head[26:30])
    start = 30 + nlen + xlen
    body = head[start : start + member.compressed_size]
    if len(body) < member.compressed_size:
        body = window.get(member.offset + start, member.compressed_size)
    content = _inflate(member, body)
    if zlib.crc32(content) & 0xFFFFFFFF != member.crc32:
        msg = f"CRC mismatch in {wanted}"
        raise ValueError(msg)
    return wanted, content, window.requests


def _inflate(member: ZipMember, body: bytes) -> bytes:
    if member.method == 0:
        return body
    if member.method == 8:
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(body, _MAX_MEMBER)
        except zlib.error as exc:  # not a ValueError: callers catch only that
            msg = f"{member.name} is not valid deflate data: {exc}"
            raise ValueError(msg) from None
        if inflater.unconsumed_tail:
            msg = f"{member.name} inflates beyond its declared size"
            raise ValueError(msg)
        return out
    msg = f"unsupported zip compression method {member.method} for {member.name}"
    raise ValueError(msg)


_DIST_INFO_METADATA = re.compile(r"^([^/]+)\.dist-info/METADATA$")


METADATA_SUFFIX = ".dist-info/METADATA"


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
