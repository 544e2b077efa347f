"""pyrunc check BUNDLE: what a config.json lets a container do, without starting anything.

Findings are (level, JSON path, message), rule by rule:
- capabilities, each graded by its risk (pyrunc/linux/capabilities.py, RISK_TABLE), and
  what prepare() would warn about or refuse at create;
- the baseline policy's rules (pyrunc/policy.py): noNewPrivileges, seccomp, read-only root,
  mount options, masked and read-only paths, user namespace, host namespaces;
- pyrunc.linux.seccomp.analyze when it exists (shadowed rules, unknown names, EPERM
  defaults that defeat glibc's ENOSYS fallbacks);
- namespaces joined by path that are not the host's, and the loader's warnings (low);
- linux.devices nodes that linux.resources.devices does not let the container open (low);
- every capability (privileged), uid 0, binds of sensitive host directories and of the
  Docker socket, shared propagation, absent memory/cpu/pids limits, a device cgroup that
  allows every device.
Each finding names the CIS Docker Benchmark control behind it (pyrunc/teach/cis.py), in
text, JSON and SARIF 2.1.0 (pyrunc/teach/sarif.py).

Exit status: 0, or 1 when a finding is at or above --fail-on; 2 when the config (or the
--policy file) does not load.
"""
import json
import os
import sys

from pyrunc.errors import PyruncError
from pyrunc.linux import capabilities
from pyrunc.linux.capabilities import LEVELS, RISK, SETS, WHY
from pyrunc.policy import NS_FILE, Finding, host_namespace, level_at_least, load_policy
from pyrunc.spec import load_bundle
from pyrunc.teach import cis


def configure(parser):
    parser.add_argument("bundle", help="the bundle directory (holding config.json)")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                        help="text for people (default), json for tools, sarif (2.1.0) for "
                             "code-scanning alerts")
    parser.add_argument("--fail-on", choices=LEVELS, default="high",
                        help="exit 1 when a finding is at this level or above (default high)")
    parser.add_argument("--policy", help="also show what this policy (a file, or 'baseline') "
                                         "would tighten or refuse")


def capability_findings(node):
    """One finding per capability named anywhere, at its risk level, plus prepare's verdict."""
    found = []
    if node is None:
        return found  # the capabilities rule reports the absent section
    first = {}
    for key in SETS:
        for i, name in enumerate(getattr(node, key) or ()):
            first.setdefault(name, (f"{node._path}.{key}[{i}]", []))[1].append(key)
    for name, (path, sets) in first.items():
        if name in RISK:
            found.append(("capabilities", Finding(
                RISK[name], path, f"{name} ({RISK[name]} risk, in {', '.join(sets)}): "
                                  f"{WHY[name]}")))
    # what create would say; judged against the kernel, not against this checker's own sets
    warnings = []
    last_cap = capabilities.kernel_last_cap()
    try:
        capabilities.prepare(node, warnings, False, last_cap, (1 << (last_cap + 1)) - 1)
    except PyruncError as e:
        found.append(("capabilities", Finding("high", e.path, f"create fails: {e.message}")))
    found.extend(_from_warning("capabilities", w) for w in warnings)
    return found


def _from_warning(rule, warning):
    """A low finding from a "PATH: text" warning line."""
    path, sep, text = warning.partition(": ")
    return (rule, Finding("low", path, text) if sep else Finding("low", "config.json", warning))


def seccomp_findings(node):
    """pyrunc.linux.seccomp.analyze's findings, when that module provides it."""
    try:
        from pyrunc.linux import seccomp
    except ImportError:
        return []
    analyze = getattr(seccomp, "analyze", None)
    if analyze is None or node is None:
        return []
    try:
        return [("seccomp", Finding(*f)) for f in analyze(node)]
    except PyruncError as e:  # what prepare() would refuse at create
        return [("seccomp", Finding("high", e.path, f"create fails: {e.message}"))]


def _device_allowed(rules, kind, major, minor, access):
    """What the device cgroup answers for one access letter: the container's rules start
    from deny-all, the config's apply in order (the last that matches decides, as in the
    kernel's v1 lists for rules like these), then the default devices are allowed."""
    from pyrunc.linux.cgroups import DEFAULT_DEVICE_RULES
    defaults = []
    for text in DEFAULT_DEVICE_RULES:  # "c 136:* rwm"
        t, numbers, acc = text.split()
        ma, mi = numbers.split(":")
        defaults.append({"allow": True, "type": t, "access": acc,
                         "major": None if ma == "*" else int(ma),
                         "minor": None if mi == "*" else int(mi)})
    allowed = False
    for rule in list(rules) + defaults:
        if not isinstance(rule, dict):
            continue
        if (rule.get("type", "a") in ("a", kind)
                and rule.get("major") in (None, -1, major)
                and rule.get("minor") in (None, -1, minor)
                and access in (rule.get("access") or "rwm")):
            allowed = rule.get("allow") is True
    return allowed


