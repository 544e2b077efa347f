"""The container's root filesystem: propagation, mounts, devices, pivot_root, masked and
read-only paths, read-only root.

Every mount destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT) and the
mount is made on /proc/self/fd/N of that O_PATH fd, as runc does since CVE-2021-30465: a
symlink in the rootfs, even one swapped in while we work, cannot send a mount outside it.
"""
import errno
import posix
import stat

from pyrunc import paths, syscalls as sc
from pyrunc.errors import PyruncError
from pyrunc.linux import idmap

# option -> (clear?, flag), runc's table (libcontainer/specconv)
FLAG_OPTIONS = {
    "async": (True, sc.MS_SYNCHRONOUS), "atime": (True, sc.MS_NOATIME),
    "bind": (False, sc.MS_BIND), "defaults": (False, 0), "dev": (True, sc.MS_NODEV),
    "diratime": (True, sc.MS_NODIRATIME), "dirsync": (False, sc.MS_DIRSYNC),
    "exec": (True, sc.MS_NOEXEC), "iversion": (False, 1 << 23), "noiversion": (True, 1 << 23),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "loud": (True, sc.MS_SILENT), "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK), "noatime": (False, sc.MS_NOATIME),
    "nodev": (False, sc.MS_NODEV), "nodiratime": (False, sc.MS_NODIRATIME),
    "noexec": (False, sc.MS_NOEXEC), "nosuid": (False, sc.MS_NOSUID),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW), "symfollow": (True, sc.MS_NOSYMFOLLOW),
    "norelatime": (True, sc.MS_RELATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "rbind": (False, sc.MS_BIND | sc.MS_REC), "relatime": (False, sc.MS_RELATIME),
    "remount": (False, sc.MS_REMOUNT), "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "silent": (False, sc.MS_SILENT), "strictatime": (False, sc.MS_STRICTATIME),
    "suid": (True, sc.MS_NOSUID), "sync": (False, sc.MS_SYNCHRONOUS),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# flags a bind remount must carry over from the source, or the kernel refuses (EPERM)
# to clear them when they are locked (always, inside a user namespace)
ST_FLAGS = ((posix.ST_RDONLY, sc.MS_RDONLY), (posix.ST_NOSUID, sc.MS_NOSUID),
            (posix.ST_NODEV, sc.MS_NODEV), (posix.ST_NOEXEC, sc.MS_NOEXEC),
            (posix.ST_NOATIME, sc.MS_NOATIME), (posix.ST_NODIRATIME, sc.MS_NODIRATIME),
            (posix.ST_RELATIME, sc.MS_RELATIME))
REMOUNT_KEEP = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC

DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))


# recursive mount attributes (runc 1.1+): applied to the whole tree with mount_setattr(2)
ATTR_OPTIONS = {
    "rro": (False, 0x1), "rrw": (True, 0x1), "rnosuid": (False, 0x2), "rsuid": (True, 0x2),
    "rnodev": (False, 0x4), "rdev": (True, 0x4), "rnoexec": (False, 0x8), "rexec": (True, 0x8),
    "rnodiratime": (False, 0x80), "rdiratime": (True, 0x80),
    "rnosymfollow": (False, 0x200000), "rsymfollow": (True, 0x200000),
}
ATIME_OPTIONS = {"rrelatime": 0x0, "rnoatime": 0x10, "rstrictatime": 0x20}
MOUNT_ATTR__ATIME = 0x70


class MountOptions:
    __slots__ = ("flags", "clear", "propagation", "data", "attr_set", "attr_clr", "copyup")

    def __init__(self):
        self.flags = 0
        self.clear = 0
        self.propagation = []
        self.data = []
        self.attr_set = 0
        self.attr_clr = 0
        self.copyup = False  # tmpcopyup (runc's extension): the tmpfs starts as a copy


def _toggle(on, off, clear, bit):
    """bit moved to `off` (clear) or to `on`: a later option overrides an earlier one."""
    return (on & ~bit, off | bit) if clear else (on | bit, off & ~bit)


