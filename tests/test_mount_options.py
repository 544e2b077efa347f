"""Mount options split into flags, propagation, recursive attributes and fs data (runc's table)."""

from pyrunc import syscalls as sc
from pyrunc.linux.rootfs import parse_options


def test_flags_and_data_are_split():
    o = parse_options(["nosuid", "nodev", "size=100m", "mode=1777"])
    assert o.flags == sc.MS_NOSUID | sc.MS_NODEV
    assert o.data == ["size=100m", "mode=1777"]


def test_later_option_wins_and_clearing_is_recorded():
    o = parse_options(["ro", "rw"])
    assert not o.flags & sc.MS_RDONLY and o.clear & sc.MS_RDONLY
    o = parse_options(["rw", "ro"])
    assert o.flags & sc.MS_RDONLY and not o.clear & sc.MS_RDONLY


def test_rbind_is_recursive_bind_and_propagation_is_separate():
    o = parse_options(["rbind", "rslave", "ro"])
    assert o.flags == sc.MS_BIND | sc.MS_REC | sc.MS_RDONLY
    assert o.propagation == [sc.MS_SLAVE | sc.MS_REC]


def test_recursive_attributes_use_mount_setattr_bits():
    o = parse_options(["rro", "rnosuid", "rnoatime"])
    assert o.attr_set == 0x1 | 0x2 | 0x10
    assert o.attr_clr & 0x70  # the atime field is replaced as a whole
    assert o.flags == 0


def test_devpts_words_go_to_data():
    o = parse_options(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"])
    assert o.data == ["newinstance", "ptmxmode=0666", "mode=0620"]


def test_idmap_options_are_not_fs_data():
    # the mapping itself comes from the mount's uidMappings/gidMappings (linux/idmap.py)
    assert parse_options(["idmap", "ro"]).data == []


def test_root_propagation_defaults_to_rprivate(monkeypatch):
    from pyrunc.linux import rootfs
    calls = []
    monkeypatch.setattr(sc, "mount", lambda *a, **k: calls.append(a))
    rootfs.set_propagation(None)
    rootfs.set_propagation("rslave")
    assert calls == [(None, "/", None, sc.MS_PRIVATE | sc.MS_REC),
                     (None, "/", None, sc.MS_SLAVE | sc.MS_REC)]
