"""Hooks: each runs at its point of the lifecycle, in order, with the state JSON on stdin."""
import json
import os

import pytest

from integration import itlib

# appends "NAME STATE-JSON" as one line to the log file named by $2; POSIX sh, so the same
# script runs under the host's /bin/sh and, for startContainer, under busybox in the rootfs
HOOK = """#!/bin/sh
state=$(cat)
printf '%s %s\\n' "$1" "$state" >> "$2"
"""

ORDER = ["createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
# the status each hook must see (runtime-spec runtime.md, State: "creating" is "step 2 in
# the lifecycle", "created" is "after step 2" until the program runs; the hooks of create are
# steps 3 to 5: "created"; then "running" while it runs, "stopped" after it exits)
STATUS = {"createRuntime": "created", "createContainer": "created",
          "startContainer": "created", "poststart": "running", "poststop": "stopped"}


def write_hook(path):
    """HOOK as an executable script at PATH."""
    with open(path, "w") as f:
        f.write(HOOK)
    os.chmod(path, 0o755)
    return path


def read_log(path):
    entries = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                name, state = line.rstrip("\n").split(" ", 1)
                entries.append((name, json.loads(state)))
    return entries


def lifecycle_with_hooks(runtime, bundle, workdir):
    """create, start, kill, delete a container with all five hooks; return the hook log as
    it stood after each step, and the state after create."""
    logdir = os.path.join(workdir, "hooklog")
    os.mkdir(logdir)
    host_log = os.path.join(logdir, "hooks.log")
    host_hook = os.path.join(workdir, "hook.sh")
    b = bundle.make("b", "hold=30")
    for path in (host_hook, os.path.join(b.rootfs, "hook.sh")):
        write_hook(path)
    # startContainer runs in the container after pivot_root: its path and its log are the
    # container's; the log directory is bind-mounted in so the host can read it
    b.add_mount("/hooklog", "bind", logdir, ["rbind", "rw"])
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    b.config["hooks"] = {
        name: [{"path": "/hook.sh" if name == "startContainer" else host_hook,
                "args": ["hook.sh", name,
                         "/hooklog/hooks.log" if name == "startContainer" else host_log],
                "env": env}]
        for name in ORDER}

    cid = itlib.new_id()
    logs = {}
    assert runtime.create(b, cid).returncode == 0
    state = runtime.state(cid)
    logs["create"] = read_log(host_log)
    assert runtime.start(cid).returncode == 0
    runtime.wait_output(cid, lambda t: "\n" in t)
    logs["start"] = read_log(host_log)
    assert runtime.kill(cid, "KILL").returncode == 0
    runtime.wait_status(cid, "stopped")
    assert runtime.delete(cid).returncode == 0
    logs["delete"] = read_log(host_log)
    return b, cid, state, logs


def test_hooks_get_the_state_on_stdin(runtime, bundle, workdir):
    b, cid, state, logs = lifecycle_with_hooks(runtime, bundle, workdir)
    seen = dict(logs["delete"])
    assert set(seen) == set(ORDER), "every hook ran once"
    assert len(logs["delete"]) == len(ORDER)
    for name, hook_state in seen.items():
        assert hook_state["id"] == cid, name
        assert hook_state["bundle"] == b.path, name
        assert hook_state["ociVersion"], name
    for name in ("startContainer", "poststop"):
        assert seen[name]["status"] == STATUS[name], name
    # runtime-spec runtime.md, State: "For hooks executed in the runtime namespace, it is the
    # pid as seen by the runtime. For hooks executed in the container namespace, it is the
    # pid as seen by the container."
    assert seen["createRuntime"]["pid"] == state["pid"]
    assert seen["poststart"]["pid"] == state["pid"]
    assert seen["createContainer"]["pid"] == 1
    assert seen["startContainer"]["pid"] == 1


def test_the_hooks_of_create_see_created(runtime, bundle, workdir, request):
    # lifecycle steps 3 to 5 come "after step 2", which is what `created` means (crun 1.8.1
    # and runtime-tools' hooks_stdin agree); `creating` is step 2 itself
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 gives these hooks the status creating"))
    b, cid, state, logs = lifecycle_with_hooks(runtime, bundle, workdir)
    seen = dict(logs["create"])
    assert seen["createRuntime"]["status"] == "created"
    assert seen["createContainer"]["status"] == "created"


def test_hooks_run_at_their_lifecycle_step(runtime, bundle, workdir, request):
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 runs poststart hooks in `create`, with status "
                                "created (runc issue #1710; moved to `start` by runc PR #5186)"))
    b, cid, state, logs = lifecycle_with_hooks(runtime, bundle, workdir)
    assert [n for n, _ in logs["create"]] == ORDER[:2]
    assert [n for n, _ in logs["start"]] == ORDER[:4]
    assert [n for n, _ in logs["delete"]] == ORDER
    assert dict(logs["delete"])["poststart"]["status"] == STATUS["poststart"]


