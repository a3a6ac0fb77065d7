"""A conda ``environment.yml`` as an input: its ``pip:`` section, and its Python version.

Conda packages themselves are out of lockship's scope (conda-pack and
conda-lock carry and lock those); only the ``pip:`` entries are locked, and
``python=X.Y[.Z]`` among the conda dependencies gives the target's Python
version when none is given.

The file is bounded (1 MiB) and composed with PyYAML's safe loader into nodes,
of which only ``dependencies`` and its ``pip`` list are walked: an alias can
make the YAML graph exponential, but never the walk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from packaging.requirements import InvalidRequirement, Requirement

from lockship.errors import InputError
from lockship.inputs.model import InputRequirement, Inputs, Source

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_BYTES", "is_environment_file", "read_environment"]

MAX_BYTES = 1024 * 1024
_PYTHON = re.compile(r"^python\s*(?:==?|>=)\s*(\d+\.\d+(?:\.\d+)?)(?:\.\*)?\s*$")


def is_environment_file(path: Path) -> bool:
    """Whether ``path`` is read as a conda environment file (``.yml``/``.yaml``)."""
    return path.suffix in (".yml", ".yaml")


def read_environment(path: Path, display: str) -> Inputs:
    """The ``pip:`` requirements of a conda environment file, with notes for the rest.

    :raises InputError: for a file that cannot be read, is too large, is not
        YAML, has no ``dependencies`` list, or has a ``pip:`` entry that is not
        a PEP 508 requirement.
    """
    import yaml  # noqa: PLC0415 - only a conda environment file needs it

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=display) from None
    if len(data) > MAX_BYTES:
        raise InputError(f"larger than {MAX_BYTES} bytes; refusing it", where=display)
    try:
        root = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid YAML: {exc}".splitlines()[0], where=display) from None
    deps = _value(root, "dependencies")
    if not isinstance(deps, yaml.SequenceNode):
        raise InputError(
            "no 'dependencies' list", where=display,
            hint="a conda environment file lists its packages under dependencies:",
        )
    conda: list[str] = []
    python: Optional[str] = None
    pip_nodes: list[yaml.Node] = []
    for item in deps.value:
        if isinstance(item, yaml.ScalarNode):
            conda.append(str(item.value))
            match = _PYTHON.match(str(item.value).strip())
            python = match.group(1) if match else python
        else:
            pip = _value(item, "pip")
            if isinstance(pip, yaml.SequenceNode):
                pip_nodes.extend(pip.value)
    requirements = []
    for node in pip_nodes:
        where = f"{display}:{node.start_mark.line + 1}"
        text = str(node.value).strip() if isinstance(node, yaml.ScalarNode) else ""
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            raise InputError(
                f"pip: entry {text or '(not a string)'!r} is not a requirement lockship can lock",
                where=where,
                hint="write NAME[EXTRAS] VERSION-SPECIFIERS; put pip options and -r files "
                "on the lockship command line instead",
            ) from None
        requirements.append(
            InputRequirement(requirement, Source(display, node.start_mark.line + 1))
        )
    others = [c for c in conda if _is_other(c)]
    notes = []
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        notes.append(
            f"{display}: only the pip: section is locked; the conda packages ({shown}) are "
            "out of lockship's scope: conda-pack or conda-lock carry and lock those"
        )
    return Inputs(
        requirements=tuple(requirements), files=(path,), notes=tuple(notes),
        python_version=python,
    )


def _is_other(spec: str) -> bool:
    name = re.split(r"[\s=<>!~]", spec, maxsplit=1)[0]
    return name not in ("python", "pip")


def _value(node: Optional[yaml.Node], key: str) -> Optional[yaml.Node]:
    import yaml  # noqa: PLC0415

    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None
