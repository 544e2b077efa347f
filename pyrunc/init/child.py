"""The child processes of create/exec: the init, and C1 before it with a user namespace.

A new user namespace must be made by a process that then lives in it, and the namespaces
made after it belong to it: C1 does that, then forks C2, the init. Without a user
namespace the parent itself enters the pid and time namespaces for its next child (for
these two, unshare and setns only change where children go) and forks the init directly:
one fork and one process fewer, as crun does with clone(2). `exec` always goes through C1:
the process in the container's pid namespace is forked only after the mount namespace is
joined (never with the host's root or cwd).

No child returns: each ends in posix._exit or execve. Errors travel to the parent over the
channel as (message, JSON path, step, errno); the parent prints one line and cleans up.
"""
import posix

from pyrunc import syscalls as sc
from pyrunc import timing
from pyrunc.errors import PyruncError
from pyrunc.init.nsenter import NAMESPACE_STEPS, PARENT_NAMESPACE_STEPS, run_steps
from pyrunc.linux import namespaces


def fork_init(ctx, in_child):
    """Fork the child of create/exec; in_child() runs first in it (closing the parent's
    ends). Returns (C1's pid or None, the init's pid or None: C1 reports it later)."""
    # `exec` always forks C1 first: it joins every namespace (the mount one included)
    # from the host's pid namespace, so the process the container can see never has
    # the host's root, cwd or fds. In a user namespace not the host's (rootless podman
    # runs us as its uid 0) the parent could not setns back to its own pid namespace,
    # which the host's user namespace owns: C1 makes the namespaces instead
    if ctx.ns.has("user") or ctx.exec_mode or ctx.runtime_in_userns:
        c1 = posix.fork()
        if c1 == 0:
            in_child()
            close_inherited(ctx)
            c1_main(ctx)
        return c1, None
    # the init is visible in the container's pid namespace from the fork on: it must never
    # be dumpable there (ptrace, /proc/PID/exe), so it is born non-dumpable
    dumpable = sc.prctl(sc.PR_GET_DUMPABLE)
    sc.prctl(sc.PR_SET_DUMPABLE, 0, what="prctl PR_SET_DUMPABLE")
    try:
        run_steps(ctx, PARENT_NAMESPACE_STEPS)
        pid = posix.fork()
        if pid == 0:
            in_child()
            for fd in (ctx.runtime_ns or {}).values():
                posix.close(fd)  # the runtime's own pid and time namespaces: not the init's
            ctx.runtime_ns = None
            close_inherited(ctx)
            c2_main(ctx, NAMESPACE_STEPS)
    finally:
        if ctx.runtime_ns is not None:
            namespaces.leave_for_children(ctx.runtime_ns)
        sc.prctl(sc.PR_SET_DUMPABLE, dumpable, what="prctl PR_SET_DUMPABLE")
    return None, pid


def close_inherited(ctx):
    """Close every fd of the runtime's the children do not need (its log file, what its
    caller left open): the container may see them from the init's or C2's first instant
    (a pid namespace joined by path, `exec`). Stdio and --preserve-fds stay."""
    sc.close_from(3 + ctx.preserve_fds, keep=(
        ctx.channel.fileno(), ctx.console_fd, *(ctx.idmap_fds or {}).values(),
        *ctx.ns.joins.values()))


def c1_main(ctx):
    """Never returns: whatever happens, this process ends here, not in the caller's code."""
    try:
        sc.role = "child"
        # nothing in the container may ptrace or open /proc/PID/* of the runtime
        sc.prctl(sc.PR_SET_DUMPABLE, 0, what="prctl PR_SET_DUMPABLE")
        # the init's code, while the root and uid are still the host's (after setns(mnt),
        # the user namespace or setresuid an import may read nothing)
        steps = load_init_code(ctx)  # C2, forked below, inherits it
        run_steps(ctx, NAMESPACE_STEPS)
        # C2 waits on this pipe until the parent has its pid: the parent then knows the
        # pid before any message from C2 (and can kill it if anything fails)
        r, w = posix.pipe()
        pid = posix.fork()
        if pid == 0:
            posix.close(w)
            posix.read(r, 1)
            posix.close(r)
            c2_main(ctx, steps=steps)
        ctx.channel.send("pid", pid=pid)
        posix.write(w, b"1")
    except BaseException as e:  # noqa: B036 - anything must reach the parent, then exit
        report(ctx, e)
        posix._exit(1)
    finally:
        posix._exit(0)


def load_init_code(ctx):
    """Import all the code the init will run, in the child, before its first step (the
    parent never needs it). After the user namespace, setresuid or pivot_root a module may
    be unreadable or gone: a mapped uid cannot enter a 0700 home holding the virtualenv or
    Python itself (`python3 -m venv ~/venv`, pyenv)."""
    from pyrunc.init import steps
    steps.preload(ctx.config, ctx.process)
    if ctx.debug:
        import traceback  # noqa: F401 - report()'s, for an internal error
    timing.lap("import the init's steps")
    return steps


def c2_main(ctx, namespace_steps=(), steps=None):
    """The init; forked by the parent directly, it first enters the other namespaces.
    With a user namespace, C1 has loaded its code (steps) already."""
    sc.role = "init"
    try:
        steps = steps or load_init_code(ctx)
        run_steps(ctx, namespace_steps)
        run_steps(ctx, steps.EXEC_STEPS if ctx.exec_mode else steps.INIT_STEPS)
    except BaseException as e:  # noqa: B036
        report(ctx, e)
    finally:
        posix._exit(1)


def report(ctx, exc):
    if isinstance(exc, PyruncError):
        err = exc
    elif isinstance(exc, OSError):
        err = PyruncError(exc.strerror or str(exc), errno=exc.errno)
    else:
        err = PyruncError(f"internal error: {type(exc).__name__}: {exc}")
        if ctx.debug:
            import traceback
            err.message += "\n" + "".join(traceback.format_exception(exc))
    if ctx.fifo_write_fd is None:
        try:
            ctx.channel.send("error", **err.to_wire())
        except OSError:
            pass  # the parent gave up first: it reports its own error
        return
    # after wait_for_start `pyrunc start` reads the FIFO until exec: the error goes there,
    # and to the container's stderr, the only place left once `start` has returned
    line = f"pyrunc: {ctx.id}: {err}\n".encode()
    for fd in (ctx.fifo_write_fd, 2):
        try:
            posix.write(fd, line)
        except OSError:
            pass
