"""The probe itself: its report is right on the host, and it works under a strict allow-list."""
import errno
import os
import subprocess

import pytest

from integration import itlib

# the calls probe.c's header says it needs (start-up, report, hold); nothing else is allowed
PROBE_SYSCALLS = [
    "execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
    "prlimit64", "readlink", "getrandom", "mprotect",
    "getresuid", "getresgid", "getgroups", "getpid", "getppid", "uname", "getcwd", "umask",
    "openat", "read", "getdents64", "newfstatat", "close", "capget", "prctl", "write",
    "exit_group",
]


def run_probe(probe_binary, *words, **kw):
    proc = subprocess.run([probe_binary, *words], capture_output=True, text=True,
                          timeout=itlib.TIMEOUT, **kw)
    return proc, itlib.parse_report(proc.stdout)


def test_report_matches_the_host_view(probe_binary, workdir):
    proc, report = run_probe(probe_binary, f"write={workdir}/w", f"read={workdir}/w",
                             f"ls={workdir}", "call=socket_unix", "exit=3", cwd=workdir)
    assert proc.returncode == 3
    assert report["pid"] > 1 and report["ppid"] == os.getpid()
    assert (report["uid"], report["gid"]) == (os.getuid(), os.getgid())
    assert report["cwd"] == workdir
    assert report["ns"] == {k: v for k, v in itlib.host_ns_inodes().items()
                            if k in report["ns"]}
    assert report.errno(f"write={workdir}/w") == 0
    assert report.result(f"read={workdir}/w") == {"errno": 0, "bytes": 6, "head": "probe\n"}
    assert report.result(f"ls={workdir}")["entries"] == ["w"]
    assert report.errno("call=socket_unix") == 0
    assert report.mount("/proc")["fstype"] == "proc"
    assert report["errors"] == {}


def test_write_never_touches_an_existing_file(probe_binary, workdir):
    path = os.path.join(workdir, "keep")
    with open(path, "w") as f:
        f.write("original")
    _, report = run_probe(probe_binary, f"write={path}", f"rw={path}")
    assert report.errno(f"write={path}") == errno.EEXIST
    assert "error" in report.result(f"rw={path}")  # rw= is refused outside /dev
    with open(path) as f:
        assert f.read() == "original"


def test_probe_works_under_a_strict_allow_list(probe_binary):
    seccomp = pytest.importorskip("pyseccomp")

    def load_filter():
        # in the child, just before execve: only the listed calls, everything else EPERM
        f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
        for name in PROBE_SYSCALLS:
            f.add_rule(seccomp.ALLOW, name)
        f.load()

    proc = subprocess.run([probe_binary, "call=socket_inet", "statfs=/"], capture_output=True,
                          text=True, timeout=itlib.TIMEOUT, preexec_fn=load_filter,
                          close_fds=False)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    # the whole report came out: nothing the probe relies on was refused
    assert report["errors"] == {}
    assert report["status"]["Seccomp"] == "2"
    assert report["caps"]["seccomp"] == 2
    # and experiments outside the list report their errno instead of crashing the probe
    assert report.errno("call=socket_inet") == errno.EPERM
    assert report.errno("statfs=/") == errno.EPERM
