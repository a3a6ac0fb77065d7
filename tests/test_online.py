"""lockship against independent resolvers, on the real PyPI (``pytest -m online``).

Oracles:

- ``pip-compile`` (pip-tools, i.e. pip's own resolver and finder) for
  ``--target host``: it can only answer for the interpreter it runs on, which
  is exactly what ``host`` means.
- ``uv pip compile --python-platform ... --python-version ...`` for foreign
  targets (a Python version and machine this host is not).

What is compared: the set of ``name==version`` pins (names normalized, PEP 503),
and that every hash lockship wrote is one of the oracle's hashes for that pin
(lockship writes the one file chosen for the target, the oracles every file of
the version). Each chosen wheel is also checked, independently of lockship's
own tag code, to be installable on the target.

Every place where lockship and an oracle legitimately differ is normalized
explicitly below, with the reason lockship's answer is the right one.

Stability: the uv comparisons use the same ``--exclude-newer`` on both sides;
the pip-compile comparisons run back to back against the live index (pip-compile
has no equivalent option), so an upload between the two runs could in principle
make them differ: the failure message prints the differing pins.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from lockship._compat import tomllib
from lockship.lockfile import read_lock

pytestmark = pytest.mark.online

BIN = Path(sys.executable).parent
EXCLUDE_NEWER = "2026-11-01T00:00:00Z"
TIMEOUT = 600  # seconds for one tool run: pip-compile on LARGE takes ~30 s, but over 180 s when the proxy is slow and the 2 cores are busy (seen in CI)

# --- requirement sets ---------------------------------------------------------------

SMALL = ["requests", "attrs", "click", "pip-tools"]  # pip-tools pulls pip and setuptools in
MEDIUM = ["flask", "sqlalchemy", "pandas", "httpx[http2]", "black"]
LARGE = ["jupyterlab", "prefect"]  # ~168 pins
# Results depend on markers and Requires-Python: exceptiongroup/tomli only below 3.11,
# ipython 9 needs 3.11+ (3.9 gets 8.18), numpy/pandas have per-arch (and, on 3.9 with
# glibc 2.17, no) wheels, cryptography excludes 3.9.0 and 3.9.1 by Requires-Python.
MARKERS = [
    'exceptiongroup; python_version < "3.11"',
    'tomli; python_version < "3.11"',
    'colorama; sys_platform == "win32"',
    'uvloop; sys_platform != "win32" and platform_machine == "x86_64"',
    "anyio",
    "pytest",
    "numpy",
    "pandas",
    "ipython",
    "cryptography",
]
# For --only-binary :all:: whether a version is usable depends only on its wheel tags.
WHEELS = ["numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "pillow", "lxml", "orjson"]

SETS = {"small": SMALL, "medium": MEDIUM, "large": LARGE, "markers": MARKERS, "wheels": WHEELS}

# --- helpers ------------------------------------------------------------------------


@dataclass
class Lockfile:
    """Pins and hashes read from a pip-tools format file (lockship's, pip-compile's, uv's)."""

    pins: dict[str, str] = field(default_factory=dict)  # normalized name -> version
    hashes: dict[str, set[str]] = field(default_factory=dict)
    unsafe: set[str] = field(default_factory=set)  # pip-compile: listed but not pinned

    def lines(self) -> set[str]:
        return {f"{name}=={version}" for name, version in self.pins.items()}


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def read_lockfile(path: Path) -> Lockfile:
    lock = Lockfile()
    current = None
    in_unsafe = False
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in lock.pins, f"{path.name}: {current} pinned twice"
            lock.pins[current] = match.group(2)
            lock.hashes[current] = set()
        for digest in _HASH.findall(line):
            assert current is not None, f"{path.name}: hash before any pin"
            lock.hashes[current].add(digest)
        # pip-compile without --allow-unsafe: "# WARNING: The following packages were not
        # pinned ..." (or "... considered to be unsafe ...") followed by "# pip" lines.
        if line.startswith("# ") and ("unsafe" in line or "were not pinned" in line):
            in_unsafe = True
        elif in_unsafe and re.fullmatch(r"# [A-Za-z0-9][A-Za-z0-9._-]*", line):
            lock.unsafe.add(canonicalize_name(line[2:]))
    return lock


def symmetric_difference(ours: Lockfile, oracle: Lockfile, oracle_name: str) -> str:
    only_ours = sorted(ours.lines() - oracle.lines())
    only_oracle = sorted(oracle.lines() - ours.lines())
    return (
        f"\n  only in lockship ({len(only_ours)}): {' '.join(only_ours) or '-'}"
        f"\n  only in {oracle_name} ({len(only_oracle)}): {' '.join(only_oracle) or '-'}"
    )


def assert_same_pins_and_hashes(ours: Lockfile, oracle: Lockfile, oracle_name: str) -> None:
    assert ours.lines() == oracle.lines(), (
        f"pins differ from {oracle_name}:" + symmetric_difference(ours, oracle, oracle_name)
    )
    for name, version in sorted(ours.pins.items()):
        # Exactly one file per pin: the one chosen for the target ...
        assert len(ours.hashes[name]) == 1, f"{name}=={version}: {len(ours.hashes[name])} hashes"
        # ... and it is one of the files the oracle found for that very version.
        assert ours.hashes[name] <= oracle.hashes[name], (
            f"{name}=={version}: lockship's hash {sorted(ours.hashes[name])} is not among "
            f"{oracle_name}'s {len(oracle.hashes[name])} hashes for that version"
        )


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run one tool; fail with its output if it fails. Returns the wall time."""
    start = time.monotonic()
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return elapsed


@dataclass
class Tools:
    root: Path
    env: dict[str, str]
    lockship_cache: Path
    uv_cache: Path

    def project(self, name: str, requirements: list[str]) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "requirements.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        return path

    def lockship(self, project: Path, target: str, *args: str) -> Lockfile:
        out = project / f"lockship-{target}-{'-'.join(a.strip(':.') for a in args) or 'default'}"
        run(
            [sys.executable, "-m", "lockship", "lock", "-q", "--no-pip-config",
             "--cache-dir", str(self.lockship_cache), "-r", "requirements.in",
             "--target", target, "-o", str(out), *args],
            project, self.env,
        )
        self.last_pylock = out / f"pylock.{re.sub(r'[^A-Za-z0-9_-]', '_', target)}.toml"
        return read_lockfile(out / f"{target}.txt")

    def pip_compile(self, project: Path, *args: str) -> Lockfile:
        out = project / "pip-compile.txt"
        out.unlink(missing_ok=True)  # an existing output would act as preferences
        run(
            [str(BIN / "pip-compile"), "-q", "--generate-hashes", "--strip-extras",
             "--cache-dir", str(self.root / "pip-tools-cache"), "--no-header",
             "-o", str(out), *args, "requirements.in"],
            project, self.env,
        )
        return read_lockfile(out)

    def uv(self, project: Path, platform: str, python: str, *args: str) -> Lockfile:
        out = project / f"uv-{platform}-{python}-{'-'.join(a.strip(':.') for a in args) or 'default'}.txt"
        run(
            [str(BIN / "uv"), "pip", "compile", "-q", "--no-config", "--generate-hashes",
             "--cache-dir", str(self.uv_cache), "--python-platform", platform,
             "--python-version", python, "--exclude-newer", EXCLUDE_NEWER,
             "-o", str(out), *args, "requirements.in"],
            project, self.env,
        )
        return read_lockfile(out)

    last_pylock: Path = Path()


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    # Pin the configuration on every side: no pip config, find-links or extra indexes of
    # this machine, no uv config, no Python downloads; fresh caches for this module.
    # (The autouse fixture in conftest.py does the same per test; this one is for the
    # module-scoped caches, shared by the tests so each project is fetched once.)
    root = tmp_path_factory.mktemp("online")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
        "LOCKSHIP_CACHE_DIR": str(root / "lockship-cache"),
        "PIP_CACHE_DIR": str(root / "pip-cache"),  # pip-compile's HTTP cache
    }
    for tool in ("pip-compile", "uv"):
        assert (BIN / tool).exists(), f"{tool} is not installed next to {sys.executable}"
    return Tools(root, env, root / "lockship-cache", root / "uv-cache")


# --- independent wheel-tag check ----------------------------------------------------------


@dataclass(frozen=True)
class TargetFacts:
    """What a short-name target is, spelled out here without lockship's tag code."""

    minor: int  # CPython 3.minor
    platform: str  # "manylinux", "macos", "windows"
    arch: str  # as in wheel platform tags
    glibc: int = 17  # 2.N floor for manylinux


def wheel_fits(filename: str, facts: TargetFacts) -> bool:
    """Whether a wheel installs on the target: an interpreter/ABI/platform rule per tag."""
    _, _, _, tags = parse_wheel_filename(filename)
    for tag in tags:
        interp, abi, plat = tag.interpreter, tag.abi, tag.platform
        if interp.startswith("cp3"):
            version = int(interp[3:])  # cp3X
            python_ok = (
                version == facts.minor and abi in (f"cp3{facts.minor}", "abi3", "none")
            ) or (version < facts.minor and abi == "abi3")
        elif interp.startswith("py3"):
            python_ok = abi == "none" and (interp == "py3" or int(interp[3:]) <= facts.minor)
        else:
            python_ok = False
        if plat == "any":
            platform_ok = True
        elif facts.platform == "manylinux":
            legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
            match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", plat)
            head, _, arch = plat.partition("_")
            if match:
                platform_ok = match.group(2) == facts.arch and int(match.group(1)) <= facts.glibc
            else:
                platform_ok = head in legacy and arch == facts.arch and legacy[head] <= facts.glibc
        elif facts.platform == "windows":
            platform_ok = plat == f"win_{facts.arch}"
        else:  # macos 13.0 floor
            match = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", plat)
            platform_ok = bool(match) and int(match.group(1)) <= 13 and (
                match.group(3) in (facts.arch, "universal2")
            )
        if python_ok and platform_ok:
            return True
    return False


def check_files(pylock: Path, fits: Callable[[str], bool]) -> list[str]:
    """Names of the sdists in the lock; fails for a wheel the target cannot install."""
    data = tomllib.loads(pylock.read_text(encoding="utf-8"))
    sdists = []
    for package in data["packages"]:
        wheels = package.get("wheels") or []
        assert len(wheels) + ("sdist" in package) == 1, f"{package['name']}: not one file"
        if wheels:
            name = wheels[0]["name"]
            assert fits(name), f"{name} does not install on the target"
        else:
            sdists.append(canonicalize_name(package["name"]))
    return sdists


# --- host target vs pip-compile -------------------------------------------------------------

HOST_TAGS = set(sys_tags())


def host_fits(filename: str) -> bool:
    return bool(set(parse_wheel_filename(filename)[3]) & HOST_TAGS)


@pytest.mark.parametrize("set_name", ["small", "medium", "large"])
def test_host_lock_matches_pip_compile(tools, set_name):
    project = tools.project(f"host-{set_name}", SETS[set_name])
    # Back to back, so both see the same index state.
    ours = tools.lockship(project, "host")
    pylock = tools.last_pylock
    if set_name == "small":
        oracle = tools.pip_compile(project)
        # pip-compile leaves pip and setuptools out unless --allow-unsafe (a legacy of
        # pip-sync, which must not upgrade the tools it runs with), listing them only as
        # "# pip" comments. lockship pins them: a lock is read by `pip install
        # --require-hashes`, which refuses any requirement that is not pinned with a hash,
        # so an unpinned setuptools would make the lock uninstallable. Normalize by
        # checking that the packages pip-compile withheld are exactly lockship's extra
        # pins, then compare the rest.
        assert oracle.unsafe == {"pip", "setuptools"}, oracle.unsafe
        assert oracle.unsafe <= set(ours.pins), "lockship must pin pip and setuptools"
        assert not oracle.unsafe & set(oracle.pins)
        for name in oracle.unsafe:
            del ours.pins[name], ours.hashes[name]
    else:
        oracle = tools.pip_compile(project, "--allow-unsafe")  # then nothing is withheld
        assert not oracle.unsafe
    assert_same_pins_and_hashes(ours, oracle, "pip-compile")
    assert check_files(pylock, host_fits) == []  # wheels for this interpreter everywhere
    if set_name == "large":
        assert len(ours.pins) >= 100


# --- foreign targets vs uv --------------------------------------------------------------------

# lockship short name -> (uv --python-version, facts for the independent tag check)
FOREIGN = {
    "linux-cp39": ("3.9", TargetFacts(9, "manylinux", "x86_64")),
    "linux_aarch64-cp311": ("3.11", TargetFacts(11, "manylinux", "aarch64")),
}
# The glibc floor. uv 0.13's `x86_64-unknown-linux-gnu` and `aarch64-unknown-linux-gnu`
# mean manylinux_2_28 (glibc 2.28): with --only-binary :all: they give the same pins as
# `x86_64-manylinux_2_28`, and newer ones than `x86_64-manylinux_2_17` (on linux-cp313:
# torch 2.15 vs 2.6, pyarrow 26 vs 20, numpy 2.5.4 vs 2.2.6). lockship's default floor is
# the same glibc 2.28; `--glibc 2.17` is compared with uv's `*-manylinux_2_17`.
FLOORS = {
    "default": ("{arch}-unknown-linux-gnu", []),  # both default to glibc 2.28
    "2.17": ("{arch}-manylinux_2_17", ["--glibc", "2.17"]),
}

# Legitimate differences, per (set, target): name -> (lockship's pin, uv's pin).
KNOWN = {
    # cryptography 44+ declares Requires-Python ">=3.7 (or 3.8, 3.9),!=3.9.0,!=3.9.1". A
    # short-name target is CPython X.Y.0, so that a lock holds on every patch release of
    # X.Y; on 3.9.0 those releases do not install (pip refuses them by Requires-Python),
    # so 43.0.3 is the newest cryptography valid for linux-cp39. pip agrees: `pip download
    # --python-version 3.9 --platform manylinux2014_x86_64 --only-binary=:all:
    # 'cryptography<=47'` saves 43.0.3. uv compares Requires-Python by its lower bound
    # only, so it drops 48+ (">=3.9,!=3.9.0,!=3.9.1" starts at 3.9.2) but keeps 47.0.0
    # (">=3.8,!=3.9.0,!=3.9.1"), which 3.9.0 cannot install.
    ("markers", "linux-cp39"): {"cryptography": ("43.0.3", "47.0.0")},
}


def normalize_known(ours: Lockfile, oracle: Lockfile, known: dict[str, tuple[str, str]]) -> None:
    for name, (ours_pin, oracle_pin) in known.items():
        assert (ours.pins.get(name), oracle.pins.get(name)) == (ours_pin, oracle_pin), (
            f"the known difference on {name} changed: lockship {ours.pins.get(name)}, "
            f"uv {oracle.pins.get(name)} (expected {ours_pin} vs {oracle_pin})"
        )
        for lock in (ours, oracle):
            del lock.pins[name], lock.hashes[name]


@pytest.mark.parametrize("target", list(FOREIGN))
@pytest.mark.parametrize("set_name", ["medium", "markers"])
def test_foreign_lock_matches_uv(tools, set_name, target):
    # At glibc 2.28 (both tools' default) every pin of these sets has a wheel for the
    # target; the floor itself is checked with --only-binary below.
    python, facts = FOREIGN[target]
    facts = TargetFacts(facts.minor, facts.platform, facts.arch, glibc=28)
    project = tools.project(f"{set_name}-{target}", SETS[set_name])
    uv_platform, floor_args = FLOORS["default"]
    ours = tools.lockship(project, target, "--exclude-newer", EXCLUDE_NEWER, *floor_args)
    assert check_files(tools.last_pylock, lambda f: wheel_fits(f, facts)) == []  # no sdist
    oracle = tools.uv(project, uv_platform.format(arch=facts.arch), python)
    normalize_known(ours, oracle, KNOWN.get((set_name, target), {}))
    assert_same_pins_and_hashes(ours, oracle, "uv")
    if set_name == "markers":
        below_311 = target == "linux-cp39"
        assert ("exceptiongroup" in ours.pins) == below_311
        assert ("tomli" in ours.pins) == below_311
        assert ours.pins["ipython"].split(".")[0] == ("8" if below_311 else "9")  # 9 needs 3.11
        assert ("uvloop" in ours.pins) == (facts.arch == "x86_64")
        assert "colorama" not in ours.pins  # Windows only


@pytest.mark.parametrize(("target", "python"), [("linux-cp39", "3.9.2"), ("linux_aarch64-cp311", "3.11.9")])
def test_python_version_matches_uv_python_version(tools, target, python):
    # The same full version on both sides: Requires-Python is decided for X.Y.Z, so
    # cryptography's "!=3.9.0,!=3.9.1" no longer excludes its newest release on 3.9.2, and
    # the KNOWN difference of the X.Y.0 comparison above disappears.
    _, facts = FOREIGN[target]
    facts = TargetFacts(facts.minor, facts.platform, facts.arch, glibc=28)
    project = tools.project(f"markers-{target}-{python}", MARKERS)
    ours = tools.lockship(project, target, "--exclude-newer", EXCLUDE_NEWER, "--python-version", python)
    assert check_files(tools.last_pylock, lambda f: wheel_fits(f, facts)) == []
    oracle = tools.uv(project, FLOORS["default"][0].format(arch=facts.arch), python)
    assert_same_pins_and_hashes(ours, oracle, f"uv --python-version {python}")
    assert read_lock(tools.last_pylock).target.python_full_version == python
    if target == "linux-cp39":
        assert ours.pins["cryptography"].split(".")[0] != "43"  # the X.Y.0 answer


@pytest.mark.parametrize("target", ["windows-cp312", "macos_arm64-cp312"])
def test_other_platforms_match_uv(tools, target):
    # Not Linux: platform markers (colorama on Windows, uvloop nowhere here) and
    # per-platform wheels (numpy, pandas, cryptography).
    uv_platform, facts = {
        "windows-cp312": ("x86_64-pc-windows-msvc", TargetFacts(12, "windows", "amd64")),
        "macos_arm64-cp312": ("aarch64-apple-darwin", TargetFacts(12, "macos", "arm64")),
    }[target]
    project = tools.project(f"markers-{target}", MARKERS)
    ours = tools.lockship(project, target, "--exclude-newer", EXCLUDE_NEWER)
    assert check_files(tools.last_pylock, lambda f: wheel_fits(f, facts)) == []
    oracle = tools.uv(project, uv_platform, "3.12")
    assert_same_pins_and_hashes(ours, oracle, "uv")
    assert ("colorama" in ours.pins) == (target == "windows-cp312")
    assert "uvloop" not in ours.pins


@pytest.mark.parametrize("target", [*FOREIGN, "linux-cp311"])
def test_only_binary_follows_the_glibc_floor_like_uv(tools, target):
    # With sdists excluded, which release is chosen depends only on the wheel tags, so
    # this pins the floor down: at glibc 2.17 numpy/pandas/pyarrow/scipy stop at their
    # last releases with manylinux2014 wheels; at 2.28 they are newer.
    python, facts = FOREIGN.get(target, ("3.11", TargetFacts(11, "manylinux", "x86_64")))
    project = tools.project(f"wheels-{target}", WHEELS)
    answers = {}
    for floor, (uv_platform, floor_args) in FLOORS.items():
        glibc = 17 if floor == "2.17" else 28
        facts = TargetFacts(facts.minor, facts.platform, facts.arch, glibc=glibc)
        args = ["--exclude-newer", EXCLUDE_NEWER, "--only-binary", ":all:", *floor_args]
        ours = tools.lockship(project, target, *args)
        assert check_files(tools.last_pylock, lambda f, facts=facts: wheel_fits(f, facts)) == []
        platform = uv_platform.format(arch=facts.arch)
        oracle = tools.uv(project, platform, python, "--only-binary", ":all:")
        assert_same_pins_and_hashes(ours, oracle, f"uv --python-platform {platform}")
        answers[floor] = ours.lines()
    assert answers["default"] != answers["2.17"], "the glibc floor changed nothing"


def test_requires_python_exclusion_is_what_pip_says():
    # The reasoning behind KNOWN, checked with packaging (pip's own specifier code).
    assert not SpecifierSet("!=3.9.0,!=3.9.1,>=3.8").contains("3.9.0")
    assert SpecifierSet(">=3.7").contains("3.9.0")
