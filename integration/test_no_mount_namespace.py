"""A config without a mount namespace: the container inherits the runtime's (runtime-spec
config-linux.md, namespaces: "If a namespace type is not specified in the namespaces array,
the container MUST inherit the runtime namespace of that type"). Its mounts then land in the
runtime's mount table: every test runs the runtime inside a private mount namespace of its
own (held by a sleep), never the host's, and reads that namespace's mountinfo."""
import os
import subprocess

import pytest

from integration import itlib


class PrivateMounts:
    """A private mount namespace (cgroup2 unmounted there, for crun) and runtime commands
    run in it with nsenter."""

    def __init__(self, runtime):
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             "umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep 600"],
            stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout.readline() == "ready\n"
        binary = runtime.argv[-1]  # crun's wrapper makes a namespace per command: not here
        self.argv = ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--", binary,
                     "--root", runtime.root, "--log", runtime.log, "--log-format", "json"]

    def cmd(self, *args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("capture_output", True)
        return subprocess.run([*self.argv, *args], text=True, timeout=itlib.TIMEOUT, **kw)

    def mounts_under(self, path):
        with open(f"/proc/{self.holder.pid}/mountinfo") as f:
            return [line.split()[4] for line in f
                    if line.split()[4] == path or line.split()[4].startswith(path + "/")]

    def close(self):
        self.holder.kill()
        self.holder.wait()
        self.holder.stdout.close()


@pytest.fixture
def private_mounts(runtime):
    ns = PrivateMounts(runtime)
    yield ns
    ns.close()


def no_mount_ns_bundle(bundle, *words):
    b = bundle.make("b", *words)
    b.drop_namespace("mount")
    return b


@pytest.mark.crun_oracle
def test_without_a_mount_namespace_the_container_runs_in_a_chroot(runtime, bundle,
                                                                   private_mounts, request):
    if runtime.name == "crun":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="crun 1.8.1 runs it, but its exec looks for the program on "
                                "the runtime's root, and delete leaves every mount"))
    b = no_mount_ns_bundle(bundle, "stat=/probe", "stat=/work", "statfs=/proc", "hold=30")
    runtime._save(b)
    cid = itlib.new_id()
    runtime._track(cid)
    # the container keeps its stdio: files, never pipes this call would wait on
    with open(runtime.out_path(cid, "stdout"), "w") as out, \
            open(runtime.out_path(cid, "stderr"), "w") as err:
        proc = private_mounts.cmd("create", "--bundle", b.path, cid, stdout=out, stderr=err,
                                  capture_output=False)
    errors = runtime.output(cid, "stderr") + (open(runtime.log).read()
                                             if os.path.exists(runtime.log) else "")
    if runtime.name == "runc":
        # runc 1.1.5 refuses: "unable to restrict sys entries without a private MNT
        # namespace" (the default config's read-only /sys paths)
        assert proc.returncode != 0 and "MNT namespace" in errors
        return
    assert proc.returncode == 0, errors
    rootfs = os.path.realpath(b.rootfs)
    # the mounts are in the runtime's (here: the private) mount table, under the rootfs
    assert f"{rootfs}/proc" in private_mounts.mounts_under(rootfs)
    assert private_mounts.cmd("start", cid).returncode == 0
    report = itlib.parse_report(runtime.wait_output(cid, lambda t: "\n" in t))
    assert report.errno("stat=/probe") == 0 and report.errno("stat=/work") != 0
    assert report.result("statfs=/proc")["type"] == 0x9FA0  # PROC_SUPER_MAGIC
    # exec lands in the same root
    proc = private_mounts.cmd("exec", cid, "/probe", "stat=/probe", "stat=/work")
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert report.errno("stat=/probe") == 0 and report.errno("stat=/work") != 0
    assert private_mounts.cmd("kill", cid, "KILL").returncode == 0
    runtime.wait_status(cid, "stopped")
    assert private_mounts.cmd("delete", cid).returncode == 0
    # delete takes them all out of the runtime's mount table
    assert private_mounts.mounts_under(rootfs) == []


@pytest.mark.pyrunc_only("the clean-up of a failed create without a mount namespace")
def test_a_failed_create_without_a_mount_namespace_leaves_no_mount(runtime, bundle,
                                                                    private_mounts, workdir):
    b = no_mount_ns_bundle(bundle)
    b.add_mount("/late", "bind", os.path.join(workdir, "no-such-source"), ["rbind"])
    b.save()
    cid = itlib.new_id()
    runtime._track(cid)
    before = itlib.pids()
    proc = private_mounts.cmd("create", "--bundle", b.path, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid, "/probe"])
    assert private_mounts.mounts_under(os.path.realpath(b.rootfs)) == []


@pytest.mark.pyrunc_only("pyrunc's own refusal")
def test_a_user_namespace_without_a_mount_namespace_is_refused(runtime, bundle):
    b = no_mount_ns_bundle(bundle)
    b.namespaces().append({"type": "user"})
    for key in ("uidMappings", "gidMappings"):
        b.config["linux"][key] = [{"containerID": 0, "hostID": 99000, "size": 65536}]
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "mount namespace" in proc.stderr


@pytest.mark.pyrunc_only("crun leaves the mounts (see above); runc refuses the config")
def test_delete_force_of_a_running_container_takes_its_mounts(runtime, bundle, private_mounts):
    b = no_mount_ns_bundle(bundle, "hold=30")
    b.save()
    cid = itlib.new_id()
    runtime._track(cid)
    with open(runtime.out_path(cid, "stdout"), "w") as out:
        proc = private_mounts.cmd("create", "--bundle", b.path, cid, stdout=out,
                                  stderr=out, capture_output=False)
    assert proc.returncode == 0, runtime.output(cid)
    rootfs = os.path.realpath(b.rootfs)
    assert private_mounts.mounts_under(rootfs)
    assert private_mounts.cmd("delete", "--force", cid).returncode == 0
    assert private_mounts.mounts_under(rootfs) == []
