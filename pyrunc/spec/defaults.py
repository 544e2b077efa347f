"""The config `pyrunc spec` writes: the same shape as `runc spec`, with the newest ociVersion.

One difference from runc's, on purpose: `terminal` is false, a default that works when stdin
is not a tty (CI, scripts, pipes). `--rootless` makes runc's rootless
config (see below).
"""
import os

from pyrunc.spec import NEWEST

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless=False, args=None):
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    linux = {"namespaces": namespaces, "maskedPaths": list(MASKED_PATHS),
             "readonlyPaths": list(READONLY_PATHS)}
    if rootless:
        # runc's: no network namespace (an ordinary user could only have lo in one) but a
        # user namespace mapping the caller's ids to root; /sys bound (sysfs needs a network
        # namespace of the user's own); no uid=/gid= mount options (those ids are not
        # mapped); no cgroup limits (cgroups are root's unless delegated)
        namespaces[:] = [n for n in namespaces if n["type"] != "network"] + [{"type": "user"}]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        mounts[5] = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        for m in mounts:
            if "options" in m:
                m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
    else:
        # as runc's: no device but the spec's defaults (which the cgroup allows anyway)
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    return {
        "ociVersion": NEWEST,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args or ["sh"]),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            # no ambient set: raising one needs the cap in inheritable too, and uid 0
            # keeps its permitted set across exec anyway
            "capabilities": {s: list(DEFAULT_CAPS) for s in
                             ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": mounts,
        "linux": linux,
    }
