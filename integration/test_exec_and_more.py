"""exec into a running container, the console socket, --no-pivot, namespace paths of the
wrong type, lo, --preserve-fds, kill --all, fault injection: each checked in the kernel."""
import array
import os
import socket
import subprocess

import pytest

from integration import itlib


def running(runtime, b, cid):
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    runtime.wait_output(cid, lambda t: "\n" in t)
    return runtime.state(cid)["pid"]


def test_exec_joins_every_namespace_and_keeps_the_process_settings(runtime, bundle):
    b = bundle.make("b", "hold=30")
    b.config["process"]["capabilities"] = {s: ["CAP_NET_BIND_SERVICE"] for s in
                                           ("bounding", "effective", "permitted")}
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 321, "soft": 123}]
    cid = itlib.new_id()
    pid = running(runtime, b, cid)
    proc = runtime.cmd("exec", cid, "/probe", timeout=10)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    for name in ("pid", "net", "ipc", "uts", "mnt"):
        assert report["ns"][name] == os.stat(f"/proc/{pid}/ns/{name}").st_ino, name
    assert report["status"]["CapEff"] == "0000000000000400"
    assert report["status"]["CapBnd"] == "0000000000000400"
    soft, hard = report["rlimits"]["RLIMIT_NOFILE"]
    assert hard == 321
    # runc 1.1.5 sets an exec'd process's rlimits from outside, racing with it: the probe
    # sees soft 123 or 321 from one run to the next; pyrunc sets them before execve
    assert soft == 123 or (runtime.name == "runc" and soft == 321)
    assert report["pid"] != 1  # a new process beside the init, in its pid namespace
    # only stdio: nothing of the runtime's reaches the exec'd process
    assert sorted(int(fd) for fd in report["fds"]) == [0, 1, 2]


def test_exec_exit_status_env_cwd_user(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    running(runtime, b, cid)
    proc = runtime.cmd("exec", "--env", "EXTRA=1", "--cwd", "/tmp", "--user", "1000:1000",
                       cid, "/probe", "exit=7")
    assert proc.returncode == 7, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert report["cwd"] == "/tmp"
    assert (report["uid"], report["gid"]) == (1000, 1000)
    assert "EXTRA=1" in report["env"]


@pytest.mark.crun_oracle
def test_exec_env_replaces_a_variable_of_the_config(runtime, bundle):
    # crun's test exec/exec-add-environment_variable: `exec --env PATH=...` is the PATH the
    # process sees, not the config's (runc and crun agree)
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    running(runtime, b, cid)
    proc = runtime.cmd("exec", "--env", "PATH=/elsewhere:/bin", cid, "/bin/sh", "-c",
                       'echo "$PATH"')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "/elsewhere:/bin"


def test_exec_into_a_stopped_container_fails(runtime, bundle):
    b = bundle.make("b")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    runtime.wait_status(cid, "stopped")
    assert runtime.cmd("exec", cid, "/probe").returncode != 0


def receive_pty(server):
    conn, _ = server.accept()
    with conn:
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:4])
    return fds[0]


