"""linux/cgroups.py against a fake cgroup tree in a temporary directory (no root needed):
where the directories go, and which file gets which text for v1 and v2."""
import os

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import cgroups
from pyrunc.spec.model import load_resources


def hybrid(tmp_path):
    mounts = {k: str(tmp_path / (k.removeprefix("name=") or "unified"))
              for k in ("cpu,cpuacct", "memory", "pids", "devices", "cpuset", "freezer",
                        "name=systemd", cgroups.UNIFIED)}
    own = {k: "/" for k in mounts}
    own["memory"] = "/runtime"
    return cgroups.Layout(mounts, own)


def v2_only(tmp_path, controllers="cpuset cpu io memory pids"):
    root = tmp_path / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    return cgroups.Layout({cgroups.UNIFIED: str(root)}, {cgroups.UNIFIED: "/"})


def test_paths_absolute_relative_and_default(tmp_path):
    layout = hybrid(tmp_path)
    absolute = cgroups.plan("/pod/c1", "c1", layout).dirs
    assert absolute["memory"] == f"{tmp_path}/memory/pod/c1"
    assert absolute["cpu,cpuacct"] == f"{tmp_path}/cpu,cpuacct/pod/c1"
    assert absolute[cgroups.UNIFIED] == f"{tmp_path}/unified/pod/c1"
    relative = cgroups.plan("pod/c1", "c1", layout).dirs
    assert relative["memory"] == f"{tmp_path}/memory/runtime/pod/c1"  # below our own
    assert cgroups.plan(None, "c1", layout).dirs["memory"] == f"{tmp_path}/memory/runtime/c1"
    # ".." cannot climb out of the hierarchy
    assert cgroups.plan("/../../etc", "c1", layout).dirs["pids"] == f"{tmp_path}/pids/etc"
    with pytest.raises(PyruncError, match="root"):
        cgroups.plan("/", "c1", layout)


def fake_files(cg, names):
    """The files a real cgroup directory would have (cgroupfs makes them; mkdir here)."""
    for d in cg.dirs.values():
        os.makedirs(d, exist_ok=True)
        for n in names:
            open(os.path.join(d, n), "a").close()


def written(cg, key, name):
    with open(os.path.join(cg.dirs[key], name)) as f:
        return f.read()


V1_FILES = ("memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
            "memory.swappiness", "memory.oom_control", "pids.max", "cpu.shares",
            "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpuset.cpus", "cpuset.mems",
            "devices.allow", "devices.deny", "cgroup.procs")


def test_v1_limits_go_to_their_hierarchy(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, V1_FILES)
    warnings = []
    cgroups.set_resources(cg, {
        "memory": {"limit": 1 << 26, "swap": -1, "disableOOMKiller": True},
        "pids": {"limit": -1},
        "cpu": {"shares": 256, "quota": 5000, "period": 10000, "cpus": "0"},
    }, warnings)
    assert written(cg, "memory", "memory.limit_in_bytes") == str(1 << 26)
    assert written(cg, "memory", "memory.memsw.limit_in_bytes") == "-1"
    assert written(cg, "memory", "memory.oom_control") == "1"
    assert written(cg, "pids", "pids.max") == "max"  # -1: no limit
    assert written(cg, "cpu,cpuacct", "cpu.cfs_quota_us") == "5000"
    assert written(cg, "cpuset", "cpuset.cpus") == "0"
    assert warnings == []


def test_v1_device_rules_from_deny_all_in_order_then_the_default_devices(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, V1_FILES)
    log = []
    cg.write = lambda path, text, where: log.append((os.path.basename(path), text))
    cgroups.set_resources(cg, {"devices": [
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"},
        {"allow": True, "type": "b", "major": 8, "access": "r"}]}, [])
    assert log[:3] == [("devices.deny", "a"), ("devices.allow", "c 10:200 rw"),
                       ("devices.allow", "b 8:* r")]
    assert log[3:] == [("devices.allow", rule) for rule in cgroups.DEFAULT_DEVICE_RULES]
    assert ("devices.allow", "c 1:3 rwm") in log[3:]   # /dev/null, as the spec requires


def test_a_new_container_gets_device_rules_without_any_in_its_config(tmp_path):
    # linux.devices makes nodes only: what opens is what resources.devices allows (runc)
    for resources in (None, {}, {"memory": {"limit": 5}}, {"devices": None}):
        cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
        log = []
        cg.write = lambda path, text, where: log.append((os.path.basename(path), text))
        cgroups.set_resources(cg, cgroups.with_device_rules(resources), [])
        assert ("devices.deny", "a") in log and ("devices.allow", "c 5:2 rwm") in log
        assert not any("4:1" in text or "10:229" in text for _, text in log)
    # an update leaves the rules alone when it brings none
    assert cgroups.with_device_rules({"devices": [{"allow": True}]}) == {
        "devices": [{"allow": True}]}


