"""config.json -> a typed model whose attributes carry the spec's own names.

A small declarative schema (Obj, List, Map, scalars) covers runtime-spec 1.0 to 1.3.
Loading checks every type and reports the JSON path of the first fault
(`mounts[3].options[1]: expected a string, got 5`). Unknown keys are collected as
warnings (errors in strict mode). Each model object keeps its JSON path in `_path`, so
steps can name the exact place in config.json when the kernel refuses it.
Absent objects and lists load as None: "not set" differs from "empty" in the spec
(no `capabilities` keeps the runtime's; an empty list drops them all).
"""
from pyrunc.errors import PyruncError


class Node:
    __slots__ = ("_path",)

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__
                           if getattr(self, k) is not None)
        return f"{type(self).__name__}({fields})"


class Loader:
    def __init__(self, strict=False):
        self.strict = strict
        self.warnings = []

    def fail(self, path, message):
        raise PyruncError(message, path=path or "config.json", step="load")

    def unknown(self, path, key):
        where = f"{path}.{key}" if path else key
        if self.strict:
            self.fail(where, "unknown field (strict mode)")
        self.warnings.append(f"{where}: unknown field, ignored")


def _type_name(v):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def check_text(value, path, loader):
    """Every string of the config goes to the kernel, a file or a log as UTF-8 text: a lone
    surrogate (JSON's "\\ud800") cannot be encoded, and a NUL would cut a C string short."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            loader.fail(path, f"{value!r} is not valid Unicode (a lone surrogate)")
    if "\0" in value:
        loader.fail(path, "contains a NUL byte")


# Go's int64 and uint64, the types runc decodes these fields into
I64_MIN, I64_MAX, U64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


class Scalar:
    def __init__(self, kind, minimum=None, maximum=None, choices=None):
        if kind is int:
            minimum = I64_MIN if minimum is None else minimum
            maximum = (U64_MAX if minimum >= 0 else I64_MAX) if maximum is None else maximum
        self.kind, self.minimum, self.maximum, self.choices = kind, minimum, maximum, choices

    def load(self, value, path, loader):
        kind = self.kind
        ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))
              or kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            want = {str: "a string", int: "an integer", bool: "a boolean", float: "a number"}[kind]
            loader.fail(path, f"expected {want}, got {_type_name(value)}")
        if kind is str:
            check_text(value, path, loader)
        if self.minimum is not None and value < self.minimum:
            loader.fail(path, f"{value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            loader.fail(path, f"{value} is above the maximum {self.maximum}")
        if self.choices is not None and value not in self.choices:
            loader.fail(path, f"{value!r} is not one of {', '.join(self.choices)}")
        return value


class Any:
    """Kept as parsed: other platforms' sections, which Linux ignores."""

    def load(self, value, path, loader):
        return value


class Checked:
    """Type-checked by `schema`, kept as parsed (a dict): linux.resources, which the cgroups
    module reads as such, and `update --resources`."""

    def __init__(self, schema):
        self.schema = schema

    def load(self, value, path, loader):
        self.schema.load(value, path, loader)
        return value


class List:
    def __init__(self, item):
        self.item = item

    def load(self, value, path, loader):
        if not isinstance(value, list):
            loader.fail(path, f"expected a list, got {_type_name(value)}")
        return [self.item.load(v, f"{path}[{i}]", loader) for i, v in enumerate(value)]


class Map:
    def __init__(self, item):
        self.item = item

    def load(self, value, path, loader):
        if not isinstance(value, dict):
            loader.fail(path, f"expected an object, got {_type_name(value)}")
        for k in value:
            check_text(k, f"{path}.{k!r}", loader)
        return {k: self.item.load(v, f"{path}.{k}", loader) for k, v in value.items()}


class Obj:
    """An object of the spec; `fields` maps spec names to schemas, `required` names musts."""

    def __init__(self, name, fields, required=(), open_keys=False):
        self.fields = fields
        self.required = required
        self.open_keys = open_keys  # vendor extensions allowed: no unknown-key warnings
        self.name = name
        self.cls = None  # made on first load: a config uses few of the ~35 (1 ms at import)

    def load(self, value, path, loader):
        if not isinstance(value, dict):
            loader.fail(path, f"expected an object, got {_type_name(value)}")
        if self.cls is None:
            self.cls = type(self.name, (Node,), {"__slots__": tuple(self.fields)})
        node = self.cls()
        node._path = path
        for key in self.required:
            if value.get(key) is None:
                loader.fail(f"{path}.{key}" if path else key, "required field is "
                            + ("null" if key in value else "missing"))
        for key, schema in self.fields.items():
            v = value.get(key)
            setattr(node, key, None if v is None else
                    schema.load(v, f"{path}.{key}" if path else key, loader))
        if not self.open_keys:
            for key in value:
                if key not in self.fields:
                    check_text(key, f"{path}.{key!r}" if path else repr(key), loader)
                    loader.unknown(path, key)
        return node


