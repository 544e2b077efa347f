"""What the kernel applied to the container process: pid, namespaces, ids, limits, env, fds."""
import os
import resource
import stat
import subprocess

import pytest

from integration import itlib

# the spec's namespace type -> the name under /proc/PID/ns/
NS_FILE = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
           "user": "user", "cgroup": "cgroup", "time": "time"}


def test_pid_1_in_new_pid_namespace(runtime, bundle):
    b = bundle.make("b", "hold=30")
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0
    assert runtime.start(cid).returncode == 0
    report = itlib.parse_report(runtime.wait_output(cid, lambda t: "\n" in t))
    host_pid = runtime.state(cid)["pid"]
    assert report["pid"] == 1 and report["ppid"] == 0
    # the host sees another pid for the same process, and the kernel's NSpid ties both
    assert host_pid != 1
    assert itlib.proc_status(host_pid)["NSpid"].split() == [str(host_pid), "1"]


def test_namespaces_differ_from_host_where_configured(runtime, bundle, probe):
    b = bundle.make("b")
    configured = {NS_FILE[n["type"]] for n in b.namespaces()}
    report = probe(b)
    host = itlib.host_ns_inodes()
    for name in ("pid", "net", "ipc", "uts", "mnt", "user", "cgroup"):
        if name in configured:
            assert report["ns"][name] != host[name], f"{name} namespace is the host's"
        else:
            # not asked for: the container shares the runtime's
            assert report["ns"][name] == host[name], f"{name} namespace was unshared"


def test_join_namespaces_by_path(runtime, bundle, probe):
    first = bundle.make("first", "hold=30")
    first.config["hostname"] = "it-first"
    first_id = itlib.new_id()
    assert runtime.create(first, first_id).returncode == 0
    pid = runtime.state(first_id)["pid"]

    second = bundle.make("second")
    joined = ("network", "ipc", "uts")
    second.config["linux"]["namespaces"] = [
        {"type": n["type"], "path": f"/proc/{pid}/ns/{NS_FILE[n['type']]}"}
        if n["type"] in joined else n for n in second.namespaces()]
    second.config.pop("hostname", None)  # the UTS namespace is the first container's
    report = probe(second)
    for kind in joined:
        name = NS_FILE[kind]
        assert report["ns"][name] == os.stat(f"/proc/{pid}/ns/{name}").st_ino, name
    # what was not joined is new, not the first container's
    for name in ("mnt", "pid"):
        assert report["ns"][name] != os.stat(f"/proc/{pid}/ns/{name}").st_ino, name
    # the joined UTS namespace carries the first container's hostname
    assert report["hostname"] == "it-first"


@pytest.mark.crun_oracle
def test_join_host_owned_namespaces_beside_a_new_user_namespace(runtime, bundle, probe,
                                                              request):
    """A new user namespace and a network and UTS namespace the host's user namespace owns:
    the runtime joins those before it unshares the user namespace (from inside it setns(2)
    is refused: crun's exec-root-netns-with-userns, with the host's /proc/1/ns/net)."""
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 joins them, then mounts sysfs, which the kernel "
                                "refuses in a network namespace the user namespace does not "
                                "own (runc binds /sys only when the config has no network "
                                "namespace; pyrunc and crun bind it on EPERM)"))
    holder = subprocess.Popen(["unshare", "--net", "--uts", "sleep", "30"])
    try:
        b = bundle.make("b").add_user_namespace()
        b.config.pop("hostname", None)  # the UTS namespace is the holder's
        joined = ("network", "uts")
        b.config["linux"]["namespaces"] = [
            n for n in b.namespaces() if n["type"] not in joined] + [
            {"type": t, "path": f"/proc/{holder.pid}/ns/{NS_FILE[t]}"} for t in joined]
        report = probe(b)
        for kind in joined:
            name = NS_FILE[kind]
            assert report["ns"][name] == os.stat(f"/proc/{holder.pid}/ns/{name}").st_ino, name
        assert report["ns"]["user"] != itlib.host_ns_inodes()["user"]
    finally:
        holder.kill()
        holder.wait()


def test_join_pid_namespace_while_the_runtime_stays_in_its_own(runtime, bundle, probe,
                                                              tmp_path):
    """pyrunc enters a pid namespace for the init it forks next (setns on itself) and
    goes back: the createRuntime hook it runs afterwards is in the host's pid namespace."""
    first = bundle.make("first", "hold=30")
    first_id = itlib.new_id()
    assert runtime.create(first, first_id).returncode == 0
    pid = runtime.state(first_id)["pid"]

    second = bundle.make("second")
    second.config["linux"]["namespaces"] = [
        {"type": "pid", "path": f"/proc/{pid}/ns/pid"} if n["type"] == "pid" else n
        for n in second.namespaces()]
    seen = tmp_path / "hook-pid-ns"
    second.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"readlink /proc/self/ns/pid > {seen}"]}]}
    report = probe(second)
    assert report["ns"]["pid"] == os.stat(f"/proc/{pid}/ns/pid").st_ino
    assert seen.read_text().strip() == os.readlink("/proc/self/ns/pid")


