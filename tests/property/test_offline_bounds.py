"""Property tests for the offline side's bounded readers (issue 9).

- the JSON depth check agrees with the real nesting depth of any JSON document,
  and never recurses (a document of any depth is answered);
- a tar archive that ``check_layout`` accepts means the same thing to Python's
  ``tarfile`` and to GNU tar: the same member names, in the same order; any
  other archive is refused with lockship's InputError, never another exception.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockship._install_script import json_depth
from lockship.archive import check_layout
from lockship.errors import InputError
from lockship.verify import _MAX_JSON_DEPTH

SETTINGS = settings(
    max_examples=int(os.environ.get("LOCKSHIP_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
GNU_TAR = "/usr/bin/tar"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab ,:', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=60,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@SETTINGS
@given(json_values, st.integers(0, 40))
def test_json_depth_check_agrees_with_the_real_depth(value: Any, wrap: int) -> None:
    document = "[" * wrap + json.dumps(value) + "]" * wrap
    assert json_depth(document) == depth(value) + wrap


def test_json_depth_check_answers_any_depth() -> None:
    assert json_depth("[" * 10_000_000) > _MAX_JSON_DEPTH
    assert json_depth('{"a": ' * 1_000_000) > _MAX_JSON_DEPTH
    assert json_depth('["' + "[" * 1_000_000 + '"]') == 1  # brackets inside a string


def _archive(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for number, name in enumerate(names):
            data = f"member {number}\n".encode() * number
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.skipif(not Path(GNU_TAR).exists(), reason="needs GNU tar")
@SETTINGS
@given(
    st.lists(st.from_regex(r"top/[a-z]{1,8}", fullmatch=True), min_size=1, max_size=4, unique=True),
    st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=4),
    st.integers(-1100, 1100),
)
def test_an_accepted_archive_means_the_same_to_tarfile_and_gnu_tar(
    names: list[str], flips: list[tuple[int, int]], resize: int
) -> None:
    data = bytearray(_archive(names))
    for offset, value in flips:
        data[offset % len(data)] = value
    data = data[: len(data) + resize] if resize < 0 else data + bytes([0x41]) * resize
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.tar"
        path.write_bytes(bytes(data))
        try:
            entries = check_layout(path)
        except InputError:
            return  # refused, with lockship's one-line error
        with tarfile.open(path) as tar:
            seen = tar.getnames()
        gnu = subprocess.run([GNU_TAR, "-tf", str(path)], capture_output=True, text=True)
        assert gnu.returncode == 0, gnu.stderr
        assert gnu.stdout.splitlines() == seen
        assert len(seen) == entries
