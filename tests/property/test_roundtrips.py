"""Property tests: what lockship writes it reads back unchanged, and its parsers never crash.

Round trips (for arbitrary valid values, not hand-picked examples):

- a ``Lock`` through ``render_pylock`` -> file -> ``read_lock`` is the same model,
  and both renderings are deterministic (same model, same bytes);
- a ``Manifest`` through ``to_json`` -> ``Manifest.model_validate_json``;
- SHA256SUMS through ``render_sums`` -> file -> ``read_sums``, for every path
  ``lockship sign`` would accept.

Parsers fed arbitrary bytes or text raise lockship's own errors (or, for the
internal ones, the exception their callers are documented to catch), never
anything else: index pages, core metadata, zip directories, requirements
files, locks, probe files and OpenSSH key files.
"""

from __future__ import annotations

import io
import json
import os
import re
import string
import struct
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from lockship import index, lockfile, metadata, sshsig, targets
from lockship._install_script import SAFE_PATH, SIGNATURE, SUMS, read_sums, render_sums
from lockship._zip import RangeFile, dist_info_metadata_chooser, local_file, read_member
from lockship.errors import LockshipError
from lockship.inputs import read_requirements
from lockship.models import (
    Artifact,
    BuiltFrom,
    InputFile,
    Lock,
    LockedPackage,
    LockSettings,
    LockSource,
    Manifest,
    ManifestFile,
    TargetInfo,
)
from lockship.sign import to_json

