"""The claims of a config, and how each is judged held, broken, unkeepable or not checked,
from two views of the container's process: the probe's report from inside (verify) and
/proc/PID read from the host. `pyrunc verify` runs a probe for both; `pyrunc audit` has
only the host's view of a container that is already running, and says so where a claim
needs the inside one.
"""
import errno
import os
import signal
import stat
from typing import NamedTuple

from pyrunc.linux import capabilities, seccomp
from pyrunc.linux.capabilities import CAPS, NAMES, SETS
from pyrunc.policy import NS_FILE
from pyrunc.teach.mount_claims import (  # noqa: F401 (the tests know them as claims')
    ST_NODEV, ST_NOSUID, ST_RDONLY, TMPFS_MAGIC, WRITE_TEST, _size_bytes, mount_claims,
    path_claims)
from pyrunc.teach.samples import _call_text, _probe_killed_by, expected_action, seccomp_samples
from pyrunc.teach.verdicts import (BROKEN, HELD, NOT_CHECKED, UNKEEPABLE, VERDICTS, Claim,
                                   _errno_text, _linux)


IFF_UP = 1

# /proc/PID/status keys of the five capability sets
STATUS_KEY = {"bounding": "CapBnd", "effective": "CapEff", "inheritable": "CapInh",
              "permitted": "CapPrm", "ambient": "CapAmb"}

# config fields verify does not check, and why
UNCHECKED = (
    ("process.terminal", "set to false for the run: the report is read from stdout"),
    ("process.consoleSize", "no terminal in the run"),
    ("process.apparmorProfile", "LSM labels are not checked"),
    ("process.selinuxLabel", "LSM labels are not checked"),
    ("process.ioPriority", "not checked"),
    ("process.scheduler", "not checked"),
    ("process.execCPUAffinity", "not checked"),
    ("hooks", "hooks ran, but what they did is not checked"),
    ("linux.cgroupsPath", "the cgroup's place is not checked, only its limits"),
    ("linux.intelRdt", "not checked"),
    ("linux.personality", "not checked"),
    ("linux.memoryPolicy", "not checked"),
    ("linux.netDevices", "not checked"),
    ("linux.mountLabel", "LSM labels are not checked"),
    ("linux.rootfsPropagation", "not checked"),
    ("linux.timeOffsets", "not checked"),
)


class Host(NamedTuple):
    """Facts about the side that runs the container, taken when the plan is made."""
    ns: dict            # namespace name (as under /proc/PID/ns) -> inode, the runtime's own
    joined: dict        # namespace path in the config -> its inode (None: cannot stat it)
    last_cap: int       # the kernel's cap_last_cap
    seccomp_mode: int   # verify's own Seccomp mode: the container's when it has no filter


def host_facts(raw):
    """Host for a config, read from this process (the runtime's namespaces)."""
    ns = {}
    for name in os.listdir("/proc/self/ns"):
        ns[name] = os.stat(f"/proc/self/ns/{name}").st_ino
    joined = {}
    for entry in (raw.get("linux") or {}).get("namespaces") or ():
        path = entry.get("path")
        if path:
            try:
                joined[path] = os.stat(path).st_ino
            except OSError:
                joined[path] = None
    with open("/proc/self/status") as f:
        mode = next((int(line.split()[1]) for line in f if line.startswith("Seccomp:")), 0)
    return Host(ns, joined, capabilities.kernel_last_cap(), mode)


# ---- what the config says, in the probe's terms ---------------------------------------

def _process(raw):
    return raw.get("process") or {}


def _namespace(raw, kind):
    """(index, entry) of the namespace of type `kind` in the config, or (None, None)."""
    for i, entry in enumerate(_linux(raw).get("namespaces") or ()):
        if entry.get("type") == kind:
            return i, entry
    return None, None


def _new_namespace(raw, kind):
    _, entry = _namespace(raw, kind)
    return entry is not None and not entry.get("path")


def _cap_mask(names, last_cap):
    mask = 0
    for name in names or ():
        number = CAPS.get(name)
        if number is not None and number <= last_cap:
            mask |= 1 << number
    return mask


def _cap_names(mask):
    return ", ".join(NAMES.get(n, f"cap {n}") for n in range(64) if mask >> n & 1) or "none"


