"""An OSV advisory database on disk, indexed once: which PyPI releases each advisory names.

Two layouts are read, with no network at any point:

* a directory of OSV records, searched recursively for ``*.json``, ``*.yaml``
  and ``*.yml`` (the PyPA advisory database: ``vulns/<project>/PYSEC-*.yaml``;
  hidden directories such as ``.git`` are skipped);
* a zip of OSV JSON records (OSV's per-ecosystem dump, ``PyPI/all.zip``);
* a tar (``.tar.gz``, ``.tar.xz``, ...) of the directory layout, as a
  repository archive of the PyPA database comes: read in place, never extracted.

The database is input like any other, so every parser is bounded: a record
larger than :data:`MAX_RECORD_BYTES` or nested deeper than :data:`MAX_DEPTH`
is refused, YAML aliases (the "billion laughs") are refused, and a database
may hold at most :data:`MAX_RECORDS` records and :data:`MAX_TOTAL_BYTES`.
YAML scalars stay strings: a plain ``fixed: 1.10`` is the version 1.10, never
the float 1.1.

Parsing the 2,662 YAML records of the PyPA snapshot takes about a second, so
the reduced index (only what matching and reports need) is cached under the
sha256 of the database's contents; a later audit of the same database reads
the cached index instead (see ``benchmarks/bench_audit.py``).

Matching follows the OSV schema (https://ossf.github.io/osv-schema/): a
release is affected when ``affected[].versions`` lists it or an ``ECOSYSTEM``
range's events (``introduced``, ``fixed``, ``last_affected``, ``limit``,
compared as PEP 440 versions) include it. Records with ``withdrawn`` are
counted but never match.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from lockship.cache import Cache
from lockship.errors import InputError
from lockship.hashing import file_digest
from lockship.models import format_timestamp

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORDS",
    "MAX_RECORD_BYTES",
    "MAX_TOTAL_BYTES",
    "Advisory",
    "AdvisoryDatabase",
    "Hit",
    "load_database",
]

MAX_RECORD_BYTES = 4 * 1024 * 1024  # the largest PyPA record is 17 KB
MAX_DEPTH = 32  # OSV records nest about 6 deep
MAX_RECORDS = 500_000  # OSV's PyPI dump holds about 17,000
MAX_TOTAL_BYTES = 2 * 1024**3  # all records together (the PyPI dump: about 100 MB)
_INDEX_FORMAT = 1
_SUFFIXES = (".json", ".yaml", ".yml")
_ECOSYSTEM = "PyPI"


# --- parsing one record, bounded ----------------------------------------------------------

_YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


def _load_yaml(data: bytes) -> Any:
    """One YAML document built from parser events: strings, lists, dicts and None only.

    PyYAML's own constructors would turn ``1.10`` into a float and follow
    aliases; building from events keeps every scalar as written and bounds depth.
    """
    root: Any = None
    stack: list[Any] = []
    keys: list[Any] = []
    documents = 0
    for event in yaml.parse(data, Loader=_Loader):
        value: Any
        if isinstance(event, yaml.ScalarEvent):
            plain = not event.style  # libyaml says "", PyYAML None
            value = None if plain and event.value in _YAML_NULLS else event.value
        elif isinstance(event, yaml.MappingStartEvent):
            value = {}
        elif isinstance(event, yaml.SequenceStartEvent):
            value = []
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            keys.pop()
            continue
        elif isinstance(event, yaml.AliasEvent):
            raise ValueError("YAML aliases are not allowed in an OSV record")  # noqa: TRY004
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ValueError("more than one YAML document")
            continue
        else:
            continue
        if not stack:
            root = value
        elif isinstance(stack[-1], list):
            stack[-1].append(value)
        elif keys[-1] is _NO_KEY:
            if not isinstance(value, str):
                raise ValueError("a mapping key is not a string")
            keys[-1] = value
        else:
            stack[-1][keys[-1]] = value
            keys[-1] = _NO_KEY
        if isinstance(value, (dict, list)):
            if len(stack) >= MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            stack.append(value)
            keys.append(_NO_KEY)
    return root


_NO_KEY = object()


def _parse_record(data: bytes, name: str) -> Any:
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"larger than {MAX_RECORD_BYTES} bytes")
    if name.endswith(".json"):
        try:
            return json.loads(data)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    return _load_yaml(data)


# --- the reduced index ---------------------------------------------------------------------

# One range: its events as (kind, version text), in file order.
_Range = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Advisory:
    """What a report shows of one OSV record."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    published: Optional[str]  # RFC 3339, as the record gives it
    modified: Optional[str]
    severity: tuple[str, ...]  # "CVSS_V3 CVSS:3.1/AV:N/...", as given
    url: Optional[str]  # the advisory page: first ADVISORY reference, else the first one
    source: str  # the record's file, relative to the database
    # {name: [{"ranges": [[[kind, version], ...], ...], "versions": [...]}]}, as indexed
    affected: dict[str, list[dict[str, Any]]] = field(repr=False)
    # affected[name][i]["versions"] parsed, on first use: matching compares sets, not lists
    _versions: dict[tuple[str, int], frozenset[Version]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def versions(self, name: str, position: int) -> frozenset[Version]:
        key = (name, position)
        if key not in self._versions:
            texts = self.affected[name][position]["versions"]
            parsed = (_version(str(text)) for text in texts)
            self._versions[key] = frozenset(v for v in parsed if v is not None)
        return self._versions[key]

    @property
    def names(self) -> tuple[str, ...]:
        """The id and every alias (CVE, GHSA, ...)."""
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class Hit:
    """One advisory that names a release."""

    advisory: Advisory
    fixed: tuple[str, ...]  # every fixed version of its ranges for this project, ascending
    fix: Optional[str]  # the first fixed version above the release in the range it falls in


@functools.lru_cache(maxsize=65536)  # the same few thousand version strings recur
def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: _Range) -> tuple[bool, Optional[Version]]:
    """(affected, the fixing version) per the OSV evaluation of one ECOSYSTEM range.

    A range with an event that is not a PEP 440 version cannot be evaluated and
    is skipped; the record's ``versions`` list still applies.
    """
    parsed = []
    for kind, text in events:
        bound = _version(text)
        if bound is None:
            return False, None
        parsed.append((bound, kind))
    affected, fix = False, None
    # Sorted by version; at equal versions "introduced" comes first (OSV's reference order).
    for bound, kind in sorted(parsed, key=lambda e: (e[0], e[1] != "introduced")):
        if kind == "introduced" and version >= bound:
            affected, fix = True, None
        elif kind == "fixed" and version >= bound:
            affected = False
        elif kind == "fixed" and affected and fix is None:
            fix = bound
        elif kind == "last_affected" and version > bound:
            affected = False
        elif kind == "limit" and version >= bound:
            affected = False
            break
    return affected, fix if affected else None


