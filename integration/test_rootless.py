"""Rootless mode (issue 12.4; 11.7): an ordinary user runs containers, with runc's rootless
mode as the oracle.

The test makes its own user (`pyrunc-rl-XXXXXX`, no home), gives it subordinate id ranges
of its own in /etc/subuid and /etc/subgid (a range no other entry overlaps), and an
XDG_RUNTIME_DIR; the user, its ranges and its directories are removed afterwards. Every
runtime command runs as that user. pyrunc must be runnable by it: bin/pyrunc in the
repository when the user can read it, else a copy of the package (and the venv's cffi)
under the test's directory.
"""
import errno
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from integration import itlib

SUBIDS = 65536


def _subid_ends(path):
    ends = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                ends.append(int(parts[1]) + int(parts[2]))
    return ends


class User:
    """The test's unprivileged user; run() runs a command as it."""

    def __init__(self, name, base):
        self.name = name
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.base = base
        self.xdg = os.path.join(base, "run")
        self.sub = None
        self.pyrunc = None

    def env(self, **extra):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.base,
               "USER": self.name, "LOGNAME": self.name, "XDG_RUNTIME_DIR": self.xdg,
               "LANG": "C.UTF-8"}
        env.update(extra)
        return env

    def run(self, argv, env=None, cwd=None, timeout=itlib.TIMEOUT, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("capture_output", True)
        return subprocess.run(argv, user=self.uid, group=self.gid, extra_groups=[],
                              env=env or self.env(), cwd=cwd or self.base, text=True,
                              timeout=timeout, **kw)

    def chown_tree(self, path):
        for d, dirs, files in os.walk(path):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, self.uid, self.gid)


