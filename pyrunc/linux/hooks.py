"""OCI hooks: each gets the container state as JSON on stdin, with its args, env and timeout.

Runs with posix.fork/execve rather than subprocess: the createContainer and startContainer
hooks run inside the init after pivot_root, where only already-imported modules exist.
"""
import posix
import _signal
import select

from pyrunc import fastjson
from pyrunc.errors import PyruncError


# the init step (or the lifecycle phase) each kind runs in: the name errors carry
STEP_OF = {"prestart": "runtime_hooks", "createRuntime": "runtime_hooks",
           "createContainer": "create_container_hooks", "startContainer": "start_hooks",
           "poststart": "poststart_hooks", "poststop": "poststop_hooks"}


def run_hooks(kind, hooks, state, warn_only=False, warn=None, env=None):
    """Run config.hooks.<kind> in order; the first failure raises (or warns, for poststop).
    A hook without `env` gets `env` (a list of NAME=VALUE), or the runtime's environment."""
    data = fastjson.dumps(state).encode()
    for i, hook in enumerate(hooks or ()):
        where = f"hooks.{kind}[{i}] ({hook.path})"
        try:
            run_one(hook, data, env)
        except PyruncError as e:
            e.path, e.step = where, STEP_OF[kind]
            if not warn_only:
                raise
            if warn:
                warn(str(e))


def run_one(hook, stdin_data, default_env=None):
    args = hook.args or [hook.path]
    # no `env`: as runc and crun, the environment of the process that runs the hook (Go's
    # exec with a nil Env): the runtime's own in the runtime's namespaces, the container
    # process's (default_env) in the container, where the host's variables must not reach;
    # an empty list is an empty environment
    env = hook.env if hook.env is not None else default_env
    env = posix.environ if env is None else dict(e.split("=", 1) for e in env)
    r, w = posix.pipe()
    err_r, err_w = posix.pipe()
    pid = posix.fork()
    if pid == 0:
        try:
            posix.dup2(r, 0)
            posix.dup2(err_w, 2)
            posix.execve(hook.path, args, env)
        except OSError as e:
            posix.write(2, f"exec {hook.path}: {e.strerror}".encode())
        posix._exit(127)
    posix.close(r)
    posix.close(err_w)
    try:
        posix.write(w, stdin_data)
    except BrokenPipeError:
        pass  # the hook need not read its stdin
    posix.close(w)
    status = _wait(pid, hook.timeout)
    err = posix.read(err_r, 4096).decode(errors="replace").strip()
    posix.close(err_r)
    if status is None:
        raise PyruncError(f"timed out after {hook.timeout}s (killed)")
    if posix.WIFSIGNALED(status):
        raise PyruncError(f"killed by signal {posix.WTERMSIG(status)}" + (f": {err}" if err else ""))
    code = posix.WEXITSTATUS(status)
    if code != 0:
        raise PyruncError(f"exited with status {code}" + (f": {err}" if err else ""))


def _wait(pid, timeout):
    """The hook's wait status, or None after killing it at its timeout."""
    if timeout is None:
        return posix.waitpid(pid, 0)[1]
    pidfd = posix.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            posix.kill(pid, _signal.SIGKILL)
            posix.waitpid(pid, 0)
            return None
    finally:
        posix.close(pidfd)
    return posix.waitpid(pid, 0)[1]
