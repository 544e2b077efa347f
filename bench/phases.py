#!/usr/bin/env python3
"""Where `pyrunc run` spends its time, phase by phase, without editing pyrunc/.

    .venv/bin/python bench/phases.py [--runs N] [--pyrunc-dir DIR] [--no-json]

For each of three cases (plain bundle; hardened bundle with a warm seccomp cache; the same
with ROOT/.seccomp-cache emptied before each run) it runs `pyrunc run` N times through
bench/_phase_child.py, which imports pyrunc's modules group by group and wraps lifecycle
functions, the init's steps and os.fork to log timestamps from all three processes (the
runtime P, C1, and the init C2). The table gives each phase's median in ms. Then it runs
`python -X importtime` on the real launcher and lists the modules that cost the most.

DIR is a pyrunc tree (default: this repository; bench/snapshot.sh makes one for a commit).
The bundles are bench/run.py's (same plain and hardened configs). Needs root.
"""
import argparse
import collections
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import run as benchrun  # noqa: E402  (bench/run.py: bundles, cleanup)

PY = os.path.join(REPO, ".venv", "bin", "python3")
CHILD = os.path.join(HERE, "_phase_child.py")


def site_dir():
    return subprocess.run([PY, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True,
                          check=True).stdout.strip()


def one_run(pyrunc_dir, site, root, bundle, cid, logpath, os_exit=False, gc_off=False):
    if os.path.exists(logpath):
        os.unlink(logpath)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYRUNC_", "PHASES_"))}
    if os_exit:
        env["PHASES_OS_EXIT"] = "1"
    if gc_off:
        env["PHASES_GC_OFF"] = "1"
    t0 = time.monotonic_ns()
    p = subprocess.Popen([PY, "-IS", CHILD, str(t0), logpath, pyrunc_dir, site, "--",
                          "--root", root, "run", "-b", bundle, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, err = p.communicate()
    t_end = time.monotonic_ns() - t0
    if p.returncode != 0:
        raise RuntimeError(f"pyrunc run: exit {p.returncode}: {err.decode().strip()}")
    events = []
    with open(logpath) as f:
        for line in f:
            pid, ns, name = line.rstrip("\n").split(" ", 2)
            events.append((int(pid), int(ns) / 1e6, name))
    return events, t_end / 1e6


def keyed(events, t_end):
    """{ROLE:NAME#K: ms}: ROLE P (runtime), C1, C2; K counts repeats of a name."""
    parent = events[0][0]
    c1 = next((pid for pid, _, n in events if n == "c1_main begin"), None)
    c2 = next((pid for pid, _, n in events if n == "c2_main begin"), None)
    role = {parent: "P", c1: "C1", c2: "C2"}
    # C2 logs its "fork child" before c2_main: it is the pid that is neither P nor C1
    out, seen, order = {}, collections.Counter(), []
    for pid, ms, name in events:
        r = role.get(pid, "C2")
        base = f"{r}:{name}"
        k = f"{base}#{seen[base]}"
        seen[base] += 1
        out[k] = ms
        order.append(k)
    out["P:exit#0"] = t_end
    return out, order


def phases_of(order):
    """(label, start key, end key) in the order of the critical path."""
    ph = [("python start (exec, interpreter init, -IS)", None, "P:python_main#0")]
    for k in order:
        if k.startswith("P:import ") and k.endswith(" begin#0"):
            name = k[len("P:import "):-len(" begin#0")]
            ph.append((f"import {name}", k, k.replace(" begin#0", " end#0")))
    ph += [
        ("cli.main: parse the command line, Log", "P:main begin#0", "P:run begin#0"),
        ("lifecycle.run until create (subreaper)", "P:run begin#0", "P:create begin#0"),
        ("read config.json", "P:spec.read_config begin#0", "P:spec.read_config end#0"),
        ("parse + validate (load_config)", "P:spec.load_config begin#0",
         "P:spec.load_config end#0"),
        ("state dir + lock (Container.new)", "P:Container.new begin#0", "P:Container.new end#0"),
        ("prepare: namespaces.plan", "P:namespaces.plan begin#0", "P:namespaces.plan end#0"),
        ("prepare: capabilities.prepare", "P:capabilities.prepare begin#0",
         "P:capabilities.prepare end#0"),
        ("prepare: seccomp.prepare", "P:seccomp.prepare begin#0", "P:seccomp.prepare end#0"),
        ("prepare: check_support", "P:check_support begin#0", "P:check_support end#0"),
        ("config copy, exec.fifo, socketpair", "P:prepare end#0", "P:fork call#0"),
    ]
    for k in order:  # without a user namespace P enters pid/time for the init it forks
        if k.startswith("P:step ") and k.endswith(" begin#0"):
            name = k[len("P:step "):-len(" begin#0")]
            ph.append((f"P step {name}", k, f"P:step {name} end#0"))
    ph += [
        ("fork (in P): C1, or the init without a user namespace", "P:fork call#0",
         "P:fork parent#0"),
        ("P waits for the init (drive) = [C1 +] C2 below", "P:drive begin#0", "P:drive end#0"),
        ("  C1: from fork to c1_main", "C1:fork child#0", "C1:c1_main begin#0"),
    ]
    for k in order:
        if k.startswith("C1:step ") and k.endswith(" begin#0"):
            name = k[len("C1:step "):-len(" begin#0")]
            ph.append((f"  C1 step {name}", k, f"C1:step {name} end#0"))
    ph += [("  C1: fork C2", "C1:fork call#0", "C1:fork parent#0"),
           ("  C2: from fork to c2_main", "C2:fork child#0", "C2:c2_main begin#0"),
           ("  C2: imports its steps' modules", "C2:import init steps begin#0",
            "C2:import init steps end#0")]
    after_wait = False
    for k in order:
        if k.startswith("C2:step ") and k.endswith(" begin#0"):
            name = k[len("C2:step "):-len(" begin#0")]
            if name == "wait_for_start":
                ph.append(("  C2 ready -> P (drive returns)", k, "P:drive end#0"))
                after_wait = True
                continue
            if after_wait:
                continue
            ph.append((f"  C2 step {name}", k, f"C2:step {name} end#0"))
    ph += [
        ("[reap C1,] write state.json", "P:drive end#0", "P:create end#0"),
        ("start: open exec.fifo until the init execs, poststart hooks",
         "P:start_created begin#0", "P:start_created end#0"),
        ("  C2: from fifo open to seccomp step", "C2:step wait_for_start end#0",
         "C2:step seccomp begin#0"),
        ("  C2 step seccomp (load the filter)", "C2:step seccomp begin#0",
         "C2:step seccomp end#0"),
        ("  C2: exec call", "C2:step exec begin#0", "P:start_created end#0"),
        ("wait: dmz stub + true run and exit, reap", "P:wait_forwarding begin#0",
         "P:wait_forwarding end#0"),
        ("delete", "P:delete begin#0", "P:delete end#0"),
        ("interpreter exit, reaped by the driver", "P:main end#0", "P:exit#0"),
    ]
    return ph


def measure_all(cases, runs, pyrunc_dir, site, launcher, scratch):
    """Every case once per round, the order rotating, so that load drifting over the run
    hits them alike. Returns ({case: {phase: median ms}}, {case: [total ms]},
    {bundle name: median ms of the real launcher}). The cold case has its own --root."""
    rows = {c[0]: collections.OrderedDict() for c in cases}
    totals = {c[0]: [] for c in cases}
    real = collections.defaultdict(list)
    logpath = os.path.join(scratch, "phases.log")
    jobs = [("phase", c) for c in cases] + [("real", ("plain", cases[0][1])),
                                            ("real", ("hardened", cases[1][1]))]
    for i in range(runs + 1):  # round 0 is a warm-up
        for kind, job in benchrun.rotated(jobs, i):
            if kind == "real":
                name, bundle = job
                t0 = time.perf_counter_ns()
                subprocess.run([launcher, "--root", os.path.join(scratch, "root"), "run", "-b",
                                bundle, f"pw{i}"], check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL)
                if i:
                    real[name].append((time.perf_counter_ns() - t0) / 1e6)
                benchrun.reap_orphans()
                continue
            name, bundle, cold, os_exit, gc_off = job
            root = os.path.join(scratch, "root-cold" if cold else "root")
            if cold:
                shutil.rmtree(os.path.join(root, ".seccomp-cache"), ignore_errors=True)
            events, t_end = one_run(pyrunc_dir, site, root, bundle, f"ph{i}-{len(totals[name])}",
                                    logpath, os_exit, gc_off)
            benchrun.reap_orphans()
            if i == 0:
                continue
            t, order = keyed(events, t_end)
            totals[name].append(t_end)
            for label, a, b in phases_of(order):
                if (a is None or a in t) and b in t:
                    rows[name].setdefault(label, []).append(t[b] - (t[a] if a else 0.0))
    return ({n: {label: statistics.median(v) for label, v in r.items()} for n, r in rows.items()},
            totals, {n: statistics.median(v) for n, v in real.items()})


def importtime(launcher, root, bundle, runs):
    """Median self and cumulative µs per module of `run`, from python -X importtime."""
    self_us, cum_us, order = collections.defaultdict(list), collections.defaultdict(list), []
    for i in range(runs):
        p = subprocess.run([PY, "-IS", "-X", "importtime", launcher, "--root", root, "run",
                            "-b", bundle, f"it{i}"], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        for line in p.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            _, rest = line.split(":", 1)
            s, c, name = rest.split("|")
            depth = (len(name) - len(name.lstrip())) // 2
            name = name.strip()
            if i == 0:
                order.append((name, depth))
            self_us[name].append(int(s))
            cum_us[name].append(int(c))
    med = {n: (statistics.median(self_us[n]), statistics.median(cum_us[n])) for n in self_us}
    return med, order


# (already imported, measured statement): marginal cost in a fresh `python -IS`
MARGINAL = (
    ((), "import enum"),
    ((), "import re"),
    (("re",), "import json"),
    ((), "import _json"),
    (("re", "json"), "import argparse"),
    (("re", "json", "argparse"), "p = argparse.ArgumentParser(); p.add_argument('--x')"),
    (("re", "json", "enum", "collections", "functools"), "import dataclasses"),
    (("re", "json", "enum"), "import socket"),
    (("re", "json", "enum"), "import _socket"),
    (("re", "json", "enum"), "import signal"),
    (("re", "json", "enum"), "import select, selectors"),
    (("re", "json", "enum"), "import termios, tty"),
    ((), "import fcntl, struct, resource"),
    ((), "import pyrunc.syscalls"),
    ((), "import pyrunc.cli"),
    ((), "import pyrunc.container.lifecycle"),
    ((), "import pyrunc.container.state"),
    (("pyrunc.container.lifecycle",), "import pyrunc.init.child, pyrunc.init.context"),
    ((), "import pyrunc.cli, pyrunc.container.lifecycle, pyrunc.init.child, "
         "pyrunc.init.context, pyrunc.spec.validate, pyrunc.linux.hooks, pyrunc.linux.userns"),
)


def marginal(pyrunc_dir, site, runs):
    """[(ms, statement, preloaded)]: the median time of one statement in a fresh python -IS
    after `preloaded` were imported, timed inside the process (no -X importtime inflation)."""
    out = []
    for pre, stmt in MARGINAL:
        code = (f"import sys, time\nsys.path[:0] = {[pyrunc_dir, site]!r}\n"
                + "".join(f"import {m}\n" for m in pre)
                + f"t = time.perf_counter()\n{stmt}\n"
                  "print((time.perf_counter() - t) * 1000)\n")
        samples = []
        for _ in range(runs):
            p = subprocess.run([PY, "-IS", "-c", code], capture_output=True, text=True)
            if p.returncode != 0:
                break  # not importable in this revision
            samples.append(float(p.stdout))
        if samples:
            out.append((statistics.median(samples), stmt, pre))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--pyrunc-dir", default=REPO)
    ap.add_argument("--no-json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("phases: needs root")
    pyrunc_dir = os.path.abspath(args.pyrunc_dir)
    launcher = os.path.join(pyrunc_dir, "bin", "pyrunc")
    site = site_dir()
    benchrun.set_subreaper()
    scratch = tempfile.mkdtemp(prefix="pyrunc-phases-", dir="/tmp")
    os.chmod(scratch, 0o755)
    root = os.path.join(scratch, "root")
    prefix = "p"  # ids: ph* (instrumented), pw* (the real launcher)
    try:
        plain, hard, _ = benchrun.make_bundles(scratch, launcher)
        # (name, bundle, cold seccomp cache, end in os._exit, gc.disable() first)
        cases = [("plain", plain, False, False, False),
                 ("hardened", hard, False, False, False),
                 ("hardened, cold seccomp cache", hard, True, False, False),
                 ("plain, ending in os._exit", plain, False, True, False),
                 ("plain, gc.disable() + os._exit", plain, False, True, True)]
        sys.stderr.write(f"phases: {len(cases)} cases and the real launcher, interleaved, "
                         f"{args.runs} rounds\n")
        results, walls, uninstrumented = measure_all(cases, args.runs, pyrunc_dir, site,
                                                     launcher, scratch)
        sys.stderr.write("phases: importtime\n")
        imp, order = importtime(launcher, root, plain, args.runs)
        base = subprocess.run([PY, "-IS", "-X", "importtime", "-c", "pass"],
                              capture_output=True, text=True).stderr
        startup_mods = {line.split("|")[2].strip() for line in base.splitlines()
                        if line.startswith("import time:") and "self [us]" not in line}
        sys.stderr.write("phases: marginal import costs\n")
        marg = marginal(pyrunc_dir, site, args.runs)
    finally:
        benchrun.cleanup([benchrun.Runtime("pyrunc", launcher, r) for r in
                          (root, os.path.join(scratch, "root-cold"))], scratch, prefix, False)
        shutil.rmtree(scratch, ignore_errors=True)

    labels = list(results["plain"])
    for case in cases[1:]:
        for label in results[case[0]]:
            if label not in labels:
                labels.append(label)
    names = [c[0] for c in cases]
    w = max(len(x) for x in labels) + 2
    cw = 24
    print(f"pyrunc run: phases, median of {args.runs} runs, ms ({pyrunc_dir})\n")
    short = {"plain": "plain", "hardened": "hardened",
             "hardened, cold seccomp cache": "hardened, cold cache",
             "plain, ending in os._exit": "plain + os._exit",
             "plain, gc.disable() + os._exit": "+ gc.disable()"}
    print("".ljust(w) + "".join(short[n].rjust(cw) for n in names))
    for label in labels:
        print(label.ljust(w) + "".join(
            (f"{results[n][label]:.2f}" if label in results[n] else "-").rjust(cw)
            for n in names))
    print("total (driver: spawn to reaped)".ljust(w) + "".join(
        f"{statistics.median(walls[n]):.2f}".rjust(cw) for n in names))
    print("uninstrumented bin/pyrunc run".ljust(w) + "".join(
        (f"{uninstrumented[n]:.2f}" if n in uninstrumented else "-").rjust(cw)
        for n in names))

    print(f"\nimporttime of `pyrunc run` (plain), median of {args.runs}: top-level imports "
          "by cumulative ms (excluding what python -IS imports anyway)")
    top = [(n, imp[n]) for n, d in order if d == 0 and n not in startup_mods]
    for n, (s, c) in sorted(top, key=lambda x: -x[1][1])[:20]:
        print(f"  {c / 1000:7.2f}  {n}")
    print("\nmodules by self time (ms), top 25")
    for n, (s, c) in sorted(imp.items(), key=lambda x: -x[1][0])[:25]:
        if n in startup_mods:
            continue
        print(f"  {s / 1000:7.2f}  {n}")
    print(f"\nmarginal cost of one statement in a fresh python -IS (median of {args.runs}, ms)")
    for ms, stmt, pre in marg:
        print(f"  {ms:7.2f}  {stmt}" + (f"   (after {', '.join(pre)})" if pre else ""))
    if not args.no_json:
        os.makedirs(benchrun.RESULTS, exist_ok=True)
        path = os.path.join(benchrun.RESULTS,
                            f"phases-{datetime.datetime.now():%Y-%m-%d-%H%M%S}.json")
        with open(path, "w") as f:
            json.dump({"pyrunc_dir": pyrunc_dir, "runs": args.runs, "phases_ms": results,
                       "total_ms": {k: statistics.median(v) for k, v in walls.items()},
                       "uninstrumented_ms": uninstrumented,
                       "marginal_ms": [{"statement": st, "after": list(pre), "ms": ms}
                                       for ms, st, pre in marg],
                       "importtime_us": {n: {"self": s, "cumulative": c}
                                         for n, (s, c) in imp.items()}}, f, indent=1)
        print(f"\nresults: {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