def after_execve(masks, uid0, nnp):
    """The capability sets the kernel gives at execve of a file without capabilities to a
    process holding `masks` (capabilities(7), "Transformation of capabilities during
    execve"; security/commoncap.c): uid 0 gets bounding | inheritable as permitted (no more
    than it had with no_new_privs), anyone else keeps only its ambient set."""
    ambient = masks["ambient"] & masks["permitted"] & masks["inheritable"]
    permitted = masks["bounding"] | masks["inheritable"] if uid0 else 0
    if nnp and permitted & ~masks["permitted"]:
        permitted &= masks["permitted"]
    permitted |= ambient
    return {"bounding": masks["bounding"], "inheritable": masks["inheritable"],
            "permitted": permitted, "effective": permitted if uid0 else ambient,
            "ambient": ambient}


class Plan:
    """The probe's words for a config, and what each answer should be."""

    def __init__(self, raw, config, host):
        self.raw, self.config, self.host = raw, config, host
        self.samples, self.skipped = [], []
        self.sys_blocked = None
        self.section = None
        node = config.linux.seccomp if config.linux else None
        if node is not None:
            # unknown names show as rules with nothing to sample; `create` warns of them
            self.samples, self.skipped, section, self.resolve = seccomp_samples(node, [])
            self.sys_blocked = _probe_killed_by(section)
            self.section = section
        self.words = self._words()

    def sys_word(self, sample):
        values = dict(sample.args)
        args = [values.get(i, 0) for i in range(max(values, default=-1) + 1)]
        return "sys=" + ",".join(str(v) for v in [self.resolve(sample.name), *args])

    def _words(self):
        raw = self.raw
        words = []
        if (raw.get("root") or {}).get("readonly"):
            words.append(f"write={WRITE_TEST}")
        for m in raw.get("mounts") or ():
            dest = m.get("destination", "")
            words += [f"statfs={dest}", f"stat={dest}"]
        for p in _linux(raw).get("maskedPaths") or ():
            words += [f"stat={p}", f"read={p}", f"ls={p}", f"statfs={p}"]
        for p in _linux(raw).get("readonlyPaths") or ():
            words += [f"stat={p}", f"openw={p}", f"chmod={p}", f"statfs={p}"]
        if _new_namespace(raw, "network"):
            words.append("ifflags=lo")
        for key in _linux(raw).get("sysctl") or {}:
            words.append(f"read=/proc/sys/{key.replace('.', '/')}")
        for d in _linux(raw).get("devices") or ():
            words.append(f"stat={d.get('path')}")
        if self.sys_blocked is None:
            words += [self.sys_word(s) for s in self.samples]
        if self.section is not None and os.uname().machine == "x86_64":
            words.append(I386_GETPID)
        return list(dict.fromkeys(words))


# ---- judging: the claims, from the probe's report and the host's view -------------------

class Seen:
    """What was observed: the probe's report (inside) and /proc/PID from the host."""

    def __init__(self, report, outside):
        self.report, self.outside = report, outside

    def result(self, word):
        return self.report.get("results", {}).get(word, {})

    @property
    def status(self):
        return self.outside["status"]


def _to_host(ident, mappings):
    """A container id as the host sees it, through [(container, host, size)]; None when
    unmapped (the host shows the overflow id)."""
    if mappings is None:
        return ident
    for container, host, size in mappings:
        if container <= ident < container + size:
            return host + ident - container
    return None


def _mappings(raw, key, seen):
    """The id mappings in effect: the config's for a new user namespace, the live ones
    (read from the host) for a joined one, None (identity) without one."""
    _, entry = _namespace(raw, "user")
    if entry is None:
        return None
    if entry.get("path"):
        return seen.outside[key]
    return [(m["containerID"], m["hostID"], m["size"]) for m in _linux(raw).get(
        "uidMappings" if key == "uid_map" else "gidMappings") or ()]


