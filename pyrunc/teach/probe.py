"""Running a bundle's container with the static probe (pyrunc/probe.c) in place of its
process, under any runtime with runc's command line: the probe binary, the runtime's
command, verify's private mount namespace, and the run itself (see verify.py for why an
overlay and how crun is handled).
"""
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import pyrunc
from pyrunc import syscalls
from pyrunc.errors import PyruncError
from pyrunc.teach.mount_claims import BIND_OPTIONS, _unescape
from pyrunc.teach.outside import outside_view

PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(pyrunc.__file__)), "probe.c")
PROBE_PATH = "/.pyrunc-probe"
HOLD_SECONDS = 120      # the probe ends by itself after this, should verify be killed
COMMAND_TIMEOUT = 30    # seconds for one runtime command
REPORT_TIMEOUT = 15     # seconds for the probe's report once started


# ---- the probe binary ----------------------------------------------------------------

def cache_dir():
    """~/.cache/pyrunc (or $XDG_CACHE_HOME/pyrunc) when it can be made, else
    /var/cache/pyrunc."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (os.path.join(home, "pyrunc"), "/var/cache/pyrunc"):
        try:
            os.makedirs(candidate, mode=0o755, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise PyruncError("no cache directory for the probe: ~/.cache/pyrunc and "
                      "/var/cache/pyrunc cannot be written")


def build_probe():
    """Path of the static probe, built with gcc once per source version."""
    with open(PROBE_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    directory = cache_dir()
    target = os.path.join(directory, f"probe-{digest}")
    if os.path.exists(target):
        return target
    gcc = shutil.which("gcc")
    if gcc is None:
        raise PyruncError("gcc not found: verify builds its probe with `gcc -static` "
                          "(apt-get install gcc libc6-dev)")
    tmp = f"{target}.{os.getpid()}.tmp"
    proc = subprocess.run([gcc, "-static", "-O2", "-Wall", "-o", tmp, PROBE_SOURCE],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        hint = (" (static glibc missing? apt-get install libc6-dev)"
                if "cannot find -lc" in proc.stderr else "")
        raise PyruncError(f"building the probe failed: {lines[-1] if lines else 'gcc failed'}"
                          + hint)
    os.chmod(tmp, 0o755)
    os.rename(tmp, target)  # atomic: a concurrent verify sees the whole file or none
    return target


# ---- running it -------------------------------------------------------------------------

def runtime_argv(name):
    """(argv prefix, label) for --runtime NAME."""
    if name == "pyrunc":
        # this pyrunc: the launcher that started us, the repository's, or the module
        me = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        repo = os.path.join(os.path.dirname(os.path.dirname(PROBE_SOURCE)), "bin", "pyrunc")
        for candidate in (me, repo):
            if os.path.basename(candidate) == "pyrunc" and os.access(candidate, os.X_OK) \
                    and os.path.isfile(candidate):
                return [candidate], f"pyrunc ({candidate})"
        return [sys.executable, "-m", "pyrunc.cli"], "pyrunc (python -m pyrunc.cli)"
    if "/" in name:
        path = os.path.abspath(name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise PyruncError(f"runtime {name}: no such executable file")
        return [path], path
    found = shutil.which(name)
    if found is None:
        raise PyruncError(f"runtime {name}: not found on PATH")
    return [found], f"{name} ({found})"


def _mount_types():
    """mount point -> fstype of the last mount there, from our mountinfo."""
    types = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            types[_unescape(fields[4])] = fields[fields.index("-") + 1]
    return types


_private = False


def private_mount_namespace():
    """Move this process into a mount namespace of its own (once): what verify mounts
    there is gone when the process is, and never propagates to the host."""
    global _private
    if _private:
        return
    try:
        if os.geteuid() != 0:
            # rootless: a user namespace mapping our own ids lets us mount, and the
            # runtime run from there keeps our ids (it is rootless as well)
            from pyrunc.linux.userns import enter_own_userns
            enter_own_userns()
        else:
            syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    except OSError as err:
        hint = " (verify needs root)" if err.errno == errno.EPERM else ""
        raise PyruncError(f"cannot make a private mount namespace: {err.strerror}{hint}") \
            from None
    _private = True


class Run:
    """One container run of a temporary bundle; a context manager that leaves nothing."""

    def __init__(self, bundle, raw, runtime, root, words):
        self.bundle, self.raw, self.words = bundle, raw, words
        self.argv, self.label = runtime
        self.cid = f"pyrunc-verify-{uuid.uuid4().hex[:8]}"
        self.user_root = root
        self.scratch = None
        self.mounted = []
        self.created = False
        self.pid = None

    def __enter__(self):
        probe = build_probe()
        self._check_runtime()
        private_mount_namespace()
        try:
            self._prepare(probe)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _prepare(self, probe):
        base = tempfile.mkdtemp(prefix="pyrunc-verify-", dir="/tmp")
        self.scratch = base
        self._mount("tmpfs", base, "tmpfs", 0, "mode=755")
        self.state = os.path.abspath(self.user_root) if self.user_root else \
            os.path.join(base, "state")
        rootfs = self._rootfs_path()
        for d in ("upper", "work", "rootfs", "bundle"):
            os.mkdir(os.path.join(base, d), 0o755)
        top = os.stat(rootfs)
        upper = os.path.join(base, "upper")
        os.chown(upper, top.st_uid, top.st_gid)
        os.chmod(upper, stat.S_IMODE(top.st_mode))
        shutil.copyfile(probe, upper + PROBE_PATH)
        os.chmod(upper + PROBE_PATH, 0o755)
        # a symlink as lowerdir: overlay's options cannot hold ',' or ':' in a path
        os.symlink(rootfs, os.path.join(base, "lower"))
        merged = os.path.join(base, "rootfs")
        self._mount("overlay", merged, "overlay", 0,
                    f"lowerdir={base}/lower,upperdir={upper},workdir={base}/work")
        if self.crun:
            self._hide_cgroup2()
        with open(os.path.join(base, "bundle", "config.json"), "w") as f:
            json.dump(self._config(merged), f, indent=1)

    def _check_runtime(self):
        try:
            proc = subprocess.run([*self.argv, "--version"], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        except OSError as err:
            raise PyruncError(f"runtime {self.label}: {err.strerror}") from None
        if proc.returncode != 0 or not proc.stdout.strip():
            raise PyruncError(f"runtime {self.label} is not runc-compatible: `--version` "
                              f"exited {proc.returncode}")
        self.crun = proc.stdout.lstrip().startswith("crun ")

    def _rootfs_path(self):
        path = (self.raw.get("root") or {}).get("path")
        if not path:
            raise PyruncError("config.json has no root.path")
        path = os.path.realpath(os.path.join(self.bundle, path))
        if not os.path.isdir(path):
            raise PyruncError(f"root.path: {path} is not a directory")
        return path

    def _mount(self, source, target, fstype, flags, data):
        try:
            syscalls.mount(source, target, fstype, flags, data)
        except OSError as err:
            raise PyruncError(f"{err.strerror} (mounting {fstype} on {target})") from None
        self.mounted.append(target)

    def _hide_cgroup2(self):
        # crun refuses a hybrid host: the cgroup2 of /sys/fs/cgroup/unified covered by a
        # tmpfs in verify's own mount namespace, for crun only
        types = _mount_types()
        if types.get("/sys/fs/cgroup") != "cgroup2" and types.get(
                "/sys/fs/cgroup/unified") == "cgroup2":
            self._mount("none", "/sys/fs/cgroup/unified", "tmpfs", 0, None)

    def _config(self, merged):
        config = json.loads(json.dumps(self.raw))
        config["root"]["path"] = merged
        process = config["process"]
        process["args"] = [PROBE_PATH, *self.words, f"hold={HOLD_SECONDS}"]
        process["terminal"] = False
        for m in config.get("mounts") or ():
            source = m.get("source")
            bind = m.get("type") == "bind" or BIND_OPTIONS & set(m.get("options") or ())
            if bind and source and not source.startswith("/"):
                m["source"] = os.path.join(os.path.abspath(self.bundle), source)
        return config

    def _cmd(self, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        try:
            return subprocess.run([*self.argv, "--root", self.state, *args], text=True,
                                  stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                  timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PyruncError(f"{self.label} {args[0]} did not finish in {COMMAND_TIMEOUT} s")\
                from None

    def observe(self):
        """Create and start the container; return (report, outside view) once the probe
        has reported, while it holds."""
        out, err = (os.path.join(self.scratch, n) for n in ("stdout", "stderr"))
        with open(out, "w") as o, open(err, "w") as e:
            self.created = True
            proc = self._cmd("create", "--bundle", os.path.join(self.scratch, "bundle"),
                             self.cid, stdout=o, stderr=e)
        if proc.returncode != 0:
            raise PyruncError(f"{self.label} create failed (exit {proc.returncode}): "
                              f"{_last_line(err)}")
        state = self._cmd("state", self.cid)
        try:
            self.pid = int(json.loads(state.stdout)["pid"])
        except (ValueError, KeyError, TypeError):
            raise PyruncError(f"runtime {self.label} is not runc-compatible: `state` gave "
                              f"no JSON with a pid: {state.stdout.strip()[:80]!r}") from None
        proc = self._cmd("start", self.cid)
        if proc.returncode != 0:
            raise PyruncError(f"{self.label} start failed (exit {proc.returncode}): "
                              f"{_last(proc.stderr)}")
        deadline = time.monotonic() + REPORT_TIMEOUT
        while True:
            with open(out) as f:
                text = f.read()
            if "\n" in text:
                break
            if time.monotonic() > deadline or not _alive(self.pid):
                raise PyruncError("the probe printed no report: the container ended or "
                                  f"hung before it (stderr: {_last_line(err)}; a seccomp "
                                  "filter that kills a call the probe needs?)")
            time.sleep(0.02)
        try:
            report = json.loads(text.split("\n", 1)[0])
        except ValueError:
            raise PyruncError(f"the probe's report is not JSON: {text[:80]!r}") from None
        return report, outside_view(self.pid)

    def __exit__(self, *exc):
        problems = []
        if self.created:
            try:
                proc = self._cmd("delete", "--force", self.cid)
                if proc.returncode != 0 and _alive(self.pid):
                    problems.append(f"delete --force: {_last(proc.stderr)}")
            except PyruncError as e:    # a hung runtime: go on, kill the probe below
                problems.append(str(e))
        if self.pid and not _wait_gone(self.pid):
            os.kill(self.pid, 9)    # the runtime failed to: do not leave the probe behind
            problems.append(f"container process {self.pid} outlived delete --force")
        for target in reversed(self.mounted):
            syscalls.umount2(target, syscalls.MNT_DETACH)
        if self.scratch:
            os.rmdir(self.scratch)
        if problems and exc[0] is None:
            raise PyruncError("cleanup: " + "; ".join(problems))
        return False


def _last(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def _last_line(path):
    with open(path) as f:
        return _last(f.read())


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _alive(pid):
    return pid is not None and _start_time(pid) is not None


def _wait_gone(pid, timeout=5):
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
