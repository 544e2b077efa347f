"""The container process: rlimits, user and groups, cwd, env, the executable, oom score."""
import _signal
import posix
from _stat import S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK

from pyrunc import paths, syscalls as sc
from pyrunc.errors import PyruncError

RLIMIT_NUMBERS = {
    "RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
    "RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
}
INFINITY = 0xFFFFFFFFFFFFFFFF
# descriptors the init may still open or receive after its rlimits step (exec.fifo, a
# seccomp listener, a startContainer hook's pipes)
NOFILE_ROOM = 64


def set_rlimits(rlimits):
    """Every rlimit, but an RLIMIT_NOFILE soft limit below NOFILE_ROOM is held at that room
    (within the hard limit): returned as (index, soft, hard) for lower_nofile, just before
    the exec. Raising a hard limit needs CAP_SYS_RESOURCE, which the process may lose: the
    hard limits are all set now."""
    deferred = None
    for i, rl in enumerate(rlimits or ()):
        soft, hard = min(rl.soft, INFINITY), min(rl.hard, INFINITY)
        if rl.type == "RLIMIT_NOFILE" and soft < min(hard, NOFILE_ROOM):
            deferred = (i, soft, hard)
            soft = min(hard, NOFILE_ROOM)
        try:
            sc.setrlimit(RLIMIT_NUMBERS[rl.type], soft, hard)
        except OSError as e:
            raise PyruncError(f"setrlimit {rl.type}: {e.strerror}",
                              path=f"process.rlimits[{i}]", step="rlimits") from None
    return deferred


def lower_nofile(deferred):
    i, soft, hard = deferred
    try:
        sc.setrlimit(RLIMIT_NUMBERS["RLIMIT_NOFILE"], soft, hard)
    except OSError as e:
        raise PyruncError(f"setrlimit RLIMIT_NOFILE: {e.strerror}",
                          path=f"process.rlimits[{i}]", step="rlimit_nofile") from None


def write_proc(rel, value):
    """Write value to /proc/REL without leaving /proc's own mount (CVE-2025-52881): a mount
    raced over a file under /proc (another container sharing ours can make one) would
    otherwise take the write, e.g. to the host's core_pattern. No magic links either, and
    /proc itself must not be a symlink (CVE-2019-16884's /proc elsewhere)."""
    proc = posix.open("/proc", posix.O_PATH | posix.O_DIRECTORY | posix.O_NOFOLLOW
                      | posix.O_CLOEXEC)
    try:
        fd = sc.openat2(proc, rel, posix.O_WRONLY | posix.O_CLOEXEC,
                        sc.RESOLVE_NO_XDEV | sc.RESOLVE_NO_MAGICLINKS)
    finally:
        posix.close(proc)
    try:
        posix.write(fd, value.encode())
    finally:
        posix.close(fd)


def default_signals():
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across execve:
    the container's process gets the defaults, as from runc."""
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)


def set_oom_score_adj(value):
    write_proc("self/oom_score_adj", str(value))


def switch_user(user):
    """setgroups, then gid, then uid: after setresuid the rights to change groups are gone."""
    groups = list(user.additionalGids or ())
    try:
        posix.setgroups(groups)
    except PermissionError:
        # a user namespace with setgroups denied: only acceptable when no groups are asked
        if groups:
            raise
    posix.setresgid(user.gid, user.gid, user.gid)
    posix.setresuid(user.uid, user.uid, user.uid)


def give_stdio_to(uid, gid):
    """fchown stdio that is a pipe, socket or regular file to the process's uid and gid, as
    crun does (runc keeps the group), so that a non-root process can reopen /dev/stdout. Not
    a device (/dev/null, a tty: the terminal step owns that). EINVAL or EPERM (ids not mapped
    in a user namespace): left as it is, as runc and crun."""
    for fd in (0, 1, 2):
        try:
            st = posix.fstat(fd)
        except OSError:
            continue  # closed
        if (st.st_uid, st.st_gid) == (uid, gid) or not (S_ISFIFO(st.st_mode) or S_ISSOCK(st.st_mode)
                                    or S_ISREG(st.st_mode)):
            continue
        try:
            posix.fchown(fd, uid, gid)
        except OSError as e:
            if e.errno not in (1, 22):  # EPERM, EINVAL
                raise


def with_home(env, uid):
    """Add HOME from the container's /etc/passwd when env lacks it, as runc does ("/" if
    the uid has no entry)."""
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                fields = line.decode(errors="replace").rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    home = fields[5] or "/"
                    break
    except OSError:
        pass
    return env + [f"HOME={home}"]


def _not_executable(path):
    """Why execve(path) would fail for this process (its user, after the `user` step,
    in the container's root), or None: as runc, a clear error at create rather than an
    exit status 127 after start."""
    try:
        st = posix.stat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except OSError as e:
        return e.strerror
    if S_ISDIR(st.st_mode):
        return "is a directory"
    if not S_ISREG(st.st_mode):
        return "not a regular file"
    if not posix.access(path, posix.X_OK):
        return "permission denied (not executable by the process's user)"
    return None


def find_executable(arg0, env, cwd):
    """Resolve args[0] against the container's PATH, as runc does before waiting for start
    (a missing program fails `create`, not the exec after `start`)."""
    if "/" in arg0:
        path = arg0 if paths.isabs(arg0) else paths.join(cwd, arg0)
        why = _not_executable(path)
        if why is not None:
            raise PyruncError(f"exec {arg0}: {why}", path="process.args[0]")
        return path
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":"):
        path = paths.join(d or ".", arg0)
        if _not_executable(path) is None:
            return path
    raise PyruncError(f"exec {arg0}: executable file not found in $PATH",
                      path="process.args[0]")


IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}


def parse_nodes(text):
    """'0-3,7' -> [0, 1, 2, 3, 7]; raises ValueError on anything else."""
    nodes = []
    for part in filter(None, (text or "").split(",")):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or last < first or last > 4095:
            raise ValueError(part)
        nodes.extend(range(first, last + 1))
    return nodes


def set_io_priority(io):
    # "class" is a Python keyword: the model keeps the spec's name, read with getattr
    sc.ioprio_set((IOPRIO_CLASSES[getattr(io, "class")] << 13) | (io.priority or 0))


def set_scheduler(s):
    flags = 0
    for f in s.flags or ():
        flags |= SCHED_FLAGS[f]
    sc.sched_setattr(SCHED_POLICIES[s.policy], flags, s.nice or 0, s.priority or 0,
                     s.runtime or 0, s.deadline or 0, s.period or 0)


def set_memory_policy(mp):
    mode = MPOL_MODES[mp.mode]
    for f in mp.flags or ():
        mode |= MPOL_FLAGS[f]
    sc.set_mempolicy(mode, parse_nodes(mp.nodes))