def _pyrunc_for(user):
    """argv of a pyrunc the user can run: the repository's, or a private copy."""
    argv = itlib.runtime_command("pyrunc")
    try:
        if user.run([*argv, "--version"]).returncode == 0:
            return argv
    except OSError:
        pass  # not even executable by the user (a 0700 parent)
    # the repository is under a directory the user cannot read (/root): copy what
    # bin/pyrunc puts on sys.path (the package, and the venv's site-packages for cffi)
    copy = os.path.join(user.base, "pyrunc-copy")
    site = next(p for p in __import__("sys").path
                if p.startswith(os.path.join(itlib.REPO, ".venv")) and
                p.endswith("site-packages"))
    shutil.copytree(os.path.join(itlib.REPO, "pyrunc"), os.path.join(copy, "pyrunc"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(site, os.path.join(copy, "site"), symlinks=True)
    # what `pyrunc demo` reads beside the package
    shutil.copytree(os.path.join(itlib.REPO, "examples"), os.path.join(copy, "examples"))
    with open(os.path.join(itlib.REPO, "bin", "pyrunc")) as f:
        text = f.read()
    lines = [f'sys.path[:0] = ["{copy}", "{copy}/site"]' if line.startswith("sys.path[:0]")
             else line for line in text.splitlines()]
    os.mkdir(os.path.join(copy, "bin"))
    launcher = os.path.join(copy, "bin", "pyrunc")
    with open(launcher, "w") as f:
        f.write("\n".join(lines) + "\n")
    for d, dirs, files in os.walk(copy):
        os.chmod(d, 0o755)
        for n in files:
            os.chmod(os.path.join(d, n), 0o755 if d.endswith("/bin") else 0o644)
    assert user.run([launcher, "--version"]).returncode == 0
    return [launcher]


@pytest.fixture(scope="module")
def rl_user():
    name = f"pyrunc-rl-{uuid.uuid4().hex[:6]}"
    base = tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp")
    os.chmod(base, 0o755)
    # no automatic subordinate ids: the test gives its own, above every existing range
    made = subprocess.run(["useradd", "-M", "-d", base, "-s", "/usr/sbin/nologin", "-K",
                           "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name],
                          capture_output=True, text=True)
    if made.returncode != 0:
        os.rmdir(base)
        pytest.fail(f"useradd {name}: {made.stderr.strip()}", pytrace=False)
    try:
        user = User(name, base)
        first = max(_subid_ends("/etc/subuid") + _subid_ends("/etc/subgid") + [1 << 30])
        first = (first + SUBIDS) // SUBIDS * SUBIDS
        user.sub = first
        span = f"{first}-{first + SUBIDS - 1}"
        subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name],
                       check=True, capture_output=True)
        os.mkdir(user.xdg, 0o700)
        os.chown(base, user.uid, user.gid)
        os.chown(user.xdg, user.uid, user.gid)
        user.pyrunc = _pyrunc_for(user)
        yield user
    finally:
        # its processes (podman's pause process, a conmon) first: userdel refuses a user
        # still running anything
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        uid = pwd.getpwnam(name).pw_uid
        deadline = time.monotonic() + 10
        while _processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = subprocess.run(["userdel", name], capture_output=True, text=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            with open(path) as f:
                left = [line for line in f if line.startswith(f"{name}:")]
            if left:  # userdel keeps them on some versions: leave the files as found
                subprocess.run(["sed", "-i", f"/^{name}:/d", path], check=True)
        shutil.rmtree(base, ignore_errors=True)
        if gone.returncode != 0:
            pytest.fail(f"userdel {name}: {gone.stderr.strip()}", pytrace=False)


def _processes_of(uid):
    found = []
    for p in itlib.pids():
        try:
            if os.stat(f"/proc/{p}").st_uid == uid and itlib.alive(p):
                found.append(p)
        except FileNotFoundError:
            pass
    return found


class RootlessRuntime:
    """A runtime run by the test's user, with its state under the user's XDG dir."""

    def __init__(self, name, user, workdir):
        self.name, self.user, self.workdir = name, user, workdir
        self.argv = user.pyrunc if name == "pyrunc" else [shutil.which("runc")]
        self.root = os.path.join(user.xdg, f"{name}-{os.path.basename(workdir)}")
        self.ids = []

    def cmd(self, *args, root=True, **kw):
        pre = ["--root", self.root] if root else []
        return self.user.run([*self.argv, *pre, *args], **kw)

    def run(self, bundle, cid=None, *extra, **kw):
        bundle.save()
        self.user.chown_tree(bundle.path)
        cid = cid or itlib.new_id()
        self.ids.append(cid)
        return self.cmd("run", "--bundle", bundle.path, *extra, cid, **kw)

    def cleanup(self):
        problems = []
        for cid in self.ids:
            proc = self.cmd("delete", "--force", cid)
            if proc.returncode != 0 and "not exist" not in proc.stderr \
                    and "does not exist" not in proc.stderr:
                problems.append(f"delete --force {cid}: {proc.stderr.strip()}")
        return problems


@pytest.fixture(params=["pyrunc", "runc"])
def rl(request, rl_user, workdir):
    names = os.environ.get("PYRUNC_IT_RUNTIMES", "pyrunc").split(",")
    if request.param not in names:
        pytest.skip(f"{request.param} is not in PYRUNC_IT_RUNTIMES")
    rt = RootlessRuntime(request.param, rl_user, workdir)
    yield rt
    problems = rt.cleanup()
    assert not problems, problems


def _rootless_bundle(rl, workdir, probe_binary, *words):
    """A busybox bundle with the probe, its config from `RUNTIME spec --rootless` (the
    runtime's own, made by the user)."""
    b = itlib.new_bundle(os.path.join(workdir, f"bundle-{rl.name}"), probe_binary, *words)
    os.unlink(os.path.join(b.path, "config.json"))
    rl.user.chown_tree(b.path)
    proc = rl.cmd("spec", "--rootless", "--bundle", b.path, root=False)
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(b.path, "config.json")) as f:
        b.config = json.load(f)
    b.config["process"]["terminal"] = False
    b.config["process"]["capabilities"].pop("ambient", None)  # runc's: warned about by both
    b.config["root"]["readonly"] = False
    b.probe_args(*words)
    return b


def _report(proc, rl):
    assert proc.returncode == 0, f"{rl.name}: exit {proc.returncode}: {proc.stderr}"
    return itlib.parse_report(proc.stdout)


def _maps(text):
    return [line.split() for line in text.strip().splitlines()]


def _host_maps(rl, b):
    """(uid_map, gid_map) of the container's init, read from the host: create, read
    /proc/PID/*_map, delete."""
    b.save()
    rl.user.chown_tree(b.path)
    cid = itlib.new_id()
    rl.ids.append(cid)
    out = os.path.join(rl.workdir, f"{cid}.out")
    with open(out, "w") as f:
        os.chown(out, rl.user.uid, rl.user.gid)
        proc = rl.cmd("create", "--bundle", b.path, cid, stdout=f, stderr=subprocess.STDOUT,
                      capture_output=False)
    with open(out) as f:
        assert proc.returncode == 0, f"{rl.name}: {f.read()}"
    pid = json.loads(rl.cmd("state", cid).stdout)["pid"]
    maps = []
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}") as f:
            maps.append(_maps(f.read()))
    assert rl.cmd("delete", "--force", cid).returncode == 0
    return maps


