"""OpenSSH SSHSIG signatures: what ``ssh-keygen -Y sign`` writes and ``-Y verify`` checks.

lockship signs with Ed25519 keys in OpenSSH's private key format and verifies
against an ``allowed_signers`` file (``man ssh-keygen``, "ALLOWED SIGNERS"), so
anyone can check a bundle with nothing but ``ssh-keygen``::

    ssh-keygen -Y verify -f allowed_signers -I release -n lockship -s SIG < FILE

Wire formats follow OpenSSH's ``PROTOCOL.sshsig`` (signature blob and armor)
and ``PROTOCOL.key`` (``openssh-key-v1`` private keys); the checks and their
order follow ``sshsig.c``. ``_sshsig_stdlib.py`` repeats the verification in
pure standard-library Python for the offline installer and must refuse
exactly what this module refuses, with the same messages.

.. versionadded:: 0.1
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Optional, Union

import bcrypt
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lockship.errors import FilesystemError, InputError, SignatureError
from lockship.hashing import CHUNK

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
    "sign",
    "verify",
    "verify_file",
]

DEFAULT_NAMESPACE = "lockship"
PASSPHRASE_HINT = "pass --passphrase-file or set LOCKSHIP_KEY_PASSPHRASE"  # noqa: S105 - a hint, not a secret

# PROTOCOL.sshsig: the blob starts with this magic and a uint32 version; the
# armor lines are fixed; only these message hashes are defined.
_MAGIC = b"SSHSIG"
_VERSION = 1
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_WRAP = 70  # sshbuf_dtob64(..., wrap=1) breaks base64 lines at 70 columns
_HASH_ALGS = ("sha256", "sha512")
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

# Key type names sshkey_read() understands; anything else after the principals
# of an allowed_signers line is the options field.
_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-xmss@openssh.com",
    }
)
_CERT_SUFFIX = "-cert-v01@openssh.com"


# --------------------------------------------------------------------------
# SSH wire encoding (RFC 4251 section 5)


class _MalformedError(ValueError):
    """A length-prefixed structure ended early or had trailing bytes."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, count: int) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise _MalformedError("truncated")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.u32())

    def text(self) -> bytes:
        """An SSH string used as a C string: sshbuf_get_cstring() refuses NUL bytes."""
        value = self.string()
        if b"\0" in value:
            raise _MalformedError("NUL byte in a text field")
        return value

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)

    def end(self) -> None:
        if self._pos != len(self._data):
            raise _MalformedError("trailing data")


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _show(value: Union[bytes, str], limit: int = 64) -> str:
    """Quote untrusted text for a one-line message (repr escapes control chars)."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def fingerprint(key_blob: bytes) -> str:
    """Return ``SHA256:<base64>`` for a public key blob, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _ed25519_blob(raw_public: bytes) -> bytes:
    return _string(_ED25519.encode()) + _string(raw_public)


def _ed25519_raw(blob: bytes) -> Optional[bytes]:
    """Return the 32-byte key of an ``ssh-ed25519`` blob, or None if it is not one."""
    try:
        reader = _Reader(blob)
        key_type = reader.string()
        raw = reader.string()
        reader.end()
    except _MalformedError:
        return None
    if key_type != _ED25519.encode() or len(raw) != 32:
        return None
    return raw


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
    if first in _KEY_TYPES or first.endswith(_CERT_SUFFIX):
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
    padding = private.rest()
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
    digest = hashlib.new(hash_alg)
    if isinstance(data, (bytes, bytearray, memoryview)):
        digest.update(data)
        return digest.digest()
    if isinstance(data, Path):
        buffer = memoryview(bytearray(CHUNK))
        try:
            with data.open("rb", buffering=0) as handle:
                while count := handle.readinto(buffer):
                    digest.update(buffer[:count])
        except OSError as exc:
            raise FilesystemError(f"cannot read: {exc.strerror or exc}", where=str(data)) from None
        return digest.digest()
    while block := data.read(CHUNK):
        digest.update(block)
    return digest.digest()


