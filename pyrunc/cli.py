"""pyrunc's command line: runc's global flags and commands, so runc's clients can drive it.

    pyrunc [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup]
           COMMAND [options] [ID]

Global flags come before the command, as in runc. Only the chosen command's parser is
built and only its modules are imported: every container start pays for this file.
Errors become one line, `pyrunc: COMMAND ID: PATH: MESSAGE [step: STEP]`, exit status 1.
"""
import posix
import sys
import time

from pyrunc import __version__, fastjson, paths
from pyrunc.argv import Arg, Opt, UsageError, parse, print_help
from pyrunc.errors import Note, PyruncError, from_oserror


# a config's strings reach messages as given: a newline in a mount type must not split the
# one line a caller parses
_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {10: "\\n", 9: "\\t", 13: "\\r"}


def one_line(text):
    return text.translate(_CONTROL)


class Log:
    """runc-style logging: to --log FILE (text or json lines, as conmon and containerd read
    them) and, for warnings and errors, to stderr when no log file is given. A Note (a
    warning that needs nothing from the user) is info: the log file, or stderr with
    --debug."""

    def __init__(self, path=None, fmt="text", debug=False):
        self.path, self.fmt, self.debug_on = path, fmt, debug
        self.file = None
        if path:
            self.file = open(path, "a", buffering=1)

    def _write(self, level, msg):
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
        if self.fmt == "json":
            line = fastjson.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg={fastjson.dumps(msg)}'
        self.file.write(line + "\n")

    def warning(self, msg):
        if isinstance(msg, Note):
            return self.info(msg)
        msg = one_line(msg)
        if self.file:
            self._write("warning", msg)
        else:
            sys.stderr.write(f"pyrunc: warning: {msg}\n")

    def info(self, msg):
        if self.file:
            self._write("info", msg)
        elif self.debug_on:
            sys.stderr.write(f"pyrunc: info: {msg}\n")

    def error(self, msg):
        if self.file:
            self._write("error", msg)

    def debug(self, msg):
        if not self.debug_on:
            return
        if self.file:
            self._write("debug", msg)
        else:
            sys.stderr.write(f"pyrunc: debug: {msg}\n")


def default_root(environ=posix.environ, euid=None, initial_userns=None):
    """PYRUNC_ROOT; else, for a user without root, $XDG_RUNTIME_DIR/pyrunc (runc's rule:
    /run is root's), also for uid 0 of a user namespace not the host's (rootless podman)
    unless USER is root; else /run/pyrunc."""
    root = environ.get(b"PYRUNC_ROOT")
    if root:
        return root.decode()
    xdg = environ.get(b"XDG_RUNTIME_DIR")
    if xdg:
        euid = posix.geteuid() if euid is None else euid
        if euid == 0 and environ.get(b"USER", b"") != b"root":
            if initial_userns is None:
                from pyrunc.linux.userns import in_initial_userns
                initial_userns = in_initial_userns()
            euid = 0 if initial_userns else 1
        if euid != 0:
            return xdg.decode().rstrip("/") + "/pyrunc"
    return "/run/pyrunc"


GLOBAL = [
    Opt("--root", "str", default=default_root(),
        help="state directory (default /run/pyrunc; without root $XDG_RUNTIME_DIR/pyrunc)"),
    Opt("--log", "str", help="log file (default: stderr)"),
    Opt("--log-format", "str", default="text", help="text or json"),
    Opt("--debug", help="log each step and syscall"),
    Opt("--systemd-cgroup", help="cgroups through systemd (not implemented: pyrunc then "
        "makes none)"),
    Opt("--strict", help="unknown or unsupported settings are errors, not warnings"),
    Opt("--policy", "str", help="hardening policy (a file, or 'baseline') checked before "
        "create: refuse or tighten the config"),
    Opt("--criu", "str", hidden=True),
    Opt("--rootless", "str", hidden=True),
    Opt("-v --version", help="print the version"),
]


def split_argv(argv):
    """(global args, command, command args): the command is the first bare word, as in runc."""
    with_value = {n for o in GLOBAL if o.kind != "flag" for n in o.names}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            return argv[:i], a, argv[i + 1:]
        if a in with_value or a.lstrip("-") in {n.lstrip("-") for n in with_value}:
            i += 1
        i += 1
    return argv, None, []