def test_spec_rootless_is_runcs(rl_user, workdir):
    specs = {}
    for name in ("pyrunc", "runc"):
        d = os.path.join(workdir, f"spec-{name}")
        os.mkdir(d)
        os.chown(d, rl_user.uid, rl_user.gid)
        argv = rl_user.pyrunc if name == "pyrunc" else ["runc"]
        proc = rl_user.run([*argv, "spec", "--rootless"], cwd=d)
        assert proc.returncode == 0, proc.stderr
        with open(os.path.join(d, "config.json")) as f:
            specs[name] = json.load(f)
    mine, runcs = specs["pyrunc"], specs["runc"]
    for key in ("namespaces", "uidMappings", "gidMappings", "maskedPaths", "readonlyPaths"):
        assert mine["linux"].get(key) == runcs["linux"].get(key), key
    assert "resources" not in mine["linux"] and "resources" not in runcs["linux"]
    assert mine["mounts"] == runcs["mounts"]
    assert mine["linux"]["uidMappings"] == [{"containerID": 0, "hostID": rl_user.uid,
                                             "size": 1}]


def test_own_ids_state_under_xdg_and_sys_bound(rl, workdir, probe_binary):
    """runc spec --rootless's bundle, no --root: the state goes to $XDG_RUNTIME_DIR/NAME."""
    b = _rootless_bundle(rl, workdir, probe_binary, "read=/proc/self/uid_map",
                         "read=/proc/self/gid_map", "read=/proc/self/setgroups",
                         "chmod=/sys/kernel", "hold=10")
    b.save()
    rl.user.chown_tree(b.path)
    cid = itlib.new_id()
    rl.ids.append(cid)
    default_root = os.path.join(rl.user.xdg, rl.name)
    out = os.path.join(workdir, f"{rl.name}.out")
    with open(out, "w") as f:
        os.chown(out, rl.user.uid, rl.user.gid)
        proc = subprocess.Popen([*rl.argv, "run", "--bundle", b.path, cid], stdout=f,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                user=rl.user.uid, group=rl.user.gid, extra_groups=[],
                                env=rl.user.env(), text=True)
    try:
        state = None
        for _ in range(200):
            st = rl.user.run([*rl.argv, "state", cid])
            if st.returncode == 0 and json.loads(st.stdout)["status"] == "running":
                state = json.loads(st.stdout)
                break
            time.sleep(0.05)
        assert state is not None, proc.stderr
        sdir = os.path.join(default_root, cid)
        assert os.path.isfile(os.path.join(sdir, "state.json"))
        st = os.stat(default_root)
        assert (st.st_uid, st.st_mode & 0o077) == (rl.user.uid, 0)
        status = itlib.proc_status(state["pid"])
        # the container's root is the user, seen from the host
        assert status["Uid"].split()[0] == str(rl.user.uid)
    finally:
        rl.user.run([*rl.argv, "kill", cid, "KILL"])
        proc.wait(timeout=10)
        rl.user.run([*rl.argv, "delete", "--force", cid])
    with open(out) as f:
        report = itlib.parse_report(f.read())
    assert not os.path.exists(os.path.join(default_root, cid))
    assert report["uid"] == 0 and report["gid"] == 0
    assert _maps(report.result("read=/proc/self/uid_map")["head"]) == \
        [["0", str(rl.user.uid), "1"]]
    assert _maps(report.result("read=/proc/self/gid_map")["head"]) == \
        [["0", str(rl.user.gid), "1"]]
    # the kernel's price for mapping one's own gid: setgroups denied
    assert report.result("read=/proc/self/setgroups")["head"].strip() == "deny"
    sys_mount = report.mount("/sys")
    assert sys_mount["fstype"] == "sysfs" and "ro" in sys_mount["options"].split(",")
    assert report.errno("chmod=/sys/kernel") == errno.EROFS


