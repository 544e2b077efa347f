"""linux.seccomp: compiled filters compared with pyseccomp's for the same rules, errors and
warnings with their JSON paths, flags, the BPF cache, summaries and static findings, and
filters really loaded in a forked child (only the child is filtered)."""
import copy
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile

import pyseccomp as ref
import pytest

from pyrunc import syscalls
from pyrunc.errors import PyruncError
from pyrunc.linux import seccomp as sc
from pyrunc.linux import seccomp_cache, seccomp_compile, seccomp_notify
from pyrunc.spec.model import SECCOMP, Loader

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
with open(os.path.join(HERE, "data", "article_seccomp.json")) as f:
    ARTICLE = json.load(f)["linux"]["seccomp"]
with open(os.path.join(HERE, "data", "article_seccomp_socket_rule.json")) as f:
    ARTICLE_SOCKET_RULE = json.load(f)
WHITELIST = ARTICLE["syscalls"][0]["names"]

# default ALLOW, the article's argument filter: only AF_INET (2) sockets
SOCKET_ONLY_INET = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ARTICLE_SOCKET_RULE]}


def node(data):
    return SECCOMP.load(copy.deepcopy(data), "linux.seccomp", Loader())


def prepare(data, strict=False, cache_dir=None):
    warnings = []
    return sc.prepare(node(data), warnings, strict, cache_dir), warnings


def error(data, **kw):
    with pytest.raises(PyruncError) as info:
        prepare(data, **kw)
    assert info.value.step == "seccomp"
    return info.value


def reference(default, rules, arches=(), optimize=False, what="bpf"):
    """The same filter built with pyseccomp, rule by rule."""
    f = ref.SyscallFilter(default)
    for arch in arches:
        f.add_arch(arch)
    for action, name, *args in rules:
        f.add_rule(action, name, *args)
    if optimize:
        f.set_attr(ref.Attr.CTL_OPTIMIZE, 2)
    with tempfile.TemporaryFile() as t:
        (f.export_bpf if what == "bpf" else f.export_pfc)(t)
        t.seek(0)
        return t.read()


def rule(names, action, args=None, errno_ret=None):
    r = {"names": names, "action": action}
    if args is not None:
        r["args"] = args
    if errno_ret is not None:
        r["errnoRet"] = errno_ret
    return r


def arg(index, op, value, value_two=None):
    a = {"index": index, "op": op, "value": value}
    if value_two is not None:
        a["valueTwo"] = value_two
    return a


# --- the compiled filter equals pyseccomp's -------------------------------------------------

def article_reference(extra=()):
    rules = [(ref.ALLOW, n) for n in WHITELIST]
    rules.append((ref.ALLOW, "kill", ref.Arg(1, ref.EQ, 15)))
    return reference(ref.ERRNO(1), rules + list(extra), arches=(ref.Arch.X86, ref.Arch.X32),
                     optimize=True)


def test_article_whitelist_matches_pyseccomp():
    assert len(WHITELIST) == 329
    filt, warnings = prepare(ARTICLE)
    assert warnings == []
    assert filt.bpf == article_reference()
    assert filt.flags == 0 and filt.listener_path is None


def test_article_socket_rule_in_its_whitelist_is_the_default_action_so_skipped():
    # errnoRet 1 is the default's EPERM: libseccomp would refuse the rule (EACCES)
    data = copy.deepcopy(ARTICLE)
    data["syscalls"].append(ARTICLE_SOCKET_RULE)
    filt, warnings = prepare(data)
    assert filt.bpf == article_reference() and warnings == []
    with pytest.raises(PermissionError):
        ref.SyscallFilter(ref.ERRNO(1)).add_rule(ref.ERRNO(1), "socket", ref.Arg(0, ref.NE, 2))


def test_socket_argument_filter_matches_pyseccomp():
    filt, _ = prepare(SOCKET_ONLY_INET)
    assert filt.bpf == reference(ref.ALLOW, [(ref.ERRNO(1), "socket", ref.Arg(0, ref.NE, 2))])


