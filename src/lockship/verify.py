"""Verifying a signed bundle (a directory or its tar archive) before it is trusted.

Every problem is collected, each naming the file it concerns, before deciding:

* the SSHSIG signature over SHA256SUMS, checked by :func:`lockship.sshsig.verify`
  as ``ssh-keygen -Y verify -n lockship`` would (allowed_signers, identity,
  namespace, validity);
* the files: ``check_bundle`` from ``_install_script.py``, the very code the
  bundle's ``install.py`` runs offline (SHA256SUMS hashes, manifest.json sizes,
  missing and extra files, links, and the pins of requirements.txt against the
  wheels and manifest.json);
* what needs lockship's own parsers: bundle.json and manifest.json against
  their models and each other, each wheel's file name and
  ``*.dist-info/METADATA`` against its pin, the fields of that METADATA
  resolution reads against the digest the bundle's lock recorded for the pin,
  and the dossier (``sbom.cdx.json``, ``audit.json``) against the wheels
  (:func:`lockship.dossier.dossier_problems`).

A bad signature raises :class:`SignatureError` (its message lists the file
problems too); otherwise any problem raises :class:`VerificationError`.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ValidationError

from lockship import sshsig
from lockship._install_script import (
    MANIFEST,
    NAMESPACE,
    RECORD,
    SIGNATURE,
    SUMS,
    WHEEL_KINDS,
    check_bundle,
    read_bytes,
)
from lockship.archive import extract_archive
from lockship.dossier import dossier_problems
from lockship.errors import InputError, SignatureError, VerificationError
from lockship.models import BundleRecord, Manifest
from lockship.sign import metadata_problems, wheel_problems

__all__ = ["VerifyReport", "open_bundle", "verify_bundle", "verify_directory"]


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


def _signature(
    root: Path, signers: Sequence[sshsig.AllowedSigner], identity: Optional[str]
) -> sshsig.VerifiedSignature:
    try:
        signature = read_bytes(str(root / SIGNATURE)).decode("utf-8", "replace")
    except FileNotFoundError:
        raise SignatureError("missing; the bundle is not signed (lockship sign)") from None
    except OSError as exc:
        raise SignatureError(f"unreadable: {exc.strerror}") from None
    try:
        sums = read_bytes(str(root / SUMS))
    except OSError as exc:
        raise SignatureError(f"cannot be checked: {SUMS}: {exc.strerror}") from None
    return sshsig.verify(sums, signature, signers, identity=identity, namespace=NAMESPACE)


def verify_directory(
    root: Path,
    signers: Sequence[sshsig.AllowedSigner],
    *,
    identity: Optional[str],
    where: str,
) -> VerifyReport:
    """Verify the bundle in ``root``; ``where`` names it in messages (the archive, if any).

    :raises SignatureError: the signature is missing, invalid, for another
        namespace, or by a key allowed_signers does not allow for ``identity``.
    :raises VerificationError: any other problem; all are listed.
    """
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
    try:
        signed = _signature(root, signers, identity)
    except SignatureError as exc:
        lines = [f"{SIGNATURE}: {exc}"]
        if problems:
            lines += [f"{len(problems)} other problem(s) found:", *problems]
        raise SignatureError("\n  ".join(lines), where=where, hint=exc.hint) from None
    if problems or not isinstance(manifest, Manifest):
        raise VerificationError(problems, where=where)
    return VerifyReport(
        bundle=where,
        target=manifest.target.name,
        files=len(check.verified),
        bytes=sum(check.verified.values()),
        packages=len(wheels),
        principal=signed.principal,
        fingerprint=signed.fingerprint,
        allowed_by=signed.allowed_by,
    )


def verify_bundle(path: Path, allowed_signers: Path, *, identity: Optional[str]) -> VerifyReport:
    """Verify a signed bundle directory or archive against an ``allowed_signers`` file.

    :param identity: the principal the signer must be listed as; None accepts
        any principal the key is listed for.
    :raises InputError: allowed_signers is unreadable or malformed, or the
        path is no bundle, or the archive is unsafe.
    :raises SignatureError: see :func:`verify_directory`.
    :raises VerificationError: see :func:`verify_directory`.
    """
    signers = sshsig.load_allowed_signers(allowed_signers)
    with open_bundle(path) as root:
        return verify_directory(root, signers, identity=identity, where=str(path))
