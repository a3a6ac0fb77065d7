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

import errno
import optparse
import os
import shlex
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Optional

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement

from lockship.errors import FilesystemError, InputError
from lockship.inputs._parse import (
    _BOMS,
    _COMMENT_RE,
    _ENV_VAR_RE,
    _EXTRAS_RE,
    _HASH_HEX_LENGTHS,
    _HEX_DIGITS,
    _PEP263_RE,
    _absolute,
    _check_direct_url,
    _display,
    _is_archive,
    _is_url,
    _looks_like_path,
    _one_line,
    _redacted,
    _refuse_local_path,
    _requirement_hint,
    _scheme,
    _unique,
)
from lockship.inputs.freeze import editable_note, is_freeze_output
from lockship.inputs.model import IndexOptions, InputRequirement, Inputs, Source, _FormatControl

__all__ = ["read_requirements"]


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
        self._freeze: set[str] = set()  # files that are `pip freeze` output
        self._notes: list[str] = []

    def inputs(self) -> Inputs:
        return Inputs(
            requirements=tuple(self._requirements),
            constraints=tuple(self._constraints),
            options=self._options.build(),
            files=tuple(self._files.values()),
            notes=tuple(self._notes),
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
        if is_freeze_output(text):
            self._freeze.add(display)
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
            if option.name == "--editable" and source.path in self._freeze:
                self._notes.append(editable_note(where, f"{option.spelled} {option.value}"))
                return
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
            from urllib.request import url2pathname  # noqa: PLC0415 - pulls in http.client, ssl

            value = url2pathname(parts.path)
        else:
            scheme = "remote"
    if scheme not in ("", "file") or "://" in value:
        raise InputError(
            f"remote requirement files are not supported; download it first: {value}",
            where=where,
            hint="save the file next to this one and include it with a relative path",
        )
    return _absolute(base / value)


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


