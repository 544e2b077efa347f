"""Container state on disk: ROOT/ID/{state.json, config.json, exec.fifo}.

Status is derived from the live process every time it is read, as runc does: a pid
whose start time differs from the recorded one is another process (pid reuse), so the
container is stopped. `exec.fifo` exists from create until start.
"""
import fcntl
import posix
import time

from pyrunc import fastjson, paths
from pyrunc.errors import PyruncError

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    if not cid or not ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise PyruncError(f"invalid container id {cid!r}: use letters, digits, _ + - .")
    return cid


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), and the state letter."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None, None
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[19]), rest[0].decode()


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class Container:
    """One container's directory under --root; `data` is state.json's content."""

    def __init__(self, root, cid):
        self.root = root
        self.id = cid
        self.dir = paths.join(root, cid)
        self.data = None
        self._lock_fd = None

    @property
    def state_file(self):
        return paths.join(self.dir, "state.json")

    @property
    def fifo(self):
        return paths.join(self.dir, "exec.fifo")

    @property
    def config_file(self):
        return paths.join(self.dir, "config.json")

    # -- existence and locking
    @classmethod
    def new(cls, root, cid):
        c = cls(root, check_id(cid))
        paths.makedirs(root, 0o700)
        try:
            posix.mkdir(c.dir, 0o711)
        except FileExistsError:
            raise PyruncError(f"container {cid} already exists") from None
        c.lock()
        return c

    @classmethod
    def load(cls, root, cid, lock=True):
        c = cls(root, check_id(cid))
        if lock:
            try:
                c.lock()
            except FileNotFoundError:
                raise PyruncError(f"container {cid} does not exist") from None
        try:
            with open(c.state_file, "rb") as f:
                c.data = fastjson.loads(f.read())
        except FileNotFoundError:
            c.unlock()
            raise PyruncError(f"container {cid} does not exist") from None
        except ValueError:
            c.unlock()
            raise PyruncError(f"container {cid}: state file is corrupt") from None
        return c

    def lock(self):
        """Serialise commands on one id: an exclusive flock on the container directory."""
        fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def unlock(self):
        if self._lock_fd is not None:
            posix.close(self._lock_fd)
            self._lock_fd = None

    # -- state.json
    def save(self):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(self.data))
        posix.rename(tmp, self.state_file)

    @property
    def pid(self):
        return self.data.get("pid", 0)

    def status(self):
        pid = self.pid
        if not pid:
            return "stopped"
        start, letter = proc_start_time(pid)
        if start is None or start != self.data.get("pidStartTime") or letter in ("Z", "X"):
            return "stopped"
        if paths.exists(self.fifo):
            return "created"
        if self.data.get("paused"):
            return "paused"
        return "running"

    def public_state(self):
        """The runtime-spec state, plus runc's `created`, `rootfs` and `owner`."""
        d = self.data
        status = self.status()
        state = {"ociVersion": d["ociVersion"], "id": self.id, "status": status,
                 "pid": d["pid"] if status != "stopped" else 0, "bundle": d["bundle"],
                 "rootfs": d["rootfs"], "created": d["created"], "owner": d.get("owner", "")}
        if d.get("annotations"):
            state["annotations"] = d["annotations"]
        return state

    def hook_state(self, status=None):
        """The state given to hooks on stdin (runtime-spec fields only)."""
        d = self.data
        state = {"ociVersion": d["ociVersion"], "id": self.id,
                 "status": status or self.status(), "pid": d.get("pid", 0),
                 "bundle": d["bundle"], "annotations": d.get("annotations") or {}}
        return state

    # -- the cgroup directories of a create in progress: what `delete --force` removes when
    # that create was killed before it saved state.json (which then holds them)
    def record_cgroups(self, dirs):
        with open(paths.join(self.dir, "cgroups"), "w") as f:
            f.write("".join(d + "\n" for d in dirs.values()))

    def recorded_cgroups(self):
        try:
            with open(paths.join(self.dir, "cgroups")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def remove(self):
        for name in posix.listdir(self.dir):
            posix.unlink(paths.join(self.dir, name))
        posix.rmdir(self.dir)
        self.unlock()


def list_ids(root):
    try:
        names = posix.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if paths.isfile(paths.join(root, n, "state.json")))