def test_subordinate_ids_through_newuidmap(rl, workdir, probe_binary):
    """Root is the user, 1..65536 its subordinate range; the process runs as 1000, whose
    file the host sees owned by the range's id 999."""
    b = _rootless_bundle(rl, workdir, probe_binary, "write=/tmp/owned")
    u = rl.user
    for key, own in (("uidMappings", u.uid), ("gidMappings", u.gid)):
        b.config["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                                  {"containerID": 1, "hostID": u.sub, "size": SUBIDS}]
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    want = [["0", str(u.uid), "1"], ["1", str(u.sub), str(SUBIDS)]]
    assert _host_maps(rl, b) == [want, [["0", str(u.gid), "1"], want[1]]]
    report = _report(rl.run(b), rl)
    assert (report["uid"], report["gid"]) == (1000, 1000)
    assert report.errno("write=/tmp/owned") == 0
    st = os.stat(os.path.join(b.rootfs, "tmp", "owned"))
    assert (st.st_uid, st.st_gid) == (u.sub + 999, u.sub + 999)


def test_ids_that_are_not_the_users_are_refused(rl, workdir, probe_binary):
    b = _rootless_bundle(rl, workdir, probe_binary)
    b.config["linux"]["uidMappings"].append({"containerID": 1, "hostID": 0, "size": 1})
    before = itlib.pids()
    proc = rl.run(b)
    assert proc.returncode != 0
    if rl.name == "pyrunc":
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "linux.uidMappings[1]" in lines[0] and "not yours" in lines[0]
    assert not os.listdir(rl.root) if os.path.isdir(rl.root) else True
    assert not itlib.leftover_processes(before, [rl.ids[-1]])


@pytest.mark.parametrize("runtime_name", ["pyrunc"])
def test_no_mappings_maps_the_callers_ids(rl_user, workdir, probe_binary, runtime_name):
    """Issue 11.7: a new user namespace without maps gets crun's (runc 1.1 refuses it): the
    caller as process.user, the rest from its subordinate range."""
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary)
        del b.config["linux"]["uidMappings"], b.config["linux"]["gidMappings"]
        u = rl_user
        assert _host_maps(rl, b) == [[["0", str(u.uid), "1"], ["1", str(u.sub), str(SUBIDS)]],
                                     [["0", str(u.gid), "1"], ["1", str(u.sub), str(SUBIDS)]]]
        # process.user 1000: the caller is 1000, 0-999 and 1001- come from the range
        b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
        assert _host_maps(rl, b)[0] == [["0", str(u.sub), "1000"], ["1000", str(u.uid), "1"],
                                        ["1001", str(u.sub + 1000), str(SUBIDS - 1000)]]
        assert _report(rl.run(b), rl)["uid"] == 1000
    finally:
        assert not rl.cleanup()


def test_sysfs_in_a_user_namespace_without_network_is_bound(rl_user, workdir, probe_binary):
    """Issue 11.8: sysfs is refused (EPERM) without a network namespace of the user's own:
    /sys is bound from the host, read-only throughout. runc 1.1.5 fails here (newer runc
    binds, as pyrunc)."""
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary, "chmod=/sys/kernel")
        for m in b.config["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev"])
        report = _report(rl.run(b), rl)
        for m in report["mounts"]:
            if m["mount_point"] == "/sys" or m["mount_point"].startswith("/sys/"):
                if m["mount_point"].startswith("/sys/fs/cgroup") or \
                        m["mount_point"] in b.config["linux"]["maskedPaths"]:
                    continue  # the config's own cgroup mount and masks, on top
                assert "ro" in m["options"].split(","), m
                assert "nosuid" in m["options"].split(","), m
        assert report.mount("/sys")["fstype"] == "sysfs"
        assert report.errno("chmod=/sys/kernel") == errno.EROFS
    finally:
        assert not rl.cleanup()


