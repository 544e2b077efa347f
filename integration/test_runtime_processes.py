"""Nothing in a container reaches the host through the runtime's own processes (issue 9).

A container holding CAP_SYS_PTRACE without a user namespace can look at every process of
the runtime in its pid namespace: the init waiting for `start`, and the child of each
`exec` until its execve. integration/attacker.c, run inside, lists their fds, tries to walk
to the host through them (a host /proc fd gives /proc/1/fd/N/<host pid>/root/...: the
test's own pid) and through their root, and reopens their /proc/PID/exe for writing once
they have exec'd (CVE-2019-5736). The runtime under attack is a copy of its binary (for
pyrunc: of the interpreter), never the host's: the test checks from the host that the copy
is unchanged.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from integration import itlib

ATTACKER_SRC = os.path.join(itlib.HERE, "attacker.c")
PTRACE = "CAP_SYS_PTRACE"


@pytest.fixture(scope="session")
def attacker_binary():
    with open(ATTACKER_SRC, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    target = os.path.join(itlib.CACHE, f"attacker-{digest}")
    if not os.path.exists(target):
        os.makedirs(itlib.CACHE, exist_ok=True)
        tmp = f"{target}.{os.getpid()}.tmp"
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", tmp, ATTACKER_SRC], check=True)
        os.rename(tmp, target)
    return target


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def use_a_copy(runtime, workdir):
    """Point the driver at a copy of the runtime's binary; returns the copy's path."""
    victim = os.path.join(workdir, "victim")
    os.mkdir(victim)
    if runtime.name == "pyrunc":
        copy = os.path.join(victim, "python3.11")
        shutil.copy2(os.path.realpath(sys.executable), copy)
        runtime.argv = [copy, "-IS", os.path.join(itlib.REPO, "bin", "pyrunc")]
    else:
        copy = os.path.join(victim, runtime.name)
        shutil.copy2(runtime.argv[0], copy)
        runtime.argv = [copy]
    return copy


def ptrace_bundle(bundle, attacker, caps=(PTRACE,)):
    b = bundle.make("b")
    shutil.copy(attacker, os.path.join(b.rootfs, "attacker"))
    b.config["process"]["args"] = ["/bin/sleep", "30"]
    b.config["process"]["terminal"] = False
    for key in ("bounding", "effective", "permitted"):
        have = b.config["process"]["capabilities"].setdefault(key, [])
        have.extend(c for c in caps if c not in have)
    assert not any(n["type"] == "user" for n in b.namespaces())
    return b


def wait_for(path, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if predicate(text):
            return text
        time.sleep(0.02)
    raise AssertionError(f"timed out; {path} holds:\n{text}")


def fds_of(text, pid):
    return [line.split(None, 5)[2:] for line in text.splitlines()
            if line.startswith(f"fd {pid} ")]


def assert_no_host_fd(entries, who):
    """No directory or file of the host's (one the container does not see at that path):
    pipes, sockets, exec.fifo (as runc's) and pyrunc's sealed memfd are no way out."""
    for fd, kind, where, link in ((e + [""])[:4] for e in entries):
        if int(fd) < 3:
            continue  # the container's stdio, as its caller gave it
        if kind in ("dir", "reg", "blk", "lnk") and not link.startswith("/memfd:"):
            assert where == "in", f"{who} holds a host {kind}: fd {fd} -> {link}"


@pytest.mark.parametrize("how", ["run", "exec"])
def test_the_process_inherits_no_ignored_signal(runtime, bundle, how):
    """Python ignores SIGPIPE and SIGXFSZ; the container's process must not (runc: none)."""
    b = bundle.make("b")
    b.config["process"]["args"] = ["grep", "SigIgn", "/proc/self/status"]
    if how == "run":
        proc = runtime.run(b, itlib.new_id())
    else:
        b.config["process"]["args"] = ["sleep", "30"]
        cid = itlib.new_id()
        assert runtime.create(b, cid).returncode == 0
        proc = runtime.cmd("exec", cid, "grep", "SigIgn", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["SigIgn:", "0" * 16]


def test_runtime_processes_expose_no_host_binary_or_fd(runtime, bundle, workdir,
                                                        attacker_binary):
    """The waiting init (created state) and an exec child, seen from inside by a holder of
    CAP_SYS_PTRACE: no directory or host file among their fds, no walk to a host file, and
    their executable cannot be rewritten after they exec'd."""
    original = runtime.argv
    copy = use_a_copy(runtime, workdir)
    before = sha256(copy)
    hostmark = os.path.join(workdir, "hostmark")
    with open(hostmark, "w") as f:
        f.write("host\n")
    b = ptrace_bundle(bundle, attacker_binary)
    log = os.path.join(b.rootfs, "attack.log")
    cid = itlib.new_id()
    try:
        proc = runtime.create(b, cid)
        assert proc.returncode == 0, proc.stderr
        with open(os.path.join(workdir, "exec.err"), "w+") as err:
            # a file, not a pipe: the attacker keeps its stdio
            proc = runtime.cmd("exec", "-d", cid, "/attacker", "/attack.log", hostmark,
                               str(os.getpid()), "/stop", "20", stdout=subprocess.DEVNULL,
                               stderr=err)
            err.seek(0)
            assert proc.returncode == 0, err.read()
        text = wait_for(log, lambda t: "exe-open 1 " in t)
        # exec children live a few milliseconds: a few tries to be seen
        for _ in range(10):
            proc = runtime.cmd("exec", cid, "/bin/true")
            assert proc.returncode == 0, proc.stderr
            with open(log) as f:
                text = f.read()
            if any(line.startswith("exe-open ") and not line.startswith("exe-open 1 ")
                   for line in text.splitlines()):
                break
        proc = runtime.start(cid)
        assert proc.returncode == 0, proc.stderr
        open(os.path.join(b.rootfs, "stop"), "w").close()
        text = wait_for(log, lambda t: "done\n" in t)
    finally:
        runtime.argv = original
    print(text)
    assert sha256(copy) == before, f"{runtime.name}'s binary was rewritten from the container"
    assert "WALK" not in text
    targets = [int(line.split()[1]) for line in text.splitlines() if line.startswith("target ")]
    assert 1 in targets, "the waiting init was not seen"
    assert "exe-open 1 ok" in text  # CAP_SYS_PTRACE opens it: the defence is elsewhere
    assert len(targets) > 1, "no exec child was seen in 10 execs"
    for pid in targets:
        assert_no_host_fd(fds_of(text, pid), f"pid {pid}")
        assert f"write {pid} ok" not in text


@pytest.mark.pyrunc_only("pyrunc's own guard: runc's init never runs a writable binary")
def test_exec_with_ptrace_into_an_unprotected_created_container_is_refused(runtime, bundle,
                                                                         attacker_binary):
    """Created without CAP_SYS_PTRACE, the init waits in the host's interpreter: an exec
    that adds the capability would reach it, so it is refused (after start it is allowed,
    and every later exec runs sealed)."""
    b = ptrace_bundle(bundle, attacker_binary, caps=())
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    proc = runtime.cmd("exec", "--cap", PTRACE, cid, "/bin/true")
    assert proc.returncode != 0
    assert "CAP_SYS_PTRACE" in proc.stderr and "start the container first" in proc.stderr
    assert runtime.cmd("exec", cid, "/bin/true").returncode == 0  # without it: fine
    assert runtime.start(cid).returncode == 0
    proc = runtime.cmd("exec", "--cap", PTRACE, cid, "/bin/true")
    assert proc.returncode == 0, proc.stderr
