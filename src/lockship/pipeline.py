"""Pipelines: ``lockship run pipelines/<name>.toml`` locks, fetches and signs every target.

A pipeline file is declarative and lives in the operator's repository::

    [pipeline]
    output = "../dist/demo"        # bundles: <output>/<target>/
    locks = "../locks/demo"        # lock files

    [lock]                         # the keys of [tool.lockship]
    requirements = ["demo.in"]
    targets = ["linux-cp39"]
    exclude-newer = "2026-11-01T00:00:00Z"

    [fetch]
    include-self = false

    [sign]
    key = "~/.ssh/lockship_ed25519"   # no key: a throwaway key is made, and the run says so
    identity = "release"
    archive = true
    series = "demo"                # the stream of bundles (default: the pipeline's name)
    expires = "30d"                # install refuses the bundle 30 days after signing

    [audit]                        # audit.json in every signed bundle (lockship.dossier)
    db = "../osv/pypa-advisory-database"   # an OSV database on disk
    fail = true                    # advisories (not ignored) fail the target; nothing signed
    ignore = { "PYSEC-2023-74" = "no proxies on the target" }

    [report]                       # <output>/<target>.report.html for the reviewer
    against = "../approved/{target}.tar"   # optional: the approved transfer

Signing applies the licence policy of ``[lock]`` (``allow-licenses``,
``deny-licenses``) and writes the SBOM into every bundle.

Relative paths are relative to the pipeline file's directory; locks record
their inputs, and the command that regenerates them, relative to the directory
above it (``Pipeline.root``), so they are the same from any directory. Runs are
incremental: a target whose inputs did not change keeps its lock without
resolving, a complete bundle is not fetched again, and a signature that still
verifies with the configured key is kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from lockship import sshsig
from lockship._fs import atomic_write_bytes, atomic_write_text, exclusive_lock
from lockship.errors import BusyError, InputError, LockshipError, SignatureError
from lockship.fetch import FetchReporter, FetchRequest, fetch
from lockship.lock import LockReporter, LockRequest, Session, lock, open_session
from lockship.lockfile import lock_paths
from lockship.options import (
    LockConfig,
    LockPlan,
    key_line,
    located,
    parse_targets,
    plan_lock,
    read_toml,
    validation_error,
)
from lockship.targets import Target

if TYPE_CHECKING:
    from lockship.audit import AuditReport
    from lockship.dossier import DossierOptions
    from lockship.sign import Freshness

__all__ = ["Pipeline", "TargetRun", "load_pipeline", "run_pipeline"]


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Table(BaseModel):
    # strict: TOML has types, so "no" is not false and "8" is not a number
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=_kebab, populate_by_name=True, strict=True
    )


class PipelineTable(_Table):
    name: Optional[str] = None
    output: str = "dist"
    locks: str = "locks"


class FetchTable(_Table):
    include_self: bool = False
    jobs: int = 8
    link_mode: Literal["clone", "copy", "hardlink"] = "clone"  # fetch.LinkMode


class SignTable(_Table):
    key: Optional[str] = None
    passphrase_file: Optional[str] = None
    identity: Optional[str] = None
    archive: bool = False
    series: Optional[str] = None  # default: the pipeline's name
    expires: Optional[str] = None  # "30d", "12h", a date or a UTC time (lockship.sign)


class AuditTable(_Table):
    db: Optional[str] = None
    fail: bool = True
    ignore: dict[str, str] = {}


class ReportTable(_Table):
    against: Optional[str] = None  # "{target}" is replaced by the target's name
    format: Literal["html", "markdown", "json"] = "html"


class PipelineFile(_Table):
    pipeline: PipelineTable = PipelineTable()
    lock: LockConfig
    fetch: FetchTable = FetchTable()
    sign: SignTable = SignTable()
    audit: AuditTable = AuditTable()
    report: Optional[ReportTable] = None


@dataclass(frozen=True)
class Pipeline:
    path: Path
    name: str
    spec: PipelineFile
    base: Path  # the pipeline file's directory: relative paths start here

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return Path(os.path.normpath(path if path.is_absolute() else self.base / path))

    @property
    def output(self) -> Path:
        return self.resolve(self.spec.pipeline.output)

    @property
    def locks(self) -> Path:
        return self.resolve(self.spec.pipeline.locks)

    @property
    def root(self) -> Path:
        """The directory above the pipeline's (the repository, for ``pipelines/<name>.toml``).

        Locks record their inputs and the command that regenerates them from
        here, so they do not depend on the directory lockship was run from.
        """
        return self.base.resolve().parent

    @property
    def command(self) -> str:
        relative = self.path.resolve().relative_to(self.root).as_posix()
        return f"lockship run {relative}"


def load_pipeline(path: Path) -> Pipeline:
    """Read and validate a pipeline file.

    :raises InputError: naming the file, the line and the key of the first problem.
    """
    text, document = read_toml(path)
    unknown = sorted(set(document) - set(PipelineFile.model_fields))
    if unknown:
        line = key_line(text, unknown[0])
        raise InputError(
            f"[{unknown[0]}]: unknown table",
            where=f"{path}:{line}" if line else str(path),
            hint="the tables are " + ", ".join(f"[{name}]" for name in PipelineFile.model_fields),
        )
    if "lock" not in document:
        raise InputError(
            "no [lock] table",
            where=str(path),
            hint="a pipeline needs at least [lock] with requirements and targets",
        )
    try:
        spec = PipelineFile.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, path=path, text=text, table=None) from None
    except InputError as exc:  # raised by a field validator (exclude-newer)
        raise located(exc, path=path, text=text, table="lock") from None
    if not spec.lock.targets:
        line = key_line(text, "targets", "lock") or key_line(text, "lock")
        raise InputError(
            "[lock] targets: no target listed",
            where=f"{path}:{line}" if line else str(path),
            hint='e.g. targets = ["linux-cp39"]',
        )
    try:
        parse_targets(spec.lock, base=path.parent)
    except InputError as exc:
        line = key_line(text, "targets", "lock")
        raise InputError(
            f"[lock] targets: {exc.message}",
            where=f"{path}:{line}" if line else str(path),
            hint=exc.hint,
        ) from None
    return Pipeline(path, spec.pipeline.name or path.stem, spec, path.parent)


# --- running -----------------------------------------------------------------------------


@dataclass
class TargetRun:
    """One row of the summary table."""

    target: str
    packages: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)
    bundle: Optional[Path] = None
    error: Optional[LockshipError] = None

    @property
    def status(self) -> str:
        return f"failed: {self.error}" if self.error else ", ".join(self.steps)


class RunReporter(LockReporter, FetchReporter, Protocol):
    """What the CLI implements to draw progress; all methods may be no-ops."""

    def note(self, message: str) -> None: ...


def run_pipeline(
    pipeline: Pipeline,
    *,
    check: bool = False,
    upgrade: bool = False,
    offline: bool = False,
    reporter: Optional[RunReporter] = None,
    cache_dir: Optional[Path] = None,
) -> list[TargetRun]:
    """Lock, fetch and sign every target of ``pipeline``; one row per target.

    A target that fails does not stop the others; its row carries the error. Only a
    bundle in use by another process (BusyError) skips the targets after it.
    With ``check``, nothing is written: each row says whether its lock is current.
    """
    plan = plan_lock(
        pipeline.spec.lock, base=pipeline.base, output_dir=pipeline.locks, inputs_base=pipeline.root
    )
    if reporter is not None:
        for note in plan.inputs.notes:  # once per run, not per target
            reporter.warning(note)
    key = None if check else _signing_key(pipeline, reporter)
    with open_session(
        plan.index_config, cache_dir=cache_dir, offline=offline, exclude_newer=plan.exclude_newer,
        jobs=max(16, pipeline.spec.fetch.jobs),  # the pool serves lock (16 threads) and fetch
    ) as session:
        return _run_targets(
            pipeline, plan, session,
            check=check, upgrade=upgrade, offline=offline, cache_dir=cache_dir, key=key,
            reporter=reporter,
        )


def _run_targets(
    pipeline: Pipeline,
    plan: LockPlan,
    session: Session,
    *,
    check: bool,
    upgrade: bool,
    offline: bool,
    cache_dir: Optional[Path],
    key: Optional[tuple[sshsig.SigningKey, str]],
    reporter: Optional[RunReporter],
) -> list[TargetRun]:
    rows = []
    busy = False
    for target in plan.targets:
        row = TargetRun(target.name)
        if busy:
            # Another process is running this pipeline too: going on to the next target
            # would overtake it there, and both runs would fail a target each.
            row.steps.append("skipped: another lockship process is running this pipeline")
            rows.append(row)
            continue
        started = time.monotonic()
        try:
            _run_target(
                pipeline, target, row,
                request=plan.request(
                    target,
                    command=pipeline.command,
                    upgrade=frozenset([":all:"] if upgrade else []),
                    offline=offline,
                    check=check,
                    reuse=not upgrade,
                    cache_dir=cache_dir,
                ),
                session=session,
                key=key,
                reporter=reporter,
            )
        except LockshipError as exc:
            row.error = exc
            busy = isinstance(exc, BusyError)
        row.seconds = time.monotonic() - started
        rows.append(row)
    return rows


def _run_target(
    pipeline: Pipeline,
    target: Target,
    row: TargetRun,
    *,
    request: LockRequest,
    session: Session,
    key: Optional[tuple[sshsig.SigningKey, str]],
    reporter: Optional[RunReporter],
) -> None:
    (result,) = lock(request, reporter, session=session)
    row.packages = len(result.lock.packages)
    if request.check:
        row.steps.append(
            "lock out of date: " + "; ".join(result.reasons) if result.changed else "lock current"
        )
        return
    row.steps.append("locked" if result.changed else "lock unchanged")
    dest = pipeline.output / target.name
    fetched = fetch(
        FetchRequest(
            lock_path=lock_paths(pipeline.locks, target.name)[1],
            dest=dest,
            target=target,
            index_config=request.index_config,
            offline=request.offline,
            jobs=pipeline.spec.fetch.jobs,
            cache_dir=request.cache_dir,
            include_self=pipeline.spec.fetch.include_self,
            link_mode=pipeline.spec.fetch.link_mode,
        ),
        reporter,
        http=session.http,
    )
    row.files, row.bytes, row.bundle = len(fetched.record.files), fetched.total_bytes, dest
    row.steps.append(f"fetched {fetched.downloaded}" if fetched.changed else "bundle complete")
    assert key is not None  # noqa: S101 - made or loaded unless check
    signed = _sign(dest, *key, _dossier_options(pipeline, request.cache_dir), _freshness(pipeline))
    row.steps.append(signed)
    if pipeline.spec.sign.archive:
        from lockship.archive import archive_mtime, write_archive  # noqa: PLC0415

        archive = pipeline.output / f"{dest.name}.tar"
        if signed.startswith("signed") or not archive.with_name(archive.name + ".sha256").is_file():
            write_archive(dest, pipeline.output, mtime=archive_mtime(dest))
            row.steps.append(f"archived {archive.name}")
        else:
            row.steps.append("archive current")
    if pipeline.spec.report is not None:
        row.steps.append(_report(pipeline, pipeline.spec.report, dest, request.cache_dir))


def _dossier_options(pipeline: Pipeline, cache_dir: Optional[Path]) -> DossierOptions:
    from lockship.dossier import DossierOptions  # noqa: PLC0415
    from lockship.licenses import LicensePolicy  # noqa: PLC0415

    cfg, table = pipeline.spec.lock, pipeline.spec.audit
    return DossierOptions(
        db=pipeline.resolve(table.db) if table.db else None,
        ignores=table.ignore,
        fail_on_advisories=table.fail,
        policy=LicensePolicy(tuple(cfg.allow_licenses), tuple(cfg.deny_licenses)),
        cache_dir=cache_dir,
    )


def _report(
    pipeline: Pipeline, table: ReportTable, bundle: Path, cache_dir: Optional[Path]
) -> str:
    from lockship.report import build_report, render_report  # noqa: PLC0415

    against = None
    if table.against:
        against = pipeline.resolve(table.against.replace("{target}", bundle.name))
        if not against.exists():
            against = None  # the first transfer: nothing approved yet
    options = _dossier_options(pipeline, cache_dir)
    report = build_report(
        bundle,
        against=against,
        db=options.db,
        ignores=options.ignores,
        policy=options.policy,
        cache_dir=cache_dir,
    )
    suffix = {"html": "html", "markdown": "md", "json": "json"}[table.format]
    path = pipeline.output / f"{bundle.name}.report.{suffix}"
    atomic_write_text(path, render_report(report, table.format))
    flags = len(report.red_flags)
    return f"report {path.name} ({flags} red flag{'s' if flags != 1 else ''})"


def _freshness(pipeline: Pipeline) -> Freshness:
    from lockship.sign import Freshness  # noqa: PLC0415

    table = pipeline.spec.sign
    return Freshness(series=table.series or pipeline.name, expires=table.expires)


def _sign(
    bundle: Path,
    key: sshsig.SigningKey,
    identity: str,
    options: DossierOptions,
    freshness: Freshness,
) -> str:
    from lockship.dossier import AUDIT_FILE, SBOM_FILE, make_dossier  # noqa: PLC0415
    from lockship.models import SIGN_OUTPUTS  # noqa: PLC0415
    from lockship.sign import sign_bundle  # noqa: PLC0415

    sums, signature = bundle / "SHA256SUMS", bundle / "SHA256SUMS.sig"
    if all((bundle / name).is_file() for name in SIGN_OUTPUTS if name != AUDIT_FILE):
        # fetch removes the sign outputs whenever it changes a bundle, so a
        # complete set signed by this very key, with the dossier signing would
        # write now (same database, ignores and policy), means nothing changed since.
        line = key.allowed_signers_line(identity, namespaces="lockship")
        signers = sshsig.parse_allowed_signers(line, source="the configured key")
        try:
            sshsig.verify(sums.read_bytes(), signature.read_text(), signers, identity=identity)
            fresh = _still_fresh(bundle, freshness)
        except (SignatureError, InputError, OSError, ValueError):
            fresh = False
        if fresh:
            dossier = make_dossier(bundle, options)
            on_disk = {
                name: (bundle / name).read_bytes()
                for name in (SBOM_FILE, AUDIT_FILE)
                if (bundle / name).is_file()
            }
            if on_disk == dossier.files:
                return "signature current" + _audited(dossier.audit)
    result = sign_bundle(bundle, key, identity=identity, dossier=options, freshness=freshness)
    return "signed" + _audited(result.audit)


def _still_fresh(bundle: Path, freshness: Freshness) -> bool:
    """Whether the signed manifest is of the configured series and has not expired.

    An expired bundle is signed again, so re-running a pipeline refreshes it.
    """
    from lockship.models import Manifest  # noqa: PLC0415

    manifest = Manifest.model_validate_json((bundle / "manifest.json").read_bytes())
    expires = manifest.expires
    return manifest.series == freshness.series and (
        expires is None or expires > datetime.now(tz=timezone.utc)
    )


def _audited(report: Optional[AuditReport]) -> str:
    if report is None:
        return ""
    count = len(report.active)
    return f", {count} advisor{'y' if count == 1 else 'ies'} recorded" if count else ", audited"


def _signing_key(
    pipeline: Pipeline, reporter: Optional[RunReporter]
) -> tuple[sshsig.SigningKey, str]:
    """The key and identity to sign with; a throwaway key when none is configured."""
    table = pipeline.spec.sign
    if table.key:
        secret = pipeline.resolve(table.passphrase_file) if table.passphrase_file else None
        key = sshsig.load_signing_key(
            pipeline.resolve(table.key), sshsig.read_passphrase(secret)
        )
        return key, table.identity or key.comment
    # Beside the bundles, never inside one.
    directory = pipeline.output / "throwaway-signing-key"
    path = directory / "id_ed25519"
    # Two runs at once must sign with one key: the first makes it, the other waits for it.
    with exclusive_lock(directory / ".lock", what=f"throwaway key {path}"):
        if not path.is_file():
            _make_throwaway_key(path)
        key = sshsig.load_signing_key(path)
    identity = table.identity or f"{pipeline.name}-throwaway"
    signers = directory / "allowed_signers"
    atomic_write_text(signers, key.allowed_signers_line(identity, namespaces="lockship") + "\n")
    if reporter is not None:
        reporter.note(
            f"no [sign] key configured: signing with a THROWAWAY key, {path}; verify with "
            f"--allowed-signers {signers} --identity {identity}. Configure [sign] key for "
            "real transfers."
        )
    return key, identity


def _make_throwaway_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    atomic_write_bytes(path, pem, mode=0o600)
    atomic_write_bytes(path.with_name(path.name + ".pub"), public + b"\n")