def test_every_action_matches_pyseccomp():
    data = {"defaultAction": "SCMP_ACT_KILL_PROCESS", "listenerPath": "/run/agent.sock",
            "syscalls": [
                rule(["getpid"], "SCMP_ACT_ALLOW"),
                rule(["getppid"], "SCMP_ACT_LOG"),
                rule(["getuid"], "SCMP_ACT_ERRNO"),
                rule(["getgid"], "SCMP_ACT_ERRNO", errno_ret=38),
                rule(["geteuid"], "SCMP_ACT_TRAP"),
                rule(["getegid"], "SCMP_ACT_TRACE"),
                rule(["getpgrp"], "SCMP_ACT_TRACE", errno_ret=7),
                rule(["gettid"], "SCMP_ACT_KILL"),
                rule(["getsid"], "SCMP_ACT_KILL_THREAD"),
                rule(["uname"], "SCMP_ACT_NOTIFY"),
                rule(["reboot"], "SCMP_ACT_KILL_PROCESS"),   # the default: skipped
            ]}
    filt, warnings = prepare(data)
    assert warnings == []
    assert filt.bpf == reference(ref.KILL_PROCESS, [
        (ref.ALLOW, "getpid"), (ref.LOG, "getppid"), (ref.ERRNO(errno.EPERM), "getuid"),
        (ref.ERRNO(38), "getgid"), (ref.TRAP, "geteuid"), (ref.TRACE(errno.EPERM), "getegid"),
        (ref.TRACE(7), "getpgrp"), (ref.KILL, "gettid"), (ref.KILL_THREAD, "getsid"),
        (ref.NOTIFY, "uname")])
    assert filt.flags == sc.FLAG_NEW_LISTENER
    assert filt.listener_path == "/run/agent.sock"


def test_default_errno_ret_and_kill_default():
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                       "syscalls": [rule(["read", "write"], "SCMP_ACT_ALLOW"),
                                    rule(["clone3"], "SCMP_ACT_ERRNO", errno_ret=38)]})
    assert filt.bpf == reference(ref.ERRNO(38), [(ref.ALLOW, "read"), (ref.ALLOW, "write")])
    # SCMP_ACT_KILL is KILL_THREAD: a KILL_THREAD rule under a KILL default is skipped
    filt, _ = prepare({"defaultAction": "SCMP_ACT_KILL",
                       "syscalls": [rule(["read"], "SCMP_ACT_KILL_THREAD"),
                                    rule(["write"], "SCMP_ACT_ALLOW")]})
    assert filt.bpf == reference(ref.KILL, [(ref.ALLOW, "write")])


