"""The claims of `mounts`, `root.readonly`, `linux.maskedPaths` and `linux.readonlyPaths`,
judged from the mount table, statfs and stat of each path as the probe or the host sees
them (part of claims.py)."""
import errno
import stat

from pyrunc.teach.verdicts import BROKEN, HELD, NOT_CHECKED, Claim, _errno_text, _linux

WRITE_TEST = "/.pyrunc-verify-write"
# statfs(2) flags and magic numbers
ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC = 1, 2, 4, 8
TMPFS_MAGIC = 0x01021994

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
