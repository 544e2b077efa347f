"""OCI hooks: each gets the container state as JSON on stdin, with its args, env and timeout.

Runs with os.fork/execve rather than subprocess: the createContainer and startContainer
hooks run inside the init after pivot_root, where only already-imported modules exist.
"""
import os
import _signal
import select

from pyrunc import fastjson
from pyrunc.errors import PyruncError


# the init step (or the lifecycle phase) each kind runs in: the name errors carry
STEP_OF = {"prestart": "runtime_hooks", "createRuntime": "runtime_hooks",
           "createContainer": "create_container_hooks", "startContainer": "start_hooks",
           "poststart": "poststart_hooks", "poststop": "poststop_hooks"}


def run_hooks(kind, hooks, state, warn_only=False, warn=None):
    """Run config.hooks.<kind> in order; the first failure raises (or warns, for poststop)."""
    data = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks or ()):
        where = f"hooks.{kind}[{i}] ({hook.path})"
        try:
            run_one(hook, data)
        except PyruncError as e:
            e.path, e.step = where, STEP_OF[kind]
            if not warn_only:
                raise
            if warn:
                warn(str(e))


def run_one(hook, stdin_data):
    args = hook.args or [hook.path]
    env = hook.env or []
    r, w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(r, 0)
            os.dup2(err_w, 2)
            os.execve(hook.path, args, dict(e.split("=", 1) for e in env))
        except OSError as e:
            os.write(2, f"exec {hook.path}: {e.strerror}".encode())
        os._exit(127)
    os.close(r)
    os.close(err_w)
    try:
        os.write(w, stdin_data)
    except BrokenPipeError:
        pass  # the hook need not read its stdin
    os.close(w)
    status = _wait(pid, hook.timeout)
    err = os.read(err_r, 4096).decode(errors="replace").strip()
    os.close(err_r)
    if status is None:
        raise PyruncError(f"timed out after {hook.timeout}s (killed)")
    if os.WIFSIGNALED(status):
        raise PyruncError(f"killed by signal {os.WTERMSIG(status)}" + (f": {err}" if err else ""))
    code = os.WEXITSTATUS(status)
    if code != 0:
        raise PyruncError(f"exited with status {code}" + (f": {err}" if err else ""))


def _wait(pid, timeout):
    """The hook's wait status, or None after killing it at its timeout."""
    if timeout is None:
        return os.waitpid(pid, 0)[1]
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
    finally:
        os.close(pidfd)
    return os.waitpid(pid, 0)[1]
