"""Policies: rules a config must meet before `create`, each refusing or tightening it.

A policy is a JSON file (pyrunc/policies/baseline.json is the shipped one; docs/POLICY.md
describes the format). It works on the parsed config.json as a plain dict, so that a
tightened config is again just config.json:

    policy = load_policy("baseline")
    config, lines = policy.apply(config)   # lines: "tightened: process.noNewPrivileges ..."

Each rule finds violations (level, JSON path, message). A "tighten" rule first changes the
config where it can; whatever is still wrong afterwards is refused, as for a "refuse" rule,
so a config that comes out of apply() always passes the same policy. `pyrunc check` shows
the same findings without refusing anything.
"""
import copy
import json
import os
from typing import NamedTuple

from pyrunc.errors import PyruncError
from pyrunc.linux.capabilities import CAPS, LEVELS, RISK, SETS, WHY

POLICY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")

# default actions that stop a syscall the profile does not list
DENYING = {"SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
           "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"}  # TRACE without a tracer: ENOSYS

# namespace type -> the name under /proc/PID/ns/
NS_FILE = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}

# what sharing the host's namespace of that type gives away
NS_RISK = {
    "mount": ("extreme", "the container sees and changes the host's mounts"),
    "pid": ("high", "the container sees, signals and may ptrace host processes"),
    "network": ("high", "host interfaces, ports and abstract unix sockets (host daemons)"),
    "user": ("high", "uid 0 in the container is uid 0 on the host"),
    "ipc": ("medium", "host SysV IPC and POSIX message queues"),
    "uts": ("low", "the host's hostname"),
    "cgroup": ("low", "the host's cgroup paths are visible"),
    "time": ("low", "the host's clock offsets"),
}

BIND = {"bind", "rbind"}
PSEUDO_FS = {"proc", "sysfs", "cgroup", "cgroup2", "mqueue", "devpts"}


class Finding(NamedTuple):
    level: str
    path: str
    message: str


def level_at_least(level, floor):
    return LEVELS.index(level) >= LEVELS.index(floor)


def _linux(config):
    return config.get("linux") or {}


def _ensure(d, key, empty):
    """d[key], made empty first when absent or null (JSON null means absent in the spec)."""
    if d.get(key) is None:
        d[key] = empty
    return d[key]


def _options(mount):
    return mount.get("options") or []


def is_bind(mount):
    return mount.get("type") == "bind" or bool(BIND & set(_options(mount)))


def host_namespace(ns_type, path):
    """True when PATH is the namespace pyrunc itself runs in (the host's, for a host runtime).

    Compared by device and inode with /proc/self/ns/TYPE; a path that cannot be examined
    counts when it names pid 1's or our own namespace by text.
    """
    own = f"/proc/self/ns/{NS_FILE[ns_type]}"
    try:
        a, b = os.stat(path), os.stat(own)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    except OSError:
        return os.path.normpath(path) in (own, f"/proc/1/ns/{NS_FILE[ns_type]}")


class Rule:
    """One policy rule. `params`: its settings with defaults; `required`: settings without."""
    name = None
    params = {}
    required = ()

    def __init__(self, action, settings, where, policy_dir):
        self.action = action
        self.where = where
        self.policy_dir = policy_dir
        self.settings = dict(self.params)
        self.settings.update(settings)

    def findings(self, config):
        raise NotImplementedError

    def tighten(self, config):
        """Change config (a private copy) in place; return human lines 'tightened: ...'."""
        raise NotImplementedError


class Seccomp(Rule):
    name = "seccomp"
    params = {"profile": "seccomp_default.json"}

    def findings(self, config):
        seccomp = _linux(config).get("seccomp")
        if seccomp is None:
            return [Finding("high", "linux.seccomp", "no seccomp filter: every syscall the "
                            "capabilities allow reaches the kernel")]
        action = seccomp.get("defaultAction")
        if action not in DENYING:
            return [Finding("high", "linux.seccomp.defaultAction",
                            f"{action} lets every syscall the profile does not list through "
                            "(a deny list); an allow list denies by default")]
        return []

    def tighten(self, config):
        # An allowing profile is left alone: replacing it could allow what it denies.
        if _linux(config).get("seccomp") is not None:
            return []
        path = os.path.join(self.policy_dir, self.settings["profile"])
        profile = _read_json(path if os.path.exists(path) else
                             os.path.join(POLICY_DIR, self.settings["profile"]),
                             f"{self.where}.profile")
        _ensure(config, "linux", {})["seccomp"] = profile
        return [f"tightened: linux.seccomp set to {self.settings['profile']} "
                f"({len(profile.get('syscalls') or ())} rules, default "
                f"{profile['defaultAction']})"]


