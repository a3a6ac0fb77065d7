"""``lockship run``: a pipeline over the suite's own index, two targets, incremental."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cli_runner import run
from lockship.lockfile import read_lock
from pkgbuild import make_sdist, make_wheel

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)
TARGETS = Path(__file__).parent / "data" / "targets"



@pytest.fixture
def project(tmp_path, monkeypatch, index_server, wheel_dir):
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_wheel(wheel_dir, "app-core", "1.0", requires_dist=['tomli; python_version < "3.11"']), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "tomli", "2.0"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "extra-tool", "1.0"), upload_time=EARLY)
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "app.in").write_text("app-core\n")
    key = tmp_path / "keys" / "release"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release", "-f", str(key)], check=True)
    (pipelines / "app.toml").write_text(f"""
[pipeline]
output = "../dist"
locks = "../locks"

[lock]
requirements = ["app.in"]
targets = ["{TARGETS / 'bullseye-amd64.json'}", "linux_aarch64-cp311"]
index-url = "{server.simple_url}"
use-pip-config = false
exclude-newer = "2024-06-01"

[sign]
key = "../keys/release"
identity = "release"
archive = true
""")
    return tmp_path, server


def rows(out: str) -> dict[str, dict]:
    return {row["target"]: row for row in json.loads(out)}


def test_pipeline_runs_every_target_and_is_incremental(project):
    root, server = project
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    first = rows(out)
    assert set(first) == {"bullseye-amd64", "linux_aarch64-cp311"}
    assert first["bullseye-amd64"]["packages"] == 2  # tomli only for Python < 3.11
    assert first["linux_aarch64-cp311"]["packages"] == 1
    for target in first:
        assert first[target]["status"].startswith("locked, fetched")
        bundle = root / "dist" / target
        assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle).returncode == 0
        assert (root / "dist" / f"{target}.tar").is_file()
    # re-run with unchanged inputs: nothing re-resolved, fetched or signed, and no network
    server.reset_log()
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    for row in rows(out).values():
        assert row["status"] == "lock unchanged, bundle complete, signature current, archive current"
    assert server.requests == []
    # a changed input re-locks, re-fetches and re-signs; --check reports it first
    (root / "pipelines" / "app.in").write_text("app-core\nextra-tool\n")
    code, out, err = run("run", "pipelines/app.toml", "--check", "--json")
    assert code == 1
    assert all("input pipelines/app.in changed" in r["status"] for r in rows(out).values())
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    after = rows(out)
    assert after["bullseye-amd64"]["packages"] == 3
    # the second target finds extra-tool in the shared cache already
    assert [r["status"].split(", ")[0] for r in after.values()] == ["locked", "locked"]
    assert all(", signed, archived" in r["status"] for r in after.values())
    code, _, err = run("run", "pipelines/app.toml", "--check")
    assert code == 0, err


def test_table_output_and_lock_header_command(project):
    root, _ = project
    code, out, err = run("run", "pipelines/app.toml")
    assert code == 0, err
    assert "linux_aarch64-cp311" in out and "signed" in out
    assert "#    lockship run pipelines/app.toml" in (root / "locks" / "linux_aarch64-cp311.txt").read_text()


def test_throwaway_key_is_made_beside_the_output_and_announced(project):
    root, _ = project
    spec = root / "pipelines" / "app.toml"
    spec.write_text(spec.read_text().replace('key = "../keys/release"\n', ""))
    code, _, err = run("run", "pipelines/app.toml")
    assert code == 0, err
    assert "THROWAWAY key" in err
    signers = root / "dist" / "throwaway-signing-key" / "allowed_signers"
    code, _, err = run("verify", "dist/linux_aarch64-cp311", "--allowed-signers", str(signers), "--identity", "release")
    assert code == 0, err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[lock]\nrequirements = ['app.in']\n", "app.toml:1: [lock] targets: no target listed"),
        ("[lock]\ntargets = ['linux-cp39']\n\n[sign]\nkey = 'k'\nidenity = 'x'\n", "app.toml:6: [sign] idenity: unknown key"),
        ("[lock]\ntargets = ['linux-cp39']\nexclude-newer = 'soon'\n", "app.toml:3: [lock] exclude-newer: invalid timestamp 'soon'"),
        ("[lock]\ntargets = ['linux-cp39']\nexclude-newer = 5\n", "app.toml:3: [lock] exclude-newer: must be a date or an RFC 3339 timestamp"),
        ("[lock]\ntargets = 'linux-cp39'\n", "app.toml:2: [lock] targets must be a list of target names or probe files"),
        ("[lock]\nrequirements = 'app.in'\ntargets = ['linux-cp39']\n", "app.toml:2: [lock] requirements must be a list of files"),
        ("[lock]\ntargets = ['linux-cp39']\n[fetch]\njobs = 'many'\n", "app.toml:4: [fetch] jobs must be a whole number"),
        ("[lock]\ntargets = ['linux-cp39']\n[fetch]\ninclude-self = 'no'\n", "app.toml:4: [fetch] include-self must be true or false"),
        ("[lock]\ntargets = ['linux-cp39']\n[audit]\nignore = ['X-1']\n", "app.toml:4: [audit] ignore must be a table"),
        ("[lock]\ntargets = ['linux-cp39']\n[report]\nformat = 'pdf'\n", "app.toml:4: [report] format must be one of 'html', 'markdown' or 'json'"),
        ("lock = 3\n", "app.toml:1: [lock] must be a table"),
        ("[pipeline]\noutput = 'x'\n", "app.toml: no [lock] table"),
        ("[lok]\ntargets = ['linux-cp39']\n", "app.toml:1: [lok]: unknown table"),
        ("[lock]\ntargets = ['linux-cp39']\n[fetsh]\n", "app.toml:3: [fetsh]: unknown table"),
        ("[lock]\ntargets = ['linux-cp39', 'bogus-cp3']\n", "app.toml:2: [lock] targets: unknown target 'bogus-cp3'"),
        ("[lock]\ntargets = ['linux-cp39', 'linux-cp39']\n", "app.toml:2: [lock] targets: two targets are named 'linux-cp39'; their locks would collide"),
    ],
)
def test_pipeline_errors_name_file_line_and_key(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.toml").write_text(text)
    (tmp_path / "app.in").write_text("app-core\n")
    code, _, err = run("run", "app.toml")
    assert code == 3, err
    assert err.splitlines()[0] == f"lockship: error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.in", "app.toml"]  # nothing written


def test_invalid_toml_is_one_located_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.toml").write_text("[lock\n")
    code, _, err = run("run", "app.toml")
    assert code == 3, err
    assert err.startswith("lockship: error: app.toml:1: invalid TOML: ")
    assert "Traceback" not in err


def test_unreadable_passphrase_file_is_a_clear_input_error(project):
    root, _ = project
    spec = root / "pipelines" / "app.toml"
    spec.write_text(spec.read_text().replace('key = "../keys/release"\n', 'key = "../keys/release"\npassphrase-file = "../keys/missing"\n'))
    code, _, err = run("run", "pipelines/app.toml")
    assert code == 3, err
    assert "keys/missing: cannot read: No such file or directory" in err
    assert "Traceback" not in err


def test_only_binary_in_a_pipeline_is_honoured_whatever_the_spelling(project, wheel_dir):
    root, server = project
    server.add(make_sdist(wheel_dir, "docopt", "0.6.2"), upload_time=EARLY)
    (root / "pipelines" / "app.in").write_text("app-core\ndocopt\n")
    toml = root / "pipelines" / "app.toml"
    toml.write_text(toml.read_text().replace("use-pip-config = false\n", 'use-pip-config = false\nonly-binary = ["DocOpt"]\n'))
    code, out, err = run("run", "pipelines/app.toml")
    assert code == 4, out + err
    assert "docopt 0.6.2: only an sdist, and --only-binary excludes sdists" in out + err
    assert not (root / "locks").exists() or not list((root / "locks").glob("*.txt"))
    # the command line, and the pipeline spelled canonically, say the same
    (root / "requirements.in").write_text("docopt\n")
    code, _, err = run("lock", "--no-pip-config", "-q", "--index-url", server.simple_url,
                       "--target", "linux-cp39", "--only-binary", "DocOpt")
    assert code == 4
    assert "docopt 0.6.2: only an sdist, and --only-binary excludes sdists" in err


def test_pipeline_audit_licences_and_report(project):
    """[audit] stops a vulnerable target or records it; [report] writes the page;
    [lock] deny-licenses refuses a transfer before it is signed."""
    root, _ = project
    db = root / "osv"
    db.mkdir()
    (db / "TEST-1.json").write_text(json.dumps({
        "id": "TEST-1", "aliases": ["CVE-2099-1"], "modified": "2024-05-01T00:00:00Z",
        "summary": "app-core leaks everything",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "App_Core"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}],
    }))
    pipeline = root / "pipelines" / "app.toml"
    base = pipeline.read_text()
    pipeline.write_text(base + '\n[audit]\ndb = "../osv"\n\n[report]\n')
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 13
    assert all(not r["ok"] for r in rows(out).values())
    assert "lockship: error: bullseye-amd64: " in err
    assert "1 known vulnerability (database osv (1 records, newest 2024-05-01)); not signed\n" in err
    assert "  app-core 1.0: TEST-1 CVE-2099-1\n" in err
    assert not (root / "dist" / "bullseye-amd64" / "SHA256SUMS").exists()

    pipeline.write_text(base + '\n[audit]\ndb = "../osv"\nfail = false\n\n[report]\n')
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    for target, row in rows(out).items():
        assert row["status"].endswith(
            f"signed, 1 advisory recorded, archived {target}.tar, report {target}.report.html (1 red flag)"
        ), row["status"]
        bundle = root / "dist" / target
        audit = json.loads((bundle / "audit.json").read_text())
        assert [f["id"] for f in audit["findings"]] == ["TEST-1"]
        assert "TEST-1" in (root / "dist" / f"{target}.report.html").read_text()
    code, out, _ = run("run", "pipelines/app.toml", "--json")
    assert code == 0
    assert all("signature current, 1 advisory recorded, archive current" in r["status"]
               for r in rows(out).values())
    # a newer database: signing again records what is known now
    (db / "TEST-1.json").unlink()
    code, out, _ = run("run", "pipelines/app.toml", "--json")
    assert code == 0
    assert all(", signed, audited, archived" in r["status"] for r in rows(out).values())

    pipeline.write_text(base.replace("use-pip-config = false", 'use-pip-config = false\ndeny-licenses = ["GPL-3.0-only"]'))
    code, out, err = run("run", "pipelines/app.toml")
    assert code == 0, err  # the test wheels declare no licence: only an allow list refuses them
    pipeline.write_text(base.replace("use-pip-config = false", 'use-pip-config = false\nallow-licenses = ["MIT"]'))
    code, out, err = run("run", "pipelines/app.toml")
    assert code == 15
    assert "  app-core 1.0: licence unknown, and allow-licenses is set\n" in err


def test_python_version_in_a_pipeline_applies_to_its_short_name_target(project):
    root, _ = project
    toml = root / "pipelines" / "app.toml"
    toml.write_text(toml.read_text().replace("use-pip-config = false\n", 'use-pip-config = false\npython-version = ["3.11.4"]\n'))
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, out + err
    assert read_lock(root / "locks" / "pylock.linux_aarch64-cp311.toml").target.python_full_version == "3.11.4"
    assert read_lock(root / "locks" / "pylock.bullseye-amd64.toml").target.python_full_version == "3.9.2"


def test_sign_series_and_expires_and_an_expired_bundle_is_signed_again(project):
    root, _ = project
    toml = root / "pipelines" / "app.toml"
    toml.write_text(toml.read_text() + 'series = "app-prod"\nexpires = "30d"\n')
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    manifest = root / "dist" / "bullseye-amd64" / "manifest.json"
    first = json.loads(manifest.read_text())
    assert (first["series"], first["sequence"]) == ("app-prod", 1)
    signed = datetime.fromisoformat(first["signed_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(first["expires"].replace("Z", "+00:00"))
    assert expires - signed == timedelta(days=30)
    # still fresh: kept as it is
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    assert all("signature current" in r["status"] for r in rows(out).values())
    # expired (signed by hand long ago, same key and series): the next run signs it again
    bundle = root / "dist" / "bullseye-amd64"
    code, _, err = run("sign", str(bundle), "--key", str(root / "keys" / "release"), "-q",
                       "--series", "app-prod", "--signed-at", "2020-01-01T00:00:00Z",
                       "--expires", "30d")
    assert code == 0, err
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    assert ", signed, " in rows(out)["bullseye-amd64"]["status"]
    assert "signature current" in rows(out)["linux_aarch64-cp311"]["status"]
    again = json.loads(manifest.read_text())
    assert again["sequence"] == 3 and again["signed_at"] > "2020-02"


def test_cli_and_pipeline_make_the_same_lock_from_the_same_settings(tmp_path, monkeypatch, index_server, wheel_dir):
    """One options path: flags and a [lock] table give one request, so one lock."""
    monkeypatch.chdir(tmp_path)
    server = index_server()
    server.add(make_wheel(wheel_dir, "app-core", "1.0", requires_dist=["tomli"]), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "tomli", "2.0"), upload_time=EARLY)
    (tmp_path / "app.in").write_text("app-core\n")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "app.toml").write_text(f"""
