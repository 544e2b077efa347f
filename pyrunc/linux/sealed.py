"""Run pyrunc from an interpreter the container cannot write (the CVE-2019-5736 class).

The init and the `exec` children run the host's Python until their last execve, inside the
container's pid namespace. Being non-dumpable does not stop a holder of CAP_SYS_PTRACE in
the host's user namespace: it opens /proc/PID/exe, waits for the exec, and reopens that fd
for writing: the host's interpreter is replaced. So when the container may hold that
capability, the runtime first re-executes itself from a copy nobody can write, and every
child it forks runs from there:

- a detached read-only clone of the interpreter's directory (open_tree(OPEN_TREE_CLONE) +
  mount_setattr(MOUNT_ATTR_RDONLY)): no copy, a write through /proc/PID/exe fails (EROFS);
- else a memfd copy sealed against writes (F_SEAL_WRITE: EPERM), as runc's cloned binary.

The re-exec keeps argv (so the interpreter finds the same stdlib and venv from argv[0]).
It costs a second interpreter start, so it happens only when needed (see `needed`).
"""
import posix

from pyrunc import syscalls as sc

OPEN_TREE_CLONE = 1
MOUNT_ATTR_RDONLY = 0x1
ST_RDONLY = 1
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
SEALS = 0x1 | 0x2 | 0x4 | 0x8  # F_SEAL_SEAL, SHRINK, GROW, WRITE


def needed(may_ptrace, in_userns, joins_pid_ns):
    """Whether the processes of pyrunc's the container can see must run sealed.

    In a user namespace the container's CAP_SYS_PTRACE is not the host's: the kernel refuses
    it a non-dumpable runtime process (its mm belongs to the host's user namespace). A pid
    namespace joined by path may hold processes of any capability."""
    return joins_pid_ns or (may_ptrace and not in_userns)


def may_ptrace(capabilities):
    """Whether a process.capabilities node (None: the runtime's own, all) can give a process
    CAP_SYS_PTRACE (in any set: a file capability can raise what the bounding set holds)."""
    if capabilities is None:
        return True
    return any("CAP_SYS_PTRACE" in (getattr(capabilities, s) or ())
               for s in ("bounding", "effective", "permitted", "inheritable", "ambient"))


def running_sealed():
    """Whether this interpreter is already one nobody can write."""
    try:
        if posix.statvfs("/proc/self/exe").f_flag & ST_RDONLY:
            return True
        if not posix.readlink("/proc/self/exe").startswith("/memfd:"):
            return False
        import fcntl
        fd = posix.open("/proc/self/exe", posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            return fcntl.fcntl(fd, F_GET_SEALS) & SEALS == SEALS
        finally:
            posix.close(fd)
    except OSError:
        return False


def readonly_clone(path):
    """An O_PATH fd of path in a detached, read-only clone of its directory's mount."""
    directory, _, name = path.rpartition("/")
    tree = sc.syscall(sc.SYS_open_tree, -100, sc.cstr(directory or "/"),
                      OPEN_TREE_CLONE | posix.O_CLOEXEC, what="open_tree")
    try:
        sc.mount_setattr(tree, MOUNT_ATTR_RDONLY, 0, False)
        return posix.open(name, posix.O_PATH | posix.O_CLOEXEC, dir_fd=tree)
    finally:
        posix.close(tree)  # the fd of the file keeps the detached mount alive


def sealed_copy(path):
    """A memfd holding a copy of path, sealed against any change."""
    import fcntl
    src = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    fd = posix.memfd_create("pyrunc-sealed", posix.MFD_CLOEXEC | posix.MFD_ALLOW_SEALING)
    try:
        size = posix.fstat(src).st_size
        done = 0
        while done < size:
            n = posix.sendfile(fd, src, done, size - done)
            if n == 0:
                raise OSError(5, f"copy {path}: short read")
            done += n
        fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
    except BaseException:
        posix.close(fd)
        raise
    finally:
        posix.close(src)
    return fd


def reexec(argv):
    """Exec this interpreter again with argv, from a read-only clone or a sealed copy.
    Returns only if both fail (the OSError of the last)."""
    exe = posix.readlink("/proc/self/exe")
    env = [k + b"=" + v for k, v in posix.environ.items()]
    error = None
    # open_tree needs CAP_SYS_ADMIN and mount_setattr Linux 5.12: else the sealed copy
    for make in (readonly_clone, sealed_copy):
        try:
            sc.prepare_execveat(make(exe), argv, env, exe)()
        except OSError as e:
            error = e
    raise error
