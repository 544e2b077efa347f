"""The runtime never hands the container a way out: each test tries the attack of a runc CVE
class and checks from the host that it failed.

- CVE-2019-5736: the container's program is /proc/self/exe, which during the init's execve
  would be the runtime's own binary (for pyrunc: the host's Python), reopened for writing.
- CVE-2021-30465: a symlink in the rootfs sends a mount destination outside the rootfs.
- CVE-2024-21626: process.cwd through a file descriptor the runtime left open
  (/proc/self/fd/N) puts the container's cwd on the host.
- CVE-2022-29162: `exec --cap` gave inheritable capabilities.
- CVE-2026-47766 (crun): the rootfs's /dev is a symlink to a host directory, and the
  device nodes were made there.
"""
import hashlib
import os
import sys

import pytest

from integration import itlib


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.pyrunc_only("pyrunc's defence (runc's is cloning its own binary)")
def test_proc_self_exe_never_reaches_the_runtime_binary(runtime, bundle):
    """Entry point /bin/evil -> /proc/self/exe. pyrunc execs through a sealed memfd, so the
    kernel resolves /proc/self/exe to that stub, which finds no program to run (exit 127).
    Without it the container would run, and could rewrite, the host's interpreter."""
    b = bundle.make("b")
    os.symlink("/proc/self/exe", os.path.join(b.rootfs, "bin", "evil"))
    b.config["process"]["args"] = ["/bin/evil"]
    interpreter = os.path.realpath(sys.executable)
    before = sha256(interpreter)
    proc = runtime.run(b, itlib.new_id())
    # 127: the stub's own "no program" exit; the host's Python would have run (or failed
    # loading its libraries inside the busybox rootfs, with another status)
    assert proc.returncode == 127, (proc.returncode, proc.stderr)
    assert sha256(interpreter) == before


def test_mount_destination_symlink_stays_inside_rootfs(runtime, bundle, workdir, probe):
    outside = os.path.join(workdir, "outside")
    os.mkdir(outside)
    b = bundle.make("b")
    # /escape -> an absolute host path; the mount must land at rootfs/<that path>/x
    os.symlink(outside, os.path.join(b.rootfs, "escape"))
    b.add_mount("/escape/x", "tmpfs", "tmpfs", ["size=1m"])
    report = probe(b, f"statfs={outside}/x")
    inside = report.mounts_at(f"{outside}/x")
    assert inside and inside[0]["fstype"] == "tmpfs"
    assert report.result(f"statfs={outside}/x")["type"] == itlib.TMPFS_MAGIC
    # created inside the rootfs, not on the host
    assert os.path.isdir(os.path.join(b.rootfs, outside.lstrip("/"), "x"))
    assert not os.path.exists(os.path.join(outside, "x"))


def test_a_dev_symlink_to_the_host_gets_no_device_node(runtime, bundle, workdir, request):
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 makes /dev's symlinks (fd, stdin, ptmx...) in the "
                                "host directory the rootfs's /dev symlink names"))
    outside = os.path.join(workdir, "outside-dev")
    os.mkdir(outside)
    with open(os.path.join(outside, "null"), "w") as f:
        f.write("marker\n")
    b = bundle.make("b", "sleep=0")
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    dev = os.path.join(b.rootfs, "dev")
    if os.path.isdir(dev):
        os.rmdir(dev)
    os.symlink(outside, dev)
    proc = runtime.run(b, itlib.new_id())
    if runtime.name == "pyrunc":
        # refused: the symlink leads nowhere inside the rootfs (pyrunc used to follow it
        # inside the rootfs, making the directories it names there, and run)
        assert proc.returncode == 1
        assert "root.path: /dev is a symlink to" in proc.stderr
        assert not os.path.exists(os.path.join(b.rootfs, outside.lstrip("/"))), \
            "directories made through the symlink"
    assert sorted(os.listdir(outside)) == ["null"]
    with open(os.path.join(outside, "null")) as f:
        assert f.read() == "marker\n"


@pytest.mark.parametrize("fd", range(3, 10))
def test_cwd_through_a_runtime_fd_is_refused(runtime, bundle, fd):
    b = bundle.make("b", "sleep=0")
    b.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
    proc = runtime.run(b, itlib.new_id())
    if proc.returncode == 0:
        # no such fd at that moment, or one inside the container: the cwd must be inside
        report = itlib.parse_report(proc.stdout)
        assert report["cwd"].startswith("/"), report["cwd"]
        assert not report["cwd"].startswith("(unreachable)")
    elif runtime.name == "pyrunc":
        assert "process.cwd" in proc.stderr, proc.stderr


def test_exec_caps_are_not_inheritable(runtime, bundle):
    """CVE-2022-29162: `exec --cap` must not put capabilities in the inheritable set (a
    file with inheritable capabilities would then gain them across execve)."""
    b = bundle.make("b")
    b.config["process"]["args"] = ["sleep", "30"]
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    proc = runtime.cmd("exec", "--cap", "CAP_SYS_ADMIN", cid, "grep", "Cap", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(":") for line in proc.stdout.splitlines())
    assert int(fields["CapInh"], 16) == 0
    assert int(fields["CapEff"], 16) & (1 << 21)  # CAP_SYS_ADMIN: the flag did apply