def test_resources_without_root_one_warning(rl_user, workdir, probe_binary):
    """No cgroup is delegated to the user: the container runs in the user's own cgroup,
    with one warning (--strict refuses)."""
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary, "read=/proc/self/cgroup")
        b.config["linux"]["resources"] = {"pids": {"limit": 50},
                                          "memory": {"limit": 64 << 20}}
        proc = rl.run(b)
        report = _report(proc, rl)
        warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "linux.resources" in warnings[0], proc.stderr
        # no cgroup of its own: it is where the user's process was (this test's cgroup)
        with open("/proc/self/cgroup") as f:
            mine = f.read()
        seen = report.result("read=/proc/self/cgroup")["head"]
        assert seen and mine.startswith(seen)
        assert not itlib.cgroups_named(rl.ids)
        strict = rl.cmd("--strict", "run", "--bundle", b.path, itlib.new_id())
        assert strict.returncode == 1 and "linux.resources" in strict.stderr
    finally:
        assert not rl.cleanup()


def test_lifecycle_create_exec_kill_delete(rl, workdir, probe_binary):
    b = _rootless_bundle(rl, workdir, probe_binary, "hold=20")
    b.save()
    rl.user.chown_tree(b.path)
    cid = itlib.new_id()
    rl.ids.append(cid)
    out = os.path.join(workdir, f"{rl.name}-create.out")
    with open(out, "w") as f:
        os.chown(out, rl.user.uid, rl.user.gid)
        proc = rl.cmd("create", "--bundle", b.path, cid, stdout=f, stderr=subprocess.STDOUT,
                      capture_output=False)
    assert proc.returncode == 0, open(out).read()
    assert json.loads(rl.cmd("state", cid).stdout)["status"] == "created"
    assert rl.cmd("start", cid).returncode == 0
    ex = rl.cmd("exec", cid, "/bin/busybox", "cat", "/proc/self/uid_map")
    assert ex.returncode == 0, ex.stderr
    assert _maps(ex.stdout) == [["0", str(rl.user.uid), "1"]]
    assert rl.cmd("kill", cid, "KILL").returncode == 0
    for _ in range(100):
        if json.loads(rl.cmd("state", cid).stdout)["status"] == "stopped":
            break
        time.sleep(0.05)
    assert rl.cmd("delete", cid).returncode == 0
    assert rl.cmd("state", cid).returncode != 0


def _no_user_namespace(c):
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
    del c["linux"]["uidMappings"], c["linux"]["gidMappings"]


def _net_device(c):
    c["linux"]["namespaces"].append({"type": "network"})
    c["linux"]["netDevices"] = {"lo": {}}


def _idmapped_mount(c):
    c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                        "options": ["rbind", "idmap"],
                        "uidMappings": [{"containerID": 0, "hostID": 0, "size": 1}],
                        "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]})


def _refused(rl, b, path, words):
    before = itlib.pids()
    proc = rl.run(b)
    assert proc.returncode == 1, proc.stderr
    if rl.name == "pyrunc":
        lines = [line for line in proc.stderr.splitlines() if "warning" not in line]
        assert len(lines) == 1 and path in lines[0] and words in lines[0], proc.stderr
    assert not (os.path.isdir(rl.root) and os.listdir(rl.root))
    assert not itlib.leftover_processes(before, [rl.ids[-1]])


def test_without_a_user_namespace_is_refused(rl, workdir, probe_binary):
    b = _rootless_bundle(rl, workdir, probe_binary)
    _no_user_namespace(b.config)
    _refused(rl, b, "linux.namespaces", "needs a user namespace")


