"""Crashes, races and a full disk: the real CLI in subprocesses, killed, raced and starved.

What must hold whatever happens:

- the cache holds only files whose bytes hash to their names
  (``$LOCKSHIP_CACHE_DIR/v1/files/ab/<sha256>``);
- a bundle has ``bundle.json`` only when it is complete, and a bundle whose
  signing was cut short never verifies unless it is exactly what a full run
  writes (signing is deterministic);
- a normal run after any of it finishes the job: fetch, sign and verify succeed;
- errors are one line (plus a hint) with the documented exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import pytest

from bundles import Keys, cache_files, check_bundle
from cli_runner import run
from pkgbuild import make_wheel

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)
BIG = 3 * 1024 * 1024
SIGN_OUTPUTS = (
    "manifest.json", "INSTALL.md", "install.py", "sbom.cdx.json", "SHA256SUMS", "SHA256SUMS.sig",
)
TARGETS = Path(__file__).parent / "data" / "targets"

# Runs the CLI and SIGKILLs itself at the n-th call of an os function (os.replace:
# just before the n-th atomic rename, when its temporary file is complete).
KILL_AT = """
import os, signal, sys
count, function = int(sys.argv[1]), sys.argv[2]
original = getattr(os, function)
class Hook:  # an object, not a function: stored as a class attribute (pathlib on 3.9) it stays unbound
    calls = 0
    def __call__(self, *args, **kwargs):
        Hook.calls += 1
        if Hook.calls == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
setattr(os, function, Hook())
sys.argv = ["lockship", *sys.argv[3:]]
from lockship.cli import main
main()
"""


def lockship(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockship", *args]


def not_presented_as_done(bundle: Path) -> None:
    """A bundle with bundle.json must be complete; without it, it is plainly unfinished."""
    if (bundle / "bundle.json").exists():
        check_bundle(bundle)


def one_clean_error(stderr: str, code: int) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("lockship: error: "), stderr
    assert all(line.startswith("  hint: ") for line in lines[1:]), stderr
    assert code not in (0, 70), stderr


@pytest.fixture
def big_world(index_server, wheel_dir, tmp_path, monkeypatch):
    """Three multi-MB wheels and a small one, locked for the host."""
    monkeypatch.chdir(tmp_path)
    server = index_server()
    names = ["huge-a", "huge-b", "huge-c"]
    server.add(make_wheel(wheel_dir, "top", "1.0", requires_dist=names), upload_time=EARLY)
    for number, name in enumerate(names):
        server.add(make_wheel(wheel_dir, name, "1.0", pad_bytes=BIG + number * 4096), upload_time=EARLY)
    (tmp_path / "requirements.in").write_text("top\n")
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", server.simple_url, "--target", "host")
    assert code == 0, err
    server.reset_log()
    return server


def fetch_args(server, *extra: str) -> list[str]:
    return ["fetch", "--target", "host", "--no-pip-config", "--index-url", server.simple_url, "-q", *extra]


def sign_and_verify(bundle: Path, keys: Keys) -> None:
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "--identity", "release", "-q")
    assert code == 0, err
    code, out, err = run("verify", str(bundle), "--allowed-signers", str(keys.allowed), "--identity", "release")
    assert code == 0, err
    assert out.startswith("OK: ")


def wait_killed(proc: subprocess.Popen, delay: float) -> int:
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=30)


# --------------------------------------------------------------------------------------
# kill -9


def test_fetch_killed_at_random_moments_then_completes(big_world, tmp_path, keys):
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"])
    bundle = tmp_path / "dist" / "host"
    # ~0.8 s per big file at full speed: kills land before, during and after downloads.
    big_world.add_fault("/files/huge_*", "delay", per_chunk=0.004)  # huge_a-1.0-...whl
    env = {**os.environ, "LOCKSHIP_RETRY_BACKOFF": "0.01"}
    rng = random.Random(20240101)
    outcomes = []
    for _ in range(8):
        proc = subprocess.Popen(lockship(*fetch_args(big_world)), env=env, stderr=subprocess.DEVNULL)
        outcomes.append(wait_killed(proc, rng.uniform(0.2, 1.4)))
        cache_files(cache)
        not_presented_as_done(bundle)
        assert not list((cache / "v1" / "files").glob("*/*.part"))
    assert -signal.SIGKILL in outcomes, outcomes  # at least one run was really cut short
    assert {r.fault for r in big_world.requests_matching("/files/huge_*")} == {"delay"}
    big_world.clear_faults()
    done = subprocess.run(lockship(*fetch_args(big_world)), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    wheels = check_bundle(bundle)
    assert set(wheels.values()) <= set(cache_files(cache))
    sign_and_verify(bundle, keys)


def test_fetch_killed_at_every_rename_then_completes(big_world, tmp_path, keys):
    """SIGKILL just before each atomic rename (cache publish, wheel placement, lock,
    requirements.txt, bundle.json): the next run must still produce a signable bundle."""
    cache = Path(os.environ["LOCKSHIP_CACHE_DIR"])
    bundle = tmp_path / "dist" / "host"
    env = {**os.environ, "LOCKSHIP_RETRY_BACKOFF": "0.01"}
    killed = 0
    for count in range(1, 16):
        proc = subprocess.run(
            [sys.executable, "-c", KILL_AT, str(count), "replace", *fetch_args(big_world)],
            env=env, capture_output=True, text=True, check=False, timeout=60,
        )
        cache_files(cache)
        not_presented_as_done(bundle)
        if proc.returncode == 0:
            break  # this run made fewer renames than count: everything was done
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        if count % 5 == 0:  # also a bundle whose wheels vanished meanwhile
            shutil.rmtree(bundle / "wheels", ignore_errors=True)
    assert killed >= 6  # 4 cache publishes, 4 placements, the lock, requirements.txt, bundle.json
    done = subprocess.run(lockship(*fetch_args(big_world)), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    check_bundle(bundle)
    sign_and_verify(bundle, keys)


@pytest.fixture
def fetched(big_world, tmp_path, keys, monkeypatch):
    """A fetched bundle of large wheels, and the exact sign outputs a full run writes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")  # signed_at: one signing time for all
    code, _, err = run(*fetch_args(big_world))
    assert code == 0, err
    bundle = tmp_path / "dist" / "host"
    reference = tmp_path / "reference"
    shutil.copytree(bundle, reference)
    code, _, err = run("sign", str(reference), "--key", str(keys.plain), "--identity", "release", "-q")
    assert code == 0, err
    expected = {name: (reference / name).read_bytes() for name in SIGN_OUTPUTS}
    return bundle, expected