def user_claims(plan, seen):
    raw, report = plan.raw, seen.report
    user = _process(raw).get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    claims = []
    for key, want, inside_keys, status_key, mapkey in (
            ("uid", uid, ("uid", "euid", "suid"), "Uid", "uid_map"),
            ("gid", gid, ("gid", "egid", "sgid"), "Gid", "gid_map")):
        inside = [report.get(k) for k in inside_keys]
        host_want = _to_host(want, _mappings(raw, mapkey, seen))
        outside = [int(v) for v in seen.status[status_key].split()]
        if None in inside:  # the probe could not ask (a tight seccomp profile refuses it)
            claims.append(Claim(NOT_CHECKED, f"process.user.{key}", str(want),
                                f"the probe did not report its ids; {_same(outside)} on the "
                                "host (real/effective/saved/fs)"))
            continue
        ok = inside == [want] * 3 and (host_want is None or outside == [host_want] * 4)
        evidence = (f"{_same(inside)} inside (real/effective/saved), {_same(outside)} on the "
                    "host (real/effective/saved/fs)")
        if host_want is None:
            evidence += "; unmapped"
        elif not ok:
            evidence += f"; the host should see {host_want}"
        claims.append(Claim(HELD if ok else BROKEN, f"process.user.{key}", str(want),
                            evidence if not ok or host_want is None else
                            f"{inside[0]} inside, {outside[0]} on the host"))
    groups = sorted(set(user.get("additionalGids") or ()))
    inside = sorted(set(report.get("groups") or ()))
    gmap = _mappings(raw, "gid_map", seen)
    host_want = sorted({_to_host(g, gmap) for g in groups} - {None})
    outside = sorted(int(g) for g in seen.status.get("Groups", "").split())
    ok = inside == groups and outside == host_want
    claims.append(Claim(HELD if ok else BROKEN, "process.user.additionalGids",
                        _ids(groups), f"groups {_ids(inside)} inside, {_ids(outside)} on "
                                      "the host"))
    if "umask" in user:
        ok = report.get("umask") == user["umask"]
        claims.append(Claim(HELD if ok else BROKEN, "process.user.umask",
                            f"{user['umask']:04o}", f"umask {report.get('umask', 0):04o}"))
    for key, which in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        if _new_namespace(raw, "user") and _linux(raw).get(key) is not None:
            want = [(m["containerID"], m["hostID"], m["size"]) for m in _linux(raw)[key]]
            live = seen.outside[which]
            claims.append(Claim(HELD if live == want else BROKEN, f"linux.{key}",
                                _map_text(want), f"/proc/PID/{which}: {_map_text(live)}"))
    return claims


def _same(values):
    return "/".join(map(str, values))


def _ids(ids):
    return "[" + ", ".join(map(str, ids)) + "]"


def _map_text(mappings):
    return "; ".join(f"{c} -> {h} (size {s})" for c, h, s in mappings) or "empty"


def capability_claims(plan, seen):
    raw = plan.raw
    caps = _process(raw).get("capabilities")
    live = {k: int(seen.status[STATUS_KEY[k]], 16) for k in SETS}
    if caps is None:
        return [Claim(NOT_CHECKED, "process.capabilities", "absent: the runtime's own sets",
                      f"CapEff {live['effective']:016x}")]
    last = plan.host.last_cap
    want = {k: _cap_mask(caps.get(k), last) for k in SETS}
    user = _process(raw).get("user") or {}
    model = after_execve(want, user.get("uid", 0) == 0, bool(_process(raw).get(
        "noNewPrivileges")))
    inside = seen.report.get("caps") or {}
    claims = []
    for key in SETS:
        unknown = [n for n in caps.get(key) or () if CAPS.get(n, last + 1) > last]
        text = _cap_names(want[key]) + (f" (ignored: {', '.join(unknown)})" if unknown else "")
        evidence = f"{STATUS_KEY[key]} {live[key]:016x}"
        if live[key] != want[key]:
            extra, missing = live[key] & ~want[key], want[key] & ~live[key]
            if not live[key]:
                evidence += ": none"
            evidence += "".join(f"; {label} {_few(m)}" for label, m in
                                (("also", extra), ("lacks", missing)) if m and live[key])
            if live[key] == model[key]:
                evidence += "; " + _execve_why(key, user.get("uid", 0) == 0)
        if key in inside and int(inside[key], 16) != live[key]:
            evidence += f"; capget inside says {inside[key]}"
        claims.append(Claim(HELD if live[key] == want[key] else BROKEN,
                            f"process.capabilities.{key}", text, evidence))
    return [_unkeepable_ambient(plan, c, want, live["ambient"]) for c in claims]


