"""Command line: the only module that prints, draws progress or exits.

Every command runs its library call inside ``_errors()``, which turns a
``LockshipError`` into one line on stderr (plus a hint) and its documented
exit code; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, NoReturn, Optional, Union

import typer
from rich.console import Console
from typer.core import TyperGroup

from lockship import __version__
from lockship.errors import ExitCode, InputError, LockshipError
from lockship.pipconfig import IndexStrategy  # typer reads the annotation at import

if TYPE_CHECKING:
    from lockship.licenses import LicensePolicy
    from lockship.lock import TargetResult
    from lockship.models import Manifest
    from lockship.targets import Target
    from lockship.verify import VerifyReport


def _show_usage_error(exc: Any, file: Any = None) -> None:  # noqa: ARG001 - always stderr
    # "lockship lock", whatever name the program was started by
    path = exc.ctx.command_path.split(" ")[1:] if exc.ctx is not None else []
    command = " ".join(["lockship", *path])
    text = exc.format_message()
    message = text[:1].lower() + text[1:].rstrip(".")
    typer.echo(f"lockship: error: {command}: {message}", err=True)
    typer.echo(f"  hint: see '{command} --help'", err=True)


@contextlib.contextmanager
def _usage_form() -> Iterator[None]:
    """Show the option parser's errors in lockship's one-line form (exit 2 stays)."""
    try:
        yield
    except Exception as exc:
        names = {kind.__name__ for kind in type(exc).__mro__}
        if "UsageError" in names and "NoArgsIsHelpError" not in names:  # that one shows help
            # The parser's exception class is typer's (or click's); its show() is replaced.
            exc.__dict__["show"] = functools.partial(_show_usage_error, exc)
        raise


class _Group(TyperGroup):
    """Usage errors from the option parser in lockship's one-line form, exit 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_form():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            with _usage_form():
                return super().invoke(ctx)
        except BrokenPipeError:
            _broken_pipe()


def _broken_pipe() -> NoReturn:
    """The reader went away (``lockship targets | head -1``): stop quietly with 128 + SIGPIPE."""
    with contextlib.suppress(OSError, ValueError):  # no stdout file under a test runner
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so flushing stdout at exit cannot fail again
    raise typer.Exit(int(ExitCode.BROKEN_PIPE))


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Carry Python dependencies across an air gap: target-aware hashed locks, "
    "verified fetch, signed bundles.",
)


