"""Capabilities: names to masks in the parent, the kernel calls in the child.

The parent turns process.capabilities into five 64-bit masks (`prepare`), warning about
names this runtime or this kernel does not know, as the spec asks. The child applies them
in runc's order (libcontainer/init_linux.go, finalizeNamespace):

    step capabilities_bounding  drop_bounding(capsets): PR_CAPBSET_DROP, still uid 0
    step user                   keep_caps_for_user_switch(): PR_SET_KEEPCAPS 1, then
                                setgroups, setresgid, setresuid
    step capabilities           apply(capsets): PR_SET_KEEPCAPS 0, capset(E, P, I),
                                ambient clear + raise

With process.capabilities absent (prepare returns None) none of these run.

Why that order: dropping from the bounding set needs CAP_SETPCAP in the effective set,
which a nonzero uid no longer has. setresuid from uid 0 to a nonzero uid clears the
permitted and effective sets unless keep-caps is set; with keep-caps it still clears the
effective set (capabilities(7), "Effect of user ID changes"), so capset has to restore the
effective set from the permitted one afterwards. Capabilities live per thread: the init is
single-threaded when this runs.
"""

from pyrunc import syscalls
from pyrunc.errors import Note, PyruncError, from_oserror

STEP = "capabilities"

# linux/capability.h
CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
NAMES = {number: name for name, number in CAPS.items()}

LEVELS = ("low", "medium", "high", "extreme")

# Risk of granting a capability to a container, assuming its own namespaces.
# The article's table: NET_BIND_SERVICE low, SETUID medium, NET_ADMIN high,
# DAC_OVERRIDE high, SYS_ADMIN extreme. "extreme" = a known path to host root or the
# kernel; "high" = reaches host-wide state or other containers; "medium" = powerful inside
# the container (often a step in a chain); "low" = little beyond annoyance.
#   name                level      why
RISK_TABLE = (
    ("CAP_CHOWN", "medium", "chown any file, including files of bind-mounted host paths"),
    ("CAP_DAC_OVERRIDE", "high", "ignores file permissions: read/write any file it can reach"),
    ("CAP_DAC_READ_SEARCH", "extreme", "open_by_handle_at reads host files outside the "
                                       "container (the 2014 'shocker' escape)"),
    ("CAP_FOWNER", "medium", "acts as the owner of any file (chmod, utime, ACLs)"),
    ("CAP_FSETID", "medium", "keeps setuid/setgid bits when files are changed"),
    ("CAP_KILL", "low", "signals any process it can see; the pid namespace bounds that"),
    ("CAP_SETGID", "medium", "becomes any group, e.g. a group that owns host files"),
    ("CAP_SETUID", "medium", "becomes any user id (the article: medium)"),
    ("CAP_SETPCAP", "medium", "moves bounding capabilities into the inheritable set"),
    ("CAP_LINUX_IMMUTABLE", "medium", "sets immutable/append-only flags, e.g. on host files"),
    ("CAP_NET_BIND_SERVICE", "low", "binds ports below 1024 (the article: low)"),
    ("CAP_NET_BROADCAST", "low", "broadcast and multicast; practically unused"),
    ("CAP_NET_ADMIN", "high", "configures interfaces, routes, firewall (the article: high)"),
    ("CAP_NET_RAW", "medium", "raw and packet sockets: spoofing, sniffing, ARP attacks"),
    ("CAP_IPC_LOCK", "low", "locks memory (mlock): memory pressure at most"),
    ("CAP_IPC_OWNER", "medium", "bypasses SysV IPC permission checks"),
    ("CAP_SYS_MODULE", "extreme", "loads kernel modules: code in the host kernel"),
    ("CAP_SYS_RAWIO", "extreme", "iopl/ioperm, /dev/mem, raw block I/O"),
    ("CAP_SYS_CHROOT", "low", "chroot; the container is already in its own root"),
    ("CAP_SYS_PTRACE", "high", "ptrace and process_vm_* on any process it can see"),
    ("CAP_SYS_PACCT", "low", "switches process accounting on and off"),
    ("CAP_SYS_ADMIN", "extreme", "mount, namespaces, bpf, and much more (the article: extreme)"),
    ("CAP_SYS_BOOT", "extreme", "reboot and kexec_load: boots another kernel"),
    ("CAP_SYS_NICE", "medium", "real-time priorities: can starve the host's CPUs"),
    ("CAP_SYS_RESOURCE", "medium", "overrides resource limits and quotas"),
    ("CAP_SYS_TIME", "high", "sets the host's clock: time is not namespaced for setting"),
    ("CAP_SYS_TTY_CONFIG", "low", "vhangup and some terminal ioctls"),
    ("CAP_MKNOD", "medium", "creates device nodes; only the device cgroup stands behind it"),
    ("CAP_LEASE", "low", "file leases on files it does not own"),
    ("CAP_AUDIT_WRITE", "low", "writes records to the audit log (runc's default set)"),
    ("CAP_AUDIT_CONTROL", "high", "changes or disables the host's audit rules"),
    ("CAP_SETFCAP", "medium", "sets file capabilities on files"),
    ("CAP_MAC_OVERRIDE", "high", "overrides mandatory access control (Smack)"),
    ("CAP_MAC_ADMIN", "high", "changes MAC policy, e.g. loads AppArmor profiles"),
    ("CAP_SYSLOG", "medium", "reads the kernel log: kernel addresses defeat KASLR"),
    ("CAP_WAKE_ALARM", "low", "sets alarms that wake the system"),
    ("CAP_BLOCK_SUSPEND", "low", "keeps the system from suspending"),
    ("CAP_AUDIT_READ", "medium", "reads the host's audit stream over netlink"),
    ("CAP_PERFMON", "high", "system-wide perf events: kernel data and side channels"),
    ("CAP_BPF", "high", "loads BPF programs: a large kernel attack surface"),
    ("CAP_CHECKPOINT_RESTORE", "medium", "chooses pids, reads /proc/PID/map_files"),
)
RISK = {name: level for name, level, _ in RISK_TABLE}
WHY = {name: why for name, _, why in RISK_TABLE}

SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


class CapSets:
    """The five sets as masks, and the kernel's cap_last_cap (read in the parent while /proc
    is the host's). A plain class: dataclasses would import inspect on every start."""
    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient", "last_cap")

    def __init__(self, bounding, effective, permitted, inheritable, ambient, last_cap):
        self.bounding, self.effective, self.permitted = bounding, effective, permitted
        self.inheritable, self.ambient, self.last_cap = inheritable, ambient, last_cap

    def __repr__(self):
        return "CapSets(" + ", ".join(f"{k}={getattr(self, k):#x}" for k in self.__slots__) + ")"


def kernel_last_cap():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def current(pid="self"):
    """The five sets of a process from /proc/PID/status, as int masks keyed by set name."""
    keys = {"CapInh": "inheritable", "CapPrm": "permitted", "CapEff": "effective",
            "CapBnd": "bounding", "CapAmb": "ambient"}
    result = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in keys:
                result[keys[key]] = int(value, 16)
    return result


def prepare(capabilities, warnings, strict, last_cap=None, available=None):
    """process.capabilities (model node or None) -> CapSets, or None to keep the runtime's.

    A name that is unknown, above the kernel's cap_last_cap, or outside `available` (the
    runtime's own bounding set: nothing it starts can hold more) is a warning and ignored,
    as the spec asks and runc does; in strict mode it raises. Sets the kernel would refuse
    in capset(2) raise here, before anything exists.
    """
    if capabilities is None:
        return None
    if last_cap is None:
        last_cap = kernel_last_cap()
    if available is None:
        available = current()["bounding"]
    base = capabilities._path

    def problem(path, text, kind=str):
        if strict:
            raise PyruncError(text, path=path, step=STEP)
        warnings.append(kind(f"{path}: {text}"))

    masks, where = {}, {}
    for key in SETS:
        mask = 0
        for i, name in enumerate(getattr(capabilities, key) or ()):
            path = f"{base}.{key}[{i}]"
            number = CAPS.get(name)
            if number is None:
                problem(path, f"unknown capability {name!r}, ignored")
            elif number > last_cap:
                problem(path, f"{name} ({number}) is above this kernel's cap_last_cap "
                              f"({last_cap}), ignored")
            elif not available >> number & 1:
                problem(path, f"{name} is not in pyrunc's own bounding set, so no process "
                              "it starts can hold it; ignored")
            else:
                mask |= 1 << number
                where.setdefault((key, number), path)
        masks[key] = mask

    # capset(2) refuses these; runc fails at init with "operation not permitted".
    for key, outer, rule in (("effective", "permitted", "the effective set must be within "
                              "the permitted set"),
                             ("inheritable", "bounding", "the inheritable set must be within "
                              "the bounding set")):
        extra = masks[key] & ~masks[outer]
        if extra:
            number = (extra & -extra).bit_length() - 1
            raise PyruncError(f"{NAMES[number]} is not in {outer}: {rule} (capset(2) "
                              "refuses it)", path=where[key, number], step=STEP)
    # Accepted by the kernel but lost at execve: the new permitted set is drawn from the
    # bounding and inheritable sets (and ambient, itself within inheritable).
    for number in _bits(masks["permitted"] & ~masks["bounding"]):
        problem(where["permitted", number], f"{NAMES[number]} is not in bounding, so it is "
                                            "lost at execve")
    # PR_CAP_AMBIENT_RAISE needs the capability permitted and inheritable. runc 1.1 tries
    # the raise and runs without it, silently; `runc spec` and every client's default
    # config list ambient without inheritable, so this is a Note (the log, not stderr).
    for number in _bits(masks["ambient"] & ~(masks["permitted"] & masks["inheritable"])):
        problem(where["ambient", number], f"{NAMES[number]} is not in both permitted and "
                                          "inheritable, so the kernel refuses to raise it; "
                                          "left out (as runc does)", Note)
        masks["ambient"] &= ~(1 << number)
    return CapSets(last_cap=last_cap, **masks)


