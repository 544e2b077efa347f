"""Namespaces: new ones with unshare(2), existing ones joined with setns(2) by path."""
import posix

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError

FLAGS = {
    "pid": sc.CLONE_NEWPID, "network": sc.CLONE_NEWNET, "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP, "time": sc.CLONE_NEWTIME,
}
PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
              "user": "user", "cgroup": "cgroup", "time": "time"}
# runc's order for setns: user first (it grants the rights to join the others), mount last
# (after it the other paths may no longer resolve: they are opened before, anyway).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class Plan:
    """Which namespaces a config creates and which it joins (type -> open fd)."""

    def __init__(self, new_flags, joins):
        self.new_flags = new_flags
        self.joins = joins

    @property
    def new_user(self):
        return bool(self.new_flags & sc.CLONE_NEWUSER)

    @property
    def new_pid(self):
        return bool(self.new_flags & sc.CLONE_NEWPID)

    def has(self, nstype):
        return bool(self.new_flags & FLAGS[nstype]) or nstype in self.joins


def plan(namespaces):
    """Open every namespace path now, in the parent, so a bad path fails before any fork."""
    new_flags, joins = 0, {}
    for i, ns in enumerate(namespaces or ()):
        where = f"linux.namespaces[{i}] ({ns.type})"
        if ns.path is None:
            new_flags |= FLAGS[ns.type]
            continue
        try:
            fd = posix.open(ns.path, posix.O_RDONLY | posix.O_CLOEXEC)
        except OSError as e:
            _close(joins)
            raise PyruncError(f"open {ns.path}: {e.strerror}", path=where, step="namespaces",
                              errno=e.errno) from None
        actual = ns_type_of(fd)
        if actual != PROC_NAMES[ns.type]:
            posix.close(fd)
            _close(joins)
            raise PyruncError(f"{ns.path} is {'a ' + actual if actual else 'not a'} namespace, "
                              f"not {ns.type}", path=where, step="namespaces")
        joins[ns.type] = fd
    return Plan(new_flags, joins)


def _close(joins):
    for fd in joins.values():
        posix.close(fd)


def ns_type_of(fd):
    """'net', 'pid'... for an nsfs file, None otherwise.

    An nsfs fd's link reads 'net:[4026531840]'; any file on a real filesystem reads as an
    absolute path, so the link alone tells them apart.
    """
    target = posix.readlink(f"/proc/self/fd/{fd}")
    kind, sep, rest = target.partition(":[")
    return kind if sep and not target.startswith("/") and rest[:-1].isdigit() else None


def join(joins, types):
    for nstype in JOIN_ORDER:
        if nstype in types and nstype in joins:
            sc.setns(joins[nstype], FLAGS[nstype], what=f"setns {nstype}")


def close_joins(joins):
    _close(joins)
    joins.clear()
