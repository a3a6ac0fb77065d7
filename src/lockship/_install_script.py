"""Check and install a signed lockship bundle with nothing but Python 3.8+ and pip.

Run it from the bundle, on the offline machine, with no lockship installed::

    python3 install.py --allowed-signers FILE [--identity ID] [--venv DIR | --python PY]
    python3 install.py --allowed-signers FILE --verify-only

``allowed_signers`` must reach you from the reviewer through a separate channel,
never with the bundle: whoever could alter the bundle could alter a copy in it.

Before anything is installed, every problem is reported:
  * SHA256SUMS.sig must be an SSHSIG signature (namespace "lockship") over
    SHA256SUMS by a key allowed_signers lists (for --identity), checked like
    ``ssh-keygen -Y verify``;
  * every file SHA256SUMS lists has that sha256 and the size manifest.json
    gives, and the bundle holds no other file (links and special files refused);
  * manifest.json, bundle.json, SHA256SUMS and requirements.txt agree: every
    pin names exactly one wheel by its sha256, and every wheel is pinned;
  * the receiving interpreter has the bundle target's Python version,
    sys_platform and platform_machine, and each wheel has a tag that its pip
    accepts (``pip debug --verbose``).
Then ``pip install --no-index --find-links wheels --require-hashes -r requirements.txt``.

Exit codes (lockship's): 0 done, 2 bad command line, 3 unreadable or malformed
allowed_signers or --venv, 6 a file check failed, 7 the signature is missing,
invalid or not allowed, 12 the interpreter does not fit the bundle or pip failed.

This file is also the module ``lockship._install_script``: ``lockship verify``,
``sign`` and ``install`` run these same checks, so lockship and this script
cannot disagree about a bundle. ``lockship sign`` writes it into each bundle
with the standard-library SSHSIG verifier (``lockship/_sshsig_stdlib.py``) and
``pip_tags`` (``lockship/_probe.py``) pasted verbatim between the embed markers.
"""

import argparse
import collections
import concurrent.futures
import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

# lockship-embed-begin
from lockship._probe import pip_tags
from lockship._sshsig_stdlib import (
    SshsigError,
    _fingerprint,
    _parse_allowed_signers,
    _parse_signature,
    verify_sshsig,
)

# lockship-embed-end

NAMESPACE = "lockship"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
MANIFEST = "manifest.json"
RECORD = "bundle.json"
REQUIREMENTS = "requirements.txt"
INSTALL_DOC = "INSTALL.md"
INSTALL_SCRIPT = "install.py"
SBOM = "sbom.cdx.json"  # the dossier (lockship.dossier): checked like every other file here
AUDIT = "audit.json"
WHEEL_KINDS = ("wheel", "built-wheel")

EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_INTEGRITY = 6
EXIT_SIGNATURE = 7
EXIT_INCOMPATIBLE = 12

BLOCK = 128 * 1024
HASH_THREADS = min(8, (os.cpu_count() or 1) + 1)  # bounded: each holds one BLOCK
# Names lockship writes into a bundle: wheel file names, pylock.<target>.toml, ...
# Anything else (spaces, control characters, "..") is refused, never interpreted.
SAFE_PATH = re.compile(r"[A-Za-z0-9_+!-][A-Za-z0-9._+!-]*(/[A-Za-z0-9_+!-][A-Za-z0-9._+!-]*)*")
SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")  # GNU coreutils, text mode
# pip's req_file.COMMENT_RE; a pin is exactly what lockship fetch writes. "==" then
# no "=" or "*", so "===" (arbitrary equality) and "==1.*" (a range) are refused.
COMMENT = re.compile(r"(^|\s+)#.*$")
PIN = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==(?P<version>[A-Za-z0-9.!+_-]+)"
    r"\s+--hash=sha256:(?P<sha256>[0-9a-f]{64})"
)
# Run by the receiving interpreter: the marker values the target check compares.
FACTS = (
    "import json, platform, sys; print(json.dumps({"
    "'python_version': '.'.join(platform.python_version_tuple()[:2]), "
    "'sys_platform': sys.platform, 'platform_machine': platform.machine()}))"
)


