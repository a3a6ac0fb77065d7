"""Read lockship's inputs: pip requirements files and ``pyproject.toml`` tables.

Requirements files are read the way pip reads them (``pip._internal.req.req_file``
is the reference, never imported): physical lines are split with
``str.splitlines``, a trailing backslash joins the next line *before* comments
are stripped, ``#`` starts a comment at the start of a line or after
whitespace, ``${NAME}`` is expanded from the environment afterwards, the
requirement is the text before the first space-separated token starting with
``-``, and the rest is split with ``shlex`` and parsed with ``optparse`` using
pip's option names, so abbreviations such as ``--extra`` work as they do in pip.

Where pip silently ignores something (an index option after a requirement, a
second ``-r`` on one line, ``--hash`` without a requirement), lockship refuses
instead: a file lockship accepts means the same thing to pip and to lockship.

Every problem is an :class:`~lockship.errors.InputError` whose ``where`` is
``path:line`` (the line where the logical line starts) or the file alone.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import optparse
import os
import re
import shlex
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Optional, Union

from packaging.dependency_groups import DependencyGroupResolver
from packaging.errors import ExceptionGroup
from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from lockship._compat import tomllib
from lockship.errors import FilesystemError, InputError

__all__ = [
    "IndexOptions",
    "InputRequirement",
    "Inputs",
    "Source",
    "merge_inputs",
    "read_pyproject",
    "read_requirements",
]


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where an input came from, for ``# via`` lines and error messages.

    :param path: the file as the user should read it: relative to the current
        directory when below it, else absolute.
    :param line: 1-based physical line where the logical line starts; ``None``
        for ``pyproject.toml`` entries.
    """

    path: str
    line: Optional[int] = None

    def __str__(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"


@dataclass(frozen=True)
class InputRequirement:
    """One requirement or constraint, with where it was written.

    :param hashes: ``"<algorithm>:<hex>"`` from ``--hash`` options on the line,
        lowercased, sorted and deduplicated.
    """

    requirement: Requirement
    source: Source
    hashes: tuple[str, ...] = ()

    @property
    def name(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)


@dataclass(frozen=True)
class IndexOptions:
    """Index options found in input files (merging with pip's config and the CLI is elsewhere).

    ``find_links`` paths are absolute, resolved against the directory of the
    file that names them; URLs are kept as written. ``only_binary`` and
    ``no_binary`` hold what pip's comma lists leave after all files were read:
    canonical project names, ``":all:"`` first when present, and ``":none:"``
    first when the inputs emptied the list, so that whatever came before these
    inputs (pip's config, the CLI) must be dropped too. Replaying these on top
    of earlier settings (``merge_inputs``) gives pip's result, except in one
    corner: a name moved into one list and that list then emptied with
    ``:none:`` stays in an earlier input's other list, where pip removes it.
    """

    index_url: Optional[str] = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    pre: bool = False
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    prefer_binary: bool = False


@dataclass(frozen=True)
class Inputs:
    """Everything read from a set of input files.

    :param files: every file read (for digests), absolute, in the order first
        read, deduplicated.
    """

    requirements: tuple[InputRequirement, ...] = ()
    constraints: tuple[InputRequirement, ...] = ()
    options: IndexOptions = field(default_factory=IndexOptions)
    files: tuple[Path, ...] = ()


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------

# pip: req_file.COMMENT_RE / ENV_VAR_RE (POSIX names: upper case, digits, "_").
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")
# A URL scheme; one letter is a Windows drive ("C:\\..."), not a scheme.
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
# pip: vcs.is_url() schemes.
_URL_SCHEMES = frozenset(
    ["http", "https", "file", "ftp"]
    + [
        f"{vcs}+{scheme}"
        for vcs, schemes in (
            ("bzr", ("http", "https", "ssh", "sftp", "ftp", "lp", "file")),
            ("git", ("http", "https", "ssh", "git", "file")),
            ("hg", ("file", "http", "https", "ssh", "static-http")),
            ("svn", ("ssh", "http", "https", "svn", "file")),
        )
        for scheme in schemes
    ]
)
# The archive extensions pip installs from as local files (its utils/filetypes.py).
_ARCHIVE_EXTENSIONS = (
    ".zip", ".whl", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar",
    ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma",
)  # fmt: skip
# pip: utils.urls.strip_extras (on the path) / PEP 508 names (--only-binary lists).
_EXTRAS_RE = re.compile(r"^(.+)(\[[^\]]+\])$")
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# pip: utils.hashes.STRONG_HASHES, with the hex length each digest has.
_HASH_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_DIGITS = frozenset("0123456789abcdef")
# pip: req_file.BOMS (UTF-16 LE is a prefix of UTF-32 LE, so order matters).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_PEP263_RE = re.compile(rb"coding[:=]\s*([-\w.]+)")
_TOML_LINE_RE = re.compile(r"at line (\d+)")
# "scheme://user:secret@": credentials often arrive through ${VAR} expansion.
_CREDENTIALS_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


@contextlib.contextmanager
def _redacted() -> Iterator[None]:
    """Re-raise an InputError with any URL credentials in its text replaced by ``***``."""
    try:
        yield
    except InputError as exc:
        message = _CREDENTIALS_RE.sub(r"\1***@", exc.message)
        hint = None if exc.hint is None else _CREDENTIALS_RE.sub(r"\1***@", exc.hint)
        if message == exc.message and hint == exc.hint:
            raise
        raise InputError(message, where=exc.where, hint=hint) from None


def _absolute(path: Union[str, Path]) -> Path:
    """Absolute and normalized (``..`` removed), but symlinks kept as the user named them."""
    return Path(os.path.abspath(path))  # noqa: PTH100 - Path.resolve() would follow symlinks


def _display(path: Path) -> str:
    """``path`` as the user should read it: relative to the cwd when below it."""
    cwd = str(Path.cwd())
    absolute = str(_absolute(path))
    try:
        if os.path.commonpath([cwd, absolute]) == cwd:
            return os.path.relpath(absolute, cwd)
    except ValueError:  # different drives on Windows
        pass
    return absolute


def _scheme(text: str) -> str:
    match = _SCHEME_RE.match(text)
    return match.group(1).lower() if match else ""


def _is_url(text: str) -> bool:
    """pip's ``vcs.is_url``: a scheme pip can fetch from."""
    return _scheme(text) in _URL_SCHEMES


def _looks_like_path(text: str) -> bool:
    """pip's ``_looks_like_path``, for both separators whatever the platform."""
    return "/" in text or "\\" in text or text.startswith(".")


def _is_archive(text: str) -> bool:
    return text.lower().endswith(_ARCHIVE_EXTENSIONS)


def _one_line(exc: Exception) -> str:
    """Shorten packaging's three-line parse errors to one line.

    packaging writes the message, the input, and a caret under the position;
    keep the message and say what text the caret points at.
    """
    lines = str(exc).splitlines()
    if not lines:
        return type(exc).__name__
    head = lines[0].strip()
    if len(lines) >= 3 and "^" in lines[2]:
        text, caret = lines[1], lines[2]
        rest = text[caret.index("^") :].strip()
        head += f", at {rest!r}" if rest else ", at the end"
    return head


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _and_markers(first: Optional[Marker], second: Optional[Marker]) -> Optional[Marker]:
    if first is None:
        return second
    if second is None:
        return first
    return Marker(f"({first}) and ({second})")


def _check_direct_url(requirement: Requirement, text: str, where: str) -> None:
    """Refuse ``name @ ./path``: PEP 508 wants a URL after ``@``."""
    if requirement.url is not None and not _scheme(requirement.url):
        _refuse_local_path(text, where)


def _refuse_local_path(text: str, where: str) -> NoReturn:
    raise InputError(
        f"local path requirements are not supported: {text!r}",
        where=where,
        hint=(
            "a lock for another machine cannot point into this one; list the package by "
            "name, or build it and put its wheel in a --find-links directory"
        ),
    )


def _parse_pep508(text: str, where: str, what: str) -> Requirement:
    """Parse one PEP 508 string from ``what`` (a table), refusing non-URL direct references."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise InputError(
            f"{what}: invalid requirement {text!r}: {_one_line(exc)}",
            where=where,
            hint=_requirement_hint(text),
        ) from None
    _check_direct_url(requirement, text, where)
    return requirement


def _requirement_hint(text: str) -> str:
    # pip's hint in constructors._parse_req_string
    if "=" in text and not any(op in text for op in ("==", "!=", "<=", ">=", "~=", "===")):
        return "= is not a valid operator; did you mean == ?"
    return "write NAME[EXTRAS] VERSION-SPECIFIERS [; MARKER], e.g. requests>=2.31"


# --------------------------------------------------------------------------
# Requirements files: lines
# --------------------------------------------------------------------------


def _decode(data: bytes, where: str) -> str:
    """Decode like pip: a BOM, else a PEP 263 line in the first two, else UTF-8."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_as(data[len(bom) :], encoding, where)
    for line in data.split(b"\n")[:2]:
        if line[:1] == b"#":
            match = _PEP263_RE.search(line)
            if match is not None:
                return _decode_as(data, match.group(1).decode("ascii"), where)
    return _decode_as(data, "utf-8", where)


def _decode_as(data: bytes, encoding: str, where: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r} in the coding declaration",
            where=where,
            hint="declare a Python codec name such as utf-8 or latin-1",
        ) from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"the file is not valid {encoding}: {exc.reason} "
            f"(byte {data[exc.start : exc.start + 1]!r})",
            where=f"{where}:{line}",
            hint="save it as UTF-8, or declare its encoding with '# -*- coding: NAME -*-'",
        ) from None


