"""``lockship install`` and the bundle's own ``install.py`` (stdlib only, Python 3.8+), with real pip."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bundles import SSH_KEYGEN, Keys, flip_byte, make_bundle, only_wheel, run, sign

pytestmark = [
    pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="needs ssh-keygen"),
    pytest.mark.slow,  # venvs and pip
]

PY38 = "/root/.pyenv/versions/3.8.18/bin/python3"
needs_py38 = pytest.mark.skipif(not Path(PY38).exists(), reason="needs a Python 3.8")
TARGETS = Path(__file__).parent / "data" / "targets"


def install(bundle: Path, keys: Keys, *args: str) -> tuple[int, str, str]:
    return run(
        "install",
        str(bundle),
        "--allowed-signers",
        str(keys.allowed),
        "--identity",
        "release",
        *args,
    )


def install_py(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundle's install.py, run by Python 3.8 with nothing but the standard library."""
    return subprocess.run(
        [PY38, "-I", str(bundle / "install.py"), *args], capture_output=True, text=True, check=False
    )


def imports(venv: Path) -> str:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import alpha, beta; print(alpha.__version__, beta.__version__)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_install_into_a_fresh_venv(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    code, _, err = install(bundle, keys, "--venv", str(venv))
    assert code == 0, err
    assert "Successfully installed alpha-1.0 beta-2.0" in err
    assert err.endswith(f"installed 2 packages into {venv / 'bin' / 'python'}\n")
    assert imports(venv) == "1.0 2.0\n"


@pytest.mark.skipif(sys.version_info[:2] == (3, 9), reason="the bundles below are for 3.9")
@pytest.mark.parametrize(
    ("target", "name"),
    [("linux-cp39", "linux-cp39"), (str(TARGETS / "bullseye-amd64.json"), "bullseye-amd64")],
)
def test_refuses_a_bundle_for_another_python(
    tmp_path: Path, keys: Keys, target: str, name: str
) -> None:
    bundle = make_bundle(tmp_path, target=target)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    code, _, err = install(bundle, keys, "--venv", str(venv))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert code == 12
    assert err == (
        f"lockship: error: {bundle}: {sys.executable} has python_version '{version}', "
        f"but the bundle is for target {name} with python_version '3.9'\n"
    )
    assert not venv.exists()


def test_refuses_a_wheel_no_tag_of_which_fits(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path, tags={"alpha": "py3-none-win_amd64"})
    sign(bundle, keys)
    code, _, err = install(bundle, keys, "--python", sys.executable)
    assert code == 12
    assert re.fullmatch(
        rf"lockship: error: {bundle}: wheels/alpha-1.0-py3-none-win_amd64.whl: no tag of this "
        rf"wheel fits {re.escape(sys.executable)}, whose best tags are cp3\d+-cp3\d+-\S+, .+\n",
        err,
    ), err


def test_refuses_a_tampered_bundle_before_running_pip(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    flip_byte(only_wheel(bundle, "beta"))
    venv = tmp_path / "venv"
    code, _, err = install(bundle, keys, "--venv", str(venv))
    assert code == 6
    assert err.startswith(
        f"lockship: error: {bundle}: 1 problem found\n  wheels/beta-2.0-py3-none-any.whl: sha256 "
    )
    assert not venv.exists()


def test_pip_failure_is_reported_with_its_last_lines(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    # The real interpreter, except that `-m pip install` fails the way a full disk would.
    python = tmp_path / "python"
    python.write_text(
        '#!/bin/sh\nif [ "$3" = install ]; then echo "ERROR: [Errno 28] No space left"; exit 1; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    code, _, err = install(bundle, keys, "--python", str(python))
    assert code == 12
    assert err.endswith(
        f"lockship: error: {python}: pip install failed (exit status 1):\n"
        "  ERROR: [Errno 28] No space left\n"
        "  hint: pip's output above says why; a fresh --venv DIR avoids conflicts\n"
    )


def test_needs_a_destination(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    code, _, err = install(bundle, keys)
    assert code == 3
    assert err == (
        f"lockship: error: {bundle}: say where to install\n  hint: pass --venv DIR or --python PATH\n"
    )
    sign(bundle, keys)
    code, _, err = install(bundle, keys, "--venv", str(tmp_path))
    assert code == 3
    assert err == f"lockship: error: {tmp_path}: not a virtual environment (no pyvenv.cfg)\n"


def test_a_venv_that_cannot_be_created_is_a_filesystem_error(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    code, _, err = install(bundle, keys, "--venv", "/proc/lockship-venv")
    assert code == 9, err
    assert err == (
        "lockship: error: /proc/lockship-venv: cannot create the virtual environment: "
        "No such file or directory\n"
    )


def test_install_json(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    code, out, err = install(bundle, keys, "--venv", str(venv), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["packages"] == ["alpha==1.0", "beta==2.0"]
    assert (result["created_venv"], result["verified"]["principal"]) == (True, "release")


# --- install.py, on a machine without lockship -----------------------------------------------------


@needs_py38
def test_install_py_verify_only(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    proc = install_py(
        bundle, "--allowed-signers", str(keys.allowed), "--identity", "release", "--verify-only"
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"verified 9 files, signed by release \(key SHA256:\S+\)\n", proc.stdout)

    flip_byte(only_wheel(bundle, "alpha"))
    (bundle / "notes.txt").write_text("hi")
    proc = install_py(bundle, "--allowed-signers", str(keys.allowed), "--verify-only")
    assert proc.returncode == 6
    lines = proc.stderr.splitlines()
    assert lines[0] == "install.py: error: 2 problem(s) found"
    assert lines[1].startswith("  wheels/alpha-1.0-py3-none-any.whl: sha256 ")
    assert lines[2] == "  notes.txt: not listed in SHA256SUMS (extra file)"


@needs_py38
def test_install_py_refuses_a_bad_signature_and_bad_input(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    stranger = tmp_path / "stranger"
    stranger.write_text(f"release {keys.pub(keys.other)}\n")
    proc = install_py(bundle, "--allowed-signers", str(stranger), "--verify-only")
    assert proc.returncode == 7
    assert re.fullmatch(
        r"install.py: error: SHA256SUMS.sig: signature was made by key SHA256:\S+, "
        r"which allowed_signers does not list\n",
        proc.stderr,
    ), proc.stderr

    stranger.write_text("release ssh-ed25519 not-base64\n")
    proc = install_py(bundle, "--allowed-signers", str(stranger), "--verify-only")
    assert (proc.returncode, proc.stderr) == (
        3,
        f"install.py: error: {stranger}:1: invalid base64 key\n",
    )
    proc = install_py(bundle, "--verify-only")
    assert proc.returncode == 2
    assert "the following arguments are required: --allowed-signers" in proc.stderr


@needs_py38
def test_install_py_refuses_an_interpreter_that_does_not_fit(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path, target="linux-cp39")
    sign(bundle, keys)
    proc = install_py(bundle, "--allowed-signers", str(keys.allowed))
    assert proc.returncode == 12
    assert proc.stderr == (
        f"install.py: error: {PY38} has python_version '3.8', "
        "but the bundle is for target linux-cp39 with python_version '3.9'\n"
    )


@needs_py38
def test_install_py_installs_into_a_venv_of_the_host_python(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    proc = install_py(
        bundle, "--allowed-signers", str(keys.allowed), "--identity", "release",
        "--venv", str(venv), "--python", sys.executable,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"created virtual environment {venv}\n" in proc.stdout
    assert proc.stdout.endswith(f"installed 2 packages for host into {venv / 'bin' / 'python'}\n")
    assert imports(venv) == "1.0 2.0\n"
