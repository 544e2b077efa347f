"""linux.seccomp: compiled to BPF in the parent, loaded in the init just before execve.

    prepare(seccomp, warnings, strict, cache_dir)  parent, before any fork: validate, compile
                                                    (seccomp_compile.py, through the cache in
                                                    seccomp_cache.py), return a Filter
    load(filt)                                      init: seccomp(SECCOMP_SET_MODE_FILTER)
    seccomp_notify.send_listener(...)               runtime: SCMP_ACT_NOTIFY fd to the agent
    export_pfc / summarize / analyze                `pyrunc seccomp show`, `pyrunc check`

The spec maps onto libseccomp as runc (libcontainer/seccomp) and crun do it:
- each rule is added per syscall name with seccomp_rule_add_array (not the _exact variant:
  libseccomp may rewrite, e.g. socket -> socketcall on x86);
- a rule whose action equals the default is skipped (libseccomp refuses it with EACCES);
- names libseccomp does not know are skipped with a warning;
- several conditions on the same argument: libseccomp 2.5 refuses them in one rule (EINVAL),
  so each condition of such a rule becomes a rule of its own (runc's matchCall): the action
  applies when ANY of them matches;
- more than 32 syscall rules: libseccomp's binary-tree optimization (runc's threshold; 2.5.4
  misbehaves with it on an empty filter).
libseccomp 2.5.4, observed: for one syscall, a rule without conditions wins over every rule
with conditions whatever the order, and of two rules without conditions the first stays.

Only the parent's compile path imports seccomp_compile (the cffi binding, libseccomp); a
warm cache hit and the init need neither, and the init imports this module alone.
"""
import errno

from pyrunc import syscalls
from pyrunc.errors import PyruncError

STEP = "seccomp"

# seccomp(2) flags, linux/seccomp.h
FLAG_TSYNC = 1
FLAG_LOG = 2
FLAG_SPEC_ALLOW = 4
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16
FLAG_WAIT_KILLABLE_RECV = 32
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": FLAG_WAIT_KILLABLE_RECV,
}

# libseccomp's action values (seccomp.h): the kernel's SECCOMP_RET_*, data in the low 16 bits
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_NOTIFY = 0x7FC00000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
# errnoRet: ERRNO's is an errno (the kernel caps larger values at MAX_ERRNO), TRACE's a
# 16-bit message for the tracer; both default to EPERM (the spec; runc does the same).
ERRNO_RET_MAX = {"SCMP_ACT_ERRNO": 4095, "SCMP_ACT_TRACE": 0xFFFF}
_PERMISSIVE = (ACT_ALLOW, ACT_LOG)

# name -> (enum scmp_compare, text for people)
OPERATORS = {
    "SCMP_CMP_NE": (1, "!="),
    "SCMP_CMP_LT": (2, "<"),
    "SCMP_CMP_LE": (3, "<="),
    "SCMP_CMP_EQ": (4, "=="),
    "SCMP_CMP_GE": (5, ">="),
    "SCMP_CMP_GT": (6, ">"),
    "SCMP_CMP_MASKED_EQ": (7, "&"),
}
_OP_TEXT = {code: text for code, text in OPERATORS.values()}
_MASKED_EQ = 7

# After loading the filter the init hands the listener fd to the runtime (sendmsg) and runc
# refuses NOTIFY on write for the same reason: a notified hand-off blocks forever, since the
# agent that would answer it only gets the fd through that very call.
HANDOFF_SYSCALLS = ("write", "sendmsg")

# Where glibc (and other common callers) fall back to an older syscall only on ENOSYS, so a
# default of EPERM or a kill breaks them. rseq is not here: glibc ignores any error from it.
ENOSYS_FALLBACKS = {
    "clone3": "pthread_create and posix_spawn (glibc 2.34+) fall back to clone",
    "faccessat2": "faccessat with flags (glibc 2.33+; bash's [ -x ], eaccess) falls back "
                  "to faccessat",
    "statx": "statx() (coreutils ls, stat; 32-bit stat in glibc 2.33+) falls back to fstatat",
    "openat2": "runc, crun and systemd fall back to openat",
    "close_range": "callers closing inherited fds fall back to closing them one by one",
    "fchmodat2": "fchmodat with AT_SYMLINK_NOFOLLOW (glibc 2.39+; tar, cp -a) falls back",
}
# glibc 2.34+ 32-bit programs call the 64-bit-time syscalls first
TIME64_SYSCALLS = (
    "clock_gettime64", "clock_settime64", "clock_adjtime64", "clock_getres_time64",
    "clock_nanosleep_time64", "timer_gettime64", "timer_settime64", "timerfd_gettime64",
    "timerfd_settime64", "utimensat_time64", "pselect6_time64", "ppoll_time64",
    "io_pgetevents_time64", "recvmmsg_time64", "mq_timedsend_time64",
    "mq_timedreceive_time64", "semtimedop_time64", "rt_sigtimedwait_time64", "futex_time64",
    "sched_rr_get_interval_time64",
)
ARCHES_32BIT_TIME = ("SCMP_ARCH_X86", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPSEL",
                     "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
                     "SCMP_ARCH_S390", "SCMP_ARCH_PARISC")
