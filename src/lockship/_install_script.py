"""Check and install a signed lockship bundle with nothing but Python 3.8+ and pip.

Run it on the offline machine, with no lockship installed; best the copy from
the reviewer's trust kit (``lockship trust-kit``), never the bundle's own::

    python3 -I install.py --bundle DIR --allowed-signers FILE [--identity ID] [--venv DIR]
    python3 -I install.py --bundle DIR --allowed-signers FILE --verify-only

Started without ``-I`` it drops its own directory from sys.path and starts
again isolated before importing anything, so no file planted beside it runs.

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
The signature is checked first: nothing else is parsed before it holds. Then
``python -I -m pip install --isolated --no-index --find-links wheels
--require-hashes -r requirements.txt`` in an empty directory, with no PIP_* or
PYTHON* variables and no pip configuration file; afterwards the interpreter
must hold exactly the pinned versions, each matching its RECORD, before it says
"installed". ``--venv`` records what it installed in lockship-installed.json
there and refuses an expired bundle, or an older one of the same series and
signer, unless ``--allow-rollback``.

``--installer uv`` runs, instead of pip, the uv program of the uv wheel the
bundle pins (copied into a private temporary directory): ``uv pip install
--offline --no-index --no-config --no-cache --no-build --require-hashes``, with
no UV_* variables either; the same checks come before and after.

Exit codes (lockship's): 0 done, 2 bad command line, 3 unreadable or malformed
allowed_signers or --venv, or --installer uv without a uv wheel, 6 a file check
failed (or the installer installed something else), 7 the signature is
missing, invalid or not allowed, or --identity is needed, 12 the interpreter
does not fit the bundle or the installer failed, 14 the bundle expired or is
older than the one installed.

This file is also the module ``lockship._install_script``: ``lockship verify``,
``sign`` and ``install`` run these same checks, so lockship and this script
cannot disagree about a bundle. ``lockship sign`` writes it into each bundle
with the standard-library SSHSIG verifier (``lockship/_sshsig_stdlib.py``) and
``pip_tags`` (``lockship/_probe.py``) pasted verbatim between the embed markers.
"""

import sys

if __name__ == "__main__" and not sys.flags.isolated:
    # `python3 install.py` puts this script's directory first on sys.path, so a
    # planted argparse.py or json.py beside it would run before any check. Drop
    # that entry before importing anything, then start again isolated (-I: no
    # script directory, no PYTHON* variables, no user site-packages).
    if sys.path and sys.path[0] != "":
        del sys.path[0]
    import os

    if os.name == "posix":
        os.execv(sys.executable, [sys.executable, "-I", *sys.argv])

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
import tempfile
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

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
EXIT_FRESHNESS = 14

INSTALLED = "lockship-installed.json"  # in the venv: what was last installed there
MAX_DEPTH = 8  # directories below a bundle's top (lockship makes one: wheels/)
MAX_ENTRIES = 20000  # files and directories in a bundle
MAX_JSON_DEPTH = 64  # nesting of manifest.json / bundle.json (lockship writes 6)

BLOCK = 128 * 1024
# Names lockship writes into a bundle: wheel file names, pylock.<target>.toml, ...
# Anything else (spaces, control characters, "..") is refused, never interpreted.
SAFE_PATH = re.compile(r"[A-Za-z0-9_+!-][A-Za-z0-9._+!-]*(/[A-Za-z0-9_+!-][A-Za-z0-9._+!-]*)*")
JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")  # GNU coreutils, text mode
# pip's req_file.COMMENT_RE; a pin is exactly what lockship fetch writes. "==" then
# no "=" or "*", so "===" (arbitrary equality) and "==1.*" (a range) are refused.
# Searched, never matched with a leading \s+: "(^|\s+)#" retried at every
# position of a long run of spaces is quadratic.
COMMENT_START = re.compile(r"\s#")
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


