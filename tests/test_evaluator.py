"""Which file of a release the target gets (lockship.evaluator), through the real CLI.

Each case runs ``lockship lock`` against the suite's own index, with packages
built by the tests: a release whose Requires-Python excludes only ``X.Y.0``,
a newest release that is only a compiled-looking sdist, and requirements
no version or no project fits.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli_runner import run
from lockship.lockfile import read_lock
from pkgbuild import make_sdist, make_wheel

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)


def pins(path: Path) -> dict[str, str]:
    return {p.name: p.version for p in read_lock(path).packages}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lock(server, *args: str) -> tuple[int, str, str]:
    return run("lock", "--index-url", server.simple_url, "--no-pip-config", *args)


# --- the target's patch version ----------------------------------------------------


@pytest.fixture
def crypto(index_server, wheel_dir):
    """cryptography's pattern: the newer release needs Python >=3.8,!=3.9.0,!=3.9.1."""
    server = index_server()
    server.add(make_wheel(wheel_dir, "crypto", "43.0", requires_python=">=3.7"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "crypto", "50.0", requires_python=">=3.8,!=3.9.0,!=3.9.1"),
               upload_time=EARLY)
    return server


def test_a_short_name_means_x_y_0_and_says_what_a_later_patch_would_get(crypto, project):
    (project / "requirements.in").write_text("crypto\n")
    code, _, err = lock(crypto, "--target", "linux-cp39")
    assert code == 0, err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"crypto": "43.0"}
    assert err.count("lockship: warning:") == 1
    assert (
        "lockship: warning: linux-cp39: crypto 50.0 requires Python >=3.8,!=3.9.0,!=3.9.1 "
        "(target has 3.9.0), so crypto 43.0 was locked: linux-cp39 stands for Python 3.9.0, "
        "and a target on 3.9.2 or later gets crypto 50.0. Pass --python-version with the "
        "target's real version (e.g. --python-version 3.9.2) or use its probe file\n"
    ) in err


def test_python_version_is_used_for_requires_python_and_recorded(crypto, project):
    (project / "requirements.in").write_text("crypto\n")
    lock_path = project / "locks" / "pylock.linux-cp39.toml"
    assert lock(crypto, "--target", "linux-cp39")[0] == 0
    x_y_0 = read_lock(lock_path)
    # the X.Y.0 lock's pins answered another question: they are not preferred now
    code, _, err = lock(crypto, "--target", "linux-cp39", "--python-version", "3.9.2")
    assert code == 0, err
    assert "warning" not in err
    assert pins(lock_path) == {"crypto": "50.0"}
    locked = read_lock(lock_path)
    assert locked.target.python_full_version == "3.9.2"
    assert locked.target.marker_environment["python_full_version"] == "3.9.2"
    assert locked.target.description.startswith("CPython 3.9.2 on Linux x86_64")
    assert locked.command.endswith("--target linux-cp39 --python-version 3.9.2")
    assert "#   CPython 3.9.2 on Linux x86_64" in (project / "locks" / "linux-cp39.txt").read_text()
    assert locked.fingerprint != x_y_0.fingerprint
    # --check without the flag sees the difference
    code, _, err = lock(crypto, "--target", "linux-cp39", "--check")
    assert code == 1
    assert "the target's marker environment differs" in err
    assert lock(crypto, "--target", "linux-cp39", "--python-version", "3.9.2", "--check")[0] == 0