# Denied by Docker's default profile: kernel attack surface a container rarely needs
# (modules, kexec, keyrings, bpf, mounts, tracing other processes, the clock, swap, reboot).
DOCKER_DENIED = frozenset((
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "init_module", "ioperm", "iopl",
    "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
    "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
    "quotactl", "reboot", "request_key", "setns", "settimeofday", "swapoff", "swapon",
    "_sysctl", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
))


class Filter:
    """What the init needs: `bpf` (bytes of struct sock_filter[]) and `flags` for seccomp(2).
    `listener_path` / `listener_metadata` are set only with linux.seccomp.listenerPath."""
    __slots__ = ("bpf", "flags", "listener_path", "listener_metadata")

    def __init__(self, bpf, flags, listener_path=None, listener_metadata=None):
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata

    def __repr__(self):
        return (f"Filter(<{len(self.bpf) // 8} instructions>, flags={self.flags:#x}, "
                f"listener_path={self.listener_path!r})")


class _Rule:
    """One syscalls[i] entry, checked. `groups`: condition tuples (arg, op, a, b), one group
    per libseccomp rule; ((),) for a rule without conditions."""
    __slots__ = ("index", "path", "action", "names", "groups")

    def __init__(self, index, path, action, names, groups):
        self.index, self.path, self.action, self.names, self.groups = (
            index, path, action, names, groups)

    @property
    def unconditional(self):
        return self.groups == ((),)


class _Section:
    __slots__ = ("node", "path", "default", "flags", "rules")

    def __init__(self, node, default, flags, rules):
        self.node, self.path, self.default, self.flags, self.rules = (
            node, node._path, default, flags, rules)

    def effective(self):
        """The rules libseccomp gets: those whose action differs from the default."""
        return [r for r in self.rules if r.action != self.default]

    @property
    def notify(self):
        return any(r.action == ACT_NOTIFY for r in self.rules)


def error(message, path):
    return PyruncError(message, path=path, step=STEP)


def _action(name, errno_ret, path, errno_path):
    value = ACTIONS.get(name)
    if value is None:
        raise error(f"unknown action {name!r} (known: {', '.join(ACTIONS)})", path)
    limit = ERRNO_RET_MAX.get(name)
    if limit is None:
        if errno_ret is not None:
            raise error(f"errnoRet only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, "
                         f"not {name}", errno_path)
        return value
    if errno_ret is None:
        return value | errno.EPERM
    if errno_ret > limit:
        raise error(f"{errno_ret} is above {limit}, the largest value {name} can return",
                     errno_path)
    return value | errno_ret


def _groups(node):
    if not node.args:
        return ((),)
    conds, seen, repeated = [], set(), False
    for arg in node.args:
        op = OPERATORS.get(arg.op)
        if op is None:
            raise error(f"unknown operator {arg.op!r} (known: {', '.join(OPERATORS)})",
                         f"{arg._path}.op")
        repeated |= arg.index in seen
        seen.add(arg.index)
        conds.append((arg.index, op[0], arg.value, arg.valueTwo or 0))
    return tuple((c,) for c in conds) if repeated else (tuple(conds),)


