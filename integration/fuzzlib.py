"""A seeded mutator of real configs, and a driver that runs them through a runtime.

Seeds (integration/data/fuzz/): `runc spec` and `runc spec --rootless` output, `ctr oci spec`
(containerd's default), and configs docker 20.10 and podman 4.3 generated (`docker run`,
`podman create`, each with and without limits; host paths and ids replaced, docker's
libnetwork prestart hook made /bin/true), and the repository's own bundles: the
default config with each of the article's fragments laid over it. Each seed is normalised to
run from a bundle (root.path "rootfs", bind sources that exist).

`mutate(seed, rng)` applies one to three mutations and says whether the result is certainly
invalid (a field of another JSON type, null where the spec requires a value, malformed or
oversized JSON): the runtime must then exit non-zero. Other mutations (a boundary value, a
key removed, a list item repeated, a subtree spliced from another seed) may give a valid
config or not; for them only "no traceback, no hang, no leak" is checked.

Values that could reach the host if a runtime obeyed them blindly are never generated: a
root.path outside the bundle, a cgroupsPath outside the run's own prefix, a namespace path of
the host's, a hook that is anything but a harmless binary. What is tested is the runtime's
handling of bad input, not whether it may be told to change the host.

`run_batch` runs configs 0..N-1 (config i is a pure function of (seed, i)) with `create`
then `delete --force` in W worker processes, each with its own bundle and --root, and
returns the per-config outcomes; `leaks` looks for anything left behind.
"""
import copy
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "data", "fuzz")
ARTICLE = os.path.join(REPO, "examples", "article")
TIMEOUT = 10  # seconds for one command: more is a hang

# JSON paths (list indices as "*") where the spec requires a value: null there is invalid
REQUIRED = {
    ("ociVersion",), ("root",), ("root", "path"), ("process", "cwd"),
    ("process", "user", "uid"), ("process", "user", "gid"),
    ("mounts", "*", "destination"), ("linux", "namespaces", "*", "type"),
    ("process", "rlimits", "*", "type"), ("process", "rlimits", "*", "hard"),
    ("process", "rlimits", "*", "soft"),
    ("linux", "uidMappings", "*", "containerID"), ("linux", "uidMappings", "*", "hostID"),
    ("linux", "uidMappings", "*", "size"), ("linux", "gidMappings", "*", "containerID"),
    ("linux", "gidMappings", "*", "hostID"), ("linux", "gidMappings", "*", "size"),
    ("linux", "devices", "*", "path"), ("linux", "devices", "*", "type"),
    ("linux", "seccomp", "defaultAction"), ("linux", "seccomp", "syscalls", "*", "names"),
    ("linux", "seccomp", "syscalls", "*", "action"),
    ("linux", "resources", "devices", "*", "allow"),
    ("hooks", "prestart", "*", "path"), ("hooks", "createRuntime", "*", "path"),
    ("hooks", "createContainer", "*", "path"), ("hooks", "poststop", "*", "path"),
    ("process", "consoleSize", "height"), ("process", "consoleSize", "width"),
}
# objects whose keys are free (values typed): a key added there is not an unknown field
FREE_MAPS = {("annotations",), ("linux", "sysctl")}

STRINGS = ["", "a", "x" * 300, "\ud800", "a\x00b", "../x", "/..", "/nonexistent", "/dev/null",
           "\u00e9\u4e2d\U0001f642", "-1", "1.0.2", "a=b", "=", "CAP_SYS_ADMIN", "rootfs",
           "/tmp", "SCMP_ACT_KILL", "RLIMIT_NOFILE", "read", "%s%n", "tmpfs", "bind", "rbind",
           "mode=0777", "size=-1", "private", "pid", "c", "\t\n", "/proc/self/fd/0"]
INTS = [0, 1, -1, 7, 255, 1000, 65534, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 - 1,
        2 ** 53, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63, 10 ** 30, 2592000]
ROOT_PATHS = ["", "missing", "rootfs/", "./rootfs", "rootfs/bin/busybox", "rootfs/etc"]
SAFE_HOOKS = ["/bin/true", "/bin/false", "/nonexistent", "/dev/null", "rootfs", ""]


