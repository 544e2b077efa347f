"""The CLI's own logic: runc's argument order, signal names, one-line errors."""
import json
import signal

import pytest

from pyrunc import cli
from pyrunc.errors import Note, PyruncError


def test_global_flags_come_before_the_command():
    g, cmd, rest = cli.split_argv(["--root", "/x", "--log-format", "json", "--debug",
                                   "create", "--bundle", "b", "id1"])
    assert g == ["--root", "/x", "--log-format", "json", "--debug"]
    assert cmd == "create" and rest == ["--bundle", "b", "id1"]


@pytest.mark.parametrize("text, number", [("TERM", 15), ("SIGTERM", 15), ("15", 15),
                                          ("kill", 9), ("USR1", signal.SIGUSR1)])
def test_signal_names(text, number):
    assert cli.parse_signal(text) == number


@pytest.mark.parametrize("bad", ["NOPE", "0", "999", "SIG", "-1", "TERM;"])
def test_unknown_signal_is_an_error(bad):
    with pytest.raises(PyruncError, match="unknown signal"):
        cli.parse_signal(bad)


def test_errors_are_one_line_and_logged_as_json(tmp_path, capsys):
    log = tmp_path / "log.json"
    status = cli.main(["--root", str(tmp_path / "root"), "--log", str(log),
                       "--log-format", "json", "start", "nosuch"])
    assert status == 1
    err = capsys.readouterr().err
    assert err == "pyrunc: start nosuch: container nosuch does not exist\n"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"] and entry["time"]


def test_delete_force_of_unknown_container_succeeds(tmp_path):
    assert cli.main(["--root", str(tmp_path), "delete", "--force", "ghost"]) == 0
    assert cli.main(["--root", str(tmp_path), "delete", "ghost"]) == 1


def test_spec_writes_a_loadable_config(tmp_path):
    from pyrunc.spec import load_bundle
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 0
    assert load_bundle(str(tmp_path))[1] == []
    assert cli.main(["spec", "--bundle", str(tmp_path)]) == 1  # exists: runc refuses too


def test_features_lists_only_implemented_things(capsys):
    assert cli.main(["features"]) == 0
    f = json.loads(capsys.readouterr().out)
    assert f["ociVersionMax"] == "1.3.0"
    assert "CAP_NET_BIND_SERVICE" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["v1"] is True
    assert f["linux"]["cgroup"]["systemd"] is False  # no systemd driver: not claimed
    assert "SCMP_ACT_NOTIFY" in f["linux"]["seccomp"]["actions"]


def test_delete_force_clears_what_a_killed_create_left(tmp_path):
    # a create killed before it wrote state.json leaves a directory and a fifo only
    (tmp_path / "half").mkdir()
    import os
    os.mkfifo(tmp_path / "half" / "exec.fifo")
    assert cli.main(["--root", str(tmp_path), "delete", "half"]) == 1
    assert (tmp_path / "half").exists()
    assert cli.main(["--root", str(tmp_path), "delete", "--force", "half"]) == 0
    assert not (tmp_path / "half").exists()


def test_update_takes_runcs_flags_over_a_resources_file(tmp_path):
    resources = tmp_path / "r.json"
    resources.write_text('{"memory": {"limit": 1}, "pids": {"limit": 5}}')
    _, cmd, rest = cli.split_argv(["update", "--resources", str(resources), "--memory", "64m",
                                   "--cpu-share", "512", "--cpuset-cpus", "0-1", "c1"])
    args, _ = cli.parse_command(cmd, rest)
    assert cli.update_resources(args) == {"memory": {"limit": 64 << 20}, "pids": {"limit": 5},
                                          "cpu": {"shares": 512, "cpus": "0-1"}}


@pytest.mark.parametrize("argv, message", [
    (["--memory", "lots"], "--memory 'lots': expected an integer"),
    (["--resources", "/nonexistent"], "--resources /nonexistent"),
])
def test_update_rejects_bad_values_in_one_line(argv, message):
    args, _ = cli.parse_command("update", argv + ["c1"])
    with pytest.raises(PyruncError, match=message):
        cli.update_resources(args)


def _run_args(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    opts, positionals, _, _ = cli.COMMANDS["run"]
    return cli.parse(argv, opts, positionals, "pyrunc run")


@pytest.mark.parametrize("argv, here, bundle", [
    (["bundle/"], False, True),             # `pyrunc run bundle/`: never an id (a '/')
    (["bundle/"], True, True),
    (["bundle"], False, True),              # runc would find no ./config.json: a bundle
    (["bundle"], True, False),              # runc's meaning: ./config.json, id "bundle"
    (["-b", "bundle", "bundle"], False, False),  # runc's `run -b DIR ID`
    (["other"], False, False),              # no ./other/config.json: an id (runc's error)
])
def test_run_takes_a_bundle_directory_where_runc_would_take_no_id(tmp_path, monkeypatch,
                                                                  argv, here, bundle):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "config.json").write_text("{}")
    if here:
        (tmp_path / "config.json").write_text("{}")
    args = _run_args(tmp_path, monkeypatch, argv)
    assert cli.bundle_argument(args) is bundle


@pytest.mark.parametrize("argv, message", [
    (["nosuch/"], "nor is it a bundle directory"),
    ([".."], "nor is it a bundle directory"),
    (["-b", "bundle", "bundle/"], "-b gives the bundle"),
])
def test_run_with_a_path_that_is_no_bundle_says_why(tmp_path, monkeypatch, argv, message):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "config.json").write_text("{}")
    args = _run_args(tmp_path, monkeypatch, argv)
    with pytest.raises(PyruncError, match=message):
        cli.bundle_argument(args)


def test_a_generated_id_is_valid_and_new(tmp_path):
    from pyrunc.container.state import check_id
    odd = tmp_path / "my bundle:1"
    odd.mkdir()
    first, second = cli.generated_id(str(odd) + "/"), cli.generated_id(str(odd))
    assert check_id(first).startswith("mybundle1-") and first != second
    assert cli.generated_id("/").startswith("bundle-")


def test_a_note_goes_to_the_log_file_or_debug_never_plain_stderr(tmp_path, capsys):
    note = Note("process.capabilities.ambient[0]: CAP_KILL is not in both permitted and "
                "inheritable")
    cli.Log().warning(note)
    assert capsys.readouterr().err == ""
    cli.Log(debug=True).warning(note)
    assert capsys.readouterr().err == f"pyrunc: info: {note}\n"
    cli.Log().warning("linux.resources.rdma: not supported, ignored")  # needs the user
    assert capsys.readouterr().err.startswith("pyrunc: warning: linux.resources.rdma")
    path = tmp_path / "log.json"
    log = cli.Log(str(path), fmt="json")
    log.warning(note)
    log.file.close()
    entry = json.loads(path.read_text())
    assert entry["level"] == "info" and entry["msg"] == note
    assert capsys.readouterr().err == ""