def test_python_version_per_target_from_tool_lockship(crypto, project):
    (project / "requirements.in").write_text("crypto\n")
    (project / "pyproject.toml").write_text(
        '[tool.lockship]\nrequirements = ["requirements.in"]\n'
        'targets = ["linux-cp39", "windows-cp312"]\npython-version = ["3.9.2", "3.12.4"]\n'
    )
    code, _, err = lock(crypto)
    assert code == 0, err
    assert read_lock(project / "locks" / "pylock.linux-cp39.toml").target.python_full_version == "3.9.2"
    assert read_lock(project / "locks" / "pylock.windows-cp312.toml").target.python_full_version == "3.12.4"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "linux-cp39", "--python-version", "3.10.2"],
         "lockship: error: --python-version: --python-version 3.10.2 matches no short-name target\n"),
        (["--target", "linux-cp39", "--python-version", "3.9"],
         "lockship: error: --python-version: invalid Python version '3.9'; expected X.Y.Z such as 3.9.2\n"),
        (["--target", "linux-cp39", "--python-version", "3.9.2", "--python-version", "3.9.3"],
         "lockship: error: --python-version: two Python versions for CPython 3.9: 3.9.2 and 3.9.3\n"),
    ],
)
def test_bad_python_versions_are_refused(crypto, project, args, message):
    (project / "requirements.in").write_text("crypto\n")
    code, _, err = lock(crypto, *args)
    assert code == 3, err  # input error
    assert err.startswith(message)
    assert not (project / "locks").exists()


# --- never lock what fetch will refuse ----------------------------------------------


@pytest.fixture
def compiled(index_server, wheel_dir):
    """setproctitle's pattern: the newest release is (so far) only an sdist; older ones
    ship platform wheels only. "pure" has the same shape with a pure wheel."""
    server = index_server()
    for tag in ("cp39-cp39-manylinux_2_17_x86_64", "cp39-cp39-win_amd64"):
        server.add(make_wheel(wheel_dir, "spt", "1.3.7", tag=tag), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "spt", "1.3.8", metadata_version="2.2"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "pure", "1.0"), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "pure", "2.0", metadata_version="2.2"), upload_time=EARLY)
    # only ever platform wheels for another platform, and an sdist: nothing fits linux
    server.add(make_wheel(wheel_dir, "winonly", "1.0", tag="cp39-cp39-win_amd64"), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "winonly", "1.0", metadata_version="2.2"), upload_time=EARLY)
    return server


def test_a_compiled_looking_newest_sdist_gives_way_to_a_release_with_a_wheel(compiled, project):
    (project / "requirements.in").write_text("spt\npure\n")
    code, _, err = lock(compiled, "--target", "linux-cp39")
    assert code == 0, err
    assert "warning" not in err
    # pure-Python sdists stay usable: fetch builds those
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"spt": "1.3.7", "pure": "2.0"}


def test_allow_compiled_sdist_keeps_the_newest_sdist_with_a_warning(compiled, project):
    (project / "requirements.in").write_text("spt\n")
    code, _, err = lock(compiled, "--target", "linux-cp39", "--allow-compiled-sdist")
    assert code == 0, err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"spt": "1.3.8"}
    assert "spt 1.3.8 has no wheel for linux-cp39, only an sdist" in err
    assert "--allow-compiled-sdist" in read_lock(project / "locks" / "pylock.linux-cp39.toml").command


def test_allow_compiled_sdist_from_tool_lockship(compiled, project):
    (project / "requirements.in").write_text("spt\n")
    (project / "pyproject.toml").write_text(
        '[tool.lockship]\nrequirements = ["requirements.in"]\ntargets = ["linux-cp39"]\n'
        "allow-compiled-sdist = true\n"
    )
    code, _, err = lock(compiled)
    assert code == 0, err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"spt": "1.3.8"}


def test_the_host_target_keeps_compiled_sdists(compiled, project):
    # fetch builds anything for the host, so nothing is refused there
    (project / "requirements.in").write_text("spt==1.3.8\n")
    code, _, err = lock(compiled, "--target", "host")
    assert code == 0, err