def check_section(seccomp):
    """Everything about the section that needs no libseccomp; raises PyruncError."""
    p = seccomp._path
    default = _action(seccomp.defaultAction, seccomp.defaultErrnoRet,
                      f"{p}.defaultAction", f"{p}.defaultErrnoRet")
    if default == ACT_NOTIFY:
        raise error("SCMP_ACT_NOTIFY cannot be the default action: the init's own calls "
                     "after loading the filter would wait for an agent that has no fd yet",
                     f"{p}.defaultAction")
    flags = 0
    for i, name in enumerate(seccomp.flags or ()):
        if name not in FLAGS:
            raise error(f"unknown flag {name!r} (known: {', '.join(FLAGS)})", f"{p}.flags[{i}]")
        flags |= FLAGS[name]
    if seccomp.listenerMetadata is not None and seccomp.listenerPath is None:
        raise error("listenerMetadata needs listenerPath", f"{p}.listenerMetadata")
    rules = []
    for i, node in enumerate(seccomp.syscalls or ()):
        action = _action(node.action, node.errnoRet, f"{node._path}.action",
                         f"{node._path}.errnoRet")
        if not node.names:
            raise error("needs at least one syscall name", f"{node._path}.names")
        if action == ACT_NOTIFY:
            if seccomp.listenerPath is None:
                raise error("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath",
                             f"{node._path}.action")
            for j, name in enumerate(node.names):
                if name in HANDOFF_SYSCALLS:
                    raise error(f"SCMP_ACT_NOTIFY cannot be used for {name}: the init hands "
                                 "the listener fd over with it, so nobody could answer",
                                 f"{node._path}.names[{j}]")
        rules.append(_Rule(i, node._path, action, tuple(node.names), _groups(node)))
    return _Section(seccomp, default, flags, rules)


def _problem(warnings, strict, path, text):
    if strict:
        raise error(text, path)
    warnings.append(f"{path}: {text}")


def _report_unknown(section, unknown, warnings, strict):
    for i, j in unknown:
        name = section.rules[i].names[j]
        _problem(warnings, strict, f"{section.rules[i].path}.names[{j}]",
                 f"unknown syscall {name!r}, skipped")


def syscall_resolver():
    """name -> its syscall number for libseccomp, None when unknown (seccomp_compile.py)."""
    from pyrunc.linux import seccomp_compile
    return seccomp_compile.syscall_resolver()


# --- the interface -----------------------------------------------------------------------

def _kernel_has_flag(flag):
    """seccomp(2) checks its flags before reading the program: with a NULL program, EFAULT
    means the flags are accepted, EINVAL that this kernel does not know one."""
    try:
        syscalls.syscall(syscalls.SYS_seccomp, 1, flag, 0, what="seccomp")
    except OSError as err:
        return err.errno == errno.EFAULT
    return True     # not reached: the kernel cannot read a NULL program


def _flags(section, warnings, strict):
    flags = section.flags
    # a listenerPath without any SCMP_ACT_NOTIFY rule still gets the listener fd, as crun
    # sends it: the agent would otherwise wait for it forever (runc sends nothing)
    listener = section.notify or section.node.listenerPath is not None
    if listener:
        flags |= FLAG_NEW_LISTENER
        if flags & FLAG_TSYNC:          # the kernel refuses TSYNC with NEW_LISTENER otherwise
            flags |= FLAG_TSYNC_ESRCH
    if flags & FLAG_WAIT_KILLABLE_RECV:
        where = (f"{section.path}.flags["
                 f"{section.node.flags.index('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')}]")
        if not listener:
            _problem(warnings, strict, where, "has no effect without an SCMP_ACT_NOTIFY rule "
                                              "or listenerPath (the kernel refuses it alone), "
                                              "ignored")
            flags &= ~FLAG_WAIT_KILLABLE_RECV
        elif not _kernel_has_flag(FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV):
            _problem(warnings, strict, where, "not supported by this kernel (Linux 5.19+), "
                                              "ignored")
            flags &= ~FLAG_WAIT_KILLABLE_RECV
    return flags


def prepare(seccomp, warnings, strict, cache_dir=None):
    """linux.seccomp (model node or None) -> Filter, or None without a seccomp section.

    Raises PyruncError (path = the JSON path, step "seccomp") for anything the spec or
    libseccomp refuses. Unknown syscall names are skipped with a warning (an error in strict
    mode). With cache_dir, the BPF is kept there by a hash of the section, the libseccomp
    file and a format number; a hit does not touch libseccomp at all.
    """
    if seccomp is None:
        return None
    section = check_section(seccomp)
    flags = _flags(section, warnings, strict)
    from pyrunc.linux import seccomp_cache
    bpf, unknown = seccomp_cache.compile_cached(section, cache_dir, warnings)
    _report_unknown(section, unknown, warnings, strict)
    if seccomp.listenerPath is None:
        return Filter(bpf, flags)
    return Filter(bpf, flags, seccomp.listenerPath, seccomp.listenerMetadata)


