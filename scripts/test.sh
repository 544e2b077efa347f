#!/usr/bin/env bash
# Sets up and runs the whole test suite: tests/ (no privilege) and integration/ (real
# containers; as root, and in CI they must run: they are never skipped there); then the
# installed package (scripts/test-installed.sh: a wheel in a fresh virtualenv) and the
# Vagrantfile (scripts/check-vagrantfile.sh: `vagrant validate` for each provider).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# every integration test runs against pyrunc and against runc, the oracle, on the same bundle
export PYRUNC_IT_RUNTIMES=${PYRUNC_IT_RUNTIMES:-pyrunc,runc}
status=0
.venv/bin/python -m pytest tests integration -q -p no:cacheprovider "$@" || status=$?
bash scripts/test-installed.sh || status=1
bash scripts/check-vagrantfile.sh || status=1
exit $status