def test_every_operator_matches_pyseccomp():
    big = 0x1_0000_0002
    data = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(["socket"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_NE", 2)], 13),
        rule(["setuid"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_EQ", 0)], 13),
        rule(["setgid"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_GE", 1000)], 13),
        rule(["setreuid"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_LT", 10)], 13),
        rule(["setregid"], "SCMP_ACT_ERRNO", [arg(1, "SCMP_CMP_LE", 20)], 13),
        rule(["setresuid"], "SCMP_ACT_ERRNO", [arg(2, "SCMP_CMP_GT", big)], 13),
        rule(["setresgid"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_MASKED_EQ", 0xFF00, 0x1200)],
             13),
        # conditions on different arguments: all must hold (one libseccomp rule)
        rule(["kill"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_EQ", 9)],
             13),
    ]}
    filt, _ = prepare(data)
    e = ref.ERRNO(13)
    assert filt.bpf == reference(ref.ALLOW, [
        (e, "socket", ref.Arg(0, ref.NE, 2)), (e, "setuid", ref.Arg(0, ref.EQ, 0)),
        (e, "setgid", ref.Arg(0, ref.GE, 1000)), (e, "setreuid", ref.Arg(0, ref.LT, 10)),
        (e, "setregid", ref.Arg(1, ref.LE, 20)), (e, "setresuid", ref.Arg(2, ref.GT, big)),
        (e, "setresgid", ref.Arg(0, ref.MASKED_EQ, 0xFF00, 0x1200)),
        (e, "kill", ref.Arg(0, ref.EQ, 1), ref.Arg(1, ref.EQ, 9))])


def test_several_conditions_on_one_argument_split_as_runc_does():
    # libseccomp refuses two comparisons of one argument in one rule ...
    with pytest.raises(OSError) as info:
        ref.SyscallFilter(ref.ALLOW).add_rule(ref.ERRNO(1), "personality",
                                              ref.Arg(0, ref.EQ, 0), ref.Arg(0, ref.EQ, 8))
    assert info.value.errno == errno.EINVAL
    # ... so each condition of such a rule becomes a rule of its own (any one matches)
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(["read"], "SCMP_ACT_ALLOW"),
        rule(["personality"], "SCMP_ACT_ALLOW", [arg(0, "SCMP_CMP_EQ", 0),
                                                 arg(0, "SCMP_CMP_EQ", 8),
                                                 arg(0, "SCMP_CMP_EQ", 0x20008)]),
        rule(["prctl"], "SCMP_ACT_ALLOW", [arg(0, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_EQ", 2),
                                           arg(1, "SCMP_CMP_GT", 5)]),
    ]}
    filt, _ = prepare(data)
    assert filt.bpf == reference(ref.ERRNO(1), [
        (ref.ALLOW, "read"),
        (ref.ALLOW, "personality", ref.Arg(0, ref.EQ, 0)),
        (ref.ALLOW, "personality", ref.Arg(0, ref.EQ, 8)),
        (ref.ALLOW, "personality", ref.Arg(0, ref.EQ, 0x20008)),
        (ref.ALLOW, "prctl", ref.Arg(0, ref.EQ, 1)), (ref.ALLOW, "prctl", ref.Arg(0, ref.EQ, 2)),
        (ref.ALLOW, "prctl", ref.Arg(1, ref.GT, 5))])


def test_binary_tree_only_above_32_rules():
    names = WHITELIST[:33]
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ERRNO",
                       "syscalls": [rule(names, "SCMP_ACT_ALLOW")]})
    assert filt.bpf == reference(ref.ERRNO(1), [(ref.ALLOW, n) for n in names], optimize=True)
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ERRNO",
                       "syscalls": [rule(names[:32], "SCMP_ACT_ALLOW")]})
    assert filt.bpf == reference(ref.ERRNO(1), [(ref.ALLOW, n) for n in names[:32]])


def test_pfc_export_matches_pyseccomp():
    warnings = []
    text = sc.export_pfc(node(SOCKET_ONLY_INET), warnings)
    assert text == reference(ref.ALLOW, [(ref.ERRNO(1), "socket", ref.Arg(0, ref.NE, 2))],
                             what="pfc").decode()
    assert "ERRNO(1)" in text and warnings == []


# --- warnings and errors ------------------------------------------------------------------

def test_unknown_syscall_names_are_skipped_with_a_warning():
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(["read", "no_such_call", "write"], "SCMP_ACT_ALLOW"),
        rule(["another_fake"], "SCMP_ACT_LOG")]}
    filt, warnings = prepare(data)
    assert warnings == [
        "linux.seccomp.syscalls[0].names[1]: unknown syscall 'no_such_call', skipped",
        "linux.seccomp.syscalls[1].names[0]: unknown syscall 'another_fake', skipped"]
    assert filt.bpf == reference(ref.ERRNO(1), [(ref.ALLOW, "read"), (ref.ALLOW, "write")])
    e = error(data, strict=True)
    assert e.path == "linux.seccomp.syscalls[0].names[1]"
    assert "no_such_call" in e.message


def test_names_of_other_architectures_are_known():
    # x86's socketcall resolves to a pseudo number on x86_64: no warning, no rule there
    filt, warnings = prepare({"defaultAction": "SCMP_ACT_ERRNO",
                              "syscalls": [rule(["read", "socketcall"], "SCMP_ACT_ALLOW")]})
    assert warnings == []
    assert filt.bpf == reference(ref.ERRNO(1), [(ref.ALLOW, "read"), (ref.ALLOW, "socketcall")])


@pytest.mark.parametrize("data, path, text", [
    ({"defaultAction": "SCMP_ACT_DENY"}, "linux.seccomp.defaultAction", "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(["read"], "SCMP_ACT_ERRNO"),
                                                      rule(["write"], "ALLOW")]},
     "linux.seccomp.syscalls[1].action", "unknown action 'ALLOW'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(["read"], "SCMP_ACT_ERRNO", [
        arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_ANY", 2)])]},
     "linux.seccomp.syscalls[0].args[1].op", "unknown operator 'SCMP_CMP_ANY'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_Z80"]},
     "linux.seccomp.architectures[1]", "unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]},
     "linux.seccomp.architectures[0]", "unknown architecture 'x86'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]},
     "linux.seccomp.flags[0]", "unknown flag 'SECCOMP_FILTER_FLAG_FAST'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(["uname"], "SCMP_ACT_NOTIFY")]},
     "linux.seccomp.syscalls[0].action", "needs linux.seccomp.listenerPath"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"},
     "linux.seccomp.defaultAction", "cannot be the default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
      "syscalls": [rule(["uname", "write"], "SCMP_ACT_NOTIFY")]},
     "linux.seccomp.syscalls[0].names[1]", "cannot be used for write"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"},
     "linux.seccomp.listenerMetadata", "needs listenerPath"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "linux.seccomp.defaultErrnoRet", "only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule(["read"], "SCMP_ACT_LOG",
                                                           errno_ret=5)]},
     "linux.seccomp.syscalls[0].errnoRet", "not SCMP_ACT_LOG"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(["read"], "SCMP_ACT_ERRNO",
                                                           errno_ret=4096)]},
     "linux.seccomp.syscalls[0].errnoRet", "above 4095"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule([], "SCMP_ACT_ERRNO")]},
     "linux.seccomp.syscalls[0].names", "at least one syscall name"),
    # libseccomp: the same conditions with another action, the longer rule first
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(["kill"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_EQ", 2)],
             2),
        rule(["kill"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_EQ", 1)], 3)]},
     "linux.seccomp.syscalls[1]", "another rule gives it a different action"),
])
def test_errors_name_the_json_path(data, path, text):
    e = error(data)
    assert e.path == path
    assert text in e.message


