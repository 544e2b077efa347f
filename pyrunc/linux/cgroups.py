"""cgroups through the cgroupfs files (no systemd): the v1 hierarchies of a legacy or hybrid
host (one directory per controller, as on this VM) and the unified v2 tree.

Where (runc's rules, config-linux.md "Cgroups path"): an absolute `cgroupsPath` is taken
from each hierarchy's root; a relative one, or the container id when there is none, from
the runtime's own cgroup in that hierarchy.

When: right after the fork, while the init imports its code, the parent makes the
directories and writes the limits; then the child (C1, or the init) asks for them
("cgroups") and joins by itself (join_self), before it enters any namespace: the cgroup
namespace it makes is rooted there, C2 is born there, and nothing of the container's runs
outside the limits, which are whole before anyone is in.

Limits are written in config order, each error naming its JSON path. Devices: v1's
devices.allow/deny lists, from deny-all (as runc: a config without rules still gets them),
the config's rules in order, then the spec's default devices (which the runtime must
supply usable). linux.devices only makes nodes: opening one is what these rules allow,
as in runc and crun. On a v2-only host the device rules need an eBPF program, which pyrunc
does not build: a warning (strict: an error).

Values spliced into a file name (hugepage sizes, `unified` keys) are checked first
(pyrunc/names.py): none can name a file outside the container's cgroup.
"""
import posix
import time

from pyrunc import names, paths
from pyrunc.errors import PyruncError

UNIFIED = ""  # the v2 tree's key, as /proc/self/cgroup names it ("0::/path")
# the default devices the spec requires (null, zero, full, random, urandom, tty), with
# /dev/ptmx and the pty slaves a devpts mount needs: always allowed, after the config's rules.
# mknod of any node ("m", not read or write) as runc: the init makes linux.devices' nodes
# once inside the cgroup. runc 1.1.5 also allows tun (c 10:200); pyrunc leaves that to
# the config (docs/SPEC-NOTES.md).
DEFAULT_DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                        "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm")


_layout = None


class Layout:
    """The host's hierarchies: {key: mount point} (v1 keys as in /proc/self/cgroup:
    "memory", "cpu,cpuacct", "name=systemd"; the v2 tree under UNIFIED), and this
    process's own cgroup in each."""

    def __init__(self, mounts, own):
        self.mounts = mounts
        self.own = own

    @classmethod
    def read(cls):
        """The layout, read once per process."""
        global _layout
        if _layout is None:
            _layout = cls._read()
        return _layout

    @classmethod
    def _read(cls):
        mounts = {}
        for line in _read("/proc/self/mountinfo").splitlines():
            if " - cgroup" not in line:
                continue  # most lines: skipped before any split (every create reads this)
            fields = line.split()
            dash = fields.index("-")
            fstype, point = fields[dash + 1], fields[4]
            if fstype == "cgroup2":
                mounts.setdefault(UNIFIED, point)
            elif fstype == "cgroup":
                options = fields[dash + 3].split(",")
                controllers = [o for o in options if o in V1_CONTROLLERS or
                               o.startswith("name=")]
                mounts.setdefault(",".join(sorted(controllers, key=_v1_order)), point)
        own = {}
        for line in _read("/proc/self/cgroup").splitlines():
            _, key, path = line.split(":", 2)
            own[key] = path
        return cls(mounts, own)

    @property
    def v1(self):
        return any(k != UNIFIED for k in self.mounts)

    def controller_key(self, controller):
        """The hierarchy holding a controller: its v1 one, else the v2 tree when its
        cgroup.controllers lists it, else None."""
        for key in self.mounts:
            if key != UNIFIED and controller in key.split(","):
                return key
        if UNIFIED in self.mounts and controller in self.v2_controllers():
            return UNIFIED
        return None

    def v2_controllers(self):
        try:
            with open(paths.join(self.mounts[UNIFIED], "cgroup.controllers")) as f:
                return f.read().split()
        except OSError:
            return []


# /proc/self/cgroup lists v1 co-mounted controllers in the kernel's order
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer",
                  "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc")


