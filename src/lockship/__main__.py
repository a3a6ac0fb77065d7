"""``python -m lockship``."""

from __future__ import annotations

from lockship.cli import main

if __name__ == "__main__":
    main()
