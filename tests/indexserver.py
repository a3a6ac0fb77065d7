"""A real HTTP/1.1 package index on 127.0.0.1 for hermetic tests.

``IndexServer`` serves registered wheels and sdists through a PEP 503 (HTML) /
PEP 691 (JSON) simple API with PEP 592 yanking, PEP 658/714 core metadata and
PEP 700 sizes, versions and upload times, plus byte ranges, Basic auth and
injectable faults. Files are streamed from disk in chunks, so tests may serve
large files.

It can also misbehave the way a hostile or unusual index does: answer Range
requests from another file than the full download (``add(range_twin=...)``),
link files with a query string it demands (``file_query``, like a pre-signed
object-store URL) or at another host (``add(link=...)``), and take a file
back (``remove``) so that a re-upload can replace it.

Typical use::

    with IndexServer(formats="json") as server:
        server.add(make_wheel(tmp_path, "foo", "1.0"))
        server.add_fault("/files/foo-*", "truncate", count=1, after=10)
        ... point the code under test at server.simple_url ...
        assert [r.path for r in server.requests] == [...]
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import fnmatch
import hashlib
import html
import http.server
import json
import socket
import socketserver
import struct
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Optional, Union
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FAULT_KINDS", "HTML_TYPE", "JSON_TYPE", "Fault", "IndexServer", "RequestRecord"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
_JSON_TYPES = frozenset({JSON_TYPE, "application/vnd.pypi.simple.latest+json"})
_HTML_TYPES = frozenset(
    {HTML_TYPE, "application/vnd.pypi.simple.latest+html", "text/html", "text/*", "*/*"}
)
_OCTET = "application/octet-stream"
_FIRST_UPLOAD = datetime(2024, 1, 1, tzinfo=timezone.utc)
_CHUNK = 64 * 1024
_SLOW_CHUNK = 16 * 1024
_HASH_BLOCK = 1024 * 1024

# Accepted parameters per fault kind; the values are the defaults (None: required).
FAULT_KINDS: Mapping[str, Mapping[str, Any]] = {
    "status": {"code": 500},
    "reset": {"after": 0},
    "truncate": {"after": 0},
    "corrupt": {"offset": -1},  # -1: the middle of the body
    "delay": {"seconds": 0.0, "per_chunk": 0.0},
    "ignore_range": {},
    "redirect": {"location": None},
    "body": {"data": None, "content_type": None},
}


@dataclass
class RequestRecord:
    """One request as the server saw and answered it.

    ``status`` is set before the headers go out and ``bytes_sent`` grows before
    each body chunk is written, so a client that has its answer always finds the
    record complete (records are appended when the request line is read).
    """

    method: str
    path: str
    range: Optional[str]
    has_authorization: bool
    query: str = ""
    accept: Optional[str] = None
    status: int = 0
    bytes_sent: int = 0  # body bytes only
    content_type: Optional[str] = None
    fault: Optional[str] = None


@dataclass
class Fault:
    path_glob: str
    kind: str
    remaining: Optional[int]  # None: every matching request
    params: dict[str, Any]


@dataclass
class _Dist:
    filename: str
    path: Path
    project: str
    version: Optional[str]
    sha256: str
    size: int
    upload_time: datetime
    yanked: Union[bool, str]
    requires_python: Optional[str]
    metadata: Optional[bytes]  # the wheel's METADATA, served as <file>.metadata
    range_twin: Optional[Path] = None  # Range requests are answered from this file
    link: Optional[str] = None  # the page links here instead of to /files/<name>

    @property
    def metadata_sha256(self) -> Optional[str]:
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()


@dataclass
class _Body:
    """Response body: in-memory bytes, or a region of a file streamed from disk."""

    length: int
    data: bytes = b""
    path: Optional[Path] = None
    offset: int = 0

    @classmethod
    def of(cls, data: bytes) -> _Body:
        return cls(len(data), data=data)

    def chunks(self, size: int) -> Iterator[bytes]:
        if self.path is None:
            for start in range(0, self.length, size):
                yield self.data[start : start + size]
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            remaining = self.length
            while remaining > 0:
                chunk = handle.read(min(size, remaining))
                if not chunk:
                    raise OSError(f"{self.path} shrank while being served")
                remaining -= len(chunk)
                yield chunk


@dataclass
class _Response:
    status: int
    content_type: Optional[str] = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: _Body = field(default_factory=lambda: _Body(0))
    cut_after: Optional[int] = None  # stop the body after this many bytes and close
    abort: bool = False  # with cut_after: close with a TCP reset instead of a FIN
    corrupt_at: Optional[int] = None  # flip this body byte
    chunk_delay: float = 0.0


def _text(status: int, message: str) -> _Response:
    return _Response(status, "text/plain; charset=utf-8", body=_Body.of(message.encode()))


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _wheel_metadata(path: Path, project: str) -> Optional[bytes]:
    """METADATA of the wheel's single (or project-named) top-level .dist-info."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) > 1:
                names = [n for n in names if canonicalize_name(n.split("-", 1)[0]) == project]
            return archive.read(names[0]) if len(names) == 1 else None
    except (OSError, zipfile.BadZipFile):
        return None  # a deliberately broken file is still served, just without metadata


