"""Helpers for the integration tests: the probe, bundles, a runtime driver, host checks.

Everything here drives a real runtime binary (runc or pyrunc) as a subprocess and reads what
the kernel shows: the probe's JSON report from inside, /proc and mountinfo from outside.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone

from pyrunc.bundle import make_bundle

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROBE_SRC = os.path.join(REPO, "pyrunc", "probe.c")
CACHE = os.path.join(HERE, ".cache")

TIMEOUT = 10  # seconds for one runtime command (normally under 1): a hang fails one test

# statfs(2) flags and magic numbers (linux/magic.h, sys/statvfs.h)
ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC = 1, 2, 4, 8
TMPFS_MAGIC = 0x01021994


# ---- the probe ----

def build_probe():
    """Path of the static probe, built once per source version under integration/.cache/."""
    with open(PROBE_SRC, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    target = os.path.join(CACHE, f"probe-{digest}")
    if os.path.exists(target):
        return target
    os.makedirs(CACHE, exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    proc = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", tmp, PROBE_SRC],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the probe failed:\n{proc.stderr}")
    os.rename(tmp, target)  # atomic: a concurrent run sees the whole file or none
    return target


class Report(dict):
    """The probe's JSON report, with lookups that read like the assertions."""

    def result(self, word):
        return self["results"][word]

    def errno(self, word):
        return self["results"][word]["errno"]

    def mounts_at(self, point):
        return [m for m in self["mounts"] if m["mount_point"] == point]

    def mount(self, point):
        """The mount visible at `point` (the last one mounted there), or None."""
        found = self.mounts_at(point)
        return found[-1] if found else None

    def options(self, point):
        return set(self.mount(point)["options"].split(","))

    def super_options(self, point):
        return set(self.mount(point)["super_options"].split(","))


def parse_report(stdout):
    """The report is the first line of the probe's stdout; later lines are `hold` events."""
    first = stdout.split("\n", 1)[0] if stdout else ""
    try:
        return Report(json.loads(first))
    except ValueError:
        raise AssertionError(f"no probe report on stdout: {stdout[:2000]!r}") from None


def events(stdout):
    """The JSON lines after the report (`{"signal": N}` from hold)."""
    return [json.loads(line) for line in stdout.split("\n")[1:] if line.strip()]


# ---- bundles ----

