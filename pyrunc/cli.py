"""pyrunc's command line: runc's global flags and commands, so runc's clients can drive it.

    pyrunc [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup]
           COMMAND [options] [ID]

Global flags come before the command, as in runc. Only the chosen command's parser is
built and only its modules are imported: every container start pays for this file.
Errors become one line, `pyrunc: COMMAND ID: PATH: MESSAGE [step: STEP]`, exit status 1.
"""
import argparse
import json
import os
import sys
import time

from pyrunc import __version__
from pyrunc.errors import PyruncError

GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless", "--policy"}


class Log:
    """runc-style logging: to --log FILE (text or json lines, as conmon and containerd read
    them) and, for warnings and errors, to stderr when no log file is given."""

    def __init__(self, path=None, fmt="text", debug=False):
        self.path, self.fmt, self.debug_on = path, fmt, debug
        self.file = None
        if path:
            self.file = open(path, "a", buffering=1)

    def _write(self, level, msg):
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg={json.dumps(msg)}'
        self.file.write(line + "\n")

    def warning(self, msg):
        if self.file:
            self._write("warning", msg)
        else:
            sys.stderr.write(f"pyrunc: warning: {msg}\n")

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


def split_argv(argv):
    """(global args, command, command args): the command is the first bare word."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            return argv[:i], a, argv[i + 1:]
        if a in GLOBAL_WITH_VALUE:
            i += 1
        i += 1
    return argv, None, []


def global_parser():
    p = argparse.ArgumentParser(prog="pyrunc", description="An OCI runtime in Python that "
                                "enforces hardening and verifies what a config does.")
    p.add_argument("--root", default=os.environ.get("PYRUNC_ROOT", "/run/pyrunc"),
                   help="state directory (default /run/pyrunc)")
    p.add_argument("--log", help="log file (default: stderr)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="log each step and syscall")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="manage cgroups through systemd")
    p.add_argument("--strict", action="store_true",
                   help="unknown or unsupported settings are errors, not warnings")
    p.add_argument("--policy", help="hardening policy (a file, or 'baseline') checked before "
                   "create: refuse or tighten the config")
    p.add_argument("--criu", help=argparse.SUPPRESS)
    p.add_argument("--rootless", help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    p.add_argument("command", nargs="?", help="create start state kill delete list run exec "
                   "ps spec features bundle check verify seccomp demo")
    return p


# -- commands: (configure(parser), run(args, g, log) -> exit status)

def _id(p):
    p.add_argument("id", metavar="ID", help="container id")


def _create_flags(p):
    p.add_argument("-b", "--bundle", default=".", help="bundle directory (default: .)")
    p.add_argument("--pid-file", help="write the init's pid here")
    p.add_argument("--console-socket", help="unix socket to send the pty master to")
    p.add_argument("--no-pivot", action="store_true", help="chroot instead of pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N fds beyond stdio")
    p.add_argument("--explain", action="store_true",
                   help="print each init step and its system calls as they happen")


def _opts(args, g, log, **kw):
    from pyrunc.container.lifecycle import Options
    explain = None
    if getattr(args, "explain", False) or g.debug:
        from pyrunc import syscalls
        prefix = "explain" if getattr(args, "explain", False) else "debug"

        def explain(line, _pid=None):
            text = f"[{prefix} {os.getpid()}] {line}"
            if prefix == "debug" and log.file:
                log.debug(line)
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
        syscalls.trace = explain
    return Options(root=g.root, id=getattr(args, "id", None), strict=g.strict, policy=g.policy,
                   debug=g.debug, log=log, explain=explain, **kw)


def cmd_create(args, g, log):
    from pyrunc.container.lifecycle import create
    create(_opts(args, g, log, bundle=args.bundle, pid_file=args.pid_file,
                 console_socket=args.console_socket, no_pivot=args.no_pivot,
                 preserve_fds=args.preserve_fds)).unlock()
    return 0


def cfg_run(p):
    _create_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the container")
    p.add_argument("--keep", action="store_true", help="do not delete it when it exits")
    _id(p)


def cmd_run(args, g, log):
    from pyrunc.container.lifecycle import run
    return run(_opts(args, g, log, bundle=args.bundle, pid_file=args.pid_file,
                     console_socket=args.console_socket, no_pivot=args.no_pivot,
                     preserve_fds=args.preserve_fds, detach=args.detach, keep=args.keep))


def cmd_start(args, g, log):
    from pyrunc.container.lifecycle import start
    start(_opts(args, g, log))
    return 0


def cmd_state(args, g, log):
    from pyrunc.container.lifecycle import state
    print(json.dumps(state(_opts(args, g, log)), indent=2))
    return 0


def cfg_kill(p):
    p.add_argument("-a", "--all", action="store_true", help="signal every process of it")
    _id(p)
    p.add_argument("signal", nargs="?", default="TERM", help="TERM, SIGTERM or 15 (default)")


def parse_signal(text):
    import signal
    if text.isdigit():
        n = int(text)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(sig, signal.Signals):
            return int(sig)
    raise PyruncError(f"unknown signal {text!r}")


def cmd_kill(args, g, log):
    from pyrunc.container.lifecycle import kill
    kill(_opts(args, g, log), parse_signal(args.signal), args.all)
    return 0


def cfg_delete(p):
    p.add_argument("-f", "--force", action="store_true", help="kill it first if it runs")
    _id(p)


def cmd_delete(args, g, log):
    from pyrunc.container.lifecycle import delete
    delete(_opts(args, g, log), force=args.force)
    return 0


def cfg_list(p):
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="ids only")


def cmd_list(args, g, log):
    from pyrunc.container.lifecycle import list_states
    states = list_states(g.root)
    if args.quiet:
        print("\n".join(s["id"] for s in states) if states else "", end="\n" if states else "")
    elif args.format == "json":
        print(json.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] + [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
            for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cfg_ps(p):
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    _id(p)
    p.add_argument("ps_args", nargs="*", help=argparse.SUPPRESS)


def cmd_ps(args, g, log):
    from pyrunc.container.lifecycle import pids_of
    from pyrunc.container.state import Container
    pids = pids_of(Container.load(g.root, args.id, lock=False))
    if args.format == "json":
        print(json.dumps(pids))
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
                 detach=args.detach, preserve_fds=args.preserve_fds)
    return exec_process(opts, args)


def cfg_spec(p):
    p.add_argument("-b", "--bundle", default=".", help="where to write config.json")
    p.add_argument("--rootless", action="store_true", help="for a user without root")
    p.add_argument("--hardened", action="store_true",
                   help="a config that passes the baseline hardening policy")


def cmd_spec(args, g, log):
    from pyrunc.spec.defaults import default_spec
    config = default_spec(rootless=args.rootless)
    if args.hardened:
        from pyrunc.spec.hardened import hardened_spec
        config = hardened_spec(config)
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise PyruncError(f"{path} exists: remove it first")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return 0


def cmd_features(args, g, log):
    from pyrunc.features import features
    print(json.dumps(features(), indent=2))
    return 0


def _lazy(module):
    """A command implemented by another module exposing configure(parser) and run(args)."""
    def configure(p):
        __import__(module, fromlist=["x"]).configure(p)

    def run(args, g, log):
        return __import__(module, fromlist=["x"]).run(args)
    return configure, run


COMMANDS = {
    "create": (lambda p: (_create_flags(p), _id(p)), cmd_create,
               "create a container and leave it waiting for start"),
    "run": (cfg_run, cmd_run, "create and start a container"),
    "start": (_id, cmd_start, "run the process of a created container"),
    "state": (_id, cmd_state, "print a container's state as JSON"),
    "kill": (cfg_kill, cmd_kill, "send a signal to a container's init"),
    "delete": (cfg_delete, cmd_delete, "delete a stopped container"),
    "list": (cfg_list, cmd_list, "list containers"),
    "ps": (cfg_ps, cmd_ps, "list a container's processes"),
    "exec": (lambda p: __import__("pyrunc.container.execute", fromlist=["x"]).configure(p),
             cmd_exec, "run a new process in a running container"),
    "spec": (cfg_spec, cmd_spec, "write a default config.json"),
    "features": (lambda p: None, cmd_features, "print the features pyrunc implements"),
    "bundle": (*_lazy("pyrunc.bundle"), "make a ready-to-run bundle from the host"),
    "check": (*_lazy("pyrunc.teach.check"), "report a config's risks, without running it"),
    "verify": (*_lazy("pyrunc.teach.verify"),
               "run a bundle with a probe and check each claim of its config"),
    "seccomp": (*_lazy("pyrunc.teach.seccomp_show"), "show a bundle's compiled seccomp filter"),
    "demo": (*_lazy("pyrunc.teach.demo"), "run the article's hardened configs and verify them"),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    gargs, command, cargs = split_argv(argv)
    g = global_parser().parse_args(gargs + ([command] if command else []))
    if g.version:
        from pyrunc.spec import NEWEST
        print(f"pyrunc version {__version__}\nspec: {NEWEST}")
        return 0
    if command is None:
        global_parser().print_help()
        return 0
    if command not in COMMANDS:
        sys.stderr.write(f"pyrunc: unknown command {command!r}\n")
        return 1
    configure, run, summary = COMMANDS[command]
    p = argparse.ArgumentParser(prog=f"pyrunc {command}", description=summary)
    configure(p)
    args = p.parse_args(cargs)
    log = Log(g.log, g.log_format, g.debug)
    if g.systemd_cgroup:
        log.warning("--systemd-cgroup: cgroups are not managed yet; ignored")
    try:
        return run(args, g, log)
    except PyruncError as e:
        return fail(command, getattr(args, "id", None), str(e), log)
    except OSError as e:
        if g.debug:
            raise
        detail = f"{e.filename}: {e.strerror}" if e.filename else (e.strerror or str(e))
        return fail(command, getattr(args, "id", None), detail, log)
    except KeyboardInterrupt:
        return 130


def fail(command, cid, message, log):
    where = f"{command} {cid}" if cid else command
    line = f"pyrunc: {where}: {message}"
    log.error(f"{where}: {message}")
    sys.stderr.write(line + "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
