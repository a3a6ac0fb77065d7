"""Helpers the requirements-file parser and the pyproject reader share."""


from __future__ import annotations

import codecs
import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn, Optional, Union

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

from lockship.errors import InputError

__all__: list[str] = []


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


