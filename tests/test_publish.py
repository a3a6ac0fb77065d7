"""``lockship publish --to DIR``: verified bundles merged into a static PEP 503/691 tree.

Bundles are made by the real lock, fetch and sign commands against the hermetic
index; the tree is read back with pip, with ``lockship lock`` and by parsing every
page. Kills, races, tampering and conflicts must leave a tree whose every page
holds and whose every link resolves to the bytes its hash names.
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
import venv
import zipfile
from pathlib import Path

import pytest

from bundles import Keys, flip_byte, make_bundle, only_wheel, sha256_of, sign
from cli_runner import run
from indexserver import IndexServer
from lockship.errors import IntegrityError
from lockship.lockfile import read_lock
from lockship.publish import _extract_metadata
from pkgbuild import make_wheel
from repository import (
    EXCLUDE_NEWER,
    Signed,
    check_tree,
    lock_fetch_sign,
    served,
    snapshot,
)
from test_faults import KILL_AT, wait_killed

TARGETS = ("linux-cp39", "linux-cp311")
HEX = "[0-9a-f]{64}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Signed:
    """Two real signed bundles (linux-cp39, linux-cp311) sharing two pure wheels."""
    root = tmp_path_factory.mktemp("world")
    wheels = root / "wheels"
    env = {
        "PIP_CONFIG_FILE": os.devnull,
        "LOCKSHIP_CACHE_DIR": str(root / "cache"),
        "NETRC": str(root / "no-netrc"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with IndexServer() as server:
        server.add(make_wheel(wheels, "alpha", "1.0", requires_python=">=3.8,<4"))
        server.add(make_wheel(wheels, "beta", "2.0", requires_dist=["alpha>=1"]))
        for tag in ("cp39-cp39-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_x86_64"):
            server.add(make_wheel(wheels, "cfast", "1.0", tag=tag))
        return lock_fetch_sign(
            root / "project", server.simple_url, "beta\ncfast\n", TARGETS, keys, env, archive=True
        )


def publish(dest: Path, keys: Keys, *args: object) -> tuple[int, str, str]:
    return run(
        "publish", *map(str, args), "--to", str(dest),
        "--allowed-signers", str(keys.allowed), "--identity", "release",
    )


def both(world: Signed) -> list[Path]:
    return [world.bundles[t] for t in TARGETS]


def files_of(world: Signed, target: str) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in (world.bundles[target] / "wheels").iterdir()}


# --------------------------------------------------------------------------------------
# the tree


def test_two_targets_merge_into_one_tree(world: Signed, keys: Keys, tmp_path: Path) -> None:
    dest = tmp_path / "repo"
    code, out, err = publish(dest, keys, *both(world))
    assert code == 0, err
    assert out == ""
    assert err == (
        "published linux-cp39: 3 wheels for linux-cp39, signed by release, sequence 1\n"
        "published linux-cp311: 3 wheels for linux-cp311, signed by release, sequence 1\n"
        f"{dest}: 4 files added, 10 pages written\n"
    )
    assert check_tree(dest) == {
        "alpha": {"alpha-1.0-py3-none-any.whl"},
        "beta": {"beta-2.0-py3-none-any.whl"},
        "cfast": {
            "cfast-1.0-cp39-cp39-manylinux_2_17_x86_64.whl",
            "cfast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        },
    }
    # Every file of every bundle exactly once, byte for byte, with its METADATA beside it.
    wanted = {**files_of(world, "linux-cp39"), **files_of(world, "linux-cp311")}
    wheels = sorted((dest / "files").rglob("*.whl"))
    assert {p.name: sha256_of(p) for p in wheels} == wanted
    assert len(wheels) == 4
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            assert Path(f"{wheel}.metadata").read_bytes() == archive.read(member)
    alpha = (dest / "simple" / "alpha" / "index.html").read_text()
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in alpha  # escaped, and parsed back below
    doc = json.loads((dest / "simple" / "alpha" / "index.json").read_text())
    (entry,) = doc["files"]
    assert entry["requires-python"] == "<4,>=3.8"
    assert entry["upload-time"] == "2024-01-01T00:00:00Z"  # the original index's (PEP 700)
    assert doc["versions"] == ["1.0"]
    assert doc["meta"] == {"api-version": "1.1"}
    provenance = json.loads((dest / "provenance.json").read_text())
    assert [(b["name"], b["target"], b["signer"], b["retired_at"]) for b in provenance["bundles"]] == [
        ("linux-cp39", "linux-cp39", "release", None),
        ("linux-cp311", "linux-cp311", "release", None),
    ]
    for bundle in provenance["bundles"]:
        assert bundle["id"] == "sha256:" + sha256_of(world.bundles[bundle["target"]] / "SHA256SUMS")
        assert re.fullmatch(r"SHA256:\S+", bundle["key"])
    assert "linux-cp39" in (dest / "provenance.html").read_text()


@pytest.mark.slow  # makes a venv or runs pip
def test_pip_installs_each_target_from_the_tree_with_require_hashes(
    world: Signed, keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "repo"
    assert publish(dest, keys, *both(world))[0] == 0
    index = (dest / "simple").as_uri() + "/"
    # The target this interpreter is (if it is one of them) into a fresh venv ...
    native = f"linux-cp3{sys.version_info[1]}"
    if native in TARGETS:
        venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
        python = str(tmp_path / "venv" / "bin" / "python")
        proc = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--require-hashes", "--index-url", index,
             "-r", str(world.bundles[native] / "requirements.txt")],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run([python, "-c", "import alpha, beta, cfast; print(cfast.__version__)"],
                              capture_output=True, text=True, check=False)
        assert proc.stdout == "1.0\n", proc.stderr
    # ... the others with pip's own foreign-target switches: exactly their bundle's wheels.
    for target in TARGETS:
        if target == native:
            continue
        minor = target.removeprefix("linux-cp3")
        got = tmp_path / target
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--index-url",
             index, "--only-binary=:all:", "--python-version", f"3.{minor}", "--implementation",
             "cp", "--abi", f"cp3{minor}", "--platform", "manylinux_2_17_x86_64", "-d", str(got),
             "-r", str(world.bundles[target] / "requirements.txt")],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert {p.name: sha256_of(p) for p in got.iterdir()} == files_of(world, target)


@pytest.mark.parametrize("target", TARGETS)
def test_lock_from_the_tree_gives_the_same_pins_and_hashes(
    world: Signed, keys: Keys, tmp_path: Path, target: str
) -> None:
    dest = tmp_path / "repo"
    assert publish(dest, keys, *both(world))[0] == 0
    code, _, err = run(
        "lock", "-r", str(world.root / "requirements.in"), "--target", target, "--no-pip-config",
        "--index-url", (dest / "simple").as_uri() + "/", "--exclude-newer", EXCLUDE_NEWER,
        "-o", str(tmp_path / "relock"), "-q",
    )
    assert code == 0, err

    def pins(path: Path) -> list[tuple[str, str, str]]:
        return [(p.name, p.version, p.artifact.sha256) for p in read_lock(path).packages]

    relocked = read_lock(tmp_path / "relock" / world.locks[target].name)
    assert pins(tmp_path / "relock" / world.locks[target].name) == pins(world.locks[target])
    assert len(relocked.packages) == 3


def test_publishing_again_changes_nothing(world: Signed, keys: Keys, tmp_path: Path) -> None:
    dest = tmp_path / "repo"
    assert publish(dest, keys, *both(world))[0] == 0
    before = snapshot(dest)
    archive = world.bundles["linux-cp39"].with_name("linux-cp39.tar")
    code, _, err = publish(dest, keys, archive, world.bundles["linux-cp311"])
    assert code == 0, err
    assert err == (
        "linux-cp39: already published\n"
        "linux-cp311: already published\n"
        f"{dest}: 0 files added, 0 pages written\n"
    )
    assert snapshot(dest) == before
    assert not any((dest / ".lockship").glob("tmp*"))


def test_pages_do_not_depend_on_the_publishing_order(
    world: Signed, keys: Keys, tmp_path: Path
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for bundle in both(world):
        assert publish(first, keys, bundle)[0] == 0
    archives = [b.with_name(b.name + ".tar") for b in reversed(both(world))]
    assert publish(second, keys, *archives)[0] == 0
    assert served(first) == served(second)


def test_dry_run_writes_nothing(world: Signed, keys: Keys, tmp_path: Path) -> None:
    dest = tmp_path / "repo"
    code, _, err = publish(dest, keys, *both(world), "--dry-run")
    assert code == 0, err
    assert err.endswith(f"{dest}: 4 files would be added, 0 pages would be written\n")
    assert not dest.exists()


# --------------------------------------------------------------------------------------
# refusals: nothing of a bad run is written


def tampered_copy(world: Signed, tmp_path: Path, attack: str) -> Path:
    bundle = tmp_path / "bad" / "linux-cp311"
    shutil.copytree(world.bundles["linux-cp311"], bundle)
    if attack == "flipped byte":
        flip_byte(only_wheel(bundle, "cfast"))
    elif attack == "extra file":
        shutil.copy(only_wheel(bundle, "alpha"), bundle / "wheels" / "evil-1.0-py3-none-any.whl")
    elif attack == "symlink":
        wheel = only_wheel(bundle, "beta")
        wheel.unlink()
        wheel.symlink_to(only_wheel(world.bundles["linux-cp311"], "beta"))
    return bundle


@pytest.mark.parametrize(
    ("attack", "code", "problem"),
    [
        ("flipped byte", 6, f"wheels/cfast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl: sha256 {HEX}, expected {HEX}"),
        ("extra file", 6, "wheels/evil-1.0-py3-none-any.whl: not listed in SHA256SUMS"),
        ("symlink", 6, "wheels/beta-2.0-py3-none-any.whl: symbolic link refused"),
        ("other key", 7, "SHA256SUMS.sig: signature was made by key SHA256:"),
    ],
)
def test_a_bundle_that_does_not_verify_is_refused_and_nothing_is_written(
    world: Signed, keys: Keys, tmp_path: Path, attack: str, code: int, problem: str
) -> None:
    dest = tmp_path / "repo"
    assert publish(dest, keys, world.bundles["linux-cp39"])[0] == 0
    before = snapshot(dest)
    bad = tampered_copy(world, tmp_path, attack)
    if attack == "other key":
        (bad / "SHA256SUMS.sig").unlink()
        code_, _, err = run("sign", str(bad), "--key", str(keys.other), "--identity", "release", "-q")
        assert code_ == 0, err
    got, _, err = publish(dest, keys, bad)
    assert got == code, err
    assert err.startswith(f"lockship: error: {bad}: "), err
    assert re.search(re.escape(problem).replace(re.escape(HEX), HEX), err), err
    assert "Traceback" not in err
    assert snapshot(dest) == before
    assert str(dest / ".lockship") not in err  # messages name the bundle, not its private copy


def test_one_bad_bundle_refuses_the_whole_run(world: Signed, keys: Keys, tmp_path: Path) -> None:
    dest = tmp_path / "repo"
    bad = tampered_copy(world, tmp_path, "flipped byte")
    code, _, err = publish(dest, keys, world.bundles["linux-cp39"], bad)
    assert code == 6, err
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        ".lockship", ".lockship/lock",
    ]


def other_alpha(tmp_path: Path, keys: Keys) -> Path:
    """A signed bundle whose alpha-1.0-py3-none-any.whl has other bytes than the world's."""
    bundle = make_bundle(tmp_path / "other", [("alpha", "1.0"), ("delta", "1.0")], "linux-cp313")
    sign(bundle, keys, "--identity", "release")
    return bundle