def _sdist_pkg_info(path: Path) -> Optional[bytes]:
    if not path.name.endswith(".tar.gz"):
        return None
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.isfile() and PurePosixPath(member.name).parts[1:] == ("PKG-INFO",):
                    handle = archive.extractfile(member)
                    return None if handle is None else handle.read()
    except (OSError, tarfile.TarError):
        pass
    return None


def _requires_python(metadata: Optional[bytes]) -> Optional[str]:
    if metadata is None:
        return None
    headers = email.parser.BytesHeaderParser().parsebytes(metadata)
    value = headers.get("Requires-Python")
    return None if value is None else str(value)


def _iso(moment: datetime) -> str:
    """PEP 700 upload time: UTC ISO 8601 with ``Z``, fraction only when non-zero."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _accept_quality(accept: Optional[str]) -> tuple[float, float]:
    """Best q-values the Accept header gives (JSON, HTML); no header means HTML."""
    if not accept:
        return 0.0, 1.0
    best_json = best_html = 0.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media in _JSON_TYPES:
            best_json = max(best_json, quality)
        elif media in _HTML_TYPES:
            best_html = max(best_html, quality)
    return best_json, best_html


def _parse_range(header: str, size: int) -> Union[tuple[int, int], Literal["unsatisfiable"], None]:
    """Inclusive ``(first, last)`` for a single ``bytes=`` range; None: ignore the header."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multiple ranges may be ignored (RFC 9110 14.2)
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:  # suffix range: the last N bytes
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                return "unsatisfiable"
            return max(size - suffix, 0), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else None
    except ValueError:
        return None
    if first < 0 or (last is not None and last < first):
        return None
    if first >= size:
        return "unsatisfiable"
    return first, size - 1 if last is None else min(last, size - 1)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, index: IndexServer) -> None:
        self.index = index
        self.connections: set[socket.socket] = set()
        self.connections_changed = threading.Condition()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer is routine here (faults, timeouts).
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle's algorithm the
        # body of a keep-alive answer would wait ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_changed:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_changed:
                self.server.connections.discard(self.connection)
                self.server.connections_changed.notify_all()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the request log is IndexServer.requests

    def do_GET(self) -> None:
        self.server.index._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.index._handle(self, head=True)

    def abort(self, *, reset: bool) -> None:
        """Close the connection now: with a TCP reset (SO_LINGER 0) or a plain FIN."""
        self.close_connection = True
        if not reset:
            return  # socketserver shuts the socket down and closes it after us
        self.server.index._stopping.wait(0.05)  # let the bytes already sent arrive first
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the makefile() reader holds the socket open otherwise
        self.connection.close()