class Bundle:
    """A busybox bundle with the probe at /probe; `config` is saved before each use."""

    def __init__(self, path, config):
        self.path = path
        self.rootfs = os.path.join(path, "rootfs")
        self.config = config

    def save(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    def probe_args(self, *words):
        self.config["process"]["args"] = ["/probe", *words]
        return self

    # small config edits the tests repeat
    def namespaces(self):
        return self.config["linux"]["namespaces"]

    def drop_namespace(self, kind):
        self.config["linux"]["namespaces"] = [n for n in self.namespaces() if n["type"] != kind]

    def add_user_namespace(self, host_id=100000, size=65536):
        """A new user namespace, ids 0..size mapped to host_id..; the default devpts option
        gid=5 goes (a group the namespace need not map: the mount would fail with EINVAL)."""
        self.namespaces().append({"type": "user"})
        for key in ("uidMappings", "gidMappings"):
            self.config["linux"][key] = [{"containerID": 0, "hostID": host_id, "size": size}]
        for m in self.config.get("mounts", ()):
            if m["type"] == "devpts":
                m["options"] = [o for o in m.get("options", ()) if o != "gid=5"]
        return self

    def add_mount(self, destination, type_, source, options):
        self.config.setdefault("mounts", []).append(
            {"destination": destination, "type": type_, "source": source, "options": options})


def new_bundle(directory, probe, *words):
    path = make_bundle(directory, rootfs="busybox", args=["/probe", *words])
    shutil.copy(probe, os.path.join(path, "rootfs", "probe"))
    os.chmod(os.path.join(path, "rootfs", "probe"), 0o755)
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    # the tests say what they need; a root that is writable unless a test makes it read-only
    # keeps the probe's scratch files (mknod, chown experiments in /tmp) possible
    config["root"]["readonly"] = False
    bundle = Bundle(path, config)
    bundle.save()
    return bundle


# ---- the runtime driver ----

def runtime_command(name):
    """argv prefix for runtime `name`, or None when it is not installed."""
    if name == "pyrunc":
        chosen = os.environ.get("PYRUNC_IT_PYRUNC")  # an installed one (test-installed.sh)
        if chosen:
            return [chosen] if os.access(chosen, os.X_OK) else None
        for candidate in (os.path.join(REPO, "bin", "pyrunc"),
                          os.path.join(REPO, ".venv", "bin", "pyrunc")):
            if os.access(candidate, os.X_OK):
                return [candidate]
        return None
    found = shutil.which(name)
    if found and name == "crun":
        # crun 1.8 refuses this hybrid-cgroup host ("cgroups in hybrid mode not supported"):
        # each command runs in a private mount namespace of its own where cgroup2 is
        # unmounted, so crun sees a v1 host (as bench/run.py does); the container keeps
        # its own mount namespace, state and cgroups are on the host as runc's
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"', found]
    return [found] if found else None


def new_id():
    return f"it-{uuid.uuid4().hex[:10]}"


class Runtime:
    """Runs one runtime binary with --root in the test's own directory (never /run/...)."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.root = os.path.join(workdir, "state")
        self.log = os.path.join(workdir, "runtime.log")
        self.ids = []       # every id passed to create/run, deleted at teardown
        self.seen = {}      # host pid -> start time, of every container pid state() showed

    def __repr__(self):
        return f"<Runtime {self.name}>"

    def command(self, *args):
        return [*self.argv, "--root", self.root, "--log", self.log, "--log-format", "json",
                *args]

    def cmd(self, *args, timeout=TIMEOUT, **kw):
        """Run a runtime command; CompletedProcess with text stdout/stderr."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        if "stdout" not in kw and "stderr" not in kw:
            kw["capture_output"] = True
        return subprocess.run(self.command(*args), text=True, timeout=timeout, **kw)

    def _save(self, bundle):
        if self.name == "crun":
            bundle.config["ociVersion"] = "1.0.2"  # crun 1.8 refuses later versions
        bundle.save()

    def _track(self, cid):
        if cid not in self.ids:
            self.ids.append(cid)

    def run(self, bundle, cid, *extra, timeout=TIMEOUT, **kw):
        """`run` in the foreground: CompletedProcess with the container's stdout/stderr."""
        self._save(bundle)
        self._track(cid)
        return self.cmd("run", "--bundle", bundle.path, *extra, cid, timeout=timeout, **kw)

    def popen_run(self, bundle, cid, **kw):
        self._save(bundle)
        self._track(cid)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.command("run", "--bundle", bundle.path, cid), text=True,
                                **kw)

    def out_path(self, cid, stream):
        return os.path.join(self.workdir, f"{cid}.{stream}")

    def create(self, bundle, cid, *extra, stdin=subprocess.DEVNULL, stdout=None, stderr=None,
               timeout=TIMEOUT):
        """`create`. The container keeps the stdio it is given, so by default stdout and
        stderr are files (WORKDIR/ID.stdout, ID.stderr), never pipes this call would wait on
        to close; the CompletedProcess carries what those files held when create returned.
        bundle None leaves --bundle out."""
        where = []
        if bundle is not None:
            self._save(bundle)
            where = ["--bundle", bundle.path]
        self._track(cid)
        opened = {}
        for stream, given in (("stdout", stdout), ("stderr", stderr)):
            if given is None:
                opened[stream] = open(self.out_path(cid, stream), "w")
        try:
            proc = subprocess.run(self.command("create", *where, *extra, cid), stdin=stdin,
                                  stdout=opened.get("stdout", stdout),
                                  stderr=opened.get("stderr", stderr), text=True,
                                  timeout=timeout)
        finally:
            for f in opened.values():
                f.close()
        proc.stdout = self.output(cid, "stdout") if "stdout" in opened else None
        proc.stderr = self.output(cid, "stderr") if "stderr" in opened else None
        return proc

    def output(self, cid, stream="stdout"):
        try:
            with open(self.out_path(cid, stream)) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, cid):
        return self.cmd("start", cid)

    def state_cp(self, cid):
        return self.cmd("state", cid)

    def state(self, cid):
        proc = self.state_cp(cid)
        assert proc.returncode == 0, f"state {cid} failed: {proc.stderr}"
        state = json.loads(proc.stdout)
        pid = state.get("pid") or 0
        if pid > 0 and state.get("status") in ("created", "running"):
            started = start_time(pid)
            if started is not None:
                self.seen[pid] = started
        return state

    def kill(self, cid, *sig):
        return self.cmd("kill", cid, *sig)

    def delete(self, cid, force=False):
        return self.cmd("delete", *(["--force"] if force else []), cid)

    def list(self):
        return self.cmd("list")

    def wait_status(self, cid, want, timeout=10):
        """Poll `state` until status is `want` (the container may not exist yet: `run` in
        the background); return the last state."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.state_cp(cid)
            if proc.returncode == 0:
                state = self.state(cid)
                if state["status"] == want:
                    return state
                last = state["status"]
            else:
                last = f"no state ({proc.stderr.strip()})"
            if time.monotonic() > deadline:
                raise AssertionError(f"{cid}: status {last}, want {want}")
            time.sleep(0.02)

    def wait_output(self, cid, predicate, timeout=10, stream="stdout"):
        """Poll the container's output file until predicate(text) holds; return the text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output(cid, stream)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{cid}: {stream} never matched; it holds {text!r}")
            time.sleep(0.02)

    def cleanup(self):
        """Delete every container with --force; return the problems found."""
        problems = []
        for cid in self.ids:
            proc = self.delete(cid, force=True)
            if proc.returncode != 0:
                problems.append(f"delete --force {cid}: exit {proc.returncode}: {proc.stderr}")
        for pid, started in self.seen.items():
            if not wait_gone(pid, started, timeout=5):
                problems.append(f"container process {pid} still alive after delete --force")
                try:
                    os.kill(pid, signal.SIGKILL)  # leave the host as found
                except ProcessLookupError:
                    pass
        left = cgroups_named(self.ids)
        if left:
            problems.append(f"cgroups left after delete --force: {left}")
            for path in sorted(left, key=len, reverse=True):
                try:
                    os.rmdir(path)  # empty by now: leave the host's cgroup trees as found
                except OSError:
                    pass
        return problems

    def stop_run(self, proc, cid):
        """End a background `run` that may still be going, the way a user would: delete
        --force the container (the runtime then cleans up), wait for `run` to exit, and
        only then, if it hangs, kill the runtime process."""
        if proc.poll() is None:
            self.delete(cid, force=True)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.communicate()


