"""Checks across fields that the schema alone cannot express (runtime-spec config-linux.md)."""
import posix

from pyrunc import paths

RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
           "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING",
           "RLIMIT_STACK")

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


def _check_uts(config, types, fail):
    # without a uts namespace of the config's, the names set would be the runtime's (the
    # host's): also with no `linux` at all, which runs in the runtime's mount namespace
    if config.hostname and "uts" not in types:
        fail("hostname", "setting the hostname needs a new uts namespace")
    if config.domainname and "uts" not in types:
        fail("domainname", "setting the domainname needs a new uts namespace")


def validate(config, loader):
    fail = loader.fail
    from pyrunc.spec import pathparts
    pathparts.check(config)
    if config.root is None:
        fail("root", "required on Linux")
    linux = config.linux
    process = config.process
    if process is not None:
        if process.user is None:
            # required on POSIX; runc and crun run a config without it as uid 0, gid 0
            from pyrunc.spec.model import USER
            process.user = USER.load({"uid": 0, "gid": 0}, "process.user", loader)
        if process.args is None and process.commandLine is None:
            fail("process.args", "required field is missing")
        if process.args is not None and not process.args:
            fail("process.args", "needs at least one entry")
        if not paths.isabs(process.cwd):
            fail("process.cwd", f"{process.cwd!r} is not an absolute path")
        seen = set()
        for i, rl in enumerate(process.rlimits or ()):
            if rl.type not in RLIMITS:
                fail(f"process.rlimits[{i}].type", f"unknown rlimit {rl.type!r}")
            if rl.type in seen:
                fail(f"process.rlimits[{i}].type", f"{rl.type} is set twice")
            if rl.soft > rl.hard:
                fail(f"process.rlimits[{i}]", "soft limit is above the hard limit")
            seen.add(rl.type)
        _check_process_extras(process, fail)
        for i, e in enumerate(process.env or ()):
            if "=" not in e:
                fail(f"process.env[{i}]", f"{e!r} is not KEY=VALUE")
    hooks = config.hooks
    for kind in HOOK_KINDS:
        for i, h in enumerate((getattr(hooks, kind) if hooks is not None else None) or ()):
            for j, e in enumerate(h.env or ()):
                if "=" not in e:
                    fail(f"hooks.{kind}[{i}].env[{j}]", f"{e!r} is not KEY=VALUE")
    for i, m in enumerate(config.mounts or ()):
        if not paths.isabs(m.destination):
            # runc resolves relative destinations from /; the spec says absolute (1.0.2+)
            loader.warnings.append(f"mounts[{i}].destination: {m.destination!r} is relative; "
                                   "taken from /")
    if linux is None:
        _check_uts(config, {}, fail)
        return
    _check_memory_policy(linux.memoryPolicy, fail)
    types = {}
    for i, ns in enumerate(linux.namespaces or ()):
        if ns.type in types:
            fail(f"linux.namespaces[{i}].type", f"{ns.type} namespace listed twice")
        types[ns.type] = ns
    user_ns = types.get("user")
    if (linux.uidMappings or linux.gidMappings) and user_ns is None:
        fail("linux.uidMappings", "mappings need a user namespace in linux.namespaces")
    if user_ns is not None and user_ns.path is None:
        # no maps: create gives crun's default (the caller's ids; see linux/userns.py)
        for key in ("uidMappings", "gidMappings"):
            _check_overlap(getattr(linux, key) or (), f"linux.{key}", fail)
    for key in linux.sysctl or {}:
        ns = sysctl_namespace(key)
        where = f"linux.sysctl.{key}"
        if ns is None:
            fail(where, "not a namespaced sysctl: it would change the host")
        # runc and crun: the config's fields say it, a sysctl beside them would contradict
        if key == "kernel.hostname":
            fail(where, "not allowed: the config's `hostname` sets it")
        if key == "kernel.domainname" and config.domainname not in (None, linux.sysctl[key]):
            fail(where, "conflicts with the config's `domainname`")  # the same value: crun runs it
        if ns not in types:
            fail(where, f"needs a {ns} namespace in linux.namespaces")
        if types[ns].path is not None and ns == "network" and _is_host_ns(types[ns].path):
            fail(where, "the network namespace joined is the host's")
    if linux.rootfsPropagation is not None and "mount" not in types:
        fail("linux.rootfsPropagation", "needs a mount namespace: it would change the "
             "runtime's")
    if linux.netDevices:
        from pyrunc.linux.netdev import check_names
        net = types.get("network")
        if net is None or (net.path is not None and _is_host_ns(net.path)):
            fail("linux.netDevices", "needs a network namespace of the container's own")
        check_names(linux.netDevices, fail)
    _check_uts(config, types, fail)
    if linux.timeOffsets and ("time" not in types or types["time"].path is not None):
        fail("linux.timeOffsets", "time offsets need a new time namespace")
    for key, off in (linux.timeOffsets or {}).items():
        if key not in ("monotonic", "boottime"):
            fail(f"linux.timeOffsets.{key}", "only monotonic and boottime have offsets")
    for i, d in enumerate(linux.devices or ()):
        if not paths.isabs(d.path):
            fail(f"linux.devices[{i}].path", f"{d.path!r} is not an absolute path")
        if d.type != "p" and (d.major is None or d.minor is None):
            fail(f"linux.devices[{i}]", f"a {d.type} device needs major and minor")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(getattr(linux, key) or ()):
            if not paths.isabs(p):
                fail(f"linux.{key}[{i}]", f"{p!r} is not an absolute path")


