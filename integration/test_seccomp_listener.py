"""linux.seccomp.listenerPath: the runtime hands the seccomp listener fd and the state to
the agent listening there (runtime-spec config-linux.md, seccomp)."""
import array
import json
import os
import socket
import threading

import pytest

from integration import itlib


class Agent:
    """An AF_UNIX listener in the test's directory: records the payload and the fds of the
    first connection."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(3)  # the hand-off happens during create
        self.payload, self.fds, self.error = None, [], None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                fds = array.array("i")
                msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * fds.itemsize))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                self.fds = list(fds)
                while True:  # the fd comes with the first part, the rest may follow
                    more = conn.recv(65536)
                    if not more:
                        break
                    msg += more
                self.payload = msg
        except OSError as e:
            self.error = e

    def close(self):
        self.thread.join(10)
        for fd in self.fds:
            os.close(fd)
        self.sock.close()


@pytest.mark.crun_oracle
def test_listener_path_without_a_notify_rule_still_gets_the_fd(runtime, bundle, workdir,
                                                               request):
    # spec: the runtime sends the state over listenerPath "when the SCMP_ACT_NOTIFY action is
    # used"; with a listenerPath and no such rule crun sends it anyway (the agent gets a
    # listener no call will ever notify) and runc sends nothing, so the agent waits
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 sends nothing without an SCMP_ACT_NOTIFY rule"))
    agent = Agent(os.path.join(workdir, "agent.sock"))
    try:
        b = bundle.make("b")
        b.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path,
            "listenerMetadata": "conform",
            "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}
        cid = itlib.new_id()
        proc = runtime.run(b, cid)
        assert proc.returncode == 0, proc.stderr
        agent.thread.join(10)
        assert agent.error is None and agent.payload, agent.error
        message = json.loads(agent.payload)
        assert message["fds"] == ["seccompFd"] and len(agent.fds) == 1
        assert message["metadata"] == "conform"
        assert message["state"]["id"] == cid
        if runtime.name == "pyrunc":
            # "the version of the ... Runtime Specification with which the container process
            # state complies": the bundle's (crun sends its own constant, 0.2.0)
            assert message["ociVersion"] == b.config["ociVersion"]
        # the fd is a seccomp listener (anon inode "[seccomp notify]")
        assert os.readlink(f"/proc/self/fd/{agent.fds[0]}") == "anon_inode:seccomp notify"
    finally:
        agent.close()