def hash_files(
    root: str, paths: Sequence[str]
) -> Iterator[Tuple[str, Union[Tuple[str, int], OSError]]]:
    """(path, (sha256, size) or the OSError) per path, in order, hashed on a few threads.

    hashlib releases the GIL while hashing a block, so threads use several cores.
    """

    def one(path: str) -> Union[Tuple[str, int], OSError]:
        try:
            return sha256_file(os.path.join(root, *path.split("/")))
        except OSError as exc:
            return exc

    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        yield from zip(paths, pool.map(one, paths))


def show(path: str) -> str:
    """A path for a one-line message: as is when it is a safe name, else quoted."""
    return path if SAFE_PATH.fullmatch(path) else repr(path)


def list_files(root: str) -> Tuple[List[str], List[str]]:
    """Every regular file under ``root`` as a sorted '/'-separated path, and the problems.

    Symbolic links, devices, FIFOs and sockets are problems, never followed. The
    walk is iterative, does not enter a directory more than MAX_DEPTH levels down
    and stops after MAX_ENTRIES entries: a bundle of 1,500 nested directories, or
    of a million files, is a problem to report, not a RecursionError or an hour.
    """
    files, problems = [], []  # type: List[str], List[str]
    pending = [("", 0)]  # type: List[Tuple[str, int]]
    count = 0
    while pending:
        relative_dir, depth = pending.pop()
        try:
            with os.scandir(os.path.join(root, relative_dir)) as entries:
                found = sorted((entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in entries)
        except OSError as exc:
            problems.append(f"{show(relative_dir or '.')}: {exc.strerror}")
            continue
        count += len(found)
        if count > MAX_ENTRIES:
            problems.append(f"more than {MAX_ENTRIES} files and directories: not a bundle")
            break
        for name, mode in found:
            relative = f"{relative_dir}/{name}" if relative_dir else name
            if stat.S_ISDIR(mode):
                if depth + 1 > MAX_DEPTH:
                    shown = show(relative[:200]) + ("..." if len(relative) > 200 else "")
                    problems.append(f"{shown}: nested deeper than {MAX_DEPTH} directories")
                else:
                    pending.append((relative, depth + 1))
            elif stat.S_ISREG(mode):
                files.append(relative)
            else:
                kind = "symbolic link" if stat.S_ISLNK(mode) else "special file"
                problems.append(f"{show(relative)}: {kind} refused")
    return sorted(files), sorted(problems)


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (strings skipped), in one pass."""
    depth = deepest = 0
    for found in JSON_BRACKETS.finditer(text):
        bracket = found.group()
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in "]}":
            depth -= 1
    return deepest


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
        text = read_bytes(os.path.join(root, name)).decode("utf-8")
        if json_depth(text) > MAX_JSON_DEPTH:
            problems.append(f"{name}: nested deeper than {MAX_JSON_DEPTH} levels")
            return {}
        document = json.loads(text)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
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
        comment = line.lstrip().startswith("#")
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


def strip_comment(line: str) -> str:
    """``line`` without its comment: pip's ``COMMENT_RE`` (``(^|\\s+)#.*$``), in linear time."""
    if line.startswith("#"):
        return ""
    found = COMMENT_START.search(line)
    return line if found is None else line[: found.start()]


def parse_pins(text: str, source: str, problems: List[str]) -> List[Tuple[str, str, str, str]]:
    """(where, name, version, sha256) per pin; any other content is a problem."""
    pins = []
    for number, line in logical_lines(text):
        content = strip_comment(line).strip()
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
    for path, result in hash_files(root, sorted(set(sums) & on_disk)):
        if isinstance(result, OSError):
            problems.append(f"{path}: unreadable: {result.strerror}")
        else:
            actual[path] = result
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


def clean_env() -> Dict[str, str]:
    """The environment for pip, uv and venv: the caller's, without PIP_*, UV_* and PYTHON*.

    PIP_TARGET, PIP_FIND_LINKS, PIP_CONSTRAINT, UV_FIND_LINKS, UV_CONSTRAINT,
    PYTHONPATH and the like would change what is installed or where.
    ``PIP_CONFIG_FILE`` set to the null device makes pip skip every configuration
    file, the global one included (``--isolated`` only skips the user's), and
    PYTHONNOUSERSITE keeps user site-packages out.
    """
    scrubbed = ("PIP_", "UV_", "PYTHON")
    env = {key: value for key, value in os.environ.items() if not key.startswith(scrubbed)}
    env.update(PIP_CONFIG_FILE=os.devnull, PYTHONNOUSERSITE="1")
    return env


def run_isolated(command: List[str], echo: Callable[[str], None]) -> Tuple[int, List[str]]:
    """Run ``command`` with :func:`clean_env` in an empty directory, never the bundle:
    ``python -m`` would import a planted ``pip/`` or ``venv/`` from the current directory.

    :returns: the exit status and the last lines of output.
    """
    tail = collections.deque(maxlen=10)  # type: collections.deque[str]
    if os.sep in command[0]:  # a relative interpreter path would start from the empty cwd
        command = [os.path.abspath(command[0]), *command[1:]]
    with tempfile.TemporaryDirectory(prefix="lockship-cwd-") as empty:
        try:
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                encoding="utf-8",
                errors="replace",  # a stray byte in the output must not abort the install
                cwd=empty,
                env=clean_env(),
            )
        except OSError as exc:
            return 127, [f"{command[0]}: {exc.strerror}"]
        with proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                echo(line.rstrip("\n"))
                tail.append(line.rstrip("\n"))
    return proc.returncode, list(tail)


