"""The OCI lifecycle (runtime-spec runtime.md): create, start, state, kill, delete, run, exec.

Every failure after the state directory exists undoes what was made (the processes are
killed; their mounts lived in their own mount namespace and vanish with them; the state
directory is removed), then raises the PyruncError that explains it.
"""
import _signal
import posix
import sys
import time

from pyrunc import fastjson, paths
from pyrunc.container.state import (Container, CorruptState, check_id, check_root,
                                    list_ids, now_rfc3339, proc_start_time, write_private)
from pyrunc.errors import PyruncError


class Options:
    """What the CLI passes down; attributes mirror runc's flags."""

    def __init__(self, **kw):
        self.root = "/run/pyrunc"
        self.id = None
        self.bundle = None
        self.pid_file = None
        self.console_socket = None
        self.no_pivot = False
        self.preserve_fds = 0
        self.listen_fds = 0       # of preserve_fds, the first LISTEN_FDS (socket activation)
        self.passed_fds = None    # the fds of 3 .. 3+preserve_fds-1 the caller had open
        self.detach = False
        self.keep = False
        self.strict = False
        self.systemd_cgroup = False
        self.policy = None
        self.explain = None
        self.debug = False
        self.log = None  # Log (see cli.py): .warning(text), .debug(text)
        self.console_pair = None  # run in the foreground: our end of an internal console
        self.sealed = False  # this command runs from a sealed interpreter (linux/sealed.py)
        self.__dict__.update(kw)


# -- create


def load_for_create(opts):
    """(bundle dir, config model, config dict as it will run: after the policy)."""
    from pyrunc.spec import load_config, read_config
    bundle = paths.abspath(opts.bundle or ".")
    raw = read_config(bundle)
    actions = []
    if opts.policy is not None:
        from pyrunc.policy import load_policy
        load_config(raw, opts.strict)  # a malformed config fails as such, not as a policy
        raw, actions = load_policy(opts.policy).apply(raw)
    config, warnings = load_config(raw, opts.strict)
    if config.process is None:
        raise PyruncError("required to create a container", path="process", step="load")
    # before any warning is logged: the re-executed command logs them
    opts.sealed = run_sealed_if_needed(config, config.process.capabilities)
    for w in list(actions) + warnings:
        opts.log.warning(w)
    return bundle, config, raw


def run_sealed_if_needed(config, *capabilities):
    """Re-execute this command from an interpreter nobody can write when the container's
    processes may ptrace pyrunc's (linux/sealed.py); True when it runs sealed."""
    from pyrunc.linux import sealed
    joined = {n.type: n.path for n in (config.linux.namespaces if config.linux else None) or ()}
    if not sealed.needed(any(sealed.may_ptrace(c) for c in capabilities), "user" in joined,
                         joined.get("pid") is not None):
        return False
    if not sealed.running_sealed():
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            sealed.reexec(sys.orig_argv)
        except OSError as e:
            raise PyruncError(f"cannot run from a sealed interpreter: {e.strerror}",
                              step="sealed") from None
    return True


