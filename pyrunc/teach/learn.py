"""pyrunc seccomp learn BUNDLE -o PROFILE: an allow-list from what the bundle's process
really calls.

The bundle runs once under pyrunc with a filter that sends every syscall (of x86_64, x86
and x32) to a supervisor here as a user notification (SECCOMP_RET_USER_NOTIF), which
records the call and lets it through (SECCOMP_USER_NOTIF_FLAG_CONTINUE, Linux 5.5): the
container's threads and children inherit the filter, so every task is seen. The listener
fd comes from the runtime through linux.seccomp.listenerPath, as any seccomp agent gets
it. Nothing else changes in the run: the rootfs, mounts, namespaces and user are the
bundle's. Kernels without USER_NOTIF's CONTINUE are refused with a clear message: TRACE
needs a ptrace supervisor and LOG the audit log, neither of which tells the calls of one
container apart as this does.

The profile allows what was called and refuses the rest with EPERM (defaultErrnoRet 1),
but ENOSYS for the newer calls callers fall back from (clone3, faccessat2, statx, ...: as
`check` advises) when they were not called. Two calls are always allowed: write and
sendmsg, which the runtime's init needs after loading any filter (pyrunc hands the
listener fd over with sendmsg; runc writes to its exec fifo), so they cannot be notified
and are not observed. For runc and crun, the calls their init makes between loading the
filter and execve are added as rules of their own (RUNTIME_CALLS, each with the reason in
the report); pyrunc's own are observed like the workload's. With --args, socket, kill and
personality get one rule per value seen (socket families: the article's AF_INET rule).
"""
import fcntl
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

from pyrunc.errors import PyruncError
from pyrunc.linux import seccomp
from pyrunc.spec import read_config
from pyrunc.teach import bpf
from pyrunc.teach.probe import runtime_argv

NOTIF_RECV = 0xC0502100       # SECCOMP_IOCTL_NOTIF_RECV: _IOWR('!', 0, struct seccomp_notif)
NOTIF_SEND = 0xC0182101       # SECCOMP_IOCTL_NOTIF_SEND: _IOWR('!', 1, ..._resp)
NOTIF_SIZE, RESP_SIZE = 80, 24
FLAG_CONTINUE = 1
ARCHES = {bpf.AUDIT_ARCH_X86_64: "SCMP_ARCH_X86_64", bpf.AUDIT_ARCH_I386: "SCMP_ARCH_X86",
          bpf.AUDIT_ARCH_X86_64 | 0x1: "SCMP_ARCH_X32"}   # x32: x86_64 with bit 30 in nr
LEARN_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
ALWAYS = {name: "the runtime's init calls it after loading the filter (the listener "
                "hand-off; runc's exec fifo), so it is never notified"
          for name in seccomp.HANDOFF_SYSCALLS}
# The calls runc 1.1.5 and crun 1.8.1 make after loading the filter, before execve, with
# noNewPrivileges true (both load the filter as late as they can then): from `strace -f -p`
# of the container's init between create and start, and from learning `true` under each
# (runc 8 runs). runc's Go scheduler may make its own calls in that window: added too.
RUNC_SEEN = "runc 1.1.5 calls it after loading the filter, before execve"
GO_SCHEDULER = ("runc's Go runtime may call it between loading the filter and execve "
                "(scheduling, preemption)")
