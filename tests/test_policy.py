import copy
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from pyrunc.errors import PyruncError
from pyrunc.policy import RULES, host_namespace, load_policy
from pyrunc.spec import load_config
from pyrunc.spec.defaults import default_spec
from pyrunc.spec.hardened import hardened_spec

POLICIES = os.path.join(os.path.dirname(__file__), "..", "pyrunc", "policies")

# `runc spec` (runc 1.1.5) output, the shape the brief asks hardened_spec to take
RUNC_SPEC = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"],
        "cwd": "/",
        "capabilities": {s: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for s in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
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
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"],
    },
}

# breaks every rule once
LOOSE = {
    "ociVersion": "1.2.0",
    "process": {"args": ["sh"], "cwd": "/", "noNewPrivileges": False,
                "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
                                 "effective": ["CAP_SYS_ADMIN"],
                                 "permitted": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]}},
    "root": {"path": "rootfs"},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "nodev"]},
               {"destination": "/data", "type": "bind", "source": "/srv/data",
                "options": ["rbind", "suid"]}],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                             {"type": "uts"},
                             {"type": "network", "path": "/proc/self/ns/net"}],
              "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
}

EVERY_VIOLATION = {
    "linux.seccomp",
    "process.noNewPrivileges",
    "process.capabilities.bounding[1]", "process.capabilities.effective[0]",
    "process.capabilities.permitted[1]",
    "linux.namespaces",  # no user namespace
    "root.readonly",
    "linux.maskedPaths",
    "linux.readonlyPaths",
    "mounts[1] (/data)",
    "linux.namespaces[4].path",
}


def write_policy(tmp_path, action, **extra):
    base = json.load(open(os.path.join(POLICIES, "baseline.json")))
    base["name"] = f"all-{action}"
    for rule in base["rules"]:
        rule["action"] = action
        rule.update(extra.get(rule["rule"], {}))
    path = tmp_path / f"all-{action}.json"
    path.write_text(json.dumps(base))
    return load_policy(str(path))


def violation_lines(err):
    first, *rest = str(err).split("\n")
    return first, rest


def test_baseline_loads_with_every_rule():
    policy = load_policy("baseline")
    assert policy.name == "baseline"
    assert [r.name for r in policy.rules] == list(RULES)


def test_refuse_lists_every_violation_with_its_path(tmp_path):
    policy = write_policy(tmp_path, "refuse")
    with pytest.raises(PyruncError) as e:
        policy.apply(LOOSE)
    first, lines = violation_lines(e.value)
    assert first.startswith("policy all-refuse refuses this config (")
    paths = {line.strip().split(": ", 1)[0] for line in lines}
    assert paths == EVERY_VIOLATION
    # one line per violation: 11 of baseline's 12 masked paths and 4 of its 5 read-only
    # paths are missing, 3 capability entries, and one each for the other 6 paths
    assert len(lines) == 11 + 4 + 3 + 6
    assert any("CAP_SYS_ADMIN is extreme risk" in line for line in lines)
    assert any("/proc/self/ns/net is the host's network namespace" in line for line in lines)
    assert any("without nosuid, nodev" in line and "/data" in line for line in lines)


def test_tighten_yields_a_config_that_then_passes(tmp_path):
    policy = write_policy(tmp_path, "tighten")
    before = copy.deepcopy(LOOSE)
    config, lines = policy.apply(LOOSE)
    assert LOOSE == before  # apply works on a copy
    assert policy.findings(config) == []
    assert policy.apply(config)[1] == []  # nothing left to tighten
    assert "tightened: process.noNewPrivileges set to true" in lines
    assert "tightened: root.readonly set to true" in lines
    assert ("tightened: process.capabilities: removed CAP_SYS_ADMIN (extreme) from "
            "bounding, effective, permitted") in lines
    caps = config["process"]["capabilities"]
    assert caps["bounding"] == ["CAP_NET_BIND_SERVICE"] and caps["effective"] == []
    assert config["mounts"][1]["options"] == ["rbind", "nosuid", "nodev"]
    assert "path" not in config["linux"]["namespaces"][4]
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    # still a config pyrunc accepts
    model, warnings = load_config(config, strict=True)
    assert model.linux.uidMappings[0].hostID == 100000 and warnings == []


def test_baseline_tightens_what_it_can_and_refuses_the_rest():
    with pytest.raises(PyruncError) as e:
        load_policy("baseline").apply(LOOSE)
    _, lines = violation_lines(e.value)
    assert {line.strip().split(": ", 1)[0] for line in lines} == {
        "linux.namespaces", "linux.namespaces[4].path"}