def _check_overlap(maps, path, fail):
    spans = sorted((m.containerID, m.containerID + m.size, i) for i, m in enumerate(maps))
    host = sorted((m.hostID, m.hostID + m.size, i) for i, m in enumerate(maps))
    for i, m in enumerate(maps):
        if m.size == 0:
            fail(f"{path}[{i}].size", "must be at least 1")
    for kind, ranges in (("containerID", spans), ("hostID", host)):
        for (a0, a1, ai), (b0, b1, bi) in zip(ranges, ranges[1:]):
            if b0 < a1:
                fail(f"{path}[{bi}]", f"{kind} range overlaps {path}[{ai}]")


def _check_process_extras(process, fail):
    s = process.scheduler
    if s is not None:
        from pyrunc.linux.process import SCHED_FLAGS
        for i, f in enumerate(s.flags or ()):
            if f not in SCHED_FLAGS:
                fail(f"process.scheduler.flags[{i}]", f"unknown flag {f!r}")
        # period 0 (absent, as the spec says) is valid: the kernel then uses the deadline
        if s.policy == "SCHED_DEADLINE" and not (s.runtime and s.deadline):
            fail("process.scheduler", "SCHED_DEADLINE needs runtime and deadline")


def _check_memory_policy(mp, fail):
    if mp is None:
        return
    from pyrunc.linux.process import MPOL_FLAGS, MPOL_MODES, parse_nodes
    if mp.mode not in MPOL_MODES:
        fail("linux.memoryPolicy.mode", f"unknown mode {mp.mode!r}")
    for i, f in enumerate(mp.flags or ()):
        if f not in MPOL_FLAGS:
            fail(f"linux.memoryPolicy.flags[{i}]", f"unknown flag {f!r}")
    try:
        nodes = parse_nodes(mp.nodes)
    except ValueError:
        fail("linux.memoryPolicy.nodes", f"{mp.nodes!r} is not a node list like 0-3,7")
    if mp.mode in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY",
                   "MPOL_WEIGHTED_INTERLEAVE") and not nodes:
        fail("linux.memoryPolicy.nodes", f"{mp.mode} needs nodes")


# runc's list (libcontainer/configs/validate): sysctls that belong to a namespace
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def sysctl_namespace(key):
    """The namespace a sysctl lives in, or None when it is global (the host's)."""
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def _is_host_ns(path):
    try:
        st, host = posix.stat(path), posix.stat("/proc/1/ns/net")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino)
