#!/usr/bin/env python3
"""pyrunc against runc and crun, on the same machine, in the same run, on the same bundles.

    .venv/bin/python bench/run.py [--quick] [--only SECTIONS] [--runtimes pyrunc,runc,crun]
                                  [--pyrunc LAUNCHER] [--crun-cgroups cgroupfs|disabled]
                                  [--wait-idle SECONDS] [--keep] [--no-json]

Run by hand or in CI, as root, never as a timed test. Every measurement alternates the
runtimes (the order rotates each round), so drift of the machine (CPU frequency, page cache,
other load) hits all of them alike. Prints a table; writes bench/results/DATE-TIME.json.

Sections (--only takes their names, comma-separated):
  run        `run` of `true` on the plain bundle (`pyrunc bundle`'s default config);
             also the CPU time (user+sys) of the runtime and the children it reaped
  hardened   the same on the hardened bundle (see HARDENED below); for pyrunc also with
             its seccomp cache (ROOT/.seccomp-cache) emptied before each run ("cold")
  lifecycle  create + start + delete of `true` (the three commands' total, and each)
  rss        peak RSS of the runtime command (GNU time's %M) for `run` plain and hardened
  state      `state` and `list` with 10, 100, 1,000 and 3,000 containers' state present
  concurrent 50 containers created and started at once (50 `create && start` chains)
  ptrace     `run` of `true` on the plain bundle with CAP_SYS_PTRACE in every set: pyrunc
             then re-executes itself from a read-only clone of its interpreter
             (pyrunc/linux/sealed.py), runc always runs from its cloned binary
  exec       `exec ID true` into a running container of the plain bundle (`sleep`)

What is timed: from fork to reaping of the runtime command, measured by this script
(Popen and a blocking wait: subprocess.run(timeout=) polls with sleeps of up to 50 ms,
which quantizes times). Spawning a process from here costs "harness" ms (printed first;
included in every time). The CPU time other processes used meanwhile (/proc/stat minus our
rusage) is printed as "load": above 10% the absolute times are inflated (the ratios less,
since the runtimes alternate); --wait-idle waits for a quiet machine first.

State for `state`/`list` is made by each runtime itself: one real container is created and
then killed (so it is "stopped"), and its state directory, byte for byte as that runtime
wrote it, is cloned up to 2,999 times with the container id rewritten (pyrunc:
ROOT/ID/state.json, config.json, exec.fifo; runc: ROOT/ID/state.json, exec.fifo; crun:
ROOT/ID/status, config.json, exec.fifo). Each runtime then lists N stopped containers; the
script checks that it does (count and `state` of a clone) and records the check in the JSON.

crun 1.8 refuses this hybrid-cgroup host ("cgroups in hybrid mode not supported, drop all
controllers from cgroupv2": cgroup2 at /sys/fs/cgroup/unified has the hugetlb controller,
which no v1 hierarchy has), and --cgroup-manager=disabled does not get past that check.
So every crun command runs in a private mount namespace (made once by
`unshare --mount --propagation private`, kept by an fd) in which /sys/fs/cgroup/unified is
unmounted: crun then sees a cgroup v1 host and, as runc does here, makes a cgroup per
container in each v1 hierarchy (--crun-cgroups cgroupfs, the default). --crun-cgroups
disabled instead mounts an empty read-only tmpfs there and passes
--cgroup-manager=disabled (no cgroups at all, as pyrunc today). To spawn crun this
script setns()es itself into that namespace, spawns, and setns()es back (outside the timed
window), so that every runtime is spawned the same way (vfork; a preexec_fn would force
fork, which costs this 2-core VM about 3 ms more per spawn).

HARDENED bundle: `pyrunc spec --hardened` (only CAP_NET_BIND_SERVICE in every set,
noNewPrivileges, read-only root with a tmpfs /tmp, runc's masked and read-only paths plus
/proc/interrupts and /sys/devices/virtual/powercap, new pid/net/ipc/uts/mount/cgroup/user
namespaces, user namespace mapping 0-65535 to host 100000-165535) with its seccomp
replaced by the article's allow-list (tests/data/article_seccomp.json: defaultAction
SCMP_ACT_ERRNO, 329 names allowed plus kill with signal 15, for x86_64/x86/x32).
All three runtimes run it as is, user namespace included.

Both bundles get ociVersion "1.0.2-dev" (runc 1.1.5's spec version): crun 1.8 refuses
pyrunc's default "1.3.0" with "unknown version specified".

Cleanup: every runtime gets --root in a scratch directory under /tmp (never /run/runc,
/run/crun or /run/pyrunc); at the end every container left is deleted with --force, empty
cgroups named after this run's ids are removed, and the scratch directory is removed.
This process is a child subreaper (PR_SET_CHILD_SUBREAPER) so that the containers' inits,
orphaned when `create` exits, are reaped here rather than left as zombies.
"""
import argparse
import contextlib
import ctypes
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
ARTICLE_SECCOMP = os.path.join(REPO, "tests", "data", "article_seccomp.json")
OCI_VERSION = "1.0.2-dev"
SECTIONS = ("run", "hardened", "lifecycle", "rss", "state", "concurrent", "ptrace", "exec")
STATE_SIZES = (10, 100, 1000, 3000)
CONCURRENT = 50