# --- flags ----------------------------------------------------------------------------------

def test_spec_flags_map_to_seccomp_flags():
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})
    assert filt.flags == 1 | 2 | 4


def test_notify_sets_new_listener_and_tsync_esrch():
    data = {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
            "syscalls": [rule(["uname"], "SCMP_ACT_NOTIFY")]}
    filt, _ = prepare(data)
    # the kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH says how errors look
    assert filt.flags == sc.FLAG_TSYNC | sc.FLAG_NEW_LISTENER | sc.FLAG_TSYNC_ESRCH
    assert (filt.listener_path, filt.listener_metadata) == ("/run/agent.sock", "m")
    # no NOTIFY rule: the listener is still made and sent, as crun does (the spec sends
    # "when the SCMP_ACT_NOTIFY action is used"; an agent would otherwise wait forever)
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"})
    assert (filt.flags, filt.listener_path) == (sc.FLAG_NEW_LISTENER, "/x")
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ALLOW"})
    assert (filt.flags, filt.listener_path) == (0, None)


WAIT_KILLABLE = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                 "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                 "syscalls": [rule(["uname"], "SCMP_ACT_NOTIFY")]}


def test_wait_killable_recv_where_the_kernel_has_it():
    assert sc._kernel_has_flag(sc.FLAG_NEW_LISTENER)
    assert not sc._kernel_has_flag(1 << 30)
    if not sc._kernel_has_flag(sc.FLAG_NEW_LISTENER | sc.FLAG_WAIT_KILLABLE_RECV):
        pytest.skip("kernel older than 5.19")
    filt, warnings = prepare(WAIT_KILLABLE)
    assert filt.flags == sc.FLAG_LOG | sc.FLAG_NEW_LISTENER | sc.FLAG_WAIT_KILLABLE_RECV
    assert warnings == []


def test_wait_killable_recv_dropped_with_a_warning(monkeypatch):
    def old_kernel(number, *args, what):
        raise OSError(errno.EINVAL, "seccomp: Invalid argument")
    monkeypatch.setattr(syscalls, "syscall", old_kernel)
    filt, warnings = prepare(WAIT_KILLABLE)
    assert filt.flags == sc.FLAG_LOG | sc.FLAG_NEW_LISTENER
    assert warnings == ["linux.seccomp.flags[1]: not supported by this kernel (Linux 5.19+), "
                        "ignored"]
    assert error(WAIT_KILLABLE, strict=True).path == "linux.seccomp.flags[1]"
    # without a NOTIFY rule the kernel would refuse the flag: dropped too
    alone = {"defaultAction": "SCMP_ACT_ALLOW", "flags": WAIT_KILLABLE["flags"]}
    filt, warnings = prepare(alone)
    assert filt.flags == sc.FLAG_LOG
    assert "without an SCMP_ACT_NOTIFY rule" in warnings[0]


# --- the cache ------------------------------------------------------------------------------