# ---- host-side checks ----

def start_time(pid):
    """Field 22 of /proc/PID/stat (start time in ticks), None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie has finished; only its parent's wait is missing
    return int(fields[19])


def alive(pid, started=None):
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def wait_gone(pid, started=None, timeout=5):
    deadline = time.monotonic() + timeout
    while alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def host_mounts_under(path):
    """Host mount points at or below `path` (this process's mountinfo)."""
    path = os.path.realpath(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


def cgroups_named(ids, top="/sys/fs/cgroup", depth=5):
    """Cgroup directories (to `depth` levels) whose name holds one of the container ids."""
    found = []
    base = top.rstrip("/").count("/")
    for dirpath, dirnames, _ in os.walk(top):
        if dirpath.count("/") - base >= depth:
            dirnames[:] = []
        found += [os.path.join(dirpath, d) for d in dirnames if any(i in d for i in ids)]
    return found


def host_ns_inodes():
    out = {}
    for name in os.listdir("/proc/self/ns"):
        out[name] = os.stat(f"/proc/self/ns/{name}").st_ino
    return out


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def leftover_processes(before, words, settle=2.0):
    """Processes started since `before` whose command line holds one of `words` and that
    are still alive after `settle` seconds (a failed create may take a moment to unwind)."""
    deadline = time.monotonic() + settle
    while True:
        found = [(p, cmdline(p)) for p in pids() - before
                 if alive(p) and any(w in cmdline(p) for w in words)]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def assert_failed_cleanly(runtime, proc, cid, before, words):
    """A refused create: exit 1, (pyrunc) one line on stderr starting with "pyrunc:", no
    state under --root, no process left whose command line holds one of `words`."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    if runtime.name == "pyrunc":
        lines = (proc.stderr or "").splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyrunc:"), proc.stderr
    left = os.listdir(runtime.root) if os.path.isdir(runtime.root) else []
    assert not [n for n in left if cid in n], f"state left under --root: {left}"
    assert runtime.state_cp(cid).returncode != 0
    assert not leftover_processes(before, words)


def parse_created(text):
    """RFC 3339 timestamp (nanoseconds allowed) -> aware datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, f"created {text!r} is not RFC 3339"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").astimezone(timezone.utc)



# ---- masked and read-only paths, as the probe sees them ----

def masked_paths_words(masked):
    """Probe words that read each masked path (as a file and as a directory), and try
    writes where read-only /proc paths must refuse them."""
    return [w for p in masked for w in (f"read={p}", f"ls={p}")] + [
        "openw=/proc/sys/kernel/hostname", "openw=/proc/sysrq-trigger"]


def assert_masked_and_readonly(report, masked, readonly):
    """Masked: absent inside when absent on the host, else an empty directory or a file
    that reads empty. Read-only: mounted ro, and /proc/sys refuses writes with EROFS."""
    import errno
    for path in masked:
        if not os.path.exists(path):
            assert report.errno(f"read={path}") == errno.ENOENT, path
        elif os.path.isdir(path):
            assert report.result(f"ls={path}")["entries"] == [], path
        else:
            assert report.result(f"read={path}")["bytes"] == 0, path
    for path in readonly:
        if os.path.exists(path):
            assert "ro" in report.options(path), path
    assert report.errno("openw=/proc/sys/kernel/hostname") == errno.EROFS
    # some kernels (this VM's) are built without magic SysRq
    want = errno.EROFS if os.path.exists("/proc/sysrq-trigger") else errno.ENOENT
    assert report.errno("openw=/proc/sysrq-trigger") == want
