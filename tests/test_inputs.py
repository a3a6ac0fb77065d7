"""Inputs users already have, locked through the real CLI against the suite's own index.

pip's ``constraint`` (pip.conf and PIP_CONSTRAINT), ``requirements.txt`` as the
default input, a conda ``environment.yml`` (lockship.inputs.conda) and
``pip freeze`` output (lockship.inputs.freeze).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli_runner import run
from lockship.lockfile import read_lock
from pkgbuild import make_wheel

EARLY = datetime(2024, 1, 1, tzinfo=timezone.utc)


def pins(path: Path) -> dict[str, str]:
    return {p.name: p.version for p in read_lock(path).packages}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def server(index_server, wheel_dir):
    server = index_server()
    for version in ("2.14.1", "2.15.0"):
        server.add(make_wheel(wheel_dir, "torch", version), upload_time=EARLY)
    for version in ("2.31.0", "2.32.3"):
        server.add(make_wheel(wheel_dir, "requests", version, requires_dist=["idna"]),
                   upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "idna", "3.7"), upload_time=EARLY)
    server.add(make_wheel(wheel_dir, "attrs", "23.2.0"), upload_time=EARLY)
    return server


# --- pip's constraint ------------------------------------------------------------------


def test_constraint_in_pip_conf_applies(server, project, monkeypatch):
    (project / "pip-constraints.txt").write_text("torch<=2.14.1\n")
    conf = project / "pip.conf"
    conf.write_text(f"[global]\nconstraint = {project / 'pip-constraints.txt'}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))  # pins pip's config to this file
    (project / "requirements.in").write_text("torch\n")
    code, _, err = run("lock", "--index-url", server.simple_url, "--target", "linux-cp39")
    assert code == 0, err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"torch": "2.14.1"}
    inputs = [i.path for i in read_lock(project / "locks" / "pylock.linux-cp39.toml").inputs]
    assert "pip-constraints.txt" in inputs  # a changed constraints file makes the lock stale
    # --no-pip-config drops it
    code, _, err = run("lock", "--index-url", server.simple_url, "--target", "linux-cp39",
                       "--no-pip-config", "-o", "free")
    assert code == 0, err
    assert pins(project / "free" / "pylock.linux-cp39.toml") == {"torch": "2.15.0"}


def test_pip_constraint_variable_applies(server, project, monkeypatch):
    (project / "c.txt").write_text("torch<=2.14.1\n")
    monkeypatch.setenv("PIP_CONSTRAINT", "c.txt")
    (project / "requirements.in").write_text("torch\n")
    code, _, err = run("lock", "--index-url", server.simple_url, "--target", "linux-cp39")
    assert code == 0, err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"torch": "2.14.1"}


def test_pip_config_file_devnull_reads_no_file_at_all(server, project, monkeypatch):
    # pip skips even the global files then; so must lockship (the autouse fixture relies on it)
    from lockship.pipconfig import pip_config_files  # noqa: PLC0415

    assert pip_config_files({"PIP_CONFIG_FILE": "/dev/null"}) == []


# --- requirements.txt as the default ---------------------------------------------------


def test_requirements_txt_is_the_default_when_there_is_no_requirements_in(server, project):
    (project / "requirements.txt").write_text("attrs\n")
    code, _, err = run("lock", "--index-url", server.simple_url, "--no-pip-config",
                       "--target", "linux-cp39")
    assert code == 0, err
    assert ("lockship: warning: no requirements.in or pyproject.toml: locking "
            "requirements.txt\n") in err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"attrs": "23.2.0"}
    (project / "requirements.in").write_text("idna\n")  # requirements.in wins
    code, _, err = run("lock", "--index-url", server.simple_url, "--no-pip-config",
                       "--target", "linux-cp39")
    assert code == 0, err
    assert "requirements.txt" not in err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {"idna": "3.7"}


# --- conda environment.yml -------------------------------------------------------------

ENVIRONMENT = """\
name: analysis
channels:
  - conda-forge
dependencies:
  - python=3.9
  - numpy=1.26
  - pip
  - pip:
    - requests==2.31.0
    - attrs
