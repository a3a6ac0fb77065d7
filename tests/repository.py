"""Helpers for publish tests: real signed bundles locked from the hermetic index, and the
invariants a published tree must keep whatever happens (kills included)."""

from __future__ import annotations

import html.parser
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urljoin, urlsplit

from bundles import Keys, sha256_of
from cli_runner import run
from lockship.lockfile import lock_paths

EXCLUDE_NEWER = "2024-06-01T00:00:00Z"


@dataclass(frozen=True)
class Signed:
    """Signed bundles made by the real lock, fetch and sign commands."""

    root: Path
    bundles: Mapping[str, Path]  # target name -> bundle directory
    locks: Mapping[str, Path]  # target name -> pylock.<target>.toml


def lock_fetch_sign(
    root: Path,
    index_url: str,
    requirements: str,
    targets: Sequence[str],
    keys: Keys,
    env: Optional[Mapping[str, str]] = None,
    *,
    archive: bool = False,
    extra: Sequence[str] = (),
) -> Signed:
    """``lockship lock``, ``fetch`` and ``sign`` for each target, as a user would run them."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.in").write_text(requirements)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        bundles, locks = {}, {}
        for target in targets:
            index = ["--no-pip-config", "--index-url", index_url]
            code, _, err = run(
                "lock", "-r", "requirements.in", "--target", target, "--exclude-newer",
                EXCLUDE_NEWER, "-q", *index, *extra, env=env,
            )
            assert code == 0, err
            name = Path(target).stem if target.endswith(".json") else target
            code, _, err = run("fetch", "--target", target, "-q", *index, env=env)
            assert code == 0, err
            bundle = root / "dist" / name
            sign_args = ["sign", str(bundle), "--key", str(keys.plain), "--identity", "release", "-q"]
            code, _, err = run(*sign_args, *(["--archive"] if archive else []), env=env)
            assert code == 0, err
            bundles[name] = bundle
            locks[name] = lock_paths(root / "locks", name)[1]
        return Signed(root, bundles, locks)
    finally:
        os.chdir(cwd)


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, Optional[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(page: Path) -> list[dict[str, Optional[str]]]:
    parser = _Anchors()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.anchors


def _resolve(dest: Path, page: Path, href: str) -> Path:
    """The file a relative link on ``page`` points at, refusing anything outside ``dest``."""
    base = "file://" + page.parent.as_posix() + "/"
    path = Path(unquote(urlsplit(urljoin(base, href)).path))
    assert dest.resolve() in path.resolve().parents, f"{page}: {href} leaves the tree"
    return path


def check_tree(dest: Path) -> dict[str, set[str]]:
    """Every page a reader can fetch is complete and every link and hash on it holds.

    Returns the files each project page lists (HTML and JSON views agree per page,
    and each view is checked on its own). Temporary files of an interrupted write
    are allowed only as dot-files, which no page links.
    """
    simple = dest / "simple"
    listed: dict[str, set[str]] = {}
    if not simple.exists():
        return listed
    projects: list[str] = []
    if (simple / "index.html").exists():
        projects += [a["href"] or "" for a in anchors(simple / "index.html")]
    if (simple / "index.json").exists():
        root_json = json.loads((simple / "index.json").read_text())
        assert root_json["meta"] == {"api-version": "1.1"}
        projects += [p["name"] + "/" for p in root_json["projects"]]
    if projects:
        for href in set(projects):
            assert href and href.endswith("/")
            page = simple / href.rstrip("/")
            assert (page / "index.html").is_file() and (page / "index.json").is_file(), href
    for page_dir in sorted(p for p in simple.iterdir() if p.is_dir()):
        names = {p.name for p in page_dir.iterdir() if not p.name.startswith(".")}
        assert names <= {"index.html", "index.json"}, names
        files: set[str] = set()
        if (page_dir / "index.html").exists():
            for anchor in anchors(page_dir / "index.html"):
                href = anchor["href"] or ""
                url, _, fragment = href.partition("#")
                target = _resolve(dest, page_dir / "index.html", url)
                assert fragment == f"sha256={sha256_of(target)}", href
                meta = Path(str(target) + ".metadata")
                assert anchor["data-core-metadata"] == f"sha256={sha256_of(meta)}"
                assert anchor["data-dist-info-metadata"] == anchor["data-core-metadata"]
                files.add(target.name)
        if (page_dir / "index.json").exists():
            doc = json.loads((page_dir / "index.json").read_text())
            assert doc["name"] == page_dir.name
            for entry in doc["files"]:
                target = _resolve(dest, page_dir / "index.json", entry["url"])
                assert entry["hashes"] == {"sha256": sha256_of(target)}
                assert entry["size"] == target.stat().st_size
                meta = Path(str(target) + ".metadata")
                assert entry["core-metadata"] == {"sha256": sha256_of(meta)}
                assert entry["filename"] == target.name
        listed[page_dir.name] = files
    state = dest / ".lockship" / "state.json"
    if state.exists():
        json.loads(state.read_text())  # complete: replaced atomically
    for name in ("provenance.json",):
        if (dest / name).exists():
            json.loads((dest / name).read_text())
    return listed


def snapshot(dest: Path, *, skip: Sequence[str] = (".lockship/lock",)) -> dict[str, str]:
    """sha256 of every file in the tree, by relative path."""
    return {
        p.relative_to(dest).as_posix(): sha256_of(p)
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.relative_to(dest).as_posix() not in skip
    }


def served(dest: Path) -> dict[str, str]:
    """What a reader of the index sees: simple/ pages and files/, not provenance."""
    return {k: v for k, v in snapshot(dest).items() if k.startswith(("simple/", "files/"))}