def no_libseccomp():
    raise AssertionError("libseccomp used on a cache hit")


def test_cache_hit_returns_the_same_bytes_without_libseccomp(tmp_path, monkeypatch):
    cold, _ = prepare(ARTICLE, cache_dir=str(tmp_path))
    entries = os.listdir(tmp_path)
    assert len(entries) == 1 and len(entries[0]) == 64
    monkeypatch.setattr(seccomp_compile, "_libseccomp", no_libseccomp)
    warm, warnings = prepare(ARTICLE, cache_dir=str(tmp_path))
    assert warm.bpf == cold.bpf and warnings == []
    # another section misses the cache and needs libseccomp
    other = dict(ARTICLE, defaultErrnoRet=38)
    with pytest.raises(AssertionError):
        prepare(other, cache_dir=str(tmp_path))
    # so does another libseccomp build
    monkeypatch.setattr(seccomp_cache, "_library_identity",
                        lambda: "/usr/lib/libseccomp.so.2.6.0:1:2")
    with pytest.raises(AssertionError):
        prepare(ARTICLE, cache_dir=str(tmp_path))


def test_cache_hit_repeats_the_warnings_and_strict_errors(tmp_path, monkeypatch):
    data = {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [rule(["read", "no_such_call"], "SCMP_ACT_ALLOW")]}
    cold, cold_warnings = prepare(data, cache_dir=str(tmp_path))
    monkeypatch.setattr(seccomp_compile, "_libseccomp", no_libseccomp)
    warm, warm_warnings = prepare(data, cache_dir=str(tmp_path))
    assert warm.bpf == cold.bpf
    assert warm_warnings == cold_warnings == [
        "linux.seccomp.syscalls[0].names[1]: unknown syscall 'no_such_call', skipped"]
    assert error(data, strict=True, cache_dir=str(tmp_path)).path == \
        "linux.seccomp.syscalls[0].names[1]"


def test_damaged_cache_entry_is_recompiled(tmp_path):
    cold, _ = prepare(SOCKET_ONLY_INET, cache_dir=str(tmp_path))
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(entry.read_bytes()[:-3])
    again, _ = prepare(SOCKET_ONLY_INET, cache_dir=str(tmp_path))
    assert again.bpf == cold.bpf
    assert entry.read_bytes().endswith(cold.bpf)


def test_cache_keeps_a_bounded_number_of_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp_cache, "CACHE_MAX_ENTRIES", 2)
    for errno_ret in (1, 2, 3):
        prepare(dict(SOCKET_ONLY_INET, defaultAction="SCMP_ACT_ERRNO",
                     defaultErrnoRet=errno_ret), cache_dir=str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2


def test_unwritable_cache_is_a_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    filt, warnings = prepare(SOCKET_ONLY_INET, cache_dir=str(blocker / "cache"))
    assert filt.bpf == prepare(SOCKET_ONLY_INET)[0].bpf
    assert len(warnings) == 1 and "cannot store the compiled filter" in warnings[0]


def test_library_identity_names_the_loaded_version():
    identity = seccomp_cache._library_identity()
    assert identity.split(":")[0].endswith(f"libseccomp.so.{seccomp_compile.version()}")


def test_warm_start_imports_neither_the_binding_nor_ctypes(tmp_path):
    prepare(ARTICLE, cache_dir=str(tmp_path))
    code = (
        "import json, sys\n"
        "from pyrunc.spec.model import SECCOMP, Loader\n"
        "from pyrunc.linux import seccomp\n"
        f"data = json.load(open({os.path.join(HERE, 'data', 'article_seccomp.json')!r}))\n"
        "node = SECCOMP.load(data['linux']['seccomp'], 'linux.seccomp', Loader())\n"
        f"filt = seccomp.prepare(node, [], False, {str(tmp_path)!r})\n"
        "print(len(filt.bpf), [m for m in ('pyrunc._seccomp', 'ctypes', 'pyseccomp', 'hashlib')"
        " if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split(maxsplit=1)
    assert out == [str(len(prepare(ARTICLE)[0].bpf)), "[]\n"]


# --- summaries and findings ----------------------------------------------------------------

def test_summary_of_the_article():
    warnings = []
    summary = sc.summarize(node(ARTICLE), warnings)
    assert len(summary) == 330 and warnings == []
    assert dict(summary)["kill"] == "allow"     # the SIGTERM-only rule changes nothing
    assert summary[-1] == ("everything else", "errno 1")


def test_summary_of_conditions():
    data = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        ARTICLE_SOCKET_RULE,
        rule(["personality"], "SCMP_ACT_KILL_PROCESS", [arg(0, "SCMP_CMP_EQ", 1),
                                                        arg(0, "SCMP_CMP_EQ", 0x1_0000_0000)]),
        rule(["setresgid"], "SCMP_ACT_ERRNO", [arg(0, "SCMP_CMP_MASKED_EQ", 0xFF00, 0x1200),
                                               arg(2, "SCMP_CMP_LE", 7)], 13),
        rule(["fake_call"], "SCMP_ACT_LOG"),
        rule(["read"], "SCMP_ACT_ALLOW"),
    ]}
    warnings = []
    assert sc.summarize(node(data), warnings) == [
        ("socket", "errno 1 if arg0 != 2, else allow"),
        ("personality", "kill the process if arg0 == 1 or arg0 == 0x100000000, else allow"),
        ("setresgid", "errno 13 if arg0 & 0xff00 == 4608 and arg2 <= 7, else allow"),
        ("read", "allow"),
        ("everything else", "allow"),
    ]
    assert warnings == ["linux.seccomp.syscalls[3].names[0]: unknown syscall 'fake_call', "
                        "skipped"]