class NoNewPrivileges(Rule):
    name = "noNewPrivileges"

    def findings(self, config):
        process = config.get("process")
        if process is None or process.get("noNewPrivileges") is True:
            return []
        return [Finding("medium", "process.noNewPrivileges",
                        "not set: setuid binaries and file capabilities in the image can "
                        "raise privileges at execve")]

    def tighten(self, config):
        if self.findings(config):
            config["process"]["noNewPrivileges"] = True
            return ["tightened: process.noNewPrivileges set to true"]
        return []


class Capabilities(Rule):
    name = "capabilities"
    params = {"maxRisk": "low"}

    def _above(self, name):
        return name in RISK and not level_at_least(self.settings["maxRisk"], RISK[name])

    def findings(self, config):
        process = config.get("process")
        if process is None:
            return []
        caps = process.get("capabilities")
        if caps is None:
            return [Finding("extreme", "process.capabilities",
                            "not set: the container keeps the runtime's capabilities "
                            "(all of them when pyrunc runs as root)")]
        found = []
        for key in SETS:
            for i, name in enumerate(caps.get(key) or ()):
                if self._above(name):
                    found.append(Finding(RISK[name], f"process.capabilities.{key}[{i}]",
                                         f"{name} is {RISK[name]} risk, above "
                                         f"{self.settings['maxRisk']}: {WHY[name]}"))
        return found

    def tighten(self, config):
        process = config.get("process")
        if process is None:
            return []
        caps = process.get("capabilities")
        if caps is None:
            keep = [n for n in CAPS if not self._above(n)]
            process["capabilities"] = {"bounding": keep, "effective": list(keep),
                                       "permitted": list(keep), "inheritable": [],
                                       "ambient": []}
            return [f"tightened: process.capabilities set (was absent: the runtime's) to "
                    f"{', '.join(keep) or 'none'} in bounding, effective, permitted"]
        removed = {}
        for key in SETS:
            if caps.get(key) is None:
                continue
            for name in caps[key]:
                if self._above(name):
                    removed.setdefault(name, []).append(key)
            caps[key] = [n for n in caps[key] if not self._above(n)]
        return [f"tightened: process.capabilities: removed {name} ({RISK[name]}) from "
                f"{', '.join(keys)}" for name, keys in removed.items()]


class UserNamespace(Rule):
    name = "userNamespace"
    params = {"hostID": 100000, "size": 65536}

    def findings(self, config):
        linux = _linux(config)
        user = [ns for ns in linux.get("namespaces") or () if ns.get("type") == "user"]
        if not user:
            return [Finding("high", "linux.namespaces", "no user namespace: uid 0 in the "
                            "container is uid 0 on the host")]
        if user[0].get("path") is not None:
            return []  # joining: the hostNamespaces rule judges whose namespace it is
        return [Finding("high", f"linux.{key}[{i}]",
                        f"maps host id 0 (root) into the container as {m.get('containerID')}: "
                        "files of host root are theirs")
                for key in ("uidMappings", "gidMappings")
                for i, m in enumerate(linux.get(key) or ()) if m.get("hostID") == 0]

    def tighten(self, config):
        linux = _linux(config)
        if any(ns.get("type") == "user" for ns in linux.get("namespaces") or ()):
            return []  # mappings with host root are not rewritten: file ownership follows them
        linux = _ensure(config, "linux", {})
        _ensure(linux, "namespaces", []).append({"type": "user"})
        mapping = {"containerID": 0, "hostID": self.settings["hostID"],
                   "size": self.settings["size"]}
        linux["uidMappings"] = [dict(mapping)]
        linux["gidMappings"] = [dict(mapping)]
        return [f"tightened: linux.namespaces: added a user namespace mapping container ids "
                f"0-{mapping['size'] - 1} to host ids {mapping['hostID']}-"
                f"{mapping['hostID'] + mapping['size'] - 1}"]


