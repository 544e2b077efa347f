"""The CIS Docker Benchmark control behind each of `pyrunc check`'s findings.

Numbers and titles are those of CIS Docker Benchmark v1.6.0 (as docker-bench-security
v1.6.0 numbers its tests). Earlier versions number the same controls differently: v1.2.0
has capabilities at 5.3 and a read-only root at 5.12, because 1.6.0 added "swarm mode" as
5.1. A finding maps to a control when fixing it is what the control asks of a container's
configuration; findings with no such control (masked paths, a seccomp rule shadowed by
another, a device node the cgroup denies) map to none.
"""

VERSION = "1.6.0"
NAME = "CIS Docker Benchmark"

TITLES = {
    "2.9": "Enable user namespace support",
    "4.1": "Ensure that a user for the container has been created",
    "5.4": "Ensure that Linux kernel capabilities are restricted within containers",
    "5.5": "Ensure that privileged containers are not used",
    "5.6": "Ensure sensitive host system directories are not mounted on containers",
    "5.10": "Ensure that the host's network namespace is not shared",
    "5.11": "Ensure that the memory usage for containers is limited",
    "5.12": "Ensure that CPU priority is set appropriately on containers",
    "5.13": "Ensure that the container's root filesystem is mounted as read only",
    "5.16": "Ensure that the host's process namespace is not shared",
    "5.17": "Ensure that the host's IPC namespace is not shared",
    "5.18": "Ensure that host devices are not directly exposed to containers",
    "5.20": "Ensure mount propagation mode is not set to shared",
    "5.21": "Ensure that the host's UTS namespace is not shared",
    "5.22": "Ensure the default seccomp profile is not Disabled",
    "5.26": "Ensure that the container is restricted from acquiring additional privileges",
    "5.29": "Ensure that the PIDs cgroup limit is used",
    "5.31": "Ensure that the host's user namespaces are not shared",
    "5.32": "Ensure that the Docker socket is not mounted inside any containers",
}

# a check rule whose every finding is one control's concern
BY_RULE = {
    "capabilities": ("5.4",),
    "seccomp": ("5.22",),
    "noNewPrivileges": ("5.26",),
    "readonlyRoot": ("5.13",),
    "userNamespace": ("2.9",),
    "privileged": ("5.5",),
    "user": ("4.1",),
    "propagation": ("5.20",),
    "hostPaths": ("5.6",),
}

# hostNamespaces: by the namespace type named in the finding ("no pid namespace", "the
# host's pid namespace"); sharing the host's mount namespace exposes every host path
BY_NAMESPACE = {"network": "5.10", "pid": "5.16", "ipc": "5.17", "uts": "5.21",
                "user": "5.31", "mount": "5.6"}

# resources: by the limit the finding is about
BY_RESOURCE = {"memory": "5.11", "cpu": "5.12", "pids": "5.29", "devices": "5.18"}

# host directories 5.6 names as sensitive, and the socket that 5.32 is about
SENSITIVE = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


def controls(rule, finding):
    """The control ids behind one finding of rule `rule`, most specific first."""
    if rule in BY_RULE:
        ids = BY_RULE[rule]
        if rule == "userNamespace" and finding.path == "linux.namespaces":
            ids = ("5.31", "2.9")   # no user namespace at all: the host's is shared
        if rule == "hostPaths" and any(s in finding.message for s in DOCKER_SOCKETS):
            ids = ("5.32", "5.6")
        return ids
    if rule == "hostNamespaces":
        for kind, cid in BY_NAMESPACE.items():
            if f" {kind} namespace" in finding.message:
                return (cid,)
        return ()
    if rule == "mountOptions":
        if "a bind mount of host path" not in finding.message:
            return ()
        if any(s in finding.message for s in DOCKER_SOCKETS):
            return ("5.32", "5.6")
        return ("5.6",)
    if rule == "resources":
        return (BY_RESOURCE[finding.path.split(".")[2].split("[")[0]],)
    return ()


def entries(ids):
    """[{"id", "title"}] for JSON."""
    return [{"id": cid, "title": TITLES[cid]} for cid in ids]
