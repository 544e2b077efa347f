"""Lifecycle: create/start/state/kill/delete as seen from the host, stdio after create, errors."""
import os
import re
import select
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from integration import itlib


def started_holding(runtime, b, cid):
    """create + start a probe that holds; wait for its report; return the state."""
    assert runtime.create(b, cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    runtime.wait_output(cid, lambda t: "\n" in t)
    return runtime.state(cid)


def test_state_fields_through_the_lifecycle(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    before = datetime.now(timezone.utc)
    assert runtime.create(b, cid).returncode == 0
    after = datetime.now(timezone.utc)
    state = runtime.state(cid)
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", state["ociVersion"])
    assert state["id"] == cid
    assert state["status"] == "created"
    assert state["bundle"] == b.path
    assert state["rootfs"] == b.rootfs
    # runc's extension fields, which `runc state` users read
    created = itlib.parse_created(state["created"])
    assert before - timedelta(seconds=1) <= created <= after + timedelta(seconds=1)
    assert isinstance(state["owner"], str)
    # the pid is a live process, waiting in a pid namespace of its own
    pid = state["pid"]
    assert itlib.alive(pid)
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino

    assert runtime.start(cid).returncode == 0
    running = runtime.wait_status(cid, "running")
    assert running["pid"] == pid and running["created"] == state["created"]

    assert runtime.kill(cid, "KILL").returncode == 0
    runtime.wait_status(cid, "stopped")
    assert itlib.wait_gone(pid)


def test_create_leaves_caller_stdio_with_the_container(runtime, bundle):
    # terminal false: the container's stdin/stdout/stderr are the pipes given to `create`,
    # still open after create has exited, and they reach the caller once started
    b = bundle.make("b", "stdin", "err=to-stderr")
    cid = itlib.new_id()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = runtime.create(b, cid, stdin=in_r, stdout=out_w, stderr=err_w)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        assert proc.returncode == 0
        os.write(in_w, b"hello from the caller\n")
        os.close(in_w)
        in_w = None
        assert runtime.start(cid).returncode == 0
        out = read_until_eof(out_r)
        err = read_until_eof(err_r)
    finally:
        for fd in (in_w, out_r, err_r):
            if fd is not None:
                os.close(fd)
    report = itlib.parse_report(out)
    assert report.result("stdin")["text"] == "hello from the caller\n"
    assert report["fds"]["0"].startswith("pipe:") and report["fds"]["1"].startswith("pipe:")
    assert "to-stderr\n" in err


def read_until_eof(fd, timeout=itlib.TIMEOUT):
    """Read a pipe to EOF: EOF means every holder, the container included, closed it."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no EOF within {timeout}s; read so far: {b''.join(chunks)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data = os.read(fd, 65536)
            if not data:
                return b"".join(chunks).decode()
            chunks.append(data)


@pytest.mark.parametrize("forms", [("TERM", "SIGTERM", "15"), ("USR1",)])
def test_kill_signal_names_and_numbers(runtime, bundle, forms):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    started_holding(runtime, b, cid)
    for count, sig in enumerate(forms, 1):
        assert runtime.kill(cid, sig).returncode == 0, sig
        text = runtime.wait_output(cid, lambda t: len(itlib.events(t)) >= count)
        got = itlib.events(text)[count - 1]["signal"]
        # the probe prints the number the kernel delivered
        assert got == {"TERM": 15, "SIGTERM": 15, "15": 15, "USR1": 10}[sig], sig
    assert runtime.state(cid)["status"] == "running"


def test_kill_default_signal_is_term(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    started_holding(runtime, b, cid)
    assert runtime.kill(cid).returncode == 0
    text = runtime.wait_output(cid, lambda t: len(itlib.events(t)) >= 1)
    assert itlib.events(text) == [{"signal": 15}]


def test_kill_unknown_signal_fails(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    started_holding(runtime, b, cid)
    proc = runtime.kill(cid, "NOTASIGNAL")
    assert proc.returncode != 0
    assert runtime.state(cid)["status"] == "running"


def test_delete_removes_state_and_process(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    pid = started_holding(runtime, b, cid)["pid"]
    started = itlib.start_time(pid)
    assert runtime.kill(cid, "KILL").returncode == 0
    runtime.wait_status(cid, "stopped")
    assert runtime.delete(cid).returncode == 0
    assert_gone(runtime, cid, pid, started)


def test_delete_force_of_running_container(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    pid = started_holding(runtime, b, cid)["pid"]
    started = itlib.start_time(pid)
    assert runtime.delete(cid, force=True).returncode == 0
    assert_gone(runtime, cid, pid, started)


def test_delete_force_of_created_container(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    pid = runtime.state(cid)["pid"]
    started = itlib.start_time(pid)
    assert runtime.delete(cid, force=True).returncode == 0
    assert_gone(runtime, cid, pid, started)


def assert_gone(runtime, cid, pid, started):
    assert itlib.wait_gone(pid, started), f"container process {pid} survived delete"
    assert not [n for n in os.listdir(runtime.root) if cid in n], "state left under --root"
    assert runtime.state_cp(cid).returncode != 0
    assert cid not in runtime.list().stdout


def test_start_twice_fails(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    pid = started_holding(runtime, b, cid)["pid"]
    proc = runtime.start(cid)
    assert proc.returncode != 0
    # the failed start left the running container alone
    state = runtime.state(cid)
    assert state["status"] == "running" and state["pid"] == pid


def test_start_of_stopped_container_fails(runtime, bundle):
    b = bundle.make("b")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    runtime.wait_status(cid, "stopped")
    assert runtime.start(cid).returncode != 0
    assert runtime.state(cid)["status"] == "stopped"


def test_delete_of_running_container_without_force_fails(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    pid = started_holding(runtime, b, cid)["pid"]
    proc = runtime.delete(cid)
    assert proc.returncode != 0
    state = runtime.state(cid)
    assert state["status"] == "running" and state["pid"] == pid and itlib.alive(pid)


def test_duplicate_id_fails_and_keeps_the_first(runtime, bundle):
    first = bundle.make("first", "hold=30")
    second = bundle.make("second", "hold=30")
    cid = itlib.new_id()
    assert runtime.create(first, cid).returncode == 0
    state = runtime.state(cid)
    before = itlib.pids()
    proc = runtime.create(second, cid)
    assert proc.returncode != 0
    after = runtime.state(cid)
    assert (after["status"], after["pid"], after["bundle"]) == ("created", state["pid"],
                                                               first.path)
    assert itlib.alive(state["pid"])
    assert not itlib.leftover_processes(before, [second.path, "runc init", "/probe"])


@pytest.mark.parametrize("command", [["create", "--bundle", "BUNDLE"], ["start"], ["state"],
                                     ["kill"], ["delete"], ["delete", "--force"]])
def test_commands_without_id_fail(runtime, bundle, command):
    b = bundle.make("b")
    b.save()
    args = [b.path if a == "BUNDLE" else a for a in command]
    proc = runtime.cmd(*args)
    assert proc.returncode != 0
    assert proc.stderr.strip(), "a usage error says what is wrong"
    # nothing was made under --root
    assert not os.path.isdir(runtime.root) or os.listdir(runtime.root) == []


def test_delete_force_of_unknown_id_succeeds(runtime):
    proc = runtime.delete("it-never-created", force=True)
    assert proc.returncode == 0, proc.stderr


def test_delete_of_unknown_id_without_force_fails(runtime):
    assert runtime.delete("it-never-created").returncode != 0


def test_state_of_unknown_id_fails(runtime):
    assert runtime.state_cp("it-never-created").returncode != 0


def test_list_shows_created_container(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    listing = runtime.list()
    assert listing.returncode == 0
    line = [ln for ln in listing.stdout.splitlines() if ln.split()[:1] == [cid]]
    assert line and "created" in line[0].split()


# ---- bad input: exit 1, one line for pyrunc, nothing left behind ----

def test_bad_mount_option_fails_cleanly(runtime, bundle):
    b = bundle.make("b")
    b.add_mount("/data", "tmpfs", "tmpfs", ["size=notanumber"])
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.create(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid, "runc init", "/probe"])


def test_missing_bundle_fails_cleanly(runtime, workdir):
    cid = itlib.new_id()
    missing = os.path.join(workdir, "no-such-bundle")
    before = itlib.pids()
    proc = runtime.cmd("create", "--bundle", missing, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid, "runc init"])


def test_bad_json_fails_cleanly(runtime, bundle):
    b = bundle.make("b")
    cid = itlib.new_id()
    with open(os.path.join(b.path, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "process": ')
    before = itlib.pids()
    proc = runtime.cmd("create", "--bundle", b.path, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid, "runc init"])


def test_missing_executable_fails_run(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["args"] = ["/no/such/program"]
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    assert proc.returncode != 0
    assert runtime.state_cp(cid).returncode != 0
    assert not itlib.leftover_processes(before, [cid, "runc init"])


RUNC_SPEC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def test_runc_specs_default_capabilities_say_nothing_on_stderr(runtime, bundle):
    """`runc spec` (1.1) lists ambient capabilities without inheritable: the kernel cannot
    raise them; runc is silent, and so is pyrunc on stderr (docker and podman show a
    runtime's stderr on every run). The --log file has it."""
    b = bundle.make("b")
    b.probe_args()
    b.config["process"]["capabilities"] = {k: RUNC_SPEC_CAPS for k in (
        "bounding", "effective", "permitted", "ambient")}
    b.save()
    cid = itlib.new_id()
    runtime._track(cid)
    proc = subprocess.run([*runtime.argv, "--root", runtime.root, "run", "--bundle", b.path,
                           cid], capture_output=True, text=True, timeout=itlib.TIMEOUT)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    if runtime.name == "pyrunc":
        with open(runtime.log) as f:
            text = f.read()
        assert '"level": "info"' in text.replace('":"', '": "') and \
            "process.capabilities.ambient[0]" in text, text