def test_hostname(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["hostname"] = "it-host-1"
    report = probe(b)
    assert report["hostname"] == "it-host-1"
    # the host's own name is untouched (the container has its own UTS namespace)
    assert os.uname().nodename != "it-host-1"


def test_domainname(runtime, bundle, probe, request):
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 implements runtime-spec 1.0.2; domainname came "
                                "in 1.1.0 and runc ignores it"))
    b = bundle.make("b")
    b.config["domainname"] = "it.example"
    assert probe(b)["domainname"] == "it.example"


@pytest.mark.crun_oracle
def test_uts_sysctls_do_not_contradict_hostname_and_domainname(runtime, bundle, probe):
    # the config's `hostname` and `domainname` name the UTS names: runc and crun refuse the
    # sysctl kernel.hostname always, and kernel.domainname beside a `domainname` (crun;
    # runc 1.1 knows no `domainname`); kernel.domainname alone sets it
    b = bundle.make("b")
    b.config["linux"]["sysctl"] = {"kernel.domainname": "by.sysctl"}
    assert probe(b)["domainname"] == "by.sysctl"
    before = itlib.pids()
    for sysctl, domainname in (("kernel.hostname", None), ("kernel.domainname", "by.field")):
        if runtime.name == "runc" and domainname:
            continue
        b.config["linux"]["sysctl"] = {sysctl: "by.sysctl"}
        if domainname:
            b.config["domainname"] = domainname
        cid = itlib.new_id()
        proc = runtime.run(b, cid)
        itlib.assert_failed_cleanly(runtime, proc, cid, before, ["/probe"])
        if runtime.name == "pyrunc":
            assert f"linux.sysctl.{sysctl}" in proc.stderr
    if runtime.name != "runc":
        # the same name by both: no contradiction, crun runs it (crun's test
        # domainname/domainname with syctl)
        b.config["linux"]["sysctl"] = {"kernel.domainname": "by.both"}
        b.config["domainname"] = "by.both"
        assert probe(b)["domainname"] == "by.both"


def test_user_group_and_additional_gids(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 100]}
    report = probe(b)
    assert (report["uid"], report["euid"], report["suid"]) == (1000, 1000, 1000)
    assert (report["gid"], report["egid"], report["sgid"]) == (1001, 1001, 1001)
    assert sorted(report["groups"]) == [5, 100]


def test_root_user_has_no_supplementary_groups_of_the_caller(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["process"]["user"] = {"uid": 0, "gid": 0}
    report = probe(b)
    assert report["uid"] == 0 and report["gid"] == 0
    # no additionalGids: the process must not keep the runtime's supplementary groups
    assert set(report["groups"]) <= {0}


def test_umask(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["process"]["user"]["umask"] = 0o027
    assert probe(b)["umask"] == 0o027


def test_rlimits(runtime, bundle, probe):
    b = bundle.make("b")
    # only lower the limits: root here lacks CAP_SYS_RESOURCE, so a runtime cannot raise a
    # hard limit above its own
    nofile_hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096) - 7
    core_hard = min(resource.getrlimit(resource.RLIMIT_CORE)[1] & (2**63 - 1), 1 << 30) - 4096
    b.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": nofile_hard // 2, "hard": nofile_hard},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": core_hard},
    ]
    report = probe(b)
    assert report["rlimits"]["RLIMIT_NOFILE"] == [nofile_hard // 2, nofile_hard]
    assert report["rlimits"]["RLIMIT_CORE"] == [0, core_hard]
    # limits not named keep the runtime's (here: the caller's)
    assert report["rlimits"]["RLIMIT_STACK"][1] == resource.getrlimit(resource.RLIMIT_STACK)[1] \
        % 2**64


def test_an_rlimit_nofile_below_what_the_runtime_needs(runtime, bundle, request):
    # soft 1: the process gets it, though the init still receives exec.fifo and runs a
    # startContainer hook after its rlimits step (runc 1.1.5 and crun 1.8.1 fail: "too many
    # open files")
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5's init cannot open /proc/self/fd under it"))
    b = bundle.make("b")
    b.config["process"]["args"] = ["/bin/sh", "-c", "ulimit -n; ulimit -Hn"]
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1024}]
    b.config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1024"]


