#!/usr/bin/env bash
# tests/e2e/run.sh [MACHINE...]  (default: bullseye-amd64 trixie-amd64)
#
# Builds the offline Debian machines (tests/e2e/airgap, a copy of ../shared/airgap)
# and runs the end-to-end case for each: lock + fetch + sign on this host, then
# sha256sum, install.py, lockship (installed from the bundle) verify + install,
# and imports inside the machine with no network. Needs root and the network.
# bookworm-arm64 runs under qemu-user (slow): tests/e2e/run.sh bookworm-arm64
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- bullseye-amd64 trixie-amd64
selector=$(printf ' or %s' "$@"); selector=${selector# or }
exec python -m pytest tests/e2e -m "e2e or slow_e2e" -k "$selector"
