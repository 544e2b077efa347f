"""The id-mapping logic of rootless mode (linux/userns.py), and its default state root."""
import os

import pytest

from pyrunc.cli import default_root
from pyrunc.errors import PyruncError
from pyrunc.linux import userns
from pyrunc.spec import load_config
from pyrunc.spec.defaults import default_spec


class M:
    def __init__(self, c, h, n):
        self.containerID, self.hostID, self.size = c, h, n


def test_default_maps_without_a_subordinate_range():
    # crun's: the caller's id as root without root; root's identity map up to process.user
    assert userns.default_mappings(0, 1000, []) == [(0, 1000, 1)]
    assert userns.default_mappings(1000, 1000, []) == [(0, 1000, 1)]
    assert userns.default_mappings(5, 0, []) == [(0, 0, 6)]


def test_default_maps_around_the_callers_id_from_its_range():
    ranges = [(200000, 265536), (900000, 910000)]   # only the first is used, as crun
    assert userns.default_mappings(0, 1000, ranges) == [(0, 1000, 1), (1, 200000, 65536)]
    assert userns.default_mappings(1000, 1000, ranges) == [
        (0, 200000, 1000), (1000, 1000, 1), (1001, 201000, 64536)]
    # a process.user above the range: the range is used up below it
    assert userns.default_mappings(70000, 1000, ranges) == [(0, 200000, 65536),
                                                            (70000, 1000, 1)]


def test_only_the_callers_own_id_is_written_directly():
    assert userns.only_own([M(0, 1000, 1)], 1000)
    assert not userns.only_own([M(0, 1000, 2)], 1000)          # a range: newuidmap
    assert not userns.only_own([M(0, 1001, 1)], 1000)
    assert not userns.only_own([M(0, 1000, 1), M(1, 200000, 10)], 1000)


def _fake_helper(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_other_maps_go_through_newuidmap_and_newgidmap(tmp_path, monkeypatch):
    log = tmp_path / "calls"
    for name in ("newuidmap", "newgidmap"):
        _fake_helper(tmp_path, name, f'echo "${{0##*/}} $*" >> {log}')
    monkeypatch.setenv("PATH", str(tmp_path))
    maps = [M(0, 1000, 1), M(1, 200000, 65536)]
    userns.write_maps(4242, maps, maps, euid=1000, egid=1000)
    assert log.read_text().splitlines() == ["newuidmap 4242 0 1000 1 1 200000 65536",
                                            "newgidmap 4242 0 1000 1 1 200000 65536"]


def test_a_failing_helper_is_one_line_naming_the_mappings(tmp_path, monkeypatch):
    _fake_helper(tmp_path, "newuidmap", 'echo "newuidmap: uid range [1-2) -> [5-6) not '
                 'allowed" >&2; exit 1')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PyruncError) as e:
        userns.write_maps(4242, [M(1, 5, 1)], [M(1, 5, 1)], euid=1000, egid=1000)
    assert e.value.path == "linux.uidMappings" and e.value.step == "uid_gid_maps"
    assert "newuidmap failed (exit 1): newuidmap: uid range" in e.value.message
    assert "\n" not in e.value.message


def test_a_missing_helper_says_which_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PyruncError) as e:
        userns.write_maps(4242, [M(0, 1000, 2)], [M(0, 1000, 1)], euid=1000, egid=1000)
    assert "newuidmap" in e.value.message and "uidmap" in e.value.message


def test_subordinate_ranges_by_name_or_uid(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("alice:200000:65536\n1000:400000:10\nbob:300000:65536\nbad line\n")
    assert userns.subordinate_ranges(str(f), "alice", 1000) == [(200000, 265536),
                                                                (400000, 400010)]
    assert userns.subordinate_ranges(str(tmp_path / "none"), "alice", 1000) == []


def test_state_root_without_root_is_under_xdg_runtime_dir():
    env = {b"XDG_RUNTIME_DIR": b"/run/user/1000/"}
    assert default_root(env, euid=1000) == "/run/user/1000/pyrunc"
    assert default_root(env, euid=0, initial_userns=True) == "/run/pyrunc"          # runc: /run is root's
    assert default_root({}, euid=1000) == "/run/pyrunc"
    assert default_root({**env, b"PYRUNC_ROOT": b"/x"}, euid=1000) == "/x"


def test_a_user_namespace_without_maps_loads():
    # issue 11.7: create fills crun's default in; loading no longer refuses it
    config = default_spec(rootless=True)
    del config["linux"]["uidMappings"], config["linux"]["gidMappings"]
    model, _ = load_config(config)
    assert model.linux.uidMappings is None


def test_spec_rootless_is_runcs_shape():
    c = default_spec(rootless=True)
    types = [n["type"] for n in c["linux"]["namespaces"]]
    assert "network" not in types and types[-1] == "user"
    assert "resources" not in c["linux"]
    sys_mount = [m for m in c["mounts"] if m["destination"] == "/sys"][0]
    assert sys_mount["type"] == "none" and "rbind" in sys_mount["options"]
    assert not [o for m in c["mounts"] for o in m.get("options", ())
                if o.startswith(("uid=", "gid="))]
    assert c["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(),
                                          "size": 1}]


def test_uid_0_of_another_user_namespace_is_rootless_unless_user_is_root():
    # rootless podman runs the runtime as uid 0 of its own user namespace (runc's rule)
    env = {b"XDG_RUNTIME_DIR": b"/run/user/1000", b"USER": b"alice"}
    assert default_root(env, euid=0, initial_userns=False) == "/run/user/1000/pyrunc"
    assert default_root(env, euid=0, initial_userns=True) == "/run/pyrunc"
    assert default_root({**env, b"USER": b"root"}, euid=0, initial_userns=False) == \
        "/run/pyrunc"
