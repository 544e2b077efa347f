"""The clients and daemons the client tests (test_clients, test_docker, test_podman_net,
test_cri) and bench/clients.py start: podman, dockerd, containerd's CRI, each with private
roots, sockets, pid files and cgroup parents (the network ones inside integration/sandbox.py's
private mount and network namespace), the busybox image each is given (no registry), and
the checks that nothing is left afterwards.

No pytest here: a missing tool or runtime raises Unavailable, which the tests turn into a
skip (a failure in CI) and the bench into an error.
"""
import hashlib
import io
import json
import os
import resource
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

from integration import itlib, sandbox

TIMEOUT = 60  # one client command (normally well under a second)
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # 20.10's client: /usr/local/bin/docker may be another version
CRI_NAMESPACE = "k8s.io"
CRI_PAUSE = "localhost/pyrunc-it-pause:latest"
CRI_IMAGE = "localhost/pyrunc-it-busybox:latest"
CRI_SUBNET = "10.88.71.0/24"
# a PID 1 that stops at once on SIGTERM (busybox sleep as PID 1 would ignore it)
WAITER = ("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")


class Unavailable(Exception):
    """A client, plugin or runtime this host lacks."""


def require(*tools, hint):
    for tool in tools:
        if shutil.which(tool) is None and not os.path.exists(f"/usr/lib/podman/{tool}"):
            raise Unavailable(f"{tool} is not installed ({hint})")


def runtime_paths(names):
    """{name: absolute path} of the runtimes the clients are told to use."""
    found = {}
    for name in names:
        argv = itlib.runtime_command(name)
        if argv is None:
            raise Unavailable(f"runtime {name} is not installed")
        found[name] = os.path.abspath(argv[0])
    return found


def run(argv, timeout=TIMEOUT, **kw):
    if "input" not in kw:
        kw.setdefault("stdin", subprocess.DEVNULL)
    if "stdout" not in kw and "stderr" not in kw:
        kw["capture_output"] = True
    return subprocess.run(argv, text=True, timeout=timeout, **kw)


def ok(proc):
    assert proc.returncode == 0, (f"{shlex.join(proc.args)} exited {proc.returncode}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def new_base(prefix):
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(base, 0o755)
    return base


def remove_base(base):
    """Detach what is still mounted below base (reported: the caller fails for it), then
    remove it."""
    left = itlib.host_mounts_under(base)
    for point in reversed(left):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if not os.environ.get("PYRUNC_IT_KEEP"):
        shutil.rmtree(base, ignore_errors=True)
    return left


def busybox_rootfs(base, index=None):
    """`pyrunc bundle`'s busybox rootfs under base; with index, /www/index.html says it."""
    pyrunc = itlib.runtime_command("pyrunc")
    if pyrunc is None:
        raise Unavailable("bin/pyrunc is missing: run scripts/setup.sh")
    bundle = os.path.join(base, "bundle")
    ok(run([pyrunc[0], "bundle", bundle]))
    rootfs = os.path.join(bundle, "rootfs")
    if index is not None:
        os.makedirs(os.path.join(rootfs, "www"), exist_ok=True)
        with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
            f.write(index)
    return rootfs


def tar_rootfs(rootfs, out):
    """rootfs's entries as a tar stream into `out` (a path or a writable file)."""
    kw = {"fileobj": out, "mode": "w|"} if hasattr(out, "write") else {"name": out,
                                                                        "mode": "w"}
    with tarfile.open(**kw) as t:
        for entry in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, entry), arcname=entry)


