"""``lockship report``: one page for the reviewer of a transfer, red flags first.

The report gathers, for a bundle directory or archive:

summary
    target, packages, files and bytes, the signature (checked against an
    ``allowed_signers`` file when one is given), the lock's cut-off time;
red flags
    files that do not match SHA256SUMS or a bad signature; the diff's red flags
    against the approved transfer (``--against``); every known vulnerability
    not ignored; every licence the policy refuses;
the diff
    everything that changed since the approved transfer;
advisories
    from ``--db`` (what is known now), else the bundle's ``audit.json`` (what
    was known at signing), marked when new since the approved transfer;
licences, provenance, packages and files
    per package its SPDX licence, index, upload time and dependencies; the
    sdist builds with their environment; the lock's inputs; every file with
    its size and sha256.

It renders as one self-contained HTML page (``templates/report.html.j2``: no
scripts, fonts, styles or images from anywhere, and a Content-Security-Policy
that forbids loading any), as Markdown for a ticket, or as JSON for scripts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from lockship import __version__
from lockship._install_script import MANIFEST, SUMS, check_bundle, list_files, read_bytes
from lockship.audit import AUDIT_FILE, AuditReport, audit, read_bundle_audit
from lockship.diff import Diff, diff, label, load_view
from lockship.errors import FreshnessError, InputError, SignatureError, VerificationError
from lockship.hashing import file_digest
from lockship.inventory import Inventory, Pins, read_inventory
from lockship.licenses import LicensePolicy
from lockship.models import Manifest, TargetInfo, format_size, format_timestamp
from lockship.verify import open_bundle

__all__ = [
    "RedFlag",
    "Report",
    "ReportFormat",
    "build_report",
    "render_report",
]

ReportFormat = Literal["html", "markdown", "json"]


@dataclass(frozen=True)
class RedFlag:
    kind: str  # "integrity", "signature", "advisory", "license", or a diff red flag kind
    title: str
    package: str  # "name version", or "" for the bundle as a whole
    detail: str


@dataclass(frozen=True)
class PackageRow:
    name: str
    version: str
    summary: str
    filename: str
    path: str
    kind: str  # "wheel" or "built-wheel"
    sha256: str
    size: int
    license: str  # SPDX expression or "unknown"
    license_source: Optional[str]
    license_declared: tuple[str, ...]
    index: Optional[str]
    origin_url: str
    upload_time: Optional[str]
    dependencies: tuple[str, ...]
    via: tuple[str, ...]
    advisories: tuple[str, ...]  # ids of the active findings
    sboms: tuple[str, ...]  # PEP 770 members
    built_from: Optional[dict[str, Any]]


@dataclass(frozen=True)
class FileRow:
    path: str
    kind: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Signature:
    state: Literal["verified", "invalid", "not checked", "unsigned"]
    detail: str
    fingerprint: Optional[str] = None  # of the key that signed, when verified
    allowed_by: Optional[str] = None  # the allowed_signers line that accepted it


@dataclass(frozen=True)
class Report:
    bundle: str
    target: TargetInfo
    lockship_version: str
    exclude_newer: Optional[str]
    lock_fingerprint: str
    signature: Signature
    signer: dict[str, Any]  # the manifest's signer fields, when it has them
    red_flags: tuple[RedFlag, ...]
    against: Optional[str]
    diff: Optional[Diff]
    audit: Optional[AuditReport]
    audit_source: Optional[str]  # "database" or "audit.json (at signing)"
    signing_audit: Optional[AuditReport]
    new_advisories: Optional[frozenset[str]]  # "name id" new since the approved transfer
    policy: LicensePolicy
    packages: tuple[PackageRow, ...]
    files: tuple[FileRow, ...]
    inputs: tuple[tuple[str, str], ...]
    indexes: tuple[tuple[str, int], ...]
    licenses: tuple[tuple[str, tuple[str, ...]], ...]  # licence -> packages
    total_bytes: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def builds(self) -> tuple[PackageRow, ...]:
        return tuple(p for p in self.packages if p.built_from is not None)

    @property
    def unknown_licenses(self) -> tuple[PackageRow, ...]:
        return tuple(p for p in self.packages if p.license == "unknown")


# --- gathering -----------------------------------------------------------------------------

# i9's manifest fields, shown when the manifest has them
_SIGNER_FIELDS = ("signer", "signed_at", "series", "sequence", "expires")


def _signature(
    root: Path, where: str, allowed_signers: Optional[Path], identity: Optional[str]
) -> tuple[Signature, list[RedFlag]]:
    if not (root / SUMS).is_file():
        return Signature("unsigned", "not signed yet (lockship sign)"), []
    if allowed_signers is None:
        problems = check_bundle(str(root)).problems
        flags = [RedFlag("integrity", "file check failed", "", p) for p in problems]
        return Signature("not checked", "give --allowed-signers to check it"), flags
    from lockship import sshsig  # noqa: PLC0415
    from lockship.verify import verify_directory  # noqa: PLC0415

    signers = sshsig.load_allowed_signers(allowed_signers)
    try:
        verified = verify_directory(root, signers, identity=identity, where=where)
    except SignatureError as exc:
        lines = [line.strip() for line in exc.message.splitlines() if line.strip()]
        return Signature("invalid", lines[0]), [
            RedFlag("signature", "signature not valid", "", line) for line in lines
        ]
    except VerificationError as exc:
        flags = [RedFlag("integrity", "file check failed", "", p) for p in exc.problems]
        return Signature("invalid", f"{len(exc.problems)} file problem(s)"), flags
    except FreshnessError as exc:  # validly signed, but no longer to be installed
        return Signature("invalid", exc.message), [
            RedFlag("freshness", "bundle expired", "", exc.message)
        ]
    detail = f"by {verified.principal}, key {verified.fingerprint[:19]}…"
    return Signature("verified", detail, verified.fingerprint, verified.allowed_by), []


def _manifest(root: Path) -> Optional[Manifest]:
    try:
        return Manifest.model_validate_json(read_bytes(str(root / MANIFEST)))
    except (OSError, ValueError):
        return None


def _approved_advisories(against: Path) -> Optional[set[str]]:
    """``name id`` of every finding in the approved bundle's audit.json; None if it has none."""
    if against.name.endswith(".toml"):
        return None
    with open_bundle(against) as root:
        found = read_bundle_audit(root)
    return None if found is None else {f"{f.name} {f.id}" for f in found.findings}