def _unkeepable_ambient(plan, claim, want, live):
    """The ambient claim is unkeepable when what the kernel refuses to raise is all it
    lacks: PR_CAP_AMBIENT_RAISE fails (EPERM) for a capability not in both permitted and
    inheritable (capabilities(7)), under any runtime. runc's own `runc spec` asks for it."""
    refused = want["ambient"] & ~(want["permitted"] & want["inheritable"])
    if claim.path != "process.capabilities.ambient" or claim.verdict != BROKEN or not refused \
            or live != want["ambient"] & ~refused:
        return claim
    from pyrunc.teach.check import capability_findings  # check's words for the same config
    found = sorted(f"{f.path}: {f.message}" for _, f in capability_findings(
        plan.config.process.capabilities) if f.path.startswith("process.capabilities.ambient"))
    why = (f"the kernel raises an ambient capability only if it is in both permitted and "
           f"inheritable (PR_CAP_AMBIENT_RAISE: EPERM), and {_few(refused)} "
           f"{'is' if refused & (refused - 1) == 0 else 'are'} not; no runtime can keep "
           "this claim. check: " + ("; ".join(found) or "no finding"))
    return claim._replace(verdict=UNKEEPABLE, seen=f"CapAmb {live:016x}", why=why)


def _few(mask, shown=4):
    names = _cap_names(mask).split(", ")
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _execve_why(key, uid0):
    if not uid0:
        return ("execve leaves a process that is not uid 0 only its ambient set (add them "
                "to inheritable and ambient)")
    return (f"execve gives uid 0 bounding and inheritable as {key}; noNewPrivileges "
            "caps that at the permitted set")


def security_claims(plan, seen):
    raw, status = plan.raw, seen.status
    nnp = bool(_process(raw).get("noNewPrivileges"))
    live_nnp = status.get("NoNewPrivs") == "1"
    claims = [Claim(HELD if live_nnp == nnp else BROKEN, "process.noNewPrivileges",
                    str(nnp).lower(), f"NoNewPrivs {status.get('NoNewPrivs')}")]
    mode = int(status.get("Seccomp", "0"))
    has_filter = plan.config.linux is not None and plan.config.linux.seccomp is not None
    want = 2 if has_filter else plan.host.seccomp_mode
    text = {0: "no filter", 1: "strict mode", 2: "a filter"}
    claims.append(Claim(HELD if mode == want else BROKEN, "linux.seccomp",
                        text[want] + ("" if has_filter or not want else " (verify's own)"),
                        f"Seccomp {mode}"))
    if not has_filter:
        return claims
    claims += plan.skipped
    if plan.sys_blocked is not None:
        claims.append(Claim(NOT_CHECKED, "linux.seccomp.syscalls",
                            f"{len(plan.samples)} sampled calls",
                            f"the filter kills {plan.sys_blocked}, which the probe needs to "
                            "ask it about a call"))
        return claims
    for s in plan.samples:
        claims.append(_sample_claim(s, seen.result(plan.sys_word(s))))
    if I386_GETPID in plan.words:
        claims.append(arch_claim(plan, seen.result(I386_GETPID)))
    return claims


I386_GETPID = "i386=20"  # getpid in the 32-bit x86 ABI (int $0x80)


def arch_claim(plan, result):
    """Whether 32-bit x86 calls meet the filter's rules (SCMP_ARCH_X86 listed) or are killed
    as an architecture the filter lacks (libseccomp's default for a foreign arch)."""
    listed = "SCMP_ARCH_X86" in (plan.config.linux.seccomp.architectures or ())
    if listed:
        want = expected_action(plan.section, "getpid", {})
        if want is None:
            return Claim(NOT_CHECKED, "linux.seccomp.architectures", "SCMP_ARCH_X86",
                         "rules with different actions both match getpid")
        kind = want & 0xFFFF0000
        claim = f"SCMP_ARCH_X86: a 32-bit getpid gets {seccomp.action_text(want)}"
        ok = {seccomp.ACT_ALLOW: "signal" not in result and result.get("errno") == 0,
              seccomp.ACT_LOG: "signal" not in result and result.get("errno") == 0,
              seccomp.ACT_ERRNO: result.get("errno") == want & 0xFFFF}.get(
                  kind, result.get("signal") == signal.SIGSYS)
    else:
        claim = "no SCMP_ARCH_X86: a 32-bit getpid is killed"
        ok = result.get("signal") == signal.SIGSYS
    seen = (f"killed by {_signal_name(result['signal'])}" if "signal" in result
            else "allowed" if result.get("errno") == 0
            else f"errno {result.get('errno')}")
    return Claim(HELD if ok else BROKEN, "linux.seccomp.architectures", claim, seen)


