"""Mount sources from the runtime's side (issue 11.8): in a user namespace the init is a
mapped id, yet a bind source under a directory only the host's root may enter is mounted,
and an idmapped mount is made (the runtime opens the sources and makes the idmapped trees
in the container's mount namespace, and hands the fds to the init)."""
import errno
import os
import subprocess

import pytest


def _in_userns(b):
    # the mount point exists: the mapped root cannot create it in root's rootfs
    os.mkdir(os.path.join(b.rootfs, "data"))
    return b.add_user_namespace()


def _private_source(workdir):
    """workdir/private (0700, root's) /src/file: the mapped root cannot enter it."""
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    src = os.path.join(private, "src")
    os.mkdir(src, 0o755)
    with open(os.path.join(src, "file"), "w") as f:
        f.write("hello\n")
    os.chmod(os.path.join(src, "file"), 0o644)
    return src


def test_bind_source_under_a_0700_directory(runtime, bundle, workdir, probe):
    src = _private_source(workdir)
    b = _in_userns(bundle.make("b"))
    b.add_mount("/data", "bind", src, ["rbind", "ro"])
    report = probe(b, "read=/data/file", "write=/data/new")
    assert report.result("read=/data/file")["head"] == "hello\n"
    assert report.errno("write=/data/new") == errno.EROFS
    assert "ro" in report.options("/data")


def test_missing_bind_source_is_one_line(runtime, bundle, workdir):
    b = _in_userns(bundle.make("b"))
    b.add_mount("/data", "bind", os.path.join(workdir, "nothing-here"), ["rbind"])
    proc = runtime.run(b, "it-missing-src")
    assert proc.returncode == 1
    if runtime.name == "pyrunc":
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "mounts[" in lines[0] and "nothing-here" in lines[0], \
            proc.stderr


@pytest.mark.pyrunc_only("runc 1.1 predates idmapped mounts (spec 1.2)")
def test_idmapped_mount_in_a_user_namespace(runtime, bundle, workdir, probe):
    src = _private_source(workdir)
    os.chown(os.path.join(src, "file"), 0, 0)
    b = _in_userns(bundle.make("b"))
    # the file's owner 0 on disk is seen as 100000 + 7 through the mount, which the
    # container's own map shows as 7
    b.config["mounts"].append({
        "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 100007, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 100008, "size": 1}]})
    report = probe(b, "stat=/data/file", "stat=/probe")
    st = report.result("stat=/data/file")
    assert (st["errno"], st["uid"], st["gid"]) == (0, 7, 8)
    assert os.stat(os.path.join(src, "file")).st_uid == 0


@pytest.mark.pyrunc_only("runc 1.1.5 fails: mount sysfs EPERM (newer runc binds /sys)")
def test_sysfs_in_a_user_namespace_without_network_namespace(runtime, bundle, probe):
    """The kernel refuses sysfs to a user namespace that does not own the network
    namespace: the host's /sys is bound, read-only throughout."""
    b = _in_userns(bundle.make("b"))
    b.drop_namespace("network")
    report = probe(b, "chmod=/sys/kernel", "statfs=/sys/kernel")
    sys_mount = report.mount("/sys")
    assert sys_mount["fstype"] == "sysfs"
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(sys_mount["options"].split(","))
    assert report.errno("chmod=/sys/kernel") == errno.EROFS


def test_a_read_only_host_source_stays_locked(runtime, bundle, workdir, probe):
    """A source the host mounted read-only stays read-only for the container's root, even
    with CAP_SYS_ADMIN in its user namespace: the kernel locks the flags of mounts that
    came from the host's namespace. (A tree cloned with open_tree in the host's namespace
    and attached in the container's would carry no lock: linux/mountsrc.py.)"""
    src = _private_source(workdir)
    ro = os.path.join(workdir, "ro-src")
    os.mkdir(ro)
    subprocess.run(["mount", "--bind", src, ro], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
        b = _in_userns(bundle.make("b"))
        b.add_mount("/data", "bind", ro, ["rbind"])
        caps = b.config["process"]["capabilities"]
        for kind in ("bounding", "effective", "permitted"):
            caps[kind] = sorted(set(caps[kind]) | {"CAP_SYS_ADMIN"})
        report = probe(b, "remount=/data", "write=/data/new")
        assert report.errno("remount=/data") == errno.EPERM
        assert report.errno("write=/data/new") == errno.EROFS
    finally:
        subprocess.run(["umount", ro], check=True)
