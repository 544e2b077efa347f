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

WRITE_TEST = "/.pyrunc-verify-write"

HELD, BROKEN, NOT_CHECKED = "held", "broken", "not checked"
# a claim no runtime can keep: the kernel refuses it whatever the runtime does; reported
# apart, with the reason and `check`'s finding, and it does not fail verify
UNKEEPABLE = "unkeepable"
VERDICTS = (HELD, BROKEN, UNKEEPABLE, NOT_CHECKED)

# statfs(2) flags and magic numbers
ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC = 1, 2, 4, 8
TMPFS_MAGIC = 0x01021994
IFF_UP = 1

# /proc/PID/status keys of the five capability sets
STATUS_KEY = {"bounding": "CapBnd", "effective": "CapEff", "inheritable": "CapInh",
              "permitted": "CapPrm", "ambient": "CapAmb"}

# seccomp samples for the default action: the first one no rule names. Old ones that
# Docker's profile denies (a deny-list allows them), and recent ones (a 2016 allow-list
# refuses them; runc answers ENOSYS for calls newer than the profile's newest).
DEFAULT_SAMPLES_OLD = ("ptrace", "mount", "unshare", "setns", "keyctl", "bpf", "reboot",
                       "kexec_load", "getppid", "getpid")
DEFAULT_SAMPLES_NEW = ("pidfd_open", "close_range", "openat2", "faccessat2", "epoll_pwait2",
                       "landlock_create_ruleset", "futex_waitv", "cachestat")
# what the probe's sys= needs besides the call; a filter that kills one of them would kill
# the probe itself (calls made with arguments the samples do not model: zero is assumed)
SYS_NEEDS = ("mmap", "clone", "rt_sigaction", "prctl", "seccomp", "ioctl", "poll", "wait4",
             "nanosleep", "kill", "exit_group", "close")

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


class Claim(NamedTuple):
    verdict: str    # held, broken, unkeepable, not checked
    path: str       # JSON path in config.json, with a hint: "mounts[1] (/dev)"
    claim: str      # what the config says
    seen: str       # the evidence
    why: str = ""   # for an unkeepable claim: why no runtime can keep it, and check's finding


class Host(NamedTuple):
    """Facts about the side that runs the container, taken when the plan is made."""
    ns: dict            # namespace name (as under /proc/PID/ns) -> inode, the runtime's own
    joined: dict        # namespace path in the config -> its inode (None: cannot stat it)
    last_cap: int       # the kernel's cap_last_cap
    seccomp_mode: int   # verify's own Seccomp mode: the container's when it has no filter


class Sample(NamedTuple):
    path: str       # the rule's JSON path, or linux.seccomp.defaultAction
    name: str
    args: tuple     # (index, value) pairs, the others are 0
    expected: int   # libseccomp action value
    note: str       # why this sample says more than it seems, or ""


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


def _linux(raw):
    return raw.get("linux") or {}


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


def _holds(cond, args):
    arg, op, a, b = cond
    v = args.get(arg, 0)
    return {1: v != a, 2: v < a, 3: v <= a, 4: v == a, 5: v >= a, 6: v > a,
            7: v & a == b}[op]


def _meeting(cond):
    """(a value meeting the condition, one missing it); None where no value can."""
    _, op, a, b = cond
    top = (1 << 64) - 1
    if op == 7:
        low = a & -a
        return (b if b & ~a == 0 else None), (b ^ low if a else None)
    up, down = (a + 1 if a < top else None), (a - 1 if a > 0 else None)
    return {1: (up if up is not None else down, a), 2: (down, a), 3: (a, up), 4: (a, up),
            5: (a, down), 6: (up, a)}[op]


def expected_action(section, name, args):
    """The action libseccomp's filter takes for syscall `name` with `args` ({index: value}):
    the first rule without conditions decides alone; otherwise the rules whose conditions
    hold, or the default. None when rules with different actions both hold (libseccomp
    leaves the order to its tree)."""
    rules = [r for r in section.effective() if name in r.names]
    for r in rules:
        if r.unconditional:
            return r.action
    hits = {r.action for r in rules if any(all(_holds(c, args) for c in g) for g in r.groups)}
    if len(hits) > 1:
        return None
    return hits.pop() if hits else section.default


def _decider(section, resolve):
    decider = {}
    for r in section.effective():
        if r.unconditional:
            for name in r.names:
                if resolve(name) is not None:
                    decider.setdefault(name, r)
    return decider