# Moderate by default; LOCKSHIP_FUZZ_EXAMPLES=5000 for a long run.
SETTINGS = settings(
    max_examples=int(os.environ.get("LOCKSHIP_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------------------------
# strategies


E = TypeVar("E", bound=BaseException)


def outcome(expected: type[E], function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Optional[E]]:
    """(result, None), or (None, the error) when ``function`` raised ``expected``; any
    other exception propagates and fails the test."""
    try:
        return function(*args, **kwargs), None
    except expected as exc:
        return None, exc


def _target_info(name: str) -> TargetInfo:
    target = targets.parse_target(name)
    return TargetInfo(
        name=target.name,
        description=target.description,
        floor=target.floor,
        python_full_version=target.marker_environment["python_full_version"],
        marker_environment=target.marker_environment,
        tags_sha256=target.tags_sha256,
        tags_count=len(target.tags),
        source=target.source,
    )


TARGETS = [
    _target_info(n)
    for n in ("linux-cp39", "linux_aarch64-cp311", "musllinux-cp312", "windows-cp313", "host")
]

hexdigest = st.binary(min_size=32, max_size=32).map(bytes.hex)
# Free text: anything TOML and JSON can carry (hypothesis never makes lone surrogates).
text = st.text(max_size=40)
words = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
canonical_names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
versions = st.builds(
    lambda release, pre, post, dev, local: str(
        Version(
            ".".join(map(str, release))
            + (f"{pre[0]}{pre[1]}" if pre else "")
            + (f".post{post}" if post is not None else "")
            + (f".dev{dev}" if dev is not None else "")
            + (f"+{local}" if local else "")
        )
    ),
    st.lists(st.integers(0, 3000), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 9)),
    st.none() | st.integers(0, 9),
    st.none() | st.integers(0, 9),
    st.none() | st.from_regex(r"[a-z0-9]{1,5}(\.[a-z0-9]{1,5})?", fullmatch=True),
)
moments = st.datetimes(
    min_value=datetime(1980, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(timezone.utc),
)
urls = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._~/-]{0,30}", fullmatch=True),
)
specifiers = st.sampled_from(
    ["", ">=3.8", ">=3.9,<4", "!=3.0.*,>=2.7", "~=3.10", "==3.*", "<3.14,>=3.9.1"]
).map(lambda s: str(SpecifierSet(s)) or None)


@st.composite
def locked_packages(draw: st.DrawFn, name: str, settings_: LockSettings) -> LockedPackage:
    version = draw(versions)
    kind = draw(st.sampled_from(["wheel", "sdist"]))
    dist = name.replace("-", "_")
    if kind == "wheel":
        tag = draw(st.sampled_from(["py3-none-any", "cp39-cp39-manylinux_2_17_x86_64", "py2.py3-none-any"]))
        build = draw(st.sampled_from(["", "-1", "-2_x"]))
        filename = f"{dist}-{version}{build}-{tag}.whl"
    else:
        filename = f"{dist}-{version}.tar.gz"
    index_choices = [st.none(), urls]
    if settings_.indexes:
        index_choices.append(st.sampled_from(settings_.indexes))
    return LockedPackage(
        name=name,
        version=version,
        artifact=Artifact(
            kind=kind,
            filename=filename,
            url=draw(urls),
            sha256=draw(hexdigest),
            size=draw(st.integers(0, 2**53)),
            upload_time=draw(st.none() | moments),
            query_removed=draw(st.booleans()),
        ),
        index=draw(st.one_of(*index_choices)),
        requires_python=draw(specifiers),
        extras=tuple(draw(st.lists(canonical_names, max_size=3, unique=True))),
        dependencies=tuple(draw(st.lists(canonical_names, max_size=4, unique=True))),
        via=tuple(draw(st.lists(text, max_size=3))),
        metadata_sha256=draw(hexdigest),
    )


lock_sources = st.builds(
    LockSource,
    url=urls,
    kind=st.sampled_from(["index", "find-links"]),
    file_locations=st.lists(urls, max_size=3).map(tuple),
)


@st.composite
def locks(draw: st.DrawFn) -> Lock:
    lock_settings = LockSettings(
        indexes=tuple(draw(st.lists(urls, max_size=2, unique=True))),
        find_links=tuple(draw(st.lists(text, max_size=2))),
        index_strategy=draw(st.sampled_from(["first-index", "unsafe-first-match", "unsafe-best-match"])),
        pre=draw(st.booleans()),
        only_binary=tuple(draw(st.lists(words, max_size=2))),
        extras=tuple(draw(st.lists(words, max_size=2))),
        groups=tuple(draw(st.lists(words, max_size=2))),
    )
    target = draw(st.sampled_from(TARGETS))
    inputs = tuple(
        draw(
            st.lists(
                st.builds(InputFile, path=text, sha256=hexdigest, scope=st.none() | text),
                max_size=3,
            )
        )
    )
    exclude_newer = draw(st.none() | moments)
    names = sorted(draw(st.lists(canonical_names, max_size=6, unique=True)))
    packages = tuple(draw(locked_packages(name, lock_settings)) for name in names)
    return Lock(
        lockship_version=draw(st.sampled_from(["0.1.0", "1.2.3rc1", "0.0.0+local"])),
        target=target,
        inputs=inputs,
        exclude_newer=exclude_newer,
        settings=lock_settings,
        command=draw(text),
        fingerprint="",
        packages=packages,
        sources=tuple(draw(st.lists(lock_sources, max_size=3))),
    ).fingerprinted()


built_from = st.builds(
    BuiltFrom,
    sdist_filename=text,
    sdist_url=urls,
    sdist_sha256=hexdigest,
    sdist_size=st.integers(0, 2**40),
    build_backend=text,
    build_requires=st.lists(text, max_size=3).map(tuple),
    source_date_epoch=st.integers(0, 2**33),
)
safe_paths = st.from_regex(SAFE_PATH, fullmatch=True).filter(lambda p: p not in (SUMS, SIGNATURE))
manifests = st.builds(
    Manifest,
    lockship_version=text,
    target=st.sampled_from(TARGETS),
    inputs=st.lists(st.builds(InputFile, path=text, sha256=hexdigest, scope=st.none() | text), max_size=3).map(tuple),
    exclude_newer=st.none() | moments,
    lock_fingerprint=text,
    files=st.lists(
        st.builds(
            ManifestFile,
            path=safe_paths,
            size=st.integers(0, 2**50),
            sha256=hexdigest,
            kind=st.sampled_from(
                ["wheel", "built-wheel", "lock", "requirements", "record", "install-script", "doc"]
            ),
            name=st.none() | canonical_names,
            version=st.none() | versions,
            origin_url=st.none() | urls,
            built_from=st.none() | built_from,
            origin_url_query_removed=st.booleans(),
        ),
        max_size=5,
    ).map(tuple),
    series=st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,20}", fullmatch=True),
    sequence=st.integers(0, 2**40),
    signed_at=st.none() | moments,
    expires=st.none() | moments,
)

# --------------------------------------------------------------------------------------------
# round trips


@SETTINGS
@given(lock=locks())
def test_lock_round_trips_through_pylock(lock: Lock) -> None:
    rendered = lockfile.render_pylock(lock)
    assert lockfile.render_pylock(lock) == rendered  # deterministic
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "pylock.t.toml"
        path.write_bytes(rendered.encode("utf-8"))
        back = lockfile.read_lock(path)
    assert back == lock
    assert lockfile.render_pylock(back) == rendered
    assert lockfile.render_requirements(back) == lockfile.render_requirements(lock)
    assert lockfile.render_requirements(lock) == lockfile.render_requirements(lock)