class BundleCheck(NamedTuple):
    """What :func:`check_bundle` found: every problem, and the files that proved sound."""

    problems: List[str]
    verified: Dict[str, int]  # path -> size, for files whose sha256 and size matched


# ---------------------------------------------------------------------------
# Files


def read_bytes(path: str, limit: int = 64 * 1024 * 1024) -> bytes:
    """Read a small bundle file (not a wheel) without following a symbolic link.

    :raises OSError: also when it is larger than ``limit``: never a silent prefix.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
    return data


def read_text(root: str, name: str) -> str:
    """A bundle's requirement file; undecodable bytes become U+FFFD and fail as non-pins."""
    return read_bytes(os.path.join(root, name)).decode("utf-8", "replace")


def sha256_file(path: str) -> Tuple[str, int]:
    """Return (sha256 hex, size) of a file, read in blocks, without following a link."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def show(path: str) -> str:
    """A path for a one-line message: as is when it is a safe name, else quoted."""
    return path if SAFE_PATH.fullmatch(path) else repr(path)


def list_files(root: str) -> Tuple[List[str], List[str]]:
    """Every regular file under ``root`` as a sorted '/'-separated path, and the problems.

    Symbolic links, devices, FIFOs and sockets are problems, never followed.
    """
    files, problems = [], []  # type: List[str], List[str]

    def unreadable(exc: OSError) -> None:
        problems.append(f"{show(os.path.relpath(exc.filename or root, root))}: {exc.strerror}")

    for top, dirs, names in os.walk(root, onerror=unreadable):
        keep = []
        for name in sorted(dirs + names):
            path = os.path.join(top, name)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                keep.append(name)
            elif stat.S_ISREG(mode):
                files.append(relative)
            else:
                kind = "symbolic link" if stat.S_ISLNK(mode) else "special file"
                problems.append(f"{show(relative)}: {kind} refused")
        dirs[:] = keep
    return sorted(files), problems


def render_sums(digests: Dict[str, str]) -> str:
    """SHA256SUMS text: ``<sha256>  <path>`` per file, sorted by path (``sha256sum -c``)."""
    return "".join(f"{digests[path]}  {path}\n" for path in sorted(digests))


def read_sums(root: str, problems: List[str]) -> Optional[Dict[str, str]]:
    """Parse SHA256SUMS into {path: sha256}; None when it is missing or unreadable."""
    try:
        text = read_bytes(os.path.join(root, SUMS)).decode("utf-8")
    except FileNotFoundError:
        problems.append(f"{SUMS}: missing; is the bundle signed (lockship sign)?")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{SUMS}: unreadable: {exc}")
        return None
    sums = {}  # type: Dict[str, str]
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):
        match = SUMS_LINE.fullmatch(line)
        if match is None:
            problems.append(f"{SUMS}:{number}: malformed line {line[:80]!r}")
        elif not SAFE_PATH.fullmatch(match.group(2)) or match.group(2) in (SUMS, SIGNATURE):
            problems.append(f"{SUMS}:{number}: refusing path {match.group(2)!r}")
        elif match.group(2) in sums:
            problems.append(f"{SUMS}:{number}: {match.group(2)} is listed twice")
        else:
            sums[match.group(2)] = match.group(1)
    return sums


def load_json(root: str, name: str, problems: List[str]) -> Dict[str, Any]:
    """A bundle JSON document; {} (and a problem, unless it is missing) when unusable."""
    try:
        document = json.loads(read_bytes(os.path.join(root, name)).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        problems.append(f"{name}: unreadable: {exc}")
        return {}
    if not isinstance(document, dict):
        problems.append(f"{name}: not a JSON object")
        return {}
    return document


def index_files(document: Dict[str, Any], name: str, problems: List[str]) -> Dict[str, Any]:
    """The ``files`` list of manifest.json or bundle.json, by path, None values dropped."""
    found = {}  # type: Dict[str, Any]
    for position, entry in enumerate(document.get("files", [])):
        fields = entry if isinstance(entry, dict) else {}
        path, sha256, size = fields.get("path"), fields.get("sha256"), fields.get("size")
        if not (isinstance(path, str) and isinstance(sha256, str) and type(size) is int):
            problems.append(f"{name}: files[{position}] lacks a path, sha256 or size")
        elif path in found:
            problems.append(f"{name}: {show(path)} is listed twice")
        else:
            found[path] = {key: value for key, value in fields.items() if value is not None}
    return found


# ---------------------------------------------------------------------------
# Pins: requirements.txt read as pip reads it (req_file.join_lines, COMMENT_RE)


def canonical(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def logical_lines(text: str) -> Iterator[Tuple[int, str]]:
    """(first line number, text) of each logical line: a trailing backslash joins the
    next line, except on a comment line, exactly as pip's ``join_lines``."""
    start, parts = 0, []  # type: int, List[str]
    for number, line in enumerate(text.splitlines(), 1):
        comment = COMMENT.match(line) is not None
        if line.endswith("\\") and not comment:
            start = start if parts else number
            parts.append(line.strip("\\"))
        elif parts:
            yield start, "".join(parts) + (" " if comment else "") + line
            parts = []
        else:
            yield number, line
    if parts:
        yield start, "".join(parts)