def _match(advisory: Advisory, name: NormalizedName, version: Version) -> Optional[Hit]:
    hit, fixes = False, []
    fixed: set[Version] = set()
    for position, entry in enumerate(advisory.affected.get(name, ())):
        for events in entry["ranges"]:
            range_: _Range = tuple((str(kind), str(text)) for kind, text in events)
            fixed.update(v for k, t in range_ if k == "fixed" and (v := _version(t)) is not None)
            affected, fix = _in_range(version, range_)
            if affected:
                hit = True
                if fix is not None:
                    fixes.append(fix)
        if not hit and version in advisory.versions(name, position):
            hit = True
    if not hit:
        return None
    return Hit(
        advisory,
        tuple(str(v) for v in sorted(fixed)),
        str(min(fixes)) if fixes else None,
    )


# --- reducing a record ---------------------------------------------------------------------


_KINDS: dict[type, str] = {str: "a string", list: "a list", dict: "a mapping"}


def _expect(value: Any, kind: type, what: str, default: Any) -> Any:
    """``value`` when it is a ``kind`` (``default`` when None); else ValueError naming it."""
    if value is None and default is not None:
        return default
    if not isinstance(value, kind):
        raise ValueError(f"{what} is not {_KINDS[kind]}")  # noqa: TRY004 - reported as bad input
    return value


def _text(value: Any, what: str) -> str:
    return str(_expect(value, str, what, None))


def _items(value: Any, what: str) -> list[Any]:
    return list(_expect(value, list, what, []))


def _table(value: Any, what: str) -> dict[str, Any]:
    return dict(_expect(value, dict, what, {}))


def _summary(record: dict[str, Any]) -> str:
    """The record's summary, else the first sentence-ish of its details, one line."""
    text = record.get("summary") or record.get("details") or ""
    line = " ".join(str(text).split())
    return line if len(line) <= 240 else line[:237].rstrip() + "..."