def prepare(opts, bundle, config, ctx):
    """Everything that can fail on bad input, done before any fork."""
    from pyrunc.linux import idmap, namespaces
    linux = config.linux
    root = config.root.path
    ctx.rootfs = paths.join(bundle, root)
    if not paths.isdir(ctx.rootfs):
        raise PyruncError(f"{ctx.rootfs} is not a directory", path="root.path", step="load")
    ctx.rootfs = paths.realpath(ctx.rootfs)
    ctx.ns = namespaces.plan(linux.namespaces if linux else None)
    from pyrunc.linux.userns import in_initial_userns
    ctx.runtime_in_userns = not in_initial_userns()
    if posix.geteuid() != 0:
        refuse_what_needs_root(ctx, linux)
    if ctx.ns.new_user:
        plan_user_namespace(config)
    if not ctx.ns.has("mount") and ctx.ns.has("user"):
        # the runtime's mount namespace belongs to the host's user namespace: no mount
        # could be made from the new one
        raise PyruncError("a user namespace needs a mount namespace (add "
                          "{\"type\": \"mount\"})", path="linux.namespaces",
                          step="namespaces")
    prepare_process(opts, config, config.process, ctx, [])
    check_support(config, opts)
    ctx.cgroup = plan_cgroup(opts, config)
    sched = config.process.scheduler
    if ctx.cgroup is not None and sched is not None and sched.policy in ("SCHED_FIFO",
                                                                         "SCHED_RR"):
        from pyrunc.linux import cgroups
        why = cgroups.realtime_problem(ctx.cgroup, config.linux and config.linux.resources)
        if why:
            raise PyruncError(f"{sched.policy}: {why}", path="process.scheduler.policy",
                              step="load")
    idmapped = [i for i, m in enumerate(config.mounts or ()) if idmap.wants_idmap(m)]
    if idmapped and posix.geteuid() != 0:
        m = config.mounts[idmapped[0]]
        raise PyruncError("an idmapped mount needs root: mount_setattr wants CAP_SYS_ADMIN "
                          "in the filesystem's user namespace",
                          path=f"mounts[{idmapped[0]}] ({m.destination})", step="mounts")
    if idmapped:
        ctx.idmap_fds = idmap.userns_fds(
            config.mounts, (linux.uidMappings, linux.gidMappings) if ctx.ns.new_user else None)
    if ctx.ns.has("user") and posix.geteuid() == 0 and not ctx.runtime_in_userns:
        from pyrunc.linux import mountsrc, rootfs
        ctx.mount_sources = mountsrc.wanted(
            config.mounts, lambda m: rootfs.is_bind(m, rootfs.parse_options(m.options)))
        # none when /dev is bound in: the devices step does not run then
        ctx.device_sources = ([] if rootfs.dev_is_bound(config.mounts)
                              else mountsrc.devices_wanted(config.linux.devices))
        ctx.sources_from_runtime = bool(ctx.mount_sources or ctx.device_sources)
    ctx.preserve_fds = opts.preserve_fds
    ctx.listen_fds = opts.listen_fds
    ctx.passed_fds = opts.passed_fds
    ctx.no_pivot = opts.no_pivot
    ctx.explain = opts.explain
    ctx.debug = opts.debug
    ctx.state = {"ociVersion": config.ociVersion, "id": ctx.id, "bundle": bundle,
                 "annotations": config.annotations or {}}


def refuse_what_needs_root(ctx, linux):
    """Rootless: what only root may do, said before anything starts."""
    if not ctx.ns.has("user"):
        raise PyruncError("without root, a container needs a user namespace (add {\"type\": "
                          "\"user\"}; `pyrunc spec --rootless` makes such a config)",
                          path="linux.namespaces", step="namespaces")
    if linux.netDevices:
        raise PyruncError("moving a host interface into the container needs root",
                          path="linux.netDevices", step="net_devices")


def plan_user_namespace(config):
    """A new user namespace: crun's maps where the config gives none; without root, every
    host id named must be the caller's or in its subordinate ranges."""
    from pyrunc.linux import userns
    linux, euid, egid = config.linux, posix.geteuid(), posix.getegid()
    user = config.process.user
    if euid == 0 and linux.uidMappings and linux.gidMappings:
        return  # root, maps given: nothing to fill in or check
    import pwd
    from pyrunc.spec.model import ID_MAPPING, Loader
    try:
        name = pwd.getpwuid(euid).pw_name
    except KeyError:
        name = str(euid)
    for key, own, path, inside in (("uidMappings", euid, "/etc/subuid", user.uid),
                                   ("gidMappings", egid, "/etc/subgid", user.gid)):
        if getattr(linux, key):
            continue
        ranges = userns.subordinate_ranges(path, name, euid)
        setattr(linux, key, [
            ID_MAPPING.load({"containerID": c, "hostID": h, "size": n},
                            f"linux.{key}[{i}] (default)", Loader())
            for i, (c, h, n) in enumerate(userns.default_mappings(inside, own, ranges))])
    userns.check_subordinate(linux, euid, egid, name)
    if euid != 0 and user.additionalGids and userns.only_own(linux.gidMappings, egid):
        raise PyruncError("the kernel denies setgroups in a user namespace whose gid map "
                          "is only your own gid (map a range of /etc/subgid too)",
                          path="process.user.additionalGids", step="uid_gid_maps")


