"""lockship's inputs: pip requirements files, pyproject.toml, and what was read from them.

- ``model``: :class:`Inputs` and its parts, and :func:`merge_inputs`;
- ``requirements_file``: :func:`read_requirements`, pip's requirements-file syntax;
- ``pyproject``: :func:`read_pyproject`, ``[project]`` and PEP 735 groups.
"""

from __future__ import annotations

from lockship.inputs.model import IndexOptions, InputRequirement, Inputs, Source, merge_inputs
from lockship.inputs.pyproject import read_pyproject
from lockship.inputs.requirements_file import read_requirements

__all__ = [
    "IndexOptions",
    "InputRequirement",
    "Inputs",
    "Source",
    "merge_inputs",
    "read_pyproject",
    "read_requirements",
]
