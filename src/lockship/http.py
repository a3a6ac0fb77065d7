"""The one HTTP client lockship uses, built once and passed to whoever needs it.

- Connection pooling (urllib3), safe to share between threads.
- pip's settings: CA bundle (``cert``), client certificate, trusted hosts,
  proxy (``proxy`` option or the usual ``*_PROXY`` variables), timeout, retries.
- Credentials from index URLs (``https://user:pass@host/simple``) and from
  netrc, sent only to the host they belong to, and never printed.
- Redirects are followed by hand: at most 5, never from https to http, and
  credentials are dropped when the host changes.
- Transient failures (connection errors, 429 and 5xx) are retried with
  exponential backoff.
- ``file://`` URLs read local files, so local mirrors and find-links work.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional, Protocol, Union
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from lockship import __version__
from lockship._urls import redact_url, split_credentials, url_to_path
from lockship.errors import NetworkError
from lockship.pipconfig import IndexConfig

__all__ = ["USER_AGENT", "Fetcher", "HttpClient", "Response", "StreamResponse"]

USER_AGENT = f"lockship/{__version__}"
MAX_REDIRECTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Body(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Response:
    """A complete (small) response: index pages, metadata, zip ranges."""

    url: str  # final URL, after redirects, without credentials
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


class StreamResponse:
    """A streaming response body; iterate ``chunks()`` and always close it."""

    def __init__(
        self,
        url: str,
        status: int,
        headers: Mapping[str, str],
        raw: Union[urllib3.BaseHTTPResponse, Body],
    ) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self._raw = raw

    def chunks(self, size: int = 128 * 1024) -> Iterator[bytes]:
        if isinstance(self._raw, urllib3.BaseHTTPResponse):
            yield from self._raw.stream(size, decode_content=True)
            return
        while True:
            block = self._raw.read(size)
            if not block:
                return
            yield block

    def close(self) -> None:
        if isinstance(self._raw, urllib3.BaseHTTPResponse):
            self._raw.release_conn()
            self._raw.close()
        else:
            self._raw.close()


class Fetcher(Protocol):
    """What the index, metadata and download code need from an HTTP client.

    ``HttpClient`` is the one implementation lockship runs with; tests serve a
    package universe from memory through the same seam (tests/memoryindex.py).
    """

    offline: bool  # refuse the network: callers turn that into a cache-only hint
    retries: int  # resumable downloads retry on their own, with ``backoff``
    backoff: float

    def get(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
        max_bytes: int = ...,
    ) -> Response: ...

    def stream(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
    ) -> contextlib.AbstractContextManager[StreamResponse]: ...


class HttpClient:
    """Pooled, authenticated, retrying HTTP(S) and file:// access.

    :param config: pip-derived settings (cert, proxy, trusted hosts, timeout,
        retries, index URLs whose credentials may be used).
    :param pool_size: connections kept per host (match the worker count).
    :param backoff: first retry delay in seconds, doubled on each retry.
    :param offline: refuse every network request (``--offline``).
    """

    def __init__(
        self,
        config: IndexConfig,
        *,
        pool_size: int = 16,
        backoff: Optional[float] = None,
        offline: bool = False,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.offline = offline
        self.retries = max(0, config.retries)
        self.backoff = (
            backoff if backoff is not None else float(environ.get("LOCKSHIP_RETRY_BACKOFF", 0.5))
        )
        self._timeout = urllib3.Timeout(connect=min(config.timeout, 30.0), read=config.timeout)
        self._credentials: dict[str, tuple[str, str]] = {}
        for url in (*config.indexes, *config.find_links):
            _, creds = split_credentials(url)
            if creds:
                self._credentials.setdefault(_netloc(url), creds)
        self._netrc = _load_netrc(environ)
        self._pools: dict[tuple[bool, Optional[str]], urllib3.PoolManager] = {}
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._environ = environ

    def close(self) -> None:
        """Close every pooled connection (the client may be used again afterwards)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.clear()

    # --- connection pools ---------------------------------------------------

    def _pool(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        host = parts.hostname or ""
        trusted = any(host == h.split(":")[0] for h in self.config.trusted_hosts)
        proxy = self._proxy_for(url)
        key = (trusted, proxy)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._make_pool(trusted=trusted, proxy=proxy)
                self._pools[key] = pool
            return pool

    def _make_pool(self, *, trusted: bool, proxy: Optional[str]) -> urllib3.PoolManager:
        context = ssl.create_default_context(cafile=self.config.cert)
        if self.config.client_cert:
            context.load_cert_chain(self.config.client_cert)
        if trusted:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        kwargs = {
            "num_pools": 32,
            "maxsize": self._pool_size,
            "block": False,
            "retries": False,
            "timeout": self._timeout,
            "ssl_context": context,
        }
        if proxy:
            return urllib3.ProxyManager(proxy, **kwargs)  # type: ignore[arg-type]
        return urllib3.PoolManager(**kwargs)  # type: ignore[arg-type]

    def _proxy_for(self, url: str) -> Optional[str]:
        if self.config.proxy:
            return self.config.proxy
        host = urlsplit(url).hostname or ""
        lowered = {k.lower(): v for k, v in self._environ.items()}
        if _bypass_proxy(host, lowered.get("no_proxy", "")):
            return None
        scheme = urlsplit(url).scheme
        return lowered.get(f"{scheme}_proxy") or lowered.get("all_proxy") or None

    # --- credentials --------------------------------------------------------

    def _auth_header(self, url: str) -> Optional[str]:
        clean, creds = split_credentials(url)
        if creds is None:
            creds = self._credentials.get(_netloc(clean))
        if creds is None and self._netrc is not None:
            host = urlsplit(clean).hostname or ""
            entry = self._netrc.authenticators(host)
            if entry and entry[2] is not None:
                creds = (entry[0], entry[2])
        if creds is None:
            return None
        return urllib3.util.make_headers(basic_auth=f"{creds[0]}:{creds[1]}")["authorization"]

    # --- requests -----------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
        max_bytes: int = 128 * 1024 * 1024,
    ) -> Response:
        """GET ``url`` fully into memory (pages, metadata, ranges: never wheels).

        :param what: names the thing being fetched in error messages.
        :param ok: statuses returned to the caller instead of raising.
        :raises NetworkError: for other statuses, too-large bodies, or failures after retries.
        """
        with self.stream(url, headers=headers, what=what, ok=ok) as response:
            body = bytearray()
            for chunk in response.chunks():
                body += chunk
                if len(body) > max_bytes:
                    raise NetworkError(
                        f"response larger than {max_bytes} bytes; refusing it",
                        where=redact_url(response.url),
                    )
            return Response(response.url, response.status, response.headers, bytes(body))

    @contextlib.contextmanager
    def stream(
        self,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        what: str,
        ok: tuple[int, ...] = (200,),
    ) -> Iterator[StreamResponse]:
        """Open ``url`` for streaming, following redirects and retrying transient errors."""
        response = self._open(url, dict(headers or {}), what=what, ok=ok)
        try:
            yield response
        finally:
            response.close()

    def _open(
        self, url: str, headers: dict[str, str], *, what: str, ok: tuple[int, ...]
    ) -> StreamResponse:
        if url.startswith("file:"):
            return _open_local(url, headers, what=what, ok=ok)
        if self.offline:
            raise NetworkError(
                f"{what} is not in the cache and --offline forbids the network",
                where=redact_url(url),
                hint="run once online to fill the cache",
            )
        current = url
        auth = self._auth_header(url)
        origin = _netloc(split_credentials(url)[0])
        for _ in range(MAX_REDIRECTS + 1):
            send = {"User-Agent": USER_AGENT, **headers}
            if auth and _netloc(split_credentials(current)[0]) == origin:
                send["Authorization"] = auth
            raw = self._request_with_retries(split_credentials(current)[0], send, what=what)
            if raw.status in (301, 302, 303, 307, 308) and raw.headers.get("location"):
                target = urljoin(current, raw.headers["location"])
                raw.release_conn()
                raw.close()
                if current.startswith("https:") and not target.startswith("https:"):
                    raise NetworkError(
                        f"refusing redirect from https to {urlsplit(target).scheme} "
                        f"({redact_url(target)}) while fetching {what}",
                        where=redact_url(url),
                    )
                current = target
                continue
            final = split_credentials(current)[0]
            resp_headers = {k.lower(): v for k, v in raw.headers.items()}
            if raw.status not in ok:
                raw.release_conn()
                raw.close()
                raise _status_error(raw.status, final, what)
            return StreamResponse(final, raw.status, resp_headers, raw)
        raise NetworkError(f"too many redirects while fetching {what}", where=redact_url(url))

    def _request_with_retries(
        self, url: str, headers: dict[str, str], *, what: str
    ) -> urllib3.BaseHTTPResponse:
        attempt = 0
        while True:
            try:
                raw = self._pool(url).request(
                    "GET", url, headers=headers, preload_content=False, redirect=False
                )
            except Urllib3Error as exc:
                if attempt >= self.retries:
                    raise NetworkError(
                        f"cannot fetch {what}: {_reason(exc)}",
                        where=redact_url(url),
                        hint="check the network, the index URL and proxy settings",
                    ) from None
            else:
                if raw.status not in RETRY_STATUSES or attempt >= self.retries:
                    return raw
                raw.release_conn()
                raw.close()
            time.sleep(self.backoff * (2**attempt))
            attempt += 1


