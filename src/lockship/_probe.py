"""Describe this interpreter as a lockship target (stdlib only, Python 3.8+).

Run it ON THE TARGET MACHINE, before anything is installed there:

    python3 probe.py > target.json        # or: lockship probe > target.json

It prints the PEP 508 marker environment and the full ordered list of wheel
tags that the target's own pip accepts (``pip debug --verbose``), which is
exactly what ``lockship lock --target target.json`` needs. It imports nothing
outside the standard library and the target's pip, and never touches the network.
"""

import json
import os
import platform
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

PROBE_FORMAT = 1


def marker_environment() -> Dict[str, str]:
    """PEP 508 environment markers, computed as the PEP defines them."""
    info = sys.implementation.version
    impl_version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        impl_version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": impl_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def pip_tags(python: str) -> Tuple[List[str], Optional[str]]:
    """Tags from ``pip debug --verbose``: the list pip itself uses to pick wheels."""
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "debug", "--verbose"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            check=False,
        )
    except OSError:
        return [], None
    tags: List[str] = []
    collecting = False
    for line in proc.stdout.splitlines():
        if line.startswith("Compatible tags:"):
            collecting = True
        elif collecting:
            if line.startswith("  ") and line.strip() and not line.strip().startswith("..."):
                tags.append(line.strip())
            elif line.strip():
                collecting = False
    pip_version = None
    for line in proc.stdout.splitlines():
        if line.startswith("pip version:"):
            # pip debug says: pip version: pip 24.0 from <path> (python 3.11)
            words = line.split(":", 1)[1].split()
            pip_version = words[1] if len(words) > 1 and words[0] == "pip" else None
    return tags, pip_version


def vendored_tags() -> List[str]:
    """Fallback when ``pip debug`` is unavailable: pip's vendored packaging."""
    try:
        from pip._vendor.packaging import tags  # noqa: PLC0415
    except ImportError:
        return []
    return [str(t) for t in tags.sys_tags()]


def probe() -> Dict[str, Any]:
    tags, pip_version = pip_tags(sys.executable)
    source = "pip debug --verbose"
    if not tags:
        tags, source = vendored_tags(), "pip._vendor.packaging.tags.sys_tags()"
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        glibc = None
    result: Dict[str, Any] = {
        "probe_format": PROBE_FORMAT,
        "python_executable": sys.executable,
        "pip_version": pip_version,
        "glibc": glibc,
        "marker_environment": marker_environment(),
        "tags_source": source,
        "tags": tags,
    }
    if not tags:
        result["error"] = "no wheel tags found: is pip installed for this interpreter?"
    return result


def main() -> int:
    data = probe()
    json.dump(data, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if "error" in data else 0


if __name__ == "__main__":
    sys.exit(main())
