"""Idmapped mounts (spec 1.2: a mount's uidMappings/gidMappings, options idmap/ridmap).

The kernel shifts a mount's file ownership through a user namespace attached to it
(mount_setattr MOUNT_ATTR_IDMAP). The parent makes that namespace before any fork, as a
throw-away process whose maps it writes from the host (so host ids are allowed, whatever
namespace the container has), and keeps only the namespace's fd. The maps are written as
given, in the format of linux.uidMappings: a file owned by containerID on disk is seen as
hostID through the mount (the same mapping as the container's own makes its root-owned
image files appear as its root).
"""
import posix

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError
from pyrunc.linux.userns import map_text

OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_IDMAP = 0x00100000


def wants_idmap(m):
    return bool(m.uidMappings or m.gidMappings) or any(
        o in ("idmap", "ridmap") for o in m.options or ())


def userns_fds(mounts, container_maps=None):
    """{mount index: fd of a user namespace with that mount's maps}, for the mounts asking.
    `idmap` or `ridmap` without maps of the mount's own takes container_maps, the new user
    namespace's (uidMappings, gidMappings): config.md lets the runtime do that (MAY), or
    else return an error, which it MUST without a user namespace (crun takes them too)."""
    fds = {}
    try:
        for i, m in enumerate(mounts or ()):
            if not wants_idmap(m):
                continue
            where = f"mounts[{i}] ({m.destination})"
            uids, gids = m.uidMappings, m.gidMappings
            if not (uids or gids) and container_maps:
                uids, gids = container_maps
            if not (uids and gids):
                raise PyruncError("an idmapped mount needs uidMappings and gidMappings"
                                  + ("" if m.uidMappings or m.gidMappings else
                                     ", or a new user namespace whose maps it takes"),
                                  path=where, step="mounts")
            fds[i] = _userns_with(map_text(uids), map_text(gids), where)
    except BaseException:
        for fd in fds.values():
            posix.close(fd)
        raise
    return fds


def _userns_with(uid_map, gid_map, where):
    ready_r, ready_w = posix.pipe()
    hold_r, hold_w = posix.pipe()
    pid = posix.fork()
    if pid == 0:
        try:
            posix.close(ready_r)
            posix.close(hold_w)
            sc.unshare(sc.CLONE_NEWUSER)
            posix.write(ready_w, b"1")
            posix.read(hold_r, 1)  # until the parent has the namespace's fd
        finally:
            posix._exit(0)
    posix.close(ready_w)
    posix.close(hold_r)
    try:
        if posix.read(ready_r, 1) != b"1":
            raise PyruncError("could not make the mount's user namespace", path=where,
                              step="mounts")
        for name, text in (("uid_map", uid_map), ("gid_map", gid_map)):
            try:
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(text)
            except OSError as e:
                raise PyruncError(f"write {name}: {e.strerror}", path=where, step="mounts",
                                  errno=e.errno) from None
        return posix.open(f"/proc/{pid}/ns/user", posix.O_RDONLY | posix.O_CLOEXEC)
    finally:
        posix.close(ready_r)
        posix.close(hold_w)
        posix.waitpid(pid, 0)


def clone(source, userns_fd, recursive):
    """A detached copy of the source's mount tree, idmapped: its fd."""
    flags = OPEN_TREE_CLONE | posix.O_CLOEXEC | (sc.AT_RECURSIVE if recursive else 0)
    tree = sc.syscall(sc.SYS_open_tree, -100, sc.cstr(source), flags, what="open_tree")
    try:
        sc.mount_setattr(tree, MOUNT_ATTR_IDMAP, 0, recursive, userns_fd=userns_fd)
    except BaseException:
        posix.close(tree)
        raise
    return tree


def attach(tree, target_fd):
    sc.syscall(sc.SYS_move_mount, tree, sc.cstr(""), target_fd, sc.cstr(""),
               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH, what="move_mount")


def bind(source, target_fd, userns_fd, recursive):
    """Clone the source's mount tree, idmap it, attach it on target_fd."""
    tree = clone(source, userns_fd, recursive)
    try:
        attach(tree, target_fd)
    finally:
        posix.close(tree)
