"""Container state on disk: ROOT/ID/{state.json, config.json, exec.fifo}.

Status is derived from the live process every time it is read, as runc does: a pid
whose start time differs from the recorded one is another process (pid reuse), so the
container is stopped. `exec.fifo` exists from create until start.

Every path is made from an id that check_id accepted (Container does it), so nothing
outside ROOT/ID is ever touched. The files are private (0600) whatever the umask, and a
root that another user owns or can write is refused: state.json names the hooks that
`delete` runs as root. A state.json that does not parse or lacks its fields raises
CorruptState naming the file, which `list` marks and `delete --force` cleans up.
"""
import fcntl
import posix
import time

from pyrunc import fastjson, paths
from pyrunc.errors import PyruncError

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """Letters, digits, _ + - . and no leading . (as crun: no hidden state directory)."""
    if not isinstance(cid, str) or not cid:
        raise PyruncError(f"invalid container ID {cid!r}: use letters, digits, _ + - .")
    bad = next((c for c in cid if c not in ID_CHARS), None)
    if bad is not None or cid[0] == ".":
        what = f"invalid character {bad!r}" if bad is not None else "invalid leading '.'"
        raise PyruncError(f"{what} in container ID {cid!r}: use letters, digits, _ + - . "
                          "(not first)")
    return cid


def check_root(root):
    """Refuse a state root that another user owns or can write: they could plant a
    container's state (its poststop hooks run as root at delete). Missing is fine."""
    try:
        st = posix.stat(root)
    except FileNotFoundError:
        return
    uid = posix.geteuid()
    if st.st_uid != uid or st.st_mode & 0o022:
        raise PyruncError(f"state root {root} is owned by uid {st.st_uid} with mode "
                          f"{st.st_mode & 0o7777:o}: it must be owned by uid {uid} and "
                          "writable by no one else")


class CorruptState(PyruncError):
    """state.json is unreadable as a state; `data` holds what did parse (or None)."""

    def __init__(self, message, data=None):
        super().__init__(message)
        self.data = data


# state.json's fields every command relies on, and their types
STATE_FIELDS = (("ociVersion", str), ("id", str), ("pid", int), ("bundle", str),
                ("rootfs", str), ("created", str))


def state_problem(data):
    """Why a parsed state.json is not a state, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, kind in STATE_FIELDS:
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            return f"{key} is missing or not {'an integer' if kind is int else 'a string'}"
    if not isinstance(data.get("pidStartTime"), (int, type(None))):
        return "pidStartTime is not an integer"
    dirs = data.get("cgroupPaths")
    if dirs is not None and not (isinstance(dirs, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in dirs.items())):
        return "cgroupPaths is not an object of paths"
    if not isinstance(data.get("hookKinds", []), list) or \
            not isinstance(data.get("annotations") or {}, dict):
        return "hookKinds or annotations has the wrong type"
    return None


def write_private(path, text):
    """Write a file only its owner can read (0600), whatever the caller's umask."""
    fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_NOFOLLOW |
                    posix.O_CLOEXEC, 0o600)
    try:
        posix.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        data = text.encode()
        while data:
            data = data[posix.write(fd, data):]
    finally:
        posix.close(fd)


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
        self.id = check_id(cid)
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
        c = cls(root, cid)
        try:
            paths.makedirs(root, 0o700)
        except PermissionError:
            hint = (" (without root: set XDG_RUNTIME_DIR, or --root DIR)"
                    if posix.geteuid() != 0 else "")
            raise PyruncError(f"state root {root}: permission denied{hint}") from None
        check_root(root)
        try:
            posix.mkdir(c.dir, 0o711)  # as runc's container directories: clients traverse it
        except FileExistsError:
            raise PyruncError(f"container {cid} already exists") from None
        posix.chmod(c.dir, 0o711)  # mkdir's mode passed through the umask
        c.lock()
        return c

    @classmethod
    def load(cls, root, cid, lock=True):
        c = cls(root, cid)
        check_root(root)
        if lock:
            try:
                c.lock()
            except FileNotFoundError:
                raise PyruncError(f"container {cid} does not exist") from None
        try:
            fd = posix.open(c.state_file, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_CLOEXEC)
            with open(fd, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            c.unlock()
            raise PyruncError(f"container {cid} does not exist") from None
        except OSError as e:  # a directory, a symlink (ELOOP), unreadable
            c.unlock()
            raise CorruptState(f"{c.state_file}: corrupt state ({e.strerror})") from None
        try:
            data = fastjson.loads(text)
        except (ValueError, RecursionError, SystemError):
            # SystemError: _json's scanner on some truncated input (fastjson's own concern)
            data, why = None, "not valid JSON"
        else:
            why = state_problem(data)
            if why is None and data["id"] != cid:
                why = f"it names container {data['id']!r}"
        if why is not None:
            c.unlock()
            raise CorruptState(f"{c.state_file}: corrupt state ({why})", data)
        c.data = data
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
        write_private(tmp, fastjson.dumps(self.data))
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
        write_private(paths.join(self.dir, "cgroups"), "".join(d + "\n" for d in dirs.values()))

    def recorded_cgroups(self):
        try:
            with open(paths.join(self.dir, "cgroups")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    # -- the rootfs bind a container without a mount namespace made in the runtime's
    def record_host_mount(self, point, mount_id):
        write_private(paths.join(self.dir, "hostmount"), f"{mount_id} {point}\n")

    def recorded_host_mount(self):
        """(mount id, mount point) or None."""
        try:
            with open(paths.join(self.dir, "hostmount")) as f:
                mount_id, _, point = f.read().rstrip("\n").partition(" ")
        except FileNotFoundError:
            return None
        return (int(mount_id), point) if mount_id.isdigit() and point else None

    def remove(self):
        fd = posix.open(self.dir, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW |
                        posix.O_CLOEXEC)
        try:
            _empty(fd)
        finally:
            posix.close(fd)
        posix.rmdir(self.dir)
        self.unlock()


def _empty(dir_fd):
    """Remove what a directory holds, through its fd: a symlink is removed, never followed
    (a damaged container directory may hold anything)."""
    for name in posix.listdir(dir_fd):
        try:
            posix.unlink(name, dir_fd=dir_fd)
        except IsADirectoryError:
            sub = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW |
                             posix.O_CLOEXEC, dir_fd=dir_fd)
            try:
                _empty(sub)
            finally:
                posix.close(sub)
            posix.rmdir(name, dir_fd=dir_fd)


def list_ids(root):
    check_root(root)
    try:
        names = posix.listdir(root)
    except FileNotFoundError:
        return []
    # any state.json, even one that is not a file: `list` shows it as corrupt
    return sorted(n for n in names if ID_CHARS.issuperset(n) and n not in (".", "..")
                  and _lexists(paths.join(root, n, "state.json")))


def _lexists(path):
    try:
        posix.lstat(path)
        return True
    except OSError:
        return False
