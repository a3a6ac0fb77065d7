"""OpenSSH SSHSIG signatures: what ``ssh-keygen -Y sign`` writes and ``-Y verify`` checks.

lockship signs with Ed25519 keys in OpenSSH's private key format and verifies
against an ``allowed_signers`` file (``man ssh-keygen``, "ALLOWED SIGNERS"), so
anyone can check a bundle with nothing but ``ssh-keygen``::

    ssh-keygen -Y verify -f allowed_signers -I release -n lockship -s SIG < FILE

Wire formats follow OpenSSH's ``PROTOCOL.sshsig`` (signature blob and armor)
and ``PROTOCOL.key`` (``openssh-key-v1`` private keys). Parsing signatures and
allowed_signers, pattern matching, validity windows and the order of checks
(``sshsig.c``) live in the standard-library ``_sshsig_stdlib.py``, which the
offline installer embeds; this module adds what needs ``cryptography``: key
loading, signing, and Ed25519 verification through OpenSSL. So both verifiers
refuse exactly the same things with the same messages.

.. versionadded:: 0.1
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Optional, Union

import bcrypt
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lockship._sshsig_stdlib import (
    _BEGIN,
    _END,
    _HASH_ALGS,
    _MAGIC,
    SshsigError,
    _check_allowed,
    _check_namespace,
    _check_signature,
    _ed25519_raw,
    _fingerprint,
    _is_key_type,
    _MalformedError,
    _parse_allowed_signers,
    _Reader,
    _show,
    _signed_data,
    _Signer,
    _string,
)
from lockship._sshsig_stdlib import _digest as _stdlib_digest
from lockship.errors import FilesystemError, InputError, LockshipError, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherContext

__all__ = [
    "DEFAULT_NAMESPACE",
    "AllowedSigner",
    "SigningKey",
    "VerifiedSignature",
    "fingerprint",
    "load_allowed_signers",
    "load_signing_key",
    "parse_allowed_signers",
    "read_passphrase",
    "sign",
    "verify",
    "verify_file",
]

DEFAULT_NAMESPACE = "lockship"
PASSPHRASE_HINT = "pass --passphrase-file or set LOCKSHIP_KEY_PASSPHRASE"  # noqa: S105 - a hint, not a secret

_VERSION = 1  # PROTOCOL.sshsig: the blob's uint32 version
_WRAP = 70  # sshbuf_dtob64(..., wrap=1) breaks base64 lines at 70 columns
_ED25519 = "ssh-ed25519"

# PROTOCOL.key: unencrypted and bcrypt-encrypted "openssh-key-v1" files.
_KEY_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
_KEY_END = "-----END OPENSSH PRIVATE KEY-----"
_KEY_MAGIC = b"openssh-key-v1\0"
# cipher name -> (key bytes, IV bytes, mode, AEAD tag bytes after the ciphertext)
_KEY_CIPHERS = {
    "aes128-ctr": (16, 16, "ctr", 0),
    "aes192-ctr": (24, 16, "ctr", 0),
    "aes256-ctr": (32, 16, "ctr", 0),
    "aes128-cbc": (16, 16, "cbc", 0),
    "aes192-cbc": (24, 16, "cbc", 0),
    "aes256-cbc": (32, 16, "cbc", 0),
    "aes128-gcm@openssh.com": (16, 12, "gcm", 16),
    "aes256-gcm@openssh.com": (32, 12, "gcm", 16),
}

_ERRORS: dict[str, type[LockshipError]] = {
    "input": InputError,
    "io": FilesystemError,
    "signature": SignatureError,
}


def _lockship_error(exc: SshsigError, hint: Optional[str] = None) -> LockshipError:
    """The lockship error for a refusal of the shared stdlib code (same message and where)."""
    return _ERRORS[exc.kind](exc.message, where=exc.where, hint=hint)


def fingerprint(key_blob: bytes) -> str:
    """Return ``SHA256:<base64>`` for a public key blob, as ``ssh-keygen -l`` prints it."""
    return _fingerprint(key_blob)


def _ed25519_blob(raw_public: bytes) -> bytes:
    return _string(_ED25519.encode()) + _string(raw_public)


# --------------------------------------------------------------------------
# Signing keys


@dataclass(frozen=True, eq=False, repr=False)
class SigningKey:
    """An Ed25519 private key with its OpenSSH comment.

    Build one with :func:`load_signing_key`, or directly from a
    ``cryptography`` key (``SigningKey(Ed25519PrivateKey.generate(), "ci")``).
    ``repr``/``str`` show only the fingerprint and comment.
    """

    private_key: Ed25519PrivateKey
    comment: str = ""

    @property
    def public_key_blob(self) -> bytes:
        return _ed25519_blob(self.private_key.public_key().public_bytes_raw())

    @property
    def public_key_line(self) -> str:
        """``ssh-ed25519 AAAA... comment``, as in the ``.pub`` file."""
        encoded = base64.b64encode(self.public_key_blob).decode("ascii")
        return f"{_ED25519} {encoded} {self.comment}".rstrip()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key_blob)

    def allowed_signers_line(self, principals: str, *, namespaces: Optional[str] = None) -> str:
        """One ``allowed_signers`` line trusting this key for ``principals``."""
        options = f'namespaces="{namespaces}" ' if namespaces else ""
        return f"{principals} {options}{self.public_key_line}"

    def __repr__(self) -> str:
        return f"SigningKey(fingerprint={self.fingerprint!r}, comment={self.comment!r})"


def read_passphrase(
    passphrase_file: Optional[Path], environ: Mapping[str, str] = os.environ
) -> Optional[bytes]:
    """A key's passphrase: the first line of ``passphrase_file``, else $LOCKSHIP_KEY_PASSPHRASE.

    :raises InputError: when the file cannot be read (its content is never shown).
    """
    if passphrase_file is not None:
        try:
            data = passphrase_file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", where=str(passphrase_file)) from None
        return data.splitlines()[0] if data else b""
    value = environ.get("LOCKSHIP_KEY_PASSPHRASE")
    return None if value is None else value.encode("utf-8")


def load_signing_key(path: Path, passphrase: Optional[bytes] = None) -> SigningKey:
    """Load an Ed25519 key from an OpenSSH private key file (``ssh-keygen -t ed25519``).

    :param passphrase: needed when the file is encrypted (``ssh-keygen -N``);
        ignored for an unencrypted file.
    :raises InputError: the file is unreadable, not an OpenSSH private key, or
        not Ed25519.
    :raises SignatureError: the key is encrypted and the passphrase is missing
        or wrong.
    """
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read key file: {exc.strerror or exc}", where=where) from None
    text = raw.decode("ascii", "replace")
    if _KEY_BEGIN not in text:
        raise InputError(_describe_non_openssh(text), where=where, hint=_KEYGEN_HINT)
    body = text.split(_KEY_BEGIN, 1)[1].split(_KEY_END, 1)[0]
    try:
        blob = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("corrupt OpenSSH private key: invalid base64", where=where) from None
    try:
        return _parse_openssh_key(blob, passphrase, where)
    except _MalformedError as exc:
        raise InputError(f"corrupt OpenSSH private key: {exc}", where=where) from None


_KEYGEN_HINT = "create one with: ssh-keygen -t ed25519 -f KEYFILE"


def _describe_non_openssh(text: str) -> str:
    match = re.search(r"-----BEGIN ([A-Z0-9 ]+)-----", text)
    if match:
        kind = match.group(1)
        key_type = kind.replace("PRIVATE KEY", "").strip() or "PKCS#8"
        return (
            f"unsupported key: a PEM {kind!r} file (key type {key_type}); "
            "lockship signs with Ed25519 keys in OpenSSH format only"
        )
    first = text.split(None, 1)[0] if text.strip() else ""
    if _is_key_type(first):
        return f"this is a public key ({first}); pass the private key file"
    return "not an OpenSSH private key (no '-----BEGIN OPENSSH PRIVATE KEY-----' line)"


def _parse_openssh_key(blob: bytes, passphrase: Optional[bytes], where: str) -> SigningKey:
    reader = _Reader(blob)
    if reader.take(len(_KEY_MAGIC)) != _KEY_MAGIC:
        raise _MalformedError("bad magic")
    cipher_name = reader.text().decode("ascii", "replace")
    kdf_name = reader.text().decode("ascii", "replace")
    kdf_options = reader.string()
    if reader.u32() != 1:
        raise InputError("key files holding several keys are not supported", where=where)
    public_blob = reader.string()
    encrypted = reader.string()

    # The public half is stored in the clear, so the key type can be refused
    # before any passphrase is asked for.
    key_type = _Reader(public_blob).text().decode("utf-8", "backslashreplace")
    if key_type != _ED25519:
        raise InputError(
            f"unsupported key type {key_type!r}; lockship signs with ssh-ed25519 keys only",
            where=where,
            hint=_KEYGEN_HINT,
        )
    public_raw = _ed25519_raw(public_blob)
    if public_raw is None:
        raise _MalformedError("bad ssh-ed25519 public key")

    if cipher_name == "none":
        if kdf_name != "none":
            raise _MalformedError(f"unencrypted key with KDF {_show(kdf_name)}")
        reader.end()
        plain = encrypted
        block = 8
    else:
        if cipher_name not in _KEY_CIPHERS:
            raise InputError(
                f"unsupported key encryption {_show(cipher_name)}",
                where=where,
                hint="re-encrypt it with: ssh-keygen -p -Z aes256-ctr -f KEYFILE",
            )
        if kdf_name != "bcrypt":
            raise InputError(f"unsupported key derivation {_show(kdf_name)}", where=where)
        if passphrase is None:
            raise SignatureError(
                "key is passphrase-protected and no passphrase was given",
                where=where,
                hint=PASSPHRASE_HINT,
            )
        key_len, iv_len, mode, tag_len = _KEY_CIPHERS[cipher_name]
        tag = reader.take(tag_len)
        reader.end()
        options = _Reader(kdf_options)
        salt = options.string()
        rounds = options.u32()
        options.end()
        if not passphrase:  # ssh-keygen -N "" writes an unencrypted file
            raise SignatureError(
                "wrong passphrase for the key: it is empty", where=where, hint=PASSPHRASE_HINT
            )
        if rounds < 1 or not salt:
            raise _MalformedError("bad bcrypt KDF parameters")
        derived = bcrypt.kdf(passphrase, salt, key_len + iv_len, rounds, ignore_few_rounds=True)
        plain = _decrypt(mode, derived[:key_len], derived[key_len:], tag, encrypted, where=where)
        block = 16

    # PROTOCOL.key: two equal random check words, then the key, then padding
    # 1, 2, 3, ... to the cipher block size. Unequal check words after
    # decryption mean the passphrase was wrong.
    private = _Reader(plain)
    if len(plain) % block:
        raise _MalformedError("private section is not a multiple of the block size")
    if private.u32() != private.u32():
        if cipher_name == "none":
            raise _MalformedError("check words differ")
        raise SignatureError(
            "wrong passphrase for the key", where=where, hint="check the passphrase you gave"
        )
    if private.text() != _ED25519.encode():
        raise _MalformedError("private key type differs from the public key type")
    if private.string() != public_raw:
        raise _MalformedError("private section does not match the public key")
    secret = private.string()
    comment = private.string().decode("utf-8", "backslashreplace")
    padding = plain[private.pos :]
    if padding != bytes(range(1, len(padding) + 1)):
        raise _MalformedError("bad padding")
    # ssh-ed25519 private key = 32-byte seed || 32-byte public key
    if len(secret) != 64 or secret[32:] != public_raw:
        raise _MalformedError("bad ssh-ed25519 private key")
    key = Ed25519PrivateKey.from_private_bytes(secret[:32])
    if key.public_key().public_bytes_raw() != public_raw:
        raise _MalformedError("private and public key do not belong together")
    return SigningKey(key, comment)


def _decrypt(mode: str, key: bytes, iv: bytes, tag: bytes, data: bytes, *, where: str) -> bytes:
    context: CipherContext
    if mode == "ctr":
        context = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    elif mode == "cbc":
        if len(data) % 16:
            raise _MalformedError("ciphertext is not a multiple of the block size")
        context = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    else:
        context = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    try:
        return context.update(data) + context.finalize()
    except InvalidTag:
        raise SignatureError(
            "wrong passphrase for the key", where=where, hint="check the passphrase you gave"
        ) from None


# --------------------------------------------------------------------------
# Signing


def _digest(data: Union[bytes, BinaryIO, Path], hash_alg: str) -> bytes:
    """Hash ``data`` with ``hash_alg``, reading files and streams in blocks."""
    try:
        return _stdlib_digest(data, hash_alg)
    except SshsigError as exc:
        raise _lockship_error(exc) from None


def sign(
    data: Union[bytes, BinaryIO, Path],
    key: SigningKey,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    hash_alg: str = "sha512",
) -> str:
    """Sign ``data`` and return the armored signature, byte for byte as ``ssh-keygen -Y sign``.

    Ed25519 is deterministic: the same key, data, namespace and hash give the
    same text.

    :param data: the bytes, an open binary stream, or a file path (hashed in blocks).
    :raises InputError: for an empty namespace or an unsupported ``hash_alg``.
    """
    try:
        ns = _check_namespace(namespace)
    except SshsigError as exc:
        raise _lockship_error(exc) from None
    if hash_alg not in _HASH_ALGS:
        raise InputError(f"unsupported hash algorithm {_show(hash_alg)} (use sha256 or sha512)")
    signature = key.private_key.sign(_signed_data(ns, hash_alg, _digest(data, hash_alg)))
    blob = b"".join(
        (
            _MAGIC,
            struct.pack(">I", _VERSION),
            _string(key.public_key_blob),
            _string(ns),
            _string(b""),  # reserved
            _string(hash_alg.encode("ascii")),
            _string(_ed25519_blob(signature)),  # string "ssh-ed25519", string sig[64]
        )
    )
    encoded = base64.b64encode(blob).decode("ascii")
    lines = [encoded[i : i + _WRAP] for i in range(0, len(encoded), _WRAP)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


# --------------------------------------------------------------------------
# allowed_signers (man ssh-keygen, "ALLOWED SIGNERS"), parsed by _sshsig_stdlib


@dataclass(frozen=True)
class AllowedSigner(_Signer):
    """One ``allowed_signers`` line: who may sign, with which key, for what and when.

    ``principals`` and ``namespaces`` are OpenSSH pattern-lists (``*``, ``?``,
    ``!negation``, comma-separated), kept as written. ``where``,
    ``fingerprint``, ``matches_principal()`` and ``refusal()`` come from the
    standard-library verifier, so both apply the same policy.
    """

    principals: str
    key_type: str
    key_blob: bytes = field(repr=False)
    source: str
    line: int
    namespaces: Optional[str] = None
    valid_after: Optional[datetime] = None
    valid_before: Optional[datetime] = None
    comment: str = ""


def parse_allowed_signers(text: str, *, source: str) -> list[AllowedSigner]:
    """Parse an ``allowed_signers`` file (``man ssh-keygen``, "ALLOWED SIGNERS").

    Each line is ``principals [options] key-type base64-key [comment]``; ``#``
    starts a comment line. Options: ``namespaces="a,b"``,
    ``valid-after="YYYYMMDD[HHMM[SS]][Z]"``, ``valid-before="..."``. Keys of
    types other than ssh-ed25519 are kept (they simply never match a
    lockship signature).

    :param source: the file name for messages.
    :raises InputError: at the first malformed line, with ``source:line``.
    """
    try:
        signers = _parse_allowed_signers(text, source)
    except SshsigError as exc:
        raise _lockship_error(exc) from None
    # _Signer and AllowedSigner have the same fields (vars() is exactly those).
    return [AllowedSigner(**vars(signer)) for signer in signers]


def load_allowed_signers(path: Path) -> list[AllowedSigner]:
    """Read and parse an ``allowed_signers`` file.

    :raises InputError: when it cannot be read or has a malformed line.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError("not valid UTF-8", where=f"{path}:{line}") from None
    return parse_allowed_signers(text, source=str(path))