def test_hugepage_sizes_and_unified_keys_cannot_leave_the_cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "host_hugepage_sizes", lambda: ["2MB", "1GB"])
    layout = hybrid(tmp_path)
    layout.mounts["hugetlb"] = str(tmp_path / "hugetlb")
    cg = cgroups.plan("/c1", "c1", layout)
    for size in ("../../../../tmp/x", "2MB/../../x", "2MB\0", "2mb", "2 MB", "02MB", "",
                 "MB", "٢MB", None, 2):
        with pytest.raises(PyruncError) as e:
            cgroups.set_resources(cg, {"hugepageLimits": [{"pageSize": size, "limit": 1}]},
                                  [], dry=True)
        assert e.value.path == "linux.resources.hugepageLimits[0].pageSize", size
    with pytest.raises(PyruncError, match="not supported by this host"):
        cgroups.set_resources(cg, {"hugepageLimits": [{"pageSize": "64KB", "limit": 1}]},
                              [], dry=True)
    cgroups.set_resources(cg, {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, [],
                          dry=True)
    assert cg.touched == {f"{tmp_path}/hugetlb/c1/hugetlb.2MB.limit_in_bytes"}
    for key in ("", ".", "..", "a/b", "io.max\0", "../memory.max"):
        with pytest.raises(PyruncError) as e:
            cgroups.set_resources(cg, {"unified": {key: "1"}}, [], dry=True)
        assert e.value.path == f"linux.resources.unified.{key}"


def test_cgroups_path_stays_in_its_hierarchy(tmp_path):
    layout = hybrid(tmp_path)
    for path in ("../../../etc", "/../../..//etc/", "a/../../../../etc"):
        for d in cgroups.plan(path, "c1", layout).dirs.values():
            assert d.startswith(str(tmp_path) + "/") and "/.." not in d
    with pytest.raises(PyruncError) as e:
        cgroups.plan("/a\0b", "c1", layout)
    assert e.value.path == "linux.cgroupsPath"


def test_host_hugepage_sizes_use_the_kernels_names():
    sizes = cgroups.host_hugepage_sizes()
    on_host = os.listdir("/sys/kernel/mm/hugepages") if os.path.isdir(
        "/sys/kernel/mm/hugepages") else []
    assert len(sizes) == len(on_host)
    assert ("hugepages-2048kB" in on_host) == ("2MB" in sizes)
    assert ("hugepages-1048576kB" in on_host) == ("1GB" in sizes)


DOCKER_ZEROS = {"memory": {"limit": 0, "reservation": 0, "swap": 0, "swappiness": -1,
                           "disableOOMKiller": False},
                "pids": {"limit": 0}, "blockIO": {"weight": 0},
                "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                        "realtimePeriod": 0, "cpus": "", "mems": ""},
                "network": {"classID": 0}}


def test_zero_and_empty_values_are_unset_as_in_runc_v1(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, V1_FILES + ("blkio.bfq.weight",))
    warnings = []
    cgroups.set_resources(cg, DOCKER_ZEROS, warnings)
    assert cg.touched == set()  # docker's zero weight made ERANGE, its zero shares made 2
    assert [w for w in warnings if "blkio" not in w and "net_cls" not in w] == []


def test_zero_and_empty_values_are_unset_as_in_runc_v2(tmp_path):
    cg = cgroups.plan("/c1", "c1", v2_only(tmp_path))
    cgroups.set_resources(cg, DOCKER_ZEROS, [], dry=True)
    assert cg.touched == set()


def test_v1_memory_minus_one_makes_swap_unlimited_and_swappiness_is_checked(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, V1_FILES)
    cgroups.set_resources(cg, {"memory": {"limit": -1, "swappiness": 100}}, [])
    assert written(cg, "memory", "memory.memsw.limit_in_bytes") == "-1"
    assert written(cg, "memory", "memory.swappiness") == "100"
    with pytest.raises(PyruncError) as e:
        cgroups.set_resources(cg, {"memory": {"swappiness": 101}}, [], dry=True)
    assert e.value.path == "linux.resources.memory.swappiness"


def test_v1_shares_the_kernel_clamps_are_an_error_as_in_runc(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, V1_FILES)
    real_write = cgroups._write

    def clamping_write(path, text, where):  # what cpu.shares does with 1: reads back 2
        real_write(path, "2" if path.endswith("cpu.shares") and text == "1" else text, where)
    cgroups._write = clamping_write
    try:
        with pytest.raises(PyruncError, match="minimum allowed cpu-shares is 2") as e:
            cgroups.set_resources(cg, {"cpu": {"shares": 1}}, [])
    finally:
        cgroups._write = real_write
    assert e.value.path == "linux.resources.cpu.shares"


def test_v2_quota_alone_and_weights(tmp_path):
    cg = cgroups.plan("/c1", "c1", v2_only(tmp_path))
    fake_files(cg, ("cpu.max", "io.weight", "memory.max", "memory.swap.max"))
    cgroups.set_resources(cg, {"cpu": {"quota": 20000}, "blockIO": {"weight": 500},
                               "memory": {"limit": 100, "swap": 100}}, [])
    key = cgroups.UNIFIED
    assert written(cg, key, "cpu.max") == "20000 100000"
    assert written(cg, key, "io.weight") == "4950"       # runc: 1 + (w - 10) * 9999 / 990
    assert written(cg, key, "memory.swap.max") == "0"   # swap == memory: no swap
    with pytest.raises(PyruncError) as e:
        cgroups.set_resources(cg, {"memory": {"swap": 100}}, [], dry=True)
    assert e.value.path == "linux.resources.memory.swap"


def test_v2_conversions(tmp_path):
    cg = cgroups.plan("/c1", "c1", v2_only(tmp_path))
    fake_files(cg, ("memory.max", "memory.swap.max", "pids.max", "cpu.weight", "cpu.max"))
    warnings = []
    cgroups.set_resources(cg, {"memory": {"limit": 100, "swap": 300, "swappiness": 10},
                               "pids": {"limit": 9},
                               "cpu": {"shares": 1024, "quota": -1, "period": 50000},
                               "devices": [{"allow": False, "access": "rwm"}]}, warnings)
    key = cgroups.UNIFIED
    assert written(cg, key, "memory.max") == "100"
    assert written(cg, key, "memory.swap.max") == "200"  # the spec's swap is memory + swap
    assert written(cg, key, "cpu.weight") == "39"        # runc's conversion of 1024 shares
    assert written(cg, key, "cpu.max") == "max 50000"
    assert any(w.startswith("linux.resources.memory.swappiness") for w in warnings)
    assert any(w.startswith("linux.resources.devices") and "eBPF" in w for w in warnings)


def test_bad_values_name_their_json_path(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    # types: the model's (config.json and `update -r` both load through it)
    for resources, path in (({"memory": {"limit": "1G"}}, "linux.resources.memory.limit"),
                            ({"pids": {"limit": True}}, "linux.resources.pids.limit"),
                            ({"devices": [{"allow": "yes"}]}, "linux.resources.devices[0].allow"),
                            ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}},
                             "linux.resources.blockIO.throttleReadBpsDevice[0]"),
                            ({"unified": {"memory.max": 5}}, "linux.resources.unified.memory.max")):
        with pytest.raises(PyruncError) as e:
            load_resources(resources)
        assert e.value.path.startswith(path), (e.value.path, path)
    # what the schema cannot say: cgroups' own checks
    for resources, path in (({"devices": [{"allow": True, "access": "rx"}]},
                             "linux.resources.devices[0].access"),
                            ({"unified": {"../x": "1"}}, "linux.resources.unified.../x")):
        load_resources(resources)
        with pytest.raises(PyruncError) as e:
            cgroups.set_resources(cg, resources, [], dry=True)
        assert e.value.path == path and e.value.step == "cgroups"


