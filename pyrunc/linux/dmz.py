"""The last exec goes through a tiny sealed in-memory program, so the container never gets
a way to the runtime's own binary (the CVE-2019-5736 class).

Why: the init is the host's Python. If the container's program is `#!/proc/self/exe` or a
symlink to it, the kernel resolves /proc/self/exe *while the init execs*: the container would
start the host interpreter and could then reopen it for writing and replace it on the host.
runc answers this by running from a sealed copy of itself (memfd); pyrunc does the same with
a 55-byte x86_64 program built below: `execve(argv[1], &argv[2], envp)`, else exit(127).
The init execs it from a memfd sealed against writes, so at the final execve /proc/self/exe
is that memfd: reopening it for writing fails (EPERM, the seal), and the host's files are
out of reach.
"""
import fcntl
import posix

from pyrunc import syscalls as sc

BASE = 0x400000
CODE = bytes.fromhex(
    "488b7c2410"      # mov rdi, [rsp+16]        argv[1]: the program's path
    "488d742418"      # lea rsi, [rsp+24]        &argv[2]: its argv
    "488b0424"        # mov rax, [rsp]           argc
    "488d54c410"      # lea rdx, [rsp+rax*8+16]  envp, after argv's NULL
    "b83b000000"      # mov eax, 59              execve
    "0f05"            # syscall
    "bf7f000000"      # mov edi, 127
    "b8e7000000"      # mov eax, 231             exit_group
    "0f05")           # syscall

F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 0x1, 0x2, 0x4, 0x8
AT_EMPTY_PATH = 0x1000


def elf():
    """A static ELF64 executable: header, one R+X PT_LOAD segment, CODE."""
    ehsize, phsize = 64, 56
    entry = BASE + ehsize + phsize
    size = ehsize + phsize + len(CODE)
    header = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
              + _le((2, 2), (0x3E, 2), (1, 4), (entry, 8), (ehsize, 8), (0, 8), (0, 4),
                    (ehsize, 2), (phsize, 2), (1, 2), (0, 2), (0, 2), (0, 2)))
    segment = _le((1, 4), (5, 4), (0, 8), (BASE, 8), (BASE, 8), (size, 8), (size, 8),
                  (0x1000, 8))
    return header + segment + CODE


def _le(*fields):
    """(value, width in bytes) pairs, little-endian (struct costs an import per start)."""
    return b"".join(value.to_bytes(width, "little") for value, width in fields)


def sealed_memfd():
    """The program in a memfd that nobody can write any more (x86_64 code: elsewhere the
    exec fails with ENOEXEC and the init execs directly)."""
    fd = posix.memfd_create("pyrunc-dmz", posix.MFD_CLOEXEC | posix.MFD_ALLOW_SEALING)
    posix.write(fd, elf())
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    return fd


def prepare_exec(memfd, path, argv, envp):
    """Like syscalls.prepare_execve, through the sealed program: execveat(memfd, "", ...)."""
    return sc.prepare_execveat(memfd, ["pyrunc-dmz", path] + list(argv), envp, path)
