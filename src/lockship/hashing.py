"""Streaming digests: every byte lockship trusts is hashed and counted once.

Files are read in 128 KiB blocks into one reused buffer, so memory stays flat
whatever the file size (a torch wheel is 700+ MB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Optional

__all__ = ["CHUNK", "HashingWriter", "file_digest", "is_sha256_hex"]

CHUNK = 128 * 1024


def is_sha256_hex(value: str) -> bool:
    """Tell whether ``value`` is 64 lowercase hex digits."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def file_digest(path: Path) -> tuple[str, int]:
    """Return ``(sha256 hex, size in bytes)`` of ``path``, reading it in blocks."""
    digest = hashlib.sha256()
    size = 0
    buffer = memoryview(bytearray(CHUNK))
    with path.open("rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(buffer[:count])
            size += count
    return digest.hexdigest(), size


class HashingWriter:
    """Write through to ``sink`` while computing sha256 and counting bytes.

    :param limit: refuse (``ValueError``) to accept more than this many bytes,
        so a server cannot fill the disk past the size the lock promised.
    """

    def __init__(self, sink: IO[bytes], *, limit: Optional[int] = None) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0
        self._limit = limit

    def write(self, data: bytes) -> None:
        if self._limit is not None and self.size + len(data) > self._limit:
            raise ValueError(f"more than the expected {self._limit} bytes")
        self._digest.update(data)
        self._sink.write(data)
        self.size += len(data)

    def seed(self, existing: IO[bytes]) -> None:
        """Account for bytes already in ``sink`` (a resumed download) without rewriting them."""
        while True:
            block = existing.read(CHUNK)
            if not block:
                break
            self._digest.update(block)
            self.size += len(block)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()
