"""The table-driven parser on the container path: the forms runc's clients send."""
import pytest

from pyrunc import cli
from pyrunc.argv import Arg, Opt, UsageError, parse

OPTS = [Opt("-b --bundle", "str", default="."), Opt("--pid-file", "str"), Opt("-d --detach"),
        Opt("--preserve-fds", "int", default=0), Opt("-e --env", "list")]
POS = [Arg("id")]


@pytest.mark.parametrize("argv", [
    ["--bundle", "/b", "c1"], ["--bundle=/b", "c1"], ["-b", "/b", "c1"], ["-bundle", "/b", "c1"],
    ["c1", "--bundle", "/b"],
])
def test_value_forms(argv):
    a = parse(argv, OPTS, POS, "t")
    assert (a.bundle, a.id) == ("/b", "c1")


def test_defaults_flags_ints_and_lists():
    a = parse(["-d", "--preserve-fds", "2", "-e", "A=1", "--env=B=2", "x"], OPTS, POS, "t")
    assert (a.detach, a.preserve_fds, a.env, a.bundle, a.pid_file) == \
        (True, 2, ["A=1", "B=2"], ".", None)
    assert parse(["--detach=false", "x"], OPTS, POS, "t").detach is False


@pytest.mark.parametrize("argv, text", [
    (["--nope", "x"], "unknown option"), (["--pid-file"], "needs a value"),
    (["--preserve-fds", "two", "x"], "not a number"), ([], "missing ID"),
    (["a", "b"], "unexpected argument"), (["--detach=maybe", "x"], "true/false"),
])
def test_usage_errors(argv, text):
    with pytest.raises(UsageError, match=text):
        parse(argv, OPTS, POS, "t")


def test_exec_command_keeps_its_own_flags():
    options, positionals, _, _ = cli.COMMANDS["exec"]
    a = parse(["-e", "X=1", "c1", "ls", "-l", "--all"], options, positionals, "t")
    assert (a.id, a.args, a.env) == ("c1", ["ls", "-l", "--all"], ["X=1"])
    a = parse(["c1", "--", "-weird"], options, positionals, "t")
    assert a.args == ["-weird"]


def test_podman_and_containerd_command_lines_parse():
    g, cmd, rest = cli.split_argv(["--log-format=json", "--log", "/l", "--systemd-cgroup",
                                   "create", "--bundle", "/b", "--pid-file", "/p",
                                   "--console-socket", "/s", "id"])
    assert cmd == "create"
    gl = parse(g, cli.GLOBAL, [], "pyrunc")
    assert (gl.log_format, gl.log, gl.systemd_cgroup) == ("json", "/l", True)
    options, positionals, _, _ = cli.COMMANDS[cmd]
    a = parse(rest, options, positionals, "t")
    assert (a.bundle, a.pid_file, a.console_socket, a.id) == ("/b", "/p", "/s", "id")
