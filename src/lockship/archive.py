"""One deterministic tar file per signed bundle, and extraction that cannot escape.

The archive is an uncompressed tar (wheels are already compressed, and stock
``tar -xf`` reads it) in POSIX.1-2001 (PAX) format, which stores names longer
than 100 characters without GNU extensions and adds nothing variable for short
ones. Entries are sorted, directories included, all under one top-level
directory named after the bundle; every entry has the same mtime, uid/gid 0,
empty owner names and mode 0644 (files) or 0755 (directories). The same
bundle therefore always gives the same bytes, and ``<archive>.sha256`` can be
published ahead of the transfer.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from lockship._fs import atomic_write, atomic_write_text, filesystem_error, safe_join
from lockship._install_script import list_files
from lockship.errors import InputError
from lockship.hashing import file_digest
from lockship.models import DEFAULT_SOURCE_DATE_EPOCH, source_date_epoch
from lockship.sign import read_record

__all__ = ["DEFAULT_MTIME", "archive_mtime", "extract_archive", "write_archive"]

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


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a bundle archive into ``dest``; return the bundle directory it holds.

    Every entry is checked before anything is written; the bundle directory must
    not exist yet, and files are created exclusively, so nothing outside it (or
    already in it) is ever written.

    :raises InputError: for an unreadable archive, or an entry that is absolute,
        contains ``..``, is a link, device or FIFO, is duplicated, or is not
        under the one top-level directory.
    """
    where = str(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
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