def prepare_process(opts, config, proc, ctx, warnings):
    """What create and exec both prepare in the parent: the process's capability masks and
    the container's seccomp filter (cached under --root)."""
    from pyrunc.linux import capabilities
    ctx.caps = capabilities.prepare(proc.capabilities, warnings, opts.strict)
    linux = config.linux
    if linux is not None and linux.seccomp is not None:
        from pyrunc.linux import seccomp
        ctx.seccomp = seccomp.prepare(linux.seccomp, warnings, opts.strict,
                                      cache_dir=paths.join(opts.root, ".seccomp-cache"))
    for w in warnings:
        opts.log.warning(w)


def check_support(config, opts):
    from pyrunc.features import refused_settings, unsupported_settings
    for path, why in refused_settings(config):
        raise PyruncError(f"{why}: cannot apply it", path=path, step="load")
    for path, why in unsupported_settings(config):
        if opts.strict:
            raise PyruncError(f"{why} (strict mode)", path=path, step="load")
        opts.log.warning(f"{path}: {why}; ignored")


def plan_cgroup(opts, config):
    """The container's cgroup, its limits checked (nothing written yet); None when pyrunc
    leaves cgroups alone: --systemd-cgroup (no systemd driver), or without root when no
    hierarchy is delegated to the caller."""
    from pyrunc.linux import cgroups
    from pyrunc.linux.userns import rootless
    linux = config.linux
    resources = linux.resources if linux else None
    cg = None
    without_root = not opts.systemd_cgroup and rootless()
    if without_root:
        cg = cgroups.delegated(cgroups.plan(linux.cgroupsPath if linux else None, opts.id))
    if cg is None and (opts.systemd_cgroup or without_root):
        # one warning, for what the config asked of cgroups
        asked = ("linux.resources" if resources else "linux.cgroupsPath"
                 if linux and linux.cgroupsPath and not opts.systemd_cgroup else None)
        if asked:
            why = ("the systemd cgroup driver is not implemented" if opts.systemd_cgroup
                   else "without root pyrunc makes no cgroup unless one is delegated to "
                   "you (the container stays in yours)")
            if opts.strict:
                raise PyruncError(f"{why} (strict mode)", path=asked, step="load")
            opts.log.warning(f"{asked}: {why}; ignored")
        return None
    if cg is None:
        cg = cgroups.plan(linux.cgroupsPath if linux else None, opts.id)
    warnings = []
    cgroups.set_resources(cg, cgroups.with_device_rules(resources) if cg.device_rules
                          else resources, warnings, dry=True)
    cg.drop_idle_v2_tree()
    for w in warnings:
        if without_root:
            w = w.replace("on this host", "delegated to you")
        if opts.strict:
            path, _, why = w.partition(": ")
            raise PyruncError(f"{why.removesuffix(', ignored')} (strict mode)", path=path,
                              step="load")
        opts.log.warning(w)
    return cg


def connect_console(path):
    import _socket  # here: start, state and delete need no socket module
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise PyruncError(f"--console-socket {path}: {e.strerror}", step="terminal") from None
    return s


