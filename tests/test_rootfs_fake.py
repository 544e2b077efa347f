"""The mounts step against a fake syscall layer: no root needed. The real openat2 resolves
destinations in a temporary rootfs; sc.mount only records what the kernel would be asked."""
import os

import pytest

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError
from pyrunc.linux import rootfs
from pyrunc.spec import load_config
from pyrunc.spec.defaults import default_spec


@pytest.fixture
def calls(monkeypatch):
    recorded = []

    def fake_mount(source, target, fstype, flags, data=None, what=None):
        shown = os.readlink(target) if str(target).startswith("/proc/self/fd/") else target
        recorded.append((source, shown, fstype, flags, data))
    monkeypatch.setattr(sc, "mount", fake_mount)
    monkeypatch.setattr(sc, "mount_setattr", lambda *a, **k: recorded.append(("setattr",) + a))
    return recorded


def mounts_of(config):
    return load_config(config)[0].mounts


def test_default_mounts_land_inside_the_rootfs(tmp_path, calls):
    root = tmp_path / "rootfs"
    root.mkdir()
    config = default_spec()
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    rootfs.mount_all(str(root), mounts_of(config), str(tmp_path), in_userns=False)
    targets = [c[1] for c in calls]
    assert targets == [str(root / m["destination"].lstrip("/")) for m in config["mounts"]]
    proc, dev, pts = calls[0], calls[1], calls[2]
    assert proc[:4] == ("proc", str(root / "proc"), "proc", 0)
    assert dev[3] == sc.MS_NOSUID | sc.MS_STRICTATIME and dev[4] == "mode=755,size=65536k"
    assert pts[4] == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    # the mount points were made, as directories, inside the rootfs
    assert all(os.path.isdir(t) for t in targets)


def test_a_symlink_cannot_send_a_mount_outside(tmp_path, calls):
    root = tmp_path / "rootfs"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "escape")          # absolute: resolved in the root
    os.symlink("../../../outside", root / "relative")  # .. stops at the root
    config = default_spec()
    config["mounts"] = [{"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"},
                        {"destination": "/relative/y", "type": "tmpfs", "source": "tmpfs"}]
    rootfs.mount_all(str(root), mounts_of(config), str(tmp_path), in_userns=False)
    assert [c[1] for c in calls] == [str(root / str(outside).lstrip("/") / "x"),
                                     str(root / "outside" / "y")]
    assert os.listdir(outside) == []


def test_bind_remount_carries_the_flags_a_bind_ignores(tmp_path, calls):
    root = tmp_path / "rootfs"
    root.mkdir()
    src = tmp_path / "data"
    src.mkdir()
    config = default_spec()
    config["mounts"] = [{"destination": "/data", "type": "bind", "source": str(src),
                         "options": ["rbind", "ro", "nosuid", "rslave"]}]
    rootfs.mount_all(str(root), mounts_of(config), str(tmp_path), in_userns=False)
    bind, remount, propagation = calls
    assert bind[0] == str(src) and bind[3] == sc.MS_BIND | sc.MS_REC
    assert remount[3] & (sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID) == \
        sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID
    assert propagation[3] == sc.MS_SLAVE | sc.MS_REC


def test_kernel_refusal_names_the_mount(tmp_path, monkeypatch):
    def kernel(source, target, fstype, flags, data=None, what=None):
        if data and "bogus" in data:  # as tmpfs does with an option it does not know
            raise OSError(22, f"mount {fstype}: Invalid argument")
    monkeypatch.setattr(sc, "mount", kernel)
    root = tmp_path / "rootfs"
    root.mkdir()
    config = default_spec()
    config["mounts"] = config["mounts"][:3] + [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["bogus=1"]}]
    with pytest.raises(PyruncError) as e:
        rootfs.mount_all(str(root), mounts_of(config), str(tmp_path), in_userns=False)
    assert str(e.value) == "mounts[3] (/tmp): mount tmpfs: Invalid argument [step: mounts]"