def test_additional_gids_with_only_ones_own_gid_is_refused(rl, workdir, probe_binary):
    """Mapping only one's own gid makes the kernel deny setgroups: runc fails too. With a
    subordinate range pyrunc sets them, as the spec asks (runc 1.1.5 still refuses)."""
    b = _rootless_bundle(rl, workdir, probe_binary)
    b.config["process"]["user"]["additionalGids"] = [0]
    if rl.name == "pyrunc":
        _refused(rl, b, "process.user.additionalGids", "denies setgroups")
    else:
        assert rl.run(b).returncode != 0
    # with a subordinate range (newgidmap), setgroups is allowed: the groups are set
    u = rl.user
    for key, own in (("uidMappings", u.uid), ("gidMappings", u.gid)):
        b.config["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                                  {"containerID": 1, "hostID": u.sub, "size": SUBIDS}]
    b.config["process"]["user"]["additionalGids"] = [5, 7]
    proc = rl.run(b)
    if rl.name == "runc":
        # runc 1.1.5 refuses any additional group without root (SPEC-NOTES)
        assert proc.returncode == 1 and "additional groups" in proc.stderr
        return
    assert sorted(_report(proc, rl)["groups"]) == [5, 7]


@pytest.mark.parametrize("change, path", [(_net_device, "linux.netDevices"),
                                          (_idmapped_mount, "mounts[7] (/mnt)")])
def test_what_needs_root_is_one_clear_line(rl_user, workdir, probe_binary, change, path):
    """Spec 1.2 settings (runc 1.1 has neither)."""
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary)
        change(b.config)
        _refused(rl, b, path, "needs root")
    finally:
        assert not rl.cleanup()


def _podman(user, runtime_argv):
    """podman as the user: its own storage (vfs) and config under the user's directory,
    cgroupfs, file events; `--runtime` a launcher of the runtime."""
    base = os.path.join(user.base, "podman")
    env = user.env(HOME=os.path.join(base, "home"),
                   XDG_CONFIG_HOME=os.path.join(base, "config"),
                   XDG_DATA_HOME=os.path.join(base, "data"))
    if not os.path.isdir(base):
        os.makedirs(os.path.join(base, "config", "containers"))
        for d in ("home", "data"):
            os.makedirs(os.path.join(base, d))
        conf = os.path.join(base, "config", "containers")
        with open(os.path.join(conf, "containers.conf"), "w") as f:
            f.write('[containers]\nnetns = "none"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        with open(os.path.join(conf, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "vfs"\n')
        with open(os.path.join(conf, "registries.conf"), "w") as f:
            f.write("unqualified-search-registries = []\n")
        user.chown_tree(base)
    launcher = os.path.join(base, f"runtime-{os.path.basename(runtime_argv[0])}")
    with open(launcher, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(runtime_argv) + ' "$@"\n')
    os.chmod(launcher, 0o755)
    argv = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--runtime", launcher]

    def podman(*args, timeout=60):
        return user.run([*argv, *args], env=env, timeout=timeout)
    return podman


@pytest.fixture(scope="module")
def podman_image(rl_user):
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (scripts/setup.sh installs it)", pytrace=False)
    podman = _podman(rl_user, rl_user.pyrunc)
    bundle = os.path.join(rl_user.base, "podman-bundle")
    proc = rl_user.run([*rl_user.pyrunc, "bundle", bundle])
    assert proc.returncode == 0, proc.stderr
    tar = os.path.join(rl_user.base, "rootfs.tar")
    proc = rl_user.run(["tar", "-C", os.path.join(bundle, "rootfs"), "-cf", tar, "."])
    assert proc.returncode == 0, proc.stderr
    proc = podman("import", tar, "localhost/pyrunc-rl-busybox")
    assert proc.returncode == 0, proc.stderr
    yield "localhost/pyrunc-rl-busybox"
    podman("rm", "--all", "--force", "--time", "0")
    podman("rmi", "--all", "--force")


def test_podman_as_the_user(rl, podman_image):
    """podman as an ordinary user (its own user namespace from the user's ranges, own
    storage) runs a container with the runtime: run, run -d, exec, stop, rm."""
    podman = _podman(rl.user, rl.argv)
    proc = podman("run", "--rm", "--network", "none", podman_image, "sh", "-c",
                  "id -u; cat /proc/self/uid_map")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "0"
    assert _maps("\n".join(lines[1:]))[:2] == [["0", str(rl.user.uid), "1"],
                                               ["1", str(rl.user.sub), str(SUBIDS)]]
    name = f"pyrunc-rl-{uuid.uuid4().hex[:6]}"
    proc = podman("run", "-d", "--name", name, "--network", "none", podman_image,
                  "sleep", "60")
    assert proc.returncode == 0, proc.stderr
    try:
        proc = podman("exec", name, "sh", "-c", "echo in-exec; exit 5")
        assert (proc.returncode, proc.stdout) == (5, "in-exec\n"), proc.stderr
    finally:
        assert podman("rm", "--force", "--time", "0", name).returncode == 0
    # the runtime kept its state in the user's XDG_RUNTIME_DIR (runc's rule, inside
    # podman's user namespace too), and none is left
    state = os.path.join(rl.user.xdg, rl.name)
    assert os.path.isdir(state)
    assert not [n for n in os.listdir(state) if not n.startswith(".")]


