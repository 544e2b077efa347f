"""pyrunc verify's judgement, without root: what it asks the probe for a config, and which
claims hold or break for canned probe reports; `pyrunc seccomp show`; the demo's bundles."""
import argparse
import copy
import errno
import json
import os
import signal
import stat

import pytest

from pyrunc.linux import seccomp
from pyrunc.spec import load_config
from pyrunc.teach import claims as judging
from pyrunc.teach import samples as sampling
from pyrunc.teach import demo, seccomp_show, verify
from pyrunc.teach import probe as probing
from pyrunc.teach.claims import BROKEN, HELD, NOT_CHECKED

CAP_NET_BIND_SERVICE, CAP_KILL = 10, 5
ALL = (1 << 41) - 1

CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
        "args": ["sh"], "cwd": "/", "env": ["PATH=/bin"],
        "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE"],
                         "effective": ["CAP_NET_BIND_SERVICE"],
                         "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": [],
                         "ambient": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "box",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "size=1m", "mode=1770"]},
    ],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"},
                       {"type": "uts"}],
        "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys"],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "ptrace", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
        ]},
    },
}

HOST = judging.Host(ns={"pid": 101, "net": 102, "mnt": 103, "ipc": 104, "uts": 105,
                       "user": 106, "cgroup": 107, "time": 108},
                   joined={}, last_cap=40, seccomp_mode=0)

# what the filter does with each sampled call, in the probe's words
ANSWERS = {
    "read()": {"action": "allow", "errno": 0},
    "ptrace()": {"action": "allow", "errno": 0},
    "write()": {"action": "allow", "errno": 0},
    "socket(arg0=1)": {"action": "errno", "errno": 13},
    "socket(arg0=2)": {"action": "errno", "errno": 1},
    "reboot()": {"action": "kill", "errno": 0, "signal": 31},
    "mount()": {"action": "errno", "errno": 1},
    "pidfd_open()": {"action": "errno", "errno": 1},
}


def plan_for(config, host=HOST):
    model, _ = load_config(copy.deepcopy(config))
    return judging.Plan(copy.deepcopy(config), model, host)


