"""Config values that become part of a host path, checked before anything uses them.

A value used as one file name (a cgroup file, a sysctl component) must be a name: not
empty, no "/", not "." or "..", no NUL. A hugepage size takes the kernel's own spelling
(2MB, 1GB), since it is spliced into `hugetlb.<size>.limit_in_bytes`. Paths resolved
inside the container's root (mount destinations, device paths) only need to be free of
NUL; a device path must also end in a name (it is the node that mknod makes). Each check
raises a PyruncError naming the JSON path, so a bad config fails before anything exists.
"""
from pyrunc.errors import PyruncError


def name_problem(value):
    """Why `value` is not a single file name, or None."""
    if not isinstance(value, str):
        return "expected a string"
    if not value:
        return "is empty"
    if "\0" in value:
        return "contains a NUL byte"
    if "/" in value:
        return f"{value!r} contains '/'"
    if value in (".", ".."):
        return f"{value!r} is not a name"
    return None


def check_name(value, where, step="load"):
    why = name_problem(value)
    if why is not None:
        raise PyruncError(f"{why}: a file name is expected", path=where, step=step)
    return value


def check_path(value, where, step="load"):
    """A path the runtime resolves (inside the container's root): no NUL byte."""
    if "\0" in value:
        raise PyruncError("contains a NUL byte", path=where, step=step)
    return value


def check_node_path(value, where, step="load"):
    """A device node's path: absolute, no NUL, no "..", naming something below "/"; returned
    normalised (runc cleans "/dev/x/" and "/dev/./x" to "/dev/x")."""
    check_path(value, where, step)
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if not value.startswith("/") or ".." in parts or not parts:
        raise PyruncError(f"{value!r} is not an absolute path to a file below / (no '..')",
                          path=where, step=step)
    return "/" + "/".join(parts)


HUGEPAGE_UNITS = ("KB", "MB", "GB")


def check_hugepage_size(value, where, step="cgroups"):
    """The kernel's spelling of a huge page size: digits and KB, MB or GB (64KB, 2MB, 1GB)."""
    if (not isinstance(value, str) or value[-2:] not in HUGEPAGE_UNITS
            or not value[:-2].isdigit() or not value[:-2].isascii() or value[0] == "0"):
        raise PyruncError(f"{value!r} is not a page size such as 2MB or 1GB", path=where,
                          step=step)
    return value


def check_sysctl_key(key, where, step="load"):
    """A sysctl name, dot-separated components, each a file name under /proc/sys."""
    for part in key.split("."):
        why = name_problem(part)
        if why is not None:
            raise PyruncError(f"{key!r} is not a sysctl name: a component {why}",
                              path=where, step=step)
    return key