def test_tighten_fills_null_sections(tmp_path):
    # null means absent in the spec: tightening must not trip over it
    config = copy.deepcopy(LOOSE)
    config["linux"] = {"namespaces": None, "maskedPaths": None, "readonlyPaths": None}
    config["mounts"] = None
    tightened, _ = write_policy(tmp_path, "tighten").apply(config)
    assert len(tightened["linux"]["namespaces"]) == 6
    assert "/proc/kcore" in tightened["linux"]["maskedPaths"]


def test_an_allowing_seccomp_profile_cannot_be_tightened(tmp_path):
    policy = write_policy(tmp_path, "tighten")
    config = copy.deepcopy(LOOSE)
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO"}]}
    with pytest.raises(PyruncError) as e:
        policy.apply(config)
    _, lines = violation_lines(e.value)
    assert len(lines) == 1
    assert lines[0].startswith("  linux.seccomp.defaultAction: SCMP_ACT_ALLOW lets")
    assert lines[0].endswith("(cannot be tightened)")


def test_absent_capabilities_tighten_to_the_allowed_risk(tmp_path):
    policy = write_policy(tmp_path, "tighten", capabilities={"maxRisk": "low"})
    config = copy.deepcopy(LOOSE)
    del config["process"]["capabilities"]
    tightened, _ = policy.apply(config)
    caps = tightened["process"]["capabilities"]
    assert "CAP_NET_BIND_SERVICE" in caps["bounding"] and "CAP_KILL" in caps["bounding"]
    assert "CAP_SETUID" not in caps["bounding"] and caps["ambient"] == []


def test_max_risk_high_lets_high_through(tmp_path):
    policy = write_policy(tmp_path, "refuse", capabilities={"maxRisk": "high"})
    config = copy.deepcopy(LOOSE)
    config["process"]["capabilities"]["bounding"].append("CAP_NET_ADMIN")
    caps = [f for f in policy.findings(config) if f.path.startswith("process.capabilities")]
    assert {f.path for f in caps} == {"process.capabilities.bounding[1]",
                                      "process.capabilities.effective[0]",
                                      "process.capabilities.permitted[1]"}


def test_mapping_host_root_into_the_container_is_a_violation():
    config = hardened_spec(default_spec())
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    found = load_policy("baseline").findings(config)
    assert [f.path for f in found] == ["linux.uidMappings[0]"]


def test_host_namespace_is_found_by_inode():
    assert host_namespace("network", "/proc/self/ns/net")
    assert host_namespace("pid", f"/proc/{os.getpid()}/ns/pid")
    assert host_namespace("uts", "/proc/1/ns/uts")
    assert not host_namespace("network", "/var/run/netns/no-such-namespace")


@pytest.mark.parametrize("rule, where, text", [
    ({"rule": "nope", "action": "refuse"}, "rules[0].rule", "unknown rule 'nope'"),
    ({"rule": "seccomp", "action": "warn"}, "rules[0].action", "'warn' is not refuse"),
    ({"rule": "seccomp", "action": "refuse", "profle": "x"}, "rules[0].profle",
     "unknown setting"),
    ({"rule": "maskedPaths", "action": "refuse"}, "rules[0].paths", "required setting"),
    ({"rule": "capabilities", "action": "refuse", "maxRisk": "huge"}, "rules[0].maxRisk",
     "not one of"),
    ({"rule": "capabilities", "action": "refuse", "maxRisk": 3}, "rules[0].maxRisk",
     "expected str"),
])
def test_policy_file_errors_name_the_place(tmp_path, rule, where, text):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"rules": [rule]}))
    with pytest.raises(PyruncError) as e:
        load_policy(str(path))
    assert e.value.path == where and text in e.value.message


def test_missing_policy_file():
    with pytest.raises(PyruncError) as e:
        load_policy("no-such-policy")
    assert "No such file" in e.value.message