def device_findings(linux):
    """linux.devices makes nodes; whether the container can open one is what
    linux.resources.devices allows (as in runc and crun): a node the rules deny."""
    found = []
    resources = linux.resources if linux is not None else None
    rules = (resources.get("devices") if isinstance(resources, dict) else None) or []
    for i, d in enumerate((linux.devices if linux is not None else None) or ()):
        if d.type == "p" or d.major is None or d.minor is None:
            continue
        kind = "b" if d.type == "b" else "c"
        denied = "".join(a for a in "rw" if not _device_allowed(rules, kind, d.major,
                                                                 d.minor, a))
        if denied:
            found.append(("devices", Finding(
                "low", f"linux.devices[{i}] ({d.path})",
                f"{kind} {d.major}:{d.minor} is created but linux.resources.devices does not "
                f"allow {denied!r} on it: opening it fails (EPERM); add an allow rule if the "
                "container needs it")))
    return found


def resource_findings(raw):
    """The article's "limit the container's resources": a limit absent is a low finding;
    a device cgroup that allows every device is high (what --privileged gives)."""
    resources = (raw.get("linux") or {}).get("resources") or {}
    found = []
    for key, field, what in (("memory", "limit", "memory"), ("cpu", None, "CPU time"),
                             ("pids", "limit", "the number of processes")):
        section = resources.get(key) or {}
        if not (section.get(field) if field else section.get("shares") or section.get("quota")):
            path = f"linux.resources.{key}" + (f".{field}" if field else "")
            found.append(("resources", Finding("low", path, f"no limit on {what}: one "
                                                            "container can starve the host")))
    for i, rule in enumerate(resources.get("devices") or ()):
        if isinstance(rule, dict) and rule.get("allow") is True \
                and rule.get("type", "a") == "a" and rule.get("major") in (None, -1) \
                and rule.get("minor") in (None, -1):
            found.append(("resources", Finding(
                "high", f"linux.resources.devices[{i}]", "allows every device node "
                "(the host's disks and memory included, wherever one is made)")))
    return found


def privileged_findings(raw):
    """What `docker run --privileged` gives: every capability the kernel has."""
    caps = (raw.get("process") or {}).get("capabilities") or {}
    last_cap = capabilities.kernel_last_cap()
    every = {capabilities.NAMES[n] for n in range(last_cap + 1)}
    if every <= set(caps.get("bounding") or ()) and every <= set(caps.get("effective") or ()):
        return [("privileged", Finding("extreme", "process.capabilities", "every capability "
                                       "the kernel has, in bounding and effective: a "
                                       "privileged container"))]
    return []


def user_findings(raw):
    """The article's first check: a process running as uid 0."""
    user = (raw.get("process") or {}).get("user") or {}
    if user.get("uid", 0) != 0:
        return []
    userns = any(ns.get("type") == "user" and not ns.get("path")
                 for ns in (raw.get("linux") or {}).get("namespaces") or ())
    return [("user", Finding("low" if userns else "medium", "process.user.uid",
                             "runs as uid 0" + (" (mapped to an unprivileged host uid)"
                                                if userns else ", root on the host too")))]


def propagation_findings(raw):
    """Mounts whose changes reach the host (or the host's reach the container)."""
    found = []
    prop = (raw.get("linux") or {}).get("rootfsPropagation")
    if prop in ("shared", "rshared"):
        found.append(("propagation", Finding("medium", "linux.rootfsPropagation",
                                             f"{prop}: mounts made in the container can "
                                             "propagate to the host")))
    for i, m in enumerate(raw.get("mounts") or ()):
        shared = [o for o in m.get("options") or () if o in ("shared", "rshared")]
        if shared:
            found.append(("propagation", Finding(
                "medium", f"mounts[{i}] ({m.get('destination')})",
                f"{shared[0]}: mounts made under it in the container appear on the host")))
    return found


def host_path_findings(raw):
    """Bind mounts of the host directories CIS 5.6 names, and of the Docker socket."""
    from pyrunc.teach.cis import DOCKER_SOCKETS, SENSITIVE
    found = []
    for i, m in enumerate(raw.get("mounts") or ()):
        source, opts = m.get("source") or "", m.get("options") or ()
        if not ("bind" in opts or "rbind" in opts or m.get("type") == "bind"):
            continue
        clean = os.path.normpath(source) if source.startswith("/") else None
        if clean in DOCKER_SOCKETS:
            found.append(("hostPaths", Finding(
                "extreme", f"mounts[{i}] ({m.get('destination')})",
                f"binds the host's Docker socket {source}: root on the host for anyone "
                "who can write to it")))
        elif clean in SENSITIVE:
            ro = "ro" in opts
            found.append(("hostPaths", Finding(
                "medium" if ro else "high", f"mounts[{i}] ({m.get('destination')})",
                f"binds the host's {clean}" + (" read-only" if ro else ", writable")
                + ": a sensitive host directory")))
    return found


