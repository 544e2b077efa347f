"""What the init processes need, prepared by the parent before fork, and the sync channel.

The channel is a SOCK_SEQPACKET socketpair: one JSON message per packet, so a message is
never split or merged, and EOF tells the parent that the child exec'd or died.
"""
import _socket
import posix
import sys

from pyrunc import fastjson
from pyrunc.errors import PyruncError


MAX_FDS = 64  # in one message (mount sources travel in batches of this many)


class Channel:
    def __init__(self, sock):
        self.sock = sock

    # _socket, not socket: the socket module's enums cost milliseconds on every start
    @classmethod
    def pair(cls):
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, kind, fds=(), **fields):
        fields["type"] = kind
        data = fastjson.dumps(fields).encode()
        if fds:
            packed = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, packed)])
        else:
            self.sock.send(data)

    def recv(self):
        """The next message, or None at EOF (the other side exec'd or exited).

        File descriptors sent with it (SCM_RIGHTS) are in msg["fds"], close-on-exec: none
        may reach the container's process.
        """
        data, ancdata, flags, _ = self.sock.recvmsg(65536, _socket.CMSG_SPACE(4 * MAX_FDS),
                                                    _socket.MSG_CMSG_CLOEXEC)
        if not data:
            return None
        fds = []
        for level, kind, payload in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                        for i in range(0, len(payload) - 3, 4)]
        if flags & _socket.MSG_CTRUNC:
            # the kernel drops the descriptors it has no slot for: RLIMIT_NOFILE
            for fd in fds:
                posix.close(fd)
            raise PyruncError("descriptors from the runtime were dropped: RLIMIT_NOFILE "
                              "(process.rlimits) leaves this process no free one")
        msg = fastjson.loads(data)
        msg["fds"] = fds
        return msg

    def expect(self, kind):
        msg = self.recv()
        if msg is None:
            raise PyruncError(f"the runtime went away while waiting for {kind!r}")
        if msg["type"] != kind:
            raise PyruncError(f"protocol error: expected {kind!r}, got {msg['type']!r}")
        return msg

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


class Context:
    """Everything one init needs. `config` is the spec model (see pyrunc/spec/model.py)."""

    def __init__(self, config, bundle, container_id):
        self.config = config
        self.bundle = bundle
        self.id = container_id
        self.rootfs = None
        self.ns = None              # namespaces.Plan
        self.runtime_ns = None      # the parent's pid/time namespaces, while it forks the init
        self.cgroup = None          # cgroups.Cgroup, or None when cgroups are not managed
        self.caps = None            # capabilities.CapSets or None (keep the runtime's)
        self.seccomp = None         # seccomp.Filter or None
        self.idmap_fds = None       # {mount index: user namespace fd} for idmapped mounts
        self.sources_from_runtime = False  # the parent opens the bind sources (mountsrc.py)
        self.mount_sources = None   # the indexes of those mounts
        self.runtime_in_userns = False  # pyrunc itself runs in a user namespace not the host's
        self.mount_fds = None       # {mount index: (fd, "path" or "tree")}, from the parent
        self.device_sources = None  # linux.devices indexes whose nodes the parent makes
        self.device_fds = None      # {device index: fd of the node's detached bind}
        self.channel = None         # Channel to the parent
        self.fifo_fd = None         # exec.fifo, read-write (create only; the init asks for it)
        self.fifo_write_fd = None   # exec.fifo opened for writing: open until exec (CLOEXEC)
        self.console_fd = None      # --console-socket, connected
        self.preserve_fds = 0
        self.listen_fds = 0         # the first of them are LISTEN_FDS (socket activation)
        self.passed_fds = None      # which of them the caller passed (None: all)
        self.no_pivot = False
        self.exec_mode = False      # `pyrunc exec`: join an existing container
        self.root_of = None         # exec, no mount namespace: the init whose root to enter
        self.process = config.process
        self.explain = None         # callable(str) for --explain / --debug
        self.debug = False
        self.fail_step = (posix.environ.get(b"PYRUNC_FAIL_STEP") or b"").decode() or None
        self.do_exec = None         # the prepared execve, set by the resolve_exec step
        self.cwd_done = False       # the cwd_early step changed to process.cwd already
        self.nofile_deferred = None  # RLIMIT_NOFILE's soft limit, set by rlimit_nofile
        self.filter_step = None     # the step that loaded the seccomp filter, once it has
        self.state = None           # base of the state given to hooks (set by the parent)

    def hook_state(self, status):
        """State for hooks the init runs: they live in the container's namespaces, so the
        pid is the one the container sees (runc does the same)."""
        return dict(self.state, status=status, pid=posix.getpid())

    @property
    def linux(self):
        return self.config.linux

    def setting(self, key):
        """A field of config.linux, None when it or linux is absent."""
        return getattr(self.config.linux, key, None) if self.config.linux is not None else None

    @property
    def in_userns(self):
        # the container's own, or the runtime's (rootless podman runs it as uid 0 of one)
        return self.ns.has("user") or self.runtime_in_userns