def _signed_data(namespace: bytes, hash_alg: bytes, message_hash: bytes) -> bytes:
    # PROTOCOL.sshsig "Signed Data": the reserved field is always empty here,
    # whatever the signature blob carries (sshsig_wrap_verify rebuilds it so).
    return _MAGIC + _string(namespace) + _string(b"") + _string(hash_alg) + _string(message_hash)


def _check_namespace(namespace: str) -> bytes:
    if not namespace or "\0" in namespace:
        raise InputError(f"invalid signature namespace {_show(namespace)}")
    return namespace.encode("utf-8")


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
    ns = _check_namespace(namespace)
    if hash_alg not in _HASH_ALGS:
        raise InputError(f"unsupported hash algorithm {_show(hash_alg)} (use sha256 or sha512)")
    alg = hash_alg.encode("ascii")
    signature = key.private_key.sign(_signed_data(ns, alg, _digest(data, hash_alg)))
    blob = b"".join(
        (
            _MAGIC,
            struct.pack(">I", _VERSION),
            _string(key.public_key_blob),
            _string(ns),
            _string(b""),  # reserved
            _string(alg),
            _string(_string(_ED25519.encode()) + _string(signature)),
        )
    )
    encoded = base64.b64encode(blob).decode("ascii")
    lines = [encoded[i : i + _WRAP] for i in range(0, len(encoded), _WRAP)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


# --------------------------------------------------------------------------
# allowed_signers (man ssh-keygen, "ALLOWED SIGNERS")


@dataclass(frozen=True)
class AllowedSigner:
    """One ``allowed_signers`` line: who may sign, with which key, for what and when.

    ``principals`` and ``namespaces`` are OpenSSH pattern-lists (``*``, ``?``,
    ``!negation``, comma-separated), kept as written.
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

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_blob)

    def matches_principal(self, identity: str) -> bool:
        return _match_pattern_list(identity, self.principals)

    def refusal(self, namespace: str, when: int) -> Optional[str]:
        """Why this entry does not allow a signature for ``namespace`` at ``when``, or None."""
        if self.namespaces is not None and not _match_pattern_list(namespace, self.namespaces):
            return (
                f"key {self.fingerprint} is not allowed to sign namespace {_show(namespace)} "
                f'(namespaces="{self.namespaces}")'
            )
        if self.valid_after is not None and when < int(self.valid_after.timestamp()):
            return (
                f"key {self.fingerprint} is not valid yet: valid-after "
                f"{_fmt_time(int(self.valid_after.timestamp()))}, "
                f"verification time {_fmt_time(when)}"
            )
        if self.valid_before is not None and when > int(self.valid_before.timestamp()):
            return (
                f"key {self.fingerprint} has expired: valid-before "
                f"{_fmt_time(int(self.valid_before.timestamp()))}, "
                f"verification time {_fmt_time(when)}"
            )
        return None


def _fmt_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _match_pattern(value: str, pattern: str) -> bool:
    """OpenSSH match_pattern(): ``*`` any run, ``?`` one character, all else literal.

    Iterative, backtracking only to the last ``*``: O(len(value) * len(pattern)).
    """
    v = p = 0
    star, mark = -1, 0
    while v < len(value):
        if p < len(pattern) and pattern[p] == "*":
            star, mark, p = p, v, p + 1
        elif p < len(pattern) and pattern[p] in ("?", value[v]):
            v, p = v + 1, p + 1
        elif star >= 0:
            mark += 1
            v, p = mark, star + 1
        else:
            return False
    return pattern[p:].strip("*") == ""


def _match_pattern_list(value: str, patterns: str) -> bool:
    """OpenSSH match_pattern_list(): any positive match and no ``!negated`` match."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _match_pattern(value, pattern[1:] if negated else pattern):
            if negated:
                return False
            matched = True
    return matched


_TIME_RE = re.compile(r"[0-9]{8}(?:[0-9]{4}(?:[0-9]{2})?)?")


def _parse_time(value: str) -> Optional[datetime]:
    """misc.c parse_absolute_time(): YYYYMMDD[HHMM[SS]], with Z or UTC meaning UTC.

    Without a suffix the time is local, as ``ssh-keygen`` reads it (mktime).
    """
    utc = False
    if len(value) > 1 and value[-1:].upper() == "Z":
        utc, value = True, value[:-1]
    elif len(value) > 3 and value[-3:].upper() == "UTC":
        utc, value = True, value[:-3]
    if not _TIME_RE.fullmatch(value):
        return None
    digits = value.ljust(14, "0")
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    try:
        # naive on purpose when there is no Z: local time, as mktime() reads it
        moment = datetime(
            year, month, day, hour, minute, second, tzinfo=timezone.utc if utc else None
        )
        timestamp = int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None
    if timestamp <= 0:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc)


