"""URL helpers: credentials are split off, never stored in locks, never printed."""

from __future__ import annotations

from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["redact_url", "split_credentials", "url_to_path"]


def split_credentials(url: str) -> tuple[str, Optional[tuple[str, str]]]:
    """Return the URL without ``user:password@`` and the credentials, if any."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def redact_url(url: str) -> str:
    """The URL as it may appear in a message: any credentials become ``***``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = "***@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_to_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    parts = urlsplit(url)
    return unquote(parts.path)
