"""The article's security snippets (examples/article/*/fragment.json), checked in the kernel.

Each fragment is laid over a busybox+probe bundle with pyrunc.bundle.merge and the probe
reports what the kernel applied. Where the article's claim does not hold on this system the
test asserts what really happens; the example's README gives the evidence.
"""
import errno
import json
import os
import signal
import stat

from integration import itlib
from integration.itlib import ST_NODEV, ST_NOEXEC, ST_NOSUID, TMPFS_MAGIC
from pyrunc.bundle import merge

ARTICLE = os.path.join(itlib.REPO, "examples", "article")

CAP_NET_BIND_SERVICE = 10


def fragment(name):
    with open(os.path.join(ARTICLE, name, "fragment.json")) as f:
        return json.load(f)


def with_fragment(bundle, name, *words):
    b = bundle.make(name, *words)
    b.config = merge(b.config, fragment(name))
    return b


def mask(*caps):
    return f"{sum(1 << c for c in caps):016x}"


# ---- capabilities: only CAP_NET_BIND_SERVICE, no new privileges ----

def test_capabilities_only_net_bind_service(runtime, bundle, probe):
    b = with_fragment(bundle, "capabilities")
    report = probe(b, "call=bind80", "call=sethostname", "call=mknod", "call=chown")
    status = report["status"]
    want = mask(CAP_NET_BIND_SERVICE)  # 0x400
    assert (status["CapBnd"], status["CapEff"], status["CapPrm"]) == (want, want, want)
    assert status["CapInh"] == mask() and status["CapAmb"] == mask()
    assert status["NoNewPrivs"] == "1"
    assert report["uid"] == 0
    # what the one capability allows, and what root without the others cannot do
    assert report.errno("call=bind80") == 0
    assert report.errno("call=sethostname") == errno.EPERM   # CAP_SYS_ADMIN
    assert report.errno("call=mknod") == errno.EPERM         # CAP_MKNOD
    assert report.errno("call=chown") == errno.EPERM         # CAP_CHOWN


def test_capabilities_control_without_net_bind_service(runtime, bundle, probe):
    # the same root process without the capability is refused port 80: the check above
    # measures the capability, not an unprivileged-port sysctl
    b = with_fragment(bundle, "capabilities")
    b.config["process"]["capabilities"] = {k: [] for k in b.config["process"]["capabilities"]}
    report = probe(b, "call=bind80")
    assert report["status"]["CapEff"] == mask()
    assert report.errno("call=bind80") == errno.EACCES


def test_capabilities_for_a_non_root_user(runtime, bundle, probe):
    # execve gives a non-root user only its ambient capabilities: with the snippet as
    # published uid 1000 has none; with the capability also inheritable and ambient it works
    b = with_fragment(bundle, "capabilities")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    report = probe(b, "call=bind80")
    assert report["status"]["CapEff"] == mask() and report["status"]["CapPrm"] == mask()
    assert report.errno("call=bind80") == errno.EACCES
    caps = b.config["process"]["capabilities"]
    caps["inheritable"] = caps["ambient"] = ["CAP_NET_BIND_SERVICE"]
    report = probe(b, "call=bind80")
    want = mask(CAP_NET_BIND_SERVICE)
    assert (report["status"]["CapEff"], report["status"]["CapAmb"]) == (want, want)
    assert report["status"]["NoNewPrivs"] == "1"
    assert report.errno("call=bind80") == 0


# ---- seccomp allow-list ----