@pytest.mark.parametrize("base", [RUNC_SPEC, default_spec()], ids=["runc-spec", "default"])
def test_hardened_spec_passes_baseline_and_loads(base):
    config = hardened_spec(base)
    assert load_policy("baseline").findings(config) == []
    assert load_policy("baseline").apply(config)[1] == []
    caps = config["process"]["capabilities"]
    assert caps == {"bounding": ["CAP_NET_BIND_SERVICE"], "effective": ["CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": [], "ambient": []}
    assert {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"]} \
        in config["mounts"]
    _, warnings = load_config(config, strict=True)
    assert warnings == []
    assert base != config and "seccomp" not in base["linux"]  # the base is not changed


def test_hardened_spec_keeps_a_rootless_mapping():
    config = hardened_spec(default_spec(rootless=True))
    if os.getuid() == 0:  # rootless as root maps host root: replaced
        assert config["linux"]["uidMappings"][0]["hostID"] == 100000
    else:
        assert config["linux"]["uidMappings"][0] == {"containerID": 0, "hostID": os.getuid(),
                                                     "size": 1}


# --- the default seccomp profile ---------------------------------------------------------

PROFILE = json.load(open(os.path.join(POLICIES, "seccomp_default.json")))


def _names(action):
    return {n for r in PROFILE["syscalls"] if r["action"] == action and not r.get("args")
            for n in r["names"]}


def test_profile_returns_enosys_for_what_it_does_not_list_and_eperm_for_what_it_denies():
    assert PROFILE["defaultAction"] == "SCMP_ACT_ERRNO" and PROFILE["defaultErrnoRet"] == 38
    denied = [r for r in PROFILE["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"
              and not r.get("args")]
    assert len(denied) == 1 and denied[0]["errnoRet"] == 1
    allowed = _names("SCMP_ACT_ALLOW")
    assert not allowed & set(denied[0]["names"])
    # what a busybox shell needs
    assert {"execve", "read", "write", "openat", "newfstatat", "getdents64", "ioctl", "wait4",
            "rt_sigaction", "exit_group", "getuid", "brk", "mmap", "vfork"} <= allowed
    # what a container must not do, denied with EPERM
    assert {"mount", "umount2", "unshare", "setns", "kexec_load", "init_module", "bpf",
            "keyctl", "io_uring_setup"} <= set(denied[0]["names"])
    assert "clone3" not in allowed  # ENOSYS: glibc falls back to clone, which is filtered
    clone = [r for r in PROFILE["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                                 "op": "SCMP_CMP_MASKED_EQ"}]


def test_profile_loads_in_the_model_without_warnings():
    config = hardened_spec(default_spec())
    model, warnings = load_config(config, strict=True)
    assert model.linux.seccomp.defaultErrnoRet == 38 and warnings == []


def test_profile_names_are_known_to_libseccomp():
    pyseccomp = pytest.importorskip("pyseccomp")
    unknown = [n for r in PROFILE["syscalls"] for n in r["names"]
               if pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, n) == -1]
    assert unknown == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc")
                    or not os.path.exists("/bin/busybox"),
                    reason="needs root, runc and a static busybox")
def test_hardened_spec_runs_a_busybox_shell_under_runc(tmp_path):
    # host uid 100000 (container root) must reach the rootfs: not under pytest's 0700 tmp
    top = tempfile.mkdtemp(prefix="pyrunc-hardened-")
    try:
        _run_hardened_busybox(pathlib.Path(top))
    finally:
        shutil.rmtree(top)


def _run_hardened_busybox(top):
    top.chmod(0o755)
    bundle = top / "bundle"
    for d in ("bin", "proc", "dev", "sys", "tmp"):  # mount points: the root is read-only
        (bundle / "rootfs" / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", bundle / "rootfs" / "bin" / "busybox")
    for tool in ("sh", "ls", "cat", "id", "echo", "unshare"):
        (bundle / "rootfs" / "bin" / tool).symlink_to("busybox")
    script = ("id; ls /bin | wc -l; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
              "/proc/self/status; echo x > /tmp/x && cat /tmp/x; "
              "unshare -U true 2>/dev/null || echo unshare-refused; "
              "echo y > /etc/y 2>/dev/null || echo root-readonly")
    config = hardened_spec(RUNC_SPEC)
    config["process"].update(terminal=False, args=["sh", "-c", script])
    (bundle / "config.json").write_text(json.dumps(config))
    run = subprocess.run(["runc", "--root", str(top / "state"), "run", "hardened-test"],
                         cwd=bundle, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = run.stdout.split()
    assert out[0] == "uid=0" and out[1] == "gid=0"
    assert "CapEff:\t0000000000000400" in run.stdout
    assert "CapBnd:\t0000000000000400" in run.stdout
    assert "NoNewPrivs:\t1" in run.stdout and "Seccomp:\t2" in run.stdout
    assert out[-3:] == ["x", "unshare-refused", "root-readonly"]


def test_policy_md_lists_the_same_risk_levels_as_the_code():
    from pyrunc.linux.capabilities import CAPS, LEVELS, RISK
    text = open(os.path.join(os.path.dirname(__file__), "..", "docs", "POLICY.md")).read()
    section = text.split("## Capability risk levels")[1].split("\n## ")[0]
    documented = {}
    for item in section.split("\n- **")[1:]:
        level, _, rest = item.partition("**")
        names = rest.split(":", 1)[1].split("\n\n")[0]
        documented[level] = {"CAP_" + n.strip() for n in names.replace("\n", " ").split(",")}
    assert documented == {lv: {n for n in CAPS if RISK[n] == lv} for lv in LEVELS}
