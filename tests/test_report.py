"""``lockship report``: one self-contained page for the reviewer, and its Markdown and JSON.

The browser tests (marker ``browser``) render the page in Debian's headless Chromium
with no network and read back the screenshot and the DOM.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from bundles import make_bundle, sign
from cli_runner import run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = '<script>alert("x")</script><img src="https://evil.example/x.png">'

APPROVED = (
    ("requests", "2.19.1", "urllib3>=1.21.1", "idna>=2.5", "certifi", "chardet"),
    ("urllib3", "1.23"),
    ("idna", "2.7"),
    ("certifi", "2018.8.24"),
    ("chardet", "3.0.4"),
)
NEW = (
    ("requests", "2.19.1", "urllib3>=1.21.1", "idna>=2.5", "certifi", "chardet"),
    ("urllib3", "1.24.1"),
    ("idna", "2.7"),
    ("certifi", "2018.8.24"),
    ("chardet", "3.0.4"),
    ("jinja2", "2.10", "markupsafe>=0.23"),
    ("markupsafe", "1.1.1"),
    ("docopt", "0.6.2"),
)
LICENSES = {
    "requests": ["License: Apache 2.0", "Summary: Python HTTP for Humans."],
    "urllib3": ["License-Expression: MIT", "Summary: HTTP library with thread-safe connection pooling"],
    "idna": ["Classifier: License :: OSI Approved :: BSD License",
             "Summary: Internationalized Domain Names in Applications (IDNA)"],
    "certifi": ["License: MPL-2.0", "Summary: Python package for providing Mozilla's CA Bundle."],
    "chardet": ["License: LGPL", "Summary: Universal encoding detector"],
    "jinja2": ["License: BSD-3-Clause", "Summary: A very fast and expressive template engine."],
    "markupsafe": ["License-Expression: BSD-3-Clause", f"Summary: {HOSTILE}"],
    "docopt": ["Classifier: License :: OSI Approved :: MIT License",
               "Summary: Pythonic argument parser, that will make you smile"],
}


@pytest.fixture
def review(tmp_path, keys, osv_db, osv_cache, monkeypatch):
    """A signed transfer with advisories, a re-upload, a build and an unknown licence,
    and the approved transfer it replaces (an archive)."""
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(osv_cache))
    approved = make_bundle(tmp_path / "approved", APPROVED, "linux-cp39", metadata=LICENSES)
    sign(approved, keys, "--archive", "--db", str(osv_db), "--allow-advisories")
    new = make_bundle(
        tmp_path / "new", NEW, "linux-cp39", metadata=LICENSES, built=["docopt"],
        # certifi 2018.8.24 again, with other bytes: a re-upload
        members={"certifi": {"certifi/extra.pem": b"-----BEGIN CERTIFICATE-----\n"}},
    )
    # newer than the approved one (separate directories count separately)
    sign(new, keys, "--db", str(osv_db), "--allow-advisories", "--sequence", "2")
    return new, tmp_path / "approved" / "dist" / "linux-cp39.tar", osv_db


ADVISORIES = {
    "certifi 2018.8.24": ["PYSEC-2022-42986", "PYSEC-2023-135"],
    "requests 2.19.1": ["PYSEC-2018-28", "PYSEC-2023-74"],
    "urllib3 1.24.1": ["PYSEC-2019-132", "PYSEC-2019-133", "PYSEC-2020-148", "PYSEC-2021-108",
                       "PYSEC-2023-192", "PYSEC-2023-207", "PYSEC-2023-212"],
    "idna 2.7": ["PYSEC-2024-60"],
    "jinja2 2.10": ["PYSEC-2019-217", "PYSEC-2021-66"],
}


def report(review, *args: str) -> tuple[int, str, str]:
    new, approved, db = review
    return run("report", str(new), "--against", str(approved), "--db", str(db), *args)


def test_json_report_has_every_section(review, keys):
    code, out, err = report(review, "--format", "json", "--allowed-signers", str(keys.allowed))
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["signature"]["state"] == "verified"
    assert {f["kind"] for f in document["red_flags"]} == {
        "same-version-new-hash", "new-built-wheel", "advisory"
    }
    advisories: dict[str, list[str]] = {}
    for finding in document["audit"]["findings"]:
        advisories.setdefault(f"{finding['name']} {finding['version']}", []).append(finding["id"])
    assert advisories == ADVISORIES
    flags = {f["package"]: f for f in document["red_flags"] if f["kind"] == "advisory"}
    assert sorted(flags) == sorted(ADVISORIES)  # one red flag per vulnerable release
    assert flags["urllib3 1.24.1"]["title"] == "7 known vulnerabilities"
    assert flags["urllib3 1.24.1"]["detail"] == (
        ", ".join(ADVISORIES["urllib3 1.24.1"]) + ". Upgrade to 1.26.18 or later (fixes all)."
    )
    assert flags["jinja2 2.10"]["detail"] == (
        "PYSEC-2019-217, PYSEC-2021-66. 2 new since the approved transfer. "
        "Upgrade to 2.11.3 or later (fixes all)."
    )
    # urllib3 1.23, approved, was named by the same advisories as 1.24.1
    assert document["new_advisories"] == ["jinja2 PYSEC-2019-217", "jinja2 PYSEC-2021-66"]
    changes = {(c["kind"], c["name"]) for c in document["diff"]["changes"]}
    assert {("upgraded", "urllib3"), ("added", "jinja2"), ("added", "docopt"),
            ("same-version-new-hash", "certifi"), ("new-built-wheel", "docopt")} <= changes
    licenses = {p["name"]: p["license"] for p in document["packages"]}
    assert licenses == {
        "certifi": "MPL-2.0", "chardet": "unknown", "docopt": "MIT", "idna": "unknown",
        "jinja2": "BSD-3-Clause", "markupsafe": "BSD-3-Clause", "requests": "Apache-2.0",
        "urllib3": "MIT",
    }
    assert {f["path"] for f in document["files"]} >= {"sbom.cdx.json", "audit.json", "SHA256SUMS"}
    assert document["audit"]["database"]["records"] == 2661


def test_html_is_self_contained_and_escapes_package_text(review, tmp_path):
    target = tmp_path / "report.html"
    code, out, err = report(review, "-o", str(target))
    assert (code, out) == (0, "")
    assert err == f"wrote {target}: 8 packages, 7 red flags\n"
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">" in page
    )
    # nothing is loaded from anywhere: no scripts, style sheets, images, frames, fonts
    assert not re.search(r"<(script|link|img|iframe|object|embed|video|audio|source)\b", page, re.IGNORECASE)
    assert not re.search(r"<[^>]*\b(src|srcset|background)\s*=|url\(|@import", page, re.IGNORECASE)
    assert html.escape(HOSTILE, quote=False) in page or "&lt;script&gt;" in page
    for name in ("requests", "urllib3", "idna", "certifi", "chardet", "jinja2", "markupsafe", "docopt"):
        assert f'<span class="pkg">{name}</span>' in page


def test_markdown_for_a_ticket(review):
    code, out, _ = report(review, "--format", "markdown")
    assert code == 0
    assert out.startswith("# Transfer review: linux-cp39\n")
    assert "**7 red flags**" in out
    assert "| same version, different hash | certifi 2018.8.24 |" in out
    assert "| jinja2 | 2.10 | PYSEC-2019-217 (new) |" in out


def test_report_without_approved_or_database(tmp_path, keys):
    bundle = make_bundle(tmp_path, metadata={"alpha": ["License-Expression: MIT"]})
    code, out, _ = run("report", str(bundle), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert (document["signature"]["state"], document["audit"], document["diff"]) == (
        "unsigned", None, None
    )
    assert document["red_flags"] == []
    sign(bundle, keys)
    (bundle / "wheels" / "alpha-1.0-py3-none-any.whl").write_bytes(b"tampered")
    code, out, _ = run("report", str(bundle), "--format", "json")
    assert code == 0
    flags = json.loads(out)["red_flags"]
    assert flags[0]["kind"] == "integrity"
    assert flags[0]["detail"].startswith("wheels/alpha-1.0-py3-none-any.whl: size 8 bytes, expected ")


def test_a_bad_signature_is_the_first_red_flag(review, keys, tmp_path):
    other = tmp_path / "other_signers"
    other.write_text(f'release namespaces="lockship" {keys.pub(keys.other)}\n')
    code, out, _ = report(review, "--format", "json", "--allowed-signers", str(other))
    assert code == 0
    document = json.loads(out)
    assert document["signature"]["state"] == "invalid"
    assert document["red_flags"][0]["kind"] == "signature"


# --- in a real browser ------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--proxy-server=http://127.0.0.1:9", "--hide-scrollbars",  # and no network at all
]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )


def render(page: Path, tmp_path: Path, png: Path, height: int) -> str:
    shot = chromium(tmp_path / "profile-shot", f"--window-size=1280,{height}",
                    f"--screenshot={png}", page.as_uri())
    assert png.is_file(), shot.stderr
    dom = chromium(tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    return dom.stdout


@pytest.mark.browser
def test_chromium_renders_the_report_offline(review, tmp_path):
    page = tmp_path / "report.html"
    code, _, err = report(review, "-o", str(page))
    assert code == 0, err
    png = tmp_path / "report.png"
    dom = render(page, tmp_path, png, 1600)
    image = Image.open(png).convert("RGB")
    assert image.size == (1280, 1600)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, badges, tables: not blank
    white = max(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.95 * 1280 * 1600
    # the red verdict banner is drawn: plenty of the flag red
    assert sum(c for c, rgb in colours if rgb == (0xB4, 0x23, 0x18)) > 1000

    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))
    assert "7 red flags" in text
    for name, version, *_ in NEW:
        assert f"{name} {version}" in text, name
    for advisories in ADVISORIES.values():
        for advisory in advisories:
            assert advisory in text
    document = json.loads(report(review, "--format", "json")[1])
    for flag in document["red_flags"]:
        assert html.unescape(flag["detail"]) in text, flag
        assert flag["title"] in text
    assert "<script>alert" not in dom  # the hostile summary stayed text


@pytest.mark.browser
def test_screenshot_for_the_readme(review, tmp_path, keys, monkeypatch):
    """Regenerate docs/report.png (the README's Review section) when LOCKSHIP_SCREENSHOT is set."""
    new, approved, db = review
    monkeypatch.chdir(new.parent.parent)  # short paths on the page: dist/linux-cp39
    page = tmp_path / "report.html"
    code, _, err = run("report", "dist/linux-cp39", "--against", os.path.relpath(approved),
                       "--db", str(db), "--allowed-signers", str(keys.allowed), "-o", str(page))
    assert code == 0, err
    out = os.environ.get("LOCKSHIP_SCREENSHOT")
    png = Path(out) if out else tmp_path / "shot.png"
    render(page, tmp_path, png, 1500)
    assert png.stat().st_size > 50_000
    if out:
        shutil.copyfile(page, png.with_suffix(".html"))
