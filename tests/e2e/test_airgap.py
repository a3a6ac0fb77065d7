"""Across the air gap, for real: lock, fetch and sign on this host, install on an offline machine.

For each target machine (Debian chroots from tests/e2e/airgap, a copy of
../shared/airgap): this host locks a realistic requirement set for the
machine's probe file, fetches it with lockship itself (--include-self), and
signs it. The archive then goes into the machine with no network, where:

1. ``sha256sum -c SHA256SUMS`` checks it with stock tools;
2. the bundle's stdlib-only ``install.py --verify-only`` checks the signature;
3. lockship is installed from the bundle itself, with --require-hashes;
4. that lockship verifies the bundle again, and refuses a tampered copy;
5. ``lockship install`` installs everything with --require-hashes, and it imports;
6. ``install.py --installer uv`` installs it again with the bundle's own uv.

The set exercises what breaks naive tools: markers on python_version and
platform_machine (top-level and transitive), a newest release that needs a
newer Python than the target, an sdist-only pure-Python package, and large
binary wheels. Needs root, the network (PyPI, Debian mirror) and a few
minutes; marked ``e2e`` (arm64 under qemu: ``slow_e2e``, opt-in).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HARNESS = HERE / "airgap"
TARGETS = HERE.parent / "data" / "targets"
EXCLUDE_NEWER = "2026-11-01T00:00:00Z"

REQUIREMENTS = """\
numpy                                      # large binary wheels; newest needs Python >= 3.11
pandas                                     # large binary wheels, per architecture
sqlalchemy<2.1                             # greenlet only where platform_machine is x86_64/aarch64/...
exceptiongroup; python_version < "3.11"    # only on the 3.9 machine
tomli; python_version < "3.11"
py-cpuinfo; platform_machine == "x86_64"   # only on the amd64 machines
docopt                                     # sdist only: built into a pure wheel
requests
uv                                         # the installer install.py --installer uv runs
"""

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline machines need root (chroot, unshare)"),
]


def lockship(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockship", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch):
    # Big wheels: keep them between e2e tests (the cache is content-addressed and verified).
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", "/tmp/lockship-e2e-cache")


def ensure_machine(name: str) -> None:
    proc = subprocess.run([str(HARNESS / "make-targets.sh"), name], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"building the {name} chroot failed:\n{proc.stderr[-3000:]}"


def pins(lock: Path) -> dict[str, str]:
    return {
        line.split("==")[0]: line.split("==")[1].split()[0]
        for line in lock.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }


OFFLINE_SCRIPT = r"""
set -e
bundle=$1; signers=/bundle/allowed_signers
python3 - <<'PY'
import socket
s = socket.socket(); s.settimeout(3)
try:
    s.connect(("1.1.1.1", 443))
except OSError as exc:
    print("STEP no-network", type(exc).__name__)
else:
    raise SystemExit("the machine is online")
PY
cd /tmp && tar -xf /bundle/$bundle.tar && cd $bundle
sha256sum -c --quiet SHA256SUMS && echo "STEP sha256sum"
python3 install.py --allowed-signers $signers --identity e2e --verify-only && echo "STEP install.py-verify"
python3 -m venv /tmp/lockship-venv
/tmp/lockship-venv/bin/python -m pip install -q --disable-pip-version-check --no-index \
    --find-links wheels --require-hashes -r lockship-requirements.txt
echo "STEP lockship $(/tmp/lockship-venv/bin/lockship --version)"
/tmp/lockship-venv/bin/lockship verify . --allowed-signers $signers --identity e2e && echo "STEP lockship-verify"
cp -r /tmp/$bundle /tmp/tampered
victim=$(ls /tmp/tampered/wheels/numpy-*.whl)
printf 'X' | dd of="$victim" bs=1 seek=1000 conv=notrunc 2>/dev/null
set +e
/tmp/lockship-venv/bin/lockship verify /tmp/tampered --allowed-signers $signers --identity e2e
echo "STEP tampered-exit $?"
set -e
/tmp/lockship-venv/bin/lockship install . --venv /tmp/app --allowed-signers $signers --identity e2e
python3 install.py --allowed-signers $signers --identity e2e --venv /tmp/app-uv --installer uv
/tmp/app-uv/bin/python -c 'import numpy, pandas, sqlalchemy, docopt, requests'
echo "STEP uv-install $(cat /tmp/app-uv/lib/python3*/site-packages/numpy-*.dist-info/INSTALLER)"
/tmp/app/bin/python - <<'PY'
import sys, importlib
mods = ["numpy", "pandas", "sqlalchemy", "docopt", "requests"]
if sys.version_info < (3, 11):
    mods += ["exceptiongroup", "tomli"]