def create(opts):
    """Create the container and leave its init waiting on exec.fifo. Returns the Container."""
    from pyrunc import timing  # here, as in run: start, state, kill and delete need none
    from pyrunc.init.child import fork_init
    from pyrunc.init.context import Channel, Context
    from pyrunc.init.nsenter import PARENT_AFTER_FORK_STEPS, run_steps
    bundle, config, raw = load_for_create(opts)
    timing.lap("load config")
    container = Container.new(opts.root, opts.id)
    init_pid = ctx = host_mount = None
    try:
        ctx = Context(config, bundle, opts.id)
        prepare(opts, bundle, config, ctx)
        timing.lap("prepare (capabilities, seccomp, namespace paths)")
        if not ctx.ns.has("mount"):
            # the container's mounts go to our mount table, under this bind (see check)
            from pyrunc.linux import rootfs
            host_mount = (rootfs.bind_in_place(ctx.rootfs), ctx.rootfs)
            container.record_host_mount(ctx.rootfs, host_mount[0])
        console = None
        if config.process.terminal:
            if opts.console_socket:
                console = connect_console(opts.console_socket)
            elif opts.console_pair is not None:
                console = opts.console_pair
            else:
                raise PyruncError("terminal is true: --console-socket is required",
                                  path="process.terminal", step="terminal")
            ctx.console_fd = console.fileno()
        parent, child = Channel.pair()

        def in_child():
            container.unlock()  # the flock stays with the parent's fd, not the init's
            parent.close()
            ctx.channel = child
        c1, init_pid = fork_init(ctx, in_child)
        child.close()
        if not ctx.sources_from_runtime:  # else the parent makes the idmapped trees
            close_idmap_fds(ctx)
        if console is not None:
            console.close()
        timing.lap("fork")
        try:
            if ctx.cgroup is not None:
                # what a create killed from here on leaves: delete --force reads it
                container.record_cgroups(ctx.cgroup.dirs)
            ctx.channel = parent
            run_steps(ctx, PARENT_AFTER_FORK_STEPS)
            # while the init enters its namespaces and mounts (the other CPU): the config
            # copy that start, delete and exec read, and exec.fifo, whose fds the init asks
            # for ("fifo") before it reports ready
            write_private(container.config_file, fastjson.dumps(raw))
            posix.mkfifo(container.fifo, 0o600)
            posix.chmod(container.fifo, 0o600)  # not the umask's
            # read-write: opening it never blocks, and the init, which gets this fd, needs
            # no path (nor a host /proc) to reopen it later
            ctx.fifo_fd = posix.open(container.fifo, posix.O_RDWR | posix.O_CLOEXEC)
            init_pid = drive(parent, ctx, c1, init_pid, config, until="ready")
            timing.lap("init ready")
            start_time, _ = proc_start_time(init_pid)
            container.data = dict(ctx.state, status="created", pid=init_pid,
                                  pidStartTime=start_time, rootfs=ctx.rootfs,
                                  created=now_rfc3339(), owner="",
                                  terminal=bool(config.process.terminal),
                                  sealedRuntime=opts.sealed,
                                  hookKinds=[k for k in ("prestart", "poststart", "poststop")
                                             if config.hooks and getattr(config.hooks, k)],
                                  cgroupPaths=ctx.cgroup.dirs if ctx.cgroup else None)
            container.save()
            if opts.pid_file:
                write_pid_file(opts.pid_file, init_pid)
            parent.send("saved")
            timing.lap("state saved")
        finally:
            if ctx.fifo_fd is not None:
                posix.close(ctx.fifo_fd)
            close_idmap_fds(ctx)
            parent.close()
            if c1 is not None:
                _reap(c1)
    except BaseException:
        if init_pid:
            _kill_and_wait(init_pid)
        if ctx is not None and ctx.cgroup is not None:
            from pyrunc.linux import cgroups
            cgroups.remove(ctx.cgroup.made[::-1])  # children before their parents
        if host_mount is not None:
            from pyrunc.linux import rootfs
            rootfs.detach_if_ours(host_mount[1], host_mount[0])
        container.remove()
        raise
    return container


def close_idmap_fds(ctx):
    for fd in (ctx.idmap_fds or {}).values():
        posix.close(fd)
    ctx.idmap_fds = None


def send_mount_sources(channel, ctx, init_pid, config):
    from pyrunc.init.context import MAX_FDS
    from pyrunc.linux import mountsrc
    opened = mountsrc.open_sources(init_pid, config.mounts, ctx.mount_sources, ctx.bundle,
                                   ctx.idmap_fds)
    try:
        if ctx.device_sources:
            opened += mountsrc.make_devices(config.linux.devices, ctx.device_sources,
                                            config.linux.uidMappings, config.linux.gidMappings)
        for at in range(0, max(len(opened), 1), MAX_FDS):
            batch = opened[at:at + MAX_FDS]
            channel.send("mount_sources_done", fds=[fd for _, _, fd in batch],
                         entries=[[i, kind] for i, kind, _ in batch],
                         last=at + MAX_FDS >= len(opened))
    finally:
        for _, _, fd in opened:
            posix.close(fd)