def _sample_claim(sample, result):
    want = sample.expected
    kind = want & 0xFFFF0000
    claim = f"{_call_text(sample.name, sample.args)} gets {seccomp.action_text(want)}"
    action = result.get("action")
    if action in ("setup", "timeout", None) or kind in (seccomp.ACT_TRACE, seccomp.ACT_NOTIFY):
        why = (f"the probe could not ask: {result.get('step', action)} "
               f"{_errno_text(result.get('errno', 0))}" if action != "allow" or kind not in (
                   seccomp.ACT_TRACE, seccomp.ACT_NOTIFY)
               else "the probe cannot tell TRACE or NOTIFY from allow")
        return Claim(NOT_CHECKED, sample.path, claim, why)
    seen_text = {"allow": "allowed", "errno": f"errno {result.get('errno')}",
                 "kill": f"killed by {_signal_name(result.get('signal'))}",
                 "trap": "SIGSYS (trap)",
                 "signal": f"ended by {_signal_name(result.get('signal'))}"}[action]
    ok = {seccomp.ACT_ALLOW: action == "allow", seccomp.ACT_LOG: action == "allow",
          seccomp.ACT_ERRNO: action == "errno" and result.get("errno") == want & 0xFFFF,
          seccomp.ACT_KILL_PROCESS: action == "kill", seccomp.ACT_KILL_THREAD: action == "kill",
          seccomp.ACT_TRAP: action == "trap"}[kind]
    if (not ok and action == "errno" and result.get("errno") == errno.ENOSYS
            and kind == seccomp.ACT_ERRNO):
        seen_text += " (runc answers ENOSYS for syscalls newer than every one the profile names)"
    if sample.note:
        seen_text += f"; {sample.note}"
    return Claim(HELD if ok else BROKEN, sample.path, claim, seen_text)


def _signal_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def namespace_claims(plan, seen):
    raw, host = plan.raw, plan.host
    live = seen.outside["ns"]
    claims = []
    listed = set()
    for i, entry in enumerate(_linux(raw).get("namespaces") or ()):
        kind, path = entry.get("type"), entry.get("path")
        name = NS_FILE.get(kind)
        listed.add(name)
        where = f"linux.namespaces[{i}] ({kind})"
        if live.get(name) is None:
            claims.append(Claim(NOT_CHECKED, where, "listed", "this kernel has no "
                                f"{kind} namespace"))
            continue
        here = f"{name}:[{live[name]}]"
        if path:
            want = host.joined.get(path)
            ok = want is not None and live[name] == want
            claims.append(Claim(HELD if ok else BROKEN, where, f"joins {path}",
                                f"{here}, {path} is [{want}]"))
        else:
            ok = live[name] != host.ns.get(name)
            claims.append(Claim(HELD if ok else BROKEN, where, "a new one",
                                f"{here}, the runtime's is [{host.ns.get(name)}]"))
        if kind == "network" and not path:
            res = seen.result("ifflags=lo")
            up = res.get("errno") == 0 and bool(res.get("flags", 0) & IFF_UP)
            evidence = (f"lo flags {res['flags']:#x}" if res.get("errno") == 0
                        else f"SIOCGIFFLAGS: {_errno_text(res.get('errno', 0))}")
            claims.append(Claim(HELD if up else BROKEN, where, "lo is up", evidence))
    shared = [n for k, n in NS_FILE.items() if n not in listed and n in live and n in host.ns]
    if shared:
        same = [n for n in shared if live[n] == host.ns[n]]
        ok = same == shared
        claims.append(Claim(HELD if ok else BROKEN, "linux.namespaces",
                            f"not listed, so the runtime's: {', '.join(shared)}",
                            "the same inodes" if ok else
                            f"new: {', '.join(n for n in shared if n not in same)}"))
    return claims


