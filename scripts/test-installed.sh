#!/usr/bin/env bash
# The installed pyrunc, tested as users get it: a wheel built from this tree, installed with
# pip into a fresh virtualenv under a 0700 directory (as `python3 -m venv ~/venv` in a 0700
# home), with Debian's python3 and with the python3 on PATH when it is another one (the
# pyenv one under /root, itself in a 0700 home). Through pip's `pyrunc` script, and through
# the fast launcher `python -m pyrunc.launcher` writes: the first-use, article (its user
# namespace maps the container to uids that cannot read a 0700 home) and lifecycle
# integration tests, and `pyrunc demo`. Run by scripts/test.sh after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
tmp=$(mktemp -d /tmp/pyrunc-installed.XXXXXX)   # 0700
trap 'rm -rf "$tmp"' EXIT
quiet() { grep -v "is ignored: it is neither" || true; }

# build from a copy: setuptools' build/ in the tree would keep files deleted since
mkdir "$tmp/src"
cp -r pyproject.toml setup.py MANIFEST.in README.md native pyrunc examples "$tmp/src/"
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$tmp/src/pyrunc/_libc.py" "$tmp/src/pyrunc/_seccomp.py"
.venv/bin/pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$tmp/dist" "$tmp/src" 2>&1 | quiet
wheel=$(echo "$tmp"/dist/pyrunc-*.whl)

pythons=(/usr/bin/python3)
# the python3 on PATH, else pyenv's newest, when it is another one and new enough
for other in "$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)" \
             $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 2>/dev/null | sort -rV); do
    if [ -x "$other" ] && [ "$(readlink -f "$other")" != "$(readlink -f /usr/bin/python3)" ] \
            && "$other" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        pythons+=("$other")
        break
    fi
done
echo "test-installed: ${pythons[*]}"

export PYRUNC_IT_RUNTIMES=pyrunc
status=0
n=0
for py in "${pythons[@]}"; do
    n=$((n + 1))
    venv=$tmp/home/venv$n
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$wheel" 2>&1 | quiet
    "$venv/bin/python" -m pyrunc.launcher "$venv/bin/pyrunc-fast" "test-installed.sh"
    for cmd in "$venv/bin/pyrunc" "$venv/bin/pyrunc-fast"; do
        echo "test-installed: $cmd ($py)"
        PYRUNC_IT_PYRUNC=$cmd .venv/bin/python -m pytest -q -p no:cacheprovider \
            integration/test_first_use.py integration/test_article.py \
            integration/test_lifecycle.py || status=1
    done
    # the demo runs from the package's own copy of the article's examples
    if (cd / && "$venv/bin/pyrunc" demo >"$tmp/demo.out" 2>&1); then
        echo "test-installed: $venv/bin/pyrunc demo: ok"
    else
        echo "test-installed: $venv/bin/pyrunc demo failed:" >&2
        cat "$tmp/demo.out" >&2
        status=1
    fi
done
exit $status
