"""The init's steps after the namespaces, in runc's order (standard_init_linux.go).

Each step is `(name, applies, run)`. `applies(ctx)` says whether the config asks for it
(the --explain output lists the ones that run); `run(ctx)` does it. The names are the
vocabulary of errors (`[step: mounts]`), --debug logs, --explain and fault injection
(PYRUNC_FAIL_STEP=mounts). pyrunc/init/nsenter.py has the steps before these (entering
the namespaces) and run_steps, which runs any of the lists.

The init (C2) runs INIT_STEPS for `create`, or EXEC_STEPS for `exec` into a running
container. Only the init imports this module, first thing after its fork (child.py): the
parent never needs rootfs, dmz, net or process, and keeps a smaller memory without them.
"""
import fcntl
import posix

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError
from pyrunc.init.nsenter import NAMESPACE_STEPS, PARENT_AFTER_FORK_STEPS
from pyrunc.linux import capabilities, dmz, hooks, net, process, rootfs

# After pivot_root nothing can be imported. The modules every init needs are imported above,
# before the init's first step; those only some configs need (termios and seccomp's tables
# cost ~2 ms) are imported by preload(), which the init calls first.


def preload(config, proc):
    if proc.terminal:
        from pyrunc.linux import terminal  # noqa: F401
    if config.linux is not None and config.linux.seccomp is not None:
        from pyrunc.linux import seccomp  # noqa: F401


# -- C2: the container's init


def step_rootfs_propagation(ctx):
    # the runtime's tree: rslave when the container is to receive the host's events, else
    # rprivate; what the config asks for is applied to the container's / after pivot_root
    asked = ctx.setting("rootfsPropagation")
    rootfs.set_propagation("rslave" if asked in ("slave", "rslave") else "rprivate")
    rootfs.bind_rootfs(ctx.rootfs)


def step_mount_sources(ctx):
    # the parent opens the bind sources in our mount namespace (linux/mountsrc.py)
    ctx.channel.send("mount_sources")
    ctx.mount_fds, ctx.device_fds = {}, {}
    while True:
        msg = ctx.channel.expect("mount_sources_done")
        for (i, kind), fd in zip(msg["entries"], msg["fds"]):
            if kind == "device":
                ctx.device_fds[i] = fd
            else:
                ctx.mount_fds[i] = (fd, kind)
        if msg["last"]:
            return


def step_enter_root(ctx):
    # exec into a container without a mount namespace: joining the namespaces left this
    # process on the runtime's root; the init's is the container's (a chroot)
    fd = posix.open(f"/proc/{ctx.root_of}/root", posix.O_RDONLY | posix.O_DIRECTORY |
                    posix.O_CLOEXEC)
    try:
        posix.fchdir(fd)
    finally:
        posix.close(fd)
    posix.chroot(".")
    posix.chdir("/")


def step_mounts(ctx):
    try:
        rootfs.mount_all(ctx.rootfs, ctx.config.mounts, ctx.bundle, ctx.in_userns,
                         ctx.idmap_fds, in_cgroupns=ctx.ns.has("cgroup"),
                         cgroup_dirs=ctx.cgroup.dirs if ctx.cgroup is not None else None,
                         mount_fds=ctx.mount_fds)
    finally:
        for fd, _ in (ctx.mount_fds or {}).values():
            posix.close(fd)
        ctx.mount_fds = None


def step_devices(ctx):
    try:
        rootfs.create_devices(ctx.rootfs, ctx.setting("devices"), ctx.in_userns,
                              ctx.device_fds)
    finally:
        for fd in (ctx.device_fds or {}).values():
            posix.close(fd)
        ctx.device_fds = None


def step_dev_symlinks(ctx):
    has_devpts = any(m.type == "devpts" for m in ctx.config.mounts or ())
    rootfs.dev_symlinks(ctx.rootfs, has_devpts)


