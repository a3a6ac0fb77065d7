"""``lockship audit``: real advisories from the PyPA database (YAML) and an OSV JSON zip,
OSV range semantics, ignores, inputs, bounded parsers, and no network at any point."""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path

import pytest

from bundles import make_bundle
from cli_runner import run

OSV_SNAPSHOT = Path(__file__).parent / "data" / "osv" / "pypa-advisory-database-3ccb612.tar.xz"
DB_LINE = "database pypa-advisory-database (2661 records, newest 2024-10-10)"

VULNERABLE = """\
# as pip-compile --generate-hashes writes it
requests==2.19.1 \\
    --hash=sha256:63b52e3c866428a224f97cab011de738c36aec0185aa91cfacd418b5d58911d1
    # via -r requirements.in
jinja2==2.10 \\
    --hash=sha256:74c935a1b8bb9a3947c50a54766a969d4846290e1e788ea44c1392163723c3bd
click==8.1.7
"""
# What the PyPA database of 2024-10-10 says about these releases (checked by hand
# against the records in vulns/requests and vulns/jinja2).
EXPECTED = [
    ("jinja2", "2.10", "PYSEC-2019-217", "2.10.1", ["CVE-2019-10906", "GHSA-462w-v97r-4m45"]),
    ("jinja2", "2.10", "PYSEC-2021-66", "2.11.3",
     ["CVE-2020-28493", "SNYK-PYTHON-JINJA2-1012994", "GHSA-g3rq-g295-4j3m"]),
    ("requests", "2.19.1", "PYSEC-2018-28", "2.20.0", ["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]),
    ("requests", "2.19.1", "PYSEC-2023-74", "2.31.0", ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"]),
]
CLEAN = "requests==2.32.3\njinja2==3.1.4\nurllib3==2.2.3\nidna==3.10\ncertifi==2024.8.30\n"


@pytest.fixture(autouse=True)
def _shared_index_cache(osv_cache, monkeypatch):
    monkeypatch.setenv("LOCKSHIP_CACHE_DIR", str(osv_cache))


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "linux-cp39.txt"
    path.write_text(VULNERABLE)
    return path


def audit_json(*args: str) -> tuple[int, dict, str]:
    code, out, err = run("audit", *args, "--format", "json")
    return code, (json.loads(out) if out else {}), err


def findings(document: dict) -> list[tuple]:
    return [
        (f["name"], f["version"], f["id"], f["fix"], f["aliases"]) for f in document["findings"]
    ]


def test_vulnerable_set_against_the_yaml_database(lock, osv_db):
    code, document, err = audit_json(str(lock), "--db", str(osv_db))
    assert code == 13, err
    assert findings(document) == EXPECTED
    assert document["packages"] == 3
    assert document["database"] == {
        "name": "pypa-advisory-database",
        "records": 2661,
        "withdrawn": 10,
        "date": "2024-10-10T17:22:00.587279Z",
        "sha256": document["database"]["sha256"],
    }
    assert document["upgrades"] == [
        {"name": "jinja2", "version": "2.10", "to": "2.11.3"},
        {"name": "requests", "version": "2.19.1", "to": "2.31.0"},
    ]
    requests_fix = next(f for f in document["findings"] if f["id"] == "PYSEC-2018-28")
    assert requests_fix["fixed"] == ["2.20.0"]
    assert requests_fix["url"].startswith("http")
    assert requests_fix["summary"].startswith("The Requests package before 2.20.0 for Python")


def test_the_osv_json_zip_gives_the_same_findings(lock, osv_db, osv_zip):
    _, from_yaml, _ = audit_json(str(lock), "--db", str(osv_db))
    code, from_zip, err = audit_json(str(lock), "--db", str(osv_zip))
    assert code == 13, err
    assert from_zip["findings"] == from_yaml["findings"]
    assert (from_zip["database"]["records"], from_zip["database"]["date"]) == (
        2661, "2024-10-10T17:22:00.587279Z"
    )
    assert from_zip["database"]["name"] == "all.zip"


def test_the_vendored_tarball_is_a_database_too(lock, osv_db):
    """A tar of the directory layout (as a repository archive comes) is read in place."""
    _, from_directory, _ = audit_json(str(lock), "--db", str(osv_db))
    code, from_tar, err = audit_json(str(lock), "--db", str(OSV_SNAPSHOT))
    assert code == 13, err
    assert from_tar["findings"] == from_directory["findings"]
    assert from_tar["database"]["records"] == 2661
    truncated = lock.parent / "cut.tar.xz"
    truncated.write_bytes(OSV_SNAPSHOT.read_bytes()[:200_000])
    code, _, err = run("audit", str(lock), "--db", str(truncated))
    assert code == 3
    assert err.startswith(f"lockship: error: {truncated}: cannot read the database: ")


def test_table_output_names_the_database_and_every_advisory(lock, osv_db):
    code, out, err = run("audit", str(lock), "--db", str(osv_db))
    assert (code, err) == (13, "")
    assert out.startswith(
        f"linux-cp39.txt: 4 known vulnerabilities in 2 of 3 packages; {DB_LINE}\n"
    )
    for name, version, advisory, fix, aliases in EXPECTED:
        assert f"{name} {version}" in out
        assert advisory in out and aliases[0] in out and fix in out


def test_a_clean_set_exits_0(tmp_path, osv_db):
    path = tmp_path / "clean.txt"
    path.write_text(CLEAN)
    code, out, err = run("audit", str(path), "--db", str(osv_db))
    assert (code, err) == (0, "")
    assert out == f"clean.txt: no known vulnerabilities in 5 packages; {DB_LINE}\n"


def test_markdown_names_database_date_and_findings(lock, osv_db):
    code, out, _ = run("audit", str(lock), "--db", str(osv_db), "--format", "markdown")
    assert code == 13
    assert out.startswith("## lockship audit of linux-cp39.txt\n\n4 known vulnerabilities")
    assert "newest record 2024-10-10T17:22:00.587279Z" in out
    assert "| requests | 2.19.1 | [PYSEC-2018-28](" in out


def test_ignores_are_recorded_with_their_reasons(lock, osv_db):
    code, document, err = audit_json(
        str(lock), "--db", str(osv_db),
        "--ignore", "CVE-2018-18074=no redirects to http on the target",  # an alias
        "--ignore", "PYSEC-2023-74=no proxies",
        "--ignore", "GHSA-0000-0000-0000=old exception",
    )
    assert code == 13  # jinja2's advisories are not ignored
    ignored = {f["id"]: f["ignored"] for f in document["findings"]}
    assert ignored == {
        "PYSEC-2018-28": "no redirects to http on the target",
        "PYSEC-2023-74": "no proxies",
        "PYSEC-2019-217": None,
        "PYSEC-2021-66": None,
    }
    assert document["ignores"] == [
        {"id": "CVE-2018-18074", "reason": "no redirects to http on the target", "matched": True},
        {"id": "GHSA-0000-0000-0000", "reason": "old exception", "matched": False},
        {"id": "PYSEC-2023-74", "reason": "no proxies", "matched": True},
    ]
    assert err == "lockship: warning: --ignore GHSA-0000-0000-0000 matched no advisory\n"
    ignores = [f"--ignore={e[2]}=accepted" for e in EXPECTED]
    code, out, _ = run("audit", str(lock), "--db", str(osv_db), *ignores)
    assert code == 0
    assert out.startswith(
        f"linux-cp39.txt: no known vulnerabilities in 3 packages (4 ignored); {DB_LINE}\n"
    )


def test_an_ignore_needs_a_reason(lock, osv_db):
    code, out, err = run("audit", str(lock), "--db", str(osv_db), "--ignore", "PYSEC-2018-28")
    assert (code, out) == (3, "")
    assert err == (
        "lockship: error: --ignore: 'PYSEC-2018-28': give the advisory and the reason, "
        "ID=REASON\n"
        "  hint: e.g. --ignore 'PYSEC-2023-74=proxies are not used on the target'\n"
    )


def test_withdrawn_records_never_match(tmp_path, osv_db):
    # PYSEC-2022-43055 names hyperledger 0.0.2 and was withdrawn.
    path = tmp_path / "lock.txt"
    path.write_text("hyperledger==0.0.2\n")
    code, document, _ = audit_json(str(path), "--db", str(osv_db))
    assert (code, document["findings"]) == (0, [])
    assert "withdrawn:" in (osv_db / "vulns/hyperledger/PYSEC-2022-43055.yaml").read_text()


# --- OSV semantics, on records written here ------------------------------------------------


def write_db(directory: Path, *records: dict, suffix: str = ".json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}{suffix}").write_text(json.dumps(record))
    return directory


def osv(identifier: str, *affected: dict, **fields: object) -> dict:
    return {"id": identifier, "modified": "2024-01-01T00:00:00Z", "affected": list(affected),
            **fields}


def pypi(name: str, *ranges: list, versions: tuple = ()) -> dict:
    return {
        "package": {"ecosystem": "PyPI", "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": events} for events in ranges],
        "versions": list(versions),
    }


RANGES = [
    # events, version, affected?, fix
    ([{"introduced": "0"}, {"fixed": "2.0"}], "1.9", True, "2.0"),
    ([{"introduced": "0"}, {"fixed": "2.0"}], "2.0", False, None),
    ([{"introduced": "0"}, {"fixed": "2.0"}], "2.0rc1", True, "2.0"),  # PEP 440: rc < final
    ([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}], "1.7", False, None),
    ([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}], "2.1", True, "2.3"),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4", True, None),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4.1", False, None),
    ([{"introduced": "1.0"}, {"limit": "1.2"}], "1.3", False, None),
    ([{"introduced": "1.0"}], "99", True, None),
    ([{"introduced": "1.0.0"}, {"fixed": "1.1"}], "1.0", True, "1.1"),  # 1.0 == 1.0.0
    ([{"fixed": "2.0"}, {"introduced": "0"}], "1.0", True, "2.0"),  # events in any order
]