class IndexServer:
    """A PEP 503/691 package index on an ephemeral 127.0.0.1 port.

    The socket is bound at construction, so ``url`` is known at once; requests
    are answered after ``start()`` (or entering the context manager) and until
    ``stop()``. Always stop a constructed server.

    :param formats: which simple API formats project pages answer with; "both"
        negotiates through the Accept header (HTML unless JSON is preferred).
    :param advertise_metadata: announce PEP 658 core metadata for wheels.
    :param serve_metadata: answer ``<file>.metadata`` (else 404, even if advertised).
    :param range_support: honour Range requests; False always sends 200 and the whole file.
    :param auth: ``(user, password)`` that every request must send as Basic auth.
    :param upload_times: include PEP 700 ``upload-time`` in JSON pages.
    :param file_query: a query string (``X-Amz-Signature=...``) that file links
        carry and file requests must send, else 403; assign ``file_query`` to
        rotate it, as an object store's pre-signed links expire.
    """

    def __init__(
        self,
        *,
        formats: Literal["json", "html", "both"] = "both",
        advertise_metadata: bool = True,
        serve_metadata: bool = True,
        range_support: bool = True,
        auth: Optional[tuple[str, str]] = None,
        upload_times: bool = True,
        file_query: Optional[str] = None,
    ) -> None:
        if formats not in ("json", "html", "both"):
            raise ValueError(f"formats must be json, html or both, not {formats!r}")
        self.formats = formats
        self.advertise_metadata = advertise_metadata
        self.serve_metadata = serve_metadata
        self.range_support = range_support
        self.upload_times = upload_times
        self.file_query = file_query
        self._expected_auth: Optional[str] = None
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._expected_auth = f"Basic {token}"
        self._lock = threading.Lock()
        self._dists: dict[str, _Dist] = {}  # filename -> dist, in order of addition
        self._faults: list[Fault] = []
        self._requests: list[RequestRecord] = []
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._httpd = _Server(self)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self.simple_url = self.url + "/simple/"

    # ------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._stopped:
            raise RuntimeError("an IndexServer cannot be restarted")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"IndexServer {self.url}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # wakes delayed handlers
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        # Idle keep-alive connections would keep their handler threads reading.
        with self._httpd.connections_changed:
            for connection in list(self._httpd.connections):
                with contextlib.suppress(OSError):  # its handler may have closed it
                    connection.shutdown(socket.SHUT_RDWR)
            self._httpd.connections_changed.wait_for(lambda: not self._httpd.connections, timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------- content

    def add(
        self,
        path: Path,
        *,
        upload_time: Optional[datetime] = None,
        yanked: Union[bool, str] = False,
        requires_python: Optional[str] = None,
        project: Optional[str] = None,
        range_twin: Optional[Path] = None,
        link: Optional[str] = None,
    ) -> str:
        """Serve the wheel or sdist at ``path``; return its URL.

        :param upload_time: default: 2024-01-01T00:00:00Z plus one second per
            file added before this one.
        :param yanked: True, or the reason (PEP 592).
        :param requires_python: the advertised Requires-Python; default: the one
            in the file's METADATA / PKG-INFO; "" advertises none.
        :param project: list the file under this project instead of the one
            its filename names (canonicalized either way).
        :param range_twin: answer Range requests for this file with the bytes of
            ``range_twin`` (which must have the same size), and full requests
            with ``path``: the metadata a client reads by range then differs
            from the file it downloads. No PEP 658 metadata is advertised.
        :param link: the URL the project page gives for the file (another
            host, say), instead of this server's ``/files/<name>``.
        """
        path = Path(path)
        filename = path.name
        version: Optional[str] = None
        try:
            if filename.endswith(".whl"):
                parsed_name, parsed_version, _, _ = parse_wheel_filename(filename)
            else:
                parsed_name, parsed_version = parse_sdist_filename(filename)
            version = str(parsed_version)
            project = project if project is not None else parsed_name
        except (InvalidWheelFilename, InvalidSdistFilename):
            if project is None:
                raise  # say which project such a file belongs to with project=
        canonical = canonicalize_name(project)
        if filename.endswith(".whl"):
            metadata = _wheel_metadata(path, canonical)
            declared = metadata
        else:
            metadata = None
            declared = _sdist_pkg_info(path)
        if requires_python is None:
            requires_python = _requires_python(declared)
        sha256, size = _file_sha256(path)
        if range_twin is not None:
            metadata = None  # the twin's would be the honest answer; advertise none
            if Path(range_twin).stat().st_size != size:
                raise ValueError(f"{range_twin} and {path} differ in size")
        with self._lock:
            if filename in self._dists:
                raise ValueError(f"{filename} is already served")
            if upload_time is None:
                upload_time = _FIRST_UPLOAD + timedelta(seconds=len(self._dists))
            self._dists[filename] = _Dist(
                filename=filename,
                path=path,
                project=canonical,
                version=version,
                sha256=sha256,
                size=size,
                upload_time=upload_time,
                yanked=True if yanked == "" else yanked,
                requires_python=requires_python or None,
                metadata=metadata,
                range_twin=None if range_twin is None else Path(range_twin),
                link=link,
            )
        return self.file_url(filename)

    def remove(self, filename: str) -> None:
        """Stop serving ``filename`` (so that a re-upload may take its name)."""
        with self._lock:
            del self._dists[filename]

    def file_url(self, filename: str) -> str:
        """The URL the project page links ``filename`` at (with ``file_query``, if set)."""
        with self._lock:
            dist = self._dists.get(filename)
        if dist is not None and dist.link is not None:
            return dist.link
        query = f"?{self.file_query}" if self.file_query else ""
        return f"{self.url}/files/{quote(filename)}{query}"

    def project_url(self, project: str) -> str:
        return f"{self.simple_url}{canonicalize_name(project)}/"

    # ------------------------------------------------------------- faults and log

    def add_fault(
        self, path_glob: str, kind: str, *, count: Optional[int] = None, **params: Any
    ) -> None:
        """Misbehave on the next ``count`` requests whose path matches ``path_glob``.

        Kinds and parameters (see ``FAULT_KINDS`` for defaults): ``status``
        (code), ``reset`` (after: body bytes before a TCP reset), ``truncate``
        (after: body bytes before a clean close, Content-Length announcing all),
        ``corrupt`` (offset: body byte to flip, default the middle), ``delay``
        (seconds before answering, per_chunk between 16 KiB chunks),
        ``ignore_range``, ``redirect`` (location: 302 target), ``body`` (data,
        content_type: answer 200 with these bytes). The first matching fault,
        in order of addition, applies; ``count=None`` means every request.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        defaults = FAULT_KINDS[kind]
        unknown = set(params) - set(defaults)
        if unknown:
            raise ValueError(f"fault {kind!r} takes no {sorted(unknown)}")
        merged = {**defaults, **params}
        missing = [
            name for name, value in merged.items() if value is None and name != "content_type"
        ]
        if missing:
            raise ValueError(f"fault {kind!r} needs {missing}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for every request)")
        with self._lock:
            self._faults.append(Fault(path_glob, kind, count, merged))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_matching(self, path_glob: str) -> list[RequestRecord]:
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, path_glob)]

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------- request handling

    def _handle(self, handler: _Handler, *, head: bool) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        record = RequestRecord(
            method=handler.command,
            path=path,
            range=handler.headers.get("Range"),
            has_authorization="Authorization" in handler.headers,
            query=parts.query,
            accept=handler.headers.get("Accept"),
        )
        with self._lock:
            self._requests.append(record)
        if self._expected_auth is not None and (
            handler.headers.get("Authorization") != self._expected_auth
        ):
            response = _text(401, "authentication required\n")
            response.headers.append(("WWW-Authenticate", 'Basic realm="lockship-test"'))
        else:
            fault = self._take_fault(path)
            record.fault = None if fault is None else fault.kind
            ranges = self.range_support and (fault is None or fault.kind != "ignore_range")
            response = self._route(path, handler.headers, ranges=ranges, query=parts.query)
            if fault is not None:
                response = self._apply_fault(fault, response)
        self._send(handler, response, record, head=head)

    def _take_fault(self, path: str) -> Optional[Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.remaining != 0 and fnmatch.fnmatchcase(path, fault.path_glob):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _apply_fault(self, fault: Fault, response: _Response) -> _Response:
        params = fault.params
        if fault.kind == "status":
            code = int(params["code"])
            return _text(code, f"injected status {code}\n")
        if fault.kind == "redirect":
            redirect = _text(302, "injected redirect\n")
            redirect.headers.append(("Location", str(params["location"])))
            return redirect
        if fault.kind == "body":
            data = params["data"]
            data = data.encode() if isinstance(data, str) else bytes(data)
            content_type = params["content_type"] or (
                response.content_type if response.status == 200 else _OCTET
            )
            return _Response(200, content_type, body=_Body.of(data))
        if fault.kind in ("reset", "truncate"):
            response.cut_after = int(params["after"])
            response.abort = fault.kind == "reset"
        elif fault.kind == "corrupt":
            offset = int(params["offset"])
            response.corrupt_at = response.body.length // 2 if offset < 0 else offset
        elif fault.kind == "delay":
            self._stopping.wait(float(params["seconds"]))
            response.chunk_delay = float(params["per_chunk"])
        return response  # ignore_range was applied while routing

    def _route(self, path: str, headers: Message, *, ranges: bool, query: str = "") -> _Response:
        if path == "/simple":
            return self._redirect("/simple/")
        if path == "/simple/":
            return self._index_page(headers)
        if path.startswith("/simple/"):
            name = path[len("/simple/") :]
            bare = name.rstrip("/")
            if "/" in bare or not bare:
                return _text(404, "not found\n")
            canonical = canonicalize_name(unquote(bare))
            if name != f"{canonical}/":  # PyPI redirects to the canonical URL
                return self._redirect(f"/simple/{canonical}/")
            return self._project_page(canonical, headers)
        if path.startswith("/files/"):
            if self.file_query and query != self.file_query:
                return _text(403, "signature missing, wrong or expired\n")
            return self._file(unquote(path[len("/files/") :]), headers, ranges=ranges)
        return _text(404, "not found\n")

    def _redirect(self, target: str) -> _Response:
        response = _text(301, f"moved to {target}\n")
        response.headers.append(("Location", self.url + target))
        return response

    def _negotiate(self, headers: Message) -> bool:
        """True to answer JSON."""
        if self.formats != "both":
            return self.formats == "json"
        best_json, best_html = _accept_quality(headers.get("Accept"))
        return best_json > 0 and best_json >= best_html

    def _html_type(self, headers: Message) -> str:
        accept = (headers.get("Accept") or "").lower()
        return HTML_TYPE if HTML_TYPE in accept else "text/html; charset=utf-8"

    def _index_page(self, headers: Message) -> _Response:
        with self._lock:
            projects = sorted({dist.project for dist in self._dists.values()})
        if self._negotiate(headers):
            document = {
                "meta": {"api-version": "1.1"},
                "projects": [{"name": name} for name in projects],
            }
            return self._json(document)
        links = "".join(f'    <a href="{quote(p)}/">{html.escape(p)}</a><br/>\n' for p in projects)
        page = _html_page("Simple index", links)
        return _Response(200, self._html_type(headers), body=_Body.of(page.encode()))

    def _project_page(self, project: str, headers: Message) -> _Response:
        with self._lock:
            dists = [dist for dist in self._dists.values() if dist.project == project]
        if not dists:
            return _text(404, f"no project {project}\n")
        if self._negotiate(headers):
            versions = {dist.version for dist in dists if dist.version is not None}
            document = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "versions": sorted(versions, key=Version),
                "files": [self._json_file(dist) for dist in dists],
            }
            return self._json(document)
        links = "".join(self._html_link(dist) for dist in dists)
        page = _html_page(f"Links for {project}", links)
        return _Response(200, self._html_type(headers), body=_Body.of(page.encode()))

    def _json(self, document: object) -> _Response:
        data = json.dumps(document, indent=1).encode()
        return _Response(200, JSON_TYPE, [("Vary", "Accept")], _Body.of(data))

    def _json_file(self, dist: _Dist) -> dict[str, object]:
        entry: dict[str, object] = {
            "filename": dist.filename,
            "url": dist.link or self.file_url(dist.filename),
            "hashes": {"sha256": dist.sha256},
            "requires-python": dist.requires_python,
            "size": dist.size,
            "yanked": dist.yanked,
        }
        if self.upload_times:
            entry["upload-time"] = _iso(dist.upload_time)
        # Like PyPI: false when there is nothing to advertise, under both key names.
        metadata_hash = dist.metadata_sha256 if self.advertise_metadata else None
        advertised: object = False if metadata_hash is None else {"sha256": metadata_hash}
        entry["core-metadata"] = advertised
        entry["dist-info-metadata"] = advertised
        return entry

    def _html_link(self, dist: _Dist) -> str:
        # Relative href with a hash fragment, as a static mirror would write it.
        if dist.link is not None:
            href = dist.link
        else:
            query = f"?{html.escape(self.file_query)}" if self.file_query else ""
            href = f"../../files/{quote(dist.filename)}{query}"
        attributes = [f'href="{href}#sha256={dist.sha256}"']
        if dist.requires_python is not None:
            attributes.append(f'data-requires-python="{html.escape(dist.requires_python)}"')
        if dist.yanked is not False:
            reason = "" if dist.yanked is True else str(dist.yanked)
            attributes.append(f'data-yanked="{html.escape(reason)}"')
        metadata_hash = dist.metadata_sha256 if self.advertise_metadata else None
        if metadata_hash is not None:
            attributes.append(f'data-dist-info-metadata="sha256={metadata_hash}"')
            attributes.append(f'data-core-metadata="sha256={metadata_hash}"')
        return f"    <a {' '.join(attributes)}>{html.escape(dist.filename)}</a><br/>\n"

    def _file(self, filename: str, headers: Message, *, ranges: bool) -> _Response:
        with self._lock:
            dist = self._dists.get(filename)
            base = self._dists.get(filename.removesuffix(".metadata"))
        if dist is not None:
            twin = dist.range_twin if headers.get("Range") and ranges else None
            body = _Body(dist.size, path=twin or dist.path)
        elif (
            base is not None
            and filename.endswith(".metadata")
            and base.metadata is not None
            and self.serve_metadata
        ):
            body = _Body.of(base.metadata)
        else:
            return _text(404, f"no file {filename}\n")
        response = _Response(200, _OCTET, [("Accept-Ranges", "bytes" if ranges else "none")], body)
        header = headers.get("Range")
        if not ranges or header is None:
            return response
        wanted = _parse_range(header, body.length)
        if wanted is None:
            return response
        if wanted == "unsatisfiable":
            refused = _text(416, "range not satisfiable\n")
            refused.headers.append(("Content-Range", f"bytes */{body.length}"))
            return refused
        first, last = wanted
        response.status = 206
        response.headers.append(("Content-Range", f"bytes {first}-{last}/{body.length}"))
        if body.path is not None:
            response.body = _Body(last - first + 1, path=body.path, offset=first)
        else:
            response.body = _Body.of(body.data[first : last + 1])
        return response

    # ------------------------------------------------------------- sending

    def _send(
        self, handler: _Handler, response: _Response, record: RequestRecord, *, head: bool
    ) -> None:
        record.status = response.status
        record.content_type = response.content_type
        try:
            handler.send_response(response.status)
            if response.content_type is not None:
                handler.send_header("Content-Type", response.content_type)
            for name, value in response.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(response.body.length))
            handler.end_headers()
            if not head:
                self._send_body(handler, response, record)
        except OSError:
            handler.close_connection = True  # the client went away, or stop() cut it off
            return
        if response.cut_after is not None:
            handler.abort(reset=response.abort)

    def _send_body(self, handler: _Handler, response: _Response, record: RequestRecord) -> None:
        limit = response.body.length
        if response.cut_after is not None:
            limit = min(limit, response.cut_after)
        size = _SLOW_CHUNK if response.chunk_delay else _CHUNK
        position = 0
        for chunk in response.body.chunks(size):
            if position >= limit:
                break
            piece = chunk[: limit - position]
            corrupt_at = response.corrupt_at
            if corrupt_at is not None and position <= corrupt_at < position + len(piece):
                flipped = bytearray(piece)
                flipped[corrupt_at - position] ^= 0xFF
                piece = bytes(flipped)
            if position and response.chunk_delay:
                self._stopping.wait(response.chunk_delay)
            record.bytes_sent += len(piece)  # before writing: see RequestRecord
            try:
                handler.wfile.write(piece)
            except OSError:
                record.bytes_sent -= len(piece)
                raise
            position += len(piece)


def _html_page(title: str, links: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{links}  </body>\n</html>\n"
    )