def test_nothing_fits_explains_the_compiled_sdist(compiled, project):
    (project / "requirements.in").write_text("winonly\n")
    code, _, err = lock(compiled, "--target", "linux-cp39")
    assert code == 4, err
    assert err == (
        "lockship: error: linux-cp39: cannot satisfy winonly for linux-cp39 (CPython 3.9 on "
        "Linux x86_64, manylinux glibc 2.28+): winonly (required by -r requirements.in). "
        "winonly 1.0: only an sdist, which is most likely compiled (its wheels are all "
        "platform-specific), and `lockship fetch` cannot build a compiled sdist for "
        "linux-cp39; --allow-compiled-sdist locks it anyway; no version of winonly is usable "
        "on linux-cp39\n"
        "  hint: pin a version with a wheel for this target, use a probe file of the real "
        "target, or build it on a machine like the target and pass --allow-compiled-sdist\n"
    )


# --- messages a user can act on ------------------------------------------------------


@pytest.fixture
def many(index_server, wheel_dir):
    server = index_server()
    for version in ("1.0", "1.1", "2.0", "2.1", "2.2", "2.3"):
        server.add(make_wheel(wheel_dir, "requests", version), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "requests", "2.4", requires_python=">=3.12"), upload_time=EARLY)
    for version in ("1.0", "2.0", "3.0", "4.0", "5.0"):
        server.add(make_wheel(wheel_dir, "newpy", version, requires_python=">=3.12"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "newpy", "0.9"), upload_time=EARLY)
    return server


@pytest.mark.parametrize("spec", ["requests==9.9.9", "requests>=99"])
def test_no_matching_version_lists_the_newest_for_the_target(many, project, spec):
    (project / "requirements.in").write_text(spec + "\n")
    code, _, err = lock(many, "--target", "linux-cp39")
    assert code == 4, err
    assert (
        f"cannot satisfy requests for linux-cp39 (CPython 3.9 on Linux x86_64, manylinux glibc "
        f"2.28+): {spec} (required by -r requirements.in). no version of requests matches; "
        "the newest for linux-cp39: 2.3, 2.2, 2.1, 2.0, 1.1\n"
        "  hint: relax the version specifier to one of the versions listed\n"
    ) in err


def test_an_unknown_name_suggests_close_names_from_the_index(many, project):
    (project / "requirements.in").write_text("reqeusts\n")
    code, _, err = lock(many, "--target", "linux-cp39")
    assert code == 4, err
    assert (
        "reqeusts was not found on any configured index or find-links location "
        "(did you mean requests?)\n  hint: check the spelling of the project name\n"
    ) in err


def test_cannot_satisfy_says_older_versions_were_checked(many, project):
    (project / "requirements.in").write_text("newpy>=1\n")
    code, _, err = lock(many, "--target", "linux-cp39")
    assert code == 4, err
    assert (
        "newpy 5.0: requires Python >=3.12 (target has 3.9.0); newpy 4.0: requires Python >=3.12 "
        "(target has 3.9.0); newpy 3.0: requires Python >=3.12 (target has 3.9.0); 2 older "
        "versions of newpy were checked too; newest newpy usable on linux-cp39: 0.9\n"
    ) in err


def test_fetch_takes_the_python_version_the_lock_was_made_for(crypto, project):
    (project / "requirements.in").write_text("crypto\n")
    assert lock(crypto, "--target", "linux-cp39", "--python-version", "3.9.2")[0] == 0
    code, _, err = run("fetch", "--no-pip-config", "--target", "linux-cp39")
    assert code == 3, err
    assert (
        "this lock was made for linux-cp39 (CPython 3.9.2 on Linux x86_64, manylinux glibc "
        "2.28+), not for linux-cp39 (CPython 3.9 on Linux x86_64, manylinux glibc 2.28+)\n"
        "  hint: pass the same --target (and --glibc/--musl/--macos/--python-version) as when "
        "locking\n"
    ) in err
    code, _, err = run("fetch", "--no-pip-config", "--target", "linux-cp39", "--python-version", "3.9.2")
    assert code == 0, err
    assert [p.name for p in (project / "dist" / "linux-cp39").rglob("crypto-*")] == ["crypto-50.0-py3-none-any.whl"]
