"""Downloads into the content-addressed cache, verified while streaming.

A file enters the cache only under the sha256 of its bytes, only after that
digest and the size matched what the lock (or index) promised, and only by an
atomic rename. Until then its bytes live in ``partial/<sha256>.part``, guarded
by an advisory lock so two processes never write the same partial file:

- an interrupted download (Ctrl-C, kill -9, a dropped connection) resumes
  from the partial file with an HTTP Range request when the server honours
  it, and starts over when it does not;
- transient failures are retried with exponential backoff;
- a server that sends more bytes than promised, or bytes that do not hash to
  the expected digest, is refused: the partial file is deleted and nothing
  enters the cache.
"""

from __future__ import annotations

import http.client as http_client
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from urllib3.exceptions import HTTPError as Urllib3Error

from lockship._fs import exclusive_lock, filesystem_error, fsync_dir
from lockship._urls import redact_url
from lockship.cache import Cache
from lockship.errors import HashMismatchError, IntegrityError, NetworkError
from lockship.hashing import HashingWriter, file_digest
from lockship.http import Fetcher

__all__ = ["download_to_cache"]

Progress = Callable[[int], None]  # called with each count of new bytes received


def _no_progress(_count: int) -> None:
    pass


def download_to_cache(
    http: Fetcher,
    cache: Cache,
    url: str,
    *,
    sha256: Optional[str],
    size: Optional[int],
    what: str,
    progress: Progress = _no_progress,
) -> tuple[Path, str, int]:
    """Make sure the file at ``url`` is in the cache; return (path, sha256, size).

    :param sha256: the expected digest. None (an index page without hashes)
        accepts the file as it comes and computes its digest; such downloads
        are not resumable.
    :raises IntegrityError: when the bytes do not match (HashMismatchError), or
        the server sends more than ``size`` bytes; nothing is cached.
    :raises NetworkError: when the download still fails after the retries.
    """
    if sha256 is None:
        return _download_unknown(http, cache, url, what=what, progress=progress)
    final = cache.file_path(sha256)
    if cache.has_file(sha256, size):
        return final, sha256, final.stat().st_size
    partial = cache.root / "partial" / f"{sha256}.part"
    with exclusive_lock(cache.root / "partial" / f"{sha256}.lock", what=what):
        if cache.has_file(sha256, size):  # another process finished it while we waited
            return final, sha256, final.stat().st_size
        restarted = False
        while True:
            try:
                actual = _resumable(http, url, partial, size=size, what=what, progress=progress)
            except IntegrityError:  # too many bytes: never resume from them
                partial.unlink(missing_ok=True)
                raise
            if actual == sha256 and (size is None or partial.stat().st_size == size):
                break
            got = partial.stat().st_size
            partial.unlink(missing_ok=True)
            if restarted:
                raise HashMismatchError(
                    what=what,
                    url=redact_url(url),
                    expected_sha256=sha256,
                    actual_sha256=actual,
                    expected_size=size,
                    actual_size=got,
                )
            restarted = True  # once more from scratch: a proxy may have mangled one transfer
        _publish(partial, final)
    return final, sha256, final.stat().st_size


def _publish(partial: Path, final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.chmod(0o444)  # immutable: bundles may hard-link or reflink cache files
        partial.replace(final)
        fsync_dir(final.parent)
    except OSError as exc:
        raise filesystem_error(exc, final, action="cannot write to the cache") from None


class _DroppedError(NetworkError):
    """The connection broke mid-body; what arrived is kept for a resume."""


def _resumable(
    http: Fetcher,
    url: str,
    partial: Path,
    *,
    size: Optional[int],
    what: str,
    progress: Progress,
) -> str:
    """Complete ``partial`` from ``url``; return the sha256 of its whole content."""
    attempt = 0
    while True:
        try:
            return _continue(http, url, partial, size=size, what=what, progress=progress)
        except _DroppedError:
            # Errors at connection time were already retried by the client;
            # a body cut short is resumed here from what arrived.
            if attempt >= http.retries:
                raise
            time.sleep(http.backoff * (2**attempt))
            attempt += 1


def _continue(
    http: Fetcher,
    url: str,
    partial: Path,
    *,
    size: Optional[int],
    what: str,
    progress: Progress,
) -> str:
    partial.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have >= size:
        if have == size:  # complete, but the run stopped before publishing it
            return file_digest(partial)[0]
        partial.unlink()
        have = 0
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with http.stream(url, headers=headers, what=what, ok=(200, 206, 416)) as response:
            if response.status == 416:  # our partial file is longer than the server's file
                partial.unlink()
                progress(-have)
                return _continue(http, url, partial, size=size, what=what, progress=progress)
            resumed = have > 0 and response.status == 206 and response.headers.get(
                "content-range", ""
            ).startswith(f"bytes {have}-")
            with partial.open("r+b" if resumed else "wb") as sink:
                writer = HashingWriter(sink, limit=size)
                if resumed:
                    writer.seed(sink)  # hash what is there; leaves the file at its end
                elif have:
                    progress(-have)  # the server ignored Range: start over
                try:
                    for chunk in response.chunks():
                        writer.write(chunk)
                        progress(len(chunk))
                except ValueError:
                    raise _too_long(url, size, what) from None
                except (Urllib3Error, http_client.HTTPException, ConnectionError) as exc:
                    sink.flush()
                    raise _DroppedError(
                        f"connection dropped while downloading {what}: {exc.__class__.__name__}",
                        where=redact_url(url),
                    ) from None
                sink.flush()
                os.fsync(sink.fileno())
                return writer.hexdigest()
    except OSError as exc:
        raise filesystem_error(exc, partial, action="cannot write to the cache") from None


def _too_long(url: str, size: Optional[int], what: str) -> IntegrityError:
    return IntegrityError(
        f"the server sent more than the {size} bytes the lock promises; "
        f"the download was stopped and discarded (from {redact_url(url)})",
        where=what,
    )


def _download_unknown(
    http: Fetcher, cache: Cache, url: str, *, what: str, progress: Progress
) -> tuple[Path, str, int]:
    tmp_dir = cache.root / "partial"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    except OSError as exc:
        raise filesystem_error(exc, tmp_dir, action="cannot write to the cache") from None
    os.close(fd)
    tmp = Path(name)
    try:
        digest = _resumable(http, url, tmp, size=None, what=what, progress=progress)
        final = cache.file_path(digest)
        if not final.exists():
            _publish(tmp, final)
        return final, digest, final.stat().st_size
    finally:
        tmp.unlink(missing_ok=True)