@pytest.mark.pyrunc_only("the wording of pyrunc's error")
def test_a_hard_rlimit_nofile_leaving_no_room_fails_in_one_line(runtime, bundle):
    b = bundle.make("b", "sleep=0")
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 3, "hard": 3}]
    before = itlib.pids()
    cid = itlib.new_id()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "RLIMIT_NOFILE (process.rlimits)" in proc.stderr


def test_cwd(runtime, bundle, probe):
    b = bundle.make("b")
    b.config["process"]["cwd"] = "/tmp"
    assert probe(b)["cwd"] == "/tmp"


def test_env_is_exactly_the_configured_one(runtime, bundle, probe):
    b = bundle.make("b")
    env = ["PATH=/bin", "IT_SPACE=hello world", "IT_EMPTY=", "IT_EQ=a=b"]
    b.config["process"]["env"] = env
    got = probe(b)["env"]
    assert [e for e in got if e in env] == env
    # nothing of the caller's environment leaks in; runc adds HOME when it is not set
    # (from /etc/passwd), which is the only extra allowed
    extra = [e for e in got if e not in env]
    assert all(e.startswith("HOME=") for e in extra), extra


def test_home_taken_from_passwd_when_missing(runtime, bundle, probe):
    # runc behaviour the pyrunc CLI follows: HOME from the container's /etc/passwd
    b = bundle.make("b")
    b.config["process"]["env"] = ["PATH=/bin"]
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    assert "HOME=/home/user" in probe(b)["env"]


def test_only_stdio_fds_reach_the_container_with_run(runtime, bundle, probe):
    # an extra fd open in the caller (inherited by the runtime) must not reach the container
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        b = bundle.make("b").probe_args()
        cid = itlib.new_id()
        proc = runtime.run(b, cid, pass_fds=(w,))
    finally:
        os.close(r)
        os.close(w)
    assert proc.returncode == 0, proc.stderr
    assert sorted(itlib.parse_report(proc.stdout)["fds"]) == ["0", "1", "2"]


def test_only_stdio_fds_reach_the_container_with_create(runtime, bundle):
    b = bundle.make("b").probe_args()
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0  # stdout: a file in the workdir
    assert runtime.start(cid).returncode == 0
    runtime.wait_status(cid, "stopped")
    report = itlib.parse_report(runtime.output(cid))
    assert sorted(report["fds"]) == ["0", "1", "2"]
    assert report["fds"]["1"] == runtime.out_path(cid, "stdout")


def test_exit_status_of_run(runtime, bundle):
    b = bundle.make("b", "exit=7")
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 7
    b.probe_args("exit=0")
    assert runtime.run(b, itlib.new_id()).returncode == 0


def test_run_killed_by_signal_exits_128_plus_n(runtime, bundle):
    # pid 1 of a pid namespace ignores signals it has no handler for, except SIGKILL
    b = bundle.make("b", "sleep=30")
    cid = itlib.new_id()
    proc = runtime.popen_run(b, cid)
    try:
        runtime.wait_status(cid, "running")
        assert runtime.kill(cid, "KILL").returncode == 0
        proc.wait(timeout=itlib.TIMEOUT)
    finally:
        runtime.stop_run(proc, cid)
    assert proc.returncode == 128 + 9


def test_run_without_pid_namespace_killed_by_term_exits_143(runtime, bundle):
    # outside a new pid namespace the probe is not an init: SIGTERM's default action kills it
    b = bundle.make("b", "sleep=30")
    b.drop_namespace("pid")
    cid = itlib.new_id()
    proc = runtime.popen_run(b, cid)
    try:
        runtime.wait_status(cid, "running")
        assert runtime.kill(cid, "TERM").returncode == 0
        proc.wait(timeout=itlib.TIMEOUT)
    finally:
        runtime.stop_run(proc, cid)
    assert proc.returncode == 128 + 15


# what the oracles do with a label on this host (neither AppArmor nor SELinux): they try to
# apply it and fail (runc passes mountLabel as context= to its mounts), except crun, which
# mounts without mountLabel
LABEL_REFUSED = {"runc": {"process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel"},
                 "crun": {"process.apparmorProfile", "process.selinuxLabel"},
                 "pyrunc": set()}


@pytest.mark.crun_oracle
@pytest.mark.parametrize("path, value", [
    ("process.apparmorProfile", "unconfined-conform"),
    ("process.selinuxLabel", "system_u:system_r:container_t:s0"),
    ("linux.mountLabel", "system_u:object_r:container_file_t:s0")])