# -- commands: (options, positionals, run(args, g, log) -> exit status, summary)

ID = Arg("id", help="container id")
CREATE_OPTS = [
    Opt("-b --bundle", "str", help="bundle directory (default: .)"),
    Opt("--pid-file", "str", help="write the init's pid here"),
    Opt("--console-socket", "str", help="unix socket to send the pty master to"),
    Opt("--no-pivot", help="chroot instead of pivot_root"),
    Opt("--no-new-keyring", hidden=True),
    Opt("--preserve-fds", "int", default=0, help="pass N fds beyond stdio"),
    Opt("--explain", help="print each init step and its system calls as they happen"),
]


def _opts(args, g, log, **kw):
    from pyrunc.container.lifecycle import Options
    explain = None
    if getattr(args, "explain", False) or g.debug:
        explain = _tracer("explain" if getattr(args, "explain", False) else "debug", log)
    return Options(root=g.root, id=getattr(args, "id", None), strict=g.strict, policy=g.policy,
                   systemd_cgroup=g.systemd_cgroup, debug=g.debug, log=log, explain=explain,
                   **kw)


def _tracer(prefix, log):
    """The callable steps and syscalls report to: stderr, or the log file with --debug."""
    from pyrunc import syscalls

    def trace(line):
        if prefix == "debug" and log.file:
            log.debug(line)
        else:
            sys.stderr.write(f"[{prefix} {syscalls.role} {posix.getpid()}] {line}\n")
            sys.stderr.flush()
    syscalls.trace = trace
    return trace


def _create_kw(args):
    # socket activation, as runc: the caller's LISTEN_FDS (for this process) come first
    listen = args.listen_fds
    return dict(bundle=args.bundle or ".", pid_file=args.pid_file, console_socket=args.console_socket,
                no_pivot=args.no_pivot, preserve_fds=listen + args.preserve_fds,
                listen_fds=listen, passed_fds=args.passed_fds)


def _listen_fds():
    """sd_listen_fds(3): fds 3.. passed by the caller, when LISTEN_PID names this process."""
    environ = posix.environ
    count, pid = environ.get(b"LISTEN_FDS", b""), environ.get(b"LISTEN_PID", b"")
    if count.isdigit() and pid == str(posix.getpid()).encode():
        return int(count)
    return 0


def _note_passed_fds(command, args):
    """Which of the fds the process is to get (3 .. 3+N-1) the caller really passed: looked
    at before pyrunc opens anything, so that one of its own (the log) that lands on a free
    number in that range never reaches the container."""
    if command not in ("create", "run", "exec"):
        return
    args.listen_fds = _listen_fds() if command != "exec" else 0
    passed = []
    for fd in range(3, 3 + args.listen_fds + (args.preserve_fds or 0)):
        try:
            posix.fstat(fd)
            passed.append(fd)
        except OSError:
            pass  # closed: passed over, as crun
    args.passed_fds = tuple(passed)


def cmd_create(args, g, log):
    from pyrunc.container.lifecycle import create
    create(_opts(args, g, log, **_create_kw(args))).unlock()
    return 0


def cmd_run(args, g, log):
    from pyrunc.container.lifecycle import run
    if bundle_argument(args):
        args.bundle, args.id = args.id, generated_id(args.id)
        if args.detach or args.keep:  # the only way to learn the id it will keep
            sys.stderr.write(f"pyrunc: run: container {args.id}\n")
    return run(_opts(args, g, log, detach=args.detach, keep=args.keep, **_create_kw(args)))


def bundle_argument(args):
    """Whether `run`'s positional is a bundle directory (`pyrunc run bundle/`) rather than
    runc's ID: it must hold config.json, and either be no valid id (a `/`, or . or ..), or,
    without -b, the current directory (runc's default bundle) has no config.json, where
    `runc run ID` could only fail."""
    from pyrunc.container.state import check_id
    word = args.id
    try:
        check_id(word)
    except PyruncError as e:
        if args.bundle is not None:
            raise PyruncError(f"{e.message}; and -b gives the bundle: "
                              f"use `run -b BUNDLE ID` or `run BUNDLE_DIR`") from None
        if not paths.isfile(paths.join(word, "config.json")):
            raise PyruncError(f"{e.message}; nor is it a bundle directory (no config.json)"
                              ) from None
        return True
    return (args.bundle is None and not paths.exists("config.json")
            and paths.isfile(paths.join(word, "config.json")))