def findings(data):
    return [(level, path) for level, path, _ in sc.analyze(node(data))]


def test_findings_for_the_article():
    result = sc.analyze(node(ARTICLE))
    assert [(level, path) for level, path, _ in result] == [
        ("medium", "linux.seccomp.syscalls[1]"),        # kill rule has no effect
        ("medium", "linux.seccomp.defaultAction"),      # EPERM for clone3 & co
        ("medium", "linux.seccomp.syscalls[0]"),        # allows mount, kexec_load, bpf ...
    ]
    kill, enosys, risky = (message for _, _, message in result)
    assert "no effect on kill" in kill and "syscalls[0] already gives it allow" in kill
    assert enosys.startswith("errno 1 for clone3, faccessat2, statx, openat2, close_range, "
                             "fchmodat2, clock_gettime64")   # x86 is listed: time64 too
    allowed = risky[len("allows "):risky.index(", which")].split(", ")
    assert {"open_by_handle_at", "kexec_load", "bpf", "mount"} <= set(allowed)
    assert set(allowed) <= sc.DOCKER_DENIED and "read" not in allowed


def test_the_articles_socket_rule_added_to_its_whitelist_never_applies():
    data = copy.deepcopy(ARTICLE)
    data["syscalls"].append(ARTICLE_SOCKET_RULE)
    (level, path, message), = [f for f in sc.analyze(node(data))
                               if f[1].startswith("linux.seccomp.syscalls[2]")]
    assert (level, path) == ("high", "linux.seccomp.syscalls[2]")   # a deny that does nothing
    assert message.startswith("no effect on socket: linux.seccomp.syscalls[0] already gives "
                              "it allow for any arguments (and this rule only repeats the "
                              "default action")


def test_a_rule_without_conditions_wins_whatever_the_order():
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(["kill"], "SCMP_ACT_ERRNO", [arg(1, "SCMP_CMP_EQ", 9)], 5),
        rule(["kill", "read"], "SCMP_ACT_ALLOW"),
        rule(["read"], "SCMP_ACT_LOG"),
        rule(["read"], "SCMP_ACT_ALLOW")]}
    (_, _, first), (_, _, third), (_, _, fourth) = [
        f for f in sc.analyze(node(data)) if f[1].startswith("linux.seccomp.syscalls[")]
    assert "whatever the order" in first
    assert "keeps the first rule without conditions" in third
    assert "already given allow by linux.seccomp.syscalls[1]" in fourth
    assert dict(sc.summarize(node(data), []))["kill"] == "allow"
    # what libseccomp does with these rules, for the record
    assert prepare(data)[0].bpf == reference(ref.ERRNO(1), [(ref.ALLOW, "kill"),
                                                             (ref.ALLOW, "read")])


