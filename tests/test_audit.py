"""pyrunc audit without root: the BPF interpreter against libseccomp's own compilation of
a config, the per-syscall summary, and finding a container in each runtime's state."""
import copy
import json
import os
import re
import struct
import sys

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import seccomp, seccomp_compile
from pyrunc.spec import load_config
from pyrunc.teach import audit, bpf
from pyrunc.teach import claims as judging
from tests.test_verify import CONFIG, HOST


def compiled(config):
    """The config's filter as libseccomp compiles it for create: [(code, jt, jf, k)]."""
    model, _ = load_config(copy.deepcopy(config))
    raw, _ = seccomp_compile.export(seccomp.check_section(model.linux.seccomp), "bpf")
    return [struct.unpack_from("<HBBI", raw, i) for i in range(0, len(raw), 8)]


def test_the_interpreter_gives_what_libseccomp_compiled_for_every_sample():
    plan = judging.Plan(copy.deepcopy(CONFIG), load_config(copy.deepcopy(CONFIG))[0], HOST)
    program = compiled(CONFIG)
    assert len(plan.samples) > 5
    for s in plan.samples:
        values = dict(s.args)
        args = [values.get(i, 0) for i in range(6)]
        action, read = bpf.decide([program], plan.resolve(s.name), bpf.AUDIT_ARCH_X86_64, args)
        assert action == s.expected, (s.name, s.args, hex(action))
        assert bool(read) == (s.name == "socket")     # the one rule with conditions


def test_the_strongest_action_of_stacked_filters_wins():
    allow_all = [(0x06, 0, 0, seccomp.ACT_ALLOW)]
    errno_all = [(0x06, 0, 0, seccomp.ACT_ERRNO | 1)]
    kill_all = [(0x06, 0, 0, seccomp.ACT_KILL_PROCESS)]
    assert bpf.decide([allow_all, errno_all], 0, bpf.AUDIT_ARCH_X86_64)[0] == \
        seccomp.ACT_ERRNO | 1
    assert bpf.decide([errno_all, kill_all, allow_all], 0, bpf.AUDIT_ARCH_X86_64)[0] == \
        seccomp.ACT_KILL_PROCESS
    assert bpf.decide([], 0, bpf.AUDIT_ARCH_X86_64)[0] == seccomp.ACT_ALLOW


def test_the_summary_reads_like_seccomp_show():
    rows = dict(bpf.summarize([compiled(CONFIG)]))
    # CONFIG: default errno 1; read, write, ptrace allowed; socket(AF_UNIX) errno 13; reboot
    # killed
    assert rows["everything else"] == "errno 1"
    assert rows["read"] == rows["write"] == rows["ptrace"] == "allow"
    assert rows["reboot"] == "kill the thread"
    assert rows["socket"] == "errno 1 with arguments 0 (reads arg0)"
    assert "mount" not in rows
    assert rows["a number no syscall has"] == "errno 1"
    foreign = dict(bpf.foreign_arch_text([compiled(CONFIG)]))
    assert foreign["x86 (32-bit) getpid"] == "kill the thread"     # no SCMP_ARCH_X86


def _state(tmp_path, runtime, cid, name, data):
    d = tmp_path / runtime / cid
    d.mkdir(parents=True)
    (d / name).write_text(json.dumps(data))
    return d


@pytest.mark.parametrize("name,data,label", [
    ("state.json", {"ociVersion": "1.0.2", "id": "c1", "pid": os.getpid(),
                    "pidStartTime": None, "bundle": "/srv/b"}, "pyrunc"),
    ("state.json", {"id": "c1", "init_process_pid": os.getpid(),
                    "config": {"labels": ["bundle=/srv/b"]}}, "runc"),
    ("status", {"pid": os.getpid(), "bundle": "/srv/b"}, "crun"),
])
def test_each_runtime_s_state_names_the_pid_and_the_bundle(tmp_path, name, data, label):
    root = tmp_path / "any"
    _state(tmp_path, "any", "c1", name, data)
    found = audit.locate("c1", root=str(root))
    assert found.pid == os.getpid()
    assert found.label == f"{label} container c1"
    assert found.config == "/srv/b/config.json"
    # the runtime's own copy of the config wins over the bundle's, --bundle over both
    (root / "c1" / "config.json").write_text("{}")
    assert audit.locate("c1", root=str(root)).config == str(root / "c1" / "config.json")
    assert audit.locate("c1", root=str(root), bundle="/x").config == "/x/config.json"


def test_a_container_not_found_or_not_running_is_one_clear_error(tmp_path):
    with pytest.raises(PyruncError, match="no such container under"):
        audit.locate("nope", runtime="runc", root=str(tmp_path))
    _state(tmp_path, "runc", "c2", "state.json", {"init_process_pid": 0})
    with pytest.raises(PyruncError, match="no pid"):
        audit.locate("c2", runtime="runc", root=str(tmp_path / "runc"))
    with pytest.raises(PyruncError, match="../x: no such container"):
        audit.locate("../x", runtime="runc", root=str(tmp_path))


def test_a_pid_needs_no_state():
    found = audit.locate(str(os.getpid()))
    assert (found.pid, found.label, found.config) == (os.getpid(), f"pid {os.getpid()}", None)


def test_ids_read_back_through_the_maps():
    maps = [(0, 100000, 65536)]
    assert audit._from_container(100000, maps) == 0
    assert audit._from_container(101000, maps) == 1000
    assert audit._from_container(5, maps) == 65534     # unmapped: the overflow id


def test_this_process_s_limits_and_mounts_read_as_the_probe_reports_them():
    import resource
    limits = audit._limits(os.getpid())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits["RLIMIT_NOFILE"] == [soft, hard]
    table = audit.mount_table(os.getpid())
    assert any(m["mount_point"] == "/proc" and m["fstype"] == "proc" for m in table)
    assert all(m["propagation"] for m in table)


SCRIPT = os.path.join(os.path.dirname(__file__), "..", "examples", "article",
                      "container-security-check.sh")


def _script_checks():
    """Each command the article's script runs in the container (`docker exec ID CMD`),
    with what it pipes the output through."""
    found = []
    with open(SCRIPT) as f:
        for text in f:
            m = re.search(r"docker exec \$CONTAINER_ID (.+?)\)?$", text.strip())
            if m:
                found.append(m.group(1))
    return found


def test_every_check_of_the_article_s_script_is_one_audit_makes():
    checks = _script_checks()
    assert len(checks) == 6, checks     # the script as printed: id, Cap, Seccomp, ns, ...
    assert [c for c, _, _ in audit.ARTICLE_CHECKS] == checks
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "TEACHING.md")) as f:
        teaching = f.read()
    for command, line, field in audit.ARTICLE_CHECKS:
        # the lab's table maps each, as `docker exec ID CMD`, to audit's line and field
        row = next((r for r in teaching.splitlines()
                    if r.startswith(f"| `docker exec ID {command.replace('|', chr(92) + '|')}`")),
                   None)
        assert row is not None, command
        assert f"`{line}`" in row and f"`{field}`" in row, row


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs root")
def test_without_pyroute2_the_network_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyroute2", None)     # import pyroute2 fails
    view = audit.namespace_view(os.getpid(), [])
    assert view == {"error": "pyroute2 is not installed (pip install 'pyrunc[net]'), so "
                             "the interfaces cannot be listed"}