def _logical_lines(text: str, environ: Mapping[str, str]) -> Iterator[tuple[int, str]]:
    """pip's ``preprocess``: join continuations, strip comments, expand ``${VAR}``."""
    primary = 0
    parts: list[str] = []
    joined: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        is_comment = _COMMENT_RE.match(line) is not None
        if not line.endswith("\\") or is_comment:
            # A comment line ends a continuation and never continues itself.
            piece = " " + line if is_comment else line
            if parts:
                parts.append(piece)
                joined.append((primary, "".join(parts)))
                parts = []
            else:
                joined.append((number, piece))
        else:
            if not parts:
                primary = number
            parts.append(line.strip("\\"))  # pip strips backslashes at both ends
    if parts:  # the last line ended with a backslash
        joined.append((primary, "".join(parts)))

    for number, line in joined:
        stripped = _COMMENT_RE.sub("", line).strip()
        if stripped:
            yield number, _expand_env(stripped, environ)


def _expand_env(line: str, environ: Mapping[str, str]) -> str:
    # Like pip: an undefined *or empty* variable stays as written.
    for name in _ENV_VAR_RE.findall(line):
        value = environ.get(name)
        if value:
            line = line.replace(f"${{{name}}}", value)
    return line


def _break_args_options(line: str) -> tuple[str, str]:
    """pip's ``break_args_options``: split on single spaces at the first ``-`` token."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:index]), " ".join(tokens[index:])
    return line, ""


# --------------------------------------------------------------------------
# Requirements files: options
# --------------------------------------------------------------------------

# Every option pip accepts in a requirements file (pip 26: req_file.SUPPORTED_OPTIONS
# and SUPPORTED_OPTIONS_REQ), with whether it takes a value. All of them are
# registered so that optparse resolves abbreviations exactly as pip does.
_PIP_OPTIONS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("-i", "--index-url", "--pypi-url"), True),
    (("--extra-index-url",), True),
    (("--no-index",), False),
    (("-c", "--constraint"), True),
    (("-r", "--requirement"), True),
    (("-e", "--editable"), True),
    (("-f", "--find-links"), True),
    (("--no-binary",), True),
    (("--only-binary",), True),
    (("--prefer-binary",), False),
    (("--require-hashes",), False),
    (("--no-require-hashes",), False),
    (("--pre",), False),
    (("--all-releases",), True),
    (("--only-final",), True),
    (("--trusted-host",), True),
    (("--use-feature",), True),
    (("--hash",), True),
    (("-C", "--config-settings"), True),
)

# pip options lockship does not carry, with what to do instead.
_UNSUPPORTED = {
    "--no-require-hashes": "lockship always records and checks hashes; remove it",
    "--all-releases": "use --pre to allow pre-releases",
    "--only-final": "pre-releases are excluded unless --pre is given; remove it",
    "--use-feature": "pip features do not apply to lockship; remove it",
    "--config-settings": "lockship builds sdists without per-requirement settings; remove it",
}
_INCLUDES = ("--requirement", "--constraint")


@dataclass(frozen=True)
class _Option:
    name: str  # the long name: "--index-url"
    spelled: str  # as written: "-i", "--index"
    value: Optional[str]


class _OptionError(Exception):
    pass


class _OptionParser(optparse.OptionParser):
    def error(self, msg: str) -> NoReturn:
        raise _OptionError(msg)

    def exit(self, status: int = 0, msg: Optional[str] = None) -> NoReturn:
        raise _OptionError(msg or f"exit status {status}")


def _record(
    option: optparse.Option,
    spelled: str,
    value: Optional[str],
    parser: optparse.OptionParser,  # noqa: ARG001 - optparse's callback signature
    found: list[_Option],
) -> None:
    found.append(_Option(option.get_opt_string(), spelled, value))


def _parse_options(text: str, where: str) -> tuple[list[_Option], list[str]]:
    """Split and parse the option part of a line; return options in order and leftovers."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InputError(
            f"cannot split the options {text!r}: {exc}",
            where=where,
            hint="check the quotes and backslashes on this line",
        ) from None
    found: list[_Option] = []
    parser = _OptionParser(add_help_option=False, usage=optparse.SUPPRESS_USAGE)
    for names, takes_value in _PIP_OPTIONS:
        parser.add_option(
            *names,
            action="callback",
            callback=_record,
            callback_args=(found,),
            type="string" if takes_value else None,
        )
    try:
        _, leftovers = parser.parse_args(tokens, optparse.Values())
    except _OptionError as exc:
        raise InputError(
            str(exc),
            where=where,
            hint=(
                "a requirements file takes -r, -c, -i/--index-url, --extra-index-url, "
                "-f/--find-links, --no-index, --trusted-host, --pre, --only-binary, "
                "--no-binary, --prefer-binary, and --hash after a requirement"
            ),
        ) from None
    return found, leftovers