@SETTINGS
@given(lock=locks())
def test_write_lock_writes_what_the_renderers_give(lock: Lock) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        assert lockfile.write_lock(lock, Path(scratch)) is True
        txt, toml = lockfile.lock_paths(Path(scratch), lock.target.name)
        assert txt.read_bytes().decode("utf-8") == lockfile.render_requirements(lock)
        assert lockfile.read_lock(toml) == lock
        assert lockfile.write_lock(lock, Path(scratch)) is False  # same text: not rewritten


@SETTINGS
@given(manifest=manifests)
def test_manifest_round_trips_through_json(manifest: Manifest) -> None:
    text_ = to_json(manifest)
    assert to_json(manifest) == text_
    back = Manifest.model_validate_json(text_)
    assert back == manifest
    assert to_json(back) == text_


@SETTINGS
@given(digests=st.dictionaries(safe_paths, hexdigest, max_size=20))
def test_sha256sums_round_trip(digests: dict[str, str]) -> None:
    rendered = render_sums(digests)
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, SUMS).write_bytes(rendered.encode("utf-8"))
        problems: list[str] = []
        back = read_sums(scratch, problems)
    assert problems == []
    assert back == digests
    assert render_sums(dict(reversed(list(digests.items())))) == rendered  # order-independent


@SETTINGS
@given(
    digests=st.dictionaries(safe_paths, hexdigest, min_size=1, max_size=5),
    bad=st.sampled_from(["../x", "/abs", "a/../b", "a b", "a\\b", ".hidden", "a//b", SUMS, SIGNATURE, "x\x00y"]),
)
def test_sha256sums_refuses_unsafe_paths_it_would_never_write(digests: dict[str, str], bad: str) -> None:
    rendered = render_sums(digests) + f"{'0' * 64}  {bad}\n"
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, SUMS).write_bytes(rendered.encode("utf-8"))
        problems: list[str] = []
        back = read_sums(scratch, problems)
    assert back == digests
    assert len(problems) == 1 and "refusing path" in problems[0]


# --------------------------------------------------------------------------------------------
# parsers on arbitrary input


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
entry_keys = st.sampled_from(
    ["filename", "url", "hashes", "size", "yanked", "requires-python", "upload-time",
     "core-metadata", "dist-info-metadata"]
)
hostile_strings = st.sampled_from(
    ["http://[::1", "http://u:p@h:99999/x.whl", "http://u:p@[::1/x", "file:///etc/passwd",
     "//other.example/x.whl", "../../x.whl", "a-1.0-py3-none-any.whl", "\x00", "", "http://h:-1/",
     "https://user@host:notaport/a", "javascript:alert(1)", "data:,x", "http://h/a#sha256=" + "a" * 64]
) | st.text(max_size=30)
entries = st.dictionaries(entry_keys, hostile_strings | json_values, max_size=9)
page_urls = st.sampled_from(
    ["https://pypi.example/simple/a/", "http://127.0.0.1:1/simple/a/", "file:///srv/simple/a/"]
)


def _only_dist_or_none(entry: object, page_url: str) -> None:
    dist = index.entry_to_dist(entry, page_url, "origin")  # type: ignore[arg-type]
    if dist is not None:
        assert isinstance(dist, index.DistFile)
        assert dist.url.startswith(("http://", "https://", "file:"))
        if not page_url.startswith("file:"):
            assert not dist.url.startswith("file:")  # an http index never links to file:
        assert "@" not in dist.url.split("/")[2] if "://" in dist.url else True


@SETTINGS
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_json_pages_raise_only_value_error(data: bytes) -> None:
    try:
        found = index.json_entries(data)
    except ValueError:
        return
    for entry in found:
        _only_dist_or_none(entry, "https://pypi.example/simple/a/")


@SETTINGS
@given(entry=entries, page_url=page_urls)
def test_entry_to_dist_never_raises(entry: dict[str, object], page_url: str) -> None:
    _only_dist_or_none(entry, page_url)
    grouped = index.group_entries(canonicalize_name("a"), [entry])
    for group in grouped.values():
        for item in group:
            _only_dist_or_none(item, page_url)


