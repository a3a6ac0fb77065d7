"""Command line: the only module that prints, draws progress or exits.

Every command runs its library call inside ``_errors()``, which turns a
``LockshipError`` into one line on stderr (plus a hint) and its documented
exit code; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, List, NoReturn, Optional

import typer
from rich.console import Console

from lockship import __version__
from lockship.errors import ExitCode, InputError, LockshipError
from lockship.lock import LockRequest, TargetResult, gather_inputs, lock, open_session
from lockship.models import format_size, format_timestamp
from lockship.options import LockConfig, load_tool_config, parse_timestamp
from lockship.pipconfig import IndexStrategy, load_index_config
from lockship.targets import Target, make_floors, parse_target

if TYPE_CHECKING:
    from lockship.licenses import LicensePolicy

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Carry Python dependencies across an air gap: target-aware hashed locks, "
    "verified fetch, signed bundles.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- error handling -------------------------------------------------------------


def _fail(message: str, code: ExitCode, hint: Optional[str] = None) -> NoReturn:
    err.print(f"lockship: error: {message}", markup=False)
    if hint:
        err.print(f"  hint: {hint}", markup=False)
    raise typer.Exit(int(code))


@contextlib.contextmanager
def _errors(verbose: bool) -> Iterator[None]:
    try:
        yield
    except LockshipError as exc:
        if verbose:
            raise
        _fail(str(exc), exc.exit_code, exc.hint)
    except KeyboardInterrupt:
        err.print("lockship: interrupted; nothing half-written was kept")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug: say so, briefly, unless asked for details
        if verbose:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc}",
            ExitCode.INTERNAL,
            "run again with --verbose for the traceback, and please report it",
        )


VERBOSE = typer.Option(False, "--verbose", "-v", help="Show tracebacks and more detail.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")
IGNORE = typer.Option(
    [],
    "--ignore",
    metavar="ID=REASON",
    help="Accept an advisory (its id or an alias) for this reason; recorded in the output.",
)
CACHE_DIR = typer.Option(None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root.")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lockship {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """Carry Python dependencies across an air gap."""


# --- lock -------------------------------------------------------------------------


def _command(
    requirement_files: list[Path],
    target_spec: str,
    exclude_newer: Optional[datetime],
    flags: list[str],
) -> str:
    parts = ["lockship", "lock"]
    for path in requirement_files:
        parts += ["-r", path.as_posix()]
    parts += ["--target", target_spec]
    if exclude_newer is not None:
        parts += ["--exclude-newer", format_timestamp(exclude_newer)]
    return shlex.join(parts + flags)


class _LockProgress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._status: Optional[contextlib.AbstractContextManager[object]] = None

    def target_started(self, target: Target) -> None:
        if not self.quiet:
            self._status = err.status(f"locking {target.name} ({target.description})")
            self._status.__enter__()

    def target_finished(self, result: TargetResult) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
            self._status = None
        if self.quiet:
            return
        sdists = f", {result.sdists} sdist" if result.sdists else ""
        state = "updated" if result.changed else "unchanged"
        err.print(
            f"{result.txt_path}: {len(result.lock.packages)} packages{sdists} "
            f"for {result.target.name}, {state} ({result.seconds:.2f} s)",
            markup=False,
        )

    def warning(self, message: str) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
            self._status = None
        err.print(f"lockship: warning: {message}", markup=False)


@app.command("lock")
def lock_command(
    requirement: List[Path] = typer.Option(
        [], "-r", "--requirement", help="Requirements file (pip syntax) or pyproject.toml."
    ),
    constraint: List[Path] = typer.Option([], "-c", "--constraint", help="Constraints file."),
    target: List[str] = typer.Option(
        [],
        "--target",
        "-t",
        help="Short name (linux-cp39, linux_aarch64-cp311, musllinux-cp312, macos_arm64-cp312, "
        "windows-cp312, ...), a probe file (target.json), or 'host'. Repeatable.",
    ),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Default: locks/"),
    exclude_newer: Optional[str] = typer.Option(
        None, help="Ignore files uploaded after this date or RFC 3339 time (PEP 700)."
    ),
    pre: bool = typer.Option(False, "--pre", help="Allow pre-releases."),
    only_binary: List[str] = typer.Option(
        [], help="Never use sdists for this project (':all:' for every project)."
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", "-U", help="Ignore the pins of an existing lock."
    ),
    upgrade_package: List[str] = typer.Option(
        [], "--upgrade-package", "-P", help="Ignore the existing pin of this project."
    ),
    extra: List[str] = typer.Option([], help="Extra of pyproject.toml to include."),
    all_extras: bool = typer.Option(False, help="Include every extra of pyproject.toml."),
    group: List[str] = typer.Option([], help="PEP 735 dependency group to include."),
    index_url: Optional[str] = typer.Option(None, "--index-url", "-i", help="Primary index."),
    extra_index_url: List[str] = typer.Option([], help="Further index, after the primary."),
    find_links: List[str] = typer.Option(
        [], "--find-links", "-f", help="Directory or page of files."
    ),
    no_index: bool = typer.Option(False, "--no-index", help="Use find-links only."),
    index_strategy: Optional[IndexStrategy] = typer.Option(
        None, help="How several indexes combine. Default first-index (dependency-confusion guard)."
    ),
    no_pip_config: bool = typer.Option(
        False, "--no-pip-config", help="Ignore pip's config files and PIP_* variables."
    ),
    glibc: Optional[str] = typer.Option(None, help="glibc floor of linux targets (default 2.28)."),
    musl: Optional[str] = typer.Option(None, help="musl floor of musllinux targets (default 1.2)."),
    macos: Optional[str] = typer.Option(None, help="macOS floor of macos targets (default 13.0)."),
    offline: bool = typer.Option(False, "--offline", help="Resolve from the cache only."),
    refresh: bool = typer.Option(False, "--refresh", help="Re-fetch index pages even if cached."),
    jobs: int = typer.Option(16, "--jobs", "-j", min=1, max=128, help="Parallel requests."),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root."
    ),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 if a lock no longer matches its inputs; write nothing."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Compile requirements into hashed lock files, one per target (locks/<target>.txt + pylock)."""
    with _errors(verbose):
        pyproject = Path("pyproject.toml")
        config = load_tool_config(pyproject) if pyproject.is_file() else None
        cfg = config or LockConfig()
        specs = target or cfg.targets or ["host"]
        floors = make_floors(glibc or cfg.glibc, musl or cfg.musl, macos or cfg.macos)
        targets = tuple(parse_target(spec, floors) for spec in specs)
        _unique_names(targets)
        # With [tool.lockship] and no requirements listed, the project's own
        # dependencies are the inputs.
        project_inputs = [pyproject] if config is not None else []
        inputs = gather_inputs(
            requirement or [Path(f) for f in cfg.requirements] or project_inputs,
            constraint or [Path(f) for f in cfg.constraints],
            extras=extra or cfg.extras,
            all_extras=all_extras or cfg.all_extras,
            groups=group or cfg.groups,
        )
        cutoff = (
            parse_timestamp(exclude_newer, where="--exclude-newer") if exclude_newer
            else cfg.exclude_newer
        )
        file_options = inputs.options
        index_config = load_index_config(
            use_pip_config=not no_pip_config and cfg.use_pip_config,
            file_options=file_options,
            index_url=index_url or cfg.index_url,
            extra_index_urls=[*cfg.extra_index_urls, *extra_index_url],
            find_links=[*cfg.find_links, *find_links],
            no_index=no_index or cfg.no_index,
            strategy=index_strategy or cfg.index_strategy,
        )
        binary = {*(only_binary or cfg.only_binary), *file_options.only_binary}
        flags = _result_flags(pre or cfg.pre or file_options.pre, sorted(binary), extra, group)
        results = []
        reporter = _LockProgress(quiet or json_output)
        session = open_session(
            index_config, cache_dir=cache_dir, offline=offline, refresh=refresh, jobs=jobs,
            exclude_newer=cutoff,
        )
        with session as opened:
            for one in targets:
                request = LockRequest(
                    inputs=inputs,
                    targets=(one,),
                    index_config=index_config,
                    output_dir=output_dir or Path(cfg.output_dir or "locks"),
                    exclude_newer=cutoff,
                    pre=pre or cfg.pre or file_options.pre,
                    only_binary=frozenset(_canonical_binary(binary)),
                    upgrade=frozenset([":all:"] if upgrade else upgrade_package),
                    extras=tuple(extra or cfg.extras),
                    groups=tuple(group or cfg.groups),
                    offline=offline,
                    refresh=refresh,
                    jobs=jobs,
                    command=_command(requirement, _spec_for(one, specs), cutoff, flags),
                    check=check,
                    # Unchanged inputs and settings keep their lock without resolving
                    # (or any network); --upgrade, -P and --refresh resolve again.
                    reuse=not (upgrade or upgrade_package or refresh),
                    cache_dir=cache_dir,
                )
                results.extend(lock(request, reporter, session=opened))
    if json_output:
        typer.echo(json.dumps([_summary(r) for r in results], indent=2, sort_keys=True))
    if check:
        stale = [r for r in results if r.changed]
        for result in stale:
            err.print(
                f"lockship: {result.pylock_path} is out of date: {'; '.join(result.reasons)}. "
                f"To update, run: {result.lock.command}",
                markup=False,
            )
        if not stale and not quiet and not json_output:
            err.print(f"{len(results)} lock(s) up to date")
        raise typer.Exit(int(ExitCode.CHANGED if stale else ExitCode.OK))


