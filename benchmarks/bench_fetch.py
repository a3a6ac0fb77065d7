"""Time lockship fetch against pip download, cold and warm, and measure peak RSS.

A set of ~38 packages with large binary wheels (numpy, pandas, pyarrow, scipy,
scikit-learn, matplotlib, ...) and pure ones (benchmarks/sets/fetch.in) is
locked once for linux-cp311 with ``--only-binary :all:`` (not timed: that is
bench_lock.py's job). Then, each ``--repeat`` times:

- lockship cold: ``lockship fetch`` with a fresh cache dir into a fresh dest;
- lockship warm: the same again on the complete bundle (should be a no-op);
- lockship warm cache: a fresh dest from the filled cache (reflinks where the
  filesystem can, else copies, each hashed as it is placed), and the same with
  ``--link-mode hardlink`` (shared inodes), to show what copying costs;
- pip cold: ``pip download --no-deps --require-hashes --only-binary=:all: -r
  locks/linux-cp311.txt -d DIR --no-cache-dir`` (the venv's pip), fresh DIR;
- pip warm: the same again into the same DIR.

The files each tool wrote are checked to be exactly the locked files. Peak RSS
is the largest resident set of the command's process tree
(``getrusage(RUSAGE_CHILDREN)`` in a small wrapper process). To show that
memory does not grow with file size, the same is done for one ~550 MiB wheel
(benchmarks/sets/big.in; ``--no-big`` skips it) and compared with the
largest wheel.

Usage: .venv/bin/python benchmarks/bench_fetch.py [--repeat 3] [--no-big]
Standard library only; writes benchmarks/RESULTS-fetch.md (``--output``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

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
    timed,
)

TARGET = "linux-cp311"


def lock_set(set_path: Path, project: Path, glibc: str) -> tuple[Path, Path, dict[str, int]]:
    """Lock a set for TARGET; return (requirements lock, pylock, {filename: size})."""
    project.mkdir(parents=True)
    shutil.copyfile(set_path, project / "requirements.in")
    timed(
        [sys.executable, "-m", "lockship", "lock", "-q", "--no-pip-config",
         "--cache-dir", str(project / "lock-cache"), "-r", "requirements.in",
         "--target", TARGET, "--glibc", glibc, "--only-binary", ":all:"],
        cwd=project, env=clean_env(),
    )
    txt = project / "locks" / f"{TARGET}.txt"
    pylock = project / "locks" / f"pylock.{TARGET}.toml"
    # The file names and sizes, read from the pylock.toml with a regex (no TOML parser in
    # the standard library of Python < 3.11): in each [[packages.wheels]] table, the
    # `name = "...whl"` key comes before `size = N`.
    files: dict[str, int] = {}
    current = None
    for line in pylock.read_text(encoding="utf-8").splitlines():
        if line.strip() == "[packages.sdist]":
            raise ToolError(f"{pylock.name}: an sdist in an --only-binary lock")
        match = re.fullmatch(r'name = "(.+\.whl)"', line.strip())
        if match:
            current = match.group(1)
        match = re.fullmatch(r"size = (\d+)", line.strip())
        if match and current is not None:
            files[current] = int(match.group(1))
            current = None
    if not files:
        raise ToolError(f"{pylock}: no wheels found")
    return txt, pylock, files


def lockship_fetch(project: Path, cache: Path, dest: Path, glibc: str) -> list[str]:
    return [
        sys.executable, "-m", "lockship", "fetch", "-q", "--no-pip-config",
        "--target", TARGET, "--glibc", glibc, "--lock", str(project / "locks" / f"pylock.{TARGET}.toml"),
        "--cache-dir", str(cache), "--dest", str(dest),
    ]


def pip_download(txt: Path, dest: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
        "--only-binary=:all:", "-r", str(txt), "-d", str(dest), "--no-cache-dir",
    ]


def check_files(directory: Path, expected: dict[str, int], what: str) -> None:
    got = {p.name: p.stat().st_size for p in directory.iterdir() if p.name.endswith(".whl")}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        raise ToolError(f"{what}: not the locked files (missing {missing}, extra {extra})")


Scenario = tuple[str, str]  # (tool, scenario)


def run_set(
    name: str, glibc: str, repeat: int, scratch: Path
) -> tuple[dict[Scenario, list[tuple[float, int | None]]], dict[str, int]]:
    project = scratch / name
    txt, _, files = lock_set(SETS / f"{name}.in", project, glibc)
    total = sum(files.values())
    print(f"{name}: {len(files)} wheels, {total / 2**20:.1f} MiB, largest "
          f"{max(files.values()) / 2**20:.1f} MiB ({max(files, key=files.__getitem__)})", flush=True)
    results: dict[Scenario, list[tuple[float, int | None]]] = {}
    env = clean_env()

    def record(tool: str, scenario: str, args: list[str], check_dir: Path) -> None:
        seconds, rss, _ = timed(args, cwd=project, env=env, rss=True)
        check_files(check_dir, files, f"{tool} {scenario}")
        results.setdefault((tool, scenario), []).append((seconds, rss))
        print(f"  {tool:<9} {scenario:<38} {seconds:7.2f} s  peak RSS "
              f"{(rss or 0) / 1024:7.1f} MiB", flush=True)

    for i in range(repeat):
        print(f" run {i + 1}/{repeat}", flush=True)
        run_dir = scratch / f"{name}-run{i}"
        cache, dest = run_dir / "cache", run_dir / "dist"
        record("lockship", "cold (fresh cache, fresh dest)",
               lockship_fetch(project, cache, dest, glibc), dest / "wheels")
        record("lockship", "warm (complete bundle: no-op)",
               lockship_fetch(project, cache, dest, glibc), dest / "wheels")
        record("lockship", "warm cache, fresh dest",
               lockship_fetch(project, cache, run_dir / "dist2", glibc), run_dir / "dist2" / "wheels")
        record("lockship", "warm cache, fresh dest, --link-mode hardlink",
               [*lockship_fetch(project, cache, run_dir / "dist3", glibc), "--link-mode", "hardlink"],
               run_dir / "dist3" / "wheels")
        pip_dest = run_dir / "pip"
        record("pip", "cold (--no-cache-dir, fresh dir)", pip_download(txt, pip_dest), pip_dest)
        record("pip", "warm (same dir: files already there)", pip_download(txt, pip_dest), pip_dest)
        shutil.rmtree(run_dir, ignore_errors=True)
    return results, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Writes the Markdown tables to --output. Standard library only.",
    )
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per scenario; the median time and the largest peak "
                        "RSS are reported (default: %(default)s)")
    parser.add_argument("--set", default="fetch", dest="set_name",
                        help="name of the benchmarks/sets/*.in to fetch (default: %(default)s)")
    parser.add_argument("--big", action=argparse.BooleanOptionalAction, default=True,
                        help="also fetch benchmarks/sets/big.in (one ~550 MiB wheel) to show "
                        "peak RSS does not grow with file size (default: on)")
    parser.add_argument("--glibc", default="2.28",
                        help="glibc floor for the lock and fetch (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-fetch.md",
                        help="Markdown file to write (default: benchmarks/RESULTS-fetch.md)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="directory for the temporary projects, caches and downloads "
                        "(default: $TMPDIR; needs ~1.5 GiB with --big)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sets = [args.set_name] + (["big"] if args.big else [])
    for name in sets:
        if not (SETS / f"{name}.in").is_file():
            parser.error(f"no such set: {SETS / name}.in")

    facts = machine_facts()
    print("\n".join(facts), flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-fetch-", dir=args.scratch))
    rows = []
    try:
        for name in sets:
            results, files = run_set(name, args.glibc, args.repeat, scratch)
            largest = max(files.values()) / 2**20
            pip_cold = statistics.median(
                s for s, _ in results[("pip", "cold (--no-cache-dir, fresh dir)")]
            )
            for (tool, scenario), runs in results.items():
                seconds = [s for s, _ in runs]
                peak = max((r or 0) for _, r in runs) / 1024
                rows.append([
                    name, f"{len(files)} / {sum(files.values()) / 2**20:.0f}", f"{largest:.0f}",
                    tool, scenario, f"{statistics.median(seconds):.2f}",
                    f"{statistics.median(seconds) / pip_cold:.2f}",
                    " ".join(f"{s:.2f}" for s in seconds), f"{peak:.0f}",
                    f"{peak / largest:.2f}",
                ])
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table = markdown_table(
        ["set", "wheels / MiB", "largest wheel (MiB)", "tool", "scenario", "median (s)",
         "÷ pip cold", "runs (s)", "peak RSS (MiB)", "peak RSS / largest wheel"],
        rows,
    )
    example = Path("PROJECT")
    report = "\n".join([
        "# Fetch benchmark",
        "",
        (f"Produced by `{command_line()}` (median wall time of {args.repeat} runs, including "
        "interpreter start-up; peak RSS is the largest of the runs)."),
        "",
        *facts,
        "",
        (f"Each set is first locked (not timed) with `lockship lock --target {TARGET} "
        f"--glibc {args.glibc} --only-binary :all:`. Commands:"),
        "",
        f"- lockship: `{display(lockship_fetch(example, Path('CACHE'), Path('DEST'), args.glibc))}`",
        (f"- pip: `{display(pip_download(example / 'locks' / f'{TARGET}.txt', Path('DIR')))}` "
        f"({BIN.name}/pip of this venv)"),
        "",
        ("Every run is checked to have written exactly the locked wheels. What the warm "
        "rows check: lockship's no-op compares the bundle's file names and sizes with its "
        "bundle.json and trusts a file without re-hashing only where it is unchanged since "
        "fetch placed and hashed it (inode, size, mtime and ctime); filling a fresh bundle "
        "from the cache copies (or reflinks, where the filesystem can) and hashes every "
        "cached file, and `--link-mode hardlink` shares the cache's inodes instead (hashing "
        "them too); pip re-hashes every file already in DIR (and re-reads the index "
        "pages). The lockship process itself needs ~50 MiB "
        "(interpreter and imports), so the peak RSS of a cold fetch is that plus the "
        "download buffers, whatever the size of the wheels."),
        "",
        table,
        "",
    ])
    print()
    print(table)
    args.output.write_text(report, encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