def pinned_wheel(root: str, name: str) -> Optional[str]:
    """The wheel requirements.txt pins for ``name`` (a verified bundle's), or None."""
    for _, pin, _, sha256 in parse_pins(read_text(root, REQUIREMENTS), REQUIREMENTS, []):
        if canonical(pin) == name:
            record = load_json(root, RECORD, [])
            for entry in record.get("files", []):
                if entry.get("sha256") == sha256:
                    return os.path.join(root, *str(entry["path"]).split("/"))
    return None


def create_venv(base: str, venv: str, wheel: Optional[str] = None) -> Optional[str]:
    """Create ``venv`` with ``base -I -m venv``; return the failure, described, or None.

    With ``wheel`` (the bundle's pip), no ensurepip: ``--without-pip``, then pip
    installs itself from that wheel, so a Python without python3-pip or
    ensurepip (Debian's python3 alone) will do.
    """
    venv = os.path.abspath(venv)  # run_isolated runs it from an empty directory
    wheel = os.path.abspath(wheel) if wheel else None
    command = [base, "-I", "-m", "venv", *(["--without-pip"] if wheel else []), venv]
    status, tail = run_isolated(command, lambda _: None)
    if status == 0 and wheel:
        # A wheel is a zip that runs: `python pip-X.whl/pip install pip-X.whl`.
        command = [
            venv_python(venv), "-I", os.path.join(wheel, "pip"), "install", "--isolated",
            "--no-index", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
            "--no-input", wheel,
        ]  # fmt: skip
        status, tail = run_isolated(command, lambda _: None)
    if status == 0:
        return None
    if any("No module named venv" in line for line in tail):
        return f"{base} has no venv module (Debian: apt install python3-venv)"
    return f"`{' '.join(command)}` failed: {' '.join(tail[-2:])}"


def pip_command(python: str, root: str) -> List[str]:
    """``python -I -m pip install`` of requirements.txt from wheels/ only, isolated.

    Only flags pip 20.3 (Debian 11) knows. pip re-checks every hash itself.
    """
    root = os.path.abspath(root)  # run_isolated runs pip from an empty directory
    return [
        python, "-I", "-m", "pip", "install", "--isolated", "--no-index",
        "--find-links", os.path.join(root, "wheels"), "--require-hashes",
        "--no-cache-dir", "--disable-pip-version-check", "--no-input",
        "-r", os.path.join(root, REQUIREMENTS),
    ]  # fmt: skip


