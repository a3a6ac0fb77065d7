"""Signing a bundle: manifest.json, INSTALL.md, install.py, SHA256SUMS and its signature.

``lockship fetch`` leaves ``dist/<target>/`` with wheels, requirements.txt, the
lock and ``bundle.json``. Signing first checks that bundle: every file
bundle.json lists has its recorded size and sha256, every wheel's METADATA and
file name match it, requirements.txt pins exactly these wheels, and nothing
else is there. Then it writes, each atomically:

``manifest.json``
    what a reviewer signs off on: the target, the inputs, and every file with
    its size, sha256, kind, project, origin URL and (for wheels built from an
    sdist) the sdist's provenance;
``INSTALL.md`` and ``install.py``
    how to check and install the bundle offline, with stock tools or with a
    standard-library script;
``SHA256SUMS``
    ``sha256sum -c`` input for every file except itself and its signature;
``SHA256SUMS.sig``
    an SSHSIG signature (namespace ``lockship``) over SHA256SUMS, which
    ``ssh-keygen -Y verify`` checks.

Ed25519 signatures are deterministic, so signing the same bundle with the same
key gives byte-identical files. The private key only ever signs: nothing of it
is written or printed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Optional

from packaging.metadata import parse_email
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ValidationError

from lockship import _install_script, _probe, _sshsig_stdlib, sshsig
from lockship._fs import atomic_write_bytes, exclusive_lock
from lockship._install_script import (
    AUDIT,
    INSTALL_DOC,
    INSTALL_SCRIPT,
    MANIFEST,
    NAMESPACE,
    RECORD,
    REQUIREMENTS,
    SAFE_PATH,
    SBOM,
    SIGNATURE,
    SUMS,
    check_pins,
    list_files,
    read_text,
    render_sums,
)
from lockship._zip import FileRangeReader, dist_info_metadata_chooser, read_member
from lockship.errors import FilesystemError, InputError, IntegrityError, VerificationError
from lockship.hashing import file_digest
from lockship.models import SIGN_OUTPUTS, BundleRecord, Manifest, ManifestFile

if TYPE_CHECKING:
    from lockship.audit import AuditReport
    from lockship.dossier import DossierOptions

__all__ = [
    "SignResult",
    "metadata_problems",
    "read_record",
    "render_install_script",
    "sign_bundle",
    "to_json",
    "wheel_problems",
]

# An allowed_signers principal that means itself: no spaces, quotes, commas
# (a list) or wildcards (a pattern), so INSTALL.md's `-I` and the printed line work.
_PRINCIPAL = re.compile(r'[^\s",*?!#][^\s",*?!]*')
_Kind = Literal["lock", "requirements", "record", "install-script", "doc", "sbom", "audit"]
_DOSSIER_KINDS: dict[str, _Kind] = {SBOM: "sbom", AUDIT: "audit"}
_EMBED = re.compile(r"^# lockship-embed-begin\n.*^# lockship-embed-end\n", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_bundle` did."""

    bundle: Path
    written: tuple[Path, ...]  # in the order written
    files: int  # files SHA256SUMS covers
    principal: str
    fingerprint: str
    allowed_signers_line: str  # for the reviewer's allowed_signers file
    audit: Optional[AuditReport] = None  # when signing audited the bundle


