#!/usr/bin/env bash
# A runnable, frozen copy of pyrunc, to benchmark a fixed tree while the working tree moves:
#   bench/snapshot.sh [REV] [DIR]        a committed revision (default HEAD; DIR default
#                                        /tmp/pyrunc-SHORTREV), through `git archive`
#   bench/snapshot.sh --worktree [DIR]   the working tree's pyrunc/ as it is now (default
#                                        /tmp/pyrunc-SHORTREV-worktree-HHMMSS)
# then:  .venv/bin/python bench/run.py --pyrunc DIR/bin/pyrunc
#        .venv/bin/python bench/phases.py --pyrunc-dir DIR
# Read-only for the repository. The generated cffi modules (pyrunc/_libc.py,
# pyrunc/_seccomp.py, not committed) are copied from the working tree; the launcher is
# scripts/setup.sh's (.venv python, -IS), with a comment naming what was copied.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
if [ "${1:-}" = "--worktree" ]; then
    short=$(git rev-parse --short HEAD)
    label="$short+worktree@$(date +%H:%M:%S)"
    dir=${2:-/tmp/pyrunc-$short-worktree-$(date +%H%M%S)}
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r pyrunc "$dir/"
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
else
    rev=${1:-HEAD}
    short=$(git rev-parse --short "$rev")
    label="$short"
    dir=${2:-/tmp/pyrunc-$short}
    rm -rf "$dir"
    mkdir -p "$dir"
    git archive "$rev" | tar -x -C "$dir"
    cp pyrunc/_libc.py pyrunc/_seccomp.py "$dir/pyrunc/"
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bash scripts/write-launcher.sh "$dir/bin/pyrunc" "$dir" "$site" \
    "bench/snapshot.sh: pyrunc $label, launched as scripts/setup.sh's bin/pyrunc is"
# compile once, so that no timed start pays for writing .pyc files
"$top/.venv/bin/python3" -IS -m compileall -q "$dir/pyrunc" >/dev/null
echo "$dir/bin/pyrunc"