def load_seeds():
    """[(name, config dict)]: the stored configs, then the article's bundles."""
    seeds = []
    for name in sorted(os.listdir(SEEDS)):
        if name.endswith(".json"):
            with open(os.path.join(SEEDS, name)) as f:
                seeds.append((name[:-5], json.load(f)))
    from pyrunc.bundle import merge
    from pyrunc.spec.defaults import default_spec
    base = default_spec(args=["sh"])
    seeds.append(("pyrunc-spec", base))
    for name in sorted(os.listdir(ARTICLE)):
        frag = os.path.join(ARTICLE, name, "fragment.json")
        if os.path.isfile(frag):
            with open(frag) as f:
                seeds.append((f"article-{name}", merge(base, json.load(f))))
    return seeds


def normalise(config, bundle, cid):
    """The seed made to run from `bundle`: its own rootfs, bind sources that exist, the
    cgroup named after the id, hooks that do nothing."""
    import resource
    config = copy.deepcopy(config)
    config["root"] = dict(config.get("root") or {}, path="rootfs")
    process = config.setdefault("process", {})
    process["terminal"] = False  # no --console-socket here
    process.setdefault("args", ["/bin/sh"])  # `ctr oci spec` leaves them (and PATH) out
    for rl in process.get("rlimits") or ():
        # root here lacks CAP_SYS_RESOURCE: no limit above the host's
        hard = resource.getrlimit(getattr(resource, rl["type"]))[1]
        if hard != resource.RLIM_INFINITY:
            rl["hard"], rl["soft"] = min(rl["hard"], hard), min(rl["soft"], hard)
    for m in config.get("mounts") or ():
        if m.get("type") == "bind" or "bind" in (m.get("options") or ()) \
                or "rbind" in (m.get("options") or ()):
            source = m.get("source", "")
            if not source.startswith("/") or not os.path.exists(source):
                m["source"] = os.path.join(bundle, "bindsrc")
    linux = config.setdefault("linux", {})
    linux.pop("cgroupsPath", None)
    for ns in linux.get("namespaces") or ():
        ns.pop("path", None)
    for hooks in (config.get("hooks") or {}).values():
        for h in hooks:
            h["path"] = "/bin/true"
    return config


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def _pattern(path):
    return tuple("*" if isinstance(p, int) else p for p in path)


def _get(node, path):
    for p in path:
        node = node[p]
    return node


def _set(root, path, value):
    _get(root, path[:-1])[path[-1]] = value


def _retype(value, rng):
    """A value of another JSON type than `value`."""
    options = [None, True, 0, -1, 1.5, "x", [], {}, [1], {"a": 1}, 2 ** 64]
    def kind(v):
        return ("null" if v is None else "bool" if isinstance(v, bool) else
                "int" if isinstance(v, int) else type(v).__name__)
    options = [o for o in options if o is not None and kind(o) != kind(value)]
    return rng.choice(options)


def _same_type(value, path, cid, rng):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice(INTS)
    if isinstance(value, float):
        return rng.choice([0.0, -1.0, 1e308, float("inf")])
    if isinstance(value, str):
        return _string_for(path, cid, rng)
    return value


def _string_for(path, cid, rng):
    pat = _pattern(path)
    if pat == ("root", "path"):
        return rng.choice(ROOT_PATHS)
    if pat == ("linux", "cgroupsPath"):
        return rng.choice([f"{cid}-cg", f"/{cid}-abs/inner", f"{cid}/../{cid}-up"])
    if pat == ("linux", "namespaces", "*", "path"):
        return rng.choice(["/nonexistent", "/dev/null", "", "relative", "a\x00b"])
    if len(pat) >= 3 and pat[0] == "hooks" and pat[-1] == "path":
        return rng.choice(SAFE_HOOKS)
    return rng.choice(STRINGS)


def _safe_retarget(path, value):
    """No mutation may put a string where a host-reaching value would go."""
    pat = _pattern(path)
    return not (isinstance(value, str) and pat in {
        ("root", "path"), ("linux", "cgroupsPath"), ("linux", "namespaces", "*", "path")})


