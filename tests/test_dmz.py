"""The exec stub: its machine code, its seal, and what /proc/self/exe becomes through it."""
import os
import shutil
import subprocess

import pytest

from pyrunc.linux import dmz


def test_code_matches_the_assembler(tmp_path):
    if shutil.which("as") is None or shutil.which("objcopy") is None:
        pytest.skip("binutils not installed")
    src = tmp_path / "stub.s"
    src.write_text(".intel_syntax noprefix\n_start:\n"
                   "mov rdi, [rsp+16]\nlea rsi, [rsp+24]\nmov rax, [rsp]\n"
                   "lea rdx, [rsp+rax*8+16]\nmov eax, 59\nsyscall\n"
                   "mov edi, 127\nmov eax, 231\nsyscall\n")
    subprocess.run(["as", str(src), "-o", str(tmp_path / "stub.o")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(tmp_path / "stub.o"),
                    str(tmp_path / "stub.bin")], check=True)
    assert (tmp_path / "stub.bin").read_bytes() == dmz.CODE


def test_sealed_against_writes():
    fd = dmz.sealed_memfd()
    w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
    try:
        with pytest.raises(PermissionError):
            os.write(w, b"overwritten")
    finally:
        os.close(w)
        os.close(fd)


def run_through_stub(path, argv):
    """Exec path through the stub in a child; (status, what the child's output says)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        dmz.prepare_exec(dmz.sealed_memfd(), path, argv, ["PATH=/bin:/usr/bin"])()
        os._exit(99)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode()


def test_runs_the_program_with_its_argv():
    status, out = run_through_stub("/bin/sh", ["sh", "-c", 'echo "$0 $1"; exit 3', "a0", "b"])
    assert (status, out) == (3, "a0 b\n")


def test_proc_self_exe_resolves_to_the_stub(tmp_path):
    # a program that is a symlink to /proc/self/exe gets the stub itself, which has no
    # program to run and exits 127: never the runtime's interpreter
    evil = tmp_path / "evil"
    os.symlink("/proc/self/exe", evil)
    assert run_through_stub(str(evil), [str(evil)]) == (127, "")