def _v1_order(name):
    return V1_CONTROLLERS.index(name) if name in V1_CONTROLLERS else len(V1_CONTROLLERS)


class Cgroup:
    """The container's cgroup: {hierarchy key: directory}, and which of them were made.
    With dry set, limits are checked and their warnings collected, and nothing is written:
    the parent does that before any fork, so bad input fails before anything exists."""

    def __init__(self, dirs, layout):
        self.dirs = dirs
        self.layout = layout
        self.made = []
        self.dry = False
        self.touched = set()  # the files the limits write (recorded in the dry run too)
        self.device_rules = True  # deny-all first (with_device_rules); not when delegated

    def write(self, path, text, where):
        self.touched.add(path)
        if not self.dry:
            _write(path, text, where)

    def drop_idle_v2_tree(self):
        """On a hybrid host the v2 tree holds no controller pyrunc uses unless a limit goes
        there (hugetlb here, or linux.resources.unified): without one it is left out.
        Joining it would cost a migration by cgroup.procs, which waits for an RCU grace
        period (12-20 ms on this VM); every v1 hierarchy the init joins by itself for free
        (join_self). runc joins it anyway."""
        path = self.dirs.get(UNIFIED)
        if path is not None and self.layout.v1 and not any(
                t.startswith(path + "/") for t in self.touched):
            del self.dirs[UNIFIED]


def plan(cgroups_path, container_id, layout=None):
    """The directories of the container's cgroup, in every hierarchy; nothing is written."""
    layout = layout or Layout.read()
    inner = names.check_path(cgroups_path or container_id, "linux.cgroupsPath", "cgroups")
    absolute = inner.startswith("/")
    # cleaned as from the root, so that ".." cannot climb out of where it belongs
    inner = paths.normpath("/" + inner).lstrip("/")
    if not inner:
        raise PyruncError("cgroupsPath names a hierarchy's root", path="linux.cgroupsPath",
                          step="cgroups")
    dirs = {}
    for key, point in layout.mounts.items():
        if key.startswith("name=") and key != "name=systemd":
            continue  # another tool's named hierarchy: not ours to put processes in
        base = point if absolute else paths.join(point, layout.own.get(key, "/").lstrip("/"))
        dirs[key] = paths.join(base, inner)
    return Cgroup(dirs, layout)


def delegated(cg):
    """Rootless: the container's cgroup in the hierarchies delegated to the caller (it may
    write the nearest existing directory on the way, and owns it), never `devices` (its
    rules want CAP_SYS_ADMIN); None when no hierarchy is."""
    keep = {}
    for key, path in cg.dirs.items():
        if "devices" in key.split(","):
            continue
        d = path
        while not paths.isdir(d):
            d = paths.split(d)[0]
        if posix.access(d, posix.W_OK) and posix.stat(d).st_uid == posix.geteuid():
            keep[key] = path
    if not keep:
        return None
    layout = Layout({k: v for k, v in cg.layout.mounts.items() if k in keep}, cg.layout.own)
    sub = Cgroup(keep, layout)
    sub.device_rules = False
    return sub


def create(cg):
    """mkdir -p each directory; a new v1 cpuset gets its parent's cpus and mems (without
    them it refuses every process)."""
    for key, path in cg.dirs.items():
        if not paths.isdir(path):
            _makedirs(path, key, cg)


def _makedirs(path, key, cg):
    """mkdir -p, recording in cg.made each directory made, parents first: a failed create
    removes them all (in reverse), even when a later mkdir fails."""
    parent = paths.split(path)[0]
    if not paths.isdir(parent):
        _makedirs(parent, key, cg)
    try:
        posix.mkdir(path, 0o755)
    except FileExistsError:
        return
    except OSError as e:
        raise PyruncError(f"mkdir {path}: {e.strerror}", path="linux.cgroupsPath",
                          step="cgroups", errno=e.errno) from None
    cg.made.append(path)
    if "cpuset" in key.split(","):
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not _read(paths.join(path, name)).strip():
                _write(paths.join(path, name), _read(paths.join(parent, name)).strip(),
                       "linux.cgroupsPath")
    elif key == UNIFIED:
        _enable_controllers(parent, cg.layout)


