# ruff: noqa: FA100 - embedded verbatim in install.py: no `from __future__` possible
"""Verify OpenSSH SSHSIG signatures (``ssh-keygen -Y verify``) with the standard library only.

The one implementation of the SSHSIG checks (blob and allowed_signers
parsing, principal patterns, validity windows, the order of the checks and
their one-line messages). It has no third-party code, so it runs on a bare
Python 3.8+ and is embedded verbatim into ``install.py``; ``lockship.sshsig``
imports it and adds only what needs ``cryptography`` (key loading, signing,
Ed25519 through OpenSSL). Only Ed25519 signing keys are accepted.

References:
  PROTOCOL.sshsig   (OpenSSH) the signature blob, armor and signed data
  sshsig.c          (OpenSSH) the order of checks, allowed_signers handling
  ssh-keygen(1)     "ALLOWED SIGNERS" file format
  RFC 4251 s.5      SSH wire encoding: uint32, string
  RFC 8032 s.5.1    Ed25519 (point decoding 5.1.3, verification 5.1.7)
"""

import base64
import binascii
import hashlib
import os
import re
import struct
from datetime import datetime, timezone
from typing import IO, Callable, Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["SshsigError", "ed25519_verify", "verify_sshsig"]

_MAGIC = b"SSHSIG"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_HASH_ALGS = ("sha256", "sha512")
_ED = b"ssh-ed25519"
_KEY_TYPES = (  # names sshkey_read() knows; any other word there starts the options
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-xmss@openssh.com",
)


class SshsigError(Exception):
    """A refused signature or a malformed input; ``str()`` is ``where: message``.

    ``kind`` says what is wrong: ``"signature"`` (refused or malformed),
    ``"input"`` (an allowed_signers line or the namespace asked for) or
    ``"io"`` (the signed data cannot be read).
    """

    def __init__(self, message: str, where: Optional[str] = None, kind: str = "signature") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


# ---------------------------------------------------------------------------
# Ed25519 verification, RFC 8032 section 5.1, in extended coordinates
# (X:Y:Z:T) with x = X/Z, y = Y/Z, x*y = T/Z (section 5.1.4).

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = Tuple[int, int, int, int]


def _ed_add(p: _Point, q: _Point) -> _Point:
    # RFC 8032 5.1.4 "add-2008-hwcd-3"; complete, so it also doubles.
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ed_mul(s: int, p: _Point) -> _Point:
    q = (0, 1, 1, 0)  # the neutral element
    while s:
        if s & 1:
            q = _ed_add(q, p)
        p = _ed_add(p, p)
        s >>= 1
    return q


def _ed_decode(s: bytes) -> Optional[_Point]:
    """RFC 8032 5.1.3: 255-bit little-endian y and the sign of x; None if invalid."""
    y = int.from_bytes(s, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:  # non-canonical encoding
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)  # candidate square root
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


_B = _ed_decode((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))  # y = 4/5, x even


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 5.1.7 Ed25519 verification (no prehash, no context).

    Uses the cofactorless equation [S]B = R + [k]A, which the RFC allows and
    which OpenSSL (behind ``cryptography``, hence ``lockship.sshsig``) and
    OpenSSH's ref10 code also use, so all three agree; S >= L is refused.
    """
    if len(public) != 32 or len(signature) != 64 or _B is None:
        return False
    a, r = _ed_decode(public), _ed_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    left, right = _ed_mul(s, _B), _ed_add(r, _ed_mul(k, a))
    # Projective equality: x1/z1 == x2/z2 and y1/z1 == y2/z2.
    return (left[0] * right[2] - right[0] * left[2]) % _P == 0 and (
        left[1] * right[2] - right[1] * left[2]
    ) % _P == 0


# ---------------------------------------------------------------------------
# SSH wire format (RFC 4251 section 5) and small helpers


class _MalformedError(ValueError):
    """A length-prefixed structure ended early, had trailing bytes or a NUL."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _MalformedError("truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def string(self) -> bytes:
        return self.take(self.u32())

    def text(self) -> bytes:  # sshbuf_get_cstring(): a string without NUL bytes
        value = self.string()
        if b"\0" in value:
            raise _MalformedError("NUL byte in a text field")
        return value

    def end(self) -> None:
        if self.pos != len(self.data):
            raise _MalformedError("trailing data")


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _show(value: Union[bytes, str], limit: int = 64) -> str:
    """Quote untrusted text for a one-line message (repr escapes control chars)."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    return repr(text[:limit] + "..." if len(text) > limit else text)


def _fingerprint(blob: bytes) -> str:  # as ssh-keygen -l prints it
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _ed25519_raw(blob: bytes) -> Optional[bytes]:
    """The 32-byte key of an ``ssh-ed25519`` public key blob, else None."""
    try:
        reader = _Reader(blob)
        key_type, raw = reader.string(), reader.string()
        reader.end()
    except _MalformedError:
        return None
    return raw if key_type == _ED and len(raw) == 32 else None


def _fmt_time(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _match(value: str, pattern: str) -> bool:
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


def _match_list(value: str, patterns: str) -> bool:
    """OpenSSH match_pattern_list(): comma-separated patterns; a ``!pattern`` match vetoes."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _match(value, pattern[1:] if negated else pattern):
            if negated:
                return False
            matched = True
    return matched


