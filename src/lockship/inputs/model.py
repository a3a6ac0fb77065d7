"""The input model: what lockship read from requirements files and pyproject.toml."""


from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from lockship.errors import InputError
from lockship.inputs._parse import _NAME_RE, _unique

__all__ = ["IndexOptions", "InputRequirement", "Inputs", "Source", "merge_inputs"]


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
    notes: tuple[str, ...] = ()  # warnings for the user (skipped lines, out-of-scope parts)
    python_version: Optional[str] = None  # a conda environment's python=X.Y[.Z]


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
        notes=tuple(note for part in parts for note in part.notes),
        python_version=next((p.python_version for p in parts if p.python_version), None),
    )
