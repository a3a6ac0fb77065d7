"""Read ``[project]`` dependencies, extras and PEP 735 dependency groups of pyproject.toml."""


from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from packaging.dependency_groups import DependencyGroupResolver
from packaging.errors import ExceptionGroup
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from lockship._toml import parse_toml
from lockship.errors import FilesystemError, InputError
from lockship.inputs._parse import (
    _absolute,
    _and_markers,
    _check_direct_url,
    _display,
    _one_line,
    _parse_pep508,
    _redacted,
)
from lockship.inputs.model import InputRequirement, Inputs, Source

__all__ = ["read_pyproject"]


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
    return parse_toml(text, where=display)


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