# ---------------------------------------------------------------------------
# allowed_signers lines: principals, optional options, key type, base64 key,
# optional comment (ssh-keygen(1) ALLOWED SIGNERS; sshsig.c
# parse_principals_key_and_options)


class _Signer:
    """One allowed_signers line and the policy it states.

    ``lockship.sshsig.AllowedSigner`` is a frozen dataclass subclass with the
    same fields, so the checks below are the same code for both verifiers.
    """

    def __init__(
        self,
        principals: str,
        key_type: str,
        key_blob: bytes,
        source: str,
        line: int,
        *,
        namespaces: Optional[str] = None,
        valid_after: Optional[datetime] = None,
        valid_before: Optional[datetime] = None,
        comment: str = "",
    ) -> None:
        self.principals, self.key_type, self.key_blob = principals, key_type, key_blob
        self.source, self.line, self.namespaces = source, line, namespaces
        self.valid_after, self.valid_before, self.comment = valid_after, valid_before, comment

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.key_blob)

    def matches_principal(self, identity: str) -> bool:
        return _match_list(identity, self.principals)

    def refusal(self, namespace: str, when: int) -> Optional[str]:
        """Why this line does not allow a signature for ``namespace`` at ``when``, or None."""
        if self.namespaces is not None and not _match_list(namespace, self.namespaces):
            return (
                f"key {self.fingerprint} is not allowed to sign namespace {_show(namespace)} "
                f'(namespaces="{self.namespaces}")'
            )
        after = None if self.valid_after is None else int(self.valid_after.timestamp())
        before = None if self.valid_before is None else int(self.valid_before.timestamp())
        if after is not None and when < after:
            return (
                f"key {self.fingerprint} is not valid yet: valid-after {_fmt_time(after)}, "
                f"verification time {_fmt_time(when)}"
            )
        if before is not None and when > before:
            return (
                f"key {self.fingerprint} has expired: valid-before {_fmt_time(before)}, "
                f"verification time {_fmt_time(when)}"
            )
        return None


def _parse_time(options: Dict[str, str], name: str) -> Optional[datetime]:
    """misc.c parse_absolute_time(): YYYYMMDD[HHMM[SS]]; a Z or UTC suffix means UTC,
    otherwise local time (mktime), as ssh-keygen reads it."""
    if name not in options:
        return None
    value, utc = options[name], False
    if len(value) > 1 and value[-1:].upper() == "Z":
        value, utc = value[:-1], True
    elif len(value) > 3 and value[-3:].upper() == "UTC":
        value, utc = value[:-3], True
    timestamp = 0
    if re.fullmatch(r"[0-9]{8}(?:[0-9]{4}(?:[0-9]{2})?)?", value):
        d = value.ljust(14, "0")
        try:  # naive without Z: local time, as mktime() reads it
            moment = datetime(
                int(d[:4]),
                int(d[4:6]),
                int(d[6:8]),
                int(d[8:10]),
                int(d[10:12]),
                int(d[12:]),
                tzinfo=timezone.utc if utc else None,
            )
            timestamp = int(moment.timestamp())
        except (ValueError, OverflowError, OSError):
            timestamp = 0
    if timestamp <= 0:
        raise ValueError(
            f"invalid {name} time {_show(options[name])} "
            "(expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally ending in Z)"
        )
    return datetime.fromtimestamp(timestamp, timezone.utc)


