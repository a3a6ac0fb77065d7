"""SSHSIG signing and verification, proven against the real ``ssh-keygen``.

Both verifiers (``lockship.sshsig`` on ``cryptography``, and the pure-stdlib
``lockship._sshsig_stdlib`` embedded in install.py) must accept what
``ssh-keygen -Y sign`` makes, refuse the same things with the same message,
and ``ssh-keygen -Y verify`` must accept what lockship signs.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import glob
import io
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockship import _sshsig_stdlib, sshsig
from lockship._sshsig_stdlib import SshsigError
from lockship.errors import FilesystemError, InputError, LockshipError, SignatureError

SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
pytestmark = pytest.mark.skipif(
    not Path(SSH_KEYGEN).exists(), reason="ssh-keygen (openssh-client) is not installed"
)

PASSPHRASE = b"correct horse battery staple"
STDLIB_SOURCE = Path(_sshsig_stdlib.__file__)


# ---------------------------------------------------------------------------
# fixtures: keys made by ssh-keygen itself


@dataclass(frozen=True)
class Keys:
    dir: Path
    plain: Path  # ed25519, no passphrase, trusted as "release"
    encrypted: Path  # ed25519, -N PASSPHRASE (aes256-ctr + bcrypt), trusted as "release"
    other: Path  # ed25519, not trusted
    rsa: Path  # RSA in OpenSSH format

    def pub(self, key: Path) -> str:
        return key.with_name(key.name + ".pub").read_text().strip()

    @property
    def allowed(self) -> str:
        return (
            "# lockship release signers\n"
            f"release {self.pub(self.plain)}\n"
            f"release {self.pub(self.encrypted)}\n"
        )


def keygen(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, check=False, **kwargs)


def make_key(path: Path, *extra: str, key_type: str = "ed25519", passphrase: str = "") -> Path:
    proc = keygen("-q", "-t", key_type, "-N", passphrase, "-C", path.name, "-f", str(path), *extra)
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    return Keys(
        dir=d,
        plain=make_key(d / "plain"),
        encrypted=make_key(d / "encrypted", passphrase=PASSPHRASE.decode()),
        other=make_key(d / "other"),
        rsa=make_key(d / "rsa", "-b", "2048", key_type="rsa"),
    )


def keygen_sign(key: Path, data: bytes, tmp: Path, namespace: str = "lockship", *opts: str) -> str:
    target = tmp / "signed-by-keygen"
    target.write_bytes(data)
    sig = target.with_name(target.name + ".sig")
    sig.unlink(missing_ok=True)
    proc = keygen("-Y", "sign", "-f", str(key), "-n", namespace, *opts, str(target))
    assert proc.returncode == 0, proc.stderr
    return sig.read_text()


def keygen_verify(
    tmp: Path,
    data: bytes,
    signature: str,
    allowed: str,
    *opts: str,
    identity: str = "release",
    namespace: str = "lockship",
) -> subprocess.CompletedProcess[bytes]:
    (tmp / "kv.allowed").write_text(allowed)
    (tmp / "kv.sig").write_text(signature)
    return keygen(
        "-Y",
        "verify",
        "-f",
        str(tmp / "kv.allowed"),
        "-I",
        identity,
        "-n",
        namespace,
        "-s",
        str(tmp / "kv.sig"),
        *opts,
        input=data,
    )


# ---------------------------------------------------------------------------
# running both implementations


def verify_both(
    data: bytes | Path,
    signature: str,
    allowed: str,
    *,
    identity: Optional[str] = "release",
    namespace: str = "lockship",
    now: Optional[datetime] = None,
) -> str:
    """Both verifiers accept; they name the same principal."""
    signers = sshsig.parse_allowed_signers(allowed, source="allowed_signers")
    result = sshsig.verify(
        data, signature, signers, identity=identity, namespace=namespace, now=now
    )
    principal = _sshsig_stdlib.verify_sshsig(
        data, signature, allowed, identity, namespace, source="allowed_signers", now=now
    )
    assert principal == result.principal
    return principal


def refused_by_both(
    error: type[LockshipError],
    expected: str,
    data: bytes | Path,
    signature: str,
    allowed: str,
    *,
    identity: Optional[str] = "release",
    namespace: str = "lockship",
    now: Optional[datetime] = None,
) -> str:
    """Both verifiers refuse with ``error``/SshsigError and the same one-line text."""
    signers = sshsig.parse_allowed_signers(allowed, source="allowed_signers")
    with pytest.raises(LockshipError) as main:
        sshsig.verify(data, signature, signers, identity=identity, namespace=namespace, now=now)
    with pytest.raises(SshsigError) as stdlib:
        _sshsig_stdlib.verify_sshsig(
            data, signature, allowed, identity, namespace, source="allowed_signers", now=now
        )
    assert type(main.value) is error
    assert expected in str(main.value)
    assert str(main.value) == str(stdlib.value)
    assert "\n" not in str(main.value)
    return str(main.value)


def blob_of(signature: str) -> bytes:
    lines = signature.strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def armor(blob: bytes) -> str:
    text = base64.b64encode(blob).decode()
    return (
        "\n".join(
            [
                "-----BEGIN SSH SIGNATURE-----",
                *textwrap.wrap(text, 70),
                "-----END SSH SIGNATURE-----",
            ]
        )
        + "\n"
    )


def rebuild(armored: str, **changes: bytes | int) -> str:
    """Re-encode a signature with some fields replaced (PROTOCOL.sshsig blob)."""
    blob = blob_of(armored)
    fields: dict[str, bytes | int] = {
        "magic": blob[:6],
        "version": struct.unpack(">I", blob[6:10])[0],
    }
    pos = 10
    for name in ("publickey", "namespace", "reserved", "hash_algorithm", "signature"):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        fields[name] = blob[pos + 4 : pos + 4 + length]
        pos += 4 + length
    fields.update(changes)
    magic, version = fields["magic"], fields["version"]
    assert isinstance(magic, bytes)
    assert isinstance(version, int)
    out = magic + struct.pack(">I", version)
    for name in ("publickey", "namespace", "reserved", "hash_algorithm", "signature"):
        value = fields[name]
        assert isinstance(value, bytes)
        out += struct.pack(">I", len(value)) + value
    return armor(out)


# ---------------------------------------------------------------------------
# keys


def test_load_plain_key_matches_ssh_keygen(keys: Keys) -> None:
    key = sshsig.load_signing_key(keys.plain)
    assert key.public_key_line == keys.pub(keys.plain)
    listing = keygen("-l", "-f", str(keys.plain) + ".pub").stdout.decode()
    assert listing.split()[1] == key.fingerprint
    assert key.comment == "plain"


def test_key_repr_never_shows_private_bytes(keys: Keys) -> None:
    key = sshsig.load_signing_key(keys.plain)
    seed = key.private_key.private_bytes_raw()
    for text in (repr(key), str(key)):
        assert key.fingerprint in text
        assert seed.hex() not in text
        assert base64.b64encode(seed).decode() not in text
        assert str(list(seed)) not in text


def test_encrypted_key_needs_its_passphrase(keys: Keys) -> None:
    key = sshsig.load_signing_key(keys.encrypted, PASSPHRASE)
    assert key.public_key_line == keys.pub(keys.encrypted)

    with pytest.raises(SignatureError) as missing:
        sshsig.load_signing_key(keys.encrypted)
    assert "passphrase-protected" in str(missing.value)
    assert str(keys.encrypted) in str(missing.value)
    assert missing.value.hint is not None
    assert "LOCKSHIP_KEY_PASSPHRASE" in missing.value.hint

    with pytest.raises(SignatureError, match="wrong passphrase"):
        sshsig.load_signing_key(keys.encrypted, b"")

    wrong = b"not-the-passphrase-" + PASSPHRASE[:5]
    with pytest.raises(SignatureError) as bad:
        sshsig.load_signing_key(keys.encrypted, wrong)
    assert "wrong passphrase" in str(bad.value)
    for secret in (PASSPHRASE, wrong):
        for text in (str(bad.value), repr(bad.value), bad.value.hint or ""):
            assert secret.decode() not in text


@pytest.mark.parametrize("cipher", ["aes256-gcm@openssh.com", "aes256-cbc", "aes128-ctr"])
def test_encrypted_key_other_ciphers(tmp_path: Path, cipher: str) -> None:
    path = make_key(tmp_path / "k", "-Z", cipher, passphrase="pw")
    key = sshsig.load_signing_key(path, b"pw")
    assert key.public_key_line == path.with_name("k.pub").read_text().strip()
    with pytest.raises(SignatureError, match="wrong passphrase"):
        sshsig.load_signing_key(path, b"px")


def test_passphrase_is_ignored_for_unencrypted_key(keys: Keys) -> None:
    assert sshsig.load_signing_key(keys.plain, b"whatever").comment == "plain"


def test_rsa_key_file_is_refused_clearly(keys: Keys, tmp_path: Path) -> None:
    with pytest.raises(InputError) as openssh_format:
        sshsig.load_signing_key(keys.rsa)
    assert "'ssh-rsa'" in str(openssh_format.value)
    assert openssh_format.value.where == str(keys.rsa)

    pem = make_key(tmp_path / "pem", "-b", "2048", "-m", "PEM", key_type="rsa")
    with pytest.raises(InputError) as pem_format:
        sshsig.load_signing_key(pem)
    assert "RSA" in str(pem_format.value)
    assert pem_format.value.where == str(pem)

    with pytest.raises(InputError, match="public key"):
        sshsig.load_signing_key(keys.plain.with_name("plain.pub"))
    with pytest.raises(InputError, match="cannot read"):
        sshsig.load_signing_key(tmp_path / "missing")


def test_corrupt_key_file_is_input_error(keys: Keys, tmp_path: Path) -> None:
    lines = keys.plain.read_text().splitlines()
    bad = tmp_path / "bad"
    bad.write_text("\n".join([lines[0], lines[1][:-4] + "AAAA", *lines[2:]]) + "\n")
    with pytest.raises(InputError) as exc:
        sshsig.load_signing_key(bad)
    assert exc.value.where == str(bad)


# ---------------------------------------------------------------------------
# interoperability, both ways


@pytest.mark.parametrize("hash_alg", ["sha512", "sha256"])
def test_sign_is_byte_identical_to_ssh_keygen(keys: Keys, tmp_path: Path, hash_alg: str) -> None:
    data = b"lockship bundle manifest\n" * 100
    ours = sshsig.sign(data, sshsig.load_signing_key(keys.plain), hash_alg=hash_alg)
    theirs = keygen_sign(keys.plain, data, tmp_path, "lockship", "-O", f"hashalg={hash_alg}")
    assert ours == theirs
    assert ours.startswith("-----BEGIN SSH SIGNATURE-----\n")
    assert ours.endswith("\n-----END SSH SIGNATURE-----\n")
    assert all(len(line) <= 70 for line in ours.splitlines())


@pytest.mark.parametrize("which", ["plain", "encrypted"])
def test_lockship_signature_passes_ssh_keygen_verify(
    keys: Keys, tmp_path: Path, which: str
) -> None:
    key_path = keys.plain if which == "plain" else keys.encrypted
    key = sshsig.load_signing_key(key_path, PASSPHRASE if which == "encrypted" else None)
    data = os.urandom(4096)
    signature = sshsig.sign(data, key)
    proc = keygen_verify(tmp_path, data, signature, keys.allowed)
    assert proc.returncode == 0, proc.stderr
    assert b'Good "lockship" signature for release' in proc.stdout
    assert verify_both(data, signature, keys.allowed) == "release"


def test_in_memory_key_passes_ssh_keygen_verify(tmp_path: Path) -> None:
    key = sshsig.SigningKey(Ed25519PrivateKey.generate(), "ci@example")
    allowed = key.allowed_signers_line("ci@example", namespaces="lockship") + "\n"
    signature = sshsig.sign(b"x", key)
    assert keygen_verify(tmp_path, b"x", signature, allowed, identity="ci@example").returncode == 0
    assert verify_both(b"x", signature, allowed, identity="ci@example") == "ci@example"


@pytest.mark.parametrize("opts", [(), ("-O", "hashalg=sha256")])
def test_ssh_keygen_signature_passes_both_verifiers(
    keys: Keys, tmp_path: Path, opts: tuple[str, ...]
) -> None:
    data = b"\x00\x01 wheel bytes \xff" * 1000
    signature = keygen_sign(keys.plain, data, tmp_path, "lockship", *opts)
    signers = sshsig.parse_allowed_signers(keys.allowed, source="allowed_signers")
    result = sshsig.verify(data, signature, signers, identity="release")
    assert result == sshsig.VerifiedSignature(
        principal="release",
        fingerprint=sshsig.load_signing_key(keys.plain).fingerprint,
        namespace="lockship",
        allowed_by="allowed_signers:2",
    )
    assert verify_both(data, signature, keys.allowed) == "release"


def test_identity_none_finds_the_principal(keys: Keys, tmp_path: Path) -> None:
    allowed = f"alice@example.com,bob@example.com {keys.pub(keys.plain)}\n"
    signature = keygen_sign(keys.plain, b"d", tmp_path)
    assert (
        verify_both(b"d", signature, allowed, identity=None) == "alice@example.com,bob@example.com"
    )
    found = keygen(
        "-Y",
        "find-principals",
        "-f",
        str(_write(tmp_path / "a", allowed)),
        "-s",
        str(_write(tmp_path / "s", signature)),
    )
    # ssh-keygen prints one principal a line; lockship returns the field as written
    assert found.stdout.decode().split() == ["alice@example.com", "bob@example.com"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_deterministic(keys: Keys) -> None:
    key = sshsig.load_signing_key(keys.plain)
    assert sshsig.sign(b"same", key) == sshsig.sign(b"same", key)
    assert sshsig.sign(b"same", key) != sshsig.sign(b"same!", key)


def test_stream_path_and_bytes_give_the_same_signature(keys: Keys, tmp_path: Path) -> None:
    key = sshsig.load_signing_key(keys.plain)
    data = os.urandom(300_000)
    path = _write_bytes(tmp_path / "f", data)
    with path.open("rb") as stream:
        from_stream = sshsig.sign(stream, key)
    assert sshsig.sign(data, key) == sshsig.sign(path, key) == from_stream
    with path.open("rb") as stream:
        assert _sshsig_stdlib.verify_sshsig(
            stream, from_stream, keys.allowed, "release", "lockship"
        )
    assert _sshsig_stdlib.verify_sshsig(str(path), from_stream, keys.allowed, "release", "lockship")


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_large_file_streams(keys: Keys, tmp_path: Path) -> None:
    big = tmp_path / "big.whl"
    block = os.urandom(1024 * 1024)
    with big.open("wb") as handle:
        for i in range(50):
            handle.write(block[i:] + block[:i])
    key = sshsig.load_signing_key(keys.plain)
    signature = sshsig.sign(big, key)
    assert verify_both(big, signature, keys.allowed) == "release"
    with big.open("rb") as stdin:
        (tmp_path / "a").write_text(keys.allowed)
        (tmp_path / "s").write_text(signature)
        proc = subprocess.run(
            [
                SSH_KEYGEN,
                "-Y",
                "verify",
                "-f",
                str(tmp_path / "a"),
                "-I",
                "release",
                "-n",
                "lockship",
                "-s",
                str(tmp_path / "s"),
            ],
            stdin=stdin,
            capture_output=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr


def test_verify_file(keys: Keys, tmp_path: Path) -> None:
    key = sshsig.load_signing_key(keys.plain)
    data = _write_bytes(tmp_path / "data", b"payload")
    sig = _write(tmp_path / "data.sig", sshsig.sign(data, key))
    allowed = _write(tmp_path / "allowed_signers", keys.allowed)
    assert sshsig.verify_file(data, sig, allowed, identity="release").allowed_by == f"{allowed}:2"
    data.write_bytes(b"payloaD")
    with pytest.raises(SignatureError) as exc:
        sshsig.verify_file(data, sig, allowed, identity="release")
    assert exc.value.where == str(sig)


def test_shared_code_errors_keep_their_lockship_types(keys: Keys, tmp_path: Path) -> None:
    """sshsig runs _sshsig_stdlib's checks; SshsigError.kind picks the lockship error type."""
    key = sshsig.load_signing_key(keys.plain)
    signature = sshsig.sign(b"data", key)
    signers = sshsig.parse_allowed_signers(keys.allowed, source="a")
    missing = tmp_path / "missing"
    for unreadable in (
        lambda: sshsig.sign(missing, key),
        lambda: sshsig.verify(missing, signature, signers, identity="release"),
    ):
        with pytest.raises(FilesystemError) as io_error:
            unreadable()
        assert io_error.value.where == str(missing)
        assert io_error.value.message.startswith("cannot read: ")
    with pytest.raises(SshsigError) as stdlib_io:
        _sshsig_stdlib.verify_sshsig(str(missing), signature, keys.allowed, "release", "lockship")
    assert (stdlib_io.value.kind, stdlib_io.value.where) == ("io", str(missing))

    for namespace in ("", "lock\x00ship"):
        with pytest.raises(InputError, match="invalid signature namespace"):
            sshsig.verify(b"data", signature, signers, namespace=namespace)
        with pytest.raises(InputError, match="invalid signature namespace"):
            sshsig.sign(b"data", key, namespace=namespace)
        with pytest.raises(SshsigError) as stdlib_ns:
            _sshsig_stdlib.verify_sshsig(b"data", signature, keys.allowed, "release", namespace)
        assert stdlib_ns.value.kind == "input"

    with pytest.raises(SshsigError) as stdlib_line:
        _sshsig_stdlib.verify_sshsig(b"data", signature, "release\n", "release", "lockship")
    assert stdlib_line.value.kind == "input"
    with pytest.raises(SshsigError) as stdlib_sig:
        _sshsig_stdlib.verify_sshsig(b"datA", signature, keys.allowed, "release", "lockship")
    assert stdlib_sig.value.kind == "signature"


