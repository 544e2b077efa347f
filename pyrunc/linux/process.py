"""The container process: rlimits, user and groups, cwd, env, the executable, oom score."""
import os
import resource

from pyrunc.errors import PyruncError

RLIMIT_NUMBERS = {
    "RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
    "RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
}
INFINITY = 0xFFFFFFFFFFFFFFFF


def set_rlimits(rlimits):
    for i, rl in enumerate(rlimits or ()):
        soft = resource.RLIM_INFINITY if rl.soft >= INFINITY else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard >= INFINITY else rl.hard
        try:
            resource.setrlimit(RLIMIT_NUMBERS[rl.type], (soft, hard))
        except (OSError, ValueError) as e:
            raise PyruncError(f"setrlimit {rl.type}: {getattr(e, 'strerror', None) or e}",
                              path=f"process.rlimits[{i}]", step="rlimits") from None


def set_oom_score_adj(value):
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(value))


def switch_user(user):
    """setgroups, then gid, then uid: after setresuid the rights to change groups are gone."""
    groups = list(user.additionalGids or ())
    try:
        os.setgroups(groups)
    except PermissionError:
        # a user namespace with setgroups denied: only acceptable when no groups are asked
        if groups:
            raise
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


def find_executable(arg0, env, cwd):
    """Resolve args[0] against the container's PATH, as runc does before waiting for start
    (a missing program fails `create`, not the exec after `start`)."""
    if "/" in arg0:
        path = arg0 if os.path.isabs(arg0) else os.path.join(cwd, arg0)
        if not os.path.exists(path):
            raise PyruncError(f"exec {arg0}: no such file or directory", path="process.args[0]")
        return path
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":"):
        path = os.path.join(d or ".", arg0)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise PyruncError(f"exec {arg0}: executable file not found in $PATH",
                      path="process.args[0]")