"""


def test_environment_yml_locks_its_pip_section_for_its_python(server, project):
    (project / "environment.yml").write_text(ENVIRONMENT)
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config")
    assert code == 0, err
    assert err == (
        "lockship: warning: environment.yml: only the pip: section is locked; the conda "
        "packages (numpy=1.26) are out of lockship's scope: conda-pack or conda-lock carry "
        "and lock those\n"
        "locks/linux-cp39.txt: 3 packages for linux-cp39, updated (" + err.split("updated (")[1]
    )
    lock_path = project / "locks" / "pylock.linux-cp39.toml"
    assert pins(lock_path) == {"requests": "2.31.0", "idna": "3.7", "attrs": "23.2.0"}
    assert read_lock(lock_path).target.python_full_version == "3.9.0"


def test_environment_yml_full_python_version_and_explicit_target(server, project):
    (project / "environment.yml").write_text(ENVIRONMENT.replace("python=3.9", "python=3.9.2"))
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config")
    assert code == 0, err
    assert read_lock(project / "locks" / "pylock.linux-cp39.toml").target.python_full_version == "3.9.2"
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "windows-cp39", "--target", "windows-cp312")
    assert code == 0, err
    assert read_lock(project / "locks" / "pylock.windows-cp39.toml").target.python_full_version == "3.9.2"
    assert read_lock(project / "locks" / "pylock.windows-cp312.toml").target.python_full_version == "3.12.0"
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "windows-cp39", "--python-version", "3.9.5")
    assert code == 0, err
    assert read_lock(project / "locks" / "pylock.windows-cp39.toml").target.python_full_version == "3.9.5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "lockship: error: environment.yml: no 'dependencies' list\n"),
        ("dependencies: [\n", "lockship: error: environment.yml: invalid YAML: "),
        ("dependencies:\n  - pip:\n    - --index-url https://x\n",
         ("lockship: error: environment.yml:3: pip: entry '--index-url https://x' is not a "
          "requirement lockship can lock\n")),
        ("dependencies:\n  - a: &a [*a]\n", "lockship: error: environment.yml: no requirements to lock"),
    ],
)
def test_bad_environment_files_are_refused(server, project, text, message):
    (project / "environment.yml").write_text(text)
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "linux-cp39")
    assert code == 3, err
    assert err.startswith(message)
    assert "Traceback" not in err


def test_an_oversized_environment_file_is_refused_unread(server, project):
    (project / "environment.yml").write_text("# x\n" * (300 * 1024))
    code, _, err = run("lock", "-r", "environment.yml", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "linux-cp39")
    assert code == 3, err
    assert err.startswith("lockship: error: environment.yml: larger than 1048576 bytes; refusing it\n")


# --- pip freeze output -----------------------------------------------------------------

FREEZE = """\
attrs==23.2.0
-e git+https://example.org/me/mine.git@0123abcd#egg=mine
idna==3.7
requests==2.31.0
"""


def test_freeze_output_locks_as_is_and_skips_editables(server, project):
    (project / "frozen.txt").write_text(FREEZE)
    code, _, err = run("lock", "-r", "frozen.txt", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "linux-cp39")
    assert code == 0, err
    assert (
        "lockship: warning: frozen.txt:2: skipped '-e git+https://example.org/me/mine.git"
        "@0123abcd#egg=mine': an editable install cannot be locked for another machine; list "
        "its dependencies, or build its wheel into a --find-links directory and require it "
        "by name\n"
    ) in err
    assert pins(project / "locks" / "pylock.linux-cp39.toml") == {
        "attrs": "23.2.0", "idna": "3.7", "requests": "2.31.0",
    }


def test_an_editable_in_a_hand_written_file_is_still_refused(server, project):
    (project / "requirements.in").write_text("requests>=2\n-e ./mine\n")
    code, _, err = run("lock", "--index-url", server.simple_url, "--no-pip-config",
                       "--target", "linux-cp39")
    assert code == 3, err
    assert err.startswith("lockship: error: requirements.in:2: editable requirements cannot be "
                          "locked for another machine")


def test_freeze_file_urls_are_refused_with_a_hint(server, project):
    (project / "frozen.txt").write_text("attrs==23.2.0\nmine @ file:///home/me/mine\n")
    code, _, err = run("lock", "-r", "frozen.txt", "--index-url", server.simple_url,
                       "--no-pip-config", "--target", "linux-cp39")
    assert code == 3, err
    assert err == (
        "lockship: error: frozen.txt:2: direct URL requirement mine @ file:///home/me/mine "
        "cannot be locked by name and hash\n"
        "  hint: pip freeze writes `name @ file://...` for a package installed from a local "
        "file or directory: build its wheel, put it in a --find-links directory and write "
        "mine==VERSION instead\n"
    )


def test_input_notes_are_printed_once_for_several_targets(server, project):
    (project / "requirements.txt").write_text("attrs\n")
    code, _, err = run("lock", "--index-url", server.simple_url, "--no-pip-config",
                       "--target", "linux-cp39", "--target", "windows-cp312")
    assert code == 0, err
    assert err.count("locking requirements.txt") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[global\nindex-url = x\n", "line 1: invalid pip configuration: File contains no section headers"),
        ("[global]\nindex-url = x\n=oops\n", "line 3: invalid pip configuration: cannot parse line '=oops\\n'"),
    ],
)
def test_broken_pip_conf_is_one_line_with_its_line_number(project, monkeypatch, text, message):
    (project / "requirements.in").write_text("attrs\n")
    conf = project / "pip.conf"
    conf.write_text(text)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    code, _, err = run("lock", "--target", "linux-cp39")
    assert code == 3
    assert err == (
        f"lockship: error: {conf}, {message}; fix the file, "
        "or pass --no-pip-config to read no pip configuration\n"
    )
    assert not (project / "locks").exists()
