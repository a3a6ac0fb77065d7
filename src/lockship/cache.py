"""The user cache: content-addressed files, metadata keyed by file hash, index pages.

Layout under ``$LOCKSHIP_CACHE_DIR`` (default: the platform's user cache dir)::

    v1/files/ab/<sha256>          verified distribution files (immutable)
    v1/metadata/ab/<sha256>       core metadata of the file with that sha256 (immutable)
    v1/simple/<index-key>/<name>.json   normalized project pages, with fetch time
    v1/local-hashes/<key>.json    sha256 of find-links files by (path, size, mtime)
    v1/builds/ab/<build key>/     a wheel built from an sdist, and build.json (how,
                                  and the wheel's sha256, checked on every use)
    v1/placed/ab/<path key>       a bundle file's stat when it was last verified
    v1/osv/ab/<sha256>            the index of an OSV database with those contents (advisories.py)

Entries keyed by a sha256 are written only after the bytes were verified, and
atomically, so they can be trusted and kept forever. Two processes sharing a
cache at once is safe: each write is a rename of a complete temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import platformdirs

from lockship._fs import atomic_write_bytes
from lockship.hashing import file_digest, is_sha256_hex

__all__ = ["Cache", "default_cache_dir"]


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    override = environ.get("LOCKSHIP_CACHE_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("lockship", appauthor=False))


class Cache:
    """Access to the cache directory; every method is safe to call from threads."""

    def __init__(self, root: Path) -> None:
        self.root = root / "v1"

    def _blob(self, kind: str, sha256: str) -> Path:
        if not is_sha256_hex(sha256):
            msg = f"not a sha256 digest: {sha256!r}"
            raise ValueError(msg)
        return self.root / kind / sha256[:2] / sha256

    # --- files -------------------------------------------------------------

    def file_path(self, sha256: str) -> Path:
        return self._blob("files", sha256)

    def has_file(self, sha256: str, size: Optional[int] = None) -> bool:
        path = self.file_path(sha256)
        try:
            actual = path.stat().st_size
        except OSError:
            return False
        return size is None or actual == size

    # --- metadata ----------------------------------------------------------

    def get_metadata(self, sha256: str) -> Optional[bytes]:
        try:
            return self._blob("metadata", sha256).read_bytes()
        except OSError:
            return None

    def put_metadata(self, sha256: str, data: bytes) -> None:
        atomic_write_bytes(self._blob("metadata", sha256), data)

    # --- advisory database indexes -------------------------------------------

    def get_advisory_index(self, sha256: str) -> Optional[bytes]:
        try:
            return self._blob("osv", sha256).read_bytes()
        except OSError:
            return None

    def put_advisory_index(self, sha256: str, data: bytes) -> None:
        atomic_write_bytes(self._blob("osv", sha256), data)

    # --- index pages -------------------------------------------------------

    def _page_path(self, index: str, project: str) -> Path:
        key = hashlib.sha256(index.encode()).hexdigest()[:16]
        return self.root / "simple" / key / f"{project}.page"

    # A page is stored as one JSON header line, then one line per version:
    # "<version>\t<JSON array of that version's entries>". The arrays stay text
    # until a version is looked at; nesting them in one JSON document would
    # cost an escaping pass on every write and a full parse on every read.

    def get_page(self, index: str, project: str) -> Optional[tuple[dict[str, Any], dict[str, str]]]:
        """(header, {version text: JSON text of its entries}) or None."""
        try:
            lines = self._page_path(index, project).read_bytes().decode("utf-8").split("\n")
            header = json.loads(lines[0])
        except (OSError, ValueError):
            return None
        if not isinstance(header, dict) or lines[-1] != "":
            return None  # a truncated file is a miss, not an error
        versions = dict(line.split("\t", 1) for line in lines[1:-1] if "\t" in line)
        return header, versions

    def put_page(
        self, index: str, project: str, header: Mapping[str, Any], versions: Mapping[str, str]
    ) -> None:
        out = [json.dumps(header, sort_keys=True)]
        out += [f"{text}\t{entries}" for text, entries in versions.items()]
        atomic_write_bytes(self._page_path(index, project), ("\n".join(out) + "\n").encode())

    # --- wheels built from sdists ------------------------------------------------
    #
    # Keyed by sdists.build_key(): the sdist's sha256 and everything else that goes
    # into the build, so a wheel built another way is never reused for this one.

    def built_wheel(self, key: str) -> Optional[Path]:
        """The wheel built earlier under this build key, if any."""
        directory = self._blob("builds", key)
        wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
        return wheels[0] if len(wheels) == 1 else None

    def build_staging(self, key: str) -> Path:
        """A fresh private directory to build into (same filesystem as the cache)."""
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"build-{key[:12]}-", dir=staging))

    def build_info(self, key: str) -> Optional[dict[str, Any]]:
        """How the cached wheel was built (backend, environment) and its sha256 and size."""
        try:
            data = json.loads((self._blob("builds", key) / "build.json").read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def store_built_wheel(self, key: str, wheel: Path, info: Mapping[str, Any]) -> Path:
        """Publish a built wheel and its build record; if another process was first, keep theirs.

        The record holds the wheel's sha256 and size, against which it is checked on use.
        """
        directory = self._blob("builds", key)
        directory.mkdir(parents=True, exist_ok=True)
        record = directory / "build.json"
        sha256, size = file_digest(wheel)
        if not record.exists():
            document = {**info, "wheel_sha256": sha256, "wheel_size": size}
            atomic_write_bytes(record, json.dumps(document, sort_keys=True).encode())
        final = directory / wheel.name
        try:
            os.link(wheel, final)  # fails if it exists: first writer wins
        except FileExistsError:
            pass
        except OSError:
            shutil.copyfile(wheel, final.with_suffix(".tmp"))
            final.with_suffix(".tmp").replace(final)
        shutil.rmtree(wheel.parent, ignore_errors=True)
        existing = self.built_wheel(key)
        return existing if existing is not None else final

    def remove_build(self, key: str) -> None:
        """Forget a built wheel (its bytes no longer match its record)."""
        shutil.rmtree(self._blob("builds", key), ignore_errors=True)

    # --- files placed in bundles ---------------------------------------------------

    def _placed_record(self, path: Path) -> Path:
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
        return self.root / "placed" / key[:2] / key

    @staticmethod
    def _stamp(path: Path, sha256: str) -> list[object]:
        stat = path.stat()
        return [sha256, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]

    def remember_placed(self, path: Path, sha256: str) -> None:
        """Note that ``path`` (a bundle file) was verified to hash to ``sha256`` as it is now."""
        stamp = json.dumps(self._stamp(path, sha256)).encode()
        atomic_write_bytes(self._placed_record(path), stamp)

    def placed_intact(self, path: Path, sha256: str) -> bool:
        """Tell whether ``path`` is unchanged since it was verified to hash to ``sha256``.

        Any write to the file changes its ctime, which no one can set back; a
        file replaced by another has another inode.
        """
        try:
            recorded = json.loads(self._placed_record(path).read_bytes())
            return bool(recorded == self._stamp(path, sha256))
        except (OSError, ValueError):
            return False

    # --- local files (find-links) ----------------------------------------------

    def local_file_sha256(self, path: Path) -> tuple[str, int]:
        """sha256 and size of a local file, remembered by (path, size, mtime)."""
        stat = path.stat()
        key = hashlib.sha256(
            f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        ).hexdigest()
        record = self.root / "local-hashes" / key[:2] / f"{key}.json"
        try:
            data = json.loads(record.read_bytes())
            return str(data["sha256"]), int(data["size"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        sha256, size = file_digest(path)
        atomic_write_bytes(record, json.dumps({"sha256": sha256, "size": size}).encode())
        return sha256, size
