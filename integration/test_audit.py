"""`pyrunc audit` of running containers, from the host: a container of each runtime (pyrunc,
runc: PYRUNC_IT_RUNTIMES) held against its own config, found through the runtime's state,
and the same container judged against a config it does not follow (exactly those claims
break). Nothing runs in the container: its process is the same and still running after."""
import copy
import json
import os
import subprocess

import pytest

from integration import itlib
from integration.test_verify import good_config
from pyrunc.bundle import make_bundle
from pyrunc.teach import audit as audit_module

PYRUNC = os.path.join(itlib.REPO, "bin", "pyrunc")


def audit(*args):
    proc = subprocess.run([PYRUNC, "audit", *args, "--format", "json"], capture_output=True,
                          text=True, timeout=120)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


def claims(report, verdict=None):
    return {(c["path"], c["claim"]) for c in report["claims"]
            if verdict is None or c["verdict"] == verdict}


def running(runtime, workdir):
    """A container of `runtime` running `sleep` with good_config's settings: (id, pid)."""
    config = good_config()
    config["process"]["args"] = ["sleep", "600"]
    config["process"]["terminal"] = False
    config["hostname"] = "audited"
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
    path = make_bundle(os.path.join(workdir, "b"), rootfs="busybox", config=config)
    bundle = itlib.Bundle(path, config)
    cid = itlib.new_id()
    proc = runtime.create(bundle, cid)
    assert proc.returncode == 0, proc.stderr
    assert runtime.start(cid).returncode == 0
    pid = runtime.state(cid)["pid"]
    return cid, pid, config, path


@pytest.mark.crun_oracle
def test_a_running_container_holds_its_config(runtime, workdir):
    cid, pid, config, path = running(runtime, workdir)
    started = itlib.start_time(pid)
    status, report, stderr = audit(cid, "--runtime", runtime.name, "--root", runtime.root)
    assert status == 0, (stderr, claims(report, "broken") if report else None)
    assert report["target"]["pid"] == pid
    assert report["target"]["label"] == f"{runtime.name} container {cid}"
    # every kind of claim verify makes, judged from the host alone
    assert {c["verdict"] for c in report["claims"]} <= {"held", "not checked"}
    held = claims(report, "held")
    for claim in [("process.user.additionalGids", "[10, 20]"),
                  ("process.capabilities.effective", "CAP_KILL, CAP_NET_BIND_SERVICE"),
                  ("process.noNewPrivileges", "true"),
                  ("linux.seccomp.syscalls[0]", "socket(arg0=3) gets errno 1"),
                  ("linux.seccomp.syscalls[0]", "socket(arg0=2) gets allow"),
                  ("linux.seccomp.syscalls[2]", "reboot() gets kill the process"),
                  ("linux.sysctl[net.ipv4.ip_forward]", "1"),
                  ("hostname", "'audited'"), ("root.readonly", "true"),
                  ("linux.maskedPaths[3] (/proc/keys)", "hidden"),
                  ("linux.readonlyPaths[3] (/proc/sys)", "read-only")]:
        assert claim in held, claim
    seen = report["seen"]
    assert seen["outside"]["status"]["CapEff"] == f"{(1 << 5) | (1 << 10):016x}"
    syscalls = seen["seccomp"]["syscalls"]
    assert syscalls["socket"].startswith("errno 1 with arguments 0 (reads arg0)")
    assert syscalls["ptrace"] == "errno 1" and syscalls["reboot"] == "kill the process"
    assert syscalls["everything else"] == "allow"
    assert {ns: seen["outside"]["ns"][ns] != seen["host_ns"][ns]
            for ns in ("pid", "net", "mnt", "uts", "ipc")} == dict.fromkeys(
                ("pid", "net", "mnt", "uts", "ipc"), True)
    [lo] = seen["namespaces"]["interfaces"]
    assert lo["name"] == "lo" and lo["up"] and "127.0.0.1/8" in lo["addresses"]
    root = [m for m in seen["mounts"] if m["mount_point"] == "/"]
    assert root and "ro" in root[-1]["options"].split(",")
    # cgroup limits, read from the process's own cgroups; each mount's propagation
    limits = seen["outside"]["cgroup_files"]
    assert (limits["memory"], limits["pids"]) == (64 << 20, 64), limits
    assert {("linux.resources.memory.limit", "67108864 bytes"),
            ("linux.resources.pids.limit", "64")} <= held
    assert [m["propagation"] for m in seen["mounts"] if m["mount_point"] == "/"] == ["private"]
    # LSM labels: none on this host, and the report says so rather than leave it out
    if not seen["lsm"]:
        text = subprocess.run([PYRUNC, "audit", str(pid)], capture_output=True, text=True,
                              timeout=60).stdout
        assert "lsm           no label: /proc/PID/attr/current" in text
    # nothing ran in it: the same process, still running
    assert itlib.start_time(pid) == started


