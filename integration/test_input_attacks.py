"""Attacks through the runtime's inputs (issue 9): container ids, config values that become
host paths, the device cgroup, the state files' permissions, a corrupted state.json, and a
process.args[0] that cannot run. Each test checks the effect from the host: decoy files
that must survive, a file that must stay unwritten, a device that must not open.
"""
import errno
import json
import os
import shutil
import subprocess

import pytest

from integration import itlib

CGROUP = "/sys/fs/cgroup"


def one_line(runtime, proc, *words):
    """pyrunc's refusal is one line naming what it refuses; runc's is its own."""
    assert proc.returncode != 0, (proc.returncode, proc.stdout, proc.stderr)
    if runtime.name == "pyrunc":
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyrunc:"), proc.stderr
        for w in words:
            assert w in lines[0], (w, lines[0])


def log_text(runtime):
    with open(runtime.log) as f:
        return f.read()


def decoys(*dirs):
    made = {}
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "decoy")
        with open(path, "w") as f:
            f.write("keep me")
        made[path] = "keep me"
    return made


def assert_untouched(made):
    for path, text in made.items():
        with open(path) as f:
            assert f.read() == text, path


# -- 2: ids that are not names

@pytest.mark.parametrize("cid", ["..", ".", ""])
def test_a_traversal_id_removes_nothing_outside_root_id(runtime, bundle, workdir, cid):
    # a live container under the same --root, and decoys in --root and in its parent
    b = bundle.make("b")
    b.config["process"]["args"] = ["sleep", "60"]
    good = itlib.new_id()
    assert runtime.create(b, good).returncode == 0
    made = decoys(workdir, runtime.root)
    for command in (["delete", "--force"], ["delete"], ["kill"], ["state"], ["start"],
                    ["pause"]):
        proc = runtime.cmd(*command, cid)
        one_line(runtime, proc, "invalid", "container ID")
        assert_untouched(made)
    assert os.path.isdir(os.path.join(runtime.root, good))
    assert runtime.state(good)["status"] == "created"


# -- 3: a hugepage size that climbs out of the cgroup

def test_a_hugepage_size_cannot_write_a_host_file(runtime, bundle, workdir):
    """The v2 tree holds hugetlb here. pageSize is spliced into hugetlb.<size>.max: a size
    "x/../../..." walks up from a directory hugetlb.x below the container's cgroup (one
    the attacker made earlier, here the test) to any file named *.max on the host."""
    cid = itlib.new_id()
    base = f"{cid}-atk"
    planted = os.path.join(CGROUP, "unified", base, "hugetlb.x")
    os.makedirs(planted)
    decoy = os.path.join(workdir, "decoy.max")
    with open(decoy, "w") as f:
        f.write("keep me")
    b = bundle.make("b")
    b.config["linux"]["cgroupsPath"] = f"/{base}"
    b.config["linux"]["resources"] = {"hugepageLimits": [
        {"pageSize": "x/" + "../" * 12 + decoy.lstrip("/").removesuffix(".max"),
         "limit": 2 << 20}]}
    b.config["process"]["args"] = ["true"]
    try:
        proc = runtime.run(b, cid)
        with open(decoy) as f:
            assert f.read() == "keep me"
        one_line(runtime, proc, "linux.resources.hugepageLimits[0].pageSize")
    finally:
        runtime.delete(cid, force=True)
        for d in [planted] + [os.path.join(CGROUP, h, base) for h in os.listdir(CGROUP)]:
            if os.path.isdir(d):
                os.rmdir(d)


# -- 4: linux.devices do not widen the device cgroup