RUNTIME_CALLS = {
    "runc": {
        "openat": RUNC_SEEN + " (the exec fifo through /proc/self/fd/N; /proc/self/fd)",
        "close": RUNC_SEEN + " (the fifo; /proc/self/fd)",
        "fstatfs": RUNC_SEEN + " (is /proc/self/fd on procfs?)",
        "getdents64": RUNC_SEEN + " (listing /proc/self/fd to mark fds close-on-exec)",
        "epoll_ctl": RUNC_SEEN + " (Go's poller, refused harmlessly if denied)",
        "read": RUNC_SEEN, "getpid": RUNC_SEEN + " (the state's pid for the startContainer "
                                                 "hooks)",
        "rt_sigreturn": RUNC_SEEN + "; " + GO_SCHEDULER, "futex": RUNC_SEEN + "; " + GO_SCHEDULER,
        "tgkill": GO_SCHEDULER, "nanosleep": GO_SCHEDULER, "sched_yield": GO_SCHEDULER,
        "rt_sigprocmask": GO_SCHEDULER, "sigaltstack": GO_SCHEDULER, "gettid": GO_SCHEDULER,
        "mmap": GO_SCHEDULER, "munmap": GO_SCHEDULER, "madvise": GO_SCHEDULER,
        "execve": "runc 1.1.5 starts the process with it, under the filter",
    },
    "crun": {
        "close": "crun 1.8.1 closes the filter's fd after loading it (strace -f)",
        "execve": "crun 1.8.1 starts the process with it, under the filter",
    },
}
# argument rules --args learns: syscall -> the argument whose values are kept. Not kill's
# signal: busybox `sh -c 'sleep 3 & kill -TERM $!; wait'` under the rule of the one signal
# it sent hung in our runs under runc 1.1.5 and crun 1.8.1 (not pyrunc), not yet explained;
# nor clone's flags (a thread and a fork differ in them; Go's threads in runc).
ARG_RULES = {"socket": 0, "personality": 0}
DEFAULT_TIMEOUT = 60


def filter_section(listener):
    """The learning filter: every syscall libseccomp knows for the three x86 ABIs notified,
    but the hand-off calls."""
    names = set()
    resolve = bpf._resolver()
    for arch in (bpf.AUDIT_ARCH_X86_64, bpf.AUDIT_ARCH_I386):
        for nr in range(bpf.MAX_NR):
            name = resolve(arch, nr)
            if name is not None:
                names.add(name)
    names -= set(seccomp.HANDOFF_SYSCALLS)
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": LEARN_ARCHES,
            "listenerPath": listener,
            "syscalls": [{"names": sorted(names), "action": "SCMP_ACT_NOTIFY"}]}


class Recorder:
    """The supervisor: answers each notification with CONTINUE and keeps what it saw."""

    def __init__(self, args_of):
        self.calls = {}         # (arch, nr) -> count
        self.values = {}        # (arch, nr) -> set of the kept argument's values
        self.args_of = args_of  # (arch, nr) -> argument index to keep, or None

    def serve(self, fd):
        """Answer one pending notification; False when the filter has no task left."""
        buf = bytearray(NOTIF_SIZE)
        try:
            fcntl.ioctl(fd, NOTIF_RECV, buf, True)
        except OSError as e:
            if e.errno in (4, 2):   # EINTR; ENOENT: the task died before we read it
                return True
            raise
        ident, _pid, _flags, nr, arch, _ip = struct.unpack_from("<QIIiIQ", buf)
        args = struct.unpack_from("<6Q", buf, 32)
        key = (arch, nr)
        self.calls[key] = self.calls.get(key, 0) + 1
        index = self.args_of(key)
        if index is not None:
            self.values.setdefault(key, set()).add(args[index])
        try:
            fcntl.ioctl(fd, NOTIF_SEND, struct.pack("<QqiI", ident, 0, 0, FLAG_CONTINUE))
        except OSError as e:
            if e.errno != 2:        # ENOENT: the task is gone, or the call was interrupted
                raise
        return True


def mechanism(avail="/proc/sys/kernel/seccomp/actions_avail", release=None):
    """Refuse, in one line saying why, a kernel where USER_NOTIF + CONTINUE is missing.
    LOG would put the calls in the kernel's audit log, mixed with every other process's
    and rate-limited (calls lost); TRACE stops each call for a ptrace supervisor, which
    pyrunc's init and the runtimes' own ptrace checks do not expect. Neither is a fallback
    learn takes: the profile would be wrong without a word."""
    try:
        with open(avail) as f:
            actions = f.read().split()
    except OSError:
        actions = []
    major, minor = (int(x) for x in (release or os.uname().release).split(".")[:2])
    if "user_notif" not in actions or (major, minor) < (5, 5):
        other = [a for a in ("log", "trace") if a in actions]
        raise PyruncError(
            "this kernel lacks SECCOMP_RET_USER_NOTIF with SECCOMP_USER_NOTIF_FLAG_CONTINUE "
            "(Linux 5.5); " + (f"it has {' and '.join(other)}, but " if other else "")
            + "LOG loses calls in the shared audit log and TRACE needs a ptrace supervisor "
            "the runtimes do not expect: learn needs 5.5 or later")


