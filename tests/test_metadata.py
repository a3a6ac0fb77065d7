"""Core metadata parsing: lockship's fast header reader agrees with packaging's."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.metadata import parse_email

from lockship import _zip
from lockship._zip import BLOCK, RangeFile, dist_info_metadata_chooser, local_file, read_member
from lockship.metadata import parse_core_metadata, read_headers, read_wheel_metadata

FOLDED = "\n".join([
    "Metadata-Version: 2.1",
    "Name: Demo_Pkg",
    "Version: 1.0",
    "License: Copyright (c) 2015",
    "        All rights reserved.",
    "        ",  # a whitespace-only folded line does not end the headers
    "        Redistribution and use in source and binary forms",
    "Requires-Python: >=3.9",
    "Provides-Extra: Fast",
    "Requires-Dist: attrs>=23",
    'Requires-Dist: numpy; extra == "fast"',
    "Description-Content-Type: text/markdown",
    "",
    "Requires-Dist: this-is-in-the-description",
    "",
]).encode()


def test_folded_fields_and_description_body():
    meta = parse_core_metadata(FOLDED, where="demo")
    assert meta.name == "demo-pkg"
    assert str(meta.version) == "1.0"
    assert [str(r) for r in meta.requires_dist] == ["attrs>=23", 'numpy; extra == "fast"']
    assert str(meta.requires_python) == ">=3.9"
    assert meta.provides_extra == frozenset({"fast"})


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    requires=st.lists(_text.filter(lambda s: s and ":" not in s), max_size=4),
    extras=st.lists(_text.filter(bool), max_size=3),
    junk=st.lists(st.tuples(st.sampled_from(["Summary", "License", "Classifier", "Keywords"]), _text), max_size=4),
    body=_text,
)
def test_read_headers_matches_packaging(requires, extras, junk, body):
    lines = ["Metadata-Version: 2.1", "Name: demo", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"{k}: {v}\n        continued\n        " for k, v in junk]
    data = ("\n".join(lines) + "\n\n" + body + "\n").encode()
    raw, _ = parse_email(data)
    mine = read_headers(data)
    assert mine.get("requires-dist", []) == raw.get("requires_dist", [])
    assert mine.get("provides-extra", []) == raw.get("provides_extra", [])
    assert mine["name"] == [raw["name"]]


# --------------------------------------------------------------------------------------------
# reading METADATA out of a wheel: only the bytes zipfile needs, wherever the member sits

MiB = 1024 * 1024


def _wheel_with_metadata_first(path: Path, *, blob: int, members: int = 0) -> bytes:
    """big-1.0 with METADATA as its first member, then ``blob`` incompressible bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n")
        archive.writestr("big/blob.bin", os.urandom(blob), zipfile.ZIP_STORED)
        for number in range(members):
            archive.writestr(f"big/module_{number:05}.py", b"")
    return path.read_bytes()


def _remote(data: bytes, reads: list[int], **kwargs: int) -> RangeFile:
    def fetch(start: int, length: int) -> bytes:
        reads.append(length)
        return data[start : start + length]

    tail = data[-BLOCK:]
    return RangeFile(fetch, len(data), prefetched={len(data) - len(tail): tail}, **kwargs)


def test_metadata_at_the_start_of_a_large_wheel_costs_one_small_range_read(tmp_path):
    data = _wheel_with_metadata_first(tmp_path / "big-1.0-py3-none-any.whl", blob=16 * MiB)
    reads: list[int] = []
    name, content = read_member(_remote(data, reads), dist_info_metadata_chooser("big", "1.0"))
    assert (name, content.splitlines()[1]) == ("big-1.0.dist-info/METADATA", b"Name: big")
    assert reads == [BLOCK]  # the tail held the directory; one block from the start of the file


def test_local_wheel_metadata_at_the_start_is_read_without_reading_the_file(tmp_path):
    path = tmp_path / "big-1.0-py3-none-any.whl"
    _wheel_with_metadata_first(path, blob=16 * MiB)
    with path.open("rb") as handle:
        archive = local_file(handle)
        read_member(archive, dist_info_metadata_chooser("big", "1.0"))
    assert archive.fetched <= 3 * BLOCK
    assert read_wheel_metadata(path, path.name).startswith(b"Metadata-Version: 2.1\nName: big\n")


def test_a_central_directory_over_the_read_limit_is_refused(tmp_path):
    data = _wheel_with_metadata_first(tmp_path / "big-1.0-py3-none-any.whl", blob=0, members=3000)
    with pytest.raises(ValueError, match="more than 100000 bytes of the archive"):
        read_member(_remote(data, [], limit=100_000), dist_info_metadata_chooser("big", "1.0"))


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_zip, "MAX_MEMBERS", 100)
    data = _wheel_with_metadata_first(tmp_path / "big-1.0-py3-none-any.whl", blob=0, members=100)
    with pytest.raises(ValueError, match=r"implausibly many members \(102\)"):
        read_member(_remote(data, []), dist_info_metadata_chooser("big", "1.0"))


def test_a_metadata_inflating_over_200_fold_is_refused(tmp_path):
    path = tmp_path / "big-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big-1.0.dist-info/METADATA", b"Name: big\n" + b"A" * (2 * MiB))
    with pytest.raises(ValueError, match="a zip bomb"):
        read_member(_remote(path.read_bytes(), []), dist_info_metadata_chooser("big", "1.0"))