def _reduce(record: Any) -> dict[str, Any]:
    """What the index keeps of one OSV record (JSON-ready), or ValueError naming the field."""
    record = _table(record, "the record")
    reduced: dict[str, Any] = {
        "id": _text(record.get("id"), "id"),
        "aliases": [_text(a, "aliases[]") for a in _items(record.get("aliases"), "aliases")],
        "summary": _summary(record),
        "published": record.get("published") if isinstance(record.get("published"), str) else None,
        "modified": record.get("modified") if isinstance(record.get("modified"), str) else None,
        "withdrawn": isinstance(record.get("withdrawn"), str),
        "severity": [
            f"{_table(s, 'severity[]').get('type', '')} {_table(s, 'severity[]').get('score', '')}"
            .strip()
            for s in _items(record.get("severity"), "severity")
        ],
    }
    references = [_table(r, "references[]") for r in _items(record.get("references"), "references")]
    urls = [r.get("url") for r in references if r.get("type") == "ADVISORY"]
    urls += [r.get("url") for r in references]
    reduced["url"] = next((u for u in urls if isinstance(u, str)), None)
    affected: dict[str, list[Any]] = {}
    for position, item in enumerate(_items(record.get("affected"), "affected")):
        entry = _table(item, f"affected[{position}]")
        package = _table(entry.get("package"), f"affected[{position}].package")
        if package.get("ecosystem") != _ECOSYSTEM or not isinstance(package.get("name"), str):
            continue
        ranges = []
        for index, value in enumerate(_items(entry.get("ranges"), f"affected[{position}].ranges")):
            where = f"affected[{position}].ranges[{index}]"
            range_ = _table(value, where)
            if range_.get("type") != "ECOSYSTEM":
                continue
            events = []
            for event in _items(range_.get("events"), f"{where}.events"):
                for kind, bound in _table(event, "events[]").items():
                    if kind in ("introduced", "fixed", "last_affected", "limit"):
                        events.append([kind, _text(bound, f"events[].{kind}")])
            ranges.append(events)
        versions = [
            _text(v, "versions[]")
            for v in _items(entry.get("versions"), f"affected[{position}].versions")
        ]
        name = canonicalize_name(package["name"])
        affected.setdefault(name, []).append({"ranges": ranges, "versions": versions})
    reduced["affected"] = affected
    return reduced


def _advisory(reduced: dict[str, Any], source: str) -> Advisory:
    return Advisory(
        id=reduced["id"],
        aliases=tuple(reduced["aliases"]),
        summary=reduced["summary"],
        published=reduced["published"],
        modified=reduced["modified"],
        severity=tuple(reduced["severity"]),
        url=reduced["url"],
        source=source,
        affected=reduced["affected"],
    )


# --- the database ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvisoryDatabase:
    """An indexed OSV database: the advisories per canonical project name."""

    path: str  # as given
    sha256: str  # a zip's or tar's bytes; for a directory, of every record's path and sha256
    records: int  # OSV records read, withdrawn ones included
    withdrawn: int
    date: Optional[datetime]  # the newest "modified" of its records: how fresh it is
    by_project: dict[str, tuple[Advisory, ...]] = field(repr=False)  # canonical names

    def hits(self, name: str, version: str) -> list[Hit]:
        """Every advisory that names ``name`` at ``version`` (PEP 440 comparison)."""
        parsed = _version(version)
        if parsed is None:
            return []
        project = canonicalize_name(name)
        found = [_match(a, project, parsed) for a in self.by_project.get(project, ())]
        return sorted((h for h in found if h is not None), key=lambda h: h.advisory.id)

    def describe(self) -> str:
        """"PATH (2661 records, newest 2024-10-10)" for every output's header."""
        date = f", newest {self.date:%Y-%m-%d}" if self.date else ""
        return f"{self.path} ({self.records} records{date})"


def _read_directory(root: Path) -> Iterator[tuple[str, bytes]]:
    found = []
    base = str(root)
    for top, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        prefix = os.path.relpath(top, base).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        found += [prefix + n for n in names if n.endswith(_SUFFIXES) and not n.startswith(".")]
    if len(found) > MAX_RECORDS:
        raise ValueError(f"more than {MAX_RECORDS} records")
    for name in sorted(found):
        with open(os.path.join(base, name), "rb") as handle:  # noqa: PTH118, PTH123 - fast
            yield name, handle.read(MAX_RECORD_BYTES + 1)  # a FIFO or huge file: this far only


def _read_zip(path: Path) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if not i.is_dir() and i.filename.endswith(".json")]
        if len(members) > MAX_RECORDS:
            raise ValueError(f"more than {MAX_RECORDS} records")
        for info in sorted(members, key=lambda i: i.filename):
            if info.file_size > MAX_RECORD_BYTES:
                yield info.filename, b" " * (MAX_RECORD_BYTES + 1)  # refused by _parse_record
                continue
            with archive.open(info) as member:  # stops at the limit even if file_size lies
                yield info.filename, member.read(MAX_RECORD_BYTES + 1)


def _read_tar(path: Path) -> Iterator[tuple[str, bytes]]:
    """Records of a (compressed) tar of the directory layout, read in place, never extracted."""
    count = 0
    with tarfile.open(path, "r:*") as archive:
        for info in archive:  # streamed in file order; links and devices are skipped
            parts = info.name.split("/")
            if not info.isfile() or not info.name.endswith(_SUFFIXES):
                continue
            if any(part.startswith(".") for part in parts):
                continue
            count += 1
            if count > MAX_RECORDS:
                raise ValueError(f"more than {MAX_RECORDS} records")
            member = archive.extractfile(info)
            if member is None:  # pragma: no cover - regular files always have data
                continue
            with member:
                yield info.name, member.read(MAX_RECORD_BYTES + 1)


