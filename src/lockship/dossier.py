"""The reviewer's dossier that ``lockship sign`` puts into every bundle, and its check.

``sbom.cdx.json`` (manifest kind ``sbom``)
    the CycloneDX 1.6 SBOM of the bundle (:mod:`lockship.sbom`), always;
``audit.json`` (manifest kind ``audit``)
    the offline audit against an OSV database (:mod:`lockship.audit`), when
    signing is given one: what was known about the transfer when it was signed.

Both sit at the bundle root and are listed in SHA256SUMS and manifest.json like
every other file, so the signature covers them. Before either is written, the
licence policy is applied, and (unless told otherwise) an audit that finds
advisories stops the signing: a bundle that breaks the policy or carries a
known vulnerability is not signed by accident.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from packaging.utils import canonicalize_name

from lockship._install_script import SBOM, read_bytes
from lockship.audit import AUDIT_FILE, AuditReport, audit, read_audit, render_audit_json
from lockship.errors import AdvisoriesFoundError, InputError
from lockship.inventory import Inventory, Pins, read_inventory
from lockship.licenses import LicensePolicy, LicensePolicyError
from lockship.models import Manifest

__all__ = [
    "AUDIT_FILE",
    "SBOM_FILE",
    "Dossier",
    "DossierOptions",
    "dossier_problems",
    "make_dossier",
    "sbom_problems",
]



SBOM_FILE = SBOM


@dataclass(frozen=True)
class DossierOptions:
    """What signing checks and records besides the files."""

    db: Optional[Path] = None  # an OSV database to audit against
    ignores: Mapping[str, str] = field(default_factory=dict)  # advisory id -> reason
    fail_on_advisories: bool = True
    policy: LicensePolicy = field(default_factory=LicensePolicy)
    cache_dir: Optional[Path] = None


@dataclass(frozen=True)
class Dossier:
    files: dict[str, bytes]  # file name at the bundle root -> contents
    audit: Optional[AuditReport]


def _pins(inventory: Inventory, name: str) -> Pins:
    pairs = {(str(canonicalize_name(d.name)), d.version) for d in inventory.distributions}
    return Pins(name, inventory.record.target.name, tuple(sorted(pairs)))


def _advisories_error(report: AuditReport, where: str) -> AdvisoriesFoundError:
    lines = [f"{f.name} {f.version}: {f.id} {' '.join(f.aliases)}".rstrip() for f in report.active]
    count = len(report.active)
    head = (
        f"{count} known vulnerabilit{'y' if count == 1 else 'ies'} "
        f"(database {report.database.describe()}); not signed"
    )
    return AdvisoriesFoundError(
        "\n  ".join([head, *lines]),
        where=where,
        hint="upgrade them, or accept each risk with --ignore ID=REASON "
        "(pipelines: [audit] ignore), or record them and sign anyway "
        "(--allow-advisories; pipelines: [audit] fail = false)",
    )


def make_dossier(bundle: Path, options: DossierOptions = DossierOptions()) -> Dossier:
    """The dossier files for the fetched bundle directory ``bundle``.

    :raises LicensePolicyError: a package's licence breaks ``options.policy``.
    :raises AdvisoriesFoundError: the audit found advisories not ignored, and
        ``options.fail_on_advisories``.
    :raises InputError: an unreadable bundle or database.
    """
    from lockship.advisories import load_database  # noqa: PLC0415 - only with a database
    from lockship.cache import Cache, default_cache_dir  # noqa: PLC0415
    from lockship.sbom import render_sbom  # noqa: PLC0415 - verify needs no cyclonedx

    inventory = read_inventory(bundle)
    violations = options.policy.violations(
        (d.name, d.version, d.license) for d in inventory.distributions
    )
    if violations:
        raise LicensePolicyError(violations, where=str(bundle))
    files = {SBOM_FILE: render_sbom(inventory).encode()}
    report = None
    if options.db is not None:
        database = load_database(options.db, Cache(options.cache_dir or default_cache_dir()))
        # named after the target, not the directory: a copy of the bundle gives the same bytes
        report = audit(_pins(inventory, inventory.record.target.name), database, options.ignores)
        if options.fail_on_advisories and report.active:
            raise _advisories_error(report, str(bundle))
        files[AUDIT_FILE] = render_audit_json(report).encode()
    return Dossier(files, report)


def dossier_problems(root: Path, manifest: Manifest, verified: Mapping[str, int]) -> list[str]:
    """Where a signed bundle's ``sbom.cdx.json`` and ``audit.json`` disagree with its wheels.

    Only files whose sha256 already matched SHA256SUMS (``verified``) are read.
    A bundle signed before lockship wrote a dossier has neither, which is no problem.
    """
    wheels = [
        (f.path, f.name or "", f.version or "", f.sha256)
        for f in manifest.files
        if f.kind in ("wheel", "built-wheel")
    ]
    problems = []
    if SBOM_FILE in verified:
        problems += sbom_problems(read_bytes(str(root / SBOM_FILE)), wheels)
    if AUDIT_FILE in verified:
        try:
            report = read_audit(read_bytes(str(root / AUDIT_FILE)), where=AUDIT_FILE)
        except InputError as exc:
            return [*problems, f"{AUDIT_FILE}: {exc.message}"]
        except (OSError, ValueError) as exc:
            return [*problems, f"{AUDIT_FILE}: unreadable: {exc}"]
        releases = {(str(canonicalize_name(name)), version) for _, name, version, _ in wheels}
        if report.packages != len(releases):
            problems.append(
                f"{AUDIT_FILE}: audited {report.packages} packages, the bundle has {len(releases)}"
            )
        problems += [
            f"{AUDIT_FILE}: {f.id} names {f.name} {f.version}, which the bundle does not carry"
            for f in report.findings
            if (f.name, f.version) not in releases
        ]
    return problems


def sbom_problems(data: bytes, wheels: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """Where ``sbom.cdx.json`` disagrees with the bundle's wheels.

    :param wheels: (path, name, version, sha256) of every wheel the manifest lists.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return [f"{SBOM_FILE}: not JSON: {exc}"]
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        return [f"{SBOM_FILE}: not a CycloneDX document"]
    problems = []
    if document.get("specVersion") != "1.6":
        problems.append(f"{SBOM_FILE}: specVersion {document.get('specVersion')!r}, expected 1.6")
    found: dict[str, tuple[str, str, str]] = {}
    for position, component in enumerate(document.get("components") or []):
        if not isinstance(component, dict):
            problems.append(f"{SBOM_FILE}: components[{position}] is not an object")
            continue
        path = next(
            (
                p.get("value")
                for p in component.get("properties") or []
                if isinstance(p, dict) and p.get("name") == "lockship:bundle-path"
            ),
            None,
        )
        hashes = [
            h.get("content")
            for h in component.get("hashes") or []
            if isinstance(h, dict) and h.get("alg") == "SHA-256"
        ]
        found[str(path)] = (
            str(component.get("name")),
            str(component.get("version")),
            str(hashes[0]) if hashes else "",
        )
    expected = {path: (name, version, sha256) for path, name, version, sha256 in wheels}
    for path, (name, version, sha256) in sorted(expected.items()):
        if path not in found:
            problems.append(f"{SBOM_FILE}: no component for {path}")
        elif found[path] != (name, version, sha256):
            got = found[path]
            problems.append(
                f"{SBOM_FILE}: {path} is {got[0]} {got[1]} sha256 {got[2] or '(none)'}, "
                f"but the manifest says {name} {version} sha256 {sha256}"
            )
    problems += [
        f"{SBOM_FILE}: component {path} is not a wheel of the bundle"
        for path in sorted(set(found) - set(expected))
    ]
    return problems
