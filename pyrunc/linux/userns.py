"""User namespaces: the uid/gid maps, written by the parent (in the host's namespaces).

As root the parent writes /proc/PID/uid_map and gid_map itself. Without root (rootless
mode) the kernel lets a process map only its own id, size 1 (for gids only once the
namespace's setgroups is denied); any other map goes through Debian's setuid newuidmap and
newgidmap (package uidmap), which allow the ranges /etc/subuid and /etc/subgid give the
user, as runc and crun do.
"""
import posix

from pyrunc.errors import PyruncError

HELPERS = {"uid_map": "newuidmap", "gid_map": "newgidmap"}


_initial = None


def in_initial_userns():
    """True in the host's user namespace, whose uid_map maps all 2^32 ids. Rootless podman
    runs the runtime as uid 0 of a user namespace of its own: root there, not on the host.
    Read once per process."""
    global _initial
    if _initial is None:
        try:
            with open("/proc/self/uid_map") as f:
                _initial = f.read().split() == ["0", "0", "4294967295"]
        except OSError:
            _initial = True
    return _initial


def rootless():
    return posix.geteuid() != 0 or not in_initial_userns()


def map_text(mappings):
    return "".join(f"{m.containerID} {m.hostID} {m.size}\n" for m in mappings)


def write_maps(pid, uid_mappings, gid_mappings, euid=0, egid=0):
    """Write PID's uid_map and gid_map, directly or through newuidmap/newgidmap."""
    for name, maps, own in (("uid_map", uid_mappings, euid), ("gid_map", gid_mappings, egid)):
        key = "linux.uidMappings" if name == "uid_map" else "linux.gidMappings"
        if euid != 0 and not only_own(maps, own):
            _run_helper(HELPERS[name], pid, maps, key)
            continue
        if euid != 0 and name == "gid_map":
            # the kernel's price for an unprivileged gid map: no setgroups in the namespace
            _write(f"/proc/{pid}/setgroups", "deny", key, "setgroups")
        _write(f"/proc/{pid}/{name}", map_text(maps), key, name)


def enter_own_userns():
    """Move this process into a new user namespace that maps its own uid and gid to
    themselves, with a mount namespace of its own in it: a user without root may then
    mount (tmpfs, overlay) there, and what it runs keeps its ids (`pyrunc verify`)."""
    from pyrunc import syscalls as sc
    uid, gid = posix.geteuid(), posix.getegid()
    sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS)
    for name, text in (("uid_map", f"{uid} {uid} 1\n"), ("setgroups", "deny"),
                       ("gid_map", f"{gid} {gid} 1\n")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def only_own(maps, own):
    """True when maps is the one map the kernel lets an unprivileged process write itself."""
    return len(maps) == 1 and maps[0].hostID == own and maps[0].size == 1


def _write(path, text, key, name):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise PyruncError(f"write {name}: {e.strerror}", path=key, step="uid_gid_maps",
                          errno=e.errno) from None


def which(name, path=None):
    """The executable `name` on PATH (or /usr/bin, /bin when PATH is unset), or None."""
    if path is None:
        path = posix.environ.get(b"PATH", b"/usr/bin:/bin").decode()
    for d in path.split(":"):
        candidate = f"{d or '.'}/{name}"
        if posix.access(candidate, posix.X_OK):
            return candidate
    return None


def _run_helper(name, pid, maps, key):
    exe = which(name)
    if exe is None:
        raise PyruncError(f"mapping ids other than your own needs {name} (Debian: apt-get "
                          "install uidmap)", path=key, step="uid_gid_maps")
    argv = [exe, str(pid)] + [str(v) for m in maps for v in (m.containerID, m.hostID, m.size)]
    r, w = posix.pipe()
    try:
        child = posix.posix_spawn(exe, argv, posix.environ, file_actions=[
            (posix.POSIX_SPAWN_DUP2, w, 1), (posix.POSIX_SPAWN_DUP2, w, 2)])
        posix.close(w)
        w = None
        out = b""
        while chunk := posix.read(r, 4096):
            out += chunk
        status = posix.waitstatus_to_exitcode(posix.waitpid(child, 0)[1])
    finally:
        posix.close(r)
        if w is not None:
            posix.close(w)
    if status != 0:
        said = out.decode(errors="replace").strip().replace("\n", "; ")
        raise PyruncError(f"{name} failed (exit {status}): {said}", path=key,
                          step="uid_gid_maps")


def default_mappings(container_id, host_id, ranges):
    """A new user namespace with no maps in the config gets crun's: the caller's id as
    container_id (process.user's), the caller's first subordinate range around it, or,
    without one, root's identity map up to container_id (root) or the caller's id alone as
    0 (without root). [(containerID, hostID, size)]."""
    if ranges:
        first, end = ranges[0]
        available = end - first
        maps = []
        if container_id > 0:
            used = min(container_id, available)
            maps.append((0, first, used))
            first, available = first + used, available - used
        maps.append((container_id, host_id, 1))
        if available:
            maps.append((container_id + 1, first, available))
        return maps
    if host_id == 0:
        return [(0, 0, container_id + 1)]
    return [(0, host_id, 1)]


def check_subordinate(linux, euid, egid, user, subuid="/etc/subuid", subgid="/etc/subgid"):
    """Without root, maps may only name the caller's own id and its subordinate ranges
    (/etc/subuid, /etc/subgid, as newuidmap enforces): say which mapping is outside them,
    before anything starts. Root may map any host id."""
    if euid == 0:
        return
    own = {"uidMappings": euid, "gidMappings": egid}
    for key, path in (("uidMappings", subuid), ("gidMappings", subgid)):
        ranges = [(own[key], own[key] + 1)] + subordinate_ranges(path, user, euid)
        for i, m in enumerate(getattr(linux, key) or ()):
            if not any(lo <= m.hostID and m.hostID + m.size <= hi for lo, hi in ranges):
                raise PyruncError(f"host ids {m.hostID}-{m.hostID + m.size - 1} are not "
                                  f"yours: not your id, nor in your ranges in {path}",
                                  path=f"linux.{key}[{i}]", step="uid_gid_maps")


def subordinate_ranges(path, user, uid):
    """[(first, end)] of the `user:first:count` lines of path naming user (or its uid)."""
    ranges = []
    try:
        with open(path) as f:
            for line in f:
                name, _, rest = line.strip().partition(":")
                first, _, count = rest.partition(":")
                if name in (user, str(uid)) and first.isdigit() and count.isdigit():
                    ranges.append((int(first), int(first) + int(count)))
    except FileNotFoundError:
        pass
    return ranges
