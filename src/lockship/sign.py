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

manifest.json also says where the bundle stands among its kind (signed with
the rest, so that an old or stale bundle cannot pass for a current one):
``series`` (the stream of bundles: ``--series``, ``[sign] series``, default the
target's name), ``sequence`` (grows with every new manifest of a series, target
and signing key; the counter lives in ``.lockship-sequence.json`` beside the
bundle directory, and ``--sequence N`` overrides it), ``signed_at``
(``--signed-at``, else ``$SOURCE_DATE_EPOCH``, else now) and ``expires``
(``--expires 30d`` or a date; null for never).

Ed25519 signatures are deterministic, so signing the same bundle with the same
key and signing time gives byte-identical files; signing an unchanged manifest
again keeps its sequence number. The private key only ever signs: nothing of it
is written or printed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
    read_bytes,
    read_text,
    render_sums,
)
from lockship._zip import dist_info_metadata_chooser, local_file, read_member
from lockship.errors import FilesystemError, InputError, IntegrityError, VerificationError
from lockship.hashing import file_digest
from lockship.models import SIGN_OUTPUTS, BundleRecord, Manifest, ManifestFile, format_timestamp

if TYPE_CHECKING:
    from lockship.audit import AuditReport
    from lockship.dossier import DossierOptions

__all__ = [
    "SEQUENCE_FILE",
    "Freshness",
    "SignResult",
    "metadata_problems",
    "parse_expires",
    "parse_time",
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
# A series names a stream of bundles in messages and file names: no spaces or quotes.
_SERIES = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")
_DURATION = re.compile(r"([1-9][0-9]{0,4})([dh])")
SEQUENCE_FILE = ".lockship-sequence.json"  # beside the bundle directory: see the module doc
_MAX_SEQUENCE_FILE = 1024 * 1024
_EMBED = re.compile(r"^# lockship-embed-begin\n.*^# lockship-embed-end\n", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Freshness:
    """What the signer says about the bundle's place in time (all default when None).

    :param series: the stream of bundles (default: the target's name).
    :param sequence: overrides the counter in :data:`SEQUENCE_FILE`.
    :param signed_at: default ``$SOURCE_DATE_EPOCH``, else now.
    :param expires: ``30d``, ``12h`` (after ``signed_at``), a date or a UTC time.
    """

    series: Optional[str] = None
    sequence: Optional[int] = None
    signed_at: Optional[datetime] = None
    expires: Optional[str] = None


def parse_time(value: str, *, where: str) -> datetime:
    """A UTC time ``YYYY-MM-DDTHH:MM:SSZ``, or a date ``YYYY-MM-DD`` (its midnight, UTC).

    :raises InputError: anything else, naming ``where``.
    """
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise InputError(
        f"not a UTC time or date: {value!r}",
        where=where,
        hint="write YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD",
    )


def parse_expires(value: str, signed_at: datetime, *, where: str = "--expires") -> datetime:
    """When a bundle signed at ``signed_at`` expires: ``30d`` / ``12h`` after it, or a time.

    >>> parse_expires("30d", datetime(2026, 1, 1, tzinfo=timezone.utc)).isoformat()
    '2026-01-31T00:00:00+00:00'

    :raises InputError: malformed, or not after ``signed_at``.
    """
    match = _DURATION.fullmatch(value)
    if match is not None:
        count, unit = int(match[1]), match[2]
        expires = signed_at + (timedelta(days=count) if unit == "d" else timedelta(hours=count))
    else:
        try:
            expires = parse_time(value, where=where)
        except InputError:
            raise InputError(
                f"not a duration or a time: {value!r}",
                where=where,
                hint="write 30d (days), 12h (hours), YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
            ) from None
    if expires <= signed_at:
        raise InputError(
            f"{value} is not after the signing time {format_timestamp(signed_at)}", where=where
        )
    return expires


def _signing_time(freshness: Freshness, environ: Mapping[str, str]) -> datetime:
    if freshness.signed_at is not None:
        return freshness.signed_at.astimezone(timezone.utc).replace(microsecond=0)
    value = environ.get("SOURCE_DATE_EPOCH", "")
    if value:
        if not value.isdigit():
            raise InputError(f"not a number of seconds: {value!r}", where="SOURCE_DATE_EPOCH")
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    return datetime.now(tz=timezone.utc).replace(microsecond=0)


def _read_sequences(path: Path) -> dict[str, dict[str, object]]:
    try:
        document = json.loads(read_bytes(str(path), _MAX_SEQUENCE_FILE))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(
            f"unreadable sequence counters: {exc}",
            where=str(path),
            hint="restore it, or pass --sequence N (higher than any bundle signed before)",
        ) from None
    streams = document.get("streams") if isinstance(document, dict) else None
    if not isinstance(streams, dict) or not all(
        isinstance(v, dict) and type(v.get("sequence")) is int for v in streams.values()
    ):
        raise InputError(
            "not a lockship sequence file",
            where=str(path),
            hint="restore it, or pass --sequence N (higher than any bundle signed before)",
        )
    return streams


def _next_sequence(
    streams: Mapping[str, Mapping[str, object]], stream: str, digest: str
) -> int:
    """The last sequence again for an unchanged manifest, else one more than the last."""
    entry = streams.get(stream, {})
    last = entry.get("sequence", 0)
    assert isinstance(last, int)  # noqa: S101 - checked by _read_sequences
    return last if last and entry.get("manifest") == digest else last + 1


@dataclass(frozen=True)
class SignResult:
    """What :func:`sign_bundle` did."""

    bundle: Path
    written: tuple[Path, ...]  # in the order written
    files: int  # files SHA256SUMS covers
    principal: str
    fingerprint: str
    allowed_signers_line: str  # for the reviewer's allowed_signers file
    manifest: Manifest  # as signed: series, sequence, signed_at, expires
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


def _pinned_metadata(path: Path, name: str, version: str) -> tuple[str, bytes]:
    """The pinned wheel's ``*.dist-info/METADATA``: (member name, bytes).

    ``wheel_problems`` and ``metadata_problems`` both need it; reading a big
    wheel's central directory takes a while (tensorflow lists 24,000 files), so
    the bytes are kept while the file is unchanged (same inode, size, mtime).

    :raises OSError, ValueError: when the file is unreadable or no sound wheel.
    """
    stat = path.stat()
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return _pinned_metadata_cached(path, identity, name, version)


@functools.lru_cache(maxsize=64)
def _pinned_metadata_cached(
    path: Path, _identity: tuple[int, int, int], name: str, version: str
) -> tuple[str, bytes]:
    with path.open("rb") as handle:
        return read_member(local_file(handle), dist_info_metadata_chooser(name, version))


def wheel_problems(root: Path, wheels: Iterable[tuple[str, str, str]]) -> list[str]:
    """Problems of wheels whose file name or own METADATA disagree with their pin.

    :param wheels: (path, name, version) as the bundle pins them.
    """
    problems = []
    for path, name, version in wheels:
        try:
            file_name, file_version, _, _ = parse_wheel_filename(PurePosixPath(path).name)
            pinned = Version(version)
            member, data = _pinned_metadata(root / path, name, version)
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
    from lockship.lockfile import read_lock  # noqa: PLC0415 - packaging.pylock, only for this check
    from lockship.metadata import parse_core_metadata  # noqa: PLC0415

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
            _, data = _pinned_metadata(root / item.path, item.name, item.version)
            meta = parse_core_metadata(data, where=item.path)
        except (IntegrityError, OSError, ValueError):
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
    # Nothing runs with the bundle as its current or script directory before the
    # extra-file check: `python -m venv` there would import a planted venv/.
    return f"""# Checking and installing this bundle

{count} package{"s" if count != 1 else ""} for target {record.target.name}: \
{record.target.description}. Use Python {env["python_version"]} on \
{env["platform_system"]} {env["platform_machine"]}; the wheels were chosen for it.

## 1. Get the trust kit from the reviewer

Get the reviewer's trust kit (`lockship trust-kit`: `allowed_signers`,
`install.py`, `install.py.sha256`, `README.md`) through a separate channel (in
person, your configuration management), **never from this bundle or the
medium it came on**: whoever could alter the bundle could alter that too.
`allowed_signers` holds a line like
`{principal} namespaces="{NAMESPACE}" ssh-ed25519 AAAA...`.

Run nothing from this directory yet, and no `python3` here: a file planted
beside the signed ones would run. Name everything by absolute path:

```sh
BUNDLE=/absolute/path/to/this/bundle
KIT=/absolute/path/to/the/trust-kit
VENV=/absolute/path/to/venv
```

## 2. Check the signature first

With ssh-keygen (OpenSSH 8.2 or later):

```sh
ssh-keygen -Y verify -f "$KIT/allowed_signers" -I {principal} -n {NAMESPACE} \\
    -s "$BUNDLE/{SIGNATURE}" < "$BUNDLE/{SUMS}"
```

Without ssh-keygen, with the trust kit's verifier (never the bundle's own
`{INSTALL_SCRIPT}`); it also makes every check of step 3:

```sh
(cd "$KIT" && sha256sum -c {INSTALL_SCRIPT}.sha256)
python3 -I "$KIT/{INSTALL_SCRIPT}" --bundle "$BUNDLE" --allowed-signers "$KIT/allowed_signers" \\
    --identity {principal} --verify-only
```

## 3. Then the files: every one listed, nothing else

`sha256sum -c` does not notice extra files, so the file list is compared too:

```sh
(cd "$BUNDLE" && sha256sum --strict --quiet -c {SUMS})
LISTED=$(mktemp)
cut -c67- "$BUNDLE/{SUMS}" | LC_ALL=C sort > "$LISTED"
(cd "$BUNDLE" && find . ! -type d ! -path ./{SUMS} ! -path ./{SIGNATURE}) | cut -c3- \\
    | LC_ALL=C sort | diff "$LISTED" -
```

## 4. Only then install, isolated

```sh
python3 -I -m venv "$VENV"
PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -I -m pip install --isolated --no-index \\
    --find-links "$BUNDLE/wheels" --require-hashes --no-cache-dir -r "$BUNDLE/{REQUIREMENTS}"
```

`-I` keeps the current directory, PYTHON* variables and user site-packages
out; `--isolated` and `PIP_CONFIG_FILE=/dev/null` keep PIP_* variables and
every pip configuration file out. pip installs only what {REQUIREMENTS} pins
by sha256.

## Or, steps 2 to 4 in one: the trust kit's install.py (Python 3.8+, standard library only)

```sh
(cd "$KIT" && sha256sum -c {INSTALL_SCRIPT}.sha256)
python3 -I "$KIT/{INSTALL_SCRIPT}" --bundle "$BUNDLE" --allowed-signers "$KIT/allowed_signers" \\
    --identity {principal} --venv "$VENV"
```

It checks the signature before anything else, refuses files {SUMS} does not
list, checks that the interpreter fits the target, runs the same isolated pip
command (bootstrapping pip from the bundle's own pip wheel, when the bundle
pins pip, so a Python without ensurepip will do), then checks that the venv
holds exactly the pinned versions, each matching its RECORD. It refuses an
expired bundle, or one older than the bundle it last installed into that venv
(`lockship-installed.json` there), unless `--allow-rollback`. `--verify-only`
checks and installs nothing. `--installer uv` installs with the uv wheel this
bundle pins, when it pins one: several times faster than pip. Exit codes: 3
--installer uv without a uv wheel, 6 a file check failed, 7 bad or missing
signature (or --identity needed), 12 the interpreter does not fit or the
installer failed, 14 expired or older than the bundle installed.
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
    freshness: Freshness = Freshness(),
    environ: Mapping[str, str] = os.environ,
) -> SignResult:
    """Check a fetched bundle, then write its manifest, dossier, install files and signature.

    Signing an already signed bundle replaces the sign outputs. The dossier
    (``lockship.dossier``) is the SBOM, and with ``dossier.db`` the audit; the
    licence policy and the audit are applied before anything is written.

    :param identity: the principal reviewers list the key under in
        allowed_signers (default: the key's comment).
    :param freshness: series, sequence, signing time and expiry (module doc).
    :raises InputError: not a bundle, unexpected or unsafe files, bad identity,
        series, expiry or sequence file.
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
    series = freshness.series or record.target.name
    if not _SERIES.fullmatch(series):
        raise InputError(
            f"unusable series name {series!r}",
            where="--series",
            hint="letters, digits and . _ / + - only, at most 200 characters",
        )
    signed_at = _signing_time(freshness, environ)
    expires = parse_expires(freshness.expires, signed_at) if freshness.expires else None
    # Beside the bundle, not in it: a file inside would be an unlisted extra.
    resolved = bundle.resolve()
    lock = resolved.parent / f".{resolved.name}.lock"
    counters = resolved.parent / SEQUENCE_FILE
    stream = f"{series} {record.target.name} {principal} {key.fingerprint}"
    counters_lock = counters.with_name(SEQUENCE_FILE + ".lock")
    with exclusive_lock(lock, what=f"bundle {bundle}", wait=0), exclusive_lock(
        counters_lock, what=str(counters)
    ):
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
        unnumbered = _manifest(record, digests, made.files).model_copy(
            update={"series": series, "signed_at": signed_at, "expires": expires}
        )
        body = hashlib.sha256(to_json(unnumbered).encode()).hexdigest()
        try:
            streams: Optional[dict[str, dict[str, object]]] = _read_sequences(counters)
        except InputError:
            if freshness.sequence is None:
                raise
            streams = None  # --sequence needs no counter; a damaged one is left alone
        sequence = freshness.sequence or _next_sequence(streams or {}, stream, body)
        manifest = unnumbered.model_copy(update={"sequence": sequence})
        texts[MANIFEST] = to_json(manifest).encode()
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
        last = (streams or {}).get(stream, {}).get("sequence", 0)
        assert isinstance(last, int)  # noqa: S101 - checked by _read_sequences
        if streams is not None and sequence >= last:
            streams[stream] = {"sequence": sequence, "manifest": body}
            document = {"format": 1, "streams": streams}
            text = json.dumps(document, indent=2, sort_keys=True) + "\n"
            atomic_write_bytes(counters, text.encode())
    return SignResult(
        bundle=bundle,
        written=tuple(bundle / name for name in SIGN_OUTPUTS),
        files=len(digests),
        principal=principal,
        fingerprint=key.fingerprint,
        allowed_signers_line=key.allowed_signers_line(principal, namespaces=NAMESPACE),
        manifest=manifest,
        audit=made.audit,
    )


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise FilesystemError(f"cannot remove: {exc.strerror}", where=str(path)) from None