def _bits(mask):
    return [n for n in range(mask.bit_length()) if mask >> n & 1]


def drop_bounding(capsets):
    """Child, still uid 0 with CAP_SETPCAP: drop every capability not in the bounding set."""
    drop = [n for n in range(capsets.last_cap + 1) if not capsets.bounding >> n & 1]
    if syscalls.trace and drop:
        syscalls.trace(f"prctl(PR_CAPBSET_DROP, cap) for {len(drop)} capabilities: "
                       f"{', '.join(NAMES[n] for n in drop)}")
    for number in drop:
        try:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number,
                           what=f"prctl PR_CAPBSET_DROP {NAMES[number]}")
        except OSError as e:
            raise from_oserror(e, path="process.capabilities.bounding",
                               step="capabilities_bounding") from None


def keep_caps_for_user_switch():
    """Child, before setresuid: keep the permitted set across the switch to a nonzero uid."""
    if syscalls.trace:
        syscalls.trace("prctl(PR_SET_KEEPCAPS, 1)")
    try:
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1, what="prctl PR_SET_KEEPCAPS")
    except OSError as e:
        raise from_oserror(e, path="process.user", step="user") from None


def apply(capsets):
    """Child, after the uid/gid switch: set effective, permitted, inheritable and ambient."""
    trace = syscalls.trace
    try:
        if trace:
            trace("prctl(PR_SET_KEEPCAPS, 0)")
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0, what="prctl PR_SET_KEEPCAPS")
        syscalls.capset(capsets.effective, capsets.permitted, capsets.inheritable)
        if trace:
            trace("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)")
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL,
                       what="prctl PR_CAP_AMBIENT_CLEAR_ALL")
    except OSError as e:
        raise from_oserror(e, path="process.capabilities", step=STEP) from None
    for number in _bits(capsets.ambient):
        if trace:
            trace(f"prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, {NAMES[number]})")
        try:
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, number,
                           what=f"prctl PR_CAP_AMBIENT_RAISE {NAMES[number]}")
        except OSError as e:
            raise from_oserror(e, path="process.capabilities.ambient", step=STEP) from None