class ReadonlyRoot(Rule):
    name = "readonlyRoot"

    def findings(self, config):
        root = config.get("root")
        if root is None or root.get("readonly") is True:
            return []
        return [Finding("medium", "root.readonly", "the root filesystem is writable: a "
                        "compromised process can replace the image's programs")]

    def tighten(self, config):
        if self.findings(config):
            config["root"]["readonly"] = True
            return ["tightened: root.readonly set to true"]
        return []


class _PathList(Rule):
    key = None
    level = None
    what = None

    def _missing(self, config):
        have = set(_linux(config).get(self.key) or ())
        return [p for p in self.settings["paths"] if p not in have]

    def findings(self, config):
        return [Finding(self.level, f"linux.{self.key}", f"{p} is not {self.what}")
                for p in self._missing(config)]

    def tighten(self, config):
        missing = self._missing(config)
        if missing:
            _ensure(_ensure(config, "linux", {}), self.key, []).extend(missing)
            return [f"tightened: linux.{self.key}: added {', '.join(missing)}"]
        return []


class MaskedPaths(_PathList):
    name = "maskedPaths"
    key = "maskedPaths"
    level = "medium"  # reading them leaks host information
    what = "masked (host information readable)"
    params = {"paths": []}
    required = ("paths",)


class ReadonlyPaths(_PathList):
    name = "readonlyPaths"
    key = "readonlyPaths"
    level = "high"  # writing them changes the host kernel (sysctls, sysrq-trigger)
    what = "read-only (host kernel settings writable)"
    params = {"paths": []}
    required = ("paths",)


class MountOptions(Rule):
    name = "mountOptions"
    # /dev and /dev/pts hold the container's device nodes: they cannot be nodev
    params = {"require": ["nosuid", "nodev"], "nodevExempt": ["/dev", "/dev/pts"]}

    def _missing(self, mount):
        opts = set(_options(mount))
        need = [o for o in self.settings["require"] if o not in opts]
        if mount.get("destination") in self.settings["nodevExempt"]:
            need = [o for o in need if o != "nodev"]
        return need

    def findings(self, config):
        found = []
        for i, m in enumerate(config.get("mounts") or ()):
            need = self._missing(m)
            if not need:
                continue
            if is_bind(m):
                level, why = "high", f"a bind mount of host path {m.get('source')}"
            elif m.get("type") in PSEUDO_FS:
                level, why = "low", f"a {m['type']} mount"
            else:
                level, why = "medium", f"a {m.get('type') or 'mount'} the container can write"
            found.append(Finding(level, f"mounts[{i}] ({m.get('destination')})",
                                 f"{why} without {', '.join(need)}"))
        return found

    def tighten(self, config):
        lines = []
        opposite = {"nosuid": "suid", "nodev": "dev", "noexec": "exec", "ro": "rw"}
        for i, m in enumerate(config.get("mounts") or ()):
            need = self._missing(m)
            if need:
                undo = {opposite.get(o) for o in need}
                m["options"] = [o for o in _options(m) if o not in undo] + need
                lines.append(f"tightened: mounts[{i}] ({m.get('destination')}): added "
                             f"{', '.join(need)}")
        return lines


class HostNamespaces(Rule):
    name = "hostNamespaces"
    params = {"require": ["pid", "network", "ipc", "uts", "mount"]}

    def findings(self, config):
        listed = _linux(config).get("namespaces") or []
        types = {ns.get("type") for ns in listed}
        found = []
        for t in self.settings["require"]:
            if t not in types:
                level, why = NS_RISK[t]
                found.append(Finding(level, "linux.namespaces",
                                     f"no {t} namespace: shares the host's ({why})"))
        for i, ns in enumerate(listed):
            t, path = ns.get("type"), ns.get("path")
            if path is not None and t in NS_FILE and host_namespace(t, path):
                level, why = NS_RISK[t]
                found.append(Finding(level, f"linux.namespaces[{i}].path",
                                     f"{path} is the host's {t} namespace ({why})"))
        return found

    def tighten(self, config):
        listed = _ensure(_ensure(config, "linux", {}), "namespaces", [])
        lines = []
        for i, ns in enumerate(listed):
            t, path = ns.get("type"), ns.get("path")
            if path is not None and t in NS_FILE and host_namespace(t, path):
                del ns["path"]
                lines.append(f"tightened: linux.namespaces[{i}] ({t}): path {path} removed, "
                             f"the container gets a new {t} namespace")
        types = {ns.get("type") for ns in listed}
        for t in self.settings["require"]:
            if t not in types:
                listed.append({"type": t})
                lines.append(f"tightened: linux.namespaces: added a {t} namespace")
        return lines


