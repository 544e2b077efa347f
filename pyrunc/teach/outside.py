"""What the host sees of a container's process in /proc/PID and its cgroups: the view
verify adds to its probe's, and all that audit has."""
import os

def outside_view(pid):
    """What the host sees of the container process."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    ns = {}
    for name in os.listdir(f"/proc/{pid}/ns"):
        ns[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
    maps = {}
    for key in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{key}") as f:
            maps[key] = [tuple(int(v) for v in line.split()) for line in f]
    with open(f"/proc/{pid}/oom_score_adj") as f:
        oom = int(f.read())
    return {"status": status, "ns": ns, "oom_score_adj": oom, "cgroup_files": cgroup_files(pid),
            **maps}


def cgroup_files(pid):
    """The limits the kernel enforces on pid, read from its cgroups as the host sees them:
    {"memory": bytes or "max", "pids": count or "max", "devices": the v1 devices.list
    lines}; a v1 hierarchy wins over cgroup2 for its controller, as on hybrid hosts."""
    places = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else ("",):
                places.setdefault(c, path)
    v2_root = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") \
        else "/sys/fs/cgroup"
    wanted = {"memory": ("memory/{}/memory.limit_in_bytes", "memory.max"),
              "pids": ("pids/{}/pids.max", "pids.max")}
    limits = {}
    if "devices" in places and os.path.isdir("/sys/fs/cgroup/devices"):
        try:
            with open(f"/sys/fs/cgroup/devices/{places['devices'].lstrip('/')}/devices.list") as f:
                limits["devices"] = f.read().split("\n")[:-1]
        except OSError:
            pass
    for controller, (v1_file, v2_file) in wanted.items():
        if controller in places and os.path.isdir(f"/sys/fs/cgroup/{controller}"):
            path = "/sys/fs/cgroup/" + v1_file.format(places[controller].lstrip("/"))
        elif "" in places:
            path = os.path.join(v2_root, places[""].lstrip("/"), v2_file)
        else:
            continue
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        limits[controller] = text if text == "max" else int(text)
    return limits