def _split_options(text: str) -> Tuple[str, str]:
    """sshkey_advance_past_options(): options end at whitespace outside quotes."""
    quoted, i = False, 0
    while i < len(text) and (quoted or text[i] not in " \t"):
        if text[i] == "\\" and text[i + 1 : i + 2] == '"':
            i += 1
        elif text[i] == '"':
            quoted = not quoted
        i += 1
    if quoted:
        raise ValueError("unterminated quote in options")
    return text[:i], text[i:].lstrip(" \t")


def _parse_options(text: str) -> Dict[str, str]:
    """sshsig.c sshsigopt_parse(): name="value" clauses, comma-separated; \\" escapes."""
    found = {}  # type: Dict[str, str]
    rest = text
    while rest:
        lower = rest.lower()
        if lower.startswith("cert-authority"):
            raise ValueError(
                "the cert-authority option is not supported; list each signer's key instead"
            )
        names = [
            n for n in ("namespaces", "valid-after", "valid-before") if lower.startswith(n + "=")
        ]
        if not names:
            raise ValueError(f"unknown option {_show(rest.split(',', 1)[0])}")
        name = names[0]
        if name in found:
            raise ValueError(f'multiple "{name}" options')
        rest = rest[len(name) + 1 :]
        if not rest.startswith('"'):
            raise ValueError(f'the value of "{name}" must be in double quotes')
        value, i = [], 1
        while i < len(rest) and rest[i] != '"':
            if rest[i] == "\\" and rest[i + 1 : i + 2] == '"':
                i += 1
            value.append(rest[i])
            i += 1
        if i >= len(rest):
            raise ValueError(f'missing closing quote in "{name}"')
        found[name] = "".join(value)
        rest = rest[i + 1 :]
        if rest:
            if not rest.startswith(","):
                raise ValueError(f"unexpected text after {name}: {_show(rest)}")
            rest = rest[1:]
            if not rest:
                raise ValueError("options end with a comma")
    return found


def _split_word(text: str) -> Tuple[str, str]:
    """The first word and the rest; OpenSSH separates fields by spaces and tabs."""
    text = text.strip(" \t")
    end = len(text.split(" ", 1)[0].split("\t", 1)[0])
    return text[:end], text[end:].lstrip(" \t")


def _is_key_type(word: str) -> bool:
    return word in _KEY_TYPES or word.endswith("-cert-v01@openssh.com")


def _parse_line(line: str, source: str, number: int) -> _Signer:
    if line.startswith('"'):  # misc.c strdelimw(): the principals may be quoted
        end = line.find('"', 1)
        if end < 0:
            raise ValueError("unterminated quote in principals")
        principals, rest = line[1:end], line[end + 1 :].lstrip(" \t")
    else:
        principals, rest = _split_word(line)
    if not principals or not rest:
        raise ValueError("expected: principals [options] key-type base64-key [comment]")
    options = {}  # type: Dict[str, str]
    if not _is_key_type(_split_word(rest)[0]):
        option_text, rest = _split_options(rest)
        if not rest:
            raise ValueError("missing key after the options")
        options = _parse_options(option_text)
    key_type, rest = _split_word(rest)
    encoded, comment = _split_word(rest)
    if not _is_key_type(key_type):
        raise ValueError(f"unknown key type {_show(key_type)}")
    if not encoded:
        raise ValueError(f"missing base64 key after {key_type}")
    try:
        blob = base64.b64decode(encoded, validate=True)
        inner = _Reader(blob).text()
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64 key") from None
    if inner != key_type.encode():
        raise ValueError(f"key data is of type {_show(inner)}, not {key_type}")
    if inner == _ED and _ed25519_raw(blob) is None:
        raise ValueError("invalid ssh-ed25519 key")
    after = _parse_time(options, "valid-after")
    before = _parse_time(options, "valid-before")
    if after is not None and before is not None and before <= after:
        raise ValueError("valid-before is not later than valid-after")
    return _Signer(
        principals,
        key_type,
        blob,
        source,
        number,
        namespaces=options.get("namespaces"),
        valid_after=after,
        valid_before=before,
        comment=comment.strip(),
    )


