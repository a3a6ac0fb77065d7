"""Time an offline install of one bundle: lockship install, plain pip, and uv.

The medium set (benchmarks/sets/medium.in) plus ``uv`` (so that the bundle
carries the uv wheel ``--installer uv`` runs) is locked for linux-cp311, fetched
and signed once (not timed; wheels from ``.bench/memory/cache``). Then, each
``--repeat`` times and interleaved, into a fresh venv created beforehand (not
timed) with this interpreter:

- lockship: ``lockship install BUNDLE --venv VENV --allowed-signers ...
  --identity bench`` (verifies the bundle, probes the venv, runs pip);
- lockship with uv: the same with ``--installer uv`` (runs the bundle's uv);
- pip: ``VENV/bin/python -m pip install --no-index --find-links BUNDLE/wheels
  --require-hashes -r BUNDLE/requirements.txt`` (what lockship runs, alone);
- uv cold: ``uv pip install --offline --no-index --find-links BUNDLE/wheels
  --require-hashes -r BUNDLE/requirements.txt --python VENV/bin/python`` with
  a fresh, empty ``UV_CACHE_DIR`` (an offline machine's first install);
- uv warm: the same with the cache the cold run filled.

Usage: .venv/bin/python benchmarks/bench_install.py [--repeat 3]
Standard library only; writes benchmarks/RESULTS-install.md (``--output``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_lock import (
    BIN,
    HERE,
    SETS,
    clean_env,
    command_line,
    machine_facts,
    markdown_table,
    timed,
    tool_version,
)
from bench_memory import WORK, bundle_steps, make_key, prepare


def fresh_venv(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=str(SETS / "medium.in"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=str(HERE / "RESULTS-install.md"))
    args = parser.parse_args(argv)
    work = WORK.parent / "install"
    key, signers = make_key(WORK / "key")
    prepare(Path(args.set), work)
    with (work / "project" / "requirements.in").open("a") as requirements:
        requirements.write("uv\n")
    steps = bundle_steps(work, WORK / "cache", key, signers, source=None)
    for _, command, cwd, env in steps[:3]:  # lock, fetch, sign
        timed(command, cwd=cwd, env=env)
    bundle = work / "bundle"
    uv = str(BIN / "uv")
    uv_cache = work / "uv-cache"
    runs: dict[str, list[float]] = {
        "lockship install": [], "lockship install --installer uv": [], "pip": [],
        "uv (cold cache)": [], "uv (warm cache)": [],
    }  # fmt: skip
    for number in range(args.repeat):
        for label, times in runs.items():
            venv = work / "venvs" / f"{label.replace(' ', '-')}-{number}"
            python = fresh_venv(venv)
            env = clean_env()
            if label.startswith("lockship install"):
                command = [*steps[4][1][:-6], "--venv", str(venv), *steps[4][1][-4:], *label.split()[2:]]
            elif label == "pip":
                command = [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links",
                           str(bundle / "wheels"), "--require-hashes", "--disable-pip-version-check",
                           "--no-input", "-r", str(bundle / "requirements.txt")]  # fmt: skip
            else:
                if label == "uv (cold cache)" and uv_cache.exists():
                    shutil.rmtree(uv_cache)
                env["UV_CACHE_DIR"] = str(uv_cache)
                command = [uv, "pip", "install", "-q", "--offline", "--no-index", "--find-links",
                           str(bundle / "wheels"), "--require-hashes", "-r",
                           str(bundle / "requirements.txt"), "--python", str(python)]  # fmt: skip
            seconds, _, _ = timed(command, cwd=work, env=env)
            times.append(seconds)
            print(f"{label:<20} {seconds:6.2f} s", flush=True)
            shutil.rmtree(venv)
    wheels = list((bundle / "wheels").iterdir())
    reference = statistics.median(runs["pip"])
    rows = [
        [label, f"{statistics.median(times):.2f}", f"{reference / statistics.median(times):.2f}",
         " ".join(f"{t:.2f}" for t in times)]
        for label, times in runs.items()
    ]  # fmt: skip
    lines = [
        "# Offline install benchmark",
        "",
        (f"Produced by `{command_line()}` (median of {args.repeat} interleaved runs, each into "
        "a fresh venv made beforehand, not timed)."),
        "",
        *machine_facts(),
        f"- uv: {tool_version([uv, '--version'])}",
        (f"- bundle: `{Path(args.set).name}` and uv, for linux-cp311: {len(wheels)} wheels, "
        f"{sum(p.stat().st_size for p in wheels) / 2**20:.0f} MiB"),
        "",
        markdown_table(["installer", "median (s)", "speed-up over pip", "runs (s)"], rows),
        "",
    ]
    Path(args.output).write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
