"""The resolver, driven by data: small package universes -> expected pins or conflict.

Each case runs against the in-memory index (tests/memoryindex.py) through the
``Fetcher`` seam; a few run against the real HTTP index server as well, so the
fake cannot drift from what a server says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
from packaging.requirements import Requirement

from lockship.cache import Cache
from lockship.errors import ResolutionError
from lockship.http import Fetcher, HttpClient
from lockship.index import IndexClient
from lockship.metadata import MetadataFetcher
from lockship.pipconfig import IndexConfig
from lockship.resolve import Resolution, ResolveOptions, Root, resolve
from lockship.targets import short_name_target
from memoryindex import INDEX_URL, MemoryIndex
from pkgbuild import make_wheel


@dataclass(frozen=True)
class Case:
    id: str
    universe: Mapping[str, Mapping[str, Any]]
    requested: Sequence[str]
    resolved: Optional[Mapping[str, str]] = None  # name -> version
    conflict: Optional[str] = None  # the exact error text
    target: str = "linux-cp311"
    warnings: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "newest-wins",
        {"a": {"1.0": [], "2.0": []}},
        ["a"],
        resolved={"a": "2.0"},
    ),
    Case(
        "transitive",
        {"a": {"1.0": ["b>=1.5"]}, "b": {"1.0": [], "1.5": [], "2.0": []}},
        ["a"],
        resolved={"a": "1.0", "b": "2.0"},
    ),
    Case(
        "backtrack-to-older-parent",
        # a 2.0 needs c<1, which b forbids: the resolver must go back to a 1.0.
        {
            "a": {"1.0": ["c>=1"], "2.0": ["c<1"]},
            "b": {"1.0": ["c>=1"]},
            "c": {"0.9": [], "1.0": []},
        },
        ["a", "b"],
        resolved={"a": "1.0", "b": "1.0", "c": "1.0"},
    ),
    Case(
        "backtrack-through-many-releases",
        # Every release of x but the oldest needs a missing project: like
        # ipython[all] with --only-binary, 30 dead ends before the answer.
        {
            "x": {f"1.{i}": (["missing>=1"] if i else []) for i in range(31)},
        },
        ["x"],
        resolved={"x": "1.0"},
    ),
    Case(
        "markers-for-the-target",
        {
            "a": {"1.0": ['b; sys_platform == "win32"', 'c; python_version >= "3.10"']},
            "b": {"1.0": []},
            "c": {"1.0": []},
        },
        ["a"],
        resolved={"a": "1.0", "c": "1.0"},
    ),
    Case(
        "markers-for-windows",
        {
            "a": {"1.0": ['b; sys_platform == "win32"', 'c; python_version < "3.10"']},
            "b": {"1.0": []},
            "c": {"1.0": []},
        },
        ["a"],
        target="windows-cp39",
        resolved={"a": "1.0", "b": "1.0", "c": "1.0"},
    ),
    Case(
        "extras",
        {
            "a": {"1.0": {"requires": ['b; extra == "fast"'], "extras": ["fast"]}},
            "b": {"1.0": []},
        },
        ["a[fast]"],
        resolved={"a": "1.0", "b": "1.0"},
    ),
    Case(
        "requires-python-skips-new-releases",
        {"a": {"1.0": [], "2.0": {"requires": [], "requires_python": ">=3.12"}}},
        ["a"],
        resolved={"a": "1.0"},
    ),
    Case(
        "pre-releases-only-when-nothing-else",
        {"a": {"1.0": [], "2.0b1": []}, "b": {"1.0a1": []}},
        ["a", "b"],
        resolved={"a": "1.0", "b": "1.0a1"},
    ),
    Case(
        "warn-only-about-the-final-pins",
        # a 2.0 lacks the extra and is dropped (its dependency c is impossible):
        # only the pinned a 1.0's missing extra is worth a warning.
        {
            "a": {"1.0": [], "2.0": ["c>=2"]},
            "c": {"1.0": []},
        },
        ["a[fast]"],
        resolved={"a": "1.0"},
        warnings=["a 1.0 does not provide the extra(s) fast"],
    ),
    Case(
        "conflict",
        {"a": {"1.0": ["c==1.0"]}, "b": {"1.0": ["c==2.0"]}, "c": {"1.0": [], "2.0": []}},
        ["a", "b"],
        conflict=(
            "linux-cp311: cannot satisfy c for linux-cp311 (CPython 3.11 on Linux x86_64, "
            "manylinux glibc 2.28+): c==1.0 (required by a 1.0); c==2.0 (required by b 1.0). "
            "no version of c matches; the newest for linux-cp311: 2.0, 1.0"
        ),
    ),
    Case(
        "conflict-requires-python",
        {"a": {"1.0": {"requires": [], "requires_python": ">=3.12"}}},
        ["a"],
        conflict=(
            "linux-cp311: cannot satisfy a for linux-cp311 (CPython 3.11 on Linux x86_64, "
            "manylinux glibc 2.28+): a (required by -r requirements.in). a 1.0: requires Python "
            ">=3.12 (target has 3.11.0); no version of a is usable on linux-cp311"
        ),
    ),
    Case(
        "conflict-missing-project",
        {"a": {"1.0": ["nowhere"]}},
        ["a"],
        conflict=(
            "linux-cp311: cannot satisfy nowhere for linux-cp311 (CPython 3.11 on Linux "
            "x86_64, manylinux glibc 2.28+): nowhere (required by a 1.0). nowhere was not found on "
            "any configured index or find-links location"
        ),
    ),
]


def _resolve(fetcher: Fetcher, index_url: str, case: Case, cache: Path) -> Resolution:
    config = IndexConfig(index_url=index_url)
    store = Cache(cache)
    return resolve(
        [Root(Requirement(r), "-r requirements.in") for r in case.requested],
        constraints=[],
        target=short_name_target(case.target),
        index=IndexClient(fetcher, store, config),
        metadata=MetadataFetcher(fetcher, store),
        options=ResolveOptions(**case.options),
    )


def _check(case: Case, run: Any) -> None:
    if case.conflict is not None:
        with pytest.raises(ResolutionError) as info:
            run()
        assert str(info.value) == case.conflict
        return
    resolution = run()
    assert {p.name: str(p.version) for p in resolution.packages} == case.resolved
    assert list(resolution.warnings) == list(case.warnings)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_memory_index(case: Case, tmp_path: Path) -> None:
    fetcher = MemoryIndex(case.universe)
    _check(case, lambda: _resolve(fetcher, INDEX_URL, case, tmp_path))


def test_backtracking_reads_each_file_once(tmp_path: Path) -> None:
    """A release tried again on a later backtrack is not fetched (or parsed) again."""
    case = next(c for c in CASES if c.id == "backtrack-through-many-releases")
    fetcher = MemoryIndex(case.universe)
    _resolve(fetcher, INDEX_URL, case, tmp_path)
    assert len(fetcher.requests) == len(set(fetcher.requests))
    assert sum(r.endswith(".metadata") for r in fetcher.requests) == 31


REAL_SERVER_CASES = [
    c for c in CASES
    if c.id in ("backtrack-to-older-parent", "extras", "warn-only-about-the-final-pins", "conflict")
]


@pytest.mark.parametrize("case", REAL_SERVER_CASES, ids=[c.id for c in REAL_SERVER_CASES])
def test_real_index_server(case: Case, tmp_path: Path, index_server: Any) -> None:
    server = index_server(formats="json")
    dists = tmp_path / "dists"
    dists.mkdir()
    for project, releases in case.universe.items():
        for version, release in releases.items():
            spec = release if isinstance(release, Mapping) else {"requires": release}
            server.add(
                make_wheel(
                    dists, project, version,
                    requires_dist=spec.get("requires", ()),
                    provides_extra=spec.get("extras", ()),
                    requires_python=spec.get("requires_python"),
                )
            )
    http = HttpClient(IndexConfig(index_url=server.simple_url))
    _check(case, lambda: _resolve(http, server.simple_url, case, tmp_path / "cache"))


def test_self_referencing_extras_pin_the_same_release(tmp_path: Path, monkeypatch: Any) -> None:
    """app[all] requires app[doc,test], as ipython[all] does: that is the very release,
    so a backtrack does not pair every release of app[all] with every release of
    app[doc,test] (ipython[all] tried about 9,600 such pairs)."""
    import lockship.resolve  # noqa: PLC0415

    releases = 30
    universe = {
        "app": {
            f"{n}.0": {
                "requires": [
                    'app[doc,test]; extra == "all"', 'sphinx; extra == "doc"',
                    f'tool>={n}; extra == "test"',
                ],
                "extras": ["all", "doc", "test"],
            }
            for n in range(1, releases + 1)
        },
        "sphinx": {"1.0": []},
        "tool": {"1.0": []},  # only app 1.0's test extra can be satisfied
    }  # fmt: skip
    case = Case(
        "self-extras", universe, ["app[all]"], resolved={"app": "1.0", "sphinx": "1.0", "tool": "1.0"}
    )
    calls: list[str] = []
    original = lockship.resolve.Provider.get_dependencies

    def counting(self: Any, candidate: Any) -> Any:
        calls.append(candidate.identifier)
        return original(self, candidate)

    monkeypatch.setattr(lockship.resolve.Provider, "get_dependencies", counting)
    _check(case, lambda: _resolve(MemoryIndex(universe), INDEX_URL, case, tmp_path))
    assert len(calls) <= 5 * releases, len(calls)  # 1,020 before: every pair of releases
