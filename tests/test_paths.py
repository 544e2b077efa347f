"""pyrunc.paths against posixpath, which it stands in for on the container paths."""
import os
import posixpath
import subprocess
import sys

import pytest

from pyrunc import paths

SAMPLES = ["", ".", "..", "/", "//", "///", "a", "a/", "/a", "//a", "///a", "a//b", "a/./b",
           "a/../b", "../a", "/../a", "a/..", "a/b/../../..", "/a/b/", "./a/./", "a/b/c/..",
           "//a/../b", "/a/./../..", "...", "a/.../b", "../../x/..", "foo\\bar/.."]


@pytest.mark.parametrize("path", SAMPLES)
def test_normpath_split_basename_match_posixpath(path):
    assert paths.normpath(path) == posixpath.normpath(path)
    assert paths.split(path) == posixpath.split(path)
    assert paths.basename(path) == posixpath.basename(path)
    assert paths.isabs(path) == posixpath.isabs(path)


@pytest.mark.parametrize("parts", [("a", "b"), ("a/", "b"), ("/a", "/b", "c"), ("", "b"),
                                   ("a", ""), ("a", "b/", "c"), ("/", "x")])
def test_join_matches_posixpath(parts):
    assert paths.join(*parts) == posixpath.join(*parts)


def test_file_tests_and_realpath(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "l").symlink_to("d")
    (tmp_path / "dangling").symlink_to("nowhere")
    for name in ("d", "f", "l", "dangling", "missing", "f/under"):
        p = str(tmp_path / name)
        assert (paths.exists(p), paths.isdir(p), paths.isfile(p)) == \
            (os.path.exists(p), os.path.isdir(p), os.path.isfile(p)), name
    assert paths.realpath(str(tmp_path / "l")) == os.path.realpath(tmp_path / "l")
    with pytest.raises(FileNotFoundError):
        paths.realpath(str(tmp_path / "missing"))
    assert paths.abspath("x/../y") == os.path.abspath("x/../y")


def test_makedirs(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    paths.makedirs(str(target), 0o700)
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o700
    paths.makedirs(str(target))  # exists: fine
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        paths.makedirs(str(tmp_path / "file"))


def test_the_command_path_does_not_import_os():
    """What paths.py is for: `import os` costs 2.4 ms on every command."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = [p for p in sys.path if p.endswith("site-packages")]
    code = (f"import sys; sys.path[:0] = {[top] + site!r}; import pyrunc.cli, "
            "pyrunc.container.lifecycle, pyrunc.container.execute, pyrunc.init.child, "
            "pyrunc.init.context, pyrunc.spec, pyrunc.spec.validate, pyrunc.linux.seccomp, "
            "pyrunc.linux.terminal, pyrunc.linux.userns; print(sorted(m for m in "
            "('os', 'posixpath', '_collections_abc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
