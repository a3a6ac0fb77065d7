"""Time ``lockship audit`` of a 300-package lock against the whole PyPA advisory database.

The database is the snapshot vendored for the tests (tests/data/osv, 2,661 OSV
records), in the three layouts lockship reads: the YAML directory, that
directory as a ``.tar.xz``, and an OSV-style JSON zip built from it. The lock
pins 300 projects that the database names (the worst case: every package has
advisories to match), half of them at a version an advisory lists, half at
their advisories' newest fixed version or later.

For each layout, ``--repeat`` times (medians reported):

- cold: ``lockship audit lock.txt --db DB --format json`` with an empty cache
  (every record is parsed and the index is built and cached);
- warm: the same with the cache filled (the index is read back: what every
  later audit of the same database costs);

plus, in this process, the warm index load and the matching of the 300
packages on their own, and ``lockship --version`` as the start-up baseline.
No other tool audits an offline OSV database (pip-audit asks PyPI's JSON API or
osv.dev, which this machine cannot reach), so the ratio given is to start-up.

Usage: .venv/bin/python benchmarks/bench_audit.py [--repeat 3]
Writes benchmarks/RESULTS-audit.md (``--output``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import yaml
from bench_lock import HERE, clean_env, command_line, machine_facts, markdown_table
from packaging.version import InvalidVersion, Version

SNAPSHOT = HERE.parent / "tests" / "data" / "osv" / "pypa-advisory-database-3ccb612.tar.xz"
PACKAGES = 300


def run_audit(lock: Path, db: Path, cache: Path) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "lockship", "audit", str(lock), "--db", str(db),
            "--format", "json", "--cache-dir", str(cache)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=clean_env())
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 13):
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def startup() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lockship", "--version"], check=True,
                   capture_output=True, env=clean_env())
    return time.perf_counter() - start


def layouts(scratch: Path) -> dict[str, Path]:
    with tarfile.open(SNAPSHOT) as tar:
        tar.extractall(scratch, filter="data")
    directory = scratch / "pypa-advisory-database"
    archive = scratch / "all.zip"

    def encode(value: object) -> str:
        return value.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for record in sorted(directory.rglob("*.yaml")):
            document = yaml.load(record.read_bytes(), Loader=yaml.CSafeLoader)
            out.writestr(f"{document['id']}.json", json.dumps(document, default=encode))
    return {"YAML directory": directory, "tar.xz of it": SNAPSHOT, "OSV JSON zip": archive}


def make_lock(directory: Path, path: Path) -> None:
    """300 projects of the database: even ones at an affected version, odd ones past every fix."""
    pins = []
    for number, project in enumerate(sorted(p for p in (directory / "vulns").iterdir())[:PACKAGES]):
        versions, fixed = [], []
        for record in sorted(project.glob("*.yaml")):
            document = yaml.load(record.read_bytes(), Loader=yaml.CSafeLoader)
            for affected in document.get("affected", []):
                versions += [str(v) for v in affected.get("versions", [])]
                for item in affected.get("ranges", []):
                    fixed += [str(e["fixed"]) for e in item.get("events", []) if "fixed" in e]
        parsed = []
        for text in (versions if number % 2 == 0 else fixed) or ["1.0"]:
            try:
                parsed.append(Version(text))
            except InvalidVersion:
                continue
        version = max(parsed) if parsed else Version("1.0")
        pins.append(f"{project.name}=={version}")
    path.write_text("\n".join(pins) + "\n")


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-audit.md")
    args = parser.parse_args(argv)

    from lockship.advisories import load_database  # noqa: PLC0415
    from lockship.audit import audit  # noqa: PLC0415
    from lockship.cache import Cache  # noqa: PLC0415
    from lockship.inventory import read_pins  # noqa: PLC0415

    scratch = Path(tempfile.mkdtemp(prefix="lockship-bench-audit-"))
    try:
        dbs = layouts(scratch)
        lock = scratch / "lock.txt"
        make_lock(dbs["YAML directory"], lock)
        boot = [startup() for _ in range(args.repeat)]
        rows, found = [], set()
        for label, db in dbs.items():
            cold, warm, inproc_load, inproc_match = [], [], [], []
            for attempt in range(args.repeat):
                cache = scratch / f"cache-{label[:4]}-{attempt}"
                seconds, document = run_audit(lock, db, cache)
                cold.append(seconds)
                seconds, document = run_audit(lock, db, cache)
                warm.append(seconds)
                found.add((len(document["findings"]), len({(f["name"], f["version"]) for f in document["findings"]})))
                start = time.perf_counter()
                database = load_database(db, Cache(cache))
                inproc_load.append(time.perf_counter() - start)
                pins = read_pins(lock)
                start = time.perf_counter()
                audit(pins, database)
                inproc_match.append(time.perf_counter() - start)
            rows.append([
                label, median(cold), median(warm),
                f"{statistics.median(warm) / statistics.median(boot):.1f}x",
                f"{statistics.median(inproc_load) * 1000:.0f} ms",
                f"{statistics.median(inproc_match) * 1000:.0f} ms",
            ])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (findings, releases), = found  # every layout and run found the same
    text = "\n".join([
        "# lockship audit: 300 packages against the whole PyPA advisory database",
        "",
        *machine_facts()[:4],  # date, machine, Python, lockship
        f"- command: `{command_line()}`",
        (f"- lock: {PACKAGES} projects the database names; {findings} advisories found in "
        f"{releases} of them (every layout agrees)"),
        (f"- database: 2,661 OSV records (tests/data/osv); medians of {args.repeat} runs, "
        "whole-process wall time"),
        f"- start-up baseline, `lockship --version`: {median(boot)}",
        "",
        markdown_table(
            ["database layout", "cold (index built)", "warm (index cached)", "warm / start-up",
             "index load, in process", "matching 300 packages, in process"],
            rows,
        ),
        "",
    ])
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