_LOAD_HINTS = {
    errno.EACCES: " (seccomp(2) needs no_new_privs or CAP_SYS_ADMIN)",
    errno.EINVAL: " (a flag or action this kernel does not support?)",
}


def load(filt):
    """In the init, as late as possible: install the filter. Returns the listener fd when
    the config names a listenerPath, else None."""
    try:
        fd = syscalls.seccomp_set_mode_filter(filt.bpf, filt.flags)
    except OSError as err:
        raise PyruncError(err.strerror + _LOAD_HINTS.get(err.errno, ""), path="linux.seccomp",
                          step=STEP, errno=err.errno) from None
    return fd if filt.flags & FLAG_NEW_LISTENER else None


def export_pfc(seccomp, warnings):
    """libseccomp's pseudo filter code for the same filter prepare() builds."""
    if seccomp is None:
        raise error("no seccomp section: every syscall is allowed", "linux.seccomp")
    section = check_section(seccomp)
    from pyrunc.linux import seccomp_compile
    pfc, unknown = seccomp_compile.export(section, "pfc")
    _report_unknown(section, unknown, warnings, False)
    return pfc.decode()


def _number(v):
    return str(v) if v < 0x10000 else hex(v)


def _cond_text(cond):
    arg, op, a, b = cond
    if op == _MASKED_EQ:
        return f"arg{arg} & {hex(a)} == {_number(b)}"
    return f"arg{arg} {_OP_TEXT[op]} {_number(a)}"


def action_text(value):
    """An action value for people: "allow", "errno 1", "kill the process", ..."""
    data = value & 0xFFFF
    return {ACT_ALLOW: "allow", ACT_LOG: "log and allow", ACT_KILL_THREAD: "kill the thread",
            ACT_KILL_PROCESS: "kill the process", ACT_TRAP: "SIGSYS (trap)",
            ACT_NOTIFY: "ask the listener (notify)", ACT_ERRNO: f"errno {data}",
            ACT_TRACE: f"tracer event {data}"}[value & 0xFFFF0000]


def summarize(seccomp, warnings):
    """[(syscall, what it gets)] for every name a rule mentions, then ("everything else",
    the default): ("kill", "allow"), ("socket", "errno 1 if arg0 != 2, else allow").
    Follows libseccomp: a rule without conditions decides its syscalls alone."""
    if seccomp is None:
        return [("everything else", "allow (no seccomp filter)")]
    section = check_section(seccomp)
    resolve = syscall_resolver()
    rules_of = {}
    for rule in section.rules:
        for j, name in enumerate(rule.names):
            if rule.action == section.default:     # skipped, as prepare() does
                rules_of.setdefault(name, [])
            elif resolve(name) is None:
                warnings.append(f"{rule.path}.names[{j}]: unknown syscall {name!r}, skipped")
            elif rule not in rules_of.setdefault(name, []):
                rules_of[name].append(rule)
    default = action_text(section.default)
    summary = []
    for name, rules in rules_of.items():
        first = next((r for r in rules if r.unconditional), None)
        if first is not None:
            summary.append((name, action_text(first.action)))
        elif rules:
            parts = [f"{action_text(r.action)} if "
                     + " or ".join(" and ".join(map(_cond_text, g)) for g in r.groups)
                     for r in rules]
            summary.append((name, ", ".join(parts) + f", else {default}"))
        else:
            summary.append((name, default))
    summary.append(("everything else", default))
    return summary


def _them(names):
    return ", ".join(names), "it" if len(names) == 1 else "them"


def _shadowed(rule, d, names, is_default):
    """The finding for `rule`, whose `names` rule `d` already decides for any arguments."""
    names_text, them = _them(names)
    given = action_text(d.action)
    if rule.unconditional and rule.action == d.action:
        return "low", rule.path, f"{names_text}: already given {given} by {d.path}"
    level = "high" if rule.action not in _PERMISSIVE and d.action in _PERMISSIVE else "medium"
    if is_default:
        why = (f"and this rule only repeats the default action; to narrow {d.path}, remove "
               f"{them} there and allow {them} under the opposite conditions")
    elif rule.unconditional:
        why = "libseccomp keeps the first rule without conditions"
    elif d.index > rule.index:
        why = "a rule without conditions wins whatever the order"
    else:
        why = f"remove {them} there for these conditions to count"
    return level, rule.path, (f"no effect on {names_text}: {d.path} already gives {them} "
                              f"{given} for any arguments ({why})")


