"""``lockship audit``: the known vulnerabilities of a transfer, from an OSV database on disk.

Every locked (canonical name, version) is matched against the database's index
(:mod:`lockship.advisories`); no network is used. The result names the
database (file name, sha256 of its contents, record count and the date of its
newest record), so a reader sees how fresh the knowledge was, and records each
``--ignore`` with its reason. ``lockship sign`` writes the same result into the
bundle as ``audit.json``, so the offline side and later diffs see what was
known when it was signed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Optional

from packaging.version import Version
from pydantic import BaseModel, ConfigDict, ValidationError

from lockship._install_script import AUDIT, read_bytes
from lockship.advisories import AdvisoryDatabase, Hit, load_database
from lockship.cache import Cache, default_cache_dir
from lockship.errors import InputError
from lockship.inventory import Pins, read_pins
from lockship.models import describe_validation_error, format_timestamp

__all__ = [
    "AUDIT_FILE",
    "AUDIT_FORMAT",
    "AuditReport",
    "DatabaseInfo",
    "Finding",
    "audit",
    "audit_path",
    "headline",
    "parse_ignores",
    "read_audit",
    "read_bundle_audit",
    "render_audit_json",
    "render_audit_markdown",
]

AUDIT_FILE = AUDIT
AUDIT_FORMAT = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseInfo(_Frozen):
    """Which database an audit used, and how fresh it was."""

    name: str  # its file or directory name
    sha256: str  # of its contents (see advisories.load_database)
    records: int
    withdrawn: int
    date: Optional[datetime] = None  # the newest record's "modified"

    def describe(self) -> str:
        """``name (2661 records, newest 2024-10-10)``."""
        date = f", newest {self.date:%Y-%m-%d}" if self.date else ""
        return f"{self.name} ({self.records} records{date})"


class Finding(_Frozen):
    """One advisory affecting one locked release."""

    name: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    severity: tuple[str, ...] = ()
    url: Optional[str] = None
    published: Optional[str] = None
    fixed: tuple[str, ...] = ()  # every fixed version the advisory gives for the project
    fix: Optional[str] = None  # the first fixed version above this release, on its own line
    ignored: Optional[str] = None  # the reason given with --ignore

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


class Ignore(_Frozen):
    id: str
    reason: str
    matched: bool  # False: it matched no finding (a stale exception)


class Upgrade(_Frozen):
    """The lowest fixed version that none of a release's advisories (not ignored) names."""

    name: str
    version: str
    to: str


class AuditReport(_Frozen):
    """``audit.json``, and what ``lockship audit --format json`` prints."""

    format: int = AUDIT_FORMAT
    source: str  # what was audited: the lock or bundle's name
    target: Optional[str] = None
    database: DatabaseInfo
    packages: int  # releases audited
    findings: tuple[Finding, ...]  # sorted by name, version, id; ignored ones included
    ignores: tuple[Ignore, ...] = ()
    upgrades: tuple[Upgrade, ...] = ()

    @property
    def active(self) -> tuple[Finding, ...]:
        """The findings not ignored: what makes ``audit`` exit 13."""
        return tuple(f for f in self.findings if f.ignored is None)

    @property
    def vulnerable_packages(self) -> list[tuple[str, str]]:
        return sorted({(f.name, f.version) for f in self.active})

    def upgrade_to(self, name: str, version: str) -> Optional[str]:
        """The lowest version that no active advisory of this release names, if there is one."""
        return next((u.to for u in self.upgrades if (u.name, u.version) == (name, version)), None)


def parse_ignores(values: Sequence[str], *, where: str = "--ignore") -> dict[str, str]:
    """``ID=REASON`` options as ``{ID: reason}``.

    :raises InputError: for an entry without an id or without a reason.
    """
    ignores = {}
    for value in values:
        identifier, _, reason = value.partition("=")
        identifier, reason = identifier.strip(), reason.strip()
        if not identifier or not reason:
            raise InputError(
                f"{value!r}: give the advisory and the reason, ID=REASON",
                where=where,
                hint="e.g. --ignore 'PYSEC-2023-74=proxies are not used on the target'",
            )
        ignores[identifier] = reason
    return ignores


