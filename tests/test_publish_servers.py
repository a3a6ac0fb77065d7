"""``lockship publish`` against real servers on 127.0.0.1 (marked ``server``).

- the static tree served by Debian's nginx with the README's configuration
  (content negotiation on Accept for PEP 691), installed from with pip
  ``--require-hashes``, resolved against with ``uv pip compile`` and re-locked
  with ``lockship lock``;
- ``--upload`` to a real pypiserver and a real devpi-server, installed from
  with pip ``--require-hashes``.

The bundles are locked from PyPI (through the proxy this machine reaches), for
two targets, one with numpy. pypiserver and devpi-server run from their own
virtual environment (``.ci/run`` makes ``.ci-servers`` from the ``servers``
dependency group; set ``LOCKSHIP_SERVERS_BIN`` to use another).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

from bundles import Keys, make_bundle, sha256_of, sign
from cli_runner import run
from lockship.lockfile import read_lock
from repository import EXCLUDE_NEWER, Signed, check_tree, lock_fetch_sign
from test_online import read_lockfile

pytestmark = pytest.mark.server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BIN = Path(sys.executable).parent
SERVERS_BIN = Path(os.environ.get("LOCKSHIP_SERVERS_BIN") or REPO / ".ci-servers" / "bin")
HOST_TARGET = "linux-cp311"  # this machine's CPython 3.11 installs it into a fresh venv
NUMPY_TARGET = "linux-cp39"
REQUIREMENTS = {HOST_TARGET: "packaging\nidna\n", NUMPY_TARGET: "numpy\npackaging\n"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    pytest.fail(f"server did not listen on {port}: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def started(argv: list[str], port: int, log: Path, **kwargs: object) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    try:
        wait_for(port, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_tool(name: str) -> str:
    path = SERVERS_BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: python3 -m venv .ci-servers && "
            ".ci-servers/bin/pip install --group servers (or set LOCKSHIP_SERVERS_BIN)"
        )
    return str(path)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> dict[str, Signed]:
    """A bundle per target, locked from PyPI with pip's configuration pinned off."""
    root = tmp_path_factory.mktemp("real")
    env = {"PIP_CONFIG_FILE": os.devnull, "LOCKSHIP_CACHE_DIR": str(root / "cache"),
           "NETRC": str(root / "no-netrc")}
    return {
        target: lock_fetch_sign(
            root / target, "https://pypi.org/simple/", requirements, [target], keys, env,
        )
        for target, requirements in REQUIREMENTS.items()
    }


def bundle(real: dict[str, Signed], target: str) -> Path:
    return real[target].bundles[target]


