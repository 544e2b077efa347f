"""pyrunc audit ID|PID: what the kernel applies to a running container, seen from the host.

    pyrunc audit ID|PID [--runtime pyrunc|runc|crun] [--root DIR] [--bundle DIR]
                        [--format text|json]

For a container of any runtime: found by its id in the runtime's state (pyrunc's and
runc's state.json, crun's status, under --root or the runtime's default root; podman's and
containerd's containers are their OCI runtime's, under the root they give it, with the
bundle it names), or by the pid of its process. It reports, from /proc/PID and
the kernel, never from inside: the user and groups, the five capability sets,
NoNewPrivs, the seccomp mode and the filters themselves (read back with
PTRACE_SECCOMP_GET_FILTER and run on paper, per syscall, as `seccomp show` prints a
config's), the namespaces against the host's (audit's own), the uid/gid maps, the mount table
(with each mount's propagation), the cgroup limits, the interfaces and addresses of its
network namespace and its LSM labels. That covers every check of the article's
container-security-check.sh (id, Cap*, Seccomp, /proc/1/ns, mount, ip addr), without
`docker exec`.

Given the container's config (the runtime state's bundle, or --bundle), each claim of it
is judged as `pyrunc verify` judges it (pyrunc/teach/claims.py), from the host's view
alone: files are stat'ed, read and listed through /proc/PID/root with openat2
RESOLVE_IN_ROOT (a symlink in the container cannot lead out of it), nothing is written
(a read-only root or path is judged by its mount's flags), seccomp samples are answered by
the filters read back, and the hostname, sysctls and interfaces by a child of audit that
joins the container's uts, ipc and network namespaces (not its mount or pid namespace, so
nothing of the container runs or is run in it). Exit status: 0 (no config, or every
claim held or could not be checked), 1 a claim broke, 2 the container was not found.
"""
import errno
import json
import os
import signal
import stat
import sys
from typing import NamedTuple

from pyrunc import syscalls
from pyrunc.errors import PyruncError
from pyrunc.spec import load_config
from pyrunc.teach import bpf
from pyrunc.teach.claims import (BROKEN, SETS, STATUS_KEY, Plan, _cap_names, host_facts,
                                 judge, line, summary)
from pyrunc.teach.outside import outside_view

ROOTS = {"pyrunc": "/run/pyrunc", "runc": "/run/runc", "crun": "/run/crun"}
PROC_LIMITS = {"Max cpu time": "RLIMIT_CPU", "Max file size": "RLIMIT_FSIZE",
               "Max data size": "RLIMIT_DATA", "Max stack size": "RLIMIT_STACK",
               "Max core file size": "RLIMIT_CORE", "Max resident set": "RLIMIT_RSS",
               "Max processes": "RLIMIT_NPROC", "Max open files": "RLIMIT_NOFILE",
               "Max locked memory": "RLIMIT_MEMLOCK", "Max address space": "RLIMIT_AS",
               "Max file locks": "RLIMIT_LOCKS", "Max pending signals": "RLIMIT_SIGPENDING",
               "Max msgqueue size": "RLIMIT_MSGQUEUE", "Max nice priority": "RLIMIT_NICE",
               "Max realtime priority": "RLIMIT_RTPRIO",
               "Max realtime timeout": "RLIMIT_RTTIME"}
# Every check of the article's container-security-check.sh (examples/article/), run there
# inside the container with `docker exec ID ...`: the audit line that makes it from the
# host, and the field of `--format json` that holds the answer (tests hold the two to the
# script's own answers, and fail on a check of the script that is not here).
ARTICLE_CHECKS = (
    ("id", "user", "seen.outside.status.Uid"),
    ("grep Cap /proc/1/status", "capabilities", "seen.outside.status.CapEff"),
    ("grep Seccomp /proc/1/status", "seccomp", "seen.outside.status.Seccomp"),
    ("ls -la /proc/1/ns/", "namespaces", "seen.outside.ns"),
    ('mount | grep -E "(proc|sys|dev)"', "mounts", "seen.mounts"),
    ("ip addr show", "network", "seen.namespaces.interfaces"),
)
UNLIMITED = (1 << 64) - 1
READ_LIMIT = 64         # bytes of a file shown, as the probe shows


