"""URL helpers: credentials are split off, never stored in locks, never printed.

A credential can sit in two places of a URL: ``user:password@`` (an index's
login) and the query string (a pre-signed object-store link's
``X-Amz-Signature=...``, a ``?token=...``). Neither is ever written to a lock,
bundle or manifest, nor printed. The fragment is never sent to a server
(RFC 3986), so dropping it loses nothing; an index uses it only for the file's
hash (``#sha256=...``), which is read before the link is stored.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["has_query", "public_url", "redact_url", "split_credentials", "url_to_path"]


def _host(parts: object) -> str:
    host = getattr(parts, "hostname", None) or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = getattr(parts, "port", None)
    return host + (f":{port}" if port else "")


def split_credentials(url: str) -> tuple[str, Optional[tuple[str, str]]]:
    """Return the URL without ``user:password@`` and the credentials, if any."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    clean = urlunsplit((parts.scheme, _host(parts), parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def redact_url(url: str) -> str:
    """The URL as it may appear in a message or a record of configuration.

    Credentials become ``***@``, a query string ``?***``, and the fragment is
    dropped: what is left says where, and that something secret was there.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None and not parts.query:
        return url if not parts.fragment else urlunsplit((*parts[:4], ""))
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + _host(parts)
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def public_url(url: str) -> str:
    """The URL as a lock or bundle records it: no credentials, query string or fragment.

    >>> public_url("https://u:p@files.example/a.whl?X-Amz-Signature=abc#sha256=00")
    'https://files.example/a.whl'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        netloc = _host(parts)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def has_query(url: str) -> bool:
    """Tell whether the URL has a query string (which may carry a credential)."""
    return bool(urlsplit(url).query)


def url_to_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    parts = urlsplit(url)
    return unquote(parts.path)