def test_a_label_without_its_lsm_is_a_warning(runtime, bundle, path, value):
    # pyrunc treats a label no one can apply on this host as any setting it cannot apply:
    # a warning naming it, and --strict refuses (runc and crun: see LABEL_REFUSED)
    if os.path.isdir("/sys/kernel/security/apparmor") or os.path.isdir("/sys/fs/selinux"):
        pytest.fail("the test expects a host without AppArmor and SELinux (this VM)")
    b = bundle.make("b")
    section, key = path.split(".")
    b.config[section][key] = value
    proc = runtime.run(b, itlib.new_id())
    if path in LABEL_REFUSED[runtime.name]:
        assert proc.returncode != 0
        return
    assert proc.returncode == 0, proc.stderr
    assert itlib.parse_report(proc.stdout)["uid"] == 0
    if runtime.name == "pyrunc":
        with open(runtime.log) as f:
            assert f"{path}: {'AppArmor' if 'apparmor' in path else 'SELinux'} is not " \
                   "enabled on this host" in f.read()
        b.save()
        cid = itlib.new_id()
        strict = subprocess.run([*runtime.argv, "--root", runtime.root, "--strict", "run",
                                 "--bundle", b.path, cid], capture_output=True,
                                text=True, timeout=itlib.TIMEOUT)
        assert strict.returncode == 1 and path in strict.stderr, strict.stderr
        assert runtime.state_cp(cid).returncode != 0


@pytest.mark.crun_oracle
def test_a_missing_cwd_is_created(runtime, bundle, probe):
    # runc and crun make a cwd the rootfs lacks (0755, owned by the container's root)
    b = bundle.make("b")
    b.config["process"]["cwd"] = "/made/for/cwd"
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    report = probe(b, "stat=/made/for/cwd", "stat=/made")
    assert report["cwd"] == "/made/for/cwd"
    for path in ("/made/for/cwd", "/made"):
        st = report.result(f"stat={path}")
        assert stat.S_ISDIR(st["mode"]) and stat.S_IMODE(st["mode"]) == 0o755, path
        assert (st["uid"], st["gid"]) == (0, 0), path


@pytest.mark.crun_oracle
@pytest.mark.parametrize("denied", ["getcwd", "chdir"])
def test_cwd_under_a_filter_loaded_without_no_new_privileges(runtime, bundle, request,
                                                             denied):
    # without no_new_privs the filter is loaded while the init still has CAP_SYS_ADMIN,
    # before the user switch; pyrunc changes to process.cwd (and checks it with getcwd,
    # CVE-2024-21626) before that, so a profile that denies either call for the container
    # does not stop the container from starting in its cwd
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"runc 1.1.5 calls {denied} after loading such a filter"))
    b = bundle.make("b", "hold=30")
    b.config["process"]["noNewPrivileges"] = False
    b.config["process"]["cwd"] = "/tmp"
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": [denied], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    runtime.wait_output(cid, lambda t: "\n" in t)
    pid = runtime.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/cwd") == "/tmp"  # as the process sees its root


@pytest.mark.pyrunc_only("the wording of pyrunc's error")
def test_a_call_the_early_filter_denies_is_named_with_the_filter(runtime, bundle):
    # without no_new_privs the user switch and capset come after the filter (as in runc):
    # a profile denying capset stops the container, and the error names the call and says
    # the filter is loaded already
    b = bundle.make("b", "sleep=0")
    b.config["process"]["noNewPrivileges"] = False
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    before = itlib.pids()
    cid = itlib.new_id()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "capset: Operation not permitted (the seccomp filter is loaded already, at step " \
           "seccomp_early since noNewPrivileges is false" in proc.stderr
    assert proc.stderr.rstrip().endswith("[step: capabilities]")


@pytest.mark.crun_oracle
def test_a_non_root_process_can_reopen_its_stdio(runtime, bundle, workdir):
    # stdio that is a pipe (run) or a file (create) belongs to the caller (root, 0600 for
    # a pipe); runc and crun fchown it to process.user so that /dev/stdout can be reopened
    b = bundle.make("b", "openw=/dev/stdout", "openw=/proc/self/fd/2")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert report.errno("openw=/dev/stdout") == 0
    assert report.errno("openw=/proc/self/fd/2") == 0
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    report = itlib.parse_report(runtime.wait_output(cid, lambda t: "\n" in t))
    assert report.errno("openw=/dev/stdout") == 0
    st = os.stat(runtime.out_path(cid, "stdout"))
    # crun gives the group too (crun's test uid_gid/regular-files-chowned); runc 1.1 keeps it
    assert (st.st_uid, st.st_gid) == (1000, 0 if runtime.name == "runc" else 1000)
