"""Every init step, made to fail: one line naming it, and nothing left behind (no state
directory, no process, no mount on the host). PYRUNC_FAIL_STEP is pyrunc's own switch."""
import os
import subprocess

import pytest

from integration import itlib
from pyrunc.init import steps

# a config that turns on as many steps as a plain bundle can
WORDS = ("hold=1",)


def config_for_all_steps(b, workdir):
    hook = os.path.join(workdir, "hook.sh")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\n")
    os.chmod(hook, 0o755)
    c = b.config
    c["hooks"] = {k: [{"path": hook}] for k in ("prestart", "createRuntime", "createContainer",
                                                "poststart", "poststop")}
    # startContainer hooks run after pivot_root: their path is the container's
    c["hooks"]["startContainer"] = [{"path": "/bin/true"}]
    c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "0"}
    c["linux"]["namespaces"].append({"type": "time"})
    c["linux"]["timeOffsets"] = {"monotonic": {"secs": 1}}
    c["linux"]["devices"] = [{"path": "/dev/it-null", "type": "c", "major": 1, "minor": 3}]
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                             "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    c["linux"]["personality"] = {"domain": "LINUX"}
    c["linux"]["memoryPolicy"] = {"mode": "MPOL_DEFAULT"}
    c["process"]["oomScoreAdj"] = 0
    # a soft limit under the init's room of 64 turns on rlimit_nofile
    c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 32, "hard": 1024}]
    c["process"]["scheduler"] = {"policy": "SCHED_OTHER"}
    c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    c["root"]["readonly"] = True
    c["process"]["cwd"] = "/tmp"  # make_cwd
    c["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 200}}


# a user namespace (and a cgroup namespace in it, a bind mount whose source the runtime
# opens) and a filter loaded before capabilities drop (no_new_privs off)
SECOND_CONFIG = {"user_namespace", "mount_sources", "seccomp_early", "cwd_early"}
# need a host interface, a console socket or a seccomp agent, or run only in exec (into a
# container without a mount namespace): covered elsewhere
ELSEWHERE = {"net_devices", "terminal", "seccomp_notify", "enter_root"}


def config_for_the_second_set(b):
    c = b.config
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["namespaces"].append({"type": "cgroup"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["process"]["noNewPrivileges"] = False
    c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                             "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
    c["mounts"].append({"destination": "/home", "type": "bind", "source": "rootfs/home",
                        "options": ["rbind", "ro"]})


@pytest.mark.pyrunc_only("PYRUNC_FAIL_STEP is pyrunc's fault injection")
@pytest.mark.parametrize("step", [s for s in steps.STEP_NAMES if s not in ELSEWHERE])
def test_a_failing_step_is_named_and_leaves_nothing(runtime, bundle, workdir, step):
    b = bundle.make("b", *WORDS)
    if step in SECOND_CONFIG:
        config_for_the_second_set(b)
    else:
        config_for_all_steps(b, workdir)
    b.save()
    cid = itlib.new_id()
    runtime._track(cid)
    before = itlib.pids()
    proc = subprocess.run(runtime.command("run", "--bundle", b.path, cid), text=True,
                          capture_output=True, timeout=20,
                          env=dict(os.environ, PYRUNC_FAIL_STEP=step))
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"pyrunc: run {cid}: ") and lines[-1].endswith(
        f"[step: {step}]"), proc.stderr
    assert not os.path.exists(os.path.join(runtime.root, cid))
    assert not itlib.leftover_processes(before, [cid, "/probe"])
    assert not itlib.host_mounts_under(b.path)
