"""Peak RSS of lock, fetch, sign, verify and install for a bundle with one huge wheel.

tensorflow (benchmarks/sets/memory.in) is the hard case: its ~620 MB wheel
keeps ``*.dist-info/METADATA`` near the *start* of the file, so a zip reader
that reads from the end towards the member reads the whole wheel. The set is
locked for linux-cp311 (``--glibc 2.28 --only-binary :all:``) with a fresh
cache (so lock reads every METADATA by HTTP range requests: this index serves
no PEP 658 files), fetched into a cache kept in ``.bench/memory/cache`` (the
first run downloads ~700 MB once; later runs fill the bundle from it), signed
with a throwaway Ed25519 key, verified, and installed into a fresh venv. pip
installing the same requirements.txt from the same wheels into another fresh
venv is the reference.

With ``--baseline REV`` (default: the commit this branch started from,
``git merge-base HEAD main``) the same lockship commands also run with that
revision's ``src/`` first on PYTHONPATH, in the same run, interleaved.

Peak RSS is the largest resident set of the command's process tree
(``getrusage(RUSAGE_CHILDREN)`` in a small wrapper process: the largest
process, not the sum).

Usage: .venv/bin/python benchmarks/bench_memory.py [--no-baseline] [--baseline REV]
Standard library only; writes benchmarks/RESULTS-memory.md (``--output``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from bench_lock import (
    HERE,
    ROOT,
    SETS,
    clean_env,
    command_line,
    machine_facts,
    markdown_table,
    timed,
)

TARGET = "linux-cp311"
LIMIT_MIB = 150
WORK = ROOT / ".bench" / "memory"


def lockship(source: Path | None) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run lockship (from ``source``, if given)."""
    env = clean_env()
    # This machine sets PYTHONDONTWRITEBYTECODE; an installed lockship has its .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return [sys.executable, "-m", "lockship"], env


def make_key(directory: Path) -> tuple[Path, Path]:
    """A throwaway Ed25519 key and the allowed_signers file that accepts it as ``bench``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)],
            check=True,
        )
    public = (directory / "id_ed25519.pub").read_text().split()
    signers = directory / "allowed_signers"
    signers.write_text(f'bench namespaces="lockship" {public[0]} {public[1]}\n')
    return key, signers


def bundle_steps(
    work: Path, cache: Path, key: Path, signers: Path, *, source: Path | None
) -> list[tuple[str, list[str], Path, dict[str, str]]]:
    """(step, command, cwd, env) for lock, fetch, sign, verify, install of ``work``'s
    project (see :func:`prepare`)."""
    prefix, env = lockship(source)
    project = work / "project"
    dest = work / "bundle"
    return [
        ("lock", [*prefix, "lock", "-q", "--no-pip-config", "--cache-dir", str(work / "lock-cache"),
                  "-r", "requirements.in", "--target", TARGET, "--glibc", "2.28",
                  "--only-binary", ":all:"], project, env),
        ("fetch", [*prefix, "fetch", "-q", "--no-pip-config", "--target", TARGET, "--glibc", "2.28",
                   "--lock", f"locks/pylock.{TARGET}.toml", "--cache-dir", str(cache),
                   "--dest", str(dest)], project, env),
        ("sign", [*prefix, "sign", "-q", str(dest), "--key", str(key), "--identity", "bench",
                  "--cache-dir", str(cache)], project, env),
        ("verify", [*prefix, "verify", str(dest), "--allowed-signers", str(signers),
                    "--identity", "bench"], project, env),
        ("install", [*prefix, "install", str(dest), "--venv", str(work / "venv"),
                     "--allowed-signers", str(signers), "--identity", "bench"], project, env),
    ]  # fmt: skip


def prepare(set_path: Path, work: Path) -> None:
    """A fresh project with the set as requirements.in; no lock cache, bundle or venv."""
    if work.exists():
        shutil.rmtree(work)
    (work / "project").mkdir(parents=True)
    shutil.copyfile(set_path, work / "project" / "requirements.in")


def pip_install(bundle: Path, venv: Path) -> tuple[list[str], dict[str, str]]:
    """pip installing the bundle's requirements.txt from its wheels (as lockship runs pip)."""
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    return [python, "-m", "pip", "install", "-q", "--no-index", "--find-links",
            str(bundle / "wheels"), "--require-hashes", "--disable-pip-version-check",
            "--no-input", "-r", str(bundle / "requirements.txt")], clean_env()  # fmt: skip


