"""`pyrunc verify` against real runtimes: a good bundle holds, a runtime that ignores a
setting breaks exactly the claims of that setting, a bundle that does not start exits 2,
and neither leaves anything behind or touches the bundle on disk."""
import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from integration import itlib
from pyrunc.bundle import make_bundle
from pyrunc.linux import seccomp
from pyrunc.spec.defaults import default_spec

PYRUNC = os.path.join(itlib.REPO, "bin", "pyrunc")
CAPS = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]


def good_config():
    """The default config, hardened a little, with something for every kind of claim."""
    config = default_spec()
    config["ociVersion"] = "1.0.2"      # crun 1.8 refuses 1.2 and later
    # runc 1.1.5 leaves the cgroup v1 tmpfs at /sys/fs/cgroup writable although the mount
    # says ro (verify reports it; see docs/TEACHING.md): not part of a bundle that holds
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    # mode 1777 like the rootfs's /tmp: runc 1.1.5 gives a tmpfs the mode of the directory
    # it covers, whatever mode= says (verify reports that too)
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "noexec", "size=10m",
                                         "mode=1777"]})
    process = config["process"]
    process["capabilities"] = {"bounding": CAPS, "effective": CAPS, "permitted": CAPS,
                               "inheritable": [], "ambient": []}
    process["user"]["additionalGids"] = [10, 20]
    process["rlimits"].append({"type": "RLIMIT_CORE", "hard": 0, "soft": 0})
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_NE"}]},
            {"names": ["ptrace", "keyctl"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
        ]}
    return config