RULES = {cls.name: cls for cls in (Seccomp, NoNewPrivileges, Capabilities, UserNamespace,
                                   ReadonlyRoot, MaskedPaths, ReadonlyPaths, MountOptions,
                                   HostNamespaces)}


class Policy:
    def __init__(self, name, rules):
        self.name = name
        self.rules = rules

    def findings(self, config):
        return [f for rule in self.rules for f in rule.findings(config)]

    def evaluate(self, config):
        """(tightened copy of config, 'tightened: ...' lines, refused violations as lines)."""
        config = copy.deepcopy(config)
        lines = []
        for rule in self.rules:
            if rule.action == "tighten":
                lines.extend(rule.tighten(config))
        refused = []
        for rule in self.rules:
            for f in rule.findings(config):
                note = " (cannot be tightened)" if rule.action == "tighten" else ""
                refused.append(f"{f.path}: {f.message} [{rule.name}, {f.level}]{note}")
        return config, lines, refused

    def apply(self, config):
        """Return (tightened copy of config, lines); raise PyruncError listing every violation."""
        config, lines, refused = self.evaluate(config)
        if refused:
            raise PyruncError(f"policy {self.name} refuses this config "
                              f"({len(refused)} violation{'s' * (len(refused) != 1)}):\n  "
                              + "\n  ".join(refused))
        return config, lines


def _read_json(path, where):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except OSError as e:
        raise PyruncError(f"{path}: {e.strerror}", path=where, step="policy") from None
    except ValueError as e:
        raise PyruncError(f"{path}: not valid JSON: {e}", path=where, step="policy") from None


def load_policy(path_or_name):
    """A Policy from a file, or from pyrunc/policies/NAME.json for a bare name ("baseline")."""
    if os.sep in path_or_name or path_or_name.endswith(".json"):
        path = path_or_name
    else:
        path = os.path.join(POLICY_DIR, path_or_name + ".json")
    data = _read_json(path, None)

    def fail(where, message):
        raise PyruncError(f"{path}: {message}", path=where, step="policy")

    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        fail(None, 'expected an object with a "rules" list')
    for key in data:
        if key not in ("name", "description", "rules"):
            fail(key, "unknown field")
    rules = []
    for i, entry in enumerate(data["rules"]):
        where = f"rules[{i}]"
        if not isinstance(entry, dict):
            fail(where, "expected an object")
        cls = RULES.get(entry.get("rule"))
        if cls is None:
            fail(f"{where}.rule", f"unknown rule {entry.get('rule')!r} (known: "
                                  f"{', '.join(RULES)})")
        if entry.get("action") not in ("refuse", "tighten"):
            fail(f"{where}.action", f"{entry.get('action')!r} is not refuse or tighten")
        settings = {k: v for k, v in entry.items() if k not in ("rule", "action")}
        for key in cls.required:
            if key not in settings:
                fail(f"{where}.{key}", f"required setting for {cls.name} is missing")
        for key, value in settings.items():
            if key not in cls.params:
                fail(f"{where}.{key}", f"unknown setting for {cls.name} (known: "
                                       f"{', '.join(cls.params) or 'none'})")
            if type(value) is not type(cls.params[key]):
                fail(f"{where}.{key}", f"expected {type(cls.params[key]).__name__}")
        if cls is Capabilities and settings.get("maxRisk", "low") not in LEVELS:
            fail(f"{where}.maxRisk", f"not one of {', '.join(LEVELS)}")
        rules.append(cls(entry["action"], settings, where, os.path.dirname(path)))
    return Policy(data.get("name") or os.path.basename(path).removesuffix(".json"), rules)
