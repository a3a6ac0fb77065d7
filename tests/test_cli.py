"""The command line's conventions: -h/-V, metavars, summaries, examples, usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import run
from lockship import __version__
from lockship.cli import app

COMMANDS = sorted(info.name or "" for info in app.registered_commands)


def test_short_help_and_version_options():
    assert run("-h") == run("--help")
    assert run("-V") == (0, f"lockship {__version__}\n", "")
    assert run("lock", "-h") == run("lock", "--help")


def test_version_does_not_import_the_cli():
    """``lockship --version`` answers from lockship/__main__.py: no typer, rich or pydantic."""
    probe = (
        "import sys; sys.argv = ['lockship', '--version']; from lockship.__main__ import main; "
        "main(); print(sorted({'typer', 'rich', 'pydantic', 'lockship.cli'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout == f"lockship {__version__}\n[]\n"


def test_cli_start_up_leaves_the_requirement_parsers_out():
    """Importing the CLI (every command pays it) does not import inputs, urllib or packaging's parsers."""
    probe = (
        "import sys, lockship.cli; print(sorted({'lockship.inputs', 'lockship.resolve', "
        "'packaging.requirements', 'urllib.request'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # Keeping an unchanged lock needs no network stack (urllib3, ssl) and no YAML.
        ("lockship.lock", "'urllib3', 'ssl', 'yaml', 'lockship.http', 'lockship.sdists'"),
        # verify, sign and the dossier read local wheels only.
        ("lockship.verify", "'urllib3', 'lockship.http', 'lockship.download'"),
    ],
)
def test_library_imports_leave_the_network_stack_out(module: str, absent: str) -> None:
    probe = f"import sys, {module}; print(sorted({{{absent}}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lock", "--chekc"], "lockship lock: no such option: --chekc"),  # + the parser's guesses
        (["fetch"], "lockship fetch: missing option '--target' / '-t'"),
        (["diff", "a"], "lockship diff: missing argument 'NEW'"),
        (["lokc"], "lockship: no such command 'lokc'. Did you mean 'lock'?"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint(args, message):
    code, out, err = run(*args)
    command = message.split(":")[0]
    assert (code, out) == (2, "")
    first, hint = err.splitlines()
    assert first.startswith(f"lockship: error: {message}")
    assert hint == f"  hint: see '{command} --help'"


def test_help_at_80_columns_has_whole_summaries_and_named_metavars():
    code, out, _ = run("--help", env={"COLUMNS": "80"})
    assert code == 0
    commands = out.split("Commands:\n", 1)[1].splitlines()
    assert len(commands) == len(COMMANDS)
    assert not [line for line in commands if line.endswith("...") or len(line) > 80]
    _, lock_help, _ = run("lock", "--help", env={"COLUMNS": "80"})
    for shown in ("-r, --requirement FILE", "-t, --target TARGET", "--exclude-newer WHEN",
                  "-j, --jobs N", "--cache-dir DIR"):
        assert shown in lock_help
    assert "list[" not in lock_help
    assert "[default:" not in lock_help  # defaults are written in the help text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_an_example_quiet_and_a_machine_readable_result(command):
    code, out, _ = run(command, "--help", env={"COLUMNS": "100"})
    assert code == 0
    assert f"Example:\n    lockship {command} " in out
    assert "-q, --quiet" in out
    assert "--json" in out or "--format" in out or command == "probe"  # probe prints JSON


def test_a_closed_stdout_is_a_quiet_exit_141():
    """``lockship targets | head -1``: the reader went away; no internal error."""
    script = Path(sys.executable).with_name("lockship")
    proc = subprocess.Popen([script, "targets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before lockship has started: its first write fails
    assert (proc.wait(), proc.stderr.read()) == (141, b"")
    proc.stderr.close()


def test_probe_reports_pips_version():
    code, out, err = run("probe")
    assert code == 0, err
    # pip's own word for its version ("pip 26.0.1 from ..."): a distribution's metadata
    # may differ (a vendor's 26.0.1.post1), and the bug was reading "3.11)" from that line.
    shown = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    assert json.loads(out)["pip_version"] == shown.stdout.split()[1]