def oci_archive(rootfs, out, name, cmd=("/bin/sh",)):
    """An OCI image layout tarball of rootfs (one uncompressed layer), as `ctr image import`
    takes it; the image is called `name`."""
    blobs = {}

    def add(data, media):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media, "digest": "sha256:" + digest, "size": len(data)}

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for entry in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, entry), arcname=entry)
    layer = add(buf.getvalue(), "application/vnd.oci.image.layer.v1.tar")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    config = {"architecture": arch, "os": "linux",
              "config": {"Cmd": list(cmd), "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
    config_desc = add(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer]}
    desc = add(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"io.containerd.image.name": name,
                           "org.opencontainers.image.ref.name": name.rpartition(":")[2]}
    desc["platform"] = {"architecture": arch, "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [desc]}

    def put(t, path, data):
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    with tarfile.open(out, "w") as t:
        put(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        put(t, "index.json", json.dumps(index).encode())
        for digest, data in blobs.items():
            put(t, f"blobs/sha256/{digest}", data)


def wait_until(ready, failed, timeout, what):
    """Poll ready() until true; RuntimeError(what()) when failed() or after timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if failed() or time.monotonic() > deadline:
            raise RuntimeError(what())
        time.sleep(0.1)


def stop_daemon(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    log.close()


def state_left(root):
    """Container state directories a runtime left under its --root (runc, pyrunc: ROOT/ID)."""
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if not n.startswith("."))


def wait_empty(root, timeout=10):
    deadline = time.monotonic() + timeout
    while state_left(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    return state_left(root)


def close_sandbox(box, base, cgroup_parent):
    """After the daemon stopped: the sandbox closed, the cgroup parent and base removed.
    What was left behind (processes, cgroups, mounts), as sentences; empty when nothing."""
    problems = []
    left = box.close()
    if left:
        problems.append(f"processes left in the sandbox: {left}")
    problems += sandbox.remove_cgroups(cgroup_parent)
    mounts = remove_base(base)
    if mounts:
        problems.append(f"mounts left: {mounts}")
    return problems


def close_cri(c, box, base):
    """Stop CRI `c` (as far as it started), then close its sandbox: what was left behind."""
    problems = []
    if hasattr(c, "daemon"):
        try:
            left = c.clear() if hasattr(c, "channel") else []
            if left:
                problems.append(f"pods left: {left}")
        finally:
            c.stop()
    return problems + close_sandbox(box, base, c.cgroup_parent)


# -- podman


class Podman:
    def __init__(self, base):
        self.base = base
        for d in ("tmp", "net", "state"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        conf = os.path.join(base, "containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\nnetns = "none"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'tmp_dir = "{base}/tmp"\n'
                    f'[network]\nnetwork_config_dir = "{base}/net"\n')
        storage = os.path.join(base, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{base}/runroot"\n'
                    f'graphroot = "{base}/root"\n')
        registries = os.path.join(base, "registries.conf")
        with open(registries, "w") as f:
            f.write("unqualified-search-registries = []\n")
        self.env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage,
                        CONTAINERS_REGISTRIES_CONF=registries, TMPDIR=f"{base}/tmp")
        self.argv = ["podman", "--root", f"{base}/root", "--runroot", f"{base}/runroot",
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--tmpdir", f"{base}/tmp",
                     "--network-config-dir", f"{base}/net"]
        # this machine's root lacks CAP_SYS_RESOURCE: podman's default rlimits (above our
        # hard limits) cannot be set by any runtime, so ask for what we have
        self.ulimits = []
        for name, kind, most in (("nofile", resource.RLIMIT_NOFILE, 20000),
                                 ("nproc", resource.RLIMIT_NPROC, 32768)):
            hard = resource.getrlimit(kind)[1]
            n = most if hard == resource.RLIM_INFINITY else min(hard, most)
            self.ulimits += ["--ulimit", f"{name}={n}:{n}"]

    def state_root(self, runtime_name):
        return os.path.join(self.base, "state", runtime_name)

    def runtime_path(self, runtime):
        """A launcher that gives the runtime --root in our temp dir. Not podman's
        --runtime-flag: podman's exit command (`podman container cleanup`, which may be the
        one calling `delete`) does not pass it on."""
        name, path = runtime
        launcher = os.path.join(self.base, f"runtime-{name}")
        if not os.path.exists(launcher):
            with open(launcher, "w") as f:
                f.write(f"#!/bin/sh\nexec {shlex.quote(path)} --root "
                        f"{shlex.quote(self.state_root(name))} \"$@\"\n")
            os.chmod(launcher, 0o755)
        return launcher

    def command(self, runtime, *args):
        return [*self.argv, "--runtime", self.runtime_path(runtime), *args]

    def __call__(self, runtime, *args, timeout=TIMEOUT, **kw):
        return run(self.command(runtime, *args), timeout=timeout, env=self.env, **kw)

    def run_args(self, *args):
        """`run` with the flags this machine needs, then args."""
        return ("run", "--network", "none", *self.ulimits, *args)

    def import_image(self, rootfs, image, runner=run):
        layer = os.path.join(self.base, "rootfs.tar")
        tar_rootfs(rootfs, layer)
        ok(runner([*self.argv, "import", layer, image], env=self.env))

    def clear(self, runner=run):
        runner([*self.argv, "rm", "--all", "--force", "--time", "0"], env=self.env)
        runner([*self.argv, "rmi", "--all", "--force"], env=self.env)


class NetPodman(Podman):
    """Podman with netavark, every command inside the sandbox, containers under a cgroup
    parent of their own; with log_calls, the runtime called through a logging launcher."""

    def __init__(self, base, box, log_calls=True):
        super().__init__(base)
        self.box, self.log_calls = box, log_calls
        self.cgroup_parent = f"pyrunc-it-podman-{uuid.uuid4().hex[:8]}"
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'tmp_dir = "{base}/tmp"\n[network]\nnetwork_backend = "netavark"\n'
                    f'network_config_dir = "{base}/net"\n')
        self.captured = os.path.join(base, "captured")
        os.makedirs(self.captured)

    def runtime_path(self, runtime):
        if not self.log_calls:
            return super().runtime_path(runtime)
        name, path = runtime
        launcher = os.path.join(self.base, f"runtime-{name}")
        if not os.path.exists(launcher):
            sandbox.logging_launcher(launcher, path, os.path.join(self.base, f"calls-{name}.txt"),
                                     self.captured, f"--root {self.state_root(name)}")
        return launcher

    def __call__(self, runtime, *args, timeout=TIMEOUT, **kw):
        return self.box.run(self.command(runtime, *args), timeout=timeout, env=self.env, **kw)

    def run_args(self, network, *args):
        return ("run", "--network", network, "--cgroup-parent", "/" + self.cgroup_parent,
                *self.ulimits, *args)

    def import_image(self, rootfs, image, runner=None):
        super().import_image(rootfs, image, self.box.run)

    def clear(self, runner=None):
        super().clear(self.box.run)


# -- docker


class Docker:
    """dockerd with `--add-runtime it-NAME=...` per runtime, its own data root, exec root,
    pid file, socket, containerd (dockerd's managed one, under the exec root) and cgroup
    parent, inside the sandbox box."""

    def __init__(self, base, box, runtimes, log_calls=True):
        self.base, self.box = base, box
        self.cgroup_parent = f"pyrunc-it-docker-{uuid.uuid4().hex[:8]}"
        self.captured = os.path.join(base, "captured")
        os.makedirs(self.captured)
        self.runtimes = {}
        for name, path in runtimes.items():
            self.runtimes[name] = sandbox.logging_launcher(
                os.path.join(base, f"runtime-{name}"), path,
                os.path.join(base, f"calls-{name}.txt"), self.captured) if log_calls else path
        with open(os.path.join(base, "daemon.json"), "w") as f:
            f.write("{}\n")  # not the host's /etc/docker/daemon.json
        self.sock = os.path.join(base, "docker.sock")
        self.argv = [DOCKER, "-H", f"unix://{self.sock}"]
        self.state_root = os.path.join(base, "exec", "runtime-runc", "moby")

    def start(self):
        argv = [DOCKERD, "--config-file", os.path.join(self.base, "daemon.json"),
                "--data-root", os.path.join(self.base, "data"),
                "--exec-root", os.path.join(self.base, "exec"),
                "--pidfile", os.path.join(self.base, "docker.pid"),
                "-H", f"unix://{self.sock}", "--storage-driver", "vfs",
                "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", "/" + self.cgroup_parent, "--log-level", "warn"]
        for name, launcher in self.runtimes.items():
            argv += ["--add-runtime", f"it-{name}={launcher}"]
        self.log = open(os.path.join(self.base, "dockerd.log"), "w")
        self.daemon = self.box.popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: self("version").returncode == 0,
                   lambda: self.daemon.poll() is not None, 60,
                   lambda: f"dockerd did not start: {self.tail()}")

    def import_image(self, rootfs, image):
        importer = subprocess.Popen(self.box.argv(*self.argv, "import", "-", image),
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        tar_rootfs(rootfs, importer.stdin)
        importer.stdin.close()
        assert importer.wait(timeout=TIMEOUT) == 0, "docker import failed"

    def tail(self):
        with open(os.path.join(self.base, "dockerd.log")) as f:
            return f.read()[-3000:]

    def __call__(self, *args, timeout=TIMEOUT, **kw):
        return self.box.run([*self.argv, *args], timeout=timeout, **kw)

    def clear(self):
        """Every container removed; the ids found."""
        ids = self("ps", "-aq").stdout.split()
        if ids:
            self("rm", "-f", *ids)
        return ids

    def stop(self):
        stop_daemon(self.daemon, self.log)


# -- containerd's CRI


def cri_api():
    """(grpc, api_pb2, api_pb2_grpc): the CRI v1 stubs."""
    try:
        import grpc
        from cri_api.v1 import api_pb2, api_pb2_grpc
    except ImportError:
        raise Unavailable("container-runtime-interface-api is not installed "
                          "(scripts/setup.sh)") from None
    return grpc, api_pb2, api_pb2_grpc


def require_cri():
    require("containerd", "ctr", "containerd-shim-runc-v2", "unshare", "nsenter",
            hint="apt-get install containerd util-linux")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.path.exists(f"/usr/lib/cni/{plugin}"):
            raise Unavailable(f"CNI plugin {plugin} is missing (apt-get install "
                              "containernetworking-plugins)")
    cri_api()


class CRI:
    """containerd with its CRI plugin: a runtime handler it-NAME per runtime (runc shim v2,
    BinaryName the runtime, as a RuntimeClass selects it), a CNI bridge network, its own
    config, root, state and sockets, inside the sandbox box."""

    def __init__(self, base, box, runtimes, log_calls=True):
        self.base, self.box = base, box
        self.address = os.path.join(base, "containerd.sock")
        self.cgroup_parent = f"pyrunc-it-cri-{uuid.uuid4().hex[:8]}"
        self.captured = os.path.join(base, "captured")
        os.makedirs(self.captured)
        cni = os.path.join(base, "cni")
        os.makedirs(cni)
        with open(os.path.join(cni, "10-pyrunc-it.conflist"), "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "pyrunc-it", "plugins": [
                {"type": "bridge", "bridge": "cni-it0", "isGateway": True, "ipMasq": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": CRI_SUBNET}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}}]}, f)
        handlers = ""
        self.handlers = {}
        for name, path in runtimes.items():
            binary = sandbox.logging_launcher(
                os.path.join(base, f"runtime-{name}"), path,
                os.path.join(base, f"calls-{name}.txt"), self.captured) if log_calls else path
            handler = f"it-{name}"
            self.handlers[name] = handler
            key = f'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}'
            handlers += (f'[{key}]\n  runtime_type = "io.containerd.runc.v2"\n'
                         f'[{key}.options]\n  BinaryName = "{binary}"\n'
                         f'  Root = "{self.state_root(name)}"\n')
        disabled = ["io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
        self.config = os.path.join(base, "config.toml")
        with open(self.config, "w") as f:
            f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                    f"disabled_plugins = {json.dumps(disabled)}\n"
                    f'[grpc]\n  address = "{self.address}"\n'
                    f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
                    '[debug]\n  address = ""\n  level = "info"\n[metrics]\n  address = ""\n'
                    '[plugins."io.containerd.grpc.v1.cri"]\n'
                    f'  sandbox_image = "{CRI_PAUSE}"\n  restrict_oom_score_adj = true\n'
                    '  stream_server_address = "127.0.0.1"\n  stream_server_port = "0"\n'
                    '[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                    '  snapshotter = "native"\n'
                    f'  default_runtime_name = "{next(iter(self.handlers.values()))}"\n'
                    '[plugins."io.containerd.grpc.v1.cri".cni]\n'
                    f'  bin_dir = "/usr/lib/cni"\n  conf_dir = "{cni}"\n  max_conf_num = 1\n'
                    + handlers)

    def state_root(self, name):
        return os.path.join(self.base, "runtime-root", name)

    def start(self):
        self.log = open(os.path.join(self.base, "containerd.log"), "w")
        self.daemon = self.box.popen(["containerd", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        grpc, api, stubs = cri_api()
        exited = lambda: self.daemon.poll() is not None  # noqa: E731
        wait_until(lambda: os.path.exists(self.address), exited, 30,
                   lambda: f"containerd did not start: {self.tail()}")
        self.channel = grpc.insecure_channel(f"unix://{self.address}")
        self.runtime = stubs.RuntimeServiceStub(self.channel)
        self.images = stubs.ImageServiceStub(self.channel)

        def ready():  # RuntimeReady and NetworkReady (the CNI config is loaded)
            try:
                status = self.runtime.Status(api.StatusRequest(), timeout=5)
            except grpc.RpcError:
                return False
            return all(c.status for c in status.status.conditions)
        wait_until(ready, exited, 30, lambda: f"CRI not ready: {self.tail()}")

    def import_images(self, rootfs):
        """The sandbox ("pause") image and CRI_IMAGE, both of rootfs, into k8s.io."""
        for name, cmd in ((CRI_PAUSE, ("/bin/sh", "-c", "trap 'exit 0' TERM; "
                                       "while :; do sleep 1; done")), (CRI_IMAGE, ("/bin/sh",))):
            archive = os.path.join(self.base, f"{name.rsplit('/', 1)[1].split(':')[0]}.tar")
            oci_archive(rootfs, archive, name, cmd=cmd)
            ok(self.ctr("images", "import", archive))

    def tail(self):
        with open(os.path.join(self.base, "containerd.log")) as f:
            return f.read()[-3000:]

    def ctr(self, *args, **kw):
        return self.box.run(["ctr", "--address", self.address, "--namespace", CRI_NAMESPACE,
                             *args], timeout=TIMEOUT, **kw)

    def pod_config(self, name):
        api = cri_api()[1]
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace="default",
                                            uid=uuid.uuid4().hex, attempt=0),
            hostname=name, log_directory=os.path.join(self.base, "logs", name),
            linux=api.LinuxPodSandboxConfig(cgroup_parent=f"/{self.cgroup_parent}/{name}"))

    @staticmethod
    def container_config(name, args, **linux):
        api = cri_api()[1]
        return api.ContainerConfig(
            metadata=api.ContainerMetadata(name=name, attempt=0),
            image=api.ImageSpec(image=CRI_IMAGE), args=list(args), log_path=f"{name}.log",
            linux=api.LinuxContainerConfig(resources=api.LinuxContainerResources(**linux)))

    def clear(self):
        """Every pod stopped and removed; the ids found."""
        api = cri_api()[1]
        pods = self.runtime.ListPodSandbox(api.ListPodSandboxRequest(), timeout=TIMEOUT).items
        for pod in pods:
            self.runtime.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod.id),
                                        timeout=TIMEOUT)
            self.runtime.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id),
                                          timeout=TIMEOUT)
        return [p.id for p in pods]

    def stop(self):
        try:
            if hasattr(self, "channel"):
                self.clear()
        finally:
            if hasattr(self, "channel"):
                self.channel.close()
            stop_daemon(self.daemon, self.log)