def seccomp_samples(node, warnings):
    """(samples, not-checked claims, the checked section, the name resolver) for the
    linux.seccomp model node."""
    section = seccomp.check_section(node)
    resolve = seccomp.syscall_resolver()
    known = {name for name, _ in seccomp.summarize(node, warnings)}  # rule names it knows
    decider = _decider(section, resolve)
    samples, skipped = [], []
    for rule in section.rules:
        names = [n for n in dict.fromkeys(rule.names) if n in known]
        if rule.action == section.default or not names:
            why = ("the same action as the default: it changes nothing" if names else
                   "no syscall name libseccomp knows")
            skipped.append(Claim(NOT_CHECKED, rule.path, "rule", why))
            continue
        risky = [n for n in names if n in seccomp.DOCKER_DENIED]
        picks = list(dict.fromkeys([names[0], *risky[:1], names[-1]]))
        for name in picks if rule.unconditional else picks[:1]:
            d = decider.get(name)
            note = (f"no effect: {d.path} gives {name} {seccomp.action_text(d.action)} "
                    "for any arguments" if d is not None and d is not rule else "")
            vectors = [()] if rule.unconditional else _vectors(rule)
            for args in vectors:
                action = expected_action(section, name, dict(args))
                if action is not None:
                    samples.append(Sample(rule.path, name, args, action, note))
    named = {n for r in section.rules for n in r.names}
    for candidates in (DEFAULT_SAMPLES_OLD, DEFAULT_SAMPLES_NEW):
        name = next((n for n in candidates if n not in named and resolve(n) is not None), None)
        if name is not None:
            samples.append(Sample(f"{node._path}.defaultAction", name, (), section.default,
                                  ""))
    return samples, skipped, section, resolve


def _vectors(rule):
    """Argument vectors ((index, value), ...) meeting each of the rule's first two groups
    of conditions, and one missing the first group."""
    out = []
    for group in rule.groups[:2]:
        meet = [(c[0], _meeting(c)[0]) for c in group]
        if all(v is not None for _, v in meet):
            out.append(tuple(sorted(meet)))
    first = rule.groups[0]
    miss = _meeting(first[0])[1]
    if miss is not None:
        others = [(c[0], _meeting(c)[0]) for c in first[1:]]
        if all(v is not None for _, v in others):
            out.append(tuple(sorted([(first[0][0], miss), *others])))
    return out


def _call_text(name, args):
    return f"{name}(" + ", ".join(f"arg{i}={v}" for i, v in args) + ")"


def _probe_killed_by(section):
    """A call the probe's sys= needs that this filter kills, or None."""
    for name in SYS_NEEDS:
        action = expected_action(section, name, {})
        if action is not None and action & 0xFFFF0000 in (seccomp.ACT_KILL_PROCESS,
                                                          seccomp.ACT_KILL_THREAD,
                                                          seccomp.ACT_TRAP):
            return name
    return None


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


def _errno_text(n):
    return f"{errno.errorcode.get(n, n)}" if n else "no answer"


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


# -- mounts

FLAG_OPTIONS = {"ro": "ro", "nosuid": "nosuid", "nodev": "nodev", "noexec": "noexec",
                "noatime": "noatime", "nodiratime": "nodiratime", "relatime": "relatime"}
CLEAR_OPTIONS = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec"}
STATFS_FLAGS = {"ro": ST_RDONLY, "nosuid": ST_NOSUID, "nodev": ST_NODEV, "noexec": ST_NOEXEC}
BIND_OPTIONS = {"bind", "rbind"}
# propagation and recursion: how the mount is made, not something it shows
HOW_OPTIONS = {"bind", "rbind", "private", "rprivate", "shared", "rshared", "slave",
               "rslave", "unbindable", "runbindable", "defaults", "async", "rro", "rrw",
               "rnosuid", "rnodev", "rnoexec"}


def _unescape(point):
    return point.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def _visible_mount(report, point):
    found = [m for m in report.get("mounts") or () if _unescape(m["mount_point"]) == point]
    return found[-1] if found else None