def joined_namespace_findings(raw):
    found = []
    for i, ns in enumerate((raw.get("linux") or {}).get("namespaces") or ()):
        t, path = ns.get("type"), ns.get("path")
        if path is not None and t in NS_FILE and not host_namespace(t, path):
            found.append(("hostNamespaces", Finding(
                "low", f"linux.namespaces[{i}].path", f"joins the {t} namespace at {path}: "
                                                      "shared with whatever else is in it")))
    return found


def host_mount_findings(config, bundle):
    """No mount namespace: what create does to the runtime's mount table."""
    linux = config.linux
    if linux is None or any(ns.type == "mount" for ns in linux.namespaces or ()):
        return []
    root = os.path.realpath(os.path.join(bundle, config.root.path if config.root else "rootfs"))
    points = [m.destination for m in config.mounts or ()]
    hidden = list(linux.maskedPaths or ()) + list(linux.readonlyPaths or ())
    return [("hostMountTable", Finding(
        "high", "linux.namespaces",
        f"no mount namespace: create mounts in the runtime's own mount table (the host's): a "
        f"bind of {root} onto itself, and under it {len(points)} mounts "
        f"({', '.join(points) or 'none'}), the device nodes, and a mount for each of "
        f"{len(hidden)} masked or read-only paths; every one is visible to the host (and to "
        f"its peers when the mount holding {root} is shared) until delete detaches the bind "
        "with all of them. The container is in a chroot, not a pivot_root: root in it with "
        "CAP_SYS_CHROOT can leave it"))]


def collect(config, raw, warnings, bundle="."):
    """Every finding as (rule name, Finding), most severe first, in rule order within a level."""
    caps = config.process.capabilities if config.process else None
    found = capability_findings(caps)
    analysis = seccomp_findings(config.linux.seccomp if config.linux else None)
    analyzed = {f.path for _, f in analysis}
    for rule in load_policy("baseline").rules:
        if rule.name == "capabilities" and (caps is not None or config.process is None):
            continue  # capability_findings grades each one; the rule adds only "absent"
        found.extend((rule.name, f) for f in rule.findings(raw)
                     if not (rule.name == "seccomp" and f.path in analyzed))  # analysis says more
    found.extend(analysis)
    found.extend(joined_namespace_findings(raw))
    found.extend(device_findings(config.linux))
    found.extend(host_mount_findings(config, bundle))
    for more in (privileged_findings, user_findings, host_path_findings,
                 propagation_findings, resource_findings):
        found.extend(more(raw))
    found.extend(_from_warning("load", w) for w in warnings)
    return sorted(found, key=lambda rf: -LEVELS.index(rf[1].level))


def run(args):
    try:
        config, warnings = load_bundle(args.bundle)
        with open(os.path.join(args.bundle, "config.json"), "rb") as f:
            text = f.read()
        raw = json.loads(text)
        policy = load_policy(args.policy) if args.policy else None
    except PyruncError as e:
        sys.stderr.write(f"pyrunc check: {e}\n")
        return 2
    found = collect(config, raw, warnings, args.bundle)
    verdict = None
    if policy is not None:
        _, tightened, refused = policy.evaluate(raw)
        verdict = {"name": policy.name, "tightened": tightened, "refused": refused}
    where = os.path.join(args.bundle, "config.json")
    if args.format == "json":
        print(json.dumps({"config": where, "findings": [
            {"level": f.level, "path": f.path, "message": f.message, "rule": rule,
             "cis": cis.entries(cis.controls(rule, f))}
            for rule, f in found], "policy": verdict}, indent=2))
    elif args.format == "sarif":
        from pyrunc.teach import sarif
        print(json.dumps(sarif.log(where, text.decode("utf-8", "replace"), found), indent=2))
    else:
        sys.stdout.write(text_report(where, found, verdict))
    return 1 if any(level_at_least(f.level, args.fail_on) for _, f in found) else 0


def _cis_text(rule, finding):
    ids = cis.controls(rule, finding)
    return f" [CIS {', '.join(ids)}]" if ids else ""


def text_report(where, found, verdict):
    counts = {level: sum(f.level == level for _, f in found) for level in LEVELS}
    summary = ", ".join(f"{counts[lv]} {lv}" for lv in reversed(LEVELS) if counts[lv])
    lines = [f"{where}: {len(found)} finding{'s' * (len(found) != 1)}"
             + (f" ({summary})" if found else "")]
    for level in reversed(LEVELS):
        if counts[level]:
            lines.append(f"\n{level.upper()}")
            lines.extend(f"  {f.path}: {f.message}{_cis_text(rule, f)}" for rule, f in found
                         if f.level == level)
    if verdict is not None:
        name, tightened, refused = verdict["name"], verdict["tightened"], verdict["refused"]
        if refused:
            lines.append(f"\npolicy {name}: create would be refused "
                         f"({len(refused)} violation{'s' * (len(refused) != 1)})")
        else:
            lines.append(f"\npolicy {name}: passes" + (" after tightening" if tightened else ""))
        lines.extend(f"  {t}" for t in tightened)
        lines.extend(f"  refused: {r}" for r in refused)
    return "\n".join(lines) + "\n"
