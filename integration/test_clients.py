"""Real clients drive the runtime: podman (through conmon) and containerd (through its runc
shim, `ctr`), as they would drive runc.

Each client gets a private setup under a temp dir, never the host's: podman with its own
--root/--runroot/--tmpdir, the vfs storage driver, cgroupfs, file events and a containers.conf
of its own; containerd started here with its own config, root, state and socket, and stopped at
the end. The image is a busybox rootfs made by `pyrunc bundle`: imported into podman with
`podman import`, and into containerd as an OCI archive built here (no network needed).

What the clients leave on the host in spite of that (paths compiled into them: podman's
/run/containers/networks and /var/lib/containers/cache, containerd's /run/containerd/{fifo,s},
the cgroups podman's conmon makes under libpod_parent) is removed at the end when it did not
exist before.

Runtimes: PYRUNC_IT_RUNTIMES as for the other integration tests ("pyrunc" by default; "runc"
checks the tests against the oracle). Without podman or containerd the tests skip, with the
reason; in CI (CI=true) that is a failure (scripts/setup.sh installs them).
"""
import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from integration import clientlib, itlib
from integration.clientlib import TIMEOUT, Podman, Unavailable, oci_archive  # noqa: F401
from integration.clientlib import new_base as _new_base, ok as _ok, remove_base as _remove_base
from integration.clientlib import run as _run
from integration.clientlib import wait_empty as _wait_empty

IN_CI = os.environ.get("CI") == "true"
IMAGE = "localhost/pyrunc-it-busybox:latest"
CGROUP_TOP = "/sys/fs/cgroup"


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"client tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _busybox_rootfs(base, index=None):
    try:
        return clientlib.busybox_rootfs(base, index)
    except Unavailable as e:
        pytest.fail(str(e), pytrace=False)


def _runtime_names():
    names = os.environ.get("PYRUNC_IT_RUNTIMES", "pyrunc")
    return [n.strip() for n in names.split(",") if n.strip()]


@pytest.fixture(scope="module", params=_runtime_names())
def runtime_bin(request):
    """(name, absolute path) of the runtime the clients are told to use."""
    argv = itlib.runtime_command(request.param)
    if argv is None:
        _unavailable(f"runtime {request.param} is not installed")
    return request.param, os.path.abspath(argv[0])