def _parse_hash(option: _Option, where: str) -> str:
    value = option.value or ""
    algorithm, sep, digest = value.partition(":")
    if not sep:
        raise InputError(
            f"{option.spelled} {value!r} is not ALGORITHM:HEX",
            where=where,
            hint="write it like --hash=sha256:<64 hex digits>",
        )
    if algorithm not in _HASH_HEX_LENGTHS:  # pip compares case-sensitively too
        raise InputError(
            f"hash algorithm {algorithm!r} is not allowed",
            where=where,
            hint="use sha256, sha384 or sha512 (lower case)",
        )
    digest = digest.lower()
    length = _HASH_HEX_LENGTHS[algorithm]
    if len(digest) != length or not _HEX_DIGITS.issuperset(digest):
        raise InputError(
            f"{algorithm} hash {digest!r} is not {length} hex digits",
            where=where,
            hint="copy the digest again from the index or from 'pip hash'",
        )
    return f"{algorithm}:{digest}"


class _FormatControl:
    """pip's ``FormatControl.handle_mutual_excludes``, remembering explicit resets."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {"no": set(), "only": set()}
        self.reset = {"no": False, "only": False}

    def apply(self, value: str, target: str, where: str) -> None:
        other = "only" if target == "no" else "no"
        if value.startswith("-"):
            raise InputError(
                f"--{target}-binary needs a value, got the option {value!r}",
                where=where,
                hint="give :all:, :none: or comma-separated project names",
            )
        new = value.split(",")
        while ":all:" in new:
            self.sets[other].clear()
            self.reset[other] = True
            self.sets[target] = {":all:"}
            del new[: new.index(":all:") + 1]
            if ":none:" not in new:  # ":all:" covers every name that follows
                return
        for item in new:
            if item == ":none:":
                self.sets[target].clear()
                self.reset[target] = True
                continue
            if not item:
                continue
            if not _NAME_RE.match(item):
                raise InputError(
                    f"--{target}-binary: {item!r} is not a project name",
                    where=where,
                    hint="give :all:, :none: or comma-separated project names",
                )
            name = canonicalize_name(item)
            self.sets[other].discard(name)
            self.sets[target].add(name)

    def replay(self, options: IndexOptions) -> None:
        """Apply another set of results on top of this one (``merge_inputs``)."""
        lists = [("no", options.no_binary), ("only", options.only_binary)]
        lists.sort(key=lambda item: ":all:" not in item[1])  # ":all:" clears the other
        for target, tokens in lists:
            for token in tokens:
                self.apply(token, target, "")

    def result(self, target: str) -> tuple[str, ...]:
        """The list as ``IndexOptions`` holds it: specials first, then sorted names.

        ``":none:"`` is kept only where replaying the result needs it: an
        ``":all:"`` in either list clears what came before anyway.
        """
        other = "only" if target == "no" else "no"
        names = self.sets[target]
        if ":all:" in names:
            specials = [":all:"]
        elif self.reset[target] and ":all:" not in self.sets[other]:
            specials = [":none:"]
        else:
            specials = []
        return (*specials, *sorted(names - {":all:"}))


@dataclass
class _OptionsBuilder:
    index_url: Optional[str] = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    trusted_hosts: list[str] = field(default_factory=list)
    pre: bool = False
    prefer_binary: bool = False
    format_control: _FormatControl = field(default_factory=_FormatControl)

    def apply(self, option: _Option, base: Path, where: str) -> None:
        value = option.value or ""
        if option.name == "--index-url":
            self.index_url = value
        elif option.name == "--extra-index-url":
            self.extra_index_urls.append(value)
        elif option.name == "--find-links":
            self.find_links.append(_resolve_find_links(value, base))
        elif option.name == "--no-index":
            self.no_index = True
        elif option.name == "--trusted-host":
            self.trusted_hosts.append(value)
        elif option.name == "--pre":
            self.pre = True
        elif option.name == "--prefer-binary":
            self.prefer_binary = True
        elif option.name == "--only-binary":
            self.format_control.apply(value, "only", where)
        elif option.name == "--no-binary":
            self.format_control.apply(value, "no", where)
        # --require-hashes: lockship always requires hashes, nothing to record.

    def build(self) -> IndexOptions:
        return IndexOptions(
            index_url=self.index_url,
            extra_index_urls=_unique(self.extra_index_urls),
            find_links=_unique(self.find_links),
            no_index=self.no_index,
            trusted_hosts=_unique(self.trusted_hosts),
            pre=self.pre,
            only_binary=self.format_control.result("only"),
            no_binary=self.format_control.result("no"),
            prefer_binary=self.prefer_binary,
        )


def _resolve_find_links(value: str, base: Path) -> str:
    """Keep URLs; make a path absolute relative to the naming file's directory."""
    if _scheme(value):
        return value
    # os.path.expanduser leaves "~nosuchuser" alone; Path.expanduser would raise.
    return os.path.normpath(base / os.path.expanduser(value))  # noqa: PTH111


