"""Time ``lockship verify`` against ``sha256sum -c SHA256SUMS`` on the same bundle.

Each set (default: the medium set, benchmarks/sets/medium.in, and the
tensorflow set of bench_memory.py) is locked for linux-cp311, fetched and
signed once (not timed; the wheels come from ``.bench/memory/cache``, kept
between runs). Then, after one untimed run of each (so both read from the page
cache), each ``--repeat`` times and interleaved:

- lockship: ``lockship verify BUNDLE --allowed-signers ... --identity bench``,
  which does more than sha256sum: the SSHSIG signature, manifest.json sizes,
  missing and extra files, pins, each wheel's METADATA against its pin and the
  lock's metadata digest, the SBOM;
- the baseline: the same command with the revision this branch started from
  (``git merge-base HEAD main``) first on PYTHONPATH (``--no-baseline`` skips);
- sha256sum: ``sha256sum -c --quiet --strict SHA256SUMS`` in the bundle (GNU
  coreutils, one file after another).

Usage: .venv/bin/python benchmarks/bench_verify.py [--sets medium,memory] [--repeat 5] [--no-baseline]
Standard library only; writes benchmarks/RESULTS-verify.md (``--output``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from bench_lock import HERE, SETS, clean_env, command_line, machine_facts, markdown_table, timed
from bench_memory import WORK, baseline_source, bundle_steps, make_key, prepare


def measure_set(set_path: Path, repeat: int, baseline: Path | None) -> tuple[list[list[str]], str]:
    """Table rows for one set's bundle, and a description of the bundle."""
    work = WORK.parent / f"verify-{set_path.stem}"
    key, signers = make_key(WORK / "key")
    prepare(set_path, work)
    steps = bundle_steps(work, WORK / "cache", key, signers, source=None)
    for _, command, cwd, env in steps[:3]:  # lock, fetch, sign
        timed(command, cwd=cwd, env=env)
    bundle = work / "bundle"
    commands = {"lockship verify": steps[3]}
    if baseline is not None:
        commands["lockship verify (baseline)"] = bundle_steps(
            work, WORK / "cache", key, signers, source=baseline
        )[3]
    commands["sha256sum -c"] = (
        "sha256sum", ["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], bundle, clean_env(),
    )
    runs: dict[str, list[float]] = {label: [] for label in commands}
    for warm_up in (True, *([False] * repeat)):
        for label, (_, command, cwd, env) in commands.items():
            seconds, _, _ = timed(command, cwd=cwd, env=env)
            if not warm_up:
                runs[label].append(seconds)
                print(f"{set_path.stem:<8} {label:<28} {seconds:6.2f} s", flush=True)
    files = [p for p in bundle.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    largest = max(p.stat().st_size for p in files)
    reference = statistics.median(runs["sha256sum -c"])
    rows = [
        [f"`{set_path.name}`", label, f"{statistics.median(times):.2f}",
         f"{reference / statistics.median(times):.2f}", " ".join(f"{t:.2f}" for t in times)]
        for label, times in runs.items()
    ]  # fmt: skip
    about = (
        f"- `{set_path.name}` for linux-cp311: {len(files)} files, {size / 2**20:.0f} MiB, "
        f"largest {largest / 2**20:.0f} MiB"
    )
    return rows, about


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="medium,memory")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--output", default=str(HERE / "RESULTS-verify.md"))
    args = parser.parse_args(argv)
    baseline = None if args.no_baseline else baseline_source()
    facts = machine_facts()
    rows, bundles = [], []
    for name in args.sets.split(","):
        set_rows, about = measure_set(SETS / f"{name}.in", args.repeat, baseline)
        rows += set_rows
        bundles.append(about)
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        "# Verify benchmark",
        "",
        (f"Produced by `{command_line()}` (median of {args.repeat} interleaved runs after one "
        "untimed run of each, so every file is in the page cache)."),
        "",
        *facts,
        f"- cores: {cores}; bundles:",
        *bundles,
        "",
        markdown_table(
            ["bundle", "command", "median (s)", "speed-up over sha256sum -c", "runs (s)"], rows
        ),
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
