"""The thin syscall layer: every kernel call pyrunc makes that the stdlib lacks.

Each wrapper raises OSError naming the call, so a failure reads
`mount tmpfs: Invalid argument`, and reports the call to `trace` when one is set
(`--explain` and `--debug` set it; otherwise it costs one global lookup).
Unit tests replace functions here; nothing else in pyrunc talks to cffi's libc.
"""
import posix
import sys

from pyrunc._libc import ffi

libc = ffi.dlopen("libc.so.6")

# --explain / --debug: a callable taking one line, e.g. 'mount("proc", "/proc", "proc", 0, NULL)'
trace = None
# which process is tracing: "runtime", then "child" (namespaces) and "init" after the forks
role = "runtime"

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# x86_64 syscall numbers used through syscall(2)
SYS_pivot_root = 155
SYS_ioprio_set = 251
SYS_set_mempolicy = 238
SYS_sched_setattr = 314
SYS_seccomp = 317
SYS_open_tree = 428
SYS_move_mount = 429
SYS_fsopen = 430
SYS_fsconfig = 431
SYS_fsmount = 432
SYS_close_range = 436
SYS_openat2 = 437
SYS_mount_setattr = 442

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_IN_ROOT = 0x10

_FLAG_NAMES = {
    CLONE_NEWNS: "CLONE_NEWNS", CLONE_NEWCGROUP: "CLONE_NEWCGROUP", CLONE_NEWUTS: "CLONE_NEWUTS",
    CLONE_NEWIPC: "CLONE_NEWIPC", CLONE_NEWUSER: "CLONE_NEWUSER", CLONE_NEWPID: "CLONE_NEWPID",
    CLONE_NEWNET: "CLONE_NEWNET", CLONE_NEWTIME: "CLONE_NEWTIME",
}
_MS_NAMES = {v: k for k, v in globals().items() if k.startswith("MS_")}


def clone_flag_names(flags):
    return "|".join(n for f, n in _FLAG_NAMES.items() if flags & f) or "0"


def mount_flag_names(flags):
    return "|".join(n for f, n in sorted(_MS_NAMES.items()) if flags & f) or "0"


def _fail(what):
    err = ffi.errno
    raise OSError(err, f"{what}: {posix.strerror(err)}")


_FS_ENCODING = sys.getfilesystemencoding()


def fsencode(s):
    """os.fsencode, without importing os (see pyrunc/paths.py)."""
    return s if isinstance(s, bytes) else s.encode(_FS_ENCODING, "surrogateescape")


def _c(s):
    return ffi.NULL if s is None else fsencode(s)


def cstr(s):
    """A C string for syscall(2)'s variadic arguments (cffi passes arrays as pointers)."""
    return ffi.new("char[]", fsencode(s))


def unshare(flags):
    if trace:
        trace(f"unshare({clone_flag_names(flags)})")
    if libc.unshare(flags) != 0:
        _fail("unshare")


def setns(fd, nstype, what="setns"):
    if trace:
        trace(f"setns({what}, {clone_flag_names(nstype)})")
    if libc.setns(fd, nstype) != 0:
        _fail(what)


def mount(source, target, fstype, flags, data=None, what=None):
    if trace:
        shown = getattr(target, "shown", None)  # rootfs.FdPath: the container path too
        where = f"{shown!r} (via {target})" if shown else repr(target)
        trace(f"mount({source!r}, {where}, {fstype!r}, {mount_flag_names(flags)}, {data!r})")
    if libc.mount(_c(source), _c(target), _c(fstype), flags, _c(data)) != 0:
        _fail(what or f"mount {fstype or source}")


def umount2(target, flags):
    if trace:
        trace(f"umount2({target!r}, {'MNT_DETACH' if flags & MNT_DETACH else flags})")
    if libc.umount2(_c(target), flags) != 0:
        _fail("umount2")


def pivot_root(new_root, put_old):
    if trace:
        trace(f"pivot_root({new_root!r}, {put_old!r})")
    syscall(SYS_pivot_root, cstr(new_root), cstr(put_old), what="pivot_root")


