"""Frozen models of what lockship writes and reads back: locks and their parts.

Everything inside lockship works on these typed objects; TOML/JSON/text
encoding lives in ``lockfile.py`` (and ``manifest.py``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lockship._install_script import (
    AUDIT,
    INSTALL_DOC,
    INSTALL_SCRIPT,
    MANIFEST,
    SBOM,
    SIGNATURE,
    SUMS,
)

__all__ = [
    "BUNDLE_FORMAT",
    "LOCK_FORMAT",
    "Artifact",
    "BuiltFrom",
    "BundleFile",
    "BundleRecord",
    "InputFile",
    "Lock",
    "LockSettings",
    "LockSource",
    "LockedPackage",
    "Manifest",
    "ManifestFile",
    "TargetInfo",
    "format_size",
    "format_timestamp",
]

LOCK_FORMAT = 2  # 2: sources, metadata digests, query-removed URLs; pins in the fingerprint
BUNDLE_FORMAT = 1


DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the zip epoch wheels use too


def source_date_epoch(exclude_newer: Optional[datetime]) -> int:
    """Built wheels and archives are stamped with the lock's cut-off, else 1980-01-01."""
    if exclude_newer is None:
        return DEFAULT_SOURCE_DATE_EPOCH
    return int(exclude_newer.timestamp())


def describe_validation_error(exc: ValidationError) -> str:
    """pydantic's first error with where it is: "Field required at 'files.0.sha256'"."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{first['msg']} at '{location}'"


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, seconds precision unless finer is needed."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def format_size(count: int) -> str:
    """``906.2 KiB``: bytes in binary units, one decimal (whole bytes below 1 KiB)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputFile(_Frozen):
    """A file the lock was computed from, with its digest (for ``--check``).

    For a ``pyproject.toml`` the digest covers only what lockship reads from it
    (``scope``), so editing, say, its tool settings does not make locks stale.
    """

    path: str
    sha256: str
    scope: Optional[str] = None  # None: the whole file


class TargetInfo(_Frozen):
    """What a lock records about its target."""

    name: str
    description: str
    floor: Optional[str] = None
    python_full_version: str
    marker_environment: dict[str, str]
    tags_sha256: str
    tags_count: int
    source: str


class Artifact(_Frozen):
    """The one file of a package chosen for the target."""

    kind: Literal["wheel", "sdist"]
    filename: str
    # Without credentials, query string or fragment (``_urls.public_url``): credentials
    # are re-applied from configuration at fetch time, and a link the index gave with
    # a query string (a pre-signed URL's signature, a token) is asked of it again.
    url: str
    sha256: str
    size: int
    upload_time: Optional[datetime] = None
    query_removed: bool = False  # the index's link had a query string, not recorded here


class LockedPackage(_Frozen):
    name: str  # normalized
    version: str
    artifact: Artifact
    index: Optional[str] = None  # the index or find-links location it came from
    requires_python: Optional[str] = None
    extras: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # normalized names of locked packages
    via: tuple[str, ...] = ()  # "-r requirements.in", or the names of dependents
    # metadata.metadata_digest() of the core metadata resolution used for this pin;
    # fetch and verify compare it with the METADATA of the wheel that crosses the gap.
    metadata_sha256: Optional[str] = None


class LockSource(_Frozen):
    """An index or find-links location the lock's files came from, and where they live.

    ``file_locations`` are URL prefixes ending in ``/``: the location's own root
    (an index's URL without its ``simple/`` part, a find-links directory) when its
    files lie there, otherwise the ``scheme://host/`` (or ``file:`` directory) the
    files were linked at, such as PyPI's ``https://files.pythonhosted.org/``.
    ``diff`` takes a package's origin from which of these its URL is under.
    """

    url: str  # as in LockSettings.indexes / find_links (credentials and query redacted)
    kind: Literal["index", "find-links"]
    file_locations: tuple[str, ...]