def analyze(seccomp):
    """Static findings for `pyrunc check`: [(level, json_path, message)], level one of
    low, medium, high, extreme. Raises PyruncError where prepare() would."""
    if seccomp is None:
        return [("high", "linux.seccomp", "no seccomp filter: the container can make every "
                 "syscall the kernel offers (Docker's default profile denies about 50, e.g. "
                 "keyctl, bpf, kexec_load, open_by_handle_at)")]
    from pyrunc.linux import seccomp_compile
    section = check_section(seccomp)
    seccomp_compile.arch_tokens(section)
    resolve = syscall_resolver()
    p, default = section.path, section.default
    effective = section.effective()
    findings = []

    # (d) a default that allows everything
    if default in _PERMISSIVE:
        if all(r.action in _PERMISSIVE for r in effective):
            findings.append(("high", f"{p}.defaultAction", f"{seccomp.defaultAction} and no "
                             "rule restricts anything: the filter allows every syscall"))
        else:
            findings.append(("medium", f"{p}.defaultAction", f"a deny-list: "
                             f"{seccomp.defaultAction} allows every syscall no rule names, "
                             "including those newer kernels add; an allow-list (defaultAction "
                             "SCMP_ACT_ERRNO) fails closed"))

    # a rule without conditions decides its syscalls alone (libseccomp)
    decider = {}
    for rule in effective:
        if rule.unconditional:
            for name in rule.names:
                if resolve(name) is not None:
                    decider.setdefault(name, rule)

    for rule in section.rules:
        shadowed = {}
        for name in dict.fromkeys(rule.names):
            d = decider.get(name)
            if d is not None and d is not rule:
                shadowed.setdefault(d.index, (d, []))[1].append(name)
        # (a) rules that never apply
        for d, names in shadowed.values():
            findings.append(_shadowed(rule, d, names, rule.action == default))
        if rule.action == default:
            if not shadowed:
                findings.append(("low", f"{rule.path}.action", "the same as the default "
                                 "action: the rule changes nothing"))
            continue
        # (b) names libseccomp does not know
        for j, name in enumerate(rule.names):
            if resolve(name) is None:
                lost_deny = default in _PERMISSIVE and rule.action not in _PERMISSIVE
                findings.append(("medium" if lost_deny else "low", f"{rule.path}.names[{j}]",
                                 f"unknown syscall {name!r} (libseccomp {seccomp_compile.version()} does not "
                                 "know it): the rule leaves it out"))
        if len(rule.groups) > 1:
            findings.append(("low", f"{rule.path}.args", "several conditions on one argument: "
                             "as in runc, each condition becomes a rule of its own, so the "
                             "action applies when any one matches (or), not all (and)"))

    # (c) syscalls callers retry with an older one only on ENOSYS
    # (a TRACE default without a tracer returns ENOSYS itself)
    if default not in _PERMISSIVE and default != (ACT_ERRNO | errno.ENOSYS) \
            and (default & 0xFFFF0000) != ACT_TRACE:
        def undecided(names):
            return [n for n in names if n not in decider and resolve(n) is not None]
        missing = undecided(ENOSYS_FALLBACKS)
        reasons = [f"{n}: {ENOSYS_FALLBACKS[n]}" for n in missing]
        if any(a in ARCHES_32BIT_TIME for a in seccomp.architectures or ()):
            time64 = undecided(TIME64_SYSCALLS)
            if time64:
                missing += time64
                reasons.append("*_time64: 32-bit programs (glibc 2.34+) fall back to the "
                               "32-bit-time syscalls")
        if missing:
            where = (f"{p}.defaultErrnoRet" if seccomp.defaultErrnoRet is not None
                     else f"{p}.defaultAction")
            findings.append(("medium", where, f"{action_text(default)} for "
                             f"{', '.join(missing)}, which callers retry with an older "
                             f"syscall only on ENOSYS ({'; '.join(reasons)}); add a rule "
                             "giving them SCMP_ACT_ERRNO with errnoRet 38 (ENOSYS), as "
                             "Docker's profile does for clone3"))

    # kernel attack surface allowed outright
    for rule in effective:
        if rule.unconditional and rule.action in _PERMISSIVE:
            risky = [n for n in dict.fromkeys(rule.names)
                     if n in DOCKER_DENIED and decider.get(n) is rule]
            if risky:
                findings.append(("medium", rule.path, f"allows {', '.join(risky)}, which "
                                 "Docker's default profile denies (kernel attack surface: "
                                 "modules, kexec, keyrings, bpf, mounts, ptrace); most also "
                                 "need a capability, see process.capabilities"))
    return findings