def _example(*lines: str) -> str:
    """An "Example:" epilog, kept as written (click rewraps other paragraphs)."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)
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
QUIET = typer.Option(
    False, "--quiet", "-q", help="Print nothing but errors (and the output asked for)."
)
JSON = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
IGNORE = typer.Option(
    [],
    "--ignore",
    metavar="ID=REASON",
    help="Accept an advisory (its id or an alias) for this reason; recorded in the output.",
)
GLIBC = typer.Option(
    None, metavar="VERSION", help="glibc floor of linux targets (default: 2.28)."
)
MUSL = typer.Option(
    None, metavar="VERSION", help="musl floor of musllinux targets (default: 1.2)."
)
MACOS = typer.Option(
    None, metavar="VERSION", help="macOS floor of macos targets (default: 13.0)."
)
CACHE_DIR = typer.Option(None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root.", metavar="DIR")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lockship {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version_callback, is_eager=True,
        help="Show the version and exit.",
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
    from lockship.models import format_timestamp  # noqa: PLC0415

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


@app.command(
    "lock",
    short_help="Lock requirements: one hashed lock per target.",
    epilog=_example("lockship lock -r requirements.in -t linux-cp39 --exclude-newer 2026-11-01"),
)
def lock_command(
    requirement: List[Path] = typer.Option(
        [], "-r", "--requirement", help="Requirements file (pip syntax) or pyproject.toml.",
        metavar="FILE",
    ),
    constraint: List[Path] = typer.Option(
        [], "-c", "--constraint", help="Constraints file.",
        metavar="FILE",
    ),
    target: List[str] = typer.Option(
        [],
        "--target",
        "-t",
        help="Short name (linux-cp39, linux_aarch64-cp311, musllinux-cp312, macos_arm64-cp312, "
        "windows-cp312, ...), a probe file (target.json), or 'host'. Repeatable.", metavar="TARGET",
    ),
    output_dir: Optional[Path] = typer.Option(
        None, "--output-dir", "-o", help="Directory for the locks (default: locks/).",
        metavar="DIR",
    ),
    exclude_newer: Optional[str] = typer.Option(
        None, help="Ignore files uploaded after this date or RFC 3339 time (PEP 700).",
        metavar="WHEN",
    ),
    pre: bool = typer.Option(False, "--pre", help="Allow pre-releases."),
    only_binary: List[str] = typer.Option(
        [], help="Never use sdists for this project (':all:' for every project).", metavar="NAME"
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", "-U", help="Ignore the pins of an existing lock."
    ),
    upgrade_package: List[str] = typer.Option(
        [], "--upgrade-package", "-P", help="Ignore the existing pin of this project.",
        metavar="NAME",
    ),
    extra: List[str] = typer.Option(
        [], help="Extra of pyproject.toml to include.",
        metavar="EXTRA",
    ),
    all_extras: bool = typer.Option(
        False, "--all-extras", help="Include every extra of pyproject.toml."
    ),
    group: List[str] = typer.Option(
        [], help="PEP 735 dependency group to include.",
        metavar="GROUP",
    ),
    index_url: Optional[str] = typer.Option(
        None, "--index-url", "-i", help="Primary index.",
        metavar="URL",
    ),
    extra_index_url: List[str] = typer.Option(
        [], help="Further index, after the primary.",
        metavar="URL",
    ),
    find_links: List[str] = typer.Option(
        [], "--find-links", "-f", help="Directory or page of files.", metavar="PATH|URL"
    ),
    no_index: bool = typer.Option(False, "--no-index", help="Use find-links only."),
    index_strategy: Optional[IndexStrategy] = typer.Option(
        None,
        help="How several indexes combine (default: first-index, the dependency-confusion guard).",
    ),
    no_pip_config: bool = typer.Option(
        False, "--no-pip-config", help="Ignore pip's config files and PIP_* variables."
    ),
    glibc: Optional[str] = GLIBC,
    musl: Optional[str] = MUSL,
    macos: Optional[str] = MACOS,
    python_version: List[str] = typer.Option(
        [],
        help="Full Python version X.Y.Z of the short-name target of that X.Y (default X.Y.0). "
        "Repeatable, one per X.Y.",
        metavar="X.Y.Z",
    ),
    allow_compiled_sdist: bool = typer.Option(
        False,
        "--allow-compiled-sdist",
        help="Lock an sdist that looks compiled for a foreign target (you build it yourself).",
    ),
    offline: bool = typer.Option(False, "--offline", help="Resolve from the cache only."),
    refresh: bool = typer.Option(False, "--refresh", help="Re-fetch index pages even if cached."),
    jobs: int = typer.Option(
        16, "--jobs", "-j", min=1, max=128, metavar="N", show_default=False,
        help="Parallel requests (default: 16).",
    ),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root.", metavar="DIR"
    ),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 if a lock no longer matches its inputs; write nothing."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Compile requirements into hashed lock files, one per target (locks/<target>.txt + pylock)."""
    from lockship.lock import lock, open_session  # noqa: PLC0415
    from lockship.options import (  # noqa: PLC0415
        LockConfig,
        load_tool_config,
        parse_timestamp,
        plan_lock,
    )

    with _errors(verbose):
        pyproject = Path("pyproject.toml")
        config = load_tool_config(pyproject) if pyproject.is_file() else None
        cfg = (config or LockConfig()).with_flags(
            requirements=[p.as_posix() for p in requirement],
            constraints=[p.as_posix() for p in constraint],
            targets=target,
            exclude_newer=(
                parse_timestamp(exclude_newer, where="--exclude-newer") if exclude_newer else None
            ),
            output_dir=output_dir.as_posix() if output_dir else None,
            pre=pre,
            only_binary=only_binary,
            extras=extra,
            all_extras=all_extras,
            groups=group,
            index_url=index_url,
            extra_index_urls=extra_index_url,
            find_links=find_links,
            no_index=no_index,
            index_strategy=index_strategy,
            glibc=glibc,
            musl=musl,
            macos=macos,
            python_version=python_version,
            allow_compiled_sdist=allow_compiled_sdist,
        )
        if no_pip_config:
            cfg = cfg.model_copy(update={"use_pip_config": False})
        # With [tool.lockship] and no requirements listed, the project's own
        # dependencies are the inputs.
        plan = plan_lock(cfg, default_inputs=[pyproject] if config is not None else [])
        flags = _result_flags(plan.pre, sorted(plan.only_binary), extra, group)
        flags += ["--allow-compiled-sdist"] if plan.allow_compiled_sdist else []
        specs = cfg.targets or ["host"]
        results = []
        reporter = _LockProgress(quiet or json_output)
        for note in plan.inputs.notes:  # once per run, not per target
            reporter.warning(note)
        session = open_session(
            plan.index_config, cache_dir=cache_dir, offline=offline, refresh=refresh, jobs=jobs,
            exclude_newer=plan.exclude_newer,
        )
        with session as opened:
            for one in plan.targets:
                request = plan.request(
                    one,
                    command=_command(
                        requirement, _spec_for(one, specs), plan.exclude_newer,
                        flags + _python_flag(one),
                    ),
                    upgrade=frozenset([":all:"] if upgrade else upgrade_package),
                    offline=offline,
                    refresh=refresh,
                    jobs=jobs,
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


def _spec_for(target: Target, specs: list[str]) -> str:
    for spec in specs:
        probed = target.source not in ("short name", "host")
        if spec == target.name or (probed and spec == target.source):
            return spec
    return target.name


def _python_flag(target: Target) -> list[str]:
    """``--python-version`` for the lock's command line, when the short name was given one."""
    version = target.marker_environment["python_full_version"]
    given = target.source == "short name" and not version.endswith(".0")
    return ["--python-version", version] if given else []



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


@app.command(
    "probe",
    short_help="Describe a target interpreter as JSON.",
    epilog=_example("lockship probe --python /usr/bin/python3.9 -o target.json"),
)
def probe_command(
    python: Optional[str] = typer.Option(
        None, "--python", help="Interpreter to describe (default: the one running lockship).",
        metavar="PYTHON",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the JSON here.",
        metavar="FILE",
    ),
    script: bool = typer.Option(
        False, "--script", help="Print the stdlib-only probe script, to run on the target."
    ),
    quiet: bool = QUIET,
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
            if not quiet:
                err.print(f"wrote {output}", markup=False)
        else:
            typer.echo(proc.stdout, nl=False)


@app.command(
    "targets",
    short_help="List the short target names.",
    epilog=_example("lockship targets --glibc 2.31"),
)
def targets_command(
    glibc: Optional[str] = GLIBC,
    musl: Optional[str] = MUSL,
    macos: Optional[str] = MACOS,
    json_output: bool = JSON,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print the names only."),
    verbose: bool = VERBOSE,
) -> None:
    """List the short target names with the platform they stand for."""
    from lockship.targets import (  # noqa: PLC0415
        make_floors,
        parse_target,
        short_name_examples,
    )

    with _errors(verbose):
        floors = make_floors(glibc, musl, macos)
        targets = [parse_target(name, floors) for name in short_name_examples()]
    if json_output:
        rows = [
            {"name": t.name, "description": t.description, "tags": len(t.tags)} for t in targets
        ]
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for target in targets:
        line = f"{target.name:24} {target.description}; {len(target.tags)} tags"
        typer.echo(target.name if quiet else line)
    if not quiet:
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


@app.command(
    "fetch",
    short_help="Download exactly the locked files into a bundle.",
    epilog=_example("lockship fetch --target linux-cp39"),
)
def fetch_command(
    target: str = typer.Option(
        ..., "--target", "-t", help="The target the lock was made for (short name or probe file).",
        metavar="TARGET",
    ),
    lock_file: Optional[Path] = typer.Option(
        None, "--lock", help="Lock to fetch (default: locks/pylock.<target>.toml).", metavar="FILE"
    ),
    dest: Optional[Path] = typer.Option(
        None, "--dest", "-d", help="Bundle directory (default: dist/<target>).", metavar="DIR"
    ),
    jobs: int = typer.Option(
        8, "--jobs", "-j", min=1, max=64, metavar="N", show_default=False,
        help="Parallel downloads (default: 8).",
    ),
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
        "to one bundle's file changes the cache and every other bundle); default: clone.",
        show_default=False,
    ),
    glibc: Optional[str] = GLIBC,
    musl: Optional[str] = MUSL,
    macos: Optional[str] = MACOS,
    python_version: Optional[str] = typer.Option(
        None,
        help="Full Python version X.Y.Z used when locking a short-name target.",
        metavar="X.Y.Z",
    ),
    index_url: Optional[str] = typer.Option(
        None, "--index-url", "-i", help="Index whose credentials/certificates apply.", metavar="URL"
    ),
    no_pip_config: bool = typer.Option(
        False, "--no-pip-config", help="Ignore pip's config files and PIP_* variables."
    ),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root.", metavar="DIR"
    ),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Download exactly the locked files, verify every hash, and lay out a bundle directory."""
    from lockship.fetch import FetchRequest, fetch  # noqa: PLC0415
    from lockship.lockfile import lock_paths  # noqa: PLC0415
    from lockship.models import format_size  # noqa: PLC0415
    from lockship.pipconfig import load_index_config  # noqa: PLC0415
    from lockship.targets import make_floors, parse_targets  # noqa: PLC0415

    with _errors(verbose):
        (spec,) = parse_targets(
            [target], make_floors(glibc, musl, macos), [python_version] if python_version else []
        )
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
    metavar="FILE",
)
IDENTITY = typer.Option(
    None,
    "--identity",
    help="Principal the signer must be listed as (needed unless allowed_signers lists one).",
    metavar="PRINCIPAL",
)


@app.command(
    "sign",
    short_help="Check a fetched bundle and sign it.",
    epilog=_example("lockship sign dist/linux-cp39 --key ~/.ssh/lockship_ed25519 --archive"),
)
def sign_command(
    bundle: Path = typer.Argument(
        ..., help="Bundle directory written by lockship fetch.",
        metavar="BUNDLE",
    ),
    key: Path = typer.Option(
        ..., "--key", help="Ed25519 private key, OpenSSH format.",
        metavar="FILE",
    ),
    passphrase_file: Optional[Path] = typer.Option(
        None, help="File whose first line is the key's passphrase (else $LOCKSHIP_KEY_PASSPHRASE).",
        metavar="FILE",
    ),
    identity: Optional[str] = typer.Option(
        None, "--identity", help="Principal for allowed_signers (default: the key's comment).",
        metavar="PRINCIPAL",
    ),
    archive: bool = typer.Option(
        False, "--archive", help="Also write a deterministic <bundle>.tar and its .sha256."
    ),
    archive_dir: Optional[Path] = typer.Option(
        None, help="Directory for the .tar (default: beside the bundle); implies --archive.",
        metavar="DIR",
    ),
    db: Optional[Path] = typer.Option(
        None, "--db", help="Audit against this OSV database and write audit.json into the bundle.",
        metavar="DB",
    ),
    ignore: List[str] = IGNORE,
    allow_advisories: bool = typer.Option(
        False, "--allow-advisories", help="Sign even if the audit finds advisories (recorded)."
    ),
    series: Optional[str] = typer.Option(
        None, "--series", help="The stream of bundles this one belongs to (default: the target)."
    ),
    sequence: Optional[int] = typer.Option(
        None, "--sequence", min=1, help="Sequence number (default: the last one of the series + 1)."
    ),
    expires: Optional[str] = typer.Option(
        None, "--expires", help="Refuse installing after: 30d, 12h, YYYY-MM-DD or a UTC time."
    ),
    signed_at: Optional[str] = typer.Option(
        None,
        "--signed-at",
        metavar="TIME",
        help="Signing time, YYYY-MM-DDTHH:MM:SSZ (default: $SOURCE_DATE_EPOCH, else now).",
    ),
    cache_dir: Optional[Path] = CACHE_DIR,
    json_output: bool = JSON,
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
    from lockship.sign import Freshness, parse_time, sign_bundle  # noqa: PLC0415
    from lockship.sshsig import load_signing_key, read_passphrase  # noqa: PLC0415

    with _errors(verbose):
        freshness = Freshness(
            series=series,
            sequence=sequence,
            signed_at=parse_time(signed_at, where="--signed-at") if signed_at else None,
            expires=expires,
        )
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
            freshness=freshness,
        )
        written = list(result.written)
        if archive or archive_dir is not None:
            tar, _ = write_archive(
                bundle, archive_dir or bundle.resolve().parent, mtime=archive_mtime(bundle)
            )
            written += [tar, tar.with_name(tar.name + ".sha256")]
    if json_output:
        from lockship.audit import headline  # noqa: PLC0415

        summary = {
            "bundle": str(result.bundle),
            "files": result.files,
            "principal": result.principal,
            "fingerprint": result.fingerprint,
            "allowed_signers": result.allowed_signers_line,
            "written": [str(path) for path in written],
            "audit": headline(result.audit) if result.audit is not None else None,
        }
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    if quiet:
        return
    for path in written:
        err.print(f"wrote {path}", markup=False)
    if result.audit is not None:
        from lockship.audit import headline  # noqa: PLC0415

        err.print(f"audit: {headline(result.audit)}", markup=False)
    err.print(_freshness(result.manifest), markup=False)
    err.print(
        f"signed {result.files} files as {result.principal} with key {result.fingerprint}; "
        "allowed_signers line for the reviewer:",
        markup=False,
    )
    typer.echo(result.allowed_signers_line)


def _freshness(signed: Union[Manifest, VerifyReport]) -> str:
    """``series host, sequence 3, signed 2026-...Z, expires never`` (sign and verify)."""
    from lockship.models import format_timestamp  # noqa: PLC0415

    when = format_timestamp(signed.signed_at) if signed.signed_at else "at an unknown time"
    expires = format_timestamp(signed.expires) if signed.expires else "never"
    return (
        f"series {signed.series or '(none)'}, sequence {signed.sequence}, "
        f"signed {when}, expires {expires}"
    )


@app.command(
    "verify",
    short_help="Check a signed bundle's signature and files.",
    epilog=_example("lockship verify dist/linux-cp39.tar --allowed-signers allowed_signers"),
)
def verify_command(
    bundle: Path = typer.Argument(
        ..., help="Signed bundle directory or its .tar archive.",
        metavar="BUNDLE",
    ),
    allowed_signers: Path = ALLOWED_SIGNERS,
    identity: Optional[str] = IDENTITY,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Check the signature and every file of a signed bundle, and that it has not expired.

    Exit 6: files; 7: signature, or --identity needed; 14: expired. Without
    --identity, allowed_signers must list exactly one principal.
    """
    from dataclasses import asdict  # noqa: PLC0415

    from lockship.errors import SignatureError, VerificationError  # noqa: PLC0415
    from lockship.models import format_timestamp  # noqa: PLC0415
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
        document = {"ok": True, **asdict(report)}
        typer.echo(json.dumps(document, indent=2, sort_keys=True, default=format_timestamp))
        return
    if quiet:
        return
    typer.echo(
        f"OK: {report.bundle}: {report.files} files ({report.bytes} bytes), "
        f"{report.packages} packages for {report.target}, signed by {report.principal} "
        f"(key {report.fingerprint}, {report.allowed_by}); {_freshness(report)}"
    )


class Installer(str, enum.Enum):
    pip = "pip"
    uv = "uv"


@app.command(
    "install",
    short_help="Verify a signed bundle and install it.",
    epilog=_example("lockship install linux-cp39.tar --allowed-signers signers --venv .venv"),
)
def install_command(
    bundle: Path = typer.Argument(
        ..., help="Signed bundle directory or its .tar archive.",
        metavar="BUNDLE",
    ),
    allowed_signers: Path = ALLOWED_SIGNERS,
    identity: Optional[str] = typer.Option(
        None,
        "--identity",
        help="Principal the signer must be listed as (needed unless allowed_signers "
        "lists exactly one; exit 7).",
    ),
    python: Optional[str] = typer.Option(
        None, "--python", help="Interpreter to install into (with --venv: the one creating it).",
        metavar="PYTHON",
    ),
    venv: Optional[Path] = typer.Option(
        None, "--venv", help="Virtual environment to install into; created if missing.",
        metavar="DIR",
    ),
    allow_rollback: bool = typer.Option(
        False,
        "--allow-rollback",
        help="Install even a bundle older than the one last installed into --venv.",
    ),
    installer: Installer = typer.Option(
        Installer.pip,
        "--installer",
        help="pip, or the uv the bundle pins (add uv to the requirements): several times "
        "faster.",
    ),
    json_output: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Verify a signed bundle, check that the interpreter fits its target, install it.

    Give --venv DIR (created if missing) or --python PATH. The installer is pip
    (--no-index --require-hashes), or with --installer uv the uv program of the
    uv wheel the bundle pins, offline with hashes required.
    """
    from lockship.install import install_bundle  # noqa: PLC0415
    from lockship.models import format_timestamp  # noqa: PLC0415

    def show(line: str) -> None:
        if not quiet and not json_output:
            err.print(line, markup=False)

    with _errors(verbose):
        result = install_bundle(
            bundle,
            allowed_signers=allowed_signers,
            identity=identity,
            python=python,
            venv=venv,
            allow_rollback=allow_rollback,
            installer=installer.value,
            on_output=show,
        )
    report = result.report
    if json_output:
        from dataclasses import asdict  # noqa: PLC0415

        summary = {
            "python": result.python,
            "venv": str(result.venv) if result.venv is not None else None,
            "created_venv": result.created_venv,
            "installer": installer.value,
            "packages": list(result.packages),
            "verified": asdict(report),
        }
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=format_timestamp))
        return
    show(
        f"verified {report.files} files signed by {report.principal} (key {report.fingerprint}); "
        f"installed {len(result.packages)} packages into {result.python}"
    )


@app.command(
    "trust-kit",
    short_help="Write the reviewer's trust kit for the offline side.",
    epilog=_example("lockship trust-kit kit/ --allowed-signers allowed_signers"),
)
def trust_kit_command(
    directory: Path = typer.Argument(
        ..., help="Directory to write the kit into (created).", metavar="DIR"
    ),
    allowed_signers: Path = typer.Option(
        ..., "--allowed-signers", help="The reviewer's allowed_signers file.", metavar="FILE"
    ),
    json_output: bool = JSON,
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Write the reviewer's trust kit: allowed_signers, install.py, its sha256, README.md.

    Carry it to the offline machine apart from any bundle; its install.py --bundle DIR
    checks every bundle, so no bundle vouches for itself.
    """
    from lockship.trustkit import write_trust_kit  # noqa: PLC0415

    with _errors(verbose):
        kit = write_trust_kit(directory, allowed_signers)
    if json_output:
        document = {
            "directory": str(kit.directory),
            "written": [str(path) for path in kit.written],
            "install_py_sha256": kit.script_sha256,
            "principals": list(kit.principals),
        }
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    if not quiet:
        for path in kit.written:
            err.print(f"wrote {path}", markup=False)
    typer.echo(f"{kit.script_sha256}  install.py")


# --- publish ----------------------------------------------------------------------------


class _PublishProgress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(f"lockship: {message}", markup=False)


@app.command(
    "publish",
    short_help="Publish signed bundles as a static index.",
    epilog=_example("lockship publish linux-cp39.tar --to /srv/pypi --allowed-signers signers"),
)
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
        None, "--identity",
        metavar="ID",
        help="Principal the signer must be listed as (needed unless allowed_signers lists one).",
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


@app.command(
    "run",
    short_help="Lock, fetch and sign every target of a pipeline.",
    epilog=_example("lockship run pipelines/demo.toml"),
)
def run_command(
    pipeline: Path = typer.Argument(
        ..., help="Pipeline file, e.g. pipelines/demo.toml.",
        metavar="PIPELINE",
    ),
    check: bool = typer.Option(
        False, "--check", help="Only check that every lock matches its inputs (exit 1 if not)."
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", "-U", help="Re-resolve every target, ignoring existing pins."
    ),
    offline: bool = typer.Option(False, "--offline", help="Use the cache only."),
    cache_dir: Optional[Path] = typer.Option(
        None, envvar="LOCKSHIP_CACHE_DIR", help="Cache root.", metavar="DIR"
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = QUIET,
    verbose: bool = VERBOSE,
) -> None:
    """Lock, fetch and sign every target of a pipeline file; print a summary table."""
    from lockship.models import format_size  # noqa: PLC0415
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


@app.command(
    "diff",
    short_help="Show what changed between two transfers.",
    epilog=_example("lockship diff approved/linux-cp39.tar dist/linux-cp39.tar"),
)
def diff_command(
    old: Path = typer.Argument(
        ..., help="Old lock (pylock.<target>.toml), bundle or .tar.",
        metavar="OLD",
    ),
    new: Path = typer.Argument(
        ..., help="New lock, bundle or .tar for the same target.",
        metavar="NEW",
    ),
    output_format: DiffFormat = typer.Option(
        DiffFormat.table, "--format", "-f", show_default=False,
        help="table, markdown or json (default: table).",
    ),
    quiet: bool = QUIET,
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
    elif not quiet:
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
    metavar="DB",
)


@app.command(
    "audit",
    short_help="Match a transfer against an OSV database.",
    epilog=_example("lockship audit locks/pylock.linux-cp39.toml --db pypa-advisory-database"),
)
def audit_command(
    path: Path = typer.Argument(
        ..., help="Lock (.txt or pylock .toml), bundle directory or .tar archive.", metavar="PATH"
    ),
    db: Path = DB,
    output_format: AuditFormat = typer.Option(
        AuditFormat.table, "--format", "-f", show_default=False,
        help="table, markdown or json (default: table).",
    ),
    ignore: List[str] = IGNORE,
    cache_dir: Optional[Path] = CACHE_DIR,
    quiet: bool = QUIET,
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
    elif not quiet:
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
    from lockship.options import load_tool_config  # noqa: PLC0415

    pyproject = Path("pyproject.toml")
    config = load_tool_config(pyproject) if pyproject.is_file() else None
    if config is None:
        return LicensePolicy()
    return LicensePolicy(tuple(config.allow_licenses), tuple(config.deny_licenses))


@app.command(
    "licenses",
    short_help="List licences and apply the licence policy.",
    epilog=_example("lockship licenses dist/linux-cp39 --deny-license AGPL-3.0-only"),
)
def licenses_command(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar archive.", metavar="BUNDLE"),
    allow_license: List[str] = ALLOW_LICENSE,
    deny_license: List[str] = DENY_LICENSE,
    json_output: bool = typer.Option(False, "--json", help="Print the licences as JSON."),
    quiet: bool = QUIET,
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
    elif not quiet:
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


@app.command(
    "report",
    short_help="Write the reviewer's page for a bundle.",
    epilog=_example("lockship report dist/linux-cp39 -o report.html"),
)
def report_command(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar archive.", metavar="BUNDLE"),
    against: Optional[Path] = typer.Option(
        None, "--against", help="The approved transfer to compare with (lock, bundle or .tar).",
        metavar="PATH",
    ),
    db: Optional[Path] = typer.Option(
        None, "--db", help="OSV database to audit against now (default: the bundle's audit.json).",
        metavar="DB",
    ),
    ignore: List[str] = IGNORE,
    allowed_signers: Optional[Path] = typer.Option(
        None, "--allowed-signers", help="Check the signature against this allowed_signers file.",
        metavar="FILE",
    ),
    identity: Optional[str] = IDENTITY,
    allow_license: List[str] = ALLOW_LICENSE,
    deny_license: List[str] = DENY_LICENSE,
    output_format: ReportFormat = typer.Option(
        ReportFormat.html, "--format", "-f", show_default=False,
        help="html, markdown or json (default: html).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the report here (default: stdout).", metavar="FILE"
    ),
    cache_dir: Optional[Path] = CACHE_DIR,
    quiet: bool = QUIET,
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
    if quiet:
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
