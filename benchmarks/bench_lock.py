"""Time lockship lock against pip-compile and uv pip compile, cold and warm.

All three tools answer the same question: a hashed lock for CPython 3.11 on
Linux x86_64, the interpreter running this script (pip-compile can only lock
for the interpreter it runs on). lockship locks ``--target linux-cp311 --glibc
2.28`` and uv ``--python-platform x86_64-unknown-linux-gnu --python-version
3.11``, which in uv 0.13 means manylinux_2_28 too; lockship's default glibc
2.17 floor would have to compile pandas 3 from its sdist for the medium set
(pandas 3 has no manylinux2014 wheels), which is not what is measured here.

pip-compile runs on this interpreter, CPython 3.11.7; lockship's and uv's
linux-cp311 is CPython 3.11.0 (a short name means the lowest patch release).
Where a marker or Requires-Python looks at the patch release, their pins
legitimately differ (e.g. `async-timeout; python_full_version < "3.11.3"`,
soupsieve 4 needing Python >= 3.11.5); the report lists such differences.

- cold: a fresh, empty cache directory and no previous output.
- warm: right after the cold run, the same cache and the previous output still
  there (re-locking unchanged inputs; each tool then prefers the existing pins).

Each (set, tool) is measured ``--repeat`` times (each repetition is one cold
run then one warm run) and the median wall time is reported. The Markdown
table is printed and written to benchmarks/RESULTS-lock.md (``--output``).

Usage: .venv/bin/python benchmarks/bench_lock.py [--sets small,medium,large]
       [--skip pip-compile] [--repeat 3]
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent  # lockship, pip-compile and uv of this venv
SETS = HERE / "sets"
TOOLS = ("lockship", "pip-compile", "uv")

# --- helpers shared with bench_fetch.py -----------------------------------------------

# Runs the command given as its arguments, then prints the peak RSS (KiB) of the
# largest process of its tree: RUSAGE_CHILDREN covers every waited-for descendant.
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print('PEAK-RSS-KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without its pip/uv/lockship settings.

    Every tool must see the same configuration: the real PyPI only, no pip.conf
    (which may add local indexes and find-links), no uv.toml, no Python downloads.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "LOCKSHIP_"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_CONFIG="1",
    )
    env.update(extra)
    return env


class ToolError(RuntimeError):
    pass


def timed(
    args: list[str], *, cwd: Path, env: dict[str, str], rss: bool = False
) -> tuple[float, int | None, str]:
    """Run a command; return (wall seconds, peak RSS KiB or None, stderr).

    :raises ToolError: when the command fails (with the tail of its output).
    """
    argv = [sys.executable, "-c", _RSS_WRAPPER, *args] if rss else args
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stdout[-2000:] + "\n" + proc.stderr[-2000:]).strip()
        raise ToolError(f"{shlex.join(args)} exited {proc.returncode}:\n{tail}")
    peak = None
    if rss:
        for line in proc.stderr.splitlines():
            if line.startswith("PEAK-RSS-KIB "):
                peak = int(line.split()[1])
    return elapsed, peak, proc.stderr


def tool_version(args: list[str]) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False, env=clean_env())
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"


def machine_facts() -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        (f"- machine: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, load average at start {load}"),
        f"- Python: {platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        f"- lockship: {tool_version([sys.executable, '-m', 'lockship', '--version'])}",
        f"- pip-compile: {tool_version([str(BIN / 'pip-compile'), '--version'])}",
        f"- pip: {tool_version([sys.executable, '-m', 'pip', '--version']).split(' from ')[0]}",
        f"- uv: {tool_version([str(BIN / 'uv'), '--version'])}",
        ("- network: the real PyPI (through this machine's proxy); every tool with pip/uv "
        "configuration pinned off (PIP_CONFIG_FILE=/dev/null, no PIP_*/UV_* variables, "
        "`--no-pip-config`, `--no-config`)"),
    ]


def command_line() -> str:
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def requirement_count(path: Path) -> int:
    return sum(
        1 for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    )


def display(args: list[str]) -> str:
    """A command line for the report, with this checkout's paths made relative."""
    return shlex.join(args).replace(f"{ROOT}/", "")


