"""``pip freeze`` output as an input: what lockship does with its special lines.

A requirements file is taken to be freeze output when every line that is not
blank or a comment is ``name==version``, ``name @ URL`` or ``-e ...`` (the three
forms ``pip freeze`` writes), and at least one is ``name==version``. In such a
file an ``-e`` line (an editable install, usually the user's own project) is
skipped with a warning instead of refused; ``name @ file://...`` lines are
refused when locking, with a hint (see ``lockship.lock``).
"""

from __future__ import annotations

import re

__all__ = ["editable_note", "is_freeze_output"]

_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==\S+$")
_NAMED_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*@\s*\S+$")


def is_freeze_output(text: str) -> bool:
    """Whether ``text`` looks like ``pip freeze`` output (see the module docstring)."""
    pinned = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _PINNED.match(line):
            pinned = True
        elif not (_NAMED_URL.match(line) or line.startswith(("-e ", "--editable "))):
            return False
    return pinned


def editable_note(where: str, line: str) -> str:
    """The warning for an ``-e`` line skipped in freeze output."""
    return (
        f"{where}: skipped {line!r}: an editable install cannot be locked for another "
        "machine; list its dependencies, or build its wheel into a --find-links directory "
        "and require it by name"
    )
