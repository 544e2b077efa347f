"""`linux.resources` means what runc makes of it: the same config is created with pyrunc and
with runc (the oracle, always: this test is about agreeing with it), and the host-side
cgroup files of the two containers are compared, file by file, in every v1 hierarchy.

The configs: the `linux.resources` docker, podman and containerd's CRI generate (captured by
integration/capture_clients.py into integration/data/clients/), and one case per rule of
runc's cgroup drivers for zero, absent and -1 values (libcontainer/cgroups/fs: a zero
weight, share, quota, period, limit or classid is unset; -1 is unlimited).
"""
import glob
import json
import os
import uuid

import pytest

from integration import itlib, sandbox

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "clients")
CGROUP_TOP = "/sys/fs/cgroup"
M = 1 << 20
FILES = {"cpu": ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.rt_runtime_us",
                 "cpu.rt_period_us"),
         "memory": ("memory.limit_in_bytes", "memory.soft_limit_in_bytes",
                    "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.oom_control"),
         "pids": ("pids.max",), "cpuset": ("cpuset.cpus", "cpuset.mems"),
         "blkio": ("blkio.bfq.weight", "blkio.weight"), "devices": ("devices.list",)}

RULES = {
    "absent": {},
    "docker zeros": {"memory": {"limit": 0, "reservation": 0, "swap": 0,
                                "disableOOMKiller": False},
                     "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                             "realtimePeriod": 0, "cpus": "", "mems": ""},
                     "pids": {"limit": 0}, "blockIO": {"weight": 0}},
    "minus one": {"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}},
    "quota alone": {"cpu": {"quota": 50000}},
    "period alone": {"cpu": {"period": 50000}},
    "quota and a shorter period": {"cpu": {"quota": 20000, "period": 40000}},
    "memory and swap": {"memory": {"limit": 64 * M, "swap": 128 * M, "reservation": 32 * M}},
    "swap equal to memory": {"memory": {"limit": 64 * M, "swap": 64 * M}},
    "swappiness": {"memory": {"swappiness": 0, "disableOOMKiller": True}},
    "weights": {"cpu": {"shares": 2048}, "blockIO": {"weight": 500}},
    "cpuset": {"cpu": {"cpus": "0", "mems": "0"}},
}


def _captured():
    cases = {}
    for path in sorted(glob.glob(os.path.join(DATA, "*.json"))):
        with open(path) as f:
            config = json.load(f)
        cases[os.path.basename(path)[:-5]] = config.get("linux", {}).get("resources") or {}
    return cases


CASES = {**_captured(), **RULES}


def _hierarchies():
    return {c: os.path.join(CGROUP_TOP, c) for c in FILES
            if os.path.isdir(os.path.join(CGROUP_TOP, c))}


def _read_cgroup(parent, cid):
    found = {}
    for controller, top in _hierarchies().items():
        d = os.path.join(top, parent.lstrip("/"), cid)
        for name in FILES[controller]:
            try:
                with open(os.path.join(d, name)) as f:
                    text = f.read().strip()
            except FileNotFoundError:
                continue
            if name == "memory.oom_control":  # its counters differ: the setting only
                text = text.splitlines()[0]
            if name == "devices.list":  # the rules as a set (the kernel lists them in the
                # order written); runc 1.1 adds tun itself (docs/SPEC-NOTES.md)
                text = "\n".join(sorted(line for line in text.splitlines()
                                         if line != "c 10:200 rwm"))
            found[f"{controller}/{name}"] = text
    return found


@pytest.fixture
def both(workdir):
    drivers = []
    for name in ("pyrunc", "runc"):
        argv = itlib.runtime_command(name)
        if argv is None:
            pytest.fail(f"{name} is needed: this test compares pyrunc with runc", pytrace=False)
        d = os.path.join(workdir, name)
        os.makedirs(d)
        drivers.append(itlib.Runtime(name, argv, d))
    parent = f"/pyrunc-it-res-{uuid.uuid4().hex[:8]}"
    yield drivers, parent
    problems = []
    for driver in drivers:
        problems += driver.cleanup()
    # the runtimes made the parent in every hierarchy, not only those read here
    problems += sandbox.remove_cgroups(parent.lstrip("/"))
    assert not sandbox.cgroup_dirs(parent.lstrip("/")), "cgroup parent left"
    assert not problems, problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_cgroup_files_are_runcs(both, bundle, case):
    drivers, parent = both
    resources = CASES[case]
    seen = {}
    for driver in drivers:
        b = bundle.make(f"b-{driver.name}")
        b.config["process"]["args"] = ["sleep", "30"]
        b.config["linux"]["resources"] = json.loads(json.dumps(resources))
        b.config["linux"]["cgroupsPath"] = f"{parent}/{driver.name}"
        cid = itlib.new_id()
        proc = driver.create(b, cid)
        assert proc.returncode == 0, f"{driver.name}: {driver.output(cid, 'stderr')}"
        seen[driver.name] = _read_cgroup(parent, driver.name)
        assert driver.delete(cid, force=True).returncode == 0
    assert seen["pyrunc"], "no cgroup file read"
    assert seen["pyrunc"] == seen["runc"]