def generated_id(bundle):
    """The bundle directory's name, made a valid id, and 8 random hex digits."""
    from pyrunc.container.state import ID_CHARS
    name = "".join(c for c in paths.basename(paths.realpath(bundle)) if c in ID_CHARS)
    return f"{name.strip('.') or 'bundle'}-{posix.urandom(4).hex()}"


def cmd_start(args, g, log):
    from pyrunc.container.lifecycle import start
    start(_opts(args, g, log))
    return 0


def cmd_state(args, g, log):
    from pyrunc.container.lifecycle import state
    print(fastjson.dumps_indented(state(_opts(args, g, log))))
    return 0


def parse_signal(text):
    """A number, or a name with or without SIG. From _signal: the signal module's enums
    would cost `kill` 8 ms."""
    import _signal
    if text.isdigit():
        n = int(text)
        if 0 < n < _signal.NSIG:
            return n
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name.isidentifier() and not name.startswith("SIG_"):
            number = getattr(_signal, name, None)
            if isinstance(number, int):
                return number
    raise PyruncError(f"unknown signal {text!r}")


def cmd_kill(args, g, log):
    from pyrunc.container.lifecycle import kill
    kill(_opts(args, g, log), parse_signal(args.signal), args.all)
    return 0


def cmd_delete(args, g, log):
    from pyrunc.container.lifecycle import delete
    delete(_opts(args, g, log), force=args.force)
    return 0


def cmd_pause(args, g, log):
    from pyrunc.container.lifecycle import pause
    pause(_opts(args, g, log), True)
    return 0


def cmd_resume(args, g, log):
    from pyrunc.container.lifecycle import pause
    pause(_opts(args, g, log), False)
    return 0


# runc update's flags: (option, the linux.resources path it sets)
UPDATE_FLAGS = (("--memory", ("memory", "limit")),
                ("--memory-reservation", ("memory", "reservation")),
                ("--memory-swap", ("memory", "swap")),
                ("--pids-limit", ("pids", "limit")),
                ("--cpu-share", ("cpu", "shares")), ("--cpu-quota", ("cpu", "quota")),
                ("--cpu-period", ("cpu", "period")),
                ("--cpu-rt-runtime", ("cpu", "realtimeRuntime")),
                ("--cpu-rt-period", ("cpu", "realtimePeriod")),
                ("--cpuset-cpus", ("cpu", "cpus")), ("--cpuset-mems", ("cpu", "mems")),
                ("--blkio-weight", ("blockIO", "weight")))


def update_resources(args):
    """linux.resources from --resources (a file, or - for stdin) and the flags over it."""
    resources = {}
    if args.resources:
        try:
            if args.resources == "-":
                text = sys.stdin.read()
            else:
                with open(args.resources, "rb") as f:
                    text = f.read()
            resources = fastjson.loads(text)
        except (OSError, ValueError) as e:
            raise PyruncError(f"--resources {args.resources}: {e}") from None
        if not isinstance(resources, dict):
            raise PyruncError(f"--resources {args.resources}: expected a JSON object")
        from pyrunc.spec.model import load_resources
        resources, _ = load_resources(resources)
    for flag, (section, field) in UPDATE_FLAGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        if field not in ("cpus", "mems"):
            value = parse_size(value, flag) if section == "memory" else parse_int(value, flag)
        resources.setdefault(section, {})[field] = value
    return resources


def parse_int(text, flag):
    try:
        return int(text)
    except ValueError:
        raise PyruncError(f"{flag} {text!r}: expected an integer") from None


