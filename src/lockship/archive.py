"""One deterministic tar file per signed bundle, and extraction that cannot escape.

The archive is an uncompressed tar (wheels are already compressed, and stock
``tar -xf`` reads it) in POSIX.1-2001 (PAX) format, which stores names longer
than 100 characters without GNU extensions and adds nothing variable for short
ones. Entries are sorted, directories included, all under one top-level
directory named after the bundle; every entry has the same mtime, uid/gid 0,
empty owner names and mode 0644 (files) or 0755 (directories). The same
bundle therefore always gives the same bytes, and ``<archive>.sha256`` can be
published ahead of the transfer.

Reading, an archive must mean the same thing to every reader. Python's
``tarfile`` stops silently at a header it cannot read, while GNU tar skips it
and extracts what follows; so before ``tarfile`` sees it, :func:`check_layout`
walks the file block by block and refuses anything that is not exactly a
sequence of ustar headers (checksum, magic, octal size) and their zero-padded
data, then the two zero blocks of the end of the archive and zero padding to
the end of the file. The ``<archive>.sha256`` beside it, when present, must
match.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from lockship._fs import atomic_write, atomic_write_text, filesystem_error, safe_join
from lockship._install_script import list_files
from lockship.errors import InputError, IntegrityError
from lockship.hashing import file_digest
from lockship.models import DEFAULT_SOURCE_DATE_EPOCH, source_date_epoch
from lockship.sign import read_record

__all__ = [
    "DEFAULT_MTIME",
    "archive_mtime",
    "check_digest_file",
    "check_layout",
    "extract_archive",
    "write_archive",
]

DEFAULT_MTIME = DEFAULT_SOURCE_DATE_EPOCH


def archive_mtime(bundle: Path, environ: Mapping[str, str] = os.environ) -> int:
    """The entries' mtime: the lock's exclude-newer, else $SOURCE_DATE_EPOCH, else 1980-01-01."""
    exclude_newer = read_record(bundle).exclude_newer
    if exclude_newer is not None:
        return source_date_epoch(exclude_newer)
    value = environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return DEFAULT_MTIME
    if not value.isdigit():
        raise InputError(f"not a number of seconds: {value!r}", where="SOURCE_DATE_EPOCH")
    return int(value)


def _entry(name: str, mtime: int, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(bundle: Path, dest: Path, *, mtime: int) -> tuple[Path, str]:
    """Write ``dest/<bundle name>.tar`` and ``.tar.sha256``; return the tar's path and sha256.

    :raises InputError: a link or special file in the bundle, or ``dest`` inside it.
    """
    top = bundle.resolve().name  # "." names no directory
    files, refused = list_files(str(bundle))
    if refused:
        raise InputError(refused[0], where=str(bundle))
    if dest.resolve() == bundle.resolve() or bundle.resolve() in dest.resolve().parents:
        raise InputError("the archive cannot go inside the bundle it archives", where=str(dest))
    directories = {str(parent) for f in files for parent in PurePosixPath(f).parents}
    names = sorted([*directories - {"."}, *files])  # a directory sorts before its contents
    archive = dest / f"{top}.tar"
    with atomic_write(archive) as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_entry(top, mtime, directory=True))
            for name in names:
                path = bundle / name
                if name in directories:
                    tar.addfile(_entry(f"{top}/{name}", mtime, directory=True))
                    continue
                try:
                    with path.open("rb") as data:
                        size = os.fstat(data.fileno()).st_size
                        tar.addfile(_entry(f"{top}/{name}", mtime, size=size), data)
                except OSError as exc:  # reading the bundle or writing the archive
                    raise filesystem_error(exc, path, action="cannot archive") from None
    sha256, _ = file_digest(archive)
    atomic_write_text(archive.with_name(archive.name + ".sha256"), f"{sha256}  {archive.name}\n")
    return archive, sha256


_KINDS = {
    tarfile.SYMTYPE: "symbolic link",
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
}


def _check_members(members: list[tarfile.TarInfo], dest: Path, where: str) -> str:
    """Refuse anything that is not a plain file or directory under one top directory."""
    seen: set[str] = set()
    tops: set[str] = set()
    for info in members:
        name = info.name.rstrip("/") if info.isdir() else info.name
        safe_join(dest, name, what=where)  # no absolute names, "..", "." or backslashes
        if not (info.isreg() or info.isdir()):
            kind = _KINDS.get(info.type, f"entry of type {info.type!r}")
            raise InputError(f"refusing {kind} {name!r}", where=where)
        if name in seen:
            raise InputError(f"refusing duplicate entry {name!r}", where=where)
        seen.add(name)
        if "/" not in name and not info.isdir():
            raise InputError(f"refusing {name!r}: not inside a top-level directory", where=where)
        tops.add(name.split("/", 1)[0])
    if len(tops) != 1:
        found = ", ".join(repr(t) for t in sorted(tops)[:3]) or "nothing"
        raise InputError(f"expected one top-level directory, found {found}", where=where)
    return tops.pop()


_BLOCK = 512
_ZERO = bytes(_BLOCK)
_MAGIC = b"ustar\x0000"  # POSIX ustar, which PAX extends (GNU's own is "ustar  \0")
_DATA_TYPES = b"0\x00xg"  # regular files and PAX headers carry data
_NO_DATA_TYPES = b"123456"  # links, devices, directories, FIFOs: _check_members names them


class _LayoutError(Exception):
    """Where the layout breaks; check_layout turns it into an InputError."""


def _octal(field: bytes, what: str, offset: int) -> int:
    text = field.rstrip(b"\x00 ").lstrip(b" ")
    if not text or any(c not in b"01234567" for c in text):
        raise _LayoutError(f"bad {what} field in the header at byte {offset}")
    return int(text, 8)


def check_layout(archive: Path) -> int:
    """Refuse a tar that is not exactly headers and members, then the end of the archive.

    Checks every header's checksum, magic, type and size, that each member's
    padding is zero, that two zero blocks end the archive and that nothing but
    zeros follows. Reads headers and padding only; data is skipped.

    :returns: the number of entries (headers other than PAX extended headers).
    :raises InputError: at the first byte that breaks the layout, with its offset.
    """
    try:
        return _count_entries(archive)
    except _LayoutError as exc:
        raise InputError(f"not a readable tar archive: {exc}", where=str(archive)) from None


def _count_entries(archive: Path) -> int:
    entries = 0
    with archive.open("rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        offset = 0
        while True:
            header = handle.read(_BLOCK)
            if len(header) < _BLOCK:
                raise _LayoutError(
                    f"truncated at byte {offset}: no end-of-archive blocks")
            if header == _ZERO:
                break
            stored = _octal(header[148:156], "checksum", offset)
            computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
            if stored != computed:
                raise _LayoutError(f"bad header checksum at byte {offset}")
            if header[257:265] != _MAGIC:
                raise _LayoutError(f"not a POSIX ustar header at byte {offset}")
            kind = header[156:157]
            size = _octal(header[124:136], "size", offset)
            if len(kind) != 1 or kind not in _DATA_TYPES + _NO_DATA_TYPES or (
                kind in _NO_DATA_TYPES and size
            ):
                raise _LayoutError(
                    f"unexpected entry type {kind!r} at byte {offset}")
            if kind not in b"xg":
                entries += 1
            padded = -(-size // _BLOCK) * _BLOCK
            end = offset + _BLOCK + padded
            if end > total:
                raise _LayoutError(f"member at byte {offset} is truncated")
            if padded != size:
                handle.seek(offset + _BLOCK + size)
                if handle.read(padded - size).count(0) != padded - size:
                    raise _LayoutError(f"non-zero padding after the member at byte {offset}")
            handle.seek(end)
            offset = end
        # The end of the archive: a second zero block, then only zeros (record padding).
        while block := handle.read(64 * 1024):
            if block.count(0) != len(block):
                raise _LayoutError(
                    f"data after the end-of-archive blocks at byte {offset}")
        if total - offset < 2 * _BLOCK:
            raise _LayoutError(
                f"truncated at byte {offset}: one end-of-archive block, not two")
    return entries


def check_digest_file(archive: Path) -> None:
    """Check ``<archive>.sha256`` (``sha256sum`` format) against the archive, when present.

    :raises IntegrityError: it names another file, is malformed, or gives another sha256.
    """
    digest_file = archive.with_name(archive.name + ".sha256")
    try:
        with digest_file.open("rb") as handle:
            text = handle.read(4096).decode("utf-8", "replace")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise filesystem_error(exc, digest_file, action="cannot read") from None
    fields = text.split()
    if len(fields) != 2 or fields[1].lstrip("*") != archive.name or len(fields[0]) != 64:
        raise IntegrityError(
            f"not a sha256sum line for {archive.name}", where=str(digest_file)
        )
    sha256, _ = file_digest(archive)
    if sha256 != fields[0].lower():
        raise IntegrityError(
            f"sha256 {sha256}, expected {fields[0]} ({digest_file.name})",
            where=str(archive),
            hint="the archive was changed or damaged in transfer; copy it again",
        )


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a bundle archive into ``dest``; return the bundle directory it holds.

    Every entry is checked before anything is written; the bundle directory must
    not exist yet, and files are created exclusively, so nothing outside it (or
    already in it) is ever written.

    :raises InputError: for an unreadable archive, one that is not exactly
        headers and members (:func:`check_layout`), or an entry that is absolute,
        contains ``..``, is a link, device or FIFO, is duplicated, or is not
        under the one top-level directory.
    :raises IntegrityError: ``<archive>.sha256`` does not match.
    """
    where = str(archive)
    try:
        check_digest_file(archive)
        entries = check_layout(archive)
        with tarfile.open(archive, "r:") as tar:
            members = tar.getmembers()
            if len(members) != entries:  # pragma: no cover - check_layout saw them all
                raise InputError(
                    f"{entries} entries, but tarfile reads {len(members)}", where=where
                )
            top = _check_members(members, dest, where)
            root = dest / top
            if root.exists():
                raise InputError(f"{root} already exists", where=where)
            for info in members:
                path = safe_join(dest, info.name.rstrip("/"), what=where)
                if info.isdir():
                    path.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                source = tar.extractfile(info)
                if source is None:  # pragma: no cover - only regular files get here
                    raise InputError(f"unreadable entry {info.name!r}", where=where)
                with source, path.open("xb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"not a readable tar archive: {exc}", where=where) from None
    except OSError as exc:
        raise filesystem_error(exc, Path(where), action="cannot extract") from None
    return root
