"""The init's step list: one vocabulary, runc's order, and what each config turns on."""
from pyrunc.init import nsenter, steps
from pyrunc.init.context import Context
from pyrunc.linux.namespaces import Plan
from pyrunc.spec import load_config
from pyrunc.spec.defaults import default_spec
from pyrunc import syscalls as sc


def names(seq):
    return [s[0] for s in seq]


def test_order_follows_runc():
    order = names(steps.INIT_STEPS)
    def before(a, b):
        return order.index(a) < order.index(b)
    assert before("mounts", "pivot_root")
    assert before("runtime_hooks", "pivot_root")   # createRuntime: before pivot_root
    assert before("sysctl", "readonly_paths")      # /proc/sys becomes read-only
    assert before("capabilities_bounding", "user") and before("user", "capabilities")
    assert before("seccomp_early", "capabilities_bounding")  # needs CAP_SYS_ADMIN
    assert before("close_fds", "seccomp_early")    # an allow-list may lack close_range
    assert before("wait_for_start", "start_hooks") and before("start_hooks", "seccomp")
    # RLIMIT_NOFILE's soft limit after the last descriptor the init receives or opens
    assert before("start_hooks", "rlimit_nofile") and before("rlimit_nofile", "seccomp")
    assert order[-1] == "exec"


def test_names_are_unique():
    assert len(set(steps.STEP_NAMES)) == len(steps.STEP_NAMES)


def active(config_dict):
    config, _ = load_config(config_dict)
    ctx = Context(config, "/b", "c1")
    ctx.ns = Plan(sc.CLONE_NEWNS | sc.CLONE_NEWNET | sc.CLONE_NEWUTS, {})
    return [name for name, applies, _ in steps.INIT_STEPS if applies(ctx)]


def test_steps_a_config_turns_on():
    base = active(default_spec())
    assert "hostname" in base and "masked_paths" in base and "no_new_privileges" in base
    assert "seccomp" not in base and "sysctl" not in base and "terminal" not in base
    d = default_spec()
    d["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    d["process"]["noNewPrivileges"] = False
    d["hostname"] = ""
    on = active(d)
    assert "sysctl" in on and "no_new_privileges" not in on and "hostname" not in on


def test_fault_injection_names_the_step():
    import pytest
    from pyrunc.errors import PyruncError
    config, _ = load_config(default_spec())
    ctx = Context(config, "/b", "c1")
    ctx.fail_step = "cwd"
    with pytest.raises(PyruncError) as e:
        nsenter.run_steps(ctx, [("cwd", lambda c: True, lambda c: None)])
    assert e.value.step == "cwd" and "fault injected" in e.value.message


def test_architecture_doc_lists_the_steps_in_order():
    import os
    import re
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "ARCHITECTURE.md")).read()
    for label, seq in (("- C1:", nsenter.NAMESPACE_STEPS), ("- C2 (`create`):", steps.INIT_STEPS),
                       ("- C2 (`exec`):", steps.EXEC_STEPS),
                       ("- P, without a user namespace, before it forks the init:",
                        nsenter.PARENT_NAMESPACE_STEPS),
                       ("- P, right after the fork:", nsenter.PARENT_AFTER_FORK_STEPS)):
        bullet = doc[doc.index(label) + len(label):].split("\n- ")[0].split("\n\n")[0]
        assert re.findall(r"`(\w+)`", bullet) == names(seq), label


def test_optional_modules_are_preloaded_only_when_the_config_needs_them():
    import subprocess
    import sys
    code = ("import sys; from pyrunc.init import steps; from pyrunc.spec import load_config; "
            "from pyrunc.spec.defaults import default_spec; d = default_spec(); "
            "c, _ = load_config(d); steps.preload(c, c.process); "
            "a = {m for m in ('pyrunc.linux.terminal', 'pyrunc.linux.seccomp') if m in sys.modules}; "
            "d['process']['terminal'] = True; "
            "d['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW'}; "
            "c, _ = load_config(d); steps.preload(c, c.process); "
            "b = {m for m in ('pyrunc.linux.terminal', 'pyrunc.linux.seccomp') if m in sys.modules}; "
            "print(sorted(a), sorted(b))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] ['pyrunc.linux.seccomp', 'pyrunc.linux.terminal']"


def test_cwd_errors_name_the_call_that_failed(monkeypatch, tmp_path):
    import pytest
    from pyrunc.errors import PyruncError
    d = default_spec()
    d["process"]["cwd"] = str(tmp_path)
    config, _ = load_config(d)
    ctx = Context(config, "/b", "c1")

    def denied():
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(steps.posix, "getcwd", denied)
    with pytest.raises(PyruncError) as e:
        steps.step_cwd(ctx)
    assert e.value.message.startswith("getcwd after chdir") and e.value.path == "process.cwd"
    # cwd_early: EACCES (root cannot enter) leaves the change to the cwd step, as the user
    monkeypatch.setattr(steps.posix, "chdir", lambda p: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied")))
    steps.step_cwd_early(ctx)
    assert not ctx.cwd_done
    with pytest.raises(PyruncError) as e:
        steps.step_cwd(ctx)
    assert e.value.message.startswith("chdir ")


def test_cwd_comes_before_a_filter_loaded_without_no_new_privileges():
    order = names(steps.INIT_STEPS)
    assert order.index("cwd_early") < order.index("seccomp_early")
    d = default_spec()
    d["process"]["noNewPrivileges"] = False
    d["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}
    config, _ = load_config(d)
    ctx = Context(config, "/b", "c1")
    ctx.ns = Plan(sc.CLONE_NEWNS, {})
    ctx.seccomp = object()
    on = [name for name, applies, _ in steps.INIT_STEPS if applies(ctx)]
    assert "cwd_early" in on and "seccomp_early" in on
