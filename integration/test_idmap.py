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


@pytest.mark.pyrunc_only("runc 1.1 predates idmapped mounts (spec 1.2)")
def test_idmap_without_mappings_takes_the_user_namespaces(runtime, bundle, workdir, probe):
    # config.md, `idmap`: without the mount's own mappings "the runtime MAY use the
    # container's user namespace mapping" (crun does); the container then sees the source's
    # owners as they are on the host
    shared = os.path.join(workdir, "shared")
    os.mkdir(shared)
    for name, owner in (("owned-by-0", 0), ("owned-by-5", 5)):
        with open(os.path.join(shared, name), "w") as f:
            f.write("x")
        os.chown(os.path.join(shared, name), owner, owner)
    b = bundle.make("b").add_user_namespace(100000)
    os.mkdir(os.path.join(b.rootfs, "shared"))
    b.add_mount("/shared", "bind", shared, ["bind", "idmap"])
    report = probe(b, "stat=/shared/owned-by-0", "stat=/shared/owned-by-5")
    assert report.result("stat=/shared/owned-by-0")["uid"] == 0
    st = report.result("stat=/shared/owned-by-5")
    assert (st["uid"], st["gid"]) == (5, 5)
    assert os.stat(os.path.join(shared, "owned-by-0")).st_uid == 0


@pytest.mark.pyrunc_only("the wording of pyrunc's error")
def test_idmap_without_mappings_or_user_namespace_is_refused(runtime, bundle, workdir):
    # "If there are no uidMappings and gidMappings specified and the container isn't using
    # user namespaces, an error MUST be returned"
    b = bundle.make("b")
    b.add_mount("/shared", "bind", workdir, ["bind", "idmap"])
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    assert "or a new user namespace whose maps it takes" in proc.stderr