def test_unlisted_key_hint_says_where_it_is_listed(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)

    def refusal(allowed: str) -> SignatureError:
        signers = sshsig.parse_allowed_signers(allowed, source="a")
        with pytest.raises(SignatureError) as exc:
            sshsig.verify(b"data", signature, signers, identity="release")
        return exc.value

    elsewhere = refusal(f"ops {keys.pub(keys.plain)}\n")
    assert elsewhere.where is None
    assert elsewhere.hint == "it is listed for 'ops' (a:1)"
    unknown = refusal(f"release {keys.pub(keys.other)}\n")
    assert unknown.hint == "add its public key to allowed_signers if you trust it"
    expired = refusal(f'release valid-before="20200101Z" {keys.pub(keys.plain)}\n')
    assert (expired.where, expired.hint) == ("a:1", None)


def test_allowed_signer_is_the_stdlib_entry_as_a_frozen_dataclass(keys: Keys) -> None:
    text = f'r,s namespaces="x",valid-after="20200101Z" {keys.pub(keys.plain)} c  d\n'
    (signer,) = sshsig.parse_allowed_signers(text, source="a")
    (entry,) = _sshsig_stdlib._parse_allowed_signers(text, "a")
    assert {f.name: getattr(signer, f.name) for f in dataclasses.fields(signer)} == vars(entry)
    assert signer.comment == "plain c  d"
    assert (signer.where, signer.fingerprint) == ("a:1", entry.fingerprint)
    assert signer == sshsig.parse_allowed_signers(text, source="a")[0]
    assert len({signer, *sshsig.parse_allowed_signers(text, source="a")}) == 1
    assert "key_blob" not in repr(signer)
    with pytest.raises(dataclasses.FrozenInstanceError):
        signer.principals = "mallory"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# refusals: both implementations, and ssh-keygen agrees where it can


