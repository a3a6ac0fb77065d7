"""lockship: carry Python dependencies across an air gap with a paper trail."""

from __future__ import annotations

__version__ = "0.1.0"  # the one place the version is written (flit reads it from here)

__all__ = ["__version__"]