def step_runtime_hooks(ctx):
    # prestart and createRuntime run in the runtime's namespaces: the parent runs them
    ctx.channel.send("hooks")
    ctx.channel.expect("hooks_done")


def step_create_container_hooks(ctx):
    hooks.run_hooks("createContainer", ctx.config.hooks.createContainer,
                    ctx.hook_state("created"), env=ctx.process.env or [])


def step_pivot_root(ctx):
    if not ctx.ns.has("mount"):
        rootfs.chroot_only(ctx.rootfs)  # the runtime's mount namespace: nothing moves
        return
    if ctx.no_pivot:
        rootfs.chroot(ctx.rootfs)
    else:
        rootfs.pivot_root(ctx.rootfs)
    asked = ctx.setting("rootfsPropagation")
    if asked is not None:
        rootfs.set_propagation(asked)  # on the container's own / (shared: a new peer group)


def step_loopback(ctx):
    net.loopback_up()


def step_hostname(ctx):
    if ctx.config.hostname:
        sc.sethostname(ctx.config.hostname)
    if ctx.config.domainname:
        sc.setdomainname(ctx.config.domainname)


def step_sysctl(ctx):
    for key, value in ctx.setting("sysctl").items():
        try:
            process.write_proc("sys/" + key.replace(".", "/"), value)
        except OSError as e:
            raise PyruncError(f"write {key}: {e.strerror}", path=f"linux.sysctl.{key}",
                              errno=e.errno) from None


def _each_path(ctx, key, action):
    for i, path in enumerate(ctx.setting(key)):
        try:
            action(path)
        except OSError as e:
            raise PyruncError(e.strerror, path=f"linux.{key}[{i}] ({path})",
                              errno=e.errno) from None


def step_readonly_paths(ctx):
    _each_path(ctx, "readonlyPaths", rootfs.readonly_path)


def step_masked_paths(ctx):
    _each_path(ctx, "maskedPaths", rootfs.mask_path)


def step_root_readonly(ctx):
    if ctx.process.terminal:
        # the terminal step binds the pty on /dev/console later: without a /dev tmpfs the
        # file must be made while / is still writable (crun does; runc fails with EROFS)
        from pyrunc.linux import terminal  # preloaded
        terminal.make_console_target()
    rootfs.root_readonly()


def step_rlimits(ctx):
    ctx.nofile_deferred = process.set_rlimits(ctx.process.rlimits)


def step_rlimit_nofile(ctx):
    # the config's RLIMIT_NOFILE soft limit, once the init opens and receives nothing more
    process.lower_nofile(ctx.nofile_deferred)


def step_oom_score_adj(ctx):
    try:
        process.set_oom_score_adj(ctx.process.oomScoreAdj)
    except OSError as e:
        raise PyruncError(f"write oom_score_adj: {e.strerror}", path="process.oomScoreAdj",
                          errno=e.errno) from None


def step_scheduler(ctx):
    process.set_scheduler(ctx.process.scheduler)


def step_io_priority(ctx):
    process.set_io_priority(ctx.process.ioPriority)


def step_memory_policy(ctx):
    process.set_memory_policy(ctx.setting("memoryPolicy"))


PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}


def step_personality(ctx):
    sc.personality(PERSONALITY[ctx.setting("personality").domain])


def step_session(ctx):
    # as runc: a session and process group of the container's own, not the caller's (which
    # lie outside its pid namespace); with a terminal, the terminal step makes it
    posix.setsid()


def step_terminal(ctx):
    from pyrunc.linux import terminal  # preloaded
    master, slave = terminal.open_pty()
    size = ctx.process.consoleSize
    terminal.send_fd(ctx.console_fd, master)
    posix.close(master)
    if not ctx.exec_mode:
        terminal.mount_console(slave)
    posix.close(ctx.console_fd)
    ctx.console_fd = None
    terminal.make_controlling(slave, (size.height, size.width) if size else None)


