#!/usr/bin/env bash
# Sets up and runs the whole test suite: tests/ (no privilege) and integration/ (real
# containers; as root, and in CI they must run: they are never skipped there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests integration -q -p no:cacheprovider "$@"
