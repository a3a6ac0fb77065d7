"""``lockship fetch`` against the suite's own index, with faults injected.

Every test runs the real CLI. What is checked each time: the bundle holds
exactly the locked files with the locked hashes, and neither the bundle nor the
cache ever holds a file with wrong bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bundles import cache_files, check_bundle, sha256_of
from cli_runner import run
from lockship._compat import tomllib
from pkgbuild import make_sdist, make_wheel, same_size

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)
BIG = 3 * 1024 * 1024



@pytest.fixture
def served(index_server, wheel_dir, backend_wheel, tmp_path, monkeypatch):
    """A server with a small set, a large wheel, a pure sdist; the project locked for host."""
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_wheel(wheel_dir, "small", "1.0", requires_dist=["big", "puresrc"]), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "big", "1.0", pad_bytes=BIG), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "puresrc", "1.0"), upload_time=EARLY)
    server.add(backend_wheel, upload_time=EARLY)
    (tmp_path / "requirements.in").write_text("small\n")
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", server.simple_url, "--target", "host")
    assert code == 0, err
    server.reset_log()
    return server


def fetch(server, *args: str) -> tuple[int, str, str]:
    return run("fetch", "--target", "host", "--no-pip-config", "--index-url", server.simple_url, "-q", *args)


@pytest.mark.slow  # makes a venv or runs pip
def test_fetch_builds_a_bundle_pip_installs_offline(served, tmp_path):
    code, _, err = fetch(served)
    assert code == 0, err
    bundle = tmp_path / "dist" / "host"
    wheels = check_bundle(bundle)
    assert sorted(wheels) == ["big-1.0-py3-none-any.whl", "puresrc-1.0-py3-none-any.whl", "small-1.0-py3-none-any.whl"]
    record = json.loads((bundle / "bundle.json").read_text())
    built = next(f for f in record["files"] if f["name"] == "puresrc")
    assert built["kind"] == "built-wheel"
    assert built["built_from"]["sdist_filename"] == "puresrc-1.0.tar.gz"
    assert built["built_from"]["build_backend"] == "lockship_test_backend"
    assert any(r.startswith("lockship-test-backend==1.0") for r in built["built_from"]["build_requires"])
    assert (bundle / "pylock.host.toml").read_bytes() == (tmp_path / "locks" / "pylock.host.toml").read_bytes()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links",
         str(bundle / "wheels"), "--require-hashes", "-r", str(bundle / "requirements.txt")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import small, big, puresrc"]).returncode == 0


def test_refetch_of_complete_bundle_touches_no_network(served, tmp_path):
    assert fetch(served)[0] == 0
    served.reset_log()
    served.add_fault("*", "status", code=500)
    code, out, err = fetch(served, "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] is False
    assert served.requests == []


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("status", {"code": 500}),
        ("status", {"code": 503}),
        ("reset", {"after": 1024 * 1024}),
        ("truncate", {"after": 1024 * 1024}),
        ("corrupt", {}),
        ("delay", {"seconds": 0.3, "per_chunk": 0.001}),
    ],
)
def test_transient_faults_are_recovered(served, tmp_path, monkeypatch, kind, params):
    monkeypatch.setenv("LOCKSHIP_RETRY_BACKOFF", "0.01")
    served.add_fault("/files/big-*", kind, count=2 if kind == "status" else 1, **params)
    code, _, err = fetch(served)
    assert code == 0, err
    check_bundle(tmp_path / "dist" / "host")
    cache_files(Path(os.environ["LOCKSHIP_CACHE_DIR"]))
    if kind in ("reset", "truncate"):
        # the second request resumed where the first stopped
        ranges = [r.range for r in served.requests_matching("/files/big-*")]
        assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")


def test_resume_when_server_ignores_range_starts_over(served, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSHIP_RETRY_BACKOFF", "0.01")
    served.add_fault("/files/big-*", "reset", count=1, after=512 * 1024)
    served.add_fault("/files/big-*", "ignore_range", count=1)
    code, _, err = fetch(served)
    assert code == 0, err
    check_bundle(tmp_path / "dist" / "host")


def test_persistently_wrong_bytes_fail_cleanly_and_leave_nothing(served, tmp_path):
    served.add_fault("/files/big-*", "corrupt")
    code, _, err = fetch(served)
    assert code == 6
    assert "big-1.0-py3-none-any.whl" in err
    assert "expected" in err and served.url in err
    bundle = tmp_path / "dist" / "host"
    assert not (bundle / "bundle.json").exists()
    assert not (bundle / "wheels" / "big-1.0-py3-none-any.whl").exists()
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"])
    cache_files(cache)
    assert not list((cache / "v1" / "partial").glob("*.part"))


def test_server_sending_too_many_bytes_is_refused(served, tmp_path):
    served.add_fault("/files/big-*", "body", data=b"x" * (BIG * 2))
    code, _, err = fetch(served)
    assert code == 6
    assert "big-1.0-py3-none-any.whl" in err
    cache_files(Path(os.environ["LOCKSHIP_CACHE_DIR"]))


def test_offline_fetch_uses_the_cache_only(served, tmp_path):
    code, _, err = fetch(served, "--offline", "--dest", "first")
    assert code == 5
    assert "--offline" in err
    assert served.requests == []
    assert fetch(served, "--dest", "online")[0] == 0
    served.reset_log()
    code, _, err = fetch(served, "--offline", "--dest", "second")
    assert code == 0, err
    assert served.requests == []
    assert check_bundle(tmp_path / "second") == check_bundle(tmp_path / "online")


def test_lock_for_another_target_is_refused(served, tmp_path):
    code, _, err = run("fetch", "--target", "linux-cp39", "--lock", "locks/pylock.host.toml", "-q")
    assert code == 3
    assert "this lock was made for host" in err


def test_missing_lock_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run("fetch", "--target", "linux-cp39", "-q")
    assert code == 3
    assert "locks/pylock.linux-cp39.toml" in err and "lockship lock" in err


def test_sdist_building_a_platform_wheel_is_refused_for_a_foreign_target(
    index_server, wheel_dir, backend_wheel, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_sdist(wheel_dir, "native", "1.0", wheel_tag="cp39-cp39-linux_x86_64"), upload_time=EARLY)
    server.add(backend_wheel, upload_time=EARLY)
    (tmp_path / "requirements.in").write_text("native\n")
    base = ("--no-pip-config", "--index-url", server.simple_url, "--target", "linux-cp39")
    code, _, err = run("lock", "-q", *base)
    assert code == 0, err  # locking needs only its metadata (built on the host)
    code, _, err = run("fetch", "-q", *base)
    assert code == 8
    assert "native-1.0.tar.gz" in err
    assert "not a pure-Python wheel" in err
    assert "linux-cp39" in err
    assert not (tmp_path / "dist" / "linux-cp39" / "bundle.json").exists()


def test_kill_9_during_download_then_rerun_resumes(served, tmp_path):
    served.add_fault("/files/big-*", "delay", count=1, per_chunk=0.02)
    env = {**os.environ, "LOCKSHIP_RETRY_BACKOFF": "0.01"}
    args = [sys.executable, "-m", "lockship", "fetch", "--target", "host", "--no-pip-config",
            "--index-url", served.simple_url, "-q"]
    proc = subprocess.Popen(args, env=env)
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"])
    deadline = time.monotonic() + 20
    part = None
    while time.monotonic() < deadline:
        parts = list((cache / "v1" / "partial").glob("*.part"))
        if parts and parts[0].stat().st_size > 256 * 1024:
            part = parts[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert part is not None, "the download never started"
    assert not (tmp_path / "dist" / "host" / "bundle.json").exists()
    served.reset_log()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    check_bundle(tmp_path / "dist" / "host")
    cache_files(cache)
    assert any(r.range for r in served.requests_matching("/files/big-*"))


def test_two_fetches_sharing_a_cache_at_once(served, tmp_path):
    served.add_fault("/files/big-*", "delay", count=2, per_chunk=0.002)
    args = [sys.executable, "-m", "lockship", "fetch", "--target", "host", "--no-pip-config",
            "--index-url", served.simple_url, "-q"]
    first = subprocess.Popen([*args, "--dest", "one"], stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*args, "--dest", "two"], stderr=subprocess.PIPE, text=True)
    same = subprocess.Popen([*args, "--dest", "one"], stderr=subprocess.PIPE, text=True)
    results = [(p.wait(), p.communicate()[1]) for p in (first, second, same)]
    assert results[1][0] == 0, results[1][1]
    # two fetches wanted bundle "one": at least one finished, the other finished
    # too or refused clearly
    one = sorted([results[0], results[2]])
    assert one[0][0] == 0, one[0][1]
    assert one[1][0] in (0, 10), one[1][1]
    if one[1][0] == 10:
        assert "bundle one is in use by another lockship process" in one[1][1]
    assert check_bundle(tmp_path / "one") == check_bundle(tmp_path / "two")
    cache_files(Path(os.environ["LOCKSHIP_CACHE_DIR"]))


def test_corrupt_cache_entry_is_caught_removed_and_recovered(served, tmp_path):
    assert fetch(served, "--dest", "first")[0] == 0
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"]) / "v1" / "files"
    (victim,) = (p for p in list(cache.glob("*/*")) if p.stat().st_size > BIG)  # list(): no open scandir
    victim.chmod(0o644)
    with victim.open("r+b") as handle:  # same size, one byte different
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    code, _, err = fetch(served, "--dest", "second")
    assert code == 6
    assert "big-1.0-py3-none-any.whl: the cached copy had sha256" in err
    assert not victim.exists()
    assert not (tmp_path / "second" / "bundle.json").exists()
    assert fetch(served, "--dest", "second")[0] == 0  # downloaded anew
    check_bundle(tmp_path / "second")


def test_replaced_bundle_file_is_not_taken_as_complete(served, tmp_path):
    assert fetch(served)[0] == 0
    wheel = tmp_path / "dist" / "host" / "wheels" / "small-1.0-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    data[100] ^= 0xFF
    wheel.unlink()
    wheel.write_bytes(bytes(data))  # a new file of the same size, not the cache's
    code, out, err = fetch(served, "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] is True
    check_bundle(tmp_path / "dist" / "host")


# --- what was resolved is what is fetched --------------------------------------------------


def test_metadata_read_by_range_must_be_that_of_the_file_downloaded(index_server, wheel_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    server = index_server()
    honest = make_wheel(wheel_dir, "sly", "1.0", requires_dist=["payload"])
    twin = make_wheel(tmp_path / "twin", "sly", "1.0")  # no dependencies
    same_size(honest, twin)
    server.add(honest, upload_time=EARLY, range_twin=twin)  # ranges from the twin, downloads honest
    server.add(make_wheel(wheel_dir, "payload", "1.0"), upload_time=EARLY)
    (tmp_path / "requirements.in").write_text("sly\n")
    base = ("--no-pip-config", "--index-url", server.simple_url, "--target", "host", "-q")
    assert run("lock", *base)[0] == 0
    assert "payload" not in (tmp_path / "locks" / "host.txt").read_text()  # resolved from the twin
    code, _, err = run("fetch", *base)
    assert code == 6
    assert err.startswith(
        "lockship: error: sly-1.0-py3-none-any.whl: its METADATA is not the metadata the lock "
        "was resolved from (Requires-Dist differs); the file was refused\n"
    ), err
    assert not (tmp_path / "dist" / "host" / "bundle.json").exists()
    # The cached metadata now is the file's own: locking again resolves what will be installed.
    assert run("lock", *base)[0] == 0
    assert "payload==1.0" in (tmp_path / "locks" / "host.txt").read_text()
    assert run("fetch", *base)[0] == 0


def test_query_string_tokens_are_used_but_never_cross_the_gap(index_server, wheel_dir, backend_wheel, tmp_path, monkeypatch, keys):
    monkeypatch.chdir(tmp_path)
    # Pre-signed object-store links; no PEP 658 files (pip would append .metadata to the query).
    server = index_server(file_query="X-Amz-Expires=60&X-Amz-Signature=firsttoken", advertise_metadata=False)
    server.add(make_wheel(wheel_dir, "small", "1.0", requires_dist=["puresrc"]), upload_time=EARLY)
    server.add(make_sdist(wheel_dir, "puresrc", "1.0"), upload_time=EARLY)
    server.add(backend_wheel, upload_time=EARLY)
    (tmp_path / "requirements.in").write_text("small\n")
    base = ("--no-pip-config", "--index-url", server.simple_url, "--target", "host", "-q")
    assert run("lock", *base)[0] == 0
    # The pre-signed links expire; fetch asks the index for fresh ones.
    server.file_query = "X-Amz-Expires=60&X-Amz-Signature=secondtoken"
    server.reset_log()
    code, _, err = run("fetch", *base)
    assert code == 0, err
    fetched = [r for r in server.requests if r.path.startswith("/files/") and r.status == 200]
    # (the sdist was downloaded, and built, at lock time: it comes from the cache)
    assert {r.path.rsplit("/", 1)[1] for r in fetched} == {"small-1.0-py3-none-any.whl"}
    assert {r.query for r in fetched} == {"X-Amz-Expires=60&X-Amz-Signature=secondtoken"}
    bundle = tmp_path / "dist" / "host"
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "--identity", "release", "--archive", "-q")
    assert code == 0, err
    written = [*(tmp_path / "locks").iterdir(), *(p for p in bundle.rglob("*") if p.is_file()), tmp_path / "dist" / "host.tar"]
    for path in written:
        data = path.read_bytes()
        assert b"X-Amz" not in data and b"token" not in data, path
    manifest = json.loads((bundle / "manifest.json").read_text())
    origins = {f["path"]: (f["origin_url"], f["origin_url_query_removed"]) for f in manifest["files"] if f.get("origin_url")}
    assert origins["wheels/small-1.0-py3-none-any.whl"] == (f"{server.url}/files/small-1.0-py3-none-any.whl", True)
    built = next(f for f in manifest["files"] if f["kind"] == "built-wheel")
    assert built["built_from"]["sdist_url"] == f"{server.url}/files/puresrc-1.0.tar.gz"
    pylock = tomllib.loads((tmp_path / "locks" / "pylock.host.toml").read_text())
    small = next(p for p in pylock["packages"] if p["name"] == "small")
    assert small["tool"]["lockship"]["query-removed"] is True


def test_bundle_files_share_no_inode_with_the_cache_or_each_other(served, tmp_path):
    assert fetch(served, "--dest", "one")[0] == 0
    assert fetch(served, "--dest", "two")[0] == 0
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"]) / "v1" / "files"
    wheel = "big-1.0-py3-none-any.whl"
    one, two = tmp_path / "one" / "wheels" / wheel, tmp_path / "two" / "wheels" / wheel
    cached = cache / sha256_of(one)[:2] / sha256_of(one)
    assert len({one.stat().st_ino, two.stat().st_ino, cached.stat().st_ino}) == 3
    # root ignores 0444: an in-place write damages only the file written to
    with one.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\0" * 16)
    cache_files()
    check_bundle(tmp_path / "two")
    code, out, err = fetch(served, "--dest", "one", "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] is True
    check_bundle(tmp_path / "one")
    # hard links only on request
    assert fetch(served, "--dest", "linked", "--link-mode", "hardlink")[0] == 0
    assert (tmp_path / "linked" / "wheels" / wheel).stat().st_ino == cached.stat().st_ino


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mkfs.btrfs"), reason="needs root and btrfs-progs")
def test_bundle_files_are_reflinks_where_the_filesystem_can(served, tmp_path, monkeypatch):
    image, mount = tmp_path / "btrfs.img", tmp_path / "btrfs"
    with image.open("wb") as handle:
        handle.truncate(160 * 1024 * 1024)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    try:
        monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(mount / "cache"))
        assert fetch(served, "--dest", str(mount / "bundle"))[0] == 0
        wheel = mount / "bundle" / "wheels" / "big-1.0-py3-none-any.whl"
        extents = subprocess.run(["filefrag", "-v", str(wheel)], capture_output=True, text=True, check=True).stdout
        assert "shared" in extents  # its blocks are the cache entry's: a clone, not a copy
        with wheel.open("r+b") as handle:  # copy-on-write: the cache keeps its bytes
            handle.seek(1000)
            handle.write(b"\0" * 16)
        cache_files(mount / "cache")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_the_same_lock_gives_the_same_bundle_and_archive_from_two_fresh_caches(served, tmp_path, monkeypatch, keys):
    # locks/pylock.host.toml has an sdist (puresrc). The other lock has it too, with an
    # earlier exclude-newer, so its wheel is built with another SOURCE_DATE_EPOCH.
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", served.simple_url, "--target", "host",
                       "--exclude-newer", "2024-03-01", "-o", "early")
    assert code == 0, err
    results = []
    for name, earlier in (("first", None), ("second", "early/pylock.host.toml")):
        monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        if earlier:
            assert fetch(served, "--lock", earlier, "--dest", f"early-{name}")[0] == 0
        assert fetch(served, "--dest", f"{name}/host")[0] == 0
        code, _, err = run("sign", f"{name}/host", "--key", str(keys.plain), "--identity", "release", "--archive", "-q",
                           "--signed-at", "2026-01-01T00:00:00Z")  # the same signing time
        assert code == 0, err
        bundle = tmp_path / name / "host"
        results.append({p.relative_to(bundle).as_posix(): p.read_bytes() for p in bundle.rglob("*") if p.is_file()})
        results[-1]["<archive>"] = (tmp_path / name / "host.tar").read_bytes()
    assert results[0].keys() == results[1].keys()
    assert [k for k in results[0] if results[0][k] != results[1][k]] == []


@pytest.mark.parametrize("entry", ["built wheel", "sdist"])
def test_cached_build_inputs_and_outputs_are_verified_on_use(served, tmp_path, entry):
    assert fetch(served, "--dest", "first")[0] == 0
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"]) / "v1"
    if entry == "built wheel":
        (victim,) = (cache / "builds").glob("*/*/*.whl")
        message = "puresrc-1.0-py3-none-any.whl: the cached wheel built from puresrc-1.0.tar.gz had sha256"
    else:
        shutil.rmtree(cache / "builds")
        sdist = json.loads((tmp_path / "first" / "bundle.json").read_text())
        digest = next(f["built_from"]["sdist_sha256"] for f in sdist["files"] if f["built_from"])
        victim = cache / "files" / digest[:2] / digest
        message = "puresrc-1.0.tar.gz: the cached copy had sha256"
    victim.chmod(0o644)
    with victim.open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\0" * 8)
    code, _, err = fetch(served, "--dest", "second")
    assert code == 6
    assert message in err, err
    assert not victim.exists()
    assert not (tmp_path / "second" / "bundle.json").exists()
    assert fetch(served, "--dest", "second")[0] == 0
    assert check_bundle(tmp_path / "second") == check_bundle(tmp_path / "first")
