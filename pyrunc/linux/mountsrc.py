"""Bind mount sources opened from the runtime's side (issue 11.8; runc 1.2 does the same).

In a user namespace the init is a mapped id: a source under a directory only the host's
root may enter (0700) is out of its reach (EACCES), and an idmapped mount is out of its
rights (mount_setattr wants CAP_SYS_ADMIN in the filesystem's own user namespace). So the
parent, root in the host's user namespace, enters the init's mount namespace for a moment,
opens each bind source there (an O_PATH fd: the init binds it through /proc/self/fd/N) and
makes each idmapped mount there (a detached tree the init attaches with move_mount), and
hands the fds to the init. It works in the init's mount namespace, not the host's: the
kernel binds only from a mount of the caller's own namespace, and the mounts there are
the locked copies of the host's (the container cannot lift a read-only or nosuid the host
put on a source; a tree cloned from the host's namespace would carry no such lock).

linux.devices in a user namespace: mknod is refused there, and binding the host's node of
the same path gives whatever the host has there (or nothing). The parent makes each node
itself, as crun does: in a detached tmpfs of its own (fsopen, no mount table touched), owned
by the ids the config names mapped to the host's, and hands the init a detached bind of it.
"""
import posix

from pyrunc import paths
from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError


FSOPEN_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NOEXEC = 0x8
OPEN_TREE_CLONE = 1
NODE_KINDS = {"c": 0o020000, "u": 0o020000, "b": 0o060000}   # S_IFCHR, S_IFBLK


def wanted(mounts, is_bind):
    """Indexes of the mounts whose source the runtime opens."""
    return [i for i, m in enumerate(mounts or ()) if is_bind(m)]


def open_sources(pid, mounts, indexes, bundle, idmap_fds):
    """[(index, kind, fd)] for the mounts at `indexes`, opened in PID's mount namespace."""
    from pyrunc.linux import idmap
    from pyrunc.linux.rootfs import parse_options
    flags = posix.O_RDONLY | posix.O_CLOEXEC
    own = posix.open("/proc/self/ns/mnt", flags)
    cwd = posix.open(".", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    opened = []
    try:
        target = posix.open(f"/proc/{pid}/ns/mnt", flags)
        try:
            sc.setns(target, sc.CLONE_NEWNS, what="setns into the container's mount namespace")
        finally:
            posix.close(target)
        try:
            for i in indexes:
                m = mounts[i]
                where = f"mounts[{i}] ({m.destination})"
                source = m.source or ""
                if not paths.isabs(source):
                    source = paths.join(bundle, source)
                try:
                    if i in (idmap_fds or {}):
                        recursive = bool(parse_options(m.options).flags & sc.MS_REC) \
                            or "ridmap" in (m.options or ())
                        opened.append((i, "tree", idmap.clone(source, idmap_fds[i], recursive)))
                    else:
                        opened.append((i, "path", posix.open(source, posix.O_PATH | posix.O_CLOEXEC)))
                except OSError as e:
                    raise PyruncError(f"bind source {source}: {e.strerror}", path=where,
                                      step="mounts", errno=e.errno) from None
        finally:
            sc.setns(own, sc.CLONE_NEWNS, what="setns back to the runtime's mount namespace")
            posix.fchdir(cwd)  # setns moved the cwd to that namespace's root
    except BaseException:
        for _, _, fd in opened:
            posix.close(fd)
        raise
    finally:
        posix.close(own)
        posix.close(cwd)
    return opened


def devices_wanted(devices):
    """Indexes of the linux.devices the runtime makes (a fifo the init can mknod itself)."""
    return [i for i, d in enumerate(devices or ()) if d.type in NODE_KINDS]


def _host_id(cid, mappings):
    for m in mappings or ():
        if m.containerID <= cid < m.containerID + m.size:
            return cid - m.containerID + m.hostID
    return 65534    # unmapped: the overflow id, as the kernel shows it


def make_devices(devices, indexes, uid_maps, gid_maps):
    """[(index, "device", fd)]: a detached bind of each node, made in a private tmpfs."""
    try:
        fs = sc.syscall(sc.SYS_fsopen, sc.cstr("tmpfs"), FSOPEN_CLOEXEC, what="fsopen tmpfs")
    except OSError as e:     # before Linux 5.2
        raise PyruncError(f"cannot make the nodes in a user namespace: {e}",
                          path="linux.devices", step="devices", errno=e.errno) from None
    made = []
    try:
        sc.syscall(sc.SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0, what="fsconfig")
        mnt = sc.syscall(sc.SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                         MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, what="fsmount")
        try:
            for i in indexes:
                d = devices[i]
                name = str(i)
                mode = 0o666 if d.fileMode is None else d.fileMode & 0o7777
                try:
                    posix.mknod(name, NODE_KINDS[d.type] | mode,
                                posix.makedev(d.major or 0, d.minor or 0), dir_fd=mnt)
                    posix.chmod(name, mode, dir_fd=mnt)  # mknod is subject to the umask
                    posix.chown(name, _host_id(d.uid or 0, uid_maps),
                                _host_id(d.gid or 0, gid_maps), dir_fd=mnt)
                    tree = sc.syscall(sc.SYS_open_tree, mnt, sc.cstr(name),
                                      OPEN_TREE_CLONE | posix.O_CLOEXEC, what="open_tree")
                except OSError as e:
                    raise PyruncError(f"create device {d.path}: {e.strerror}",
                                      path=f"linux.devices[{i}] ({d.path})", step="devices",
                                      errno=e.errno) from None
                made.append((i, "device", tree))
        finally:
            posix.close(mnt)
    except BaseException:
        for _, _, fd in made:
            posix.close(fd)
        raise
    finally:
        posix.close(fs)
    return made
