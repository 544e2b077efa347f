#!/usr/bin/env python3
"""Two pyrunc launchers (A: before a change, B: after) and runc, alternated command by
command on the same bundle, so that a busy machine hits all three alike.

    .venv/bin/python bench/ab.py A_LAUNCHER B_LAUNCHER [--rounds N] [--case CASE ...]

A launcher is bin/pyrunc of a tree (bench/snapshot.sh makes one for a revision). Cases:
  plain   `run` of `true` on `pyrunc bundle`'s default config
  ptrace  the same with CAP_SYS_PTRACE in bounding, effective and permitted (pyrunc then
          runs sealed: pyrunc/linux/sealed.py)
  exec    `exec ID true` into a running container of the plain bundle
Prints the median wall time of each and its ratio to runc's. Run as root, by hand; the
state roots live in a scratch directory that is removed at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

CASES = ("plain", "ptrace", "exec")


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def bundle(scratch, launcher, case):
    path = os.path.join(scratch, f"bundle-{case}")
    args = ["sleep", "3600"] if case == "exec" else ["true"]
    subprocess.run([launcher, "bundle", path, "--", *args], check=True,
                   stdout=subprocess.DEVNULL)
    conf = os.path.join(path, "config.json")
    with open(conf) as f:
        config = json.load(f)
    config["ociVersion"] = "1.0.2-dev"  # runc 1.1.5's
    if case == "ptrace":
        for key in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][key].append("CAP_SYS_PTRACE")
    with open(conf, "w") as f:
        json.dump(config, f)
    return path


def measure(runtimes, scratch, case, rounds):
    b = bundle(scratch, runtimes["A"], case)
    times = {k: [] for k in runtimes}
    live = {}
    try:
        if case == "exec":
            for k, exe in runtimes.items():
                live[k] = f"ab-{case}-{k}"
                subprocess.run([exe, "--root", os.path.join(scratch, k), "run", "-d", "-b", b,
                                live[k]], check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        names = list(runtimes)
        for i in range(rounds + 1):  # the first round warms the caches, not counted
            for k in names[i % 3:] + names[:i % 3]:
                root = os.path.join(scratch, k)
                if case == "exec":
                    argv = [runtimes[k], "--root", root, "exec", live[k], "true"]
                else:
                    argv = [runtimes[k], "--root", root, "run", "-b", b, f"ab-{case}-{i}"]
                wall = timed(argv)
                if i:
                    times[k].append(wall)
    finally:
        for k, cid in live.items():
            subprocess.run([runtimes[k], "--root", os.path.join(scratch, k), "delete",
                            "--force", cid], stdout=subprocess.DEVNULL)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--case", action="append", choices=CASES)
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    args = ap.parse_args()
    runtimes = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b), "runc": args.runc}
    scratch = tempfile.mkdtemp(prefix="pyrunc-ab-")
    try:
        for case in args.case or CASES:
            m = measure(runtimes, scratch, case, args.rounds)
            cells = "  ".join(f"{k} {m[k]:.1f} ms ({m[k] / m['runc']:.2f})" for k in runtimes)
            print(f"{case:7} {cells}   B/A {m['B'] / m['A']:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