STR, INT, BOOL, UINT = Scalar(str), Scalar(int), Scalar(bool), Scalar(int, minimum=0)
U32 = Scalar(int, minimum=0, maximum=0xFFFFFFFF)
U16 = Scalar(int, minimum=0, maximum=0xFFFF)
STRS = List(STR)

ID_MAPPING = Obj("IDMapping", {"containerID": U32, "hostID": U32, "size": U32},
                 required=("containerID", "hostID", "size"))

MOUNT = Obj("Mount", {
    "destination": STR, "type": STR, "source": STR, "options": STRS,
    "uidMappings": List(ID_MAPPING), "gidMappings": List(ID_MAPPING),
}, required=("destination",))

# poll(2) waits at most INT_MAX ms (24.8 days): a longer timeout is refused, not overflowed
HOOK_TIMEOUT_MAX = 0x7FFFFFFF // 1000
HOOK = Obj("Hook", {"path": STR, "args": STRS, "env": STRS,
                    "timeout": Scalar(int, minimum=1, maximum=HOOK_TIMEOUT_MAX)},
           required=("path",))
HOOKS = Obj("Hooks", {name: List(HOOK) for name in (
    "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")})

CAPABILITIES = Obj("Capabilities", {s: STRS for s in (
    "bounding", "effective", "inheritable", "permitted", "ambient")})

RLIMIT = Obj("POSIXRlimit", {"type": STR, "hard": UINT, "soft": UINT},
             required=("type", "hard", "soft"))

USER = Obj("User", {"uid": U32, "gid": U32, "umask": U32, "additionalGids": List(U32),
                    "username": STR}, required=("uid", "gid"))

PROCESS = Obj("Process", {
    "terminal": BOOL,
    "consoleSize": Obj("Box", {"height": UINT, "width": UINT}, required=("height", "width")),
    "user": USER,
    "args": STRS,
    "commandLine": STR,
    "env": STRS,
    "cwd": STR,
    "capabilities": CAPABILITIES,
    "rlimits": List(RLIMIT),
    "noNewPrivileges": BOOL,
    "apparmorProfile": STR,
    "oomScoreAdj": Scalar(int, minimum=-1000, maximum=1000),
    "selinuxLabel": STR,
    "ioPriority": Obj("IOPriority", {"class": Scalar(str, choices=(
        "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")),
        "priority": Scalar(int, minimum=0, maximum=7)}, required=("class",)),
    "scheduler": Obj("Scheduler", {
        "policy": Scalar(str, choices=("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
                                       "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE")),
        "nice": Scalar(int, minimum=-20, maximum=19), "priority": INT, "flags": STRS,
        "runtime": UINT, "deadline": UINT, "period": UINT}, required=("policy",)),
    "execCPUAffinity": Obj("CPUAffinity", {"initial": STR, "final": STR}),
}, required=("cwd",))

SECCOMP_ARG = Obj("SeccompArg", {"index": Scalar(int, minimum=0, maximum=5), "value": UINT,
                                 "valueTwo": UINT, "op": STR}, required=("index", "value", "op"))
SECCOMP_SYSCALL = Obj("SeccompSyscall", {"names": STRS, "action": STR, "errnoRet": UINT,
                                         "args": List(SECCOMP_ARG)},
                      required=("names", "action"))
SECCOMP = Obj("Seccomp", {
    "defaultAction": STR, "defaultErrnoRet": UINT, "architectures": STRS, "flags": STRS,
    "listenerPath": STR, "listenerMetadata": STR, "syscalls": List(SECCOMP_SYSCALL),
}, required=("defaultAction",))

# config-linux.md "Control groups", with the Go types runc decodes them into
_DEVICE_NUMBERS = {"major": INT, "minor": INT}
_THROTTLE = List(Obj("LinuxThrottleDevice", dict(_DEVICE_NUMBERS, rate=UINT),
                     required=("major", "minor", "rate")))