# --------------------------------------------------------------------------
# Requirements files: requirement lines
# --------------------------------------------------------------------------


def _project_of(url: str) -> Optional[str]:
    """The project a wheel or sdist URL is a file of ("six" for six-1.16.0-py3-none-any.whl)."""
    from packaging.utils import (  # noqa: PLC0415
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    filename = url.rsplit("/", 1)[-1].split("#", 1)[0].split("?", 1)[0]
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _parse_requirement_line(text: str, where: str) -> Requirement:
    """Parse the requirement part of a line as pip does (``parse_req_from_line``).

    pip splits the marker off at the first ``;`` (``"; "`` for a bare URL) and
    parses the two halves separately; local paths and bare URLs, which pip
    would install from, are refused.
    """
    name, _, marker_text = text.partition("; " if _is_url(text) else ";")
    name, marker_text = name.strip(), marker_text.strip()

    if _is_url(name):
        if _scheme(name) == "file":
            _refuse_local_path(name, where)
        raise InputError(
            f"a URL requirement cannot be locked by name and hash: {name!r}",
            where=where,
            hint=f"download the file into a directory, pass -f DIR, and require "
            f"{_project_of(name) or 'the project'} by name",
        )
    bare = _EXTRAS_RE.sub(r"\1", name)
    before_at, at, _ = name.partition("@")
    named_url = bool(at) and not _looks_like_path(before_at)
    if _is_archive(bare) and not named_url:
        _refuse_local_path(name, where)  # pip installs "pkg.whl" from the file
    try:
        requirement = Requirement(name)
    except InvalidRequirement as exc:
        if _looks_like_path(name) and not named_url:
            _refuse_local_path(name, where)
        raise InputError(
            f"invalid requirement {name!r}: {_one_line(exc)}",
            where=where,
            hint=_requirement_hint(name),
        ) from None
    _check_direct_url(requirement, name, where)
    if marker_text:
        try:
            requirement.marker = Marker(marker_text)
        except InvalidMarker as exc:
            raise InputError(
                f"invalid marker {marker_text!r}: {_one_line(exc)}",
                where=where,
                hint='markers look like: python_version < "3.11" and sys_platform == "linux"',
            ) from None
    return requirement


# --------------------------------------------------------------------------
# Requirements files: reading and including
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    key: str  # the real path, to recognise a file however it is named
    display: str


class _RequirementsReader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._requirements: list[InputRequirement] = []
        self._constraints: list[InputRequirement] = []
        self._seen: set[tuple[bool, InputRequirement]] = set()
        self._files: dict[str, Path] = {}
        self._options = _OptionsBuilder()

    def inputs(self) -> Inputs:
        return Inputs(
            requirements=tuple(self._requirements),
            constraints=tuple(self._constraints),
            options=self._options.build(),
            files=tuple(self._files.values()),
        )

    def read_top(self, path: Path, *, constraint: bool) -> None:
        absolute = _absolute(path)
        display = _display(absolute)
        text = self._load(absolute, display, constraint=constraint, included_at=None)
        frame = _Frame(_real(absolute, display, None), display)
        self._read(absolute, display, text, constraint=constraint, chain=(frame,))

    def _load(
        self, path: Path, display: str, *, constraint: bool, included_at: Optional[str]
    ) -> str:
        kind = "constraints file" if constraint else "requirements file"
        where = included_at or display
        subject = f"{kind} {display}" if included_at else kind
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise InputError(
                f"{subject} not found",
                where=where,
                hint=(
                    "the path is relative to the directory of the file that includes it"
                    if included_at
                    else "check the path"
                ),
            ) from None
        except IsADirectoryError:
            raise InputError(f"{subject} is a directory", where=where) from None
        except ValueError as exc:  # an embedded NUL byte
            raise InputError(f"{subject}: bad path: {exc}", where=where) from None
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL):
                raise InputError(f"{subject}: bad path: {exc.strerror}", where=where) from None
            raise FilesystemError(
                f"cannot read {kind} {display}: {exc.strerror or exc}", where=where
            ) from None
        self._files.setdefault(_real(path, display, included_at), path)
        return _decode(data, display)

    def _read(
        self,
        path: Path,
        display: str,
        text: str,
        *,
        constraint: bool,
        chain: tuple[_Frame, ...],
    ) -> None:
        for number, line in _logical_lines(text, self._environ):
            source = Source(display, number)
            self._line(path, source, line, constraint=constraint, chain=chain)

    def _line(
        self,
        path: Path,
        source: Source,
        line: str,
        *,
        constraint: bool,
        chain: tuple[_Frame, ...],
    ) -> None:
        where = str(source)
        args, option_text = _break_args_options(line)
        options, leftovers = _parse_options(option_text, where)

        for option in options:
            if option.name == "--editable":
                raise InputError(
                    "editable requirements cannot be locked for another machine: "
                    f"{option.spelled} {option.value}",
                    where=where,
                    hint=(
                        "list the package by name, or build it and add its wheel to a "
                        "--find-links directory"
                    ),
                )
            if option.name in _UNSUPPORTED:
                raise InputError(
                    f"option {option.spelled} is not supported by lockship",
                    where=where,
                    hint=_UNSUPPORTED[option.name],
                )
        if leftovers:
            raise InputError(
                f"unexpected {leftovers[0]!r} after the options",
                where=where,
                hint=(
                    "a requirement comes first on its line, then its --hash options; "
                    "each option that takes a value takes exactly one"
                ),
            )

        if args:
            self._requirement_line(args, options, source, constraint=constraint)
            return

        hashes = [option for option in options if option.name == "--hash"]
        if hashes:
            raise InputError(
                f"{hashes[0].spelled} without a requirement",
                where=where,
                hint="put --hash options on the line of the requirement they belong to "
                "(pip ignores them here)",
            )
        includes = [option for option in options if option.name in _INCLUDES]
        if includes:
            if len(options) > 1:
                raise InputError(
                    f"{includes[0].spelled} must be alone on its line",
                    where=where,
                    hint="pip reads only the first -r/-c of a line and ignores the rest of it",
                )
            self._include(path, source, includes[0], constraint=constraint, chain=chain)
            return
        find_links = [option for option in options if option.name == "--find-links"]
        if len(find_links) > 1:
            raise InputError(
                f"more than one {find_links[0].spelled} on one line",
                where=where,
                hint="put each --find-links on its own line (pip reads only the first)",
            )
        for option in options:
            self._options.apply(option, path.parent, where)

    def _requirement_line(
        self, args: str, options: list[_Option], source: Source, *, constraint: bool
    ) -> None:
        where = str(source)
        for option in options:
            if option.name != "--hash":
                raise InputError(
                    f"{option.spelled} is not allowed after a requirement",
                    where=where,
                    hint="put it on a line of its own (pip ignores it here)",
                )
        hashes = tuple(sorted({_parse_hash(option, where) for option in options}))
        requirement = _parse_requirement_line(args, where)
        if constraint and requirement.extras:
            raise InputError(
                f"constraints cannot have extras: {args!r}",
                where=where,
                hint=f"constrain {requirement.name} without [...]; request extras in a "
                "requirements file",
            )
        entry = InputRequirement(requirement, source, hashes)
        if (constraint, entry) in self._seen:  # the same file included twice
            return
        self._seen.add((constraint, entry))
        (self._constraints if constraint else self._requirements).append(entry)

    def _include(
        self,
        path: Path,
        source: Source,
        option: _Option,
        *,
        constraint: bool,
        chain: tuple[_Frame, ...],
    ) -> None:
        where = str(source)
        nested_constraint = option.name == "--constraint"
        if constraint and not nested_constraint:
            raise InputError(
                f"{option.spelled} inside a constraints file",
                where=where,
                hint=(
                    "pip would read that file as requirements, not constraints; "
                    "use -c to include constraints"
                ),
            )
        target = _include_path(option.value or "", path.parent, where)
        display = _display(target)
        frame = _Frame(_real(target, display, where), display)
        if any(frame.key == ancestor.key for ancestor in chain):
            names = " -> ".join(item.display for item in (*chain, frame))
            raise InputError(
                f"requirements files include each other: {names}",
                where=where,
                hint="remove one of the -r/-c lines that form the cycle",
            )
        text = self._load(target, display, constraint=nested_constraint, included_at=where)
        self._read(target, display, text, constraint=nested_constraint, chain=(*chain, frame))