def uv_command(uv: str, python: str, root: str) -> List[str]:
    """``uv pip install`` of requirements.txt into ``python``, from wheels/ only.

    Offline, no index, no uv.toml or pyproject.toml settings, a throw-away cache,
    never a build; uv re-checks every hash itself, as pip does.
    """
    root = os.path.abspath(root)
    return [
        uv, "pip", "install", "--offline", "--no-index", "--no-config", "--no-cache",
        "--no-build", "--link-mode", "copy", "--require-hashes",
        "--find-links", os.path.join(root, "wheels"), "--python", os.path.abspath(python),
        "-r", os.path.join(root, REQUIREMENTS),
    ]  # fmt: skip


UV_LIMIT = 512 * 1024 * 1024  # uv's program is about 40 MiB
UV_HINT = "add uv to the requirements and lock, fetch and sign again; or install with pip, the default"
INSTALLERS = ("pip", "uv")


def bundled_uv(root: str) -> Tuple[str, str]:
    """The uv wheel a verified bundle pins, and its member that is the ``uv`` program:
    ``<name>-<version>.data/scripts/uv`` (``uv.exe`` on Windows), as on PyPI.

    :raises ValueError: no uv wheel is pinned, or it holds no such program.
    """
    import zipfile  # noqa: PLC0415  (only this installer needs it)

    wheel = pinned_wheel(root, "uv")
    if wheel is None:
        raise ValueError("--installer uv needs the uv wheel pinned in the bundle: this bundle pins none")
    program = "uv.exe" if os.name == "nt" else "uv"
    with zipfile.ZipFile(wheel) as archive:
        members = [
            info for info in archive.infolist()
            if re.fullmatch(r"[^/]+\.data/scripts/" + re.escape(program), info.filename)
            and info.file_size <= UV_LIMIT
        ]  # fmt: skip
    if len(members) != 1:
        where = os.path.relpath(wheel, root).replace(os.sep, "/")
        raise ValueError(f"{where}: no uv program in this wheel (.data/scripts/{program})")
    return wheel, members[0].filename


def extract_uv(wheel: str, member: str, directory: str) -> str:
    """Copy ``member`` of a verified uv wheel, the uv program, into ``directory``, mode 0700."""
    import zipfile  # noqa: PLC0415

    path = os.path.join(directory, os.path.basename(member))
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700), "wb"
    ) as target:
        for block in iter(lambda: source.read(BLOCK), b""):
            target.write(block)
    return path


def run_installer(
    python: str, root: str, echo: Callable[[str], None], uv: Optional[Tuple[str, str]] = None
) -> Tuple[int, List[str]]:
    """Install the bundle's requirements.txt into ``python`` with pip, or with the bundle's uv
    extracted into a private temporary directory, both isolated (:func:`run_isolated`).

    :param uv: :func:`bundled_uv`'s answer, to install with uv; None: with pip.
    :returns: the installer's exit status and its last lines of output.
    """
    if uv is None:
        return run_isolated(pip_command(python, root), echo)
    with tempfile.TemporaryDirectory(prefix="lockship-uv-") as private:
        try:
            program = extract_uv(*uv, private)
        except OSError as exc:
            return 1, [str(exc)]
        return run_isolated(uv_command(program, python, root), echo)