def to_json(model: BaseModel) -> str:
    """Deterministic JSON of a model: sorted keys, indent 2, trailing newline."""
    return json.dumps(model.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


def read_record(bundle: Path) -> BundleRecord:
    """Read ``bundle.json``.

    :raises InputError: when it is missing (not a bundle) or invalid.
    """
    path = bundle / RECORD
    try:
        return BundleRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise InputError(
            "not a lockship bundle; run lockship fetch first", where=str(path)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{first['msg']} at '{location}'", where=str(path)) from None


def wheel_problems(root: Path, wheels: Iterable[tuple[str, str, str]]) -> list[str]:
    """Problems of wheels whose file name or own METADATA disagree with their pin.

    :param wheels: (path, name, version) as the bundle pins them.
    """
    problems = []
    for path, name, version in wheels:
        try:
            file_name, file_version, _, _ = parse_wheel_filename(PurePosixPath(path).name)
            pinned = Version(version)
            with (root / path).open("rb") as handle:
                member, data, _ = read_member(
                    FileRangeReader(handle), dist_info_metadata_chooser(name, version)
                )
            raw, _ = parse_email(data)
            meta_name, meta_version = raw.get("name", ""), Version(raw.get("version", ""))
        except (InvalidWheelFilename, InvalidVersion, OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        pin = f"{name}=={version}"
        if (file_name, file_version) != (canonicalize_name(name), pinned):
            problems.append(f"{path}: the file name says {file_name} {file_version}, not {pin}")
        if (canonicalize_name(meta_name), meta_version) != (canonicalize_name(name), pinned):
            problems.append(f"{path}: {member} says {meta_name} {meta_version}, not {pin}")
    return problems


def metadata_problems(root: Path, record: BundleRecord) -> list[str]:
    """Wheels whose core metadata is not the metadata the bundle's lock was resolved from.

    The lock records, per pin, the digest of the fields resolution read
    (``metadata-sha256``); fetch refuses a wheel that disagrees, and this finds
    one that got into a bundle anyway. A wheel whose name or version is wrong
    is left to ``wheel_problems``.
    """
    from lockship.lockfile import read_lock  # noqa: PLC0415 - metadata pulls in the HTTP stack
    from lockship.metadata import parse_core_metadata, read_wheel_metadata  # noqa: PLC0415

    try:
        lock = read_lock(root / record.lock_file)
    except InputError as exc:
        return [f"{record.lock_file}: {exc}"]
    expected = {(p.name, p.version): p.metadata_sha256 for p in lock.packages}
    problems = []
    for item in record.files:
        digest = expected.get((item.name, item.version))
        if digest is None:  # --include-self: lockship's own lock is not in the bundle
            continue
        try:
            meta = parse_core_metadata(
                read_wheel_metadata(root / item.path, PurePosixPath(item.path).name),
                where=item.path,
            )
        except (IntegrityError, OSError):
            continue  # unreadable: wheel_problems says so
        if (meta.name, str(meta.version)) == (canonicalize_name(item.name), item.version) and (
            meta.sha256 != digest
        ):
            problems.append(
                f"{item.path}: its METADATA is not the metadata {record.lock_file} was "
                "resolved from (Requires-Dist, Requires-Python or Provides-Extra differ)"
            )
    return problems


def render_install_script() -> str:
    """``install.py`` for a bundle: the offline installer with its imports pasted in.

    The stdlib SSHSIG verifier and ``pip_tags`` are copied verbatim, so that a
    reviewer can diff them against lockship's sources.
    """
    pasted = "\n\n".join(
        [
            "# --- lockship/_sshsig_stdlib.py, verbatim ---",
            inspect.getsource(_sshsig_stdlib),
            "# --- pip_tags() from lockship/_probe.py, verbatim ---",
            inspect.getsource(_probe.pip_tags),
            "# --- end of the pasted code ---\n",
        ]
    )
    script, count = _EMBED.subn(lambda _: pasted, inspect.getsource(_install_script))
    if count != 1:  # pragma: no cover - guards the markers in _install_script.py
        raise AssertionError("embed markers not found in _install_script.py")
    return script


def _render_install_doc(record: BundleRecord, principal: str) -> str:
    env = record.target.marker_environment
    count = len(record.files)
    return f"""# Checking and installing this bundle

{count} package{"s" if count != 1 else ""} for target {record.target.name}: \
{record.target.description}. Use Python {env["python_version"]} on \
{env["platform_system"]} {env["platform_machine"]}; the wheels were chosen for it.

## 1. Get allowed_signers from the reviewer

Get the `allowed_signers` file from the reviewer through a separate channel
(in person, your configuration management), **never from this bundle or the
medium it came on**: whoever could alter the bundle could alter that too. It
holds a line like `{principal} namespaces="{NAMESPACE}" ssh-ed25519 AAAA...`.

## 2. Check and install with stock tools

In this directory, each command must succeed before the next:

    sha256sum -c {SUMS}
    ssh-keygen -Y verify -f /path/to/allowed_signers -I {principal} -n {NAMESPACE} \\
        -s {SIGNATURE} < {SUMS}
    python3 -m venv /path/to/venv
    /path/to/venv/bin/python -m pip install --no-index --find-links wheels \\
        --require-hashes -r {REQUIREMENTS}

`sha256sum -c` does not notice extra files; pip installs only what
{REQUIREMENTS} pins by sha256.

## Or: install.py (Python 3.8+, standard library only)

    python3 {INSTALL_SCRIPT} --allowed-signers /path/to/allowed_signers \\
        --identity {principal} --venv /path/to/venv

It makes the same checks, also refuses files {SUMS} does not list, checks that
the interpreter fits the target, then runs the same pip command.
`--verify-only` checks and installs nothing. Exit codes: 6 a file check
failed, 7 bad or missing signature, 12 the interpreter does not fit.
"""


def _kinds(record: BundleRecord, where: str) -> dict[str, _Kind]:
    """Every file the bundle must hold besides wheels and the sign outputs, with its kind.

    :param where: bundle.json, for messages.
    """
    kinds: dict[str, _Kind] = {
        RECORD: "record",
        REQUIREMENTS: "requirements",
        record.lock_file: "lock",
    }
    if record.self_requirements is not None:
        kinds[record.self_requirements] = "requirements"
    for path in [*kinds, *(f.path for f in record.files)]:
        if not SAFE_PATH.fullmatch(path) or path in SIGN_OUTPUTS:
            raise InputError(f"refusing file name {path!r}", where=where)
    for file in record.files:
        if PurePosixPath(file.path).parent != PurePosixPath("wheels") or file.path in kinds:
            raise InputError(f"{file.path}: a wheel must be a wheels/*.whl file", where=where)
    return kinds


def _check_unsigned(bundle: Path, record: BundleRecord) -> dict[str, tuple[str, int]]:
    """Check what fetch left; return sha256 and size of every file SHA256SUMS will list."""
    kinds = _kinds(record, str(bundle / RECORD))
    files, refused = list_files(str(bundle))
    if refused:
        raise InputError(refused[0], where=str(bundle))
    known = {*kinds, *(f.path for f in record.files), *SIGN_OUTPUTS}
    unknown = [path for path in files if path not in known]
    if unknown:
        raise InputError(
            f"not part of the bundle: {', '.join(map(repr, unknown))}",
            where=str(bundle),
            hint=f"{RECORD} does not list them; remove them or run lockship fetch again",
        )
    missing = [path for path in kinds if path not in files]
    if missing:
        raise InputError(f"missing {', '.join(missing)}", where=str(bundle))

    digests = {path: file_digest(bundle / path) for path in kinds}
    problems = []
    for file in record.files:
        if file.path not in files:
            problems.append(f"{file.path}: missing (listed in {RECORD})")
            continue
        sha256, size = file_digest(bundle / file.path)
        digests[file.path] = (sha256, size)
        if (sha256, size) != (file.sha256, file.size):
            problems.append(
                f"{file.path}: sha256 {sha256} and size {size}, but {RECORD} "
                f"records {file.sha256} and {file.size}"
            )
    requirements = [
        (name, read_text(str(bundle), name))
        for name, kind in kinds.items()
        if kind == "requirements"
    ]
    wheels = {f.path: (f.sha256, f.name, f.version) for f in record.files}
    problems += check_pins(requirements, wheels)
    if not problems:
        problems = wheel_problems(bundle, [(f.path, f.name, f.version) for f in record.files])
        problems += metadata_problems(bundle, record)
    if problems:
        raise VerificationError(problems, where=str(bundle))
    return digests


def _manifest(
    record: BundleRecord, digests: dict[str, tuple[str, int]], dossier: Iterable[str] = ()
) -> Manifest:
    kinds: dict[str, _Kind] = {
        **_kinds(record, RECORD),
        INSTALL_DOC: "doc",
        INSTALL_SCRIPT: "install-script",
        **{name: _DOSSIER_KINDS[name] for name in dossier},
    }
    files = [
        ManifestFile(path=path, sha256=sha256, size=size, kind=kinds[path])
        for path, (sha256, size) in digests.items()
        if path in kinds
    ]
    files += [ManifestFile.model_validate(f.model_dump()) for f in record.files]
    return Manifest(
        lockship_version=record.lockship_version,
        target=record.target,
        inputs=record.inputs,
        exclude_newer=record.exclude_newer,
        lock_fingerprint=record.lock_fingerprint,
        files=tuple(sorted(files, key=lambda f: f.path)),
    )


def _digest(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)


def sign_bundle(
    bundle: Path,
    key: sshsig.SigningKey,
    *,
    identity: Optional[str],
    dossier: Optional[DossierOptions] = None,
) -> SignResult:
    """Check a fetched bundle, then write its manifest, dossier, install files and signature.

    Signing an already signed bundle replaces the sign outputs. The dossier
    (``lockship.dossier``) is the SBOM, and with ``dossier.db`` the audit; the
    licence policy and the audit are applied before anything is written.

    :param identity: the principal reviewers list the key under in
        allowed_signers (default: the key's comment).
    :raises InputError: not a bundle, unexpected or unsafe files, bad identity.
    :raises VerificationError: a file differs from bundle.json, or the pins and
        wheels disagree; nothing is written.
    :raises BusyError: another lockship process is signing this bundle.
    :raises LicensePolicyError: a licence breaks ``dossier.policy``; nothing is written.
    :raises AdvisoriesFoundError: the audit found advisories and
        ``dossier.fail_on_advisories``; nothing is written.
    """
    principal = identity or key.comment
    if not _PRINCIPAL.fullmatch(principal):
        source = "" if identity else " (the key's comment)"
        raise InputError(
            f"unusable signer identity {principal!r}{source}",
            where="--identity",
            hint="pass --identity NAME (no spaces, quotes, commas or wildcards)",
        )
    record = read_record(bundle)
    # Beside the bundle, not in it: a file inside would be an unlisted extra.
    resolved = bundle.resolve()
    lock = resolved.parent / f".{resolved.name}.lock"
    with exclusive_lock(lock, what=f"bundle {bundle}", wait=0):
        try:
            # A sign killed mid-write (kill -9) left its temporary files; they are ours.
            for name in SIGN_OUTPUTS:
                for stale in bundle.glob(f".{name}.*.tmp"):
                    stale.unlink(missing_ok=True)
            digests = _check_unsigned(bundle, record)
            from lockship.dossier import DossierOptions, make_dossier  # noqa: PLC0415 - a cycle

            made = make_dossier(bundle, dossier or DossierOptions())
        except OSError as exc:
            where = str(exc.filename or bundle)
            raise FilesystemError(f"cannot read: {exc.strerror or exc}", where=where) from None
        texts = {
            INSTALL_DOC: _render_install_doc(record, principal).encode(),
            INSTALL_SCRIPT: render_install_script().encode(),
            **made.files,
        }
        digests.update({name: _digest(data) for name, data in texts.items()})
        texts[MANIFEST] = to_json(_manifest(record, digests, made.files)).encode()
        digests[MANIFEST] = _digest(texts[MANIFEST])
        texts[SUMS] = render_sums({path: sha256 for path, (sha256, _) in digests.items()}).encode()
        texts[SIGNATURE] = sshsig.sign(texts[SUMS], key, namespace=NAMESPACE).encode()
        # A crash part-way must leave a bundle that is plainly unsigned, not one
        # whose old signature fails against new files (which looks like tampering).
        _remove(bundle / SIGNATURE)
        for name in SIGN_OUTPUTS:
            if name in texts:
                atomic_write_bytes(bundle / name, texts[name])
            else:  # audit.json of an earlier signing with a database
                _remove(bundle / name)
    return SignResult(
        bundle=bundle,
        written=tuple(bundle / name for name in SIGN_OUTPUTS),
        files=len(digests),
        principal=principal,
        fingerprint=key.fingerprint,
        allowed_signers_line=key.allowed_signers_line(principal, namespaces=NAMESPACE),
        audit=made.audit,
    )


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise FilesystemError(f"cannot remove: {exc.strerror}", where=str(path)) from None
