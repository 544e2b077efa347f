"""Bad input of every kind the fuzzer (integration/test_fuzz.py) met: one line naming the JSON
path or the position, never a traceback. Each case is one cause, fixed in its layer."""
import json

import pytest

from pyrunc import cli, fastjson
from pyrunc.errors import PyruncError
from pyrunc.spec import MAX_CONFIG_SIZE, load_config, read_config
from pyrunc.spec.defaults import default_spec
from pyrunc.spec.model import HOOK_TIMEOUT_MAX


def error_of(mutate):
    config = default_spec()
    mutate(config)
    with pytest.raises(PyruncError) as e:
        load_config(config)
    return e.value


def _set(path, value):
    def mutate(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _rlimits(config):
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": None}]


@pytest.mark.parametrize("mutate, path", [
    (_set(["ociVersion"], None), "ociVersion"),
    (_set(["process", "cwd"], None), "process.cwd"),
    (_set(["root", "path"], None), "root.path"),
    (_set(["mounts", 0, "destination"], None), "mounts[0].destination"),
    (_set(["linux", "namespaces", 0, "type"], None), "linux.namespaces[0].type"),
    (_rlimits, "process.rlimits[0].soft"),
    (_set(["process", "user", "uid"], None), "process.user.uid"),
])
def test_null_in_a_required_field_is_refused_by_name(mutate, path):
    e = error_of(mutate)
    assert (e.path, e.message, e.step) == (path, "required field is null", "load")


@pytest.mark.parametrize("resources, path, text", [
    ([], "linux.resources", "expected an object, got a list"),
    ("x", "linux.resources", "expected an object, got a string"),
    ({"devices": {"allow": False}}, "linux.resources.devices", "expected a list"),
    ({"devices": [{"allow": "no"}]}, "linux.resources.devices[0].allow", "expected a boolean"),
    ({"devices": [{"access": "rwm"}]}, "linux.resources.devices[0].allow", "required field"),
    ({"devices": [None]}, "linux.resources.devices[0]", "expected an object, got null"),
    ({"memory": {"limit": "64m"}}, "linux.resources.memory.limit", "expected an integer"),
    ({"memory": {"limit": 1 << 63}}, "linux.resources.memory.limit", "above the maximum"),
    ({"memory": {"swappiness": -1}}, "linux.resources.memory.swappiness", "below the minimum"),
    ({"cpu": {"shares": 1.5}}, "linux.resources.cpu.shares", "expected an integer"),
    ({"cpu": {"cpus": 3}}, "linux.resources.cpu.cpus", "expected a string"),
    ({"pids": []}, "linux.resources.pids", "expected an object"),
    ({"blockIO": {"weight": 70000}}, "linux.resources.blockIO.weight", "above the maximum"),
    ({"hugepageLimits": [{"pageSize": "2MB"}]}, "linux.resources.hugepageLimits[0].limit",
     "required field is missing"),
    ({"unified": {"memory.max": 5}}, "linux.resources.unified.memory.max",
     "expected a string"),
    ({"rdma": {"mlx": {"hcaHandles": "x"}}}, "linux.resources.rdma.mlx.hcaHandles",
     "expected an integer"),
])
def test_linux_resources_is_typed(resources, path, text):
    e = error_of(_set(["linux", "resources"], resources))
    assert e.path == path and text in e.message


def test_linux_resources_stays_a_dict_for_the_cgroups_module():
    config = default_spec()
    config["linux"]["resources"] = {"memory": {"limit": 1 << 20}, "pids": {"limit": 5}}
    model, _ = load_config(config)
    assert model.linux.resources == {"memory": {"limit": 1 << 20}, "pids": {"limit": 5}}


@pytest.mark.parametrize("mutate, path, text", [
    (_set(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read", "\ud800"], "action": "SCMP_ACT_ERRNO"}]}),
     "linux.seccomp.syscalls[0].names[1]", "not valid Unicode (a lone surrogate)"),
    (_set(["process", "env"], ["A=\udfff"]), "process.env[0]", "lone surrogate"),
    (_set(["annotations"], {"\ud800": "x"}), "annotations.'\\ud800'", "lone surrogate"),
    (_set(["process", "env"], ["A=b\x00c"]), "process.env[0]", "contains a NUL byte"),
    (_set(["hooks"], {"prestart": [{"path": "/bin/true", "timeout": 30 * 86400}]}),
     "hooks.prestart[0].timeout", f"above the maximum {HOOK_TIMEOUT_MAX}"),
    (_set(["hooks"], {"poststop": [{"path": "/bin/true", "env": ["PATH=/bin", "NOEQUALS"]}]}),
     "hooks.poststop[0].env[1]", "'NOEQUALS' is not KEY=VALUE"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": 1 << 64, "soft": 1}]),
     "process.rlimits[0].hard", "above the maximum"),
    (_set(["linux", "intelRdt"], {"closID": 7}), "linux.intelRdt.closID", "expected a string"),
])
def test_values_no_system_call_could_take(mutate, path, text):
    e = error_of(mutate)
    assert e.path == path and text in e.message


def test_a_month_long_hook_timeout_is_refused_and_a_day_is_not():
    config = default_spec()
    config["hooks"] = {"prestart": [{"path": "/bin/true", "timeout": 86400}]}
    load_config(config)
    assert HOOK_TIMEOUT_MAX * 1000 <= 0x7FFFFFFF  # what poll(2) takes


@pytest.mark.parametrize("text, message", [
    ('{"ociVersion": "1.0.2",}', "Expecting property name enclosed in double quotes at "
                                 "line 1 column 24"),
    ('{ociVersion: "1.0.2"}', "Expecting property name enclosed in double quotes at "
                              "line 1 column 2"),
    ('{\n  "a": [1,\n  ]\n}', "expecting a value at line 3 column 3"),
    ("[" * 3000 + "]" * 3000, "nested too deeply (over 500 levels at line 1 column 501)"),
    ('{"a": 1} x', "extra data at line 1 column 10"),
    ('{"a": "b}', "Unterminated string starting at line 1 column 7"),
    ("", "expecting a value at line 1 column 1"),
])
def test_malformed_json_is_one_error_with_a_position(text, message):
    for data in (text, text.encode()):
        with pytest.raises(ValueError) as e:
            fastjson.loads(data)
        assert str(e.value) == message
        assert type(e.value) is ValueError


def test_invalid_utf8_names_the_byte():
    with pytest.raises(ValueError, match=r"not UTF-8: byte 7 \(0xff\)"):
        fastjson.loads(b'{"a": "\xff"}')


def test_deep_but_bounded_nesting_still_parses():
    value, depth = fastjson.loads("[" * 200 + "]" * 200), 1
    while value:
        value, depth = value[0], depth + 1
    assert depth == 200


def test_a_config_over_16_mib_is_refused_before_parsing(tmp_path):
    (tmp_path / "config.json").write_bytes(b" " * MAX_CONFIG_SIZE + b"{}")
    with pytest.raises(PyruncError, match="larger than 16 MiB"):
        read_config(str(tmp_path))
    (tmp_path / "config.json").write_bytes(b" " * (MAX_CONFIG_SIZE - 2) + b"{}")
    assert read_config(str(tmp_path)) == {}


def test_malformed_config_json_is_one_line_from_create(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.2",\n}')
    status = cli.main(["--root", str(tmp_path / "root"), "create", "-b", str(tmp_path), "c1"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == (f"pyrunc: create c1: {tmp_path}/config.json: not valid JSON: Expecting "
                   "property name enclosed in double quotes at line 2 column 1 [step: load]\n")


@pytest.mark.parametrize("resources, message", [
    ({"memory": {"limit": "lots"}}, "linux.resources.memory.limit: expected an integer"),
    ({"pids": 5}, "linux.resources.pids: expected an object, got an integer"),
    ({"cpu": {"cpus": ["0"]}}, "linux.resources.cpu.cpus: expected a string, got a list"),
])
def test_update_resources_are_checked_like_the_config(tmp_path, resources, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(resources))
    args, _ = cli.parse_command("update", ["--resources", str(path), "c1"])
    with pytest.raises(PyruncError) as e:
        cli.update_resources(args)
    assert str(e.value).startswith(message)


def test_log_in_a_missing_directory_is_one_line(tmp_path, capsys):
    log = tmp_path / "missing" / "log.json"
    status = cli.main(["--root", str(tmp_path), "--log", str(log), "list"])
    assert status == 1
    assert capsys.readouterr().err == (f"pyrunc: list: --log {log}: No such file or "
                                       "directory\n")


def test_an_unexpected_exception_is_one_internal_error_line(tmp_path, capsys, monkeypatch):
    def broken(args, g, log):
        return {}["missing"]
    options, positionals, _, summary = cli.COMMANDS["state"]
    monkeypatch.setitem(cli.COMMANDS, "state", (options, positionals, broken, summary))
    assert cli.main(["--root", str(tmp_path), "state", "c1"]) == 1
    assert capsys.readouterr().err == ("pyrunc: state c1: internal error: KeyError: 'missing' "
                                       "(--debug shows where)\n")
    from pyrunc import timing
    monkeypatch.setattr(timing, "report", None)  # --debug sets it: restored after the test
    with pytest.raises(KeyError):  # --debug: the traceback, for whoever fixes it
        cli.main(["--root", str(tmp_path), "--debug", "state", "c1"])


@pytest.mark.parametrize("user", [None, "absent"])
def test_a_config_without_process_user_runs_as_root_as_in_runc(user):
    config = default_spec()
    if user is None:
        config["process"]["user"] = None
    else:
        del config["process"]["user"]
    model, _ = load_config(config)
    assert (model.process.user.uid, model.process.user.gid, model.process.user.umask) == (
        0, 0, None)


def test_an_error_is_one_line_even_when_the_config_holds_newlines(tmp_path, capsys):
    config = default_spec()
    config["root"]["path"] = "no\nsuch\trootfs"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert cli.main(["--root", str(tmp_path / "root"), "create", "-b", str(tmp_path), "c1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no\\nsuch\\trootfs" in err, err


def test_an_exec_process_without_user_runs_as_root_too():
    from pyrunc.spec.model import load_process
    process, _ = load_process({"args": ["sh"], "cwd": "/", "user": None})
    assert (process.user.uid, process.user.gid) == (0, 0)


@pytest.mark.parametrize("text, imported", [
    (json.dumps(default_spec()), "[]"),
    ('{"ociVersion": "1.0.2",}', "['enum', 'json', 're']"),  # only bad input pays
])
def test_a_valid_config_loads_without_json_or_re(tmp_path, text, imported):
    import os
    import subprocess
    import sys
    (tmp_path / "config.json").write_text(text)
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = (f"import sys; sys.path[:0] = {[top] + site!r}\n"
            "from pyrunc.spec import load_config, read_config\n"
            "try:\n"
            f"    load_config(read_config({str(tmp_path)!r}))\n"
            "except Exception:\n"
            "    pass\n"
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == imported


def test_a_hostname_without_any_linux_section_is_refused(tmp_path):
    """No `linux`: no uts namespace of the container's, so the name would be the host's
    (found by the fuzzer once a config without a mount namespace could run)."""
    config = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "runc",
              "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}}
    with pytest.raises(PyruncError, match="hostname: setting the hostname needs a new uts"):
        load_config(config)
