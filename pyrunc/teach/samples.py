"""The seccomp calls verify and audit ask about: for each rule of linux.seccomp, calls (and
argument values) that meet and miss its conditions, with the action libseccomp's filter
takes for each, and samples of the default action."""
from typing import NamedTuple

from pyrunc.linux import seccomp
from pyrunc.teach.verdicts import NOT_CHECKED, Claim

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


class Sample(NamedTuple):
    path: str       # the rule's JSON path, or linux.seccomp.defaultAction
    name: str
    args: tuple     # (index, value) pairs, the others are 0
    expected: int   # libseccomp action value
    note: str       # why this sample says more than it seems, or ""


# ---- what the config says, in the probe's terms ---------------------------------------

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