def _size_bytes(text):
    """tmpfs size= in bytes, or None for a percentage of RAM."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
             "e": 1 << 60}
    text = text.strip().lower()
    if text.endswith("%"):
        return None
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def mount_claims(plan, seen):
    raw, report = plan.raw, seen.report
    claims = []
    root = raw.get("root") or {}
    slash = _visible_mount(report, "/")
    opts = set(slash["options"].split(",")) if slash else set()
    if root.get("readonly") and "errno" not in seen.result(f"write={WRITE_TEST}"):
        # the host's view only (audit): nothing is written, the root mount's flags decide
        fs = seen.result("statfs=/")
        ro = fs.get("errno") == 0 and bool(fs["flags"] & ST_RDONLY)
        claims.append(Claim(HELD if "ro" in opts and ro else BROKEN, "root.readonly", "true",
                            f"/ mounted {'ro' if 'ro' in opts else 'rw'}; statfs: "
                            f"{'read-only' if ro else 'writable'} (nothing written)"))
    elif root.get("readonly"):
        res = seen.result(f"write={WRITE_TEST}")
        ok = "ro" in opts and res.get("errno") == errno.EROFS
        claims.append(Claim(HELD if ok else BROKEN, "root.readonly", "true",
                            f"/ mounted {'ro' if 'ro' in opts else 'rw'}; creating "
                            f"{WRITE_TEST}: {_errno_text(res.get('errno', 0)) or 'created'}"))
    else:
        claims.append(Claim(BROKEN if "ro" in opts else HELD, "root.readonly",
                            "false (writable)", f"/ mounted {'ro' if 'ro' in opts else 'rw'}"))
    mounts = raw.get("mounts") or []
    last = {m.get("destination"): i for i, m in enumerate(mounts)}
    for i, m in enumerate(mounts):
        dest = m.get("destination", "")
        where = f"mounts[{i}] ({dest})"
        options = m.get("options") or []
        text = " ".join([m.get("type") or "bind", *options])
        if last[dest] != i:
            claims.append(Claim(NOT_CHECKED, where, text, f"covered by mounts[{last[dest]}]"))
            continue
        claims.append(_mount_claim(where, m, text, _visible_mount(report, dest),
                                   seen.result(f"statfs={dest}"), seen.result(f"stat={dest}")))
    return claims


def _mount_claim(where, m, text, live, fs, st):
    if live is None:
        return Claim(BROKEN, where, text, "nothing mounted there")
    options = m.get("options") or []
    kind = m.get("type") or "bind"
    bind = kind == "bind" or BIND_OPTIONS & set(options)
    flags = set(live["options"].split(","))
    wrong, skipped, seen_parts = [], [], [live["fstype"]]
    if not bind and kind != live["fstype"] and not (
            kind == "cgroup" and live["fstype"] in ("cgroup2", "tmpfs")):
        wrong.append(f"type {live['fstype']}")
    for opt in options:
        key, _, value = opt.partition("=")
        if opt in FLAG_OPTIONS:
            if FLAG_OPTIONS[opt] not in flags:
                wrong.append(f"no {opt}")
        elif opt in CLEAR_OPTIONS:
            if CLEAR_OPTIONS[opt] in flags:
                wrong.append(f"{CLEAR_OPTIONS[opt]}, not {opt}")
        elif opt == "strictatime":
            if flags & {"relatime", "noatime"}:
                wrong.append("not strictatime")
        elif key == "size" and live["fstype"] == "tmpfs" and fs.get("errno") == 0:
            want = _size_bytes(value)
            got = fs["bsize"] * fs["blocks"]
            if want is None:
                skipped.append(opt)
            else:
                seen_parts.append(f"size {_bytes_text(got)}")
                pages = -(-want // fs["bsize"])   # tmpfs rounds up to whole pages
                if fs["blocks"] != pages:
                    wrong.append(f"size {_bytes_text(got)}, not {_bytes_text(want)}")
        elif key == "mode" and live["fstype"] == "tmpfs" and st.get("errno") == 0:
            got = stat.S_IMODE(st["mode"])
            seen_parts.append(f"mode {got:o}")
            if got != int(value, 8):
                wrong.append(f"mode {got:o}, not {value}")
        elif opt not in HOW_OPTIONS:
            skipped.append(opt)
    for opt, bit in STATFS_FLAGS.items():
        # statfs sees the flags of the mount the path is on: the same mount here
        if opt in options and fs.get("errno") == 0 and not fs["flags"] & bit:
            wrong.append(f"statfs without {opt}")
    shown = [o for o in live["options"].split(",") if o in FLAG_OPTIONS.values() or o == "rw"]
    seen_parts.insert(1, ",".join(shown))
    evidence = " ".join(seen_parts)
    if wrong:
        evidence += "; " + ", ".join(wrong)
    if skipped:
        evidence += f"; not checked: {', '.join(skipped)}"
    return Claim(BROKEN if wrong else HELD, where, text, evidence)


def _bytes_text(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def path_claims(plan, seen):
    claims = []
    for i, p in enumerate(_linux(plan.raw).get("maskedPaths") or ()):
        claims.append(_masked_claim(f"linux.maskedPaths[{i}] ({p})", seen.result(f"stat={p}"),
                                    seen.result(f"read={p}"), seen.result(f"ls={p}"),
                                    seen.result(f"statfs={p}")))
    for i, p in enumerate(_linux(plan.raw).get("readonlyPaths") or ()):
        claims.append(_readonly_claim(f"linux.readonlyPaths[{i}] ({p})", seen.result(f"stat={p}"),
                                      seen.result(f"openw={p}"), seen.result(f"chmod={p}"),
                                      seen.result(f"statfs={p}")))
    return claims


def _masked_claim(where, st, rd, ls, fs):
    if st.get("errno") == errno.ENOENT:
        return Claim(HELD, where, "hidden", "absent")
    if st.get("errno"):
        return Claim(NOT_CHECKED, where, "hidden", f"stat: {_errno_text(st['errno'])}")
    if stat.S_ISDIR(st["mode"]):
        if ls.get("errno"):
            return Claim(NOT_CHECKED, where, "hidden", f"list: {_errno_text(ls['errno'])}")
        entries = ls.get("entries", [])
        kind = " (a tmpfs)" if fs.get("type") == TMPFS_MAGIC else ""
        if entries:
            shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
            return Claim(BROKEN, where, "hidden", f"lists {len(entries)}: {shown}")
        return Claim(HELD, where, "hidden", f"an empty directory{kind}")
    devnull = stat.S_ISCHR(st["mode"]) and (st["major"], st["minor"]) == (1, 3)
    if rd.get("errno"):
        if devnull:
            return Claim(HELD, where, "hidden", "/dev/null over it")
        return Claim(NOT_CHECKED, where, "hidden", f"read: {_errno_text(rd['errno'])}")
    if rd.get("bytes", 0):
        return Claim(BROKEN, where, "hidden", f"reads {rd['bytes']} bytes: "
                                              f"{rd.get('head', '')[:24]!r}...")
    return Claim(HELD, where, "hidden", "reads 0 bytes" + (" (/dev/null over it)"
                                                           if devnull else ""))


def _readonly_claim(where, st, ow, ch, fs):
    if st.get("errno") == errno.ENOENT:
        return Claim(HELD, where, "read-only", "absent")
    if st.get("errno"):
        return Claim(NOT_CHECKED, where, "read-only", f"stat: {_errno_text(st['errno'])}")
    ro_mount = fs.get("errno") == 0 and bool(fs["flags"] & ST_RDONLY)
    mount_text = "a read-only mount" if ro_mount else "not a read-only mount"
    if "errno" not in ow and "errno" not in ch:
        # the host's view only (audit): nothing is written, the mount's flags decide
        return Claim(HELD if ro_mount else BROKEN, where, "read-only",
                     f"statfs: {mount_text} (nothing written)")
    # a file: open it for writing; a directory (or a file whose open the permissions
    # refuse first): chmod to its own mode, which meets a read-only mount before permissions
    is_file = not stat.S_ISDIR(st["mode"])
    if is_file and ow.get("errno") in (0, errno.EROFS):
        test, result = "open for writing", ow["errno"]
    else:
        test, result = "chmod", ch.get("errno")
    if result is None:
        return Claim(NOT_CHECKED, where, "read-only", f"{mount_text}; {test}: {ch.get('error')}")
    ok = result == errno.EROFS
    outcome = _errno_text(result) if result else "allowed"
    return Claim(HELD if ok else BROKEN, where, "read-only",
                 f"{test}: {outcome} ({mount_text})")


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


# ---- the host's view of the process ---------------------------------------------------

def outside_view(pid):
    """What the host sees of the container process."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    ns = {}
    for name in os.listdir(f"/proc/{pid}/ns"):
        ns[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
    maps = {}
    for key in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{key}") as f:
            maps[key] = [tuple(int(v) for v in line.split()) for line in f]
    with open(f"/proc/{pid}/oom_score_adj") as f:
        oom = int(f.read())
    return {"status": status, "ns": ns, "oom_score_adj": oom, "cgroup_files": cgroup_files(pid),
            **maps}


def cgroup_files(pid):
    """The limits the kernel enforces on pid, read from its cgroups as the host sees them:
    {"memory": bytes or "max", "pids": count or "max", "devices": the v1 devices.list
    lines}; a v1 hierarchy wins over cgroup2 for its controller, as on hybrid hosts."""
    places = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else ("",):
                places.setdefault(c, path)
    v2_root = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") \
        else "/sys/fs/cgroup"
    wanted = {"memory": ("memory/{}/memory.limit_in_bytes", "memory.max"),
              "pids": ("pids/{}/pids.max", "pids.max")}
    limits = {}
    if "devices" in places and os.path.isdir("/sys/fs/cgroup/devices"):
        try:
            with open(f"/sys/fs/cgroup/devices/{places['devices'].lstrip('/')}/devices.list") as f:
                limits["devices"] = f.read().split("\n")[:-1]
        except OSError:
            pass
    for controller, (v1_file, v2_file) in wanted.items():
        if controller in places and os.path.isdir(f"/sys/fs/cgroup/{controller}"):
            path = "/sys/fs/cgroup/" + v1_file.format(places[controller].lstrip("/"))
        elif "" in places:
            path = os.path.join(v2_root, places[""].lstrip("/"), v2_file)
        else:
            continue
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        limits[controller] = text if text == "max" else int(text)
    return limits


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
