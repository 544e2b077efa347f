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
"""
import posix

from pyrunc import paths
from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError


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
