"""`pyrunc seccomp learn`: a workload's syscalls learned under pyrunc, then the profile run
under each runtime (PYRUNC_IT_RUNTIMES): what was learned works, a call never made is
refused, and --args learns the article's AF_INET-only socket rule."""
import errno
import json
import os
import subprocess

import pytest

from integration import itlib
from pyrunc.teach import learn as learn_module

PYRUNC = os.path.join(itlib.REPO, "bin", "pyrunc")
NEVER_MADE = ("mount", "ptrace", "bpf", "reboot", "unshare", "setns", "sethostname",
              "init_module", "keyctl")


def learn(bundle, *flags):
    """(exit status, profile, stdout, stderr) of `pyrunc seccomp learn`."""
    out = os.path.join(os.path.dirname(bundle.path), "profile.json")
    bundle.save()
    proc = subprocess.run([PYRUNC, "seccomp", "learn", bundle.path, "-o", out, *flags],
                          capture_output=True, text=True, timeout=120)
    profile = None
    if os.path.exists(out):
        with open(out) as f:
            profile = json.load(f)
    return proc.returncode, profile, proc.stdout, proc.stderr


def allowed(profile):
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
            for n in r["names"]}


def test_the_probe_s_known_calls_are_learned_and_nothing_else(bundle):
    b = bundle.make("probe", "call=socket_inet", "statfs=/", "read=/proc/self/status")
    status, profile, stdout, stderr = learn(b)
    assert status == 0, stderr
    report = itlib.parse_report(stdout)     # the workload's output passes through
    assert report.result("call=socket_inet")["errno"] == 0
    names = allowed(profile)
    assert {"socket", "statfs", "openat", "read", "write", "exit_group", "execve"} <= names
    assert not names & set(NEVER_MADE)
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    # the newer calls glibc falls back from get ENOSYS, as check advises
    [enosys] = [r for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ERRNO"]
    assert enosys["errnoRet"] == 38 and "clone3" in enosys["names"]
    assert "learned" in stderr and "fstatfs (for runc)" in stderr


@pytest.mark.crun_oracle
def test_a_learned_busybox_workload_runs_and_a_call_it_never_made_is_refused(
        bundle, runtime, workdir):
    b = bundle.make("busybox")
    b.config["process"]["args"] = [
        "sh", "-c", "echo learned > /tmp/f && cat /tmp/f && (nc -l -p 8080 & sleep 0.3; "
                    "kill $!) && sleep 0.1"]
    status, profile, stdout, stderr = learn(b)
    assert status == 0, stderr
    assert stdout == "learned\n"
    assert {"socket", "bind", "listen", "nanosleep", "kill"} <= allowed(profile), profile
    b.config["linux"]["seccomp"] = profile
    proc = runtime.run(b, itlib.new_id())
    assert (proc.returncode, proc.stdout) == (0, "learned\n"), proc.stderr
    # sethostname was never made: refused with the default's EPERM
    b.config["process"]["args"] = ["hostname", "other"]
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0
    assert "Operation not permitted" in proc.stderr


@pytest.mark.crun_oracle
def test_args_learns_the_socket_family(bundle, runtime):
    b = bundle.make("sock", "call=socket_inet")
    status, profile, _, stderr = learn(b, "--args")
    assert status == 0, stderr
    sockets = [r for r in profile["syscalls"] if "socket" in r["names"]]
    assert sockets == [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]
    b.config["linux"]["seccomp"] = profile
    b.probe_args("call=socket_inet", "call=socket_unix", "call=socket_inet6")
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    report = itlib.parse_report(proc.stdout)
    assert report.result("call=socket_inet")["errno"] == 0
    assert report.result("call=socket_unix")["errno"] == errno.EPERM
    assert report.result("call=socket_inet6")["errno"] == errno.EPERM


def test_a_workload_that_never_starts_is_one_line_and_leaves_nothing(bundle, workdir):
    b = bundle.make("bad")
    b.config["process"]["args"] = ["/no/such/program"]
    status, profile, _, stderr = learn(b)
    assert status == 2 and profile is None
    assert stderr.splitlines()[-1].startswith("pyrunc seccomp learn: "), stderr
    assert not [n for n in os.listdir("/tmp") if n.startswith("pyrunc-learn-")]


def test_a_32_bit_call_adds_its_architecture(bundle):
    b = bundle.make("i386", "i386=20")     # getpid through int $0x80, in a child
    status, profile, stdout, stderr = learn(b)
    assert status == 0, stderr
    assert itlib.parse_report(stdout).result("i386=20")["errno"] == 0
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert "getpid" in allowed(profile)


@pytest.mark.crun_oracle
def test_each_runtime_s_own_rule_is_what_it_needs(bundle, runtime):
    """`true` calls next to nothing: the profile learned under pyrunc holds under runc and
    crun by the rule of each runtime's own post-load calls, and without that rule runc
    and crun cannot start it (the rule is not padding)."""
    b = bundle.make("true")
    b.config["process"]["args"] = ["true"]
    status, profile, _, stderr = learn(b)
    assert status == 0, stderr
    b.config["linux"]["seccomp"] = profile
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode == 0, proc.stderr
    if runtime.name == "pyrunc":
        return
    own = set(learn_module.RUNTIME_CALLS[runtime.name])
    learned = set(profile["syscalls"][0]["names"])
    rule = next((r for r in profile["syscalls"][1:] if r["action"] == "SCMP_ACT_ALLOW"
                 and set(r["names"]) == own - learned), None)
    if runtime.name == "crun":      # close and execve: pyrunc's init makes them too
        assert own <= learned | set(rule["names"] if rule else ()), profile
        return
    assert rule is not None, profile
    # runc's rule taken out (and its names from every rule): runc cannot start `true`
    without = dict(profile, syscalls=[dict(r, names=[n for n in r["names"]
                                                     if n not in rule["names"]])
                                      for r in profile["syscalls"] if r is not rule])
    b.config["linux"]["seccomp"] = without
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0 and "operation not permitted" in proc.stderr, proc.stderr



@pytest.mark.crun_oracle
def test_args_learns_the_signals_kill_sends(bundle, runtime):
    # no `wait`: busybox sh waits with or without rt_sigsuspend as the child's death
    # races it, and a call made on one path only is not learned on the other
    b = bundle.make("busybox")
    b.config["process"]["args"] = ["sh", "-c", "sleep 3 & sleep 0.2; kill -TERM $! && echo sent"]
    status, profile, stdout, stderr = learn(b, "--args")
    assert (status, stdout) == (0, "sent\n"), stderr
    kills = [r for r in profile["syscalls"] if "kill" in r["names"]]
    assert kills == [{"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}], kills
    b.config["linux"]["seccomp"] = profile
    proc = runtime.run(b, itlib.new_id())
    assert (proc.returncode, proc.stdout) == (0, "sent\n"), proc.stderr
    # a signal it never sent: refused (busybox's kill says so and fails)
    b.config["process"]["args"] = ["sh", "-c", "sleep 3 & sleep 0.2; kill -KILL $!"]
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr, proc.stderr