def step_no_new_privileges(ctx):
    if sc.trace:
        sc.trace("prctl(PR_SET_NO_NEW_PRIVS, 1)")
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1, what="prctl PR_SET_NO_NEW_PRIVS")


def load_seccomp(ctx):
    from pyrunc.linux import seccomp  # preloaded
    listener = seccomp.load(ctx.seccomp)
    if listener is not None:
        # SCMP_ACT_NOTIFY: the parent, in the host's namespaces, hands it to listenerPath
        ctx.channel.send("seccomp_listener", fds=[listener])
        ctx.channel.expect("seccomp_listener_done")
        posix.close(listener)


def step_seccomp_early(ctx):
    # without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before capabilities drop
    load_seccomp(ctx)


def _notify(ctx):
    return ctx.seccomp is not None and ctx.seccomp.listener_path is not None


def step_capabilities_bounding(ctx):
    capabilities.drop_bounding(ctx.caps)


def step_user(ctx):
    if ctx.caps is not None:
        capabilities.keep_caps_for_user_switch()
    user = ctx.process.user
    posix.umask(0o022 if user.umask is None else user.umask)
    try:
        if user.uid != 0:
            process.give_stdio_to(user.uid, user.gid)
        process.switch_user(user)
    except OSError as e:
        raise PyruncError(f"set user {user.uid}:{user.gid}: {e.strerror}", path="process.user",
                          errno=e.errno) from None


def step_capabilities(ctx):
    capabilities.apply(ctx.caps)


def step_make_cwd(ctx):
    # as runc and crun: a missing cwd is made (0755, as root) in the container's root
    cwd = ctx.process.cwd
    try:
        posix.stat(cwd)
        return
    except FileNotFoundError:
        pass
    except OSError as e:
        raise PyruncError(f"stat {cwd}: {e.strerror}", path="process.cwd",
                          errno=e.errno) from None
    path = ""
    for part in cwd.split("/"):
        if not part:
            continue
        path += "/" + part
        try:
            posix.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            raise PyruncError(f"mkdir {path}: {e.strerror}", path="process.cwd",
                              errno=e.errno) from None


def step_cwd_early(ctx):
    # a filter loaded without no_new_privs comes before the user switch (it needs
    # CAP_SYS_ADMIN): change directory before it, as root, so a profile that denies chdir or
    # getcwd cannot break it; runc too tries as root first. EACCES: again as the user.
    try:
        _change_cwd(ctx)
    except PyruncError as e:
        if e.errno != 13:
            raise
        return
    ctx.cwd_done = True


def step_cwd(ctx):
    _change_cwd(ctx)


def _change_cwd(ctx):
    cwd = ctx.process.cwd
    try:
        posix.chdir(cwd)
    except OSError as e:
        raise PyruncError(f"chdir {cwd}: {e.strerror}", path="process.cwd",
                          errno=e.errno) from None
    # CVE-2024-21626: a cwd like /proc/self/fd/N through an fd of the runtime would land
    # outside the container's root; getcwd then has no path (ENOENT)
    try:
        inside = posix.getcwd().startswith("/")
    except OSError as e:
        raise PyruncError(f"getcwd after chdir {cwd}: {e.strerror}", path="process.cwd",
                          errno=e.errno) from None
    if not inside:
        raise PyruncError(f"{cwd} is outside the container's root", path="process.cwd")


