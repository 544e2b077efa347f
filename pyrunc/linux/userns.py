"""User namespaces: the uid/gid maps, written by the parent (in the host's namespaces)."""
from pyrunc.errors import PyruncError


def map_text(mappings):
    return "".join(f"{m.containerID} {m.hostID} {m.size}\n" for m in mappings)


def write_maps(pid, uid_mappings, gid_mappings):
    """Write /proc/PID/{uid,gid}_map. As root in the parent user namespace no setgroups deny
    is needed; the kernel checks each range against the writer's rights."""
    for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        key = "uidMappings" if name == "uid_map" else "gidMappings"
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(map_text(maps))
        except OSError as e:
            raise PyruncError(f"write {name}: {e.strerror}", path=f"linux.{key}",
                              step="uid_gid_maps", errno=e.errno) from None


def check_subordinate(linux, euid, egid, user, subuid="/etc/subuid", subgid="/etc/subgid"):
    """Without root, maps may only name the caller's own id and its subordinate ranges
    (/etc/subuid, /etc/subgid, as newuidmap enforces): say which mapping is outside them,
    before anything starts. Root may map any host id."""
    if euid == 0:
        return
    own = {"uidMappings": euid, "gidMappings": egid}
    for key, path in (("uidMappings", subuid), ("gidMappings", subgid)):
        ranges = [(own[key], own[key] + 1)] + _subordinate_ranges(path, user, euid)
        for i, m in enumerate(getattr(linux, key) or ()):
            if not any(lo <= m.hostID and m.hostID + m.size <= hi for lo, hi in ranges):
                raise PyruncError(f"host ids {m.hostID}-{m.hostID + m.size - 1} are not "
                                  f"yours: not your id, nor in your ranges in {path}",
                                  path=f"linux.{key}[{i}]", step="uid_gid_maps")


def _subordinate_ranges(path, user, uid):
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
