"""``lockship lock`` end to end, through the real CLI, against a real local index.

The index serves wheels and sdists built by the tests. Targets are the probe
files of three real Debian machines (tests/data/targets): CPython 3.9 x86_64,
3.13 x86_64 and 3.11 aarch64, so every marker and Requires-Python decision
is checked for a machine that is not the one running the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from packaging.tags import parse_tag

from bundles import forge_lock, sha256_of
from cli_runner import run
from lockship._compat import tomllib
from lockship.lockfile import read_lock, write_lock
from pkgbuild import make_sdist, make_wheel

TARGETS = Path(__file__).parent / "data" / "targets"
BULLSEYE = TARGETS / "bullseye-amd64.json"  # CPython 3.9.2, x86_64, glibc 2.31
TRIXIE = TARGETS / "trixie-amd64.json"  # CPython 3.13.5, x86_64
BOOKWORM = TARGETS / "bookworm-arm64.json"  # CPython 3.11.2, aarch64
EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)
LATE = datetime(2025, 6, 1, tzinfo=timezone.utc)



def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            out[name] = rest.split()[0]
    return out


@pytest.fixture
def world(index_server, wheel_dir, backend_wheel):
    """A small universe of projects that exercises every target-dependent decision."""
    server = index_server()
    server.add(make_wheel(wheel_dir, "alpha", "1.0", requires_dist=[
        'beta>=1; python_version < "3.11"',
        'gamma; sys_platform == "win32"',
        'delta; platform_machine == "aarch64"',
        'epsilon; extra == "fast"',
    ], provides_extra=["fast"]), upload_time=EARLY)
    # beta 2.0 needs Python 3.11: a 3.9 target must get 1.0
    server.add(make_wheel(wheel_dir, "beta", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "beta", "2.0", requires_python=">=3.11"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "gamma", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "delta", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "epsilon", "1.0"), upload_time=EARLY)
    # yanked newest release
    server.add(make_wheel(wheel_dir, "zeta", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "zeta", "2.0"), upload_time=EARLY, yanked="broken")
    # a pre-release newer than the last final release
    server.add(make_wheel(wheel_dir, "eta", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "eta", "2.0b1"), upload_time=EARLY)
    # wheel ranking: the target's best tag wins, then the highest build tag
    for tag in ("py3-none-any", "cp39-cp39-manylinux_2_17_x86_64", "cp39-abi3-manylinux_2_17_x86_64",
                "cp311-cp311-manylinux_2_17_aarch64", "cp313-cp313-manylinux_2_28_x86_64"):
        server.add(make_wheel(wheel_dir, "kappa", "1.0", tag=tag), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "kappa", "1.0", tag="py3-none-any", build_tag="1"), upload_time=EARLY)
    # a release uploaded after the --exclude-newer cut-off
    server.add(make_wheel(wheel_dir, "lam", "1.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "lam", "2.0"), upload_time=LATE)
    # sdist-only projects: static PKG-INFO (PEP 643) and one that must be built
    server.add(make_sdist(wheel_dir, "iota", "1.0", metadata_version="2.2", requires_dist=["gamma"]), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "theta", "1.0", requires_dist=['epsilon; python_version < "3.10"']), upload_time=EARLY)
    server.add(backend_wheel, upload_time=EARLY)
    # a project with wheels only for another platform
    server.add(make_wheel(wheel_dir, "winonly", "1.0", tag="cp39-cp39-win_amd64"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "winonly", "0.9"), upload_time=EARLY)
    return server


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lock(world, *args: str) -> tuple[int, str, str]:
    return run("lock", "--index-url", world.simple_url, "--no-pip-config", "-q", *args)


EXPECTED = {
    # target file: expected pins for "alpha[fast]" + kappa + zeta + eta + theta + iota
    BULLSEYE: {"alpha": "1.0", "beta": "1.0", "epsilon": "1.0", "kappa": "1.0", "zeta": "1.0",
               "eta": "1.0", "theta": "1.0", "iota": "1.0", "gamma": "1.0"},
    TRIXIE: {"alpha": "1.0", "epsilon": "1.0", "kappa": "1.0", "zeta": "1.0", "eta": "1.0",
             "theta": "1.0", "iota": "1.0", "gamma": "1.0"},
    BOOKWORM: {"alpha": "1.0", "delta": "1.0", "epsilon": "1.0", "kappa": "1.0", "zeta": "1.0",
               "eta": "1.0", "theta": "1.0", "iota": "1.0", "gamma": "1.0"},
}
BEST_KAPPA = {
    BULLSEYE: "kappa-1.0-cp39-cp39-manylinux_2_17_x86_64.whl",
    TRIXIE: "kappa-1.0-cp313-cp313-manylinux_2_28_x86_64.whl",
    BOOKWORM: "kappa-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
}


@pytest.mark.parametrize("target", [BULLSEYE, TRIXIE, BOOKWORM], ids=lambda p: p.stem)
def test_markers_requires_python_and_tags_are_evaluated_for_the_target(world, project, target):
    (project / "requirements.in").write_text("alpha[fast]\nkappa\nzeta\neta\ntheta\niota\n")
    code, _, err = lock(world, "--target", str(target))
    assert code == 0, err
    assert any(r.accept and "json" in r.accept for r in world.requests)  # PEP 691 was negotiated
    name = json.loads(target.read_text())["target"]
    assert pins(project / "locks" / f"{name}.txt") == EXPECTED[target]
    text = (project / "locks" / f"{name}.txt").read_text()
    assert ";" not in "".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    pylock = tomllib.loads((project / "locks" / f"pylock.{name}.toml").read_text())
    files = {p["name"]: (p.get("wheels") or [p.get("sdist")])[0]["name"] for p in pylock["packages"]}
    assert files["kappa"] == BEST_KAPPA[target]
    assert files["theta"].endswith(".tar.gz") and files["iota"].endswith(".tar.gz")
    assert "# sdist: no wheel for" in text


def test_html_only_index_gives_the_same_lock(world, project, index_server, wheel_dir):
    (project / "requirements.in").write_text("alpha[fast]\nkappa\nzeta\neta\niota\n")
    # The same universe on a PEP 503 HTML-only server that advertises no PEP 658 metadata.
    html = index_server(formats="html", advertise_metadata=False)
    for path in sorted(wheel_dir.iterdir()):
        html.add(path, upload_time=EARLY, yanked="broken" if path.name.startswith("zeta-2.0") else False)
    code, _, err = run("lock", "--index-url", html.simple_url, "--no-pip-config", "-q",
                       "--target", str(BULLSEYE), "-o", "html")
    assert code == 0, err
    code, _, err = lock(world, "--target", str(BULLSEYE), "-o", "json")
    assert code == 0, err
    strip = lambda p: [x for x in p.read_text().splitlines() if not x.startswith("#")]  # noqa: E731
    assert strip(project / "html" / "bullseye-amd64.txt") == strip(project / "json" / "bullseye-amd64.txt")
    # without PEP 658 the METADATA came from HTTP range requests on the wheels
    assert any(r.range for r in html.requests if r.path.endswith(".whl"))
    assert not any(r.path.endswith(".metadata") for r in html.requests)


def test_lock_is_deterministic_and_check_detects_changes(world, project, tmp_path, monkeypatch):
    (project / "requirements.in").write_text("alpha\nkappa\n")
    assert lock(world, "--target", "linux-cp39", "--exclude-newer", "2024-06-01")[0] == 0
    first = {p.name: p.read_bytes() for p in (project / "locks").iterdir()}
    # A cold cache and a second run must give byte-identical files.
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(tmp_path / "other-cache"))
    for path in (project / "locks").iterdir():
        path.unlink()
    assert lock(world, "--target", "linux-cp39", "--exclude-newer", "2024-06-01")[0] == 0
    assert {p.name: p.read_bytes() for p in (project / "locks").iterdir()} == first
    code, _, err = lock(world, "--target", "linux-cp39", "--exclude-newer", "2024-06-01", "--check")
    assert code == 0, err
    (project / "requirements.in").write_text("alpha\nkappa\nzeta\n")
    code, _, err = lock(world, "--target", "linux-cp39", "--exclude-newer", "2024-06-01", "--check")
    assert code == 1
    assert "input requirements.in changed" in err
    assert {p.name: p.read_bytes() for p in (project / "locks").iterdir()} == first  # --check writes nothing


def test_yanked_prerelease_and_exclude_newer(world, project):
    (project / "requirements.in").write_text("zeta\neta\nlam\n")
    assert lock(world, "--target", "linux-cp39")[0] == 0
    assert pins(project / "locks" / "linux-cp39.txt") == {"zeta": "1.0", "eta": "1.0", "lam": "2.0"}
    assert lock(world, "--target", "linux-cp39", "--pre", "--exclude-newer", "2024-06-01", "-U")[0] == 0
    assert pins(project / "locks" / "linux-cp39.txt") == {"zeta": "1.0", "eta": "2.0b1", "lam": "1.0"}
    header = (project / "locks" / "linux-cp39.txt").read_text()
    assert "# exclude-newer: 2024-06-01T00:00:00Z" in header
    # A yanked release is still allowed when pinned exactly (PEP 592).
    (project / "requirements.in").write_text("zeta==2.0\n")
    assert lock(world, "--target", "linux-cp39")[0] == 0
    assert pins(project / "locks" / "linux-cp39.txt") == {"zeta": "2.0"}


def test_conflict_is_explained_for_the_target(world, project):
    (project / "requirements.in").write_text("beta>=2\n")
    code, _, err = lock(world, "--target", str(BULLSEYE))
    assert code == 4
    assert "cannot satisfy beta for bullseye-amd64" in err
    assert "beta 2.0: requires Python >=3.11 (target has 3.9.2)" in err
    assert "newest beta usable on bullseye-amd64: 1.0" in err
    assert "Traceback" not in err


def test_no_file_for_the_target_names_tags_and_newest_fitting_version(world, project):
    (project / "requirements.in").write_text("winonly==1.0\n")
    code, _, err = lock(world, "--target", "linux-cp39")
    assert code == 4
    assert "winonly 1.0: no wheel for linux-cp39 (its wheels are tagged cp39-cp39-win_amd64)" in err
    assert "newest winonly usable on linux-cp39: 0.9" in err


@pytest.mark.slow  # makes a venv or runs pip
def test_lock_installs_with_real_pip_require_hashes(world, project, tmp_path):
    (project / "requirements.in").write_text("alpha[fast]\nkappa\nzeta\n")
    assert lock(world, "--target", "host")[0] == 0
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--index-url", world.simple_url, "--require-hashes", "-r", str(project / "locks" / "host.txt")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import alpha, epsilon, kappa"])
    assert check.returncode == 0


def test_pylock_selects_the_same_files_with_packaging(world, project):
    (project / "requirements.in").write_text("alpha[fast]\nkappa\nzeta\neta\n")
    assert lock(world, "--target", str(BOOKWORM))[0] == 0
    data = tomllib.loads((project / "locks" / "pylock.bookworm-arm64.toml").read_text())
    pylock = Pylock.from_dict(data)
    probe = json.loads(BOOKWORM.read_text())
    tags = [t for text in probe["tags"] for t in parse_tag(text)]
    selected = {p.name: d.name for p, d in pylock.select(environment=probe["marker_environment"], tags=tags)}
    assert selected["kappa"] == BEST_KAPPA[BOOKWORM]
    assert set(selected) == set(EXPECTED[BOOKWORM]) - {"theta", "iota", "gamma"}  # gamma comes via iota


def test_first_index_guard_and_merged_strategy(project, index_server, wheel_dir, tmp_path):
    internal = index_server()
    public = index_server()
    internal.add(make_wheel(wheel_dir, "corp-lib", "1.0"), upload_time=EARLY)
    public.add(make_wheel(tmp_path, "corp-lib", "99.0"), upload_time=EARLY)  # the squatter
    (project / "requirements.in").write_text("corp-lib\n")
    base = ("lock", "--no-pip-config", "-q", "--target", "linux-cp39",
            "--index-url", internal.simple_url, "--extra-index-url", public.simple_url)
    assert run(*base)[0] == 0
    assert pins(project / "locks" / "linux-cp39.txt") == {"corp-lib": "1.0"}
    assert not public.requests_matching("/simple/corp-lib/*")
    assert run(*base, "--index-strategy", "unsafe-best-match", "-U")[0] == 0
    assert pins(project / "locks" / "linux-cp39.txt") == {"corp-lib": "99.0"}


def test_find_links_directory_and_offline_from_cache(world, project, tmp_path, wheel_dir):
    local = tmp_path / "links"
    local.mkdir()
    make_wheel(local, "onlylocal", "3.0")
    (project / "requirements.in").write_text("onlylocal\ngamma\n")
    code, _, err = lock(world, "--target", "linux-cp39", "--find-links", str(local))
    assert code == 0, err
    assert pins(project / "locks" / "linux-cp39.txt") == {"onlylocal": "3.0", "gamma": "1.0"}
    world.add_fault("*", "status", code=503)
    code, _, err = lock(world, "--target", "linux-cp39", "--find-links", str(local), "--offline")
    assert code == 0, err


def test_offline_without_cache_fails_clearly(world, project):
    (project / "requirements.in").write_text("gamma\n")
    code, _, err = lock(world, "--target", "linux-cp39", "--offline")
    assert code == 5
    assert "--offline" in err and "gamma" in err


def test_credentials_are_used_but_never_written_or_printed(project, index_server, wheel_dir):
    server = index_server(auth=("alice", "s3cret"))
    server.add(make_wheel(wheel_dir, "gamma", "1.0"), upload_time=EARLY)
    (project / "requirements.in").write_text("gamma\n")
    url = server.simple_url.replace("http://", "http://alice:s3cret@")
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", url, "--target", "linux-cp39")
    assert code == 0, err
    for path in (project / "locks").iterdir():
        assert "s3cret" not in path.read_text()
    bad = server.simple_url.replace("http://", "http://alice:wrong@")
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", bad, "--target", "linux-cp39", "--refresh")
    assert code == 5
    assert "HTTP 401" in err and "wrong" not in err


@pytest.mark.parametrize(
    ("args", "files", "code", "message"),
    [
        (["--target", "linux-cp2"], {"requirements.in": "gamma\n"}, 3, "unknown target 'linux-cp2'"),
        (["-r", "nope.in"], {}, 3, "nope.in"),
        ([], {"requirements.in": "gamma\n-e ./src\n"}, 3, "requirements.in:2"),
        (["--exclude-newer", "yesterday"], {"requirements.in": "gamma\n"}, 3, "invalid timestamp 'yesterday'"),
        ([], {"requirements.in": "nosuchproject\n"}, 4, "nosuchproject was not found"),
        ([], {"pyproject.toml": "[tool.lockship]\ntargets = ['linux-cp39']\ntypo = 1\n"}, 3,
         "pyproject.toml:3: [tool.lockship] typo: unknown key"),
    ],
)
def test_bad_input_gives_one_clear_line_and_writes_nothing(world, project, args, files, code, message):
    for name, text in files.items():
        (project / name).write_text(text)
    got, _, err = lock(world, *args) if "--target" in args else lock(world, "--target", "linux-cp39", *args)
    assert got == code, err
    assert message in err
    assert "Traceback" not in err
    assert not (project / "locks").exists()


def test_sdist_metadata_built_in_isolation(world, project):
    (project / "requirements.in").write_text("theta\n")
    code, _, err = lock(world, "--target", str(BULLSEYE))
    assert code == 0, err
    assert pins(project / "locks" / "bullseye-amd64.txt") == {"theta": "1.0", "epsilon": "1.0"}
    # the isolated build installed the backend from this index, not from the host's pip config
    assert world.requests_matching("/simple/lockship-test-backend/")


def test_sdist_only_for_target_uses_another_wheels_metadata_and_warns(project, index_server, wheel_dir):
    # "compiled" ships an sdist and a Windows wheel only. Building the sdist would need a
    # backend this index does not have, so the lock can only succeed by reading the
    # Windows wheel's metadata (as uv does); fetch would refuse to build it, and says so.
    # Without --allow-compiled-sdist such an sdist is not locked at all (test_evaluator.py).
    server = index_server()
    server.add(make_wheel(wheel_dir, "compiled", "1.0", tag="cp39-cp39-win_amd64", requires_dist=["gamma"]), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "compiled", "1.0", requires_dist=["gamma"]), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "gamma", "1.0"), upload_time=EARLY)
    (project / "requirements.in").write_text("compiled\n")
    code, _, err = run("lock", "--no-pip-config", "--index-url", server.simple_url, "--target", "linux-cp39",
                       "--allow-compiled-sdist")
    assert code == 0, err
    assert pins(project / "locks" / "linux-cp39.txt") == {"compiled": "1.0", "gamma": "1.0"}
    assert "compiled 1.0 has no wheel for linux-cp39, only an sdist" in err
    assert "refuse to build it for this target" in err
    assert not server.requests_matching("/simple/lockship-test-backend/")  # nothing was built


def reseal(path: Path) -> None:
    """Act as an attacker who knows lockship: recompute the fingerprint and re-render the .txt."""
    forged = read_lock(path)
    write_lock(forged.model_copy(update={"fingerprint": forged.computed_fingerprint()}), path.parent)


def test_check_refuses_a_lock_edited_by_hand(world, project, index_server, tmp_path):
    (project / "requirements.in").write_text("gamma\nepsilon\n")
    assert lock(world, "--target", "linux-cp39")[0] == 0
    pylock = project / "locks" / "pylock.linux-cp39.toml"
    generated = pylock.read_bytes(), (project / "locks" / "linux-cp39.txt").read_bytes()
    assert lock(world, "--target", "linux-cp39", "--check")[0] == 0

    # 1. gamma points at another host, the .txt re-rendered to match
    evil = index_server()
    wheel = make_wheel(tmp_path / "evil", "gamma", "1.1", files={"gamma/evil.py": b"x = 1\n"})
    url = evil.add(wheel, upload_time=EARLY)
    forge_lock(pylock, "gamma", version="1.1", url=url, filename=wheel.name,
               sha256=sha256_of(wheel), size=wheel.stat().st_size)
    code, _, err = lock(world, "--target", "linux-cp39", "--check")
    assert code == 1
    assert f"gamma 1.1: {url} is not under a configured index or find-links location" in err
    assert "the fingerprint does not match the lock's contents" in err
    # ... and with the fingerprint recomputed too
    reseal(pylock)
    code, _, err = lock(world, "--target", "linux-cp39", "--check")
    assert code == 1
    assert f"gamma 1.1: {url} is not under a configured index or find-links location" in err
    assert "fingerprint" not in err
    assert evil.requests == []

    # 2. epsilon points at another project's file on the configured index itself
    pylock.write_bytes(generated[0])
    gamma = world.file_url("gamma-1.0-py3-none-any.whl")
    gamma_sha256 = next(d for d in tomllib.loads(generated[0].decode())["packages"] if d["name"] == "gamma")["wheels"][0]["hashes"]["sha256"]
    forge_lock(pylock, "epsilon", url=gamma, sha256=gamma_sha256)
    reseal(pylock)
    code, _, err = lock(world, "--target", "linux-cp39", "--check")
    assert code == 1
    assert (f"epsilon 1.0: {world.simple_url} does not list epsilon-1.0-py3-none-any.whl "
            f"with sha256 {gamma_sha256} at {gamma}") in err

    # 3. the .txt edited alone
    pylock.write_bytes(generated[0])
    txt = project / "locks" / "linux-cp39.txt"
    txt.write_text(txt.read_text().replace("gamma==1.0", "gamma==1.1"))
    code, _, err = lock(world, "--target", "linux-cp39", "--check")
    assert code == 1
    assert "linux-cp39.txt does not match pylock.linux-cp39.toml" in err
    assert (pylock.read_bytes(), txt.read_bytes()) != generated  # --check wrote nothing


def test_url_requirements_get_a_hint_that_leads_to_a_lock(tmp_path, monkeypatch):
    """The hint names the way that works (a find-links directory), not another refusal."""
    monkeypatch.chdir(tmp_path)
    url = "https://files.example/six-1.16.0-py2.py3-none-any.whl"
    hint = "  hint: download the file into a directory, pass -f DIR, and require six by name\n"
    Path("bare.in").write_text(url + "\n")
    Path("named.in").write_text(f"six @ {url}\n")
    code, _, err = run("lock", "-r", "bare.in", "-t", "linux-cp39", "--no-pip-config", "--no-index")
    assert (code, err) == (3, (
        f"lockship: error: bare.in:1: a URL requirement cannot be locked by name and hash: {url!r}\n"
        + hint
    ))
    code, _, err = run("lock", "-r", "named.in", "-t", "linux-cp39", "--no-pip-config", "--no-index")
    assert (code, err) == (3, (
        f"lockship: error: named.in:1: direct URL requirement six @ {url} cannot be locked by "
        "name and hash\n" + hint
    ))
def test_relock_of_unchanged_inputs_keeps_the_lock_without_the_network(
    world, project, monkeypatch
):
    (project / "requirements.in").write_text("alpha\nkappa\n")
    assert lock(world, "--target", "linux-cp39", "--target", "linux-cp313")[0] == 0
    first = {p.name: p.read_bytes() for p in (project / "locks").iterdir()}
    world.reset_log()
    import lockship.lock  # noqa: PLC0415

    def no_resolving(*args, **kwargs):
        raise AssertionError("resolved again")

    resolve = lockship.lock.resolve
    monkeypatch.setattr(lockship.lock, "resolve", no_resolving)
    code, _, err = run(
        "lock", "--index-url", world.simple_url, "--no-pip-config",
        "--target", "linux-cp39", "--target", "linux-cp313",
    )
    assert code == 0, err
    assert world.requests == [], err
    assert {p.name: p.read_bytes() for p in (project / "locks").iterdir()} == first
    # --refresh (like --upgrade, -P and a changed input) resolves again.
    monkeypatch.setattr(lockship.lock, "resolve", resolve)
    assert lock(world, "--target", "linux-cp39", "--refresh")[0] == 0
    assert world.requests_matching("/simple/alpha/")


def test_targets_of_one_run_share_the_session(world, project, monkeypatch):
    """Several --target, one session: each project's page is read (from the index or
    the page cache) once per run, not once per target."""
    from lockship.cache import Cache  # noqa: PLC0415

    (project / "requirements.in").write_text("alpha\nkappa\n")
    reads: list[str] = []
    original = Cache.get_page

    def counting(self, origin, name):
        reads.append(name)
        return original(self, origin, name)

    monkeypatch.setattr(Cache, "get_page", counting)
    assert lock(world, "--target", "linux-cp39", "--target", "linux-cp313", "--target",
                "linux_aarch64-cp311")[0] == 0
    assert reads and len(reads) == len(set(reads)), reads
    assert len(world.requests_matching("/simple/alpha/")) == 1