def test_a_dry_run_writes_nothing_and_warns_of_missing_controllers(tmp_path):
    layout = hybrid(tmp_path)
    cg = cgroups.plan("/c1", "c1", layout)
    warnings = []
    cgroups.set_resources(cg, {"memory": {"limit": 5}, "hugepageLimits": [],
                               "rdma": {"x": {}}}, warnings, dry=True)
    assert not os.path.exists(cg.dirs["memory"])
    assert warnings == ["linux.resources.hugepageLimits: no hugetlb controller on this host, "
                        "ignored", "linux.resources.rdma: not supported, ignored"]


def test_a_new_v1_cpuset_takes_its_parents_cpus_and_mems(tmp_path):
    layout = hybrid(tmp_path)
    parent = tmp_path / "cpuset"
    parent.mkdir()
    (parent / "cpuset.cpus").write_text("0-1\n")
    (parent / "cpuset.mems").write_text("0\n")
    cg = cgroups.plan("/c1", "c1", layout)
    cg.dirs = {"cpuset": cg.dirs["cpuset"]}
    real_mkdir = os.mkdir

    def mkdir_with_files(path, mode=0o777):  # what cgroupfs does on mkdir
        real_mkdir(path, mode)
        for n in ("cpuset.cpus", "cpuset.mems"):
            open(os.path.join(path, n), "w").close()
    cgroups.posix.mkdir, saved = mkdir_with_files, cgroups.posix.mkdir
    try:
        cgroups.create(cg)
    finally:
        cgroups.posix.mkdir = saved
    assert (parent / "c1" / "cpuset.cpus").read_text() == "0-1"
    assert (parent / "c1" / "cpuset.mems").read_text() == "0"
    assert cg.made == [str(parent / "c1")]