CLONE_NEWNS = 0x00020000
PR_SET_CHILD_SUBREAPER = 36

# (rounds, warm-up rounds) per section, full and --quick
ROUNDS = {
    "run": (30, 3), "hardened": (30, 3), "lifecycle": (20, 2), "rss": (5, 1),
    "state": (20, 2), "concurrent": (3, 0), "ptrace": (30, 3), "exec": (30, 3),
}
QUICK_ROUNDS = {
    "run": (6, 1), "hardened": (6, 1), "lifecycle": (5, 1), "rss": (2, 0),
    "state": (5, 1), "concurrent": (1, 0), "ptrace": (6, 1), "exec": (6, 1),
}

_libc = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


def log(text):
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


def _environ():
    """Our environment without PYRUNC_* (PYRUNC_ROOT, PYRUNC_DEBUG, PYRUNC_FAIL_STEP...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYRUNC_")}


# -- runtimes


class MountNamespace:
    """A private mount namespace where crun sees no cgroup2 controllers; kept by an fd."""

    def __init__(self, mode):
        if mode == "cgroupfs":
            hide = "umount /sys/fs/cgroup/unified"
        else:
            hide = "mount -t tmpfs -o ro,size=4k bench-hide-cgroup2 /sys/fs/cgroup/unified"
        script = f"{hide} && echo ready && exec sleep 3600"
        helper = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                   "sh", "-c", script], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=_environ())
        try:
            line = helper.stdout.readline()
            if line.strip() != b"ready":
                helper.wait(5)
                raise BenchError(f"cannot make crun's mount namespace ({hide}): "
                                 f"{helper.stderr.read().decode().strip()}")
            self.fd = os.open(f"/proc/{helper.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            if helper.poll() is None:
                helper.kill()
            helper.wait()
            helper.stdout.close()
            helper.stderr.close()
        self.mode = mode
        self.home = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self.mode = mode
        self.how = f"unshare --mount --propagation private; {hide}; crun runs there"

    @contextlib.contextmanager
    def inside(self):
        """This (single-threaded) process in the namespace for the block: children spawned
        there stay in it. setns resets the cwd: every path here is absolute."""
        cwd = os.getcwd()
        _setns(self.fd)
        try:
            yield
        finally:
            _setns(self.home)
            os.chdir(cwd)

    def close(self):
        os.close(self.fd)
        os.close(self.home)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(mnt): {os.strerror(err)}")


@contextlib.contextmanager
def _host():
    yield


class Runtime:
    def __init__(self, name, exe, root, extra=(), where=_host):
        self.name = name
        self.exe = exe
        self.root = root
        self.extra = list(extra)
        self.where = where          # context manager: the mount namespace to spawn it in
        self.version = ""

    def cmd(self, *args):
        return [self.exe, *self.extra, "--root", self.root, *args]

    def state_dir(self, cid):
        return os.path.join(self.root, cid)

    def run(self, *args, check=True, capture=False, timeout=120):
        """Run a command (untimed); its stdout when capture. stdout and stderr go to files,
        not pipes: after `create` the container's init holds them open."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            with self.where():
                rc, _ = call(self.cmd(*args), out if capture else subprocess.DEVNULL, err,
                             _environ(), timeout)
            if check and rc != 0:
                raise BenchError(f"{self.name} {' '.join(args)}: exit {rc}: {_read(err)}")
            return _read(out) if capture else ""

    def with_root(self, root):
        r = Runtime(self.name, self.exe, root, self.extra, self.where)
        r.version = self.version
        return r


def pyrunc_launcher(runtimes):
    return next((rt.exe for rt in runtimes if rt.name == "pyrunc"), None)


def find_runtimes(names, scratch, crun_mode, pyrunc_exe):
    found, skipped, crun_ns = [], {}, None
    for name in names:
        if name == "pyrunc":
            exe = os.path.abspath(pyrunc_exe)
            if not os.access(exe, os.X_OK):
                raise BenchError(f"{exe} is missing: run scripts/setup.sh first")
        else:
            exe = shutil.which(name)
            if exe is None:
                skipped[name] = "not installed"
                continue
        rt = Runtime(name, exe, os.path.join(scratch, "root-" + name))
        if name == "crun":
            crun_ns = MountNamespace(crun_mode)
            rt.where = crun_ns.inside
            if crun_mode == "disabled":
                rt.extra = ["--cgroup-manager=disabled"]
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, env=_environ())
        rt.version = " ".join(out.stdout.split("\n")[0].split()[-1:]) if out.stdout else "?"
        found.append(rt)
    return found, skipped, crun_ns


# -- processes


def set_subreaper():
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def reap_orphans():
    """Reap the containers' inits that were reparented to us and have exited. Only called
    when no subprocess of ours is in flight (it would steal its exit status)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Timeout(BenchError):
    pass


def _alarm(_signum, _frame):
    raise Timeout("timed out")


@contextlib.contextmanager
def watchdog(seconds):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def call(argv, stdout, stderr, env, limit=120):
    """(exit status, wall ms) of argv: Popen and a blocking wait. Not subprocess.run(timeout=):
    its wait polls with sleeps growing to 50 ms, which quantizes what it measures; a SIGALRM
    watchdog takes the timeout's place."""
    with watchdog(limit):
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             env=env)
        try:
            p.wait()
        except Timeout:
            p.kill()
            p.wait()
            raise BenchError(f"{' '.join(argv)}: still running after {limit} s") from None
        t1 = time.perf_counter_ns()
    return p.returncode, (t1 - t0) / 1e6


