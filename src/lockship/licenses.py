"""Licences of locked distributions, as SPDX expressions, and the policy a transfer must meet.

From a wheel's core metadata, in PEP 639's order of precedence:

1. ``License-Expression``, normalised with :mod:`packaging.licenses`;
2. else ``License`` when it is an SPDX expression, or one of a few common
   spellings that name exactly one SPDX licence (``Apache 2.0``, ``MIT License``);
3. else the ``License ::`` classifiers, when they map to one SPDX licence
   without doubt. ``BSD License``, ``Apache Software License`` (no version) and
   ``GNU General Public License v3`` (only, or or-later?) do not: they are
   "unknown", never a guess. Two classifiers that map to different licences are
   unknown too: the metadata does not say whether it is AND or OR.

A ``License`` text that maps to one licence and classifiers that map to another
contradict each other, and give "unknown". Whatever the metadata declared is
kept (:attr:`LicenseInfo.declared`), so a reviewer sees why.

The policy (``allow-licenses``, ``deny-licenses`` in ``[tool.lockship]`` and in
a pipeline's ``[lock]``) lists SPDX licence identifiers, each optionally
``WITH`` an exception. A package passes when one way of satisfying its
expression (one side of every ``OR``) uses no denied licence and, with an allow
list, only allowed ones. With an allow list, an unknown licence fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.metadata import parse_email

from lockship.errors import ExitCode, InputError, LockshipError

__all__ = [
    "UNKNOWN",
    "LicenseInfo",
    "LicensePolicy",
    "LicensePolicyError",
    "license_from_metadata",
    "normalize_policy_entry",
]

UNKNOWN = "unknown"

# Trove classifiers that name exactly one SPDX licence. Deliberately absent:
# "BSD License", "Apache Software License", "Python Software Foundation
# License", "GNU General Public License v2 (GPLv2)" (only or or-later?),
# "zlib/libpng License", "Artistic License", "Academic Free License (AFL)".
_CLASSIFIERS = {
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "License :: OSI Approved :: Blue Oak Model License (BlueOak-1.0.0)": "BlueOak-1.0.0",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: OSI Approved :: Common Development and Distribution License 1.0 (CDDL-1.0)":
        "CDDL-1.0",
    "License :: OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: OSI Approved :: European Union Public Licence 1.0 (EUPL 1.0)": "EUPL-1.0",
    "License :: OSI Approved :: European Union Public Licence 1.1 (EUPL 1.1)": "EUPL-1.1",
    "License :: OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)":
        "AGPL-3.0-or-later",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)":
        "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)":
        "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)":
        "LGPL-3.0-or-later",
    "License :: OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Mulan Permissive Software License v2 (MulanPSL-2.0)":
        "MulanPSL-2.0",
    "License :: OSI Approved :: Open Software License 3.0 (OSL-3.0)": "OSL-3.0",
    "License :: OSI Approved :: PostgreSQL License": "PostgreSQL",
    "License :: OSI Approved :: SIL Open Font License 1.1 (OFL-1.1)": "OFL-1.1",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
}

# ``License:`` spellings that are not SPDX but name one licence without doubt
# (compared case-insensitively, spaces collapsed).
_LICENSE_TEXTS = {
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "asl 2.0": "Apache-2.0",
    "bsd 2-clause": "BSD-2-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "isc license": "ISC",
    "mit license": "MIT",
    "the mit license": "MIT",
    "mpl 2.0": "MPL-2.0",
    "mozilla public license 2.0": "MPL-2.0",
}
_MAX_LICENSE_FIELD = 100  # longer is a licence text pasted into License:, not a name

Source = Literal["License-Expression", "License", "classifier"]


@dataclass(frozen=True)
class LicenseInfo:
    """A distribution's licence: the SPDX expression, where it came from, and what was declared."""

    spdx: Optional[str]  # normalised SPDX expression; None: unknown
    source: Optional[Source] = None
    declared: tuple[str, ...] = field(default=())  # the metadata's own words, for the reviewer

    @property
    def text(self) -> str:
        return self.spdx or UNKNOWN


def _spdx(text: str) -> Optional[str]:
    try:
        return str(canonicalize_license_expression(text))
    except InvalidLicenseExpression:
        return None


def _license_field(text: str) -> Optional[str]:
    line = " ".join(text.split())
    if not line or len(line) > _MAX_LICENSE_FIELD or "\n" in text.strip():
        return None
    return _LICENSE_TEXTS.get(line.lower()) or _spdx(line)