def test_a_hybrid_hosts_v2_tree_is_joined_only_when_a_limit_goes_there(tmp_path):
    layout = hybrid(tmp_path)
    idle = cgroups.plan("/c1", "c1", layout)
    cgroups.set_resources(idle, {"memory": {"limit": 5}}, [], dry=True)
    idle.drop_idle_v2_tree()
    assert cgroups.UNIFIED not in idle.dirs and "memory" in idle.dirs
    used = cgroups.plan("/c2", "c2", layout)
    cgroups.set_resources(used, {"unified": {"io.weight": "50"}}, [], dry=True)
    used.drop_idle_v2_tree()
    assert cgroups.UNIFIED in used.dirs
    only_v2 = cgroups.plan("/c3", "c3", v2_only(tmp_path))
    only_v2.drop_idle_v2_tree()  # the only tree there is stays
    assert list(only_v2.dirs) == [cgroups.UNIFIED]


def test_the_child_joins_v1_through_tasks_and_v2_through_cgroup_procs(tmp_path):
    cg = cgroups.plan("/c1", "c1", hybrid(tmp_path))
    fake_files(cg, ("tasks", "cgroup.procs"))
    cgroups.join_self(cg)
    assert written(cg, "memory", "tasks") == "0"  # itself: no global lock in the kernel
    assert written(cg, "memory", "cgroup.procs") == ""
    assert written(cg, cgroups.UNIFIED, "cgroup.procs") == "0"


def test_create_records_the_parents_it_made_so_a_failed_create_removes_them(tmp_path):
    layout = hybrid(tmp_path)
    (tmp_path / "pids").mkdir()
    (tmp_path / "memory").mkdir()
    cg = cgroups.plan("/pod-x/inner/c1", "c1", layout)
    cg.dirs = {"pids": cg.dirs["pids"], "memory": cg.dirs["memory"]}
    (tmp_path / "memory" / "pod-x").write_text("a file: mkdir below it fails")
    with pytest.raises(PyruncError, match="mkdir"):
        cgroups.create(cg)
    pids = tmp_path / "pids"
    assert cg.made == [str(pids / "pod-x"), str(pids / "pod-x" / "inner"),
                       str(pids / "pod-x" / "inner" / "c1")]
    assert cgroups.remove(cg.made[::-1]) == []
    assert os.listdir(pids) == []


def v1_blkio(tmp_path):
    return cgroups.Layout({"blkio": str(tmp_path / "blkio")}, {"blkio": "/"})


@pytest.mark.parametrize("layout", [v1_blkio, v2_only])
def test_a_blkio_weight_of_0_is_not_set_as_in_runc(tmp_path, layout):
    """docker 20.10 writes "blockIO": {"weight": 0} in every config; the kernel refuses 0."""
    cg = cgroups.plan("/c1", "c1", layout(tmp_path))
    fake_files(cg, ("blkio.weight", "io.weight"))
    cgroups.set_resources(cg, {"blockIO": {"weight": 0}}, [])
    assert {written(cg, k, n) for k in cg.dirs for n in ("blkio.weight", "io.weight")} == {""}
    cgroups.set_resources(cg, {"blockIO": {"weight": 500}}, [])
    # v2 converts runc's way: [10, 1000] -> [1, 10000]
    assert ("500" if layout is v1_blkio else "4950") in {
        written(cg, k, n) for k in cg.dirs for n in ("blkio.weight", "io.weight")}


def test_kernel_memory_is_written_where_the_hierarchy_has_the_file(tmp_path):
    layout = hybrid(tmp_path)
    cg = cgroups.plan("/c1", "c1", layout)
    fake_files(cg, ("memory.kmem.tcp.limit_in_bytes",))
    os.makedirs(layout.mounts["memory"], exist_ok=True)
    open(os.path.join(layout.mounts["memory"], "memory.kmem.tcp.limit_in_bytes"), "a").close()
    warnings = []
    cgroups.set_resources(cg, {"memory": {"kernelTCP": 4096, "kernel": 8192}}, warnings)
    assert written(cg, "memory", "memory.kmem.tcp.limit_in_bytes") == "4096"
    assert warnings == ["linux.resources.memory.kernel: this host's memory cgroup has no "
                        "memory.kmem.limit_in_bytes, ignored"]
    cg = cgroups.plan("/c1", "c1", v2_only(tmp_path))
    warnings = []
    cgroups.set_resources(cg, {"memory": {"kernelTCP": 4096}}, warnings, dry=True)
    assert cg.touched == set() and "kernelTCP" in warnings[0]
