"""pyrunc.bundle: the bundles it makes run under the runtime; merge and CLI parsing."""
import argparse
import json
import os

import pytest

from integration import itlib
from pyrunc import bundle as bundle_mod
from pyrunc.errors import PyruncError


@pytest.mark.parametrize("kind", ["busybox", "host"])
def test_made_bundle_runs(runtime, workdir, kind):
    path = bundle_mod.make_bundle(
        os.path.join(workdir, kind), rootfs=kind,
        args=["sh", "-c", "id; ls /bin/cat >/dev/null && echo cat-found; cat /etc/group"])
    b = itlib.Bundle(path, json.load(open(os.path.join(path, "config.json"))))
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    # names come from the bundle's etc/passwd and etc/group, so id prints them
    assert "uid=0(root) gid=0(root)" in proc.stdout
    assert "cat-found" in proc.stdout
    assert "user:x:1000:" in proc.stdout


def test_host_bundle_has_the_libraries_ldd_names(workdir):
    path = bundle_mod.make_bundle(os.path.join(workdir, "h"), rootfs="host")
    rootfs = os.path.join(path, "rootfs")
    sh = os.path.join(rootfs, "bin", "sh")
    interp = bundle_mod.elf_interp(sh)
    assert interp and os.path.isfile(rootfs + interp)
    for lib in bundle_mod.shared_libraries("/bin/sh"):
        assert os.path.isfile(rootfs + lib), lib


def test_busybox_bundle_layout(workdir):
    path = bundle_mod.make_bundle(os.path.join(workdir, "bb"), rootfs="busybox", args=["ls"])
    rootfs = os.path.join(path, "rootfs")
    assert bundle_mod.elf_interp(os.path.join(rootfs, "bin", "busybox")) is None
    for applet in ("sh", "ls", "cat", "id", "echo", "sleep", "mount", "ps", "grep"):
        assert os.readlink(os.path.join(rootfs, "bin", applet)) == "busybox", applet
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        assert os.path.isdir(os.path.join(rootfs, d)), d
    config = json.load(open(os.path.join(path, "config.json")))
    assert config["process"]["args"] == ["ls"]
    assert config["process"]["terminal"] is False
    assert config["root"]["path"] == "rootfs"


def test_existing_bundle_needs_force(workdir):
    target = os.path.join(workdir, "again")
    bundle_mod.make_bundle(target, args=["true"])
    with pytest.raises(PyruncError, match="--force"):
        bundle_mod.make_bundle(target)
    bundle_mod.make_bundle(target, args=["false"], force=True)
    assert json.load(open(os.path.join(target, "config.json")))["process"]["args"] == ["false"]


def test_merge_rules():
    base = {"process": {"args": ["sh"], "env": ["A=1"], "user": {"uid": 0, "gid": 0}},
            "mounts": [{"destination": "/proc", "type": "proc"},
                       {"destination": "/tmp", "type": "tmpfs", "options": ["nosuid"]}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}}
    fragment = {"process": {"env": ["B=2"], "user": {"uid": 1000}},
                "mounts": [{"destination": "/tmp", "type": "tmpfs", "options": ["nodev"]},
                           {"destination": "/var/log", "type": "tmpfs"}],
                "linux": {"namespaces": [{"type": "user"},
                                         {"type": "network", "path": "/proc/1/ns/net"}]}}
    out = bundle_mod.merge(base, fragment)
    assert out["process"]["env"] == ["B=2"]                      # lists are replaced
    assert out["process"]["user"] == {"uid": 1000, "gid": 0}     # objects merge
    assert out["process"]["args"] == ["sh"]
    assert [m["destination"] for m in out["mounts"]] == ["/proc", "/tmp", "/var/log"]
    assert out["mounts"][1]["options"] == ["nodev"]               # same destination: replaced
    assert out["linux"]["namespaces"] == [{"type": "pid"},
                                          {"type": "network", "path": "/proc/1/ns/net"},
                                          {"type": "user"}]
    assert base["mounts"][1]["options"] == ["nosuid"]            # the base is not changed


def parse(argv):
    top = argparse.ArgumentParser()
    bundle_mod.configure(top.add_subparsers(dest="command").add_parser("bundle"))
    return bundle_mod.parse_words(top.parse_args(["bundle", *argv]))


def test_cli_grammar():
    assert parse(["d", "--rootfs", "host", "--", "sh", "-c", "echo"]) == (
        "d", "host", False, ["sh", "-c", "echo"])
    assert parse(["--force", "d"])[1:3] == (bundle_mod.default_rootfs(), True)
    assert parse(["d", "--", "ls", "--force"]) == (
        "d", bundle_mod.default_rootfs(), False, ["ls", "--force"])
    with pytest.raises(PyruncError, match="DIR"):
        parse([])
    with pytest.raises(PyruncError, match="--bogus"):
        parse(["d", "--bogus"])
