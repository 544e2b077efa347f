#!/usr/bin/env bash
# Sets up pyrunc, then `pyrunc demo`: builds bundles from the host (busybox-static rootfs),
# applies the article's hardened snippets, runs each and verifies it claim by claim.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec bin/pyrunc demo "$@"