def test_console_socket_receives_the_pty_master(runtime, bundle, workdir):
    b = bundle.make("b")
    b.config["process"]["terminal"] = True
    b.config["process"]["args"] = ["sh", "-c", "tty; echo on-the-pty"]
    path = os.path.join(workdir, "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    cid = itlib.new_id()
    try:
        proc = runtime.create(b, cid, "--console-socket", path)
        assert proc.returncode == 0, proc.stderr
        master = receive_pty(server)
    finally:
        server.close()
    assert runtime.start(cid).returncode == 0
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the container closed the pty
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    text = out.decode().replace("\r", "")
    assert text.startswith("/dev/pts/") or text.startswith("/dev/console"), text
    assert "on-the-pty" in text


def test_no_pivot_chroots(runtime, bundle, probe):
    b = bundle.make("b")
    cid = itlib.new_id()
    b.probe_args()
    proc = runtime.run(b, cid, "--no-pivot")
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    # the root is the bundle's: the probe is there, the host's /etc/hostname is not
    assert any(m["mount_point"] == "/proc" for m in report["mounts"])
    assert report["cwd"] == "/"


def test_namespace_path_of_the_wrong_type_is_refused(runtime, bundle):
    b = bundle.make("b")
    b.namespaces()[:] = [n for n in b.namespaces() if n["type"] != "network"]
    b.namespaces().append({"type": "network", "path": "/proc/self/ns/uts"})
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    if runtime.name == "pyrunc":
        assert "linux.namespaces" in proc.stderr and "not network" in proc.stderr


def _bound_namespace(directory, kind):
    """A new namespace of KIND kept by a bind mount of its nsfs file under DIRECTORY (a
    private mount of its own, as `ip netns add` does with /run/netns): (file, inode)."""
    if directory not in itlib.host_mounts_under(directory):
        subprocess.run(["mount", "--bind", directory, directory], check=True)
        subprocess.run(["mount", "--make-private", directory], check=True)
    path = os.path.join(directory, kind)
    open(path, "w").close()  # the mount point
    subprocess.run(["unshare", f"--{kind}={path}", "true"], check=True)
    return path, os.stat(path).st_ino


def _unbind(directory):
    for point in reversed(itlib.host_mounts_under(directory)):
        subprocess.run(["umount", point], check=True)


def test_a_bind_mounted_namespace_is_joined_and_a_wrong_type_refused(runtime, bundle, probe,
                                                                     workdir):
    """netavark, CNI and `ip netns` keep namespaces as bind mounts of nsfs files: those are
    namespaces too (their /proc/self/fd link reads as a path, not net:[N])."""
    held = os.path.join(workdir, "netns")
    os.mkdir(held)
    try:
        path, inode = _bound_namespace(held, "net")
        _bound_namespace(held, "uts")
        b = bundle.make("b")
        b.namespaces()[:] = [n for n in b.namespaces() if n["type"] != "network"]
        b.namespaces().append({"type": "network", "path": path})
        report = probe(b)
        assert report["ns"]["net"] == inode

        wrong = bundle.make("wrong")
        wrong.namespaces()[:] = [n for n in wrong.namespaces() if n["type"] != "network"]
        wrong.namespaces().append({"type": "network", "path": f"{held}/uts"})
        cid = itlib.new_id()
        before = itlib.pids()
        proc = runtime.run(wrong, cid)
        itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
        if runtime.name == "pyrunc":
            assert "linux.namespaces[" in proc.stderr and "is a uts namespace, not network" \
                in proc.stderr, proc.stderr
    finally:
        _unbind(held)


def test_loopback_is_up_in_a_new_network_namespace(runtime, bundle, probe):
    b = bundle.make("b")
    report = probe(b, "ifflags=lo")
    assert report.result("ifflags=lo")["flags"] & 0x1  # IFF_UP


@pytest.mark.pyrunc_only("the test passes its fds through pyrunc's driver")
def test_preserve_fds_passes_exactly_those(runtime, bundle, workdir):
    b = bundle.make("b")
    b.probe_args()
    b.save()
    r, w = os.pipe()
    extra = os.open(workdir, os.O_RDONLY)
    try:
        # fds 3 and 4 of the runtime are the caller's; 5 (extra) must not reach the process
        os.dup2(r, 3)
        os.dup2(w, 4)
        cid = itlib.new_id()
        runtime._track(cid)
        proc = subprocess.run(runtime.command("run", "--preserve-fds", "2", "--bundle", b.path,
                                              cid), capture_output=True, text=True,
                              pass_fds=(3, 4, extra), timeout=10)
    finally:
        for fd in (r, w, extra):
            os.close(fd)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert sorted(int(fd) for fd in report["fds"]) == [0, 1, 2, 3, 4]
    assert report["fds"]["3"].startswith("pipe:")


def test_kill_all_reaches_every_process(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["args"] = ["sh", "-c", "sleep 30 & sleep 30 & echo ready; wait"]
    cid = itlib.new_id()
    pid = running(runtime, b, cid)
    children = [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    assert len(children) == 2
    assert runtime.cmd("kill", "--all", cid, "KILL").returncode == 0
    for p in [pid] + children:
        assert itlib.wait_gone(p), p


@pytest.mark.pyrunc_only("PYRUNC_FAIL_STEP is pyrunc's fault injection")
def test_fault_in_a_step_names_it_and_leaves_nothing(runtime, bundle):
    b = bundle.make("b")
    cid = itlib.new_id()
    before = itlib.pids()
    b.save()
    runtime._track(cid)
    proc = subprocess.run(runtime.command("run", "--bundle", b.path, cid), text=True,
                          capture_output=True, timeout=10,
                          env=dict(os.environ, PYRUNC_FAIL_STEP="masked_paths"))
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert proc.stderr.rstrip().endswith("[step: masked_paths]")


@pytest.mark.crun_oracle
def test_preserve_fds_passes_over_a_closed_fd(runtime, bundle, workdir, request):
    # fd 3 of the runtime closed, fd 4 open: --preserve-fds 2 gives the process fd 4 and
    # leaves 3 closed. runc and crun hand over whatever is at 3 when they exec: their own
    # --log file, opened on the free number
    if runtime.name != "pyrunc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"{runtime.name} passes its own log file as fd 3"))
    b = bundle.make("b")
    b.probe_args()
    runtime._save(b)
    marker = os.path.join(workdir, "marker")
    open(marker, "w").close()
    cid = itlib.new_id()
    runtime._track(cid)
    proc = subprocess.run(["sh", "-c", 'exec 3<&- 4<"$0"; exec "$@"', marker,
                           *runtime.command("run", "--preserve-fds", "2", "--bundle", b.path,
                                            cid)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    fds = itlib.parse_report(proc.stdout)["fds"]
    assert sorted(int(fd) for fd in fds) == [0, 1, 2, 4]
    assert fds["4"] == marker


@pytest.mark.crun_oracle
def test_socket_activation_fds_reach_the_process_with_listen_pid(runtime, bundle, workdir,
                                                                 request):
    # sd_listen_fds(3): LISTEN_FDS fds from 3, for the process LISTEN_PID names. runc passes
    # them on (before any --preserve-fds) with LISTEN_FDS, and LISTEN_PID the container
    # process's pid as it sees itself, so that the activated program accepts them
    if runtime.name == "crun":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="crun 1.8.1 passes the fds and LISTEN_PID, not LISTEN_FDS"))
    b = bundle.make("b")
    b.probe_args()
    runtime._save(b)
    marker = os.path.join(workdir, "listening")
    open(marker, "w").close()
    cid = itlib.new_id()
    runtime._track(cid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    proc = subprocess.run(["sh", "-c", 'export LISTEN_FDS=1 LISTEN_PID=$$; exec 3<"$0"; '
                           'exec "$@"', marker, *runtime.command("run", "--bundle", b.path, cid)],
                          capture_output=True, text=True, timeout=10, env=env)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert report["fds"]["3"] == marker
    env_in = dict(e.split("=", 1) for e in report["env"])
    assert env_in["LISTEN_FDS"] == "1"
    assert env_in["LISTEN_PID"] == str(report["pid"])


def session_and_group(report):
    """(pgrp, session) of the probe, from its /proc/self/stat in the container's /proc."""
    fields = report.result("read=/proc/self/stat")["head"].rsplit(")", 1)[1].split()
    return int(fields[2]), int(fields[3])


@pytest.mark.crun_oracle
def test_init_and_exec_get_a_session_of_their_own(runtime, bundle, request):
    # as runc: the container's processes lead a session and process group of their own,
    # not the caller's (which lie outside the container's pid namespace: 0 there)
    if runtime.name == "crun":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="crun 1.8.1: an exec'd process keeps the caller's session"))
    b = bundle.make("b", "read=/proc/self/stat", "hold=30")
    cid = itlib.new_id()
    running(runtime, b, cid)
    report = itlib.parse_report(runtime.output(cid))
    assert session_and_group(report) == (1, 1)
    proc = runtime.cmd("exec", cid, "/probe", "read=/proc/self/stat", timeout=10)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert session_and_group(report) == (report["pid"], report["pid"])