@pytest.mark.parametrize(("events", "version", "affected", "fix"), RANGES)
def test_ecosystem_ranges(tmp_path, events, version, affected, fix):
    db = write_db(tmp_path / "db", osv("TEST-1", pypi("Some_Project", events)))
    lock = tmp_path / "lock.txt"
    lock.write_text(f"some-project=={version}\n")
    code, document, _ = audit_json(str(lock), "--db", str(db))
    found = [(f["id"], f["fix"]) for f in document["findings"]]
    assert found == ([("TEST-1", fix)] if affected else [])
    assert code == (13 if affected else 0)


def test_the_upgrade_clears_every_advisory(tmp_path):
    """Each advisory's own fix (1.5, 2.1) is still named by the other one; 2.2 is not."""
    db = write_db(
        tmp_path / "db",
        osv("TEST-A", pypi("alpha", [{"introduced": "0"}, {"fixed": "1.5"},
                                     {"introduced": "2.0"}, {"fixed": "2.2"}])),
        osv("TEST-B", pypi("alpha", [{"introduced": "0"}, {"fixed": "2.1"}])),
    )
    lock = tmp_path / "lock.txt"
    lock.write_text("alpha==1.0\n")
    _, document, _ = audit_json(str(lock), "--db", str(db))
    assert [(f["id"], f["fix"]) for f in document["findings"]] == [("TEST-A", "1.5"), ("TEST-B", "2.1")]
    assert document["upgrades"] == [{"name": "alpha", "version": "1.0", "to": "2.2"}]
    _, document, _ = audit_json(str(lock), "--db", str(db), "--ignore", "TEST-A=accepted")
    assert document["upgrades"] == [{"name": "alpha", "version": "1.0", "to": "2.1"}]