def check_after_killed_sign(bundle: Path, keys: Keys, expected: dict[str, bytes]) -> str:
    """A half-signed bundle never verifies: verify passes only on exactly the full outputs."""
    code, _, err = run("verify", str(bundle), "--allowed-signers", str(keys.allowed), "--identity", "release")
    if code == 0:
        assert {name: (bundle / name).read_bytes() for name in SIGN_OUTPUTS} == expected
        return "signed"
    assert code == 7, err  # unsigned, plainly: never a file mismatch that looks like tampering
    assert "SHA256SUMS.sig: missing" in err, err
    return "unsigned"


def sign_args(bundle: Path, keys: Keys) -> list[str]:
    return ["sign", str(bundle), "--key", str(keys.plain), "--identity", "release", "-q"]


def test_sign_killed_at_random_moments_never_half_signed(fetched, keys):
    bundle, expected = fetched
    rng = random.Random(7)
    for _ in range(6):
        proc = subprocess.Popen(lockship(*sign_args(bundle, keys)), stderr=subprocess.DEVNULL)
        wait_killed(proc, rng.uniform(0.3, 0.9))
        check_after_killed_sign(bundle, keys, expected)
    code, _, err = run(*sign_args(bundle, keys))
    assert code == 0, err
    assert check_after_killed_sign(bundle, keys, expected) == "signed"