def pins_of(lock_text: str) -> set[str]:
    """``name==version`` of a pip-tools format file, names normalized (PEP 503)."""
    out = set()
    for line in lock_text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line:
            name, _, rest = line.partition("==")
            name = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()
            out.add(f"{name}=={rest.split()[0].rstrip(';')}")
    return out


def pin_count(lock_text: str) -> int:
    return sum(
        1 for line in lock_text.splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line
    )


# --- the lock benchmark -------------------------------------------------------------------


# lockship target -> (uv --python-platform, --python-version); pip-compile only does the host.
UV_TARGETS = {
    "linux-cp311": ("x86_64-unknown-linux-gnu", "3.11"),
    "linux-cp39": ("x86_64-unknown-linux-gnu", "3.9"),
    "windows-cp312": ("x86_64-pc-windows-msvc", "3.12"),
    "macos_arm64-cp313": ("aarch64-apple-darwin", "3.13"),
}


def lock_command(tool: str, cache: Path, glibc: str, target: str = "linux-cp311") -> list[str]:
    """The command that locks requirements.in into out.txt (or locks/) in the cwd."""
    if tool == "lockship":
        return [
            sys.executable, "-m", "lockship", "lock", "-q", "--no-pip-config",
            "--cache-dir", str(cache), "-r", "requirements.in",
            "--target", target, "--glibc", glibc,
        ]
    if tool == "pip-compile":
        # --cache-dir is pip-tools' dependency cache; pip's HTTP cache is PIP_CACHE_DIR.
        return [
            str(BIN / "pip-compile"), "-q", "--generate-hashes", "--allow-unsafe",
            "--cache-dir", str(cache / "pip-tools"), "-o", "out.txt", "requirements.in",
        ]
    platform_, python = UV_TARGETS[target]
    return [
        str(BIN / "uv"), "pip", "compile", "-q", "--no-config", "--generate-hashes",
        "--cache-dir", str(cache), "--python-platform", platform_,
        "--python-version", python, "-o", "out.txt", "requirements.in",
    ]


def output_of(tool: str, workdir: Path, target: str = "linux-cp311") -> Path:
    return workdir / "locks" / f"{target}.txt" if tool == "lockship" else workdir / "out.txt"