# Run by the receiving interpreter (isolated): every installed distribution with
# its version, where it is, and the RECORD entries whose bytes do not match.
CENSUS = r"""
import base64, hashlib, json, re
from importlib import metadata
found = {}
for dist in metadata.distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
    bad = [] if dist.files is not None else ["no RECORD"]
    for entry in dist.files or []:
        # .pyc files are the installer's own output, not the wheel's (pip 20.3 has been
        # seen to record one that a later compile rewrote): the .py they come from is checked.
        if entry.hash is None or str(entry).endswith(".pyc"):
            continue
        digest = hashlib.new(entry.hash.mode)
        try:
            with open(str(entry.locate()), "rb") as handle:
                for block in iter(lambda: handle.read(1 << 17), b""):
                    digest.update(block)
        except OSError:
            bad.append(str(entry) + ": missing")
            continue
        if base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() != entry.hash.value:
            bad.append(str(entry) + ": hash differs from RECORD")
    found.setdefault(name, []).append(
        {"version": dist.version, "location": str(dist.locate_file("")), "bad": bad}
    )
print(json.dumps(found))
"""


def census(python: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every distribution ``python`` sees (isolated): name -> [version, location, bad files]."""
    proc = subprocess.run(
        [python, "-I", "-c", CENSUS],
        stdout=subprocess.PIPE,
        universal_newlines=True,
        env=clean_env(),
        check=False,
    )
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def census_problems(
    locked: Dict[str, str],
    before: Dict[str, List[Dict[str, Any]]],
    after: Dict[str, List[Dict[str, Any]]],
    prefix: Optional[str],
) -> List[str]:
    """What differs between the interpreter after pip and exactly what the bundle locks.

    :param locked: canonical name -> version of each pin.
    :param before: the census before pip ran; other distributions must be as they were.
    :param prefix: the venv every locked distribution must be in (None: anywhere).
    """
    problems = []
    for name, version in sorted(locked.items()):
        copies = after.get(name, [])
        if [copy["version"] for copy in copies] != [version]:
            seen = ", ".join(str(copy["version"]) for copy in copies) or "nothing"
            problems.append(f"{name}=={version}: after pip, the interpreter has {seen}")
            continue
        where = os.path.realpath(copies[0]["location"])
        if prefix is not None and not where.startswith(os.path.realpath(prefix) + os.sep):
            problems.append(f"{name}=={version}: installed in {where}, outside {prefix}")
        problems += [f"{name}=={version}: {bad}" for bad in copies[0]["bad"]]
    for name in sorted(set(before) | set(after)):
        if name not in locked and before.get(name) != after.get(name):
            problems.append(f"{name}: changed by pip, but the bundle does not lock it")
    return problems


# ---------------------------------------------------------------------------
# Freshness: expiry and rollback (manifest.json's signed_at, series, sequence, expires)


def parse_utc(value: Any) -> Optional[datetime]:
    """A manifest time, "YYYY-MM-DDTHH:MM:SSZ"; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value + "+0000", "%Y-%m-%dT%H:%M:%SZ%z")
    except ValueError:
        return None


def freshness(manifest: Dict[str, Any], signer: str, manifest_sha256: str) -> Dict[str, Any]:
    """What :data:`INSTALLED` records for this bundle; a manifest without the fields
    (lockship before format 3) has sequence 0 and no expiry."""
    sequence = manifest.get("sequence", 0)
    return {
        "series": manifest.get("series"),
        "signer": signer,
        "sequence": sequence if type(sequence) is int else -1,
        "signed_at": manifest.get("signed_at"),
        "expires": manifest.get("expires"),
        "manifest_sha256": manifest_sha256,
    }


def freshness_problem(
    bundle: Dict[str, Any],
    installed: Optional[Dict[str, Any]],
    now: datetime,
    allow_rollback: bool,
) -> Optional[str]:
    """Why this bundle must not be installed: it expired, or it is older than the one
    installed before from the same series and signer; None when it may be."""
    if bundle["sequence"] < 0:
        return f"{MANIFEST}: sequence is not an integer"
    if bundle["expires"] is not None:
        expires = parse_utc(bundle["expires"])
        if expires is None:
            return f"{MANIFEST}: expires is not a UTC time YYYY-MM-DDTHH:MM:SSZ: {bundle['expires']!r}"
        if now >= expires:
            return f"{MANIFEST}: the bundle expired at {bundle['expires']}; ask for a fresh one"
    if installed is None or allow_rollback:
        return None
    same = (installed.get("series"), installed.get("signer")) == (bundle["series"], bundle["signer"])
    previous = installed.get("sequence")
    if same and type(previous) is int and bundle["sequence"] < previous:
        return (
            f"{MANIFEST}: sequence {bundle['sequence']} of series {bundle['series']!r} is older "
            f"than sequence {previous}, installed there (signed {installed.get('signed_at')}); "
            "--allow-rollback installs it anyway"
        )
    return None


