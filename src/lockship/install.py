"""Installing a verified bundle into an interpreter or a virtual environment.

Order matters: verify the bundle (nothing runs from an unverified one), make
sure the receiving interpreter fits the bundle's target (Python version,
platform, machine, and a pip-accepted tag for every wheel), and only then run
``pip install --no-index --find-links wheels --require-hashes``, whose hash
checking is a second, independent guard. The fit and pip steps are the same
code the bundle's own ``install.py`` runs.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lockship import _probe, sshsig
from lockship._fs import filesystem_error
from lockship._install_script import (
    create_venv,
    env_mismatch,
    pinned_hashes,
    pip_install,
    tag_mismatch,
    venv_python,
)
from lockship.errors import IncompatibleTargetError, InputError
from lockship.sign import read_record
from lockship.verify import VerifyReport, open_bundle, verify_directory

__all__ = ["InstallResult", "install_bundle"]


@dataclass(frozen=True)
class InstallResult:
    python: str  # the interpreter that received the packages
    venv: Optional[Path]
    created_venv: bool
    packages: tuple[str, ...]  # "name==version", sorted
    report: VerifyReport


def _ignore(_line: str) -> None:
    pass


def _probe_interpreter(python: str) -> dict[str, Any]:
    """Marker environment and pip's tags of ``python``, from ``_probe.py`` run by it."""
    try:
        proc = subprocess.run(
            [python, "-I", _probe.__file__], capture_output=True, text=True, check=False
        )
        data: dict[str, Any] = json.loads(proc.stdout)
    except OSError as exc:
        raise IncompatibleTargetError(f"cannot run: {exc.strerror}", where=python) from None
    except ValueError:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise IncompatibleTargetError(
            f"cannot probe this interpreter: {last}", where=python
        ) from None
    return data


def install_bundle(
    bundle: Path,
    *,
    allowed_signers: Path,
    identity: Optional[str],
    python: Optional[str],
    venv: Optional[Path],
    on_output: Callable[[str], None] = _ignore,
) -> InstallResult:
    """Verify a bundle (directory or archive), check the interpreter fits, pip install it.

    :param python: the interpreter to install into; with ``venv``, the one that
        creates a missing venv (default there: the interpreter running lockship).
    :param venv: a virtual environment to install into, created when missing.
    :param on_output: called with each line pip prints.
    :raises InputError: neither ``python`` nor ``venv``; ``venv`` is not a venv.
    :raises SignatureError, VerificationError: the bundle failed verification;
        nothing was run.
    :raises IncompatibleTargetError: the interpreter does not fit the bundle's
        target, cannot create the venv, or pip failed (with pip's last lines).
    """
    if python is None and venv is None:
        raise InputError(
            "say where to install", where=str(bundle), hint="pass --venv DIR or --python PATH"
        )
    signers = sshsig.load_allowed_signers(allowed_signers)
    with open_bundle(bundle) as root:
        report = verify_directory(root, signers, identity=identity, where=str(bundle))
        record = read_record(root)
        target, target_env = record.target.name, record.target.marker_environment
        receiver = python or sys.executable
        created = venv is not None and not venv.exists()
        if venv is not None and created:
            # Refuse a wrong Python before leaving a venv behind; the tags are
            # checked below, with the venv's own pip.
            env = _probe_interpreter(receiver)["marker_environment"]
            problem = env_mismatch(target, target_env, env, receiver)
            if problem:
                raise IncompatibleTargetError(problem, where=str(bundle))
            _make_venv_dir(venv)
            problem = create_venv(receiver, str(venv))
            if problem:
                with contextlib.suppress(OSError):
                    venv.rmdir()  # only if python -m venv left it empty
                raise IncompatibleTargetError(problem, where=str(bundle))
        if venv is not None:
            receiver = venv_python(str(venv))
            if not (venv / "pyvenv.cfg").is_file():
                raise InputError("not a virtual environment (no pyvenv.cfg)", where=str(venv))
        hashes = pinned_hashes(str(root))
        wheels = [f for f in record.files if f.sha256 in hashes]
        facts = _probe_interpreter(receiver)
        problem = env_mismatch(target, target_env, facts["marker_environment"], receiver)
        problem = problem or tag_mismatch(facts["tags"], [f.path for f in wheels], receiver)
        if problem:
            raise IncompatibleTargetError(problem, where=str(bundle))
        status, tail = pip_install(receiver, str(root), on_output)
        if status != 0:
            raise IncompatibleTargetError(
                "\n  ".join([f"pip install failed (exit status {status}):", *tail]),
                where=receiver,
                hint="pip's output above says why; a fresh --venv DIR avoids conflicts",
            )
    return InstallResult(
        python=receiver,
        venv=venv,
        created_venv=created,
        packages=tuple(sorted(f"{f.name}=={f.version}" for f in wheels)),
        report=report,
    )


def _make_venv_dir(venv: Path) -> None:
    """Make the venv's directory first: a refusal there is the filesystem's (exit 9)."""
    try:
        venv.mkdir(parents=True)
    except OSError as exc:
        raise filesystem_error(exc, venv, action="cannot create the virtual environment") from None