# What a damaged database raises while it is read (RuntimeError: an encrypted zip).
_UNREADABLE = (
    OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, tarfile.TarError,
    lzma.LZMAError, zlib.error,
)


def _records(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every record, in a stable order, with at most MAX_TOTAL_BYTES read."""
    if path.is_dir():
        records = _read_directory(path)
    elif zipfile.is_zipfile(path):
        records = _read_zip(path)
    elif tarfile.is_tarfile(path):
        records = _read_tar(path)
    else:
        raise InputError(
            "not an OSV database: expected a directory of OSV records, a zip of them, "
            "or a tar of the directory",
            where=str(path),
        )
    total = 0
    for name, data in records:
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"more than {MAX_TOTAL_BYTES} bytes of records")
        yield name, data


def _timestamp(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _index(path: Path) -> tuple[str, dict[str, Any]]:
    """(content sha256, reduced index) of the database at ``path``, parsing every record."""
    digest = hashlib.sha256()
    reduced: dict[str, Any] = {}
    try:
        for name, data in _records(path):
            digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
            try:
                reduced[name] = _reduce(_parse_record(data, name))
            except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
                problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InputError(
                    f"{name}: not a usable OSV record: {problem}", where=str(path)
                ) from None
    except _UNREADABLE as exc:
        raise InputError(f"cannot read the database: {exc}", where=str(path)) from None
    sha256 = digest.hexdigest() if path.is_dir() else file_digest(path)[0]
    return sha256, {"format": _INDEX_FORMAT, "records": reduced}


def _content_digest(path: Path) -> Optional[str]:
    """The sha256 ``_index`` gives, without parsing: a zip's or tar's bytes, or every
    record's path and sha256; None if it cannot be read."""
    try:
        if not path.is_dir():
            return file_digest(path)[0]
        digest = hashlib.sha256()
        for name, data in _records(path):
            digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    except _UNREADABLE:
        return None
    return digest.hexdigest()


# Databases indexed in this process, by (path, content sha256): their contents were
# hashed again to find them here, so an edited database is indexed afresh.
_LOADED: dict[tuple[str, str], AdvisoryDatabase] = {}


def load_database(path: Path, cache: Optional[Cache] = None) -> AdvisoryDatabase:
    """Index the OSV database at ``path``, reusing the cached index of identical contents.

    :raises InputError: naming the database and the record when it cannot be
        read, is neither layout, or holds a record that is not valid OSV or is
        over the limits.
    """
    if not path.exists():
        raise InputError("no such advisory database", where=str(path))
    if cache is not None:
        sha256 = _content_digest(path)
        loaded = _LOADED.get((str(path), sha256 or ""))
        if loaded is not None:  # a pipeline signs, then reports: one index per run
            return loaded
        cached = _cached(cache, sha256) if sha256 is not None else None
        if sha256 is not None and cached is not None:
            try:
                database = _database(path, sha256, cached)
            except (KeyError, TypeError, AttributeError, ValueError):
                pass  # not the shape this version writes: index again
            else:
                _LOADED[(str(path), sha256)] = database
                return database
    sha256, document = _index(path)
    if cache is not None:
        with contextlib.suppress(OSError):  # a read-only cache costs time, not correctness
            cache.put_advisory_index(sha256, json.dumps(document).encode())
    return _database(path, sha256, document)


def _database(path: Path, sha256: str, document: dict[str, Any]) -> AdvisoryDatabase:
    by_project: dict[str, list[Advisory]] = {}
    withdrawn, newest = 0, None
    for source, reduced in document["records"].items():
        modified = _timestamp(reduced["modified"])
        if modified is not None and (newest is None or modified > newest):
            newest = modified
        if reduced["withdrawn"]:
            withdrawn += 1
            continue
        advisory = _advisory(reduced, source)
        for name in advisory.affected:
            by_project.setdefault(name, []).append(advisory)
    return AdvisoryDatabase(
        path=str(path),
        sha256=sha256,
        records=len(document["records"]),
        withdrawn=withdrawn,
        date=newest,
        by_project={name: tuple(items) for name, items in by_project.items()},
    )


def _cached(cache: Cache, sha256: str) -> Optional[dict[str, Any]]:
    data = cache.get_advisory_index(sha256)
    if data is None:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != _INDEX_FORMAT:
        return None
    return document


def database_facts(database: AdvisoryDatabase) -> dict[str, Any]:
    """The database's identity for JSON outputs: name, sha256, record counts, date."""
    return {
        "name": Path(database.path).name,
        "sha256": database.sha256,
        "records": database.records,
        "withdrawn": database.withdrawn,
        "date": format_timestamp(database.date) if database.date else None,
    }
