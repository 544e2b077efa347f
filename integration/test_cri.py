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
import os
import time
import uuid

import pytest

from integration import clientlib, sandbox
from integration.clientlib import CRI, Unavailable, cri_api
from integration.test_clients import _busybox_rootfs, _new_base, _runtime_names, _unavailable

TIMEOUT = 60


@pytest.fixture(scope="module")
def cri():
    if os.geteuid() != 0:
        _unavailable("the CRI tests need root")
    try:
        clientlib.require_cri()
        runtimes = clientlib.runtime_paths(_runtime_names())
    except Unavailable as e:
        _unavailable(str(e))
    base = _new_base("pyrunc-cri-")
    box = sandbox.Sandbox()
    c = CRI(base, box, runtimes)
    try:
        c.start()
        c.import_images(_busybox_rootfs(base, "hello from a pod\n"))
        yield c
    finally:
        problems = clientlib.close_cri(c, box, base)
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


def test_cri_pod_with_a_network_runs_serves_and_leaves_nothing(pod_rt):
    cri, runtime = pod_rt
    api = cri_api()[1]
    rs = cri.runtime
    name = f"it-{uuid.uuid4().hex[:8]}"
    pod_config = cri.pod_config(name)
    pod = rs.RunPodSandbox(api.RunPodSandboxRequest(
        config=pod_config, runtime_handler=cri.handlers[runtime]), timeout=TIMEOUT).pod_sandbox_id
    status = rs.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod),
                                 timeout=TIMEOUT).status
    address = status.network.ip
    assert status.state == api.SANDBOX_READY and address.startswith("10.88.71."), status
    cid = rs.CreateContainer(api.CreateContainerRequest(
        pod_sandbox_id=pod, sandbox_config=pod_config,
        config=cri.container_config("web", ("busybox", "httpd", "-f", "-p", "80", "-h",
                                            "/www"), cpu_shares=256,
                                    memory_limit_in_bytes=64 << 20)),
        timeout=TIMEOUT).container_id
    rs.StartContainer(api.StartContainerRequest(container_id=cid), timeout=TIMEOUT)

    out = rs.ExecSync(api.ExecSyncRequest(container_id=cid, cmd=["sh", "-c",
                                                                   "hostname; exit 4"],
                                          timeout=20), timeout=TIMEOUT)
    assert out.exit_code == 4 and out.stdout.decode() == f"{name}\n", out

    # the pod's address answers from outside the pod (the sandbox's network namespace)
    proc = sandbox.http_get_until(cri.box, f"http://{address}/index.html")
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
