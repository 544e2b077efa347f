"""pyrunc/names.py and spec/pathparts.py: config values that become part of a path."""
import copy

import pytest

from pyrunc import names
from pyrunc.errors import PyruncError
from pyrunc.spec import load_config
from pyrunc.spec.defaults import default_spec


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "/", "../x", "a\0b", None, 5])
def test_a_name_is_one_path_component(bad):
    with pytest.raises(PyruncError) as e:
        names.check_name(bad, "x.y")
    assert e.value.path == "x.y"


@pytest.mark.parametrize("good", ["io.max", "memory.high", "a..b", "...", "-"])
def test_names_that_are_names(good):
    assert names.check_name(good, "x") == good


@pytest.mark.parametrize("size", ["64KB", "2MB", "32MB", "1GB", "16GB"])
def test_hugepage_sizes_in_the_kernels_spelling(size):
    assert names.check_hugepage_size(size, "p") == size


@pytest.mark.parametrize("size", ["", "MB", "2M", "2mb", "2MiB", "02MB", "-2MB", "2.5MB",
                                  "2MB/../x", "../2MB", "2MB\0", "²MB", 2, None])
def test_hugepage_sizes_that_are_not(size):
    with pytest.raises(PyruncError) as e:
        names.check_hugepage_size(size, "linux.resources.hugepageLimits[0].pageSize")
    assert e.value.path == "linux.resources.hugepageLimits[0].pageSize"


@pytest.mark.parametrize("path, clean", [("/dev/x", "/dev/x"), ("/dev/net/tun", "/dev/net/tun"),
                                         ("/x", "/x"), ("/dev/x/", "/dev/x"),
                                         ("//dev/./x", "/dev/x")])
def test_device_node_paths(path, clean):
    assert names.check_node_path(path, "p") == clean


@pytest.mark.parametrize("path", ["dev/x", "/", "/./", "/dev/..", "/dev/../etc/x",
                                  "/dev/x\0"])
def test_device_node_paths_that_are_not(path):
    with pytest.raises(PyruncError):
        names.check_node_path(path, "p")


@pytest.mark.parametrize("key", ["net.ipv4.ip_forward", "kernel.shmmax", "fs.mqueue.msg_max"])
def test_sysctl_names(key):
    assert names.check_sysctl_key(key, "p") == key


@pytest.mark.parametrize("key", ["", "net..x", "net.", ".net", "net/../kernel.core_pattern",
                                 "net.ipv4.a/b", "net.x\0"])
def test_sysctl_names_that_are_not(key):
    with pytest.raises(PyruncError):
        names.check_sysctl_key(key, "p")


def _with(edit):
    config = copy.deepcopy(default_spec())
    edit(config)
    return config


@pytest.mark.parametrize("edit, path", [
    (lambda c: c["linux"].update(devices=[{"path": "/dev/..", "type": "c", "major": 1,
                                           "minor": 3}]), "linux.devices[0].path"),
    (lambda c: c["linux"].update(sysctl={"net.ipv4/../../x": "1"}),
     "linux.sysctl.net.ipv4/../../x"),
    (lambda c: c["mounts"][0].update(destination="/pr\0oc"), "mounts[0].destination"),
    (lambda c: c["linux"].update(maskedPaths=["/proc/\0"]), "linux.maskedPaths[0]"),
    (lambda c: c["linux"].update(cgroupsPath="/a\0"), "linux.cgroupsPath"),
    (lambda c: c["process"].update(cwd="/\0"), "process.cwd"),
    (lambda c: c.update(hooks={"poststop": [{"path": "/bin/\0true"}]}),
     "hooks.poststop[0].path"),
    (lambda c: c["process"].update(args=["/bin/s\0h"]), "process.args[0]"),
    (lambda c: c["linux"]["namespaces"][0].update(path="/proc/1/ns/\0"),
     "linux.namespaces[0].path"),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                          "listenerPath": "/x\0"}),
     "linux.seccomp.listenerPath"),
])
def test_a_config_fails_at_load_naming_the_json_path(edit, path):
    with pytest.raises(PyruncError) as e:
        load_config(_with(edit))
    assert e.value.path == path and e.value.step == "load"