def wait_pid_gone(pid, timeout=10):
    """Wait until pid has exited: reap it when it is our child (we are a subreaper)."""
    try:
        with watchdog(timeout):
            os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    except Timeout:
        raise BenchError(f"pid {pid} still runs after {timeout} s") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.001)
    raise BenchError(f"pid {pid} still runs after {timeout} s")


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def _read(f):
    f.seek(0)
    return f.read().decode(errors="replace").strip()


_ERR = None


def timed(rt, args):
    """(wall ms, CPU ms of the command and the children it reaped) of one command.
    stderr goes to a file: a pipe would stay open in the init that `create` leaves."""
    global _ERR
    if _ERR is None:
        _ERR = tempfile.TemporaryFile()
    _ERR.seek(0)
    _ERR.truncate()
    argv, env = rt.cmd(*args), _environ()
    with rt.where():
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc, wall = call(argv, subprocess.DEVNULL, _ERR, env)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise BenchError(f"{rt.name} {' '.join(args)}: exit {rc}: {_read(_ERR)}")
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000
    return wall, cpu


def rotated(items, i):
    k = i % len(items)
    return items[k:] + items[:k]


def summary(samples):
    if not samples:
        return None
    s = sorted(samples)
    return {"median": round(statistics.median(s), 3), "min": round(s[0], 3),
            "max": round(s[-1], 3), "n": len(s),
            "stdev": round(statistics.stdev(s), 3) if len(s) > 1 else 0.0,
            "samples": [round(x, 3) for x in samples]}


# -- bundles


def _with_ptrace(config):
    for key in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][key].append("CAP_SYS_PTRACE")


def _sleeping(config):
    config["process"]["args"] = ["sleep", "3600"]