def test_failing_create_runtime_hook_fails_create(runtime, bundle, workdir):
    b = bundle.make("b", "hold=30")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false", "args": ["false"]}]}
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.create(b, cid)
    assert proc.returncode != 0
    assert runtime.state_cp(cid).returncode != 0
    assert not itlib.leftover_processes(before, [cid, "runc init", "/probe"])


def test_hook_timeout_fails_create(runtime, bundle, workdir):
    b = bundle.make("b", "hold=30")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "20"],
                                            "timeout": 1}]}
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.create(b, cid, timeout=15)
    assert proc.returncode != 0
    assert runtime.state_cp(cid).returncode != 0
    assert not itlib.leftover_processes(before, [cid, "runc init", "/probe", "sleep 20"])


def test_start_container_hook_path_resolves_in_the_container(runtime, bundle, workdir):
    # spec: startContainer hooks run in the container's namespaces, their path resolved
    # there; a host-only path fails the start (and the container with it)
    host_only = os.path.join(workdir, "host-only-hook")
    with open(host_only, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(host_only, 0o755)
    b = bundle.make("b")
    b.config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    assert runtime.run(b, itlib.new_id()).returncode == 0
    b.config["hooks"] = {"startContainer": [{"path": host_only}]}
    proc = runtime.run(b, itlib.new_id())
    assert proc.returncode != 0
    if runtime.name == "pyrunc":
        assert "hooks.startContainer[0]" in proc.stderr and "[step: start_hooks]" in proc.stderr


ENV_HOOK = """#!/bin/sh
env | sort > "$1"
"""


@pytest.mark.crun_oracle
def test_a_hook_without_env_runs_with_the_runtimes_environment(runtime, bundle, workdir):
    # runtime-spec config.md, hooks: `env` is OPTIONAL; runc and crun run a hook without it
    # in the environment of the process that runs it (Go's exec with a nil Env): the
    # runtime's, so PATH and the caller's variables are there; "env": [] is empty
    logdir = os.path.join(workdir, "envlog")
    os.mkdir(logdir)
    b = bundle.make("b")
    host_hook = os.path.join(workdir, "envhook.sh")
    for path in (host_hook, os.path.join(b.rootfs, "envhook.sh")):
        with open(path, "w") as f:
            f.write(ENV_HOOK)
        os.chmod(path, 0o755)
    b.add_mount("/envlog", "bind", logdir, ["rbind", "rw"])
    b.config["process"]["env"] = ["PATH=/bin", "IN_PROCESS=yes"]
    b.config["hooks"] = {
        "createRuntime": [{"path": host_hook, "args": ["h", f"{logdir}/createRuntime"]},
                          {"path": host_hook, "args": ["h", f"{logdir}/empty"], "env": []}],
        "poststop": [{"path": host_hook, "args": ["h", f"{logdir}/poststop"]}],
        "startContainer": [{"path": "/envhook.sh", "args": ["h", "/envlog/startContainer"]}]}
    env = dict(os.environ, CONFORM_MARK="from-the-caller", PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    proc = runtime.run(b, itlib.new_id(), env=env)
    assert proc.returncode == 0, proc.stderr

    def seen(name):
        with open(os.path.join(logdir, name)) as f:
            return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    for name in ("createRuntime", "poststop"):
        assert seen(name).get("CONFORM_MARK") == "from-the-caller", name
        assert seen(name).get("PATH") == env["PATH"], name
    assert "CONFORM_MARK" not in seen("empty")
    # in the container, runc and crun give such a hook the process's environment (their
    # init has cleared its own): the host's variables do not reach the container
    inside = seen("startContainer")
    assert inside["IN_PROCESS"] == "yes" and inside["PATH"] == "/bin"
    assert "CONFORM_MARK" not in inside


@pytest.mark.parametrize("version", ["1.0.1", "1.0.2"])
def test_prestart_runs_where_the_configs_spec_version_says(runtime, bundle, workdir, version,
                                                          request):
    # runtime-spec 1.0.0 and 1.0.1, config.md: "The pre-start hooks MUST be called after the
    # start operation is called but before the user-specified program command is executed";
    # from 1.0.2 they are deprecated and part of create, before createRuntime ("runc
    # originally implemented prestart hooks contrary to the spec, namely as part of the
    # create operation"). The state says "created" in both places (runtime.md, State:
    # "after step 2 in the lifecycle"; runc 1.1.5 says "creating" in create)
    if runtime.name == "runc":
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="runc 1.1.5 runs prestart hooks in create whatever the "
                                "version, with the status creating"))
    logdir = os.path.join(workdir, "hooklog")
    os.mkdir(logdir)
    log = os.path.join(logdir, "hooks.log")
    hook = write_hook(os.path.join(workdir, "hook.sh"))
    b = bundle.make("b", "hold=30")
    b.config["ociVersion"] = version
    b.config["hooks"] = {name: [{"path": hook, "args": ["hook.sh", name, log]}]
                         for name in ("prestart", "createRuntime")}
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    pid = runtime.state(cid)["pid"]
    after_create = [name for name, _ in read_log(log)]
    assert runtime.start(cid).returncode == 0
    runtime.wait_output(cid, lambda t: "\n" in t)
    seen = dict(read_log(log))
    assert seen["prestart"]["pid"] == pid
    assert seen["prestart"]["status"] == "created"
    if version == "1.0.1":
        assert after_create == ["createRuntime"]
    else:
        assert after_create == ["prestart", "createRuntime"]


