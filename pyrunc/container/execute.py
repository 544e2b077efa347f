"""`pyrunc exec`: a new process inside a running container.

It joins the init's namespaces (user first, as runc orders them), then runs the process
part of the init (EXEC_STEPS): rlimits, terminal, no_new_privs, the container's seccomp
filter, capabilities, user, cwd, close fds, execve. Settings default to the container's
own process, as runc's do; flags and --process override them.
"""
import posix

from pyrunc import fastjson
from pyrunc import syscalls as sc
from pyrunc.container.lifecycle import (
    _reap, _stored_config, connect_console, drive, prepare_process, run_sealed_if_needed,
    wait_forwarding, write_pid_file)
from pyrunc.container.state import Container
from pyrunc.errors import PyruncError
from pyrunc.linux.namespaces import PROC_NAMES, Plan


def process_dict(args, config_process):
    """The process to run: --process as is, or the container's own with the flags applied."""
    if args.process:
        try:
            with open(args.process, "rb") as f:
                return fastjson.loads(f.read())
        except (OSError, ValueError) as e:
            raise PyruncError(f"--process {args.process}: {e}") from None
    if not args.args:
        raise PyruncError("nothing to run: give ARGS or --process")
    base = dict(config_process)
    proc = {"terminal": args.tty, "args": list(args.args),
            "env": merged_env(base.get("env") or [], args.env),
            "cwd": args.cwd or base.get("cwd", "/"),
            "user": dict(base.get("user") or {"uid": 0, "gid": 0}),
            "noNewPrivileges": args.no_new_privs or bool(base.get("noNewPrivileges"))}
    for key in ("capabilities", "rlimits", "apparmorProfile", "selinuxLabel"):
        if base.get(key) is not None:
            proc[key] = fastjson.loads(fastjson.dumps(base[key]))
    if args.user:
        uid, _, gid = args.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise PyruncError(f"--user {args.user}: use numeric UID[:GID]")
        proc["user"] = {"uid": int(uid), "gid": int(gid) if gid else 0}
    if args.additional_gids:
        if not all(g.isdigit() for g in args.additional_gids):
            raise PyruncError(f"--additional-gids {args.additional_gids}: use numbers")
        proc["user"]["additionalGids"] = [int(g) for g in args.additional_gids]
    if args.cap:
        caps = proc.setdefault("capabilities", {})
        for s in ("bounding", "effective", "permitted"):
            caps[s] = list(dict.fromkeys((caps.get(s) or []) + args.cap))
    return proc


def merged_env(env, more):
    """env with --env's NAME=VALUE added, a name given again replacing the earlier value, as
    runc and crun (appended, the config's value would come first for getenv)."""
    merged = {}
    for e in [*env, *more]:
        name = e.partition("=")[0]
        merged.pop(name, None)
        merged[name] = e
    return list(merged.values())


def join_plan(config, init_pid):
    """Every namespace the container has, joined through the init's /proc/PID/ns."""
    joins = {}
    try:
        for ns in (config.linux.namespaces if config.linux else None) or ():
            path = f"/proc/{init_pid}/ns/{PROC_NAMES[ns.type]}"
            joins[ns.type] = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError as e:
        for fd in joins.values():
            posix.close(fd)
        raise PyruncError(f"open {e.filename}: {e.strerror}", step="namespaces") from None
    return Plan(0, joins)


def guard_ptrace(container, config, proc, status):
    """A process that may hold CAP_SYS_PTRACE (host's) must find no pyrunc process in the
    container running the host's interpreter (linux/sealed.py): this one and every later
    `exec` run sealed (state.json's sealedRuntime), and a created container whose waiting
    init is not sealed is refused until it has started."""
    from pyrunc.linux import sealed
    in_userns = any(n.type == "user" for n in (config.linux.namespaces if config.linux
                                               else None) or ())
    data = container.data
    if not in_userns and sealed.may_ptrace(proc.capabilities) and not data.get("sealedRuntime"):
        if status == "created":
            container.unlock()
            raise PyruncError("this process may hold CAP_SYS_PTRACE, and the container's init "
                              "waits in the host's interpreter (created without that "
                              "capability): start the container first", step="sealed")
        data["sealedRuntime"] = True
        container.save()
    caps = [config.process.capabilities, proc.capabilities]
    run_sealed_if_needed(config, *caps + ([None] if data.get("sealedRuntime") else []))


def exec_process(opts, args):
    from pyrunc.init.child import fork_init
    from pyrunc.init.context import Channel, Context
    from pyrunc.spec.model import load_process
    container = Container.load(opts.root, opts.id)
    status = container.status()
    if status not in ("created", "running") and not (
            status == "paused" and args.ignore_paused):
        container.unlock()
        raise PyruncError(f"cannot exec in a container that is {status}")
    with open(container.config_file, "rb") as f:
        raw = fastjson.loads(f.read())
    config = _stored_config(container, raw)
    process = process_dict(args, raw.get("process") or {})
    if process.get("terminal") and not opts.console_socket and posix.isatty(0) and \
            process.get("consoleSize") is None:
        # our pty gets the size of the terminal we run on before the process can look
        size = posix.get_terminal_size(0)
        process["consoleSize"] = {"height": size.lines, "width": size.columns}
    proc, warnings = load_process(process, strict=opts.strict)
    guard_ptrace(container, config, proc, status)
    ctx = Context(config, container.data["bundle"], opts.id)
    ctx.process = proc
    ctx.exec_mode = True
    ctx.explain = opts.explain
    ctx.debug = opts.debug
    ctx.preserve_fds = opts.preserve_fds
    ctx.passed_fds = opts.passed_fds
    ctx.ns = join_plan(config, container.pid)
    from pyrunc.linux.userns import in_initial_userns
    ctx.runtime_in_userns = not in_initial_userns()
    if not ctx.ns.has("mount"):
        ctx.root_of = container.pid  # the container's root is the init's chroot
    if container.data.get("cgroupPaths"):
        from pyrunc.linux import cgroups
        ctx.cgroup = cgroups.Cgroup(container.data["cgroupPaths"], None)
    prepare_process(opts, config, proc, ctx, warnings)
    console = ours = None
    if proc.terminal:
        if opts.console_socket:
            console = connect_console(opts.console_socket)
        elif opts.detach:
            raise PyruncError("a tty with --detach needs --console-socket", step="terminal")
        else:
            # in the foreground without a socket we hold the pty master, as runc (and run)
            import _socket
            ours, console = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        ctx.console_fd = console.fileno()
    if not opts.detach:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1, what="prctl PR_SET_CHILD_SUBREAPER")
    parent, child = Channel.pair()

    def in_child():
        container.unlock()
        parent.close()
        ctx.channel = child
    c1, pid = fork_init(ctx, in_child)
    child.close()
    ctx.channel = parent
    for fd in ctx.ns.joins.values():
        posix.close(fd)
    if console is not None:
        console.close()
    try:
        pid = drive(parent, ctx, c1, pid, config, until=None)
    finally:
        parent.close()
        if c1 is not None:
            _reap(c1)
        container.unlock()
    if opts.pid_file:
        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    if ours is not None:
        from pyrunc.linux import terminal
        try:
            master = terminal.recv_fd(ours)
        finally:
            ours.close()
        pidfd = posix.pidfd_open(pid)
        terminal.proxy(master, pidfd)
        posix.close(pidfd)
    return wait_forwarding(pid)

