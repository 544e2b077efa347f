"""The spec model: types, JSON paths in errors, versions, unknown fields, cross-field checks."""
import copy
import json

import pytest

from pyrunc.errors import PyruncError
from pyrunc.spec import load_bundle, load_config, parse_version
from pyrunc.spec.defaults import default_spec


def load(config, strict=False):
    return load_config(config, strict)


def error_of(config, strict=False):
    with pytest.raises(PyruncError) as e:
        load(config, strict)
    return e.value


def test_default_spec_loads_with_spec_names():
    config, warnings = load(default_spec())
    assert warnings == []
    assert config.process.noNewPrivileges is True
    assert config.linux.maskedPaths[0] == "/proc/acpi"
    assert config.mounts[1].options == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert config.mounts[3]._path == "mounts[3]"
    # absent differs from empty: no ambient set in the default
    assert config.process.capabilities.ambient is None


@pytest.mark.parametrize("mutate, path, text", [
    (lambda c: c["mounts"][3].update(options=["nosuid", 5]), "mounts[3].options[1]",
     "expected a string, got an integer"),
    (lambda c: c["process"].update(noNewPrivileges="yes"), "process.noNewPrivileges",
     "expected a boolean"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[5].type",
     "'bogus' is not one of"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_FOO", "hard": 1, "soft": 1}),
     "process.rlimits[1].type", "unknown rlimit"),
    (lambda c: c["process"].update(cwd="relative"), "process.cwd", "not an absolute path"),
    (lambda c: c["process"]["user"].update(uid=-1), "process.user.uid", "below the minimum"),
    (lambda c: c.pop("root"), "root", "required on Linux"),
    (lambda c: c.update(ociVersion="banana"), "ociVersion", "is not a version"),
    (lambda c: c.update(ociVersion="0.9.0"), "ociVersion", "not supported"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[5].type",
     "listed twice"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "linux.uidMappings", "need a user namespace"),
    (lambda c: c["linux"]["namespaces"].pop(3), "hostname", "uts namespace"),
    (lambda c: c["mounts"][0].pop("destination"), "mounts[0].destination", "required"),
])
def test_errors_name_the_json_path(mutate, path, text):
    config = default_spec()
    mutate(config)
    err = error_of(config)
    assert err.path == path
    assert text in err.message
    assert err.step == "load"


def test_overlapping_mappings_are_refused():
    config = default_spec(rootless=True)
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10},
                                      {"containerID": 5, "hostID": 5000, "size": 10}]
    err = error_of(config)
    assert err.path == "linux.uidMappings[1]" and "overlaps" in err.message


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0"])
def test_every_release_from_1_0_to_1_3_is_accepted(version):
    config = default_spec()
    config["ociVersion"] = version
    assert load(config)[1] == []


def test_newer_version_warns_and_strict_refuses():
    config = default_spec()
    config["ociVersion"] = "1.4.0"
    assert "newer" in load(config)[1][0]
    assert error_of(config, strict=True).path == "ociVersion"


def test_unknown_field_warns_and_strict_refuses():
    config = default_spec()
    config["process"]["colour"] = "blue"
    assert load(config)[1] == ["process.colour: unknown field, ignored"]
    assert error_of(config, strict=True).path == "process.colour"


def test_parse_version():
    assert parse_version("1.0.2-dev") == (1, 0, 2)
    assert parse_version("1.2") is None


def test_bundle_errors_are_one_clear_line(tmp_path):
    with pytest.raises(PyruncError, match="no such directory"):
        load_bundle(str(tmp_path / "missing"))
    with pytest.raises(PyruncError, match="config.json: no such file"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PyruncError, match="not valid JSON"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(copy.deepcopy(default_spec())))
    assert load_bundle(str(tmp_path))[0].root.path == "rootfs"


@pytest.mark.parametrize("key, ok", [("net.ipv4.ip_forward", True), ("kernel.shmmax", True),
                                     ("fs.mqueue.msg_max", True), ("kernel.pid_max", False),
                                     ("vm.swappiness", False)])
def test_only_namespaced_sysctls_are_allowed(key, ok):
    config = default_spec()
    config["linux"]["sysctl"] = {key: "1"}
    if ok:
        load(config)
    else:
        assert error_of(config).path == f"linux.sysctl.{key}"


def test_uts_sysctls_yield_to_hostname_and_domainname():
    config = default_spec()
    config["linux"]["sysctl"] = {"kernel.hostname": "h"}
    assert "hostname" in error_of(config).message
    config["linux"]["sysctl"] = {"kernel.domainname": "d"}
    load(config)
    config["domainname"] = "other"
    err = error_of(config)
    assert err.path == "linux.sysctl.kernel.domainname" and "domainname" in err.message
    config["domainname"] = "d"   # the same name twice contradicts nothing (crun runs it)
    load(config)


def test_sysctl_needs_its_namespace_in_the_config():
    config = default_spec()
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "network"]
    config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    assert "network namespace" in error_of(config).message


def test_rootless_maps_must_stay_in_the_callers_subordinate_ranges(tmp_path):
    from pyrunc.linux.userns import check_subordinate
    (tmp_path / "subuid").write_text("alice:200000:65536\nbob:300000:65536\n")
    (tmp_path / "subgid").write_text("alice:200000:65536\n")
    config = default_spec(rootless=True)
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1},
                                      {"containerID": 1, "hostID": 200000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1},
                                      {"containerID": 1, "hostID": 200000, "size": 65536}]
    linux = load(config)[0].linux
    paths = dict(subuid=str(tmp_path / "subuid"), subgid=str(tmp_path / "subgid"))
    check_subordinate(linux, 1000, 1000, "alice", **paths)    # own id + alice's ranges
    check_subordinate(linux, 0, 0, "bob", **paths)            # root may map anything
    with pytest.raises(PyruncError) as e:
        check_subordinate(linux, 1000, 1000, "bob", **paths)  # bob's range is elsewhere
    assert e.value.path == "linux.uidMappings[1]" and "not yours" in e.value.message