[pipeline]
locks = "../locks-run"
output = "../dist"
[lock]
requirements = ["../app.in"]
targets = ["linux-cp311"]
index-url = "{server.simple_url}"
use-pip-config = false
exclude-newer = "2024-06-01"
only-binary = ["App_Core"]
""")
    code, _, err = run(
        "lock", "-r", "app.in", "--target", "linux-cp311", "--index-url", server.simple_url,
        "--no-pip-config", "--exclude-newer", "2024-06-01", "--only-binary", "App_Core",
        "-o", "locks-cli", "-q",
    )
    assert code == 0, err
    code, _, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    by_cli = read_lock(tmp_path / "locks-cli" / "pylock.linux-cp311.toml")
    by_run = read_lock(tmp_path / "locks-run" / "pylock.linux-cp311.toml")
    assert by_cli.settings.only_binary == ("app-core",)
    assert by_cli.command.startswith("lockship lock -r app.in --target linux-cp311")
    assert by_run.command == "lockship run pipelines/app.toml"
    # The regenerate command is the one difference, and the only one in the fingerprint.
    assert by_cli.model_copy(update={"command": by_run.command}).fingerprinted() == by_run


def test_a_pipeline_run_from_another_directory_keeps_its_locks(project, monkeypatch):
    root, _ = project
    code, _, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    locks = {p.name: p.read_bytes() for p in (root / "locks").iterdir()}
    lock = read_lock(root / "locks" / "pylock.linux_aarch64-cp311.toml")
    assert [i.path for i in lock.inputs] == ["pipelines/app.in"]
    assert lock.command == "lockship run pipelines/app.toml"
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run("run", "../pipelines/app.toml", "--upgrade", "--json")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (root / "locks").iterdir()} == locks
    for where in (elsewhere, root / "pipelines", Path("/")):
        monkeypatch.chdir(where)
        code, _, err = run("run", str(root / "pipelines" / "app.toml"), "--check", "--json")
        assert code == 0, err


def test_lockships_own_locks_check_from_any_directory(monkeypatch, tmp_path):
    """CI may run anywhere: the committed locks must not depend on the cwd."""
    pipeline = Path(__file__).parents[1] / "pipelines" / "lockship.toml"
    for where in (tmp_path, pipeline.parent, pipeline.parents[1]):
        monkeypatch.chdir(where)
        code, _, err = run("run", str(pipeline), "--check", "--offline", "-q")
        assert code == 0, err


def test_the_readme_shows_the_demo_pipeline_as_it_is():
    root = Path(__file__).parents[1]
    demo = (root / "pipelines" / "demo.toml").read_text()
    readme = (root / "README.md").read_text()
    shown = readme.split("`pipelines/demo.toml`:\n\n```toml\n", 1)[1].split("```", 1)[0]
    assert shown == demo[demo.index("[pipeline]"):]


def test_one_http_client_serves_every_step_and_target_of_a_run(project, monkeypatch):
    """lock and fetch of both targets share the run's session: one HTTP client, so its
    connections (and their TLS handshakes, on a real index) serve the whole run."""
    from lockship.http import HttpClient  # noqa: PLC0415

    made: list[HttpClient] = []
    original = HttpClient.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(HttpClient, "__init__", counting)
    code, out, err = run("run", "pipelines/app.toml", "--json")
    assert code == 0, err
    assert all(row["status"].startswith("locked, fetched") for row in rows(out).values())
    assert len(made) == 1
