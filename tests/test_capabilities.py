import json
import os

import pytest

from pyrunc import syscalls
from pyrunc.errors import Note, PyruncError
from pyrunc.linux import capabilities as caps
from pyrunc.spec.model import CAPABILITIES, Loader

ALL = (1 << 41) - 1
NBS = 1 << 10  # CAP_NET_BIND_SERVICE

# the article's "remove unneeded capabilities" snippet
ARTICLE = {"effective": ["CAP_NET_BIND_SERVICE"], "bounding": ["CAP_NET_BIND_SERVICE"],
           "inheritable": [], "permitted": ["CAP_NET_BIND_SERVICE"], "ambient": []}


def node(data):
    return CAPABILITIES.load(data, "process.capabilities", Loader())


def prepare(data, strict=False, last_cap=40, available=ALL):
    warnings = []
    return caps.prepare(node(data), warnings, strict, last_cap, available), warnings


def test_names_and_numbers_follow_capability_h():
    assert len(caps.CAPS) == 41
    assert caps.CAPS["CAP_CHOWN"] == 0
    assert caps.CAPS["CAP_NET_BIND_SERVICE"] == 10
    assert caps.CAPS["CAP_SYS_ADMIN"] == 21
    assert caps.CAPS["CAP_CHECKPOINT_RESTORE"] == 40
    assert sorted(caps.CAPS.values()) == list(range(41))


def test_every_capability_has_a_risk_and_the_article_grades_hold():
    assert set(caps.RISK) == set(caps.CAPS)
    assert set(caps.RISK.values()) <= set(caps.LEVELS)
    assert caps.RISK["CAP_NET_BIND_SERVICE"] == "low"
    assert caps.RISK["CAP_NET_ADMIN"] == "high"
    assert caps.RISK["CAP_SYS_ADMIN"] == "extreme"
    assert caps.RISK["CAP_DAC_OVERRIDE"] == "high"
    assert caps.RISK["CAP_SETUID"] == "medium"
    for name in ("CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_PERFMON"):
        assert caps.RISK[name] in ("high", "extreme")


def test_article_snippet_masks():
    sets, warnings = prepare(ARTICLE)
    assert (sets.bounding, sets.effective, sets.permitted) == (0x400, 0x400, 0x400)
    assert (sets.inheritable, sets.ambient) == (0, 0)
    assert warnings == []


def test_absent_capabilities_keep_the_runtime_sets():
    assert caps.prepare(None, [], False) is None


def test_absent_list_is_empty():
    sets, _ = prepare({"bounding": ["CAP_KILL"]})
    assert (sets.bounding, sets.effective, sets.permitted) == (1 << 5, 0, 0)


def test_unknown_name_warns_with_its_path_and_is_ignored():
    sets, warnings = prepare({"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_FOO"]})
    assert warnings == ["process.capabilities.bounding[2]: unknown capability 'CAP_FOO', "
                        "ignored"]
    assert sets.bounding == (1 << 5) | 1