@pytest.mark.parametrize("rules", ["deny-all", "none"])
def test_listed_devices_open_only_if_the_rules_allow(runtime, bundle, probe, rules):
    """linux.devices makes the nodes of the host's tty1 (c 4:1) and fuse (c 10:229); the
    device cgroup (v1 here) decides whether they open: with a deny-all rule, or with no
    rules at all, only the default devices do (runc and crun alike)."""
    b = bundle.make("b")
    b.config["linux"]["devices"] = [
        {"path": "/dev/tty1", "type": "c", "major": 4, "minor": 1, "fileMode": 0o666},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]
    if rules == "none":
        b.config["linux"].pop("resources", None)
    else:
        b.config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    report = probe(b, "openw=/dev/tty1", "openw=/dev/fuse", "rw=/dev/null",
                   "stat=/dev/tty1")
    assert report.result("stat=/dev/tty1")["major"] == 4  # the node is there
    assert report.errno("openw=/dev/tty1") == errno.EPERM
    assert report.errno("openw=/dev/fuse") == errno.EPERM
    assert report.errno("rw=/dev/null") == 0


def test_an_allow_rule_opens_a_listed_device(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]
    b.config["linux"]["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}
    assert probe(b, "openw=/dev/fuse").errno("openw=/dev/fuse") == 0


# -- 5: state files under umask 000; a state root another user controls

def test_state_files_are_private_under_umask_000(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["args"] = ["sleep", "60"]
    b.config["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    # pyrunc caches the compiled filter under --root: that file too
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    cid = itlib.new_id()
    old = os.umask(0)
    try:
        assert runtime.create(b, cid).returncode == 0
    finally:
        os.umask(old)
    top = os.stat(runtime.root)
    assert top.st_mode & 0o022 == 0, oct(top.st_mode)
    seen = set()
    for dirpath, dirnames, filenames in os.walk(runtime.root):
        for name in dirnames:
            mode = os.stat(os.path.join(dirpath, name)).st_mode
            assert mode & 0o022 == 0, (name, oct(mode))
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if name == "exec.fifo" and runtime.name != "pyrunc":
                continue  # runc: 0622, its init reopens it as any user (pyrunc's holds it)
            assert st.st_mode & 0o077 == 0, (name, oct(st.st_mode))
            seen.add(name)
    assert {"state.json", "config.json"} <= seen or runtime.name != "pyrunc", seen
    if runtime.name == "pyrunc":
        assert os.listdir(os.path.join(runtime.root, ".seccomp-cache"))


@pytest.mark.pyrunc_only("runc 1.1.5 does not check who owns its --root")
@pytest.mark.parametrize("change", ["chown", "chmod"])
def test_a_state_root_another_user_controls_is_refused(runtime, bundle, change):
    b = bundle.make("b")
    b.config["process"]["args"] = ["sleep", "60"]
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    if change == "chown":
        os.chown(runtime.root, 65534, 65534)
    else:
        os.chmod(runtime.root, 0o777)
    try:
        for proc in (runtime.state_cp(cid), runtime.list(), runtime.delete(cid, force=True),
                     runtime.create(b, itlib.new_id())):
            one_line(runtime, proc, f"state root {runtime.root}")
        assert os.path.isdir(os.path.join(runtime.root, cid))
    finally:
        os.chown(runtime.root, 0, 0)
        os.chmod(runtime.root, 0o700)


# -- 7: a corrupt state.json

def corrupt(text, path):
    """The corruptions; each keeps or drops what delete --force may trust."""
    if text == "truncated":
        with open(path) as f:
            data = f.read()
        return data[:len(data) // 2]
    if text == "missing-fields":
        data = json.loads(open(path).read())
        for key in ("bundle", "rootfs", "created", "ociVersion"):
            data.pop(key)
        return json.dumps(data)
    if text == "wrong-start-time":
        data = json.loads(open(path).read())
        data["pidStartTime"] += 1
        data["rootfs"] = None
        return json.dumps(data)
    return {"garbage": "\x00\x01garbage{", "null": "null", "list": "[1, 2]",
            "empty": ""}[text]


@pytest.mark.pyrunc_only("runc 1.1.5 cannot delete --force a container whose state.json "
                         "is corrupt: it fails and leaves the process and the directory")
@pytest.mark.parametrize("text", ["truncated", "garbage", "null", "list", "empty",
                                  "missing-fields", "wrong-start-time", "directory"])
def test_a_corrupt_state_is_one_line_listed_and_deleted(runtime, bundle, text):
    b = bundle.make("b")
    b.config["process"]["args"] = ["sleep", "60"]
    good, bad = itlib.new_id(), itlib.new_id()
    for cid in (good, bad):
        assert runtime.create(b, cid).returncode == 0
    pid = runtime.state(bad)["pid"]
    started = itlib.start_time(pid)
    state_file = os.path.join(runtime.root, bad, "state.json")
    if text == "directory":
        os.unlink(state_file)
        os.makedirs(os.path.join(state_file, "sub"))
    else:
        damaged = corrupt(text, state_file)
        with open(state_file, "w") as f:
            f.write(damaged)
    for command in (["state"], ["kill"], ["delete"]):
        one_line(runtime, runtime.cmd(*command, bad), state_file, "corrupt state")
    listed = runtime.cmd("list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    status = {s["id"]: s["status"] for s in json.loads(listed.stdout)}
    assert status == {good: "created", bad: "corrupt"}
    assert state_file in log_text(runtime)  # the warning, in --log
    proc = runtime.delete(bad, force=True)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(os.path.join(runtime.root, bad))
    if text == "wrong-start-time":
        # the pid is not the container's any more, as far as the state says: not killed
        assert itlib.alive(pid, started) and "not killed" in log_text(runtime)
        os.kill(pid, 9)
        assert itlib.wait_gone(pid, started)
        for d in itlib.cgroups_named([bad]):
            os.rmdir(d)
    else:
        assert itlib.wait_gone(pid, started), "the container's process survived"
        assert not itlib.cgroups_named([bad])
    assert runtime.state(good)["status"] == "created"


# -- 8: process.args[0] that cannot run

@pytest.mark.parametrize("arg0, why", [("/etc", "is a directory"),
                                       ("/not-exec", "permission denied"),
                                       ("/missing", "no such file"),
                                       ("not-exec", "not found in $PATH")])
def test_create_fails_when_args0_cannot_run(runtime, bundle, arg0, why):
    b = bundle.make("b")
    shutil.copy(os.path.join(b.rootfs, "bin", "busybox"), os.path.join(b.rootfs, "not-exec"))
    os.chmod(os.path.join(b.rootfs, "not-exec"), 0o644)
    b.config["process"]["args"] = [arg0]
    b.config["process"]["env"] = ["PATH=/:/bin"]
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.create(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    if runtime.name == "pyrunc":
        assert "process.args[0]" in proc.stderr and arg0 in proc.stderr
        assert why in proc.stderr, proc.stderr


def test_args0_is_checked_as_the_process_user(runtime, bundle):
    """Executable by root but not by the container's user: create fails, as runc's."""
    b = bundle.make("b")
    target = os.path.join(b.rootfs, "root-only")
    shutil.copy(os.path.join(b.rootfs, "bin", "busybox"), target)
    os.chmod(target, 0o700)
    b.config["process"]["args"] = ["/root-only"]
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.create(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "permission denied" in proc.stderr, proc.stderr


def test_a_cgroups_path_cannot_climb_out_of_its_hierarchy(runtime, bundle, workdir):
    """runc's rule: '..' in cgroupsPath is cleaned as from the hierarchy's root, so the
    directories land inside each hierarchy, never at the host path the dots point to."""
    cid = itlib.new_id()
    name = f"{cid}-cg"
    b = bundle.make("b")
    b.config["linux"]["cgroupsPath"] = "/" + "../" * 8 + workdir.lstrip("/") + "/" + name
    b.config["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup"]
    b.drop_namespace("cgroup")
    try:
        proc = runtime.run(b, cid)
        assert proc.returncode == 0, proc.stderr
        assert not os.path.exists(os.path.join(workdir, name))
        memory = [line for line in proc.stdout.splitlines() if ":memory:" in line]
        assert memory and memory[0].endswith(workdir + "/" + name), proc.stdout
    finally:
        # the runtimes remove the container's own directory, not the parents they made
        parts = workdir.strip("/").split("/") + [name]
        for hierarchy in os.listdir(CGROUP):
            for depth in range(len(parts), 0, -1):
                try:
                    os.rmdir(os.path.join(CGROUP, hierarchy, *parts[:depth]))
                except OSError:
                    pass