def _text_mutation(text, rng):
    """Malformed JSON, mostly: the caller asks the stdlib parser which are."""
    kind = rng.choice(["trailing_comma", "unquoted_key", "truncate", "nesting", "garbage",
                       "bad_utf8", "bare_value", "comment"])
    if kind == "trailing_comma":
        i = text.rfind("}")
        text = text[:i].rstrip() + ",\n}"
    elif kind == "unquoted_key":
        i = text.find('"', 1)
        j = text.find('"', i + 1)
        text = text[:i] + text[i + 1:j] + text[j + 1:]
    elif kind == "truncate":
        text = text[:rng.randrange(1, len(text) - 1)]
    elif kind == "nesting":
        n = rng.choice([1500, 3000, 100000])
        text = text.replace('"ociVersion"', '"x": ' + "[" * n + "]" * n + ', "ociVersion"', 1)
    elif kind == "garbage":
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(["\x00", "}", "]", "\x01", "'", "NaNx"]) + text[i:]
    elif kind == "bad_utf8":
        return kind, text.encode()[:40] + b"\xff\xfe\xc3" + text.encode()[40:]
    elif kind == "bare_value":
        text = rng.choice(["null", "[]", "1", '"config"', "true", ""])
    elif kind == "comment":
        text = "// a comment\n" + text
    return kind, text.encode()


def mutate(config, seeds, cid, rng):
    """(bytes of config.json, description, certainly invalid)."""
    config = copy.deepcopy(config)
    faults = []  # (path, value): each makes the config invalid while it stays in place
    done = []
    roll = rng.random()
    if roll < 0.002:
        # over the 16 MiB limit, otherwise a fine config
        config.setdefault("annotations", {})["pad"] = "x" * (17 << 20)
        return json.dumps(config).encode(), "oversized", True
    if roll < 0.08:
        kind, data = _text_mutation(json.dumps(config, indent=1), rng)
        try:  # the stdlib's strict parser decides (a "}" inside a string is still JSON)
            json.loads(data)
            return data, f"text:{kind}", False
        except (ValueError, RecursionError):  # pyrunc refuses nesting over 500 levels
            return data, f"text:{kind}", True
    for _ in range(rng.choice((1, 1, 2, 3))):
        nodes = [(p, v) for p, v in _walk(config) if p]
        path, value = rng.choice(nodes)
        pat = _pattern(path)
        op = rng.choices(["null", "retype", "value", "delete", "dup", "unknown_key", "splice"],
                         [12, 20, 30, 12, 8, 6, 6])[0]
        if op == "null":
            _set(config, path, None)
            if pat in REQUIRED:
                faults.append((path, None))
        elif op == "retype":
            if value is None:
                continue  # a null (an earlier mutation's) has no type to differ from
            new = _retype(value, rng)
            if not _safe_retarget(path, new):
                continue
            _set(config, path, new)
            faults.append((path, new))
        elif op == "value":
            if isinstance(value, (dict, list)):
                continue
            _set(config, path, _same_type(value, path, cid, rng))
        elif op == "delete":
            parent = _get(config, path[:-1])
            del parent[path[-1]]
        elif op == "dup":
            if isinstance(value, list) and value:
                value.append(copy.deepcopy(rng.choice(value)))
            else:
                continue
        elif op == "unknown_key":
            if isinstance(value, dict):
                key = rng.choice(["x-vendor", "Destination", "unknown", ""])
                value[key] = rng.choice([1, "a", None, {}, []])
                if pat in FREE_MAPS and not isinstance(value[key], str):
                    faults.append((path + (key,), value[key]))  # their values are strings
            else:
                continue
        elif op == "splice":
            other = rng.choice(seeds)[1]
            donors = [(p, v) for p, v in _walk(other) if p and _pattern(p) == pat]
            if not donors or not all(_safe_retarget(p, v) for p, v in _walk(_get(
                    other, donors[0][0]), path)):
                continue
            _set(config, path, copy.deepcopy(rng.choice(donors)[1]))
        done.append(f"{op}@{'.'.join(map(str, path))}")
    return json.dumps(config, indent=1).encode(), " ".join(done) or "none", any(
        _still(config, path, value) for path, value in faults)


def _still(config, path, value):
    """Whether `value` (same JSON type) is still at `path`: a later mutation may have
    removed or replaced it."""
    try:
        now = _get(config, path)
    except (KeyError, IndexError, TypeError):
        return False
    return type(now) is type(value) and now == value