def make_bundles(scratch, pyrunc):
    env = _environ()
    plain = os.path.join(scratch, "bundle-plain")
    hard = os.path.join(scratch, "bundle-hardened")
    for b in (plain, hard):
        subprocess.run([pyrunc, "bundle", b, "--", "true"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    conf = os.path.join(plain, "config.json")
    with open(conf) as f:
        config = json.load(f)
    config["ociVersion"] = OCI_VERSION
    with open(conf, "w") as f:
        json.dump(config, f, indent="\t")

    spec_dir = tempfile.mkdtemp(dir=scratch)
    subprocess.run([pyrunc, "spec", "--hardened", "-b", spec_dir], check=True, env=env)
    with open(os.path.join(spec_dir, "config.json")) as f:
        hardened = json.load(f)
    shutil.rmtree(spec_dir)
    with open(ARTICLE_SECCOMP) as f:
        seccomp = json.load(f)["linux"]["seccomp"]
    hardened["ociVersion"] = OCI_VERSION
    hardened["process"]["args"] = ["true"]
    hardened["linux"]["seccomp"] = seccomp
    with open(os.path.join(hard, "config.json"), "w") as f:
        json.dump(hardened, f, indent="\t")
    for name, change in (("ptrace", _with_ptrace), ("sleep", _sleeping)):
        variant = json.loads(json.dumps(config))
        change(variant)
        variant["root"]["path"] = os.path.join(plain, "rootfs")  # runc refuses a symlink
        path = os.path.join(scratch, f"bundle-{name}")
        os.mkdir(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(variant, f, indent="\t")
    names = sum(len(r["names"]) for r in seccomp["syscalls"])
    ns = [n["type"] for n in hardened["linux"]["namespaces"]]
    desc = {
        "plain": "pyrunc bundle DIR -- true (busybox rootfs, default config), "
                 f"ociVersion {OCI_VERSION}",
        "ptrace": "plain + CAP_SYS_PTRACE in bounding, effective, permitted",
        "sleep": "plain running sleep 3600 (the container `exec` enters)",
        "hardened": f"pyrunc spec --hardened + article seccomp allow-list "
                    f"({names} names in {len(seccomp['syscalls'])} rules, default "
                    f"{seccomp['defaultAction']}), caps "
                    f"{hardened['process']['capabilities']['bounding']}, readonly root "
                    f"{hardened['root'].get('readonly')}, "
                    f"{len(hardened['linux'].get('maskedPaths', []))} masked paths, "
                    f"namespaces {ns}, uid map {hardened['linux'].get('uidMappings')}, "
                    f"ociVersion {OCI_VERSION}",
    }
    return plain, hard, desc


# -- sections


class Bench:
    def __init__(self, runtimes, scratch, prefix, quick):
        self.rts = runtimes
        self.scratch = scratch
        self.prefix = prefix
        self.rounds = QUICK_ROUNDS if quick else ROUNDS
        self.results = {}
        self.notes = []
        self.n = 0

    def new_id(self, tag):
        self.n += 1
        return f"{self.prefix}{tag}{self.n}"

    def _ensure_gone(self, rt, cid):
        if os.path.exists(rt.state_dir(cid)):
            self.notes.append(f"{rt.name}: state of {cid} left after the command; deleted")
            rt.run("delete", "--force", cid, check=False)

    def harness(self, launcher):
        fake = Runtime("harness", "/bin/true", "/nonexistent")
        fake.cmd = lambda *a: ["/bin/true"]
        samples = [timed(fake, ())[0] for _ in range(30)]
        self.results["harness"] = summary(samples)
        if launcher is None:
            return
        # the floor of every pyrunc command: its launcher's interpreter and flags (the
        # shebang line) running a script that exits at once, as the launcher does at its end
        with open(launcher) as f:
            shebang = f.readline()[2:].split()
        script = os.path.join(self.scratch, "floor.py")
        with open(script, "w") as f:
            f.write("import posix\nposix._exit(0)\n")
        fake.cmd = lambda *a: shebang + [script]
        samples = [timed(fake, ())[0] for _ in range(30)]
        self.results["interpreter_floor"] = dict(summary(samples), argv=shebang)

    def run_section(self, key, bundle, cold_pyrunc=False):
        rounds, warm = self.rounds[key]
        walls = {rt.name: [] for rt in self.rts}
        cpus = {rt.name: [] for rt in self.rts}
        cold_name = "pyrunc (cold seccomp cache)"
        jobs = [(rt, False) for rt in self.rts]
        if cold_pyrunc:
            jobs += [(rt, True) for rt in self.rts if rt.name == "pyrunc"]
            walls[cold_name], cpus[cold_name] = [], []
        for i in range(warm + rounds):
            for rt, cold in rotated(jobs, i):
                cid = self.new_id("r")
                if cold:
                    shutil.rmtree(os.path.join(rt.root, ".seccomp-cache"), ignore_errors=True)
                wall, cpu = timed(rt, ("run", "-b", bundle, cid))
                self._ensure_gone(rt, cid)
                reap_orphans()
                if i >= warm:
                    name = cold_name if cold else rt.name
                    walls[name].append(wall)
                    cpus[name].append(cpu)
        self.results[key] = {name: dict(summary(walls[name]), cpu=summary(cpus[name]))
                             for name in walls}

    def exec_into(self, bundle):
        """`exec ID true` into one running container per runtime."""
        rounds, warm = self.rounds["exec"]
        cids = {}
        for rt in self.rts:
            cids[rt.name] = self.new_id("e")
            rt.run("run", "-d", "-b", bundle, cids[rt.name])
        walls = {rt.name: [] for rt in self.rts}
        try:
            for i in range(warm + rounds):
                for rt in rotated(self.rts, i):
                    wall, _ = timed(rt, ("exec", cids[rt.name], "true"))
                    reap_orphans()
                    if i >= warm:
                        walls[rt.name].append(wall)
        finally:
            for rt in self.rts:
                rt.run("delete", "--force", cids[rt.name], check=False)
            reap_orphans()
        self.results["exec"] = {k: summary(v) for k, v in walls.items()}

    def lifecycle(self, bundle):
        rounds, warm = self.rounds["lifecycle"]
        parts = {rt.name: {"create": [], "start": [], "delete": [], "total": []}
                 for rt in self.rts}
        pidfile = os.path.join(self.scratch, "lifecycle.pid")
        for i in range(warm + rounds):
            for rt in rotated(self.rts, i):
                cid = self.new_id("l")
                if os.path.exists(pidfile):
                    os.unlink(pidfile)
                c, _ = timed(rt, ("create", "-b", bundle, "--pid-file", pidfile, cid))
                pid = read_pid(pidfile)
                s, _ = timed(rt, ("start", cid))
                wait_pid_gone(pid)          # `true` exits; not timed
                d, _ = timed(rt, ("delete", cid))
                self._ensure_gone(rt, cid)
                reap_orphans()
                if i >= warm:
                    for k, v in (("create", c), ("start", s), ("delete", d),
                                 ("total", c + s + d)):
                        parts[rt.name][k].append(v)
        self.results["lifecycle"] = {rt: {k: summary(v) for k, v in p.items()}
                                     for rt, p in parts.items()}

    def rss(self, plain, hard):
        gnu_time = "/usr/bin/time"
        if not os.access(gnu_time, os.X_OK):
            self.notes.append("rss: /usr/bin/time (GNU time) missing; skipped")
            return
        rounds, warm = self.rounds["rss"]
        out = os.path.join(self.scratch, "time.out")
        res = {}
        for label, bundle in (("run plain", plain), ("run hardened", hard)):
            kb = {rt.name: [] for rt in self.rts}
            for i in range(warm + rounds):
                for rt in rotated(self.rts, i):
                    cid = self.new_id("m")
                    with rt.where(), tempfile.TemporaryFile() as err:
                        rc, _ = call([gnu_time, "-f", "%M", "-o", out,
                                      *rt.cmd("run", "-b", bundle, cid)],
                                     subprocess.DEVNULL, err, _environ())
                        if rc != 0:
                            raise BenchError(f"{rt.name} run (under GNU time): exit "
                                             f"{rc}: {_read(err)}")
                    with open(out) as f:
                        value = int(f.read().split()[-1])
                    self._ensure_gone(rt, cid)
                    reap_orphans()
                    if i >= warm:
                        kb[rt.name].append(value)
            res[label] = {name: summary(v) for name, v in kb.items()}
        self.results["rss"] = res

    # state and list

    def _template(self, rt, bundle):
        """A real container made by `rt`, killed: its state dir, as rt wrote it."""
        cid = f"{self.prefix}s00000"
        pidfile = os.path.join(self.scratch, "template.pid")
        rt.run("create", "-b", bundle, "--pid-file", pidfile, cid)
        pid = read_pid(pidfile)
        os.kill(pid, signal.SIGKILL)
        wait_pid_gone(pid)
        return cid

    def _clone(self, rt, template, upto, have):
        src = rt.state_dir(template)
        old = template.encode()
        for i in range(have, upto):
            cid = f"{self.prefix}s{i:05d}"
            dst = rt.state_dir(cid)
            os.mkdir(dst)
            os.chmod(dst, os.stat(src).st_mode & 0o7777)
            for e in os.scandir(src):
                mode = e.stat(follow_symlinks=False).st_mode
                target = os.path.join(dst, e.name)
                if e.is_file(follow_symlinks=False):
                    with open(e.path, "rb") as f:
                        data = f.read().replace(old, cid.encode())
                    with open(target, "wb") as f:
                        f.write(data)
                    os.chmod(target, mode & 0o7777)
                elif stat.S_ISFIFO(mode):
                    os.mkfifo(target)
                    os.chmod(target, mode & 0o7777)
                else:
                    raise BenchError(f"{e.path}: cannot clone this kind of file")

    def _check(self, rt, n, probe):
        out = rt.run("list", capture=True)
        listed = sum(1 for line in out.splitlines() if self.prefix in line)
        st = json.loads(rt.run("state", probe, capture=True))
        ok = listed == n and st.get("id") == probe and st.get("status") == "stopped"
        return {"listed": listed, "expected": n, "state_id": st.get("id"),
                "state_status": st.get("status"), "ok": ok}

    def state_list(self, bundle):
        rounds, warm = self.rounds["state"]
        srts = [rt.with_root(os.path.join(self.scratch, "state-" + rt.name)) for rt in self.rts]
        templates = {}
        res = {"state": {}, "list": {}, "check": {}}
        try:
            for rt in srts:
                templates[rt.name] = self._template(rt, bundle)
            have = 1
            for n in STATE_SIZES:
                for rt in srts:
                    self._clone(rt, templates[rt.name], n, have)
                have = n
                probe = f"{self.prefix}s{n // 2:05d}"
                checks = {rt.name: self._check(rt, n, probe) for rt in srts}
                res["check"][str(n)] = checks
                for name, c in checks.items():
                    if not c["ok"]:
                        self.notes.append(f"state/list {n}: {name} does not read the cloned "
                                          f"state as expected: {c}")
                st = {rt.name: [] for rt in srts}
                ls = {rt.name: [] for rt in srts}
                for i in range(warm + rounds):
                    for rt in rotated(srts, i):
                        a, _ = timed(rt, ("state", probe))
                        b, _ = timed(rt, ("list",))
                        if i >= warm:
                            st[rt.name].append(a)
                            ls[rt.name].append(b)
                res["state"][str(n)] = {k: summary(v) for k, v in st.items()}
                res["list"][str(n)] = {k: summary(v) for k, v in ls.items()}
        finally:
            for rt in srts:
                if rt.name in templates:
                    rt.run("delete", "--force", templates[rt.name], check=False)
                shutil.rmtree(rt.root, ignore_errors=True)
        self.results["state"] = res

    def concurrent(self, bundle):
        rounds, _ = self.rounds["concurrent"]
        walls = {rt.name: [] for rt in self.rts}
        for i in range(rounds):
            for rt in rotated(self.rts, i):
                walls[rt.name].append(self._concurrent_once(rt, bundle, i))
        self.results["concurrent"] = {k: summary(v) for k, v in walls.items()}

    def _concurrent_once(self, rt, bundle, i):
        work = os.path.join(self.scratch, f"conc-{rt.name}-{i}")
        os.mkdir(work)
        ids = [self.new_id("c") for _ in range(CONCURRENT)]
        procs, scripts, env = [], [], _environ()
        for k, cid in enumerate(ids):
            pidfile = os.path.join(work, f"{k}.pid")
            scripts.append(shlex.join(rt.cmd("create", "-b", bundle, "--pid-file", pidfile,
                                             cid)) + " && " + shlex.join(rt.cmd("start", cid)))
        errs = [open(os.path.join(work, f"{k}.err"), "wb") for k in range(CONCURRENT)]
        with rt.where():
            t0 = time.perf_counter_ns()
            for script, err in zip(scripts, errs):
                procs.append((subprocess.Popen(["/bin/sh", "-c", script],
                                               stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=err,
                                               env=env), err))
        with watchdog(600):
            codes = [p.wait() for p, _ in procs]
        t1 = time.perf_counter_ns()
        for _, err in procs:
            err.close()
        failed = [k for k, c in enumerate(codes) if c != 0]
        for k in range(CONCURRENT):
            try:
                wait_pid_gone(read_pid(os.path.join(work, f"{k}.pid")))
            except (OSError, ValueError):
                pass
        reap_orphans()
        for cid in ids:
            if os.path.exists(rt.state_dir(cid)):
                rt.run("delete", "--force", cid, check=False)
        reap_orphans()
        if failed:
            with open(os.path.join(work, f"{failed[0]}.err")) as f:
                msg = f.read().strip()
            raise BenchError(f"{rt.name}: {len(failed)} of {CONCURRENT} concurrent "
                             f"create+start failed; first: {msg}")
        shutil.rmtree(work)
        return (t1 - t0) / 1e6


# -- cleanup


def cgroups_named(prefix, top="/sys/fs/cgroup", depth=4):
    found = []

    def walk(path, d):
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if e.name.startswith(prefix):
                    found.append(e.path)
                elif d > 0:
                    walk(e.path, d - 1)
    walk(top, depth)
    return found


def cleanup(runtimes, scratch, prefix, keep):
    problems = []
    for rt in runtimes:
        for root in (rt.root, os.path.join(scratch, "state-" + rt.name)):
            if not os.path.isdir(root):
                continue
            for cid in os.listdir(root):
                if cid.startswith(prefix):
                    rt.with_root(root).run("delete", "--force", cid, check=False)
                    if os.path.exists(os.path.join(root, cid)):
                        problems.append(f"{rt.name}: {cid} not deleted")
    reap_orphans()
    for path in sorted(cgroups_named(prefix), key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError as e:
            problems.append(f"cgroup {path}: {e.strerror}")
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if scratch in line.split()[4]]
    if mounts:
        problems.append(f"mounts left under {scratch}: {mounts}")
    if not keep and not mounts:
        shutil.rmtree(scratch, ignore_errors=True)
    return problems


# -- report


def fmt(s, unit_div=1.0, digits=1):
    if not s:
        return "-"
    return (f"{s['median'] / unit_div:.{digits}f} "
            f"[{s['min'] / unit_div:.{digits}f}-{s['max'] / unit_div:.{digits}f}]")


def ratio(a, b):
    if not a or not b or not b["median"]:
        return None
    return round(a["median"] / b["median"], 2)


def rows_of(results):
    """(label, {runtime: summary}, unit) for the table."""
    rows = []
    if "run" in results:
        rows.append(("run true, plain bundle", results["run"], "ms"))
        rows.append(("  CPU user+sys of it", {k: v.get("cpu") for k, v in
                                              results["run"].items()}, "ms"))
    if "hardened" in results:
        h = results["hardened"]
        warm = {k: v for k, v in h.items() if "cold" not in k}
        rows.append(("run true, hardened bundle", warm, "ms"))
        rows.append(("  CPU user+sys of it", {k: v.get("cpu") for k, v in warm.items()}, "ms"))
        cold = h.get("pyrunc (cold seccomp cache)")
        if cold:
            rows.append(("  pyrunc, seccomp cache cold", {"pyrunc": cold}, "ms"))
    if "lifecycle" in results:
        lc = results["lifecycle"]
        for part in ("total", "create", "start", "delete"):
            label = "create+start+delete" if part == "total" else f"  {part}"
            rows.append((label, {k: v[part] for k, v in lc.items()}, "ms"))
    if "rss" in results:
        for label, per in results["rss"].items():
            rows.append((f"peak RSS, {label}", per, "MiB"))
    if "state" in results:
        for n, per in results["state"]["state"].items():
            rows.append((f"state, {n} containers", per, "ms"))
        for n, per in results["state"]["list"].items():
            rows.append((f"list, {n} containers", per, "ms"))
    if "concurrent" in results:
        rows.append((f"{CONCURRENT} x create+start at once (wall)", results["concurrent"], "ms"))
    if "ptrace" in results:
        rows.append(("run true, CAP_SYS_PTRACE (sealed)", results["ptrace"], "ms"))
    if "exec" in results:
        rows.append(("exec true into a running container", results["exec"], "ms"))
    return rows


def table(results, names):
    rows = rows_of(results)
    head = ["", *names]
    if "runc" in names:
        head.append("pyrunc/runc")
    if "crun" in names:
        head.append("pyrunc/crun")
    lines = []
    for label, per, unit in rows:
        div = 1024.0 if unit == "MiB" else 1.0
        cells = [f"{label} ({unit})"]
        for n in names:
            cells.append(fmt(per.get(n), div))
        for other in ("runc", "crun"):
            if other in names:
                r = ratio(per.get("pyrunc"), per.get(other))
                cells.append("-" if r is None else f"{r:.2f}")
        lines.append(cells)
    return format_table(head, lines)


def format_table(head, rows):
    """Columns padded to their widest cell, the first left-aligned, a rule under the head."""
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                     enumerate(zip(r, widths))) for r in [head] + rows]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def targets(results):
    """The issue's targets, checked against this run's medians."""
    t = []

    def med(*path):
        d = results
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d["median"] if d else None

    def add(what, value, limit, ok):
        t.append({"target": what, "value": value, "limit": limit,
                  "met": None if value is None else bool(ok)})

    for sec, label in (("run", "plain"), ("hardened", "hardened")):
        p, r, c = med(sec, "pyrunc"), med(sec, "runc"), med(sec, "crun")
        v = round(p / r, 2) if p and r else None
        add(f"run {label}: pyrunc/runc <= 1.0", v, 1.0, v is not None and v <= 1.0)
        v = round(p / c, 2) if p and c else None
        add(f"run {label}: pyrunc/crun <= 1.5", v, 1.5, v is not None and v <= 1.5)
    p, r = med("lifecycle", "pyrunc", "total"), med("lifecycle", "runc", "total")
    v = round(p / r, 2) if p and r else None
    add("create+start+delete: pyrunc/runc <= 1.0", v, 1.0, v is not None and v <= 1.0)
    for label in ("run plain", "run hardened"):
        p, r = med("rss", label, "pyrunc"), med("rss", label, "runc")
        v = round(p / r, 2) if p and r else None
        add(f"peak RSS {label}: pyrunc/runc <= 1.0", v, 1.0, v is not None and v <= 1.0)
    v = med("state", "state", "1000", "pyrunc")
    add("state with 1,000 containers < 30 ms", v, 30, v is not None and v < 30)
    v = med("state", "list", "1000", "pyrunc")
    add("list with 1,000 containers < 150 ms", v, 150, v is not None and v < 150)
    l100, l1000 = med("state", "list", "100", "pyrunc"), med("state", "list", "1000", "pyrunc")
    l3000 = med("state", "list", "3000", "pyrunc")
    if l100 and l1000 and l3000:
        # linear: the cost per container from 1000 to 3000 is not above 1.5x that from 100
        # to 1000 (below 100 the start-up of the command hides it)
        a, b = (l1000 - l100) / 900, (l3000 - l1000) / 2000
        add("list linear (ms/container 1000->3000 / 100->1000 <= 1.5)",
            round(b / a, 2) if a > 0 else None, 1.5, a > 0 and b / a <= 1.5)
    hp, pp = med("hardened", "pyrunc"), med("run", "pyrunc")
    hr, pr = med("hardened", "runc"), med("run", "runc")
    if hp and pp and hr and pr:
        add("hardened/plain: pyrunc's <= runc's", round(hp / pp, 3), round(hr / pr, 3),
            hp / pp <= hr / pr)
    return t


class LoadMeter:
    """How busy the machine was with other work while we measured: CPU time the whole
    machine spent (/proc/stat) minus what this script and its children spent (rusage)."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.load_start = os.getloadavg()
        self.t0, self.busy0, self.ours0 = time.monotonic(), self._busy(), self._ours()

    def _busy(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: all but idle and iowait
        return (sum(v[:8]) - v[3] - v[4]) / self.hz

    @staticmethod
    def _ours():
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            r = resource.getrusage(who)
            total += r.ru_utime + r.ru_stime
        return total

    def stop(self):
        wall = time.monotonic() - self.t0
        other = max(0.0, (self._busy() - self.busy0) - (self._ours() - self.ours0))
        cpus = os.cpu_count() or 1
        return {"loadavg_start": [round(x, 2) for x in self.load_start],
                "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                "other_cpu_percent": round(100 * other / (wall * cpus), 1),
                "wall_s": round(wall, 1)}


def wait_idle(limit):
    """Wait (up to limit seconds) until the 1-minute load average is below 0.5."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def host_info(pyrunc_exe):
    info = {"kernel": platform.release(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "pyrunc"],
                               capture_output=True, text=True).stdout.strip()
        info["pyrunc_commit"] = head + ("+dirty (pyrunc/ has uncommitted changes)"
                                        if dirty else "")
    except OSError:
        pass
    info["pyrunc_launcher"] = os.path.abspath(pyrunc_exe)
    if os.path.abspath(pyrunc_exe) != os.path.join(REPO, "bin", "pyrunc"):
        with open(pyrunc_exe) as f:
            marker = [line for line in f.read().splitlines()[:3] if "snapshot.sh" in line]
        label = marker[0].split(": pyrunc ", 1)[-1].split(" ", 1)[0] if marker else ""
        info["pyrunc_commit"] = label.rstrip(",") or f"? ({pyrunc_exe})"
    return info



def save_results(prefix, started, quick, doc):
    """bench/results/PREFIXDATE[-quick].json, written whole or not at all; `doc` gets the
    date first."""
    os.makedirs(RESULTS, exist_ok=True)
    when = datetime.datetime.fromtimestamp(started)
    path = os.path.join(RESULTS, f"{prefix}{when.strftime('%Y-%m-%d-%H%M%S')}"
                                 f"{'-quick' if quick else ''}.json")
    doc = {"date": when.isoformat(timespec="seconds"), **doc}
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.rename(path + ".tmp", path)
    print(f"\nresults: {os.path.relpath(path, os.getcwd())}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    ap.add_argument("--only", help=f"comma list of sections: {','.join(SECTIONS)}")
    ap.add_argument("--runtimes", default="pyrunc,runc,crun")
    ap.add_argument("--crun-cgroups", choices=("cgroupfs", "disabled"), default="cgroupfs",
                    help="crun's cgroups in its private mount namespace (default: cgroupfs, "
                         "v1 cgroups per container as runc makes here)")
    ap.add_argument("--pyrunc", default=os.path.join(REPO, "bin", "pyrunc"),
                    help="the pyrunc launcher to measure (default: bin/pyrunc; "
                         "bench/snapshot.sh makes one for a committed revision)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/")
    ap.add_argument("--wait-idle", type=int, default=0, metavar="S",
                    help="first wait up to S seconds for the 1-minute load average to fall "
                         "below 0.5 (other work on the machine skews every number)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (it creates containers)", file=sys.stderr)
        return 2
    only = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; known: {SECTIONS}")
    names = [n.strip() for n in args.runtimes.split(",") if n.strip()]
    if "pyrunc" not in names:
        ap.error("pyrunc must be one of the runtimes")

    if args.wait_idle:
        load = wait_idle(args.wait_idle)
        if load >= 0.5:
            log(f"load average still {load:.2f} after {args.wait_idle} s; measuring anyway")
    set_subreaper()
    meter = LoadMeter()
    scratch = tempfile.mkdtemp(prefix="pyrunc-bench-", dir="/tmp")
    os.chmod(scratch, 0o755)  # the hardened bundle's container root is host uid 100000
    prefix = f"pb{os.getpid()}-"
    runtimes, crun_ns, started = [], None, time.time()
    bench, problems, error = None, [], None
    try:
        runtimes, skipped, crun_ns = find_runtimes(names, scratch, args.crun_cgroups,
                                                   args.pyrunc)
        for n, why in skipped.items():
            log(f"{n}: {why}; left out")
        plain, hard, bundles = make_bundles(
            scratch, next(rt.exe for rt in runtimes if rt.name == "pyrunc"))
        bench = Bench(runtimes, scratch, prefix, args.quick)
        log("checking that every runtime runs both bundles")
        for rt in runtimes:
            for b in (plain, hard):
                cid = bench.new_id("v")
                rt.run("run", "-b", b, cid)
                bench._ensure_gone(rt, cid)
        reap_orphans()
        bench.harness(pyrunc_launcher(runtimes))
        for sec in SECTIONS:
            if sec not in only:
                continue
            log(f"section {sec}")
            if sec == "run":
                bench.run_section("run", plain)
            elif sec == "hardened":
                bench.run_section("hardened", hard, cold_pyrunc=True)
            elif sec == "lifecycle":
                bench.lifecycle(plain)
            elif sec == "rss":
                bench.rss(plain, hard)
            elif sec == "state":
                bench.state_list(plain)
            elif sec == "concurrent":
                bench.concurrent(plain)
            elif sec == "ptrace":
                bench.run_section("ptrace", os.path.join(scratch, "bundle-ptrace"))
            elif sec == "exec":
                bench.exec_into(os.path.join(scratch, "bundle-sleep"))
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        error = str(e)
        log(f"error: {e}")
    except KeyboardInterrupt:
        error = "interrupted"
        log("interrupted: cleaning up")
    finally:
        problems = cleanup(runtimes, scratch, prefix, args.keep)
        if crun_ns is not None:
            crun_ns.close()
        for p in problems:
            log(f"cleanup: {p}")

    load = meter.stop()
    if bench is None or not bench.results:
        return 1
    rt_names = [rt.name for rt in runtimes]
    results = bench.results
    h = results["harness"]
    versions = ", ".join(f"{rt.name} {rt.version}" for rt in runtimes)
    print(f"pyrunc bench {datetime.datetime.now():%Y-%m-%d %H:%M}"
          f"{' (--quick)' if args.quick else ''}: {versions}")
    info = host_info(args.pyrunc)
    print(f"host: {info.get('cpu', '?')}, {info['cpus']} cpus, kernel {info['kernel']}, "
          f"pyrunc {info.get('pyrunc_commit', '?')}")
    if crun_ns is not None:
        print(f"crun: {crun_ns.how}"
              + (", --cgroup-manager=disabled" if args.crun_cgroups == "disabled" else ""))
    print(f"harness: spawning /bin/true from this script takes {h['median']:.2f} ms "
          f"(median), included in every time; medians [min-max]")
    floor = results.get("interpreter_floor")
    if floor:
        print(f"floor: pyrunc's interpreter ({' '.join(floor['argv'])}) with a script that "
              f"exits at once takes {floor['median']:.2f} ms: every pyrunc command pays it")
    busy = load["other_cpu_percent"]
    print(f"load: other work used {busy}% of the CPUs while this ran (load average "
          f"{load['loadavg_start'][0]} at start, {load['loadavg_end'][0]} at end)"
          + ("  ** busy machine: absolute times are inflated, ratios less so **"
             if busy > 10 else "") + "\n")
    print(table(results, rt_names))
    checks = targets(results)
    if checks:
        print("\ntargets (issue):")
        for c in checks:
            mark = {True: "met", False: "NOT met", None: "n/a"}[c["met"]]
            value = "-" if c["value"] is None else f"{c['value']:.2f}"
            print(f"  {c['target']:<58} {value:>8}  (limit {c['limit']})  {mark}")
    for n in bench.notes:
        print(f"note: {n}")
    if error:
        print(f"error: {error} (results above are partial)")
    if not args.no_json:
        doc = {"quick": args.quick, "host": info,
               "runtimes": {rt.name: rt.version for rt in runtimes},
               "crun": {"mode": args.crun_cgroups, "how": crun_ns.how if crun_ns else None},
               "bundles": bundles if bench else None,
               "rounds": bench.rounds, "units": {"time": "ms", "rss": "KiB"},
               "load": load,
               "results": results, "targets": checks, "notes": bench.notes,
               "error": error, "cleanup_problems": problems}
        save_results("", started, args.quick, doc)
    return 1 if error or problems else 0


if __name__ == "__main__":
    sys.exit(main())
