"""A package universe served from memory through lockship's ``Fetcher`` seam.

Resolver tests describe small universes as data (project -> version -> its
Requires-Dist lines) and resolve them without sockets or files: index pages
are PEP 691 JSON, and every wheel advertises PEP 658 metadata, which is all
the resolver reads. Requests are recorded, so tests can assert what was asked.

    universe = {"a": {"1.0": ["b>=2"]}, "b": {"2.0": [], "1.0": []}}
    fetcher = MemoryIndex(universe)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional, Union

from packaging.utils import canonicalize_name

from lockship.errors import NetworkError
from lockship.http import Response, StreamResponse

__all__ = ["INDEX_URL", "MemoryIndex", "Release"]

INDEX_URL = "https://memory.invalid/simple"
FILES_URL = "https://memory.invalid/files"

Release = Union[Sequence[str], Mapping[str, Any]]
"""A version's Requires-Dist lines, or a dict with ``requires`` and optionally
``requires_python``, ``extras`` (Provides-Extra), ``tag`` (wheel tag, default
py3-none-any) and ``yanked``."""


class MemoryIndex:
    """A ``Fetcher`` (lockship.http) answering from ``universe``."""

    offline = False
    retries = 0
    backoff = 0.0

    def __init__(self, universe: Mapping[str, Mapping[str, Release]]) -> None:
        self.requests: list[str] = []
        self._pages: dict[str, bytes] = {}
        self._metadata: dict[str, bytes] = {}
        for project, releases in universe.items():
            name = canonicalize_name(project)
            files = []
            for version, release in releases.items():
                spec: Mapping[str, Any] = (
                    release if isinstance(release, Mapping) else {"requires": release}
                )
                filename = f"{name.replace('-', '_')}-{version}-{spec.get('tag', 'py3-none-any')}.whl"
                metadata = _metadata(project, version, spec).encode()
                self._metadata[f"{FILES_URL}/{filename}.metadata"] = metadata
                entry: dict[str, Any] = {
                    "filename": filename,
                    "url": f"{FILES_URL}/{filename}",
                    # Stand-in digests: the resolver never downloads a wheel.
                    "hashes": {"sha256": hashlib.sha256(filename.encode()).hexdigest()},
                    "size": 1000,
                    "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                    "upload-time": "2024-01-01T00:00:00Z",
                }
                if spec.get("requires_python"):
                    entry["requires-python"] = spec["requires_python"]
                if spec.get("yanked"):
                    entry["yanked"] = True
                files.append(entry)
            page = {"meta": {"api-version": "1.1"}, "name": name, "files": files}
            self._pages[f"{INDEX_URL}/{name}/"] = json.dumps(page).encode()

    def get(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
        max_bytes: int = 0,
    ) -> Response:
        self.requests.append(url)
        if url in self._pages:
            type_ = {"content-type": "application/vnd.pypi.simple.v1+json"}
            return Response(url, 200, type_, self._pages[url])
        if url in self._metadata:
            return Response(url, 200, {}, self._metadata[url])
        if 404 in ok:
            return Response(url, 404, {}, b"")
        raise NetworkError(f"HTTP 404 while fetching {what}", where=url)

    @contextlib.contextmanager
    def stream(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
    ) -> Iterator[StreamResponse]:
        response = self.get(url, headers=headers, what=what, ok=ok)
        yield StreamResponse(url, response.status, response.headers, io.BytesIO(response.body))


def _metadata(project: str, version: str, spec: Mapping[str, Any]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project}", f"Version: {version}"]
    if spec.get("requires_python"):
        lines.append(f"Requires-Python: {spec['requires_python']}")
    lines += [f"Provides-Extra: {extra}" for extra in spec.get("extras", ())]
    lines += [f"Requires-Dist: {line}" for line in spec.get("requires", ())]
    return "\n".join(lines) + "\n\n"