def parse_pins(text: str, source: str, problems: List[str]) -> List[Tuple[str, str, str, str]]:
    """(where, name, version, sha256) per pin; any other content is a problem."""
    pins = []
    for number, line in logical_lines(text):
        content = COMMENT.sub("", line).strip()
        match = PIN.fullmatch(content)
        if match is not None:
            pins.append((f"{source}:{number}", match["name"], match["version"], match["sha256"]))
        elif content:
            problems.append(
                f"{source}:{number}: not a pin 'name==version --hash=sha256:<hex>': {content[:80]!r}"
            )
    return pins


def check_pins(
    requirements: Sequence[Tuple[str, str]], wheels: Dict[str, Tuple[str, str, str]]
) -> List[str]:
    """Problems between requirement files and the wheels they must install.

    :param requirements: (file name, text) of requirements.txt and any other lock
        pip is told to install from this bundle.
    :param wheels: path -> (sha256, name, version) of every wheel in wheels/.
    """
    problems = []  # type: List[str]
    by_hash = collections.defaultdict(list)  # type: Dict[str, List[str]]
    for path, (sha256, _, _) in wheels.items():
        by_hash[sha256].append(path)
    pinned = set()
    for source, text in requirements:
        seen = {}  # type: Dict[str, str]
        for where, name, version, sha256 in parse_pins(text, source, problems):
            label = f"{where}: {name}=={version}"
            if canonical(name) in seen:
                problems.append(f"{label}: pinned twice (also {seen[canonical(name)]})")
            seen[canonical(name)] = where
            paths = by_hash.get(sha256, [])
            if len(paths) != 1:
                count = "no file" if not paths else f"{len(paths)} files"
                problems.append(f"{label}: {count} in wheels/ with sha256 {sha256}")
                continue
            pinned.add(paths[0])
            _, wheel_name, wheel_version = wheels[paths[0]]
            if (canonical(wheel_name), wheel_version) != (canonical(name), version):
                problems.append(
                    f"{label}: the file with this hash, {paths[0]}, is "
                    f"{wheel_name} {wheel_version} per {MANIFEST}"
                )
    sources = " or ".join(source for source, _ in requirements)
    problems += [f"{path}: not pinned in {sources}" for path in sorted(set(wheels) - pinned)]
    return problems


# ---------------------------------------------------------------------------
# The whole bundle, except the signature