def _parse_allowed_signers(text: str, source: str) -> List[_Signer]:
    signers = []
    for number, raw in enumerate(text.split("\n"), 1):  # getline(): LF ends a line
        line = raw.strip(" \t\r")
        if line and not line.startswith("#"):
            try:
                signers.append(_parse_line(line, source, number))
            except ValueError as exc:
                raise SshsigError(str(exc), f"{source}:{number}", "input") from None
    return signers


# ---------------------------------------------------------------------------
# The signature (PROTOCOL.sshsig) and the checks of `ssh-keygen -Y verify`


def _parse_signature(armored: str) -> Tuple[bytes, bytes, bytes, str, bytes]:
    """Return (public key blob, raw public key, namespace, hash algorithm, signature)."""
    # sshsig_dearmor(): header + LF or CRLF, base64, LF + footer.
    if not armored.startswith((_BEGIN + "\n", _BEGIN + "\r\n")):
        raise SshsigError("not an SSH signature: it does not start with " + _BEGIN)
    end = armored.find("\n" + _END, len(_BEGIN))
    if end < 0:
        raise SshsigError(f"truncated SSH signature: no {_END} line")
    try:
        body = re.sub(r"[ \t\r\n]", "", armored[len(_BEGIN) : end]).encode("ascii")
        blob = base64.b64decode(body, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise SshsigError("corrupt SSH signature: invalid base64") from None
    # Blob: byte[6] "SSHSIG", uint32 version, string publickey, string namespace,
    #       string reserved, string hash_algorithm, string signature.
    try:
        reader = _Reader(blob)
        if reader.take(6) != _MAGIC:
            raise SshsigError("corrupt SSH signature: bad magic (expected SSHSIG)")
        version = reader.u32()
        if version != 1:
            raise SshsigError(f"unsupported SSH signature version {version} (expected 1)")
        public_blob, namespace = reader.string(), reader.text()
        reader.string()  # reserved: ignored, and not part of the signed data
        hash_alg, sig_blob = reader.text(), reader.string()
        reader.end()
        key_type = _Reader(public_blob).text()
    except _MalformedError as exc:
        raise SshsigError(f"corrupt SSH signature: {exc}") from None
    if key_type != _ED:
        raise SshsigError(
            f"signature was made with a {_show(key_type)} key; only ssh-ed25519 is supported"
        )
    public_raw = _ed25519_raw(public_blob)
    if public_raw is None:
        raise SshsigError("corrupt SSH signature: bad ssh-ed25519 public key")
    try:  # ssh-ed25519 signature: string "ssh-ed25519", string sig[64]
        sig_reader = _Reader(sig_blob)
        sig_type, signature = sig_reader.text(), sig_reader.string()
        sig_reader.end()
    except _MalformedError:
        sig_type, signature = b"", b""
    if sig_type != _ED or len(signature) != 64:
        raise SshsigError("corrupt SSH signature: bad ssh-ed25519 signature blob")
    return (
        public_blob,
        public_raw,
        namespace,
        hash_alg.decode("utf-8", "backslashreplace"),
        signature,
    )


def _digest(data: Union[bytes, str, "os.PathLike[str]", IO[bytes]], hash_alg: str) -> bytes:
    digest = hashlib.new(hash_alg)
    if isinstance(data, (bytes, bytearray, memoryview)):
        digest.update(data)
        return digest.digest()
    if isinstance(data, (str, os.PathLike)):
        try:
            with open(data, "rb") as handle:  # noqa: PTH123 - no pathlib needed
                _feed(digest.update, handle)
        except OSError as exc:
            where = os.fspath(data)
            raise SshsigError(f"cannot read: {exc.strerror or exc}", where, "io") from None
        return digest.digest()
    _feed(digest.update, data)
    return digest.digest()


def _feed(update: Callable[[bytes], None], handle: IO[bytes]) -> None:
    while True:  # in blocks: a wheel can be hundreds of MB
        block = handle.read(128 * 1024)
        if not block:
            return
        update(block)


def _signed_data(namespace: bytes, hash_alg: str, message_hash: bytes) -> bytes:
    """PROTOCOL.sshsig "Signed Data": byte[6] "SSHSIG", string namespace, string
    reserved (always empty here, whatever the blob carries), string hash_algorithm,
    string H(message)."""
    fields = (namespace, b"", hash_alg.encode("ascii"), message_hash)
    return _MAGIC + b"".join(_string(x) for x in fields)


def _check_namespace(namespace: str) -> bytes:
    if not namespace or "\0" in namespace:
        raise SshsigError(f"invalid signature namespace {_show(namespace)}", kind="input")
    return namespace.encode("utf-8")


def _check_signature(
    data: Union[bytes, str, "os.PathLike[str]", IO[bytes]],
    armored: str,
    namespace: str,
    ed_verify: Callable[[bytes, bytes, bytes], bool] = ed25519_verify,
) -> bytes:
    """sshsig_wrap_verify(): namespace, then hash algorithm, then the signature.

    :param ed_verify: ``ed25519_verify(public, message, signature)`` or an equivalent.
    :returns: the signer's public key blob, still to be looked up in allowed_signers.
    """
    expected = _check_namespace(namespace)
    public_blob, public_raw, got_namespace, hash_alg, signature = _parse_signature(armored)
    # Cheap checks first: the data (maybe 700 MB) is hashed only for a
    # signature that could be accepted.
    if got_namespace != expected:
        raise SshsigError(
            f"signature was made for namespace {_show(got_namespace)}, not {_show(namespace)}"
        )
    if hash_alg not in _HASH_ALGS:
        raise SshsigError(
            f"unsupported hash algorithm {_show(hash_alg)} in signature (expected sha256 or sha512)"
        )
    signed = _signed_data(expected, hash_alg, _digest(data, hash_alg))
    if not ed_verify(public_raw, signed, signature):
        raise SshsigError(
            f"signature by key {_fingerprint(public_blob)} does not match the data: "
            "the data or the signature was altered"
        )
    return public_blob


def _check_allowed(
    signers: Sequence[_Signer],
    public_blob: bytes,
    identity: Optional[str],
    namespace: str,
    now: Optional[datetime],
) -> _Signer:
    """sshsig_check_allowed_keys(): the first line listing this key for the
    identity whose options allow the namespace and the time wins.

    A refusal names that line (``where``); "not listed at all" has no ``where``.
    """
    when = int((now or datetime.now(timezone.utc)).timestamp())
    refusal = None  # type: Optional[SshsigError]
    for entry in signers:
        if entry.key_blob != public_blob:
            continue
        if identity is not None and not entry.matches_principal(identity):
            continue
        problem = entry.refusal(namespace, when)
        if problem is None:
            return entry
        refusal = refusal or SshsigError(problem, entry.where)
    if refusal is not None:
        raise refusal
    target = "" if identity is None else f" for identity {_show(identity)}"
    raise SshsigError(
        f"signature was made by key {_fingerprint(public_blob)}, "
        f"which allowed_signers does not list{target}"
    )


def verify_sshsig(
    data_path_or_bytes: Union[bytes, str, "os.PathLike[str]", IO[bytes]],
    armored_signature: str,
    allowed_signers_text: str,
    identity: Optional[str],
    namespace: str,
    *,
    source: str = "allowed_signers",
    now: Optional[datetime] = None,
) -> str:
    """Check a signature like ``ssh-keygen -Y verify -f allowed_signers -I identity -n namespace``.

    :param data_path_or_bytes: the signed bytes, a file path, or a binary stream.
    :param identity: the principal to check; None accepts any principal the
        key is listed for (``ssh-keygen -Y find-principals``).
    :param source: the allowed_signers file name, for messages.
    :param now: verification time for valid-after/valid-before (default: now).
    :returns: ``identity``, or the principals field of the accepting line.
    :raises SshsigError: with a one-line reason for any refusal.
    """
    signers = _parse_allowed_signers(allowed_signers_text, source)
    public_blob = _check_signature(data_path_or_bytes, armored_signature, namespace)
    entry = _check_allowed(signers, public_blob, identity, namespace, now)
    return entry.principals if identity is None else identity
