"""docker (Debian's docker.io 20.10: /usr/sbin/dockerd, /usr/bin/docker) drives the runtime,
as it drives runc: dockerd is started here once, with `--add-runtime it-pyrunc=...` and
`it-runc=...`, its own data root, exec root, pid file, socket, containerd (dockerd's managed
one, under the exec root) and cgroup parent, inside a private mount and network namespace
(integration/sandbox.py): docker0, the user-defined bridge, veths, iptables rules and
docker-proxy never reach the host. Stopped at the end; nothing is left: no process in the
namespace, no cgroup under the parent, no runtime state.

The image is a busybox rootfs (`pyrunc bundle`) through `docker import` (no registry).
Each runtime is called through a logging launcher (sandbox.logging_launcher): the calls
docker makes are kept next to the daemon and docs/CLIENTS.md shows them. The set-up
is integration/clientlib.py's (shared with bench/clients.py).
"""
import os
import time
import uuid

import pytest

from integration import clientlib, sandbox
from integration.clientlib import DOCKER, DOCKERD, WAITER, Docker, Unavailable
from integration.test_clients import (_busybox_rootfs, _new_base, _ok, _runtime_names,
                                      _unavailable, run_in_pty)

IMAGE = "pyrunc-it-busybox"


@pytest.fixture(scope="module")
def docker():
    if os.geteuid() != 0:
        _unavailable("the docker tests need root")
    try:
        clientlib.require(DOCKERD, DOCKER, "unshare", "nsenter",
                          hint="apt-get install docker.io util-linux")
        runtimes = clientlib.runtime_paths(_runtime_names())
    except Unavailable as e:
        _unavailable(str(e))
    base = _new_base("pyrunc-docker-")
    box = sandbox.Sandbox()
    d = Docker(base, box, runtimes)
    problems = []
    try:
        d.start()
        d.import_image(_busybox_rootfs(base, "hello from busybox httpd\n"), IMAGE)
        yield d
    finally:
        if hasattr(d, "daemon"):
            d.clear()
            d.stop()
        problems += clientlib.close_sandbox(box, base, d.cgroup_parent)
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(params=_runtime_names())
def rt(request, docker):
    """(docker, --runtime value); at teardown no container is left, nor runtime state."""
    yield docker, f"it-{request.param}"
    ids = docker.clear()
    left = clientlib.wait_empty(docker.state_root)
    assert not ids, f"containers left: {ids}"
    assert not left, f"runtime state left: {left}"


def _name():
    return f"it-{uuid.uuid4().hex[:10]}"


def _cgroup_file(docker, cid, controller, name):
    with open(f"/sys/fs/cgroup/{controller}/{docker.cgroup_parent}/{cid}/{name}") as f:
        return f.read().strip()


def test_docker_run_rm(rt):
    docker, runtime = rt
    proc = docker("run", "--rm", "--runtime", runtime, IMAGE, "sh", "-c",
                  "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "out\n" and proc.stderr == "err\n"  # and no runtime warning


def test_docker_detached_exec_tty_stop(rt):
    docker, runtime = rt
    name = _name()
    _ok(docker("run", "-d", "--name", name, "--runtime", runtime, IMAGE, *WAITER))
    proc = _ok(docker("exec", name, "sh", "-c", "echo in $(hostname); exit 0"))
    assert proc.stdout.startswith("in ")
    assert docker("exec", name, "sh", "-c", "exit 7").returncode == 7
    status, out = run_in_pty(docker.box.argv(*docker.argv, "exec", "-it", name, "sh", "-c",
                                             "tty; stty size; exit 5"))
    assert status == 5, out
    assert b"/dev/pts/" in out, out
    started = time.monotonic()
    _ok(docker("stop", "-t", "10", name))
    assert time.monotonic() - started < 8  # SIGTERM reached the container's PID 1
    state = _ok(docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name))
    assert state.stdout.split() == ["exited", "0"]
    _ok(docker("rm", name))


def test_docker_pause_unpause_and_stats(rt):
    docker, runtime = rt
    name = _name()
    cid = _ok(docker("run", "-d", "--name", name, "--runtime", runtime, IMAGE,
                     *WAITER)).stdout.strip()
    _ok(docker("pause", name))
    assert _cgroup_file(docker, cid, "freezer", "freezer.state") == "FROZEN"
    assert _ok(docker("inspect", "--format", "{{.State.Status}}", name)).stdout.strip() == \
        "paused"
    _ok(docker("unpause", name))
    assert _cgroup_file(docker, cid, "freezer", "freezer.state") == "THAWED"
    stats = _ok(docker("stats", "--no-stream", "--format", "{{.PIDs}} {{.MemUsage}}", name))
    pids, usage = stats.stdout.split(" ", 1)
    assert int(pids) >= 1 and not usage.startswith("0B"), stats.stdout
    _ok(docker("rm", "-f", name))


def test_docker_cpu_shares_and_memory_reach_the_cgroup(rt):
    """docker sends cpu.shares 0 and blockIO.weight 0 when not asked for them: unset (the
    kernel's 1024, no write to the blkio weight), as runc does."""
    docker, runtime = rt
    plain = _ok(docker("run", "-d", "--runtime", runtime, IMAGE, *WAITER)).stdout.strip()
    limited = _ok(docker("run", "-d", "--runtime", runtime, "--cpu-shares", "512",
                         "--memory", "64m", IMAGE, *WAITER)).stdout.strip()
    assert _cgroup_file(docker, plain, "cpu", "cpu.shares") == "1024"
    assert _cgroup_file(docker, limited, "cpu", "cpu.shares") == "512"
    assert _cgroup_file(docker, limited, "memory", "memory.limit_in_bytes") == str(64 << 20)
    _ok(docker("rm", "-f", plain, limited))


def test_docker_user_bridge_network_publishes_a_port(rt):
    docker, runtime = rt
    net = _name()
    _ok(docker("network", "create", net))
    try:
        name = _name()
        _ok(docker("run", "-d", "--name", name, "--runtime", runtime, "--network", net,
                   "-p", "18080:80", IMAGE, "busybox", "httpd", "-f", "-p", "80", "-h", "/www"))
        # from the sandbox's own network namespace, outside the container: docker-proxy
        # and the DNAT rule lead to the container's address on the bridge
        proc = sandbox.http_get_until(docker.box, "http://127.0.0.1:18080/index.html")
        body = proc.stdout
        assert body == "hello from busybox httpd\n", proc.stderr
        address = _ok(docker("inspect", "--format",
                             "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                             name)).stdout.strip()
        proc = sandbox.http_get(docker.box, f"http://{address}/index.html")
        assert proc.stdout == body, proc.stderr
        _ok(docker("rm", "-f", name))
    finally:
        docker("network", "rm", net)
