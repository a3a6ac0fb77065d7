"""Builders for tiny, real, byte-reproducible wheels and sdists used by the test suite.

Everything here produces files that real tools (pip, build, installers) accept,
so tests exercise lockship against the same formats it meets on PyPI, without
network access.

Determinism: building the same thing twice gives byte-identical files. Zip
entries carry the timestamp 1980-01-01 00:00:00, tar members the matching epoch
(315532800), gzip headers mtime 0 and no file name; entries are sorted and
permissions fixed.

The helpers between the ``shared core`` markers use only the standard library:
their source is copied verbatim (``inspect.getsource``) into the test build
backend (``make_backend_wheel``) so that the wheels it builds from an sdist are
written by exactly the same code as ``make_wheel``.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import inspect
import io
import json
import random
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Optional

from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "BACKEND_NAME",
    "BACKEND_VERSION",
    "SDIST_MTIME",
    "ZIP_DATE_TIME",
    "backend_source",
    "expand_tag",
    "import_name",
    "make_backend_wheel",
    "make_sdist",
    "make_wheel",
    "normalized_dist_name",
    "same_size",
]

BACKEND_NAME = "lockship-test-backend"
BACKEND_VERSION = "1.0"
BACKEND_MODULE = "lockship_test_backend"
# 1980-01-01T00:00:00Z: the earliest time a zip entry can carry; tar members use
# the same instant so wheels and sdists agree.
SDIST_MTIME = 315532800
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_PAD_CHUNK = 1024 * 1024

# A zip entry: arcname, a factory yielding its bytes (called once for RECORD and
# once for writing, so large padding never sits in memory), and whether to deflate.
_Entry = tuple[str, Callable[[], Iterable[bytes]], bool]


# ---------------------------------------------------------------- shared core
# Stdlib only, no module-level names besides imports: copied into the backend.


def _zip_date_time(epoch: Optional[int]) -> tuple[int, int, int, int, int, int]:
    """Zip timestamp for ``epoch`` seconds (None: 1980-01-01, zip's earliest date)."""
    if epoch is None:
        return (1980, 1, 1, 0, 0, 0)
    moment = time.gmtime(max(epoch, 315532800))
    return (
        moment.tm_year,
        moment.tm_mon,
        moment.tm_mday,
        moment.tm_hour,
        moment.tm_min,
        moment.tm_sec,
    )


def _expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set (``py2.py3-none-any``) into single tags."""
    parts = tag.split("-")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a wheel tag: {tag!r}")
    interpreters, abis, platforms = (part.split(".") for part in parts)
    return [f"{i}-{a}-{p}" for i in interpreters for a in abis for p in platforms]


def _metadata_text(
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str],
    requires_python: Optional[str],
    provides_extra: Sequence[str],
    metadata_version: str = "2.1",
    dynamic: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> str:
    """Core metadata (METADATA / PKG-INFO) in the email-header format."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    lines += extra
    lines += [f"Dynamic: {field}" for field in dynamic]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in provides_extra]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires_dist]
    return "\n".join(lines) + "\n"


def _wheel_text(tag: str, build_tag: Optional[str]) -> str:
    """The WHEEL file: purelib only when every tag is ``*-none-any``."""
    tags = _expand_tag(tag)
    purelib = all(t.split("-")[1:] == ["none", "any"] for t in tags)
    lines = [
        "Wheel-Version: 1.0",
        "Generator: lockship-tests (pkgbuild)",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
    ]
    if build_tag is not None:
        lines.append(f"Build: {build_tag}")
    lines += [f"Tag: {t}" for t in tags]
    return "\n".join(lines) + "\n"


def _bytes_entry(arcname: str, data: bytes, compress: bool = True) -> _Entry:
    return (arcname, lambda: (data,), compress)


