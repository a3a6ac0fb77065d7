"""Time the resolver alone: backtracking sets, offline, from warm caches, against uv.

Each set is first locked online by both tools (not timed) to fill their caches;
then ``--repeat`` interleaved rounds run ``lockship lock --offline`` (with no
previous lock, so it resolves from scratch) and ``uv pip compile --offline``,
so that only resolution (and reading the cache) is measured, not the network.

- ipython-all: ``ipython[all]`` with ``--only-binary :all:`` for linux-cp313
  (uv: ``--python-platform x86_64-manylinux_2_28 --python-version 3.13``).
- airflow: ``apache-airflow`` for linux-cp312, glibc 2.28.

Usage: .venv/bin/python benchmarks/bench_resolve.py [--sets ipython-all,airflow]
       [--repeat 3] [--cache-dir DIR]
Standard library only; writes benchmarks/RESULTS-resolve.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lock import (
    BIN,
    HERE,
    SETS,
    ToolError,
    clean_env,
    command_line,
    display,
    machine_facts,
    markdown_table,
    pins_of,
    timed,
)

# set -> (lockship target, glibc, uv platform, uv python, only-binary)
SET_TARGETS = {
    "ipython-all": ("linux-cp313", "2.28", "x86_64-manylinux_2_28", "3.13", True),
    "airflow": ("linux-cp312", "2.28", "x86_64-manylinux_2_28", "3.12", False),
}


def commands(name: str, cache: Path, *, offline: bool) -> dict[str, list[str]]:
    target, glibc, platform, python, binary = SET_TARGETS[name]
    only = ["--only-binary", ":all:"] if binary else []
    off = ["--offline"] if offline else []
    return {
        "lockship": [
            sys.executable, "-m", "lockship", "lock", "-q", "--no-pip-config", *off,
            "--cache-dir", str(cache / "lockship"), "-r", "requirements.in",
            "--target", target, "--glibc", glibc, *only,
        ],
        "uv": [
            str(BIN / "uv"), "pip", "compile", "-q", "--no-config", *off,
            "--cache-dir", str(cache / "uv"), "--python-platform", platform,
            "--python-version", python, *only, "-o", "out.txt", "requirements.in",
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="ipython-all,airflow")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="keep the warm caches here between invocations (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-resolve.md")
    args = parser.parse_args(argv)
    facts = machine_facts()
    print("\n".join(facts), flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-resolve-"))
    cache_root = args.cache_dir or scratch / "cache"
    rows = []
    try:
        for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
            project = scratch / name
            project.mkdir()
            shutil.copyfile(SETS / f"{name}.in", project / "requirements.in")
            cache = cache_root / name
            env = clean_env()
            target = SET_TARGETS[name][0]
            lock_txt = project / "locks" / f"{target}.txt"
            for args_ in commands(name, cache, offline=False).values():  # fill the caches
                timed(args_, cwd=project, env=env)
            times: dict[str, list[float]] = {"lockship": [], "uv": []}
            pins: dict[str, set[str]] = {}
            for i in range(args.repeat):
                for tool, args_ in commands(name, cache, offline=True).items():
                    shutil.rmtree(project / "locks", ignore_errors=True)  # no preferred pins
                    (project / "out.txt").unlink(missing_ok=True)
                    seconds, _, _ = timed(args_, cwd=project, env=env)
                    times[tool].append(seconds)
                    out = lock_txt if tool == "lockship" else project / "out.txt"
                    pins[tool] = pins_of(out.read_text())
                    print(f"{name:>12} {tool:<9} run {i + 1}/{args.repeat}: {seconds:6.2f} s "
                          f"({len(pins[tool])} pins)", flush=True)
            ratio = statistics.median(times["lockship"]) / statistics.median(times["uv"])
            same = "yes" if pins["lockship"] == pins["uv"] else (
                f"no: {len(pins['lockship'] - pins['uv'])} only lockship, "
                f"{len(pins['uv'] - pins['lockship'])} only uv"
            )
            rows.extend([
                name, str(len(pins[tool])), tool, f"{statistics.median(times[tool]):.2f}",
                " ".join(f"{x:.2f}" for x in times[tool]),
                f"{ratio:.1f}x" if tool == "lockship" else "1.0x",
                same if tool == "lockship" else "",
            ] for tool in ("lockship", "uv"))
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = markdown_table(
        ["set", "pins", "tool", "median (s)", "runs (s)", "÷ uv", "same pins as uv"], rows
    )
    cmds = "\n".join(
        f"- {tool}: `{display(a)}`"
        for name in SET_TARGETS for tool, a in commands(name, Path("CACHE"), offline=True).items()
    )
    report = "\n".join([
        "# Resolve benchmark (offline, warm caches)", "",
        (f"Produced by `{command_line()}`; wall time of the whole process, median of "
        f"{args.repeat} interleaved runs, each tool's cache filled by one online run first."), "",
        *facts, "", "Commands:", "", cmds, "", table, "",
    ])
    print()
    print(table)
    args.output.write_text(report, encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
