"""The provenance page of a published tree, as a person sees it in headless Chromium."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

import pytest

from bundles import Keys, make_bundle, sign
from cli_runner import run

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Cells(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_provenance_page_lists_every_bundle(tmp_path: Path, keys: Keys) -> None:
    old = make_bundle(tmp_path / "old", [("alpha", "1.0")], "linux-cp39")
    made = make_bundle(tmp_path / "new", [("alpha", "1.0"), ("beta", "2.0")], "linux-cp39")
    for sequence, bundle in enumerate((old, made), start=1):  # one series, two signings
        sign(bundle, keys, "--identity", "release", "--sequence", str(sequence))
    new = made.rename(made.with_name("new<img src=x onerror=alert(1)>"))  # a hostile name
    dest = tmp_path / "repo"
    for args in ([old], [new], ["--prune"]):
        code, _, err = run("publish", *map(str, args), "--to", str(dest), "--allowed-signers",
                           str(keys.allowed), "--identity", "release")
        assert code == 0, err
    page = (dest / "provenance.html").as_uri()
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr
    cells = _Cells()
    cells.feed(dom.stdout)
    header, *rows = cells.rows
    assert header == ["target", "bundle", "signed by", "series", "sequence", "signed at",
                      "expires", "published at", "files", "status"]
    assert [(r[0], r[2].split()[0], r[8], r[9].split()[0]) for r in rows] == [
        ("linux-cp39", "release", "1", "retired"),
        ("linux-cp39", "release", "2", "active"),
    ]
    assert rows[1][1].startswith("new<img src=x onerror=alert(1)> sha256:")  # shown as text
    assert "<img" not in dom.stdout
    shot = tmp_path / "provenance.png"
    result = chromium("--window-size=1400,500", f"--screenshot={shot}", page)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000
