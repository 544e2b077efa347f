"""Idmapped mounts: a bind mount whose file owners are shifted by the mount's mappings."""
import os

import pytest

from integration import itlib


@pytest.mark.pyrunc_only("runc 1.1 predates idmapped mounts (spec 1.2)")
def test_idmapped_bind_mount_shifts_owners(runtime, bundle, workdir, probe):
    shared = os.path.join(workdir, "shared")
    os.mkdir(shared)
    with open(os.path.join(shared, "owned-by-0"), "w") as f:
        f.write("x")
    os.chown(os.path.join(shared, "owned-by-0"), 0, 0)
    b = bundle.make("b")
    b.config["mounts"].append({
        "destination": "/shared", "type": "bind", "source": shared, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 4242, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 4343, "size": 1}]})
    report = probe(b, "stat=/shared/owned-by-0", "stat=/probe")
    st = report.result("stat=/shared/owned-by-0")
    assert (st["uid"], st["gid"]) == (4242, 4343)
    # the rest of the rootfs is not shifted, and the file on the host is unchanged
    assert report.result("stat=/probe")["uid"] == 0
    assert os.stat(os.path.join(shared, "owned-by-0")).st_uid == 0


@pytest.mark.pyrunc_only("runc 1.1 predates idmapped mounts (spec 1.2)")
def test_idmap_without_both_mappings_is_refused(runtime, bundle, workdir):
    b = bundle.make("b")
    b.config["mounts"].append({"destination": "/shared", "type": "bind", "source": workdir,
                               "options": ["bind", "idmap"],
                               "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "mounts[" in proc.stderr and "gidMappings" in proc.stderr