def read_installed(venv: str) -> Optional[Dict[str, Any]]:
    """The venv's :data:`INSTALLED` record, or None when there is none (or it is unusable)."""
    try:
        document = json.loads(read_bytes(os.path.join(venv, INSTALLED), 1024 * 1024).decode())
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def write_installed(venv: str, record: Dict[str, Any]) -> None:
    """Write :data:`INSTALLED` atomically: a temporary file beside it, fsync, rename."""
    data = (json.dumps(record, sort_keys=True, indent=2) + "\n").encode()
    fd, temporary = tempfile.mkstemp(prefix=".lockship-installed-", dir=venv)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, os.path.join(venv, INSTALLED))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------------------
# Signer identity


def principals_of(fields: Sequence[str]) -> List[str]:
    """Every principal the allowed_signers lines name (``!`` vetoes left out), sorted."""
    return sorted({p for field in fields for p in field.split(",") if p and not p.startswith("!")})


def sole_principal(fields: Sequence[str]) -> Optional[str]:
    """The one principal allowed_signers lists, when it lists exactly one and no pattern."""
    principals = principals_of(fields)
    if len(principals) == 1 and not any(c in principals[0] for c in "*?"):
        return principals[0]
    return None


def identity_required(fields: Sequence[str], source: str) -> str:
    """The message when --identity is missing and allowed_signers has several principals."""
    principals = principals_of(fields)
    return (
        f"{source}: lists {len(principals)} principals ({', '.join(principals)}); "
        "say which must have signed with --identity"
    )


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
            env=clean_env(),
            check=False,
        )
    except OSError as exc:
        raise Failure(EXIT_INCOMPATIBLE, [f"{python}: cannot run: {exc.strerror}"]) from None
    if proc.returncode != 0:
        raise Failure(EXIT_INCOMPATIBLE, [f"{python}: cannot run this interpreter"])
    return {str(key): str(value) for key, value in json.loads(proc.stdout).items()}


def locked_versions(root: str) -> Dict[str, str]:
    """canonical name -> version of each pin of a verified bundle's requirements.txt."""
    pins = parse_pins(read_text(root, REQUIREMENTS), REQUIREMENTS, [])
    return {canonical(name): version for _, name, version, _ in pins}


def install(root: str, args: argparse.Namespace, fresh: Dict[str, Any]) -> None:
    record = load_json(root, RECORD, [])
    target, target_env = record["target"]["name"], record["target"]["marker_environment"]
    python = args.python or sys.executable
    uv = None
    if args.installer == "uv":
        try:
            uv = bundled_uv(root)  # before a venv is made for it
        except (OSError, ValueError) as exc:
            raise Failure(EXIT_INPUT, [str(exc), UV_HINT]) from None
    if args.venv and not os.path.exists(args.venv):
        problem = env_mismatch(target, target_env, receiving_env(python), python)
        problem = problem or create_venv(python, args.venv, pinned_wheel(root, "pip"))
        if problem:
            raise Failure(EXIT_INCOMPATIBLE, [problem])
        print(f"created virtual environment {args.venv}", flush=True)
    if args.venv:
        python = venv_python(args.venv)
        if not os.path.isfile(os.path.join(args.venv, "pyvenv.cfg")):
            raise Failure(EXIT_INPUT, [f"{args.venv}: not a virtual environment (no pyvenv.cfg)"])
        now = datetime.now(timezone.utc)
        problem = freshness_problem(fresh, read_installed(args.venv), now, args.allow_rollback)
        if problem:
            raise Failure(EXIT_FRESHNESS, [problem])
    hashes = pinned_hashes(root)
    wheels = sorted(entry["path"] for entry in record["files"] if entry["sha256"] in hashes)
    problem = env_mismatch(target, target_env, receiving_env(python), python)
    problem = problem or tag_mismatch(pip_tags(python)[0], wheels, python)
    if problem:
        raise Failure(EXIT_INCOMPATIBLE, [problem])
    before = census(python)
    status, tail = run_installer(python, root, lambda line: print(line, flush=True), uv)
    if status != 0:
        head = f"{args.installer} install failed (exit status {status}):"
        raise Failure(EXIT_INCOMPATIBLE, [head, *tail])
    problems = census_problems(locked_versions(root), before, census(python), args.venv)
    if problems:
        head = f"{args.installer} did not install exactly the bundle into {python}:"
        raise Failure(EXIT_INTEGRITY, [head, *problems])
    if args.venv:
        write_installed(args.venv, fresh)
    print(f"installed {len(wheels)} packages for {target} into {python}")


