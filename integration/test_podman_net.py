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
import time
import uuid

import pytest

from integration import clientlib, itlib, sandbox
from integration.clientlib import NetPodman, Unavailable
from integration.test_clients import (IMAGE, _busybox_rootfs, _new_base, _ok, _runtime_names,
                                      _unavailable)


@pytest.fixture(scope="module")
def podman():
    if os.geteuid() != 0:
        _unavailable("the podman network tests need root")
    try:
        clientlib.require("podman", "conmon", "netavark", "unshare", "nsenter",
                          hint="apt-get install podman netavark")
    except Unavailable as e:
        _unavailable(str(e))
    base = _new_base("pyrunc-podman-net-")
    box = sandbox.Sandbox()
    p = NetPodman(base, box)
    problems = []
    try:
        p.import_image(_busybox_rootfs(base, "hello from busybox httpd\n"), IMAGE)
        yield p
    finally:
        p.clear()
        problems += clientlib.close_sandbox(box, base, p.cgroup_parent)
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
    left = clientlib.wait_empty(podman.state_root(request.param))
    assert not ids, f"containers left: {ids}"
    assert not left, f"runtime state left: {left}"


def _address(podman, runtime, name):
    return _ok(podman(runtime, "inspect", "--format",
                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                      name)).stdout.strip()


def test_podman_bridge_network_publishes_a_port(rt):
    podman, runtime, net = rt
    web = f"it-{uuid.uuid4().hex[:8]}"
    _ok(podman(runtime, *podman.run_args(net, "-d", "--name", web, "-p", "18081:80", IMAGE,
                                         "busybox", "httpd", "-f", "-p", "80", "-h", "/www")))
    # outside the container: the sandbox's own network namespace, through netavark's DNAT
    proc = sandbox.http_get_until(podman.box, "http://127.0.0.1:18081/index.html")
    assert proc.stdout == "hello from busybox httpd\n", proc.stderr
    address = _address(podman, runtime, web)
    assert address.startswith("10."), address
    proc = sandbox.http_get_until(podman.box, f"http://{address}/index.html")
    assert proc.stdout == "hello from busybox httpd\n", proc.stderr
    _ok(podman(runtime, "rm", "--force", "--time", "0", web))


def test_podman_bridge_network_in_a_user_namespace(rt):
    # podman 4.3 with --uidmap: the runtime makes the user and network namespaces, and
    # netavark configures the container's network namespace after create
    podman, runtime, net = rt
    web = f"it-{uuid.uuid4().hex[:8]}"
    _ok(podman(runtime, *podman.run_args(
        net, "-d", "--name", web, "--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536",
        IMAGE, "busybox", "httpd", "-f", "-p", "80", "-h", "/www")))
    address = _address(podman, runtime, web)
    proc = sandbox.http_get_until(podman.box, f"http://{address}/index.html")
    assert proc.stdout == "hello from busybox httpd\n", proc.stderr
    uid_map = _ok(podman(runtime, "exec", web, "cat", "/proc/self/uid_map")).stdout.split()
    assert uid_map == ["0", "300000", "65536"]
    # podman 4.3 once failed to remove the container's shm directory here ("device or
    # resource busy", under runc, 1 run in 10): its own unmount racing; asked again
    for _ in range(5):
        proc = podman(runtime, "rm", "--force", "--time", "0", web)
        if proc.returncode == 0 or "resource busy" not in proc.stderr:
            break
        time.sleep(0.5)
    _ok(proc)


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