def test_unknown_name_raises_in_strict_mode_with_its_path():
    with pytest.raises(PyruncError) as e:
        prepare({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL", "cap_chown"]},
                strict=True)
    assert e.value.path == "process.capabilities.permitted[1]"
    assert e.value.step == "capabilities"
    assert "unknown capability 'cap_chown'" in e.value.message


def test_capability_above_the_kernels_last_cap_warns():
    sets, warnings = prepare({"bounding": ["CAP_BPF", "CAP_KILL"]}, last_cap=37)
    assert warnings == ["process.capabilities.bounding[0]: CAP_BPF (39) is above this "
                        "kernel's cap_last_cap (37), ignored"]
    assert sets.bounding == 1 << 5


def test_capability_outside_the_runtimes_bounding_set_warns():
    sets, warnings = prepare({"bounding": ["CAP_SYS_RESOURCE", "CAP_KILL"]},
                             available=ALL & ~(1 << 24))
    assert len(warnings) == 1 and warnings[0].startswith("process.capabilities.bounding[0]: "
                                                         "CAP_SYS_RESOURCE is not in")
    assert sets.bounding == 1 << 5


def test_effective_outside_permitted_fails_before_anything_starts():
    with pytest.raises(PyruncError) as e:
        prepare({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"],
                 "effective": ["CAP_KILL", "CAP_CHOWN"]})
    assert e.value.path == "process.capabilities.effective[1]"
    assert "CAP_CHOWN is not in permitted" in e.value.message


def test_inheritable_outside_bounding_fails():
    with pytest.raises(PyruncError) as e:
        prepare({"bounding": [], "inheritable": ["CAP_KILL"]})
    assert e.value.path == "process.capabilities.inheritable[0]"


def test_ambient_without_inheritable_is_left_out_with_a_note():
    # runc spec (1.1) lists ambient without inheritable: the kernel would refuse the raise
    sets, warnings = prepare({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                              "effective": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    assert sets.ambient == 0
    assert len(warnings) == 1 and warnings[0].startswith("process.capabilities.ambient[0]: "
                                                         "CAP_KILL is not in both")
    assert isinstance(warnings[0], Note)  # runc 1.1 is silent: the log, not stderr
    with pytest.raises(PyruncError):
        prepare({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                 "ambient": ["CAP_KILL"]}, strict=True)


def test_ambient_with_permitted_and_inheritable_is_kept():
    sets, warnings = prepare({s: ["CAP_NET_BIND_SERVICE"] for s in caps.SETS})
    assert sets.ambient == NBS and warnings == []


def test_permitted_outside_bounding_warns():
    _, warnings = prepare({"bounding": [], "permitted": ["CAP_KILL"]})
    assert warnings == ["process.capabilities.permitted[0]: CAP_KILL is not in bounding, so "
                        "it is lost at execve"]


def test_current_reads_proc_status():
    now = caps.current()
    assert set(now) == set(caps.SETS)
    assert now["effective"] == syscalls.capget()[0]


# --- the child side, for real, in a forked child -------------------------------------------

def _become_root_in_a_user_namespace():
    """Unprivileged: a new user namespace where we are uid 0 with every capability."""
    uid, gid = os.geteuid(), os.getegid()
    syscalls.unshare(syscalls.CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def in_child(work):
    """Run work() in a forked child; return what it returns (JSON) or raise what it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if os.geteuid() != 0:
                _become_root_in_a_user_namespace()
            result = {"ok": work()}
        except PyruncError as e:
            result = {"error": e.to_wire()}
        except BaseException as e:  # anything else, reported to the test, not a traceback
            result = {"crash": repr(e)}
        finally:
            try:
                os.write(w, json.dumps(result).encode())
            finally:
                os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "crash" in result:
        if "unshare" in result["crash"]:
            pytest.skip(f"no user namespace for an unprivileged test: {result['crash']}")
        raise AssertionError(result["crash"])
    if "error" in result:
        raise PyruncError.from_wire(result["error"])
    return result["ok"]


def test_child_drops_to_the_article_set_and_the_parent_is_untouched():
    before = caps.current()
    sets, _ = prepare(ARTICLE, last_cap=caps.kernel_last_cap(),
                      available=before["bounding"])

    def work():
        caps.drop_bounding(sets)
        caps.keep_caps_for_user_switch()
        caps.apply(sets)
        return caps.current()

    after = in_child(work)
    assert after == {"bounding": 0x400, "effective": 0x400, "permitted": 0x400,
                     "inheritable": 0, "ambient": 0}
    assert caps.current() == before


def test_drop_bounding_needs_setpcap():
    sets, _ = prepare(ARTICLE, last_cap=caps.kernel_last_cap(),
                      available=caps.current()["bounding"])

    def work():
        syscalls.capset(0, 0, 0)  # no CAP_SETPCAP left
        caps.drop_bounding(sets)

    with pytest.raises(PyruncError) as e:
        in_child(work)
    assert e.value.path == "process.capabilities.bounding"
    assert e.value.step == "capabilities_bounding"
    assert "PR_CAPBSET_DROP" in e.value.message and "Operation not permitted" in e.value.message


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
NOBODY = 65534


@root_only
def test_user_switch_with_keep_caps_then_apply_restores_effective_and_raises_ambient():
    sets, _ = prepare({s: ["CAP_NET_BIND_SERVICE"] for s in caps.SETS},
                      last_cap=caps.kernel_last_cap(), available=caps.current()["bounding"])

    def work():
        caps.drop_bounding(sets)
        caps.keep_caps_for_user_switch()
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        between = caps.current()
        caps.apply(sets)
        return between, caps.current(), os.getresuid()

    between, after, uids = in_child(work)
    # keep-caps kept permitted, but the switch to a nonzero uid cleared effective
    assert between["effective"] == 0 and between["permitted"] != 0
    assert after == {s: NBS for s in caps.SETS}
    assert uids == [NOBODY] * 3


@root_only
def test_without_keep_caps_the_switch_loses_permitted_and_apply_fails():
    sets, _ = prepare(ARTICLE, last_cap=caps.kernel_last_cap(),
                      available=caps.current()["bounding"])

    def work():
        caps.drop_bounding(sets)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        caps.apply(sets)

    with pytest.raises(PyruncError) as e:
        in_child(work)
    assert e.value.message == "capset: Operation not permitted"
    assert e.value.step == "capabilities"


@root_only
def test_ambient_capability_survives_execve_as_a_nonzero_uid():
    sets, _ = prepare({s: ["CAP_NET_BIND_SERVICE"] for s in caps.SETS},
                      last_cap=caps.kernel_last_cap(), available=caps.current()["bounding"])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            caps.drop_bounding(sets)
            caps.keep_caps_for_user_switch()
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            caps.apply(sets)
            os.execv("/bin/cat", ["cat", "/proc/self/status"])
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    os.waitpid(pid, 0)
    for key in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[key], 16) == NBS, key
