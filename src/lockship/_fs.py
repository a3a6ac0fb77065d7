"""Filesystem helpers: atomic writes, advisory locks and safe paths.

Nothing lockship writes is ever visible half-done: content goes to a temporary
file in the destination directory, is fsynced, and is renamed into place with
``os.replace`` (atomic on POSIX and Windows within one filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Optional, Union

from lockship.errors import BusyError, FilesystemError, InputError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "exclusive_lock",
    "filesystem_error",
    "fsync_dir",
    "safe_join",
]

StrPath = Union[str, "os.PathLike[str]"]


def filesystem_error(
    exc: OSError, path: Path, *, action: str = "cannot write"
) -> FilesystemError:
    """What failed and where; for a full disk or a permission problem, what to do."""
    reason = exc.strerror or str(exc)
    hint = None
    if exc.errno == errno.ENOSPC:
        hint = "free some space or choose another output directory"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "check the directory's permissions"
    return FilesystemError(f"{action}: {reason}", where=str(path), hint=hint)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where unsupported)."""
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: StrPath, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is left as it was.

    :raises FilesystemError: when the directory cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise filesystem_error(exc, target) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise filesystem_error(exc, target) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: StrPath, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, mode=mode) as handle:
        handle.write(data)


def atomic_write_text(path: StrPath, text: str, *, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` with ``\\n`` line endings to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def exclusive_lock(
    path: StrPath, *, what: str, wait: Optional[float] = None
) -> Iterator[None]:
    """Hold an advisory exclusive lock on ``path`` (created if missing).

    :param what: names the resource in the error message.
    :param wait: seconds to wait for another holder; ``None`` waits forever.
    :raises BusyError: when ``wait`` expires while another process holds it.
    """
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover - lockship's offline side is POSIX
            yield
            return
        import fcntl  # noqa: PLC0415 - POSIX only

        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise BusyError(
                        f"{what} is in use by another lockship process",
                        hint="wait for it to finish, or use another output directory",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def safe_join(root: Path, relative: str, *, what: str) -> Path:
    """Join ``relative`` (a '/'-separated name from an untrusted source) under ``root``.

    Refuses absolute paths, drive letters, ``..`` segments, backslashes and
    NUL bytes, so the result can never point outside ``root``.

    :raises InputError: for any name that could escape ``root``.
    """
    bad = (
        not relative
        or relative.startswith(("/", "\\"))
        or "\\" in relative
        or "\0" in relative
        or (len(relative) > 1 and relative[1] == ":")
        or any(part in ("", ".", "..") for part in relative.split("/"))
    )
    if bad:
        raise InputError(f"refusing unsafe path {relative!r}", where=what)
    return root.joinpath(*relative.split("/"))
