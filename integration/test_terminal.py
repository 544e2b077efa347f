"""process.terminal: the pseudo-terminal the runtime gives the process, as the process sees
it (its tty, the window size, /dev/console, a controlling terminal) and through the console
socket. Every test makes its own pty for the runtime's stdio, so that they run in CI, where
the suite has no terminal."""
import array
import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time

import pytest

from integration import itlib

# the container's view, one line each: its tty, the window size, /dev/console (type and
# device numbers), its session and controlling tty (fields 6 and 7 of /proc/self/stat)
# (the pause at the end: crun may exit before it has copied the last of the pty out)
REPORT = ("tty; stty size; stat -c '%F %t:%T' /dev/console; "
          "cut -d' ' -f6,7 /proc/self/stat; echo done; sleep 0.3")


def pty_with_size(rows, cols):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def read_all(master, timeout=10):
    """What the pty master gives until the last slave closes (EIO)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every slave is closed
                break
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace").replace("\r", "")


def run_on_pty(argv, rows=40, cols=100, timeout=10):
    """argv with a new pty of the test's as its controlling terminal and stdio."""
    master, slave = pty_with_size(rows, cols)

    def controlling():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling)
    os.close(slave)
    try:
        text = read_all(master, timeout)
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, text


def run_in_foreground(runtime, b, rows, cols):
    """`run` of bundle b without --console-socket, on a pty of the test's of that size."""
    runtime._save(b)
    cid = itlib.new_id()
    runtime._track(cid)
    return run_on_pty(runtime.command("run", "--bundle", b.path, cid), rows, cols)


def parse(text):
    lines = [line for line in text.split("\n") if line.strip()]
    end = lines.index("done")
    tty, size, console, stat = lines[end - 4:end]
    return tty, size, console, stat.split()


def terminal_bundle(bundle, args):
    b = bundle.make("b")
    b.config["process"]["terminal"] = True
    b.config["process"]["args"] = args
    return b


@pytest.mark.crun_oracle
def test_run_in_the_foreground_gives_the_process_a_terminal(runtime, bundle):
    # no --console-socket: the runtime holds the pty master and copies it to its own stdio
    # (here the test's pty); the process's terminal takes that terminal's size
    b = terminal_bundle(bundle, ["sh", "-c", REPORT])
    status, text = run_in_foreground(runtime, b, 40, 100)
    assert status == 0, text
    tty, size, console, (session, tty_nr) = parse(text)
    assert tty.startswith("/dev/pts/"), text
    # runc and crun resize the pty to their terminal's size after the process started: it
    # may still see 0x0 (busybox stty then fails); pyrunc sizes it before
    if runtime.name == "pyrunc" or size[0].isdigit():
        assert size == "40 100"
    # /dev/console is the pty's slave (Unix98 ptys: majors 136-143, in hex here)
    kind, numbers = console.rsplit(" ", 1)
    assert kind == "character special file" and 0x88 <= int(numbers.split(":")[0], 16) <= 0x8f
    assert session == "1" and tty_nr != "0"  # a session leader with a controlling tty


@pytest.mark.crun_oracle
def test_console_socket_and_console_size(runtime, bundle, workdir):
    # create --console-socket: the pty master goes to the socket; process.consoleSize is
    # the window size the process starts with
    b = terminal_bundle(bundle, ["sh", "-c", REPORT])
    b.config["process"]["consoleSize"] = {"height": 33, "width": 77}
    path = os.path.join(workdir, "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    cid = itlib.new_id()
    try:
        proc = runtime.create(b, cid, "--console-socket", path)
        assert proc.returncode == 0, proc.stderr
        conn, _ = server.accept()
        with conn:
            fds = array.array("i")
            _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_LEN(4))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:4])
        master = fds[0]
    finally:
        server.close()
    try:
        assert runtime.start(cid).returncode == 0
        text = read_all(master)
    finally:
        os.close(master)
    tty, size, console, (session, tty_nr) = parse(text)
    assert tty.startswith("/dev/pts/") and size == "33 77", text
    assert session == "1" and tty_nr != "0"


@pytest.mark.crun_oracle
def test_exec_with_a_terminal(runtime, bundle):
    # exec -t: the exec'd process gets a pty of its own as controlling terminal, sized as
    # the caller's terminal
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    status, text = run_on_pty(runtime.command("exec", "-t", cid, "sh", "-c", REPORT), 25, 90)
    assert status == 0, text
    tty, size, _, (session, tty_nr) = parse(text)
    assert tty.startswith("/dev/pts/"), text
    if runtime.name == "pyrunc" or size[0].isdigit():  # as in run: runc and crun race
        assert size == "25 90"
    assert session != "0" and tty_nr != "0"


@pytest.mark.crun_oracle
def test_a_terminal_on_a_read_only_root_without_a_dev_tmpfs(runtime, bundle):
    # /dev is the rootfs's own: /dev/console, the pty's mount point, must be made before
    # the root turns read-only (crun's test terminal-readonly-rootfs-no-dev-tmpfs, which
    # runc 1.1.5 fails in a user namespace)
    b = terminal_bundle(bundle, ["sh", "-c", REPORT])
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/dev"]
    b.config["root"]["readonly"] = True
    status, text = run_in_foreground(runtime, b, 30, 90)
    assert status == 0, text
    tty, size, console, (session, tty_nr) = parse(text)
    kind, numbers = console.rsplit(" ", 1)
    assert kind == "character special file" and 0x88 <= int(numbers.split(":")[0], 16) <= 0x8f
    assert tty.startswith("/dev/pts/") and session == "1" and tty_nr != "0", text
