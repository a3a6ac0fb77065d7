"""Shared pytest fixtures. Each section belongs to one area; add new ones as new sections."""

from __future__ import annotations

import datetime as dt
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from bundles import Keys, make_keys
from indexserver import IndexServer
from pkgbuild import make_backend_wheel

# ====================================================================
# Isolation from the machine's pip configuration, caches and netrc
# ====================================================================

# Variables through which this machine's (or a developer's) pip setup would leak
# local indexes, find-links folders or policies into the tests.
_PIP_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CONSTRAINT",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_TRUSTED_HOST",
)


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Hide pip config, pip/lockship caches and ~/.netrc; keep 127.0.0.1 off proxies.

    Opt back in per test with ``monkeypatch.setenv``.
    """
    scratch = tmp_path_factory.mktemp("isolated-env")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in _PIP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # pip would prompt for credentials on a 401 and hang the test instead of failing.
    monkeypatch.setenv("PIP_NO_INPUT", "1")
    monkeypatch.setenv("PIP_CACHE_DIR", str(scratch / "pip-cache"))
    cache = scratch / "lockship-cache"
    cache.mkdir()
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(cache))
    monkeypatch.setenv("NETRC", str(scratch / "no-netrc"))  # deliberately absent
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)


# ====================================================================
# Hermetic package index and package builders (tests/indexserver.py, tests/pkgbuild.py)
# ====================================================================


@pytest.fixture
def index_server() -> Iterator[Callable[..., IndexServer]]:
    """Factory: ``index_server(**IndexServer kwargs)`` returns a started server."""
    servers: list[IndexServer] = []

    def start(**kwargs: Any) -> IndexServer:
        server = IndexServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    """An empty directory for built wheels and sdists."""
    path = tmp_path / "dists"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def backend_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``lockship-test-backend`` wheel that sdists from ``make_sdist`` build with.

    Serve it from the index (``server.add(backend_wheel)``) so isolated builds can
    install it with no network.
    """
    return make_backend_wheel(tmp_path_factory.mktemp("backend"))


# ====================================================================
# Signed bundles (tests/bundles.py): sign, verify, archive, install
# ====================================================================


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Ed25519 keys made by ssh-keygen, and an allowed_signers trusting two as "release"."""
    return make_keys(tmp_path_factory.mktemp("keys"))


# ====================================================================
# OSV advisory databases (tests/data/osv: the PyPA advisory database, vendored)
# ====================================================================

OSV_SNAPSHOT = Path(__file__).parent / "data" / "osv" / "pypa-advisory-database-3ccb612.tar.xz"


@pytest.fixture(scope="session")
def osv_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PyPA advisory database snapshot (2,661 YAML records), extracted once."""
    dest = tmp_path_factory.mktemp("osv")
    with tarfile.open(OSV_SNAPSHOT) as tar:
        for member in tar.getmembers():  # our own tarball, but checked like any other
            assert member.isfile() or member.isdir(), member.name
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
        if hasattr(tarfile, "data_filter"):  # 3.12+ warns without a filter
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)
    return dest / "pypa-advisory-database"


@pytest.fixture(scope="session")
def osv_zip(osv_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same records as OSV's per-ecosystem dump lays them out: ``<ID>.json`` in a zip.

    Converted with PyYAML's safe loader (libyaml; not lockship's reader); timestamps go back
    to RFC 3339 text as OSV's JSON has them.
    """
    def encode(value: object) -> str:
        assert isinstance(value, dt.datetime), value
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")

    path = tmp_path_factory.mktemp("osv-zip") / "all.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in sorted(osv_db.rglob("*.yaml")):
            document = yaml.load(record.read_bytes(), Loader=yaml.CSafeLoader)
            archive.writestr(f"{document['id']}.json", json.dumps(document, default=encode))
    return path


@pytest.fixture(scope="session")
def osv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lockship cache shared by the tests that audit: indexes are keyed by contents."""
    return tmp_path_factory.mktemp("osv-cache")