def _real(path: Path, display: str, where: Optional[str]) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"bad path {display}: {exc}", where=where or display) from None


def _include_path(value: str, base: Path, where: str) -> Path:
    """Where ``-r VALUE`` points, relative to the including file's directory."""
    scheme = _scheme(value)
    if scheme == "file":
        try:
            parts = urllib.parse.urlsplit(value)
        except ValueError as exc:
            raise InputError(f"invalid URL {value!r}: {exc}", where=where) from None
        if parts.netloc in ("", "localhost"):
            value = urllib.request.url2pathname(parts.path)
        else:
            scheme = "remote"
    if scheme not in ("", "file") or "://" in value:
        raise InputError(
            f"remote requirement files are not supported; download it first: {value}",
            where=where,
            hint="save the file next to this one and include it with a relative path",
        )
    return _absolute(base / value)


# --------------------------------------------------------------------------
# pyproject.toml
# --------------------------------------------------------------------------


def _load_toml(path: Path, display: str) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise InputError("pyproject file not found", where=display) from None
    except IsADirectoryError:
        raise InputError("pyproject file is a directory", where=display) from None
    except OSError as exc:
        raise FilesystemError(f"cannot read: {exc.strerror or exc}", where=display) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"invalid TOML: not UTF-8 ({exc.reason})",
            where=f"{display}:{line}",
            hint="TOML files must be UTF-8",
        ) from None
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # deep nesting: malformed too
        message = str(exc).splitlines()[0]
        match = _TOML_LINE_RE.search(message)
        raise InputError(
            f"invalid TOML: {message}",
            where=f"{display}:{match.group(1)}" if match else display,
        ) from None
    return document