def run_in_pty(argv, timeout=TIMEOUT, env=None):
    """Run argv with a pty as its stdin/stdout/stderr; (exit status, output bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    out = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave is gone
                    break
                if not data:
                    break
                out.append(data)
            elif proc.poll() is not None:
                break
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{shlex.join(argv)} did not finish in {timeout}s: "
                        f"{b''.join(out)!r}", pytrace=False)
        return proc.wait(timeout=10), b"".join(out)
    finally:
        os.close(master)


# -- what the clients leave on the host


def _cgroup_hierarchies():
    """/sys/fs/cgroup itself (cgroup v2 only) and each directory below it (v1 hierarchies,
    the hybrid layout's "unified")."""
    try:
        names = os.listdir(CGROUP_TOP)
    except OSError:
        return []
    return [CGROUP_TOP] + [os.path.join(CGROUP_TOP, n) for n in names
                           if os.path.isdir(os.path.join(CGROUP_TOP, n))
                           and not os.path.islink(os.path.join(CGROUP_TOP, n))]


class HostLeftovers:
    """Paths compiled into the clients, outside any directory they let us choose: recorded
    before, removed after when they did not exist before (cgroups: rmdir, only if empty)."""

    TREES = ("/run/containers", "/var/lib/containers")   # podman: netavark run dir, blob cache
    DIRS = ("/run/containerd/fifo", "/run/containerd/s", "/run/containerd")  # ctr, shims

    def __init__(self):
        self.cgroup_names = ["libpod_parent/conmon", "libpod_parent"]
        self.before = set()
        for path in self.TREES + self.DIRS:
            if os.path.lexists(path):
                self.before.add(path)

    def add_cgroup(self, name):
        self.cgroup_names.insert(0, name)

    def snapshot_cgroups(self):
        for h in _cgroup_hierarchies():
            for name in self.cgroup_names:
                path = os.path.join(h, name)
                if os.path.isdir(path):
                    self.before.add(path)

    def clean(self):
        problems = []
        for path in self.TREES:
            if path not in self.before and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
        for path in self.DIRS:
            if path not in self.before and os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError as e:
                    problems.append(f"{path}: {e.strerror}")
        for h in _cgroup_hierarchies():
            for name in self.cgroup_names:  # the deepest first
                path = os.path.join(h, name)
                if path not in self.before and os.path.isdir(path):
                    try:
                        os.rmdir(path)
                    except OSError as e:
                        problems.append(f"cgroup {path}: {e.strerror}")
        return problems


@pytest.fixture(scope="module")
def host_leftovers():
    if os.geteuid() != 0:
        _unavailable("the client tests need root")
    leftovers = HostLeftovers()
    leftovers.snapshot_cgroups()
    yield leftovers
    problems = leftovers.clean()
    if problems:
        pytest.fail("left on the host: " + "; ".join(problems), pytrace=False)


# -- podman


@pytest.fixture(scope="module")
def podman(host_leftovers):
    if shutil.which("podman") is None or shutil.which("conmon") is None:
        _unavailable("podman (and conmon) are not installed (apt-get install podman)")
    base = _new_base("pyrunc-podman-")
    p = Podman(base)
    try:
        p.import_image(_busybox_rootfs(base), IMAGE)
        yield p
    finally:
        p.clear()
        left = _remove_base(base)
        if left:
            pytest.fail(f"podman left mounts: {left}", pytrace=False)


@pytest.fixture
def podman_rt(podman, runtime_bin):
    """(podman, runtime); at teardown: no container left, nor runtime state."""
    yield podman, runtime_bin
    proc = _run([*podman.argv, "ps", "--all", "--quiet"], env=podman.env)
    ids = proc.stdout.split()
    if ids:
        podman(runtime_bin, "rm", "--force", "--time", "0", *ids)
    left = _wait_empty(podman.state_root(runtime_bin[0]))
    assert not ids, f"containers left: {ids}"
    assert not left, f"{runtime_bin[0]} state left under its --root: {left}"


def _name():
    return f"it-{uuid.uuid4().hex[:10]}"


def test_podman_run_rm(podman_rt):
    podman, rt = podman_rt
    _ok(podman(rt, *podman.run_args("--rm", IMAGE, "true")))
    proc = podman(rt, *podman.run_args("--rm", IMAGE, "sh", "-c",
                                       "echo out; echo err >&2; hostname; exit 3"))
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[0] == "out"
    assert "err" in proc.stderr


def test_podman_run_missing_command_is_127(podman_rt):
    podman, rt = podman_rt
    proc = podman(rt, *podman.run_args("--rm", IMAGE, "/no/such/command"))
    assert proc.returncode == 127, proc.stderr


def test_podman_detached_exec_stop(podman_rt):
    podman, rt = podman_rt
    name = _name()
    # a shell as pid 1 ignores SIGTERM unless it traps it
    _ok(podman(rt, *podman.run_args("-d", "--name", name, IMAGE, "sh", "-c",
                                    "trap 'exit 7' TERM; while :; do sleep 0.1; done")))
    proc = podman(rt, "exec", name, "sh", "-c", "echo in-exec; exit 5")
    assert proc.returncode == 5, proc.stderr
    assert proc.stdout == "in-exec\n"
    proc = _ok(podman(rt, "exec", "-i", name, "cat", input="through stdin\n"))
    assert proc.stdout == "through stdin\n"
    proc = _ok(podman(rt, "exec", "--user", "1000:1000", "--workdir", "/tmp", "--env", "A=b",
                      name, "sh", "-c", 'echo "$(id -u):$(id -g) $PWD $A"'))
    assert proc.stdout == "1000:1000 /tmp b\n"
    _ok(podman(rt, "stop", "--time", "10", name))
    proc = _ok(podman(rt, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name))
    assert proc.stdout.split() == ["exited", "7"]
    _ok(podman(rt, "rm", name))


def test_podman_stop_falls_back_to_sigkill(podman_rt):
    podman, rt = podman_rt
    name = _name()
    _ok(podman(rt, *podman.run_args("-d", "--name", name, IMAGE, "sleep", "60")))
    _ok(podman(rt, "stop", "--time", "1", name))  # kill ID 15, ignored by pid 1; kill ID 9
    proc = _ok(podman(rt, "inspect", "--format", "{{.State.ExitCode}}", name))
    assert proc.stdout.strip() == "137"
    _ok(podman(rt, "rm", name))
    # and rm --force of a running container
    _ok(podman(rt, *podman.run_args("-d", "--name", name, IMAGE, "sleep", "60")))
    _ok(podman(rt, "rm", "--force", "--time", "0", name))


def test_podman_limits_stats_pause(podman_rt):
    # podman's cgroupsPath (libpod_parent/libpod-ID with cgroupfs) and resources, which it
    # then reads itself (stats) and freezes through the runtime (pause)
    podman, rt = podman_rt
    name = _name()
    _ok(podman(rt, *podman.run_args("-d", "--name", name, "--memory", "64m", "--pids-limit",
                                    "33", IMAGE, "sleep", "60")))
    proc = _ok(podman(rt, "exec", name, "cat", "/sys/fs/cgroup/pids/pids.max",
                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"))
    assert proc.stdout.split() == ["33", str(64 << 20)]
    _ok(podman(rt, "stats", "--no-stream", "--format", "{{.Name}}", name))
    _ok(podman(rt, "pause", name))
    proc = _ok(podman(rt, "inspect", "--format", "{{.State.Status}}", name))
    assert proc.stdout.strip() == "paused"
    _ok(podman(rt, "unpause", name))
    proc = _ok(podman(rt, "inspect", "--format", "{{.State.Status}}", name))
    assert proc.stdout.strip() == "running"
    _ok(podman(rt, "rm", "--force", "--time", "0", name))


def test_podman_tty(podman_rt):
    podman, rt = podman_rt
    proc = podman(rt, *podman.run_args("--rm", "-t", IMAGE, "sh", "-c",
                                       "tty; test -c /dev/console && echo console; exit 4"))
    assert proc.returncode == 4, proc.stderr
    lines = proc.stdout.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/"), proc.stdout
    assert "console" in lines
    name = _name()
    _ok(podman(rt, *podman.run_args("-d", "-t", "--name", name, IMAGE, "sleep", "60")))
    proc = _ok(podman(rt, "exec", "-t", name, "sh", "-c", "tty"))  # busybox sh's applet
    assert proc.stdout.strip().startswith("/dev/pts/"), proc.stdout
    _ok(podman(rt, "rm", "--force", "--time", "0", name))


def test_podman_read_only(podman_rt):
    # --read-only: tmpfs with tmpcopyup on /run, /tmp, /var/tmp; /etc/hostname bound into
    # the read-only root; a read-only tmpfs with binds inside it
    podman, rt = podman_rt
    proc = podman(rt, *podman.run_args(
        "--rm", "--read-only", "--tmpfs", "/etc:ro", IMAGE, "sh", "-c",
        "touch /x 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-writable;"
        "touch /etc/x 2>/dev/null && echo etc-writable; cat /etc/hostname >/dev/null &&"
        " echo hostname; test -f /etc/passwd && echo copied-up"))
    _ok(proc)
    assert proc.stdout.split() == ["tmp-writable", "hostname", "copied-up"]


def test_podman_volumes(podman_rt):
    # a read-only volume, and one with rshared propagation (podman then asks for
    # rootfsPropagation "shared": pivot_root needs the rootfs's parent mount private)
    podman, rt = podman_rt
    vol = os.path.join(podman.base, "vol")
    os.makedirs(vol, exist_ok=True)
    with open(os.path.join(vol, "f"), "w") as f:
        f.write("data\n")
    proc = _ok(podman(rt, *podman.run_args(
        "--rm", "-v", f"{vol}:/ro:ro", "--mount",
        f"type=bind,src={vol},dst=/shared,bind-propagation=rshared", IMAGE, "sh", "-c",
        "cat /ro/f /shared/f; touch /ro/x 2>/dev/null || echo ro;"
        "grep ' /shared ' /proc/self/mountinfo | grep -q shared: && echo shared")))
    assert proc.stdout.split() == ["data", "data", "ro", "shared"]


def test_podman_pid_host_stop_kills_only_the_container(podman_rt):
    """podman stops a container without a pid namespace of its own with `kill --all`: the
    runtime must signal the container's processes only. Run in a pid namespace of its own, so
    that a runtime signalling the whole "host" pid namespace can only kill this script."""
    if shutil.which("unshare") is None:
        _unavailable("unshare (util-linux) is not installed")
    podman, rt = podman_rt
    name = _name()
    pm = shlex.join(podman.command(rt))
    run = shlex.join(podman.run_args("-d", "--pid", "host", "--name", name, IMAGE, "sh", "-c",
                                     "sleep 60 & sleep 61"))
    script = f"""
        sleep 60 & bystander=$!
        {pm} {run} >/dev/null || exit 10
        {pm} stop --time 2 {name} >/dev/null || exit 11
        kill -0 $bystander || exit 12
        {pm} inspect --format '{{{{.State.Status}}}}' {name}
        {pm} rm {name} >/dev/null || exit 13
        kill $bystander
    """
    proc = _run(["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c", script],
                env=podman.env)
    assert proc.returncode == 0, f"status {proc.returncode}: {proc.stderr}"
    assert proc.stdout.strip() == "exited"


# -- containerd


class Containerd:
    """A containerd of our own: config, root, state and sockets under base."""

    def __init__(self, base):
        self.base = base
        self.address = os.path.join(base, "containerd.sock")
        self.namespace = f"pyrunc-it-{uuid.uuid4().hex[:8]}"
        config = os.path.join(base, "config.toml")
        disabled = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                    "io.containerd.internal.v1.tracing",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
        with open(config, "w") as f:
            f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                    f"disabled_plugins = {json.dumps(disabled)}\n"
                    f'[grpc]\n  address = "{self.address}"\n'
                    f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
                    '[debug]\n  address = ""\n  level = "info"\n'
                    '[metrics]\n  address = ""\n')
        self.log = open(os.path.join(base, "containerd.log"), "w")
        self.daemon = subprocess.Popen(["containerd", "--config", config],
                                       stdin=subprocess.DEVNULL, stdout=self.log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.daemon.poll() is not None:
                pytest.fail(f"containerd exited {self.daemon.returncode}: {self.log_text()}",
                            pytrace=False)
            if os.path.exists(self.address) and self.ctr("version").returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"containerd did not come up: {self.log_text()}", pytrace=False)
            time.sleep(0.1)

    def log_text(self):
        with open(os.path.join(self.base, "containerd.log")) as f:
            return f.read()[-3000:]

    def command(self, *args):
        return ["ctr", "--address", self.address, "--namespace", self.namespace, *args]

    def ctr(self, *args, timeout=TIMEOUT, **kw):
        return _run(self.command(*args), timeout=timeout, **kw)

    def runtime_args(self, runtime):
        name, path = runtime
        return ["--runtime", "io.containerd.runc.v2", "--runc-binary", path,
                "--runc-root", self.runtime_root(name)]

    def runtime_root(self, name):
        return os.path.join(self.base, "runtime-root", name)

    def clear(self):
        """Every task killed and deleted, every container and image removed."""
        tasks = self.ctr("task", "ls", "--quiet").stdout.split()
        for t in tasks:
            self.ctr("task", "kill", "--signal", "SIGKILL", t)
        for t in tasks:
            self.ctr("task", "delete", "--force", t)
        for c in self.ctr("container", "ls", "--quiet").stdout.split():
            self.ctr("container", "delete", c)
        return tasks

    def stop(self):
        self.clear()
        for i in self.ctr("image", "ls", "--quiet").stdout.split():
            self.ctr("image", "remove", i)
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        self.log.close()
        # a shim still serving one of our containers: ours, so stopped by its pid
        shims = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"containerd-shim" in argv[0] and self.address.encode() in argv:
                shims.append(int(pid))
                os.kill(int(pid), signal.SIGKILL)
        return shims


@pytest.fixture(scope="module")
def containerd(host_leftovers):
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (apt-get install containerd)")
    base = _new_base("pyrunc-containerd-")
    daemon = None
    try:
        rootfs = _busybox_rootfs(base)
        daemon = Containerd(base)
        daemon.rootfs = rootfs
        host_leftovers.add_cgroup(daemon.namespace)  # ctr's default cgroupsPath: /NS/ID
        archive = os.path.join(base, "image.tar")
        oci_archive(rootfs, archive, IMAGE)
        _ok(daemon.ctr("image", "import", archive))
        yield daemon
    finally:
        shims = daemon.stop() if daemon is not None else []
        left = _remove_base(base)
        if shims or left:
            pytest.fail(f"containerd left shims {shims}, mounts {left}", pytrace=False)


@pytest.fixture
def ctr_rt(containerd, runtime_bin):
    yield containerd, runtime_bin
    tasks = containerd.clear()
    left = _wait_empty(os.path.join(containerd.runtime_root(runtime_bin[0]),
                                    containerd.namespace))
    assert not tasks, f"tasks left: {tasks}"
    assert not left, f"{runtime_bin[0]} state left under its --root: {left}"


def test_ctr_run_rootfs(ctr_rt):
    ctrd, rt = ctr_rt
    proc = ctrd.ctr("run", "--rm", *ctrd.runtime_args(rt), "--rootfs", ctrd.rootfs, _name(),
                    "/bin/sh", "-c", "echo hello; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "hello\n"


def test_ctr_run_imported_image(ctr_rt):
    ctrd, rt = ctr_rt
    # the image's PATH finds sh; the rootfs is an overlayfs snapshot the shim mounts
    proc = ctrd.ctr("run", "--rm", *ctrd.runtime_args(rt), IMAGE, _name(), "sh", "-c",
                    "echo from-image;"
                    "grep ' / / ' /proc/self/mountinfo | grep -q overlay && echo overlay")
    _ok(proc)
    assert proc.stdout.split() == ["from-image", "overlay"]


def test_ctr_reports_the_runtime_error(ctr_rt):
    # the shim reads the last "error" line of --log (json) into its own error
    ctrd, rt = ctr_rt
    proc = ctrd.ctr("run", "--rm", *ctrd.runtime_args(rt), IMAGE, _name(), "/no/such/command")
    assert proc.returncode != 0
    assert "/no/such/command" in proc.stderr and "no such file" in proc.stderr.lower(), \
        proc.stderr


def test_ctr_detached_exec_kill(ctr_rt):
    ctrd, rt = ctr_rt
    cid = _name()
    _ok(ctrd.ctr("run", "-d", *ctrd.runtime_args(rt), IMAGE, cid, "sh", "-c",
                 "trap 'exit 9' TERM; while :; do sleep 0.1; done"))
    proc = ctrd.ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; exit 4")
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == "in-exec\n"
    proc = _ok(ctrd.ctr("task", "ps", cid))  # the shim asks the runtime: ps --format json
    assert len(proc.stdout.splitlines()) >= 2, proc.stdout
    _ok(ctrd.ctr("task", "kill", cid))  # SIGTERM
    deadline = time.monotonic() + 10
    while "STOPPED" not in ctrd.ctr("task", "ls").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    proc = _ok(ctrd.ctr("task", "delete", cid))
    assert "exit code 9" in proc.stderr
    _ok(ctrd.ctr("container", "delete", cid))


def test_ctr_tty(ctr_rt):
    ctrd, rt = ctr_rt
    status, out = run_in_pty(ctrd.command(
        "run", "--rm", "-t", *ctrd.runtime_args(rt), IMAGE, _name(), "sh", "-c",
        "tty; test -c /dev/console && echo console; exit 5"))
    text = out.decode(errors="replace").replace("\r", "")
    assert status == 5, text
    assert "/dev/pts/" in text and "console\n" in text, text