def nginx_snippet(root: Path, port: int) -> str:
    """The README's nginx configuration, with this test's root and address."""
    text = README.read_text()
    snippet = re.search(r"<!-- nginx -->\n```nginx\n(.*?)```", text, re.DOTALL)
    assert snippet, "README: the nginx snippet after <!-- nginx --> is missing"
    config = snippet.group(1)
    assert "listen 80;" in config and "root /srv/pypi;" in config
    return config.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "root /srv/pypi;", f"root {root};"
    )


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """nginx serving ``tmp_path/repo`` on 127.0.0.1; yields (repo, base URL)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir()
    (prefix / "nginx.conf").write_text(f"""
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{nginx_snippet(repo, port)}
}}
""")
    argv = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    with started(argv, port, prefix / "error.log"):
        yield repo, f"http://127.0.0.1:{port}"


def get(url: str, accept: Optional[str] = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, b""


def fresh_venv(path: Path, python: Optional[str] = None) -> str:
    if python is None:
        venv.EnvBuilder(with_pip=True).create(path)
    else:
        subprocess.run([python, "-m", "venv", str(path)], check=True)
    return str(path / "bin" / "python")


def pip_install(python: str, index: str, requirements: Path) -> None:
    proc = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--require-hashes",
         "--index-url", index, "-r", str(requirements)],
        capture_output=True, text=True, check=False, env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    assert proc.returncode == 0, proc.stderr


def installed(python: str) -> dict[str, str]:
    proc = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True,
                          text=True, check=True)
    return {p["name"].lower(): p["version"] for p in json.loads(proc.stdout)}


def pinned(requirements: Path) -> dict[str, str]:
    return read_lockfile(requirements).pins


def python39() -> Optional[str]:
    for candidate in (os.environ.get("LOCKSHIP_PY39"), *sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")),
                      shutil.which("python3.9")):
        if candidate and subprocess.run([str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                                        capture_output=True, check=False).returncode == 0:
            return str(candidate)
    return None


def publish_to(repo: Path, keys: Keys, *bundles: Path) -> None:
    code, _, err = run("publish", *map(str, bundles), "--to", str(repo), "--allowed-signers",
                       str(keys.allowed), "--identity", "release")
    assert code == 0, err


# --------------------------------------------------------------------------------------
# nginx


def test_nginx_serves_the_tree_to_pip_uv_and_lockship(
    real: dict[str, Signed], keys: Keys, nginx: tuple[Path, str], tmp_path: Path
) -> None:
    repo, base = nginx
    publish_to(repo, keys, bundle(real, HOST_TARGET), bundle(real, NUMPY_TARGET).with_name(NUMPY_TARGET))
    listed = check_tree(repo)
    assert set(listed) == {"idna", "numpy", "packaging"}
    assert len(list((repo / "files" / "packaging").glob("*.whl"))) == 1  # shared: stored once
    index = f"{base}/simple/"

    # Content negotiation (PEP 691) as the README configures it.
    status, headers, body = get(f"{base}/simple/numpy/", "application/vnd.pypi.simple.v1+json")
    assert status == 200
    assert headers["content-type"] == "application/vnd.pypi.simple.v1+json"
    assert "Accept" in headers.get("vary", "")
    doc = json.loads(body)
    (numpy,) = doc["files"]
    assert numpy["upload-time"].endswith("Z") and numpy["size"] > 10_000_000
    status, headers, body = get(f"{base}/simple/numpy/", "text/html")
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/html")
    assert b"data-core-metadata=" in body
    status, _, body = get(f"{base}/simple/", "application/vnd.pypi.simple.v1+json")
    assert [p["name"] for p in json.loads(body)["projects"]] == ["idna", "numpy", "packaging"]
    meta_url = f"{base}/simple/numpy/" + numpy["url"] + ".metadata"
    status, _, body = get(meta_url)
    assert status == 200 and body.startswith(b"Metadata-Version: ")
    assert get(f"{base}/.lockship/state.json")[0] in (403, 404)  # the README denies dot-files

    # pip --require-hashes, each target in a fresh venv of its own Python.
    host = fresh_venv(tmp_path / "host")
    pip_install(host, index, bundle(real, HOST_TARGET) / "requirements.txt")
    want = pinned(bundle(real, HOST_TARGET) / "requirements.txt")
    assert {k: v for k, v in installed(host).items() if k in want} == want
    py39 = python39()
    requirements39 = bundle(real, NUMPY_TARGET) / "requirements.txt"
    if py39 is not None:
        old = fresh_venv(tmp_path / "py39", py39)
        pip_install(old, index, requirements39)
        assert installed(old)["numpy"] == pinned(requirements39)["numpy"]
    else:  # no CPython 3.9 here: pip's own foreign-target switches, same index and hashes
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--index-url", index,
             "--only-binary=:all:", "--python-version", "3.9", "--implementation", "cp", "--abi",
             "cp39", "--platform", "manylinux_2_28_x86_64", "-d", str(tmp_path / "cp39"),
             "-r", str(requirements39)],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr

    # uv resolves the same pins and hashes from the mirror (JSON pages, upload times).
    for target, python in ((HOST_TARGET, "3.11"), (NUMPY_TARGET, "3.9")):
        out = tmp_path / f"uv-{target}.txt"
        (tmp_path / f"{target}.in").write_text(REQUIREMENTS[target])
        proc = subprocess.run(
            [str(BIN / "uv"), "pip", "compile", "-q", "--no-config", "--generate-hashes",
             "--index-url", index, "--python-version", python, "--python-platform",
             "x86_64-manylinux_2_28", "--exclude-newer", EXCLUDE_NEWER,
             "--cache-dir", str(tmp_path / "uv-cache"), "-o", str(out), str(tmp_path / f"{target}.in")],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        ours = read_lockfile(bundle(real, target) / "requirements.txt")
        theirs = read_lockfile(out)
        assert theirs.pins == ours.pins
        assert theirs.hashes == ours.hashes

    # lockship re-locks from the mirror (same --exclude-newer): the original pins and hashes.
    for target, signed in real.items():
        code, _, err = run(
            "lock", "-r", str(signed.root / "requirements.in"), "--target", target,
            "--no-pip-config", "--index-url", index, "--exclude-newer", EXCLUDE_NEWER,
            "-o", str(tmp_path / "relock"), "-q",
        )
        assert code == 0, err

        def pins(path: Path) -> list[tuple[str, str, str]]:
            return [(p.name, p.version, p.artifact.sha256) for p in read_lock(path).packages]

        assert pins(tmp_path / "relock" / signed.locks[target].name) == pins(signed.locks[target])


# --------------------------------------------------------------------------------------
# pypiserver and devpi-server


def upload(keys: Keys, bundle_dir: Path, url: str, index: str, env: Optional[dict[str, str]] = None,
           *args: str) -> tuple[int, str, str]:
    return run("publish", str(bundle_dir), "--upload", url, "--index-url", index,
               "--allowed-signers", str(keys.allowed), "--identity", "release", *args, env=env)


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[str]:
    packages = tmp_path / "pypiserver-packages"
    packages.mkdir()
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(
        [str(SERVERS_BIN / "python"), "-c",
         ("import sys; from passlib.apache import HtpasswdFile; h = HtpasswdFile(sys.argv[1], new=True); "
          "h.set_password('uploader', 'pypiserver-secret'); h.save()"), str(htpasswd)],
        check=True,
    )
    port = free_port()
    argv = [server_tool("pypi-server"), "run", "--host", "127.0.0.1", "--port", str(port),
            "--passwords", str(htpasswd), "--authenticate", "update", "--disable-fallback",
            str(packages)]
    with started(argv, port, tmp_path / "pypiserver.log"):
        yield f"http://127.0.0.1:{port}"


def test_upload_to_pypiserver_then_install_with_require_hashes(
    real: dict[str, Signed], keys: Keys, pypiserver: str, tmp_path: Path
) -> None:
    signed = bundle(real, HOST_TARGET)
    index = f"{pypiserver}/simple/"
    wheels = sorted(p.name for p in (signed / "wheels").iterdir())
    # Without credentials, or with wrong ones: one line and a hint, nothing printed.
    code, _, err = upload(keys, signed, f"{pypiserver}/", index)
    assert code == 5, err
    assert err.endswith(
        f"lockship: error: {pypiserver}/: no credentials for the upload\n"
        "  hint: set TWINE_USERNAME and TWINE_PASSWORD, or add the host to ~/.netrc\n"
    ), err
    wrong = {"TWINE_USERNAME": "uploader", "TWINE_PASSWORD": "not-the-password"}
    code, _, err = upload(keys, signed, f"{pypiserver}/", index, wrong)
    assert code == 5, err
    assert re.search(rf"^lockship: error: {pypiserver}/: the index refused \S+\.whl: HTTP 40[13] ", err, re.MULTILINE), err
    assert "not-the-password" not in err
    # With twine's variables: uploaded, never printed.
    env = {"TWINE_USERNAME": "uploader", "TWINE_PASSWORD": "pypiserver-secret"}
    code, _, err = upload(keys, signed, f"{pypiserver}/", index, env)
    assert code == 0, err
    assert "pypiserver-secret" not in err
    assert err.endswith(f"{len(wheels)} files uploaded, 0 already there with the same sha256\n"), err
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, index, signed / "requirements.txt")
    # Again: nothing to upload.
    code, _, err = upload(keys, signed, f"{pypiserver}/", index, env)
    assert code == 0, err
    assert err.endswith(f"0 files uploaded, {len(wheels)} already there with the same sha256\n")
    # Another file under a name the index already serves: refused, naming both.
    forged = make_bundle(tmp_path / "forged", [("idna", pinned(signed / "requirements.txt")["idna"])], "linux-cp313")
    sign(forged, keys, "--identity", "release")
    code, _, err = upload(keys, forged, f"{pypiserver}/", index, env)
    assert code == 6, err
    (name,) = [w for w in wheels if w.startswith("idna-")]
    assert err.startswith(
        f"lockship: error: {pypiserver}/simple/idna/{name}: already published as sha256 "
        f"{sha256_of(signed / 'wheels' / name)} on the index; refusing sha256 "
        f"{sha256_of(forged / 'wheels' / name)} from the verified bundle\n"
    ), err


@pytest.fixture
def devpi(tmp_path: Path) -> Iterator[str]:
    serverdir = tmp_path / "devpi"
    init = subprocess.run(
        [server_tool("devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi",
         "--root-passwd", "devpi-secret"],
        capture_output=True, text=True, check=False,
    )
    assert init.returncode == 0, init.stderr
    port = free_port()
    argv = [server_tool("devpi-server"), "--serverdir", str(serverdir), "--host", "127.0.0.1",
            "--port", str(port), "--offline-mode"]
    with started(argv, port, tmp_path / "devpi.log"):
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        login = urllib.request.Request(
            f"{base}/+login", data=json.dumps({"user": "root", "password": "devpi-secret"}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"}, method="POST",
        )
        with opener.open(login, timeout=30) as response:
            token = json.loads(response.read())["result"]["password"]
        auth = base64.b64encode(f"root:{token}".encode()).decode()
        create = urllib.request.Request(
            f"{base}/root/prod", data=json.dumps({"type": "stage", "bases": [], "volatile": False}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "X-Devpi-Auth": auth}, method="PUT",
        )
        with opener.open(create, timeout=30) as response:
            assert response.status in (200, 201)
        yield f"{base}/root/prod"


def test_upload_to_devpi_with_netrc_credentials_then_install_with_require_hashes(
    real: dict[str, Signed], keys: Keys, devpi: str, tmp_path: Path
) -> None:
    signed = bundle(real, HOST_TARGET)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login root password devpi-secret\n")
    netrc.chmod(0o600)
    index = f"{devpi}/+simple/"
    code, _, err = upload(keys, signed, f"{devpi}/", index, {"NETRC": str(netrc)})
    assert code == 0, err
    assert "devpi-secret" not in err
    count = len(list((signed / "wheels").iterdir()))
    assert err.endswith(f"{count} files uploaded, 0 already there with the same sha256\n"), err
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, index, signed / "requirements.txt")
    want = pinned(signed / "requirements.txt")
    assert {k: v for k, v in installed(python).items() if k in want} == want
    code, _, err = upload(keys, signed, f"{devpi}/", index, {"NETRC": str(netrc)})
    assert code == 0, err
    assert err.endswith(f"0 files uploaded, {count} already there with the same sha256\n"), err