def parse_options(options):
    """Split a mount's options into flags, propagation changes and the fs data string.

    Unknown words go to the data string, as runc does: the filesystem decides (tmpfs takes
    size= and mode=, devpts newinstance...); a bad one fails there with the JSON path.
    """
    parsed = MountOptions()
    for opt in options or ():
        if opt in FLAG_OPTIONS:
            parsed.flags, parsed.clear = _toggle(parsed.flags, parsed.clear, *FLAG_OPTIONS[opt])
        elif opt in PROPAGATION:
            parsed.propagation.append(PROPAGATION[opt])
        elif opt in ATTR_OPTIONS:
            parsed.attr_set, parsed.attr_clr = _toggle(parsed.attr_set, parsed.attr_clr,
                                                       *ATTR_OPTIONS[opt])
        elif opt in ATIME_OPTIONS:
            parsed.attr_set = parsed.attr_set & ~MOUNT_ATTR__ATIME | ATIME_OPTIONS[opt]
            parsed.attr_clr |= MOUNT_ATTR__ATIME
        elif opt == "tmpcopyup":
            parsed.copyup = True
        elif opt in ("idmap", "ridmap"):
            pass  # the mount's uidMappings/gidMappings say how: see linux/idmap.py
        else:
            parsed.data.append(opt)
    return parsed


def is_bind(mount, opts):
    return mount.type == "bind" or bool(opts.flags & sc.MS_BIND)


# -- path resolution inside the rootfs


def open_in_root(root_fd, path, create=None):
    """O_PATH fd of `path` resolved inside root_fd; create it first ("dir" or "file") if missing.

    Missing components are created as directories along the path as resolved inside the
    root (a dangling symlink is followed, inside the root, as runc's securejoin does).
    """
    rel = path.lstrip("/") or "."
    try:
        fd = sc.openat2(root_fd, rel, posix.O_PATH | posix.O_CLOEXEC, sc.RESOLVE_IN_ROOT)
    except OSError as e:
        if e.errno != errno.ENOENT or create is None:
            raise
        real = resolve_in_root(root_fd, path)
        make_path(root_fd, real, create)
        fd = sc.openat2(root_fd, real.lstrip("/") or ".", posix.O_PATH | posix.O_CLOEXEC,
                        sc.RESOLVE_IN_ROOT)
    if sc.trace:
        _opened[fd] = path
    return fd


def resolve_in_root(root_fd, path):
    """path with every symlink followed as if root_fd were /; missing parts kept as named."""
    root = f"/proc/self/fd/{root_fd}"
    todo = [p for p in path.split("/") if p]
    done = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            st = posix.lstat(f"{root}/{'/'.join(done + [part])}")
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        links += 1
        if links > 40:
            raise OSError(errno.ELOOP, f"resolve {path}: too many symlinks")
        target = posix.readlink(f"{root}/{'/'.join(done + [part])}")
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p] + todo
    return "/" + "/".join(done)


def make_path(root_fd, real, create):
    """Create each missing component of a resolved path; no symlink may appear on the way."""
    parts = [p for p in real.split("/") if p]
    dfd = sc.openat2(root_fd, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                if last and create == "file":
                    posix.close(posix.open(part, posix.O_CREAT | posix.O_WRONLY | posix.O_NOFOLLOW |
                                     posix.O_CLOEXEC, 0o644, dir_fd=dfd))
                else:
                    posix.mkdir(part, 0o755, dir_fd=dfd)
            except FileExistsError:
                pass
            if not last:
                nfd = sc.openat2(dfd, part, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC,
                                 sc.RESOLVE_NO_SYMLINKS)
                posix.close(dfd)
                dfd = nfd
    finally:
        posix.close(dfd)


class FdPath(str):
    """/proc/self/fd/N, the name the kernel resolves; `shown` is the container path it
    stands for, which --explain prints beside it."""
    shown = None


_opened = {}  # fd -> the path open_in_root resolved, kept only while tracing


def fd_path(fd):
    path = FdPath(f"/proc/self/fd/{fd}")
    path.shown = _opened.get(fd)
    return path


def current_flags(path):
    st = posix.statvfs(path)
    return sum(ms for st_flag, ms in ST_FLAGS if st.f_flag & st_flag)


# -- steps


def set_propagation(propagation):
    """Propagation of / and (r...) the mounts below it; rprivate when None."""
    flags = PROPAGATION[propagation or "rprivate"]
    sc.mount(None, "/", None, flags, what="make / " + (propagation or "rprivate"))


def bind_rootfs(rootfs):
    """pivot_root needs the new root to be a mount point: bind it onto itself."""
    parent_mount_private(rootfs)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, what="bind rootfs")