html_fragments = st.lists(
    st.sampled_from(
        ['<a href="', '">', "</a>", '<base href="', "<a ", "data-yanked", "=", '"', "'",
         'data-core-metadata="sha256=', 'data-requires-python="&gt;=3', "#sha256=", "&#0;", "&amp;",
         "<!--", "-->", "<![CDATA[", "<script>", "http://[::1", "../", "/etc/passwd", "file:///x",
         "a-1.0-py3-none-any.whl", "\\", "\x00", "%00", "%2F", "<a href=x.whl>", "<", ">"]
    )
    | st.text(max_size=10),
    max_size=25,
).map("".join)


@SETTINGS
@given(page=html_fragments, page_url=page_urls)
def test_html_pages_raise_only_value_error(page: str, page_url: str) -> None:
    try:
        found = index.html_entries(page, page_url)
    except ValueError:
        return  # _parse turns it into "malformed index page" (NetworkError)
    for entry in found:
        _only_dist_or_none(entry, page_url)


header_lines = st.lists(
    st.sampled_from(
        ["Metadata-Version: 2.1", "Name: a", "Name:", "Version: 1.0", "Version: nope",
         "Requires-Dist: b>=1", "Requires-Dist: b[", "Requires-Dist: c; python_version <",
         "Requires-Python: >=3.8", "Requires-Python: >>3", "Provides-Extra: x", "  folded",
         "\tfolded", "", ":", "Name", "\x00\xff"]
    )
    | st.text(max_size=30),
    max_size=12,
).map("\n".join)


@SETTINGS
@given(data=st.binary(max_size=300) | header_lines.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_core_metadata_raises_only_metadata_error(data: bytes) -> None:
    headers = metadata.read_headers(data)
    assert all(isinstance(v, list) for v in headers.values())
    meta, error = outcome(metadata.MetadataError, metadata.parse_core_metadata, data, where="x.whl")
    if error is not None:
        assert error.where == "x.whl" and isinstance(error, LockshipError)
    else:
        assert meta.name == canonicalize_name(meta.name)


def _zip_with(metadata_bytes: bytes) -> bytes:
    import zipfile  # noqa: PLC0415

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/__init__.py", b"")
        archive.writestr("a-1.0.dist-info/METADATA", metadata_bytes)
        archive.writestr("a-1.0.dist-info/RECORD", b"")
    return buffer.getvalue()


VALID_ZIP = _zip_with(b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\n\n" + b"description " * 200)


@st.composite
def mangled_zips(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([VALID_ZIP, _zip_with(b"Name: a\nVersion: 1.0\n")])))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "ff", "zero", "cut", "insert"]))
        if how == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif how in ("ff", "zero"):
            width = draw(st.integers(1, 4))
            data[position : position + width] = (b"\xff" if how == "ff" else b"\x00") * width
        elif how == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


_EOCD_ZIP64 = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0)


@SETTINGS
@given(data=st.binary(max_size=400) | mangled_zips())
@example(data=_EOCD_ZIP64)  # a zip64 locator would lie before the start of the file
@example(data=b"x" * 5 + _EOCD_ZIP64)
@example(data=struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, 46, 2**31, 0))  # CD past the end
def test_zip_reader_raises_only_value_error(data: bytes) -> None:
    choose = dist_info_metadata_chooser("a", "1.0")

    def fetch(start: int, length: int) -> bytes:
        return data[start : start + length]

    tail = data[-256:]
    archive = RangeFile(fetch, len(data), prefetched={len(data) - len(tail): tail} if tail else None)
    found, _ = outcome(ValueError, read_member, archive, choose)
    if found is not None:
        name, _ = found
        assert name.endswith(".dist-info/METADATA") and archive.fetched <= len(data)
    # The same through a real file (seek errors on a file are OSError, not ValueError).
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        outcome(ValueError, read_member, local_file(handle), choose)


def test_zip_reader_valid_wheel_still_reads() -> None:
    with tempfile.TemporaryFile() as handle:
        handle.write(VALID_ZIP)
        handle.flush()
        name, content = read_member(local_file(handle), dist_info_metadata_chooser("a", "1.0"))
    assert name == "a-1.0.dist-info/METADATA" and content.startswith(b"Metadata-Version")