class Target(NamedTuple):
    pid: int
    start: str          # /proc/PID/stat's start time when the state records it, else None
    label: str          # "runc container ID", "pid N"
    config: str         # the config.json to judge against, or None


# ---- finding the container -------------------------------------------------------------

def locate(target, runtime=None, root=None, bundle=None):
    """The Target for an id (in a runtime's state) or a pid."""
    for name in ([runtime] if runtime else list(ROOTS)):
        base = root or ROOTS.get(name)
        if base is None:
            raise PyruncError(f"--runtime {name}: give its state directory with --root "
                              "(or the container's pid)")
        if "/" in target or target in (".", ".."):
            break
        found = _from_state(name, os.path.join(base, target), bundle,
                            root is not None and runtime is None)
        if found is not None:
            return found
    if target.isdigit():
        pid = int(target)
        if not os.path.isdir(f"/proc/{pid}"):
            raise PyruncError(f"pid {pid}: no such process")
        config = os.path.join(bundle, "config.json") if bundle else None
        return Target(pid, None, f"pid {pid}", config)
    where = root or ", ".join(ROOTS[n] for n in ([runtime] if runtime else ROOTS))
    raise PyruncError(f"{target}: no such container under {where} (give --runtime and "
                      "--root, or the container's pid)")


def _from_state(runtime, directory, bundle, root_given):
    for name in ("state.json", "status"):
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            raise PyruncError(f"{path}: not a runtime's state ({e})") from None
        if not isinstance(data, dict):
            raise PyruncError(f"{path}: not a runtime's state")
        pid = data.get("pid", data.get("init_process_pid"))
        start = next((data[k] for k in ("pidStartTime", "init_process_start",
                                        "process-start-time") if data.get(k)), None)
        labels = (data.get("config") or {}).get("labels") or []
        own = data.get("bundle") or next((label[len("bundle="):] for label in labels
                                          if label.startswith("bundle=")), None)
        if not isinstance(pid, int) or pid <= 0:
            raise PyruncError(f"{path}: no pid (the container is not running)")
        # the config the container was created with, when the runtime keeps a copy
        kept = os.path.join(directory, "config.json")
        config = (os.path.join(bundle, "config.json") if bundle
                  else kept if os.path.isfile(kept)
                  else os.path.join(own, "config.json") if own else None)
        ident = os.path.basename(directory)
        if root_given:  # the format says whose state it is
            runtime = ("crun" if name == "status" else "runc" if "init_process_pid" in data
                       else "pyrunc")
        return Target(pid, None if start is None else str(start),
                      f"{runtime} container {ident}", config)
    return None


def _start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


# ---- what the host sees ----------------------------------------------------------------

def mount_table(pid):
    """/proc/PID/mountinfo as the probe reports it, with each mount's propagation."""
    table = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for text in f:
            fields = text.split()
            dash = fields.index("-")
            tags = fields[6:dash]
            propagation = " ".join(tags) if tags else "private"
            table.append({"mount_point": fields[4], "root": fields[3], "options": fields[5],
                          "fstype": fields[dash + 1], "source": fields[dash + 2],
                          "super": fields[dash + 3] if len(fields) > dash + 3 else "",
                          "propagation": propagation})
    return table


def _limits(pid):
    found = {}
    with open(f"/proc/{pid}/limits") as f:
        for text in f.readlines()[1:]:
            name = text[:26].strip()
            soft, hard = text[26:47].strip(), text[47:68].strip()
            if name in PROC_LIMITS:
                found[PROC_LIMITS[name]] = [UNLIMITED if v == "unlimited" else int(v)
                                            for v in (soft, hard)]
    return found


