"""Downloads into the content-addressed cache, verified while streaming.

A file enters the cache only under the sha256 of its bytes, only after that
digest (and the size, when known) matched what the index or lock promised, and
only by an atomic rename. A failed or interrupted download leaves at most a
``.part`` file in the cache's temporary area, never a cache entry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from lockship._fs import fsync_dir
from lockship._urls import redact_url, url_to_path
from lockship.cache import Cache
from lockship.errors import FilesystemError, HashMismatchError
from lockship.hashing import HashingWriter
from lockship.http import HttpClient

__all__ = ["download_to_cache"]


def download_to_cache(
    http: HttpClient,
    cache: Cache,
    url: str,
    *,
    sha256: Optional[str],
    size: Optional[int],
    what: str,
) -> tuple[Path, str, int]:
    """Make sure the file at ``url`` is in the cache; return (path, sha256, size).

    :param sha256: the expected digest; when None (a find-links page without
        hashes) the file is accepted and its digest computed.
    :raises HashMismatchError: when the bytes do not match; nothing is cached.
    :raises NetworkError: when the download fails after retries.
    """
    if sha256 is not None and cache.has_file(sha256, size):
        return cache.file_path(sha256), sha256, cache.file_path(sha256).stat().st_size
    if url.startswith("file:") and sha256 is None:
        local = Path(url_to_path(url))
        digest, actual = cache.local_file_sha256(local)
        if cache.has_file(digest, actual):
            return cache.file_path(digest), digest, actual
    tmp_dir = cache.root / "tmp"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    except OSError as exc:
        raise FilesystemError(
            f"cannot write to the cache: {exc.strerror}", where=str(tmp_dir)
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            writer = HashingWriter(sink, limit=size)
            try:
                with http.stream(
                    url, headers={"Accept-Encoding": "identity"}, what=what
                ) as response:
                    for chunk in response.chunks():
                        writer.write(chunk)
            except ValueError:
                writer.size += 1  # the server sent more than promised
            sink.flush()
            os.fsync(sink.fileno())
        digest = writer.hexdigest()
        if (sha256 is not None and digest != sha256) or (size is not None and writer.size != size):
            raise HashMismatchError(
                what=what,
                url=redact_url(url),
                expected_sha256=sha256 or digest,
                actual_sha256=digest,
                expected_size=size,
                actual_size=writer.size,
            )
        final = cache.file_path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(final)
        fsync_dir(final.parent)
    except OSError as exc:
        raise FilesystemError(
            f"cannot write to the cache: {exc.strerror}", where=str(tmp)
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return final, digest, writer.size
