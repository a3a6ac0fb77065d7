"""The hermetic test infrastructure works, checked with real clients (pip, http.client, urllib)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html.parser
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.message import Message
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.metadata import Metadata
from packaging.utils import parse_wheel_filename
from pyproject_hooks import BuildBackendHookCaller, default_subprocess_runner

from indexserver import HTML_TYPE, JSON_TYPE, IndexServer
from pkgbuild import SDIST_MTIME, make_backend_wheel, make_sdist, make_wheel, same_size

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

StartServer = Callable[..., IndexServer]
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


# ------------------------------------------------------------------ helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _request(
    server: IndexServer,
    path: str,
    *,
    method: str = "GET",
    headers: Optional[Mapping[str, str]] = None,
) -> tuple[int, Message, bytes]:
    """One request on a fresh connection; redirects are not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)
    try:
        connection.request(method, path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _get_json(server: IndexServer, path: str) -> Any:
    status, headers, body = _request(server, path, headers={"Accept": JSON_TYPE})
    assert status == 200
    assert headers["Content-Type"] == JSON_TYPE
    return json.loads(body)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    command = [sys.executable, "-m", "pip", *args, "--no-cache-dir", "--disable-pip-version-check"]
    result = subprocess.run(
        command, env=env, check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


class _Anchors(html.parser.HTMLParser):
    """Collect the attributes of every <a> (HTML entities decoded, like pip does)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, Optional[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def _anchors(page: bytes) -> list[dict[str, Optional[str]]]:
    parser = _Anchors()
    parser.feed(page.decode())
    return parser.anchors


# ------------------------------------------------------------------ pkgbuild


def test_wheel_contents_record_and_tags(wheel_dir: Path) -> None:
    wheel = make_wheel(
        wheel_dir,
        "Foo.Bar",
        "1.0",
        requires_dist=["attrs>=22", "rich; extra == 'fancy'"],
        requires_python=">=3.9",
        provides_extra=["fancy"],
        tag="py2.py3-none-any",
        build_tag="7",
        files={"Foo_Bar/data.txt": b"payload"},
    )
    assert wheel.name == "foo_bar-1.0-7-py2.py3-none-any.whl"
    assert parse_wheel_filename(wheel.name)[0] == "foo-bar"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        # dist-info written last, like real build tools; payload sorted
        assert names == [
            "Foo_Bar/__init__.py",
            "Foo_Bar/data.txt",
            "foo_bar-1.0.dist-info/METADATA",
            "foo_bar-1.0.dist-info/WHEEL",
            "foo_bar-1.0.dist-info/RECORD",
        ]
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
        rows = archive.read("foo_bar-1.0.dist-info/RECORD").decode().splitlines()
        for row in rows[:-1]:
            name, digest, size = row.split(",")
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        assert rows[-1] == "foo_bar-1.0.dist-info/RECORD,,"
        wheel_file = archive.read("foo_bar-1.0.dist-info/WHEEL").decode()
        metadata = Metadata.from_email(archive.read("foo_bar-1.0.dist-info/METADATA"))
    assert "Root-Is-Purelib: true" in wheel_file
    assert "Build: 7" in wheel_file
    assert [line for line in wheel_file.splitlines() if line.startswith("Tag:")] == [
        "Tag: py2-none-any",
        "Tag: py3-none-any",
    ]
    assert metadata.name == "Foo.Bar"
    assert str(metadata.version) == "1.0"
    assert str(metadata.requires_python) == ">=3.9"
    assert metadata.provides_extra == ["fancy"]
    assert [str(r) for r in metadata.requires_dist or []] == [
        "attrs>=22",
        'rich; extra == "fancy"',
    ]


def test_wheel_options_platform_tag_padding_and_lying_metadata(wheel_dir: Path) -> None:
    wheel = make_wheel(
        wheel_dir,
        "spam",
        "2.0",
        tag="cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        metadata_name="eggs",
        metadata_version="9.9",
        pad_bytes=300_000,
        dist_info_first=True,
    )
    assert wheel.name == "spam-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.namelist()[:3] == [
            "spam-2.0.dist-info/METADATA",
            "spam-2.0.dist-info/WHEEL",
            "spam-2.0.dist-info/RECORD",
        ]
        pad = archive.getinfo("spam/_pad.bin")
        assert pad.compress_type == zipfile.ZIP_STORED
        assert pad.file_size == 300_000
        wheel_file = archive.read("spam-2.0.dist-info/WHEEL").decode()
        metadata = Metadata.from_email(archive.read("spam-2.0.dist-info/METADATA"))
    assert "Root-Is-Purelib: false" in wheel_file
    assert wheel_file.count("Tag: ") == 2
    assert (metadata.name, str(metadata.version)) == ("eggs", "9.9")
    assert wheel.stat().st_size > 300_000  # random padding does not compress


def test_rebuilds_are_byte_identical(tmp_path: Path) -> None:
    def build(directory: Path) -> list[bytes]:
        return [
            make_wheel(
                directory, "foo", "1.0", requires_dist=["bar"], pad_bytes=50_000
            ).read_bytes(),
            make_sdist(directory, "foo", "1.0", requires_dist=["bar"]).read_bytes(),
            make_backend_wheel(directory).read_bytes(),
        ]

    assert build(tmp_path / "one") == build(tmp_path / "two")


def test_sdist_layout(wheel_dir: Path) -> None:
    sdist = make_sdist(
        wheel_dir,
        "Foo.Bar",
        "1.0",
        requires_dist=["attrs"],
        requires_python=">=3.9",
        metadata_version="2.2",
        dynamic=["Requires-Dist"],
        wheel_tag="cp39-cp39-linux_x86_64",
    )
    assert sdist.name == "foo_bar-1.0.tar.gz"
    raw = sdist.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == [
            "foo_bar-1.0",
            "foo_bar-1.0/Foo_Bar",
            "foo_bar-1.0/Foo_Bar/__init__.py",
            "foo_bar-1.0/PKG-INFO",
            "foo_bar-1.0/pyproject.toml",
        ]
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(SDIST_MTIME, 0, 0, "")}
        assert {m.mode for m in members if m.isdir()} == {0o755}
        assert {m.mode for m in members if m.isfile()} == {0o644}
        pkg_info = archive.extractfile("foo_bar-1.0/PKG-INFO").read()  # type: ignore[union-attr]
        pyproject = tomllib.loads(
            archive.extractfile("foo_bar-1.0/pyproject.toml").read().decode()  # type: ignore[union-attr]
        )
    metadata = Metadata.from_email(pkg_info)
    assert metadata.metadata_version == "2.2"
    assert metadata.dynamic == ["requires-dist"]
    assert str(metadata.requires_python) == ">=3.9"
    assert pyproject["build-system"] == {
        "requires": ["lockship-test-backend"],
        "build-backend": "lockship_test_backend",
    }
    assert pyproject["tool"]["lockship-test"]["wheel-tag"] == "cp39-cp39-linux_x86_64"
    with pytest.raises(ValueError, match=r"2\.2"):
        make_sdist(wheel_dir, "foo", "1.0", dynamic=["Requires-Dist"])


def test_backend_hooks_are_reproducible_and_honour_source_date_epoch(
    tmp_path: Path, backend_wheel: Path
) -> None:
    backend_dir = tmp_path / "backend"
    with zipfile.ZipFile(backend_wheel) as archive:
        archive.extractall(backend_dir)
    sdist = make_sdist(
        tmp_path, "plat-pkg", "3.1", requires_dist=["attrs"], wheel_tag="cp39-cp39-linux_x86_64"
    )
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # 3.12+ warns without a filter
            archive.extractall(tmp_path / "src", filter="data")
        else:
            archive.extractall(tmp_path / "src")
    source = tmp_path / "src" / "plat_pkg-3.1"

    def runner(cmd: Any, cwd: Any = None, extra_environ: Any = None) -> None:
        environ = {**(extra_environ or {}), "PYTHONPATH": str(backend_dir)}
        environ["SOURCE_DATE_EPOCH"] = "1700000000"
        default_subprocess_runner(cmd, cwd, environ)

    hooks = BuildBackendHookCaller(str(source), "lockship_test_backend", runner=runner)
    assert hooks.get_requires_for_build_wheel() == []
    assert hooks.get_requires_for_build_sdist() == []
    dist_info = hooks.prepare_metadata_for_build_wheel(str(tmp_path / "meta"))
    assert dist_info == "plat_pkg-3.1.dist-info"
    prepared = (tmp_path / "meta" / dist_info / "METADATA").read_bytes()
    names = [hooks.build_wheel(str(tmp_path / out)) for out in ("w1", "w2")]
    assert names == ["plat_pkg-3.1-cp39-cp39-linux_x86_64.whl"] * 2
    first, second = (tmp_path / out / names[0] for out in ("w1", "w2"))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        assert archive.read("plat_pkg-3.1.dist-info/METADATA") == prepared
        assert "Root-Is-Purelib: false" in archive.read("plat_pkg-3.1.dist-info/WHEEL").decode()
        assert archive.read("plat_pkg/__init__.py") == b'__version__ = "3.1"\n'
    rebuilt = hooks.build_sdist(str(tmp_path / "sd"))
    assert rebuilt == "plat_pkg-3.1.tar.gz"
    with tarfile.open(tmp_path / "sd" / rebuilt) as archive:
        assert "plat_pkg-3.1/pyproject.toml" in archive.getnames()


# ------------------------------------------------------------------ real pip against the index


@pytest.mark.slow  # makes a venv or runs pip
@pytest.mark.parametrize("formats", ["json", "html"])
def test_pip_download_from_index(
    index_server: StartServer, wheel_dir: Path, tmp_path: Path, formats: str
) -> None:
    server = index_server(formats=formats)
    wanted = make_wheel(wheel_dir, "Demo_Pkg", "1.1", requires_dist=["not-served"])
    server.add(make_wheel(wheel_dir, "demo-pkg", "1.0"))
    server.add(wanted)
    server.add(make_wheel(wheel_dir, "demo-pkg", "2.0", requires_python=">=99"))
    server.add(make_sdist(wheel_dir, "demo-pkg", "1.1"))

    _pip(
        "download",
        "--no-deps",
        "--index-url",
        server.simple_url,
        "-d",
        str(tmp_path / "out"),
        "demo.pkg==1.1",
    )

    assert (tmp_path / "out" / wanted.name).read_bytes() == wanted.read_bytes()
    page = server.requests_matching("/simple/demo-pkg/")[-1]
    expected_type = JSON_TYPE if formats == "json" else HTML_TYPE  # pip accepts both
    assert (page.status, page.content_type) == (200, expected_type)
    # pip fetched the PEP 658 metadata first, then the wheel itself
    served = [(r.path, r.status) for r in server.requests if r.path.startswith("/files/")]
    assert served == [
        (f"/files/{wanted.name}.metadata", 200),
        (f"/files/{wanted.name}", 200),
    ]


@pytest.mark.slow  # makes a venv or runs pip
def test_pip_download_with_basic_auth(
    index_server: StartServer, wheel_dir: Path, tmp_path: Path
) -> None:
    server = index_server(auth=("alice", "s3cret"))
    wheel = make_wheel(wheel_dir, "private", "1.0")
    server.add(wheel)
    index = server.simple_url.replace("http://", "http://alice:s3cret@")

    _pip("download", "--no-deps", "--index-url", index, "-d", str(tmp_path / "out"), "private")

    assert (tmp_path / "out" / wheel.name).exists()
    assert all(r.has_authorization and r.status == 200 for r in server.requests)


@pytest.mark.slow  # makes a venv or runs pip
def test_pip_install_target_from_find_links(wheel_dir: Path, tmp_path: Path) -> None:
    make_wheel(wheel_dir, "needed-dep", "0.5", files={"needed_dep/extra.py": b"VALUE = 42\n"})
    make_wheel(
        wheel_dir,
        "app.core",
        "1.2",
        requires_dist=["needed-dep>=0.5", "absent-thing; extra == 'never'"],
        provides_extra=["never"],
        pad_bytes=20_000,
    )
    target = tmp_path / "target"

    _pip(
        "install", "--no-index", "--find-links", str(wheel_dir), "--target", str(target), "app.core"
    )

    assert (target / "app_core-1.2.dist-info" / "RECORD").exists()
    assert (target / "app_core" / "_pad.bin").stat().st_size == 20_000
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import app_core, needed_dep.extra as e; print(app_core.__version__, e.VALUE)",
        ],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.split() == ["1.2", "42"]


@pytest.mark.slow  # makes a venv or runs pip
def test_pip_wheel_builds_sdist_with_backend_from_index(
    index_server: StartServer, wheel_dir: Path, tmp_path: Path, backend_wheel: Path
) -> None:
    server = index_server()
    server.add(backend_wheel)
    sdist = make_sdist(
        wheel_dir,
        "native-ext",
        "0.3",
        requires_dist=["numpy>=1.20"],
        requires_python=">=3.9",
        wheel_tag="cp39-cp39-linux_x86_64",
    )

    _pip(
        "wheel",
        "--no-deps",
        "--index-url",
        server.simple_url,
        "-w",
        str(tmp_path / "out"),
        str(sdist),
    )

    built = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in built] == ["native_ext-0.3-cp39-cp39-linux_x86_64.whl"]
    with zipfile.ZipFile(built[0]) as archive:
        metadata = Metadata.from_email(archive.read("native_ext-0.3.dist-info/METADATA"))
    assert [str(r) for r in metadata.requires_dist or []] == ["numpy>=1.20"]
    # the isolated build environment installed the backend from this index
    assert server.requests_matching(f"/files/{backend_wheel.name}")[-1].status == 200


# ------------------------------------------------------------------ routes and pages


def test_canonical_redirects_and_not_found(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server()
    server.add(make_wheel(wheel_dir, "Foo.Bar", "1.0"))

    for path in ("/simple/Foo.Bar/", "/simple/foo_bar/", "/simple/foo-bar", "/simple/FOO--BAR/"):
        status, headers, _ = _request(server, path)
        assert (status, headers["Location"]) == (301, f"{server.url}/simple/foo-bar/"), path
    assert _request(server, "/simple")[0] == 301
    for path in ("/simple/nope/", "/files/nope-1.0.tar.gz", "/elsewhere", "/simple/foo-bar/x/"):
        assert _request(server, path)[0] == 404, path
    # urllib follows the 301 to the canonical page
    with urllib.request.urlopen(server.simple_url + "Foo.Bar/") as response:
        assert response.url == server.project_url("foo-bar")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.simple_url + "missing/")
    assert caught.value.code == 404
    caught.value.close()


def test_json_pages(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server(formats="json")
    moment = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    urls = [
        server.add(make_wheel(wheel_dir, "proj", "1.10", requires_python=">=3.8")),
        server.add(make_wheel(wheel_dir, "proj", "1.2"), yanked=True, upload_time=moment),
        server.add(make_wheel(wheel_dir, "proj", "1.0"), yanked="broken", requires_python="<4"),
        server.add(
            make_sdist(wheel_dir, "proj", "1.0", requires_python=">=3.7"), requires_python=""
        ),
        server.add(make_sdist(wheel_dir, "proj", "0.9", requires_python=">=3.6")),
        server.add(make_wheel(wheel_dir, "other", "1.0"), project="Proj.Renamed"),
    ]
    assert urls[0] == f"{server.url}/files/proj-1.10-py3-none-any.whl"

    index = _get_json(server, "/simple/")
    assert index == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "proj"}, {"name": "proj-renamed"}],
    }
    page = _get_json(server, "/simple/proj/")
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "proj"
    assert page["versions"] == ["0.9", "1.0", "1.2", "1.10"]
    files = {f["filename"]: f for f in page["files"]}
    first = files["proj-1.10-py3-none-any.whl"]
    wheel_bytes = (wheel_dir / "proj-1.10-py3-none-any.whl").read_bytes()
    assert first["url"] == urls[0]
    assert first["hashes"] == {"sha256": _sha256(wheel_bytes)}
    assert first["size"] == len(wheel_bytes)
    assert first["requires-python"] == ">=3.8"
    assert first["upload-time"] == "2024-01-01T00:00:00Z"
    assert first["yanked"] is False
    assert files["proj-1.2-py3-none-any.whl"]["upload-time"] == "2023-05-06T07:08:09.123456Z"
    assert files["proj-1.2-py3-none-any.whl"]["yanked"] is True
    assert files["proj-1.0-py3-none-any.whl"]["yanked"] == "broken"
    assert files["proj-1.0-py3-none-any.whl"]["requires-python"] == "<4"
    assert files["proj-1.0.tar.gz"]["requires-python"] is None
    assert files["proj-1.0.tar.gz"]["core-metadata"] is False
    assert files["proj-0.9.tar.gz"]["requires-python"] == ">=3.6"  # read from PKG-INFO
    assert files["proj-0.9.tar.gz"]["upload-time"] == "2024-01-01T00:00:04Z"
    renamed = _get_json(server, "/simple/proj-renamed/")
    assert [f["filename"] for f in renamed["files"]] == ["other-1.0-py3-none-any.whl"]

    quiet = index_server(formats="json", upload_times=False)
    quiet.add(wheel_dir / "proj-1.0-py3-none-any.whl")
    assert "upload-time" not in _get_json(quiet, "/simple/proj/")["files"][0]


def test_html_pages(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server(formats="html")
    wheel = make_wheel(wheel_dir, "proj", "1.0", requires_python=">=3.8,<4")
    server.add(wheel, yanked='bad "release" <x>')
    server.add(make_sdist(wheel_dir, "proj", "1.0"), yanked=True)

    status, headers, page = _request(server, "/simple/proj/", headers={"Accept": JSON_TYPE})
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b'data-requires-python="&gt;=3.8,&lt;4"' in page
    wheel_link, sdist_link = _anchors(page)
    digest = _sha256(wheel.read_bytes())
    assert wheel_link["href"] == f"../../files/{wheel.name}#sha256={digest}"
    assert wheel_link["data-requires-python"] == ">=3.8,<4"
    assert wheel_link["data-yanked"] == 'bad "release" <x>'
    assert wheel_link["data-core-metadata"] == wheel_link["data-dist-info-metadata"]
    assert sdist_link["data-yanked"] == ""
    assert "data-core-metadata" not in sdist_link
    assert "data-requires-python" not in sdist_link
    _, _, index = _request(server, "/simple/")
    assert [a["href"] for a in _anchors(index)] == ["proj/"]


@pytest.mark.parametrize(
    ("formats", "accept", "expected"),
    [
        ("both", None, "text/html; charset=utf-8"),
        ("both", "*/*", "text/html; charset=utf-8"),
        ("both", PIP_ACCEPT, JSON_TYPE),
        ("both", JSON_TYPE, JSON_TYPE),
        ("both", HTML_TYPE, HTML_TYPE),
        ("both", f"{JSON_TYPE}; q=0.2, text/html", "text/html; charset=utf-8"),
        ("json", "text/html", JSON_TYPE),
        ("html", JSON_TYPE, "text/html; charset=utf-8"),
    ],
)
def test_content_negotiation(
    index_server: StartServer, wheel_dir: Path, formats: str, accept: Optional[str], expected: str
) -> None:
    server = index_server(formats=formats)
    server.add(make_wheel(wheel_dir, "proj", "1.0"))
    headers = {} if accept is None else {"Accept": accept}
    for path in ("/simple/", "/simple/proj/"):
        status, response_headers, body = _request(server, path, headers=headers)
        assert (status, response_headers["Content-Type"]) == (200, expected)
        if expected == JSON_TYPE:
            json.loads(body)


def test_core_metadata_hash_matches_served_file(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server()
    wheel = make_wheel(wheel_dir, "proj", "1.0", requires_dist=["attrs"], dist_info_first=True)
    server.add(wheel)
    sdist = make_sdist(wheel_dir, "proj", "1.0")
    server.add(sdist)

    advertised = _get_json(server, "/simple/proj/")["files"][0]["core-metadata"]["sha256"]
    status, _, served = _request(server, f"/files/{wheel.name}.metadata")
    assert status == 200
    assert _sha256(served) == advertised
    with zipfile.ZipFile(wheel) as archive:
        assert served == archive.read("proj-1.0.dist-info/METADATA")
    _, _, page = _request(server, "/simple/proj/")
    assert _anchors(page)[0]["data-core-metadata"] == f"sha256={advertised}"
    assert _request(server, f"/files/{sdist.name}.metadata")[0] == 404

    hidden = index_server(advertise_metadata=False, serve_metadata=False)
    hidden.add(wheel)
    entry = _get_json(hidden, "/simple/proj/")["files"][0]
    assert entry["core-metadata"] is False
    assert entry["dist-info-metadata"] is False
    assert "data-core-metadata" not in _anchors(_request(hidden, "/simple/proj/")[2])[0]
    assert _request(hidden, f"/files/{wheel.name}.metadata")[0] == 404


def test_basic_auth(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server(auth=("user", "pw"))
    wheel = make_wheel(wheel_dir, "proj", "1.0")
    server.add(wheel)

    def auth(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    status, headers, _ = _request(server, "/simple/proj/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert _request(server, f"/files/{wheel.name}", headers=auth("user", "nope"))[0] == 401
    assert _request(server, f"/files/{wheel.name}", headers=auth("user", "pw"))[0] == 200
    assert [(r.has_authorization, r.status) for r in server.requests] == [
        (False, 401),
        (True, 401),
        (True, 200),
    ]


def test_add_rejects_duplicates_and_unnamed_files(
    index_server: StartServer, wheel_dir: Path
) -> None:
    server = index_server()
    wheel = make_wheel(wheel_dir, "proj", "1.0")
    server.add(wheel)
    with pytest.raises(ValueError, match="already"):
        server.add(wheel)
    odd = wheel_dir / "not-a-dist.bin"
    odd.write_bytes(b"junk")
    with pytest.raises(ValueError):
        server.add(odd)
    server.add(odd, project="junk")  # served, without a version or metadata
    page = _get_json(server, "/simple/junk/")
    assert page["versions"] == []
    assert page["files"][0]["core-metadata"] is False


# ------------------------------------------------------------------ byte ranges and streaming


def test_range_requests(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server()
    wheel = make_wheel(wheel_dir, "big", "1.0", pad_bytes=200_000)
    server.add(wheel)
    data = wheel.read_bytes()
    size = len(data)
    path = f"/files/{wheel.name}"

    status, headers, body = _request(server, path)
    assert (status, headers["Accept-Ranges"], body) == (200, "bytes", data)
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=10-{size + 1000}": (10, size - 1),
        f"bytes=-{size * 2}": (0, size - 1),
    }
    for header, (first, last) in cases.items():
        status, headers, body = _request(server, path, headers={"Range": header})
        assert status == 206, header
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert body == data[first : last + 1]
    for header in (f"bytes={size}-", "bytes=-0"):
        status, headers, body = _request(server, path, headers={"Range": header})
        assert (status, headers["Content-Range"]) == (416, f"bytes */{size}"), header
    for header in ("bytes=0-1,5-9", "bytes=9-1", "items=0-1"):  # ignorable: whole file
        assert _request(server, path, headers={"Range": header})[0] == 200, header
    status, headers, body = _request(server, path, method="HEAD", headers={"Range": "bytes=-10"})
    assert (status, headers["Content-Length"], body) == (206, "10", b"")
    status, _, body = _request(server, f"{path}.metadata", headers={"Range": "bytes=0-17"})
    assert (status, body) == (206, b"Metadata-Version: ")


def test_range_matches_slicing(index_server: StartServer, wheel_dir: Path) -> None:
    server = index_server()
    wheel = make_wheel(wheel_dir, "small", "1.0", pad_bytes=3000)
    server.add(wheel)
    data = wheel.read_bytes()
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(first=st.integers(0, len(data) + 10), length=st.integers(1, len(data) + 10))
    def check(first: int, length: int) -> None:
        # one keep-alive connection for every example
        connection.request(
            "GET", f"/files/{wheel.name}", headers={"Range": f"bytes={first}-{first + length - 1}"}
        )
        response = connection.getresponse()
        body = response.read()
        if first >= len(data):
            assert response.status == 416
        else:
            assert response.status == 206
            assert body == data[first : first + length]

    try:
        check()
    finally:
        connection.close()


def test_range_support_off_and_ignore_range_fault(
    index_server: StartServer, wheel_dir: Path
) -> None:
    wheel = make_wheel(wheel_dir, "proj", "1.0")
    data = wheel.read_bytes()
    path = f"/files/{wheel.name}"
    plain = index_server(range_support=False)
    plain.add(wheel)
    status, headers, body = _request(plain, path, headers={"Range": "bytes=0-9"})
    assert (status, headers["Accept-Ranges"], body) == (200, "none", data)

    server = index_server()
    server.add(wheel)
    server.add_fault(path, "ignore_range", count=1)
    assert _request(server, path, headers={"Range": "bytes=0-9"})[::2] == (200, data)
    assert _request(server, path, headers={"Range": "bytes=0-9"})[::2] == (206, data[:10])


def test_large_file_streams_intact_over_keep_alive(
    index_server: StartServer, wheel_dir: Path
) -> None:
    server = index_server()
    wheel = make_wheel(wheel_dir, "huge", "1.0", pad_bytes=8 * 1024 * 1024)
    server.add(wheel)
    digest = _sha256(wheel.read_bytes())
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)
    try:
        for _ in range(2):
            connection.request("GET", f"/files/{wheel.name}")
            response = connection.getresponse()
            assert _sha256(response.read()) == digest
            sock = connection.sock
        connection.request("HEAD", "/simple/huge/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        assert connection.sock is sock  # one connection served all three
    finally:
        connection.close()
    assert [r.bytes_sent for r in server.requests] == [wheel.stat().st_size] * 2 + [0]


# ------------------------------------------------------------------ faults


@pytest.fixture
def faulty(index_server: StartServer, wheel_dir: Path) -> tuple[IndexServer, str, bytes]:
    """A server with one 100 kB wheel; returns (server, file path, file bytes)."""
    server = index_server()
    wheel = make_wheel(wheel_dir, "proj", "1.0", pad_bytes=100_000)
    server.add(wheel)
    return server, f"/files/{wheel.name}", wheel.read_bytes()


def test_fault_status_then_recovery(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, data = faulty
    server.add_fault("/files/*", "status", count=2, code=503)
    server.add_fault("/simple/*", "status")  # default 500, every time
    assert _request(server, path)[0] == 503
    assert _request(server, path, method="HEAD")[0] == 503
    assert _request(server, path)[::2] == (200, data)
    assert _request(server, "/simple/proj/")[0] == 500
    assert _request(server, "/simple/proj/")[0] == 500
    assert [r.fault for r in server.requests] == ["status", "status", None, "status", "status"]


def test_fault_reset(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, _ = faulty
    server.add_fault(path, "reset", count=1, after=1000)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _request(server, path)
    assert server.requests[-1].bytes_sent == 1000
    assert _request(server, path)[0] == 200


def test_fault_truncate(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, data = faulty
    server.add_fault(path, "truncate", count=1, after=5000)
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.headers["Content-Length"] == str(len(data))
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
    finally:
        connection.close()
    assert caught.value.partial == data[:5000]
    assert server.requests[-1].bytes_sent == 5000
    assert _request(server, path)[2] == data  # count=1: the next one is whole


def test_fault_corrupt(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, data = faulty
    server.add_fault(path, "corrupt", count=1)
    server.add_fault(path, "corrupt", count=1, offset=3)
    for offset in (len(data) // 2, 3):
        status, _, body = _request(server, path)
        assert status == 200
        assert len(body) == len(data)
        assert [i for i in range(len(data)) if body[i] != data[i]] == [offset]
    assert _request(server, path)[2] == data


def test_fault_delay_and_slow_body(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, data = faulty
    server.add_fault("/simple/*", "delay", count=1, seconds=0.3)
    server.add_fault(path, "delay", count=1, per_chunk=0.03)
    started = time.monotonic()
    assert _request(server, "/simple/proj/")[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert _request(server, path)[2] == data
    chunks = -(-len(data) // (16 * 1024))
    assert time.monotonic() - started >= 0.03 * (chunks - 1)


def test_fault_redirect(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, data = faulty
    server.add_fault("/moved/*", "redirect", location=server.url + path)
    status, headers, _ = _request(server, "/moved/x.whl")
    assert (status, headers["Location"]) == (302, server.url + path)
    with urllib.request.urlopen(server.url + "/moved/x.whl") as response:
        assert response.read() == data


def test_fault_body(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, _, _ = faulty
    server.add_fault("/simple/proj/", "body", count=1, data=b'{"meta": {"api-vers')
    server.add_fault("/simple/proj/", "body", count=1, data=b"<html>", content_type="text/html")
    status, headers, body = _request(server, "/simple/proj/", headers={"Accept": JSON_TYPE})
    assert (status, headers["Content-Type"]) == (200, JSON_TYPE)
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status, headers, body = _request(server, "/simple/proj/", headers={"Accept": JSON_TYPE})
    assert (status, headers["Content-Type"], body) == (200, "text/html", b"<html>")
    assert _get_json(server, "/simple/proj/")["name"] == "proj"


def test_fault_validation(index_server: StartServer) -> None:
    server = index_server()
    with pytest.raises(ValueError, match="unknown fault"):
        server.add_fault("*", "explode")
    with pytest.raises(ValueError, match="takes no"):
        server.add_fault("*", "status", after=3)
    with pytest.raises(ValueError, match="needs"):
        server.add_fault("*", "redirect")
    with pytest.raises(ValueError, match="count"):
        server.add_fault("*", "status", count=0)


# ------------------------------------------------------------------ log and lifecycle


def test_request_log(faulty: tuple[IndexServer, str, bytes]) -> None:
    server, path, _ = faulty
    _request(server, path, headers={"Range": "bytes=0-9", "Accept": "*/*"})
    _request(server, "/simple/proj/", method="HEAD")
    first, second = server.requests
    assert (first.method, first.path, first.range, first.status, first.bytes_sent) == (
        "GET",
        path,
        "bytes=0-9",
        206,
        10,
    )
    assert (first.has_authorization, first.accept) == (False, "*/*")
    assert (second.method, second.status, second.bytes_sent) == ("HEAD", 200, 0)
    server.reset_log()
    assert server.requests == []


def test_stop_closes_idle_keep_alive_connections(wheel_dir: Path) -> None:
    server = IndexServer()
    with server:
        server.add(make_wheel(wheel_dir, "proj", "1.0"))
        client = socket.create_connection(("127.0.0.1", urlsplit(server.url).port), timeout=5)
        client.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(12) == b"HTTP/1.1 200"
        started = time.monotonic()
    assert time.monotonic() - started < 2  # stop() did not wait for the idle connection
    client.settimeout(5)
    with client:
        rest = io.BytesIO()
        while chunk := client.recv(65536):
            rest.write(chunk)  # the server closed its end: recv reaches EOF
    with pytest.raises(RuntimeError):
        server.start()


def test_gzip_sdist_header_is_plain(wheel_dir: Path) -> None:
    sdist = make_sdist(wheel_dir, "proj", "1.0")
    with gzip.open(sdist) as handle:
        assert handle.read(512)[:11] == b"proj-1.0/\0\0"
    assert sdist.read_bytes()[3] & 0x08 == 0  # no FNAME field in the gzip header


# ------------------------------------------------------------------ hostile and unusual indexes


def test_range_twin_answers_ranges_from_another_file_of_the_same_size(
    index_server: StartServer, wheel_dir: Path, tmp_path: Path
) -> None:
    honest = make_wheel(wheel_dir, "proj", "1.0", requires_dist=["evil>=1", "other"])
    twin = make_wheel(tmp_path / "twin", "proj", "1.0")
    same_size(honest, twin)
    server = index_server()
    with pytest.raises(ValueError, match="differ in size"):
        server.add(honest, range_twin=make_wheel(tmp_path / "short", "proj", "1.0"))
    server.add(honest, range_twin=twin)
    path = f"/files/{honest.name}"
    assert _request(server, path)[2] == honest.read_bytes()
    status, headers, body = _request(server, path, headers={"Range": "bytes=-100"})
    assert (status, body) == (206, twin.read_bytes()[-100:])
    assert headers["Content-Range"].endswith(f"/{honest.stat().st_size}")
    entry = _get_json(server, "/simple/proj/")["files"][0]
    assert entry["hashes"]["sha256"] == _sha256(honest.read_bytes())
    assert entry["core-metadata"] is False  # nothing that would give the honest METADATA away


def test_file_query_is_linked_demanded_and_rotated(
    index_server: StartServer, wheel_dir: Path
) -> None:
    server = index_server(file_query="X-Amz-Expires=60&X-Amz-Signature=first")
    wheel = make_wheel(wheel_dir, "proj", "1.0")
    assert server.add(wheel).endswith("?X-Amz-Expires=60&X-Amz-Signature=first")
    url = _get_json(server, "/simple/proj/")["files"][0]["url"]
    status, _, body = _request(server, urlsplit(url).path + "?" + urlsplit(url).query)
    assert (status, body) == (200, wheel.read_bytes())
    assert server.requests[-1].query == "X-Amz-Expires=60&X-Amz-Signature=first"
    assert _request(server, f"/files/{wheel.name}")[0] == 403
    server.file_query = "X-Amz-Expires=60&X-Amz-Signature=second"
    assert _request(server, urlsplit(url).path + "?" + urlsplit(url).query)[0] == 403
    anchors = _anchors(_request(server, "/simple/proj/", headers={"Accept": "text/html"})[2])
    assert anchors[0]["href"].startswith(f"../../files/{wheel.name}?X-Amz-Expires=60&X-Amz-Signature=second#sha256=")


def test_link_elsewhere_and_remove_for_a_reupload(
    index_server: StartServer, wheel_dir: Path, tmp_path: Path
) -> None:
    server, store = index_server(), index_server()
    wheel = make_wheel(wheel_dir, "proj", "1.0")
    store.add(wheel)
    server.add(wheel, link=store.file_url(wheel.name))
    assert _get_json(server, "/simple/proj/")["files"][0]["url"] == store.file_url(wheel.name)
    server.remove(wheel.name)
    assert _request(server, "/simple/proj/")[0] == 404
    again = make_wheel(tmp_path / "again", "proj", "1.0", files={"proj/extra.py": b"x = 1\n"})
    server.add(again)  # the same file name, other bytes
    entry = _get_json(server, "/simple/proj/")["files"][0]
    assert entry["hashes"]["sha256"] == _sha256(again.read_bytes()) != _sha256(wheel.read_bytes())