def _bypass_proxy(host: str, no_proxy: str) -> bool:
    """``no_proxy`` semantics: ``*``, exact hosts, and domain suffixes."""
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def _reason(exc: BaseException) -> str:
    """The human part of a urllib3 error ("Connection refused", not the pool's repr)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    text = str(getattr(exc, "reason", None) or exc)
    return text.rsplit(": ", 1)[-1] if "HTTPConnection" in text or "object at 0x" in text else text


def _status_error(status: int, url: str, what: str) -> NetworkError:
    hint = None
    if status in (401, 403):
        hint = "add credentials to the index URL or to ~/.netrc (they are never printed)"
    elif status == 404:
        hint = "check the name and the index URL"
    return NetworkError(f"HTTP {status} while fetching {what}", where=redact_url(url), hint=hint)


def _load_netrc(environ: Mapping[str, str]) -> Optional[netrc.netrc]:
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    if not Path(path).is_file():
        return None
    try:
        return netrc.netrc(path)
    except (netrc.NetrcParseError, OSError):
        return None


def _open_local(
    url: str, headers: Mapping[str, str], *, what: str, ok: tuple[int, ...]
) -> StreamResponse:
    path = Path(url_to_path(url.split("#", 1)[0]))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        if 404 in ok:
            return StreamResponse(url, 404, {}, _EmptyBody())
        raise NetworkError(f"{what} does not exist", where=str(path))
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise NetworkError(f"cannot read {what}: {exc.strerror}", where=str(path)) from None
    size = path.stat().st_size
    status, resp_headers = 200, {"content-length": str(size)}
    byte_range = headers.get("Range") or headers.get("range")
    if byte_range and 206 in ok:
        start, end = _parse_range(byte_range, size)
        handle.seek(start)
        status = 206
        resp_headers = {
            "content-length": str(end - start + 1),
            "content-range": f"bytes {start}-{end}/{size}",
        }
        return StreamResponse(url, status, resp_headers, _Limited(handle, end - start + 1))
    return StreamResponse(url, status, resp_headers, handle)


def _parse_range(value: str, size: int) -> tuple[int, int]:
    spec = value.split("=", 1)[1].strip()
    first, _, last = spec.partition("-")
    if not first:
        return max(0, size - int(last)), size - 1
    start = int(first)
    return start, min(size - 1, int(last)) if last else size - 1


class _EmptyBody:
    def read(self, _size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _Limited:
    def __init__(self, handle: IO[bytes], remaining: int) -> None:
        self._handle = handle
        self._remaining = remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size < 0 else min(size, self._remaining)
        data = self._handle.read(want)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()
