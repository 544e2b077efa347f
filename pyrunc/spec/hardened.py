"""A hardened config: the default one (`pyrunc spec`) made to pass the baseline policy.

Every choice is written out here rather than borrowed from the policy (policy.py sits
above spec/); tests/test_policy.py checks that the result passes pyrunc/policies/baseline.json
and that a busybox shell still runs in it.

- capabilities: the article's set, CAP_NET_BIND_SERVICE in bounding, effective, permitted;
  nothing inheritable or ambient (the process is container root, which regains the
  bounding set at execve without ambient capabilities);
- a user namespace mapping container ids 0-65535 to host ids 100000-165535 (100000 is
  where useradd starts /etc/subuid ranges): container root is an unprivileged host uid,
  and 65536 ids cover the users images ship (nobody = 65534) and devpts' gid=5.
  A base that already maps to nonzero host ids (a rootless config) keeps its mapping;
- new pid, network, ipc, uts, mount and cgroup namespaces (cgroup: so that /sys/fs/cgroup
  can be mounted from inside the user namespace and shows the container's own cgroup);
- noNewPrivileges, a read-only root and a tmpfs on /tmp (nosuid, nodev, noexec), the only
  writable place besides /dev/shm;
- the default seccomp profile, pyrunc/policies/seccomp_default.json;
- runc's masked and read-only paths plus /proc/interrupts and /sys/devices/virtual/powercap
  (masked by moby: interrupt counts and RAPL energy counters leak host activity);
- nosuid and nodev on every mount, except nodev on /dev and /dev/pts (device nodes).
"""
import copy
import json
import os

ARTICLE_CAPS = ["CAP_NET_BIND_SERVICE"]
HOST_ID = 100000
SIZE = 65536
NAMESPACES = ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
                "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEVICE_DIRS = ("/dev", "/dev/pts")
TMP = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
       "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"]}
SECCOMP_PROFILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "policies", "seccomp_default.json")


def _ensure(d, key, empty):
    """d[key], made empty first when absent or null (JSON null means absent in the spec)."""
    if d.get(key) is None:
        d[key] = empty
    return d[key]


def hardened_spec(base, host_id=HOST_ID, size=SIZE):
    """A hardened copy of base (a config dict shaped like `runc spec` output)."""
    config = copy.deepcopy(base)
    process = _ensure(config, "process", {})
    process["capabilities"] = {"bounding": list(ARTICLE_CAPS), "effective": list(ARTICLE_CAPS),
                               "permitted": list(ARTICLE_CAPS), "inheritable": [],
                               "ambient": []}
    process["noNewPrivileges"] = True
    _ensure(config, "root", {"path": "rootfs"})["readonly"] = True

    linux = _ensure(config, "linux", {})
    namespaces = _ensure(linux, "namespaces", [])
    have = {ns.get("type") for ns in namespaces}
    namespaces.extend({"type": t} for t in NAMESPACES if t not in have)
    for key in ("uidMappings", "gidMappings"):
        maps = linux.get(key)
        if not maps or any(m.get("hostID") == 0 for m in maps):
            linux[key] = [{"containerID": 0, "hostID": host_id, "size": size}]
    for key, paths in (("maskedPaths", MASKED_PATHS), ("readonlyPaths", READONLY_PATHS)):
        listed = _ensure(linux, key, [])
        listed.extend(p for p in paths if p not in listed)
    with open(SECCOMP_PROFILE, "rb") as f:
        linux["seccomp"] = json.loads(f.read())

    mounts = _ensure(config, "mounts", [])
    if not any(m.get("destination") == "/tmp" for m in mounts):
        mounts.append(copy.deepcopy(TMP))
    for m in mounts:
        options = _ensure(m, "options", [])
        need = ["nosuid"] if m.get("destination") in DEVICE_DIRS else ["nosuid", "nodev"]
        options[:] = [o for o in options if o not in ("suid", "dev")]
        options.extend(o for o in need if o not in options)
    return config
