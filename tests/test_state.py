"""Container state: ids, duplicate ids, status derived from the live process."""
import json
import os
import subprocess

import pytest

from pyrunc.container.state import Container, check_id, list_ids, proc_start_time
from pyrunc.errors import PyruncError


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x\n"])
def test_bad_ids_are_refused(bad):
    with pytest.raises(PyruncError):
        check_id(bad)


def test_duplicate_id_is_a_clear_error(tmp_path):
    Container.new(str(tmp_path), "c1").unlock()
    with pytest.raises(PyruncError, match="already exists"):
        Container.new(str(tmp_path), "c1")


def make(tmp_path, pid, start, fifo=False):
    c = Container.new(str(tmp_path), "c1")
    c.data = {"ociVersion": "1.3.0", "id": "c1", "pid": pid, "pidStartTime": start,
              "bundle": "/b", "rootfs": "/b/rootfs", "created": "t", "owner": ""}
    c.save()
    if fifo:
        os.mkfifo(c.fifo)
    return c


def test_status_follows_the_process(tmp_path):
    p = subprocess.Popen(["sleep", "30"])
    try:
        start, _ = proc_start_time(p.pid)
        c = make(tmp_path, p.pid, start, fifo=True)
        assert c.status() == "created"
        os.unlink(c.fifo)
        assert c.status() == "running"
        assert c.public_state()["pid"] == p.pid
    finally:
        p.kill()
        p.wait()
    assert c.status() == "stopped"
    assert c.public_state()["pid"] == 0


def test_a_reused_pid_does_not_read_as_running(tmp_path):
    # our own pid is alive, but its start time is not the recorded one
    start, _ = proc_start_time(os.getpid())
    c = make(tmp_path, os.getpid(), start + 1)
    assert c.status() == "stopped"


def test_zombie_reads_as_stopped(tmp_path):
    p = subprocess.Popen(["true"])
    start, _ = proc_start_time(p.pid)
    import time
    while proc_start_time(p.pid)[1] not in ("Z", None):
        time.sleep(0.01)
    c = make(tmp_path, p.pid, start)
    assert c.status() == "stopped"
    p.wait()


def test_state_fields_and_listing(tmp_path):
    c = make(tmp_path, 0, None)
    state = c.public_state()
    assert set(state) == {"ociVersion", "id", "status", "pid", "bundle", "rootfs", "created",
                          "owner"}
    c.unlock()
    assert list_ids(str(tmp_path)) == ["c1"]
    loaded = Container.load(str(tmp_path), "c1", lock=False)
    assert json.loads(json.dumps(loaded.public_state())) == state


def test_remove_leaves_nothing(tmp_path):
    c = make(tmp_path, 0, None, fifo=True)
    c.remove()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("cid", ["..", ".", "", "a/b"])
def test_no_path_is_made_from_a_bad_id(tmp_path, cid):
    with pytest.raises(PyruncError, match="invalid .*container ID"):
        Container(str(tmp_path), cid)


@pytest.mark.parametrize("cid, why", [
    (".foo", "invalid leading '.' in container ID"),     # crun's rule: no hidden state dir
    ("foo bar", "invalid character ' ' in container ID"),
    ("this/is/invalid", "invalid character '/' in container ID"),
])
def test_a_bad_id_names_what_is_wrong(tmp_path, cid, why):
    # crun's tests start/invalid-id and start/invalid-id-chars look for these words
    with pytest.raises(PyruncError, match=why):
        Container(str(tmp_path), cid)
    assert os.listdir(tmp_path) == []


def test_a_dot_inside_an_id_is_fine(tmp_path):
    assert check_id("a.b-c_d+e") == "a.b-c_d+e"


def test_state_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        c = make(tmp_path, 1, 1)
        c.record_cgroups({"memory": "/sys/fs/cgroup/memory/c1"})
    finally:
        os.umask(old)
    assert os.stat(c.state_file).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(c.dir, "cgroups")).st_mode & 0o777 == 0o600
    assert os.stat(c.dir).st_mode & 0o777 == 0o711


def test_a_root_others_can_write_or_own_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    Container.new(str(root), "c1").unlock()
    os.chmod(root, 0o777)
    for call in (lambda: Container.new(str(root), "c2"), lambda: list_ids(str(root)),
                 lambda: Container.load(str(root), "c1")):
        with pytest.raises(PyruncError, match="writable by no one else"):
            call()
    os.chmod(root, 0o755)
    os.chown(root, 65534, 65534)
    with pytest.raises(PyruncError, match="owned by uid 65534"):
        Container.load(str(root), "c1")


@pytest.mark.parametrize("text", [b"", b'{"ociVersion": "1.3', b"garbage", b"null", b"[]",
                                  b'{"id": "c1"}', b'{"ociVersion": "1", "id": "c1", "pid": "1",'
                                  b' "bundle": "/b", "rootfs": "/r", "created": "t"}',
                                  b"[" * 100000])
def test_a_corrupt_state_is_one_error_naming_the_file(tmp_path, text):
    from pyrunc.container.state import CorruptState
    c = make(tmp_path, 1, 1)
    c.unlock()
    with open(c.state_file, "wb") as f:
        f.write(text)
    with pytest.raises(CorruptState) as e:
        Container.load(str(tmp_path), "c1")
    assert str(e.value).startswith(f"{c.state_file}: corrupt state (")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_state_file_that_is_not_a_file_is_corrupt(tmp_path, kind):
    from pyrunc.container.state import CorruptState
    c = make(tmp_path, 1, 1)
    c.unlock()
    os.unlink(c.state_file)
    if kind == "directory":
        os.mkdir(c.state_file)
    else:
        (tmp_path / "elsewhere.json").write_text(json.dumps(c.data))
        os.symlink(tmp_path / "elsewhere.json", c.state_file)
    with pytest.raises(CorruptState, match="corrupt state"):
        Container.load(str(tmp_path), "c1")
    Container(str(tmp_path), "c1").remove()  # what delete --force does last
    assert os.listdir(tmp_path) == (["elsewhere.json"] if kind == "symlink" else [])
