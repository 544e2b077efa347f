"""runc's 2025 mount races (CVE-2025-31133, -52565, -52881), played by a createContainer
hook: it runs in the container's mount namespace after the mounts and devices, before
pivot_root, as a process sharing the rootfs (another container, a client) could race.

runc 1.1.5, the oracle installed here, predates the fixes (1.2.8): these tests are
pyrunc's. None of them writes a host file even when the runtime is vulnerable: each checks
that the redirected object stayed out of reach, and that create failed with one line.
"""
import os
import socket

import pytest

from integration import itlib
from integration.test_exec_and_more import receive_pty

FIXED_IN = "runc 1.1.5 predates the fix (runc 1.2.8)"


def with_hook(b, script):
    b.config["hooks"] = {"createContainer": [{"path": "/bin/sh", "args": ["sh", "-ec", script]}]}


@pytest.mark.pyrunc_only(FIXED_IN)
def test_a_dev_null_swapped_for_a_symlink_masks_nothing_with_it(runtime, bundle):
    """CVE-2025-31133: maskedPaths bind /dev/null; a /dev/null made a symlink to
    core_pattern would bind core_pattern, writable, over /proc/keys."""
    b = bundle.make("b")
    b.config["process"]["args"] = ["sh", "-c", "test -w /proc/keys && echo WRITABLE; "
                                   "cat /proc/keys | head -c 64"]
    with_hook(b, f"rm {b.rootfs}/dev/null; "
                 f"ln -s /proc/sys/kernel/core_pattern {b.rootfs}/dev/null")
    proc = runtime.run(b, itlib.new_id())
    assert "WRITABLE" not in proc.stdout
    assert proc.returncode != 0, proc.stdout
    assert "/dev/null is not the null device" in proc.stderr, proc.stderr
    assert "linux.maskedPaths[" in proc.stderr and "[step: masked_paths]" in proc.stderr


@pytest.mark.pyrunc_only(FIXED_IN)
def test_a_masked_path_swapped_for_a_symlink_is_refused(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["args"] = ["true"]
    b.config["linux"]["maskedPaths"] = ["/masked"]
    with_hook(b, f"ln -s /proc/sys/kernel/core_pattern {b.rootfs}/masked")
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0
    assert "/masked is a symbolic link" in proc.stderr, proc.stderr


@pytest.mark.pyrunc_only(FIXED_IN)
def test_a_dev_console_swapped_for_a_symlink_is_not_bound(runtime, bundle, workdir):
    """CVE-2025-52565: the pty is bound on /dev/console; a symlink there would send the
    bind to its target."""
    b = bundle.make("b")
    b.config["process"]["terminal"] = True
    b.config["process"]["args"] = ["true"]
    with_hook(b, f"ln -sf /proc/sys/kernel/core_pattern {b.rootfs}/dev/console")
    path = os.path.join(workdir, "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    cid = itlib.new_id()
    try:
        proc = runtime.create(b, cid, "--console-socket", path)
        os.close(receive_pty(server))
    finally:
        server.close()
    assert proc.returncode != 0
    assert "/dev/console is not a file or a device" in proc.stderr, proc.stderr
    assert "[step: terminal]" in proc.stderr


@pytest.mark.pyrunc_only(FIXED_IN)
def test_a_sysctl_write_does_not_follow_a_mount_raced_over_proc(runtime, bundle):
    """CVE-2025-52881: a mount over a file under the container's /proc would take the
    sysctl write (runc's exploit: onto the host's core_pattern). Here the decoy is a file
    of the rootfs, which must stay as it was."""
    b = bundle.make("b")
    b.config["process"]["args"] = ["true"]
    b.config["linux"]["sysctl"] = {"kernel.domainname": "raced"}
    decoy = os.path.join(b.rootfs, "decoy")
    with open(decoy, "w") as f:
        f.write("untouched\n")
    with_hook(b, f"mount --bind {decoy} {b.rootfs}/proc/sys/kernel/domainname")
    proc = runtime.run(b, itlib.new_id())
    with open(decoy) as f:
        assert f.read() == "untouched\n"
    assert proc.returncode != 0
    assert "linux.sysctl.kernel.domainname" in proc.stderr, proc.stderr
    assert "Invalid cross-device link" in proc.stderr, proc.stderr


@pytest.mark.pyrunc_only("runc refuses a /proc symlink at mount time (CVE-2023-27561)")
def test_a_sysctl_write_does_not_follow_a_proc_symlink(runtime, bundle):
    """CVE-2019-16884 / 2023-27561: /proc a symlink elsewhere (there, runc's LSM labels
    went to a fake procfs). pyrunc has no LSM to write; its /proc writes refuse the link."""
    b = bundle.make("b")
    b.config["process"]["args"] = ["true"]
    b.config["linux"]["sysctl"] = {"kernel.domainname": "linked"}
    os.rmdir(os.path.join(b.rootfs, "proc"))
    os.mkdir(os.path.join(b.rootfs, "elsewhere"))
    os.symlink("/elsewhere", os.path.join(b.rootfs, "proc"))
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0
    assert "linux.sysctl.kernel.domainname" in proc.stderr, proc.stderr
