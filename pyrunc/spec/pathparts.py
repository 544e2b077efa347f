"""Every config value that becomes part of a path, checked at load (pyrunc/names.py says
what each kind must be). linux.resources is checked by the cgroups dry run (hugepage
sizes, unified keys, cgroupsPath), which runs before any fork as well."""
from pyrunc import names


def check(config):
    process = config.process
    if process is not None:
        if process.cwd is not None:
            names.check_path(process.cwd, "process.cwd")
        if process.args:
            names.check_path(process.args[0], "process.args[0]")
    for i, m in enumerate(config.mounts or ()):
        names.check_path(m.destination, f"mounts[{i}].destination")
        if m.source is not None:
            names.check_path(m.source, f"mounts[{i}].source")
    hooks = config.hooks
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer",
                 "poststart", "poststop"):
        for i, h in enumerate((getattr(hooks, kind) if hooks is not None else None) or ()):
            names.check_path(h.path, f"hooks.{kind}[{i}].path")
    linux = config.linux
    if linux is None:
        return
    for i, ns in enumerate(linux.namespaces or ()):
        if ns.path is not None:
            names.check_path(ns.path, f"linux.namespaces[{i}].path")
    if linux.seccomp is not None and linux.seccomp.listenerPath is not None:
        names.check_path(linux.seccomp.listenerPath, "linux.seccomp.listenerPath")
    for i, d in enumerate(linux.devices or ()):
        names.check_node_path(d.path, f"linux.devices[{i}].path")
    for key in linux.sysctl or {}:
        names.check_sysctl_key(key, f"linux.sysctl.{key}")
    for key in ("maskedPaths", "readonlyPaths"):
        for i, p in enumerate(getattr(linux, key) or ()):
            names.check_path(p, f"linux.{key}[{i}]")
    if linux.cgroupsPath is not None:
        names.check_path(linux.cgroupsPath, "linux.cgroupsPath")
