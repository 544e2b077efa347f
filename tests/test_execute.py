"""exec's process built from the container's own and the command's flags (no privilege)."""
from types import SimpleNamespace

from pyrunc.container.execute import merged_env, process_dict


def flags(**kw):
    base = dict(process=None, args=["/bin/true"], tty=False, env=[], cwd=None, user=None,
                additional_gids=None, cap=[], no_new_privs=False)
    return SimpleNamespace(**{**base, **kw})


def test_env_given_again_replaces_the_configs():
    # crun's test exec/exec-add-environment_variable: `exec --env PATH=/usr/bin` must show
    # /usr/bin, not the config's PATH=/bin (which execve's first entry would win with)
    proc = process_dict(flags(env=["PATH=/usr/bin", "FOO=BAR", "HOME=/tmp"]),
                        {"env": ["PATH=/bin", "TERM=xterm"]})
    assert sorted(proc["env"]) == ["FOO=BAR", "HOME=/tmp", "PATH=/usr/bin", "TERM=xterm"]


def test_merged_env_keeps_order_and_the_last_value():
    assert merged_env(["A=1", "B=2"], ["C=3", "A=4", "A=5"]) == ["B=2", "C=3", "A=5"]
    assert merged_env(["A=1", "A=2"], []) == ["A=2"]
    assert merged_env(["X=a=b"], ["X=c"]) == ["X=c"]