def name_claims(plan, seen):
    claims = []
    for key in ("hostname", "domainname"):
        if key in plan.raw:
            got = seen.report.get(key)
            claims.append(Claim(HELD if got == plan.raw[key] else BROKEN, key,
                                repr(plan.raw[key]), f"{key} {got!r}"))
    return claims


def process_claims(plan, seen):
    proc, report = _process(plan.raw), seen.report
    claims = []
    if "cwd" in proc:
        claims.append(Claim(HELD if report.get("cwd") == proc["cwd"] else BROKEN,
                            "process.cwd", proc["cwd"], f"getcwd {report.get('cwd')}"))
    env = proc.get("env") or []
    if env:
        missing = [e for e in env if e not in (report.get("env") or ())]
        claims.append(Claim(BROKEN if missing else HELD, "process.env",
                            f"{len(env)} variables",
                            f"missing: {', '.join(missing)}" if missing else "all present"))
    for i, limit in enumerate(proc.get("rlimits") or ()):
        kind = limit.get("type")
        want = [limit.get("soft"), limit.get("hard")]
        got = (report.get("rlimits") or {}).get(kind)
        where = f"process.rlimits[{i}] ({kind})"
        if got is None:
            claims.append(Claim(NOT_CHECKED, where, _limit_text(want), "the probe does not "
                                                                       "read this limit"))
        else:
            claims.append(Claim(HELD if got == want else BROKEN, where, _limit_text(want),
                                f"getrlimit {_limit_text(got)}"))
    if "oomScoreAdj" in proc:
        got = seen.outside.get("oom_score_adj")
        claims.append(Claim(HELD if got == proc["oomScoreAdj"] else BROKEN,
                            "process.oomScoreAdj", str(proc["oomScoreAdj"]),
                            f"/proc/PID/oom_score_adj {got}"))
    return claims


def _limit_text(pair):
    def one(v):
        return "unlimited" if v == (1 << 64) - 1 else str(v)
    return f"soft {one(pair[0])}, hard {one(pair[1])}"


def sysctl_claims(plan, seen):
    claims = []
    for key, want in (_linux(plan.raw).get("sysctl") or {}).items():
        res = seen.result(f"read=/proc/sys/{key.replace('.', '/')}")
        where = f"linux.sysctl[{key}]"
        if res.get("errno"):
            claims.append(Claim(BROKEN, where, want, f"read: {_errno_text(res['errno'])}"))
        elif res.get("bytes", 0) > 64:
            claims.append(Claim(NOT_CHECKED, where, want, "longer than the probe shows"))
        else:
            got = " ".join(res.get("head", "").split())
            claims.append(Claim(HELD if got == " ".join(want.split()) else BROKEN, where,
                                want, f"reads {got!r}"))
    return claims


def device_claims(plan, seen):
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    claims = []
    for i, d in enumerate(_linux(plan.raw).get("devices") or ()):
        res = seen.result(f"stat={d.get('path')}")
        where = f"linux.devices[{i}] ({d.get('path')})"
        text = f"{d.get('type')} {d.get('major', 0)}:{d.get('minor', 0)}"
        if res.get("errno"):
            claims.append(Claim(BROKEN, where, text, f"stat: {_errno_text(res['errno'])}"))
            continue
        mode = res["mode"]
        wrong = []
        if stat.S_IFMT(mode) != kinds.get(d.get("type")):
            wrong.append(f"file type {stat.S_IFMT(mode):o}")
        if d.get("type") != "p" and (res["major"], res["minor"]) != (d.get("major"),
                                                                      d.get("minor")):
            wrong.append(f"device {res['major']}:{res['minor']}")
        for key, got in (("fileMode", stat.S_IMODE(mode)), ("uid", res["uid"]),
                         ("gid", res["gid"])):
            if key in d and d[key] != got:
                wrong.append(f"{key} {got:o}" if key == "fileMode" else f"{key} {got}")
        claims.append(Claim(BROKEN if wrong else HELD, where, text,
                            ", ".join(wrong) or f"{res['major']}:{res['minor']}, mode "
                                                f"{stat.S_IMODE(mode):o}"))
    return claims


V1_UNLIMITED = 0x7FFFFFFFFFFFF000  # memory.limit_in_bytes when no limit is set (page-rounded)