def _enable_controllers(parent, layout):
    """v2: a child gets a controller only when its parent's subtree_control enables it."""
    if layout.v1:
        return  # a hybrid host's v2 tree: its controllers are the host's business
    wanted = [c for c in ("cpuset", "cpu", "io", "memory", "hugetlb", "pids")
              if c in layout.v2_controllers()]
    if not wanted:
        return
    try:
        _write(paths.join(parent, "cgroup.subtree_control"),
               " ".join("+" + c for c in wanted), "linux.cgroupsPath")
    except PyruncError:
        pass  # a parent with processes in it cannot delegate: the limits report it


def join_self(cg):
    """Move the calling process into the container's cgroup. In a v1 hierarchy it writes
    "0" to `tasks`: the kernel then moves the calling thread alone and takes no global lock,
    where any write to cgroup.procs (or of another task's pid) waits for an RCU grace
    period first, 12-20 ms here (runc's does too). The process is single-threaded, so its
    thread is all of it. The v2 tree has no such door: cgroup.procs."""
    for key, path in cg.dirs.items():
        _write(paths.join(path, "cgroup.procs" if key == UNIFIED else "tasks"), "0",
               "linux.cgroupsPath")


def with_device_rules(resources):
    """A new container's linux.resources with `devices` always there: its rules start from
    deny-all even when the config has none, as runc's do (an update leaves them alone)."""
    if resources is None:
        return {"devices": []}
    if resources.get("devices") is None:
        return dict(resources, devices=[])
    return resources


def set_resources(cg, resources, warnings, dry=False):
    """Write linux.resources; v1 or v2 files by where each controller lives. Types are
    spec.model's (RESOURCES, for config.json and `update -r` alike): checked here only
    what the schema cannot say (ranges, letters, names, what the host has)."""
    cg.dry = dry
    if not resources:
        return
    for name, value in resources.items():
        where = f"linux.resources.{name}"
        setter = SETTERS.get(name)
        if setter is None:
            warnings.append(f"{where}: not supported, ignored")
            continue
        if value is not None:
            setter(cg, value, where, warnings)


