#!/usr/bin/env bash
# Sets up and runs the whole test suite: tests/ (no privilege) and integration/ (real
# containers; as root, and in CI they must run: they are never skipped there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# every integration test runs against pyrunc and against runc, the oracle, on the same bundle
export PYRUNC_IT_RUNTIMES=${PYRUNC_IT_RUNTIMES:-pyrunc,runc}
exec .venv/bin/python -m pytest tests integration -q -p no:cacheprovider "$@"
