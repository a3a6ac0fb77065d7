"""``lockship install`` and the bundle's own ``install.py`` (stdlib only, Python 3.8+), with real pip."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bundles import SSH_KEYGEN, Keys, flip_byte, make_bundle, nest, only_wheel, run, sha256_of, sign
from lockship import sshsig
from lockship._install_script import create_venv, render_sums
from pkgbuild import make_wheel

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
        '#!/bin/sh\nif [ "$4" = install ]; then echo "ERROR: [Errno 28] No space left"; exit 1; fi\n'
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


@pytest.mark.slow
def test_relative_bundle_and_venv_paths(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip and venv run from an empty directory: relative paths given on the command line
    (the bundle as ".", the venv as a name) must still mean what they meant where typed."""
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    monkeypatch.chdir(bundle)
    code, out, err = install(Path("."), keys, "--venv", "../venv", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["packages"] == ["alpha==1.0", "beta==2.0"]
    assert (bundle.parent / "venv" / "lockship-installed.json").is_file()
    proc = subprocess.run(
        [sys.executable, "-I", str(bundle / "install.py"), "--allowed-signers", str(keys.allowed),
         "--bundle", ".", "--venv", "../venv2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (bundle.parent / "venv2" / "lockship-installed.json").is_file()


def test_install_json(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    code, out, err = install(bundle, keys, "--venv", str(venv), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["packages"] == ["alpha==1.0", "beta==2.0"]
    assert (result["created_venv"], result["verified"]["principal"]) == (True, "release")
    assert result["installer"] == "pip"


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
        r"which allowed_signers does not list for identity 'release'\n",
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


# --- issue 9: the offline side must not trust the bundle it is checking ---------------------

MARKER = "planted code ran"


def plant(bundle: Path, witness: Path) -> None:
    """Files no SHA256SUMS lists, each of which would write ``witness`` if imported or run."""
    code = f"open({str(witness)!r}, 'w').write({MARKER!r})\n"
    (bundle / "argparse.py").write_text(code)
    (bundle / "json.py").write_text(code)
    for package in ("pip", "venv"):
        (bundle / package).mkdir()
        (bundle / package / "__init__.py").write_text(code)
        (bundle / package / "__main__.py").write_text(code)


def resign(bundle: Path, key: Path) -> None:
    """Re-hash every file SHA256SUMS lists, as they are now, and re-sign: a valid
    signature over whatever the bundle's documents now say (nothing is parsed)."""
    names = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    (bundle / "SHA256SUMS").write_text(render_sums({n: sha256_of(bundle / n) for n in names}))
    signature = sshsig.sign((bundle / "SHA256SUMS").read_bytes(), sshsig.load_signing_key(key))
    (bundle / "SHA256SUMS.sig").write_text(signature)


def set_manifest(bundle: Path, key: Path, **fields: object) -> None:
    """The signing side's new manifest.json fields (series, sequence, expires), re-signed."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.update(fields)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    resign(bundle, key)


@needs_py38
def test_install_py_never_imports_files_planted_beside_it(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    witness = tmp_path / "witness"
    plant(bundle, witness)
    # As a user would run it: not isolated, from inside the bundle.
    proc = subprocess.run(
        [PY38, "install.py", "--allowed-signers", str(keys.allowed), "--verify-only"],
        cwd=bundle, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not witness.exists()
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.splitlines()[1:] == [
        "  argparse.py: not listed in SHA256SUMS (extra file)",
        "  json.py: not listed in SHA256SUMS (extra file)",
        "  pip/__init__.py: not listed in SHA256SUMS (extra file)",
        "  pip/__main__.py: not listed in SHA256SUMS (extra file)",
        "  venv/__init__.py: not listed in SHA256SUMS (extra file)",
        "  venv/__main__.py: not listed in SHA256SUMS (extra file)",
    ]


def doc_blocks(bundle: Path) -> list[str]:
    """The ```sh blocks of the bundle's INSTALL.md, in order."""
    return re.findall(r"```sh\n(.*?)```", (bundle / "INSTALL.md").read_text(), re.DOTALL)


def run_doc(blocks: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    script = "set -e\n" + "\n".join(blocks)
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("signature_check", ["ssh-keygen", "trust kit"])
def test_install_md_order_never_runs_planted_code(
    tmp_path: Path, keys: Keys, signature_check: str
) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    kit = tmp_path / "kit"
    assert run("trust-kit", str(kit), "--allowed-signers", str(keys.allowed))[0] == 0
    variables, ssh_keygen, trust_kit, files, install_block, _ = doc_blocks(bundle)
    assert variables.startswith("BUNDLE=")
    signature = ssh_keygen if signature_check == "ssh-keygen" else trust_kit
    venv = tmp_path / "venv"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "BUNDLE": str(bundle), "KIT": str(kit), "VENV": str(venv),
    }  # fmt: skip
    proc = run_doc([signature, files, install_block], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert imports(venv) == "1.0 2.0\n"

    shutil.rmtree(venv)
    witness = tmp_path / "witness"
    plant(bundle, witness)
    proc = run_doc([signature, files], env, tmp_path)
    # diff shows the extra files; the kit's verifier refuses them (exit 6) itself.
    if signature_check == "ssh-keygen":
        assert proc.returncode == 1
        assert "> argparse.py\n" in proc.stdout, proc.stdout
    else:
        assert proc.returncode == 6
        assert "  argparse.py: not listed in SHA256SUMS (extra file)\n" in proc.stderr
    # Even a user who skips the file check, running from inside the bundle:
    proc = run_doc([install_block], env, bundle)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not witness.exists()
    assert imports(venv) == "1.0 2.0\n"


@needs_py38
def test_trust_kit_verifier_checks_a_bundle_whose_own_install_py_lies(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    kit = tmp_path / "kit"
    code, out, err = run("trust-kit", str(kit), "--allowed-signers", str(keys.allowed))
    assert code == 0, err
    script = (kit / "install.py").read_bytes()
    assert out == f"{hashlib.sha256(script).hexdigest()}  install.py\n"
    assert (kit / "install.py.sha256").read_text() == out
    assert (kit / "allowed_signers").read_bytes() == keys.allowed.read_bytes()
    assert script == (bundle / "install.py").read_bytes()
    assert "--identity release" in (kit / "README.md").read_text()
    kit_check = [PY38, "-I", str(kit / "install.py"), "--bundle", str(bundle),
                 "--allowed-signers", str(kit / "allowed_signers"), "--verify-only"]  # fmt: skip
    proc = subprocess.run(kit_check, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr

    # The attacker swaps a wheel and rewrites SHA256SUMS and the bundle's install.py.
    flip_byte(only_wheel(bundle, "alpha"))
    (bundle / "install.py").write_text("print('verified 9 files, signed by release')\n")
    names = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    (bundle / "SHA256SUMS").write_text(render_sums({n: sha256_of(bundle / n) for n in names}))
    assert install_py(bundle, "--verify-only").returncode == 0  # the bundle vouches for itself
    proc = subprocess.run(kit_check, capture_output=True, text=True, check=False)
    assert proc.returncode == 7
    assert proc.stderr == (
        "install.py: error: SHA256SUMS.sig: signature is not valid for this data "
        "(it was altered, or signed with another namespace or hash)\n"
    ) or proc.stderr.startswith("install.py: error: SHA256SUMS.sig: "), proc.stderr


def pip_conf_target(tmp_path: Path) -> dict[str, str]:
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[install]\ntarget = {tmp_path / 'elsewhere'}\n")
    return {"PIP_CONFIG_FILE": str(conf)}


HOSTILE_ENVS = {
    "PIP_TARGET": lambda tmp: {"PIP_TARGET": str(tmp / "elsewhere")},
    "PIP_CONSTRAINT": lambda tmp: {"PIP_CONSTRAINT": str(tmp / "constraints.txt")},
    "pip.conf target": pip_conf_target,
    "user site": lambda tmp: {"PIP_USER": "1", "PYTHONUSERBASE": str(tmp / "elsewhere")},
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE_ENVS))
def test_pip_runs_only_with_what_lockship_gives_it(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    (tmp_path / "constraints.txt").write_text("alpha==0.5\n")
    for key, value in HOSTILE_ENVS[hostile](tmp_path).items():
        monkeypatch.setenv(key, value)
    venv = tmp_path / "venv"
    code, _, err = install(bundle, keys, "--venv", str(venv))
    assert code == 0, err
    assert imports(venv) == "1.0 2.0\n"
    assert not (tmp_path / "elsewhere").exists()


@needs_py38
def test_install_py_pip_ignores_pip_target(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    env = {**os.environ, "PIP_TARGET": str(tmp_path / "elsewhere")}
    proc = subprocess.run(
        [PY38, "-I", str(bundle / "install.py"), "--allowed-signers", str(keys.allowed),
         "--venv", str(venv), "--python", sys.executable],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert imports(venv) == "1.0 2.0\n"
    assert not (tmp_path / "elsewhere").exists()


def test_says_installed_only_when_the_venv_holds_exactly_the_bundle(
    tmp_path: Path, keys: Keys
) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    assert install(bundle, keys, "--venv", str(venv))[0] == 0
    # A pip that reports success and installs nothing; and a RECORD that no longer holds.
    (next(venv.glob("lib/python*/site-packages/alpha/__init__.py"))).write_text("tampered = 1\n")
    python = tmp_path / "python"
    python.write_text(
        '#!/bin/sh\nif [ "$4" = install ]; then echo "Successfully installed"; exit 0; fi\n'
        f'exec {venv / "bin" / "python"} "$@"\n'
    )
    python.chmod(0o755)
    code, _, err = install(bundle, keys, "--python", str(python))
    assert code == 6
    assert err == (
        "Successfully installed\n"
        f"lockship: error: {python}: pip did not install exactly the bundle:\n"
        "  alpha==1.0: alpha/__init__.py: hash differs from RECORD\n"
        "  hint: nothing but lockship should tell pip what to install; use a fresh --venv\n"
    ), err


@needs_py38
def test_install_py_refuses_expired_and_rolled_back_bundles(tmp_path: Path, keys: Keys) -> None:
    venv = tmp_path / "venv"

    def bundle_with(name: str, **fields: object) -> Path:
        bundle = make_bundle(tmp_path / name)
        sign(bundle, keys)
        set_manifest(bundle, keys.plain, signed_at="2026-01-01T00:00:00Z", **fields)
        return bundle

    def install_into(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return install_py(bundle, "--allowed-signers", str(keys.allowed), "--venv", str(venv),
                          "--python", sys.executable, *args)  # fmt: skip

    expired = bundle_with("expired", series="prod", sequence=9, expires="2020-01-01T00:00:00Z")
    proc = install_into(expired)
    assert (proc.returncode, proc.stderr) == (
        14,
        ("install.py: error: manifest.json: the bundle expired at 2020-01-01T00:00:00Z; "
        "ask for a fresh one\n"),
    )
    newer = bundle_with("newer", series="prod", sequence=5, expires="2999-01-01T00:00:00Z")
    proc = install_into(newer)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((venv / "lockship-installed.json").read_text())
    assert record == {
        "expires": "2999-01-01T00:00:00Z", "manifest_sha256": sha256_of(newer / "manifest.json"),
        "sequence": 5, "series": "prod", "signed_at": "2026-01-01T00:00:00Z", "signer": "release",
    }  # fmt: skip
    older = bundle_with("older", series="prod", sequence=4, expires=None)
    proc = install_into(older)
    assert (proc.returncode, proc.stderr) == (
        14,
        ("install.py: error: manifest.json: sequence 4 of series 'prod' is older than sequence 5, "
        "installed there (signed 2026-01-01T00:00:00Z); --allow-rollback installs it anyway\n"),
    )
    assert json.loads((venv / "lockship-installed.json").read_text()) == record
    other_series = bundle_with("other", series="test", sequence=1, expires=None)
    assert install_into(other_series).returncode == 0
    assert install_into(older, "--allow-rollback").returncode == 0
    assert json.loads((venv / "lockship-installed.json").read_text())["sequence"] == 4


def test_lockship_install_refuses_a_rollback_install_py_recorded(tmp_path: Path, keys: Keys) -> None:
    venv = tmp_path / "venv"
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    assert install(bundle, keys, "--venv", str(venv))[0] == 0
    record = json.loads((venv / "lockship-installed.json").read_text())
    assert (record["series"], record["sequence"], record["signer"]) == ("host", 1, "release")
    # Later, a bundle of sequence 3 was installed there (by install.py, say).
    (venv / "lockship-installed.json").write_text(json.dumps({**record, "sequence": 3}))
    code, _, err = install(bundle, keys, "--venv", str(venv))
    assert code == 14
    assert err == (
        f"lockship: error: {bundle}: manifest.json: sequence 1 of series 'host' is older than "
        f"sequence 3, installed there (signed {record['signed_at']}); --allow-rollback installs it anyway\n"
        f"  hint: {venv / 'lockship-installed.json'} records what was installed\n"
    )
    assert install(bundle, keys, "--venv", str(venv), "--allow-rollback")[0] == 0


def test_identity_is_required_when_allowed_signers_lists_several(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    allowed = tmp_path / "org_allowed_signers"
    allowed.write_text(keys.allowed.read_text() + f"dev@example.org {keys.pub(keys.other)}\n")
    code, _, err = run("install", str(bundle), "--allowed-signers", str(allowed), "--venv", str(tmp_path / "v"))
    assert code == 7
    assert err == (
        f"lockship: error: {allowed}: lists 2 principals (dev@example.org, release); say which "
        "must have signed with --identity\n"
        "  hint: pass --identity PRINCIPAL: the one whose signature you trust for this bundle\n"
    )
    if Path(PY38).exists():
        proc = install_py(bundle, "--allowed-signers", str(allowed), "--verify-only")
        assert (proc.returncode, proc.stderr) == (
            7,
            (f"install.py: error: {allowed}: lists 2 principals (dev@example.org, release); "
            "say which must have signed with --identity\n"),
        )
        proc = install_py(bundle, "--allowed-signers", str(allowed), "--identity", "release", "--verify-only")
        assert proc.returncode == 0, proc.stderr


# --- hostile bundles: one line, the documented code, quickly ----------------------------------


@needs_py38
def test_install_py_checks_the_signature_before_parsing_anything(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    (bundle / "manifest.json").write_text("[" * 200_000)
    names = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    (bundle / "SHA256SUMS").write_text(render_sums({n: sha256_of(bundle / n) for n in names}))
    proc = install_py(bundle, "--allowed-signers", str(keys.allowed), "--verify-only")
    assert proc.returncode == 7
    assert proc.stderr.startswith("install.py: error: SHA256SUMS.sig: ")
    assert len(proc.stderr.splitlines()) == 1


@needs_py38
def test_install_py_bounds_signed_but_hostile_documents(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    (bundle / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    (bundle / "requirements.txt").write_text(" " * (48 * 1024 * 1024) + "x\n")
    resign(bundle, keys.plain)
    nest(bundle / "wheels", 1500)
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [PY38, "-I", str(bundle / "install.py"), "--allowed-signers", str(keys.allowed), "--verify-only"],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert time.monotonic() - started < 60
        assert proc.returncode == 6, proc.stderr
        lines = proc.stderr.splitlines()
        assert "Traceback" not in proc.stderr
        assert "  manifest.json: nested deeper than 64 levels" in lines
        assert f"  wheels/{'d/' * 7}d: nested deeper than 8 directories" in lines
    finally:
        nest(bundle / "wheels", 1500, remove=True)


PIP_WHEEL = sorted(Path(sys.base_prefix).glob("lib/python3*/ensurepip/_bundled/pip-*.whl"))


@pytest.mark.skipif(not PIP_WHEEL, reason="needs ensurepip's bundled pip wheel as a stand-in")
def test_venv_without_ensurepip_gets_pip_from_the_bundles_wheel(tmp_path: Path) -> None:
    # A Python without python3-pip: ensurepip is never asked, pip comes from the wheel.
    venv = tmp_path / "venv"
    assert create_venv(sys.executable, str(venv), str(PIP_WHEEL[-1])) is None
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-m", "pip", "--version"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    version = PIP_WHEEL[-1].name.split("-")[1]
    assert proc.stdout.startswith(f"pip {version} from {venv}"), proc.stdout + proc.stderr
    broken = tmp_path / "python-without-venv"
    broken.write_text(f'#!/bin/sh\nexec {sys.executable} -c "import venv_is_missing" "$@"\n')
    broken.chmod(0o755)
    problem = create_venv(str(broken), str(tmp_path / "v2"), str(PIP_WHEEL[-1]))
    assert problem is not None
    assert problem.startswith(f"`{broken} -I -m venv --without-pip {tmp_path / 'v2'}` failed: ")


# --- --installer uv: the real uv program, carried in the bundle as a pinned wheel --------

UV = Path(sys.executable).with_name("uv")  # the dev group's uv
needs_uv = pytest.mark.skipif(not UV.is_file(), reason="needs the dev group's uv")


@pytest.fixture(scope="module")
def uv_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel laid out as PyPI's uv wheels are: the program is uv-<version>.data/scripts/uv."""
    version = subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True)
    number = version.stdout.split()[1]
    return make_wheel(
        tmp_path_factory.mktemp("uv-wheel"), "uv", number,
        files={f"uv-{number}.data/scripts/uv": UV.read_bytes()},
    )  # fmt: skip


def installer(venv: Path, name: str) -> str:
    return next(venv.glob(f"lib/python*/site-packages/{name}-*.dist-info/INSTALLER")).read_text()


@needs_uv
def test_installer_uv_installs_with_the_bundles_own_uv(
    tmp_path: Path, keys: Keys, uv_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = make_bundle(tmp_path, real_wheels=[uv_wheel])
    sign(bundle, keys)
    # Whatever uv would read from the environment or a configuration file is not asked:
    # an excluded beta, a constrained alpha or a target directory would not give the venv
    # the bundle.
    (tmp_path / "exclude.txt").write_text("beta\n")
    (tmp_path / "constraints.txt").write_text("alpha==0.5\n")
    monkeypatch.setenv("UV_EXCLUDE", str(tmp_path / "exclude.txt"))
    monkeypatch.setenv("UV_CONSTRAINT", str(tmp_path / "constraints.txt"))
    monkeypatch.setenv("UV_NO_VERIFY_HASHES", "1")
    (tmp_path / "xdg" / "uv").mkdir(parents=True)
    (tmp_path / "xdg" / "uv" / "uv.toml").write_text(f'[pip]\ntarget = "{tmp_path / "elsewhere"}"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    venv = tmp_path / "venv"
    code, _, err = install(bundle, keys, "--venv", str(venv), "--installer", "uv")
    assert code == 0, err
    assert " + alpha==1.0\n + beta==2.0\n" in err
    assert err.endswith(f"installed 3 packages into {venv / 'bin' / 'python'}\n")
    assert imports(venv) == "1.0 2.0\n"
    assert installer(venv, "alpha") == installer(venv, "beta") == "uv"
    assert not (tmp_path / "elsewhere").exists()
    assert not list(Path(tempfile.gettempdir()).glob("lockship-uv-*"))  # the extracted uv is gone


@needs_uv
@needs_py38
def test_install_py_installer_uv(tmp_path: Path, keys: Keys, uv_wheel: Path) -> None:
    bundle = make_bundle(tmp_path, real_wheels=[uv_wheel])
    sign(bundle, keys)
    venv = tmp_path / "venv"
    proc = install_py(
        bundle, "--allowed-signers", str(keys.allowed), "--venv", str(venv),
        "--python", sys.executable, "--installer", "uv",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.endswith(f"installed 3 packages for host into {venv / 'bin' / 'python'}\n")
    assert imports(venv) == "1.0 2.0\n"
    assert installer(venv, "beta") == "uv"


@pytest.mark.parametrize(
    ("packages", "problem"),
    [
        ((("alpha", "1.0"),), "--installer uv needs the uv wheel pinned in the bundle: this bundle pins none"),
        ((("alpha", "1.0"), ("uv", "0.13.9")),
         "wheels/uv-0.13.9-py3-none-any.whl: no uv program in this wheel (.data/scripts/uv)"),
    ],
    ids=["no-uv-wheel", "uv-wheel-without-the-program"],
)  # fmt: skip
def test_installer_uv_refuses_a_bundle_without_a_uv_program(
    tmp_path: Path, keys: Keys, packages: tuple[tuple[str, str], ...], problem: str
) -> None:
    bundle = make_bundle(tmp_path, packages=packages)
    sign(bundle, keys)
    venv = tmp_path / "venv"
    hint = "add uv to the requirements and lock, fetch and sign again; or install with pip, the default"
    code, _, err = install(bundle, keys, "--venv", str(venv), "--installer", "uv")
    assert (code, err) == (3, f"lockship: error: {bundle}: {problem}\n  hint: {hint}\n")
    assert not venv.exists()
    if Path(PY38).exists():
        proc = install_py(
            bundle, "--allowed-signers", str(keys.allowed), "--venv", str(venv), "--installer", "uv"
        )
        assert (proc.returncode, proc.stderr) == (3, f"install.py: error: {problem}\n  {hint}\n")
        assert not venv.exists()