# what resource_claims checks; any other linux.resources field is reported "not checked"
CHECKED_RESOURCES = {"memory": {"limit"}, "pids": {"limit"}, "devices": None}


def _denies_all(rule):
    return (isinstance(rule, dict) and rule.get("allow") is False
            and rule.get("type", "a") == "a" and rule.get("major") is None
            and rule.get("minor") is None and set(rule.get("access", "rwm")) == set("rwm"))


def resource_claims(plan, seen):
    """linux.resources against the cgroup files of the process: memory.limit, pids.limit,
    and a device list that starts by denying everything (the v1 devices.list must then not
    allow all devices)."""
    resources = _linux(plan.raw).get("resources") or {}
    have = seen.outside.get("cgroup_files", {})
    claims = []
    limit = (resources.get("memory") or {}).get("limit")
    if limit is not None:
        got = have.get("memory")
        # the kernel rounds a memory limit down to whole pages
        want = "max" if limit < 0 else limit - limit % os.sysconf("SC_PAGE_SIZE")
        shown = "none" if got in ("max", V1_UNLIMITED) else f"{got} bytes"
        ok = got == want or (want == "max" and got == V1_UNLIMITED)
        claims.append(Claim(HELD if ok else BROKEN, "linux.resources.memory.limit",
                            f"{limit} bytes" if limit >= 0 else "no limit",
                            f"the process's memory cgroup limits it to {shown}"))
    pids = (resources.get("pids") or {}).get("limit")
    if pids is not None:
        got = have.get("pids")
        want = "max" if pids <= 0 else pids
        shown = "any number" if got in (None, "max") else got
        claims.append(Claim(HELD if got == want else BROKEN, "linux.resources.pids.limit",
                            str(pids), f"the process's pids cgroup allows {shown}"))
    devices = resources.get("devices")
    if devices and _denies_all(devices[0]):
        listed = have.get("devices")
        if listed is None:
            claims.append(Claim(BROKEN, "linux.resources.devices[0]", "deny every device",
                                "no devices cgroup list could be read for the process"))
        else:
            open_all = "a *:* rwm" in listed
            claims.append(Claim(BROKEN if open_all else HELD, "linux.resources.devices[0]",
                                "deny every device the later rules do not allow",
                                "its devices cgroup allows " + ("every device" if open_all
                                                               else ", ".join(listed))))
    elif devices:
        claims.append(Claim(NOT_CHECKED, "linux.resources.devices", "set",
                            "only a list that starts by denying every device is checked"))
    for key, value in resources.items():
        checked = CHECKED_RESOURCES.get(key, set())
        if checked is None:
            continue
        fields = value if isinstance(value, dict) else {None: value}
        for field, v in fields.items():
            if field not in checked and v not in (None, False, [], {}):
                path = f"linux.resources.{key}" + (f".{field}" if field else "")
                claims.append(Claim(NOT_CHECKED, path, "set", "not checked"))
    return claims


def unchecked_claims(plan):
    raw = plan.raw
    claims = []
    for path, why in UNCHECKED:
        node = raw
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node not in (None, False, [], {}):
            claims.append(Claim(NOT_CHECKED, path, "set", why))
    return claims


def judge(plan, report, outside):
    """Every claim of plan's config, from the probe's report and the host's view."""
    seen = Seen(report, outside)
    claims = []
    for part in (user_claims, capability_claims, security_claims, namespace_claims,
                 name_claims, process_claims, sysctl_claims, device_claims, mount_claims,
                 path_claims, resource_claims):
        claims += part(plan, seen)
    return claims + unchecked_claims(plan)


# ---- one line per claim -------------------------------------------------------------------

def line(claim):
    verdict = claim.verdict.upper() if claim.verdict in (BROKEN, UNKEEPABLE) else claim.verdict
    text = f"{verdict:<12}{claim.path}: {claim.claim} (seen: {claim.seen})"
    return text + (f"\n{'':<14}why: {claim.why}" if claim.why else "")


def counts(claims):
    """ "40 held, 2 broken" """
    found = [(sum(c.verdict == v for c in claims), v) for v in VERDICTS]
    return ", ".join(f"{n} {v}" for n, v in found if n) or "none"


def summary(claims):
    return f"{len(claims)} claims: {counts(claims)}"
