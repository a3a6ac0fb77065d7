"""``lockship diff``: each change kind and each red flag, on locks made by the real CLI."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bundles import forge_lock as forge
from bundles import make_bundle
from cli_runner import run
from lockship._compat import tomllib
from pkgbuild import make_sdist, make_wheel

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)



@pytest.fixture
def indexes(tmp_path, monkeypatch, index_server, backend_wheel):
    monkeypatch.chdir(tmp_path)
    main, other = index_server(), index_server()
    built = tmp_path / "built"
    built.mkdir()
    for name, version in [("alpha", "1.0"), ("alpha", "2.0"), ("beta", "1.0"), ("gamma", "1.0")]:
        main.add(make_wheel(built, name, version), upload_time=EARLY)
    main.add(make_sdist(built, "srconly", "1.0"), upload_time=EARLY)
    main.add(backend_wheel, upload_time=EARLY)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other.add(make_wheel(other_dir, "delta", "1.0"), upload_time=EARLY)
    # a re-upload: same name and version as main's gamma 1.0, different bytes
    other.add(make_wheel(other_dir, "gamma", "1.0", files={"gamma/extra.py": b"x = 1\n"}), upload_time=EARLY)
    other.add(make_wheel(other_dir, "alpha", "1.0"), upload_time=EARLY)
    return main, other


def lock_into(directory: str, requirements: str, *indexes: str) -> str:
    with open("requirements.in", "w") as handle:
        handle.write(requirements)
    args = ["lock", "--no-pip-config", "-q", "--target", "linux-cp39", "-U", "--refresh", "-o", directory,
            "--index-url", indexes[0], "--index-strategy", "unsafe-first-match"]
    for url in indexes[1:]:
        args += ["--extra-index-url", url]
    code, _, err = run(*args)
    assert code == 0, err
    return f"{directory}/pylock.linux-cp39.toml"


def kinds(old: str, new: str) -> tuple[int, dict[str, list[dict]]]:
    code, out, _ = run("diff", old, new, "--format", "json")
    document = json.loads(out)
    found: dict[str, list[dict]] = {}
    for change in document["changes"]:
        found.setdefault(change["kind"], []).append(change)
    assert document["red_flags"] == sum(1 for c in document["changes"] if c["red_flag"])
    return code, found


def test_no_changes_exits_0(indexes):
    main, _ = indexes
    old = lock_into("a", "alpha==1.0\nbeta\n", main.simple_url)
    new = lock_into("b", "alpha==1.0\nbeta\n", main.simple_url)
    code, out, _ = run("diff", old, new)
    assert code == 0
    assert "no changes" in out


def test_ordinary_changes_exit_1(indexes):
    main, _ = indexes
    old = lock_into("a", "alpha==1.0\nbeta\n", main.simple_url)
    new = lock_into("b", "alpha==2.0\ngamma\n", main.simple_url)
    code, found = kinds(old, new)
    assert code == 1
    assert [(c["name"], c["old"], c["new"]) for c in found["upgraded"]] == [("alpha", "1.0", "2.0")]
    assert [c["name"] for c in found["removed"]] == ["beta"]
    assert [c["name"] for c in found["added"]] == ["gamma"]
    assert found["file-added"][0]["detail"] == "alpha-2.0-py3-none-any.whl"
    assert found["file-removed"][0]["detail"] == "alpha-1.0-py3-none-any.whl"
    code, found = kinds(new, old)
    assert [(c["name"], c["old"], c["new"]) for c in found["downgraded"]] == [("alpha", "2.0", "1.0")]


def test_same_version_with_a_new_hash_is_a_red_flag(indexes):
    main, other = indexes
    old = lock_into("a", "gamma==1.0\n", main.simple_url)
    new = lock_into("b", "gamma==1.0\n", other.simple_url, main.simple_url)
    code, found = kinds(old, new)
    assert code == 11
    assert found["same-version-new-hash"][0]["name"] == "gamma"
    assert re.fullmatch(r"gamma-1.0-py3-none-any.whl sha256:[0-9a-f]{64} -> gamma-1.0-py3-none-any.whl sha256:[0-9a-f]{64}",
                        found["same-version-new-hash"][0]["detail"])
    assert found["moved-index"][0]["name"] == "gamma"


def test_new_sdist_and_new_origin_are_red_flags(indexes):
    main, other = indexes
    old = lock_into("a", "alpha==1.0\n", main.simple_url)
    new = lock_into("b", "alpha==1.0\nsrconly\ndelta\n", main.simple_url, other.simple_url)
    code, found = kinds(old, new)
    assert code == 11
    assert found["new-sdist"][0]["detail"] == "srconly-1.0.tar.gz"
    assert found["new-origin"][0]["name"] == "delta"
    assert found["new-origin"][0]["detail"] == other.simple_url


def test_markdown_puts_red_flags_first(indexes):
    main, _ = indexes
    old = lock_into("a", "alpha==1.0\n", main.simple_url)
    new = lock_into("b", "alpha==1.0\nsrconly\nbeta\n", main.simple_url)
    code, out, _ = run("diff", old, new, "--format", "markdown")
    assert code == 11
    assert out.index("### Red flags (1)") < out.index("### Changes")
    assert "| new sdist | srconly |  | 1.0 | srconly-1.0.tar.gz |" in out


def test_bundles_and_archives_show_built_wheels(indexes, tmp_path):
    main, _ = indexes
    lock_into("locks", "alpha==1.0\n", main.simple_url)
    assert run("fetch", "--target", "linux-cp39", "-q", "--no-pip-config", "--dest", "old")[0] == 0
    lock_into("locks", "alpha==1.0\nsrconly\n", main.simple_url)
    assert run("fetch", "--target", "linux-cp39", "-q", "--no-pip-config", "--dest", "new")[0] == 0
    code, found = kinds("old", "new")
    assert code == 11
    assert found["new-built-wheel"][0]["detail"] == "srconly-1.0-py3-none-any.whl"
    # archives compare the same way (they are extracted safely first)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "r", "-f", str(key)], check=True)
    for bundle in ("old", "new"):
        assert run("sign", bundle, "--key", str(key), "--identity", "r", "--archive", "-q")[0] == 0
    code, found = kinds("old.tar", "new.tar")
    assert code == 11
    assert found["new-built-wheel"][0]["name"] == "srconly"


def test_different_targets_are_refused(indexes):
    main, _ = indexes
    old = lock_into("a", "alpha==1.0\n", main.simple_url)
    code, _, err = run("lock", "--no-pip-config", "-q", "--target", "linux-cp311", "-o", "b",
                       "--index-url", main.simple_url)
    assert code == 0, err
    code, _, err = run("diff", old, "b/pylock.linux-cp311.toml")
    assert code == 3
    assert "same target" in err


def test_missing_input_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run("diff", "nope.toml", "also-nope")
    assert code == 3
    assert "nope.toml" in err
    assert "Traceback" not in err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reupload_with_a_build_tag_is_a_red_flag_with_both_files_side_by_side(indexes, tmp_path):
    main, _ = indexes
    old = lock_into("a", "gamma==1.0\n", main.simple_url)
    first = tmp_path / "built" / "gamma-1.0-py3-none-any.whl"
    # A build-tagged re-upload of the same version: the lock now prefers it.
    again = make_wheel(tmp_path / "again", "gamma", "1.0", build_tag="1", files={"gamma/evil.py": b"x = 1\n"})
    main.add(again, upload_time=EARLY)
    new = lock_into("b", "gamma==1.0\n", main.simple_url)
    code, found = kinds(old, new)
    assert code == 11
    (flag,) = found["same-version-new-hash"]
    assert (flag["name"], flag["old"], flag["new"]) == ("gamma", "1.0", "1.0")
    assert flag["detail"] == (
        f"gamma-1.0-py3-none-any.whl sha256:{sha256(first)} -> "
        f"gamma-1.0-1-py3-none-any.whl sha256:{sha256(again)}"
    )
    assert flag["old_files"] == [{"filename": first.name, "sha256": sha256(first)}]
    assert flag["new_files"] == [{"filename": again.name, "sha256": sha256(again)}]


def test_the_same_version_spelled_differently_is_no_upgrade_but_new_bytes_are_a_red_flag(indexes, tmp_path):
    main, _ = indexes
    old = lock_into("a", "beta\n", main.simple_url)
    main.remove("beta-1.0-py3-none-any.whl")
    respelled = make_wheel(tmp_path / "again", "beta", "1.0.0", files={"beta/evil.py": b"x = 1\n"})
    main.add(respelled, upload_time=EARLY)
    new = lock_into("b", "beta\n", main.simple_url)
    code, found = kinds(old, new)
    assert code == 11
    assert set(found) == {"same-version-new-hash"}  # not "downgraded", nor file added/removed
    assert found["same-version-new-hash"][0]["detail"].endswith(
        f"beta-1.0.0-py3-none-any.whl sha256:{sha256(respelled)}"
    )


def test_reports_name_the_paths_given_not_temporary_ones(indexes, tmp_path):
    main, _ = indexes
    lock_into("locks", "alpha==1.0\n", main.simple_url)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "r", "-f", str(key)], check=True)
    for bundle, requirements in (("old", "alpha==1.0\n"), ("new", "alpha==2.0\n")):
        lock_into("locks", requirements, main.simple_url)
        assert run("fetch", "--target", "linux-cp39", "-q", "--no-pip-config", "--dest", bundle)[0] == 0
        assert run("sign", bundle, "--key", str(key), "--identity", "r", "--archive", "-q")[0] == 0
    code, out, _ = run("diff", "old.tar", "new.tar", "--format", "json")
    assert code == 1
    assert (json.loads(out)["old"], json.loads(out)["new"]) == ("old.tar", "new.tar")
    code, out, _ = run("diff", "old.tar", "new.tar", "--format", "markdown")
    assert "`old.tar` → `new.tar`" in out
    assert "lockship-diff-" not in out


def test_a_bundle_against_its_own_lock_shows_no_changes(indexes):
    main, _ = indexes
    lock_into("locks", "alpha==1.0\nsrconly\n", main.simple_url)
    assert run("fetch", "--target", "linux-cp39", "-q", "--no-pip-config", "--dest", "bundle")[0] == 0
    for old, new in (("locks/pylock.linux-cp39.toml", "bundle"), ("bundle", "locks/pylock.linux-cp39.toml")):
        code, out, _ = run("diff", old, new)
        assert code == 0, out
        assert "no changes" in out


def test_a_file_from_a_host_the_lock_does_not_record_is_a_red_flag(indexes, tmp_path):
    main, other = indexes
    old = lock_into("a", "gamma==1.0\n", main.simple_url)
    new = lock_into("b", "gamma==1.0\n", main.simple_url)
    evil = make_wheel(tmp_path / "evil", "gamma", "1.1", files={"gamma/evil.py": b"x = 1\n"})
    other.add(evil, upload_time=EARLY)
    # origin and index still say the main index: only the URL gives it away
    forge(new, "gamma", version="1.1", url=other.file_url(evil.name), size=evil.stat().st_size,
          filename=evil.name, sha256=sha256(evil))
    code, found = kinds(old, new)
    assert code == 11
    (flag,) = found["unlisted-location"]
    assert flag["name"] == "gamma"
    assert flag["detail"] == (
        f"{other.file_url(evil.name)} is not under any index or find-links location the lock records"
    )


def test_a_package_that_moved_is_flagged_from_its_url_not_its_origin_field(indexes, tmp_path):
    _, other = indexes
    links = tmp_path / "links"
    make_wheel(links, "delta", "1.1")
    old = lock_into("a", "delta\n", other.simple_url)
    code, _, err = run("lock", "--no-pip-config", "-q", "--target", "linux-cp39", "-o", "b",
                       "--index-url", other.simple_url, "--find-links", str(links), "-U")
    assert code == 0, err
    new = "b/pylock.linux-cp39.toml"
    assert tomllib.loads(Path(new).read_text())["packages"][0]["wheels"][0]["url"].startswith("file:")
    forge(new, "delta", origin=other.simple_url)  # claim it still comes from the index
    code, found = kinds(old, new)
    assert code == 11
    assert found["moved-index"][0]["detail"] == f"{other.simple_url} -> {links}"
    assert found["unlisted-location"][0]["detail"] == (
        f"{links.as_uri()}/delta-1.1-py3-none-any.whl is under {links}, "
        f"not under {other.simple_url} that the lock names as its origin"
    )


def test_an_approved_lock_from_an_older_lockship_can_be_the_old_side_only(indexes):
    main, _ = indexes
    old = lock_into("a", "alpha==1.0\n", main.simple_url)
    new = lock_into("b", "alpha==2.0\n", main.simple_url)
    # what lock format 1 wrote: no sources, no metadata digests
    text = re.sub(r"(?m)^metadata-sha256 = .*\n", "", Path(old).read_text())
    Path(old).write_text(text[: text.index("[[tool.lockship.sources]]")])
    code, found = kinds(old, new)
    assert code == 1
    assert set(found) == {"upgraded", "file-added", "file-removed"}
    code, _, err = run("diff", new, old)
    assert code == 3
    assert "made by an older lockship (no sources or metadata digests): only the old side" in err


def test_new_advisories_in_the_bundle_audit_are_red_flags(tmp_path, keys, osv_db, osv_cache, monkeypatch):
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(osv_cache))
    old = make_bundle(tmp_path / "old", packages=(("requests", "2.19.1"),))
    new = make_bundle(tmp_path / "new", packages=(("requests", "2.19.1"), ("jinja2", "2.10")))
    for sequence, bundle in enumerate((old, new), 1):  # new is newer: no "not-newer" flag
        code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "-q",
                           "--db", str(osv_db), "--allow-advisories", "--sequence", str(sequence))
        assert code == 0, err
    code, found = kinds(str(old), str(new))
    assert code == 11
    assert [(c["name"], c["new"], c["detail"].split(":")[0]) for c in found["new-advisory"]] == [
        ("jinja2", "2.10", "PYSEC-2019-217"), ("jinja2", "2.10", "PYSEC-2021-66"),
    ]
    assert all(c["red_flag"] for c in found["new-advisory"])
    code, out, _ = run("diff", str(old), str(new))
    assert "new known vulnerability" in out
    # an approved transfer signed without an audit: everything known now is new
    code, _, err = run("sign", str(old), "--key", str(keys.plain), "-q")
    assert code == 0, err
    _, found = kinds(str(old), str(new))
    assert len(found["new-advisory"]) == 4
