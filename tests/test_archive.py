"""Deterministic bundle archives, and extraction that refuses hostile tar files."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bundles import EXCLUDE_NEWER, SSH_KEYGEN, Keys, make_bundle, run, sign, verify
from lockship.archive import DEFAULT_MTIME, archive_mtime, extract_archive, write_archive
from lockship.errors import InputError

pytestmark = pytest.mark.skipif(not Path(SSH_KEYGEN).exists(), reason="needs ssh-keygen")


@pytest.fixture
def signed(tmp_path: Path, keys: Keys) -> Path:
    bundle = make_bundle(tmp_path)
    sign(bundle, keys)
    return bundle


def test_archive_is_byte_identical_on_rebuild(
    tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")  # signed_at: the same signing time
    archives = []
    for run_dir in ("one", "two"):
        bundle = make_bundle(tmp_path / run_dir)
        code, _, err = run(
            "sign", str(bundle), "--key", str(keys.plain), "--archive-dir", str(tmp_path / run_dir)
        )
        assert code == 0, err
        archives.append(tmp_path / run_dir / "host.tar")
        assert f"wrote {archives[-1]}\n" in err
    assert archives[0].read_bytes() == archives[1].read_bytes()
    sums = subprocess.run(
        ["sha256sum", "-c", "host.tar.sha256"], cwd=tmp_path / "one", capture_output=True, text=True
    )
    assert sums.stdout == "host.tar: OK\n", sums.stderr
    # Rewriting over an existing archive gives the same bytes again.
    first = archives[0].read_bytes()
    bundle = tmp_path / "one" / "dist" / "host"
    write_archive(bundle, tmp_path / "one", mtime=archive_mtime(bundle))
    assert archives[0].read_bytes() == first


def test_archive_entries(signed: Path, tmp_path: Path) -> None:
    archive, sha256 = write_archive(signed, tmp_path, mtime=1234567890)
    assert (tmp_path / "host.tar.sha256").read_text() == f"{sha256}  host.tar\n"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:3] == ["host", "host/INSTALL.md", "host/SHA256SUMS"]
    assert names == sorted(names)
    assert [m.name for m in members if m.isdir()] == ["host", "host/wheels"]
    files = sorted(p.relative_to(signed).as_posix() for p in signed.rglob("*") if p.is_file())
    assert [m.name for m in members if m.isfile()] == [f"host/{f}" for f in files]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (1234567890, 0, 0, "", "")
    }
    assert {m.mode for m in members if m.isdir()} == {0o755}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    # Stock tar extracts it.
    out = tmp_path / "stock"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out)], check=True)
    assert (out / "host" / "SHA256SUMS").read_bytes() == (signed / "SHA256SUMS").read_bytes()


def test_mtime_comes_from_exclude_newer_then_source_date_epoch(tmp_path: Path) -> None:
    assert archive_mtime(make_bundle(tmp_path / "a")) == int(EXCLUDE_NEWER.timestamp())
    plain = make_bundle(tmp_path / "b", exclude_newer=None)
    assert archive_mtime(plain, {"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert (
        archive_mtime(plain, {})
        == DEFAULT_MTIME
        == int(datetime(1980, 1, 1, tzinfo=timezone.utc).timestamp())
    )
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH: not a number of seconds: 'soon'"):
        archive_mtime(plain, {"SOURCE_DATE_EPOCH": "soon"})


def test_archive_is_verified_after_safe_extraction(
    signed: Path, tmp_path: Path, keys: Keys
) -> None:
    archive, _ = write_archive(signed, tmp_path, mtime=DEFAULT_MTIME)
    code, out, err = verify(archive, keys, "--identity", "release")
    assert code == 0, err
    assert out.startswith(f"OK: {archive}: 9 files")
    extracted = extract_archive(archive, tmp_path / "out")
    assert extracted == tmp_path / "out" / "host"
    assert verify(extracted, keys)[0] == 0


def test_tampered_archive_names_the_file(signed: Path, tmp_path: Path, keys: Keys) -> None:
    (signed / "notes.txt").write_text("hi")
    archive, _ = write_archive(signed, tmp_path, mtime=DEFAULT_MTIME)
    code, _, err = verify(archive, keys)
    assert code == 6
    assert err == (
        f"lockship: error: {archive}: 1 problem found\n"
        "  notes.txt: not listed in SHA256SUMS (extra file)\n"
    )


def test_archive_cannot_go_inside_its_bundle(signed: Path) -> None:
    with pytest.raises(InputError, match="the archive cannot go inside the bundle it archives"):
        write_archive(signed, signed / "wheels", mtime=DEFAULT_MTIME)


# --- hostile archives -------------------------------------------------------------------------


ESCAPE = "/lockship-test-escaped"  # where an absolute entry would land


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, b""


def _dir(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


HOSTILE: dict[str, tuple[Callable[[], list[tuple[tarfile.TarInfo, bytes]]], str]] = {
    "dot-dot": (lambda: [_dir("b"), _file("b/../../x")], "refusing unsafe path 'b/../../x'"),
    "absolute": (lambda: [_file(ESCAPE)], f"refusing unsafe path '{ESCAPE}'"),
    "symlink": (
        lambda: [_dir("b"), _special("b/link", tarfile.SYMTYPE, "/etc/passwd")],
        "refusing symbolic link 'b/link'",
    ),
    "hardlink": (
        lambda: [_dir("b"), _special("b/hard", tarfile.LNKTYPE, "/etc/passwd")],
        "refusing hard link 'b/hard'",
    ),
    "device": (
        lambda: [_dir("b"), _special("b/dev", tarfile.CHRTYPE)],
        "refusing character device 'b/dev'",
    ),
    "fifo": (lambda: [_dir("b"), _special("b/fifo", tarfile.FIFOTYPE)], "refusing FIFO 'b/fifo'"),
    "two top directories": (
        lambda: [_dir("a"), _file("a/x"), _dir("b"), _file("b/y")],
        "expected one top-level directory, found 'a', 'b'",
    ),
    "top-level file": (
        lambda: [_dir("b"), _file("x")],
        "refusing 'x': not inside a top-level directory",
    ),
    "duplicate": (
        lambda: [_dir("b"), _file("b/x"), _file("b/x", b"y")],
        "refusing duplicate entry 'b/x'",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archive_is_refused_and_writes_nothing(tmp_path: Path, case: str) -> None:
    build, message = HOSTILE[case]
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in build():
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    area = tmp_path / "area"
    dest = area / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        extract_archive(archive, dest)
    assert str(caught.value) == f"{archive}: {message}"
    assert list(area.rglob("*")) == [dest]
    assert not Path(ESCAPE).exists()


def test_hostile_archive_through_the_cli(tmp_path: Path, keys: Keys) -> None:
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(*_special("b", tarfile.SYMTYPE, "/"))
    code, _, err = verify(archive, keys)
    assert code == 3
    assert err == f"lockship: error: {archive}: refusing symbolic link 'b'\n"


def test_not_a_tar_file(tmp_path: Path, keys: Keys) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar" * 100)
    code, _, err = verify(junk, keys)
    assert code == 3
    assert err.splitlines()[0] == (
        f"lockship: error: {junk}: not a bundle: neither a directory nor a tar archive"
    )
    assert len(err.splitlines()) == 2  # and its hint: one line, not the tar library's four


# --- archives that mean different things to different readers (issue 9) ------------------
# Python's tarfile stops silently at a header it cannot read (or at the first zero block);
# GNU tar skips a bad header and goes on, and with -i reads past the end-of-archive
# blocks. Each archive below holds a member GNU tar lists and tarfile does not see.

GNU_TAR = "/usr/bin/tar"
needs_gnu_tar = pytest.mark.skipif(
    not Path(GNU_TAR).exists()
    or b"GNU tar" not in subprocess.run([GNU_TAR, "--version"], capture_output=True).stdout,
    reason="needs GNU tar",
)


def _member(name: str, payload: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(payload), 0o644
    return info.tobuf(tarfile.PAX_FORMAT) + payload + bytes(-len(payload) % 512)


def _end_of_members(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


def _tarfile_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def _gnu_names(path: Path, *flags: str) -> list[str]:
    proc = subprocess.run([GNU_TAR, *flags, "-tf", str(path)], capture_output=True, text=True)
    return proc.stdout.splitlines()


def _bad_header_then_member(data: bytes, end: int) -> bytes:
    header = bytearray(_member("host/junk", b"")[:512])
    header[0] ^= 0x01  # the checksum no longer matches
    return data[:end] + bytes(header) + _member("host/evil.py", b"import os\n") + bytes(1024)


def _member_after_the_end(data: bytes, end: int) -> bytes:
    return data + _member("host/evil.py", b"import os\n") + bytes(1024)


CONFUSING: dict[str, tuple[Callable[[bytes, int], bytes], tuple[str, ...], str]] = {
    # case: (craft, GNU tar flags that show the hidden member, lockship's refusal)
    "bad header in the middle, then more members": (
        _bad_header_then_member, (), "bad header checksum at byte {end}"
    ),
    "a member after the end-of-archive blocks": (
        _member_after_the_end, ("-i",), "data after the end-of-archive blocks at byte {end}"
    ),
}


@needs_gnu_tar
@pytest.mark.parametrize("case", CONFUSING)
def test_archive_that_gnu_tar_reads_further_than_tarfile_is_refused(
    signed: Path, tmp_path: Path, keys: Keys, case: str
) -> None:
    craft, flags, refusal = CONFUSING[case]
    good, _ = write_archive(signed, tmp_path, mtime=DEFAULT_MTIME)
    data = good.read_bytes()
    end = _end_of_members(data)
    crafted = tmp_path / "crafted" / "host.tar"
    crafted.parent.mkdir()
    crafted.write_bytes(craft(data, end))
    # The two readers disagree: GNU tar would extract host/evil.py, tarfile never sees it.
    assert "host/evil.py" in _gnu_names(crafted, *flags)
    assert "host/evil.py" not in _tarfile_names(crafted)
    assert _tarfile_names(crafted) == _tarfile_names(good)
    code, out, err = verify(crafted, keys)
    assert (code, out) == (3, "")
    assert err == (
        f"lockship: error: {crafted}: not a readable tar archive: {refusal.format(end=end)}\n"
    )


def test_truncated_member_and_missing_end_blocks_are_refused(
    signed: Path, tmp_path: Path, keys: Keys
) -> None:
    good, _ = write_archive(signed, tmp_path, mtime=DEFAULT_MTIME)
    data = good.read_bytes()
    end = _end_of_members(data)
    with tarfile.open(good) as tar:
        last = tar.getmembers()[-1]
    cases = {
        "truncated member": (data[: last.offset_data + 100], f"member at byte {last.offset} is truncated"),
        "no end blocks": (data[:end], f"truncated at byte {end}: no end-of-archive blocks"),
        "one end block": (
            data[: end + 512], f"truncated at byte {end}: one end-of-archive block, not two"
        ),
        "bad padding": (
            data[:end] + _member("host/x", b"abc")[:-1] + b"!" + bytes(1024),
            f"non-zero padding after the member at byte {end}",
        ),
    }
    for name, (crafted, refusal) in cases.items():
        path = tmp_path / name / "host.tar"
        path.parent.mkdir()
        path.write_bytes(crafted)
        code, _, err = verify(path, keys)
        assert (code, err) == (
            3, f"lockship: error: {path}: not a readable tar archive: {refusal}\n"
        ), name


def test_sha256_file_beside_the_archive_must_match(signed: Path, tmp_path: Path, keys: Keys) -> None:
    archive, sha256 = write_archive(signed, tmp_path, mtime=DEFAULT_MTIME)
    assert verify(archive, keys)[0] == 0
    digest_file = tmp_path / "host.tar.sha256"
    assert digest_file.read_text() == f"{sha256}  host.tar\n"
    digest_file.write_text(f"{'0' * 64}  host.tar\n")
    code, _, err = verify(archive, keys)
    assert (code, err) == (6, (
        f"lockship: error: {archive}: sha256 {sha256}, expected {'0' * 64} (host.tar.sha256)\n"
        "  hint: the archive was changed or damaged in transfer; copy it again\n"
    ))
    digest_file.write_text(f"{sha256}  other.tar\n")
    code, _, err = verify(archive, keys)
    assert (code, err) == (6, f"lockship: error: {digest_file}: not a sha256sum line for host.tar\n")
    digest_file.unlink()  # absent: nothing to compare with
    assert verify(archive, keys)[0] == 0
