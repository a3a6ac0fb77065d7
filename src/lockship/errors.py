"""One exception tree for everything lockship reports to a user.

Every error carries its exit code and says *where* the problem is (a file and
line, a package, a URL with credentials removed) and, where there is one, what
to do about it. Only ``cli.py`` turns these into output and an exit status.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import ClassVar, Optional

__all__ = [
    "AdvisoriesFoundError",
    "BuildError",
    "BusyError",
    "ConflictError",
    "ExitCode",
    "FilesystemError",
    "FreshnessError",
    "HashMismatchError",
    "IncompatibleTargetError",
    "InputError",
    "IntegrityError",
    "LockshipError",
    "NetworkError",
    "ResolutionError",
    "SignatureError",
    "VerificationError",
]


class ExitCode(enum.IntEnum):
    """Documented exit statuses (README, "Exit codes")."""

    OK = 0
    CHANGED = 1  # lock --check: out of date; diff: changes without red flags
    USAGE = 2  # bad command line
    INPUT = 3  # bad input file: requirements, pyproject, pipeline, target, lock, bundle layout
    RESOLUTION = 4  # no lock exists for the target
    NETWORK = 5  # an index or file could not be fetched
    INTEGRITY = 6  # a hash, size or file-set check failed
    SIGNATURE = 7  # signature missing, invalid, or not from an allowed signer
    BUILD = 8  # an sdist could not be built into a wheel usable on the target
    IO = 9  # the filesystem refused (disk full, permissions)
    BUSY = 10  # another lockship process holds the output or cache lock
    RED_FLAGS = 11  # diff: changes that need a reviewer's attention
    INCOMPATIBLE = 12  # install: the bundle's target does not fit the interpreter
    ADVISORIES = 13  # audit: known vulnerabilities in the transfer (not ignored)
    FRESHNESS = 14  # a bundle has expired, or is older than the one installed (rollback)
    LICENSE_POLICY = 15  # a licence the policy denies or does not allow
    INTERNAL = 70  # a bug in lockship
    INTERRUPTED = 130  # Ctrl-C
    BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`| head -1`)


class LockshipError(Exception):
    """Root of every error lockship raises on purpose.

    :param message: what is wrong, in one line.
    :param where: the file and line, package or URL it concerns.
    :param hint: what the user can do about it.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(
        self, message: str, *, where: Optional[str] = None, hint: Optional[str] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class InputError(LockshipError):
    """A file or option the user gave is malformed or inconsistent."""

    exit_code = ExitCode.INPUT


class ResolutionError(LockshipError):
    """The requirements cannot be satisfied for a target."""

    exit_code = ExitCode.RESOLUTION


class NetworkError(LockshipError):
    """An index page or a file could not be fetched."""

    exit_code = ExitCode.NETWORK


class IntegrityError(LockshipError):
    """Bytes did not match what a lock, manifest or index promised."""

    exit_code = ExitCode.INTEGRITY


class HashMismatchError(IntegrityError):
    """Downloaded or stored bytes have the wrong digest or size."""

    def __init__(
        self,
        *,
        what: str,
        url: Optional[str],
        expected_sha256: str,
        actual_sha256: str,
        expected_size: Optional[int] = None,
        actual_size: Optional[int] = None,
    ) -> None:
        self.what = what
        self.url = url
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.expected_size = expected_size
        self.actual_size = actual_size
        super().__init__(self._describe(), where=what)

    def _describe(self) -> str:
        parts = []
        if self.expected_size is not None and self.actual_size != self.expected_size:
            parts.append(f"size {self.actual_size} bytes, expected {self.expected_size}")
        if self.actual_sha256 != self.expected_sha256:
            parts.append(
                f"sha256 {self.actual_sha256}, expected {self.expected_sha256}"
            )
        source = f" (from {self.url})" if self.url else ""
        return "; ".join(parts or ["hash mismatch"]) + source


class VerificationError(IntegrityError):
    """A bundle check found one or more problems; all are listed."""

    def __init__(self, problems: Sequence[str], *, where: Optional[str] = None) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n  ".join([head, *self.problems]), where=where)


class ConflictError(IntegrityError):
    """A file name is already published with other bytes; nothing is overwritten.

    :param path: the file's path in the repository (or its URL on an index).
    :param published: where the bytes already there came from.
    :param offered: where the other bytes come from.
    """

    def __init__(
        self, *, path: str, published: str, offered: str, hint: Optional[str] = None
    ) -> None:
        self.path = path
        self.published = published
        self.offered = offered
        super().__init__(
            f"already published as {published}; refusing {offered}",
            where=path,
            hint=hint or "a published file name is never reused for other bytes; "
            "give the new file a new version or build tag",
        )


class SignatureError(LockshipError):
    """A signature is missing, invalid or made by a key that is not allowed."""

    exit_code = ExitCode.SIGNATURE


class BuildError(LockshipError):
    """An sdist could not be turned into metadata or a target-compatible wheel."""

    exit_code = ExitCode.BUILD


class FilesystemError(LockshipError):
    """Writing or reading a local file failed (disk full, permissions, ...)."""

    exit_code = ExitCode.IO


class BusyError(LockshipError):
    """Another lockship process is writing the same output or cache entry."""

    exit_code = ExitCode.BUSY


class IncompatibleTargetError(LockshipError):
    """A bundle made for one target was offered to an interpreter it does not fit."""

    exit_code = ExitCode.INCOMPATIBLE


class AdvisoriesFoundError(LockshipError):
    """An audit found advisories that are not ignored, and the run was told to fail on them."""

    exit_code = ExitCode.ADVISORIES


class FreshnessError(LockshipError):
    """A bundle has expired, or is older than the one already installed (rollback)."""

    exit_code = ExitCode.FRESHNESS