def _split_word(text: str) -> tuple[str, str]:
    """The first word and the rest; OpenSSH separates fields by spaces and tabs."""
    text = text.strip(" \t")
    end = len(text.split(" ", 1)[0].split("\t", 1)[0])
    return text[:end], text[end:].lstrip(" \t")


def _split_principals(text: str) -> tuple[str, str]:
    """misc.c strdelimw(): the first field, which may be wrapped in double quotes."""
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            raise _LineError("unterminated quote in principals")
        return text[1:end], text[end + 1 :].lstrip(" \t")
    return _split_word(text)


def _split_options(text: str) -> tuple[str, str]:
    """sshkey_advance_past_options(): the options end at whitespace outside quotes."""
    quoted = False
    i = 0
    while i < len(text) and (quoted or text[i] not in " \t"):
        if text[i] == "\\" and text[i + 1 : i + 2] == '"':
            i += 1
        elif text[i] == '"':
            quoted = not quoted
        i += 1
    if quoted:
        raise _LineError("unterminated quote in options")
    return text[:i], text[i:].lstrip(" \t")


class _LineError(ValueError):
    """A problem with one allowed_signers line; the caller adds source:line."""


def _parse_options(text: str) -> dict[str, str]:
    """sshsig.c sshsigopt_parse(): ``name="value"`` clauses separated by commas."""
    found: dict[str, str] = {}
    rest = text
    while rest:
        lower = rest.lower()
        if lower.startswith("cert-authority"):
            raise _LineError(
                "the cert-authority option is not supported; list each signer's key instead"
            )
        name = next(
            (n for n in ("namespaces", "valid-after", "valid-before") if lower.startswith(n + "=")),
            None,
        )
        if name is None:
            raise _LineError(f"unknown option {_show(rest.split(',', 1)[0])}")
        if name in found:
            raise _LineError(f'multiple "{name}" options')
        rest = rest[len(name) + 1 :]
        # misc.c opt_dequote(): the value must be quoted; \" stands for ".
        if not rest.startswith('"'):
            raise _LineError(f'the value of "{name}" must be in double quotes')
        value, i = [], 1
        while i < len(rest) and rest[i] != '"':
            if rest[i] == "\\" and rest[i + 1 : i + 2] == '"':
                i += 1
            value.append(rest[i])
            i += 1
        if i >= len(rest):
            raise _LineError(f'missing closing quote in "{name}"')
        found[name] = "".join(value)
        rest = rest[i + 1 :]
        if rest:
            if not rest.startswith(","):
                raise _LineError(f"unexpected text after {name}: {_show(rest)}")
            rest = rest[1:]
            if not rest:
                raise _LineError("options end with a comma")
    return found