def run(args: argparse.Namespace) -> None:
    root = os.path.abspath(args.bundle or os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(args.allowed_signers, "rb") as handle:  # may well be a link: the user's file
            allowed = handle.read(1024 * 1024).decode("utf-8")
        signers = _parse_allowed_signers(allowed, args.allowed_signers)
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(EXIT_INPUT, [f"{args.allowed_signers}: cannot read: {exc}"]) from None
    except SshsigError as exc:
        raise Failure(EXIT_INPUT, [str(exc)]) from None
    identity = args.identity or sole_principal([signer.principals for signer in signers])
    if identity is None:
        fields = [signer.principals for signer in signers]
        raise Failure(EXIT_SIGNATURE, [identity_required(fields, args.allowed_signers)])
    # The signature over SHA256SUMS first: nothing else in the bundle is parsed
    # before it holds, so a forged manifest.json cannot even reach json.loads.
    try:
        signer = check_signature(root, allowed, args.allowed_signers, identity)
    except SshsigError as exc:
        raise Failure(EXIT_SIGNATURE, [f"{SIGNATURE}: {exc}"]) from None
    check = check_bundle(root)
    if check.problems:
        raise Failure(EXIT_INTEGRITY, [f"{len(check.problems)} problem(s) found", *check.problems])
    manifest = load_json(root, MANIFEST, [])
    fresh = freshness(manifest, identity, sha256_file(os.path.join(root, MANIFEST))[0])
    problem = freshness_problem(fresh, None, datetime.now(timezone.utc), allow_rollback=False)
    if problem:
        raise Failure(EXIT_FRESHNESS, [problem])
    print(f"verified {len(check.verified)} files, signed by {signer}", flush=True)
    if not args.verify_only:
        install(root, args, fresh)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Verify a lockship bundle (this script's directory, or --bundle), "
        "then pip install it.",
    )
    parser.add_argument(
        "--allowed-signers",
        required=True,
        metavar="FILE",
        help="the reviewer's allowed_signers file (never one from the bundle)",
    )
    parser.add_argument(
        "--identity",
        metavar="ID",
        help="principal the signer must be listed as "
        "(needed unless allowed_signers lists exactly one)",
    )
    parser.add_argument(
        "--bundle",
        metavar="DIR",
        help="the bundle to check (default: this script's directory); with a copy of "
        "install.py from the trust kit, never the bundle's own",
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
    parser.add_argument(
        "--installer",
        choices=INSTALLERS,
        default="pip",
        help="pip (default), or the uv the bundle pins: several times faster",
    )
    parser.add_argument("--verify-only", action="store_true", help="check, install nothing")
    parser.add_argument(
        "--allow-rollback",
        action="store_true",
        help="install even a bundle older than the one last installed into --venv",
    )
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
