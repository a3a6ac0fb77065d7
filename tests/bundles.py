"""Bundles as ``lockship fetch`` writes them, signing keys made by ``ssh-keygen``, and tampering.

``make_bundle`` builds ``dist/<target>/`` offline in the fetch layout (see the
comment block above ``BuiltFrom`` in ``lockship/models.py`` and
``lockship.fetch``): real wheels from ``pkgbuild.make_wheel``, requirements.txt
rendered by fetch's own ``render_bundle_requirements``, a pylock rendered by
``render_pylock``, and ``bundle.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from cli_runner import run
from lockship import sshsig
from lockship._compat import tomllib
from lockship._install_script import render_sums
from lockship.fetch import render_bundle_requirements
from lockship.lockfile import lock_paths, read_lock, render_pylock, render_requirements
from lockship.metadata import parse_core_metadata, read_wheel_metadata
from lockship.models import (
    Artifact,
    BuiltFrom,
    BundleFile,
    BundleRecord,
    InputFile,
    Lock,
    LockedPackage,
    LockSettings,
    TargetInfo,
)
from lockship.origins import lock_sources
from lockship.sign import to_json
from lockship.targets import Target, parse_target
from pkgbuild import make_wheel, normalized_dist_name

SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
PASSPHRASE = "correct horse battery staple"
INDEX = "https://files.example.org/simple/"
EXCLUDE_NEWER = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# (name, version, *requires_dist)
Package = tuple[str, ...]


def make_bundle(
    tmp_path: Path,
    packages: Sequence[Package] = (("alpha", "1.0"), ("beta", "2.0", "alpha>=1")),
    target: Union[str, Target] = "host",
    *,
    built: Sequence[str] = (),
    tags: Optional[Mapping[str, str]] = None,
    metadata_names: Optional[Mapping[str, str]] = None,
    exclude_newer: Optional[datetime] = EXCLUDE_NEWER,
    metadata: Optional[Mapping[str, Sequence[str]]] = None,
    members: Optional[Mapping[str, Mapping[str, bytes]]] = None,
    origin: str = "https://files.example.org/packages",
    real_wheels: Sequence[Path] = (),
) -> Path:
    """Write ``tmp_path/dist/<target>`` as fetch would and return it.

    :param built: names of packages whose wheel was built from an sdist.
    :param tags: wheel tag per package name (default ``py3-none-any``).
    :param metadata_names: a METADATA ``Name:`` that lies, per package name.
    :param metadata: more METADATA header lines per package name.
    :param members: more wheel members per package name (``x.dist-info/sboms/...``).
    :param origin: where the files are said to come from: ``origin/<file name>``, or
        ``origin`` with ``{filename}`` replaced.
    :param real_wheels: real wheel files to carry as well (a pip wheel, say), pinned
        like the made ones; their name and version come from the file name.
    """
    target = target if isinstance(target, Target) else parse_target(target)
    bundle = tmp_path / "dist" / target.name
    info = TargetInfo(
        name=target.name,
        description=target.description,
        floor=target.floor,
        python_full_version=target.marker_environment["python_full_version"],
        marker_environment=target.marker_environment,
        tags_sha256=target.tags_sha256,
        tags_count=len(target.tags),
        source=target.source,
    )
    locked, files = [], []
    (bundle / "wheels").mkdir(parents=True, exist_ok=True)
    real = {}
    for path in real_wheels:
        real[path.name.split("-")[0]] = shutil.copy(path, bundle / "wheels" / path.name)
    packages = [*packages, *((n, Path(w).name.split("-")[1]) for n, w in real.items())]
    for name, version, *requires in packages:
        wheel = Path(real[name]) if name in real else make_wheel(
            bundle / "wheels",
            name,
            version,
            requires_dist=requires,
            tag=(tags or {}).get(name, "py3-none-any"),
            metadata_name=(metadata_names or {}).get(name),
            metadata_extra=(metadata or {}).get(name, ()),
            files=(members or {}).get(name),
        )
        data = wheel.read_bytes()
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        url = origin.format(filename=wheel.name) if "{" in origin else f"{origin}/{wheel.name}"
        built_from = None
        artifact = Artifact(kind="wheel", filename=wheel.name, url=url, sha256=sha256, size=size)
        if name in built:
            sdist = f"{normalized_dist_name(name)}-{version}.tar.gz"
            built_from = BuiltFrom(
                sdist_filename=sdist,
                sdist_url=f"https://files.example.org/packages/{sdist}",
                sdist_sha256="5" * 64,
                sdist_size=1234,
                build_backend="setuptools.build_meta",
                build_requires=("setuptools==69.0.0",),
                source_date_epoch=int(EXCLUDE_NEWER.timestamp()),
            )
            artifact = Artifact(
                kind="sdist", filename=sdist, url=built_from.sdist_url, sha256="5" * 64, size=1234
            )
        core = parse_core_metadata(read_wheel_metadata(wheel, wheel.name), where=wheel.name)
        names = {p[0] for p in packages}
        depends = tuple(sorted({r for r in (re.split(r"[ <>=!~;\[]", q)[0] for q in requires) if r in names}))
        via = tuple(p[0] for p in packages if name in {re.split(r"[ <>=!~;\[]", q)[0] for q in p[2:]})
        locked.append(
            LockedPackage(
                name=name, version=version, artifact=artifact, index=INDEX, dependencies=depends,
                via=via or ("-r requirements.in",),
                metadata_sha256=core.sha256,
            )
        )
        files.append(
            BundleFile(
                path=f"wheels/{wheel.name}",
                name=name,
                version=version,
                sha256=sha256,
                size=size,
                origin_url=built_from.sdist_url if built_from else url,
                kind="built-wheel" if built_from else "wheel",
                built_from=built_from,
            )
        )
    inputs = (InputFile(path="requirements.in", sha256="1" * 64),)
    settings = LockSettings(indexes=(INDEX,))
    lock = Lock(
        lockship_version="0.1.0",
        target=info,
        inputs=inputs,
        exclude_newer=exclude_newer,
        settings=settings,
        command=f"lockship lock -r requirements.in --target {target.name}",
        fingerprint="",
        packages=tuple(sorted(locked, key=lambda p: p.name)),
        sources=lock_sources(locked, settings, urls={p.name: p.artifact.url for p in locked}),
    ).fingerprinted()
    lock_file = lock_paths(bundle, target.name)[1]
    lock_file.write_text(render_pylock(lock))
    files.sort(key=lambda f: f.path)
    (bundle / "requirements.txt").write_text(render_bundle_requirements(lock, files))
    record = BundleRecord(
        lockship_version="0.1.0",
        target=info,
        lock_file=lock_file.name,
        lock_fingerprint=lock.fingerprint,
        inputs=inputs,
        exclude_newer=exclude_newer,
        files=tuple(files),
    )
    (bundle / "bundle.json").write_text(to_json(record))
    return bundle


# --- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """Keys made by ssh-keygen; ``allowed`` trusts plain and encrypted as "release"."""

    plain: Path
    encrypted: Path  # -N PASSPHRASE
    other: Path  # trusted by nobody
    allowed: Path

    def pub(self, key: Path) -> str:
        return key.with_name(key.name + ".pub").read_text().strip()


def keygen(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]


def make_keys(directory: Path) -> Keys:
    def key(name: str, passphrase: str = "") -> Path:
        path = directory / name
        proc = keygen("-q", "-t", "ed25519", "-N", passphrase, "-C", "release", "-f", str(path))
        assert proc.returncode == 0, proc.stderr
        return path

    keys = Keys(key("plain"), key("encrypted", PASSPHRASE), key("other"), directory / "allowed")
    keys.allowed.write_text(
        f'release namespaces="lockship" {keys.pub(keys.plain)}\n'
        f'release namespaces="lockship" {keys.pub(keys.encrypted)}\n'
    )
    return keys


def sign(bundle: Path, keys: Keys, *args: str) -> None:
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "-q", *args)
    assert code == 0, err


def verify(target: Path, keys: Keys, *args: str) -> tuple[int, str, str]:
    return run("verify", str(target), "--allowed-signers", str(keys.allowed), *args)


# --- tampering ------------------------------------------------------------------------------


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def only_wheel(bundle: Path, name: str) -> Path:
    (wheel,) = (bundle / "wheels").glob(f"{name}-*.whl")
    return wheel


def reseal(bundle: Path, key: Path) -> None:
    """Act as a careless signer: re-hash manifest.json's files, rewrite SHA256SUMS, re-sign.

    The signature and SHA256SUMS are then valid, so only the cross-checks between
    the bundle's documents can find what was changed.
    """
    manifest = json.loads((bundle / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (bundle / entry["path"]).read_bytes()
        entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = {e["path"]: e["sha256"] for e in manifest["files"]}
    sums["manifest.json"] = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    (bundle / "SHA256SUMS").write_text(render_sums(sums))
    signature = sshsig.sign((bundle / "SHA256SUMS").read_bytes(), sshsig.load_signing_key(key))
    (bundle / "SHA256SUMS.sig").write_text(signature)


def forge_lock(lock: Union[str, Path], name: str, **fields: object) -> None:
    """Hand-edit one package of a pylock as text, and re-render its .txt to match.

    :param fields: version, filename, url, sha256, size, origin: the new values.
    """
    path = Path(lock)
    text = path.read_text()
    package = next(p for p in tomllib.loads(text)["packages"] if p["name"] == name)
    dist = (package.get("wheels") or [package.get("sdist")])[0]
    current = {
        "version": ("version", package["version"]),
        "filename": ("name", dist["name"]),
        "url": ("url", dist["url"]),
        "sha256": ("sha256", dist["hashes"]["sha256"]),
        "size": ("size", dist["size"]),
        "origin": ("origin", package["tool"]["lockship"].get("origin")),
    }
    block = re.search(rf'(?ms)^\[\[packages\]\]\nname = "{name}"\n.*?(?=^\[\[packages\]\]|\Z)', text)
    assert block is not None
    edited = block.group(0)
    for field, value in fields.items():
        key, before = current[field]
        line = f"{key} = {json.dumps(before)}\n"
        assert edited.count(line) == 1, (field, line)
        edited = edited.replace(line, f"{key} = {json.dumps(value)}\n")
    path.write_text(text.replace(block.group(0), edited))
    txt = path.with_name(path.name[len("pylock."):].replace(".toml", ".txt"))
    txt.write_text(render_requirements(read_lock(path)))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_files(cache: Optional[Path] = None) -> dict[str, str]:
    """Every cached file, which must be stored under the sha256 of its bytes."""
    root = cache if cache is not None else Path(os.environ["LOCKSHIP_CACHE_DIR"])
    files = {p.name: sha256_of(p) for p in (root / "v1" / "files").glob("*/*")}
    for name, digest in files.items():
        assert name == digest, f"cache holds {name} with bytes hashing to {digest}"
    return files


def check_bundle(bundle: Path) -> dict[str, str]:
    """A fetched bundle holds exactly the files bundle.json and requirements.txt name."""
    record = json.loads((bundle / "bundle.json").read_text())
    wheels = {p.name: sha256_of(p) for p in (bundle / "wheels").iterdir()}
    assert {Path(f["path"]).name: f["sha256"] for f in record["files"]} == wheels
    pinned = [
        line.split("sha256:")[1]
        for line in (bundle / "requirements.txt").read_text().splitlines()
        if "--hash" in line
    ]
    assert sorted(pinned) == sorted(wheels.values())
    return wheels


def nest(top: Path, depth: int, *, remove: bool = False) -> None:
    """Make (or remove) ``depth`` nested directories ``d`` under ``top``, iteratively:
    os.makedirs, Path.mkdir and shutil.rmtree all recurse once per level."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for _ in range(depth):
            if not remove:
                os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        if remove:
            while len(fds) > 1:
                os.close(fds.pop())
                os.rmdir("d", dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)