def _string_list(value: object, what: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(f"{what} must be an array of strings", where=where)
    return value


@dataclass
class _Project:
    """The parts of ``[project]`` that lockship reads."""

    display: str
    name: Optional[NormalizedName]
    dependencies: list[str]
    extras: dict[NormalizedName, tuple[str, list[str]]]  # normalized -> (as written, list)
    dynamic_extras: bool = False

    def expand(
        self,
        requirement: Requirement,
        what: str,
        stack: tuple[NormalizedName, ...] = (),
    ) -> Iterator[Requirement]:
        """Yield ``requirement``, or the extras' lists it names if it is the project itself."""
        if self.name is None or canonicalize_name(requirement.name) != self.name:
            yield requirement
            return
        for extra in sorted(canonicalize_name(extra) for extra in requirement.extras):
            if extra not in self.extras:
                raise InputError(
                    f"{what}: {str(requirement)!r} names extra {extra!r}, which "
                    f"{self.name} does not define",
                    where=self.display,
                    hint=_available("extras", [written for written, _ in self.extras.values()]),
                )
            if extra in stack:  # already being expanded: its entries are in
                continue
            yield from self.expand_extra(extra, requirement.marker, (*stack, extra))

    def expand_extra(
        self, extra: NormalizedName, marker: Optional[Marker], stack: tuple[NormalizedName, ...]
    ) -> Iterator[Requirement]:
        written, entries = self.extras[extra]
        what = f"[project.optional-dependencies] {written}"
        for text in entries:
            requirement = _parse_pep508(text, self.display, what)
            for expanded in self.expand(requirement, what, stack):
                yield _with_marker(expanded, marker)


def _with_marker(requirement: Requirement, marker: Optional[Marker]) -> Requirement:
    if marker is None:
        return requirement
    combined = Requirement(str(requirement))
    combined.marker = _and_markers(marker, requirement.marker)
    return combined


def _available(kind: str, names: Sequence[str]) -> str:
    return f"available {kind}: {', '.join(names)}" if names else f"the file defines no {kind}"


def _read_project(document: Mapping[str, Any], display: str, *, needed: bool) -> _Project:
    project = document.get("project")
    if project is None:
        if needed:
            raise InputError(
                "no [project] table",
                where=display,
                hint="lockship needs static dependencies: list them in [project] dependencies "
                "(PEP 621), or give a requirements file instead",
            )
        return _Project(display, None, [], {})
    if not isinstance(project, dict):
        raise InputError("[project] must be a table", where=display)

    dynamic = project.get("dynamic", [])
    dynamic = _string_list(dynamic, "[project] dynamic", display)
    if "dependencies" in dynamic:
        raise InputError(
            "[project] dependencies are dynamic",
            where=display,
            hint="lockship needs static dependencies: list them in [project] dependencies "
            "and remove 'dependencies' from dynamic, or give a requirements file instead",
        )

    name = project.get("name")
    dependencies = _string_list(project.get("dependencies", []), "[project] dependencies", display)
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise InputError("[project.optional-dependencies] must be a table", where=display)
    extras: dict[NormalizedName, tuple[str, list[str]]] = {}
    for written, entries in optional.items():
        what = f"[project.optional-dependencies] {written}"
        key = canonicalize_name(written)
        if key in extras:
            raise InputError(
                f"{what}: extra defined twice (as {extras[key][0]!r} and {written!r})",
                where=display,
            )
        extras[key] = (written, _string_list(entries, what, display))
    return _Project(
        display,
        canonicalize_name(name) if isinstance(name, str) else None,
        dependencies,
        extras,
        dynamic_extras="optional-dependencies" in dynamic,
    )


def _selected_extras(
    project: _Project, extras: Sequence[str], *, all_extras: bool
) -> list[NormalizedName]:
    if project.dynamic_extras and (extras or all_extras):
        raise InputError(
            "[project] optional-dependencies are dynamic",
            where=project.display,
            hint="lockship needs static optional-dependencies to select extras: list them "
            "and remove 'optional-dependencies' from dynamic",
        )
    if all_extras:
        return list(project.extras)
    selected: list[NormalizedName] = []
    for extra in extras:
        key = canonicalize_name(extra)
        if key not in project.extras:
            raise InputError(
                f"unknown extra {extra!r}",
                where=project.display,
                hint=_available("extras", [written for written, _ in project.extras.values()]),
            )
        if key not in selected:
            selected.append(key)
    return selected


def _group_requirements(
    document: Mapping[str, Any], groups: Sequence[str], display: str
) -> list[tuple[str, Requirement]]:
    if not groups:  # a broken table that is not used is not lockship's business
        return []
    table = document.get("dependency-groups", {})
    if not isinstance(table, dict):
        raise InputError("[dependency-groups] must be a table", where=display)
    try:
        resolver = DependencyGroupResolver(table)
    except ExceptionGroup as group_error:
        raise _group_error(group_error, display) from None
    available = {canonicalize_name(name): name for name in table}
    result: list[tuple[str, Requirement]] = []
    for group in groups:
        if canonicalize_name(group) not in available:
            raise InputError(
                f"unknown dependency group {group!r}",
                where=display,
                hint=_available("groups", list(available.values())),
            )
        try:
            resolved = resolver.resolve(group)
        except ExceptionGroup as group_error:
            raise _group_error(group_error, display) from None
        written = available[canonicalize_name(group)]
        for requirement in resolved:
            _check_direct_url(requirement, str(requirement), display)
            result.append((f"[dependency-groups] {written}", requirement))
    return result


def _group_error(group_error: ExceptionGroup, display: str) -> InputError:
    problems = []
    for exc in group_error.exceptions:
        if isinstance(exc, InvalidRequirement):
            text = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else ""
            problems.append(f"invalid requirement {text!r}: {_one_line(exc)}")
        else:
            problems.append(_one_line(exc))
    return InputError(
        f"{group_error.message}: {'; '.join(problems)}",
        where=display,
        hint="see PEP 735: a group is an array of requirement strings and "
        '{include-group = "NAME"} tables',
    )


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def read_requirements(
    paths: Sequence[Path],
    *,
    constraints: Sequence[Path] = (),
    environ: Mapping[str, str] = os.environ,
) -> Inputs:
    """Read pip-syntax requirements files and constraints files.

    Constraints files are read first, as pip does, so that an index option in a
    requirements file overrides one in a constraints file.

    :param paths: requirements files (``-r``).
    :param constraints: constraints files (``-c``).
    :param environ: where ``${NAME}`` references are looked up.
    :raises InputError: for anything pip would reject, and for the things
        lockship cannot lock (editables, local paths, remote includes).
    :raises FilesystemError: when an existing file cannot be read.

    .. versionadded:: 0.1
    """
    reader = _RequirementsReader(environ)
    with _redacted():
        for path in constraints:
            reader.read_top(path, constraint=True)
        for path in paths:
            reader.read_top(path, constraint=False)
    return reader.inputs()


def read_pyproject(
    path: Path,
    *,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
) -> Inputs:
    """Read ``[project] dependencies``, chosen extras, and PEP 735 dependency groups.

    A requirement on the project itself (``myproj[test]``) in any of these lists
    stands for the named extras' own lists; the project's dependencies are
    always included already. A file with only ``[dependency-groups]`` and no
    ``[project]`` table is accepted when groups, and no extras, are asked for.

    :raises InputError: for invalid TOML (with its line), a missing ``[project]``
        table, dynamic dependencies, unknown extras or groups, invalid
        requirement strings and dependency-group cycles.

    .. versionadded:: 0.1
    """
    with _redacted():
        return _read_pyproject(path, extras=extras, all_extras=all_extras, groups=groups)


def _read_pyproject(
    path: Path, *, extras: Sequence[str], all_extras: bool, groups: Sequence[str]
) -> Inputs:
    absolute = _absolute(path)
    display = _display(absolute)
    document = _load_toml(absolute, display)
    wants_extras = bool(extras) or all_extras
    project = _read_project(document, display, needed=wants_extras or not groups)

    selected = _selected_extras(project, extras, all_extras=all_extras)

    found: list[Requirement] = []
    for text in project.dependencies:
        requirement = _parse_pep508(text, display, "[project] dependencies")
        found.extend(project.expand(requirement, "[project] dependencies"))
    for name in selected:
        found.extend(project.expand_extra(name, None, (name,)))
    for what, requirement in _group_requirements(document, groups, display):
        found.extend(project.expand(requirement, what))

    source = Source(display)
    unique: dict[str, InputRequirement] = {}
    for requirement in found:  # an extra may repeat a dependency: keep the first
        unique.setdefault(str(requirement), InputRequirement(requirement, source))
    return Inputs(requirements=tuple(unique.values()), files=(absolute,))


def merge_inputs(*parts: Inputs) -> Inputs:
    """Combine inputs read separately, in order.

    Requirements, constraints and files are concatenated (files without
    duplicates). A later ``index_url`` overrides an earlier one; extra index
    URLs, find-links and trusted hosts are concatenated without duplicates;
    flags are or-ed; ``only_binary``/``no_binary`` are replayed in order with
    pip's rules.

    .. versionadded:: 0.1
    """
    index_url: Optional[str] = None
    format_control = _FormatControl()
    for part in parts:
        if part.options.index_url is not None:
            index_url = part.options.index_url
        format_control.replay(part.options)
    options = [part.options for part in parts]
    merged = IndexOptions(
        index_url=index_url,
        extra_index_urls=_unique(url for item in options for url in item.extra_index_urls),
        find_links=_unique(link for item in options for link in item.find_links),
        no_index=any(item.no_index for item in options),
        trusted_hosts=_unique(host for item in options for host in item.trusted_hosts),
        pre=any(item.pre for item in options),
        only_binary=format_control.result("only"),
        no_binary=format_control.result("no"),
        prefer_binary=any(item.prefer_binary for item in options),
    )
    files: dict[Path, None] = {}
    for part in parts:
        files.update(dict.fromkeys(part.files))
    return Inputs(
        requirements=tuple(entry for part in parts for entry in part.requirements),
        constraints=tuple(entry for part in parts for entry in part.constraints),
        options=merged,
        files=tuple(files),
    )