def test_a_file_name_published_with_other_bytes_is_refused(
    world: Signed, keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "repo"
    assert publish(dest, keys, world.bundles["linux-cp39"])[0] == 0
    before = snapshot(dest)
    other = other_alpha(tmp_path, keys)
    code, _, err = publish(dest, keys, other)
    assert code == 6, err
    published = sha256_of(only_wheel(world.bundles["linux-cp39"], "alpha"))
    offered = sha256_of(only_wheel(other, "alpha"))
    assert re.fullmatch(
        "lockship: error: files/alpha/alpha-1.0-py3-none-any.whl: already published as "
        f"sha256 {published} from bundle linux-cp39 \\(linux-cp39, signed by release, sequence 1\\), "
        "published \\S+Z, origin http://127.0.0.1:\\d+/files/alpha-1.0-py3-none-any.whl; "
        f"refusing alpha-1.0-py3-none-any.whl sha256 {offered} from bundle linux-cp313 "
        "\\(linux-cp313, signed by release, sequence 1\\), published \\S+Z, "
        "origin https://files.example.org/packages/alpha-1.0-py3-none-any.whl\n"
        "  hint: a published file name is never reused for other bytes; "
        "give the new file a new version or build tag\n",
        err,
    ), err
    assert snapshot(dest) == before


def test_conflicting_bundles_in_one_run_write_nothing(
    world: Signed, keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "repo"
    code, _, err = publish(dest, keys, world.bundles["linux-cp39"], other_alpha(tmp_path, keys))
    assert code == 6, err
    assert "files/alpha/alpha-1.0-py3-none-any.whl: already published as" in err
    assert not (dest / "simple").exists()
    assert not (dest / "files").exists()


def test_metadata_that_its_record_does_not_describe_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "src", "alpha", "1.0")
    forged = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(forged, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("METADATA"):
                data += b"Requires-Dist: evil\n"
            out.writestr(info, data)
    with pytest.raises(IntegrityError) as caught:
        _extract_metadata(forged, "alpha", "1.0", tmp_path / "out.metadata")
    assert str(caught.value) == (
        f"{forged.name}: alpha-1.0.dist-info/METADATA does not match the sha256 "
        "the wheel's RECORD gives"
    )
    assert _extract_metadata(wheel, "alpha", "1.0", tmp_path / "ok.metadata")[0] == sha256_of(
        tmp_path / "ok.metadata"
    )


# --------------------------------------------------------------------------------------
# prune


def test_prune_retires_superseded_bundles_and_removes_their_files(
    tmp_path: Path, keys: Keys
) -> None:
    old = make_bundle(tmp_path / "old", [("alpha", "1.0"), ("beta", "2.0", "alpha>=1")], "linux-cp39")
    new = make_bundle(tmp_path / "new", [("alpha", "1.0"), ("beta", "2.1", "alpha>=1")], "linux-cp39")
    for sequence, bundle in enumerate((old, new), 1):  # separate directories: separate counters
        sign(bundle, keys, "--identity", "release", "--sequence", str(sequence))
    dest = tmp_path / "repo"
    assert publish(dest, keys, old)[0] == 0
    assert publish(dest, keys, new)[0] == 0
    assert check_tree(dest)["beta"] == {"beta-2.0-py3-none-any.whl", "beta-2.1-py3-none-any.whl"}
    before = snapshot(dest)
    code, _, err = publish(dest, keys, "--prune", "--dry-run")
    assert code == 0, err
    assert err == (
        "would be retired linux-cp39 (linux-cp39): superseded by a newer bundle\n"
        "would be removed files/beta/beta-2.0-py3-none-any.whl\n"
        "would be removed files/beta/beta-2.0-py3-none-any.whl.metadata\n"
        f"{dest}: 0 files would be added, 0 pages would be written\n"
    )
    assert snapshot(dest) == before
    code, _, err = publish(dest, keys, "--prune")
    assert code == 0, err
    assert check_tree(dest) == {"alpha": {"alpha-1.0-py3-none-any.whl"},
                                "beta": {"beta-2.1-py3-none-any.whl"}}
    assert not (dest / "files" / "beta" / "beta-2.0-py3-none-any.whl").exists()
    provenance = json.loads((dest / "provenance.json").read_text())
    assert [b["retired_at"] is not None for b in provenance["bundles"]] == [True, False]
    # A pruned name is never reused for other bytes ...
    forged = make_bundle(tmp_path / "forged", [("beta", "2.0", "alpha>=2")], "linux-cp311")
    sign(forged, keys, "--identity", "release")
    code, _, err = publish(dest, keys, forged)
    assert code == 6, err
    assert ", removed by prune " in err
    # ... and publishing the retired bundle again brings its files back.
    code, _, err = publish(dest, keys, old)
    assert code == 0, err
    assert check_tree(dest)["beta"] == {"beta-2.0-py3-none-any.whl", "beta-2.1-py3-none-any.whl"}


# --------------------------------------------------------------------------------------
# kill -9 and concurrent publishes


def publish_args(dest: Path, keys: Keys, *bundles: Path) -> list[str]:
    return ["publish", *map(str, bundles), "--to", str(dest), "--allowed-signers",
            str(keys.allowed), "--identity", "release", "-q"]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Signed:
    """Two bundles with multi-MB wheels, so that a publish takes long enough to be killed."""
    root = tmp_path_factory.mktemp("big")
    env = {"PIP_CONFIG_FILE": os.devnull, "LOCKSHIP_CACHE_DIR": str(root / "cache"),
           "NETRC": str(root / "no-netrc"), "NO_PROXY": "127.0.0.1,localhost"}
    wheels = root / "wheels"
    with IndexServer() as server:
        names = [f"huge-{c}" for c in "abcd"]
        server.add(make_wheel(wheels, "top", "1.0", requires_dist=names))
        for number, name in enumerate(names):
            server.add(make_wheel(wheels, name, "1.0", pad_bytes=6 * 1024 * 1024 + number))
        for tag in ("cp39-cp39-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_x86_64"):
            server.add(make_wheel(wheels, "native", "1.0", tag=tag, pad_bytes=4 * 1024 * 1024))
        return lock_fetch_sign(root / "project", server.simple_url, "top\nnative\n", TARGETS, keys, env)


def clean_publish(signed: Signed, keys: Keys, dest: Path) -> dict[str, str]:
    """What one uninterrupted publish of both bundles serves."""
    code, _, err = run(*publish_args(dest, keys, *both(signed)))
    assert code == 0, err
    return served(dest)


@pytest.fixture(scope="module")
def reference(big: Signed, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return clean_publish(big, keys, tmp_path_factory.mktemp("reference") / "repo")


@pytest.mark.parametrize(
    ("start_with", "renames"),
    [
        # 4 wheels and their metadata, the state, 3 projects' and the root's two pages each,
        # the two provenance files
        ((), 4 * 2 + 1 + 3 * 2 + 2 + 2),
        # the one new wheel (cfast for cp311) and its metadata, the state, cfast's two
        # pages, the provenance; the other files and pages are already there, unchanged
        (("linux-cp39",), 2 + 1 + 2 + 2),
    ],
)
def test_publish_killed_before_every_rename_then_completes(
    world: Signed, keys: Keys, tmp_path: Path, start_with: tuple[str, ...], renames: int
) -> None:
    """SIGKILL just before the n-th atomic rename (files placed, state, pages, provenance),
    for every n, each time from the same tree: what is left is a consistent tree, and the
    next run finishes the job."""
    reference = clean_publish(world, keys, tmp_path / "reference")
    start = tmp_path / "start"
    start.mkdir()
    if start_with:
        assert run(*publish_args(start, keys, *(world.bundles[t] for t in start_with)))[0] == 0
    killed = 0
    for count in range(1, 40):
        dest = tmp_path / f"repo-{count}"
        shutil.copytree(start, dest)
        proc = subprocess.run(
            [sys.executable, "-c", KILL_AT, str(count), "replace",
             *publish_args(dest, keys, *both(world))],
            capture_output=True, text=True, check=False, timeout=120,
        )
        check_tree(dest)
        if proc.returncode == 0:
            break  # fewer renames than count: this run did everything
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        killed += 1
        code, _, err = run(*publish_args(dest, keys, *both(world)))
        assert code == 0, err
        assert served(dest) == reference, count
        assert not (dest / ".lockship" / "tmp").exists()
        assert not list(dest.rglob(".*.tmp"))
        shutil.rmtree(dest)
    assert killed == renames


def test_publish_killed_at_random_moments_then_completes(
    big: Signed, keys: Keys, tmp_path: Path, reference: dict[str, str]
) -> None:
    dest = tmp_path / "repo"
    rng = random.Random(12)
    outcomes = []
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockship", *publish_args(dest, keys, *both(big))],
            stderr=subprocess.DEVNULL,
        )
        outcomes.append(wait_killed(proc, rng.uniform(0.3, 2.0)))
        check_tree(dest)
    assert -signal.SIGKILL in outcomes, outcomes
    code, _, err = run(*publish_args(dest, keys, *both(big)))
    assert code == 0, err
    assert served(dest) == reference


def test_concurrent_publishes_are_serialised(
    big: Signed, keys: Keys, tmp_path: Path, reference: dict[str, str]
) -> None:
    dest = tmp_path / "repo"
    procs = [
        subprocess.Popen([sys.executable, "-m", "lockship", *publish_args(dest, keys, bundle)],
                         stderr=subprocess.PIPE, text=True)
        for bundle in both(big)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert served(dest) == reference
    state = json.loads((dest / ".lockship" / "state.json").read_text())
    assert sorted(b["target"] for b in state["bundles"]) == sorted(TARGETS)


def test_concurrent_conflicting_publishes_one_wins(
    world: Signed, keys: Keys, tmp_path: Path
) -> None:
    dest = tmp_path / "repo"
    bundles = [world.bundles["linux-cp39"], other_alpha(tmp_path, keys)]
    procs = [
        subprocess.Popen([sys.executable, "-m", "lockship", *publish_args(dest, keys, bundle)],
                         stderr=subprocess.PIPE, text=True)
        for bundle in bundles
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 6], results
    loser = next(err for code, err in results if code == 6)
    assert loser.startswith("lockship: error: files/alpha/alpha-1.0-py3-none-any.whl: already published as ")
    check_tree(dest)


def test_usage_errors(keys: Keys, tmp_path: Path) -> None:
    assert run("publish", str(tmp_path))[:3:2] == (
        3, "lockship: error: nothing to do: give --to DIR, --upload URL, or both\n"
    )
    code, _, err = run("publish", str(tmp_path / "missing"), "--to", str(tmp_path / "repo"))
    assert (code, err) == (
        3, ("lockship: error: lockship publish: publishing a bundle needs --allowed-signers (and "
        "--identity, unless the file lists one principal)\n")
    )
    code, _, err = run("publish", str(tmp_path), "--upload", "http://127.0.0.1:9/")
    assert (code, err) == (3, (
        "lockship: error: lockship publish: --upload needs --index-url: the index's simple API, "
        "to check which files it already holds\n"
    ))
    code, _, err = publish(tmp_path / "repo", keys, tmp_path / "missing")
    assert (code, err) == (3, f"lockship: error: {tmp_path / 'missing'}: no such bundle directory or archive\n")