def bind_in_place(rootfs):
    """Without a mount namespace of its own the container's mounts go to the runtime's
    namespace: all of them under this bind of the rootfs onto itself, so that one lazy
    detach (detach_if_ours) takes them away. Its propagation is left as it comes: unmounts
    then reach wherever the mounts did. Returns the bind's mount id."""
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, what="bind rootfs")
    return top_mount_id(rootfs)


def top_mount_id(point):
    """The id of the mount last stacked on `point` in this mount namespace, or None."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ", 5)
            if fields[4].replace("\\040", " ") == point:
                found = int(fields[0])
    return found


def detach_if_ours(point, mount_id):
    """Lazily detach the bind bind_in_place made, with everything mounted under it, when
    it is still the top of `point` (never a mount someone else stacked there)."""
    if mount_id is not None and top_mount_id(point) == mount_id:
        sc.umount2(point, sc.MNT_DETACH)
        return True
    return False


def chroot_only(rootfs):
    """Without a mount namespace: chroot into the bind, moving nothing in the runtime's
    mount table (runc's and crun's way there too)."""
    posix.chdir(rootfs)
    posix.chroot(".")
    posix.chdir("/")


def parent_mount_private(rootfs):
    """The mount holding the rootfs made private if it is shared (rootfsPropagation "shared",
    as podman sets it for a mount with rshared propagation): pivot_root refuses (EINVAL) a
    new root whose parent mount is shared, and the bind would propagate. runc does the same."""
    parent, shared = None, False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"),
                                  ("\\134", "\\")):
                point = point.replace(escaped, char)
            if rootfs == point or rootfs.startswith(point.rstrip("/") + "/"):
                if parent is None or len(point) >= len(parent):
                    parent = point
                    shared = any(o.startswith("shared:") for o in fields[6:fields.index("-")])
    if parent is not None and shared:
        sc.mount(None, parent, None, sc.MS_PRIVATE, what=f"make {parent} private")


def mount_all(rootfs, mounts, bundle, in_userns, idmap_fds=None, in_cgroupns=False,
              cgroup_dirs=None, mount_fds=None):
    """cgroup_dirs: the container's cgroup directories, when pyrunc made them (see
    mount_cgroup). mount_fds: {index: (fd, kind)} of the sources the runtime opened."""
    root_fd = posix.open(rootfs, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        read_only = []
        for i, m in enumerate(mounts or ()):
            where = f"mounts[{i}] ({m.destination})"
            try:
                if mount_one(root_fd, m, bundle, in_userns, (idmap_fds or {}).get(i),
                             in_cgroupns, cgroup_dirs, (mount_fds or {}).get(i)):
                    read_only.append((where, m))
            except OSError as e:
                raise PyruncError(e.strerror, path=where, step="mounts", errno=e.errno) from None
            except PyruncError as e:
                e.path = e.path or where
                raise
        # read-only tmpfs mounts were made read-write so that the mounts inside them could
        # create their mount points (podman's /etc/hostname in a read-only /etc): as runc
        for where, m in read_only:
            try:
                remount_read_only(root_fd, m)
            except OSError as e:
                raise PyruncError(e.strerror, path=where, step="mounts", errno=e.errno) from None
            except PyruncError as e:
                e.path = e.path or where
                raise
    finally:
        posix.close(root_fd)


def remount_read_only(root_fd, m):
    flags = parse_options(m.options).flags & ~(sc.MS_REMOUNT | sc.MS_BIND | sc.MS_REC)
    fd = open_in_root(root_fd, m.destination)
    try:
        sc.mount(None, fd_path(fd), None, sc.MS_REMOUNT | sc.MS_RDONLY | flags, None,
                 what=f"remount {m.type} read-only")
    finally:
        posix.close(fd)


def mount_one(root_fd, m, bundle, in_userns, idmap_fd=None, in_cgroupns=False,
              cgroup_dirs=None, source_fd=None):
    """Mount m; True when it is a tmpfs still to be made read-only (see mount_all).
    idmap_fd: the user namespace an idmapped bind mount shifts ownership through.
    source_fd: (fd, "path" or "tree"), the source the runtime opened (linux/mountsrc.py)."""
    opts = parse_options(m.options)
    data = ",".join(opts.data) or None
    if is_bind(m, opts):
        source = m.source or ""
        if not paths.isabs(source):
            source = paths.join(bundle, source)
        try:
            st = posix.stat(source) if source_fd is None else posix.fstat(source_fd[0])
            src_is_dir = stat.S_ISDIR(st.st_mode)
        except OSError as e:
            raise OSError(e.errno, f"bind source {source}: {e.strerror}") from None
        fd = open_in_root(root_fd, m.destination, "dir" if src_is_dir else "file")
        try:
            if source_fd is not None and source_fd[1] == "tree":
                idmap.attach(source_fd[0], fd)
            elif source_fd is not None:
                sc.mount(f"/proc/self/fd/{source_fd[0]}", fd_path(fd), None,
                         sc.MS_BIND | (opts.flags & sc.MS_REC), what="bind mount")
            elif idmap_fd is not None:
                idmap.bind(source, fd, idmap_fd, recursive=bool(opts.flags & sc.MS_REC)
                           or "ridmap" in (m.options or ()))
            else:
                sc.mount(source, fd_path(fd), None, sc.MS_BIND | (opts.flags & sc.MS_REC),
                         what="bind mount")
        finally:
            posix.close(fd)
        extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
        adjust_new_mount(root_fd, m.destination, opts, extra)
        return
    if m.type in ("cgroup", "cgroup2"):
        mount_cgroup(root_fd, m, opts, in_cgroupns, cgroup_dirs)
        return
    keep_mode = m.type == "tmpfs" and not any(d.startswith("mode=") for d in opts.data)
    try:
        fd = open_in_root(root_fd, m.destination, None if keep_mode else "dir")
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        keep_mode = False  # as runc: a directory made for the mount keeps tmpfs's 1777
        fd = open_in_root(root_fd, m.destination, "dir")
    flags = opts.flags & ~sc.MS_REMOUNT
    defer_ro = m.type == "tmpfs" and bool(flags & sc.MS_RDONLY) \
        and paths.normpath(m.destination) != "/dev"
    if defer_ro:
        flags &= ~sc.MS_RDONLY
    if keep_mode:
        # as runc: the directory the tmpfs covers keeps its mode (tmpfs would say 1777)
        data = ",".join((*opts.data, f"mode={posix.fstat(fd).st_mode & 0o7777:o}"))
    under = None
    host_sys = False
    try:
        if opts.copyup and m.type == "tmpfs":
            # the directory the tmpfs hides, still readable through this fd once it is hidden
            under = sc.openat2(fd, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
        try:
            sc.mount(m.source or m.type, fd_path(fd), m.type, flags, data,
                     what=f"mount {m.type}")
        except PermissionError:
            if not (m.type == "sysfs" and in_userns):
                raise
            # sysfs wants a network namespace our user namespace owns; without one the
            # host's /sys, bound read-only (runc does the same)
            sc.mount("/sys", fd_path(fd), None, sc.MS_BIND | sc.MS_REC,
                     what="bind /sys (sysfs refused)")
            host_sys = True
    finally:
        posix.close(fd)
    if host_sys:
        # read-only through and through (its submounts too), whatever the options say
        top = open_in_root(root_fd, m.destination)
        try:
            # MOUNT_ATTR_RDONLY, and nosuid, nodev, noexec (their MS_ bits are the same)
            sc.mount_setattr(top, 0x1 | (opts.flags & REMOUNT_KEEP), 0, recursive=True)
        finally:
            posix.close(top)
        return False
    if under is not None:
        try:
            copy_up(under, root_fd, m.destination)
        finally:
            posix.close(under)
    adjust_new_mount(root_fd, m.destination, opts, 0)
    return defer_ro


def copy_up(under, root_fd, destination):
    """tmpcopyup: copy what the directory held into the tmpfs now mounted over it."""
    top = open_in_root(root_fd, destination)
    try:
        dfd = sc.openat2(top, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
        try:
            copy_tree(under, dfd)
            posix.chmod(dfd, posix.stat(under).st_mode & 0o7777)
        finally:
            posix.close(dfd)
    finally:
        posix.close(top)


def copy_tree(src, dst):
    """Directories, files, symlinks and special files of src into dst (both dir fds), with
    their modes, owners and times."""
    for name in posix.listdir(src):
        st = posix.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            posix.mkdir(name, 0o700, dir_fd=dst)
            s = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC,
                        dir_fd=src)
            try:
                d = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC,
                            dir_fd=dst)
                try:
                    copy_tree(s, d)
                finally:
                    posix.close(d)
            finally:
                posix.close(s)
        elif kind == stat.S_IFLNK:
            posix.symlink(posix.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif kind == stat.S_IFREG:
            s = posix.open(name, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=src)
            try:
                d = posix.open(name, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, 0o600,
                            dir_fd=dst)
                try:
                    while posix.sendfile(d, s, None, 1 << 20):
                        pass
                finally:
                    posix.close(d)
            finally:
                posix.close(s)
        else:
            try:
                posix.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            except PermissionError:
                continue  # a device node in a user namespace: skipped
        posix.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if kind != stat.S_IFLNK:
            posix.chmod(name, st.st_mode & 0o7777, dir_fd=dst)
        posix.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def adjust_new_mount(root_fd, destination, opts, remount_flags):
    """Flags a bind ignores, recursive attributes and propagation, on the new mount.

    The fd used for mounting names the mount point underneath: the new mount on top is
    reached by resolving the destination again.
    """
    if not (remount_flags or opts.clear or opts.attr_set or opts.attr_clr or opts.propagation):
        return
    fd = open_in_root(root_fd, destination)
    try:
        target = fd_path(fd)
        if remount_flags or opts.clear:
            # keep the flags the kernel locks (nosuid, nodev, noexec of the source)
            keep = current_flags(target) & REMOUNT_KEEP & ~opts.clear
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | remount_flags | keep,
                     what="remount bind")
        if opts.attr_set or opts.attr_clr:
            sc.mount_setattr(fd, opts.attr_set, opts.attr_clr, recursive=True)
        for prop in opts.propagation:
            sc.mount(None, target, None, prop, what="set propagation")
    finally:
        posix.close(fd)


def mount_cgroup(root_fd, m, opts, in_cgroupns=False, cgroup_dirs=None):
    """cgroup2 mounts as is; a v1 "cgroup" mount becomes, as in runc, a tmpfs with this
    process's cgroup of each hierarchy (hybrid hosts like this one) under it: a bind of it
    from the host, or, in a cgroup namespace, that hierarchy mounted anew, which the kernel
    roots at the namespace's root (a bind would show the host's root: inside the namespace
    /proc/self/cgroup says "/"). With cgroup_dirs (pyrunc made the container's cgroup, and
    the init joined it before any namespace), a hierarchy the container is not in (a
    hybrid host's v2 tree, see cgroups.Cgroup.drop_idle_v2_tree) is left out."""
    flags = opts.flags & ~(sc.MS_REMOUNT | sc.MS_RDONLY)
    fd = open_in_root(root_fd, m.destination, "dir")
    try:
        if m.type == "cgroup2" or not paths.isdir("/sys/fs/cgroup/memory"):
            sc.mount("cgroup2", fd_path(fd), "cgroup2", opts.flags, what="mount cgroup2")
            return
        sc.mount("tmpfs", fd_path(fd), "tmpfs", flags, "mode=755", what="mount cgroup tmpfs")
    finally:
        posix.close(fd)
    with open("/proc/self/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    tfd = open_in_root(root_fd, m.destination)
    target = fd_path(tfd)
    # the tmpfs is new and empty: its directories are made directly, with no lookup
    tdir = sc.openat2(tfd, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
    try:
        for _, controllers, path in entries:
            name = controllers.removeprefix("name=") or "unified"
            host = paths.join("/sys/fs/cgroup", name)
            if not paths.isdir(host) or (cgroup_dirs is not None
                                         and controllers not in cgroup_dirs):
                continue
            posix.mkdir(name, 0o755, dir_fd=tdir)
            dfd = open_in_root(tfd, name)
            try:
                if in_cgroupns and not controllers:
                    sc.mount("cgroup2", fd_path(dfd), "cgroup2", 0, what="mount cgroup2")
                elif in_cgroupns:
                    data = ("none," + controllers) if controllers.startswith("name=") \
                        else controllers
                    sc.mount("cgroup", fd_path(dfd), "cgroup", 0, data, what="mount cgroup")
                else:
                    sc.mount(host + path, fd_path(dfd), None, sc.MS_BIND | sc.MS_REC,
                             what="bind cgroup")
            finally:
                posix.close(dfd)
            dfd = open_in_root(tfd, name)
            try:
                sc.mount(None, fd_path(dfd), None,
                         sc.MS_BIND | sc.MS_REMOUNT | flags | (opts.flags & sc.MS_RDONLY),
                         what="remount cgroup")
            finally:
                posix.close(dfd)
        if opts.flags & sc.MS_RDONLY:
            sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_RDONLY | flags, "mode=755",
                     what="remount cgroup tmpfs")
    finally:
        posix.close(tdir)
        posix.close(tfd)


def dev_is_bound(mounts):
    return any(paths.normpath(m.destination) == "/dev" and is_bind(m, parse_options(m.options))
               for m in mounts or ())


def check_dev(root_fd, step):
    """The rootfs's /dev, when it is a symlink, must lead to a directory inside the rootfs:
    one that leads nowhere there is refused, not followed into directories the runtime would
    make for the device nodes (crun refuses it too: CVE-2026-47766, a /dev symlink that sent
    its device setup outside the rootfs)."""
    try:
        st = posix.stat("dev", dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(st.st_mode):
        return
    try:
        posix.close(sc.openat2(root_fd, "dev", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC,
                               sc.RESOLVE_IN_ROOT))
    except OSError as e:
        target = posix.readlink("dev", dir_fd=root_fd)
        raise PyruncError(f"/dev is a symlink to {target}, not a directory inside the rootfs "
                          f"({e.strerror}): no device node is made through it",
                          path="root.path", step=step, errno=e.errno) from None


def create_devices(rootfs, devices, in_userns, device_fds=None):
    """The spec's default devices plus linux.devices. In a user namespace (mknod is not
    allowed there) a linux.devices node comes from the runtime (device_fds: {index: fd of a
    detached bind of the node it made, linux/mountsrc.py}); the default ones, and any without
    such an fd (rootless), are bound from the host's node of the same path, as runc does."""
    root_fd = posix.open(rootfs, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        check_dev(root_fd, "devices")
        wanted = [(p, stat.S_IFCHR, maj, mnr, 0o666, 0, 0, None, None)
                  for p, maj, mnr in DEFAULT_DEVICES]
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        for i, d in enumerate(devices or ()):
            path = paths.normpath(d.path)  # checked at load: absolute, no ".."
            wanted = [w for w in wanted if w[0] != path]
            wanted.append((path, kinds[d.type], d.major or 0, d.minor or 0,
                           0o666 if d.fileMode is None else d.fileMode, d.uid, d.gid,
                           f"linux.devices[{i}] ({d.path})", (device_fds or {}).get(i)))
        for path, kind, major, minor, mode, uid, gid, where, node in wanted:
            try:
                make_device(root_fd, path, kind, major, minor, mode, uid, gid, in_userns, node)
            except OSError as e:
                raise PyruncError(f"create device {path}: {e.strerror}", path=where,
                                  step="devices", errno=e.errno) from None
    finally:
        posix.close(root_fd)


def make_device(root_fd, path, kind, major, minor, mode, uid, gid, in_userns, node=None):
    parent, name = paths.split(path)
    pfd = open_in_root(root_fd, parent, "dir")
    dfd = sc.openat2(pfd, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
    posix.close(pfd)
    try:
        try:
            posix.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        if in_userns and kind != stat.S_IFIFO:
            posix.close(posix.open(name, posix.O_CREAT | posix.O_WRONLY | posix.O_CLOEXEC, 0o644, dir_fd=dfd))
            fd = sc.openat2(dfd, name, posix.O_PATH | posix.O_CLOEXEC, sc.RESOLVE_IN_ROOT)
            try:
                if node is not None:
                    idmap.attach(node, fd)
                else:
                    sc.mount(path, fd_path(fd), None, sc.MS_BIND, what=f"bind device {path}")
            finally:
                posix.close(fd)
            # the node, in the container: nosuid and noexec as the runtime's other
            # mounts there (the host's /dev may have neither); the bind is on top now
            fd = sc.openat2(dfd, name, posix.O_PATH | posix.O_CLOEXEC, sc.RESOLVE_IN_ROOT)
            try:
                target = fd_path(fd)
                keep = current_flags(target) & (REMOUNT_KEEP | sc.MS_RDONLY)
                sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NOSUID |
                         sc.MS_NOEXEC | keep, what=f"remount device {path}")
            finally:
                posix.close(fd)
            return
        posix.mknod(name, kind | (mode & 0o7777), posix.makedev(major, minor), dir_fd=dfd)
        posix.chmod(name, mode & 0o7777, dir_fd=dfd)  # mknod is subject to the umask
        if uid is not None or gid is not None:
            posix.chown(name, -1 if uid is None else uid, -1 if gid is None else gid, dir_fd=dfd)
    finally:
        posix.close(dfd)


def dev_symlinks(rootfs, has_devpts):
    root_fd = posix.open(rootfs, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        links = list(DEV_SYMLINKS)
        if paths.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        if has_devpts:
            links.append(("pts/ptmx", "/dev/ptmx"))
        check_dev(root_fd, "dev_symlinks")
        pfd = open_in_root(root_fd, "/dev", "dir")
        dfd = sc.openat2(pfd, ".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, 0)
        posix.close(pfd)
        try:
            for target, link in links:
                name = paths.basename(link)
                try:
                    posix.unlink(name, dir_fd=dfd)
                except FileNotFoundError:
                    pass
                posix.symlink(target, name, dir_fd=dfd)
        finally:
            posix.close(dfd)
    finally:
        posix.close(root_fd)


def pivot_root(rootfs):
    """runc's way: pivot_root(".", ".") stacks the old root over the new one, which is then
    detached; no directory for the old root is needed in the container."""
    old = posix.open("/", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    new = posix.open(rootfs, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    try:
        posix.fchdir(new)
        sc.pivot_root(".", ".")
        posix.fchdir(old)
        # keep unmount events of the old root from reaching the host's mounts
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, what="make old root rslave")
        sc.umount2(".", sc.MNT_DETACH)
    finally:
        posix.close(old)
        posix.close(new)
    posix.chdir("/")


def chroot(rootfs):
    """--no-pivot: move the rootfs over / and chroot, for ramdisk roots where pivot_root fails."""
    posix.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE, what="move rootfs to /")
    posix.chroot(".")
    posix.chdir("/")


def mask_path(path):
    """A directory gets a read-only empty tmpfs, a file /dev/null; missing paths are skipped.

    Both ends are opened without following a symlink and checked, and the bind goes
    through those fds (CVE-2025-31133): a /dev/null or a masked path swapped for a symlink
    (by a process sharing our rootfs) would bind, say, /proc/sys/kernel/core_pattern
    writable where the container can reach it."""
    try:
        target = posix.open(path, posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        if sc.trace:
            sc.trace(f"  {path} is absent: skipped")
        return
    try:
        mode = posix.fstat(target).st_mode
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, f"{path} is a symbolic link: not masked")
        if stat.S_ISDIR(mode):
            sc.mount("tmpfs", on_fd(target, path), "tmpfs", sc.MS_RDONLY, None,
                     what=f"mask {path}")
            return
        null = open_null()
        try:
            sc.mount(on_fd(null, "/dev/null"), on_fd(target, path), None, sc.MS_BIND,
                     what=f"mask {path}")
        finally:
            posix.close(null)
    finally:
        posix.close(target)


def open_null():
    """An O_PATH fd of the container's /dev/null, checked to be the null device (1:3)."""
    fd = posix.open("/dev/null", posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC)
    st = posix.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != posix.makedev(1, 3):
        posix.close(fd)
        raise OSError(errno.EINVAL, "/dev/null is not the null device (1:3): not used")
    return fd


def on_fd(fd, path):
    """The name to mount from or onto for an O_PATH fd: /proc/self/fd/N when the container
    has /proc (the object itself, whatever the path now names), else the path."""
    name = fd_path(fd)
    try:
        st = posix.stat(name)
    except OSError:
        return path
    own = posix.fstat(fd)
    return name if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino) else path


def readonly_path(path):
    try:
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC, what=f"bind {path}")
    except OSError as e:
        if e.errno in (2, 20):  # ENOENT, ENOTDIR: skipped, as runc does
            if sc.trace:
                sc.trace(f"  {path} is absent: skipped")
            return
        raise
    keep = current_flags(path) & REMOUNT_KEEP
    sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | keep,
             what=f"remount {path} read-only")


def root_readonly():
    keep = current_flags("/") & REMOUNT_KEEP
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | keep,
             what="remount / read-only")