def kernel(plan):
    """The probe's report and the host's view of a container that does all CONFIG says."""
    results = {
        f"write={judging.WRITE_TEST}": {"errno": errno.EROFS},
        "statfs=/proc": {"errno": 0, "type": 0x9FA0, "bsize": 4096, "blocks": 0, "flags": 32},
        "stat=/proc": {"errno": 0, "mode": 0o40555, "uid": 0, "gid": 0, "major": 0,
                       "minor": 0, "size": 0},
        "statfs=/tmp": {"errno": 0, "type": judging.TMPFS_MAGIC, "bsize": 4096, "blocks": 256,
                        "flags": judging.ST_NOSUID | judging.ST_NODEV | 32},
        "stat=/tmp": {"errno": 0, "mode": 0o41770, "uid": 0, "gid": 0, "major": 0, "minor": 0,
                      "size": 40},
        "stat=/proc/kcore": {"errno": errno.ENOENT},
        "read=/proc/kcore": {"errno": errno.ENOENT},
        "ls=/proc/kcore": {"errno": errno.ENOENT},
        "statfs=/proc/kcore": {"errno": errno.ENOENT},
        "stat=/proc/keys": {"errno": 0, "mode": 0o20666, "uid": 0, "gid": 0, "major": 1,
                            "minor": 3, "size": 0},
        "read=/proc/keys": {"errno": 0, "bytes": 0, "head": ""},
        "ls=/proc/keys": {"errno": errno.ENOTDIR},
        "statfs=/proc/keys": {"errno": 0, "type": 0x1021994, "bsize": 4096, "blocks": 0,
                              "flags": 0},
        "stat=/sys/firmware": {"errno": 0, "mode": 0o40755, "uid": 0, "gid": 0, "major": 0,
                               "minor": 0, "size": 40},
        "read=/sys/firmware": {"errno": errno.EISDIR},
        "ls=/sys/firmware": {"errno": 0, "entries": []},
        "statfs=/sys/firmware": {"errno": 0, "type": judging.TMPFS_MAGIC, "bsize": 4096,
                                 "blocks": 0, "flags": judging.ST_RDONLY},
        "stat=/proc/sys": {"errno": 0, "mode": 0o40555, "uid": 0, "gid": 0, "major": 0,
                           "minor": 0, "size": 0},
        "openw=/proc/sys": {"errno": errno.EISDIR},
        "chmod=/proc/sys": {"errno": errno.EROFS},
        "statfs=/proc/sys": {"errno": 0, "type": 0x9FA0, "bsize": 4096, "blocks": 0,
                             "flags": judging.ST_RDONLY},
        "ifflags=lo": {"errno": 0, "flags": 0x49},
    }
    for s in plan.samples:
        results[plan.sys_word(s)] = ANSWERS[sampling._call_text(s.name, s.args)]
    if judging.I386_GETPID in plan.words:
        # CONFIG lists no SCMP_ARCH_X86: a 32-bit call is a foreign arch, killed
        results[judging.I386_GETPID] = {"errno": 0, "signal": signal.SIGSYS}
    mask = f"{1 << CAP_NET_BIND_SERVICE:016x}"
    report = {
        "results": results, "uid": 0, "euid": 0, "suid": 0, "gid": 0, "egid": 0, "sgid": 0,
        "groups": [10], "pid": 1, "hostname": "box", "domainname": "(none)", "cwd": "/",
        "umask": 0o22, "env": ["PATH=/bin", "HOME=/root"],
        "rlimits": {"RLIMIT_NOFILE": [1024, 1024], "RLIMIT_CORE": [0, 0]},
        "caps": {"effective": mask, "permitted": mask, "inheritable": "0" * 16,
                 "bounding": mask, "ambient": "0" * 16},
        "mounts": [
            {"mount_point": "/", "options": "ro,relatime", "fstype": "overlay"},
            {"mount_point": "/proc", "options": "rw,relatime", "fstype": "proc"},
            {"mount_point": "/tmp", "options": "rw,nosuid,nodev,relatime", "fstype": "tmpfs"},
            {"mount_point": "/proc/keys", "options": "rw,nosuid", "fstype": "devtmpfs"},
            {"mount_point": "/sys/firmware", "options": "ro,relatime", "fstype": "tmpfs"},
            {"mount_point": "/proc/sys", "options": "ro,relatime", "fstype": "proc"},
        ],
    }
    outside = {
        "status": {"Uid": "0\t0\t0\t0", "Gid": "0\t0\t0\t0", "Groups": "10 ",
                   "CapInh": "0" * 16, "CapPrm": mask, "CapEff": mask, "CapBnd": mask,
                   "CapAmb": "0" * 16, "NoNewPrivs": "1", "Seccomp": "2"},
        "ns": {"pid": 201, "net": 202, "mnt": 203, "ipc": 104, "uts": 205, "user": 106,
               "cgroup": 107, "time": 108},
        "uid_map": [(0, 0, 4294967295)], "gid_map": [(0, 0, 4294967295)],
        "oom_score_adj": 0,
    }
    return report, outside


def broken(claims):
    return {(c.path, c.claim) for c in claims if c.verdict == BROKEN}


def by_path(claims, path):
    return [c for c in claims if c.path == path]


# ---- what verify asks the probe ----

def test_the_samples_cover_each_rule_and_the_default():
    plan = plan_for(CONFIG)
    samples = [(s.path, sampling._call_text(s.name, s.args), seccomp.action_text(s.expected))
               for s in plan.samples]
    assert samples == [
        # the first, a Docker-denied one, the last name
        ("linux.seccomp.syscalls[0]", "read()", "allow"),
        ("linux.seccomp.syscalls[0]", "ptrace()", "allow"),
        ("linux.seccomp.syscalls[0]", "write()", "allow"),
        # arguments that meet the condition, then arguments that miss it: the default
        ("linux.seccomp.syscalls[1]", "socket(arg0=1)", "errno 13"),
        ("linux.seccomp.syscalls[1]", "socket(arg0=2)", "errno 1"),
        ("linux.seccomp.syscalls[2]", "reboot()", "kill the thread"),
        # an old and a recent call no rule names
        ("linux.seccomp.defaultAction", "mount()", "errno 1"),
        ("linux.seccomp.defaultAction", "pidfd_open()", "errno 1"),
    ]


