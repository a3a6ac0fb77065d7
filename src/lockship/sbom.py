"""``sbom.cdx.json``: a CycloneDX 1.6 SBOM of a bundle, built with ``cyclonedx-python-lib``.

One component per wheel in the bundle:

* ``name``, ``version``, and ``purl`` ``pkg:pypi/<name>@<version>?file_name=<wheel>``
  (plus ``repository_url`` for an index other than PyPI), which is also its ``bom-ref``;
* the sha256 of exactly the file in ``wheels/``;
* the licence (:mod:`lockship.licenses`): the SPDX expression, declared; for an
  unknown one, what the metadata said, as a licence name;
* the origin URL, without credentials, query string or fragment, as a
  ``distribution`` external reference with the sha256 of the file served there;
* for a wheel built from an sdist: the sdist as ``pedigree.ancestors`` (file
  name, URL and sha256) and the build environment as ``lockship:build:*`` properties;
* the SBOMs the wheel carries itself (PEP 770, ``*.dist-info/sboms/``) as
  ``bom`` external references ``wheels/<wheel>#<member>`` with their sha256.

The dependency graph comes from the lock: the bundle (``metadata.component``)
depends on what the requirements named, each package on its locked dependencies.

The same bundle gives byte-identical bytes: the serial number is a UUID derived
from the target, the lock fingerprint and every wheel's sha256, and the
timestamp is the archive's (the lock's exclude-newer, else
``$SOURCE_DATE_EPOCH``, else 1980-01-01).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import quote, urlsplit, urlunsplit

from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.license import (
    DisjunctiveLicense,
    LicenseAcknowledgement,
    LicenseExpression,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from lockship import __version__
from lockship._install_script import SBOM
from lockship._urls import split_credentials
from lockship.archive import archive_mtime
from lockship.inventory import Distribution, Inventory
from lockship.models import BuiltFrom, format_timestamp

__all__ = ["SBOM_FILE", "public_url", "render_sbom"]

SBOM_FILE = SBOM
_PYPI = ("https://pypi.org/simple", "https://pypi.org/simple/")
# uuid5 namespace of lockship's SBOM serial numbers (a fixed, random UUID)
_NAMESPACE = uuid.UUID("5b0c2c65-7f0e-4a53-9d1c-3b0f1f6b4a11")


def public_url(url: str) -> str:
    """``url`` without credentials, query string or fragment: safe to publish."""
    clean, _ = split_credentials(url)
    parts = urlsplit(clean)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _sha256(value: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=value)]


def _purl(name: str, version: str, filename: str, index: Optional[str]) -> PackageURL:
    qualifiers = {"file_name": filename}
    if index and index.startswith(("https://", "http://")) and index not in _PYPI:
        qualifiers["repository_url"] = public_url(index)
    return PackageURL("pypi", None, canonicalize_name(name), version, qualifiers)


def _licenses(dist: Distribution) -> list[Any]:
    info = dist.license
    if info.spdx is not None:
        return [LicenseExpression(info.spdx, acknowledgement=LicenseAcknowledgement.DECLARED)]
    if info.declared:
        name = "; ".join(info.declared)[:500]
        return [DisjunctiveLicense(name=name, acknowledgement=LicenseAcknowledgement.DECLARED)]
    return []


def _ancestor(name: str, version: str, built: BuiltFrom) -> Component:
    purl = _purl(name, version, built.sdist_filename, None)
    return Component(
        name=name,
        version=version,
        type=ComponentType.LIBRARY,
        purl=purl,
        bom_ref=BomRef(str(purl)),
        hashes=_sha256(built.sdist_sha256),
        external_references=[
            ExternalReference(
                type=ExternalReferenceType.SOURCE_DISTRIBUTION,
                url=XsUri(public_url(built.sdist_url)),
                hashes=_sha256(built.sdist_sha256),
            )
        ],
    )


def _properties(dist: Distribution) -> list[Property]:
    props = [
        Property(name="lockship:bundle-path", value=dist.file.path),
        Property(name="lockship:kind", value=dist.file.kind),
        Property(name="lockship:license", value=dist.license.text),
    ]
    if dist.license.source:
        props.append(Property(name="lockship:license:source", value=dist.license.source))
    if dist.index:
        props.append(Property(name="lockship:index", value=public_url(dist.index)))
    if dist.upload_time:
        uploaded = format_timestamp(dist.upload_time)
        props.append(Property(name="lockship:upload-time", value=uploaded))
    built = dist.file.built_from
    if built is not None:
        props += [
            Property(name="lockship:build:sdist", value=built.sdist_filename),
            Property(name="lockship:build:backend", value=built.build_backend),
            Property(name="lockship:build:source-date-epoch", value=str(built.source_date_epoch)),
            *(Property(name="lockship:build:requires", value=r) for r in built.build_requires),
        ]
    return props


def _component(dist: Distribution) -> Component:
    purl = _purl(dist.name, dist.version, dist.filename, dist.index)
    references = []
    built = dist.file.built_from
    if built is None:  # a wheel from the index: the origin serves these very bytes
        references.append(
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION,
                url=XsUri(public_url(dist.file.origin_url)),
                hashes=_sha256(dist.file.sha256),
            )
        )
    references += [
        ExternalReference(
            type=ExternalReferenceType.BOM,
            url=XsUri(f"{dist.file.path}#{quote(sbom.member)}"),
            comment="an SBOM the wheel carries (PEP 770)",
            hashes=_sha256(sbom.sha256),
        )
        for sbom in dist.sboms
    ]
    return Component(
        name=dist.name,
        version=dist.version,
        type=ComponentType.LIBRARY,
        description=dist.summary or None,
        purl=purl,
        bom_ref=BomRef(str(purl)),
        hashes=_sha256(dist.file.sha256),
        licenses=_licenses(dist),
        external_references=references,
        properties=_properties(dist),
        pedigree=Pedigree(ancestors=[_ancestor(dist.name, dist.version, built)])
        if built is not None
        else None,
    )


def _serial(inventory: Inventory) -> uuid.UUID:
    record = inventory.record
    lines = [record.target.name, record.lock_fingerprint]
    lines += [f"{f.path} {f.sha256}" for f in sorted(record.files, key=lambda f: f.path)]
    return uuid.uuid5(_NAMESPACE, hashlib.sha256("\n".join(lines).encode()).hexdigest())


def _direct(dist: Distribution, locked: set[str]) -> bool:
    """Named by the requirements (or not in the lock at all, e.g. lockship's own files)."""
    return not dist.via or any(canonicalize_name(v) not in locked for v in dist.via)


def render_sbom(inventory: Inventory, *, timestamp: Optional[datetime] = None) -> str:
    """The CycloneDX 1.6 JSON of the bundle ``inventory`` describes (deterministic)."""
    record = inventory.record
    when = timestamp or datetime.fromtimestamp(archive_mtime(inventory.root), tz=timezone.utc)
    env = record.target.marker_environment
    cutoff = (
        [Property(name="lockship:exclude-newer", value=format_timestamp(record.exclude_newer))]
        if record.exclude_newer
        else []
    )
    root = Component(
        name=record.target.name,  # not the directory's name: a copy gives the same bytes
        type=ComponentType.APPLICATION,
        bom_ref=BomRef("lockship-bundle"),
        description=f"lockship bundle for {record.target.name}: {record.target.description}",
        properties=[
            Property(name="lockship:target", value=record.target.name),
            Property(name="lockship:target:python", value=record.target.python_full_version),
            Property(name="lockship:target:platform", value=env.get("sys_platform", "")),
            Property(name="lockship:target:machine", value=env.get("platform_machine", "")),
            Property(name="lockship:target:tags-sha256", value=record.target.tags_sha256),
            Property(name="lockship:lock-fingerprint", value=record.lock_fingerprint),
            *cutoff,
        ],
    )
    metadata = BomMetaData(timestamp=when, component=root)
    bom = Bom(serial_number=_serial(inventory), metadata=metadata)
    bom.metadata.tools.components.add(
        Component(name="lockship", version=__version__, type=ComponentType.APPLICATION)
    )
    components = {d.file.path: _component(d) for d in inventory.distributions}
    by_name: dict[str, list[Component]] = {}
    for dist in inventory.distributions:
        by_name.setdefault(canonicalize_name(dist.name), []).append(components[dist.file.path])
    for component in components.values():
        bom.components.add(component)
    locked = {str(canonicalize_name(p.name)) for p in inventory.lock.packages}
    bom.register_dependency(
        root,
        [components[d.file.path] for d in inventory.distributions if _direct(d, locked)],
    )
    for dist in inventory.distributions:
        depends = [c for n in dist.dependencies for c in by_name.get(canonicalize_name(n), [])]
        bom.register_dependency(components[dist.file.path], depends)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
