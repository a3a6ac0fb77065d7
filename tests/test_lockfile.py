"""Lock files round-trip: read, write, read again gives the same lock and the same bytes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from lockship._compat import tomllib
from lockship.lockfile import lock_paths, read_lock, render_requirements, write_lock

LOCKS = Path(__file__).parents[1] / "locks"
COMMITTED = sorted(n for n in os.listdir(LOCKS) if n.startswith("pylock.") and n.endswith(".toml"))


@pytest.mark.parametrize("name", COMMITTED)
def test_a_committed_lock_round_trips_byte_for_byte(tmp_path, name):
    lock = read_lock(LOCKS / name)
    assert lock.fingerprint == lock.computed_fingerprint()
    assert write_lock(lock, tmp_path)  # a new directory: written
    txt, toml = lock_paths(tmp_path, lock.target.name)
    assert toml.read_bytes() == (LOCKS / name).read_bytes()
    assert txt.read_bytes() == (LOCKS / f"{lock.target.name}.txt").read_bytes()
    assert read_lock(toml) == lock
    assert not write_lock(lock, tmp_path)  # the same lock again: nothing changed


@pytest.mark.parametrize("name", COMMITTED)
def test_a_written_lock_is_valid_pep_751(name):
    document = tomllib.loads((LOCKS / name).read_text(encoding="utf-8"))
    pylock = Pylock.from_dict(document)
    lock = read_lock(LOCKS / name)
    assert [p.name for p in pylock.packages] == [p.name for p in lock.packages]
    assert Pylock.from_dict(pylock.to_dict()).to_dict() == pylock.to_dict()


def test_the_requirements_text_is_rendered_from_the_lock_alone(tmp_path):
    source = LOCKS / COMMITTED[0]
    shutil.copy(source, tmp_path / source.name)
    lock = read_lock(tmp_path / source.name)
    text = render_requirements(lock)
    assert text == render_requirements(read_lock(source))
    assert f"# fingerprint: {lock.fingerprint}\n" in text
    assert text.count(" \\\n    --hash=sha256:") == len(lock.packages)
