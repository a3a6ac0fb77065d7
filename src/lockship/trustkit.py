"""The reviewer's trust kit: what reaches the offline machine apart from any bundle.

A bundle's own ``install.py`` checks the bundle that contains it, so whoever
swaps a wheel can swap it too. The trust kit travels through the trusted channel
instead (in person, configuration management) and is then used for every
bundle: ``python3 -I KIT/install.py --bundle DIR --allowed-signers
KIT/allowed_signers``. It holds:

``allowed_signers``
    the reviewer's file, copied byte for byte once it parsed;
``install.py``
    the same standard-library verifier and installer ``lockship sign`` writes
    into bundles;
``install.py.sha256``
    ``sha256sum -c`` input for it, to compare with what the reviewer reads out;
``README.md``
    how to use the kit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lockship import sshsig
from lockship._fs import atomic_write_bytes, filesystem_error
from lockship._install_script import INSTALL_SCRIPT, NAMESPACE
from lockship.sign import render_install_script

__all__ = ["TrustKit", "write_trust_kit"]

ALLOWED = "allowed_signers"
README = "README.md"


@dataclass(frozen=True)
class TrustKit:
    """What :func:`write_trust_kit` wrote."""

    directory: Path
    written: tuple[Path, ...]
    script_sha256: str
    principals: tuple[str, ...]


def _readme(principals: tuple[str, ...], sha256: str) -> str:
    identity = principals[0] if len(principals) == 1 else "PRINCIPAL"
    return f"""# lockship trust kit

Carry this directory to the offline machine through a trusted channel, never
with a bundle. It verifies any number of bundles.

- `{ALLOWED}`: the keys allowed to sign bundles (principals: {", ".join(principals)},
  namespace `{NAMESPACE}`).
- `{INSTALL_SCRIPT}`: the verifier and installer (Python 3.8+, standard library
  only); sha256 `{sha256}`, also in `{INSTALL_SCRIPT}.sha256`.

Check the kit, then check and install a bundle by absolute paths:

    (cd /path/to/kit && sha256sum -c {INSTALL_SCRIPT}.sha256)
    python3 -I /path/to/kit/{INSTALL_SCRIPT} --bundle /path/to/bundle \\
        --allowed-signers /path/to/kit/{ALLOWED} --identity {identity} --venv /path/to/venv

`--verify-only` checks and installs nothing. Never run the `{INSTALL_SCRIPT}` inside a
bundle, nor any Python with a bundle as its current directory.
"""


def write_trust_kit(directory: Path, allowed_signers: Path) -> TrustKit:
    """Write the trust kit into ``directory`` (created if missing), each file atomically.

    :param allowed_signers: the reviewer's file; it must parse.
    :raises InputError: allowed_signers is unreadable or malformed.
    :raises FilesystemError: the directory cannot be written.
    """
    signers = sshsig.load_allowed_signers(allowed_signers)
    principals = tuple(
        sorted({p for s in signers for p in s.principals.split(",") if not p.startswith("!")})
    )
    script = render_install_script().encode()
    sha256 = hashlib.sha256(script).hexdigest()
    files = {
        ALLOWED: allowed_signers.read_bytes(),
        INSTALL_SCRIPT: script,
        f"{INSTALL_SCRIPT}.sha256": f"{sha256}  {INSTALL_SCRIPT}\n".encode(),
        README: _readme(principals, sha256).encode(),
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write_bytes(directory / name, data)
    except OSError as exc:
        raise filesystem_error(exc, Path(exc.filename or directory)) from None
    return TrustKit(
        directory=directory,
        written=tuple(directory / name for name in files),
        script_sha256=sha256,
        principals=principals,
    )