def _lsm(pid):
    labels = {}
    for name in ("current", "apparmor/current", "smack/current"):
        try:
            with open(f"/proc/{pid}/attr/{name}") as f:
                labels[name] = f.read().strip("\x00\n")
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                labels[name] = f"unreadable: {errno.errorcode.get(e.errno, e.errno)}"
    return labels


def _from_container(ident, mappings):
    """A host id as the container sees it (the reverse of the id maps)."""
    for container, host, size in mappings:
        if host <= ident < host + size:
            return container + ident - host
    return 65534


def in_root(pid, path, flags=os.O_PATH):
    """An fd of `path` resolved inside pid's root (openat2 RESOLVE_IN_ROOT: absolute
    symlinks and .. stay inside), or an OSError."""
    root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY)
    try:
        return syscalls.openat2(root, path.lstrip("/") or ".", flags | os.O_CLOEXEC,
                                syscalls.RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(root)


RESOLVE_NO_MAGICLINKS = 0x02


def _path_result(pid, word):
    """The probe's answer to stat=, statfs=, read= or ls= for a path, from the host."""
    kind, _, path = word.partition("=")
    try:
        if kind == "read":
            fd = in_root(pid, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        elif kind == "ls":
            fd = in_root(pid, path, os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd = in_root(pid, path)
    except OSError as e:
        return {"errno": e.errno}
    try:
        if kind == "stat":
            st = os.fstat(fd)
            return {"errno": 0, "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                    "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                    "size": st.st_size}
        if kind == "statfs":
            vfs = os.fstatvfs(fd)
            return {"errno": 0, "bsize": vfs.f_bsize, "blocks": vfs.f_blocks,
                    "flags": vfs.f_flag}
        if kind == "ls":
            return {"errno": 0, "entries": sorted(os.listdir(fd))}
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return {"errno": errno.EISDIR}
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            return {"errno": errno.EINVAL}
        data = os.read(fd, READ_LIMIT + 1)
        return {"errno": 0, "bytes": len(data), "head": data[:READ_LIMIT].decode(
            "utf-8", "replace")}
    except OSError as e:
        return {"errno": e.errno}
    finally:
        os.close(fd)


def namespace_view(pid, sysctls):
    """From a child that joins pid's uts, ipc and network namespaces: hostname,
    domainname, the sysctls asked for, lo's flags, every interface and its addresses."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        status = 0
        try:
            result = _inside_namespaces(pid, sysctls)
        except PyruncError as e:
            result = {"error": str(e)}
            status = 1
        except BaseException as e:  # the parent gets the reason, never a traceback
            result = {"error": f"{type(e).__name__}: {e}"}
            status = 1
        os.write(w, json.dumps(result).encode())
        os._exit(status)
    os.close(w)
    chunks = []
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    os.waitpid(child, 0)
    return json.loads(b"".join(chunks) or b'{"error": "no answer"}')


def _inside_namespaces(pid, sysctls):
    for name, flag in (("uts", syscalls.CLONE_NEWUTS), ("ipc", syscalls.CLONE_NEWIPC),
                       ("net", syscalls.CLONE_NEWNET)):
        fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        syscalls.setns(fd, flag, what=f"setns {name}")
        os.close(fd)
    answers = {}
    for key in sysctls:
        try:
            with open(f"/proc/sys/{key.replace('.', '/')}", "rb") as f:
                data = f.read(READ_LIMIT + 1)
            answers[key] = {"errno": 0, "bytes": len(data),
                            "head": data[:READ_LIMIT].decode("utf-8", "replace")}
        except OSError as e:
            answers[key] = {"errno": e.errno}
    with open("/proc/sys/kernel/domainname") as f:
        domainname = f.read().strip()
    try:
        from pyroute2 import IPRoute     # ~350 ms to import: only audit pays it
    except ImportError:
        raise PyruncError("pyroute2 is not installed (pip install 'pyrunc[net]'), so the "
                          "interfaces cannot be listed") from None
    interfaces = []
    with IPRoute() as ip:
        addrs = {}
        for a in ip.get_addr():
            addrs.setdefault(a["index"], []).append(
                f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        for link in ip.get_links():
            interfaces.append({"name": link.get_attr("IFLA_IFNAME"), "flags": link["flags"],
                               "up": bool(link["flags"] & 1),
                               "addresses": addrs.get(link["index"], [])})
    return {"hostname": os.uname().nodename, "domainname": domainname,
            "sysctls": answers, "interfaces": interfaces}


def read_seccomp(pid):
    """{"filters": [program, ...]} or {"error": why} when they cannot be read back."""
    try:
        return {"filters": bpf.read_filters(pid)}
    except OSError as e:
        return {"error": f"PTRACE_SECCOMP_GET_FILTER: {e.strerror}"}


def facts(pid):
    """Everything audit reads about pid, in JSON's types."""
    outside = outside_view(pid)
    host_ns = {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in os.listdir("/proc/self/ns")}
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = [e.decode("utf-8", "replace") for e in f.read().split(b"\0") if e]
    with open(f"/proc/{pid}/cgroup") as f:
        cgroups = f.read().split("\n")[:-1]
    return {"pid": pid, "outside": outside, "host_ns": host_ns, "env": env,
            "cwd": os.readlink(f"/proc/{pid}/cwd"), "rlimits": _limits(pid),
            "mounts": mount_table(pid), "cgroups": cgroups, "lsm": _lsm(pid),
            "seccomp": read_seccomp(pid)}


# ---- the claims ------------------------------------------------------------------------

def report_for(plan, pid, seen):
    """The probe's report, as the host alone can give it, for the plan's words."""
    outside, status = seen["outside"], seen["outside"]["status"]
    ids = {}
    for key, mapkey in (("Uid", "uid_map"), ("Gid", "gid_map")):
        ids[key] = [_from_container(int(v), outside[mapkey]) for v in status[key].split()]
    groups = [_from_container(int(g), outside["gid_map"])
              for g in status.get("Groups", "").split()]
    results = {}
    sysctls = [w[len("read=/proc/sys/"):].replace("/", ".") for w in plan.words
               if w.startswith("read=/proc/sys/")]
    names = namespace_view(pid, sysctls)
    seen["namespaces"] = names
    for key, answer in (names.get("sysctls") or {}).items():
        results[f"read=/proc/sys/{key.replace('.', '/')}"] = answer
    lo = next((i for i in names.get("interfaces") or () if i["name"] == "lo"), None)
    if lo is not None:
        results["ifflags=lo"] = {"errno": 0, "flags": lo["flags"]}
    for word in plan.words + ["statfs=/"]:
        kind = word.partition("=")[0]
        if kind in ("stat", "statfs", "ls") or (kind == "read" and word not in results):
            results[word] = _path_result(pid, word)
    programs = (seen["seccomp"] or {}).get("filters")
    if programs is not None and plan.section is not None:
        for s in plan.samples:
            nr = plan.resolve(s.name)
            if nr is None or nr < 0:    # libseccomp's pseudo number: not a call here
                results[plan.sys_word(s)] = {"action": "setup", "step": "no such call on "
                                                                          "x86_64:"}
                continue
            values = dict(s.args)
            args = [values.get(i, 0) & UNLIMITED for i in range(6)]
            action, _ = bpf.decide(programs, nr, bpf.AUDIT_ARCH_X86_64, args)
            results[plan.sys_word(s)] = _as_probe_answer(action)
        i386, _ = bpf.decide(programs, 20, bpf.AUDIT_ARCH_I386)
        results["i386=20"] = _as_probe_answer(i386)
    return {"results": results, "uid": ids["Uid"][0], "euid": ids["Uid"][1],
            "suid": ids["Uid"][2], "gid": ids["Gid"][0], "egid": ids["Gid"][1],
            "sgid": ids["Gid"][2], "groups": groups, "hostname": names.get("hostname"),
            "domainname": names.get("domainname"), "cwd": seen["cwd"],
            "umask": int(status.get("Umask", "0"), 8), "env": seen["env"],
            "rlimits": seen["rlimits"], "mounts": seen["mounts"]}


def _as_probe_answer(action):
    """A filter's return value in the probe's words."""
    kind = action & 0xFFFF0000
    if kind in (0x7FFF0000, 0x7FFC0000, 0x7FF00000, 0x7FC00000):   # allow, log, trace, notify
        return {"action": "allow", "errno": 0}
    if kind == 0x00050000:
        return {"action": "errno", "errno": action & 0xFFFF}
    if kind == 0x00030000:
        return {"action": "trap", "errno": 0}
    return {"action": "kill", "errno": 0, "signal": signal.SIGSYS}


class HostPlan(Plan):
    """verify's plan, for a view with no probe: the filter is asked on paper, so no
    sample is skipped for what the probe would need."""

    def __init__(self, raw, config, host):
        super().__init__(raw, config, host)
        self.sys_blocked = None


def audit_claims(raw, pid, seen):
    config, _ = load_config(raw)
    plan = HostPlan(raw, config, host_facts(raw))
    report = report_for(plan, pid, seen)
    return judge(plan, report, seen["outside"])


class Audit(NamedTuple):
    target: Target
    seen: dict
    claims: list        # None without a config

    @property
    def status(self):
        return 1 if self.claims and any(c.verdict == BROKEN for c in self.claims) else 0


def audit(target, runtime=None, root=None, bundle=None):
    found = locate(target, runtime, root, bundle)
    pid = found.pid
    try:
        if found.start is not None and _start_time(pid) != found.start:
            raise PyruncError(f"{found.label}: pid {pid} is another process now (the "
                              "container has stopped)")
        seen = facts(pid)
        claims = None
        if found.config:
            try:
                with open(found.config) as f:
                    raw = json.load(f)
            except (OSError, ValueError) as e:
                raise PyruncError(f"{found.config}: {e}") from None
            claims = audit_claims(raw, pid, seen)
        else:
            seen["namespaces"] = namespace_view(pid, [])
    except FileNotFoundError:
        raise PyruncError(f"{found.label}: pid {pid} has gone") from None
    if not os.path.isdir(f"/proc/{pid}") or (found.start and _start_time(pid) != found.start):
        raise PyruncError(f"{found.label}: pid {pid} went away while audit read it")
    return Audit(found, seen, claims)


# ---- the command --------------------------------------------------------------------------

def configure(parser):
    parser.add_argument("target", metavar="ID|PID", help="the container's id, or the pid of "
                                                          "its process")
    parser.add_argument("--runtime", help="pyrunc, runc or crun (default: look under each of "
                                          "their roots; podman's containers are its runtime's)")
    parser.add_argument("--root", help="the runtime's state directory (default: its own, "
                                       "/run/pyrunc, /run/runc, /run/crun)")
    parser.add_argument("--bundle", help="judge against this bundle's config.json (default: "
                                         "the one the runtime's state names)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default), json for tools")


def _seccomp_lines(seen):
    status = seen["outside"]["status"]
    mode = status.get("Seccomp", "0")
    lines = [f"seccomp       mode {mode} ({ {'0': 'none', '1': 'strict', '2': 'filter'}.get(mode, '?') })"
             + ("" if mode != "0" else ": every syscall reaches the kernel")]
    info = seen["seccomp"]
    if "error" in info:
        if mode == "2":
            lines.append(f"  the filters cannot be read back: {info['error']}")
        return lines
    programs = info["filters"]
    if not programs:
        return lines
    lines[0] += (f", {len(programs)} filter{'s' * (len(programs) != 1)} "
                 f"({', '.join(str(len(p)) for p in programs)} instructions)")
    rows = bpf.summarize(programs) + bpf.foreign_arch_text(programs)
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name:<{width}}  {gets}" for name, gets in rows]
    return lines


def text_report(result):
    seen, target = result.seen, result.target
    status, outside = seen["outside"]["status"], seen["outside"]
    uid = status["Uid"].split()
    out = [f"audit {target.label} (pid {target.pid})"
           + (f" against {target.config}" if target.config else ""),
           f"user          uid {'/'.join(uid)}, gid {'/'.join(status['Gid'].split())}, groups "
           f"[{', '.join(status.get('Groups', '').split())}] (on the host: real/effective/"
           "saved/fs)" + ("; root on the host" if uid[1] == "0" else "")
           + f"; uid {_from_container(int(uid[1]), outside['uid_map'])} in the container"]
    out.append("capabilities")
    for key in SETS:
        out.append(f"  {key:<12}{_cap_names(int(status[STATUS_KEY[key]], 16))}")
    out.append(f"no_new_privs  {status.get('NoNewPrivs')}")
    out += _seccomp_lines(seen)
    out.append("namespaces    (against the host's: audit's own)")
    for name, ino in sorted(outside["ns"].items()):
        host = seen["host_ns"].get(name)
        out.append(f"  {name:<18}[{ino}] " + ("the host's" if ino == host else "its own"))
    for key in ("uid_map", "gid_map"):
        out.append(f"{key:<14}" + "; ".join(" ".join(map(str, m)) for m in outside[key]))
    out.append("mounts        (point, type, options, propagation)")
    out += [f"  {m['mount_point']} {m['fstype']} {m['options']} {m['propagation']}"
            for m in seen["mounts"]]
    limits = outside.get("cgroup_files", {})
    out.append("cgroups       " + "; ".join(seen["cgroups"]))
    out.append("  limits: memory " + str(limits.get("memory", "?")) + ", pids "
               + str(limits.get("pids", "?")) + ", devices " + (", ".join(limits["devices"])
                                                                 if "devices" in limits else "?"))
    names = seen.get("namespaces") or {}
    if "error" in names:
        out.append(f"network       cannot look: {names['error']}")
    else:
        out.append("network       (in its network namespace)")
        out += [f"  {i['name']} {'UP' if i['up'] else 'DOWN'} {' '.join(i['addresses'])}"
                for i in names.get("interfaces", ())]
        out.append(f"hostname      {names.get('hostname')!r}")
    lsm = seen["lsm"]
    out.append("lsm           " + ("; ".join(f"{k} {v}" for k, v in lsm.items()) or
                                   "no label: /proc/PID/attr/current, apparmor/current and "
                                   "smack/current give none (no SELinux, AppArmor or Smack "
                                   "labels processes on this host)"))
    if result.claims is None:
        out.append("no config to judge against (--bundle DIR)")
    else:
        out.append(f"claims of {target.config} (as `verify` judges them, from the host)")
        out += ["  " + line(c) for c in result.claims]
        out.append(summary(result.claims))
    return "\n".join(out) + "\n"


def json_report(result):
    seen = dict(result.seen)
    seccomp = seen.pop("seccomp")
    programs = seccomp.get("filters")
    seen["seccomp"] = ({"error": seccomp["error"]} if programs is None else {
        "filters": len(programs), "instructions": [len(p) for p in programs],
        "syscalls": dict(bpf.summarize(programs) + bpf.foreign_arch_text(programs))
        if programs else {}})
    return {"target": result.target._asdict(), "seen": seen,
            "claims": None if result.claims is None else [c._asdict() for c in result.claims],
            "status": result.status}


def run(args):
    try:
        result = audit(args.target, args.runtime, args.root, args.bundle)
    except PyruncError as e:
        sys.stderr.write(f"pyrunc audit: {e}\n")
        return 2
    if args.format == "json":
        print(json.dumps(json_report(result), indent=2))
    else:
        sys.stdout.write(text_report(result))
    return result.status
