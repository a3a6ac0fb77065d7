"""Targets against packaging.tags: a short name gives the tags the real interpreter would."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest
from packaging import _manylinux, tags

from lockship.targets import load_probe_file, make_floors, parse_target

TARGETS = Path(__file__).parent / "data" / "targets"
HOST = f"linux-cp3{sys.version_info[1]}"


def _plain_linux(tag: str) -> bool:
    return tag.endswith(f"-linux_{platform.machine()}")


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or sys.platform != "linux" or platform.machine() != "x86_64",
    reason="compares with this interpreter's own tags",
)
@pytest.mark.parametrize("glibc", [(2, 17), (2, 28), (2, 31)])
def test_a_short_name_has_the_tags_packaging_gives_that_interpreter(monkeypatch, glibc):
    """The same tags as ``packaging.tags.sys_tags()`` on a glibc-``glibc`` machine.

    The order is packaging's too, except that lockship ranks the plain
    ``linux_<arch>`` tag (a wheel built on some machine) last instead of first.
    """
    monkeypatch.setattr(_manylinux, "_get_glibc_version", lambda: glibc)
    expected = [str(tag) for tag in tags.sys_tags()]
    target = parse_target(HOST, make_floors(glibc=f"{glibc[0]}.{glibc[1]}"))
    assert set(target.tags) == set(expected)
    assert [t for t in target.tags if not _plain_linux(t)] == [
        t for t in expected if not _plain_linux(t)
    ]
    plain = [i for i, t in enumerate(target.tags) if _plain_linux(t)]
    assert plain  # one per interpreter/abi group, after that group's manylinux tags
    assert all("manylinux" in target.tags[i - 1] for i in plain)
    assert target.tags[-1] == "py30-none-any"


def test_a_probe_file_keeps_the_machines_tags_in_order():
    probe = TARGETS / "bullseye-amd64.json"
    recorded = json.loads(probe.read_text())["tags"]
    target = load_probe_file(probe)
    assert list(target.tags) == recorded
    assert all(str(tags.Tag(*t.split("-"))) == t for t in target.tags)


@pytest.mark.parametrize(
    ("name", "first", "python"),
    [
        ("linux-cp39", "cp39-cp39-manylinux_2_28_x86_64", "3.9"),
        ("linux_aarch64-cp311", "cp311-cp311-manylinux_2_28_aarch64", "3.11"),
        ("musllinux-cp312", "cp312-cp312-musllinux_1_2_x86_64", "3.12"),
        ("macos_arm64-cp312", "cp312-cp312-macosx_13_0_arm64", "3.12"),
        ("windows-cp312", "cp312-cp312-win_amd64", "3.12"),
    ],
)
def test_short_names_start_at_their_best_tag(name, first, python):
    target = parse_target(name)
    assert target.tags[0] == first
    assert target.marker_environment["python_version"] == python
    assert len(set(target.tags)) == len(target.tags)
