"""``lockship verify``: every tampering is caught, named by file, with its documented exit code."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bundles import (
    SSH_KEYGEN,
    Keys,
    flip_byte,
    make_bundle,
    nest,
    only_wheel,
    reseal,
    run,
    sign,
    verify,
)
from lockship import sshsig
from lockship._install_script import render_sums
from lockship.models import BundleRecord
from pkgbuild import make_wheel

pytestmark = pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="needs ssh-keygen")

HEX = "[0-9a-f]{64}"
ALPHA = "wheels/alpha-1.0-py3-none-any.whl"


@pytest.fixture
def bundle(tmp_path: Path, keys: Keys) -> Path:
    signed = make_bundle(tmp_path)
    sign(signed, keys)
    return signed


def problems(err: str) -> list[str]:
    """The problem lines of a failed verify (indented under the first line)."""
    return [line[2:] for line in err.splitlines()[1:] if line.startswith("  ")]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def keygen_sign(bundle: Path, key: Path, namespace: str = "lockship") -> None:
    sums = bundle / "SHA256SUMS"
    (bundle / "SHA256SUMS.sig").unlink()
    proc = subprocess.run(
        [SSH_KEYGEN, "-Y", "sign", "-f", str(key), "-n", namespace, str(sums)], capture_output=True
    )
    assert proc.returncode == 0, proc.stderr


# Each case: how to tamper, and the one problem (a regex) verify must report.
FILE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "byte flipped in a wheel": (
        lambda b: flip_byte(b / ALPHA),
        rf"{ALPHA}: sha256 {HEX}, expected {HEX} \(SHA256SUMS\)",
    ),
    "wheel truncated": (
        lambda b: truncate(b / ALPHA),
        (
            rf"{ALPHA}: size \d+ bytes, expected \d+ \(manifest.json\); sha256 {HEX}, expected {HEX} "
            r"\(SHA256SUMS\)"
        ),
    ),
    "wheel removed": (
        lambda b: (b / ALPHA).unlink(),
        rf"{ALPHA}: missing \(listed in SHA256SUMS\)",
    ),
    "extra file": (
        lambda b: (b / "notes.txt").write_text("hi"),
        r"notes.txt: not listed in SHA256SUMS \(extra file\)",
    ),
    "extra wheel": (
        lambda b: make_wheel(b / "wheels", "stowaway", "1.0"),
        r"wheels/stowaway-1.0-py3-none-any.whl: not listed in SHA256SUMS \(extra file\)",
    ),
    "symbolic link": (
        lambda b: os.symlink("/etc/passwd", b / "wheels" / "x.whl"),
        r"wheels/x.whl: symbolic link refused",
    ),
    "manifest.json edited": (
        lambda b: edit(b / "manifest.json", '"version": "1.0"', '"version": "1.1"'),
        rf"manifest.json: sha256 {HEX}, expected {HEX} \(SHA256SUMS\)",
    ),
    "requirements.txt hash edited": (
        lambda b: edit(b / "requirements.txt", "sha256:", "sha256:0"),
        (
            r"requirements.txt: size 372 bytes, expected 370 \(manifest.json\); "
            rf"sha256 {HEX}, expected {HEX} \(SHA256SUMS\)"
        ),
    ),
    "requirements.txt version edited": (
        lambda b: edit(b / "requirements.txt", "alpha==1.0", "alpha==1.1"),
        rf"requirements.txt: sha256 {HEX}, expected {HEX} \(SHA256SUMS\)",
    ),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_tampered_file_is_named(bundle: Path, keys: Keys, case: str) -> None:
    tamper, expected = FILE_CASES[case]
    tamper(bundle)
    code, out, err = verify(bundle, keys, "--identity", "release")
    assert (code, out) == (6, "")
    assert err.startswith(f"lockship: error: {bundle}: 1 problem found\n"), err
    assert len(problems(err)) == 1, err
    assert re.fullmatch(expected, problems(err)[0]), err


# Changes a careless (but trusted) signer could have sealed: SHA256SUMS and the
# signature are valid, so only the documents' cross-checks find them.
def _lying_wheel(bundle: Path, **metadata: object) -> None:
    """Replace alpha's wheel, its hashes in bundle.json and requirements.txt following."""
    lie = make_wheel(bundle.parent / "lie", "alpha", "1.0", **metadata)  # type: ignore[arg-type]
    data = lie.read_bytes()
    old = hashlib.sha256((bundle / ALPHA).read_bytes()).hexdigest()
    edit(bundle / "requirements.txt", old, hashlib.sha256(data).hexdigest())
    lie.replace(bundle / ALPHA)
    record = BundleRecord.model_validate_json((bundle / "bundle.json").read_text())
    files = [
        f.model_copy(update={"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        if f.path == ALPHA
        else f
        for f in record.files
    ]
    document = record.model_copy(update={"files": tuple(files)}).model_dump(mode="json")
    (bundle / "bundle.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _zero_alpha_hash(bundle: Path) -> None:
    digest = hashlib.sha256((bundle / ALPHA).read_bytes()).hexdigest()
    edit(bundle / "requirements.txt", digest, "0" * 64)


def _append_to_sums(bundle: Path) -> None:
    with (bundle / "SHA256SUMS").open("a") as sums:
        sums.write("d41d8cd98f00b204e9800998ecf8427e README\n")


SEALED_CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "pin with another hash": (
        _zero_alpha_hash,
        [
            rf"requirements.txt:3: alpha==1.0: no file in wheels/ with sha256 {'0' * 64}",
            rf"{ALPHA}: not pinned in requirements.txt",
        ],
    ),
    "pin with another version": (
        lambda b: edit(b / "requirements.txt", "alpha==1.0", "alpha==1.1"),
        [
            (
                rf"requirements.txt:3: alpha==1.1: the file with this hash, {ALPHA}, is alpha 1.0 "
                r"per manifest.json"
            )
        ],
    ),
    "pin that is a range": (
        lambda b: edit(b / "requirements.txt", "alpha==1.0", "alpha>=1.0"),
        [
            (
                r"requirements.txt:3: not a pin 'name==version --hash=sha256:<hex>': "
                r"'alpha>=1.0     --hash=sha256:[0-9a-f]{51}'"
            ),  # shown up to 80 characters
            rf"{ALPHA}: not pinned in requirements.txt",
        ],
    ),
    "malformed SHA256SUMS line": (
        _append_to_sums,
        [r"SHA256SUMS:10: malformed line 'd41d8cd98f00b204e9800998ecf8427e README'"],
    ),
    "manifest target edited": (
        lambda b: edit(b / "manifest.json", '"name": "host"', '"name": "linux-cp39"'),
        [r"manifest.json: target differs from bundle.json"],
    ),
    "wheel whose METADATA lies": (
        lambda b: _lying_wheel(b, metadata_name="evil"),
        [
            rf"{ALPHA}: alpha-1.0.dist-info/METADATA says evil 1.0, not alpha==1.0",
            # the SBOM still describes the wheel that was signed
            (
                rf"sbom.cdx.json: {ALPHA} is alpha 1.0 sha256 [0-9a-f]{{64}}, "
                r"but the manifest says alpha 1.0 sha256 [0-9a-f]{64}"
            ),
        ],
    ),
    "wheel whose dependencies are not those the lock was resolved from": (
        lambda b: _lying_wheel(b, requires_dist=["evil"]),
        [(
            rf"sbom.cdx.json: {ALPHA} is alpha 1.0 sha256 [0-9a-f]{{64}}, "
            r"but the manifest says alpha 1.0 sha256 [0-9a-f]{64}"
        ),
         (rf"{ALPHA}: its METADATA is not the metadata pylock.host.toml was resolved from "
          r"\(Requires-Dist, Requires-Python or Provides-Extra differ\)")],
    ),
}


@pytest.mark.parametrize("case", SEALED_CASES)
def test_inconsistent_but_validly_signed_bundle(bundle: Path, keys: Keys, case: str) -> None:
    tamper, expected = SEALED_CASES[case]
    if case == "malformed SHA256SUMS line":
        reseal(bundle, keys.plain)
        tamper(bundle)
        keygen_sign(bundle, keys.plain)
    else:
        tamper(bundle)
        reseal(bundle, keys.plain)
    code, _, err = verify(bundle, keys, "--identity", "release")
    assert code == 6, err
    found = problems(err)
    assert len(found) == len(expected), err
    for line, pattern in zip(found, expected):
        assert re.fullmatch(pattern, line), (line, pattern)


# --- signatures -------------------------------------------------------------------------------


def test_signature_by_another_key(bundle: Path, keys: Keys) -> None:
    keygen_sign(bundle, keys.other)
    code, _, err = verify(bundle, keys, "--identity", "release")
    assert code == 7
    assert re.fullmatch(
        rf"lockship: error: {bundle}: SHA256SUMS.sig: signature was made by key SHA256:\S+, "
        r"which allowed_signers does not list for identity 'release'\n"
        r"  hint: add its public key to allowed_signers if you trust it\n",
        err,
    ), err


def test_signature_for_another_namespace(bundle: Path, keys: Keys) -> None:
    keygen_sign(bundle, keys.plain, namespace="file")
    code, _, err = verify(bundle, keys, "--identity", "release")
    assert code == 7
    assert err == (
        f"lockship: error: {bundle}: SHA256SUMS.sig: "
        "signature was made for namespace 'file', not 'lockship'\n"
    )


def test_signer_not_allowed_for_the_identity(bundle: Path, keys: Keys) -> None:
    code, _, err = verify(bundle, keys, "--identity", "mallory")
    assert code == 7
    assert "which allowed_signers does not list for identity 'mallory'\n" in err
    assert f"hint: it is listed for 'release' ({keys.allowed}:1)" in err


def test_missing_signature(bundle: Path, keys: Keys) -> None:
    (bundle / "SHA256SUMS.sig").unlink()
    code, _, err = verify(bundle, keys)
    assert code == 7
    assert err == (
        f"lockship: error: {bundle}: SHA256SUMS.sig: "
        "missing; the bundle is not signed (lockship sign)\n"
    )


def test_data_altered_after_signing(bundle: Path, keys: Keys) -> None:
    (bundle / "SHA256SUMS").write_text((bundle / "SHA256SUMS").read_text().replace("a", "b", 1))
    code, _, err = verify(bundle, keys)
    assert code == 7
    assert "does not match the data: the data or the signature was altered" in err


def test_every_problem_is_reported_at_once(bundle: Path, keys: Keys) -> None:
    flip_byte(only_wheel(bundle, "beta"))
    (bundle / "notes.txt").write_text("hi")
    (bundle / "more.txt").write_text("hi")
    code, _, err = verify(bundle, keys)
    assert code == 6
    # The signed file list is checked first, every difference at once; nothing
    # else is read from a bundle whose files are not the signed ones.
    assert err == (
        f"lockship: error: {bundle}: 2 problems found\n"
        "  more.txt: not listed in SHA256SUMS (extra file)\n"
        "  notes.txt: not listed in SHA256SUMS (extra file)\n"
    )
    (bundle / "more.txt").unlink()
    (bundle / "notes.txt").unlink()
    only_wheel(bundle, "alpha").write_bytes(b"not a wheel")
    code, _, err = verify(bundle, keys)
    assert code == 6
    assert [p.split(":")[0] for p in problems(err)] == [ALPHA, "wheels/beta-2.0-py3-none-any.whl"]
    # A bad signature is exit 7 before anything else is looked at.
    keygen_sign(bundle, keys.other)
    code, _, err = verify(bundle, keys)
    assert code == 7
    assert err.startswith(f"lockship: error: {bundle}: SHA256SUMS.sig: ")
    assert "wheels/" not in err


def test_json_output(bundle: Path, keys: Keys) -> None:
    code, out, _ = verify(bundle, keys, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert (report["files"], report["packages"], report["target"]) == (9, 2, "host")
    assert report["principal"] == "release"
    assert report["fingerprint"].startswith("SHA256:")
    flip_byte(bundle / ALPHA)
    code, out, _ = verify(bundle, keys, "--json")
    assert code == 6
    failure = json.loads(out)
    assert failure["ok"] is False
    assert failure["exit_code"] == 6
    assert failure["problems"][0].startswith(f"{ALPHA}: sha256 ")


def test_unreadable_allowed_signers_is_an_input_error(bundle: Path, tmp_path: Path) -> None:
    code, _, err = run("verify", str(bundle), "--allowed-signers", str(tmp_path / "nope"))
    assert code == 3
    assert err.startswith(f"lockship: error: {tmp_path / 'nope'}: cannot read: No such file")


def test_no_such_bundle(tmp_path: Path, keys: Keys) -> None:
    code, _, err = verify(tmp_path / "nope", keys)
    assert code == 3
    assert err == f"lockship: error: {tmp_path / 'nope'}: no such bundle directory or archive\n"


# --- hostile bundles: signature first, every parser bounded, one line each (issue 9) -------


def sign_as_is(bundle: Path, key: Path) -> None:
    """Act as a malicious (or compromised) signer: SHA256SUMS of the files as they are, signed."""
    listed = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()]
    sums = {path: hashlib.sha256((bundle / path).read_bytes()).hexdigest() for path in listed}
    (bundle / "SHA256SUMS").write_text(render_sums(sums))
    signature = sshsig.sign((bundle / "SHA256SUMS").read_bytes(), sshsig.load_signing_key(key))
    (bundle / "SHA256SUMS.sig").write_text(signature)


def test_deeply_nested_directories_give_one_line(bundle: Path, keys: Keys) -> None:
    # relative to a directory descriptor: the whole path is longer than PATH_MAX
    nest(bundle, 1500)
    try:
        code, out, err = verify(bundle, keys)
    finally:
        nest(bundle, 1500, remove=True)  # pytest's own tmp clean-up recurses once per level
    assert (code, out) == (6, "")
    assert err == (
        f"lockship: error: {bundle}: 1 problem found\n"
        "  d/d/d/d/d/d/d/d/d: nested deeper than 8 directories\n"
    )


def test_a_tree_of_too_many_files_gives_one_line(bundle: Path, keys: Keys) -> None:
    # lockship verify and install.py share the one bounded walk.
    flood = bundle / "flood"
    flood.mkdir()
    for number in range(20_000):
        (flood / str(number)).touch()
    started = time.monotonic()
    code, out, err = verify(bundle, keys)
    assert (code, out) == (6, "")
    assert err == (
        f"lockship: error: {bundle}: 1 problem found\n"
        "  more than 20000 files and directories: not a bundle\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", str(bundle / "install.py"), "--allowed-signers", str(keys.allowed),
         "--verify-only"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 6
    assert proc.stderr == (
        "install.py: error: 1 problem(s) found\n"
        "  more than 20000 files and directories: not a bundle\n"
    )
    assert time.monotonic() - started < 30


def test_a_forged_bundle_is_refused_on_its_signature_before_anything_is_parsed(
    bundle: Path, keys: Keys
) -> None:
    (bundle / "manifest.json").write_text("[" * 200_000)
    (bundle / "requirements.txt").write_text(" " * (16 * 1024 * 1024))
    (bundle / "SHA256SUMS").write_text((bundle / "SHA256SUMS").read_text() + "x" * 100_000)
    code, _, err = verify(bundle, keys)
    assert code == 7
    assert re.fullmatch(
        re.escape(f"lockship: error: {bundle}: SHA256SUMS.sig: signature by key ")
        + r"SHA256:\S+ does not match the data: the data or the signature was altered\n",
        err,
    ), err


def test_deeply_nested_json_signed_by_a_listed_key_gives_one_line(bundle: Path, keys: Keys) -> None:
    document = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(document)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    sign_as_is(bundle, keys.plain)
    code, _, err = verify(bundle, keys)
    assert (code, err) == (6, (
        f"lockship: error: {bundle}: 1 problem found\n"
        "  manifest.json: nested deeper than 32 levels\n"
    ))


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        (64 * 1024 * 1024, "requirements.txt: unreadable: larger than 4194304 bytes"),
        (1024 * 1024, "requirements.txt:1: a run of more than 64 spaces or tabs"),
    ],
)
def test_a_long_line_of_spaces_in_requirements_is_refused_quickly(
    bundle: Path, keys: Keys, size: int, problem: str
) -> None:
    (bundle / "requirements.txt").write_text(" " * size)
    sign_as_is(bundle, keys.plain)
    started = time.monotonic()
    code, _, err = verify(bundle, keys)
    assert time.monotonic() - started < 10
    assert (code, err) == (6, f"lockship: error: {bundle}: 1 problem found\n  {problem}\n")


def test_sha256sums_lines_are_bounded(bundle: Path, keys: Keys) -> None:
    sums = bundle / "SHA256SUMS"
    sums.write_text(sums.read_text() + "0" * 64 + "  " + "a" * 600 + "\n")
    signature = sshsig.sign(sums.read_bytes(), sshsig.load_signing_key(keys.plain))
    (bundle / "SHA256SUMS.sig").write_text(signature)
    code, _, err = verify(bundle, keys)
    assert (code, err) == (6, (
        f"lockship: error: {bundle}: 1 problem found\n"
        "  SHA256SUMS:10: longer than 578 characters\n"
    ))


def test_identity_is_required_when_allowed_signers_lists_several_principals(
    bundle: Path, keys: Keys, tmp_path: Path
) -> None:
    organisation = tmp_path / "allowed_signers"
    organisation.write_text(
        f"release {keys.pub(keys.plain)}\n"
        f"alice@example.org,bob@example.org {keys.pub(keys.other)}\n"
    )
    code, out, err = run("verify", str(bundle), "--allowed-signers", str(organisation))
    assert (code, out) == (7, "")
    assert err == (
        f"lockship: error: {organisation}: lists 3 principals (alice@example.org, "
        "bob@example.org, release); say which one must have signed\n"
        "  hint: pass --identity NAME, the principal the reviewer listed the release key as\n"
    )
    code, _, err = run(
        "verify", str(bundle), "--allowed-signers", str(organisation), "--identity", "release"
    )
    assert code == 0, err
    # Signed by a developer's key: refused when the release principal is asked for.
    keygen_sign(bundle, keys.other)
    code, _, err = run(
        "verify", str(bundle), "--allowed-signers", str(organisation), "--identity", "release"
    )
    assert code == 7, err
    # One principal (listed twice, for two keys): no --identity needed.
    assert keys.allowed.read_text().count("release ") == 2
    code, _, err = verify(bundle, keys)
    assert code == 7  # keys.other is not listed for release


def test_verify_says_what_is_not_a_bundle(tmp_path: Path, keys: Keys) -> None:
    signers = keys.allowed  # one principal: no --identity needed
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    hint = "  hint: give the directory lockship fetch wrote (dist/<target>), or its .tar\n"
    code, _, err = run("verify", str(tmp_path / "empty"), "--allowed-signers", str(signers))
    assert (code, err) == (3, (
        f"lockship: error: {tmp_path / 'empty'}: not a bundle: no bundle.json "
        f"(written by lockship fetch)\n{hint}"
    ))
    code, _, err = run("verify", str(tmp_path / "notes.txt"), "--allowed-signers", str(signers))
    assert (code, err) == (3, (
        f"lockship: error: {tmp_path / 'notes.txt'}: not a bundle: neither a directory nor a "
        f"tar archive\n{hint}"
    ))