def check_bundle(root: str) -> BundleCheck:
    """Check a signed bundle's files against SHA256SUMS, manifest.json, bundle.json and
    the requirement files; collect every problem, each naming its file.

    A document is consulted only once its own sha256 matched: what a changed
    manifest.json says is never reported as further problems.
    """
    files, problems = list_files(root)
    sums = read_sums(root, problems)
    if sums is None:
        return BundleCheck(problems, {})
    on_disk = set(files)
    actual = {}  # type: Dict[str, Tuple[str, int]]
    # hashlib releases the GIL while it hashes a block: a few threads hash files at once.
    with concurrent.futures.ThreadPoolExecutor(HASH_THREADS) as pool:
        hashing = [
            (path, pool.submit(sha256_file, os.path.join(root, *path.split("/"))))
            for path in sorted(set(sums) & on_disk)
        ]
        for path, future in hashing:
            try:
                actual[path] = future.result()
            except OSError as exc:
                problems.append(f"{path}: unreadable: {exc.strerror}")
    verified = {path: size for path, (sha256, size) in actual.items() if sha256 == sums[path]}
    manifest = load_json(root, MANIFEST, problems) if MANIFEST in verified else {}
    record = load_json(root, RECORD, problems) if RECORD in verified else {}
    listed = index_files(manifest, MANIFEST, problems)
    recorded = index_files(record, RECORD, problems)

    # Every listed file is there with its sha256 and size; nothing else is.
    for path, expected in sorted(sums.items()):
        if path not in on_disk:
            problems.append(f"{path}: missing (listed in {SUMS})")
        if path not in actual:
            continue
        sha256, size = actual[path]
        want = listed.get(path, {}).get("size")
        faults = (
            [f"size {size} bytes, expected {want} ({MANIFEST})"] if want not in (None, size) else []
        )
        if sha256 != expected:
            faults.append(f"sha256 {sha256}, expected {expected} ({SUMS})")
        if faults:
            verified.pop(path, None)
            problems.append(f"{path}: {'; '.join(faults)}")
    problems += [
        f"{show(path)}: not listed in {SUMS} (extra file)"
        for path in files
        if path not in sums and path not in (SUMS, SIGNATURE)
    ]

    # The documents agree with each other.
    lock_file, self_requirements = record.get("lock_file"), record.get("self_requirements")
    required = [MANIFEST, RECORD, REQUIREMENTS, INSTALL_DOC, INSTALL_SCRIPT, lock_file]
    for name in [*required, self_requirements]:
        if name is not None and (not isinstance(name, str) or name not in sums):
            problems.append(f"{show(str(name))}: not listed in {SUMS}")
    if not (manifest and record):
        return BundleCheck(problems, verified)
    for path in sorted((set(sums) | set(listed)) - {MANIFEST}):
        if path not in listed:
            problems.append(f"{path}: listed in {SUMS} but not in {MANIFEST}")
        elif path not in sums:
            problems.append(f"{show(path)}: listed in {MANIFEST} but not in {SUMS}")
        elif listed[path]["sha256"] != sums[path]:
            problems.append(f"{path}: {MANIFEST} and {SUMS} give different sha256")
    if manifest.get("lock_fingerprint") != record.get("lock_fingerprint"):
        problems.append(f"{MANIFEST}: lock_fingerprint differs from {RECORD}")
    wheels = {}  # type: Dict[str, Tuple[str, str, str]]
    for path, entry in sorted(listed.items()):
        if entry.get("kind") in WHEEL_KINDS or path.startswith("wheels/"):
            if recorded.get(path) != entry:
                problems.append(f"{show(path)}: {MANIFEST} and {RECORD} describe it differently")
            elif not (
                path.startswith("wheels/") and path.endswith(".whl") and path.count("/") == 1
            ):
                problems.append(f"{show(path)}: a wheel must be a wheels/*.whl file")
            else:
                wheels[path] = (entry["sha256"], str(entry.get("name")), str(entry.get("version")))
    problems += [
        f"{show(path)}: listed in {RECORD} but not in {MANIFEST}"
        for path in sorted(set(recorded) - set(listed))
    ]

    # Pins are read only from requirement files that proved sound; a changed one
    # has been reported above.
    sources = [name for name in (REQUIREMENTS, self_requirements) if isinstance(name, str)]
    if all(name in verified for name in sources):
        requirements = [(name, read_text(root, name)) for name in sources]
        problems += check_pins(requirements, wheels)
    return BundleCheck(problems, verified)


def pinned_hashes(root: str) -> List[str]:
    """The sha256 of each wheel requirements.txt installs (of a verified bundle)."""
    return [
        sha256 for _, _, _, sha256 in parse_pins(read_text(root, REQUIREMENTS), REQUIREMENTS, [])
    ]