def config_for(i, seed, seeds, bundle, cid):
    rng = random.Random(f"{seed}-{i}")
    name, base = seeds[rng.randrange(len(seeds))]
    data, what, invalid = mutate(normalise(base, bundle, cid), seeds, cid, rng)
    return data, f"{name}: {what}", invalid


# ---- the driver ----

def make_worker_bundle(directory):
    from pyrunc.bundle import make_bundle
    path = make_bundle(directory, rootfs="busybox")
    with open(os.path.join(path, "bindsrc"), "w") as f:
        f.write("bind source\n")
    return path


def is_traceback(text):
    """A Python traceback or pyrunc's last-resort line; a Go panic for runc."""
    return any(w in text for w in ("Traceback (most recent call last)", "internal error",
                                   "panic:", "goroutine "))


def _run(argv, errfile):
    """(exit status or None on a hang, stderr, seconds). stderr goes to a file, never a
    pipe: a created container's init keeps the stdio it was given."""
    start = time.monotonic()
    with open(errfile, "w+b") as err:
        try:
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, timeout=TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            rc = None
        err.seek(0)
        return rc, err.read().decode(errors="replace"), time.monotonic() - start


def _worker(job):
    runtime_argv, base, seed, indices, prefix = job
    seeds = load_seeds()
    wid = indices[0] if indices else 0
    bundle = make_worker_bundle(os.path.join(base, f"bundle-{wid}"))
    root = os.path.join(base, f"state-{wid}")
    os.makedirs(root, exist_ok=True)
    errfile = os.path.join(base, f"stderr-{wid}")
    out = []
    for i in indices:
        cid = f"{prefix}-{i}"
        data, what, invalid = config_for(i, seed, seeds, bundle, cid)
        with open(os.path.join(bundle, "config.json"), "wb") as f:
            f.write(data)
        rc, err, secs = _run([*runtime_argv, "--root", root, "create", "--bundle", bundle,
                              cid], errfile)
        drc, derr, _ = _run([*runtime_argv, "--root", root, "delete", "--force", cid], errfile)
        left = os.path.exists(os.path.join(root, cid))
        out.append(dict(i=i, what=what, invalid=invalid, rc=rc, err=err.strip(),
                        delete_rc=drc, delete_err=derr.strip(), state_left=left, secs=secs))
    return out


def run_batch(runtime_argv, base, count, seed=1, workers=4, prefix="fz", indices=None):
    """Outcomes of configs `indices` (default 0..count-1) through `runtime_argv`."""
    indices = list(range(count)) if indices is None else list(indices)
    jobs = [(runtime_argv, base, seed, indices[w::workers], prefix) for w in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(_worker, [j for j in jobs if j[3]])
    return sorted((r for rs in results for r in rs), key=lambda r: r["i"])


def leaks(base, prefix):
    """What the run left: processes, mounts, cgroup dirs, state dirs."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{p}/cgroup") as f:
                cgroup = f.read()
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue  # dead, its resources freed: only its exit status waits for pid 1
        # pyrunc's children keep its argv (--root BASE/...); any container process (runc's
        # too) is in a cgroup named after its id
        if base in cmd or f"/{prefix}-" in cgroup:
            found.append(f"process {p}: {cmd.replace(chr(0), ' ')[:120]}")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(base):
                found.append(f"mount {point}")
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if dirpath.count("/") > 9:
            dirnames[:] = []
        for d in dirnames:
            if d.startswith(prefix + "-"):
                found.append(f"cgroup {os.path.join(dirpath, d)}")
    for name in os.listdir(base):
        if name.startswith("state-"):
            found += [f"state {name}/{s}" for s in os.listdir(os.path.join(base, name))
                      if not s.startswith(".")]
    return found


def remove_leaks(base, prefix):
    """Leave the host as found after a failed run (cgroup dirs deepest first)."""
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        for d in dirnames:
            if d.startswith(prefix + "-"):
                try:
                    os.rmdir(os.path.join(dirpath, d))
                except OSError:
                    pass
    shutil.rmtree(base, ignore_errors=True)