def _parse_key(text: str) -> tuple[str, bytes, str]:
    """sshkey_read(): ``key-type base64-blob [comment]``; the blob must name the same type."""
    key_type, rest = _split_word(text)
    if key_type not in _KEY_TYPES and not key_type.endswith(_CERT_SUFFIX):
        raise _LineError(f"unknown key type {_show(key_type)}")
    encoded, comment = _split_word(rest)
    if not encoded:
        raise _LineError(f"missing base64 key after {key_type}")
    try:
        blob = base64.b64decode(encoded, validate=True)
        inner_type = _Reader(blob).text()
    except (binascii.Error, ValueError):
        raise _LineError("invalid base64 key") from None
    if inner_type != key_type.encode():
        raise _LineError(f"key data is of type {_show(inner_type)}, not {key_type}")
    if key_type == _ED25519 and _ed25519_raw(blob) is None:
        raise _LineError("invalid ssh-ed25519 key")
    return key_type, blob, comment.strip()


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
    signers = []
    for number, raw in enumerate(text.split("\n"), start=1):  # getline(): LF ends a line
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        try:
            signers.append(_parse_line(line, source, number))
        except _LineError as exc:
            raise InputError(str(exc), where=f"{source}:{number}") from None
    return signers


def _parse_line(line: str, source: str, number: int) -> AllowedSigner:
    principals, rest = _split_principals(line)
    if not principals or not rest:
        raise _LineError("expected: principals [options] key-type base64-key [comment]")
    options: dict[str, str] = {}
    first, _ = _split_word(rest)
    if first not in _KEY_TYPES and not first.endswith(_CERT_SUFFIX):
        option_text, rest = _split_options(rest)
        if not rest:
            raise _LineError("missing key after the options")
        options = _parse_options(option_text)
    key_type, blob, comment = _parse_key(rest)
    times: dict[str, datetime] = {}
    for name in ("valid-after", "valid-before"):
        if name in options:
            moment = _parse_time(options[name])
            if moment is None:
                raise _LineError(
                    f"invalid {name} time {_show(options[name])} "
                    "(expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z)"
                )
            times[name] = moment
    after, before = times.get("valid-after"), times.get("valid-before")
    if after is not None and before is not None and before <= after:
        raise _LineError("valid-before is not later than valid-after")
    return AllowedSigner(
        principals=principals,
        key_type=key_type,
        key_blob=blob,
        source=source,
        line=number,
        namespaces=options.get("namespaces"),
        valid_after=after,
        valid_before=before,
        comment=comment,
    )


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
# Verification


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


@dataclass(frozen=True)
class _ParsedSignature:
    public_blob: bytes
    public_raw: bytes
    namespace: bytes
    hash_alg: str
    signature: bytes


