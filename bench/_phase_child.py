"""bench/phases.py's child: `pyrunc ARGS` as bin/pyrunc runs it, with timestamps.

    python -IS bench/_phase_child.py T0_NS LOG PYRUNC_DIR SITE_DIR -- PYRUNC ARGS...

Nothing in pyrunc/ is edited: this script imports pyrunc's modules one group at a time
(timing each group), then wraps functions in the imported modules (lifecycle, the init's
steps, posix.fork) so that each writes "PID EVENT NS" to LOG, NS since T0_NS (CLOCK_MONOTONIC,
taken by the driver just before it spawned this process). The children (the init C2, and
C1 before it with a user namespace) inherit
LOG's fd (close-on-exec: it is gone at the container's execve). Only os, sys and time are
imported before the first timestamp, as the -IS launcher imports nothing either.
"""
import os
import posix
import sys
import time

_T = time.monotonic_ns
_START = _T()
T0 = int(sys.argv[1])
LOG = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def ev(name, t=None):
    os.write(LOG, f"{os.getpid()} {(t if t is not None else _T()) - T0} {name}\n".encode())


ev("python_main", _START)
if os.environ.get("PHASES_GC_OFF"):
    # what a launcher calling gc.disable() first would save: no collections (the process
    # lives ~100 ms and makes no garbage cycles worth collecting), and after fork no
    # collection writes every object's GC header, a copy-on-write fault per page
    import gc
    gc.disable()
sys.path[:0] = [sys.argv[3], sys.argv[4]]
ARGS = sys.argv[sys.argv.index("--") + 1:]


def timed_import(label, names):
    ev(f"import {label} begin")
    for n in names:
        try:
            __import__(n)
        except ImportError:
            pass  # not in this revision
    ev(f"import {label} end")


# the modules `pyrunc run` imports, in the order it first needs them (with what they pull in)
timed_import("pyrunc.cli", ["pyrunc.cli"])
timed_import("pyrunc.container.lifecycle", ["pyrunc.container.lifecycle"])
timed_import("pyrunc.init.child, .context, .nsenter",
             ["pyrunc.init.child", "pyrunc.init.context"])
timed_import("pyrunc.spec, .validate", ["pyrunc.spec", "pyrunc.spec.validate"])
timed_import("pyrunc.linux.capabilities, namespaces, seccomp; features",
             ["pyrunc.linux.capabilities", "pyrunc.linux.namespaces", "pyrunc.linux.seccomp",
              "pyrunc.features"])
timed_import("pyrunc.linux.hooks, userns", ["pyrunc.linux.hooks", "pyrunc.linux.userns"])

from pyrunc import cli, spec  # noqa: E402  (already imported: no cost)
from pyrunc.container import lifecycle, state  # noqa: E402
from pyrunc.init import child  # noqa: E402
try:
    from pyrunc.init import nsenter  # noqa: E402
except ImportError:
    nsenter = child  # before pyrunc/init/nsenter.py
from pyrunc.linux import capabilities, namespaces, seccomp  # noqa: E402


def wrap(owner, attr, label=None):
    fn = getattr(owner, attr)
    label = label or attr

    def wrapper(*a, **kw):
        ev(f"{label} begin")
        try:
            return fn(*a, **kw)
        finally:
            ev(f"{label} end")
    setattr(owner, attr, wrapper)


for attr in ("run", "load_for_create", "prepare", "check_support", "create", "drive",
             "start_created", "wait_forwarding", "delete", "_reap", "_stored_config"):
    if hasattr(lifecycle, attr):
        wrap(lifecycle, attr)
for mod, attr in ((spec, "read_config"), (spec, "load_config"),
                  (capabilities, "prepare"), (seccomp, "prepare"), (namespaces, "plan")):
    if hasattr(mod, attr):
        wrap(mod, attr, f"{mod.__name__.rsplit('.', 1)[-1]}.{attr}")

_new = state.Container.new.__func__
state.Container.new = classmethod(lambda cls, *a: (ev("Container.new begin"), _new(cls, *a),
                                                   ev("Container.new end"))[1])

_fork = os.fork


def fork():
    ev("fork call")
    pid = _fork()
    ev("fork child" if pid == 0 else "fork parent")
    return pid


os.fork = fork
posix.fork = fork  # what pyrunc calls: it does not import os (pyrunc/paths.py)


def wrap_steps(steps):
    out = []
    for name, applies, run in steps:
        def timed_run(ctx, _run=run, _name=name):
            ev(f"step {_name} begin")
            _run(ctx)
            ev(f"step {_name} end")
        out.append((name, applies, timed_run))
    return tuple(out)


child.NAMESPACE_STEPS = wrap_steps(nsenter.NAMESPACE_STEPS)
if hasattr(nsenter, "PARENT_NAMESPACE_STEPS"):
    child.PARENT_NAMESPACE_STEPS = wrap_steps(nsenter.PARENT_NAMESPACE_STEPS)
if hasattr(nsenter, "PARENT_AFTER_FORK_STEPS"):  # read by lifecycle when create runs
    nsenter.PARENT_AFTER_FORK_STEPS = wrap_steps(nsenter.PARENT_AFTER_FORK_STEPS)
wrap(child, "c1_main")
if hasattr(child, "INIT_STEPS"):
    child.INIT_STEPS = wrap_steps(child.INIT_STEPS)  # a revision whose parent imports them
    wrap(child, "c2_main")
else:
    # the init imports its steps' modules itself, after its fork: do it here, timed, in the
    # init, and wrap them before c2_main finds them imported
    _c2_main = child.c2_main

    def c2_main(ctx, *a):
        ev("c2_main begin")
        ev("import init steps begin")
        from pyrunc.init import steps
        steps.INIT_STEPS = wrap_steps(steps.INIT_STEPS)
        ev("import init steps end")
        try:
            return _c2_main(ctx, *a)
        finally:
            ev("c2_main end")
    child.c2_main = c2_main

ev("patched")
ev("main begin")
status = cli.main(ARGS)
ev("main end")
if os.environ.get("PHASES_OS_EXIT"):
    # what a launcher ending in os._exit would save: no interpreter finalization
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
sys.exit(status)