def measure(
    tool: str, set_path: Path, glibc: str, scratch: Path, target: str = "linux-cp311"
) -> tuple[float, float, set[str]]:
    """One cold and one warm run: (cold seconds, warm seconds, pins of the cold run)."""
    work = Path(tempfile.mkdtemp(prefix=f"{tool}-{set_path.stem}-", dir=scratch))
    cache = work / "cache"
    project = work / "project"
    project.mkdir()
    shutil.copyfile(set_path, project / "requirements.in")
    env = clean_env(PIP_CACHE_DIR=str(cache / "pip"))
    args = lock_command(tool, cache, glibc, target)
    cold, _, _ = timed(args, cwd=project, env=env)
    output = output_of(tool, project, target)
    first = output.read_text()
    warm, _, _ = timed(args, cwd=project, env=env)  # same cache, previous output present
    pins = pins_of(first)
    if pins_of(output.read_text()) != pins:
        raise ToolError(f"{tool}: the warm run of {set_path.name} changed the pins")
    shutil.rmtree(work, ignore_errors=True)
    return cold, warm, pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes the Markdown table to --output. Standard library only.",
    )
    parser.add_argument("--sets", default="small,medium,large",
                        help="comma-separated names of benchmarks/sets/*.in (default: %(default)s)")
    parser.add_argument("--skip", action="append", default=[], choices=TOOLS, metavar="TOOL",
                        help="leave a tool out (repeatable): lockship, pip-compile or uv")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per (set, tool, cold/warm); the median is reported "
                        "(default: %(default)s)")
    parser.add_argument("--target", default="linux-cp311", choices=sorted(UV_TARGETS),
                        help="lockship's target, and uv's --python-platform/--python-version "
                        "for it; pip-compile (host only) runs for linux-cp311 only")
    parser.add_argument("--glibc", default="2.28",
                        help="lockship's glibc floor; 2.28 is what uv's x86_64-unknown-linux-gnu "
                        "means (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-lock.md",
                        help="Markdown file to write (default: benchmarks/RESULTS-lock.md)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="directory for the temporary projects and caches (default: $TMPDIR)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    tools = [
        t for t in TOOLS
        if t not in args.skip and (t != "pip-compile" or args.target == "linux-cp311")
    ]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    for name in sets:
        if not (SETS / f"{name}.in").is_file():
            parser.error(f"no such set: {SETS / name}.in")
    if not tools:
        parser.error("every tool is skipped")

    facts = machine_facts()
    print("\n".join(facts), flush=True)
    rows = []
    differences: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-lock-", dir=args.scratch))
    try:
        for name in sets:
            set_path = SETS / f"{name}.in"
            answers: dict[str, set[str]] = {}
            for tool in tools:
                colds, warms = [], []
                for i in range(args.repeat):
                    cold, warm, pins = measure(tool, set_path, args.glibc, scratch, args.target)
                    colds.append(cold)
                    warms.append(warm)
                    if answers.setdefault(tool, pins) != pins:
                        print(f"warning: {tool} gave different pins on run {i + 1} "
                              "(the index changed?)", file=sys.stderr)
                    print(f"{name:>8} {tool:<12} run {i + 1}/{args.repeat}: "
                          f"cold {cold:6.2f} s  warm {warm:6.2f} s  ({len(pins)} pins)", flush=True)
                first = answers[tools[0]]
                same = "yes" if answers[tool] == first else (
                    f"no: {len(answers[tool] - first)} only here, {len(first - answers[tool])} "
                    f"only in {tools[0]}"
                )
                if same != "yes":
                    diff = (f"{name}, {tool} vs {tools[0]}: only {tool}: "
                            f"{' '.join(sorted(answers[tool] - first)) or '-'}; only {tools[0]}: "
                            f"{' '.join(sorted(first - answers[tool])) or '-'}")
                    differences.append(diff)
                    print(f"note: pins differ: {diff}", flush=True)
                rows.append([
                    name if args.target == "linux-cp311" else f"{name} ({args.target})", str(requirement_count(set_path)), str(len(answers[tool])), tool,
                    f"{statistics.median(colds):.2f}", f"{statistics.median(warms):.2f}",
                    " ".join(f"{x:.2f}" for x in colds), " ".join(f"{x:.2f}" for x in warms),
                    same,
                ])
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table = markdown_table(
        ["set", "inputs", "pins", "tool", "cold median (s)", "warm median (s)",
         "cold runs (s)", "warm runs (s)", f"same pins as {tools[0]}"],
        rows,
    )
    commands = "\n".join(
        f"- {tool}: `{display(lock_command(tool, Path('CACHE'), args.glibc, args.target))}`"
        for tool in tools
    )
    report = "\n".join([
        "# Lock benchmark",
        "",
        (f"Produced by `{command_line()}` (median of {args.repeat} runs; wall time of the whole "
        "process, including interpreter start-up)."),
        "",
        *facts,
        "",
        ("Cold: fresh empty cache directory, no previous output. Warm: the same cache and the "
        "previous output present (re-locking unchanged inputs). pip-compile's pip HTTP cache is "
        "CACHE/pip (PIP_CACHE_DIR). Commands (run in the project directory, "
        "requirements.in = benchmarks/sets/SET.in):"),
        "",
        commands,
        "",
        table,
        "",
        *(["Pins that differ between tools (see the note in bench_lock.py's docstring):", ""]
          + [f"- {d}" for d in differences] + [""] if differences else []),
    ])
    print()
    print(table)
    args.output.write_text(report, encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
