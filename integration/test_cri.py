"""Kubernetes' path to the runtime: containerd's CRI plugin, driven over gRPC from Python
(PyPI's container-runtime-interface-api: the CRI v1 stubs), with a runtime handler per
runtime whose runc shim v2 options name the runtime as BinaryName (what a RuntimeClass
selects), and a CNI pod network: bridge + host-local + loopback from Debian's
containernetworking-plugins in /usr/lib/cni.

containerd runs with its own config, root, state and sockets, inside a private mount and
network namespace (integration/sandbox.py): the pod's bridge, veths, masquerade rules,
/run/netns files and host-local's leases stay there. Pods get a cgroup parent of their
own, removed at the end. This host's root lacks CAP_SYS_RESOURCE: restrict_oom_score_adj.
The sandbox ("pause") image is a busybox one imported with `ctr -n k8s.io images import`.
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from integration import itlib, sandbox
from integration.test_clients import (_busybox_rootfs, _new_base, _ok, _remove_base,
                                      _runtime_names, _unavailable, oci_archive)

NAMESPACE = "k8s.io"
PAUSE = "localhost/pyrunc-it-pause:latest"
IMAGE = "localhost/pyrunc-it-busybox:latest"
SUBNET = "10.88.71.0/24"
TIMEOUT = 60


def _cri():
    try:
        import grpc
        from cri_api.v1 import api_pb2, api_pb2_grpc
    except ImportError:
        _unavailable("container-runtime-interface-api is not installed (scripts/setup.sh)")
    return grpc, api_pb2, api_pb2_grpc


class CRI:
    def __init__(self, base, box):
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
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}}]}, f)
        runtimes = ""
        self.handlers = {}
        for name in _runtime_names():
            argv = itlib.runtime_command(name)
            if argv is None:
                _unavailable(f"runtime {name} is not installed")
            launcher = sandbox.logging_launcher(
                os.path.join(base, f"runtime-{name}"), os.path.abspath(argv[0]),
                os.path.join(base, f"calls-{name}.txt"), self.captured)
            handler = f"it-{name}"
            self.handlers[name] = handler
            key = f'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{handler}'
            runtimes += (f'[{key}]\n  runtime_type = "io.containerd.runc.v2"\n'
                         f'[{key}.options]\n  BinaryName = "{launcher}"\n'
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
                    f'  sandbox_image = "{PAUSE}"\n  restrict_oom_score_adj = true\n'
                    '  stream_server_address = "127.0.0.1"\n  stream_server_port = "0"\n'
                    '[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                    '  snapshotter = "native"\n'
                    f'  default_runtime_name = "{next(iter(self.handlers.values()))}"\n'
                    '[plugins."io.containerd.grpc.v1.cri".cni]\n'
                    f'  bin_dir = "/usr/lib/cni"\n  conf_dir = "{cni}"\n  max_conf_num = 1\n'
                    + runtimes)

    def state_root(self, name):
        return os.path.join(self.base, "runtime-root", name)

    def start(self):
        self.log = open(os.path.join(self.base, "containerd.log"), "w")
        self.daemon = self.box.popen(["containerd", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        grpc, api, stubs = _cri()
        deadline = time.monotonic() + 30
        while not os.path.exists(self.address):
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start: {self.tail()}")
            time.sleep(0.1)
        self.channel = grpc.insecure_channel(f"unix://{self.address}")
        self.runtime = stubs.RuntimeServiceStub(self.channel)
        self.images = stubs.ImageServiceStub(self.channel)
        while True:
            try:
                status = self.runtime.Status(api.StatusRequest(), timeout=5)
                if all(c.status for c in status.status.conditions):
                    break  # RuntimeReady and NetworkReady (the CNI config is loaded)
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRI not ready: {self.tail()}")
            time.sleep(0.2)

    def tail(self):
        with open(os.path.join(self.base, "containerd.log")) as f:
            return f.read()[-3000:]

    def ctr(self, *args, **kw):
        return self.box.run(["ctr", "--address", self.address, "--namespace", NAMESPACE,
                             *args], timeout=TIMEOUT, **kw)

    def clear(self):
        """Every pod stopped and removed; the ids found."""
        _, api, _ = _cri()
        pods = self.runtime.ListPodSandbox(api.ListPodSandboxRequest(), timeout=TIMEOUT).items
        for pod in pods:
            self.runtime.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod.id),
                                        timeout=TIMEOUT)
            self.runtime.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id),
                                          timeout=TIMEOUT)
        return [p.id for p in pods]

    def stop(self):
        try:
            self.clear()
        finally:
            self.channel.close()
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(timeout=10)
            self.log.close()


@pytest.fixture(scope="module")
def cri():
    if os.geteuid() != 0:
        _unavailable("the CRI tests need root")
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (apt-get install containerd util-linux)")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.path.exists(f"/usr/lib/cni/{plugin}"):
            _unavailable(f"CNI plugin {plugin} is missing (apt-get install "
                         "containernetworking-plugins)")
    _cri()
    base = _new_base("pyrunc-cri-")
    box = sandbox.Sandbox()
    c = CRI(base, box)
    problems = []
    try:
        c.start()
        rootfs = _busybox_rootfs(base)
        os.makedirs(os.path.join(rootfs, "www"), exist_ok=True)
        with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
            f.write("hello from a pod\n")
        for name, cmd in ((PAUSE, ("/bin/sh", "-c", "trap 'exit 0' TERM; "
                                   "while :; do sleep 1; done")), (IMAGE, ("/bin/sh",))):
            archive = os.path.join(base, f"{name.rsplit('/', 1)[1].split(':')[0]}.tar")
            oci_archive(rootfs, archive, name, cmd=cmd)
            _ok(c.ctr("images", "import", archive))
        yield c
    finally:
        if hasattr(c, "daemon"):
            try:
                left = c.clear()
                if left:
                    problems.append(f"pods left: {left}")
            finally:
                c.stop()
        left = box.close()
        if left:
            problems.append(f"processes left in the sandbox: {left}")
        problems += sandbox.remove_cgroups(c.cgroup_parent)
        mounts = _remove_base(base)
        if mounts:
            problems.append(f"mounts left: {mounts}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(params=_runtime_names())
def pod_rt(request, cri):
    yield cri, request.param
    root = cri.state_root(request.param)
    deadline = time.monotonic() + 10

    def left():
        return [os.path.join(d, n) for d, dirs, _ in os.walk(root) for n in dirs
                if d != root and not n.startswith(".")] if os.path.isdir(root) else []
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    pods = cri.clear()
    assert not pods, f"pods left: {pods}"
    assert not left(), f"{request.param} state left: {left()}"


def _pod_config(api, cri, name):
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(name=name, namespace="default", uid=uuid.uuid4().hex,
                                        attempt=0),
        hostname=name, log_directory=os.path.join(cri.base, "logs", name),
        linux=api.LinuxPodSandboxConfig(cgroup_parent=f"/{cri.cgroup_parent}/{name}"))


def _container_config(api, name, args, **linux):
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(name=name, attempt=0),
        image=api.ImageSpec(image=IMAGE), args=list(args), log_path=f"{name}.log",
        linux=api.LinuxContainerConfig(resources=api.LinuxContainerResources(**linux)))


def test_cri_pod_with_a_network_runs_serves_and_leaves_nothing(pod_rt):
    cri, runtime = pod_rt
    _, api, _ = _cri()
    rs = cri.runtime
    name = f"it-{uuid.uuid4().hex[:8]}"
    pod_config = _pod_config(api, cri, name)
    pod = rs.RunPodSandbox(api.RunPodSandboxRequest(
        config=pod_config, runtime_handler=cri.handlers[runtime]), timeout=TIMEOUT).pod_sandbox_id
    status = rs.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod),
                                 timeout=TIMEOUT).status
    address = status.network.ip
    assert status.state == api.SANDBOX_READY and address.startswith("10.88.71."), status
    cid = rs.CreateContainer(api.CreateContainerRequest(
        pod_sandbox_id=pod, sandbox_config=pod_config,
        config=_container_config(api, "web", ("busybox", "httpd", "-f", "-p", "80", "-h",
                                              "/www"), cpu_shares=256,
                                 memory_limit_in_bytes=64 << 20)),
        timeout=TIMEOUT).container_id
    rs.StartContainer(api.StartContainerRequest(container_id=cid), timeout=TIMEOUT)

    out = rs.ExecSync(api.ExecSyncRequest(container_id=cid, cmd=["sh", "-c",
                                                                   "hostname; exit 4"],
                                          timeout=20), timeout=TIMEOUT)
    assert out.exit_code == 4 and out.stdout.decode() == f"{name}\n", out

    # the pod's address answers from outside the pod (the sandbox's network namespace)
    deadline = time.monotonic() + 10
    while True:
        proc = sandbox.http_get(cri.box, f"http://{address}/index.html")
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert proc.stdout == "hello from a pod\n", proc.stderr

    stats = rs.ContainerStats(api.ContainerStatsRequest(container_id=cid),
                              timeout=TIMEOUT).stats
    assert stats.memory.working_set_bytes.value > 0, stats
    cgroup = f"/sys/fs/cgroup/cpu/{cri.cgroup_parent}/{name}"
    inner = [d for d in os.listdir(cgroup) if os.path.isdir(os.path.join(cgroup, d))]
    with open(os.path.join(cgroup, cid, "cpu.shares")) as f:
        assert f.read().strip() == "256", inner

    rs.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=TIMEOUT)
    rs.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=TIMEOUT)
    assert not rs.ListPodSandbox(api.ListPodSandboxRequest(), timeout=TIMEOUT).items
    assert not rs.ListContainers(api.ListContainersRequest(), timeout=TIMEOUT).containers
    assert not os.listdir(cgroup) or all(
        not os.path.isdir(os.path.join(cgroup, d)) for d in os.listdir(cgroup))
    assert cri.box.run(["ip", "netns", "list"]).stdout == ""  # the pod's netns is gone
