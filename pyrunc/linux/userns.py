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
