#!/usr/bin/env bash
# Sets up everything pyrunc and its tests need on a fresh Debian 12 machine:
# system packages (as root), a virtualenv on Debian's python3, the cffi bindings,
# and bin/pyrunc, a launcher that starts Python with -I -S (no site processing).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(python3 python3-venv busybox-static libseccomp2 libseccomp-dev gcc libc6-dev
          runc crun strace podman containerd uidmap iproute2 util-linux time
          docker.io containernetworking-plugins netavark aardvark-dns slirp4netns fuse-overlayfs)
# only to check the Vagrantfile (scripts/check-vagrantfile.sh): no hypervisor, no recommends
LEAN_PACKAGES=(vagrant vagrant-libvirt)
missing_of() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
    done
}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    mapfile -t missing < <(missing_of "${PACKAGES[@]}")
    mapfile -t lean < <(missing_of "${LEAN_PACKAGES[@]}")
    if [ ${#missing[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]} ${lean[*]}"
        apt-get update -qq
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ${#lean[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${lean[@]}" >/dev/null
    fi
fi

PY=/usr/bin/python3   # Debian's: starts faster than a pyenv shim
[ -x "$PY" ] || PY=$(command -v python3)
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# jsonschema: tests only (the SARIF of `check --format sarif` against the 2.1.0 schema)
.venv/bin/pip install -q --disable-pip-version-check wheel setuptools cffi pytest pyseccomp pyroute2 \
    container-runtime-interface-api jsonschema 2>&1 \
    | grep -v "is ignored: it is neither" || true
.venv/bin/python native/build.py >/dev/null
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e . 2>&1 \
    | grep -v "is ignored: it is neither" || true

top=$(pwd)
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bash scripts/write-launcher.sh bin/pyrunc "$top" "$site"
echo "setup: ready: $top/bin/pyrunc"
