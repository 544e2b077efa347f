"""The init's first stage, as runc's nsenter: entering the namespaces; and run_steps,
which runs every list of named steps (these, and pyrunc/init/steps.py's).

With a user namespace, C1 runs NAMESPACE_STEPS and forks the init. Without one, the
parent runs PARENT_NAMESPACE_STEPS (the pid and time namespaces, which only its next
child enters) and forks the init, which runs NAMESPACE_STEPS for the other namespaces.
The parent imports this module; the init's later steps stay out of its memory.
"""
import posix

from pyrunc import syscalls as sc
from pyrunc import timing
from pyrunc.errors import PyruncError, from_oserror
from pyrunc.linux import namespaces


def step_cgroup(ctx):
    # the first step of the child (C1, or the init without C1), before any namespace: it
    # still has the host's mounts and root, and a new cgroup namespace (made next) is
    # rooted in the cgroup it joins. For `create` it asks first: the parent makes the
    # directories and writes the limits while the init imports its code
    from pyrunc.linux import cgroups
    if not ctx.exec_mode:
        ctx.channel.send("cgroups")
        ctx.channel.expect("cgroups_done")
    cgroups.join_self(ctx.cgroup)


def step_cgroups(ctx):
    # the parent, right after the fork; its child waits for it (step_cgroup)
    from pyrunc.linux import cgroups
    cg = ctx.cgroup
    cgroups.create(cg)
    # the limits the parent checked in its dry run (lifecycle.plan_cgroup), now written
    resources = ctx.setting("resources")
    cgroups.set_resources(cg, cgroups.with_device_rules(resources) if cg.device_rules
                          else resources, [])


def step_user_namespace(ctx):
    if "user" in ctx.ns.joins:
        namespaces.join(ctx.ns.joins, ("user",))
        return
    # The other namespaces named by path are joined first, with the runtime's capabilities:
    # from inside the new user namespace setns(2) to one it does not own (the host's
    # network namespace, say) is refused (runc joins before it unshares, too)
    early = frozenset(ctx.ns.joins) - ctx.ns.entered
    namespaces.join(ctx.ns.joins, early)
    ctx.ns.entered |= early
    sc.unshare(sc.CLONE_NEWUSER)
    rootless = posix.geteuid() != 0
    if rootless:
        # without root the parent (and newuidmap, which checks the owner) can write our
        # maps only while /proc/PID is ours: a non-dumpable process's belongs to root.
        # Nothing of the container exists yet; runc opens the same window
        sc.prctl(sc.PR_SET_DUMPABLE, 1, what="prctl PR_SET_DUMPABLE")
    ctx.channel.send("maps")           # the parent writes uid_map and gid_map
    ctx.channel.expect("maps_done")
    if rootless:
        sc.prctl(sc.PR_SET_DUMPABLE, 0, what="prctl PR_SET_DUMPABLE")
    # Until now we are the overflow uid, which cannot own files: tmpfs refuses to create
    # them (EOVERFLOW). Become a mapped id: 0 if mapped (as runc does); otherwise, as with
    # the article's 1000 -> 100000 map, the process's own ids. With no uid 0 in the
    # namespace the kernel has no root to take capabilities from: we keep them all.
    user = ctx.process.user
    posix.setresgid(*[_mapped(ctx.setting("gidMappings"), user.gid)] * 3)
    posix.setresuid(*[_mapped(ctx.setting("uidMappings"), user.uid)] * 3)


def _mapped(mappings, wanted):
    def inside(i):
        return any(m.containerID <= i < m.containerID + m.size for m in mappings)
    return 0 if inside(0) else wanted if inside(wanted) else mappings[0].containerID


def step_namespaces(ctx):
    flags, joins = ctx.ns.to_enter(set(namespaces.FLAGS) - {"user"})
    namespaces.join(joins, joins.keys())
    if flags:
        sc.unshare(flags)
    namespaces.close_joins(ctx.ns.joins)


def step_time_offsets(ctx):
    # the time namespace is new for this process's children: the init, forked next, is the
    # first process in it
    namespaces.write_time_offsets(ctx.setting("timeOffsets"))


def step_enter_for_children(ctx):
    ctx.runtime_ns = namespaces.enter_for_children(ctx.ns)


def step_net_devices(ctx):
    # the parent, in the host's network namespace, moves them into ours
    ctx.channel.send("net_devices")
    ctx.channel.expect("net_devices_done")


NAMESPACE_STEPS = (
    ("cgroup", lambda ctx: ctx.cgroup is not None, step_cgroup),
    ("user_namespace", lambda ctx: ctx.ns.has("user"), step_user_namespace),
    ("namespaces", lambda ctx: True, step_namespaces),
    ("net_devices", lambda ctx: not ctx.exec_mode and bool(ctx.setting("netDevices")),
     step_net_devices),
    ("time_offsets", lambda ctx: not ctx.exec_mode and bool(ctx.setting("timeOffsets"))
     and "time" not in ctx.ns.entered, step_time_offsets),
)
# The parent, right after the fork, while the child imports its code and waits
PARENT_AFTER_FORK_STEPS = (
    ("cgroups", lambda ctx: ctx.cgroup is not None and not ctx.exec_mode, step_cgroups),
)
# Without a user namespace the parent runs these before it forks the init (see child.py);
# the init's NAMESPACE_STEPS then enter only the other namespaces.
PARENT_NAMESPACE_STEPS = (
    ("namespaces", lambda ctx: True, step_enter_for_children),
    ("time_offsets", lambda ctx: not ctx.exec_mode and bool(ctx.setting("timeOffsets")),
     step_time_offsets),
)


def run_steps(ctx, steps):
    for name, applies, run in steps:
        if not applies(ctx):
            continue
        if ctx.explain:
            ctx.explain(f"step {name}")
        try:
            if ctx.fail_step == name:
                raise OSError(5, "fault injected by PYRUNC_FAIL_STEP")
            run(ctx)
            timing.lap(f"step {name}")
        except PyruncError as e:
            e.step = e.step or name
            raise _after_filter(ctx, e)
        except OSError as e:
            raise _after_filter(ctx, from_oserror(e, step=name)) from None
        if name in FILTER_STEPS:
            ctx.filter_step = name


# the steps that load the seccomp filter: a call pyrunc makes after one may be what it denies
FILTER_STEPS = ("seccomp_early", "seccomp_notify", "seccomp")


def _after_filter(ctx, err):
    if ctx.filter_step and err.errno in _denial_errnos(ctx.setting("seccomp")):
        why = " since noNewPrivileges is false" if ctx.filter_step == "seccomp_early" else ""
        err.message += (f" (the seccomp filter is loaded already, at step {ctx.filter_step}"
                        f"{why}: it may deny this call)")
    return err


def _denial_errnos(seccomp):
    """The errnos the profile's rules can answer with: EPERM when they name none, ENOSYS
    (what profiles answer calls newer than they know with), and those they name."""
    found = {1, 38}
    if seccomp is not None:
        found.add(seccomp.defaultErrnoRet)
        found.update(rule.errnoRet for rule in seccomp.syscalls or ())
    found.discard(None)
    return found
