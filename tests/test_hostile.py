"""A hostile index on 127.0.0.1: lockship lock and fetch against pages and files built to hurt.

Each test runs the real CLI and checks the filesystem and the servers' request logs,
not just the exit code:

- file names with ``..``, absolute paths, backslashes or NUL never make lockship
  write outside its destination; such entries are ignored;
- ``file:`` links from an http index are refused; links to other hosts are
  followed as file hosts, and credentials never go there;
- an https index redirecting to http is refused, saying so;
- wrong sizes, endless bodies, gzip bombs, huge or malformed pages and metadata,
  zip bombs and lying zip directories give a clear error (the page or file named,
  the documented exit code) or skip the candidate with a warning, never a traceback,
  and memory stays bounded;
- a file that claims another project's name is never locked as the requested project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import http.server
import io
import ipaddress
import json
import os
import re
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

import pytest

import indexserver
from bundles import cache_files, sha256_of
from cli_runner import run
from indexserver import HTML_TYPE, JSON_TYPE, IndexServer
from pkgbuild import make_sdist, make_wheel

EARLY = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
MiB = 1024 * 1024
RSS_LIMIT_KIB = 480 * 1024  # a run that buffered an endless body would blow far past this


# --------------------------------------------------------------------------------------------
# helpers


@dataclass
class Result:
    code: int
    out: str
    err: str
    max_rss_kib: int


# The CLI, reporting its own peak RSS at exit. VmHWM belongs to the process's own memory
# map; wait4's ru_maxrss would also count the pytest process the child was forked from.
WITH_RSS = """
import atexit, sys
report = sys.argv[1]
def peak():
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv = ["lockship", *sys.argv[2:]]
from lockship.cli import main
main()
"""


def cli(*args: str, timeout: float = 90) -> Result:
    """``python -m lockship ARGS`` in a subprocess; also its peak RSS in KiB."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rss"
        proc = subprocess.run(
            [sys.executable, "-c", WITH_RSS, str(report), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        rss = int(report.read_text()) if report.exists() else 0
    assert rss or proc.returncode < 0, proc.stderr
    return Result(proc.returncode, proc.stdout, proc.stderr, rss)


def lock(index_url: str, *extra: str) -> tuple[int, str, str]:
    return run("lock", "--no-pip-config", "--index-url", index_url, "--target", "host", *extra)


def fetch(index_url: str, *extra: str) -> tuple[int, str, str]:
    return run("fetch", "--no-pip-config", "--index-url", index_url, "--target", "host", "-q", *extra)


def pins(root: Path) -> dict[str, str]:
    out = {}
    for line in (root / "locks" / "host.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            out[name] = rest.split()[0]
    return out


def clean_error(err: str, code: int, *named: str) -> None:
    """One ``lockship: error:`` line (plus a hint), naming what it concerns; no traceback."""
    assert "Traceback" not in err, err
    assert code not in (0, 70), err
    errors = [line for line in err.splitlines() if line.startswith("lockship: error: ")]
    assert len(errors) == 1, err
    for thing in named:
        assert thing in errors[0], err


def file_entry(url: str, path: Path, *, filename: Optional[str] = None, **extra: object) -> dict[str, object]:
    data = path.read_bytes()
    return {
        "filename": filename if filename is not None else path.name,
        "url": url,
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        **extra,
    }


def json_page(name: str, entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": entries}).encode()


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def new_files_outside(root: Path, before: set[str], allowed: tuple[str, ...]) -> list[str]:
    """Paths created under ``root`` since ``before`` that are not inside an allowed directory."""
    return sorted(
        p for p in snapshot(root) - before if not any(p == a or p.startswith(a + "/") for a in allowed)
    )


def partial_files() -> list[Path]:
    return list((Path(os.environ["LOCKSHIP_CACHE_DIR"]) / "v1" / "partial").glob("*.part"))


def raw_wheel(directory: Path, filename: str, members: dict[str, bytes]) -> Path:
    """A zip named like a wheel with exactly these members (deflated)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return path


def metadata_text(name: str, version: str, *lines: str) -> bytes:
    return "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *lines, "", ""]).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # bodies end when the connection closes
    server: _Plain

    def do_GET(self) -> None:
        route = self.server.routes.get(urlsplit(self.path).path)
        self.server.log.append(self.path)
        if route is None:
            self.send_error(404)
            return
        status, headers, body = route()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            for chunk in body:
                self.wfile.write(chunk)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Plain(http.server.ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Callable[[], tuple[int, dict[str, str], Iterable[bytes]]]]
    log: list[str]


@contextlib.contextmanager
def plain_server(routes: dict[str, Callable[[], tuple[int, dict[str, str], Iterable[bytes]]]]) -> Iterator[str]:
    """A tiny server for what IndexServer cannot do: endless and close-delimited bodies."""
    server = _Plain(("127.0.0.1", 0), _Handler)
    server.routes, server.log = routes, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def endless(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements.in").write_text("victim\n")
    return tmp_path


@pytest.fixture
def victim(wheel_dir):
    """victim 1.0 (the honest release) and 2.0 (a newer file every hostile entry points at)."""
    return make_wheel(wheel_dir, "victim", "1.0"), make_wheel(wheel_dir, "victim", "2.0")


# --------------------------------------------------------------------------------------------
# hostile file names


HOSTILE_NAMES = [
    "../../escaped/victim-2.0-py3-none-any.whl",
    "..\\..\\escaped\\victim-2.0-py3-none-any.whl",
    "victim-2.0-py3-none-any.whl\x00.txt",
    ".victim-2.0-py3-none-any.whl",
    "wheels/../../victim-2.0-py3-none-any.whl",
]


def test_hostile_json_file_names_are_ignored_and_nothing_escapes(project, index_server, victim, tmp_path):
    server = index_server(formats="json")
    honest, newer = victim
    server.add(honest, upload_time=EARLY)
    server.add(newer, upload_time=EARLY, project="victim-newer")  # served, but not on victim's page
    absolute = str(tmp_path / "escaped" / "victim-2.0-py3-none-any.whl")
    hostile = [*HOSTILE_NAMES, absolute]
    entries = [file_entry(server.file_url(honest.name), honest)]
    entries += [file_entry(server.file_url(newer.name), newer, filename=name) for name in hostile]
    server.add_fault("/simple/victim/", "body", data=json_page("victim", entries), content_type=JSON_TYPE)
    before = snapshot(tmp_path)
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err
    assert pins(project) == {"victim": "1.0"}  # the newer version came only with hostile names
    code, _, err = fetch(server.simple_url)
    assert code == 0, err
    assert [p.name for p in (project / "dist" / "host" / "wheels").iterdir()] == [honest.name]
    assert new_files_outside(tmp_path, before, ("locks", "dist", "isolated-env")) == []
    assert not (tmp_path / "escaped").exists()


def test_hostile_html_hrefs_are_ignored_and_nothing_escapes(project, index_server, victim, tmp_path):
    server = index_server(formats="html")
    honest, newer = victim
    server.add(honest, upload_time=EARLY)
    server.add(newer, upload_time=EARLY, project="victim-newer")
    digest = sha256_of(newer)
    hrefs = [
        "../../files/..%2F..%2Fescaped%2Fvictim-2.0-py3-none-any.whl",
        "/files/%2Fabs%2Fescaped%2Fvictim-2.0-py3-none-any.whl",
        "/files/..%5C..%5Cescaped%5Cvictim-2.0-py3-none-any.whl",
        "/files/victim-2.0-py3-none-any.whl%00.txt",
        "/files/victim-2.0-py3-none-any.whl%00",
        "/files/.victim-2.0-py3-none-any.whl",
        f"file://{quote(str(newer))}",
        "FILE:///etc/passwd",
    ]
    links = [f'<a href="{server.file_url(honest.name)}#sha256={sha256_of(honest)}">{honest.name}</a>']
    links += [f'<a href="{href}#sha256={digest}">victim-2.0-py3-none-any.whl</a>' for href in hrefs]
    page = "<!DOCTYPE html><html><body>" + "<br/>".join(links) + "</body></html>"
    server.add_fault("/simple/victim/", "body", data=page.encode(), content_type=HTML_TYPE)
    before = snapshot(tmp_path)
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err
    assert pins(project) == {"victim": "1.0"}
    assert "file:" not in (project / "locks" / "pylock.host.toml").read_text()
    code, _, err = fetch(server.simple_url)
    assert code == 0, err
    assert new_files_outside(tmp_path, before, ("locks", "dist", "isolated-env")) == []


@pytest.mark.parametrize("name", ["../../escaped/victim-1.0-py3-none-any.whl", "ABSOLUTE", "..\\victim-1.0-py3-none-any.whl"])
def test_hand_edited_lock_with_an_escaping_file_name_is_refused(project, index_server, victim, tmp_path, name):
    """A lock is input too: a file name that would leave wheels/ is refused before any write."""
    server = index_server()
    server.add(victim[0], upload_time=EARLY)
    assert lock(server.simple_url, "-q")[0] == 0
    if name == "ABSOLUTE":
        name = str(tmp_path / "escaped" / "victim-1.0-py3-none-any.whl")
    pylock = project / "locks" / "pylock.host.toml"
    text = pylock.read_text()
    pylock.write_text(text.replace(f'name = "{victim[0].name}"', f"name = {json.dumps(name)}"))
    before = snapshot(tmp_path)
    code, _, err = fetch(server.simple_url)
    clean_error(err, code)
    assert code in (3, 6), err
    assert not (project / "dist" / "host" / "bundle.json").exists()
    assert new_files_outside(tmp_path, before, ("dist/host", "isolated-env")) == []
    assert not (tmp_path / "escaped").exists() and not (project / "dist" / "escaped").exists()


def test_sdist_with_escaping_members_is_refused_at_fetch(project, index_server, wheel_dir, backend_wheel, tmp_path):
    """An sdist whose tar members climb out with ``..`` is refused before extraction writes."""
    import tarfile  # noqa: PLC0415

    sdist = wheel_dir / "victim-1.0.tar.gz"
    pkg_info = metadata_text("victim", "1.0").replace(b"2.1", b"2.2")
    with tarfile.open(sdist, "w:gz") as archive:
        for name, data in [("victim-1.0/PKG-INFO", pkg_info), ("victim-1.0/../../../escaped/owned", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    server = index_server()
    server.add(sdist, upload_time=EARLY)
    server.add(backend_wheel, upload_time=EARLY)
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err  # static PKG-INFO: nothing extracted at lock time
    before = snapshot(tmp_path)
    code, _, err = fetch(server.simple_url)
    clean_error(err, code, "victim-1.0.tar.gz")
    assert code == 3 and "unsafe path" in err, err
    assert not (tmp_path / "escaped").exists()
    assert not (Path(tempfile.gettempdir()) / "escaped" / "owned").exists()  # where ../../.. leads from the build dir
    assert new_files_outside(tmp_path, before, ("dist", "isolated-env")) == []


# --------------------------------------------------------------------------------------------
# links to other hosts and to file:


def test_other_host_links_are_file_hosts_and_never_get_credentials(project, index_server, victim):
    index = index_server(auth=("alice", "s3cret"), formats="json")
    files = index_server(formats="json")  # the file host: no credentials expected, none wanted
    honest, newer = victim
    files.add(honest, upload_time=EARLY)
    files.add(newer, upload_time=EARLY)
    index.add(honest, upload_time=EARLY)  # so the index has the project at all
    entries = [
        file_entry(files.file_url(honest.name), honest),
        # credentials planted in a link are stripped, not used
        file_entry(files.file_url(newer.name).replace("http://", "http://mallory:pw@"), newer),
        {**file_entry("file:///etc/passwd", honest, filename="victim-3.0-py3-none-any.whl")},
        {**file_entry("file:/etc/passwd", honest, filename="victim-3.1-py3-none-any.whl")},
    ]
    index.add_fault("/simple/victim/", "body", data=json_page("victim", entries), content_type=JSON_TYPE)
    url = index.simple_url.replace("http://", "http://alice:s3cret@")
    code, _, err = lock(url, "-q")
    assert code == 0, err
    assert pins(project) == {"victim": "2.0"}  # from the file host; the file: links were dropped
    text = (project / "locks" / "pylock.host.toml").read_text()
    assert files.url in text and "mallory" not in text and "file:" not in text and "s3cret" not in text
    code, _, err = fetch(url)
    assert code == 0, err
    assert files.requests and not any(r.has_authorization for r in files.requests)
    assert all(r.has_authorization for r in index.requests if r.status != 401)
    assert any(r.path.startswith("/files/victim-2.0") for r in files.requests)


def test_redirect_to_another_host_drops_credentials(project, index_server, victim):
    index = index_server(auth=("alice", "s3cret"))
    files = index_server()
    honest = victim[0]
    index.add(honest, upload_time=EARLY)
    files.add(honest, upload_time=EARLY)
    url = index.simple_url.replace("http://", "http://alice:s3cret@")
    assert lock(url, "-q")[0] == 0
    index.add_fault("/files/*", "redirect", location=files.file_url(honest.name))
    code, _, err = fetch(url)
    assert code == 0, err
    assert [r.path for r in files.requests] == [f"/files/{honest.name}"]
    assert not any(r.has_authorization for r in files.requests)
    assert any(r.has_authorization and r.status == 302 for r in index.requests)


# --------------------------------------------------------------------------------------------
# https to http


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockship test index")])
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def https_index(tmp_path_factory, monkeypatch):
    """An IndexServer behind TLS (self-signed), trusted through pip's PIP_CERT."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    server = IndexServer()
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd = server._httpd
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        server.url = server.url.replace("http://", "https://")
        server.simple_url = server.url + "/simple/"
        server.start()
        monkeypatch.setenv("PIP_CERT", str(cert))
        yield server
    finally:
        server.stop()


def https_lock(server: IndexServer, *extra: str) -> tuple[int, str, str]:
    # pip's configuration is on (PIP_CONFIG_FILE is os.devnull): PIP_CERT applies.
    return run("lock", "--index-url", server.simple_url, "--target", "host", "-q", *extra)


def test_https_redirect_to_http_is_refused_for_pages(project, https_index, index_server, victim):
    plain = index_server()
    plain.add(victim[0], upload_time=EARLY)
    https_index.add(victim[0], upload_time=EARLY)
    assert https_lock(https_index)[0] == 0  # TLS with PIP_CERT works
    assert pins(project) == {"victim": "1.0"}
    https_index.add_fault("/simple/victim/", "redirect", location=plain.project_url("victim"))
    code, _, err = https_lock(https_index, "--refresh")
    clean_error(err, code, "refusing redirect from https to http")
    assert code == 5, err
    assert plain.requests == []


def test_https_redirect_to_http_is_refused_for_files(project, https_index, index_server, victim):
    plain = index_server()
    plain.add(victim[0], upload_time=EARLY)
    https_index.add(victim[0], upload_time=EARLY)
    assert https_lock(https_index)[0] == 0
    https_index.add_fault("/files/*", "redirect", location=plain.file_url(victim[0].name))
    code, _, err = run("fetch", "--index-url", https_index.simple_url, "--target", "host", "-q")
    clean_error(err, code, "refusing redirect from https to http", victim[0].name)
    assert code == 5, err
    assert plain.requests == []
    assert cache_files() == {}
    assert not (project / "dist" / "host" / "bundle.json").exists()


# --------------------------------------------------------------------------------------------
# sizes that lie, bodies that never end


@pytest.mark.parametrize("delta", [-100, 100])
def test_advertised_size_that_lies_is_refused_at_fetch(project, index_server, victim, delta):
    server = index_server(formats="json")
    honest = victim[0]
    server.add(honest, upload_time=EARLY)
    entry = file_entry(server.file_url(honest.name), honest, **{"core-metadata": {"sha256": hashlib.sha256(metadata_text("victim", "1.0")).hexdigest()}})
    entry["size"] = int(entry["size"]) + delta
    server.add_fault("/simple/victim/", "body", data=json_page("victim", [entry]), content_type=JSON_TYPE)
    server.add_fault(f"/files/{honest.name}.metadata", "body", data=metadata_text("victim", "1.0"))
    assert lock(server.simple_url, "-q")[0] == 0  # PEP 658 metadata: the file itself is not read
    code, _, err = fetch(server.simple_url)
    # A file longer than promised is cut off at the promise; a shorter one fails its size check.
    expected = f"more than the {entry['size']} bytes" if delta < 0 else f"expected {entry['size']}"
    clean_error(err, code, honest.name, expected)
    assert code == 6, err
    assert cache_files() == {}
    assert partial_files() == []
    assert not (project / "dist" / "host" / "bundle.json").exists()


def test_advertised_size_that_lies_skips_the_candidate_at_lock(project, index_server, victim):
    """Without PEP 658 the METADATA is read with ranges, and the real size shows: skipped."""
    server = index_server(formats="json", advertise_metadata=False)
    honest, newer = victim
    server.add(honest, upload_time=EARLY)
    server.add(newer, upload_time=EARLY)
    entries = [file_entry(server.file_url(p.name), p) for p in victim]
    entries[1]["size"] = int(entries[1]["size"]) - 7
    server.add_fault("/simple/victim/", "body", data=json_page("victim", entries), content_type=JSON_TYPE)
    code, _, err = lock(server.simple_url)
    assert code == 0, err
    assert "ignoring victim 2.0" in err and newer.name in err and "the index said" in err
    assert pins(project) == {"victim": "1.0"}


def test_endless_file_body_is_cut_at_the_locked_size(project, index_server, victim):
    server = index_server()
    honest = victim[0]
    server.add(honest, upload_time=EARLY)
    assert lock(server.simple_url, "-q")[0] == 0
    routes = {f"/files/{honest.name}": lambda: (200, {"Content-Type": "application/octet-stream"}, endless(b"\0" * 65536))}
    with plain_server(routes) as other:
        pylock = project / "locks" / "pylock.host.toml"
        pylock.write_text(pylock.read_text().replace(server.url, other))
        result = cli("fetch", "--no-pip-config", "--index-url", server.simple_url, "--target", "host", "-q")
    clean_error(result.err, result.code, honest.name, "more than the")
    assert result.code == 6, result.err
    assert cache_files() == {} and partial_files() == []
    assert result.max_rss_kib < RSS_LIMIT_KIB


@pytest.mark.parametrize(
    ("content_type", "chunk", "encoding"),
    [
        (JSON_TYPE, b'{"files": [' + b'{"filename": "victim-1.0-py3-none-any.whl", "url": "x"},' * 800, None),
        ("text/html", b'<a href="victim-1.0-py3-none-any.whl">x</a>\n' * 1000, None),
        (JSON_TYPE, None, "gzip"),  # a gzip bomb: ~200 KiB on the wire, 200 MB inflated
    ],
    ids=["endless-json", "endless-html", "gzip-bomb"],
)
def test_huge_index_pages_are_refused_with_bounded_memory(project, content_type, chunk, encoding):
    if encoding == "gzip":
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as packed:
            block = b"[" * MiB
            for _ in range(200):
                packed.write(block)
        bomb = buffer.getvalue()
        route = lambda: (200, {"Content-Type": content_type, "Content-Encoding": "gzip"}, [bomb])  # noqa: E731
    else:
        route = lambda: (200, {"Content-Type": content_type}, endless(chunk))  # noqa: E731
    with plain_server({"/simple/victim/": route}) as url:
        result = cli("lock", "--no-pip-config", "--index-url", url + "/simple/", "--target", "host", "-q")
    clean_error(result.err, result.code, url + "/simple/victim/")
    assert result.code == 5, result.err
    assert "larger than" in result.err
    assert result.max_rss_kib < RSS_LIMIT_KIB, f"peak RSS {result.max_rss_kib} KiB"


# --------------------------------------------------------------------------------------------
# malformed pages


@pytest.mark.parametrize(
    ("data", "content_type", "code", "message"),
    [
        (b"{not json", JSON_TYPE, 5, "malformed index page for victim"),
        (b"[" * 200_000, JSON_TYPE, 5, "malformed index page for victim"),
        (b'{"files": {"a": 1}}', JSON_TYPE, 5, "malformed index page for victim"),
        (b"\xff\xfe\x00garbage", JSON_TYPE, 5, "malformed index page for victim"),
        (b'{"files": [1, "x", null, {"filename": 3}, {"filename": "victim-1.0-py3-none-any.whl"}]}', JSON_TYPE, 4, "victim"),
        # a bad link is skipped like any unusable entry; here it was the only one
        (b"<html><a href='http://[::1/x.whl'>x</a>", "text/html", 4, "victim was not found"),
        (b"\x00\x01<<<>>><a <a href=>\xff", "text/html", 4, "victim"),
    ],
    ids=["garbage", "nested", "files-not-list", "binary", "bad-entries", "bad-ipv6-href", "binary-html"],
)
def test_malformed_index_pages_give_clear_errors(project, index_server, data, content_type, code, message):
    server = index_server()
    server.add(make_wheel(project / "w", "victim", "1.0"), upload_time=EARLY)
    server.add_fault("/simple/victim/", "body", data=data, content_type=content_type)
    got, _, err = lock(server.simple_url, "-q")
    clean_error(err, got, message)
    assert got == code, err
    if code == 5:
        assert server.project_url("victim") in err


@pytest.mark.parametrize(
    "url",
    ["http://alice:pw@127.0.0.1:99999/files/victim-2.0-py3-none-any.whl",
     "http://[::1/files/victim-2.0-py3-none-any.whl",
     "https://u@host:notaport/victim-2.0-py3-none-any.whl"],
)
def test_entries_with_unparsable_urls_are_ignored(project, index_server, victim, url):
    server = index_server(formats="json")
    server.add(victim[0], upload_time=EARLY)
    entries = [file_entry(server.file_url(victim[0].name), victim[0]), file_entry(url, victim[1])]
    server.add_fault("/simple/victim/", "body", data=json_page("victim", entries), content_type=JSON_TYPE)
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err
    assert pins(project) == {"victim": "1.0"}


# --------------------------------------------------------------------------------------------
# malformed metadata and hostile zips


def _zip_bomb_wheel(directory: Path, *, declared_size: Optional[int]) -> Path:
    """victim-2.0 whose METADATA inflates to 100 MiB; optionally the directory lies about it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "victim-2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("victim/__init__.py", b"")
        with archive.open("victim-2.0.dist-info/METADATA", "w") as member:  # streamed
            member.write(metadata_text("victim", "2.0"))
            block = b"A" * MiB
            for _ in range(100):
                member.write(block)
    if declared_size is not None:
        data = bytearray(path.read_bytes())
        name = b"victim-2.0.dist-info/METADATA"
        for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
            for match in re.finditer(re.escape(signature), bytes(data)):
                start = match.start()
                name_at = start + (46 if signature == b"PK\x01\x02" else 30)
                if data[name_at : name_at + len(name)] == name:
                    struct.pack_into("<I", data, start + offset, declared_size)
        path.write_bytes(bytes(data))
    return path


def _bad_directory_wheel(directory: Path) -> Path:
    path = make_wheel(directory, "victim", "2.0")
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, eocd + 16, len(data) + 10 * MiB)  # central directory offset
    path.write_bytes(bytes(data))
    return path


def _zip64_before_start_wheel(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "victim-2.0-py3-none-any.whl"
    path.write_bytes(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0))
    return path


def _corrupt_deflate_wheel(directory: Path) -> Path:
    path = make_wheel(directory, "victim", "2.0")
    data = bytearray(path.read_bytes())
    name = b"victim-2.0.dist-info/METADATA"
    start = data.find(b"PK\x03\x04")  # the local headers, in order
    while start >= 0:
        if data[start + 30 : start + 30 + len(name)] == name:
            body = start + 30 + len(name) + struct.unpack_from("<H", data, start + 28)[0]
            data[body : body + 4] = b"\xff\xff\xff\xff"
            break
        start = data.find(b"PK\x03\x04", start + 4)
    path.write_bytes(bytes(data))
    return path


_original_wheel_metadata = indexserver._wheel_metadata


def _served_metadata(path: Path, project: str) -> Optional[bytes]:
    """What the test index serves as ``.metadata``: none for the bombs (the test process
    would inflate them) nor for what zipfile cannot read (zlib.error escapes it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if any(info.file_size > MiB for info in archive.infolist()):
                return None
        return _original_wheel_metadata(path, project)
    except (zlib.error, zipfile.BadZipFile, OSError):
        return None


METADATA_CASES = {
    "garbage": lambda d: raw_wheel(d, "victim-2.0-py3-none-any.whl", {"victim-2.0.dist-info/METADATA": b"\xff\xfe\x00\x01garbage\n\n"}),
    "no-name": lambda d: raw_wheel(d, "victim-2.0-py3-none-any.whl", {"victim-2.0.dist-info/METADATA": b"Metadata-Version: 2.1\nVersion: 2.0\n\n"}),
    "bad-requires-dist": lambda d: raw_wheel(d, "victim-2.0-py3-none-any.whl", {"victim-2.0.dist-info/METADATA": metadata_text("victim", "2.0", "Requires-Dist: evil[", "Requires-Dist: ok")}),
    "bad-requires-python": lambda d: raw_wheel(d, "victim-2.0-py3-none-any.whl", {"victim-2.0.dist-info/METADATA": metadata_text("victim", "2.0", "Requires-Python: >>>3")}),
    "other-name": lambda d: make_wheel(d, "victim", "2.0", metadata_name="attacker", requires_dist=["evil"]),
    "other-version": lambda d: make_wheel(d, "victim", "2.0", metadata_version="9.9"),
    "no-metadata": lambda d: raw_wheel(d, "victim-2.0-py3-none-any.whl", {"victim/__init__.py": b""}),
    "not-a-zip": lambda d: (d.mkdir(parents=True, exist_ok=True), (d / "victim-2.0-py3-none-any.whl").write_bytes(b"\x00" * 5000), d / "victim-2.0-py3-none-any.whl")[-1],
    "directory-past-the-end": _bad_directory_wheel,
    "zip64-before-start": _zip64_before_start_wheel,
    "corrupt-deflate": _corrupt_deflate_wheel,
    "zip-bomb-declared": lambda d: _zip_bomb_wheel(d, declared_size=None),
    "zip-bomb-lying": lambda d: _zip_bomb_wheel(d, declared_size=100),
}


@pytest.mark.parametrize(
    ("case", "how"),
    [
        (case, how)
        for case in METADATA_CASES
        for how in ("pep658", "range", "download")
        if how == "range" or not case.startswith("zip-bomb")  # the bombs: once is enough
    ],
)
def test_bad_metadata_skips_the_candidate_with_a_warning(project, index_server, victim, tmp_path, monkeypatch, case, how):
    """victim 2.0 is broken one way or another (read from its PEP 658 file, by range
    requests, or from a full download): lock warns, names the file, and takes 1.0."""
    monkeypatch.setattr(indexserver, "_wheel_metadata", _served_metadata)
    server = index_server(
        formats="json", advertise_metadata=how == "pep658", range_support=how != "download"
    )
    server.add(victim[0], upload_time=EARLY)
    broken = METADATA_CASES[case](tmp_path / "broken")
    server.add(broken, upload_time=EARLY)
    args = ("lock", "--no-pip-config", "--index-url", server.simple_url, "--target", "host")
    if case.startswith("zip-bomb"):
        result = cli(*args)
        assert result.max_rss_kib < RSS_LIMIT_KIB, f"peak RSS {result.max_rss_kib} KiB"
    else:
        result = Result(*run(*args), max_rss_kib=0)
    assert "Traceback" not in result.err and result.code != 70, result.err
    assert result.code == 0, result.err
    assert "lockship: warning: host: ignoring victim 2.0" in result.err, result.err
    assert broken.name in result.err
    assert pins(project) == {"victim": "1.0"}


def test_metadata_at_the_start_of_a_huge_wheel_is_read_in_bounded_memory(project, index_server, victim, tmp_path):
    """Like tensorflow's, this wheel's METADATA comes first, before 160 MiB of content:
    lock reads it by range requests without reading (or holding) the rest."""
    directory = tmp_path / "huge"
    directory.mkdir()
    path = directory / "victim-2.0-py3-none-any.whl"
    block = os.urandom(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("victim-2.0.dist-info/METADATA", metadata_text("victim", "2.0"))
        with archive.open("victim/blob.bin", "w", force_zip64=True) as member:
            for _ in range(160):
                member.write(block)
        archive.writestr("victim-2.0.dist-info/RECORD", b"")
    server = index_server(formats="json", advertise_metadata=False)
    server.add(victim[0], upload_time=EARLY)
    server.add(path, upload_time=EARLY)
    result = cli("lock", "--no-pip-config", "--index-url", server.simple_url, "--target", "host")
    assert result.code == 0, result.err
    assert pins(project) == {"victim": "2.0"}
    assert result.max_rss_kib < 150 * 1024, f"peak RSS {result.max_rss_kib} KiB"


# --------------------------------------------------------------------------------------------
# another project's files


def test_files_of_another_project_on_the_page_are_never_locked(project, index_server, wheel_dir):
    server = index_server()
    server.add(make_wheel(wheel_dir, "victim", "0.9"), upload_time=EARLY)
    for name in ("attacker", "victim-attacker", "victim_", "vict.im", "victimx"):
        server.add(make_wheel(wheel_dir, name, "5.0"), project="victim", upload_time=EARLY)
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err
    assert pins(project) == {"victim": "0.9"}


def test_only_another_projects_files_means_no_lock(project, index_server, wheel_dir):
    server = index_server()
    server.add(make_wheel(wheel_dir, "attacker", "1.0"), project="victim", upload_time=EARLY)
    code, _, err = lock(server.simple_url, "-q")
    clean_error(err, code, "victim")
    assert code == 4, err
    assert not (project / "locks").exists()


def test_sdist_whose_metadata_names_another_project_is_never_locked(project, index_server, wheel_dir, backend_wheel):
    server = index_server()
    server.add(backend_wheel, upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "victim", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "evil", "1.0"), upload_time=EARLY)
    for metadata_version in ("2.1", "2.2"):  # built for its metadata, and static PKG-INFO
        directory = wheel_dir / metadata_version
        attacker = make_sdist(directory, "attacker", "2.0" if metadata_version == "2.1" else "3.0",
                              requires_dist=["evil"], metadata_version=metadata_version)
        renamed = attacker.with_name(attacker.name.replace("attacker", "victim"))
        attacker.rename(renamed)
        server.add(renamed, upload_time=EARLY)
    code, _, err = lock(server.simple_url)
    assert code == 0, err
    assert "ignoring victim 3.0: victim-3.0.tar.gz: its metadata says attacker 3.0" in err
    assert "ignoring victim 2.0: victim-2.0.tar.gz: its metadata says attacker 2.0" in err
    assert pins(project) == {"victim": "1.0"}


def test_core_metadata_file_with_the_wrong_hash_is_refused(project, index_server, victim):
    server = index_server()
    server.add(victim[0], upload_time=EARLY)
    server.add_fault(f"/files/{victim[0].name}.metadata", "body", data=metadata_text("victim", "1.0", "Requires-Dist: evil"))
    code, _, err = lock(server.simple_url, "-q")
    clean_error(err, code, f"{victim[0].name}.metadata", "expected")
    assert code == 6, err
    assert not (project / "locks").exists()


def test_lying_core_metadata_file_is_caught_at_fetch(project, index_server, wheel_dir):
    """A ``.metadata`` file advertised without a hash can lie at lock time; the wheel's own
    METADATA is checked at fetch, and the bundle is never completed."""
    server = index_server(formats="html", advertise_metadata=False)
    wheel = make_wheel(wheel_dir, "victim", "2.0", metadata_name="attacker")
    server.add(wheel, upload_time=EARLY)
    link = f'<a href="{server.file_url(wheel.name)}#sha256={sha256_of(wheel)}" data-core-metadata="true">{wheel.name}</a>'
    server.add_fault("/simple/victim/", "body", data=f"<html><body>{link}</body></html>".encode(), content_type=HTML_TYPE)
    server.add_fault(f"/files/{wheel.name}.metadata", "body", data=metadata_text("victim", "2.0"))
    code, _, err = lock(server.simple_url, "-q")
    assert code == 0, err  # documented: unhashed metadata is not checked at lock time
    code, _, err = fetch(server.simple_url)
    clean_error(err, code, wheel.name, "METADATA says attacker 2.0")
    assert code == 6, err
    assert not (project / "dist" / "host" / "bundle.json").exists()