def _files(root: Path, inventory: Inventory, manifest: Optional[Manifest]) -> list[FileRow]:
    kinds = {f.path: f.kind for f in manifest.files} if manifest else {}
    kinds.update({f.path: f.kind for f in inventory.record.files})
    kinds.setdefault(inventory.record.lock_file, "lock")
    kinds.setdefault("bundle.json", "record")
    kinds.setdefault("requirements.txt", "requirements")
    if inventory.record.self_requirements:
        kinds.setdefault(inventory.record.self_requirements, "requirements")
    files, _ = list_files(str(root))
    rows = []
    for path in files:
        sha256, size = file_digest(root / path)
        kind = {SUMS: "checksums", f"{SUMS}.sig": "signature"}.get(path, kinds.get(path, ""))
        rows.append(FileRow(path, kind, size, sha256))
    return rows


def _package_rows(inventory: Inventory, findings: Optional[AuditReport]) -> list[PackageRow]:
    rows = []
    for dist in inventory.distributions:
        ids = tuple(
            f.id for f in (findings.active if findings else ())
            if (f.name, f.version) == (dist.name, dist.version)
        )
        built = dist.file.built_from
        rows.append(
            PackageRow(
                name=dist.name,
                version=dist.version,
                summary=dist.summary,
                filename=dist.filename,
                path=dist.file.path,
                kind=dist.file.kind,
                sha256=dist.file.sha256,
                size=dist.file.size,
                license=dist.license.text,
                license_source=dist.license.source,
                license_declared=dist.license.declared,
                index=dist.index,
                origin_url=dist.file.origin_url,
                upload_time=format_timestamp(dist.upload_time) if dist.upload_time else None,
                dependencies=dist.dependencies,
                via=dist.via,
                advisories=ids,
                sboms=tuple(s.member for s in dist.sboms),
                built_from=built.model_dump(mode="json") if built else None,
            )
        )
    return rows


def _advisory_flags(current: AuditReport, new: Optional[frozenset[str]]) -> list[RedFlag]:
    """One red flag per vulnerable release: its advisories, what is new, where the fix is."""
    flags = []
    for name, version in current.vulnerable_packages:
        found = [f for f in current.active if (f.name, f.version) == (name, version)]
        ids = ", ".join(f.id for f in found)
        fresh = [f for f in found if new and f"{f.name} {f.id}" in new]
        detail = f"{ids}."
        if len(found) == 1:
            summary = found[0].summary
            detail = f"{ids}: {summary if len(summary) <= 140 else summary[:137] + '...'}"
        if fresh:
            detail += f" {len(fresh)} new since the approved transfer."
        upgrade = current.upgrade_to(name, version)
        if upgrade:
            detail += f" Upgrade to {upgrade} or later (fixes {'all' if len(found) > 1 else 'it'})."
        else:
            detail += " No fixed version for every one of them."
        title = "known vulnerability" if len(found) == 1 else f"{len(found)} known vulnerabilities"
        flags.append(RedFlag("advisory", title, f"{name} {version}", detail))
    return flags