def drive(channel, ctx, c1, init_pid, config, until):
    """Serve the children's requests until `until` (or EOF for exec); return the init's pid
    (known from the fork, or reported by C1)."""
    while True:
        msg = channel.recv()
        if msg is None:
            if until is None and init_pid is not None:
                return init_pid  # exec: the channel closed at execve
            raise PyruncError("the container's init exited before it was ready")
        kind = msg["type"]
        if kind == "error":
            raise PyruncError.from_wire(msg)
        if kind == "pid":
            init_pid = msg["pid"]
        elif kind == "maps":
            from pyrunc.linux import userns
            linux = config.linux
            userns.write_maps(c1, linux.uidMappings, linux.gidMappings, posix.geteuid(),
                              posix.getegid())
            channel.send("maps_done")
        elif kind == "net_devices":
            from pyrunc.linux import netdev
            netdev.move_devices(config.linux.netDevices, c1 or init_pid)
            channel.send("net_devices_done")
        elif kind == "seccomp_listener":
            from pyrunc.linux import seccomp_notify
            filt = ctx.seccomp
            try:
                seccomp_notify.send_listener(filt.listener_path, msg["fds"][0],
                                             dict(ctx.state, status="creating", pid=init_pid),
                                             filt.listener_metadata)
            finally:
                posix.close(msg["fds"][0])
            channel.send("seccomp_listener_done")
        elif kind == "mount_sources":
            send_mount_sources(channel, ctx, init_pid, config)
        elif kind == "cgroups":
            channel.send("cgroups_done")  # the cgroups step ran before this loop
        elif kind == "fifo":
            channel.send("fifo_done", fds=(ctx.fifo_fd,))
        elif kind == "hooks":
            from pyrunc.linux import hooks
            state = dict(ctx.state, status="created", pid=init_pid)  # steps 3-5: after step 2
            if not prestart_at_start(config.ociVersion):
                hooks.run_hooks("prestart", config.hooks.prestart, state)
            hooks.run_hooks("createRuntime", config.hooks.createRuntime, state)
            channel.send("hooks_done")
        elif kind == until:
            return init_pid


def _reap(pid):
    try:
        posix.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _send(pid, sig):
    try:
        posix.kill(pid, sig)
    except ProcessLookupError:
        pass


def _kill_and_wait(pid, timeout=5.0):
    try:
        posix.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        posix.waitpid(pid, 0)  # our child when we are a subreaper (run)
        return
    except ChildProcessError:
        pass
    import select  # here, as below: state, kill and delete need no select module
    deadline = time.monotonic() + timeout
    pidfd = None
    try:
        pidfd = posix.pidfd_open(pid)
        select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
    except OSError:
        pass
    finally:
        if pidfd is not None:
            posix.close(pidfd)


def write_pid_file(path, pid):
    tmp = f"{path}.{posix.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    posix.rename(tmp, path)


# -- start


def start(opts):
    container = Container.load(opts.root, opts.id)
    try:
        status = container.status()
        if status != "created":
            raise PyruncError(f"cannot start a container that is {status}")
        start_created(container, opts)
    finally:
        container.unlock()


def prestart_at_start(version):
    """Runtime-spec 1.0.0 and 1.0.1 call prestart hooks "after the start operation is called
    but before the user-specified program command is executed"; from 1.0.2 they are
    deprecated and run in create, before createRuntime (runc's and crun's place always)."""
    try:
        numbers = tuple(int(n) for n in version.split("-", 1)[0].split(".")[:3])
    except ValueError:
        return False
    return numbers < (1, 0, 2)