def test_sign_killed_at_every_write_then_resigns(fetched, keys):
    """SIGKILL just before each of the five atomic renames of signing, on a signed and on
    an unsigned bundle: verify refuses every half-signed state, and sign runs again."""
    bundle, expected = fetched
    for count in range(1, len(SIGN_OUTPUTS) + 1):
        proc = subprocess.run(
            [sys.executable, "-c", KILL_AT, str(count), "replace", *sign_args(bundle, keys)],
            capture_output=True, text=True, check=False, timeout=60,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert check_after_killed_sign(bundle, keys, expected) == "unsigned"
        if count % 2:
            code, _, err = run(*sign_args(bundle, keys))  # re-run: must finish the job
            assert code == 0, err
            assert check_after_killed_sign(bundle, keys, expected) == "signed"
    code, _, err = run(*sign_args(bundle, keys))
    assert code == 0, err
    assert check_after_killed_sign(bundle, keys, expected) == "signed"
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["bundle.json", "pylock.host.toml", "requirements.txt", "wheels", *SIGN_OUTPUTS]
    )


def test_pipeline_run_killed_while_signing_recovers(big_world, tmp_path, keys):
    """`lockship run` re-signs a bundle whose signing was killed (no leftovers block it)."""
    pipeline = tmp_path / "app.toml"
    pipeline.write_text(f"""
[pipeline]
output = "dist"
locks = "locks"

[lock]
requirements = ["requirements.in"]
targets = ["host"]
index-url = "{big_world.simple_url}"
use-pip-config = false

[sign]
key = "{keys.plain}"
identity = "release"
""")
    code, _, err = run("run", str(pipeline), "-q")
    assert code == 0, err
    (tmp_path / "dist" / "host" / "SHA256SUMS.sig").unlink()  # re-sign in the next run
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, "3", "replace", "run", str(pipeline), "-q"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    code, out, err = run("run", str(pipeline), "--json")
    assert code == 0, err
    assert json.loads(out)[0]["status"].endswith("signed")
    code, _, err = run("verify", "dist/host", "--allowed-signers", str(keys.allowed), "--identity", "release")
    assert code == 0, err


# --------------------------------------------------------------------------------------
# two runs of one pipeline at once


@pytest.fixture
def pipeline(tmp_path, monkeypatch, index_server, wheel_dir, keys):
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_wheel(wheel_dir, "app-core", "1.0", requires_dist=["blob", 'tomli; python_version < "3.11"']), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "blob", "1.0", pad_bytes=BIG), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "tomli", "2.0"), upload_time=EARLY)
    server.add_fault("/files/blob-*", "delay", per_chunk=0.002)  # both runs overlap
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "app.in").write_text("app-core\n")
    (pipelines / "app.toml").write_text(f"""
[pipeline]
output = "../dist"
locks = "../locks"

[lock]
requirements = ["app.in"]
targets = ["{TARGETS / 'bullseye-amd64.json'}", "linux_aarch64-cp311"]
index-url = "{server.simple_url}"
use-pip-config = false
exclude-newer = "2024-06-01"

[sign]
key = "{keys.plain}"
identity = "release"
archive = true
""")
    return tmp_path, server


TARGET_NAMES = ("bullseye-amd64", "linux_aarch64-cp311")


@pytest.mark.parametrize("signing", ["configured key", "throwaway key"])
def test_two_concurrent_runs_of_one_pipeline(pipeline, keys, signing):
    """Both finish, or one refuses (exit 10) naming the bundle it found in use; never both,
    and the bundles on disk verify, with the announced throwaway key too."""
    root, _ = pipeline
    allowed, identity = keys.allowed, "release"
    if signing == "throwaway key":
        spec = root / "pipelines" / "app.toml"
        spec.write_text(spec.read_text().replace(f'key = "{keys.plain}"\nidentity = "release"\n', ""))
        assert "key =" not in spec.read_text()
        allowed, identity = root / "dist" / "throwaway-signing-key" / "allowed_signers", "app-throwaway"
    args = lockship("run", "pipelines/app.toml", "-q")
    procs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert code in (0, 10), err
        assert "Traceback" not in err
        if code == 10:
            assert "is in use by another lockship process" in err, err
            named = re.findall(r"bundle (\S+) is in use", err)
            assert named and all(Path(n).name in TARGET_NAMES for n in named), err
    for target in TARGET_NAMES:
        bundle = root / "dist" / target
        check_bundle(bundle)
        for path in (bundle, root / "dist" / f"{target}.tar"):
            code, _, err = run("verify", str(path), "--allowed-signers", str(allowed), "--identity", identity)
            assert code == 0, err
    # a third run finds everything current
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    for row in json.loads(out):
        assert row["status"] == "lock unchanged, bundle complete, signature current, archive current"


