"""``lockship sign``: manifest.json, INSTALL.md, install.py, SHA256SUMS and its signature.

Checked with the stock tools a reviewer or installer would use: ``sha256sum -c``
and ``ssh-keygen -Y verify``.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bundles import (
    PASSPHRASE,
    SSH_KEYGEN,
    Keys,
    flip_byte,
    make_bundle,
    only_wheel,
    run,
    sign,
    verify,
)
from lockship import _install_script, _probe, _sshsig_stdlib
from lockship.errors import ExitCode
from lockship.models import SIGN_OUTPUTS, Manifest
from lockship.sign import render_install_script
from pkgbuild import make_wheel

pytestmark = pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="needs ssh-keygen")


def all_files(bundle: Path) -> list[str]:
    return sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())


def outputs(bundle: Path) -> dict[str, bytes]:
    return {name: (bundle / name).read_bytes() for name in SIGN_OUTPUTS if (bundle / name).exists()}


def test_signed_bundle_passes_sha256sum_ssh_keygen_and_verify(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path, built=["beta"])
    code, out, err = run("sign", str(bundle), "--key", str(keys.plain), "--identity", "release")
    assert code == 0, err
    assert out == f'release namespaces="lockship" {keys.pub(keys.plain)}\n'
    assert f"wrote {bundle / 'SHA256SUMS.sig'}" in err

    # sha256sum -c covers every file but SHA256SUMS and its signature.
    sums = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    checked = sorted(line.rsplit(": ", 1)[0] for line in sums.stdout.splitlines())
    assert checked == [f for f in all_files(bundle) if f not in ("SHA256SUMS", "SHA256SUMS.sig")]

    with (bundle / "SHA256SUMS").open("rb") as data:
        proc = subprocess.run(
            [SSH_KEYGEN, "-Y", "verify", "-f", str(keys.allowed), "-I", "release",
             "-n", "lockship", "-s", str(bundle / "SHA256SUMS.sig")],
            stdin=data, capture_output=True, text=True,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('Good "lockship" signature for release with ED25519 key')

    code, out, err = verify(bundle, keys, "--identity", "release")
    assert (code, err) == (0, "")
    assert out.startswith(f"OK: {bundle}: 9 files (")
    assert "2 packages for host, signed by release" in out


def test_manifest_describes_every_file(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path, built=["beta"])
    sign(bundle, keys)
    text = (bundle / "manifest.json").read_text()
    manifest = Manifest.model_validate_json(text)
    # deterministic JSON: sorted keys, indent 2, trailing newline
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    record = json.loads((bundle / "bundle.json").read_text())
    assert manifest.lock_fingerprint == record["lock_fingerprint"]
    assert manifest.target.name == "host"
    assert manifest.exclude_newer == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    listed = {f.path: f for f in manifest.files}
    assert sorted(listed) == [
        f for f in all_files(bundle) if f not in ("SHA256SUMS", "SHA256SUMS.sig", "manifest.json")
    ]
    assert {p: f.kind for p, f in listed.items() if not p.startswith("wheels/")} == {
        "INSTALL.md": "doc",
        "bundle.json": "record",
        "install.py": "install-script",
        "pylock.host.toml": "lock",
        "requirements.txt": "requirements",
        "sbom.cdx.json": "sbom",
    }
    for path, entry in listed.items():
        digest = hashlib.sha256((bundle / path).read_bytes()).hexdigest()
        assert (entry.sha256, entry.size) == (digest, (bundle / path).stat().st_size)
    alpha = listed["wheels/alpha-1.0-py3-none-any.whl"]
    assert (alpha.kind, alpha.name, alpha.version) == ("wheel", "alpha", "1.0")
    assert alpha.origin_url == "https://files.example.org/packages/alpha-1.0-py3-none-any.whl"
    beta = listed["wheels/beta-2.0-py3-none-any.whl"]
    assert beta.kind == "built-wheel"
    assert beta.built_from is not None
    assert beta.built_from.sdist_filename == "beta-2.0.tar.gz"
    assert beta.built_from.build_requires == ("setuptools==69.0.0",)


def test_same_bundle_and_key_give_identical_bytes_and_resigning_replaces(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # signed_at is part of the manifest: the same signing time gives the same bytes
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")
    one, two = make_bundle(tmp_path / "1"), make_bundle(tmp_path / "2")
    sign(one, keys)
    sign(two, keys)
    first = outputs(one)
    assert first == outputs(two)
    sign(one, keys)
    assert outputs(one) == first

    # Re-signing with another key replaces every output consistently.
    code, _, err = run("sign", str(one), "--key", str(keys.other), "--identity", "release")
    assert code == 0, err
    assert outputs(one)["SHA256SUMS"] == first["SHA256SUMS"]
    assert outputs(one)["SHA256SUMS.sig"] != first["SHA256SUMS.sig"]
    assert verify(one, keys)[0] == 7
    other = tmp_path / "other_allowed"
    other.write_text(f"release {keys.pub(keys.other)}\n")
    assert run("verify", str(one), "--allowed-signers", str(other))[0] == 0


@pytest.mark.parametrize("via", ["file", "env"])
def test_passphrase_protected_key(tmp_path: Path, keys: Keys, via: str) -> None:
    bundle = make_bundle(tmp_path)
    args = ["sign", str(bundle), "--key", str(keys.encrypted)]
    env = {"LOCKSHIP_KEY_PASSPHRASE": PASSPHRASE}
    if via == "file":
        secret = tmp_path / "passphrase"
        secret.write_text(PASSPHRASE + "\n")
        args += ["--passphrase-file", str(secret)]
        env = {}
    code, out, err = run(*args, env=env)
    assert code == 0, err
    assert out == f'release namespaces="lockship" {keys.pub(keys.encrypted)}\n'
    assert verify(bundle, keys, "--identity", "release")[0] == 0
    # The passphrase appears nowhere: not in the bundle, not in the output.
    for path in bundle.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes()
    assert PASSPHRASE not in out + err


def test_passphrase_missing_or_wrong(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    code, _, err = run("sign", str(bundle), "--key", str(keys.encrypted))
    assert code == 7
    assert err.startswith(f"lockship: error: {keys.encrypted}: key is passphrase-protected")
    assert "hint: pass --passphrase-file or set LOCKSHIP_KEY_PASSPHRASE" in err
    code, _, err = run(
        "sign", str(bundle), "--key", str(keys.encrypted),
        env={"LOCKSHIP_KEY_PASSPHRASE": "not it"},
    )  # fmt: skip
    assert code == 7
    assert f"{keys.encrypted}: wrong passphrase for the key" in err
    assert "not it" not in err
    assert not (bundle / "SHA256SUMS").exists()


def test_private_key_never_enters_the_bundle(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    code, out, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 0, err
    private = keys.plain.read_text().splitlines()[1:-1]  # base64 lines of the key file
    for path in bundle.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("latin-1")
            assert not any(line in text for line in private), path
    assert not any(line in out + err for line in private)


def test_install_doc_has_the_exact_commands(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys, "--identity", "ops@example.org")
    doc = (bundle / "INSTALL.md").read_text()
    for command in [
        (
            'ssh-keygen -Y verify -f "$KIT/allowed_signers" -I ops@example.org -n lockship \\\n'
            '    -s "$BUNDLE/SHA256SUMS.sig" < "$BUNDLE/SHA256SUMS"\n'
        ),
        '(cd "$BUNDLE" && sha256sum --strict --quiet -c SHA256SUMS)\n',
        'python3 -I -m venv "$VENV"\n',
        (
            'PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -I -m pip install --isolated --no-index \\\n'
            '    --find-links "$BUNDLE/wheels" --require-hashes --no-cache-dir -r "$BUNDLE/requirements.txt"\n'
        ),
        (
            'python3 -I "$KIT/install.py" --bundle "$BUNDLE" --allowed-signers "$KIT/allowed_signers" \\\n'
            '    --identity ops@example.org --venv "$VENV"\n'
        ),
    ]:
        assert command in doc
    # The signature before the files, the files before any Python.
    order = ["ssh-keygen -Y verify", "sha256sum --strict", "| LC_ALL=C sort | diff", "-m venv"]
    assert [doc.index(step) for step in order] == sorted(doc.index(step) for step in order)
    assert "**never from this bundle or the\nmedium it came on**" in doc


def test_install_script_embeds_the_stdlib_code_verbatim_without_clashes() -> None:
    script = render_install_script()
    assert inspect.getsource(_sshsig_stdlib) in script
    assert inspect.getsource(_probe.pip_tags) in script

    def defined(source: str) -> set[str]:
        names = set()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {
                    n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)
                }
        return names

    own = defined(inspect.getsource(_install_script))
    assert not own & (defined(inspect.getsource(_sshsig_stdlib)) | {"pip_tags"})
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(script))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    stdlib = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    if stdlib is None:
        pytest.skip("sys.stdlib_module_names needs Python 3.10")
    assert imported <= set(stdlib), imported - set(stdlib)


def test_exit_codes_of_install_script_match_lockship() -> None:
    assert _install_script.EXIT_USAGE == ExitCode.USAGE
    assert _install_script.EXIT_INPUT == ExitCode.INPUT
    assert _install_script.EXIT_INTEGRITY == ExitCode.INTEGRITY
    assert _install_script.EXIT_SIGNATURE == ExitCode.SIGNATURE
    assert _install_script.EXIT_INCOMPATIBLE == ExitCode.INCOMPATIBLE


# --- what sign refuses -----------------------------------------------------------------------


def test_not_a_bundle(tmp_path: Path, keys: Keys) -> None:
    code, _, err = run("sign", str(tmp_path), "--key", str(keys.plain))
    assert code == 3
    assert err == (
        f"lockship: error: {tmp_path / 'bundle.json'}: "
        "not a lockship bundle; run lockship fetch first\n"
    )


def test_refuses_a_symlink(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    (tmp_path / "outside").write_text("secret")
    os.symlink(tmp_path / "outside", bundle / "wheels" / "link.whl")
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 3
    assert err == f"lockship: error: {bundle}: wheels/link.whl: symbolic link refused\n"
    assert not (bundle / "SHA256SUMS").exists()


def test_refuses_a_file_bundle_json_does_not_list(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    make_wheel(bundle / "wheels", "stowaway", "6.6.6")
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 3
    assert (
        f"lockship: error: {bundle}: not part of the bundle: "
        "'wheels/stowaway-6.6.6-py3-none-any.whl'\n" in err
    )


def test_refuses_wheels_that_differ_from_bundle_json(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    flip_byte(only_wheel(bundle, "alpha"))
    only_wheel(bundle, "beta").unlink()
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 6
    assert err.startswith(f"lockship: error: {bundle}: 2 problems found\n")
    assert "  wheels/alpha-1.0-py3-none-any.whl: sha256 " in err
    assert "but bundle.json records " in err
    assert "  wheels/beta-2.0-py3-none-any.whl: missing (listed in bundle.json)\n" in err
    assert not (bundle / "manifest.json").exists()


def test_refuses_a_wheel_whose_metadata_lies(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path, metadata_names={"alpha": "evil"})
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 6
    assert (
        "  wheels/alpha-1.0-py3-none-any.whl: alpha-1.0.dist-info/METADATA says evil 1.0, "
        "not alpha==1.0\n" in err
    )


def test_refuses_requirements_that_do_not_pin_the_wheels(tmp_path: Path, keys: Keys) -> None:
    bundle = make_bundle(tmp_path)
    requirements = bundle / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("beta==2.0", "beta==2.1"))
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain))
    assert code == 6
    assert "  requirements.txt:5: beta==2.1: the file with this hash, " in err
    assert "wheels/beta-2.0-py3-none-any.whl, is beta 2.0 per manifest.json\n" in err


def test_refuses_an_identity_that_is_a_pattern(tmp_path: Path, keys: Keys) -> None:
    code, _, err = run(
        "sign", str(make_bundle(tmp_path)), "--key", str(keys.plain), "--identity", "a,b"
    )
    assert code == 3
    assert err.startswith("lockship: error: --identity: unusable signer identity 'a,b'")


# --- with the real lockship lock + fetch ------------------------------------------------------


def test_lock_fetch_sign_verify(index_server, wheel_dir, tmp_path, monkeypatch, keys: Keys) -> None:
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_wheel(wheel_dir, "small", "1.0", requires_dist=["tiny"]))
    server.add(make_wheel(wheel_dir, "tiny", "2.0"))
    (tmp_path / "requirements.in").write_text("small\n")
    index = ["--no-pip-config", "-q", "--index-url", server.simple_url, "--target", "host"]
    for command in ("lock", "fetch"):
        code, _, err = run(command, *index)
        assert code == 0, err
    bundle = tmp_path / "dist" / "host"
    sign(bundle, keys)
    code, out, err = verify(bundle, keys, "--identity", "release")
    assert code == 0, err
    assert "2 packages for host" in out