def sethostname(name):
    _set_name(libc.sethostname, "sethostname", name)


def setdomainname(name):
    _set_name(libc.setdomainname, "setdomainname", name)


def _set_name(call, label, name):
    if trace:
        trace(f"{label}({name!r})")
    b = name.encode()
    if call(b, len(b)) != 0:
        _fail(label)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0, what="prctl"):
    ret = libc.prctl(option, arg2, arg3, arg4, arg5)
    if ret < 0:
        _fail(what)
    return ret


def personality(persona):
    if trace:
        trace(f"personality({persona:#x})")
    if libc.personality(persona) < 0:
        _fail("personality")


NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): an nsfs fd's CLONE_NEW* type


def ns_get_nstype(fd):
    """The CLONE_NEW* flag of a namespace fd (a /proc/PID/ns file or a bind mount of one);
    OSError (ENOTTY) for any other file."""
    ret = libc.ioctl(fd, NS_GET_NSTYPE)
    if ret < 0:
        _fail("ioctl NS_GET_NSTYPE")
    return ret


def syscall(number, *args, what):
    """syscall(2) with long arguments (ints, or cffi pointers passed through)."""
    cargs = [a if isinstance(a, ffi.CData) else ffi.cast("long", a) for a in args]
    ret = libc.syscall(number, *cargs)
    if ret < 0:
        _fail(what)
    return ret


def capget(pid=0):
    """The three capability sets of pid as 64-bit masks (effective, permitted, inheritable)."""
    hdr = ffi.new("cap_user_header_t_ *", {"version": 0x20080522, "pid": pid})
    data = ffi.new("cap_user_data_t_[2]")
    if libc.capget(hdr, data) != 0:
        _fail("capget")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective, permitted, inheritable):
    if trace:
        trace(f"capset(effective={effective:#x}, permitted={permitted:#x}, "
              f"inheritable={inheritable:#x})")
    hdr = ffi.new("cap_user_header_t_ *", {"version": 0x20080522, "pid": 0})
    data = ffi.new("cap_user_data_t_[2]")
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    if libc.capset(hdr, data) != 0:
        _fail("capset")


