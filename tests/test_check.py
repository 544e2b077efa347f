import argparse
import copy
import json
import os

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import seccomp as seccomp_module
from pyrunc.spec.defaults import default_spec
from pyrunc.spec.hardened import hardened_spec
from pyrunc.teach import check

CLEAN = hardened_spec(default_spec())

ARTICLE_CAPS = {"effective": ["CAP_NET_BIND_SERVICE"], "bounding": ["CAP_NET_BIND_SERVICE"],
                "inheritable": [], "permitted": ["CAP_NET_BIND_SERVICE"], "ambient": []}


def run_check(tmp_path, config, *flags):
    """(exit status, parsed JSON report) of `pyrunc check` on a bundle holding config."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    parser = argparse.ArgumentParser()
    check.configure(parser)
    args = parser.parse_args([str(tmp_path), "--format", "json", *flags])
    return args, check.run(args)


def findings(tmp_path, config, capsys, *flags):
    _, status = run_check(tmp_path, config, *flags)
    report = json.loads(capsys.readouterr().out)
    return status, {(f["level"], f["path"]) for f in report["findings"]}, report


def changed(edit):
    config = copy.deepcopy(CLEAN)
    edit(config)
    return config


def test_the_hardened_config_has_only_the_article_capability_and_no_limits_at_low(
        tmp_path, capsys):
    status, found, _ = findings(tmp_path, CLEAN, capsys, "--fail-on", "low")
    # uid 0, mapped to an unprivileged host uid; hardened_spec sets no resource limits
    assert found == {("low", "process.capabilities.bounding[0]"), ("low", "process.user.uid"),
                     ("low", "linux.resources.memory.limit"), ("low", "linux.resources.cpu"),
                     ("low", "linux.resources.pids.limit")}
    assert status == 1  # a low finding, with --fail-on low


def test_the_articles_capability_snippet_is_low(tmp_path, capsys):
    config = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
              "process": {"args": ["sh"], "cwd": "/", "capabilities": ARTICLE_CAPS,
                          "noNewPrivileges": True}}
    _, status = run_check(tmp_path, config)
    report = json.loads(capsys.readouterr().out)
    caps = [f for f in report["findings"] if f["rule"] == "capabilities"]
    assert len(caps) == 1
    assert caps[0]["level"] == "low"
    assert caps[0]["path"] == "process.capabilities.bounding[0]"
    assert caps[0]["message"].startswith("CAP_NET_BIND_SERVICE (low risk, in bounding, "
                                         "effective, permitted)")


def _drop_user_namespace(c):
    c["linux"]["namespaces"] = [ns for ns in c["linux"]["namespaces"] if ns["type"] != "user"]
    del c["linux"]["uidMappings"], c["linux"]["gidMappings"]


def _join(t, path):
    def edit(c):
        for ns in c["linux"]["namespaces"]:
            if ns["type"] == t:
                ns["path"] = path
    return edit


def _index(t):
    return [ns["type"] for ns in CLEAN["linux"]["namespaces"]].index(t)


BIND = {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]}
SCRATCH = {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
N = len(CLEAN["mounts"])

RULES = [
    ("sys_admin", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
     ("extreme", "process.capabilities.bounding[1]")),
    ("net_admin", lambda c: c["process"]["capabilities"]["permitted"].insert(0, "CAP_NET_ADMIN"),
     ("high", "process.capabilities.permitted[0]")),
    ("setuid", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SETUID"),
     ("medium", "process.capabilities.bounding[1]")),
    ("caps_absent", lambda c: c["process"].pop("capabilities"),
     ("extreme", "process.capabilities")),
    ("caps_refused", lambda c: c["process"]["capabilities"]["effective"].append("CAP_KILL"),
     ("high", "process.capabilities.effective[1]")),
    ("nnp_off", lambda c: c["process"].update(noNewPrivileges=False),
     ("medium", "process.noNewPrivileges")),
    ("no_seccomp", lambda c: c["linux"].pop("seccomp"), ("high", "linux.seccomp")),
    ("allowing_seccomp", lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW"}),
     ("high", "linux.seccomp.defaultAction")),
    ("writable_root", lambda c: c["root"].update(readonly=False), ("medium", "root.readonly")),
    ("bind_mount", lambda c: c["mounts"].append(BIND), ("high", f"mounts[{N}] (/data)")),
    ("tmpfs_nodev", lambda c: c["mounts"].append(SCRATCH), ("medium", f"mounts[{N}] (/scratch)")),
    ("proc_nosuid", lambda c: c["mounts"][0].update(options=[]), ("low", "mounts[0] (/proc)")),
    ("unmasked", lambda c: c["linux"]["maskedPaths"].remove("/proc/kcore"),
     ("medium", "linux.maskedPaths")),
    ("writable_sys", lambda c: c["linux"]["readonlyPaths"].remove("/proc/sysrq-trigger"),
     ("high", "linux.readonlyPaths")),
    ("no_userns", _drop_user_namespace, ("high", "linux.namespaces")),
    ("host_root_mapped", lambda c: c["linux"]["gidMappings"][0].update(hostID=0),
     ("high", "linux.gidMappings[0]")),
    ("no_pidns", lambda c: c["linux"].update(namespaces=[
        ns for ns in c["linux"]["namespaces"] if ns["type"] != "pid"]),
     ("high", "linux.namespaces")),
    ("host_netns", _join("network", "/proc/self/ns/net"),
     ("high", f"linux.namespaces[{_index('network')}].path")),
    ("host_mntns", _join("mount", "/proc/1/ns/mnt"),
     ("extreme", f"linux.namespaces[{_index('mount')}].path")),
    ("joined_netns", _join("network", "/var/run/netns/other"),
     ("low", f"linux.namespaces[{_index('network')}].path")),
]


@pytest.mark.parametrize("edit, expected", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_finds_its_fault(tmp_path, capsys, edit, expected):
    _, clean, _ = findings(tmp_path, CLEAN, capsys)
    assert expected not in clean
    _, found, _ = findings(tmp_path, changed(edit), capsys)
    assert expected in found


def test_findings_come_most_severe_first(tmp_path, capsys):
    config = changed(lambda c: (c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
                                c["root"].update(readonly=False), c["linux"].pop("seccomp")))
    _, _, report = findings(tmp_path, config, capsys)
    levels = [f["level"] for f in report["findings"]]
    assert levels == sorted(levels, key=["extreme", "high", "medium", "low"].index)
    assert levels[0] == "extreme" and levels[-1] == "low"


@pytest.mark.parametrize("fail_on, status", [("low", 1), ("medium", 1), ("high", 0),
                                             ("extreme", 0)])
def test_fail_on_sets_the_exit_status(tmp_path, capsys, fail_on, status):
    config = changed(lambda c: c["root"].update(readonly=False))  # medium + low
    assert findings(tmp_path, config, capsys, "--fail-on", fail_on)[0] == status


def test_default_fail_on_is_high(tmp_path, capsys):
    assert findings(tmp_path, changed(lambda c: c["linux"].pop("seccomp")), capsys)[0] == 1
    assert findings(tmp_path, changed(lambda c: c["root"].update(readonly=False)),
                    capsys)[0] == 0


def test_a_config_that_does_not_load_exits_2(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    parser = argparse.ArgumentParser()
    check.configure(parser)
    assert check.run(parser.parse_args([str(tmp_path)])) == 2
    assert "not valid JSON" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "root": {},
                                                      "process": {"cwd": "/", "args": ["sh"]}}))
    assert check.run(parser.parse_args([str(tmp_path)])) == 2
    assert "root.path: required field is missing" in capsys.readouterr().err


def test_a_policy_that_does_not_load_exits_2(tmp_path, capsys):
    _, status = run_check(tmp_path, CLEAN, "--policy", "no-such-policy")
    assert status == 2


def test_seccomp_analysis_is_merged_when_available(tmp_path, capsys, monkeypatch):
    seen = []

    def analyze(node):
        seen.append(node.defaultAction)
        return [("medium", "linux.seccomp.syscalls[0].names[3]", "shadowed by rule 0")]
    monkeypatch.setattr(seccomp_module, "analyze", analyze, raising=False)
    _, found, report = findings(tmp_path, CLEAN, capsys)
    assert seen == ["SCMP_ACT_ERRNO"]
    assert ("medium", "linux.seccomp.syscalls[0].names[3]") in found
    assert {"level": "medium", "path": "linux.seccomp.syscalls[0].names[3]",
            "message": "shadowed by rule 0", "rule": "seccomp",
            "cis": [{"id": "5.22", "title": "Ensure the default seccomp profile is not "
                                            "Disabled"}]} in report["findings"]


def test_a_seccomp_section_create_would_refuse_is_a_high_finding(tmp_path, capsys,
                                                                 monkeypatch):
    def analyze(node):
        raise PyruncError("errnoRet only applies to SCMP_ACT_ERRNO",
                          path="linux.seccomp.defaultErrnoRet", step="seccomp")
    monkeypatch.setattr(seccomp_module, "analyze", analyze, raising=False)
    _, _, report = findings(tmp_path, CLEAN, capsys)
    assert {"level": "high", "path": "linux.seccomp.defaultErrnoRet", "rule": "seccomp",
            "message": "create fails: errnoRet only applies to SCMP_ACT_ERRNO",
            "cis": check.cis.entries(["5.22"])} \
        in report["findings"]


def test_text_report_groups_by_level_one_line_each(tmp_path, capsys):
    config = changed(lambda c: (c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
                                c["root"].update(readonly=False)))
    (tmp_path / "config.json").write_text(json.dumps(config))
    parser = argparse.ArgumentParser()
    check.configure(parser)
    assert check.run(parser.parse_args([str(tmp_path)])) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path}/config.json: 7 findings (1 extreme, 1 medium, 5 low)"
    assert out.index("EXTREME") < out.index("MEDIUM") < out.index("LOW")
    assert "  process.capabilities.bounding[1]: CAP_SYS_ADMIN (extreme risk, in bounding): " \
           "mount, namespaces, bpf, and much more (the article: extreme) [CIS 5.4]" in out
    assert "  root.readonly: the root filesystem is writable: a compromised process can " \
           "replace the image's programs [CIS 5.13]" in out


def test_policy_verdict_is_shown(tmp_path, capsys):
    config = changed(lambda c: (c["process"].update(noNewPrivileges=False),
                                _drop_user_namespace(c)))
    _, _, report = findings(tmp_path, config, capsys, "--policy", "baseline")
    assert report["policy"]["name"] == "baseline"
    assert report["policy"]["tightened"] == ["tightened: process.noNewPrivileges set to true"]
    assert [r.split(":")[0] for r in report["policy"]["refused"]] == ["linux.namespaces"]


def test_a_listed_device_the_rules_deny_is_reported(tmp_path, capsys):
    def edit(c):
        c["linux"]["devices"] = [
            {"path": "/dev/tty1", "type": "c", "major": 4, "minor": 1},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
            {"path": "/dev/null2", "type": "c", "major": 1, "minor": 3},   # a default: fine
            {"path": "/dev/sdz", "type": "b", "major": 8, "minor": 0}]
        c["linux"]["resources"] = {"devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": True, "type": "b", "major": 8, "access": "r"}]}
    _, found, report = findings(tmp_path, changed(edit), capsys)
    devices = {f["path"]: f["message"] for f in report["findings"] if f["rule"] == "devices"}
    assert set(devices) == {"linux.devices[0] (/dev/tty1)", "linux.devices[3] (/dev/sdz)"}
    assert "c 4:1" in devices["linux.devices[0] (/dev/tty1)"]
    assert "'w'" in devices["linux.devices[3] (/dev/sdz)"]   # read is allowed, write is not
    assert ("low", "linux.devices[0] (/dev/tty1)") in found


def test_without_device_rules_only_the_default_devices_open(tmp_path, capsys):
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
        c["linux"].pop("resources", None)
    _, found, _ = findings(tmp_path, changed(edit), capsys)
    assert ("low", "linux.devices[0] (/dev/fuse)") in found


def test_no_mount_namespace_says_what_create_does_to_the_host_mount_table(tmp_path, capsys):
    config = copy.deepcopy(CLEAN)
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                     if n["type"] != "mount"]
    found = [f for f in findings(tmp_path, config, capsys)[2]["findings"]
             if f["rule"] == "hostMountTable"]
    assert len(found) == 1 and found[0]["level"] == "high"
    text = found[0]["message"]
    assert f"a bind of {tmp_path}/rootfs onto itself" in text and "/proc" in text
    assert "until delete" in text
    assert not [f for f in findings(tmp_path, CLEAN, capsys)[2]["findings"]
                if f["rule"] == "hostMountTable"]


# ---- the CIS Docker Benchmark controls, and SARIF ----

def _all_caps(c):
    every = [check.capabilities.NAMES[n] for n in range(check.capabilities.kernel_last_cap() + 1)]
    c["process"]["capabilities"].update(bounding=every, effective=every, permitted=every)


def _mount(m):
    return lambda c: c["mounts"].append(m)


def _no_ns(t):
    return lambda c: c["linux"].update(namespaces=[ns for ns in c["linux"]["namespaces"]
                                                   if ns["type"] != t])


LIMITS = {"memory": {"limit": 1 << 28}, "cpu": {"shares": 512}, "pids": {"limit": 64}}

CIS = [
    ("capability", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
     "process.capabilities.bounding[1]", ["5.4"]),
    ("privileged", _all_caps, "process.capabilities", ["5.5"]),
    ("host_etc", _mount({"destination": "/h", "type": "bind", "source": "/etc",
                         "options": ["rbind", "ro", "nosuid", "nodev"]}), f"mounts[{N}] (/h)",
     ["5.6"]),
    ("docker_socket", _mount({"destination": "/s", "type": "bind",
                              "source": "/var/run/docker.sock", "options": ["bind"]}),
     f"mounts[{N}] (/s)", ["5.32", "5.6"]),
    ("host_netns", _join("network", "/proc/self/ns/net"),
     f"linux.namespaces[{_index('network')}].path", ["5.10"]),
    ("no_pidns", _no_ns("pid"), "linux.namespaces", ["5.16"]),
    ("no_ipcns", _no_ns("ipc"), "linux.namespaces", ["5.17"]),
    ("host_utsns", _join("uts", "/proc/self/ns/uts"),
     f"linux.namespaces[{_index('uts')}].path", ["5.21"]),
    ("no_userns", _drop_user_namespace, "linux.namespaces", ["5.31", "2.9"]),
    ("host_mntns", _join("mount", "/proc/1/ns/mnt"),
     f"linux.namespaces[{_index('mount')}].path", ["5.6"]),
    ("memory", None, "linux.resources.memory.limit", ["5.11"]),
    ("cpu", None, "linux.resources.cpu", ["5.12"]),
    ("pids", None, "linux.resources.pids.limit", ["5.29"]),
    ("writable_root", lambda c: c["root"].update(readonly=False), "root.readonly", ["5.13"]),
    ("all_devices", lambda c: c["linux"]["resources"]["devices"].append(
        {"allow": True, "access": "rwm"}), "linux.resources.devices[1]", ["5.18"]),
    ("shared_mount", _mount({"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "rshared"]}), f"mounts[{N}] (/m)",
     ["5.20"]),
    ("no_seccomp", lambda c: c["linux"].pop("seccomp"), "linux.seccomp", ["5.22"]),
    ("new_privileges", lambda c: c["process"].update(noNewPrivileges=False),
     "process.noNewPrivileges", ["5.26"]),
    ("root_user", None, "process.user.uid", ["4.1"]),
]


@pytest.mark.parametrize("edit, path, ids", [r[1:] for r in CIS], ids=[r[0] for r in CIS])
def test_each_finding_names_its_cis_control(tmp_path, capsys, edit, path, ids):
    limited = changed(lambda c: c["linux"]["resources"].update(copy.deepcopy(LIMITS)))
    _, _, report = findings(tmp_path, limited, capsys)
    if edit is None:    # the clean config has it; setting the limit (or a uid) clears it
        assert any(f["path"] == path for f in run_json(tmp_path, CLEAN, capsys))
        if path != "process.user.uid":
            assert all(f["path"] != path for f in report["findings"])
        config = CLEAN
    else:
        assert all(ids[0] not in [e["id"] for e in f["cis"]] or f["path"] != path
                   for f in report["findings"])
        config = changed(lambda c: (c["linux"]["resources"].update(copy.deepcopy(LIMITS)),
                                    edit(c)))
    found = [f for f in run_json(tmp_path, config, capsys) if f["path"] == path]
    assert [e["id"] for e in found[0]["cis"]] == ids, found
    assert all(e["title"] == check.cis.TITLES[e["id"]] for e in found[0]["cis"])


def run_json(tmp_path, config, capsys):
    run_check(tmp_path, config)
    return json.loads(capsys.readouterr().out)["findings"]


SCHEMA = os.path.join(os.path.dirname(__file__), "data", "sarif-schema-2.1.0.json")


def sarif_validator():
    jsonschema = pytest.importorskip("jsonschema")  # scripts/setup.sh installs it
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_sarif_validates_against_the_2_1_0_schema_and_holds_every_finding(tmp_path, capsys):
    config = changed(lambda c: (c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
                                c["root"].update(readonly=False), c["linux"].pop("seccomp"),
                                c["mounts"].append({"destination": "/s", "type": "bind",
                                                    "source": "/run/docker.sock",
                                                    "options": ["bind"]})))
    findings_json = run_json(tmp_path, config, capsys)
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    parser = argparse.ArgumentParser()
    check.configure(parser)
    status = check.run(parser.parse_args([str(tmp_path), "--format", "sarif"]))
    log = json.loads(capsys.readouterr().out)
    validator = sarif_validator()
    assert list(validator.iter_errors(log)) == []
    assert status == 1      # --fail-on high, as with the other formats
    [run] = log["runs"]
    assert [(r["properties"]["severity"], r["logicalLocations"][0]["fullyQualifiedName"])
            for r in [dict(x, logicalLocations=x["locations"][0]["logicalLocations"])
                      for x in run["results"]]] == \
        [(f["level"], f["path"]) for f in findings_json]
    by_path = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r
               for r in run["results"]}
    sock = by_path[f"mounts[{N}] (/s)"]
    assert sock["level"] == "error" and [t["id"] for t in sock["taxa"]] == ["5.32", "5.6"]
    lines = (tmp_path / "config.json").read_text().splitlines()
    # the region is the line where that mount starts: its destination follows it
    start = sock["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert lines[start - 1].strip() == "{" and '"destination": "/s"' in lines[start]
    taxa = {t["id"] for t in run["taxonomies"][0]["taxa"]}
    assert taxa == {t["id"] for r in run["results"] for t in r["taxa"]}
    # the schema is not a formality: a log that breaks it is refused
    assert list(validator.iter_errors(dict(log, version="2.0.0")))
    del run["results"][0]["message"]
    assert list(validator.iter_errors(log))


def test_sarif_fail_on_low(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(CLEAN))
    parser = argparse.ArgumentParser()
    check.configure(parser)
    assert check.run(parser.parse_args([str(tmp_path), "--format", "sarif"])) == 0
    assert check.run(parser.parse_args([str(tmp_path), "--format", "sarif",
                                        "--fail-on", "low"])) == 1


def test_json_paths_find_their_lines():
    from pyrunc.teach import sarif
    text = '{\n "a": {\n  "b": [\n   1,\n   {"c": "x\\"]"}\n  ],\n  "d.e": 2\n }\n}\n'
    lines = sarif.json_lines(text)
    assert sarif.parse_path("a.b[1].c") == ["a", "b", 1, "c"]
    assert sarif.parse_path("linux.sysctl[net.ipv4.ip_forward]") == [
        "linux", "sysctl", "net.ipv4.ip_forward"]
    assert sarif.line_of(lines, "a.b[1].c") == 5
    assert sarif.line_of(lines, "a.b[0]") == 4
    assert sarif.line_of(lines, "a[d.e]") == 7
    assert sarif.line_of(lines, "a.b[7] (hint)") == 3   # the deepest part that exists
    assert sarif.line_of(lines, "nowhere") == 1