def baseline_revision(revision: str | None = None) -> str:
    """``revision``, or the commit this branch started from."""
    return revision or subprocess.run(
        ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def baseline_source(revision: str | None = None) -> Path:
    """The ``src`` directory of ``revision`` (default: the merge-base with main), extracted."""
    baseline = WORK.parent / "baseline"
    if baseline.exists():
        shutil.rmtree(baseline)
    baseline.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", baseline_revision(revision), "src"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
    return baseline / "src"


def largest_wheel(bundle: Path) -> tuple[str, int]:
    wheels = sorted((p.stat().st_size, p.name) for p in (bundle / "wheels").iterdir())
    size, name = wheels[-1]
    return name, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default=str(SETS / "memory.in"))
    parser.add_argument("--baseline", default=None, help="git revision to compare (default: merge-base with main)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--output", default=str(HERE / "RESULTS-memory.md"))
    args = parser.parse_args(argv)
    set_path = Path(args.set)
    cache = WORK / "cache"  # kept between runs: the wheels are downloaded once
    key, signers = make_key(WORK / "key")
    sources: dict[str, Path | None] = {"this branch": None}
    if not args.no_baseline:
        sources[f"baseline {baseline_revision(args.baseline)[:10]}"] = baseline_source(args.baseline)
    facts = machine_facts()
    results: dict[str, dict[str, tuple[float, int]]] = {}
    bundle_info = ("?", 0)
    for label, source in sources.items():
        work = WORK / ("run-" + ("branch" if source is None else "baseline"))
        prepare(set_path, work)
        results[label] = {}
        for step, command, cwd, env in bundle_steps(work, cache, key, signers, source=source):
            seconds, peak, _ = timed(command, cwd=cwd, env=env, rss=True)
            results[label][step] = (seconds, peak or 0)
            print(f"{label:>22} {step:<8} {seconds:7.1f} s {(peak or 0) / 1024:8.0f} MiB", flush=True)
        bundle_info = largest_wheel(work / "bundle")
    bundle = WORK / "run-branch" / "bundle"
    command, env = pip_install(bundle, WORK / "pip-venv")
    seconds, peak, _ = timed(command, cwd=WORK, env=env, rss=True)
    results["pip"] = {"install": (seconds, peak or 0)}
    print(f"{'pip':>22} install  {seconds:7.1f} s {(peak or 0) / 1024:8.0f} MiB", flush=True)
    write_results(
        Path(args.output), facts, results, bundle=bundle, largest=bundle_info, set_path=set_path
    )
    return 0


def write_results(
    output: Path,
    facts: list[str],
    results: dict[str, dict[str, tuple[float, int]]],
    *,
    bundle: Path,
    largest: tuple[str, int],
    set_path: Path,
) -> None:
    wheels = list((bundle / "wheels").iterdir())
    total = sum(p.stat().st_size for p in wheels)
    steps = ["lock", "fetch", "sign", "verify", "install"]
    header = ["step", *[f"{label} peak RSS (MiB)" for label in results if label != "pip"],
              "pip peak RSS (MiB)", "this branch wall (s)"]  # fmt: skip
    rows = []
    for step in steps:
        row = [step]
        row += [f"{results[label][step][1] / 1024:.0f}" for label in results if label != "pip"]
        row.append(f"{results['pip']['install'][1] / 1024:.0f}" if step == "install" else "")
        row.append(f"{results['this branch'][step][0]:.1f}")
        rows.append(row)
    worst = max(results["this branch"][s][1] for s in steps) / 1024
    lines = [
        "# Memory benchmark",
        "",
        f"Produced by `{command_line()}` (one run; peak RSS of the command's largest process).",
        "",
        *facts,
        (f"- set: `{set_path.relative_to(ROOT)}`: {len(wheels)} wheels, {total / 2**20:.0f} MiB; "
        f"largest `{largest[0]}` ({largest[1] / 2**20:.0f} MiB), METADATA near its start"),
        "",
        ("Steps (lockship as `python -m lockship`, with PYTHONPATH set to the baseline's `src` "
        "for the baseline column): `lock --cache-dir FRESH -r requirements.in --target "
        f"{TARGET} --glibc 2.28 --only-binary :all:`, `fetch --lock locks/pylock.{TARGET}.toml "
        "--cache-dir CACHE --dest BUNDLE` (CACHE filled by the first run), `sign BUNDLE --key KEY`, "
        "`verify BUNDLE --allowed-signers ...`, `install BUNDLE --venv FRESH_VENV ...`; "
        "pip: `FRESH_VENV/bin/python -m pip install --no-index --find-links BUNDLE/wheels "
        "--require-hashes -r BUNDLE/requirements.txt` (what `lockship install` runs)."),
        "",
        markdown_table(header, rows),
        "",
        (f"Largest peak of this branch: {worst:.0f} MiB (goal: under {LIMIT_MIB} MiB). "
        "The install row is the largest process of the tree, pip's included."),
        "",
    ]
    output.write_text("\n".join(lines))
    print(f"wrote {output}")


if __name__ == "__main__":
    sys.exit(main())