def learn(bundle, args=False, timeout=DEFAULT_TIMEOUT, out=None, runtime="pyrunc"):
    """Run BUNDLE under `runtime` with the learning filter; return (the profile, the exit
    status of the run, the calls observed by name). Raises PyruncError when the workload
    never started."""
    mechanism()
    raw = read_config(bundle)
    if not (raw.get("process") or {}).get("args"):
        raise PyruncError("config.json has no process.args: nothing to run")
    resolve = bpf._resolver()
    scratch = tempfile.mkdtemp(prefix="pyrunc-learn-")
    os.chmod(scratch, 0o700)
    cid = f"pyrunc-learn-{uuid.uuid4().hex[:10]}"
    listener_path = os.path.join(scratch, "listener.sock")
    keep = {}
    recorder = Recorder(lambda key: keep.get(key) if args else None)
    for arch in (bpf.AUDIT_ARCH_X86_64, bpf.AUDIT_ARCH_I386):
        for name, index in ARG_RULES.items():
            nr = seccomp.syscall_resolver()(name) if arch == bpf.AUDIT_ARCH_X86_64 else None
            if nr is not None and nr >= 0:
                keep[(arch, nr)] = index
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = runtime_argv(runtime)[0]
    state = os.path.join(scratch, "state")
    proc = None
    try:
        server.bind(listener_path)
        server.listen(1)
        os.makedirs(os.path.join(scratch, "bundle"))
        with open(os.path.join(scratch, "bundle", "config.json"), "w") as f:
            json.dump(_config(raw, bundle, listener_path), f)
        proc = subprocess.Popen([*argv, "--root", state, "run", "--bundle",
                                 os.path.join(scratch, "bundle"), cid],
                                stdin=subprocess.DEVNULL, stdout=out or sys.stdout,
                                stderr=sys.stderr)
        fd = _supervise(server, proc, recorder, timeout, lambda: _kill(argv, state, cid))
    finally:
        server.close()
        if proc is not None and proc.poll() is None:
            _kill(argv, state, cid)
            proc.wait(timeout=30)
        if proc is not None:
            subprocess.run([*argv, "--root", state, "delete", "--force", cid],
                           capture_output=True, timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    if fd is None:
        raise PyruncError(f"the container never handed its listener fd over ({runtime} run "
                          f"exited {proc.returncode})")
    section, used = profile(recorder, resolve, args)
    if not {"execve", "execveat"} & set(used):
        raise PyruncError(f"the workload never started ({runtime} run exited "
                          f"{proc.returncode}: see above)")
    return section, proc.returncode, used


def _kill(argv, state, cid):
    subprocess.run([*argv, "--root", state, "kill", cid, "KILL"], capture_output=True,
                   timeout=30)


def _config(raw, bundle, listener):
    config = json.loads(json.dumps(raw))
    root = config.setdefault("root", {})
    root["path"] = os.path.join(os.path.abspath(bundle), root.get("path") or "rootfs")
    config["process"]["terminal"] = False
    for m in config.get("mounts") or ():
        source = m.get("source")
        bind = m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or ())
        if bind and source and not source.startswith("/"):
            m["source"] = os.path.join(os.path.abspath(bundle), source)
    config.setdefault("linux", {})["seccomp"] = filter_section(listener)
    return config


def _supervise(server, proc, recorder, timeout, kill):
    """Accept the listener fd, answer notifications until no task is left and the run has
    ended; kill the container after `timeout` seconds. Returns the listener fd or None."""
    deadline = time.monotonic() + timeout
    fd = None
    poller = select.poll()
    poller.register(server.fileno(), select.POLLIN)
    killed = False
    try:
        while True:
            if not killed and time.monotonic() > deadline:
                kill()
                killed = True
            events = poller.poll(100)
            for what, mask in events:
                if what == server.fileno():
                    conn, _ = server.accept()
                    with conn:
                        _, fds, _, _ = socket.recv_fds(conn, 65536, 1)
                        _drain(conn)
                    if fds:
                        fd = fds[0]
                        poller.register(fd, select.POLLIN)
                    poller.unregister(server.fileno())
                elif mask & select.POLLIN:
                    recorder.serve(fd)
                elif mask & (select.POLLHUP | select.POLLERR):
                    poller.unregister(fd)
                    os.close(fd)
                    return fd
            if proc.poll() is not None and fd is None:
                return None
    except BaseException:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        raise