def test_versions_lists_other_ecosystems_and_git_ranges(tmp_path):
    db = write_db(
        tmp_path / "db",
        osv("TEST-1", pypi("alpha", versions=("1.0", "1.2"))),
        osv("TEST-2", {"package": {"ecosystem": "npm", "name": "alpha"}, "versions": ["1.1"]}),
        osv("TEST-3", {"package": {"ecosystem": "PyPI", "name": "alpha"},
                       "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}),
        osv("TEST-4", pypi("alpha", [{"introduced": "0"}, {"fixed": "1.1"}]), withdrawn="2024-02-01T00:00:00Z"),
    )
    lock = tmp_path / "lock.txt"
    for version, expected in [("1.0", ["TEST-1"]), ("1.1", []), ("1.2", ["TEST-1"])]:
        lock.write_text(f"alpha=={version}\n")
        _, document, _ = audit_json(str(lock), "--db", str(db))
        assert [f["id"] for f in document["findings"]] == expected, version
    assert document["database"]["withdrawn"] == 1


def test_yaml_scalars_stay_versions(tmp_path):
    """A plain ``fixed: 1.10`` is the version 1.10 (PyYAML's loader would read 1.1)."""
    db = tmp_path / "db"
    db.mkdir()
    (db / "TEST-1.yaml").write_text(
        "id: TEST-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package:\n"
        "    ecosystem: PyPI\n    name: alpha\n  ranges:\n  - type: ECOSYSTEM\n"
        "    events:\n    - introduced: 0\n    - fixed: 1.10\n"
    )
    lock = tmp_path / "lock.txt"
    lock.write_text("alpha==1.9\n")
    code, document, _ = audit_json(str(lock), "--db", str(db))
    assert code == 13
    assert document["findings"][0]["fix"] == "1.10"


def test_the_cached_index_follows_the_database_contents(tmp_path):
    db = write_db(tmp_path / "db", osv("TEST-1", pypi("alpha", [{"introduced": "0"}, {"fixed": "2.0"}])))
    lock = tmp_path / "lock.txt"
    lock.write_text("alpha==1.5\n")
    assert audit_json(str(lock), "--db", str(db))[0] == 13
    assert audit_json(str(lock), "--db", str(db))[0] == 13  # from the cached index
    write_db(db, osv("TEST-1", pypi("alpha", [{"introduced": "0"}, {"fixed": "1.5"}])))
    code, document, _ = audit_json(str(lock), "--db", str(db))
    assert (code, document["findings"]) == (0, [])


# --- inputs ---------------------------------------------------------------------------------


def test_pylock_bundle_and_archive(tmp_path, osv_db, keys):
    bundle = make_bundle(tmp_path, packages=(("requests", "2.19.1"), ("click", "8.1.7")))
    for path in (bundle / "pylock.host.toml", bundle):
        code, document, err = audit_json(str(path), "--db", str(osv_db))
        assert code == 13, err
        assert [f["id"] for f in document["findings"]] == ["PYSEC-2018-28", "PYSEC-2023-74"]
        assert (document["target"], document["packages"]) == ("host", 2)
    code, _, err = run("sign", str(bundle), "--key", str(keys.plain), "--archive", "-q")
    assert code == 0, err
    code, document, err = audit_json(str(tmp_path / "dist" / "host.tar"), "--db", str(osv_db))
    assert code == 13, err
    assert document["source"] == "host.tar"


def test_an_unpinned_requirement_is_refused(tmp_path, osv_db):
    path = tmp_path / "requirements.txt"
    path.write_text("click==8.1.7\nrequests>=2\n")
    code, _, err = run("audit", str(path), "--db", str(osv_db))
    assert code == 3
    assert err == (
        f"lockship: error: {path}:2: requests is not pinned to one version (name==version)\n"
        "  hint: audit a lock: lockship lock, pip-compile or pip freeze output\n"
    )


def test_missing_or_unusable_database(lock, tmp_path):
    code, _, err = run("audit", str(lock), "--db", str(tmp_path / "nowhere"))
    assert (code, err) == (3, f"lockship: error: {tmp_path / 'nowhere'}: no such advisory database\n")
    code, _, err = run("audit", str(lock), "--db", str(lock))
    assert code == 3
    assert err == (
        f"lockship: error: {lock}: not an OSV database: expected a directory of OSV records, "
        "a zip of them, or a tar of the directory\n"
    )


# --- the database is input too: bounded parsers -----------------------------------------------

LAUGHS = "id: TEST-1\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("laughs.yaml", LAUGHS, "YAML aliases are not allowed in an OSV record"),
        ("deep.yaml", "id: TEST-1\nx: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 32 levels"),
        ("deep.json", '{"id": "TEST-1", "x": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
        ("big.json", '{"id": "TEST-1", "details": "' + "x" * (4 * 1024 * 1024) + '"}', "larger than 4194304 bytes"),
        ("list.json", "[1, 2]", "the record is not a mapping"),
        ("noid.json", '{"affected": []}', "id is not a string"),
        ("bad.json", '{"id": "T", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "versions": "1.0"}]}',
         "affected[0].versions is not a list"),
        ("two.yaml", "id: A\n---\nid: B\n", "more than one YAML document"),
    ],
)
def test_hostile_records_are_refused_with_their_file(tmp_path, lock, name, content, problem):
    db = tmp_path / "db"
    (db / "sub").mkdir(parents=True)
    (db / "sub" / name).write_text(content)
    code, out, err = run("audit", str(lock), "--db", str(db))
    assert (code, out) == (3, "")
    assert err == f"lockship: error: {db}: sub/{name}: not a usable OSV record: {problem}\n"


def test_a_zip_member_over_the_limit_is_refused(tmp_path, lock):
    path = tmp_path / "all.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BOMB.json", '{"id": "BOMB", "details": "' + "0" * (8 * 1024 * 1024) + '"}')
    assert path.stat().st_size < 100_000
    code, _, err = run("audit", str(lock), "--db", str(path))
    assert code == 3
    assert err == (
        f"lockship: error: {path}: BOMB.json: not a usable OSV record: larger than 4194304 bytes\n"
    )


def test_no_network_at_any_point(lock, osv_db, osv_zip, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("audit opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for db in (osv_db, osv_zip):
        assert audit_json(str(lock), "--db", str(db))[0] == 13