@pytest.mark.pyrunc_only("the spec 1.0.1 prestart placement; runc runs it in create")
def test_a_failing_prestart_in_start_stops_the_container(runtime, bundle, workdir):
    b = bundle.make("b", "hold=30")
    b.config["ociVersion"] = "1.0.1"
    b.config["hooks"] = {"prestart": [{"path": "/bin/false", "args": ["false"]}]}
    cid = itlib.new_id()
    assert runtime.create(b, cid).returncode == 0, runtime.output(cid, "stderr")
    pid = runtime.state(cid)["pid"]
    proc = runtime.start(cid)
    assert proc.returncode == 1 and "hooks.prestart[0]" in proc.stderr
    assert itlib.wait_gone(pid)
    assert runtime.state(cid)["status"] == "stopped"
    assert runtime.delete(cid).returncode == 0


@pytest.mark.crun_oracle
def test_a_failing_poststart_is_a_warning_and_the_rest_goes_on(runtime, bundle, workdir):
    # runtime.md, lifecycle: "If any poststart hook fails, the runtime MUST log a warning, but
    # the remaining hooks and lifecycle continue as if the hook had succeeded." crun 1.8.1
    # does so; runc 1.1.5 runs poststart in create and fails it (crun's newer tests
    # hooks/test-fail-poststart and test-poststart-fail-deletes-container expect runc's way)
    log = os.path.join(workdir, "after.log")
    hook = write_hook(os.path.join(workdir, "hook.sh"))
    b = bundle.make("b", "hold=30")
    failing = {"path": "/bin/false", "args": ["false"]}
    if runtime.name == "crun":
        # crun 1.8.1's `start` was killed by SIGPIPE once in CI: /bin/false can exit before
        # crun writes the state to its stdin. This hook reads the state first, then fails
        failing = {"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; exit 1"]}
    b.config["hooks"] = {"poststart": [
        failing,
        {"path": hook, "args": ["hook.sh", "second", log],
         "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}]}
    cid = itlib.new_id()
    created = runtime.create(b, cid)
    if runtime.name == "runc":
        assert created.returncode != 0     # runc's way, which the spec's text does not allow
        return
    assert created.returncode == 0, runtime.output(cid, "stderr")
    pid = runtime.state(cid)["pid"]
    proc = runtime.start(cid)
    assert proc.returncode == 0, proc.stderr
    assert [name for name, _ in read_log(log)] == ["second"]
    assert runtime.state(cid)["status"] == "running" and os.path.exists(f"/proc/{pid}")
    if runtime.name == "pyrunc":
        with open(runtime.log) as f:
            assert [l for l in f if "warn" in l and "hooks.poststart[0]" in l]