import platform
if platform.machine() == "x86_64":
    mods += ["cpuinfo"]
if platform.machine() in ("x86_64", "aarch64"):
    mods += ["greenlet"]
for m in mods:
    importlib.import_module(m)
import numpy, pandas
print("STEP imports", platform.python_version(), platform.machine(), "numpy", numpy.__version__, "pandas", pandas.__version__, len(mods))
PY
"""


@pytest.mark.parametrize(
    "machine",
    [
        "bullseye-amd64",
        "trixie-amd64",
        pytest.param("bookworm-arm64", marks=pytest.mark.slow_e2e),
    ],
)
def test_locked_fetched_signed_bundle_installs_offline(machine, tmp_path):
    ensure_machine(machine)
    probe = TARGETS / f"{machine}.json"
    env = json.loads(probe.read_text())["marker_environment"]
    (tmp_path / "requirements.in").write_text(REQUIREMENTS)
    base = ["--target", str(probe), "--no-pip-config", "--index-url", "https://pypi.org/simple/"]
    proc = lockship("lock", *base, "--exclude-newer", EXCLUDE_NEWER, "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    locked = pins(tmp_path / "locks" / f"{machine}.txt")
    # What naive tools get wrong, decided for the target, on this 3.11 x86_64 host:
    assert ("exceptiongroup" in locked) == (env["python_version"] == "3.9")
    assert ("py-cpuinfo" in locked) == (env["platform_machine"] == "x86_64")
    assert "greenlet" in locked  # x86_64 and aarch64 both need it
    if env["python_version"] == "3.9":
        assert locked["numpy"].startswith("2.0.")  # numpy 2.1+ needs Python >= 3.10
    proc = lockship("fetch", *base[:2], "--include-self", "--no-pip-config", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", str(key)], check=True)
    proc = lockship("sign", f"dist/{machine}", "--key", str(key), "--identity", "e2e", "--archive", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The reviewer's allowed_signers travels separately; here it rides along for the test.
    carry = tmp_path / "carry"
    carry.mkdir()
    shutil.copy(tmp_path / "dist" / f"{machine}.tar", carry)
    (carry / "allowed_signers").write_text(f'e2e namespaces="lockship" {key.with_suffix(".pub").read_text()}')
    proc = subprocess.run(
        [str(HARNESS / "run-offline.sh"), machine, str(carry), "--", "sh", "-c", OFFLINE_SCRIPT, "sh", machine],
        capture_output=True, text=True, check=False,
    )
    steps = [line for line in proc.stdout.splitlines() if line.startswith("STEP ")]
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert [s.split()[1] for s in steps] == [
        "no-network", "sha256sum", "install.py-verify", "lockship", "lockship-verify",
        "tampered-exit", "uv-install", "imports",
    ], steps
    assert "STEP uv-install uv" in steps
    assert "STEP tampered-exit 6" in steps
    assert f"{env['python_full_version']} {env['platform_machine']} numpy {locked['numpy']}" in steps[-1]


# --- issue 9: the documented offline order, and the trust kit, on the real machines ----------

TRUST_SCRIPT = r"""
set -e
bundle=$1
mkdir /tmp/in && cd /tmp/in && tar -xf /bundle/$bundle.tar && tar -xf /bundle/tampered.tar -C /tmp && cd /
export BUNDLE=/tmp/in/$bundle KIT=/bundle/kit VENV=/tmp/venv
sh -c 'cd "$KIT" && sha256sum -c --quiet install.py.sha256' && echo "STEP kit-sha256"
set +e
python3 -I "$KIT/install.py" --bundle /tmp/tampered --allowed-signers "$KIT/allowed_signers" --verify-only
echo "STEP tampered-exit $?"
set -e
for block in /bundle/blocks/*.sh; do bash -e "$block"; echo "STEP $(basename "$block" .sh)"; done
"$VENV/bin/python" -I -c 'import alpha, beta; print("STEP imports", alpha.__version__, beta.__version__)'
test ! -e /tmp/witness && echo "STEP nothing-planted-ran"
"""


def _carry(tmp_path: Path, target: str, real_wheels: tuple[Path, ...] = ()) -> tuple[Path, str]:
    """A signed bundle archive, the trust kit, a tampered copy and INSTALL.md's blocks
    (signature by the kit's verifier, file list, install), ready for /bundle."""
    sys.path.insert(0, str(HERE.parent))
    from bundles import flip_byte, make_bundle, make_keys, only_wheel  # noqa: PLC0415
    from cli_runner import run  # noqa: PLC0415
    from lockship._install_script import render_sums  # noqa: PLC0415

    bundle = make_bundle(tmp_path, target=target, real_wheels=real_wheels)
    keys = make_keys(tmp_path)
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "-q", "--archive")
    assert code == 0, err
    carry = tmp_path / "carry"
    (carry / "blocks").mkdir(parents=True)
    assert run("trust-kit", str(carry / "kit"), "--allowed-signers", str(keys.allowed))[0] == 0
    shutil.copy(bundle.with_suffix(".tar"), carry)
    # The attacker's copy: a wheel swapped, SHA256SUMS rewritten, install.py that says yes,
    # a planted pip/ for anyone who runs Python inside it.
    flip_byte(only_wheel(bundle, "alpha"))
    (bundle / "install.py").write_text("print('verified, signed by release')\n")
    names = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    (bundle / "SHA256SUMS").write_text(render_sums({n: hashlib.sha256((bundle / n).read_bytes()).hexdigest() for n in names}))
    (bundle / "pip").mkdir()
    (bundle / "pip" / "__main__.py").write_text("open('/tmp/witness', 'w')\n")
    subprocess.run(["tar", "-cf", str(carry / "tampered.tar"), "-C", str(bundle.parent), "--transform", f"s,^{bundle.name},tampered,", bundle.name], check=True)
    blocks = re.findall(r"```sh\n(.*?)```", (bundle / "INSTALL.md").read_text(), re.DOTALL)
    _, _, kit_check, files, install, _ = blocks
    for name, text in (("1-signature", kit_check), ("2-files", files), ("3-install", install)):
        (carry / "blocks" / f"{name}.sh").write_text(text)
    return carry, bundle.name


@pytest.mark.parametrize("machine", ["bullseye-amd64", "trixie-amd64"])
def test_documented_offline_order_and_trust_kit(machine, tmp_path):
    ensure_machine(machine)
    carry, name = _carry(tmp_path, str(TARGETS / f"{machine}.json"))
    proc = subprocess.run(
        [str(HARNESS / "run-offline.sh"), machine, str(carry), "--", "sh", "-c", TRUST_SCRIPT, "sh", name],
        capture_output=True, text=True, check=False,
    )
    steps = [line for line in proc.stdout.splitlines() if line.startswith("STEP ")]
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert steps == [
        "STEP kit-sha256", "STEP tampered-exit 7", "STEP 1-signature", "STEP 2-files",
        "STEP 3-install", "STEP imports 1.0 2.0", "STEP nothing-planted-ran",
    ], steps


PIP_WHEEL = sorted(Path(sys.base_prefix).glob("lib/python3*/ensurepip/_bundled/pip-*.whl"))