def test_seccomp_whitelist(runtime, bundle, probe):
    b = with_fragment(bundle, "seccomp-whitelist")
    report = probe(b, "call=socket_inet", "statfs=/", "kill=10", "call=close_range",
                   "call=pidfd_open", "call=statx", "i386=20", "i386=434")
    assert report["status"]["Seccomp"] == "2"
    assert int(report["status"]["Seccomp_filters"]) >= 1
    # listed calls work (and the probe, a static glibc binary, started and wrote its report)
    assert report.errno("call=socket_inet") == 0
    assert report.errno("statfs=/") == 0
    # the list also allows kill unconditionally, so the second rule (kill only with signal
    # 15) restricts nothing: signal 10 goes through
    assert report.errno("kill=10") == 0
    # the list names every x86_64 syscall up to number 328 (pwritev2, Linux 4.6): only newer
    # calls are refused. The spec's answer is defaultAction SCMP_ACT_ERRNO = EPERM; runc
    # answers ENOSYS for calls newer than the profile's newest (its -ENOSYS stub, so that
    # glibc falls back), and glibc's statx() then emulates statx with fstatat
    # SCMP_ARCH_X86 is in the filter: 32-bit calls (int $0x80) get the same rules, getpid
    # (20) allowed and pidfd_open (434) refused; an arch missing from it kills the caller,
    # and the probe could not report at all
    assert report.errno("i386=20") == 0
    if runtime.name == "runc":
        assert report.errno("call=close_range") == errno.ENOSYS
        assert report.errno("call=pidfd_open") == errno.ENOSYS
        assert report.errno("i386=434") == errno.ENOSYS
        assert report.errno("call=statx") == 0
    else:
        assert report.errno("call=close_range") == errno.EPERM
        assert report.errno("call=pidfd_open") == errno.EPERM
        assert report.errno("i386=434") == errno.EPERM
        assert report.errno("call=statx") == errno.EPERM


def test_seccomp_whitelist_control_without_x86(runtime, bundle, probe):
    # the same list without SCMP_ARCH_X86: a 32-bit call hits libseccomp's bad-arch action
    # (kill), so the architectures line of the article is what keeps such calls filtered
    b = with_fragment(bundle, "seccomp-whitelist")
    b.config["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64"]
    report = probe(b, "i386=20")
    assert report.result("i386=20").get("signal") == signal.SIGSYS


def test_seccomp_socket_filter(runtime, bundle, probe):
    b = with_fragment(bundle, "seccomp-socket-filter")
    report = probe(b, "call=socket_unix", "call=socket_inet", "call=socket_inet6")
    assert report["status"]["Seccomp"] == "2"
    # socket(domain != AF_INET) -> errno 1; AF_INET (2) itself is allowed
    assert report.errno("call=socket_unix") == errno.EPERM
    assert report.errno("call=socket_inet6") == errno.EPERM
    assert report.errno("call=socket_inet") == 0


# ---- user namespace ----

def test_userns_as_published(runtime, bundle):
    """The article's mapping alone (container 1000 -> host 100000, no container root).

    runc refuses it ("User namespaces enabled, but no user mapping found"). The spec does
    not require a root mapping, and pyrunc runs it: the init sets up with the capabilities
    the namespace's creator holds, as the mapped uid 1000 (an unmapped fsuid cannot own
    files: tmpfs refuses them with EOVERFLOW), then becomes the process's user. Only the
    default /dev/pts option gid=5, a group this namespace does not map, has to go (the
    kernel refuses the mount with EINVAL): that is the default config's, not the snippet's.
    """
    b = with_fragment(bundle, "userns", "hold=30", "stat=/etc/passwd")
    for m in b.config["mounts"]:
        if m["type"] == "devpts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    cid = itlib.new_id()
    if runtime.name == "runc":
        before = itlib.pids()
        proc = runtime.create(b, cid)
        itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid, "runc init", "/probe"])
        return
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    report = itlib.parse_report(runtime.wait_output(cid, lambda t: "\n" in t))
    pid = runtime.state(cid)["pid"]
    assert (report["uid"], report["euid"], report["gid"], report["egid"]) == (1000,) * 4
    status = itlib.proc_status(pid)
    assert status["Uid"].split() == ["100000"] * 4
    assert status["Gid"].split() == ["100000"] * 4
    with open(f"/proc/{pid}/uid_map") as f:
        assert [line.split() for line in f] == [["1000", "100000", "1"]]
    with open("/proc/sys/kernel/overflowuid") as f:
        assert report.result("stat=/etc/passwd")["uid"] == int(f.read())


def userns_fixed(bundle):
    """The article's mapping plus container root -> host 99000 (unprivileged), and devpts
    without gid=5, a group the namespace does not map (mount would fail with EINVAL)."""
    b = with_fragment(bundle, "userns", "hold=30", "stat=/etc/passwd", "write=/probe-x")
    linux = b.config["linux"]
    linux["uidMappings"].insert(0, {"containerID": 0, "hostID": 99000, "size": 1})
    linux["gidMappings"].insert(0, {"containerID": 0, "hostID": 99000, "size": 1})
    for m in b.config["mounts"]:
        if m["type"] == "devpts":
            m["options"] = [o for o in m["options"] if o != "gid=5"]
    return b


