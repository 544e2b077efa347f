"""linux/sealed.py: when pyrunc re-executes itself, and the copies it runs from."""
import fcntl
import os
import sys

import pytest

from pyrunc.linux import sealed
from pyrunc.spec.model import load_process


def caps(**sets):
    proc, _ = load_process({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                            "capabilities": sets})
    return proc.capabilities


def test_only_a_container_that_may_ptrace_from_the_host_user_namespace_needs_it():
    assert sealed.needed(True, in_userns=False, joins_pid_ns=False)
    assert not sealed.needed(True, in_userns=True, joins_pid_ns=False)
    assert not sealed.needed(False, in_userns=False, joins_pid_ns=False)
    assert sealed.needed(False, in_userns=True, joins_pid_ns=True)


def test_ptrace_in_any_set_or_no_capabilities_at_all_counts():
    assert sealed.may_ptrace(None)  # the runtime's own: all of them
    assert sealed.may_ptrace(caps(bounding=["CAP_SYS_PTRACE"]))
    assert sealed.may_ptrace(caps(ambient=["CAP_SYS_PTRACE"]))
    assert not sealed.may_ptrace(caps(bounding=["CAP_CHOWN"], effective=["CAP_CHOWN"]))


def test_the_sealed_copy_is_the_interpreter_and_cannot_change():
    exe = os.path.realpath(sys.executable)
    fd = sealed.sealed_copy(exe)
    try:
        assert fcntl.fcntl(fd, sealed.F_GET_SEALS) & sealed.SEALS == sealed.SEALS
        with open(exe, "rb") as f:
            assert os.pread(fd, 1 << 16, 0) == f.read(1 << 16)
        assert os.fstat(fd).st_size == os.stat(exe).st_size
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"x", 0)
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)  # opens: the seal stops the write
        try:
            with pytest.raises(PermissionError):
                os.write(w, b"pwned")
        finally:
            os.close(w)
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="open_tree(OPEN_TREE_CLONE) needs root")
def test_the_readonly_clone_refuses_writes():
    exe = os.path.realpath(sys.executable)
    fd = sealed.readonly_clone(exe)
    try:
        assert os.statvfs(f"/proc/self/fd/{fd}").f_flag & sealed.ST_RDONLY
        with pytest.raises(OSError) as e:
            open(f"/proc/self/fd/{fd}", "r+b")
        assert e.value.errno in (30, 26)  # EROFS (ETXTBSY if checked first: it runs)
    finally:
        os.close(fd)


REEXEC = """
import posix, sys
sys.path[:0] = {path!r}
from pyrunc.linux import sealed
if sealed.running_sealed():
    print(posix.readlink("/proc/self/exe"), sys.argv[1:], sep="|")
    raise SystemExit(0)
if {no_clone!r}:
    def refuse(path):
        raise OSError(38, "open_tree: Function not implemented")
    sealed.readonly_clone = refuse
sealed.reexec(sys.orig_argv)
"""


@pytest.mark.parametrize("no_clone", [False, True])
def test_reexec_runs_the_same_command_sealed(no_clone, tmp_path):
    """The whole re-exec: same argv, the interpreter finds its stdlib and ours, and it runs
    from the read-only clone, or from the sealed memfd where open_tree fails."""
    if not no_clone and os.geteuid() != 0:
        pytest.skip("open_tree(OPEN_TREE_CLONE) needs root")
    import subprocess
    script = tmp_path / "s.py"
    script.write_text(REEXEC.format(path=sys.path, no_clone=no_clone))
    out = subprocess.run([os.path.realpath(sys.executable), "-IS", str(script), "a b", "c"],
                         capture_output=True, text=True, check=True).stdout
    exe, argv = out.split("|")
    assert argv.strip() == "['a b', 'c']"
    if no_clone:
        assert exe.startswith("/memfd:pyrunc-sealed")
    else:
        assert exe == "/" + os.path.basename(os.path.realpath(sys.executable))