def test_tampered_data(keys: Keys, tmp_path: Path) -> None:
    data = bytearray(os.urandom(1000))
    signature = sshsig.sign(bytes(data), sshsig.load_signing_key(keys.plain))
    data[500] ^= 0x01
    refused_by_both(SignatureError, "does not match the data", bytes(data), signature, keys.allowed)
    assert keygen_verify(tmp_path, bytes(data), signature, keys.allowed).returncode != 0


def test_tampered_signature_bytes(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    inner = bytearray(struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 64))
    sig_raw = bytearray(blob_of(signature)[-64:])
    sig_raw[10] ^= 0x80
    forged = rebuild(signature, signature=bytes(inner + sig_raw))
    refused_by_both(SignatureError, "does not match the data", b"data", forged, keys.allowed)
    assert keygen_verify(tmp_path, b"data", forged, keys.allowed).returncode != 0


def test_signed_by_another_key(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.other, b"data", tmp_path)
    other_fp = sshsig.load_signing_key(keys.other).fingerprint
    message = refused_by_both(
        SignatureError,
        f"signature was made by key {other_fp}, which allowed_signers does not list "
        "for identity 'release'",
        b"data",
        signature,
        keys.allowed,
    )
    assert message.startswith("signature was made by key SHA256:")
    assert keygen_verify(tmp_path, b"data", signature, keys.allowed).returncode != 0