def _memory(cg, mem, where, warnings):
    """runc's rules (libcontainer/cgroups/fs/memory.go, fs2/memory.go): 0 is unset, -1 is
    unlimited; memory -1 with swap unset makes swap unlimited too; swappiness -1 is unset."""
    key = cg.layout.controller_key("memory")
    if key is None:
        return _missing(where, "memory", warnings)
    d = cg.dirs[key]
    values = {}
    for field in ("limit", "reservation", "swap", "swappiness"):
        if mem.get(field) is not None:
            values[field] = mem[field]
    limit, swap = values.get("limit", 0), values.get("swap", 0)
    oom = mem.get("disableOOMKiller")
    if key == UNIFIED:
        _memory_v2(cg, d, values, limit, swap, where, warnings)
    else:
        if limit == -1 and swap == 0 and paths.exists(paths.join(d, "memory.memsw.limit_in_bytes")):
            swap = -1
        swap_first = False
        if limit and swap and not cg.dry:  # an update: the kernel wants memsw >= memory always
            current = _read_int(paths.join(d, "memory.limit_in_bytes"))
            swap_first = swap == -1 or (current is not None and current < swap)
        order = (("swap", swap), ("limit", limit)) if swap_first else (("limit", limit),
                                                                       ("swap", swap))
        for field, value in order:
            if value:
                name = "memory.limit_in_bytes" if field == "limit" else "memory.memsw.limit_in_bytes"
                cg.write(paths.join(d, name), str(value), f"{where}.{field}")
        if values.get("reservation"):
            cg.write(paths.join(d, "memory.soft_limit_in_bytes"), str(values["reservation"]),
                     f"{where}.reservation")
        if oom:
            cg.write(paths.join(d, "memory.oom_control"), "1", f"{where}.disableOOMKiller")
        swappiness = values.get("swappiness", -1)
        if swappiness != -1:
            if not 0 <= swappiness <= 100:
                _fail(f"{where}.swappiness", f"{swappiness} is not in 0-100 (or -1, unset)")
            cg.write(paths.join(d, "memory.swappiness"), str(swappiness), f"{where}.swappiness")
    for field, name in (("kernel", "memory.kmem.limit_in_bytes"),
                        ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
        # v1 only, where the kernel still has the file (crun writes it there); the
        # hierarchy's root tells before the container's directory exists
        value = mem.get(field)
        if value is None:
            continue
        path = f"{where}.{field}"
        if key != UNIFIED and paths.exists(paths.join(cg.layout.mounts[key], name)):
            cg.write(paths.join(d, name), "-1" if value < 0 else str(value), path)
        else:
            warnings.append(f"{path}: this host's memory cgroup has no {name}, ignored")
    for field in ("useHierarchy", "checkBeforeUpdate"):
        if mem.get(field) is not None:
            warnings.append(f"{where}.{field}: not applied (deprecated by the kernel or "
                            "only for update)")


def _memory_v2(cg, d, values, limit, swap, where, warnings):
    """v2 counts swap alone where the spec's swap is memory + swap (runc's conversion)."""
    if limit == -1 and swap == 0:
        swap = -1
    elif swap not in (0, -1):
        if limit in (0, -1):
            _fail(f"{where}.swap", "a swap limit needs a memory limit")
        if limit < 0 or swap < limit:
            _fail(f"{where}.swap", "memory + swap must be at least the memory limit")
        swap -= limit
        if swap == 0:
            cg.write(paths.join(d, "memory.swap.max"), "0", f"{where}.swap")  # no swap
    if swap:
        cg.write(paths.join(d, "memory.swap.max"), _v2_num(swap), f"{where}.swap")
    if limit:
        cg.write(paths.join(d, "memory.max"), _v2_num(limit), f"{where}.limit")
    if values.get("reservation"):
        cg.write(paths.join(d, "memory.low"), _v2_num(values["reservation"]),
                 f"{where}.reservation")
    if values.get("swappiness", -1) != -1:
        warnings.append(f"{where}.swappiness: no cgroup v2 equivalent, ignored")


def _v2_num(value):
    return "max" if value == -1 else str(value)


def _pids(cg, pids, where, warnings):
    """0 is unset (runc); -1 (v1: any negative) is "max"."""
    key = cg.layout.controller_key("pids")
    if key is None:
        return _missing(where, "pids", warnings)
    limit = pids.get("limit") or 0
    if limit:
        text = str(limit) if limit > 0 else _v2_num(limit) if key == UNIFIED else "max"
        cg.write(paths.join(cg.dirs[key], "pids.max"), text, f"{where}.limit")


def _cpu(cg, cpu, where, warnings):
    """runc's rules (fs/cpu.go, fs2/cpu.go): a zero share, quota, period or realtime value
    is unset, as is an empty cpus or mems; v2 takes shares as a weight and a quota without
    a period over 100000 us."""
    cpus, mems = cpu.get("cpus"), cpu.get("mems")
    if cpus or mems:
        key = cg.layout.controller_key("cpuset")
        if key is None:
            _missing(where + ".cpus", "cpuset", warnings)
        for field, value in (("cpus", cpus), ("mems", mems)):
            if value and key is not None:
                cg.write(paths.join(cg.dirs[key], f"cpuset.{field}"), value, f"{where}.{field}")
    values = {f: cpu[f] for f in (
        "shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle")
        if cpu.get(f) is not None}
    set_ = {f: v for f, v in values.items() if v or f == "idle"}  # cpu.idle 0 is a value
    if not set_:
        return
    key = cg.layout.controller_key("cpu")
    if key is None:
        return _missing(where, "cpu", warnings)
    d = cg.dirs[key]
    if key != UNIFIED:
        _cpu_v1(cg, d, set_, where)
        return
    if "shares" in set_:  # runc's conversion of [2, 262144] to cpu.weight [1, 10000]
        weight = 1 + ((set_["shares"] - 2) * 9999) // 262142
        cg.write(paths.join(d, "cpu.weight"), str(weight), f"{where}.shares")
    if "quota" in set_ or "period" in set_:
        quota = set_.get("quota", -1)
        text = f"{'max' if quota < 0 else quota} {set_.get('period', 100000)}"
        cg.write(paths.join(d, "cpu.max"), text, f"{where}.quota")
    for field in ("burst", "idle"):
        if field in set_:
            name = "cpu.max.burst" if field == "burst" else "cpu.idle"
            cg.write(paths.join(d, name), str(set_[field]), f"{where}.{field}")
    for field in ("realtimeRuntime", "realtimePeriod"):
        if field in set_:
            warnings.append(f"{where}.{field}: no cgroup v2 equivalent, ignored")


def _cpu_v1(cg, d, values, where):
    if "shares" in values:
        shares = values["shares"]
        cg.write(paths.join(d, "cpu.shares"), str(shares), f"{where}.shares")
        if not cg.dry:  # the kernel clamps to [2, 262144]: said, as runc does
            got = _read_int(paths.join(d, "cpu.shares"))
            if got is not None and got != shares:
                _fail(f"{where}.shares", f"the {'maximum' if shares > got else 'minimum'} "
                      f"allowed cpu-shares is {got}")
    retry_period = False
    if "period" in values:
        try:
            cg.write(paths.join(d, "cpu.cfs_period_us"), str(values["period"]),
                     f"{where}.period")
        except PyruncError as e:
            # a period shorter than the current one can exceed the parent's quota until
            # the new quota is in: retried after it (as runc)
            if e.errno != 22 or "quota" not in values:
                raise
            retry_period = True
    if "quota" in values:
        cg.write(paths.join(d, "cpu.cfs_quota_us"), str(values["quota"]), f"{where}.quota")
        if retry_period:
            cg.write(paths.join(d, "cpu.cfs_period_us"), str(values["period"]),
                     f"{where}.period")
    for field, name in (("burst", "cpu.cfs_burst_us"), ("realtimePeriod", "cpu.rt_period_us"),
                        ("realtimeRuntime", "cpu.rt_runtime_us"), ("idle", "cpu.idle")):
        if field in values:
            cg.write(paths.join(d, name), str(values[field]), f"{where}.{field}")


def _block_io(cg, bio, where, warnings):
    """A zero weight is unset (runc: docker sends `weight: 0` on every run). v2 writes
    io.bfq.weight where BFQ is there, else io.weight on its own scale."""
    key = cg.layout.controller_key("blkio") or cg.layout.controller_key("io")
    if key is None:
        return _missing(where, "blkio", warnings)
    d = cg.dirs[key]
    weight = bio.get("weight") or 0
    if key == UNIFIED:
        if weight:
            if paths.exists(paths.join(d, "io.bfq.weight")):
                cg.write(paths.join(d, "io.bfq.weight"), str(weight), f"{where}.weight")
            else:  # runc's [10, 1000] -> [1, 10000]
                cg.write(paths.join(d, "io.weight"), str(1 + (weight - 10) * 9999 // 990),
                         f"{where}.weight")
        for field, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                            ("throttleReadIOPSDevice", "riops"),
                            ("throttleWriteIOPSDevice", "wiops")):
            for i, dev in enumerate(bio.get(field) or ()):
                path = f"{where}.{field}[{i}]"
                cg.write(paths.join(d, "io.max"), f"{_dev(dev)} {name}={dev['rate']}", path)
        return
    if weight:
        cg.write(paths.join(d, _existing(d, "blkio.weight", "blkio.bfq.weight")),
                 str(weight), f"{where}.weight")
    for field, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, dev in enumerate(bio.get(field) or ()):
            path = f"{where}.{field}[{i}]"
            cg.write(paths.join(d, name), f"{_dev(dev)} {dev['rate']}", path)
    for field in ("leafWeight", "weightDevice"):
        if bio.get(field):
            warnings.append(f"{where}.{field}: not applied")


def _hugepages(cg, limits, where, warnings):
    key = cg.layout.controller_key("hugetlb")
    if key is None:
        return _missing(where, "hugetlb", warnings)
    for i, h in enumerate(limits):
        path = f"{where}[{i}]"
        size = names.check_hugepage_size(h.get("pageSize"), f"{path}.pageSize")
        if size not in host_hugepage_sizes():
            _fail(f"{path}.pageSize", f"{size} pages are not supported by this host "
                  f"({', '.join(host_hugepage_sizes()) or 'none'})")
        limit = h["limit"]
        name = f"hugetlb.{size}.limit_in_bytes" if key != UNIFIED else f"hugetlb.{size}.max"
        cg.write(paths.join(cg.dirs[key], name), str(limit), f"{path}.limit")


def _network(cg, net, where, warnings):
    if net.get("classID"):  # 0 is unset (runc)
        key = cg.layout.controller_key("net_cls")
        if key is None or key == UNIFIED:
            _missing(where + ".classID", "net_cls", warnings)
        else:
            cg.write(paths.join(cg.dirs[key], "net_cls.classid"),
                     str(net["classID"]), f"{where}.classID")
    for i, p in enumerate(net.get("priorities") or ()):
        key = cg.layout.controller_key("net_prio")
        path = f"{where}.priorities[{i}]"
        if key is None or key == UNIFIED:
            return _missing(path, "net_prio", warnings)
        cg.write(paths.join(cg.dirs[key], "net_prio.ifpriomap"),
                 f"{p['name']} {p['priority']}", path)


def _devices(cg, rules, where, warnings):
    key = cg.layout.controller_key("devices")
    if key is None or key == UNIFIED:
        if rules:
            _missing(where, "devices (v1; cgroup v2 needs an eBPF filter)", warnings)
        return
    d = cg.dirs[key]
    cg.write(paths.join(d, "devices.deny"), "a", where)
    for i, rule in enumerate(rules):
        path = f"{where}[{i}]"
        allow = rule["allow"]
        kind = rule.get("type", "a")
        if kind not in ("a", "c", "b"):
            _fail(f"{path}.type", f"{kind!r} is not one of a, c, b")
        access = rule.get("access", "rwm")
        if not access or set(access) - set("rwm"):
            _fail(f"{path}.access", "expected letters of rwm")
        major, minor = rule.get("major"), rule.get("minor")
        text = "a" if kind == "a" and major is None and minor is None else (
            f"{'a' if kind == 'a' else kind} {_num_or_star(major)}:{_num_or_star(minor)} {access}")
        cg.write(paths.join(d, "devices.allow" if allow else "devices.deny"), text, path)
    for text in DEFAULT_DEVICE_RULES:
        cg.write(paths.join(d, "devices.allow"), text, where)


def _unified(cg, files, where, warnings):
    if UNIFIED not in cg.dirs:
        return _missing(where, "a cgroup v2 tree", warnings)
    for name, value in files.items():
        path = f"{where}.{name}"
        names.check_name(name, path, "cgroups")
        cg.write(paths.join(cg.dirs[UNIFIED], name), value, path)


SETTERS = {"memory": _memory, "pids": _pids, "cpu": _cpu, "blockIO": _block_io,
           "hugepageLimits": _hugepages, "network": _network, "devices": _devices,
           "unified": _unified}


# -- the running container


def procs(dirs):
    """The pids in the container's cgroup (any hierarchy holds them all)."""
    for key in sorted(dirs, key=lambda k: k != "pids"):
        try:
            text = _read(paths.join(dirs[key], "cgroup.procs"))
        except OSError:
            continue
        return sorted(int(p) for p in text.split())
    return []


def freezer_dir(dirs):
    for key, path in dirs.items():
        if "freezer" in key.split(","):
            return path, False
    if UNIFIED in dirs:
        return dirs[UNIFIED], True
    return None, False


def frozen(dirs):
    path, v2 = freezer_dir(dirs)
    if path is None:
        return False
    try:
        if v2:
            return "frozen 1" in _read(paths.join(path, "cgroup.events")).splitlines()
        return _read(paths.join(path, "freezer.state")).strip() == "FROZEN"
    except OSError:
        return False


def freeze(dirs, on):
    """Freeze (pause) or thaw (resume), and wait until the kernel says it is done."""
    path, v2 = freezer_dir(dirs)
    if path is None:
        raise PyruncError("the container has no freezer cgroup", step="cgroups")
    if v2:
        _write(paths.join(path, "cgroup.freeze"), "1" if on else "0", "freezer")
    else:
        _write(paths.join(path, "freezer.state"), "FROZEN" if on else "THAWED", "freezer")
    for _ in range(500):
        if frozen(dirs) == on:
            return
        time.sleep(0.002)
    raise PyruncError(f"the cgroup did not {'freeze' if on else 'thaw'} within a second",
                      step="cgroups")


def remove(dirs):
    """rmdir each directory, retrying a moment while exiting processes leave it."""
    left = []
    for path in dirs:
        for attempt in range(50):
            try:
                posix.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != 16 or attempt == 49:  # EBUSY: tasks are still leaving
                    left.append(f"{path}: {e.strerror}")
                    break
                time.sleep(0.002)
    return left


# -- files


def host_hugepage_sizes():
    """The kernel's names of this host's huge page sizes (2MB, 1GB), from sysfs."""
    try:
        entries = posix.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    sizes = []
    for entry in entries:  # hugepages-2048kB; the kernel's mem_fmt() spells it 2MB
        kb = int(entry.removeprefix("hugepages-").removesuffix("kB"))
        shift, unit = (20, "GB") if kb >= 1 << 20 else (10, "MB") if kb >= 1 << 10 else (0, "KB")
        sizes.append(f"{kb >> shift}{unit}")
    return sizes


def realtime_problem(cg, resources):
    """Why a SCHED_FIFO or SCHED_RR process would get EPERM in the container's v1 cpu
    cgroup (the kernel refuses real-time tasks in a group with no real-time budget, when
    built with RT_GROUP_SCHED), or None."""
    key = cg.layout.controller_key("cpu")
    if key is None or key == UNIFIED or not paths.exists(
            paths.join(cg.layout.mounts[key], "cpu.rt_runtime_us")):
        return None
    cpu = (resources or {}).get("cpu") or {}
    if cpu.get("realtimeRuntime") not in (None, 0):
        return None
    try:
        budget = int(_read(paths.join(cg.dirs[key], "cpu.rt_runtime_us")))
    except (OSError, ValueError):
        budget = 0  # a new cgroup starts with none
    if budget != 0:
        return None
    return (f"the container's cpu cgroup ({cg.dirs[key]}) would have no real-time budget "
            "(cpu.rt_runtime_us 0), where the kernel refuses a real-time task: set "
            "linux.resources.cpu.realtimeRuntime (and realtimePeriod)")


def _read(path):
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = []
        while chunk := posix.read(fd, 1 << 16):  # /proc files come a page or so at a time
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        posix.close(fd)


def _read_int(path):
    try:
        return int(_read(path))
    except (OSError, ValueError):
        return None


def _write(path, text, where):
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
        try:
            posix.write(fd, text.encode())
        finally:
            posix.close(fd)
    except OSError as e:
        raise PyruncError(f"write {text!r} to {path}: {e.strerror}", path=where,
                          step="cgroups", errno=e.errno) from None


def _existing(directory, *names):
    return next((n for n in names if paths.exists(paths.join(directory, n))), names[0])


def _missing(where, controller, warnings):
    warnings.append(f"{where}: no {controller} controller on this host, ignored")


def _fail(path, message):
    raise PyruncError(message, path=path, step="cgroups")


def _num_or_star(value):
    return "*" if value is None or value == -1 else str(value)


def _dev(dev):
    return f"{dev['major']}:{dev['minor']}"