def test_userns_uid_1000_is_host_uid_100000(runtime, bundle):
    b = userns_fixed(bundle)
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    assert runtime.start(cid).returncode == 0
    report = itlib.parse_report(runtime.wait_output(cid, lambda t: "\n" in t))
    pid = runtime.state(cid)["pid"]
    # inside: uid and gid 1000, in a user namespace of its own
    assert (report["uid"], report["euid"], report["gid"], report["egid"]) == (1000,) * 4
    assert report["ns"]["user"] != itlib.host_ns_inodes()["user"]
    # outside: the same process is the host uid/gid the article maps 1000 to (100000), an
    # unprivileged user
    linux = b.config["linux"]
    host_uid = [m["hostID"] for m in linux["uidMappings"] if m["containerID"] == 1000][0]
    host_gid = [m["hostID"] for m in linux["gidMappings"] if m["containerID"] == 1000][0]
    status = itlib.proc_status(pid)
    assert status["Uid"].split() == [str(host_uid)] * 4
    assert status["Gid"].split() == [str(host_gid)] * 4
    with open(f"/proc/{pid}/uid_map") as f:
        assert [line.split() for line in f] == [
            [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
            for m in linux["uidMappings"]]
    # host root's files show as the overflow uid inside and are not writable
    with open("/proc/sys/kernel/overflowuid") as f:
        overflow = int(f.read())
    assert report.result("stat=/etc/passwd")["uid"] == overflow
    assert report.errno("write=/probe-x") == errno.EACCES  # the rootfs is writable: DAC refuses
    assert report["status"]["CapEff"] == mask()


# ---- read-only root with tmpfs for /tmp and /var/log ----

def test_readonly_root_with_tmpfs(runtime, bundle, probe):
    b = with_fragment(bundle, "readonly-root-tmpfs")
    report = probe(b, "write=/x", "write=/tmp/x", "write=/var/log/x", "statfs=/tmp",
                   "statfs=/var/log", "stat=/tmp", "stat=/var/log")
    assert report.errno("write=/x") == errno.EROFS
    assert "ro" in report.options("/")
    assert report.errno("write=/tmp/x") == 0
    assert report.errno("write=/var/log/x") == 0
    for point, size in (("/tmp", 100 << 20), ("/var/log", 50 << 20)):
        fs = report.result(f"statfs={point}")
        assert fs["type"] == TMPFS_MAGIC, point
        assert fs["bsize"] * fs["blocks"] == size, point
        assert fs["flags"] & (ST_NOSUID | ST_NODEV) == ST_NOSUID | ST_NODEV, point
        assert not fs["flags"] & ST_NOEXEC, f"{point}: the article does not ask for noexec"
        assert {"nosuid", "nodev"} <= report.options(point)
    assert stat.S_IMODE(report.result("stat=/tmp")["mode"]) == 0o1777
    # no mode given for /var/log: tmpfs's default, world-writable and sticky
    assert stat.S_IMODE(report.result("stat=/var/log")["mode"]) == 0o1777


# ---- masked and read-only paths ----

def test_masked_and_readonly_paths(runtime, bundle, probe):
    frag = fragment("masked-readonly-paths")["linux"]
    b = with_fragment(bundle, "masked-readonly-paths")
    report = probe(b, *itlib.masked_paths_words(frag["maskedPaths"]))
    itlib.assert_masked_and_readonly(report, frag["maskedPaths"], frag["readonlyPaths"])


def test_masked_and_readonly_paths_control(runtime, bundle, probe):
    # without the lists the same paths show content and /proc/sys opens for writing: the
    # test above measures the fragment, not a property of this kernel
    b = bundle.make("control")
    b.config["linux"]["maskedPaths"] = []
    b.config["linux"]["readonlyPaths"] = []
    report = probe(b, "read=/proc/timer_list", "ls=/sys/firmware",
                   "openw=/proc/sys/kernel/hostname")
    assert report.result("read=/proc/timer_list")["bytes"] > 0
    if os.listdir("/sys/firmware"):
        assert report.result("ls=/sys/firmware")["entries"] != []
    assert report.errno("openw=/proc/sys/kernel/hostname") == 0
