"""The two child processes of create/exec: C1 enters the namespaces, C2 is the init.

Neither returns: each ends in posix._exit or execve. Errors travel to the parent over the
channel as (message, JSON path, step, errno); the parent prints one line and cleans up.
"""
import posix

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError
from pyrunc.init.steps import EXEC_STEPS, INIT_STEPS, NAMESPACE_STEPS, run_steps


def c1_main(ctx):
    """Never returns: whatever happens, this process ends here, not in the caller's code."""
    try:
        sc.role = "child"
        # nothing in the container may ptrace or open /proc/PID/* of the runtime
        sc.prctl(sc.PR_SET_DUMPABLE, 0, what="prctl PR_SET_DUMPABLE")
        run_steps(ctx, NAMESPACE_STEPS)
        # C2 waits on this pipe until the parent has its pid: the parent then knows the
        # pid before any message from C2 (and can kill it if anything fails)
        r, w = posix.pipe()
        pid = posix.fork()
        if pid == 0:
            posix.close(w)
            posix.read(r, 1)
            posix.close(r)
            c2_main(ctx)
        ctx.channel.send("pid", pid=pid)
        posix.write(w, b"1")
    except BaseException as e:  # noqa: B036 - anything must reach the parent, then exit
        report(ctx, e)
        posix._exit(1)
    finally:
        posix._exit(0)


def c2_main(ctx):
    sc.role = "init"
    try:
        run_steps(ctx, EXEC_STEPS if ctx.exec_mode else INIT_STEPS)
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