def step_resolve_exec(ctx):
    process.default_signals()  # here: a seccomp filter may refuse rt_sigaction later
    env = process.with_home(list(ctx.process.env or []), ctx.process.user.uid)
    if ctx.listen_fds:
        # sd_listen_fds(3) checks LISTEN_PID: this process, as the container sees it
        env += [f"LISTEN_FDS={ctx.listen_fds}", f"LISTEN_PID={posix.getpid()}"]
    args = ctx.process.args
    path = process.find_executable(args[0], env, ctx.process.cwd)
    direct = sc.prepare_execve(path, args, env)
    try:
        via_dmz = dmz.prepare_exec(dmz.sealed_memfd(), path, args, env)
    except OSError:  # memfd exec denied (vm.memfd_noexec=2)
        ctx.do_exec = direct
        return

    def do_exec():
        try:
            via_dmz()
        except OSError as e:
            # a seccomp filter that allows execve but not execveat: exec directly
            if e.errno not in (1, 8, 13, 38):  # EPERM, ENOEXEC, EACCES, ENOSYS
                raise
        direct()
    ctx.do_exec = do_exec


def step_close_fds(ctx):
    # The init waits for `start` in the container's pid namespace, where a holder of
    # CAP_SYS_PTRACE can open /proc/1/fd/N: every fd above stdio and the preserved ones is
    # closed now, not at exec (the channel closes after wait_for_start); what pyrunc opens
    # later is close-on-exec.
    first = 3 + ctx.preserve_fds
    for fd in range(3, first):
        # one the caller did not pass is pyrunc's own (close-on-exec) or closed
        if ctx.passed_fds is None or fd in ctx.passed_fds:
            posix.set_inheritable(fd, True)
    sc.close_from(first, keep=(ctx.channel.fileno(),))


PIPE_PAGE = 4096


def step_wait_for_start(ctx):
    # The parent made exec.fifo while this init worked and hands it over open read-write
    # (never blocks, needs no path after pivot_root: no host /proc fd in a waiting init).
    # As its own reader the init cannot block on open, so it blocks on a write instead: it
    # fills the pipe's buffer (shrunk to a page) with NULs, and its next write waits until
    # `pyrunc start` reads. The fd stays open (CLOEXEC): `start` reads until EOF, which
    # means exec'd; text after the "0" is an error.
    ctx.channel.send("fifo")
    (fd,) = ctx.channel.expect("fifo_done")["fds"]
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_PAGE)
    except OSError:
        pass  # over the user's pipe quota: a bigger buffer to fill, the same wait
    posix.set_blocking(fd, False)
    for size in (PIPE_PAGE, 1):  # whole pages, then any room a page did not fit in
        try:
            while True:
                posix.write(fd, bytes(size))
        except BlockingIOError:
            pass
    posix.set_blocking(fd, True)
    ctx.channel.send("ready")
    # until the parent has saved the state: if it dies before, EOF ends this init too,
    # rather than leaving it blocked on a FIFO no state file points to
    ctx.channel.expect("saved")
    ctx.channel.close()
    ctx.fifo_write_fd = fd
    posix.write(fd, b"0")  # blocks until `pyrunc start` reads the padding


def step_start_hooks(ctx):
    hooks.run_hooks("startContainer", ctx.config.hooks.startContainer,
                    ctx.hook_state("created"), env=ctx.process.env or [])


def step_seccomp(ctx):
    load_seccomp(ctx)


def step_exec(ctx):
    ctx.do_exec()


def _hooks(kind):
    return lambda ctx: bool(ctx.config.hooks and getattr(ctx.config.hooks, kind))


def _nnp(ctx):
    return bool(ctx.process.noNewPrivileges)


