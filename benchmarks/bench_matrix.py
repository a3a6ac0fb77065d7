"""25 targets (5 Pythons x 5 platforms) in one lockship run, against a loop of
``uv pip compile`` and a loop of ``pip download --platform ... --only-binary :all:``.

lockship locks every target in one process (one session: one HTTP client,
cache, index client and metadata memo); uv and pip need one invocation per
target. All three start from an empty cache (cold) and then run again with it
(warm; lockship re-resolves: ``--upgrade``, so it does not just keep its locks).

Platforms: linux (manylinux_2_28 x86_64), linux_aarch64, windows (amd64),
macos_arm64 and macos_x86_64 (macOS 13); Pythons 3.9 to 3.13.

Usage: .venv/bin/python benchmarks/bench_matrix.py [--set medium] [--skip pip]
Standard library only; writes benchmarks/RESULTS-matrix.md.
"""

from __future__ import annotations

import argparse
import shutil
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
    machine_facts,
    markdown_table,
    timed,
)

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
# lockship platform -> (uv --python-platform, pip --platform values)
PLATFORMS = {
    "linux": ("x86_64-manylinux_2_28", ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]),
    "linux_aarch64": ("aarch64-manylinux_2_28", ["manylinux_2_28_aarch64", "manylinux2014_aarch64"]),
    "windows": ("x86_64-pc-windows-msvc", ["win_amd64"]),
    "macos_arm64": ("aarch64-apple-darwin", ["macosx_13_0_arm64", "macosx_11_0_arm64"]),
    "macos_x86_64": ("x86_64-apple-darwin", ["macosx_13_0_x86_64", "macosx_10_9_x86_64"]),
}


def targets() -> list[tuple[str, str, str]]:
    """(lockship target, uv platform, python) for the 25 targets."""
    return [
        (f"{plat}-cp{py.replace('.', '')}", PLATFORMS[plat][0], py)
        for plat in PLATFORMS for py in PYTHONS
    ]


def run_lockship(project: Path, cache: Path, *, warm: bool) -> float:
    args = [sys.executable, "-m", "lockship", "lock", "-q", "--no-pip-config",
            "--cache-dir", str(cache), "-r", "requirements.in", "--glibc", "2.28",
            "--only-binary", ":all:"]
    for target, _, _ in targets():
        args += ["--target", target]
    if warm:
        args.append("--upgrade")
    seconds, _, _ = timed(args, cwd=project, env=clean_env())
    return seconds


def run_uv(project: Path, cache: Path) -> float:
    total = 0.0
    for target, platform, python in targets():
        seconds, _, _ = timed(
            [str(BIN / "uv"), "pip", "compile", "-q", "--no-config", "--cache-dir", str(cache),
             "--python-platform", platform, "--python-version", python, "--only-binary", ":all:",
             "-o", f"uv-{target}.txt", "requirements.in"],
            cwd=project, env=clean_env(),
        )
        total += seconds
    return total


def run_pip(project: Path, cache: Path) -> float:
    total = 0.0
    for target, _, python in targets():
        plat = target.split("-")[0]
        platform_args = [a for p in PLATFORMS[plat][1] for a in ("--platform", p)]
        dest = project / "pip" / target
        seconds, _, _ = timed(
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:",
             *platform_args, "--python-version", python, "--implementation", "cp",
             "-d", str(dest), "-r", "requirements.in"],
            cwd=project, env=clean_env(PIP_CACHE_DIR=str(cache)),
        )
        total += seconds
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="medium")
    parser.add_argument("--skip", action="append", default=[], choices=("lockship", "uv", "pip"))
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-matrix.md")
    args = parser.parse_args(argv)
    facts = machine_facts()
    print("\n".join(facts), flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    runners = {
        "lockship": lambda p, c, *, warm: run_lockship(p, c, warm=warm),
        "uv": lambda p, c, *, warm: run_uv(p, c),  # noqa: ARG005, PLW0108 - same signature
        "pip": lambda p, c, *, warm: run_pip(p, c),  # noqa: ARG005, PLW0108
    }
    results: dict[str, tuple[float, float]] = {}
    try:
        for tool, runner in runners.items():
            if tool in args.skip:
                continue
            project = scratch / tool
            project.mkdir()
            shutil.copyfile(SETS / f"{args.set}.in", project / "requirements.in")
            cache = scratch / f"cache-{tool}"
            cold = runner(project, cache, warm=False)
            warm = runner(project, cache, warm=True)
            results[tool] = (cold, warm)
            print(f"{tool:<9} cold {cold:7.2f} s  warm {warm:7.2f} s", flush=True)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = results.get("lockship")
    rows = [
        [tool, f"{cold:.2f}", f"{warm:.2f}",
         f"{cold / base[0]:.1f}x" if base else "", f"{warm / base[1]:.1f}x" if base else ""]
        for tool, (cold, warm) in results.items()
    ]
    table = markdown_table(
        ["tool", "cold, 25 targets (s)", "warm, 25 targets (s)", "cold ÷ lockship",
         "warm ÷ lockship"], rows,
    )
    report = "\n".join([
        "# Matrix benchmark: 25 targets in one run", "",
        (f"Produced by `{command_line()}`; set `benchmarks/sets/{args.set}.in`, "
        f"targets {', '.join(t for t, _, _ in targets())}; every tool with --only-binary :all:. "
        "lockship: one `lockship lock` with 25 `--target`s; uv: 25 `uv pip compile` runs "
        "(--python-platform/--python-version); pip: 25 `pip download --platform ... "
        "--python-version ... --only-binary :all:` runs (pip also downloads the wheels)."), "",
        *facts, "", table, "",
    ])
    print()
    print(table)
    args.output.write_text(report, encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