def test_findings_without_a_filter_or_with_an_allow_default():
    assert [f[:2] for f in sc.analyze(None)] == [("high", "linux.seccomp")]
    assert findings({"defaultAction": "SCMP_ACT_ALLOW",
                     "syscalls": [rule(["read"], "SCMP_ACT_LOG")]}) == [
        ("high", "linux.seccomp.defaultAction")]
    assert findings({"defaultAction": "SCMP_ACT_LOG",
                     "syscalls": [rule(["bogus_call", "keyctl"], "SCMP_ACT_ERRNO")]}) == [
        ("medium", "linux.seccomp.defaultAction"),           # a deny-list
        ("medium", "linux.seccomp.syscalls[0].names[0]"),    # a deny that is lost
    ]


def test_enosys_finding_follows_the_default_and_the_rules():
    allow = rule(["read", "write"], "SCMP_ACT_ALLOW")
    enosys = rule(["clone3", "faccessat2", "statx", "openat2", "close_range", "fchmodat2"],
                  "SCMP_ACT_ERRNO", errno_ret=38)
    assert ("medium", "linux.seccomp.defaultAction") in findings(
        {"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [allow]})
    assert findings({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [allow, enosys]}) == []
    assert findings({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                     "syscalls": [allow]}) == []
    assert ("medium", "linux.seccomp.defaultErrnoRet") in findings(
        {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "syscalls": [allow]})
    # 32-bit time syscalls matter only with a 32-bit architecture in the filter
    x86 = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"],
           "syscalls": [allow, enosys]}
    (_, _, message), = sc.analyze(node(x86))
    assert message.startswith("errno 1 for clock_gettime64,")


def test_other_findings():
    data = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(["read"], "SCMP_ACT_ERRNO"),
        rule(["prctl"], "SCMP_ACT_ALLOW", [arg(0, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_EQ", 2)]),
        rule(["not_a_call"], "SCMP_ACT_ALLOW")]}
    assert findings(data)[:3] == [
        ("low", "linux.seccomp.syscalls[0].action"),     # the same as the default
        ("low", "linux.seccomp.syscalls[1].args"),       # or, not and
        ("low", "linux.seccomp.syscalls[2].names[0]"),   # unknown name
    ]
    with pytest.raises(PyruncError) as info:
        sc.analyze(node({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z"]}))
    assert info.value.path == "linux.seccomp.architectures[0]"


# --- send_listener --------------------------------------------------------------------------

STATE = {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 4242,
         "bundle": "/b", "annotations": {"a": "b"}}


def test_send_listener_sends_the_process_state_and_the_fd(tmp_path):
    path = str(tmp_path / "agent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        r, w = os.pipe()
        seccomp_notify.send_listener(path, w, STATE, "meta")
        conn, _ = server.accept()
        with conn:
            payload, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            assert conn.recv(65536) == b""    # one state per connection, then closed
    message = json.loads(payload)
    assert message == {"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 4242,
                       "metadata": "meta", "state": STATE}
    (received,) = fds
    os.write(received, b"x")                   # the very pipe we sent
    assert os.read(r, 1) == b"x"
    for fd in (r, w, received):
        os.close(fd)


def test_send_listener_sends_the_rest_after_a_short_first_sendmsg(tmp_path, monkeypatch):
    # sendmsg may stop early (a signal): the fd goes with the first part only
    send_fds = socket.send_fds
    monkeypatch.setattr(socket, "send_fds", lambda sock, buffers, fds: send_fds(
        sock, [buffers[0][:10]], fds))
    path = str(tmp_path / "agent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        seccomp_notify.send_listener(path, 0, STATE, None)
        conn, _ = server.accept()
        with conn:
            first, fds, _, _ = socket.recv_fds(conn, 10, 1)
            rest = conn.recv(65536)
    assert len(first) == 10 and len(fds) == 1
    assert json.loads(first + rest)["state"] == STATE
    os.close(fds[0])


def test_send_listener_failure_is_an_error(tmp_path):
    with pytest.raises(PyruncError) as info:
        seccomp_notify.send_listener(str(tmp_path / "nobody"), 0, STATE, None)
    assert info.value.path == "linux.seccomp.listenerPath"
    assert "No such file" in info.value.message


# --- loaded for real in a forked child --------------------------------------------------------

def in_child(filt, probe, setup=None):
    """Load `filt` in a forked child (no_new_privs first, as an unprivileged init would, or
    `setup` instead), run probe(listener fd) there, return its JSON result. The test process
    stays unfiltered."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            (setup or (lambda: syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)))()
            result = probe(sc.load(filt))
        except BaseException as e:
            result = {"error": repr(e)}
        try:
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def errno_of(call):
    try:
        call()
    except OSError as e:
        return e.errno
    return 0


def test_load_errors_name_the_call_and_a_hint():
    # refused before anything is installed, so safe in the test process itself
    bpf = prepare(SOCKET_ONLY_INET)[0].bpf
    with pytest.raises(PyruncError) as info:
        sc.load(sc.Filter(bpf, 1 << 30))
    assert (info.value.path, info.value.step, info.value.errno) == (
        "linux.seccomp", "seccomp", errno.EINVAL)
    assert info.value.message == ("seccomp: Invalid argument (a flag or action this kernel "
                                  "does not support?)")


def test_load_without_no_new_privs_or_cap_sys_admin_is_refused():
    filt, _ = prepare(SOCKET_ONLY_INET)
    assert in_child(filt, lambda fd: fd, setup=lambda: syscalls.capset(0, 0, 0)) == {
        "error": "PyruncError('seccomp: Permission denied (seccomp(2) needs no_new_privs or "
                 "CAP_SYS_ADMIN)')"}


def test_loaded_filter_denies_unix_sockets_and_allows_inet():
    filt, _ = prepare(SOCKET_ONLY_INET)

    def probe(fd):
        return {"fd": fd,
                "unix": errno_of(lambda: socket.socket(socket.AF_UNIX).close()),
                "inet": errno_of(lambda: socket.socket(socket.AF_INET).close())}
    assert in_child(filt, probe) == {"fd": None, "unix": errno.EPERM, "inet": 0}
    socket.socket(socket.AF_UNIX).close()      # the test process itself is not filtered


def test_loaded_article_filter_gives_clone3_eperm_and_kill_any_signal():
    filt, _ = prepare(ARTICLE)

    def probe(fd):
        return {"clone3": errno_of(lambda: syscalls.syscall(435, 0, 0, what="clone3")),
                "kill0": errno_of(lambda: os.kill(os.getpid(), 0)),
                "getpid": os.getpid() > 0}
    # clone3 is not in the list: EPERM, which glibc does not fall back from (analyze's
    # finding); kill with signal 0 works: the SIGTERM-only rule has no effect
    assert in_child(filt, probe) == {"clone3": errno.EPERM, "kill0": 0, "getpid": True}


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100     # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101     # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes
SYS_acct = 163


def test_notify_listener_reaches_an_agent_that_answers(tmp_path):
    import fcntl
    path = str(tmp_path / "agent.sock")
    filt, _ = prepare({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                       "listenerMetadata": "hello",
                       "syscalls": [rule(["acct"], "SCMP_ACT_NOTIFY")]})
    assert filt.flags == sc.FLAG_NEW_LISTENER
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def probe(fd):
        kind = os.readlink(f"/proc/self/fd/{fd}")
        seccomp_notify.send_listener(filt.listener_path, fd, dict(STATE, pid=os.getpid()),
                         filt.listener_metadata)
        return {"kind": kind, "acct": errno_of(lambda: syscalls.syscall(SYS_acct, 0,
                                                                        what="acct"))}

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                # the container's init
        try:
            os.close(r)
            server.close()
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
            result = probe(sc.load(filt))
        except BaseException as e:
            result = {"error": repr(e)}
        try:
            os.write(w, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:                                        # the agent
        conn, _ = server.accept()
        with conn:
            payload, (listener,), _, _ = socket.recv_fds(conn, 65536, 1)
            while chunk := conn.recv(65536):  # a stream: the JSON may come in pieces
                payload += chunk
        message = json.loads(payload)
        notif = bytearray(80)
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notif)
        notif_id, notif_pid, _, nr = struct.unpack_from("=QIIi", notif)
        fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND,
                    bytearray(struct.pack("=QqiI", notif_id, 0, -errno.ENOTTY, 0)))
        os.close(listener)
        result = json.loads(os.read(r, 65536))
    finally:
        os.close(r)
        server.close()
        os.waitpid(pid, 0)
    assert (message["fds"], message["metadata"], message["pid"]) == (["seccompFd"], "hello",
                                                                     pid)
    assert (nr, notif_pid) == (SYS_acct, pid)
    assert result == {"kind": "anon_inode:seccomp notify", "acct": errno.ENOTTY}