def build_report(
    bundle: Path,
    *,
    against: Optional[Path] = None,
    db: Optional[Path] = None,
    ignores: Optional[Mapping[str, str]] = None,
    policy: LicensePolicy = LicensePolicy(),  # noqa: B008 - frozen and empty
    allowed_signers: Optional[Path] = None,
    identity: Optional[str] = None,
    cache_dir: Optional[Path] = None,
) -> Report:
    """Gather everything the reviewer's page shows about ``bundle``.

    :raises InputError: not a bundle, an unreadable approved transfer or database.
    :raises IntegrityError: a wheel whose METADATA cannot be read.
    """
    with open_bundle(bundle) as root:
        signature, flags = _signature(root, str(bundle), allowed_signers, identity)
        manifest = _manifest(root)
        inventory = read_inventory(root, strict=False)
        signing_audit = read_bundle_audit(root)
        files = _files(root, inventory, manifest)
        changes = None
        if against is not None:
            with load_view(against) as before, load_view(root) as after:
                changes = diff(before, after)
    record = inventory.record
    current = signing_audit
    audit_source = f"{AUDIT_FILE} (at signing)" if signing_audit else None
    if db is not None:
        from lockship.advisories import load_database  # noqa: PLC0415
        from lockship.cache import Cache, default_cache_dir  # noqa: PLC0415

        pins = Pins(
            bundle.name,
            record.target.name,
            tuple(sorted({(d.name, d.version) for d in inventory.distributions})),
        )
        database = load_database(db, Cache(cache_dir or default_cache_dir()))
        current, audit_source = audit(pins, database, ignores), "database"
    approved = _approved_advisories(against) if against is not None and current else None
    new = None
    if current is not None and approved is not None:
        new = frozenset(f"{f.name} {f.id}" for f in current.active) - approved
    elif current is not None and against is not None:
        new = frozenset(f"{f.name} {f.id}" for f in current.active)
    if changes is not None:  # advisories are red flags below, each marked when new
        flags += [
            RedFlag(c.kind, label(c), f"{c.name} {c.new or c.old}".strip(), c.detail)
            for c in changes.red_flags
            if c.kind != "new-advisory"
        ]
    if current is not None:
        flags += _advisory_flags(current, new)
    violations = policy.violations(
        (d.name, d.version, d.license) for d in inventory.distributions
    )
    flags += [
        RedFlag("license", "licence policy", f"{name} {version}", why)
        for name, version, why in violations
    ]
    packages = _package_rows(inventory, current)
    by_license: dict[str, list[str]] = {}
    for row in packages:
        by_license.setdefault(row.license, []).append(f"{row.name} {row.version}")
    indexes = Counter(p.index or "(not in the lock)" for p in packages)
    signer = {k: getattr(manifest, k) for k in _SIGNER_FIELDS if hasattr(manifest, k)}
    return Report(
        bundle=str(bundle),
        target=record.target,
        lockship_version=record.lockship_version,
        exclude_newer=format_timestamp(record.exclude_newer) if record.exclude_newer else None,
        lock_fingerprint=record.lock_fingerprint,
        signature=signature,
        signer={k: v for k, v in signer.items() if v is not None},
        red_flags=tuple(flags),
        against=str(against) if against is not None else None,
        diff=changes,
        audit=current,
        audit_source=audit_source,
        signing_audit=signing_audit,
        new_advisories=new,
        policy=policy,
        packages=tuple(packages),
        files=tuple(files),
        inputs=tuple((i.path, i.sha256) for i in record.inputs),
        indexes=tuple(sorted(indexes.items())),
        licenses=tuple(sorted((k, tuple(v)) for k, v in by_license.items())),
        total_bytes=sum(f.size for f in files),
    )


# --- rendering -------------------------------------------------------------------------------


def _md(text: object) -> str:
    """Text for a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _environment() -> Any:
    import jinja2  # noqa: PLC0415 - only the report needs a template engine

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lockship", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"], default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = format_size
    env.filters["md"] = _md
    env.globals["label"] = label
    return env


def _document(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (what ``--format json`` prints)."""
    data = asdict(report)
    data["target"] = report.target.model_dump(mode="json")
    data["audit"] = report.audit.model_dump(mode="json") if report.audit else None
    data["signing_audit"] = (
        report.signing_audit.model_dump(mode="json") if report.signing_audit else None
    )
    data["new_advisories"] = sorted(report.new_advisories) if report.new_advisories else []
    data["policy"] = {"allow": list(report.policy.allow), "deny": list(report.policy.deny)}
    data["diff"] = (
        None
        if report.diff is None
        else {
            "old": report.diff.old,
            "new": report.diff.new,
            "changes": [{**asdict(c), "red_flag": c.red_flag} for c in report.diff.changes],
        }
    )
    data["signer"] = json.loads(json.dumps(report.signer, default=str))
    data["licenses"] = {k: list(v) for k, v in report.licenses}
    data["indexes"] = dict(report.indexes)
    data["inputs"] = [{"path": p, "sha256": s} for p, s in report.inputs]
    return data


def render_report(report: Report, output_format: ReportFormat = "html") -> str:
    """The report as one HTML page, Markdown or JSON."""
    if output_format == "json":
        return json.dumps(_document(report), indent=2, sort_keys=True) + "\n"
    if output_format not in ("html", "markdown"):
        raise InputError(f"unknown report format {output_format!r}", where="--format")
    env = _environment()
    name = "report.html.j2" if output_format == "html" else "report.md.j2"
    return str(env.get_template(name).render(r=report, version=__version__))