def start_created(container, opts):
    """Release the init from exec.fifo, wait until it exec'd, run the poststart hooks."""
    if prestart_at_start(container.data["ociVersion"]):
        _prestart_in_start(container)
    fd = posix.open(container.fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    try:
        # the init's padding first (steps.step_wait_for_start says why)
        output = _read_until_exec(fd, container.pid).lstrip(b"\0")
    finally:
        posix.close(fd)
        posix.unlink(container.fifo)
    if output[:1] != b"0":
        raise PyruncError("the container's init exited before start")
    if len(output) > 1:
        text = output[1:].decode(errors="replace").strip()
        raise PyruncError(text.removeprefix(f"pyrunc: {container.id}: "))
    poststart = _stored_hooks(container, "poststart")
    if poststart:
        from pyrunc.linux import hooks
        hooks.run_hooks("poststart", poststart, container.hook_state("running"),
                        warn_only=True, warn=opts.log.warning)


def _prestart_in_start(container):
    """Spec 1.0.0/1.0.1: prestart hooks in `start`, the container `created`; one that fails
    stops the container (its init is killed) and `start` fails: `delete` does the rest."""
    prestart = _stored_hooks(container, "prestart")
    if not prestart:
        return
    from pyrunc.linux import hooks
    try:
        hooks.run_hooks("prestart", prestart, container.hook_state("created"))
    except PyruncError:
        try:
            posix.kill(container.pid, 9)
        except ProcessLookupError:
            pass
        raise


def _read_until_exec(fd, pid):
    """Everything the init writes to exec.fifo until it closes it (at execve, or exit)."""
    import select
    chunks = []
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    wrote = False
    while True:
        events = poller.poll(100)
        if not events:
            if not wrote and not _alive(pid):
                break  # the init died before opening its end: nothing will come
            continue
        data = posix.read(fd, 4096)
        if data:
            wrote = True
            chunks.append(data)
        elif wrote:
            break
        else:
            # POLLHUP with nothing written: the init opened its end and died
            if not _alive(pid):
                break
            time.sleep(0.001)
    return b"".join(chunks)


def _alive(pid):
    start, letter = proc_start_time(pid)
    return start is not None and letter not in ("Z", "X")


def _stored_config(container, raw=None):
    from pyrunc.spec import load_config
    if raw is None:
        with open(container.config_file, "rb") as f:
            raw = fastjson.loads(f.read())
    return load_config(raw)[0]


def _stored_hooks(container, kind):
    """The container's hooks of one kind (model nodes), or None. state.json's hookKinds
    says whether there are any: start and delete read and model the stored config only
    then (a state written before hookKinds existed: read the config to know)."""
    if kind not in container.data.get("hookKinds", (kind,)):
        return None
    with open(container.config_file, "rb") as f:
        raw = fastjson.loads(f.read())
    if not (raw.get("hooks") or {}).get(kind):
        return None
    return getattr(_stored_config(container, raw).hooks, kind)


# -- state, list, kill, delete


def state(opts):
    return Container.load(opts.root, opts.id, lock=False).public_state()


def list_states(root, warn=None):
    """The state of each container; one whose state.json is corrupt is listed with status
    "corrupt" (and a warning naming the file), so that it can be seen and deleted."""
    states = []
    for cid in list_ids(root):
        try:
            states.append(Container.load(root, cid, lock=False).public_state())
        except CorruptState as e:
            if warn is not None:
                warn(str(e))
            states.append({"ociVersion": "", "id": cid, "status": "corrupt", "pid": 0,
                           "bundle": "", "rootfs": "", "created": "", "owner": ""})
        except PyruncError:
            continue  # deleted while we listed
    return states


def kill(opts, sig, all_processes=False):
    container = Container.load(opts.root, opts.id)
    try:
        status = container.status()
        if status == "stopped":
            if all_processes:
                return  # as runc: nothing left to signal is not an error with --all
            raise PyruncError("container not running (it is stopped)")
        pids = pids_of(container) if all_processes else [container.pid]
        for pid in pids:
            _send(pid, sig)
    finally:
        container.unlock()


def pause(opts, on):
    """pause (freeze every process of the container) or resume (thaw them)."""
    from pyrunc.linux import cgroups
    container = Container.load(opts.root, opts.id)
    try:
        status = container.status()
        wanted = ("running", "created") if on else ("paused",)
        if status not in wanted:
            raise PyruncError(f"cannot {'pause' if on else 'resume'} a container that is "
                              f"{status}")
        dirs = container.data.get("cgroupPaths")
        if not dirs:
            raise PyruncError("the container has no cgroup (made with --systemd-cgroup or "
                              "without root)", step="cgroups")
        cgroups.freeze(dirs, on)
        container.data["paused"] = on
        container.save()
    finally:
        container.unlock()


def update(opts, resources):
    """`update`: new limits (linux.resources) written into a live container's cgroup."""
    from pyrunc.linux import cgroups
    container = Container.load(opts.root, opts.id)
    try:
        if container.status() == "stopped":
            raise PyruncError("cannot update a container that is stopped")
        dirs = container.data.get("cgroupPaths")
        if not dirs:
            raise PyruncError("the container has no cgroup (made with --systemd-cgroup or "
                              "without root)", step="cgroups")
        cg = cgroups.Cgroup(dirs, cgroups.Layout.read())
        warnings = []
        cgroups.set_resources(cg, resources, warnings, dry=True)
        for w in warnings:
            opts.log.warning(w)
        cgroups.set_resources(cg, resources, [])
    finally:
        container.unlock()


def pids_of(container):
    """Host pids of the container's processes: those in its cgroup, when it has one."""
    dirs = container.data.get("cgroupPaths")
    if dirs:
        from pyrunc.linux import cgroups
        return cgroups.procs(dirs)
    return _pids_by_namespace(container)


def _pids_by_namespace(container):
    """Without a cgroup: every process in its pid namespace when the init is pid 1 there (the container made it); otherwise (the host's
    pid namespace, or one joined from another container: podman --pid host) only the init
    and its descendants, never the namespace's other processes."""
    init = container.pid
    try:
        target = posix.readlink(f"/proc/{init}/ns/pid")
        with open(f"/proc/{init}/status") as f:
            nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
    except OSError:
        return []
    own_namespace = len(nspid) > 1 and nspid[-1] == "1"
    pids, parents = [], {}
    for name in posix.listdir("/proc"):
        if name.isdigit():
            try:
                if own_namespace:
                    if posix.readlink(f"/proc/{name}/ns/pid") == target:
                        pids.append(int(name))
                else:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        data = f.read()
                    parents[int(name)] = int(data[data.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    if own_namespace:
        return sorted(pids)
    family, added = {init}, True
    while added:
        added = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                added = True
    return sorted(family)


def delete(opts, force=False, retry=True):
    check_id(opts.id)  # before any path is made from it, --force or not
    check_root(opts.root)  # not an error --force may pass over
    try:
        container = Container.load(opts.root, opts.id)
    except CorruptState as e:
        if not force:
            raise
        opts.log.warning(f"{e}: cleaning up what it can")
        remove_corrupt(opts.root, opts.id, e.data, opts.log.warning)
        return
    except PyruncError:
        if not force:
            raise
        if paths.isdir(paths.join(opts.root, opts.id)):
            if remove_unfinished(opts.root, opts.id) and retry:
                return delete(opts, force, retry=False)  # that create finished meanwhile
        return  # an unknown id: containerd's shim relies on exit 0 here
    status = container.status()
    if status != "stopped":
        if not force:
            container.unlock()
            raise PyruncError(f"cannot delete a container that is {status}: "
                              "stop it first or use --force")
        pids = pids_of(container) or [container.pid]
        if container.data.get("paused"):
            # frozen processes die only once thawed: signal them all first, then thaw
            from pyrunc.linux import cgroups
            for pid in pids:
                _send(pid, _signal.SIGKILL)
            cgroups.freeze(container.data["cgroupPaths"], False)
        for pid in pids:
            _kill_and_wait(pid)
    try:
        poststop = _stored_hooks(container, "poststop")
    except (OSError, ValueError, PyruncError):
        poststop = None  # a damaged copy must not keep the container from going
    hook_state = container.hook_state("stopped")
    for problem in _remove_cgroups(list((container.data.get("cgroupPaths") or {}).values())):
        opts.log.warning(f"cgroup not removed: {problem}")
    _detach_host_mount(container, opts.log.warning)
    container.remove()
    if poststop:
        from pyrunc.linux import hooks
        hooks.run_hooks("poststop", poststop, hook_state, warn_only=True,
                        warn=opts.log.warning)


def _detach_host_mount(container, warn):
    """The rootfs bind (and every mount under it) of a container without a mount namespace,
    taken out of the runtime's mount table."""
    recorded = container.recorded_host_mount()
    if recorded is None:
        return
    from pyrunc.linux import rootfs
    try:
        rootfs.detach_if_ours(recorded[1], recorded[0])
    except OSError as e:
        if warn:
            warn(f"{recorded[1]}: mounts not removed: {e.strerror}")


def remove_unfinished(root, cid):
    """The directory of a create that was killed before it wrote its state. Its children
    exit by themselves when their channel closes, so only files are left. The lock waits
    for a create still at work; True when that one finished: a normal container again."""
    leftover = Container(root, cid)
    try:
        leftover.lock()
    except FileNotFoundError:
        return False
    if paths.exists(leftover.state_file):
        leftover.unlock()
        return True
    _remove_cgroups(leftover.recorded_cgroups())
    _detach_host_mount(leftover, None)
    leftover.remove()
    return False


def remove_corrupt(root, cid, data, warn):
    """delete --force of a container whose state.json is corrupt. The process it names is
    killed only if its start time matches (otherwise that pid is another process now, and
    nothing is killed); when it names none, the processes of the cgroup that create
    recorded are, as delete --force kills a container's. Then its cgroups and the
    directory go. Its poststop hooks do not run: the state naming them is not trusted."""
    leftover = Container(root, cid)
    leftover.lock()
    data = data if isinstance(data, dict) else {}
    dirs = data.get("cgroupPaths")
    dirs = [d for d in dirs.values() if isinstance(d, str)] if isinstance(dirs, dict) else []
    dirs = _in_cgroupfs(dirs or leftover.recorded_cgroups())
    pid, started = data.get("pid"), data.get("pidStartTime")
    victims = []
    if type(pid) is int and pid > 0:
        if type(started) is int and proc_start_time(pid)[0] == started:
            victims = [pid]
        else:
            warn(f"process {pid} is not the container's (its start time differs): not killed")
    if victims or type(pid) is not int:
        from pyrunc.linux import cgroups
        victims += cgroups.procs(dict(enumerate(dirs)))
    for victim in victims:
        _kill_and_wait(victim)
    for problem in _remove_cgroups(dirs):
        warn(f"cgroup not removed: {problem}")
    _detach_host_mount(leftover, warn)
    leftover.remove()


def _in_cgroupfs(dirs):
    """The directories below a cgroup mount (never one itself, nor climbing out of it)."""
    if not dirs:
        return []
    from pyrunc.linux import cgroups
    mounts = [m.rstrip("/") + "/" for m in cgroups.Layout.read().mounts.values()]
    return [d for d in dirs if any(d.startswith(m) for m in mounts) and "/../" not in d + "/"]


def _remove_cgroups(dirs):
    """rmdir the container's cgroup directories: only below a cgroup mount, never one."""
    if not dirs:
        return []
    from pyrunc.linux import cgroups
    inside = _in_cgroupfs(dirs)
    return cgroups.remove(inside) + [f"{d}: not in a cgroup hierarchy" for d in dirs
                                     if d not in inside]


# -- run


# _signal rather than signal: its enums cost milliseconds a start
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
             _signal.SIGUSR2, _signal.SIGWINCH, _signal.SIGCONT)


def run(opts):
    """create + start; in the foreground, wait and return the container's exit status."""
    from pyrunc import timing
    console = None
    if not opts.detach:
        # the init is our grandchild: as a subreaper we inherit it and can wait for it
        from pyrunc import syscalls as sc  # here: state, start, delete need no cffi
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1, what="prctl PR_SET_CHILD_SUBREAPER")
        if not opts.console_socket:
            # a terminal without --console-socket: we hold the pty master ourselves, as runc
            import _socket
            console, opts.console_pair = _socket.socketpair(_socket.AF_UNIX,
                                                            _socket.SOCK_STREAM)
    try:
        container = create(opts)
    finally:
        if opts.console_pair is not None:
            opts.console_pair.close()
    try:
        master = None
        if console is not None and container.data.get("terminal"):
            from pyrunc.linux import terminal
            master = terminal.recv_fd(console)
            terminal.copy_size(master)  # as proxy() will: before the process can look
        start_created(container, opts)
        timing.lap("start (until exec and poststart hooks)")
    except BaseException:
        _kill_and_wait(container.pid)
        container.unlock()  # delete takes the lock again: a second flock here would wait forever
        delete(opts, force=True)
        raise
    finally:
        if console is not None:
            console.close()
    container.unlock()
    if opts.detach:
        return 0
    if master is not None:
        from pyrunc.linux import terminal
        pidfd = posix.pidfd_open(container.pid)
        terminal.proxy(master, pidfd)
        posix.close(pidfd)
    status = wait_forwarding(container.pid)
    timing.lap("container ran")
    if not opts.keep:
        delete(opts, force=True)
        timing.lap("delete")
    return status


def wait_forwarding(pid):
    """Wait for pid, passing on the signals a foreground runtime receives."""
    def forward(signum, _frame):
        try:
            posix.kill(pid, signum)
        except ProcessLookupError:
            pass
    for s in FORWARDED:
        _signal.signal(s, forward)
    while True:
        wpid, status = posix.waitpid(-1, 0)
        if wpid == pid:
            return posix.waitstatus_to_exitcode(status) if posix.WIFEXITED(status) \
                else 128 + posix.WTERMSIG(status)
