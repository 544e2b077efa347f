"""SCMP_ACT_NOTIFY: the runtime hands the init's listener fd to linux.seccomp.listenerPath."""
from pyrunc import fastjson
from pyrunc.errors import PyruncError
from pyrunc.linux.seccomp import STEP


def send_listener(listener_path, listener_fd, state, metadata):
    """Send the containerProcessState (runtime-spec config-linux.md, "seccomp") to the agent:
    one connection, the JSON as payload, the listener fd by SCM_RIGHTS with the first
    sendmsg, named "seccompFd" in `fds`. `state` is the container's state (runtime.md)."""
    import socket
    message = {"ociVersion": state["ociVersion"], "fds": ["seccompFd"], "pid": state["pid"],
               "state": state}
    if metadata is not None:
        message["metadata"] = metadata
    data = fastjson.dumps(message).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(listener_path)
            sent = socket.send_fds(sock, [data], [listener_fd])
            sock.sendall(data[sent:])   # fds only with the first sendmsg, as the spec asks
    except OSError as err:
        raise PyruncError(f"cannot send the seccomp listener fd to {listener_path}: "
                          f"{err.strerror or err}", path="linux.seccomp.listenerPath",
                          step=STEP, errno=err.errno) from None
