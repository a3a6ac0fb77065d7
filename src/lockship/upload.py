"""Uploading verified wheels to a running index (devpi, pypiserver, Artifactory, Nexus).

The upload protocol is twine's (``pip install 'lockship[upload]'``), imported only
here. Around it lockship keeps the repository's rules:

* before anything is uploaded, the index's simple API (``index_url``) is read for
  every project: a file it already holds with the same sha256 is skipped, one it
  holds with other bytes refuses the whole run (an index may overwrite a file on
  upload; nothing is ever overwritten);
* after uploading, the index must list each file with the sha256 lockship verified.

Credentials, in order: in the upload URL (``https://user:token@host/``), the
``TWINE_USERNAME`` / ``TWINE_PASSWORD`` variables as twine takes them, the
netrc entry for the upload host (``$NETRC`` or ``~/.netrc``), then twine's
keyring lookup; never a prompt, never printed. Reading the simple API uses
lockship's HTTP client, with the index URL's credentials or netrc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import netrc
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlsplit

from lockship._urls import redact_url, split_credentials
from lockship.errors import ConflictError, InputError, IntegrityError, NetworkError
from lockship.http import HttpClient
from lockship.index import ACCEPT, entry_to_dist, html_entries, json_entries
from lockship.pipconfig import load_index_config
from lockship.publish import JSON_TYPE, PublishedFile, PublishReporter

__all__ = ["upload_staged"]


def _credentials(
    url: str, environ: Mapping[str, str]
) -> tuple[str, Optional[str], Optional[str]]:
    """(URL without credentials, username, password), from the URL, TWINE_* or netrc."""
    clean, creds = split_credentials(url)
    if creds is not None:
        return clean, creds[0], creds[1]
    username, password = environ.get("TWINE_USERNAME"), environ.get("TWINE_PASSWORD")
    if username is not None or password is not None:
        return clean, username, password
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    with contextlib.suppress(OSError, netrc.NetrcParseError):
        entry = netrc.netrc(path).authenticators(urlsplit(clean).hostname or "")
        if entry is not None:
            return clean, entry[0], entry[2]
    return clean, None, None


def _listed(http: HttpClient, index_url: str, project: str) -> dict[str, Optional[str]]:
    """File name -> sha256 (None: not advertised) of ``project`` on the index."""
    url = index_url.rstrip("/") + "/" + quote(project, safe="") + "/"
    response = http.get(url, headers={"Accept": ACCEPT}, what=f"the index page of {project}",
                        ok=(200, 404))
    if response.status == 404:
        return {}
    content_type = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    try:
        entries = (
            json_entries(response.body)
            if content_type == JSON_TYPE
            else html_entries(response.body.decode("utf-8", "replace"), response.url)
        )
    except ValueError as exc:
        raise NetworkError(
            f"malformed index page for {project}: {exc}", where=redact_url(url)
        ) from None
    listed: dict[str, Optional[str]] = {}
    for entry in entries:
        dist = entry_to_dist(entry, response.url, redact_url(index_url))
        if dist is not None:
            listed[dist.filename] = dist.sha256
    return listed


def _served_sha256(http: HttpClient, index_url: str, project: str, filename: str) -> str:
    """Download a listed file whose page gives no hash, and hash it."""
    url = index_url.rstrip("/") + "/" + quote(project, safe="") + "/"
    response = http.get(url, headers={"Accept": "text/html"}, what=f"the index page of {project}")
    for entry in html_entries(response.body.decode("utf-8", "replace"), response.url):
        dist = entry_to_dist(entry, response.url, redact_url(index_url))
        if dist is not None and dist.filename == filename:
            digest = hashlib.sha256()
            with http.stream(dist.url, what=filename) as body:
                for chunk in body.chunks():
                    digest.update(chunk)
            return digest.hexdigest()
    raise NetworkError(f"{filename} is no longer listed", where=redact_url(url))


def _check(
    http: HttpClient, index_url: str, files: Sequence[PublishedFile]
) -> tuple[list[PublishedFile], list[PublishedFile]]:
    """Split ``files`` into (missing from the index, there with the same sha256).

    :raises ConflictError: the index holds a file name with other bytes.
    """
    missing, present = [], []
    pages: dict[str, dict[str, Optional[str]]] = {}
    for file in files:
        listed = pages.get(file.project)
        if listed is None:
            listed = pages[file.project] = _listed(http, index_url, file.project)
        if file.filename not in listed:
            missing.append(file)
            continue
        served = listed[file.filename] or _served_sha256(
            http, index_url, file.project, file.filename
        )
        if served != file.sha256:
            raise ConflictError(
                path=f"{redact_url(index_url.rstrip('/'))}/{file.project}/{file.filename}",
                published=f"sha256 {served} on the index",
                offered=f"sha256 {file.sha256} from the verified bundle",
            )
        present.append(file)
    return missing, present


def _twine_upload(
    path: Path,
    url: str,
    *,
    username: Optional[str],
    password: Optional[str],
    cert: Optional[str],
    client_cert: Optional[str],
) -> None:
    """Upload one file with twine's client; its chatter is kept off lockship's output."""
    try:
        import requests  # noqa: PLC0415 - twine's dependency
        from twine import exceptions as twine_errors  # noqa: PLC0415
        from twine.commands.upload import upload  # noqa: PLC0415
        from twine.settings import Settings  # noqa: PLC0415
    except ImportError:
        raise InputError(
            "uploading needs twine, which is not installed",
            where="lockship publish --upload",
            hint="pip install 'lockship[upload]' (or twine) into lockship's environment",
        ) from None
    logging.getLogger("twine").addHandler(logging.NullHandler())  # no lastResort warnings
    logging.getLogger("twine").propagate = False
    settings = Settings(
        repository_url=url,
        username=username,
        password=password,
        non_interactive=True,
        disable_progress_bar=True,
        cacert=cert,
        client_cert=client_cert,
    )
    where = redact_url(url)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            upload(settings, [str(path)])
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        reason = exc.response.reason if exc.response is not None else str(exc)
        hint = None
        if status in (401, 403):
            hint = (
                "give credentials in TWINE_USERNAME and TWINE_PASSWORD or in ~/.netrc "
                "for this host (they are never printed)"
            )
        raise NetworkError(
            f"the index refused {path.name}: HTTP {status} {reason}", where=where, hint=hint
        ) from None
    except requests.RequestException as exc:
        raise NetworkError(
            f"cannot upload {path.name}: {type(exc).__name__}", where=where,
            hint="check the upload URL and the network",
        ) from None
    except twine_errors.NonInteractive:
        raise NetworkError(
            "no credentials for the upload",
            where=where,
            hint="set TWINE_USERNAME and TWINE_PASSWORD, or add the host to ~/.netrc",
        ) from None
    except twine_errors.TwineException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NetworkError(f"cannot upload {path.name}: {message}", where=where) from None


def upload_staged(
    files: Sequence[tuple[PublishedFile, Path]],
    *,
    upload_url: str,
    index_url: str,
    dry_run: bool,
    reporter: PublishReporter,
    environ: Mapping[str, str] = os.environ,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Upload the verified ``files`` the index lacks; return (uploaded, already there).

    :raises ConflictError: the index holds one of the names with other bytes.
    :raises NetworkError: the index could not be read, refused an upload, or does
        not list an uploaded file with its sha256 afterwards.
    """
    config = dataclasses.replace(
        load_index_config(environ=environ, index_url=index_url),
        extra_index_urls=(), find_links=(), no_index=False,
    )
    http = HttpClient(config, environ=environ)
    records = [record for record, _ in files]
    missing, present = _check(http, index_url, records)
    if dry_run:
        return tuple(f.filename for f in missing), tuple(f.filename for f in present)
    url, username, password = _credentials(upload_url, environ)
    paths = {record.filename: path for record, path in files}
    for file in missing:
        reporter.note(f"uploading {file.filename} to {redact_url(upload_url)}")
        _twine_upload(
            paths[file.filename], url, username=username, password=password,
            cert=config.cert, client_cert=config.client_cert,
        )
    # The index must now serve exactly the verified bytes.
    check = HttpClient(config, environ=environ)  # a fresh client: no cached pages
    still_missing, _ = _check(check, index_url, missing)
    if still_missing:
        raise IntegrityError(
            f"the index does not list {still_missing[0].filename} after uploading it",
            where=redact_url(index_url),
            hint="check that --index-url is the simple API of the index given to --upload",
        )
    return tuple(f.filename for f in missing), tuple(f.filename for f in present)
