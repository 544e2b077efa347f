#!/usr/bin/env bash
# Sets up pyrunc, builds a bundle from the host (busybox-static rootfs + default config) and
# runs it: the container shows who it is and what the kernel applied to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if [ "$(id -u)" != 0 ]; then
    echo "demo: containers need root here (or use the Vagrantfile's VM)" >&2
    exit 1
fi
work=$(mktemp -d /tmp/pyrunc-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin/pyrunc bundle "$work/bundle" -- sh -c '
    echo "hello from pyrunc: pid $$ in $(hostname)"; id
    grep -E "^(Cap(Eff|Bnd)|NoNewPrivs|Seccomp):" /proc/self/status
    echo "root is read-only: $(touch /x 2>&1 || true)"'
bin/pyrunc --root "$work/state" run --explain --bundle "$work/bundle" demo
