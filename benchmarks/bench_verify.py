"""Time ``lockship verify`` against ``sha256sum -c SHA256SUMS`` on the same bundle.

The medium set (benchmarks/sets/medium.in) is locked for linux-cp311, fetched
and signed once (not timed; the wheels come from ``.bench/memory/cache``, kept
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

Usage: .venv/bin/python benchmarks/bench_verify.py [--repeat 5] [--no-baseline]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=str(SETS / "medium.in"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--output", default=str(HERE / "RESULTS-verify.md"))
    args = parser.parse_args(argv)
    work = WORK.parent / "verify"
    key, signers = make_key(WORK / "key")
    prepare(Path(args.set), work)
    steps = bundle_steps(Path(args.set), work, WORK / "cache", key, signers, None)
    for step, command, cwd, env in steps[:3]:  # lock, fetch, sign
        timed(command, cwd=cwd, env=env)
    bundle = work / "bundle"
    runs: dict[str, list[float]] = {"lockship verify": []}
    commands = {"lockship verify": steps[3]}
    if not args.no_baseline:
        source = baseline_source()
        base = bundle_steps(Path(args.set), work, WORK / "cache", key, signers, source)[3]
        runs["lockship verify (baseline)"] = []
        commands["lockship verify (baseline)"] = base
    runs["sha256sum -c"] = []
    commands["sha256sum -c"] = (
        "sha256sum", ["sha256sum", "-c", "--quiet", "--strict", "SHA256SUMS"], bundle, clean_env(),
    )
    for warm_up in (True, *([False] * args.repeat)):
        for label, (_, command, cwd, env) in commands.items():
            seconds, _, _ = timed(command, cwd=cwd, env=env)
            if not warm_up:
                runs[label].append(seconds)
                print(f"{label:<28} {seconds:6.2f} s", flush=True)
    files = [p for p in bundle.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    reference = statistics.median(runs["sha256sum -c"])
    rows = [
        [label, f"{statistics.median(times):.2f}", f"{reference / statistics.median(times):.2f}",
         " ".join(f"{t:.2f}" for t in times)]
        for label, times in runs.items()
    ]  # fmt: skip
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        "# Verify benchmark",
        "",
        f"Produced by `{command_line()}` (median of {args.repeat} interleaved runs after one "
        "untimed run of each, so every file is in the page cache).",
        "",
        *machine_facts(),
        f"- bundle: `{Path(args.set).name}` for linux-cp311: {len(files)} files, "
        f"{size / 2**20:.0f} MiB; {cores} cores",
        "",
        markdown_table(["command", "median (s)", "speed-up over sha256sum -c", "runs (s)"], rows),
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