class LockSettings(_Frozen):
    """Options that change what a lock contains; part of the fingerprint."""

    indexes: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    index_strategy: str = "first-index"
    pre: bool = False
    only_binary: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class Lock(_Frozen):
    """One target's lock: header facts plus the packages, sorted by name."""

    lockship_version: str
    target: TargetInfo
    inputs: tuple[InputFile, ...]
    exclude_newer: Optional[datetime] = None
    settings: LockSettings
    command: str
    fingerprint: str
    packages: tuple[LockedPackage, ...]
    sources: tuple[LockSource, ...] = ()

    def computed_fingerprint(self) -> str:
        """Digest of everything in the lock but the fingerprint: inputs, settings and pins.

        It names the lock's whole content, so a bundle fetched from another lock
        never passes for this one's, and a lock whose pins were edited without
        it shows. (Anyone can recompute it: ``lock --check`` also proves the
        pins could have come from the configured sources.)
        """
        document = {
            "format": LOCK_FORMAT,
            **self.model_dump(mode="json", exclude={"fingerprint"}),
        }
        encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(encoded).hexdigest()

    def fingerprinted(self) -> Lock:
        """This lock with its fingerprint computed."""
        return self.model_copy(update={"fingerprint": self.computed_fingerprint()})


# --- bundles -----------------------------------------------------------------------------
#
# dist/<target>/
#   wheels/*.whl              exactly the locked files; sdists replaced by wheels built from them
#   requirements.txt          installable lock: name==version --hash=sha256:<file in wheels/>
#   pylock.<target>.toml      the lock that was fetched, unchanged
#   bundle.json               BundleRecord: what fetch put here and where each file came from
#   (after `lockship sign`) manifest.json, INSTALL.md, install.py, SHA256SUMS, SHA256SUMS.sig,
#   sbom.cdx.json (CycloneDX SBOM) and, when signing audited, audit.json (lockship.dossier)

# What sign writes (the names are install.py's, which checks them offline); fetch
# removes them whenever it changes a bundle, so a stale signature never survives.
SIGN_OUTPUTS = (MANIFEST, INSTALL_DOC, INSTALL_SCRIPT, SBOM, AUDIT, SUMS, SIGNATURE)


class BuiltFrom(_Frozen):
    """Provenance of a wheel that lockship built from an sdist."""

    sdist_filename: str
    sdist_url: str
    sdist_sha256: str
    sdist_size: int
    build_backend: str  # e.g. "setuptools.build_meta"
    build_requires: tuple[str, ...]  # what the isolated environment installed, name==version
    source_date_epoch: int


class BundleFile(_Frozen):
    """One wheel in a bundle's ``wheels/`` directory."""

    path: str  # relative, '/'-separated: "wheels/<filename>"
    name: str  # normalized project name
    version: str
    sha256: str
    size: int
    origin_url: str  # where the locked file came from (credentials and query string removed)
    kind: Literal["wheel", "built-wheel"]
    built_from: Optional[BuiltFrom] = None
    origin_url_query_removed: bool = False  # the index's link had a query string (a token?)


class BundleRecord(_Frozen):
    """``bundle.json``: written by ``lockship fetch``, read by sign, verify and diff."""

    format: int = BUNDLE_FORMAT
    lockship_version: str
    target: TargetInfo
    lock_file: str  # "pylock.<target>.toml", relative to the bundle
    lock_fingerprint: str
    inputs: tuple[InputFile, ...]
    exclude_newer: Optional[datetime] = None
    files: tuple[BundleFile, ...]  # sorted by path
    self_requirements: Optional[str] = None  # with --include-self: "lockship-requirements.txt"


class ManifestFile(_Frozen):
    """One file of a signed bundle, as the reviewer sees it."""

    path: str
    size: int
    sha256: str
    kind: Literal[
        "wheel", "built-wheel", "lock", "requirements", "record", "install-script", "doc",
        "sbom", "audit",
    ]
    name: Optional[str] = None
    version: Optional[str] = None
    origin_url: Optional[str] = None
    built_from: Optional[BuiltFrom] = None
    origin_url_query_removed: bool = False


class Manifest(_Frozen):
    """``manifest.json``: everything a security reviewer signs off on."""

    format: int = BUNDLE_FORMAT
    lockship_version: str
    target: TargetInfo
    inputs: tuple[InputFile, ...]
    exclude_newer: Optional[datetime] = None
    lock_fingerprint: str
    files: tuple[ManifestFile, ...]  # every file of the bundle except SHA256SUMS(.sig) and itself
    # Freshness (lockship.sign): which stream of bundles this is, its place in it,
    # when it was signed and until when it may be installed. A manifest written
    # before these existed reads as sequence 0, no series, no signing time, no expiry.
    series: Optional[str] = None
    sequence: int = Field(default=0, ge=0)
    signed_at: Optional[datetime] = None
    expires: Optional[datetime] = None