# ---------------------------------------------------------------------------
# The receiving interpreter


def wheel_tags(path: str) -> List[str]:
    """The tags a wheel file name declares (``py2.py3-none-any`` -> two tags)."""
    parts = path.rsplit("/", 1)[-1][: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return []
    python, abi, platform = parts[-3:]
    return [
        f"{x}-{y}-{z}"
        for x in python.split(".")
        for y in abi.split(".")
        for z in platform.split(".")
    ]


def env_mismatch(
    target: str, target_env: Dict[str, str], env: Dict[str, str], python: str
) -> Optional[str]:
    """The first marker the interpreter has different from the bundle's target, described."""
    for key in ("python_version", "sys_platform", "platform_machine"):
        if env.get(key) != target_env.get(key):
            return (
                f"{python} has {key} {env.get(key)!r}, but the bundle is for target "
                f"{target} with {key} {target_env.get(key)!r}"
            )
    return None


def tag_mismatch(tags: Sequence[str], wheels: Sequence[str], python: str) -> Optional[str]:
    """The first wheel none of whose tags the interpreter's pip accepts, described."""
    if not tags:
        return f"{python}: no wheel tags from `{python} -m pip debug --verbose`; is pip installed?"
    supported = set(tags)
    for path in wheels:
        if not supported.intersection(wheel_tags(path)):
            return (
                f"{path}: no tag of this wheel fits {python}, "
                f"whose best tags are {', '.join(tags[:3])}"
            )
    return None


def venv_python(venv: str) -> str:
    return (
        os.path.join(venv, "Scripts", "python.exe")
        if os.name == "nt"
        else os.path.join(venv, "bin", "python")
    )


def create_venv(base: str, venv: str) -> Optional[str]:
    """Run ``base -m venv venv``; return pip-style last lines of output on failure."""
    proc = subprocess.run(
        [base, "-m", "venv", venv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if proc.returncode == 0:
        return None
    return f"`{base} -m venv {venv}` failed: {' '.join(proc.stdout.strip().splitlines()[-2:])}"


def pip_install(python: str, root: str, echo: Callable[[str], None]) -> Tuple[int, List[str]]:
    """Install the bundle's requirements.txt with ``python -m pip``, from wheels/ only.

    Only flags pip 20.3 (Debian 11) knows. pip re-checks every hash itself.
    :returns: pip's exit status and its last lines of output.
    """
    command = [
        python, "-m", "pip", "install", "--no-index",
        "--find-links", os.path.join(root, "wheels"), "--require-hashes",
        "--disable-pip-version-check", "--no-input",
        "-r", os.path.join(root, REQUIREMENTS),
    ]  # fmt: skip
    tail = collections.deque(maxlen=10)  # type: collections.deque[str]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        encoding="utf-8",
        errors="replace",  # a stray byte in pip's output must not abort the install
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line.rstrip("\n"))
            tail.append(line.rstrip("\n"))
    return proc.returncode, list(tail)


# ---------------------------------------------------------------------------
# Command line (install.py only; lockship has its own)


class Failure(Exception):
    """Stop with an exit code and one line per problem."""

    def __init__(self, code: int, lines: List[str]) -> None:
        super().__init__(lines[0])
        self.code, self.lines = code, lines


def check_signature(root: str, allowed: str, source: str, identity: Optional[str]) -> str:
    """Verify SHA256SUMS.sig like ``ssh-keygen -Y verify``; return 'principal (key ...)'."""
    try:
        signature = read_bytes(os.path.join(root, SIGNATURE)).decode("utf-8", "replace")
    except FileNotFoundError:
        raise SshsigError("missing; the bundle is not signed (lockship sign)") from None
    except OSError as exc:
        raise SshsigError(f"unreadable: {exc.strerror}") from None
    try:
        sums = read_bytes(os.path.join(root, SUMS))
    except OSError as exc:
        raise SshsigError(f"cannot be checked: {SUMS}: {exc.strerror}") from None
    principal = verify_sshsig(sums, signature, allowed, identity, NAMESPACE, source=source)
    return f"{principal} (key {_fingerprint(_parse_signature(signature)[0])})"


def receiving_env(python: str) -> Dict[str, str]:
    try:
        proc = subprocess.run(
            [python, "-I", "-c", FACTS],
            stdout=subprocess.PIPE,
            universal_newlines=True,
            check=False,
        )
    except OSError as exc:
        raise Failure(EXIT_INCOMPATIBLE, [f"{python}: cannot run: {exc.strerror}"]) from None
    if proc.returncode != 0:
        raise Failure(EXIT_INCOMPATIBLE, [f"{python}: cannot run this interpreter"])
    return {str(key): str(value) for key, value in json.loads(proc.stdout).items()}


def install(root: str, args: argparse.Namespace) -> None:
    record = load_json(root, RECORD, [])
    target, target_env = record["target"]["name"], record["target"]["marker_environment"]
    python = args.python or sys.executable
    if args.venv and not os.path.exists(args.venv):
        problem = env_mismatch(target, target_env, receiving_env(python), python)
        problem = problem or create_venv(python, args.venv)
        if problem:
            raise Failure(EXIT_INCOMPATIBLE, [problem])
        print(f"created virtual environment {args.venv}", flush=True)
    if args.venv:
        python = venv_python(args.venv)
        if not os.path.isfile(os.path.join(args.venv, "pyvenv.cfg")):
            raise Failure(EXIT_INPUT, [f"{args.venv}: not a virtual environment (no pyvenv.cfg)"])
    hashes = pinned_hashes(root)
    wheels = sorted(entry["path"] for entry in record["files"] if entry["sha256"] in hashes)
    problem = env_mismatch(target, target_env, receiving_env(python), python)
    problem = problem or tag_mismatch(pip_tags(python)[0], wheels, python)
    if problem:
        raise Failure(EXIT_INCOMPATIBLE, [problem])
    status, tail = pip_install(python, root, lambda line: print(line, flush=True))
    if status != 0:
        raise Failure(EXIT_INCOMPATIBLE, [f"pip install failed (exit status {status}):", *tail])
    print(f"installed {len(wheels)} packages for {target} into {python}")


def run(args: argparse.Namespace) -> None:
    root = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(args.allowed_signers, "rb") as handle:  # may well be a link: the user's file
            allowed = handle.read().decode("utf-8")
        _parse_allowed_signers(allowed, args.allowed_signers)
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(EXIT_INPUT, [f"{args.allowed_signers}: cannot read: {exc}"]) from None
    except SshsigError as exc:
        raise Failure(EXIT_INPUT, [str(exc)]) from None
    check = check_bundle(root)
    try:
        signer = check_signature(root, allowed, args.allowed_signers, args.identity)
    except SshsigError as exc:
        raise Failure(EXIT_SIGNATURE, [f"{SIGNATURE}: {exc}", *check.problems]) from None
    if check.problems:
        raise Failure(EXIT_INTEGRITY, [f"{len(check.problems)} problem(s) found", *check.problems])
    print(f"verified {len(check.verified)} files, signed by {signer}", flush=True)
    if not args.verify_only:
        install(root, args)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install.py", description="Verify this lockship bundle, then pip install it."
    )
    parser.add_argument(
        "--allowed-signers",
        required=True,
        metavar="FILE",
        help="the reviewer's allowed_signers file (never one from the bundle)",
    )
    parser.add_argument(
        "--identity", metavar="ID", help="principal the signer must be listed as (default: any)"
    )
    parser.add_argument(
        "--venv", metavar="DIR", help="install into this virtual environment; created if missing"
    )
    parser.add_argument(
        "--python",
        metavar="PY",
        help="interpreter to install into, or to create --venv with "
        "(default: the one running this script)",
    )
    parser.add_argument("--verify-only", action="store_true", help="check, install nothing")
    try:
        run(parser.parse_args(argv))
    except Failure as exc:
        print(f"install.py: error: {exc.lines[0]}", file=sys.stderr)
        for line in exc.lines[1:]:
            print(f"  {line}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