def _drain(conn):
    """Read the rest of the runtime's message: pyrunc fails with EPIPE if we hang up while
    it writes; crun keeps the connection open, so at most a second."""
    conn.settimeout(1.0)
    try:
        while conn.recv(65536):
            pass
    except (socket.timeout, OSError):
        pass


def profile(recorder, resolve, args):
    """(the OCI seccomp section for what the recorder saw, {name: argument values seen})."""
    used = {}
    arches = set()
    for (arch, nr) in recorder.calls:
        if arch == bpf.AUDIT_ARCH_X86_64 and nr & bpf.X32_BIT:
            arches.add("SCMP_ARCH_X32")
            name = resolve(arch, nr & ~bpf.X32_BIT)
        else:
            arches.add(ARCHES.get(arch, f"arch {arch:#x}"))
            name = resolve(arch, nr)
        if name is not None:
            used.setdefault(name, set()).update(recorder.values.get((arch, nr), ()))
    names = set(used) | set(ALWAYS)
    conditional = {n: v for n, v in used.items() if args and n in ARG_RULES and v}
    rules = [{"names": sorted(names - set(conditional)), "action": "SCMP_ACT_ALLOW"}]
    for name, values in sorted(conditional.items()):
        for v in sorted(values):
            rules.append({"names": [name], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": ARG_RULES[name], "value": v,
                                    "op": "SCMP_CMP_EQ"}]})
    for calls in RUNTIME_CALLS.values():
        # a rule of its own per runtime, whole (libseccomp takes a name allowed twice), so
        # that a class running one runtime only can drop the others'
        mine = sorted(n for n in calls if n not in names)
        if mine:
            rules.append({"names": mine, "action": "SCMP_ACT_ALLOW"})
    fallbacks = sorted(n for n in seccomp.ENOSYS_FALLBACKS if n not in names)
    if fallbacks:
        rules.append({"names": fallbacks, "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    arch_list = ["SCMP_ARCH_X86_64"] + sorted(arches - {"SCMP_ARCH_X86_64"})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": arch_list, "syscalls": rules}, used


def report(section, used, status, args):
    """What learn says on stderr: what it saw, and why each call not seen is in."""
    lines = [f"learned {len(used)} syscalls (the run exited {status})"
             + (f"; argument rules: {', '.join(n for n in ARG_RULES if n in used)}"
                if args else "")]
    lines += [f"  + {name}: {why}" for name, why in ALWAYS.items() if name not in used]
    for runtime, calls in RUNTIME_CALLS.items():
        lines += [f"  + {name} (for {runtime}): {why}" for name, why in calls.items()
                  if name not in used]
    return lines


def configure(sub):
    learn = sub.add_parser("learn", help="run the bundle and write an allow-list of the "
                                         "syscalls it makes")
    learn.add_argument("bundle", help="the bundle directory (holding config.json)")
    learn.add_argument("-o", "--output", required=True, help="where to write the profile "
                                                              "(linux.seccomp's JSON)")
    learn.add_argument("--args", action="store_true", help="argument rules from the values "
                                                           "seen: socket families, personality")
    learn.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                       help=f"kill the container after this many seconds (default "
                            f"{DEFAULT_TIMEOUT})")


def run(args):
    try:
        section, status, used = learn(args.bundle, args.args, args.timeout)
        with open(args.output, "w") as f:
            json.dump(section, f, indent=2)
            f.write("\n")
    except (PyruncError, OSError) as e:
        sys.stderr.write(f"pyrunc seccomp learn: {e}\n")
        return 2
    sys.stderr.write("\n".join(report(section, used, status, args.args)) + "\n")
    return 0
