"""A live seccomp filter, read back and run on paper: the classic BPF programs the kernel
holds for a process (PTRACE_SECCOMP_GET_FILTER), an interpreter for them over a
struct seccomp_data, and a summary per syscall in `pyrunc seccomp show`'s words.

Reading the filters needs CAP_SYS_ADMIN and a ptrace stop: the process is seized,
interrupted, read and detached (it sees at most an interrupted sleep, which the kernel
restarts). Nothing runs in it. Syscall names come from libseccomp (ctypes: the same
library pyrunc compiles filters with), for the architectures the filter is asked about.
"""
import ctypes
import os
import struct

from pyrunc import syscalls
from pyrunc._libc import ffi
from pyrunc.linux import seccomp

SYS_PTRACE = 101
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
PTRACE_SECCOMP_GET_FILTER = 0x420C
WALL = 0x40000000

AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
X32_BIT = 0x40000000
ARCH_NAMES = {AUDIT_ARCH_X86_64: "x86_64", AUDIT_ARCH_I386: "x86 (32-bit)"}
ARG_OFFSET = 16     # struct seccomp_data: nr, arch, instruction_pointer, args[6]
MAX_NR = 512        # above every x86 syscall number today
UNUSED_NR = 4000    # no syscall has it: what it gets is the filter's default


def read_filters(pid):
    """The filters of pid, newest first, each a list of (code, jt, jf, k). Raises OSError
    (EPERM without CAP_SYS_ADMIN, EBUSY/EPERM when someone else traces it)."""
    syscalls.syscall(SYS_PTRACE, PTRACE_SEIZE, pid, 0, 0, what=f"ptrace seize {pid}")
    try:
        syscalls.syscall(SYS_PTRACE, PTRACE_INTERRUPT, pid, 0, 0, what="ptrace interrupt")
        os.waitpid(pid, WALL)
        programs = []
        while True:
            try:
                count = syscalls.syscall(SYS_PTRACE, PTRACE_SECCOMP_GET_FILTER, pid,
                                         len(programs), ffi.NULL, what="get filter")
            except OSError as e:
                if e.errno == 2:    # ENOENT: no filter at this index, the last was read
                    return programs
                raise
            buf = ffi.new("char[]", count * 8)
            syscalls.syscall(SYS_PTRACE, PTRACE_SECCOMP_GET_FILTER, pid, len(programs), buf,
                             what="get filter")
            raw = bytes(ffi.buffer(buf))
            programs.append([struct.unpack_from("<HBBI", raw, 8 * i) for i in range(count)])
    finally:
        syscalls.syscall(SYS_PTRACE, PTRACE_DETACH, pid, 0, 0, what="ptrace detach")


def run(program, nr, arch, args=()):
    """(return value, argument indexes the program read) for one call."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    a = x = pc = 0
    mem = [0] * 16
    read = set()
    while pc < len(program):
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 0x07
        src_x = code & 0x08
        if cls == 0x00:                          # LD
            mode = code & 0xE0
            if mode == 0x20:                     # ABS
                if k >= ARG_OFFSET:
                    read.add((k - ARG_OFFSET) // 8)
                a = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x00:
                a = k
            elif mode == 0x60:
                a = mem[k]
            elif mode == 0x80:
                a = len(data)
        elif cls == 0x01:                        # LDX
            x = {0x00: k, 0x60: mem[k] if k < 16 else 0, 0x80: len(data)}.get(code & 0xE0, 0)
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:                        # ALU
            v = x if src_x else k
            op = code & 0xF0
            a = {0x00: a + v, 0x10: a - v, 0x20: a * v, 0x30: a // v if v else 0,
                 0x40: a | v, 0x50: a & v, 0x60: a << v if v < 32 else 0,
                 0x70: a >> v if v < 32 else 0, 0x80: -a, 0x90: a % v if v else 0,
                 0xA0: a ^ v}[op] & 0xFFFFFFFF
        elif cls == 0x05:                        # JMP
            op = code & 0xF0
            v = x if src_x else k
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: a == v, 0x20: a > v, 0x30: a >= v, 0x40: a & v != 0}[op]
            pc += jt if taken else jf
        elif cls == 0x06:                        # RET
            return (a if code & 0x18 == 0x10 else k), read
        elif cls == 0x07:                        # MISC: TAX, TXA
            if code & 0xF8 == 0x80:
                a = x
            else:
                x = a
    return seccomp.ACT_KILL_THREAD, read


def _strength(value):
    """The kernel's order: the lowest action as a signed 32-bit number wins."""
    action = value & 0xFFFF0000
    return action - (1 << 32) if action & 0x80000000 else action


def decide(programs, nr, arch, args=()):
    """(the action the kernel takes: the strongest of every filter's, argument indexes
    any filter read)."""
    best, read = seccomp.ACT_ALLOW, set()
    for program in programs:
        value, used = run(program, nr, arch, args)
        read |= used
        if _strength(value) < _strength(best):
            best = value
    return best, read


def _resolver():
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]

    def name(arch, nr):
        p = lib.seccomp_syscall_resolve_num_arch(arch, nr)
        if not p:
            return None
        try:
            return ctypes.string_at(p).decode()
        finally:
            libc.free(p)
    return name


UNUSED_ROW = "a number no syscall has"


def summarize(programs, arch=AUDIT_ARCH_X86_64):
    """[(syscall, what it gets)] for every syscall of `arch` that does not get what most
    of them get, then ("everything else", that), then what a number no syscall has yet gets
    (the filter's default; runc answers ENOSYS there). A call whose answer depends on its
    arguments says so: ("socket", "errno 1 with arguments 0 (reads arg0)")."""
    name = _resolver()
    rows = []
    for nr in range(MAX_NR):
        sys_name = name(arch, nr)
        if sys_name is not None:
            rows.append((sys_name, *decide(programs, nr, arch)))
    counts = {}
    for _, value, read in rows:
        if not read:
            counts[value] = counts.get(value, 0) + 1
    common = max(counts, key=counts.get) if counts else seccomp.ACT_ALLOW
    out = []
    for sys_name, value, read in rows:
        if value == common and not read:
            continue
        text = seccomp.action_text(value)
        if read:
            text += " with arguments 0 (reads " + ", ".join(f"arg{i}" for i in sorted(read)) \
                + ")"
        out.append((sys_name, text))
    out.append(("everything else", seccomp.action_text(common)))
    out.append((UNUSED_ROW, seccomp.action_text(decide(programs, UNUSED_NR, arch)[0])))
    return out


def foreign_arch_text(programs):
    """What a 32-bit x86 call (getpid) and an x32 call get: a filter without those
    architectures kills them (or answers its bad-arch action)."""
    i386, _ = decide(programs, 20, AUDIT_ARCH_I386)
    x32, _ = decide(programs, 39 | X32_BIT, AUDIT_ARCH_X86_64)
    return [("x86 (32-bit) getpid", seccomp.action_text(i386)),
            ("x32 getpid", seccomp.action_text(x32))]
