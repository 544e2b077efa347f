#!/usr/bin/env bash
# `vagrant validate` of the Vagrantfile for each provider it configures: libvirt (Debian's
# vagrant-libvirt plugin) and VirtualBox. VirtualBox is not packaged in Debian 12 and vagrant
# asks its VBoxManage for a version before it loads that provider's config checks: a stub on
# a private PATH answers only `--version`; nothing else is run. Vagrant's home and the
# project's .vagrant/ go to a temporary directory, removed at the end: the host keeps no
# trace (no ~/.vagrant.d).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v vagrant >/dev/null || { echo "check-vagrantfile: vagrant missing (scripts/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/pyrunc-vagrant.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
cat > "$tmp/bin/VBoxManage" <<'STUB'
#!/bin/sh
[ "$1" = --version ] && { echo 7.0.14r161095; exit 0; }
echo "VBoxManage stub (scripts/check-vagrantfile.sh): $*" >&2
exit 1
STUB
chmod +x "$tmp/bin/VBoxManage"
export VAGRANT_HOME=$tmp/home VAGRANT_DOTFILE_PATH=$tmp/dot VAGRANT_CWD=$PWD
export VAGRANT_CHECKPOINT_DISABLE=1
status=0
for provider in libvirt virtualbox; do
    grep -q "config.vm.provider \"$provider\"" Vagrantfile \
        || { echo "check-vagrantfile: no $provider provider in the Vagrantfile" >&2; status=1; }
    if out=$(PATH="$tmp/bin:$PATH" VAGRANT_DEFAULT_PROVIDER=$provider vagrant validate 2>&1); then
        echo "check-vagrantfile: $provider: $out"
    else
        echo "check-vagrantfile: $provider: $out" >&2
        status=1
    fi
done
exit $status