def seccomp_set_mode_filter(bpf, flags=0):
    """Load raw BPF (bytes of struct sock_filter) with seccomp(SECCOMP_SET_MODE_FILTER).

    Returns the syscall's result: a listener fd when flags has NEW_LISTENER, else 0.
    """
    if trace:
        trace(f"seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}, <{len(bpf) // 8} instructions>)")
    buf = ffi.from_buffer("struct sock_filter[]", bpf)
    prog = ffi.new("struct sock_fprog *", {"len": len(bpf) // 8, "filter": buf})
    return syscall(SYS_seccomp, 1, flags, prog, what="seccomp")


def _c_strings(strings):
    """A NULL-terminated char *[] and the buffers it points to (keep both alive)."""
    owned = [ffi.new("char[]", fsencode(a)) for a in strings]
    return ffi.new("char *[]", owned + [ffi.NULL]), owned


def prepare_execve(path, argv, envp):
    """Convert execve's arguments now; return a function that makes the call.

    The init calls it after loading the seccomp filter, so that the only Python left
    between the filter and the new program is this call.
    """
    c_path = ffi.new("char[]", fsencode(path))
    c_argv, argv_owned = _c_strings(argv)
    c_env, env_owned = _c_strings(envp)

    def do_execve():
        if trace:
            trace(f"execve({path!r}, {list(argv)!r}, <{len(envp)} env>)")
        libc.execve(c_path, c_argv, c_env)
        del argv_owned[:], env_owned[:]  # referenced so they live until the call
        _fail(f"exec {path}")
    return do_execve


SYS_execveat = 322


def prepare_execveat(fd, argv, envp, what):
    """execveat(fd, "", argv, envp, AT_EMPTY_PATH), arguments converted now."""
    c_argv, argv_owned = _c_strings(argv)
    c_env, env_owned = _c_strings(envp)
    empty = ffi.new("char[]", b"")

    def do_execveat():
        if trace:
            trace(f"execveat({fd}, \"\", {list(argv)!r}, <{len(envp)} env>, AT_EMPTY_PATH)")
        libc.syscall(SYS_execveat, ffi.cast("long", fd), empty, c_argv, c_env,
                     ffi.cast("long", AT_EMPTY_PATH))
        del argv_owned[:], env_owned[:]
        _fail(f"exec {what}")
    return do_execveat


def openat2(dirfd, path, flags, resolve, mode=0):
    """openat2(2): the fd of path resolved as if dirfd were the root (no escape by symlink)."""
    how = ffi.new("struct open_how *", {"flags": flags, "mode": mode, "resolve": resolve})
    return syscall(SYS_openat2, dirfd, cstr(path), how, ffi.sizeof("struct open_how"),
                   what=f"open {path}")


def close_from(first, keep=()):
    """Close every fd from `first` up but those in `keep` (close_range(2), Linux 5.9)."""
    for fd in sorted(fd for fd in keep if fd is not None and fd >= first):
        if fd > first:
            syscall(SYS_close_range, first, fd - 1, 0, what="close_range")
        first = fd + 1
    syscall(SYS_close_range, first, 0xFFFFFFFF, 0, what="close_range")


AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000


def mount_setattr(fd, attr_set, attr_clr, recursive, userns_fd=0):
    """mount_setattr(2) on the mount fd refers to (recursive read-only, nosuid, idmap...)."""
    if trace:
        trace(f"mount_setattr({fd}, set={attr_set:#x}, clr={attr_clr:#x}"
              f"{', AT_RECURSIVE' if recursive else ''}"
              f"{f', userns_fd={userns_fd}' if userns_fd else ''})")
    attr = ffi.new("struct mount_attr *", {"attr_set": attr_set, "attr_clr": attr_clr,
                                           "userns_fd": userns_fd})
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    syscall(SYS_mount_setattr, fd, cstr(""), flags, attr, ffi.sizeof("struct mount_attr"),
            what="mount_setattr")


def ioprio_set(ioprio):
    """ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio) for the calling process."""
    if trace:
        trace(f"ioprio_set(IOPRIO_WHO_PROCESS, 0, {ioprio:#x})")
    syscall(SYS_ioprio_set, 1, 0, ioprio, what="ioprio_set")


def sched_setattr(policy, flags, nice, priority, runtime, deadline, period):
    if trace:
        trace(f"sched_setattr(0, {{policy={policy}, flags={flags:#x}, nice={nice}, "
              f"priority={priority}, runtime={runtime}, deadline={deadline}, "
              f"period={period}}}, 0)")
    attr = ffi.new("struct sched_attr *", {
        "size": ffi.sizeof("struct sched_attr"), "sched_policy": policy, "sched_flags": flags,
        "sched_nice": nice, "sched_priority": priority, "sched_runtime": runtime,
        "sched_deadline": deadline, "sched_period": period})
    syscall(SYS_sched_setattr, 0, attr, 0, what="sched_setattr")


def setrlimit(resource, soft, hard):
    if trace:
        trace(f"setrlimit({resource}, {{cur={soft}, max={hard}}})")
    if libc.setrlimit(resource, ffi.new("struct rlimit *", (soft, hard))) != 0:
        _fail("setrlimit")


def set_mempolicy(mode, nodes):
    """set_mempolicy(2) with a node list (ints); an empty list passes no mask."""
    if trace:
        trace(f"set_mempolicy({mode:#x}, nodes={nodes or 'NULL'})")
    if nodes:
        maxnode = max(nodes) + 1
        words = ffi.new("unsigned long[]", (maxnode + 63) // 64)
        for n in nodes:
            words[n // 64] |= 1 << (n % 64)
        syscall(SYS_set_mempolicy, mode, words, maxnode + 1, what="set_mempolicy")
    else:
        syscall(SYS_set_mempolicy, mode, ffi.NULL, 0, what="set_mempolicy")