def verify(bundle, runtime, *extra):
    """(exit status, parsed JSON report or None, stderr) of `pyrunc verify`."""
    proc = subprocess.run([PYRUNC, "verify", bundle, "--runtime", runtime, "--format", "json",
                           *extra], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, report, proc.stderr


def claims(report, verdict=None):
    return {(c["path"], c["claim"]) for c in report["claims"]
            if verdict is None or c["verdict"] == verdict}


def fingerprint(bundle):
    """config.json's bytes and every rootfs entry (path, mode, owner, size, mtime)."""
    with open(os.path.join(bundle, "config.json"), "rb") as f:
        entries = [hashlib.sha256(f.read()).hexdigest()]
    for top, dirs, files in os.walk(os.path.join(bundle, "rootfs")):
        for name in sorted(dirs + files):
            st = os.lstat(os.path.join(top, name))
            entries.append((os.path.join(top, name), st.st_mode, st.st_uid, st.st_size,
                            st.st_mtime_ns))
        entries.append(("dir", top, os.lstat(top).st_mtime_ns))
    return entries


def leftovers(state):
    """What a finished verify must not leave: state under --root, scratch directories,
    probe processes, mounts of its own in the host's table."""
    # (pyrunc keeps a compiled-filter cache there too: only containers count)
    found = [f"state: {n}" for n in (os.listdir(state) if os.path.isdir(state) else ())
             if n.startswith("pyrunc-verify-")]
    found += [f"scratch: {n}" for n in os.listdir("/tmp") if n.startswith("pyrunc-verify-")]
    found += [f"process {p}: {c}" for p, c in ((p, itlib.cmdline(p)) for p in itlib.pids())
              if "pyrunc-probe" in c]
    found += [f"mount: {m}" for m in itlib.host_mounts_under("/tmp")
              if "pyrunc-verify-" in m]
    return found


@pytest.fixture
def good(workdir):
    return make_bundle(os.path.join(workdir, "good"), config=good_config())


@pytest.mark.parametrize("name", ["pyrunc", "runc", "crun"])
def test_a_good_bundle_holds(name, good, workdir):
    # crun on this hybrid-cgroup host runs only with cgroup2 hidden: verify does that
    state = os.path.join(workdir, "state")
    status, report, stderr = verify(good, name, "--root", state)
    assert status == 0, (stderr, claims(report, "broken") if report else None)
    verdicts = {c["verdict"] for c in report["claims"]}
    assert verdicts == {"held"}, claims(report, "not checked")
    seen = claims(report)
    # one of each kind of evidence: ids inside and out, the sets, the filter's answers
    assert ("process.user.additionalGids", "[10, 20]") in seen
    assert ("process.capabilities.effective", "CAP_KILL, CAP_NET_BIND_SERVICE") in seen
    assert ("linux.seccomp.syscalls[0]", "socket(arg0=3) gets errno 1") in seen
    assert ("linux.seccomp.syscalls[0]", "socket(arg0=2) gets allow") in seen
    assert ("linux.seccomp.syscalls[2]", "reboot() gets kill the process") in seen
    assert ("linux.sysctl[net.ipv4.ip_forward]", "1") in seen
    assert ("root.readonly", "true") in seen
    assert not leftovers(state)


WRAPPER = """\
#!{python}
# a runtime that ignores a setting: it edits the bundle's config.json, then runs runc
import json, os, sys
args = sys.argv[1:]
if "create" in args:
    path = os.path.join(args[args.index("--bundle") + 1], "config.json")
    with open(path) as f:
        config = json.load(f)
    {edit}
    with open(path, "w") as f:
        json.dump(config, f)
os.execvp("runc", ["runc", *args])
"""


def wrapper(workdir, edit):
    path = os.path.join(workdir, "careless-runc")
    with open(path, "w") as f:
        f.write(WRAPPER.format(python=sys.executable, edit=edit))
    os.chmod(path, 0o755)
    return path


def test_a_runtime_that_drops_seccomp_breaks_exactly_the_seccomp_claims(good, workdir):
    status, honest, _ = verify(good, "runc")
    assert status == 0
    careless = wrapper(workdir, 'del config["linux"]["seccomp"]')
    status, report, stderr = verify(good, careless, "--root", os.path.join(workdir, "st"))
    assert status == 1, stderr
    # without a filter every sampled call is allowed: the samples that expect anything
    # else break, and so does the filter mode; everything else still holds
    want = {("linux.seccomp", "a filter")} | {
        (path, claim) for path, claim in claims(honest)
        if path.startswith("linux.seccomp.") and not claim.endswith("gets allow")}
    assert claims(report, "broken") == want
    assert len(want) == 6     # mode, socket(3), ptrace, keyctl, reboot, 32-bit x86 killed
    assert claims(report) == claims(honest)
    assert not leftovers(os.path.join(workdir, "st"))


def test_a_runtime_that_drops_the_capability_sets_breaks_exactly_those_claims(good, workdir):
    careless = wrapper(workdir, 'del config["process"]["capabilities"]')
    status, report, stderr = verify(good, careless)
    assert status == 1, stderr
    # runc then keeps its own full sets; inheritable and ambient were empty either way
    assert claims(report, "broken") == {
        (f"process.capabilities.{key}", "CAP_KILL, CAP_NET_BIND_SERVICE")
        for key in ("bounding", "effective", "permitted")}


@pytest.mark.parametrize("name", ["pyrunc", "runc"])
def test_runc_spec_s_own_bundle_holds_but_for_what_no_runtime_can_keep(name, workdir):
    # `runc spec` asks for ambient capabilities that are not inheritable: the kernel refuses
    # to raise them under any runtime, so verify reports them apart and exits 0
    bundle = make_bundle(os.path.join(workdir, "runc-spec"), config={})
    os.unlink(os.path.join(bundle, "config.json"))
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    state = os.path.join(workdir, "state")
    status, report, stderr = verify(bundle, name, "--root", state)
    [ambient] = [c for c in report["claims"] if c["verdict"] == "unkeepable"]
    assert ambient["path"] == "process.capabilities.ambient"
    assert ambient["seen"] == "CapAmb 0000000000000000"
    assert "check: process.capabilities.ambient[0]: CAP_AUDIT_WRITE" in ambient["why"]
    if name == "runc":
        # runc 1.1.5's mountCgroupV1 mounts the tmpfs at /sys/fs/cgroup without the mount's
        # ro (the remount was removed in runc 55d5c99, v1.0.0-rc91): only the hierarchies
        # bound under it are read-only. A real broken claim, so runc's run exits 1.
        assert status == 1
        assert claims(report, "broken") == {
            ("mounts[6] (/sys/fs/cgroup)", "cgroup nosuid noexec nodev relatime ro")}
    else:
        assert status == 0, (stderr, claims(report, "broken"))
    assert not leftovers(state)


@pytest.mark.parametrize("name", ["pyrunc", "runc"])
def test_a_bundle_that_does_not_start_exits_2_and_leaves_nothing(name, workdir):
    config = good_config()
    config["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                             "options": ["size=bogus"]})
    bundle = make_bundle(os.path.join(workdir, "bad"), config=config)
    before = fingerprint(bundle)
    state = os.path.join(workdir, "state")
    status, report, stderr = verify(bundle, name, "--root", state)
    assert status == 2 and report is None
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyrunc verify: ") and "create failed" in \
        lines[0], stderr
    assert not leftovers(state)
    assert fingerprint(bundle) == before


def test_a_missing_runtime_exits_2(good, workdir):
    status, report, stderr = verify(good, os.path.join(workdir, "no-such-runtime"))
    assert (status, report) == (2, None)
    assert stderr == f"pyrunc verify: runtime {workdir}/no-such-runtime: no such executable " \
                     "file\n"


def test_the_bundle_on_disk_is_not_changed(workdir):
    # a writable root, and a mount whose destination the rootfs lacks: run directly, runc
    # creates var/log in the rootfs on disk (the control below); under verify the overlay
    # takes that and the probe's own file
    config = good_config()
    config["root"]["readonly"] = False
    config["mounts"].append({"destination": "/var/log", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "size=1m"]})
    bundle = make_bundle(os.path.join(workdir, "disk"), config=config)
    before = fingerprint(bundle)
    for name in ("pyrunc", "runc"):
        status, report, stderr = verify(bundle, name)
        assert status == 0, (stderr, claims(report, "broken") if report else None)
        assert fingerprint(bundle) == before, name
    # control: the same bundle run by runc itself changes the rootfs
    config["process"]["args"] = ["true"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    before = fingerprint(bundle)
    cid = itlib.new_id()
    proc = subprocess.run(["runc", "--root", os.path.join(workdir, "runc-state"), "run",
                           "--bundle", bundle, cid], capture_output=True, text=True,
                          timeout=itlib.TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert os.path.isdir(os.path.join(bundle, "rootfs", "var", "log"))
    assert fingerprint(bundle) != before


def test_seccomp_show(good):
    proc = subprocess.run([PYRUNC, "seccomp", "show", good], capture_output=True, text=True,
                          timeout=itlib.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    pfc, _, summary = proc.stdout.partition("# what each syscall gets")
    assert "if ($syscall == 41)" in pfc and "action ERRNO(1);" in pfc   # socket
    assert "action KILL_PROCESS;" in pfc                                # reboot
    assert textwrap.dedent("""\
        socket           errno 1 if arg0 != 2, else allow
        ptrace           errno 1
        keyctl           errno 1
        reboot           kill the process
        everything else  allow
        """) in summary


def test_the_probe_tells_the_filter_s_actions_apart(probe_binary):
    # sys= under a filter loaded in the child before execve (no container needed)
    ref = pytest.importorskip("pyseccomp")
    rules = [("getppid", ref.ERRNO(errno.EACCES)), ("geteuid", ref.ERRNO(0)),
             ("getuid", ref.KILL), ("getgid", ref.KILL_PROCESS), ("getegid", ref.TRAP),
             ("sync", ref.LOG)]

    def load_filter():
        f = ref.SyscallFilter(defaction=ref.ALLOW)
        for name, action in rules:
            f.add_rule(action, name)
        f.add_rule(ref.ERRNO(1), "socket", ref.Arg(0, ref.NE, 2))
        f.load()

    number = seccomp.syscall_resolver()
    words = {name: f"sys={number(name)}" for name, _ in rules + [("getpid", None)]}
    words.update({"socket(1)": f"sys={number('socket')},1",
                  "socket(2)": f"sys={number('socket')},2"})
    proc = subprocess.run([probe_binary, *words.values()], capture_output=True, text=True,
                          timeout=itlib.TIMEOUT, preexec_fn=load_filter)
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    got = {name: report.result(word) for name, word in words.items()}
    assert got == {
        "getppid": {"action": "errno", "errno": errno.EACCES},
        "geteuid": {"action": "errno", "errno": 0},     # ERRNO 0: returned, never ran
        "getuid": {"action": "kill", "errno": 0, "signal": 31},
        "getgid": {"action": "kill", "errno": 0, "signal": 31},
        "getegid": {"action": "trap", "errno": 0, "data": 0},
        "sync": {"action": "allow", "errno": 0},        # LOG lets it through
        "getpid": {"action": "allow", "errno": 0},
        "socket(1)": {"action": "errno", "errno": 1},
        "socket(2)": {"action": "allow", "errno": 0},
    }


def test_cgroup_limits_hold_under_runc_and_pyrunc(workdir):
    config = good_config()
    config["linux"]["resources"] = {"memory": {"limit": 64 * 2**20}, "pids": {"limit": 64}}
    bundle = make_bundle(os.path.join(workdir, "limits"), config=config)
    wanted = {("linux.resources.memory.limit", f"{64 * 2**20} bytes"),
              ("linux.resources.pids.limit", "64")}
    status, report, stderr = verify(bundle, "runc", "--root", os.path.join(workdir, "r"))
    assert status == 0, stderr
    assert wanted <= claims(report, "held")
    status, report, stderr = verify(bundle, "pyrunc", "--root", os.path.join(workdir, "p"))
    assert status == 0, stderr
    assert wanted <= claims(report, "held")