def license_from_metadata(data: bytes) -> LicenseInfo:
    """The licence a METADATA or PKG-INFO file declares (see the module docstring)."""
    raw, _ = parse_email(data)
    expression = raw.get("license_expression")
    if expression:
        return LicenseInfo(_spdx(expression), "License-Expression", (expression,))
    license_text = (raw.get("license") or "").strip()
    classifiers = [c for c in raw.get("classifiers", []) if c.startswith("License ::")]
    declared = tuple(
        ([f"License: {license_text.splitlines()[0][:_MAX_LICENSE_FIELD]}"] if license_text else [])
        + classifiers
    )
    from_field = _license_field(license_text) if license_text else None
    mapped = {_CLASSIFIERS.get(c) for c in classifiers}
    from_classifiers = mapped.pop() if len(mapped) == 1 else None
    if from_field and from_classifiers and from_field != from_classifiers:
        return LicenseInfo(None, None, declared)  # they contradict each other
    if from_field:
        return LicenseInfo(from_field, "License", declared)
    if from_classifiers:
        return LicenseInfo(from_classifiers, "classifier", declared)
    return LicenseInfo(None, None, declared)


# --- policy -------------------------------------------------------------------------------


class LicensePolicyError(LockshipError):
    """A transfer carries a licence that the policy denies or does not allow."""

    exit_code = ExitCode.LICENSE_POLICY

    def __init__(
        self, violations: Sequence[tuple[str, str, str]], *, where: Optional[str] = None
    ) -> None:
        self.violations = list(violations)
        count = len(self.violations)
        plural = ("s", "") if count != 1 else ("", "s")
        head = f"{count} package{plural[0]} break{plural[1]} the licence policy"
        super().__init__(
            "\n  ".join([head, *(f"{n} {v}: {why}" for n, v, why in self.violations)]),
            where=where,
            hint="remove or replace them, or change allow-licenses / deny-licenses",
        )


def normalize_policy_entry(text: str, *, where: str) -> str:
    """One ``allow-licenses``/``deny-licenses`` entry, normalised (``mit`` -> ``MIT``).

    :raises InputError: for an invalid SPDX expression, or one with AND/OR.
    """
    normalised = _spdx(text)
    if normalised is None:
        raise InputError(
            f"{text!r} is not an SPDX licence identifier",
            where=where,
            hint="use identifiers from https://spdx.org/licenses/, e.g. 'MIT' or 'GPL-3.0-only'",
        )
    if " AND " in normalised or " OR " in normalised or "(" in normalised:
        raise InputError(
            f"{text!r}: list licences one by one, not combined with AND/OR", where=where
        )
    return normalised


def _choices(expression: str) -> list[frozenset[str]]:
    """Every set of licence terms that satisfies ``expression`` (one side of each OR)."""
    from license_expression import (  # noqa: PLC0415 - only a policy needs the parser
        AND,
        OR,
        LicenseSymbol,
        LicenseWithExceptionSymbol,
        Licensing,
    )

    def walk(node: object) -> list[frozenset[str]]:
        if isinstance(node, OR):
            return [choice for arg in node.args for choice in walk(arg)]
        if isinstance(node, AND):
            combined = [frozenset[str]()]
            for arg in node.args:
                combined = [a | b for a in combined for b in walk(arg)][:1024]
            return combined
        if isinstance(node, (LicenseSymbol, LicenseWithExceptionSymbol)):
            return [frozenset([str(node)])]
        raise ValueError(expression)

    return walk(Licensing().parse(expression))


@dataclass(frozen=True)
class LicensePolicy:
    """Normalised ``allow-licenses`` and ``deny-licenses``; empty allows everything."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @classmethod
    def from_lists(
        cls, allow: Sequence[str], deny: Sequence[str], *, where: tuple[str, str]
    ) -> LicensePolicy:
        """Normalise the entries; ``where`` names the two settings in messages."""
        return cls(
            tuple(normalize_policy_entry(e, where=where[0]) for e in allow),
            tuple(normalize_policy_entry(e, where=where[1]) for e in deny),
        )

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def _matches(self, term: str, entries: tuple[str, ...]) -> bool:
        # "GPL-2.0-only WITH Classpath-exception-2.0" is also covered by "GPL-2.0-only".
        base = term.split(" WITH ", 1)[0]
        lowered = {e.lower() for e in entries}
        return term.lower() in lowered or base.lower() in lowered

    def problem(self, license_info: LicenseInfo) -> Optional[str]:
        """Why a licence breaks the policy, or None when it meets it."""
        if license_info.spdx is None:
            return "licence unknown, and allow-licenses is set" if self.allow else None
        choices = _choices(license_info.spdx)
        if any(
            not any(self._matches(t, self.deny) for t in choice)
            and (not self.allow or all(self._matches(t, self.allow) for t in choice))
            for choice in choices
        ):
            return None
        denied = sorted({t for c in choices for t in c if self._matches(t, self.deny)})
        if denied:
            return f"licence {license_info.spdx}: {', '.join(denied)} in deny-licenses"
        return f"licence {license_info.spdx} is not in allow-licenses"

    def violations(
        self, packages: Iterable[tuple[str, str, LicenseInfo]]
    ) -> list[tuple[str, str, str]]:
        """(name, version, why) for every package that breaks the policy."""
        out = []
        for name, version, info in packages:
            problem = self.problem(info)
            if problem is not None:
                out.append((name, version, problem))
        return out
