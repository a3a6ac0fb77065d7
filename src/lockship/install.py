"""Installing a verified bundle into an interpreter or a virtual environment.

Order matters: verify the bundle (nothing runs from an unverified one), make
sure the receiving interpreter fits the bundle's target (Python version,
platform, machine, and a pip-accepted tag for every wheel), and only then run
``pip install --no-index --find-links wheels --require-hashes``, whose hash
checking is a second, independent guard. The fit and pip steps are the same
code the bundle's own ``install.py`` runs: pip and venv run isolated (``-I``,
``--isolated``, no PIP_*/PYTHON* variables, no pip configuration, an empty
working directory), and afterwards the interpreter must hold exactly the
pinned versions, each matching its RECORD. Into a venv, an expired bundle, or
one older than the bundle last installed there (same series and signer), is
refused unless ``allow_rollback``; what was installed is recorded in
``lockship-installed.json`` in the venv.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
    MANIFEST,
    UV_HINT,
    bundled_uv,
    census,
    census_problems,
    clean_env,
    create_venv,
    env_mismatch,
    freshness,
    freshness_problem,
    identity_required,
    load_json,
    locked_versions,
    pinned_hashes,
    pinned_wheel,
    read_installed,
    run_installer,
    sha256_file,
    sole_principal,
    tag_mismatch,
    venv_python,
    write_installed,
)
from lockship.errors import (
    FreshnessError,
    IncompatibleTargetError,
    InputError,
    IntegrityError,
    SignatureError,
)
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
            [python, "-I", _probe.__file__],
            capture_output=True,
            text=True,
            env=clean_env(),
            check=False,
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
    allow_rollback: bool = False,
    installer: str = "pip",
    on_output: Callable[[str], None] = _ignore,
) -> InstallResult:
    """Verify a bundle (directory or archive), check the interpreter fits, pip install it.

    :param python: the interpreter to install into; with ``venv``, the one that
        creates a missing venv (default there: the interpreter running lockship).
    :param venv: a virtual environment to install into, created when missing.
    :param identity: the principal that must have signed; None only when
        allowed_signers lists exactly one.
    :param allow_rollback: install into ``venv`` even a bundle older than the
        one recorded there.
    :param installer: "pip", or "uv": the uv program of the uv wheel the bundle
        pins, run from a private temporary directory.
    :param on_output: called with each line the installer prints.
    :raises InputError: neither ``python`` nor ``venv``; ``venv`` is not a venv;
        ``installer`` is uv and the bundle pins no uv wheel, or one without the program.
    :raises SignatureError, VerificationError: the bundle failed verification,
        or ``identity`` is None and allowed_signers lists several principals;
        nothing was run.
    :raises FreshnessError: the bundle expired, or is older than the one
        installed into ``venv``.
    :raises IntegrityError: after pip, the interpreter does not hold exactly the
        pinned distributions with their RECORDs.
    :raises IncompatibleTargetError: the interpreter does not fit the bundle's
        target, cannot create the venv, or pip failed (with pip's last lines).
    """
    if python is None and venv is None:
        raise InputError(
            "say where to install", where=str(bundle), hint="pass --venv DIR or --python PATH"
        )
    signers = sshsig.load_allowed_signers(allowed_signers)
    fields = [signer.principals for signer in signers]
    identity = identity or sole_principal(fields)
    if identity is None:
        raise SignatureError(
            identity_required(fields, str(allowed_signers)),
            hint="pass --identity PRINCIPAL: the one whose signature you trust for this bundle",
        )
    with open_bundle(bundle) as root:
        report = verify_directory(root, signers, identity=identity, where=str(bundle))
        now = dt.datetime.now(dt.timezone.utc)
        manifest = load_json(str(root), MANIFEST, [])
        fresh = freshness(manifest, identity, sha256_file(str(root / MANIFEST))[0])
        problem = freshness_problem(fresh, None, now, allow_rollback=False)
        if problem:
            raise FreshnessError(problem, where=str(bundle))
        record = read_record(root)
        target, target_env = record.target.name, record.target.marker_environment
        uv = None
        if installer == "uv":
            try:
                uv = bundled_uv(str(root))  # before a venv is made for it
            except (OSError, ValueError) as exc:
                raise InputError(str(exc), where=str(bundle), hint=UV_HINT) from None
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
            problem = create_venv(receiver, str(venv), pinned_wheel(str(root), "pip"))
            if problem:
                with contextlib.suppress(OSError):
                    venv.rmdir()  # only if python -m venv left it empty
                raise IncompatibleTargetError(problem, where=str(bundle))
        if venv is not None:
            receiver = venv_python(str(venv))
            if not (venv / "pyvenv.cfg").is_file():
                raise InputError("not a virtual environment (no pyvenv.cfg)", where=str(venv))
            previous = read_installed(str(venv))
            problem = freshness_problem(fresh, previous, now, allow_rollback=allow_rollback)
            if problem:
                raise FreshnessError(
                    problem,
                    where=str(bundle),
                    hint=f"{venv / 'lockship-installed.json'} records what was installed",
                )
        hashes = pinned_hashes(str(root))
        wheels = [f for f in record.files if f.sha256 in hashes]
        facts = _probe_interpreter(receiver)
        problem = env_mismatch(target, target_env, facts["marker_environment"], receiver)
        problem = problem or tag_mismatch(facts["tags"], [f.path for f in wheels], receiver)
        if problem:
            raise IncompatibleTargetError(problem, where=str(bundle))
        before = census(receiver)
        status, tail = run_installer(receiver, str(root), on_output, uv)
        if status != 0:
            raise IncompatibleTargetError(
                "\n  ".join([f"{installer} install failed (exit status {status}):", *tail]),
                where=receiver,
                hint=f"{installer}'s output above says why; a fresh --venv DIR avoids conflicts",
            )
        prefix = None if venv is None else str(venv)
        problems = census_problems(locked_versions(str(root)), before, census(receiver), prefix)
        if problems:
            raise IntegrityError(
                "\n  ".join([f"{installer} did not install exactly the bundle:", *problems]),
                where=receiver,
                hint=f"nothing but lockship should tell {installer} what to install; "
                "use a fresh --venv",
            )
        if venv is not None:
            write_installed(str(venv), fresh)
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
