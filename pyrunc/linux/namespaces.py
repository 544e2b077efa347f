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
# unshare(2) and setns(2) of these change only the namespace of the caller's next children
FOR_CHILDREN = ("pid", "time")


class Plan:
    """Which namespaces a config creates and which it joins (type -> open fd)."""

    def __init__(self, new_flags, joins):
        self.new_flags = new_flags
        self.joins = joins
        # types already entered: FOR_CHILDREN ones by the parent before it forks, the joined
        # ones before a new user namespace
        self.entered = frozenset()

    def to_enter(self, types):
        """(new flags, joins) of those types still to enter: not entered by the parent."""
        types = set(types) - self.entered
        flags = sum(FLAGS[t] for t in types if self.new_flags & FLAGS[t])
        return flags, {t: fd for t, fd in self.joins.items() if t in types}

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
    """'net', 'pid'... for a namespace file, None otherwise. ioctl(NS_GET_NSTYPE) answers
    for any nsfs fd: a /proc/PID/ns link and a bind mount of one (how `ip netns`, netavark
    and CNI keep them under /run/netns), whose /proc/self/fd link reads as its path."""
    try:
        flag = sc.ns_get_nstype(fd)
    except OSError:
        return None  # ENOTTY: not a namespace
    return next((PROC_NAMES[t] for t, f in FLAGS.items() if f == flag), None)


def join(joins, types):
    for nstype in JOIN_ORDER:
        if nstype in types and nstype in joins:
            sc.setns(joins[nstype], FLAGS[nstype], what=f"setns {nstype}")


def enter_for_children(plan):
    """Put this process's next child into the container's pid and time namespaces, and
    return what leave_for_children needs to come back. Only the parent's *_for_children
    changes: the parent itself stays where it is, so it can fork the init directly."""
    back = {}
    try:
        for nstype in FOR_CHILDREN:
            if not plan.has(nstype):
                continue
            name = PROC_NAMES[nstype]
            back[nstype] = posix.open(f"/proc/self/ns/{name}_for_children",
                                      posix.O_RDONLY | posix.O_CLOEXEC)
            if nstype in plan.joins:
                sc.setns(plan.joins[nstype], FLAGS[nstype], what=f"setns {nstype}")
            else:
                sc.unshare(FLAGS[nstype])
    except BaseException:
        leave_for_children(back)
        raise
    plan.entered = frozenset(back)
    return back


def leave_for_children(back):
    """The parent's children go back to its own pid and time namespaces."""
    try:
        for nstype, fd in back.items():
            sc.setns(fd, FLAGS[nstype], what=f"setns {nstype}: the runtime's own")
    finally:
        for fd in back.values():
            posix.close(fd)


def write_time_offsets(offsets):
    """Written before any process is in the new time namespace (the kernel's rule)."""
    with open("/proc/self/timens_offsets", "w") as f:
        for clock, off in offsets.items():
            f.write(f"{clock} {off.secs or 0} {off.nanosecs or 0}\n")


def close_joins(joins):
    _close(joins)
    joins.clear()