def parse_size(text, flag):
    """Bytes, with runc's units (k, m, g, t: powers of 1024); -1 for no limit."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b")
    scale = units.get(t[-1:], 1)
    return parse_int(t[:-1] if scale > 1 else t, flag) * scale


def cmd_update(args, g, log):
    from pyrunc.container.lifecycle import update
    update(_opts(args, g, log), update_resources(args))
    return 0


def cmd_list(args, g, log):
    from pyrunc.container.lifecycle import list_states
    states = list_states(g.root, log.warning)
    if args.quiet:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif args.format == "json":
        print(fastjson.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] + [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
            for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_ps(args, g, log):
    from pyrunc.container.lifecycle import pids_of
    from pyrunc.container.state import Container
    pids = pids_of(Container.load(g.root, args.id, lock=False))
    if args.format == "json":
        print(fastjson.dumps(pids))
        return 0
    print("PID   CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        print(f"{pid:<5} {cmd}")
    return 0


def cmd_exec(args, g, log):
    from pyrunc.container.execute import exec_process
    opts = _opts(args, g, log, pid_file=args.pid_file, console_socket=args.console_socket,
                 detach=args.detach, preserve_fds=args.preserve_fds,
                 passed_fds=args.passed_fds)
    return exec_process(opts, args)


EXEC_OPTS = [
    Opt("-p --process", "str", help="process.json (runtime-spec process)"),
    Opt("-d --detach", help="do not wait for the process"),
    Opt("--pid-file", "str"),
    Opt("--console-socket", "str"),
    Opt("-t --tty", help="allocate a pty"),
    Opt("-e --env", "list", help="KEY=VALUE"),
    Opt("--cwd", "str"),
    Opt("-u --user", "str", help="UID[:GID]"),
    Opt("-g --additional-gids", "list"),
    Opt("-c --cap", "list", help="add a capability"),
    Opt("--no-new-privs"),
    Opt("--preserve-fds", "int", default=0),
    Opt("--apparmor", "str", hidden=True),
    Opt("--process-label", "str", hidden=True),
    Opt("--ignore-paused", hidden=True),
    Opt("--cgroup", "list", hidden=True),
    Opt("--explain", help="print each step and its system calls"),
]


def cmd_spec(args, g, log):
    from pyrunc.spec.defaults import default_spec
    config = default_spec(rootless=args.rootless)
    if args.hardened:
        from pyrunc.spec.hardened import hardened_spec
        config = hardened_spec(config)
    path = paths.join(args.bundle, "config.json")
    if paths.exists(path):
        raise PyruncError(f"{path} exists: remove it first")
    with open(path, "w") as f:
        f.write(fastjson.dumps_indented(config) + "\n")
    return 0


def cmd_features(args, g, log):
    from pyrunc.features import features
    print(fastjson.dumps_indented(features()))
    return 0


COMMANDS = {
    "create": (CREATE_OPTS, [ID], cmd_create,
               "create a container and leave it waiting for start"),
    "run": (CREATE_OPTS + [Opt("-d --detach", help="do not wait for the container"),
                           Opt("--keep", help="do not delete it when it exits"),
                           Opt("--no-subreaper", hidden=True)],
            [Arg("id", help="container id; or a bundle directory (`run bundle/`: under a "
                 "generated id, deleted when it exits)")],
            cmd_run, "create and start a container"),
    "start": ([], [ID], cmd_start, "run the process of a created container"),
    "state": ([], [ID], cmd_state, "print a container's state as JSON"),
    "kill": ([Opt("-a --all", help="signal every process of it")],
             [ID, Arg("signal", "optional", default="TERM", help="TERM, SIGTERM or 15")],
             cmd_kill, "send a signal to a container's init"),
    "delete": ([Opt("-f --force", help="kill it first if it runs")], [ID], cmd_delete,
               "delete a stopped container"),
    "pause": ([], [ID], cmd_pause, "freeze every process of a container (cgroup freezer)"),
    "resume": ([], [ID], cmd_resume, "thaw a paused container"),
    "update": ([Opt("-r --resources", "str", help="linux.resources JSON: a file, or - "
                    "for stdin")] + [Opt(flag, "str") for flag, _ in UPDATE_FLAGS],
               [ID], cmd_update, "change a running container's cgroup limits"),
    "list": ([Opt("-f --format", "str", default="table", help="table or json"),
              Opt("-q --quiet", help="ids only")], [], cmd_list, "list containers"),
    "ps": ([Opt("-f --format", "str", default="table", help="table or json")],
           [ID, Arg("ps_args", "rest")], cmd_ps, "list a container's processes"),
    "exec": (EXEC_OPTS, [ID, Arg("args", "rest", help="the command and its arguments")],
             cmd_exec, "run a new process in a running container"),
    "spec": ([Opt("-b --bundle", "str", default=".", help="where to write config.json"),
              Opt("--rootless", help="for a user without root"),
              Opt("--hardened", help="a config that passes the baseline hardening policy")],
             [], cmd_spec, "write a default config.json"),
    "features": ([], [], cmd_features, "print the features pyrunc implements"),
}
# commands off the container path, in modules with configure(argparse parser) and run(args)
LAZY = {
    "bundle": ("pyrunc.bundle", "make a ready-to-run bundle from the host"),
    "check": ("pyrunc.teach.check", "report a config's risks, without running it"),
    "verify": ("pyrunc.teach.verify",
               "run a bundle with a probe and check each claim of its config"),
    "seccomp": ("pyrunc.teach.seccomp_show", "show a bundle's compiled seccomp filter"),
    "audit": ("pyrunc.teach.audit", "what the kernel applies to a running container, from "
                                    "the host, against its config"),
    "demo": ("pyrunc.teach.demo", "run the article's hardened configs and verify them"),
}


def usage():
    print_help(GLOBAL, [Arg("command", "optional", help=" ".join(list(COMMANDS) + list(LAZY)))],
               "pyrunc", "An OCI runtime in Python that enforces hardening and verifies "
               "what a config does.")


def parse_command(command, cargs, global_root=None):
    """(args, run) for the command, or (None, None) after --help. global_root: a --root
    given before the command, passed on to teaching commands that have their own."""
    if command in COMMANDS:
        options, positionals, run, _ = COMMANDS[command]
        args = parse(cargs, options, positionals, f"pyrunc {command}")
        return args, run
    import argparse
    module_name, summary = LAZY[command]
    module = __import__(module_name, fromlist=["run"])
    p = argparse.ArgumentParser(prog=f"pyrunc {command}", description=summary)
    module.configure(p)
    args = p.parse_args(cargs)
    if global_root and getattr(args, "root", False) is None:
        args.root = global_root
    return args, lambda args, g, log: module.run(args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    gargs, command, cargs = split_argv(argv)
    try:
        g = parse(gargs, GLOBAL, [], "pyrunc")
        if g is None:
            return 0
        if g.version:
            from pyrunc.spec import NEWEST
            print(f"pyrunc version {__version__}\nspec: {NEWEST}")
            return 0
        if command is None:
            usage()
            return 0
        if command not in COMMANDS and command not in LAZY:
            raise UsageError(f"unknown command {command!r}")
        if g.log_format not in ("text", "json"):
            raise UsageError(f"--log-format {g.log_format!r}: text or json")
        explicit_root = any(a.lstrip("-").split("=")[0] == "root" for a in gargs)
        args, run = parse_command(command, cargs, g.root if explicit_root else None)
        if args is None:
            return 0
        _note_passed_fds(command, args)
    except UsageError as e:
        sys.stderr.write(f"pyrunc: {command or 'usage'}: {e} (see --help)\n")
        return 1
    try:
        log = Log(g.log, g.log_format, g.debug)
    except OSError as e:
        sys.stderr.write(f"pyrunc: {command}: --log {g.log}: {e.strerror}\n")
        return 1
    if g.debug:
        from pyrunc import timing
        timing.report = log.debug
        # before main() nothing can be timed from inside: the CPU spent so far is the
        # interpreter's start and the imports
        log.debug(f"time interpreter start and imports: {time.process_time() * 1e3:.2f} ms CPU")
        timing.lap("command line")
    if g.systemd_cgroup:
        if not paths.isdir("/run/systemd/system"):
            return fail(command, getattr(args, "id", None),
                        "--systemd-cgroup: systemd is not running on this host", log)
        log.warning("--systemd-cgroup: the systemd cgroup driver is not implemented; "
                    "pyrunc leaves cgroups to the caller")
    try:
        return run(args, g, log)
    except PyruncError as e:
        return fail(command, getattr(args, "id", None), str(e), log)
    except OSError as e:
        if g.debug:
            raise
        return fail(command, getattr(args, "id", None), str(from_oserror(e)), log)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        # a bug: one line (the traceback with --debug), never a traceback by default
        if g.debug:
            raise
        return fail(command, getattr(args, "id", None),
                    f"internal error: {type(e).__name__}: {e} (--debug shows where)", log)


def fail(command, cid, message, log):
    message = one_line(message)
    where = f"{command} {cid}" if cid else command
    line = f"pyrunc: {where}: {message}"
    log.error(f"{where}: {message}")
    sys.stderr.write(line + "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