def _unique_names(targets: tuple[Target, ...]) -> None:
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"two targets are named {dupes[0]!r}; their locks would collide", where="--target"
        )


def _spec_for(target: Target, specs: list[str]) -> str:
    for spec in specs:
        probed = target.source not in ("short name", "host")
        if spec == target.name or (probed and spec == target.source):
            return spec
    return target.name


def _canonical_binary(values: set[str]) -> set[str]:
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    return {v if v.startswith(":") else canonicalize_name(v) for v in values if v != ":none:"}


def _result_flags(pre: bool, binary: list[str], extras: list[str], groups: list[str]) -> list[str]:
    flags = ["--pre"] if pre else []
    for name in binary:
        flags += ["--only-binary", name]
    for name in extras:
        flags += ["--extra", name]
    for name in groups:
        flags += ["--group", name]
    return flags


def _summary(result: TargetResult) -> dict[str, object]:
    return {
        "target": result.target.name,
        "lock": str(result.txt_path),
        "pylock": str(result.pylock_path),
        "packages": len(result.lock.packages),
        "sdists": result.sdists,
        "changed": result.changed,
        "seconds": round(result.seconds, 3),
        "fingerprint": result.lock.fingerprint,
    }


# --- probe and targets -----------------------------------------------------------------


@app.command("probe")
def probe_command(
    python: Optional[str] = typer.Option(
        None, "--python", help="Interpreter to describe (default: the one running lockship)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the JSON here."),
    script: bool = typer.Option(
        False, "--script", help="Print the stdlib-only probe script, to run on the target."
    ),
    verbose: bool = VERBOSE,
) -> None:
    """Describe a target interpreter (marker environment + ordered wheel tags) as JSON.

    On an offline machine without lockship: `lockship probe --script > probe.py`,
    copy it over, and run `python3 probe.py > target.json` there.
    """
    from lockship import _probe  # noqa: PLC0415

    source = Path(_probe.__file__)
    if script:
        typer.echo(source.read_text(encoding="utf-8"), nl=False)
        return
    with _errors(verbose):
        proc = subprocess.run(
            [python or sys.executable, "-I", str(source)],
            capture_output=True,
            check=False,
            text=True,
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            raise InputError(
                f"probe failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['']}",
                where=python or sys.executable,
            )
        if output is not None:
            from lockship._fs import atomic_write_text  # noqa: PLC0415

            atomic_write_text(output, proc.stdout)
            err.print(f"wrote {output}", markup=False)
        else:
            typer.echo(proc.stdout, nl=False)


@app.command("targets")
def targets_command(
    glibc: Optional[str] = typer.Option(None, help="glibc floor (default 2.28)."),
    musl: Optional[str] = typer.Option(None, help="musl floor (default 1.2)."),
    macos: Optional[str] = typer.Option(None, help="macOS floor (default 13.0)."),
    verbose: bool = VERBOSE,
) -> None:
    """List the short target names with the platform they stand for."""
    from lockship.targets import short_name_examples  # noqa: PLC0415

    with _errors(verbose):
        floors = make_floors(glibc, musl, macos)
        for name in short_name_examples():
            target = parse_target(name, floors)
            typer.echo(f"{name:24} {target.description}; {len(target.tags)} tags")
        typer.echo("Any cp3X works with each platform (linux-cp313, ...); 'host' is this Python.")


# --- fetch ------------------------------------------------------------------------------


class _FetchProgress:
    """Bytes, rate and files done, drawn on stderr (nothing with --quiet)."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.quiet = quiet
        self.files_done = 0
        self.files = 0
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
            transient=True,
        )
        self._task = self._progress.add_task("fetching", total=None)

    def __enter__(self) -> _FetchProgress:  # noqa: PYI034 - a private, final class
        self._progress.start()
        return self

    def __exit__(self, *args: object) -> None:
        self._progress.stop()

    def started(self, files: int, to_download: int, total_bytes: int) -> None:  # noqa: ARG002
        self.files = files
        self._progress.update(self._task, total=total_bytes or None, description=self._label())

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def file_done(self, filename: str, source: str) -> None:  # noqa: ARG002
        self.files_done += 1
        self._progress.update(self._task, description=self._label())

    def _label(self) -> str:
        return f"files {self.files_done}/{self.files}"


class LinkModeChoice(str, enum.Enum):
    clone = "clone"
    copy = "copy"
    hardlink = "hardlink"


@app.command("fetch")
def fetch_command(
    target: str = typer.Option(
        ..., "--target", "-t", help="The target the lock was made for (short name or probe file)."
    ),
    lock_file: Optional[Path] = typer.Option(
        None, "--lock", help="Lock to fetch (default: locks/pylock.<target>.toml)."
    ),
    dest: Optional[Path] = typer.Option(
        None, "--dest", "-d", help="Bundle directory (default: dist/<target>)."
    ),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="Parallel downloads."),
    offline: bool = typer.Option(False, "--offline", help="Fill the bundle from the cache only."),
    include_self: bool = typer.Option(
        False,
        "--include-self",
        help="Also carry lockship and its dependencies for the target "
        "(installable with lockship-requirements.txt).",
    ),
    link_mode: LinkModeChoice = typer.Option(
        "clone",
        "--link-mode",
        help="How bundle files are made from the cache: clone (a reflink where the "
        "filesystem can, else a copy), copy, or hardlink (shares the cache's inode: a write "
        "to one bundle's file changes the cache and every other bundle).",
    ),
    glibc: Optional[str] = typer.Option(None, help="glibc floor used when locking."),
    musl: Optional[str] = typer.Option(None, help="musl floor used when locking."),
    macos: Optional[str] = typer.Option(None, help="macOS floor used when locking."),
    index_url: Optional[str] = typer.Option(
        None, "--index-url", "-i", help="Index whose credentials/certificates apply."
    ),
    no_pip_config: bool = typer.Option(
        False, "--no-pip-config", help="Ignore pip's config files and PIP_* variables."
    ),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Download exactly the locked files, verify every hash, and lay out a bundle directory."""
    from lockship.fetch import FetchRequest, fetch  # noqa: PLC0415
    from lockship.lockfile import lock_paths  # noqa: PLC0415

    with _errors(verbose):
        spec = parse_target(target, make_floors(glibc, musl, macos))
        request = FetchRequest(
            lock_path=lock_file or lock_paths(Path("locks"), spec.name)[1],
            dest=dest or Path("dist") / spec.name,
            target=spec,
            index_config=load_index_config(
                use_pip_config=not no_pip_config, index_url=index_url
            ),
            offline=offline,
            jobs=jobs,
            cache_dir=cache_dir,
            include_self=include_self,
            link_mode=link_mode.value,
        )
        with _FetchProgress(quiet or json_output) as progress:
            result = fetch(request, progress)
    summary = {
        "bundle": str(result.dest),
        "target": spec.name,
        "files": len(result.record.files),
        "bytes": result.total_bytes,
        "downloaded": result.downloaded,
        "downloaded_bytes": result.downloaded_bytes,
        "built": result.built,
        "changed": result.changed,
        "seconds": round(result.seconds, 3),
    }
    if json_output:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
    elif not quiet:
        state = "fetched" if result.changed else "already complete"
        err.print(
            f"{result.dest}: {summary['files']} files, {format_size(result.total_bytes)} for "
            f"{spec.name}, {state} ({result.downloaded} downloaded, {result.built} built, "
            f"{result.seconds:.2f} s)",
            markup=False,
        )


# --- sign, verify, install -------------------------------------------------------------

ALLOWED_SIGNERS = typer.Option(
    ...,
    "--allowed-signers",
    help="allowed_signers file from the reviewer, through a separate channel (never the bundle's).",
)
IDENTITY = typer.Option(
    None, "--identity", help="Principal the signer must be listed as (default: any listed)."
)


@app.command("sign")
def sign_command(
    bundle: Path = typer.Argument(..., help="Bundle directory written by lockship fetch."),
    key: Path = typer.Option(..., "--key", help="Ed25519 private key, OpenSSH format."),
    passphrase_file: Optional[Path] = typer.Option(
        None, help="File whose first line is the key's passphrase (else $LOCKSHIP_KEY_PASSPHRASE)."
    ),
    identity: Optional[str] = typer.Option(
        None, "--identity", help="Principal for allowed_signers (default: the key's comment)."
    ),
    archive: bool = typer.Option(
        False, "--archive", help="Also write a deterministic <bundle>.tar and its .sha256."
    ),
    archive_dir: Optional[Path] = typer.Option(
        None, help="Directory for the .tar (default: beside the bundle); implies --archive."
    ),
    db: Optional[Path] = typer.Option(
        None, "--db", help="Audit against this OSV database and write audit.json into the bundle."
    ),
    ignore: List[str] = IGNORE,
    allow_advisories: bool = typer.Option(
        False, "--allow-advisories", help="Sign even if the audit finds advisories (recorded)."
    ),
    cache_dir: Optional[Path] = CACHE_DIR,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Check a fetched bundle, then write manifest.json, sbom.cdx.json, INSTALL.md, install.py,
    SHA256SUMS(.sig), and with --db audit.json.

    The licence policy of ./pyproject.toml ([tool.lockship] allow-licenses,
    deny-licenses) applies (exit 15); with --db, advisories stop the signing
    (exit 13) unless ignored or --allow-advisories. Prints the allowed_signers
    line for the reviewer on stdout.
    """
    from lockship.archive import archive_mtime, write_archive  # noqa: PLC0415
    from lockship.audit import parse_ignores  # noqa: PLC0415
    from lockship.dossier import DossierOptions  # noqa: PLC0415
    from lockship.sign import sign_bundle  # noqa: PLC0415
    from lockship.sshsig import load_signing_key, read_passphrase  # noqa: PLC0415

    with _errors(verbose):
        options = DossierOptions(
            db=db,
            ignores=parse_ignores(ignore),
            fail_on_advisories=not allow_advisories,
            policy=_license_policy([], []),
            cache_dir=cache_dir,
        )
        result = sign_bundle(
            bundle,
            load_signing_key(key, read_passphrase(passphrase_file)),
            identity=identity,
            dossier=options,
        )
        written = list(result.written)
        if archive or archive_dir is not None:
            tar, _ = write_archive(
                bundle, archive_dir or bundle.resolve().parent, mtime=archive_mtime(bundle)
            )
            written += [tar, tar.with_name(tar.name + ".sha256")]
    if quiet:
        return
    for path in written:
        err.print(f"wrote {path}", markup=False)
    if result.audit is not None:
        from lockship.audit import headline  # noqa: PLC0415

        err.print(f"audit: {headline(result.audit)}", markup=False)
    err.print(
        f"signed {result.files} files as {result.principal} with key {result.fingerprint}; "
        "allowed_signers line for the reviewer:",
        markup=False,
    )
    typer.echo(result.allowed_signers_line)


@app.command("verify")
def verify_command(
    bundle: Path = typer.Argument(..., help="Signed bundle directory or its .tar archive."),
    allowed_signers: Path = ALLOWED_SIGNERS,
    identity: Optional[str] = IDENTITY,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    verbose: bool = VERBOSE,
) -> None:
    """Check the signature and every file of a signed bundle. Exit 6: files; 7: signature."""
    from dataclasses import asdict  # noqa: PLC0415

    from lockship.errors import SignatureError, VerificationError  # noqa: PLC0415
    from lockship.verify import verify_bundle  # noqa: PLC0415

    with _errors(verbose):
        try:
            report = verify_bundle(bundle, allowed_signers, identity=identity)
        except (SignatureError, VerificationError) as exc:
            if json_output:
                problems = (
                    exc.problems
                    if isinstance(exc, VerificationError)
                    else [line.strip() for line in exc.message.splitlines()]
                )
                failure = {"ok": False, "exit_code": int(exc.exit_code), "problems": problems}
                typer.echo(json.dumps(failure, indent=2, sort_keys=True))
            raise
    if json_output:
        typer.echo(json.dumps({"ok": True, **asdict(report)}, indent=2, sort_keys=True))
        return
    typer.echo(
        f"OK: {report.bundle}: {report.files} files ({report.bytes} bytes), "
        f"{report.packages} packages for {report.target}, signed by {report.principal} "
        f"(key {report.fingerprint}, {report.allowed_by})"
    )


@app.command("install")
def install_command(
    bundle: Path = typer.Argument(..., help="Signed bundle directory or its .tar archive."),
    allowed_signers: Path = ALLOWED_SIGNERS,
    identity: Optional[str] = IDENTITY,
    python: Optional[str] = typer.Option(
        None, "--python", help="Interpreter to install into (with --venv: the one creating it)."
    ),
    venv: Optional[Path] = typer.Option(
        None, "--venv", help="Virtual environment to install into; created if missing."
    ),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Verify a signed bundle, check that the interpreter fits its target, pip install it.

    Give --venv DIR (created if missing) or --python PATH.
    """
    from lockship.install import install_bundle  # noqa: PLC0415

    def show(line: str) -> None:
        if not quiet:
            err.print(line, markup=False)

    with _errors(verbose):
        result = install_bundle(
            bundle,
            allowed_signers=allowed_signers,
            identity=identity,
            python=python,
            venv=venv,
            on_output=show,
        )
    report = result.report
    show(
        f"verified {report.files} files signed by {report.principal} (key {report.fingerprint}); "
        f"installed {len(result.packages)} packages into {result.python}"
    )


# --- publish ----------------------------------------------------------------------------


class _PublishProgress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(f"lockship: {message}", markup=False)


@app.command("publish")
def publish_command(
    bundles: List[Path] = typer.Argument(
        None,
        metavar="BUNDLE",
        help="Signed bundle directories or .tar archives (none: only --prune).",
    ),
    to: Optional[Path] = typer.Option(
        None, "--to", metavar="DIR",
        help="Static repository directory; serve DIR/simple/ as the index URL.",
    ),
    allowed_signers: Optional[Path] = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="allowed_signers file from the reviewer, through a separate channel.",
    ),
    identity: Optional[str] = typer.Option(
        None, "--identity", metavar="ID", help="Principal the signer must be listed as."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Retire bundles a newer one of the same series and target supersedes; "
        "delete files no active bundle lists.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would change; change nothing."
    ),
    upload: Optional[str] = typer.Option(
        None, "--upload", metavar="URL",
        help="Also upload the files to this index's upload URL (needs lockship[upload]).",
    ),
    index_url: Optional[str] = typer.Option(
        None, "--index-url", metavar="URL",
        help="With --upload: that index's simple API, to check what it holds.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Verify signed bundles and publish their files into a static index tree or an index.

    Exit 6: a bundle's files do not verify, or a file name is already published
    with other bytes (nothing is written); 7: a bad signature.
    """
    from lockship.publish import PublishRequest, publish  # noqa: PLC0415

    with _errors(verbose):
        result = publish(
            PublishRequest(
                bundles=tuple(bundles or ()),
                dest=to,
                allowed_signers=allowed_signers,
                identity=identity,
                prune=prune,
                dry_run=dry_run,
                upload_url=upload,
                index_url=index_url,
            ),
            _PublishProgress(quiet or json_output),
        )
    if json_output:
        typer.echo(json.dumps({
            "dest": str(result.dest) if result.dest else None,
            "dry_run": result.dry_run,
            "published": [b.model_dump(mode="json") for b in result.published],
            "unchanged": [b.id for b in result.unchanged],
            "files_added": list(result.files_added),
            "pages_written": list(result.pages_written),
            "retired": [b.id for b in result.retired],
            "removed": list(result.removed),
            "uploaded": list(result.uploaded),
            "already_uploaded": list(result.already_uploaded),
        }, indent=2, sort_keys=True))
        return
    if quiet:
        return
    done = "would be " if result.dry_run else ""
    for bundle in result.published:
        sequence = f", sequence {bundle.sequence}" if bundle.sequence is not None else ""
        err.print(
            f"{done}published {bundle.name}: {len(bundle.files)} wheels for {bundle.target}, "
            f"signed by {bundle.signer}{sequence}",
            markup=False,
        )
    for bundle in result.unchanged:
        err.print(f"{bundle.name}: already published", markup=False)
    for bundle in result.retired:
        err.print(
            f"{done}retired {bundle.name} ({bundle.target}): superseded by a newer bundle",
            markup=False,
        )
    for path in result.removed:
        err.print(f"{done}removed {path}", markup=False)
    if result.dest is not None:
        err.print(
            f"{result.dest}: {len(result.files_added)} files {done}added, "
            f"{len(result.pages_written)} pages {done}written",
            markup=False,
        )
    if upload is not None:
        err.print(
            f"{len(result.uploaded)} files {done}uploaded, "
            f"{len(result.already_uploaded)} already there with the same sha256",
            markup=False,
        )


# --- run and diff ---------------------------------------------------------------------


class _RunProgress(_FetchProgress):
    """Progress for a whole pipeline: lock lines, a download bar, notes."""

    def target_started(self, target: Target) -> None:
        if not self.quiet:
            self._progress.update(self._task, description=f"locking {target.name}")

    def target_finished(self, result: TargetResult) -> None:  # noqa: ARG002
        self.files_done = 0

    def warning(self, message: str) -> None:
        self._progress.console.print(f"lockship: warning: {message}", markup=False)

    def note(self, message: str) -> None:
        if not self.quiet:
            self._progress.console.print(f"lockship: note: {message}", markup=False)


@app.command("run")
def run_command(
    pipeline: Path = typer.Argument(..., help="Pipeline file, e.g. pipelines/demo.toml."),
    check: bool = typer.Option(
        False, "--check", help="Only check that every lock matches its inputs (exit 1 if not)."
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", "-U", help="Re-resolve every target, ignoring existing pins."
    ),
    offline: bool = typer.Option(False, "--offline", help="Use the cache only."),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Lock, fetch and sign every target of a pipeline file; print a summary table."""
    from lockship.pipeline import load_pipeline, run_pipeline  # noqa: PLC0415

    with _errors(verbose):
        spec = load_pipeline(pipeline)
        progress = _RunProgress(quiet or json_output)
        with progress:
            rows = run_pipeline(
                spec, check=check, upgrade=upgrade, offline=offline, reporter=progress,
                cache_dir=cache_dir,
            )
    if json_output:
        typer.echo(json.dumps([
            {"target": r.target, "packages": r.packages, "files": r.files, "bytes": r.bytes,
             "seconds": round(r.seconds, 3), "status": r.status, "ok": r.error is None,
             "bundle": str(r.bundle) if r.bundle else None}
            for r in rows
        ], indent=2))
    elif not quiet:
        from rich.table import Table  # noqa: PLC0415

        table = Table(title=f"lockship run {pipeline}", title_justify="left")
        for column in ("target", "packages", "files", "size", "time", "status"):
            numeric = column in ("packages", "files", "size", "time")
            # Short columns stay whole; the status column wraps.
            table.add_column(
                column,
                justify="right" if numeric else "left",
                no_wrap=column != "status",
                overflow="fold",
            )
        for r in rows:
            table.add_row(
                r.target, str(r.packages), str(r.files) if r.files else "-",
                format_size(r.bytes) if r.bytes else "-", f"{r.seconds:.2f} s", r.status,
            )
        Console(highlight=False).print(table)
    failed = [r for r in rows if r.error is not None]
    for row in failed:
        assert row.error is not None  # noqa: S101 - filtered above
        err.print(f"lockship: error: {row.target}: {row.error}", markup=False)
        if row.error.hint:
            err.print(f"  hint: {row.error.hint}", markup=False)
    if failed:
        raise typer.Exit(int(failed[0].error.exit_code))  # type: ignore[union-attr]
    if check and any(r.status.startswith("lock out of date") for r in rows):
        raise typer.Exit(int(ExitCode.CHANGED))


class DiffFormat(str, enum.Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="Old lock (pylock.<target>.toml), bundle or .tar."),
    new: Path = typer.Argument(..., help="New lock, bundle or .tar for the same target."),
    output_format: DiffFormat = typer.Option(
        DiffFormat.table, "--format", "-f", help="table (default), markdown or json."
    ),
    verbose: bool = VERBOSE,
) -> None:
    """Show what changed between two transfers, red flags first.

    Exit 0: no changes; 1: changes; 11: red flags (new hashes for a version, new
    sdists or built wheels, files from unrecorded, new or moved locations).
    """
    from lockship.diff import diff, label, load_view, render_json, render_markdown  # noqa: PLC0415

    with _errors(verbose):
        with load_view(old) as before, load_view(new) as after:
            result = diff(before, after)
    if output_format is DiffFormat.json:
        typer.echo(render_json(result), nl=False)
    elif output_format is DiffFormat.markdown:
        typer.echo(render_markdown(result), nl=False)
    else:
        from rich.table import Table  # noqa: PLC0415

        console = Console(highlight=False)
        if not result.changes:
            console.print(f"no changes between {old} and {new} ({result.target})", markup=False)
        for title, changes in (("RED FLAGS", result.red_flags),
                               ("changes", [c for c in result.changes if not c.red_flag])):
            if not changes:
                continue
            table = Table(title=f"{title} ({len(changes)})", title_justify="left")
            for column in ("change", "package", "old", "new", "detail"):
                table.add_column(column, overflow="fold")
            for c in changes:
                table.add_row(label(c), c.name, c.old, c.new, c.detail)
            console.print(table)
    if result.red_flags:
        raise typer.Exit(int(ExitCode.RED_FLAGS))
    raise typer.Exit(int(ExitCode.CHANGED if result.changes else ExitCode.OK))


# --- the dossier: audit, licences, report ---------------------------------------------


AuditFormat = DiffFormat  # the same three: table, markdown, json


DB = typer.Option(
    ...,
    "--db",
    help="OSV database: a directory of OSV records (JSON or YAML, searched recursively, "
    "e.g. a clone of the PyPA advisory database) or a zip of OSV JSON records (PyPI/all.zip).",
)


@app.command("audit")
def audit_command(
    path: Path = typer.Argument(
        ..., help="Lock (.txt or pylock .toml), bundle directory or .tar archive."
    ),
    db: Path = DB,
    output_format: AuditFormat = typer.Option(
        AuditFormat.table, "--format", "-f", help="table (default), markdown or json."
    ),
    ignore: List[str] = IGNORE,
    cache_dir: Optional[Path] = CACHE_DIR,
    verbose: bool = VERBOSE,
) -> None:
    """Match every locked release against an OSV database on disk; no network.

    Exit 0: no known vulnerabilities; 13: advisories found (not ignored).
    """
    from lockship.audit import (  # noqa: PLC0415
        audit_path,
        headline,
        parse_ignores,
        render_audit_json,
        render_audit_markdown,
    )

    with _errors(verbose):
        report = audit_path(path, db, ignores=parse_ignores(ignore), cache_dir=cache_dir)
    for item in report.ignores:
        if not item.matched:
            err.print(f"lockship: warning: --ignore {item.id} matched no advisory", markup=False)
    if output_format is AuditFormat.json:
        typer.echo(render_audit_json(report), nl=False)
    elif output_format is AuditFormat.markdown:
        typer.echo(render_audit_markdown(report), nl=False)
    else:
        from rich.table import Table  # noqa: PLC0415

        console = Console(highlight=False)
        console.print(f"{report.source}: {headline(report)}", markup=False, soft_wrap=True)
        if report.findings:
            table = Table(title_justify="left")
            for column in ("package", "advisory", "fix", "summary"):
                table.add_column(column, overflow="fold", no_wrap=column != "summary")
            for f in report.findings:
                names = "\n".join([f.id, *f.aliases[:2]])
                summary = f.summary if len(f.summary) <= 100 else f.summary[:97] + "..."
                if f.ignored:
                    summary = f"IGNORED: {f.ignored}. {summary}"
                fix = f.fix or ("none" if not f.fixed else ", ".join(f.fixed))
                table.add_row(f"{f.name} {f.version}", names, fix, summary)
            console.print(table)
        for upgrade in report.upgrades:
            console.print(
                f"upgrade {upgrade.name} {upgrade.version} to {upgrade.to} or later "
                "(no advisory here names it)",
                markup=False,
                soft_wrap=True,
            )
    if report.active:
        raise typer.Exit(int(ExitCode.ADVISORIES))


ALLOW_LICENSE = typer.Option(
    [], "--allow-license", metavar="SPDX", help="Allowed licence (default: [tool.lockship])."
)
DENY_LICENSE = typer.Option(
    [], "--deny-license", metavar="SPDX", help="Denied licence (default: [tool.lockship])."
)


def _license_policy(allow: list[str], deny: list[str]) -> LicensePolicy:
    """The flags' policy, else ``allow-licenses``/``deny-licenses`` of ./pyproject.toml."""
    from lockship.licenses import LicensePolicy  # noqa: PLC0415

    if allow or deny:
        return LicensePolicy.from_lists(allow, deny, where=("--allow-license", "--deny-license"))
    pyproject = Path("pyproject.toml")
    config = load_tool_config(pyproject) if pyproject.is_file() else None
    if config is None:
        return LicensePolicy()
    return LicensePolicy(tuple(config.allow_licenses), tuple(config.deny_licenses))


@app.command("licenses")
def licenses_command(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar archive."),
    allow_license: List[str] = ALLOW_LICENSE,
    deny_license: List[str] = DENY_LICENSE,
    json_output: bool = typer.Option(False, "--json", help="Print the licences as JSON."),
    verbose: bool = VERBOSE,
) -> None:
    """List each package's licence (SPDX, from its METADATA) and apply the licence policy.

    Exit 0: the policy is met (or there is none); 15: a package breaks it.
    """
    from lockship.inventory import read_inventory  # noqa: PLC0415
    from lockship.licenses import LicensePolicyError  # noqa: PLC0415
    from lockship.verify import open_bundle  # noqa: PLC0415

    with _errors(verbose):
        policy = _license_policy(allow_license, deny_license)
        with open_bundle(bundle) as root:
            inventory = read_inventory(root)
        rows = [(d.name, d.version, d.license) for d in inventory.distributions]
        violations = policy.violations(rows)
    if json_output:
        typer.echo(json.dumps([
            {"name": n, "version": v, "license": info.text, "source": info.source,
             "declared": list(info.declared), "problem": policy.problem(info)}
            for n, v, info in rows
        ], indent=2, sort_keys=True))
    else:
        from rich.table import Table  # noqa: PLC0415

        table = Table(title=f"licences in {bundle}", title_justify="left")
        for column in ("package", "version", "licence", "from", "policy"):
            table.add_column(column, overflow="fold")
        for name, version, info in rows:
            declared = "; ".join(info.declared) if info.spdx is None else (info.source or "")
            table.add_row(name, version, info.text, declared, policy.problem(info) or "")
        Console(highlight=False).print(table)
    with _errors(verbose):
        if violations:
            raise LicensePolicyError(violations, where=str(bundle))


class ReportFormat(str, enum.Enum):
    html = "html"
    markdown = "markdown"
    json = "json"


@app.command("report")
def report_command(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar archive."),
    against: Optional[Path] = typer.Option(
        None, "--against", help="The approved transfer to compare with (lock, bundle or .tar)."
    ),
    db: Optional[Path] = typer.Option(
        None, "--db", help="OSV database to audit against now (default: the bundle's audit.json)."
    ),
    ignore: List[str] = IGNORE,
    allowed_signers: Optional[Path] = typer.Option(
        None, "--allowed-signers", help="Check the signature against this allowed_signers file."
    ),
    identity: Optional[str] = IDENTITY,
    allow_license: List[str] = ALLOW_LICENSE,
    deny_license: List[str] = DENY_LICENSE,
    output_format: ReportFormat = typer.Option(
        ReportFormat.html, "--format", "-f", help="html (default), markdown or json."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the report here (default: stdout)."
    ),
    cache_dir: Optional[Path] = CACHE_DIR,
    verbose: bool = VERBOSE,
) -> None:
    """One page for the reviewer: red flags, changes, advisories, licences, provenance, files.

    The HTML page is self-contained: it loads nothing, works offline and prints.
    """
    from lockship.audit import parse_ignores  # noqa: PLC0415
    from lockship.report import build_report, render_report  # noqa: PLC0415

    with _errors(verbose):
        report = build_report(
            bundle,
            against=against,
            db=db,
            ignores=parse_ignores(ignore),
            policy=_license_policy(allow_license, deny_license),
            allowed_signers=allowed_signers,
            identity=identity,
            cache_dir=cache_dir,
        )
        text = render_report(report, output_format.value)
        if output is not None:
            from lockship._fs import atomic_write_text  # noqa: PLC0415

            atomic_write_text(output, text)
    if output is None:
        typer.echo(text, nl=False)
        return
    flags = len(report.red_flags)
    err.print(
        f"wrote {output}: {len(report.packages)} packages, {flags} red flag"
        f"{'s' if flags != 1 else ''}",
        markup=False,
    )


def main() -> None:
    """Entry point of the ``lockship`` script."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()