requirement_lines = st.lists(
    st.sampled_from(
        ["a", "a==1", "a[x]>=1; python_version<'3'", "-r other.txt", "-c c.txt", "-e .", "./local",
         "--index-url https://i.example/simple", "-i", "--extra-index-url", "--hash=sha256:" + "a" * 64,
         "--hash", "--find-links /tmp", "--pre", "--only-binary :all:", "--no-binary", "${HOME}", "${",
         "\\", "# comment", "a @ https://x.example/a.whl", "git+https://x/y", "--unknown", "'", '"',
         "-", "--", "a==", "[x]", "; ", "http://[::1", "--trusted-host", "-f", "a ; extra == 'x'"]
    )
    | st.text(max_size=20),
    max_size=8,
).map("\n".join)


@SETTINGS
@given(content=requirement_lines | st.binary(max_size=200))
def test_requirements_files_raise_only_lockship_errors(content: object) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "requirements.in"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8", errors="surrogatepass")
        (Path(scratch) / "other.txt").write_text("b\n")
        _, error = outcome(LockshipError, read_requirements, [path], environ={"HOME": "/home/x"})
        assert error is None or str(error)


toml_fragments = st.lists(
    st.sampled_from(
        ['lock-version = "1.0"\n', 'created-by = "lockship"\n', "[tool.lockship]\n",
         'lockship_version = "0.1.0"\n', "command = 1\n", "[[packages]]\n", 'name = "a"\n',
         'version = "1.0"\n', "[packages.sdist]\n", "[[packages.wheels]]\n", 'url = "https://x/a"\n',
         "size = 3\n", "size = -1\n", f'hashes = {{sha256 = "{"a" * 64}"}}\n', "hashes = {}\n",
         "[packages.tool.lockship]\n", "via = 5\n", 'via = "abc"\n', "extras = [1]\n", "[packages.tool]\n",
         'lockship = "x"\n', "packages = []\n", "dependencies = [{name = 1}]\n", "dependencies = [1]\n",
         '[tool.lockship.target]\nname = "t"\n', "exclude_newer = 2024-01-01T00:00:00Z\n",
         "upload-time = 2024-01-01\n", 'name = "a-1.0.tar.gz"\n', 'index = "https://x"\n', "= \n", "[\n",
         'environments = ["python_version >= \'3\'"]\n', 'requires-python = ">=3"\n', "tool = 3\n"]
    )
    | st.text(max_size=15),
    max_size=14,
).map("".join)


@SETTINGS
@given(content=toml_fragments | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
def test_read_lock_raises_only_input_errors(content: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "pylock.t.toml"
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        _, error = outcome(LockshipError, lockfile.read_lock, path)
        # the file, and for a TOML syntax error its line
        located = error is not None and re.fullmatch(re.escape(str(path)) + r"(:\d+)?", error.where or "")
        assert error is None or (error.exit_code == 3 and located)


DIGEST = f'metadata-sha256 = "{"b" * 64}"\n'


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ('[packages.tool]\nlockship = "x"\n', "packages[0]"),
        (f"[packages.tool.lockship]\nvia = 5\n{DIGEST}", "via"),
        (f"[packages.tool.lockship]\nextras = 7\n{DIGEST}", "extras"),
        (f'[packages.tool.lockship]\nvia = "abc"\n{DIGEST}', "via"),
        (f"[packages.tool.lockship]\nvia = []\n{DIGEST}[tool.lockship.packages]\n", "packages"),
        ('[packages.tool.lockship]\nvia = []\nmetadata-sha256 = "b"\n',
         "(a) has no metadata-sha256 in [tool.lockship]: the lock was made by an older lockship"),
        ("[packages.tool.lockship]\nvia = []\n",
         "(a) has no metadata-sha256 in [tool.lockship]: the lock was made by an older lockship"),
    ],
)
def test_read_lock_names_a_malformed_tool_table(tmp_path: Path, fragment: str, message: str) -> None:
    lock = Lock(
        lockship_version="0.1.0", target=TARGETS[0], inputs=(), settings=LockSettings(), command="c",
        fingerprint="f",
        packages=(LockedPackage(name="a", version="1.0", artifact=Artifact(
            kind="sdist", filename="a-1.0.tar.gz", url="https://x.example/a", sha256="a" * 64, size=1),
            metadata_sha256="b" * 64),),
    )
    text_ = lockfile.render_pylock(lock)
    table = "[packages.tool.lockship]\nvia = []\n" + f'metadata-sha256 = "{"b" * 64}"\n'
    assert table in text_
    path = tmp_path / "pylock.t.toml"
    path.write_text(text_.replace(table, fragment))
    with pytest.raises(LockshipError) as caught:
        lockfile.read_lock(path)
    assert caught.value.exit_code == 3 and message in str(caught.value)