@pytest.mark.skipif(not PIP_WHEEL, reason="needs a pip wheel to carry (ensurepip's)")
def test_python3_only_machine_installs_with_the_bundles_pip(tmp_path):
    # Debian bookworm minbase with python3 alone: no python3-pip, no ensurepip.
    ensure_machine("bookworm-python3-only")
    carry, name = _carry(tmp_path, "linux-cp311", real_wheels=(PIP_WHEEL[-1],))
    script = (
        "set -e; python3 -c 'import ensurepip' 2>/dev/null && exit 99; echo 'STEP no-ensurepip'; "
        f"mkdir /tmp/in && cd /tmp/in && tar -xf /bundle/{name}.tar && cd /; "
        f"python3 -I /bundle/kit/install.py --bundle /tmp/in/{name} "
        "--allowed-signers /bundle/kit/allowed_signers --venv /tmp/venv; "
        "/tmp/venv/bin/python -I -c 'import alpha, beta, pip; print(\"STEP imports\", pip.__version__)'"
    )
    proc = subprocess.run(
        [str(HARNESS / "run-offline.sh"), "bookworm-python3-only", str(carry), "--", "sh", "-c", script],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "created virtual environment /tmp/venv" in proc.stdout
    assert "STEP no-ensurepip" in proc.stdout
    assert f"STEP imports {PIP_WHEEL[-1].name.split('-')[1]}" in proc.stdout
