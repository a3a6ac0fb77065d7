"""Verifying a signed bundle (a directory or its tar archive) before it is trusted.

Nothing the bundle says is believed before its signature is. In order:

1. the file list (``list_files`` of ``_install_script.py``): an iterative walk, at
   most :data:`MAX_DEPTH` directories deep and :data:`MAX_ENTRIES` entries;
   links, devices and FIFOs are refused;
2. the SSHSIG signature over SHA256SUMS (each read with a size cap), checked by
   :func:`lockship.sshsig.verify` as ``ssh-keygen -Y verify -n lockship -I
   <identity>`` would (allowed_signers, identity, namespace, validity); a bad
   signature stops here, with nothing else read;
3. SHA256SUMS (at most :data:`MAX_SUMS_LINES` lines of :data:`MAX_SUMS_LINE`
   characters) against the file list: no file missing, none extra;
4. the size and nesting depth of manifest.json and bundle.json, and the size
   and whitespace runs of the requirement files, so that no parser below can
   be made to recurse or backtrack without bound;
5. the files: ``check_bundle`` from ``_install_script.py``, the very code the
   bundle's ``install.py`` runs offline (SHA256SUMS hashes, manifest.json
   sizes, and the pins of requirements.txt against the wheels and manifest.json);
6. what needs lockship's own parsers: bundle.json and manifest.json against
   their models and each other, each wheel's file name and
   ``*.dist-info/METADATA`` against its pin, the fields of that METADATA
   resolution reads against the digest the bundle's lock recorded for the pin,
   and the dossier (``sbom.cdx.json``, ``audit.json``) against the wheels
   (:func:`lockship.dossier.dossier_problems`);
7. freshness: a bundle whose signed ``expires`` has passed is refused
   (:class:`FreshnessError`, exit 14).

A bad signature raises :class:`SignatureError`; any problem of steps 1 and 3-6
raises :class:`VerificationError` listing every problem found at that step.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ValidationError

from lockship import sshsig
from lockship._install_script import (
    MANIFEST,
    MAX_DEPTH,
    MAX_ENTRIES,
    NAMESPACE,
    RECORD,
    REQUIREMENTS,
    SAFE_PATH,
    SIGNATURE,
    SUMS,
    SUMS_LINE,
    WHEEL_KINDS,
    check_bundle,
    json_depth,
    list_files,
    read_bytes,
    show,
)
from lockship.archive import extract_archive
from lockship.dossier import dossier_problems
from lockship.errors import (
    FreshnessError,
    InputError,
    SignatureError,
    VerificationError,
)
from lockship.models import BundleRecord, Manifest, format_timestamp
from lockship.sign import metadata_problems, wheel_problems

__all__ = [
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_SUMS_LINE",
    "MAX_SUMS_LINES",
    "VerifyReport",
    "open_bundle",
    "resolve_identity",
    "verify_bundle",
    "verify_directory",
]

MAX_SUMS_LINES = MAX_ENTRIES
MAX_SUMS_LINE = 64 + 2 + 512  # "<sha256>  <path>"; a wheel's file name is under 256
_MAX_SIGNATURE = 64 * 1024  # an armored SSHSIG is under 1 KiB
_MAX_SUMS = MAX_SUMS_LINES * (MAX_SUMS_LINE + 1)
_MAX_JSON = 64 * 1024 * 1024
_MAX_JSON_DEPTH = 32  # manifest.json and bundle.json nest 5 levels
_MAX_REQUIREMENTS = 4 * 1024 * 1024
# pip's comment pattern (lockship._install_script.COMMENT) backtracks over a run of
# whitespace for every position in it: quadratic. A longer run is refused first.
_LONG_SPACE = re.compile(r"[ \t\f\v\r]{65}")


@dataclass(frozen=True)
class VerifyReport:
    """What a successful verification covered and who signed."""

    bundle: str  # the directory or archive as given
    target: str
    files: int  # files SHA256SUMS lists, all checked
    bytes: int
    packages: int
    principal: str
    fingerprint: str
    allowed_by: str  # allowed_signers line that accepted the key, "file:line"
    # manifest.json's freshness fields (lockship.sign); older bundles: None, 0
    series: Optional[str] = None
    sequence: int = 0
    signed_at: Optional[datetime] = None
    expires: Optional[datetime] = None


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[Path]:
    """Yield the bundle directory: ``path`` itself, or an archive extracted to a temporary one.

    :raises InputError: when ``path`` is neither, or the archive is unsafe.
    """
    hint = "give the directory lockship fetch wrote (dist/<target>), or its .tar"
    if path.is_dir():
        if not (path / "bundle.json").is_file():
            raise InputError("not a bundle: no bundle.json (written by lockship fetch)",
                             where=str(path), hint=hint)
        yield path
        return
    if not path.is_file():
        raise InputError("no such bundle directory or archive", where=str(path))
    if not tarfile.is_tarfile(path):
        raise InputError("not a bundle: neither a directory nor a tar archive",
                         where=str(path), hint=hint)
    with tempfile.TemporaryDirectory(prefix="lockship-bundle-") as scratch:
        yield extract_archive(path, Path(scratch))


def _model(
    root: Path, name: str, model: type[BaseModel], problems: list[str]
) -> Optional[BaseModel]:
    try:
        return model.model_validate_json((root / name).read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        problems.append(f"{name}: {first['msg']} at '{location}'")
    except (OSError, ValueError) as exc:
        problems.append(f"{name}: unreadable: {exc}")
    return None


def resolve_identity(
    signers: Sequence[sshsig.AllowedSigner], identity: Optional[str]
) -> str:
    """The principal the signer must be listed as: ``identity``, or the only one listed.

    An organisation's allowed_signers (often also used for git commit signing)
    lists many keys; accepting any of them would let any developer sign a
    bundle. So, like ``ssh-keygen -Y verify -I``, a principal is required unless
    the file names exactly one, plainly (no pattern).

    :raises SignatureError: no identity and not exactly one plain principal.
    """
    if identity:
        return identity
    principals = sorted({p for s in signers for p in s.principals.split(",") if p})
    if len(principals) == 1 and not re.search(r"[*?!]", principals[0]):
        return principals[0]
    source = signers[0].source if signers else "allowed_signers"
    listed = ", ".join(principals[:10]) + (", ..." if len(principals) > 10 else "")
    raise SignatureError(
        f"lists {len(principals)} principals ({listed or 'none'}); say which one must "
        "have signed",
        where=source,
        hint="pass --identity NAME, the principal the reviewer listed the release key as",
    )


def _signature(
    root: Path, signers: Sequence[sshsig.AllowedSigner], identity: str
) -> tuple[sshsig.VerifiedSignature, bytes]:
    """Check SHA256SUMS.sig over SHA256SUMS; return who signed and the signed bytes."""
    try:
        signature = read_bytes(str(root / SIGNATURE), _MAX_SIGNATURE).decode("utf-8", "replace")
    except FileNotFoundError:
        raise SignatureError("missing; the bundle is not signed (lockship sign)") from None
    except OSError as exc:
        raise SignatureError(f"unreadable: {exc.strerror}") from None
    try:
        sums = read_bytes(str(root / SUMS), _MAX_SUMS)
    except OSError as exc:
        raise SignatureError(f"cannot be checked: {SUMS}: {exc.strerror}") from None
    signed = sshsig.verify(sums, signature, signers, identity=identity, namespace=NAMESPACE)
    return signed, sums


def _listed(sums: bytes, files: Sequence[str], refused: Sequence[str]) -> list[str]:
    """Problems of the signed file list against the files there: extra, missing, bounds."""
    lines = sums.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if len(lines) > MAX_SUMS_LINES:
        return [f"{SUMS}: more than {MAX_SUMS_LINES} lines"]
    problems = list(refused)
    listed = set()
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_SUMS_LINE:
            problems.append(f"{SUMS}:{number}: longer than {MAX_SUMS_LINE} characters")
            continue
        line = raw.decode("utf-8", "replace")
        match = SUMS_LINE.fullmatch(line)
        if match is None:
            problems.append(f"{SUMS}:{number}: malformed line {line[:80]!r}")
        elif not SAFE_PATH.fullmatch(match[2]) or match[2] in (SUMS, SIGNATURE):
            problems.append(f"{SUMS}:{number}: refusing path {match[2]!r}")
        else:
            listed.add(match[2])
    on_disk = set(files)
    problems += [f"{path}: missing (listed in {SUMS})" for path in sorted(listed - on_disk)]
    problems += [
        f"{show(path)}: not listed in {SUMS} (extra file)"
        for path in sorted(on_disk - listed - {SUMS, SIGNATURE})
    ]
    return problems


def _bounds(root: Path, files: Sequence[str]) -> list[str]:
    """Refuse documents that would make a parser below recurse or backtrack without bound."""
    problems = []
    for name in (MANIFEST, RECORD):
        if name not in files:
            continue  # check_bundle reports it
        try:
            data = read_bytes(str(root / name), _MAX_JSON)
        except OSError as exc:
            problems.append(f"{name}: unreadable: {exc.strerror or exc}")
            continue
        if json_depth(data.decode("utf-8", "replace")) > _MAX_JSON_DEPTH:
            problems.append(f"{name}: nested deeper than {_MAX_JSON_DEPTH} levels")
    requirements = [n for n in files if n == REQUIREMENTS or n.endswith(".txt")]
    for name in requirements:
        try:
            text = read_bytes(str(root / name), _MAX_REQUIREMENTS).decode("utf-8", "replace")
        except OSError as exc:
            problems.append(f"{name}: unreadable: {exc.strerror or exc}")
            continue
        long_space = _LONG_SPACE.search(text)
        if long_space is not None:
            line = text.count("\n", 0, long_space.start()) + 1
            problems.append(f"{name}:{line}: a run of more than 64 spaces or tabs")
    return problems


def verify_directory(
    root: Path,
    signers: Sequence[sshsig.AllowedSigner],
    *,
    identity: Optional[str],
    where: str,
    now: Optional[datetime] = None,
) -> VerifyReport:
    """Verify the bundle in ``root``; ``where`` names it in messages (the archive, if any).

    :param identity: the principal the signer must be listed as; None only when
        allowed_signers lists exactly one (:func:`resolve_identity`).
    :param now: the time expiry is checked against (default: now).
    :raises SignatureError: no identity given where one is needed, or the
        signature is missing, invalid, for another namespace, or by a key
        allowed_signers does not allow for ``identity``.
    :raises VerificationError: any other problem; all found at that step are listed.
    :raises FreshnessError: the bundle's signed expiry has passed.
    """
    principal = resolve_identity(signers, identity)
    files, refused = list_files(str(root))
    try:
        signed, sums = _signature(root, signers, principal)
    except SignatureError as exc:
        raise SignatureError(f"{SIGNATURE}: {exc}", where=where, hint=exc.hint) from None
    problems = _listed(sums, files, refused)
    if problems:
        raise VerificationError(problems, where=where)
    problems = _bounds(root, files)
    if problems:
        raise VerificationError(problems, where=where)

    # Hashing (check_bundle) and every parser below work on signed, bounded files.
    check = check_bundle(str(root))
    problems = list(check.problems)
    record = _model(root, RECORD, BundleRecord, problems) if RECORD in check.verified else None
    manifest = _model(root, MANIFEST, Manifest, problems) if MANIFEST in check.verified else None
    wheels = []
    if isinstance(manifest, Manifest):
        wheels = [
            (f.path, f.name or "", f.version or "")
            for f in manifest.files
            if f.kind in WHEEL_KINDS and f.path in check.verified
        ]
        problems += wheel_problems(root, wheels)
        problems += dossier_problems(root, manifest, check.verified)
        if isinstance(record, BundleRecord):
            if record.lock_file in check.verified:
                problems += metadata_problems(root, record)
            problems += [
                f"{MANIFEST}: {field} differs from {RECORD}"
                for field in ("lockship_version", "target", "inputs", "exclude_newer")
                if getattr(manifest, field) != getattr(record, field)
            ]
    if problems or not isinstance(manifest, Manifest):
        raise VerificationError(problems, where=where)
    moment = (now or datetime.now(tz=timezone.utc)).replace(microsecond=0)
    if manifest.expires is not None and manifest.expires <= moment:
        raise FreshnessError(
            f"expired at {format_timestamp(manifest.expires)} (series {manifest.series}, "
            f"sequence {manifest.sequence}, signed {_when(manifest.signed_at)}); "
            f"it is now {format_timestamp(moment)}",
            where=where,
            hint="ask the signer for a freshly signed bundle: an expired one may be "
            "withholding updates (a freeze attack)",
        )
    return VerifyReport(
        bundle=where,
        target=manifest.target.name,
        files=len(check.verified),
        bytes=sum(check.verified.values()),
        packages=len(wheels),
        principal=signed.principal,
        fingerprint=signed.fingerprint,
        allowed_by=signed.allowed_by,
        series=manifest.series,
        sequence=manifest.sequence,
        signed_at=manifest.signed_at,
        expires=manifest.expires,
    )


def _when(moment: Optional[datetime]) -> str:
    return format_timestamp(moment) if moment is not None else "at an unknown time"


def verify_bundle(
    path: Path,
    allowed_signers: Path,
    *,
    identity: Optional[str],
    now: Optional[datetime] = None,
) -> VerifyReport:
    """Verify a signed bundle directory or archive against an ``allowed_signers`` file.

    :param identity: the principal the signer must be listed as; None only when
        allowed_signers lists exactly one.
    :raises InputError: allowed_signers is unreadable or malformed, or the
        path is no bundle, or the archive is unsafe.
    :raises SignatureError: see :func:`verify_directory`.
    :raises VerificationError: see :func:`verify_directory`.
    :raises FreshnessError: see :func:`verify_directory`.
    """
    signers = sshsig.load_allowed_signers(allowed_signers)
    resolve_identity(signers, identity)  # before an archive is extracted
    with open_bundle(path) as root:
        return verify_directory(root, signers, identity=identity, where=str(path), now=now)