RESOURCES = Obj("LinuxResources", {
    "devices": List(Obj("LinuxDeviceCgroup", {"allow": BOOL, "type": STR, "major": INT,
                                              "minor": INT, "access": STR},
                        required=("allow",))),
    "memory": Obj("LinuxMemory", {
        "limit": INT, "reservation": INT, "swap": INT, "kernel": INT, "kernelTCP": INT,
        "swappiness": UINT, "disableOOMKiller": BOOL, "useHierarchy": BOOL,
        "checkBeforeUpdate": BOOL}),
    "cpu": Obj("LinuxCPU", {"shares": UINT, "quota": INT, "burst": UINT, "period": UINT,
                            "realtimeRuntime": INT, "realtimePeriod": UINT, "cpus": STR,
                            "mems": STR, "idle": INT}),
    "pids": Obj("LinuxPids", {"limit": INT}),
    "blockIO": Obj("LinuxBlockIO", {
        "weight": U16, "leafWeight": U16,
        "weightDevice": List(Obj("LinuxWeightDevice", dict(_DEVICE_NUMBERS, weight=U16,
                                                           leafWeight=U16),
                                 required=("major", "minor"))),
        "throttleReadBpsDevice": _THROTTLE, "throttleWriteBpsDevice": _THROTTLE,
        "throttleReadIOPSDevice": _THROTTLE, "throttleWriteIOPSDevice": _THROTTLE}),
    "hugepageLimits": List(Obj("LinuxHugepageLimit", {"pageSize": STR, "limit": UINT},
                               required=("pageSize", "limit"))),
    "network": Obj("LinuxNetwork", {
        "classID": U32,
        "priorities": List(Obj("LinuxInterfacePriority", {"name": STR, "priority": U32},
                               required=("name", "priority")))}),
    "rdma": Map(Obj("LinuxRdma", {"hcaHandles": U32, "hcaObjects": U32})),
    "unified": Map(STR),
})

NAMESPACE = Obj("LinuxNamespace", {"type": Scalar(str, choices=(
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")), "path": STR},
    required=("type",))

DEVICE = Obj("LinuxDevice", {"path": STR, "type": Scalar(str, choices=("c", "b", "u", "p")),
                             "major": INT, "minor": INT, "fileMode": U32, "uid": U32, "gid": U32},
             required=("path", "type"))

LINUX = Obj("Linux", {
    "namespaces": List(NAMESPACE),
    "uidMappings": List(ID_MAPPING),
    "gidMappings": List(ID_MAPPING),
    "timeOffsets": Map(Obj("TimeOffset", {"secs": INT, "nanosecs": U32})),
    "devices": List(DEVICE),
    "netDevices": Map(Obj("NetDevice", {"name": STR})),
    "cgroupsPath": STR,
    "resources": Checked(RESOURCES),
    "rootfsPropagation": Scalar(str, choices=(
        "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
        "runbindable")),
    "seccomp": SECCOMP,
    "sysctl": Map(STR),
    "maskedPaths": STRS,
    "readonlyPaths": STRS,
    "mountLabel": STR,
    "intelRdt": Checked(Obj("IntelRdt", {"closID": STR, "l3CacheSchema": STR,
                                         "memBwSchema": STR, "schemata": STRS,
                                         "enableCMT": BOOL, "enableMBM": BOOL})),
    "personality": Obj("Personality", {"domain": Scalar(str, choices=("LINUX", "LINUX32")),
                                       "flags": STRS}, required=("domain",)),
    "memoryPolicy": Obj("MemoryPolicy", {"mode": STR, "nodes": STR, "flags": STRS},
                        required=("mode",)),
})

CONFIG = Obj("Spec", {
    "ociVersion": STR,
    "process": PROCESS,
    "root": Obj("Root", {"path": STR, "readonly": BOOL}, required=("path",)),
    "hostname": STR,
    "domainname": STR,
    "mounts": List(MOUNT),
    "hooks": HOOKS,
    "annotations": Map(STR),
    "linux": LINUX,
    # other platforms' sections: accepted, ignored on Linux
    "solaris": Any(), "windows": Any(), "vm": Any(), "zos": Any(), "freebsd": Any(),
}, required=("ociVersion",))


def load_resources(data, path="linux.resources", strict=False):
    """`update --resources`: the same checks as linux.resources in config.json."""
    loader = Loader(strict)
    return Checked(RESOURCES).load(data, path, loader), loader.warnings


def load_process(data, path="process", strict=False):
    """A process.json for `exec --process` (the same schema as config.json's process)."""
    loader = Loader(strict)
    process = PROCESS.load(data, path, loader)
    if process.user is None:  # as in config.json (spec/validate.py): uid 0, gid 0, as runc
        process.user = USER.load({"uid": 0, "gid": 0}, f"{path}.user", loader)
    return process, loader.warnings