def test_probe_file_nested_too_deeply_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "target.json"
    path.write_text("[" * 100_000)
    with pytest.raises(LockshipError) as caught:
        targets.load_probe_file(path)
    assert caught.value.exit_code == 3


def test_read_lock_refuses_a_deeply_nested_file(tmp_path: Path) -> None:
    path = tmp_path / "pylock.t.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(LockshipError) as caught:
        lockfile.read_lock(path)
    assert caught.value.exit_code == 3


MARKER_VALUES = ["3.9", "linux", "x86_64", "cpython", "", "3", 'x86_64"', "Linux\n--index-url http://evil/"]
probe_documents = st.fixed_dictionaries(
    {},
    optional={
        "marker_environment": st.one_of(
            json_values,
            st.fixed_dictionaries({k: st.text(max_size=8) | json_values for k in targets.MARKER_KEYS}),
        ),
        "tags": st.lists(st.sampled_from(["py3-none-any", "cp39-cp39-linux_x86_64", "x", "a-b", "a-b-c-d", ""]) | json_values, max_size=4)
        | st.just(["py3-none-any"])
        | json_values,
        "target": json_values | st.text(max_size=10),
        "glibc": json_values,
        "pip_version": json_values,
    },
)


@SETTINGS
@given(document=json_values | probe_documents, raw=st.none() | st.binary(max_size=60))
def test_probe_files_raise_only_input_errors(document: object, raw: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "target.json"
        path.write_bytes(raw if raw is not None else json.dumps(document).encode())
        target, error = outcome(LockshipError, targets.load_probe_file, path)
        assert error.exit_code == 3 if error is not None else target.tags and target.name


BULLSEYE = json.loads((Path(__file__).parents[1] / "data" / "targets" / "bullseye-amd64.json").read_text())
HOSTILE_VALUES = st.sampled_from(['x86_64"', "Linux\n--index-url http://evil/", "3", "", "a\rb", "\x00"])


@st.composite
def valid_probes(draw: st.DrawFn) -> dict[str, object]:
    """A real probe file with at most one marker value, glibc or pip_version replaced."""
    document = json.loads(json.dumps(BULLSEYE))
    key = draw(st.sampled_from([None, "glibc", "pip_version", "target", *targets.MARKER_KEYS]))
    if key is not None:
        value = draw(HOSTILE_VALUES | st.text(max_size=10))
        (document["marker_environment"] if key in targets.MARKER_KEYS else document)[key] = value
    return document


@SETTINGS
@given(document=valid_probes())
def test_accepted_probe_files_make_locks(document: dict[str, object]) -> None:
    """A probe file lockship accepts gives a target whose lock renders: its values make
    valid PEP 508 markers, and the lock header stays comment lines."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "target.json"
        path.write_text(json.dumps(document))
        target, error = outcome(LockshipError, targets.load_probe_file, path)
    if error is not None:
        assert error.exit_code == 3
        return
    info = TargetInfo(
        name=target.name, description=target.description, floor=target.floor,
        python_full_version=target.marker_environment["python_full_version"],
        marker_environment=target.marker_environment, tags_sha256=target.tags_sha256,
        tags_count=len(target.tags), source=target.source,
    )
    lock = Lock(lockship_version="0.1.0", target=info, inputs=(), settings=LockSettings(),
                command="lockship lock", fingerprint="f", packages=())
    lockfile.render_pylock(lock)
    assert all(line.startswith("#") for line in lockfile.render_requirements(lock).splitlines())


key_blobs = st.binary(max_size=200).map(
    lambda b: "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    + __import__("base64").b64encode(b"openssh-key-v1\x00" + b).decode()
    + "\n-----END OPENSSH PRIVATE KEY-----\n"
)


@SETTINGS
@given(content=st.binary(max_size=200).map(lambda b: b.decode("latin-1")) | key_blobs, passphrase=st.none() | st.binary(max_size=8))
def test_signing_key_files_raise_only_lockship_errors(content: str, passphrase: bytes | None) -> None:
    # sshsig's signature and allowed_signers parsers are fuzzed in test_sshsig.py.
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "id_ed25519"
        path.write_bytes(content.encode("latin-1"))
        outcome(LockshipError, sshsig.load_signing_key, path, passphrase)


@pytest.mark.parametrize("page", [b"[" * 100_000, b'{"files": ' + b"[" * 100_000, b'{"a":' * 50_000])
def test_deeply_nested_json_page_is_a_value_error(page: bytes) -> None:
    with pytest.raises(ValueError):
        index.json_entries(page)
