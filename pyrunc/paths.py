"""The path helpers pyrunc needs, on `posix` alone.

Every command of pyrunc is a new interpreter, and `import os` costs it 2.4 ms here (4.6 M
instructions: os.environ's MutableMapping pulls in _collections_abc, and posixpath, stat
and genericpath come along). The modules on the container paths (create, start, state,
kill, delete, exec) therefore call `posix` directly, which `os` only re-exports, and take
the few pure-Python helpers from here. Semantics follow posixpath for the str paths
pyrunc handles.
"""
import posix
from _stat import S_ISDIR, S_ISREG


def join(first, *rest):
    path = first
    for part in rest:
        if part.startswith("/") or not path:
            path = part
        elif path.endswith("/"):
            path += part
        else:
            path += "/" + part
    return path


def split(path):
    """(head, tail) as posixpath.split: the trailing slashes of head removed, but not '/'."""
    cut = path.rfind("/") + 1
    head, tail = path[:cut], path[cut:]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head, tail


def basename(path):
    return path[path.rfind("/") + 1:]


def isabs(path):
    return path.startswith("/")


def normpath(path):
    """Lexical clean-up: no '.', no 'a/..', no doubled slashes (symlinks are not looked at)."""
    if not path:
        return "."
    initial = 2 if path.startswith("//") and not path.startswith("///") else \
        1 if path.startswith("/") else 0
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != ".." or (not initial and not parts) or (parts and parts[-1] == ".."):
            parts.append(part)
        elif parts:
            parts.pop()
    return "/" * initial + "/".join(parts) or "."


def abspath(path):
    return normpath(path if path.startswith("/") else join(posix.getcwd(), path))


def realpath(path):
    """The path with every symlink resolved, by the kernel; the path must exist."""
    fd = posix.open(path, posix.O_PATH | posix.O_CLOEXEC)
    try:
        return posix.readlink(f"/proc/self/fd/{fd}")
    finally:
        posix.close(fd)


def _mode(path, follow=True):
    try:
        return posix.stat(path, follow_symlinks=follow).st_mode
    except (OSError, ValueError):
        return None


def exists(path):
    return _mode(path) is not None


def isdir(path):
    mode = _mode(path)
    return mode is not None and S_ISDIR(mode)


def isfile(path):
    mode = _mode(path)
    return mode is not None and S_ISREG(mode)


def makedirs(path, mode=0o777):
    """mkdir -p: the missing directories of path; an existing directory is fine."""
    if isdir(path):
        return
    head = split(path)[0]
    if head and head != path and not isdir(head):
        makedirs(head, mode)
    try:
        posix.mkdir(path, mode)
    except FileExistsError:
        if not isdir(path):
            raise