def _dearmor(text: str) -> bytes:
    """sshsig.c sshsig_dearmor(): header line, base64 body, footer line."""
    if not text.startswith(_BEGIN + "\n") and not text.startswith(_BEGIN + "\r\n"):
        raise SignatureError(f"not an SSH signature: it does not start with {_BEGIN}")
    end = text.find("\n" + _END, len(_BEGIN))
    if end < 0:
        raise SignatureError(f"truncated SSH signature: no {_END} line")
    body = re.sub(r"[ \t\r\n]", "", text[len(_BEGIN) : end])
    try:
        return base64.b64decode(body.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise SignatureError("corrupt SSH signature: invalid base64") from None


def _parse_signature(text: str) -> _ParsedSignature:
    """PROTOCOL.sshsig "Blob format", checked in sshsig.c's order."""
    blob = _dearmor(text)
    try:
        reader = _Reader(blob)
        if reader.take(len(_MAGIC)) != _MAGIC:
            raise SignatureError("corrupt SSH signature: bad magic (expected SSHSIG)")
        version = reader.u32()
        if version != _VERSION:
            raise SignatureError(f"unsupported SSH signature version {version} (expected 1)")
        public_blob = reader.string()
        namespace = reader.text()
        reader.string()  # reserved: ignored, and not part of the signed data
        hash_alg = reader.text()
        sig_blob = reader.string()
        reader.end()
        key_type = _Reader(public_blob).text()
    except _MalformedError as exc:
        raise SignatureError(f"corrupt SSH signature: {exc}") from None
    if key_type != _ED25519.encode():
        raise SignatureError(
            f"signature was made with a {_show(key_type)} key; only ssh-ed25519 is supported"
        )
    public_raw = _ed25519_raw(public_blob)
    if public_raw is None:
        raise SignatureError("corrupt SSH signature: bad ssh-ed25519 public key")
    try:
        # ssh-ed25519.c ssh_ed25519_verify(): string "ssh-ed25519", string sig[64]
        sig_reader = _Reader(sig_blob)
        sig_type = sig_reader.text()
        signature = sig_reader.string()
        sig_reader.end()
    except _MalformedError:
        sig_type, signature = b"", b""
    if sig_type != _ED25519.encode() or len(signature) != 64:
        raise SignatureError("corrupt SSH signature: bad ssh-ed25519 signature blob")
    return _ParsedSignature(
        public_blob=public_blob,
        public_raw=public_raw,
        namespace=namespace,
        hash_alg=hash_alg.decode("utf-8", "backslashreplace"),
        signature=signature,
    )


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
    """
    expected = _check_namespace(namespace)
    parsed = _parse_signature(signature)
    # Cheap checks first: the data (maybe 700 MB) is hashed only for a
    # signature that could be accepted.
    if parsed.namespace != expected:
        raise SignatureError(
            f"signature was made for namespace {_show(parsed.namespace)}, not {_show(namespace)}"
        )
    if parsed.hash_alg not in _HASH_ALGS:
        raise SignatureError(
            f"unsupported hash algorithm {_show(parsed.hash_alg)} in signature "
            "(expected sha256 or sha512)"
        )
    key_fp = fingerprint(parsed.public_blob)
    signed = _signed_data(expected, parsed.hash_alg.encode("ascii"), _digest(data, parsed.hash_alg))
    try:
        Ed25519PublicKey.from_public_bytes(parsed.public_raw).verify(parsed.signature, signed)
    except (InvalidSignature, ValueError):
        raise SignatureError(
            f"signature by key {key_fp} does not match the data: "
            "the data or the signature was altered"
        ) from None
    return _check_allowed(
        parsed.public_blob,
        key_fp,
        allowed_signers,
        identity=identity,
        namespace=namespace,
        now=now,
    )


def _check_allowed(
    public_blob: bytes,
    key_fp: str,
    allowed_signers: Sequence[AllowedSigner],
    *,
    identity: Optional[str],
    namespace: str,
    now: Optional[datetime],
) -> VerifiedSignature:
    """sshsig.c sshsig_check_allowed_keys(): the first line that allows the key wins."""
    when = int((now or datetime.now(timezone.utc)).timestamp())
    refusal: Optional[SignatureError] = None
    for entry in allowed_signers:
        if entry.key_blob != public_blob:
            continue
        if identity is not None and not entry.matches_principal(identity):
            continue
        problem = entry.refusal(namespace, when)
        if problem is None:
            return VerifiedSignature(
                principal=entry.principals if identity is None else identity,
                fingerprint=key_fp,
                namespace=namespace,
                allowed_by=entry.where,
            )
        refusal = refusal or SignatureError(problem, where=entry.where)
    if refusal is not None:
        raise refusal
    listed = [e for e in allowed_signers if e.key_blob == public_blob]
    hint = (
        "it is listed for " + ", ".join(f"{_show(e.principals)} ({e.where})" for e in listed)
        if listed
        else "add its public key to allowed_signers if you trust it"
    )
    target = "" if identity is None else f" for identity {_show(identity)}"
    raise SignatureError(
        f"signature was made by key {key_fp}, which allowed_signers does not list{target}",
        hint=hint,
    )


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
