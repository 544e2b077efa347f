"""pyrunc seccomp learn's profile from what the supervisor recorded (no container)."""
from pyrunc.linux import seccomp
from pyrunc.teach import bpf, learn

X86_64, I386 = bpf.AUDIT_ARCH_X86_64, bpf.AUDIT_ARCH_I386
READ, SOCKET, CLONE3, GETPID_I386 = 0, 41, 435, 20


def recorded(calls, values=None):
    r = learn.Recorder(lambda key: None)
    r.calls = {key: 1 for key in calls}
    r.values = values or {}
    return r


def test_the_profile_allows_what_was_seen_and_says_why_for_the_rest():
    section, used = learn.profile(recorded([(X86_64, READ), (X86_64, SOCKET)]),
                                  bpf._resolver(), False)
    assert set(used) == {"read", "socket"}
    rules = section["syscalls"]
    assert rules[0] == {"names": ["read", "sendmsg", "socket", "write"],
                        "action": "SCMP_ACT_ALLOW"}
    # one rule per runtime for its own calls after loading the filter, read already there
    assert "read" not in rules[1]["names"] and {"fstatfs", "openat", "close", "execve"} <= \
        set(rules[1]["names"])
    assert rules[2]["names"] == ["close", "execve"]     # crun's, whole though in runc's too
    assert rules[3]["action"] == "SCMP_ACT_ERRNO" and rules[3]["errnoRet"] == 38
    assert "clone3" in rules[3]["names"]
    assert (section["defaultAction"], section["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert section["architectures"] == ["SCMP_ARCH_X86_64"]
    lines = learn.report(section, used, 0, False)
    assert lines[0] == "learned 2 syscalls (the run exited 0)"
    assert any(line.startswith("  + fstatfs (for runc): runc 1.1.5 calls it after loading")
               for line in lines)


def test_a_fallback_call_that_was_made_is_allowed_not_enosys():
    section, _ = learn.profile(recorded([(X86_64, CLONE3)]), bpf._resolver(), False)
    assert "clone3" in section["syscalls"][0]["names"]
    assert "clone3" not in section["syscalls"][-1]["names"]


def test_32_bit_and_x32_calls_add_their_architectures():
    section, used = learn.profile(
        recorded([(I386, GETPID_I386), (X86_64, READ | bpf.X32_BIT)]), bpf._resolver(), False)
    assert section["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"]
    assert set(used) == {"getpid", "read"}


def test_args_make_one_rule_per_value_seen():
    section, _ = learn.profile(recorded([(X86_64, SOCKET)], {(X86_64, SOCKET): {2, 10}}),
                               bpf._resolver(), True)
    sockets = [r for r in section["syscalls"] if "socket" in r["names"]]
    assert [r["args"] for r in sockets] == [[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}],
                                           [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]]
    # and libseccomp compiles it as the article's rule: AF_INET and AF_INET6 only
    summary = dict(seccomp.summarize(_node(section), []))
    assert summary["socket"] == ("allow if arg0 == 2, allow if arg0 == 10, else errno 1")


def _node(section):
    from pyrunc.spec import load_config
    config, _ = load_config({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                             "process": {"args": ["x"], "cwd": "/"},
                             "linux": {"seccomp": section}})
    return config.linux.seccomp


def test_a_kernel_without_user_notif_continue_is_one_line_saying_why(tmp_path):
    import pytest
    from pyrunc.errors import PyruncError
    avail = tmp_path / "actions_avail"
    avail.write_text("kill_process kill_thread trap errno trace log allow\n")
    with pytest.raises(PyruncError, match="it has log and trace, but LOG loses"):
        learn.mechanism(str(avail), "6.1.0")
    avail.write_text("kill_process errno user_notif trace log allow\n")
    with pytest.raises(PyruncError, match=r"\(Linux 5.5\)"):
        learn.mechanism(str(avail), "5.4.0-150")
    learn.mechanism(str(avail), "5.10.0")     # notify and CONTINUE: learn goes ahead