def test_signature_for_another_namespace(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path, "file")
    refused_by_both(
        SignatureError,
        "signature was made for namespace 'file', not 'lockship'",
        b"data",
        signature,
        keys.allowed,
    )
    assert keygen_verify(tmp_path, b"data", signature, keys.allowed).returncode != 0
    # and it is good for its own namespace
    assert verify_both(b"data", signature, keys.allowed, namespace="file") == "release"


def test_identity_not_listed(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    refused_by_both(
        SignatureError,
        "does not list for identity 'nobody'",
        b"data",
        signature,
        keys.allowed,
        identity="nobody",
    )
    proc = keygen_verify(tmp_path, b"data", signature, keys.allowed, identity="nobody")
    assert proc.returncode != 0


def test_namespaces_option_excludes_lockship(keys: Keys, tmp_path: Path) -> None:
    allowed = f'release namespaces="git" {keys.pub(keys.plain)}\n'
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    refused_by_both(
        SignatureError,
        "allowed_signers:1: key SHA256:",
        b"data",
        signature,
        allowed,
    )
    refused_by_both(
        SignatureError,
        "is not allowed to sign namespace 'lockship' (namespaces=\"git\")",
        b"data",
        signature,
        allowed,
    )
    assert keygen_verify(tmp_path, b"data", signature, allowed).returncode != 0
    allowed_ok = f'release namespaces="git,lock*" {keys.pub(keys.plain)}\n'
    assert verify_both(b"data", signature, allowed_ok) == "release"
    assert keygen_verify(tmp_path, b"data", signature, allowed_ok).returncode == 0


def test_valid_before_in_the_past(keys: Keys, tmp_path: Path) -> None:
    allowed = f'release valid-before="20200101Z" {keys.pub(keys.plain)}\n'
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    refused_by_both(
        SignatureError,
        "has expired: valid-before 2020-01-01T00:00:00Z",
        b"data",
        signature,
        allowed,
    )
    assert keygen_verify(tmp_path, b"data", signature, allowed).returncode != 0


def test_valid_after_in_the_future(keys: Keys, tmp_path: Path) -> None:
    allowed = f'release valid-after="29991231Z" {keys.pub(keys.plain)}\n'
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    refused_by_both(
        SignatureError,
        "is not valid yet: valid-after 2999-12-31T00:00:00Z",
        b"data",
        signature,
        allowed,
    )
    assert keygen_verify(tmp_path, b"data", signature, allowed).returncode != 0


@pytest.mark.parametrize(
    ("verify_time", "ok"),
    [
        ("20240101Z", False),
        ("20240102Z", True),
        ("20240630120000Z", True),
        ("20241231235959Z", True),
        ("20250101Z", False),
    ],
)
def test_validity_window_agrees_with_ssh_keygen(
    keys: Keys, tmp_path: Path, verify_time: str, ok: bool
) -> None:
    allowed = (
        f'release valid-after="202401020000Z",valid-before="20241231235959Z" '
        f"{keys.pub(keys.plain)}\n"
    )
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    d = verify_time.rstrip("Z").ljust(14, "0")
    now = datetime(
        int(d[:4]),
        int(d[4:6]),
        int(d[6:8]),
        int(d[8:10]),
        int(d[10:12]),
        int(d[12:]),
        tzinfo=timezone.utc,
    )
    proc = keygen_verify(tmp_path, b"data", signature, allowed, f"-Overify-time={verify_time}")
    assert (proc.returncode == 0) is ok, proc.stderr
    if ok:
        assert verify_both(b"data", signature, allowed, now=now) == "release"
    else:
        refused_by_both(SignatureError, "valid", b"data", signature, allowed, now=now)


def test_first_matching_line_wins_and_later_lines_can_allow(keys: Keys, tmp_path: Path) -> None:
    allowed = (
        f'release valid-before="20200101Z" {keys.pub(keys.plain)}\n'
        f'release namespaces="lockship" {keys.pub(keys.plain)}\n'
    )
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    assert verify_both(b"data", signature, allowed) == "release"
    assert keygen_verify(tmp_path, b"data", signature, allowed).returncode == 0


@pytest.mark.parametrize(
    ("armored", "expected"),
    [
        ("", "not an SSH signature"),
        ("hello world\n", "not an SSH signature"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", "truncated SSH signature: no"),
        (
            "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
            "corrupt SSH signature: invalid base64",
        ),
        (
            "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
            "corrupt SSH signature: truncated",
        ),
        (
            "-----BEGIN SSH SIGNATURE-----\nQUJDREVGAAAAAQ==\n-----END SSH SIGNATURE-----\n",
            "bad magic",
        ),
    ],
)
def test_garbage_armor(keys: Keys, tmp_path: Path, armored: str, expected: str) -> None:
    refused_by_both(SignatureError, expected, b"data", armored, keys.allowed)
    assert keygen_verify(tmp_path, b"data", armored, keys.allowed).returncode != 0


def test_truncated_armor(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    lines = signature.splitlines()
    cut = "\n".join([*lines[:3], lines[-1]]) + "\n"  # drop a base64 line
    message = refused_by_both(SignatureError, "corrupt SSH signature", b"data", cut, keys.allowed)
    assert "truncated" in message or "invalid base64" in message
    assert keygen_verify(tmp_path, b"data", cut, keys.allowed).returncode != 0
    half = signature[: len(signature) // 2]
    refused_by_both(SignatureError, "truncated SSH signature", b"data", half, keys.allowed)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": 2}, "unsupported SSH signature version 2 (expected 1)"),
        ({"magic": b"SSHSIH"}, "bad magic"),
        ({"hash_algorithm": b"md5"}, "unsupported hash algorithm 'md5'"),
        ({"namespace": b"lock\x00ship"}, "NUL byte"),
        ({"namespace": b"lockship\n\x1b[31m"}, "namespace 'lockship\\n\\x1b[31m', not"),
        ({"signature": b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x03abc"}, "signature blob"),
    ],
)
def test_malformed_fields(
    keys: Keys, tmp_path: Path, changes: dict[str, bytes | int], expected: str
) -> None:
    signature = rebuild(keygen_sign(keys.plain, b"data", tmp_path), **changes)
    refused_by_both(SignatureError, expected, b"data", signature, keys.allowed)
    assert keygen_verify(tmp_path, b"data", signature, keys.allowed).returncode != 0


def test_reserved_field_is_ignored_like_ssh_keygen(keys: Keys, tmp_path: Path) -> None:
    signature = rebuild(keygen_sign(keys.plain, b"data", tmp_path), reserved=b"future")
    assert keygen_verify(tmp_path, b"data", signature, keys.allowed).returncode == 0
    assert verify_both(b"data", signature, keys.allowed) == "release"


def test_rsa_in_allowed_signers_just_does_not_match(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    rsa_only = f"release {keys.pub(keys.rsa)}\n"
    refused_by_both(
        SignatureError, "does not list for identity 'release'", b"data", signature, rsa_only
    )
    mixed = f"release {keys.pub(keys.rsa)}\nrelease {keys.pub(keys.plain)}\n"
    assert verify_both(b"data", signature, mixed) == "release"
    (signer,) = sshsig.parse_allowed_signers(rsa_only, source="a")
    assert signer.key_type == "ssh-rsa"


def test_rsa_signature_is_refused(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.rsa, b"data", tmp_path)
    allowed = f"release {keys.pub(keys.rsa)}\n"
    assert keygen_verify(tmp_path, b"data", signature, allowed).returncode == 0  # valid for OpenSSH
    refused_by_both(
        SignatureError,
        "made with a 'ssh-rsa' key; only ssh-ed25519 is supported",
        b"data",
        signature,
        allowed,
    )


# ---------------------------------------------------------------------------
# allowed_signers parsing


def test_allowed_signers_features(keys: Keys, tmp_path: Path) -> None:
    pub = keys.pub(keys.plain)
    text = (
        "\n  # comment line\n\n"
        f'*@example.com,!mallory@example.com NameSpaces="lockship,file",valid-after="20200101" {pub}\n'
        f'"quoted principal"\t{pub}\r\n'
    )
    first, second = sshsig.parse_allowed_signers(text, source="as")
    assert (first.line, second.line) == (4, 5)
    assert first.principals == "*@example.com,!mallory@example.com"
    assert first.namespaces == "lockship,file"
    assert first.valid_after is not None
    assert first.valid_before is None
    assert first.comment == "plain"
    assert second.principals == "quoted principal"
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    assert verify_both(b"data", signature, text, identity="ci@example.com") == "ci@example.com"
    assert (
        keygen_verify(tmp_path, b"data", signature, text, identity="ci@example.com").returncode == 0
    )
    refused_by_both(
        SignatureError,
        "does not list",
        b"data",
        signature,
        text.replace('"quoted principal"', "other"),
        identity="mallory@example.com",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("release", "expected: principals [options] key-type base64-key"),
        ("release cert-authority {pub}", "cert-authority option is not supported"),
        ("release namespaces=lockship {pub}", 'the value of "namespaces" must be in double quotes'),
        ('release namespaces="a",namespaces="b" {pub}', 'multiple "namespaces" options'),
        ('release bogus="x" {pub}', "unknown option 'bogus=\"x\"'"),
        ('release valid-after="2024" {pub}', "invalid valid-after time '2024'"),
        ('release valid-after="20241301" {pub}', "invalid valid-after time"),
        (
            'release valid-after="20250101",valid-before="20240101" {pub}',
            "valid-before is not later than valid-after",
        ),
        ('release namespaces="x {pub}', "unterminated quote"),
        ('release namespaces="x",', "missing key after the options"),
        ("release ssh-ed25519", "missing base64 key after ssh-ed25519"),
        ("release ssh-ed25519 !!notbase64", "invalid base64 key"),
        ("release ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7", "key data is of type"),
        ("release ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQA=", "invalid ssh-ed25519 key"),
    ],
)
def test_allowed_signers_errors(keys: Keys, line: str, expected: str) -> None:
    text = "# ok\n" + line.format(pub=keys.pub(keys.plain)) + "\n"
    with pytest.raises(InputError) as main:
        sshsig.parse_allowed_signers(text, source="/etc/lockship/allowed_signers")
    assert main.value.where == "/etc/lockship/allowed_signers:2"
    assert expected in main.value.message
    signature = sshsig.sign(b"x", sshsig.load_signing_key(keys.plain))
    with pytest.raises(SshsigError) as stdlib:
        _sshsig_stdlib.verify_sshsig(
            b"x", signature, text, "release", "lockship", source="/etc/lockship/allowed_signers"
        )
    assert str(stdlib.value) == str(main.value)


def test_local_time_without_z(keys: Keys) -> None:
    (signer,) = sshsig.parse_allowed_signers(
        f'r valid-before="20240102030405" {keys.pub(keys.plain)}', source="a"
    )
    assert signer.valid_before == datetime(2024, 1, 2, 3, 4, 5).astimezone(timezone.utc)


# ---------------------------------------------------------------------------
# pure-Python Ed25519 and robustness


def test_pure_ed25519_agrees_with_cryptography() -> None:
    for size in (0, 1, 64, 1000):
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        message = os.urandom(size)
        signature = private.sign(message)
        assert _sshsig_stdlib.ed25519_verify(public, message, signature)
        assert not _sshsig_stdlib.ed25519_verify(public, message + b"x", signature)
        bad = bytearray(signature)
        bad[0] ^= 1
        assert not _sshsig_stdlib.ed25519_verify(public, message, bytes(bad))
        # S + L: same point equation, but non-canonical S must be refused (RFC 8032 5.1.7)
        s = int.from_bytes(signature[32:], "little") + _sshsig_stdlib._L
        if s < 2**256:
            malleated = signature[:32] + s.to_bytes(32, "little")
            assert not _sshsig_stdlib.ed25519_verify(public, message, malleated)


def test_rfc8032_test_vector_1() -> None:
    # RFC 8032 section 7.1, TEST 1 (empty message)
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert _sshsig_stdlib.ed25519_verify(public, b"", signature)


def test_pure_python_verify_is_fast(keys: Keys, tmp_path: Path) -> None:
    signature = keygen_sign(keys.plain, b"data", tmp_path)
    start = time.perf_counter()
    for _ in range(5):
        _sshsig_stdlib.verify_sshsig(b"data", signature, keys.allowed, "release", "lockship")
    assert (time.perf_counter() - start) / 5 < 0.5


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.binary(max_size=400), text=st.text(max_size=200))
def test_random_input_raises_only_own_errors(keys: Keys, junk: bytes, text: str) -> None:
    for armored in (text, armor(junk), armor(b"SSHSIG\x00\x00\x00\x01" + junk)):
        for allowed in (keys.allowed, text):
            try:
                signers = sshsig.parse_allowed_signers(allowed, source="a")
                sshsig.verify(b"data", armored, signers)
            except (SignatureError, InputError):
                pass
            with contextlib.suppress(SshsigError):
                _sshsig_stdlib.verify_sshsig(b"data", armored, allowed, None, "lockship")


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_signature_refused_identically(keys: Keys, data: st.DataObject) -> None:
    signature = sshsig.sign(b"data", sshsig.load_signing_key(keys.plain))
    blob = bytearray(blob_of(signature))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    mutated = armor(bytes(blob))
    outcomes = []
    try:
        signers = sshsig.parse_allowed_signers(keys.allowed, source="a")
        outcomes.append(sshsig.verify(b"data", mutated, signers).principal)
    except SignatureError as exc:
        outcomes.append(str(exc))
    try:
        outcomes.append(
            _sshsig_stdlib.verify_sshsig(b"data", mutated, keys.allowed, None, "lockship")
        )
    except SshsigError as exc:
        outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] != "release"


@settings(max_examples=50, deadline=None)
@given(line=st.text(alphabet=' \t"=,*!#abcnmespvlidtrfoy-0123456789Zssh-ed25519AAAA', max_size=80))
def test_random_allowed_signers_lines_parse_identically(line: str) -> None:
    try:
        main = f"ok {len(sshsig.parse_allowed_signers(line, source='a'))}"
    except InputError as exc:
        main = str(exc)
    try:
        stdlib = f"ok {len(_sshsig_stdlib._parse_allowed_signers(line, 'a'))}"
    except SshsigError as exc:
        stdlib = str(exc)
    assert main == stdlib


# ---------------------------------------------------------------------------
# the stdlib module stays embeddable and old-Python compatible


def test_stdlib_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(STDLIB_SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            assert node.module is not None
            imported.add(node.module.split(".")[0])
    assert "__future__" not in imported  # it is pasted into the middle of install.py
    stdlib = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    if stdlib is None:
        pytest.skip("sys.stdlib_module_names needs Python 3.10")
    assert imported <= set(stdlib), imported - set(stdlib)


def _old_pythons() -> list[str]:
    """Real Python 3.8 / 3.9 interpreters on this machine (not pyenv shims), oldest first."""
    found = []
    for version in ("3.8", "3.9"):
        candidates = [
            f"/usr/bin/python{version}",
            *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python"))),
        ]
        found += [c for c in candidates if os.access(c, os.X_OK)]
    return found


OLD_PYTHONS = _old_pythons()


@pytest.mark.skipif(
    not OLD_PYTHONS,
    reason="no Python 3.8/3.9 interpreter here; Debian 11's 3.9 runs it in the e2e suite",
)
@pytest.mark.parametrize("python", OLD_PYTHONS or ["none"])
def test_stdlib_module_runs_embedded_on_old_python(keys: Keys, tmp_path: Path, python: str) -> None:
    """Paste the module verbatim into a script, as install.py does, and run it."""
    data = _write_bytes(tmp_path / "data", b"wheel bytes")
    good = keygen_sign(keys.plain, b"wheel bytes", tmp_path)
    bad = keygen_sign(keys.other, b"wheel bytes", tmp_path)
    script = (
        "import sys\nPREAMBLE = 1\n"
        + STDLIB_SOURCE.read_text()
        + textwrap.dedent(
            """
            allowed = open(sys.argv[2]).read()
            print(verify_sshsig(sys.argv[1], open(sys.argv[3]).read(), allowed, "release", "lockship"))
            try:
                verify_sshsig(sys.argv[1], open(sys.argv[4]).read(), allowed, "release", "lockship")
            except SshsigError as exc:
                print("refused:", exc)
            """
        )
    )
    run = _write(tmp_path / "install_like.py", script)
    args = [
        str(data),
        str(_write(tmp_path / "a", keys.allowed)),
        str(_write(tmp_path / "g", good)),
        str(_write(tmp_path / "b", bad)),
    ]
    proc = subprocess.run(
        [python, "-I", str(run), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, (python, proc.stderr)
    out = proc.stdout.splitlines()
    assert out[0] == "release"
    assert out[1].startswith("refused: signature was made by key SHA256:")


def test_stream_for_stdlib(keys: Keys) -> None:
    signature = sshsig.sign(b"abc" * 100_000, sshsig.load_signing_key(keys.plain))
    assert (
        _sshsig_stdlib.verify_sshsig(
            io.BytesIO(b"abc" * 100_000), signature, keys.allowed, "release", "lockship"
        )
        == "release"
    )


def test_now_defaults_to_current_time(keys: Keys) -> None:
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y%m%d")
    allowed = f'release valid-before="{tomorrow}Z" {keys.pub(keys.plain)}\n'
    signature = sshsig.sign(b"d", sshsig.load_signing_key(keys.plain))
    assert verify_both(b"d", signature, allowed) == "release"


def test_crlf_armor_is_accepted(keys: Keys, tmp_path: Path) -> None:
    # A .sig checked out with Windows line endings. Newer sshsig_dearmor()
    # accepts CRLF after the header (OpenSSH 9.2 here still refuses it).
    signature = keygen_sign(keys.plain, b"data", tmp_path).replace("\n", "\r\n")
    assert verify_both(b"data", signature, keys.allowed) == "release"