# --------------------------------------------------------------------------------------
# a full disk


def _unshare_ok() -> Optional[str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else "unshare -m is not permitted here"


needs_mount = pytest.mark.skipif(_unshare_ok() is not None, reason=str(_unshare_ok()))


def in_small_tmpfs(mountpoint: Path, listing: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``args`` with a 2 MiB tmpfs on ``mountpoint`` in a private mount namespace; then
    write ``sha256sum`` of every file left on it to ``listing`` (outside the tmpfs)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = (
        'mount -t tmpfs -o size=2m lockship-test "$1" || exit 99; shift; '
        'listing="$1"; shift; "$@"; code=$?; '
        'find "$MOUNT" -type f -exec sha256sum {} + > "$listing"; exit $code'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(mountpoint), str(listing), *args],
        env={**env, "MOUNT": str(mountpoint)}, capture_output=True, text=True, check=False, timeout=120,
    )


def left_on(listing: Path, mountpoint: Path) -> dict[str, str]:
    out = {}
    for line in listing.read_text().splitlines():
        digest, _, path = line.partition("  ")
        out[str(Path(path).relative_to(mountpoint))] = digest
    return out


@needs_mount
def test_full_disk_as_fetch_destination(big_world, tmp_path):
    mountpoint = tmp_path / "small"
    listing = tmp_path / "listing"
    proc = in_small_tmpfs(
        mountpoint, listing, lockship(*fetch_args(big_world, "--dest", str(mountpoint / "bundle"))),
        dict(os.environ),
    )
    assert proc.returncode == 9, proc.stderr
    one_clean_error(proc.stderr, proc.returncode)
    assert "No space left on device" in proc.stderr
    assert str(mountpoint) in proc.stderr
    left = left_on(listing, mountpoint)
    assert "bundle/bundle.json" not in left
    for name in left:  # no wheel half-copied under its final name
        if name.startswith("bundle/wheels/") and not Path(name).name.startswith("."):
            assert left[name] in cache_files(Path(os.environ["LOCKSHIP_CACHE_DIR"])), name
    assert not any(n.endswith(".tmp") for n in left), left
    assert list(mountpoint.iterdir()) == []  # the mount never leaked


@needs_mount
def test_full_disk_as_cache(big_world, tmp_path):
    mountpoint = tmp_path / "cache-fs"
    listing = tmp_path / "listing"
    env = {**os.environ, "LOCKSHIP_CACHE_DIR": str(mountpoint / "cache")}
    proc = in_small_tmpfs(mountpoint, listing, lockship(*fetch_args(big_world)), env)
    assert proc.returncode == 9, proc.stderr
    one_clean_error(proc.stderr, proc.returncode)
    assert "No space left on device" in proc.stderr
    left = left_on(listing, mountpoint)
    cached = {n: d for n, d in left.items() if n.startswith("cache/v1/files/")}
    for name, digest in cached.items():
        assert Path(name).name == digest, f"{name} holds bytes hashing to {digest}"
    too_big = {sha for sha, size in _locked_sha256s(tmp_path) if size > 2 * 1024 * 1024}
    assert too_big and not {Path(n).name for n in cached} & too_big
    assert not (tmp_path / "dist" / "host" / "bundle.json").exists()
    assert list(mountpoint.iterdir()) == []


def _locked_sha256s(root: Path) -> list[tuple[str, int]]:
    from lockship.lockfile import read_lock  # noqa: PLC0415

    lock = read_lock(root / "locks" / "pylock.host.toml")
    return [(p.artifact.sha256, p.artifact.size) for p in lock.packages]