def _record_row(arcname: str, chunks: Iterable[bytes]) -> list[str]:
    """One RECORD row: urlsafe-base64 sha256 without padding, and the size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")
    return [arcname, f"sha256={encoded}", str(size)]


def _write_zip(path: str, entries: list[_Entry], date_time: tuple[int, ...]) -> None:
    """Write ``entries`` in the given order with fixed time, owner system and mode."""
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, chunks, compress in entries:
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.create_system = 3  # unix, whatever the host, so the bytes never vary
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with archive.open(info, "w") as member:
                for chunk in chunks():
                    member.write(chunk)


def _assemble_wheel(
    path: str,
    payload: list[_Entry],
    dist_info: str,
    metadata: bytes,
    wheel: bytes,
    *,
    dist_info_first: bool,
    date_time: tuple[int, ...],
) -> None:
    """Write a wheel: sorted payload plus dist-info (METADATA, WHEEL, RECORD)."""
    payload = sorted(payload, key=lambda entry: entry[0])
    described = [
        _bytes_entry(f"{dist_info}/METADATA", metadata),
        _bytes_entry(f"{dist_info}/WHEEL", wheel),
    ]
    record_name = f"{dist_info}/RECORD"
    ordered = described + payload if dist_info_first else payload + described
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for arcname, chunks, _ in ordered:
        writer.writerow(_record_row(arcname, chunks()))
    writer.writerow([record_name, "", ""])  # RECORD cannot contain its own hash
    record = _bytes_entry(record_name, buffer.getvalue().encode("utf-8"))
    dist_entries = [*described, record]
    entries = dist_entries + payload if dist_info_first else payload + dist_entries
    _write_zip(path, entries, date_time)


def _write_sdist(path: str, top: str, files: dict[str, bytes], mtime: int) -> None:
    """Write a .tar.gz of ``files`` under ``top/`` with fixed owners, modes and times."""
    directories = {top}
    for relative in files:
        parts = relative.split("/")[:-1]
        directories.update("/".join([top, *parts[: i + 1]]) for i in range(len(parts)))
    members: dict[str, Optional[bytes]] = dict.fromkeys(directories)
    members.update({f"{top}/{relative}": data for relative, data in files.items()})
    with open(path, "wb") as raw:
        # filename="" keeps the output name out of the gzip header; mtime=0 keeps time out.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(members):  # a directory sorts before its contents
                    info = tarfile.TarInfo(name)
                    info.mtime = mtime
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    data = members[name]
                    if data is None:
                        info.type = tarfile.DIRTYPE
                        info.mode = 0o755
                        tar.addfile(info)
                    else:
                        info.mode = 0o644
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------ end shared core

_SHARED_CORE = (
    _zip_date_time,
    _expand_tag,
    _metadata_text,
    _wheel_text,
    _bytes_entry,
    _record_row,
    _write_zip,
    _assemble_wheel,
    _write_sdist,
)


def normalized_dist_name(name: str) -> str:
    """File-name form of a project name (``Foo.Bar`` -> ``foo_bar``)."""
    return canonicalize_name(name).replace("-", "_")


def import_name(name: str) -> str:
    """The top-level module our builders put in a distribution called ``name``."""
    return name.replace("-", "_").replace(".", "_")


def expand_tag(tag: str) -> list[str]:
    """Expand a compressed tag set (``py2.py3-none-any``) into single tags."""
    return _expand_tag(tag)


def _pad_chunks(seed: str, size: int) -> Iterable[bytes]:
    """Seeded pseudo-random bytes: incompressible, yet identical on every build."""
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        count = min(remaining, _PAD_CHUNK)
        yield rng.randbytes(count)
        remaining -= count


def make_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: Optional[str] = None,
    provides_extra: Sequence[str] = (),
    tag: str = "py3-none-any",
    build_tag: Optional[str] = None,
    files: Optional[Mapping[str, bytes]] = None,
    metadata_name: Optional[str] = None,
    metadata_version: Optional[str] = None,
    pad_bytes: int = 0,
    dist_info_first: bool = False,
    metadata_extra: Sequence[str] = (),
) -> Path:
    """Build a real, installable wheel in ``dest_dir`` and return its path.

    :param files: extra ``arcname -> bytes`` entries; an entry named
        ``{import_name}/__init__.py`` replaces the default module.
    :param metadata_name: ``Name:`` written to METADATA instead of ``name``.
    :param metadata_version: ``Version:`` written to METADATA instead of
        ``version`` (not the Metadata-Version field).
    :param pad_bytes: size of an extra stored (uncompressed) file of seeded
        random bytes, ``{import_name}/_pad.bin``, to make the wheel large.
    :param dist_info_first: write the dist-info entries first instead of last.
    :param metadata_extra: more METADATA header lines ("License-Expression: MIT").
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dist = normalized_dist_name(name)
    module = import_name(name)
    build_part = f"-{build_tag}" if build_tag is not None else ""
    path = dest_dir / f"{dist}-{version}{build_part}-{tag}.whl"

    contents = {f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    contents.update(files or {})
    payload = [_bytes_entry(arcname, data) for arcname, data in contents.items()]
    if pad_bytes > 0:
        seed = f"{dist}-{version}-{pad_bytes}"
        payload.append((f"{module}/_pad.bin", lambda: _pad_chunks(seed, pad_bytes), False))

    metadata = _metadata_text(
        metadata_name if metadata_name is not None else name,
        metadata_version if metadata_version is not None else version,
        requires_dist=requires_dist,
        requires_python=requires_python,
        provides_extra=provides_extra,
        extra=metadata_extra,
    )
    _assemble_wheel(
        str(path),
        payload,
        f"{dist}-{version}.dist-info",
        metadata.encode("utf-8"),
        _wheel_text(tag, build_tag).encode("utf-8"),
        dist_info_first=dist_info_first,
        date_time=ZIP_DATE_TIME,
    )
    return path


def same_size(*wheels: Path) -> None:
    """Pad the smaller wheels with a zip comment until all have the same size.

    A hostile index can then answer range requests from one of them and full
    downloads with another: the sizes it reports agree either way.
    """
    target = max(path.stat().st_size for path in wheels)
    for path in wheels:
        missing = target - path.stat().st_size
        if missing:
            with zipfile.ZipFile(path, "a") as archive:
                archive.comment = b"#" * missing
        assert path.stat().st_size == target, path


def _toml_table(values: Mapping[str, object]) -> str:
    # json.dumps of strings and lists of strings is valid TOML too, and the
    # backend can read it back line by line without tomllib (absent before 3.11).
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def make_sdist(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: Optional[str] = None,
    provides_extra: Sequence[str] = (),
    metadata_version: str = "2.1",
    dynamic: Sequence[str] = (),
    wheel_tag: str = "py3-none-any",
    backend_requires: Sequence[str] = (BACKEND_NAME,),
) -> Path:
    """Build a real sdist (PEP 625 name) whose build uses ``lockship-test-backend``.

    The wheel the backend builds from it carries the same name, version and
    dependencies, and the tag ``wheel_tag``.

    :param metadata_version: the PKG-INFO ``Metadata-Version``.
    :param dynamic: PKG-INFO ``Dynamic:`` fields; needs Metadata-Version 2.2+.
    """
    if dynamic and Version(metadata_version) < Version("2.2"):
        raise ValueError("Dynamic fields need Metadata-Version 2.2 or later")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dist = normalized_dist_name(name)
    top = f"{dist}-{version}"
    config: dict[str, object] = {
        "name": name,
        "version": version,
        "requires-dist": list(requires_dist),
        "provides-extra": list(provides_extra),
        "wheel-tag": wheel_tag,
    }
    if requires_python is not None:
        config["requires-python"] = requires_python
    pyproject = (
        "[build-system]\n"
        + _toml_table({"requires": list(backend_requires), "build-backend": BACKEND_MODULE})
        + "\n[tool.lockship-test]\n"
        + _toml_table(config)
    )
    pkg_info = _metadata_text(
        name,
        version,
        requires_dist=requires_dist,
        requires_python=requires_python,
        provides_extra=provides_extra,
        metadata_version=metadata_version,
        dynamic=dynamic,
    )
    files = {
        "PKG-INFO": pkg_info.encode("utf-8"),
        "pyproject.toml": pyproject.encode("utf-8"),
        f"{import_name(name)}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    path = dest_dir / f"{top}.tar.gz"
    _write_sdist(str(path), top, files, SDIST_MTIME)
    return path


_BACKEND_HEADER = '''\
"""PEP 517 build backend for lockship's hermetic tests (generated by tests/pkgbuild.py).

Builds the wheel described by ``[tool.lockship-test]`` in pyproject.toml.
Standard library only, so it installs from a test index with nothing else.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
import zipfile
from typing import Optional

__version__ = "{version}"
'''

_BACKEND_HOOKS = '''

def _config():
    """Read [tool.lockship-test]: one ``key = <JSON literal>`` per line."""
    with open("pyproject.toml", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    config = {}
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == "[tool.lockship-test]"
        elif inside and " = " in stripped:
            key, _, value = stripped.partition(" = ")
            config[key] = json.loads(value)
    return config


def _dist(name):
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _epoch():
    value = os.environ.get("SOURCE_DATE_EPOCH")
    return int(value) if value else None


def _metadata(config):
    return _metadata_text(
        config["name"],
        config["version"],
        requires_dist=config.get("requires-dist", []),
        requires_python=config.get("requires-python"),
        provides_extra=config.get("provides-extra", []),
    ).encode("utf-8")


def _dist_info(config):
    return f"{_dist(config['name'])}-{config['version']}.dist-info"


def _source_files(top):
    found = {}
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in names:
            if not name.endswith((".pyc", ".pyo")):
                full = os.path.join(root, name)
                relative = os.path.relpath(full, ".").replace(os.sep, "/")
                with open(full, "rb") as handle:
                    found[relative] = handle.read()
    return found


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    config = _config()
    dist_info = _dist_info(config)
    target = os.path.join(metadata_directory, dist_info)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "wb") as handle:
        handle.write(_metadata(config))
    with open(os.path.join(target, "WHEEL"), "wb") as handle:
        handle.write(_wheel_text(config["wheel-tag"], None).encode("utf-8"))
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    config = _config()
    module = config["name"].replace("-", "_").replace(".", "_")
    payload = [_bytes_entry(n, d) for n, d in _source_files(module).items()]
    tag = config["wheel-tag"]
    filename = f"{_dist(config['name'])}-{config['version']}-{tag}.whl"
    os.makedirs(wheel_directory, exist_ok=True)
    _assemble_wheel(
        os.path.join(wheel_directory, filename),
        payload,
        _dist_info(config),
        _metadata(config),
        _wheel_text(tag, None).encode("utf-8"),
        dist_info_first=False,
        date_time=_zip_date_time(_epoch()),
    )
    return filename


def build_sdist(sdist_directory, config_settings=None):
    config = _config()
    top = f"{_dist(config['name'])}-{config['version']}"
    files = {
        name: data
        for name, data in _source_files(".").items()
        if not name.startswith(("build/", "dist/"))
    }
    files.setdefault("PKG-INFO", _metadata(config))
    epoch = _epoch()
    os.makedirs(sdist_directory, exist_ok=True)
    _write_sdist(
        os.path.join(sdist_directory, top + ".tar.gz"),
        top,
        files,
        315532800 if epoch is None else epoch,
    )
    return top + ".tar.gz"
'''


def backend_source() -> str:
    """Source of the ``lockship_test_backend`` module: shared core plus PEP 517 hooks."""
    core = "\n\n".join(inspect.getsource(function) for function in _SHARED_CORE)
    return _BACKEND_HEADER.format(version=BACKEND_VERSION) + "\n\n" + core + _BACKEND_HOOKS


def make_backend_wheel(dest_dir: Path) -> Path:
    """Build the wheel of the PEP 517 backend that ``make_sdist`` projects use."""
    return make_wheel(
        dest_dir,
        BACKEND_NAME,
        BACKEND_VERSION,
        files={f"{BACKEND_MODULE}/__init__.py": backend_source().encode("utf-8")},
    )