def test_the_words_ask_for_every_claim():
    words = plan_for(CONFIG).words
    for word in (f"write={judging.WRITE_TEST}", "statfs=/tmp", "stat=/tmp", "read=/proc/keys",
                 "ls=/sys/firmware", "chmod=/proc/sys", "openw=/proc/sys", "ifflags=lo",
                 "sys=41,1", "sys=41,2", "sys=169"):  # socket(1), socket(2), reboot()
        assert word in words
    assert len(words) == len(set(words))


def test_no_new_network_namespace_no_loopback_question():
    config = copy.deepcopy(CONFIG)
    config["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]
    assert "ifflags=lo" not in plan_for(config).words


def test_a_filter_that_kills_what_the_probe_needs_is_not_asked():
    config = copy.deepcopy(CONFIG)
    config["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_KILL_PROCESS"
    plan = plan_for(config)
    assert plan.sys_blocked == "mmap"
    assert not [w for w in plan.words if w.startswith("sys=")]
    report, outside = kernel(plan)
    claims = judging.judge(plan, report, outside)
    [claim] = by_path(claims, "linux.seccomp.syscalls")
    assert claim.verdict == NOT_CHECKED and "kills mmap" in claim.seen


# ---- judging canned reports ----

def test_a_faithful_container_holds_every_claim():
    plan = plan_for(CONFIG)
    claims = judging.judge(plan, *kernel(plan))
    assert {c.verdict for c in claims} == {HELD}, [c for c in claims if c.verdict != HELD]
    paths = [c.path for c in claims]
    for path in ("process.user.uid", "process.user.additionalGids",
                 "process.capabilities.ambient", "process.noNewPrivileges", "linux.seccomp",
                 "linux.namespaces[1] (network)", "linux.namespaces", "hostname",
                 "process.rlimits[0] (RLIMIT_NOFILE)", "root.readonly", "mounts[1] (/tmp)",
                 "linux.maskedPaths[1] (/proc/keys)", "linux.readonlyPaths[0] (/proc/sys)"):
        assert path in paths
    assert len(by_path(claims, "linux.seccomp.syscalls[0]")) == 3
    [tmp] = by_path(claims, "mounts[1] (/tmp)")
    assert tmp.seen == "tmpfs rw,nosuid,nodev,relatime size 1 MiB mode 1770"
    [keys] = by_path(claims, "linux.maskedPaths[1] (/proc/keys)")
    assert keys.seen == "reads 0 bytes (/dev/null over it)"


def _set(path, value):
    def edit(report, outside):
        target = {"report": report, "outside": outside}
        *keys, last = path
        for key in keys:
            target = target[key]
        target[last] = value
    return edit


FAULTS = [
    # (what goes wrong, the claims that must break)
    (_set(("outside", "status", "CapEff"), f"{1 << CAP_NET_BIND_SERVICE | 1 << CAP_KILL:016x}"),
     {("process.capabilities.effective", "CAP_NET_BIND_SERVICE")}),
    (_set(("outside", "status", "CapBnd"), f"{ALL:016x}"),
     {("process.capabilities.bounding", "CAP_NET_BIND_SERVICE")}),
    (_set(("outside", "status", "NoNewPrivs"), "0"), {("process.noNewPrivileges", "true")}),
    (_set(("outside", "status", "Uid"), "1000\t1000\t1000\t1000"),
     {("process.user.uid", "0")}),
    (_set(("report", "groups"), []), {("process.user.additionalGids", "[10]")}),
    (_set(("report", "hostname"), "host"), {("hostname", "'box'")}),
    (_set(("report", "cwd"), "/root"), {("process.cwd", "/")}),
    (_set(("report", "rlimits", "RLIMIT_NOFILE"), [1048576, 1048576]),
     {("process.rlimits[0] (RLIMIT_NOFILE)", "soft 1024, hard 1024")}),
    (_set(("outside", "ns", "net"), 102),
     {("linux.namespaces[1] (network)", "a new one")}),
    (_set(("outside", "ns", "user"), 206),
     {("linux.namespaces", "not listed, so the runtime's: ipc, user, cgroup, time")}),
    (_set(("report", "results", "ifflags=lo"), {"errno": 0, "flags": 0x8}),
     {("linux.namespaces[1] (network)", "lo is up")}),
    (_set(("report", "results", f"write={judging.WRITE_TEST}"), {"errno": 0}),
     {("root.readonly", "true")}),
    (_set(("report", "mounts", 2, "options"), "rw,nodev,relatime"),
     {("mounts[1] (/tmp)", "tmpfs nosuid nodev size=1m mode=1770")}),
    (_set(("report", "results", "statfs=/tmp", "blocks"), 16384),
     {("mounts[1] (/tmp)", "tmpfs nosuid nodev size=1m mode=1770")}),
    (_set(("report", "results", "stat=/tmp", "mode"), 0o41777),      # runc 1.1.5 does this
     {("mounts[1] (/tmp)", "tmpfs nosuid nodev size=1m mode=1770")}),
    (_set(("report", "results", "read=/proc/keys"), {"errno": 0, "bytes": 120, "head": "x"}),
     {("linux.maskedPaths[1] (/proc/keys)", "hidden")}),
    (_set(("report", "results", "ls=/sys/firmware"), {"errno": 0, "entries": ["acpi"]}),
     {("linux.maskedPaths[2] (/sys/firmware)", "hidden")}),
    (_set(("report", "results", "chmod=/proc/sys"), {"errno": 0}),
     {("linux.readonlyPaths[0] (/proc/sys)", "read-only")}),
    (_set(("report", "results", "sys=169"), {"action": "errno", "errno": 1}),
     {("linux.seccomp.syscalls[2]", "reboot() gets kill the thread")}),
]


@pytest.mark.parametrize("fault,want", FAULTS)
def test_one_fault_breaks_exactly_its_claim(fault, want):
    plan = plan_for(CONFIG)
    report, outside = kernel(plan)
    fault(report, outside)
    assert broken(judging.judge(plan, report, outside)) == want


def test_a_runtime_without_the_filter_breaks_the_mode_and_every_sample_not_allowed():
    plan = plan_for(CONFIG)
    report, outside = kernel(plan)
    outside["status"]["Seccomp"] = "0"
    for s in plan.samples:
        report["results"][plan.sys_word(s)] = {"action": "allow", "errno": 0}
    assert broken(judging.judge(plan, report, outside)) == {
        ("linux.seccomp", "a filter"),
        ("linux.seccomp.syscalls[1]", "socket(arg0=1) gets errno 13"),
        ("linux.seccomp.syscalls[1]", "socket(arg0=2) gets errno 1"),
        ("linux.seccomp.syscalls[2]", "reboot() gets kill the thread"),
        ("linux.seccomp.defaultAction", "mount() gets errno 1"),
        ("linux.seccomp.defaultAction", "pidfd_open() gets errno 1"),
    }


def test_runc_s_enosys_answer_is_broken_and_explained():
    plan = plan_for(CONFIG)
    report, outside = kernel(plan)
    word = plan.sys_word(plan.samples[-1])      # pidfd_open, newer than every listed call
    report["results"][word] = {"action": "errno", "errno": errno.ENOSYS}
    [claim] = [c for c in judging.judge(plan, report, outside) if c.verdict == BROKEN]
    assert claim.claim == "pidfd_open() gets errno 1"
    assert claim.seen.startswith("errno 38 (runc answers ENOSYS")


def test_a_probe_that_could_not_ask_leaves_the_sample_not_checked():
    plan = plan_for(CONFIG)
    report, outside = kernel(plan)
    report["results"][plan.sys_word(plan.samples[0])] = {
        "action": "setup", "errno": errno.EPERM, "step": "seccomp"}
    claims = judging.judge(plan, report, outside)
    assert not broken(claims)
    [claim] = [c for c in claims if c.verdict == NOT_CHECKED]
    assert (claim.claim, claim.seen) == ("read() gets allow",
                                         "the probe could not ask: seccomp EPERM")


def test_a_shadowed_conditional_rule_says_so():
    # the article's allow-list: kill allowed outright, then "only with signal 15"
    config = copy.deepcopy(CONFIG)
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["kill", "read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}]}
    plan = plan_for(config)
    rule = [s for s in plan.samples if s.path == "linux.seccomp.syscalls[1]"]
    assert [(sampling._call_text(s.name, s.args), s.expected) for s in rule] == [
        ("kill(arg1=15)", seccomp.ACT_ALLOW), ("kill(arg1=16)", seccomp.ACT_ALLOW)]
    assert rule[1].note == ("no effect: linux.seccomp.syscalls[0] gives kill allow for any "
                            "arguments")


def test_capabilities_lost_at_execve_are_broken_with_the_reason():
    # the article's capability snippet for uid 1000: execve leaves it nothing
    config = copy.deepcopy(CONFIG)
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    plan = plan_for(config)
    report, outside = kernel(plan)
    report.update(uid=1000, euid=1000, suid=1000, gid=1000, egid=1000, sgid=1000, groups=[])
    report["caps"].update(permitted="0" * 16, effective="0" * 16)
    outside["status"].update(Uid="1000\t1000\t1000\t1000", Gid="1000\t1000\t1000\t1000",
                             Groups="", CapPrm="0" * 16, CapEff="0" * 16)
    claims = judging.judge(plan, report, outside)
    assert broken(claims) == {("process.capabilities.effective", "CAP_NET_BIND_SERVICE"),
                              ("process.capabilities.permitted", "CAP_NET_BIND_SERVICE")}
    [eff] = by_path(claims, "process.capabilities.effective")
    assert eff.seen == ("CapEff 0000000000000000: none; execve leaves a process that is not "
                        "uid 0 only its ambient set (add them to inheritable and ambient)")


RUNC_SPEC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


@pytest.mark.parametrize("inheritable,live_ambient,verdict", [
    ([], 0, judging.UNKEEPABLE),     # `runc spec`: nothing can be raised, nothing was
    ([], 1 << CAP_KILL, BROKEN),    # a runtime that raised one anyway (the kernel would not)
    (["CAP_KILL"], 0, BROKEN),      # CAP_KILL could be kept and was not
    (["CAP_KILL"], 1 << CAP_KILL, judging.UNKEEPABLE),
])
def test_ambient_capabilities_the_kernel_refuses_are_unkeepable(inheritable, live_ambient,
                                                               verdict):
    config = copy.deepcopy(CONFIG)
    config["process"]["capabilities"] = {k: RUNC_SPEC_CAPS for k in
                                         ("bounding", "effective", "permitted", "ambient")}
    config["process"]["capabilities"]["inheritable"] = inheritable
    plan = plan_for(config)
    report, outside = kernel(plan)
    mask = f"{sum(1 << judging.CAPS[n] for n in RUNC_SPEC_CAPS):016x}"
    outside["status"].update(CapPrm=mask, CapEff=mask, CapBnd=mask,
                             CapInh=f"{1 << CAP_KILL if inheritable else 0:016x}",
                             CapAmb=f"{live_ambient:016x}")
    report["caps"] = {}
    claims = judging.judge(plan, report, outside)
    [amb] = by_path(claims, "process.capabilities.ambient")
    assert amb.verdict == verdict
    assert {c.path for c in claims if c.verdict in (BROKEN, judging.UNKEEPABLE)} == {
        "process.capabilities.ambient"}
    result = verify.Result("b", "pyrunc", claims)
    assert result.status == (verdict == BROKEN)
    if verdict == judging.UNKEEPABLE:
        # the reason, then check's finding for the same config
        assert "PR_CAP_AMBIENT_RAISE" in amb.why
        assert ("check: process.capabilities.ambient[0]: CAP_AUDIT_WRITE is not in both "
                "permitted and inheritable") in amb.why
        assert "unkeepable" in judging.counts(claims)
        assert judging.line(amb).startswith("UNKEEPABLE  process.capabilities.ambient: ")
        assert "\n              why: the kernel raises" in judging.line(amb)
    else:
        assert amb.why == ""


def test_ids_the_probe_could_not_report_are_not_checked():
    # a learned profile can refuse the probe's getresuid: no claim breaks for want of it
    plan = plan_for(CONFIG)
    report, outside = kernel(plan)
    for key in ("uid", "euid", "suid"):
        del report[key]
    claims = judging.judge(plan, report, outside)
    [uid] = by_path(claims, "process.user.uid")
    assert uid.verdict == NOT_CHECKED and "did not report" in uid.seen
    assert by_path(claims, "process.user.gid")[0].verdict == HELD


def test_ids_are_compared_through_the_user_namespace_mapping():
    config = copy.deepcopy(CONFIG)
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["linux"]["namespaces"].append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        config["linux"][key] = [{"containerID": 0, "hostID": 99000, "size": 1},
                                {"containerID": 1000, "hostID": 100000, "size": 1}]
    config["process"]["capabilities"] = {k: [] for k in judging.SETS}
    plan = plan_for(config)
    report, outside = kernel(plan)
    report.update(uid=1000, euid=1000, suid=1000, gid=1000, egid=1000, sgid=1000, groups=[])
    outside["status"].update(Uid="100000\t100000\t100000\t100000",
                             Gid="100000\t100000\t100000\t100000", Groups="",
                             CapPrm="0" * 16, CapEff="0" * 16, CapBnd="0" * 16)
    outside["ns"]["user"] = 206
    outside["uid_map"] = outside["gid_map"] = [(0, 99000, 1), (1000, 100000, 1)]
    claims = judging.judge(plan, report, outside)
    assert not broken(claims)
    [uid] = by_path(claims, "process.user.uid")
    assert uid.seen == "1000 inside, 100000 on the host"
    # a runtime that mapped 1000 elsewhere
    outside["status"]["Uid"] = "101000\t101000\t101000\t101000"
    outside["uid_map"] = [(0, 99000, 1), (1000, 101000, 1)]
    assert broken(judging.judge(plan, report, outside)) == {
        ("process.user.uid", "1000"),
        ("linux.uidMappings", "0 -> 99000 (size 1); 1000 -> 100000 (size 1)")}


def test_settings_verify_cannot_check_are_listed():
    config = copy.deepcopy(CONFIG)
    # memory.limit is checked, swappiness and cpu are not
    config["linux"]["resources"] = {"memory": {"limit": 1 << 30, "swappiness": 10},
                                    "cpu": {"shares": 100}}
    config["process"]["terminal"] = True
    plan = plan_for(config)
    claims = judging.judge(plan, *kernel(plan))
    assert {(c.path, c.verdict) for c in claims if c.verdict == NOT_CHECKED} == {
        ("linux.resources.memory.swappiness", NOT_CHECKED),
        ("linux.resources.cpu.shares", NOT_CHECKED), ("process.terminal", NOT_CHECKED)}


# ---- the pieces of the model ----

def test_after_execve():
    net = 1 << CAP_NET_BIND_SERVICE
    sets = {"bounding": ALL, "effective": net, "permitted": net, "inheritable": 0,
            "ambient": 0}
    # uid 0 gets the bounding set as permitted, unless no_new_privs keeps it at permitted
    assert judging.after_execve(sets, uid0=True, nnp=False)["effective"] == ALL
    assert judging.after_execve(sets, uid0=True, nnp=True)["effective"] == net
    # anyone else keeps the ambient set only, and ambient needs permitted and inheritable
    assert judging.after_execve(sets, uid0=False, nnp=True)["permitted"] == 0
    amb = dict(sets, inheritable=net, ambient=net)
    assert judging.after_execve(amb, uid0=False, nnp=True)["effective"] == net


def _section(rules, default="SCMP_ACT_ERRNO"):
    model, _ = load_config({"ociVersion": "1.0.2", "root": {"path": "r"},
                            "linux": {"seccomp": {"defaultAction": default,
                                                  "syscalls": rules}}})
    return seccomp.check_section(model.linux.seccomp)


def test_expected_action_follows_libseccomp():
    section = _section([
        {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 2, "value": 4, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mmap"], "action": "SCMP_ACT_KILL",
         "args": [{"index": 3, "value": 1, "op": "SCMP_CMP_GT"}]},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LT"}]},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
    ])
    e = sampling.expected_action
    assert e(section, "mmap", {2: 4 | 1}) == seccomp.ACT_ERRNO | 22       # PROT_EXEC set
    assert e(section, "mmap", {2: 3}) == seccomp.ACT_ERRNO | errno.EPERM  # the default
    assert e(section, "mmap", {3: 2}) == seccomp.ACT_KILL_THREAD
    assert e(section, "mmap", {2: 4, 3: 2}) is None     # two actions hold: libseccomp's call
    assert e(section, "read", {0: 10}) == seccomp.ACT_ALLOW  # the unconditional rule decides


@pytest.mark.parametrize("op,value,two,meet,miss", [
    ("SCMP_CMP_NE", 2, 0, 3, 2), ("SCMP_CMP_LT", 2, 0, 1, 2), ("SCMP_CMP_LE", 2, 0, 2, 3),
    ("SCMP_CMP_EQ", 2, 0, 2, 3), ("SCMP_CMP_GE", 2, 0, 2, 1), ("SCMP_CMP_GT", 2, 0, 3, 2),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, 0x30, 0x20), ("SCMP_CMP_LT", 0, 0, None, 0),
])
def test_values_that_meet_and_miss_a_condition(op, value, two, meet, miss):
    section = _section([{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": value, "valueTwo": two, "op": op}]}])
    cond = section.rules[0].groups[0][0]
    assert sampling._meeting(cond) == (meet, miss)
    if meet is not None:
        assert sampling._holds(cond, {0: meet})
    assert not sampling._holds(cond, {0: miss})


def test_tmpfs_sizes():
    assert [judging._size_bytes(t) for t in ("65536k", "100m", "1G", "4096", "50%")] == [
        64 << 20, 100 << 20, 1 << 30, 4096, None]


# ---- the command ----

def test_a_missing_bundle_or_runtime_exits_2_with_one_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    verify.configure(parser)
    assert verify.run(parser.parse_args([str(tmp_path / "none")])) == 2
    assert capsys.readouterr().err == f"pyrunc verify: bundle {tmp_path}/none: no such " \
                                      "directory [step: load]\n"
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    args = parser.parse_args([str(tmp_path), "--runtime", "no-such-runtime"])
    assert verify.run(args) == 2
    assert capsys.readouterr().err == ("pyrunc verify: runtime no-such-runtime: not found on "
                                       "PATH\n")


def test_verify_runs_this_pyrunc(monkeypatch, tmp_path):
    launcher = tmp_path / "pyrunc"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    monkeypatch.setattr("sys.argv", [str(launcher), "verify"])
    assert probing.runtime_argv("pyrunc")[0] == [str(launcher)]


def test_a_claim_is_one_line():
    claim = judging.Claim(BROKEN, "linux.seccomp", "a filter", "Seccomp 0")
    assert judging.line(claim) == "BROKEN      linux.seccomp: a filter (seen: Seccomp 0)"


# ---- pyrunc seccomp show ----

def show(tmp_path, capsys, *flags, config=CONFIG):
    (tmp_path / "config.json").write_text(json.dumps(config))
    parser = argparse.ArgumentParser()
    seccomp_show.configure(parser)
    status = seccomp_show.run(parser.parse_args(["show", str(tmp_path), *flags]))
    return status, capsys.readouterr()


def test_seccomp_show_prints_the_filter_then_each_syscall(tmp_path, capsys):
    status, out = show(tmp_path, capsys)
    assert status == 0
    pfc, _, summary = out.out.partition("# what each syscall gets")
    assert "# pseudo filter code start" in pfc and "action KILL;" in pfc
    assert summary.splitlines()[1:] == [
        "read             allow", "ptrace           allow", "write            allow",
        "socket           errno 13 if arg0 == 1, else errno 1",
        "reboot           kill the thread", "everything else  errno 1"]
    assert show(tmp_path, capsys, "--summary-only")[1].out.startswith("# what each")
    assert "# what each" not in show(tmp_path, capsys, "--pfc-only")[1].out


def test_seccomp_show_warns_about_unknown_names_once(tmp_path, capsys):
    config = copy.deepcopy(CONFIG)
    config["linux"]["seccomp"]["syscalls"][0]["names"].append("no_such_call")
    status, out = show(tmp_path, capsys, config=config)
    assert status == 0
    assert out.err == ("pyrunc seccomp: warning: linux.seccomp.syscalls[0].names[3]: unknown "
                       "syscall 'no_such_call', skipped\n")


def test_seccomp_show_without_a_filter(tmp_path, capsys):
    config = copy.deepcopy(CONFIG)
    del config["linux"]["seccomp"]
    status, out = show(tmp_path, capsys, config=config)
    assert status == 0
    assert out.out == f"{tmp_path}/config.json: no linux.seccomp: the container may make " \
                      "every syscall\n"


# ---- the demo's bundles ----

def test_the_demo_shows_each_snippet_s_own_claims(tmp_path):
    path, paths = demo.build(str(tmp_path), "readonly-root-tmpfs")
    assert paths == ["root.path", "root.readonly", "mounts[7]", "mounts[8]"]
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    assert [m["destination"] for m in config["mounts"][7:]] == ["/tmp", "/var/log"]
    assert demo.under("mounts[7] (/tmp)", paths) and demo.under("root.readonly", paths)
    assert not demo.under("mounts[1] (/dev)", paths) and not demo.under("root", paths)
    assert stat.S_ISDIR(os.stat(os.path.join(path, "rootfs", "bin")).st_mode)


def test_the_demo_s_userns_bundle_keeps_the_published_mapping(tmp_path):
    path, paths = demo.build(str(tmp_path), "userns")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    assert config["linux"]["uidMappings"] == [{"containerID": 1000, "hostID": 100000,
                                               "size": 1}]
    devpts = [m for m in config["mounts"] if m["type"] == "devpts"][0]
    assert "gid=5" not in devpts["options"]
    assert paths == ["process.user", "linux.namespaces[5]", "linux.uidMappings",
                     "linux.gidMappings", "mounts[2]"]


def test_an_unknown_capability_is_named_in_the_claim():
    config = copy.deepcopy(CONFIG)
    config["process"]["capabilities"]["bounding"].append("CAP_NO_SUCH")
    plan = plan_for(config)
    claims = judging.judge(plan, *kernel(plan))
    [bnd] = by_path(claims, "process.capabilities.bounding")
    assert (bnd.verdict, bnd.claim) == (HELD, "CAP_NET_BIND_SERVICE (ignored: CAP_NO_SUCH)")



def test_the_x86_architecture_claim():
    plan = plan_for(CONFIG)
    assert judging.I386_GETPID in plan.words
    killed = {"errno": 0, "signal": signal.SIGSYS}
    assert judging.arch_claim(plan, killed).verdict == judging.HELD
    # a runtime that filtered 32-bit calls like native ones would let getpid through
    assert judging.arch_claim(plan, {"errno": 1}).verdict == judging.BROKEN
    listed = json.loads(json.dumps(CONFIG))
    listed["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    plan = plan_for(listed)
    want = sampling.expected_action(plan.section, "getpid", {})
    claim = judging.arch_claim(plan, {"errno": want & 0xFFFF} if want & 0xFFFF0000 ==
                              seccomp.ACT_ERRNO else {"errno": 0})
    assert claim.verdict == judging.HELD, claim
    assert judging.arch_claim(plan, killed).verdict == judging.BROKEN


def test_cgroup_limits_are_read_from_the_process_s_cgroups():
    config = json.loads(json.dumps(CONFIG))
    config["linux"]["resources"] = {"memory": {"limit": 64 * 2**20 + 100},
                                    "pids": {"limit": 64}}
    plan = plan_for(config)
    page = os.sysconf("SC_PAGE_SIZE")
    applied = judging.Seen({}, {"cgroup_files": {"memory": 64 * 2**20 + 100 - 100 % page,
                                                "pids": 64}})
    assert {c.verdict for c in judging.resource_claims(plan, applied)} == {judging.HELD}
    ignored = judging.Seen({}, {"cgroup_files": {"memory": judging.V1_UNLIMITED}})
    claims = judging.resource_claims(plan, ignored)
    assert [c.verdict for c in claims] == [judging.BROKEN, judging.BROKEN]
    assert "none" in claims[0].seen and "any number" in claims[1].seen
