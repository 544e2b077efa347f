"""podman with netavark networks drives the runtime: a bridge network, a port published to
the outside of the container, two containers reaching each other by address. As in
test_clients.py, podman gets private roots and configuration; here, moreover, every podman
command runs inside a private mount and network namespace (integration/sandbox.py): the
bridge, veths, netavark's firewall rules, /run/netns and /run/containers stay there. Each
container gets a cgroup parent of its own, removed at the end.

The namespace file podman hands the runtime is a bind mount under /run/netns (netavark's):
before NS_GET_NSTYPE, pyrunc refused it as "not a namespace".
"""
import os
import shutil
import tarfile
import time
import uuid

import pytest

from integration import itlib, sandbox
from integration.test_clients import (IMAGE, Podman, _busybox_rootfs, _new_base, _ok,
                                      _remove_base, _runtime_names, _unavailable)


class NetPodman(Podman):
    """test_clients' podman, with netavark and calls through a logging launcher."""

    def __init__(self, base, box):
        super().__init__(base)
        self.box = box
        self.cgroup_parent = f"pyrunc-it-podman-{uuid.uuid4().hex[:8]}"
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'tmp_dir = "{base}/tmp"\n[network]\nnetwork_backend = "netavark"\n'
                    f'network_config_dir = "{base}/net"\n')
        self.captured = os.path.join(base, "captured")
        os.makedirs(self.captured)

    def runtime_path(self, runtime):
        name, path = runtime
        launcher = os.path.join(self.base, f"runtime-{name}")
        if not os.path.exists(launcher):
            sandbox.logging_launcher(launcher, path, os.path.join(self.base, f"calls-{name}.txt"),
                                     self.captured, f"--root {self.state_root(name)}")
        return launcher

    def __call__(self, runtime, *args, timeout=60, **kw):
        return self.box.run(self.command(runtime, *args), timeout=timeout, env=self.env, **kw)

    def run_args(self, network, *args):
        return ("run", "--network", network, "--cgroup-parent", "/" + self.cgroup_parent,
                *self.ulimits, *args)


@pytest.fixture(scope="module")
def podman():
    if os.geteuid() != 0:
        _unavailable("the podman network tests need root")
    for tool in ("podman", "conmon", "netavark", "unshare", "nsenter"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/lib/podman/{tool}"):
            _unavailable(f"{tool} is not installed (apt-get install podman netavark)")
    base = _new_base("pyrunc-podman-net-")
    box = sandbox.Sandbox()
    p = NetPodman(base, box)
    problems = []
    try:
        rootfs = _busybox_rootfs(base)
        os.makedirs(os.path.join(rootfs, "www"), exist_ok=True)
        with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
            f.write("hello from busybox httpd\n")
        layer = os.path.join(base, "rootfs.tar")
        with tarfile.open(layer, "w") as t:
            for entry in sorted(os.listdir(rootfs)):
                t.add(os.path.join(rootfs, entry), arcname=entry)
        _ok(box.run([*p.argv, "import", layer, IMAGE], env=p.env))
        yield p
    finally:
        box.run([*p.argv, "rm", "--all", "--force", "--time", "0"], env=p.env)
        box.run([*p.argv, "rmi", "--all", "--force"], env=p.env)
        left = box.close()
        if left:
            problems.append(f"processes left in the sandbox: {left}")
        problems += sandbox.remove_cgroups(p.cgroup_parent)
        mounts = _remove_base(base)
        if mounts:
            problems.append(f"mounts left: {mounts}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(params=_runtime_names())
def rt(request, podman):
    argv = itlib.runtime_command(request.param)
    if argv is None:
        _unavailable(f"runtime {request.param} is not installed")
    runtime = (request.param, os.path.abspath(argv[0]))
    net = f"it{uuid.uuid4().hex[:8]}"
    _ok(podman(runtime, "network", "create", "--disable-dns", net))
    yield podman, runtime, net
    ids = podman(runtime, "ps", "--all", "--quiet").stdout.split()
    if ids:
        podman(runtime, "rm", "--force", "--time", "0", *ids)
    podman(runtime, "network", "rm", "--force", net)
    root = podman.state_root(request.param)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.isdir(root) and \
            [n for n in os.listdir(root) if not n.startswith(".")]:
        time.sleep(0.1)
    assert not ids, f"containers left: {ids}"
    assert not os.path.isdir(root) or not [n for n in os.listdir(root)
                                           if not n.startswith(".")], "runtime state left"


def _address(podman, runtime, name):
    return _ok(podman(runtime, "inspect", "--format",
                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                      name)).stdout.strip()


def _get(box, url, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        proc = sandbox.http_get(box, url)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc
        time.sleep(0.2)


def test_podman_bridge_network_publishes_a_port(rt):
    podman, runtime, net = rt
    web = f"it-{uuid.uuid4().hex[:8]}"
    _ok(podman(runtime, *podman.run_args(net, "-d", "--name", web, "-p", "18081:80", IMAGE,
                                         "busybox", "httpd", "-f", "-p", "80", "-h", "/www")))
    # outside the container: the sandbox's own network namespace, through netavark's DNAT
    proc = _get(podman.box, "http://127.0.0.1:18081/index.html")
    assert proc.stdout == "hello from busybox httpd\n", proc.stderr
    address = _address(podman, runtime, web)
    assert address.startswith("10."), address
    proc = _get(podman.box, f"http://{address}/index.html")
    assert proc.stdout == "hello from busybox httpd\n", proc.stderr
    _ok(podman(runtime, "rm", "--force", "--time", "0", web))


def test_podman_two_containers_reach_each_other_by_address(rt):
    podman, runtime, net = rt
    web = f"it-{uuid.uuid4().hex[:8]}"
    _ok(podman(runtime, *podman.run_args(net, "-d", "--name", web, IMAGE, "busybox", "httpd",
                                         "-f", "-p", "80", "-h", "/www")))
    address = _address(podman, runtime, web)
    proc = _ok(podman(runtime, *podman.run_args(
        net, "--rm", IMAGE, "sh", "-c",
        f"for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -q -O - http://{address}/index.html "
        "&& exit 0; sleep 0.2; done; exit 1")))
    assert proc.stdout == "hello from busybox httpd\n"
    # and the other way: the client's own address differs, on the same bridge
    proc = _ok(podman(runtime, *podman.run_args(net, "--rm", IMAGE, "sh", "-c",
                                                "ip -4 -o addr show eth0")))
    assert address.rsplit(".", 1)[0] in proc.stdout and f"{address}/" not in proc.stdout
    _ok(podman(runtime, "rm", "--force", "--time", "0", web))
