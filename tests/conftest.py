"""Shared pytest fixtures. Each section belongs to one area; add new ones as new sections."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

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
