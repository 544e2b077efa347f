"""Settings the init applies with a syscall each: time offsets, scheduler, I/O priority,
memory policy. Each test reads the effect back from the kernel inside the container."""
import ctypes
import os

import pytest

from integration import itlib

DAY = 86400


@pytest.mark.pyrunc_only("runc 1.1 predates linux.timeOffsets (spec 1.2)")
def test_time_namespace_offsets(runtime, bundle, probe):
    b = bundle.make("b")
    b.namespaces().append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"boottime": {"secs": 10 * DAY},
                                        "monotonic": {"secs": 10 * DAY}}
    report = probe(b, "read=/proc/uptime")
    uptime = float(report.result("read=/proc/uptime")["head"].split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert uptime - host == pytest.approx(10 * DAY, abs=60)


@pytest.mark.pyrunc_only("runc 1.1 predates process.scheduler (spec 1.2)")
def test_scheduler_policy_and_nice(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    # policy from /proc/self/sched, nice is field 19 of /proc/self/stat
    b.config["process"]["args"] = ["sh", "-c", "grep -E '^policy' /proc/self/sched; "
                                   "cut -d' ' -f19 /proc/self/stat"]
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    policy_line, nice = proc.stdout.split("\n")[:2]
    assert policy_line.split(":")[1].strip() == "3"  # SCHED_BATCH
    assert nice.strip() == "7"


@pytest.mark.pyrunc_only("runc 1.1 predates process.ioPriority (spec 1.2)")
def test_io_priority(runtime, bundle):
    b = bundle.make("b")
    b.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE"}
    b.config["process"]["args"] = ["sleep", "30"]
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    pid = runtime.state(cid)["pid"]
    # busybox has no ionice: ask the kernel from the host
    libc = ctypes.CDLL(None, use_errno=True)
    prio = libc.syscall(252, 1, pid)  # ioprio_get(IOPRIO_WHO_PROCESS, pid)
    assert prio >> 13 == 3, prio      # IOPRIO_CLASS_IDLE


@pytest.mark.pyrunc_only("runc 1.1 predates linux.memoryPolicy (spec 1.3)")
def test_memory_policy_bind(runtime, bundle):
    b = bundle.make("b")
    b.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    b.config["process"]["args"] = ["sleep", "30"]
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    pid = runtime.state(cid)["pid"]
    assert runtime.start(cid).returncode == 0
    with open(f"/proc/{pid}/numa_maps") as f:
        maps = f.read()
    # every mapping of the process carries the bind policy set before exec
    assert "bind:0" in maps, maps[:300]


def sched_policy(proc):
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split(":")[1])


@pytest.mark.pyrunc_only("runc 1.1 predates process.scheduler (spec 1.2)")
def test_realtime_policy_gets_the_budget_the_config_gives_its_cgroup(runtime, bundle):
    # v1 cpu cgroups (RT_GROUP_SCHED) refuse real-time tasks in a group whose
    # cpu.rt_runtime_us is 0, as a new one is: realtimeRuntime gives it a budget
    b = bundle.make("b")
    b.config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    b.config["process"]["args"] = ["sh", "-c", "grep -E '^policy' /proc/self/sched"]
    b.config["linux"]["resources"] = {"cpu": {"realtimePeriod": 1000000,
                                              "realtimeRuntime": 10000}}
    assert sched_policy(runtime.run(b, itlib.new_id())) == 1  # SCHED_FIFO
    # without a budget: refused before anything exists, saying why
    if not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.fail("the test expects a v1 cpu hierarchy with RT_GROUP_SCHED (this VM)")
    del b.config["linux"]["resources"]
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "process.scheduler.policy" in proc.stderr and "realtimeRuntime" in proc.stderr


@pytest.mark.pyrunc_only("runc 1.1 predates process.scheduler (spec 1.2)")
def test_deadline_without_a_period(runtime, bundle):
    # config.md: period "If not set, the runtime must use the value 0"; the kernel then
    # takes the deadline as the period
    b = bundle.make("b")
    b.config["process"]["scheduler"] = {"policy": "SCHED_DEADLINE", "runtime": 2000000,
                                        "deadline": 20000000}
    b.config["process"]["args"] = ["sh", "-c", "grep -E '^policy' /proc/self/sched"]
    assert sched_policy(runtime.run(b, itlib.new_id())) == 6  # SCHED_DEADLINE