def test_a_config_the_container_does_not_follow_breaks_exactly_its_claims(runtime, workdir):
    cid, pid, config, path = running(runtime, workdir)
    other = copy.deepcopy(config)
    caps = other["process"]["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        caps[key] = caps[key] + ["CAP_CHOWN"]
    other["process"]["noNewPrivileges"] = False
    other["linux"]["seccomp"]["syscalls"][1]["names"].append("mount")
    other["hostname"] = "elsewhere"
    claimed = os.path.join(workdir, "claimed")
    os.makedirs(claimed)
    with open(os.path.join(claimed, "config.json"), "w") as f:
        json.dump(other, f)
    status, report, stderr = audit(str(pid), "--bundle", claimed)
    assert status == 1, stderr
    assert report["target"]["label"] == f"pid {pid}"
    assert claims(report, "broken") == {
        ("process.capabilities.bounding", "CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE"),
        ("process.capabilities.effective", "CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE"),
        ("process.capabilities.permitted", "CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE"),
        ("process.noNewPrivileges", "false"),
        ("linux.seccomp.syscalls[1]", "mount() gets errno 1"),
        ("hostname", "'elsewhere'"),
    }


def test_a_pid_alone_gives_the_facts_without_claims(runtime, workdir):
    cid, pid, _, _ = running(runtime, workdir)
    proc = subprocess.run([PYRUNC, "audit", str(pid)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the article's container-security-check.sh, every check: id, Cap*, Seccomp, ns, mount, ip
    for needle in ("user          uid 0/0/0/0", "  effective   CAP_KILL, CAP_NET_BIND_SERVICE",
                   "seccomp       mode 2 (filter), 1 filter", "  net ", "  /proc proc ",
                   "  lo UP 127.0.0.1/8", "no config to judge against",
                   "\nlsm           "):
        assert needle in out, (needle, out)


def test_no_such_container_is_one_line_and_exit_2(workdir):
    proc = subprocess.run([PYRUNC, "audit", "it-none", "--runtime", "runc", "--root",
                           os.path.join(workdir, "none")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"pyrunc audit: it-none: no such container under {workdir}/none "
                           "(give --runtime and --root, or the container's pid)\n")


# ---- a podman container: podman's OCI runtime keeps its state under the root podman gives
# it (test_clients.py's private podman: its own storage, state, network and cgroup setup)

from integration.test_clients import (IMAGE, _name, _ok, host_leftovers, podman,  # noqa: F401
                                      podman_rt, runtime_bin)


def test_a_podman_container_holds_its_config(podman_rt):
    pm, rt = podman_rt
    name = _name()
    proc = _ok(pm(rt, *pm.run_args("-d", "--name", name, IMAGE, "sleep", "600")))
    cid = proc.stdout.strip()
    try:
        status, report, stderr = audit(cid, "--runtime", rt[0], "--root",
                                       pm.state_root(rt[0]))
        assert report is not None, stderr
        broken = claims(report, "broken")
        if rt[0] == "runc":     # runc 1.1.5's writable cgroup v1 tmpfs (docs/TEACHING.md)
            assert {p for p, _ in broken} == {"mounts[9] (/sys/fs/cgroup)"}, broken
            assert status == 1
        else:
            assert broken == set() and status == 0, stderr
        # runc's state names the bundle podman made; pyrunc keeps the config it ran
        assert report["target"]["config"].endswith(
            "/userdata/config.json" if rt[0] == "runc" else f"/{cid}/config.json")
        held = claims(report, "held")
        # podman's default capabilities and its seccomp profile, sampled on the live filter
        assert ("process.noNewPrivileges", "false") in held
        assert sum(p.startswith("linux.seccomp.syscalls[") for p, _ in held) > 20
        assert report["seen"]["seccomp"]["filters"] == 1
        # podman's profile: an allow-list, ENOSYS for what it does not name
        rows = report["seen"]["seccomp"]["syscalls"]
        assert rows["everything else"] == "allow"
        assert rows["a number no syscall has"] == "errno 38"
        assert rows["kexec_load"] == "errno 1"  # podman 4.3 names it in an EPERM rule
    finally:
        pm(rt, "rm", "--force", "--time", "0", name)



# ---- a docker container: dockerd (test_docker.py's private one) gives every runtime the
# root EXEC_ROOT/runtime-runc/moby; the bundle is containerd's task directory

from integration.test_docker import IMAGE as DOCKER_IMAGE, WAITER, docker, rt  # noqa: E402,F401


def test_a_docker_container_holds_its_config(rt):
    dk, runtime = rt
    name = f"it-{os.urandom(5).hex()}"
    cid = _ok(dk("run", "-d", "--name", name, "--runtime", runtime, DOCKER_IMAGE,
                 *WAITER)).stdout.strip()
    try:
        status, report, stderr = audit(cid, "--runtime", runtime[len("it-"):], "--root",
                                       dk.state_root)
        assert report is not None, stderr
        broken = claims(report, "broken")
        if runtime == "it-runc":
            # runc 1.1.5's writable cgroup v1 tmpfs (docs/TEACHING.md), and its filter patch:
            # syscalls newer than any the profile names get ENOSYS, not docker's default
            # EPERM (podman's profile defaults to ENOSYS itself, so it holds there)
            assert {p for p, _ in broken} == {"mounts[4] (/sys/fs/cgroup)",
                                              "linux.seccomp.defaultAction"}, broken
            assert status == 1
        else:
            assert broken == set() and status == 0, stderr
        assert report["target"]["config"].endswith("/config.json")
        held = claims(report, "held")
        # docker's default capabilities (no CAP_SYS_ADMIN) and its seccomp profile, live
        assert ("process.noNewPrivileges", "false") in held
        assert sum(p.startswith("linux.seccomp.syscalls[") for p, _ in held) >= 10
        assert report["seen"]["seccomp"]["filters"] == 1
        cap_sys_admin = 1 << 21
        assert not int(report["seen"]["outside"]["status"]["CapEff"], 16) & cap_sys_admin
        # the container's network namespace: docker0's veth end with its address
        ifaces = {i["name"]: i for i in report["seen"]["namespaces"]["interfaces"]}
        assert "lo" in ifaces and "eth0" in ifaces, ifaces
    finally:
        dk("rm", "--force", name)

@pytest.mark.crun_oracle
def test_each_check_of_the_article_s_script_gets_audit_s_answer(runtime, workdir):
    """The article's container-security-check.sh runs its checks inside the container
    (`docker exec`); here they run through the runtime's exec, after audit has looked from
    the host, and each answer is audit's (pyrunc.teach.audit.ARTICLE_CHECKS)."""
    config = good_config()
    config["linux"]["seccomp"]["syscalls"].pop(0)   # `ip` needs its netlink socket
    config["process"]["args"] = ["sleep", "600"]
    config["process"]["terminal"] = False
    path = make_bundle(os.path.join(workdir, "b"), rootfs="busybox", config=config)
    cid = itlib.new_id()
    assert runtime.create(itlib.Bundle(path, config), cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    status, report, stderr = audit(cid, "--runtime", runtime.name, "--root", runtime.root)
    assert status == 0, stderr
    text = subprocess.run([PYRUNC, "audit", cid, "--runtime", runtime.name, "--root",
                           runtime.root], capture_output=True, text=True, timeout=60).stdout

    def field(path):
        value = report
        for key in path.split("."):
            value = value[key]
        return value

    def inside(command):
        proc = runtime.cmd("exec", cid, "sh", "-c", command)
        assert proc.returncode == 0, (command, proc.stderr)
        return proc.stdout

    status_of = report["seen"]["outside"]["status"]
    for command, line, path in audit_module.ARTICLE_CHECKS:
        assert field(path), path
        assert any(t.startswith(line) for t in text.splitlines()), (line, text)
        out = inside(command)
        if command == "id":
            assert out.startswith(f"uid={field(path).split()[1]}(")
            assert f"uid {out[4:out.index('(')]} in the container" in text
        elif command.startswith("grep "):
            seen = dict(t.split(":\t") for t in out.splitlines())
            assert seen and seen == {k: status_of[k] for k in seen}, (seen, status_of)
        elif command.startswith("ls "):
            seen = {t.split()[-3]: int(t.split("[")[-1].rstrip("]"))
                    for t in out.splitlines() if " -> " in t}
            assert seen == field(path), (seen, field(path))
        elif command.startswith("mount"):
            seen = {(t.split()[2], t.split()[4]) for t in out.splitlines()}
            assert seen and seen <= {(m["mount_point"], m["fstype"]) for m in field(path)}
        else:   # ip addr show: each interface, its state and its addresses
            names = {i["name"]: i for i in field(path)}
            links = [t.split(": ")[1].split("@")[0] for t in out.splitlines()
                     if t[:1].isdigit()]
            assert sorted(links) == sorted(names), (out, names)
            for address in (t.split()[1] for t in out.splitlines()
                            if t.strip().startswith(("inet ", "inet6 "))):
                assert any(address in i["addresses"] for i in names.values()), address