INIT_STEPS = (
    # without a mount namespace the parent made the rootfs bind (nothing of the runtime's
    # mount table changes propagation)
    ("enter_root", lambda ctx: ctx.root_of is not None, step_enter_root),
    ("rootfs_propagation", lambda ctx: ctx.ns.has("mount"), step_rootfs_propagation),
    ("mount_sources", lambda ctx: ctx.sources_from_runtime, step_mount_sources),
    ("mounts", lambda ctx: bool(ctx.config.mounts), step_mounts),
    ("devices", lambda ctx: not rootfs.dev_is_bound(ctx.config.mounts), step_devices),
    ("dev_symlinks", lambda ctx: True, step_dev_symlinks),
    ("runtime_hooks", lambda ctx: _hooks("prestart")(ctx) or _hooks("createRuntime")(ctx),
     step_runtime_hooks),
    ("create_container_hooks", _hooks("createContainer"), step_create_container_hooks),
    ("pivot_root", lambda ctx: True, step_pivot_root),
    ("make_cwd", lambda ctx: ctx.process.cwd != "/", step_make_cwd),
    ("loopback", lambda ctx: bool(ctx.ns.new_flags & sc.CLONE_NEWNET), step_loopback),
    ("hostname", lambda ctx: bool(ctx.config.hostname or ctx.config.domainname),
     step_hostname),
    ("sysctl", lambda ctx: bool(ctx.setting("sysctl")), step_sysctl),
    ("readonly_paths", lambda ctx: bool(ctx.setting("readonlyPaths")), step_readonly_paths),
    ("masked_paths", lambda ctx: bool(ctx.setting("maskedPaths")), step_masked_paths),
    ("root_readonly", lambda ctx: bool(ctx.config.root.readonly), step_root_readonly),
    ("rlimits", lambda ctx: bool(ctx.process.rlimits), step_rlimits),
    ("oom_score_adj", lambda ctx: ctx.process.oomScoreAdj is not None, step_oom_score_adj),
    ("scheduler", lambda ctx: ctx.process.scheduler is not None, step_scheduler),
    ("io_priority", lambda ctx: ctx.process.ioPriority is not None, step_io_priority),
    ("memory_policy", lambda ctx: ctx.setting("memoryPolicy") is not None,
     step_memory_policy),
    ("personality", lambda ctx: ctx.setting("personality") is not None, step_personality),
    ("session", lambda ctx: not ctx.process.terminal, step_session),
    ("terminal", lambda ctx: bool(ctx.process.terminal), step_terminal),
    # before any seccomp filter: an allow-list may lack close_range
    ("close_fds", lambda ctx: True, step_close_fds),
    ("no_new_privileges", _nnp, step_no_new_privileges),
    ("cwd_early", lambda ctx: ctx.seccomp is not None and not _nnp(ctx), step_cwd_early),
    ("seccomp_early", lambda ctx: ctx.seccomp is not None and not _nnp(ctx),
     step_seccomp_early),
    ("capabilities_bounding", lambda ctx: ctx.caps is not None, step_capabilities_bounding),
    ("user", lambda ctx: True, step_user),
    ("capabilities", lambda ctx: ctx.caps is not None, step_capabilities),
    ("cwd", lambda ctx: not ctx.cwd_done, step_cwd),
    ("resolve_exec", lambda ctx: True, step_resolve_exec),
    # a notify filter is loaded while the parent is still there to pass its fd on
    ("seccomp_notify", lambda ctx: _nnp(ctx) and _notify(ctx), step_seccomp),
    ("wait_for_start", lambda ctx: True, step_wait_for_start),
    ("start_hooks", _hooks("startContainer"), step_start_hooks),
    ("rlimit_nofile", lambda ctx: ctx.nofile_deferred is not None, step_rlimit_nofile),
    ("seccomp", lambda ctx: ctx.seccomp is not None and _nnp(ctx) and not _notify(ctx),
     step_seccomp),
    ("exec", lambda ctx: True, step_exec),
)

# `pyrunc exec`: the namespaces and root are the container's already
EXEC_STEPS = tuple(s for s in INIT_STEPS if s[0] in (
    "enter_root", "rlimits", "scheduler", "io_priority", "session", "terminal", "no_new_privileges",
    "cwd_early",
    "seccomp_early", "capabilities_bounding",
    "user", "capabilities", "cwd", "resolve_exec", "close_fds", "seccomp_notify",
    "rlimit_nofile", "seccomp", "exec"))

STEP_NAMES = tuple(s[0] for s in PARENT_AFTER_FORK_STEPS + NAMESPACE_STEPS + INIT_STEPS)