def audit(
    pins: Pins, database: AdvisoryDatabase, ignores: Optional[Mapping[str, str]] = None
) -> AuditReport:
    """Match every pinned release against ``database``.

    :param ignores: ``{advisory id or alias: reason}``; an ignored finding is
        kept in the report, with its reason, but does not count as found.
    """
    ignores = dict(ignores or {})
    used: set[str] = set()
    findings = []
    upgrades = []
    for name, version in pins.packages:
        hits = database.hits(name, version)
        for hit in hits:
            advisory = hit.advisory
            matched = [i for i in advisory.names if i in ignores]
            used.update(matched)
            findings.append(
                Finding(
                    name=name,
                    version=version,
                    id=advisory.id,
                    aliases=advisory.aliases,
                    summary=advisory.summary,
                    severity=advisory.severity,
                    url=advisory.url,
                    published=advisory.published,
                    fixed=hit.fixed,
                    fix=hit.fix,
                    ignored=ignores[matched[0]] if matched else None,
                )
            )
        active = {f.id for f in findings[len(findings) - len(hits):] if f.ignored is None}
        upgrade = _upgrade(database, name, version, [h for h in hits if h.advisory.id in active])
        if upgrade is not None:
            upgrades.append(Upgrade(name=name, version=version, to=upgrade))
    return AuditReport(
        source=Path(pins.source).name,
        target=pins.target,
        database=DatabaseInfo(
            name=Path(database.path).name,
            sha256=database.sha256,
            records=database.records,
            withdrawn=database.withdrawn,
            date=database.date,
        ),
        packages=len(pins.packages),
        findings=tuple(findings),
        ignores=tuple(
            Ignore(id=i, reason=reason, matched=i in used) for i, reason in sorted(ignores.items())
        ),
        upgrades=tuple(upgrades),
    )


def _upgrade(database: AdvisoryDatabase, name: str, version: str, hits: list[Hit]) -> Optional[str]:
    """The lowest fixed version above ``version`` that none of ``hits``' advisories names.

    Only versions the advisories call fixed are candidates: the database knows
    nothing of the releases in between, nor whether one supports the target's
    Python (``lockship lock`` does).
    """
    if not hits:
        return None
    current = Version(version)
    ids = {h.advisory.id for h in hits}
    candidates = sorted({Version(v) for h in hits for v in h.fixed if Version(v) > current})
    for candidate in candidates:
        if not ids & {h.advisory.id for h in database.hits(name, str(candidate))}:
            return str(candidate)
    return None


def audit_path(
    path: Path,
    db: Path,
    *,
    ignores: Optional[Mapping[str, str]] = None,
    cache_dir: Optional[Path] = None,
) -> AuditReport:
    """Audit the lock, bundle or archive at ``path`` against the OSV database ``db``.

    :raises InputError: for an unreadable or malformed lock, bundle or database.
    """
    pins = read_pins(path)
    return audit(pins, load_database(db, Cache(cache_dir or default_cache_dir())), ignores)


def read_audit(data: bytes, *, where: str) -> AuditReport:
    """Parse ``audit.json``.

    :raises InputError: when it is not an audit this version of lockship can read.
    """
    try:
        return AuditReport.model_validate_json(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc), where=where) from None


def read_bundle_audit(root: Path) -> Optional[AuditReport]:
    """The ``audit.json`` of the bundle directory ``root``, or None when it has none.

    :raises InputError: when it is unreadable or not an audit.
    """
    path = root / AUDIT_FILE
    try:
        data = read_bytes(str(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    return read_audit(data, where=str(path))


# --- rendering ------------------------------------------------------------------------------


def render_audit_json(report: AuditReport) -> str:
    """Deterministic JSON: sorted keys, indent 2, trailing newline (``audit.json``)."""
    return json.dumps(report.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"


def headline(report: AuditReport) -> str:
    """One line: what was found, in how many releases, against which database."""
    count, ignored = len(report.active), len(report.findings) - len(report.active)
    found = (
        f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} in "
        f"{len(report.vulnerable_packages)} of {report.packages} packages"
        if count
        else f"no known vulnerabilities in {report.packages} packages"
    )
    extra = f" ({ignored} ignored)" if ignored else ""
    return f"{found}{extra}; database {report.database.describe()}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_audit_markdown(report: AuditReport) -> str:
    """A Markdown section for a review ticket."""
    title = f"## lockship audit of {report.source}"
    if report.target:
        title += f" ({report.target})"
    lines = [title, "", headline(report) + ".", ""]
    date = format_timestamp(report.database.date) if report.database.date else "unknown"
    database = (
        f"Database: `{report.database.name}`, {report.database.records} records "
        f"({report.database.withdrawn} withdrawn), newest record {date}, "
        f"sha256 `{report.database.sha256[:16]}...`."
    )
    lines += [database, ""]
    if report.findings:
        lines += [
            "| package | version | advisory | aliases | fixed in | fix | summary |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            advisory = f"[{f.id}]({f.url})" if f.url else f.id
            if f.ignored:
                advisory += f" (ignored: {f.ignored})"
            cells = [
                f.name,
                f.version,
                advisory,
                ", ".join(f.aliases),
                ", ".join(f.fixed),
                f.fix or "",
                f.summary,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    for upgrade in report.upgrades:
        lines.append(
            f"- upgrade {upgrade.name} {upgrade.version} to {upgrade.to} or later: "
            "no advisory here names that version"
        )
    if report.upgrades:
        lines.append("")
    for item in report.ignores:
        state = "" if item.matched else " (matched nothing)"
        lines.append(f"- ignored {item.id}{state}: {item.reason}")
    if report.ignores:
        lines.append("")
    return "\n".join(lines)