# --------------------------------------------------------------------------
# Verification: _sshsig_stdlib's checks, with Ed25519 through OpenSSL


@dataclass(frozen=True)
class VerifiedSignature:
    """What a good signature proved: who signed, with which key, for what.

    ``principal`` is the identity asked for, or (with no identity) the
    principals field of the allowed_signers line that accepted the key.
    ``allowed_by`` is that line as ``source:line``.
    """

    principal: str
    fingerprint: str
    namespace: str
    allowed_by: str


def _ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """``_sshsig_stdlib.ed25519_verify``, computed by OpenSSL (same cofactorless equation)."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(
    data: Union[bytes, BinaryIO, Path],
    signature: str,
    allowed_signers: Sequence[AllowedSigner],
    *,
    identity: Optional[str] = None,
    namespace: str = DEFAULT_NAMESPACE,
    now: Optional[datetime] = None,
) -> VerifiedSignature:
    """Check ``signature`` over ``data`` like ``ssh-keygen -Y verify -I identity -n namespace``.

    :param identity: the principal the signer must be listed as (patterns in
        allowed_signers apply); None accepts any line that lists the key, like
        ``ssh-keygen -Y find-principals``, but still checks its options.
    :param now: the verification time for valid-after/valid-before (default:
        the current time; a naive datetime is local time).
    :raises SignatureError: with a one-line reason for any refusal.
    :raises InputError: for an empty namespace.
    :raises FilesystemError: when the data file cannot be read.
    """
    try:
        public_blob = _check_signature(data, signature, namespace, _ed25519_verify)
    except SshsigError as exc:
        raise _lockship_error(exc) from None
    try:
        entry = _check_allowed(allowed_signers, public_blob, identity, namespace, now)
    except SshsigError as exc:
        # Only "not listed at all" has no where; say where the key is listed.
        hint = None if exc.where else _unlisted_hint(public_blob, allowed_signers)
        raise _lockship_error(exc, hint) from None
    return VerifiedSignature(
        principal=entry.principals if identity is None else identity,
        fingerprint=fingerprint(public_blob),
        namespace=namespace,
        allowed_by=entry.where,
    )


def _unlisted_hint(public_blob: bytes, allowed_signers: Sequence[AllowedSigner]) -> str:
    listed = [e for e in allowed_signers if e.key_blob == public_blob]
    if not listed:
        return "add its public key to allowed_signers if you trust it"
    return "it is listed for " + ", ".join(f"{_show(e.principals)} ({e.where})" for e in listed)


def verify_file(
    data: Path,
    signature: Path,
    allowed_signers: Path,
    *,
    identity: Optional[str] = None,
    namespace: str = DEFAULT_NAMESPACE,
    now: Optional[datetime] = None,
) -> VerifiedSignature:
    """:func:`verify` with the signature and allowed_signers read from files.

    :raises InputError: when a file cannot be read or allowed_signers is malformed.
    :raises SignatureError: as :func:`verify`, with ``where`` naming the signature file.
    """
    signers = load_allowed_signers(allowed_signers)
    try:
        text = signature.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(signature)) from None
    try:
        return verify(data, text, signers, identity=identity, namespace=namespace, now=now)
    except SignatureError as exc:
        if exc.where is None:
            exc.where = str(signature)
        raise