@pytest.fixture
def delegated_cgroups(rl_user):
    """v1 pids and memory cgroups delegated to the user (made by root, chowned), below
    this test's own cgroup; removed afterwards. {controller: directory}."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, key, path = line.rstrip("\n").split(":", 2)
            own[key] = path
    name = f"pyrunc-rl-deleg-{uuid.uuid4().hex[:6]}"
    made = {}
    try:
        for ctl in ("pids", "memory"):
            mount = f"/sys/fs/cgroup/{ctl}"
            if ctl not in own or not os.path.isdir(mount):
                pytest.fail(f"no v1 {ctl} hierarchy at {mount}", pytrace=False)
            d = os.path.join(mount, own[ctl].lstrip("/"), name)
            os.mkdir(d)
            made[ctl] = d
            for n in [d] + [os.path.join(d, f) for f in ("tasks", "cgroup.procs")]:
                os.chown(n, rl_user.uid, rl_user.gid)
        yield name, made
    finally:
        for d in made.values():
            for sub in sorted((os.path.join(d, x) for x in os.listdir(d)
                               if os.path.isdir(os.path.join(d, x))), reverse=True):
                os.rmdir(sub)
            os.rmdir(d)


def test_a_delegated_cgroup_is_used(rl_user, workdir, probe_binary, delegated_cgroups):
    """The hierarchies delegated to the user get the container's cgroup and its limits;
    the others (devices among them) are left alone, without a warning for what they do
    not hold. runc 1.1.5's rootless v1 manager is not compared: it ignores cgroups."""
    name, made = delegated_cgroups
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary, "hold=20")
        b.config["linux"]["cgroupsPath"] = f"{name}/ctr"
        b.config["linux"]["resources"] = {"pids": {"limit": 50},
                                          "memory": {"limit": 64 << 20}}
        b.save()
        rl.user.chown_tree(b.path)
        cid = itlib.new_id()
        rl.ids.append(cid)
        out = os.path.join(workdir, "create.out")
        with open(out, "w") as f:
            os.chown(out, rl.user.uid, rl.user.gid)
            proc = rl.cmd("create", "--bundle", b.path, cid, stdout=f,
                          stderr=subprocess.STDOUT, capture_output=False)
        text = open(out).read()
        assert proc.returncode == 0, text
        assert "warning" not in text, text
        pid = json.loads(rl.cmd("state", cid).stdout)["pid"]
        ctr = {ctl: os.path.join(d, "ctr") for ctl, d in made.items()}
        with open(os.path.join(ctr["pids"], "pids.max")) as f:
            assert f.read().strip() == "50"
        with open(os.path.join(ctr["memory"], "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 64 << 20
        for d in ctr.values():
            with open(os.path.join(d, "cgroup.procs")) as f:
                assert str(pid) in f.read().split()
        assert rl.cmd("delete", "--force", cid).returncode == 0
        assert not [d for d in ctr.values() if os.path.exists(d)]
    finally:
        assert not rl.cleanup()


def test_teaching_commands_as_the_user(rl_user, workdir, probe_binary):
    """check, seccomp show and --explain need no root; the user runs them on its bundle."""
    rl = RootlessRuntime("pyrunc", rl_user, workdir)
    try:
        b = _rootless_bundle(rl, workdir, probe_binary)
        b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        b.probe_args("call=mkdir")
        b.save()
        rl.user.chown_tree(b.path)
        check = rl.cmd("check", b.path, root=False)
        assert check.returncode in (0, 1) and "linux" in check.stdout, check.stderr
        show = rl.cmd("seccomp", "show", b.path, root=False)
        assert show.returncode == 0 and "mkdir" in show.stdout, show.stderr
        proc = rl.run(b, None, "--explain")
        report = _report(proc, rl)
        assert report.errno("call=mkdir") == errno.EPERM
        explained = [line for line in proc.stderr.splitlines() if line.startswith("[explain")]
        assert any("step uid_gid_maps" in line or "step user_namespace" in line
                   for line in explained), proc.stderr[:2000]
    finally:
        assert not rl.cleanup()


def test_verify_as_the_user(rl, workdir, probe_binary):
    """`pyrunc verify` without root (a user namespace of its own for the overlay) runs the
    user's rootless bundle with each runtime and sees what the host sees."""
    b = _rootless_bundle(rl, workdir, probe_binary)
    b.save()
    rl.user.chown_tree(b.path)
    runtime = "pyrunc" if rl.name == "pyrunc" else shutil.which("runc")
    proc = rl.user.run([*rl.user.pyrunc, "verify", b.path, "--runtime", runtime,
                        "--format", "json"], timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    claims = {c["path"]: c for c in json.loads(proc.stdout)["claims"]}
    u = rl.user
    assert claims["linux.uidMappings"]["verdict"] == "held"
    assert claims["linux.uidMappings"]["seen"].endswith(f"0 -> {u.uid} (size 1)")
    assert claims["process.user.uid"]["seen"] == f"0 inside, {u.uid} on the host"
    assert claims["linux.readonlyPaths[3] (/proc/sys)"]["verdict"] == "held"
    # nothing verify mounted reached the host
    assert not [m for m in itlib.host_mounts_under("/tmp") if "pyrunc-verify-" in m]


def test_demo_as_the_user(rl_user):
    proc = rl_user.run([*rl_user.pyrunc, "demo"], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "6 bundles in" in proc.stdout and "did not run" not in proc.stdout
    assert f"linux.uidMappings: 1000 -> {rl_user.uid} (size 1)" in proc.stdout


@pytest.mark.pyrunc_only("runc 1.1 refuses a user namespace without mappings")
def test_no_mappings_as_root_is_cruns_default(runtime, bundle, probe):
    """Issue 11.7 as root (no /etc/subuid range for root): crun's `0 0 uid+1`."""
    b = bundle.make("b")
    b.config["linux"]["namespaces"].append({"type": "user"})
    for m in b.config["mounts"]:
        if m["type"] == "devpts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    b.config["process"]["user"] = {"uid": 2, "gid": 3}
    with open("/etc/subuid") as f:
        if any(line.startswith(("root:", "0:")) for line in f):
            pytest.fail("root has a range in /etc/subuid: the test expects none",
                        pytrace=False)
    report = probe(b, "read=/proc/self/uid_map", "read=/proc/self/gid_map")
    assert _maps(report.result("read=/proc/self/uid_map")["head"]) == [["0", "0", "3"]]
    assert _maps(report.result("read=/proc/self/gid_map")["head"]) == [["0", "0", "4"]]
    assert (report["uid"], report["gid"]) == (2, 3)


def test_seccomp_learn_as_the_user(rl, workdir, probe_binary):
    """`pyrunc seccomp learn` without root: the user's rootless bundle runs under pyrunc
    (rootless) with the notifying filter; the profile it writes then holds under each
    rootless runtime, and a call the workload never made is refused."""
    b = _rootless_bundle(rl, workdir, probe_binary, "call=socket_inet", "statfs=/")
    b.save()
    rl.user.chown_tree(b.path)
    out = os.path.join(rl.user.base, f"learned-{rl.name}.json")
    proc = rl.user.run([*rl.user.pyrunc, "seccomp", "learn", b.path, "-o", out, "--args"],
                       timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert itlib.parse_report(proc.stdout).errno("call=socket_inet") == 0
    with open(out) as f:
        profile = json.load(f)
    assert {"rules": [r["args"] for r in profile["syscalls"] if r["names"] == ["socket"]]} \
        == {"rules": [[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]]}
    b.config["linux"]["seccomp"] = profile
    b.probe_args("call=socket_inet", "statfs=/", "call=socket_unix", "call=mkdir")
    report = _report(rl.run(b), rl)
    assert report.errno("call=socket_inet") == 0
    assert report.errno("call=socket_unix") == errno.EPERM    # --args: AF_INET only
    assert report.errno("call=mkdir") == errno.EPERM          # never made
