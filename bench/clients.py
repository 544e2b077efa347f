#!/usr/bin/env python3
"""What a user of a client waits for, with pyrunc and with runc, in the same run:

    .venv/bin/python bench/clients.py [--quick] [--only docker,podman,cri]
                                      [--runtimes pyrunc,runc] [--no-json]

  docker  `docker run --rm --runtime it-NAME IMAGE true` (dockerd 20.10, default bridge)
  podman  `podman run --rm --network bridge IMAGE true` (podman 4.3 with netavark)
  cri     a pod start through containerd's CRI: RunPodSandbox (CNI bridge network) +
          CreateContainer + StartContainer until the container is running (timed), then
          StopPodSandbox + RemovePodSandbox (timed apart)

Each client's daemon is started once per section, set up exactly as the integration tests
set it up (integration/clientlib.py: private roots, sockets, pid files and cgroup parents,
inside integration/sandbox.py's private mount and network namespace), with one runtime
entry per runtime, called directly (the tests' logging launcher is left out). The
runtimes alternate round by round (the order rotates), so drift of the machine hits both
alike; the times are wall times of the client command (from fork to reaping) or of the
gRPC calls, and include everything the client does besides calling the runtime: the
ratios pyrunc/runc are those a user sees, diluted by the clients' own work.

Afterwards nothing may be left on the host: the script compares the host's network
namespaces, firewall chains, mounts and client daemons before and after, and checks that
the daemons' cgroup parents are gone; any difference is printed and makes the exit status 1.
Prints a table; writes bench/results/clients-DATE-TIME.json.
"""
import argparse
import datetime
import os
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE]

from integration import clientlib, sandbox  # noqa: E402
from run import (LoadMeter, fmt, format_table, host_info, log, ratio,  # noqa: E402
                 rotated, save_results, summary)

SECTIONS = ("docker", "podman", "cri")
ROUNDS = (20, 2)        # (rounds, warm-up rounds) per section
QUICK_ROUNDS = (5, 1)
LIMIT = 120             # seconds any one client command may take
DOCKER_IMAGE = "pyrunc-bench-busybox"
PODMAN_IMAGE = "localhost/pyrunc-bench-busybox:latest"
CLIENT_DIRS = ("/run/docker", "/var/lib/docker", "/run/containerd", "/var/lib/containerd",
               "/run/netns", "/run/containers", "/var/lib/containers", "/var/lib/cni")
CGROUP_PARENTS = []     # the daemons' cgroup parents, checked gone at the end


class BenchError(Exception):
    pass


def timed(argv, env=None):
    """Wall ms of argv, from fork to reaping (a blocking wait: subprocess.run(timeout=)
    polls and would quantize the times); killed after LIMIT seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    timer = threading.Timer(LIMIT, proc.kill)
    timer.start()
    try:
        err = proc.stderr.read()
        rc = proc.wait()
    finally:
        timer.cancel()
    wall = (time.perf_counter() - t0) * 1000
    if rc != 0:
        raise BenchError(f"{' '.join(argv[-6:])}: exit {rc}: {err.decode()[-500:]}")
    return wall


def measure(names, rounds, one):
    """{name: summary} of one(name) -> ms, the names alternating, the order rotating."""
    n, warm = rounds
    samples = {name: [] for name in names}
    for i in range(n + warm):
        for name in rotated(list(names), i):
            ms = one(name)
            if i >= warm:
                samples[name].append(ms)
    return {name: summary(s) for name, s in samples.items()}


def docker_section(runtimes, rounds, problems):
    base = clientlib.new_base("pyrunc-bench-docker-")
    box = sandbox.Sandbox()
    d = clientlib.Docker(base, box, runtimes, log_calls=False)
    CGROUP_PARENTS.append(d.cgroup_parent)
    try:
        d.start()
        d.import_image(clientlib.busybox_rootfs(base), DOCKER_IMAGE)
        return {"docker run --rm true": measure(runtimes, rounds, lambda name: timed(
            box.argv(*d.argv, "run", "--rm", "--runtime", f"it-{name}", DOCKER_IMAGE,
                     "true")))}
    finally:
        if hasattr(d, "daemon"):
            left = d.clear()
            if left:
                problems.append(f"docker containers left: {left}")
            d.stop()
        problems += clientlib.close_sandbox(box, base, d.cgroup_parent)


def podman_section(runtimes, rounds, problems):
    base = clientlib.new_base("pyrunc-bench-podman-")
    box = sandbox.Sandbox()
    p = clientlib.NetPodman(base, box, log_calls=False)
    CGROUP_PARENTS.append(p.cgroup_parent)
    try:
        p.import_image(clientlib.busybox_rootfs(base), PODMAN_IMAGE)
        return {"podman run --rm true": measure(runtimes, rounds, lambda name: timed(
            box.argv(*p.command((name, runtimes[name]),
                                *p.run_args("bridge", "--rm", PODMAN_IMAGE, "true"))),
            env=p.env))}
    finally:
        left = box.run([*p.argv, "ps", "--all", "--quiet"], env=p.env).stdout.split()
        if left:
            problems.append(f"podman containers left: {left}")
        p.clear()
        problems += clientlib.close_sandbox(box, base, p.cgroup_parent)


def cri_section(runtimes, rounds, problems):
    _, api, _ = clientlib.cri_api()
    base = clientlib.new_base("pyrunc-bench-cri-")
    box = sandbox.Sandbox()
    c = clientlib.CRI(base, box, runtimes, log_calls=False)
    CGROUP_PARENTS.append(c.cgroup_parent)
    stops = {name: [] for name in runtimes}

    def pod(name):
        rs = c.runtime
        pod_name = f"pb-{uuid.uuid4().hex[:8]}"
        config = c.pod_config(pod_name)
        t0 = time.perf_counter()
        pid = rs.RunPodSandbox(api.RunPodSandboxRequest(
            config=config, runtime_handler=c.handlers[name]), timeout=LIMIT).pod_sandbox_id
        cid = rs.CreateContainer(api.CreateContainerRequest(
            pod_sandbox_id=pid, sandbox_config=config,
            config=c.container_config("main", clientlib.WAITER)), timeout=LIMIT).container_id
        rs.StartContainer(api.StartContainerRequest(container_id=cid), timeout=LIMIT)
        while rs.ContainerStatus(api.ContainerStatusRequest(container_id=cid),
                                 timeout=LIMIT).status.state != api.CONTAINER_RUNNING:
            if time.perf_counter() - t0 > LIMIT:
                raise BenchError(f"{name}: the pod's container is not running")
            time.sleep(0.005)
        started = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        rs.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pid), timeout=LIMIT)
        rs.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pid), timeout=LIMIT)
        stops[name].append((time.perf_counter() - t1) * 1000)
        return started

    try:
        c.start()
        c.import_images(clientlib.busybox_rootfs(base))
        starts = measure(runtimes, rounds, pod)
        warm = rounds[1]
        return {"CRI pod start (run+create+start)": starts,
                "  then stop+remove the pod": {n: summary(s[warm:]) for n, s in stops.items()}}
    finally:
        problems += clientlib.close_cri(c, box, base)


# -- what the host looks like, before and after


def host_view():
    """What a client could leave on the host: network namespaces, firewall chains, mounts
    in the clients' compiled-in directories or our scratch ones, processes of our clients,
    cgroups of ours. (Other work on the host, other tests under /tmp, is not looked at.)"""
    def lines(argv):
        try:
            return sorted(set(subprocess.run(argv, capture_output=True, text=True,
                                             timeout=30).stdout.splitlines()))
        except OSError:
            return []
    chains = [line.split()[0] for line in lines(["iptables-save"]) if line.startswith(":")]
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(point for point in (line.split()[4] for line in f)
                        if "pyrunc-bench-" in point or point.startswith(CLIENT_DIRS))
    ours = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "pyrunc-bench-" in cmdline and pid != str(os.getpid()):
            ours.append(f"{pid} {cmdline[:80]}")
    cgroups = sorted(d for parent in CGROUP_PARENTS for d in sandbox.cgroup_dirs(parent))
    return {"netns": lines(["ip", "netns", "list"]), "iptables chains": chains,
            "mounts": mounts, "processes of ours": ours, "cgroups of ours": cgroups}


def host_changes(before, after):
    changes = []
    for key, was in before.items():
        added = sorted(set(after[key]) - set(was))
        if added:
            changes.append(f"{key} added on the host: {added}")
    return changes


# -- report


def table(results, names):
    head = ["", *names] + (["pyrunc/runc"] if "runc" in names else [])
    rows = []
    for label, per in results.items():
        cells = [f"{label} (ms)"] + [fmt(per.get(n)) for n in names]
        if "runc" in names:
            r = ratio(per.get("pyrunc"), per.get("runc"))
            cells.append("-" if r is None else f"{r:.2f}")
        rows.append(cells)
    return format_table(head, rows)


def versions():
    out = {}
    for name, argv in (("docker", [clientlib.DOCKERD, "--version"]),
                       ("podman", ["podman", "--version"]),
                       ("containerd", ["containerd", "--version"])):
        try:
            out[name] = subprocess.run(argv, capture_output=True, text=True,
                                       timeout=30).stdout.strip()
        except OSError:
            out[name] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS[0]} rounds, not "
                    f"{ROUNDS[0]}")
    ap.add_argument("--only", help=f"comma list of sections: {','.join(SECTIONS)}")
    ap.add_argument("--runtimes", default="pyrunc,runc")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (it starts the clients' daemons)", file=sys.stderr)
        return 2
    only = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    if set(only) - set(SECTIONS):
        ap.error(f"unknown section(s) {sorted(set(only) - set(SECTIONS))}; known: {SECTIONS}")
    names = [n.strip() for n in args.runtimes.split(",") if n.strip()]
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    started = time.time()
    before = host_view()
    meter = LoadMeter()
    results, problems, error = {}, [], None
    try:
        runtimes = clientlib.runtime_paths(names)
        for sec in SECTIONS:
            if sec in only:
                log(f"section {sec}")
                results.update(globals()[f"{sec}_section"](runtimes, rounds, problems))
    except (BenchError, clientlib.Unavailable, RuntimeError, AssertionError,
            subprocess.SubprocessError, OSError) as e:
        error = str(e)
        log(f"error: {e}")
    except KeyboardInterrupt:
        error = "interrupted"
    load = meter.stop()
    problems += host_changes(before, host_view())
    for p in problems:
        log(f"left behind: {p}")

    info = host_info(os.path.join(REPO, "bin", "pyrunc"))
    clients = versions()
    print(f"pyrunc client bench {datetime.datetime.now():%Y-%m-%d %H:%M}"
          f"{' (--quick)' if args.quick else ''}: {'; '.join(v for v in clients.values() if v)}")
    print(f"host: {info.get('cpu', '?')}, {info['cpus']} cpus, kernel {info['kernel']}, "
          f"pyrunc {info.get('pyrunc_commit', '?')}")
    print(f"load: other work used {load['other_cpu_percent']}% of the CPUs while this ran; "
          f"{rounds[0]} rounds after {rounds[1]} warm-up; medians [min-max]\n")
    print(table(results, names))
    print("\nhost after the run: " + ("as before (no netns, firewall chain, mount, client "
                                      "process or cgroup added)" if not problems else
                                      "; ".join(problems)))
    if error:
        print(f"error: {error} (results above are partial)")
    if not args.no_json and results:
        doc = {"quick": args.quick, "host": info, "clients": clients, "runtimes": runtimes,
               "rounds": rounds, "units": {"time": "ms"}, "load": load, "results": results,
               "ratios": {label: ratio(per.get("pyrunc"), per.get("runc"))
                          for label, per in results.items()},
               "error": error, "left_behind": problems}
        save_results("clients-", started, args.quick, doc)
    return 1 if error or problems else 0


if __name__ == "__main__":
    sys.exit(main())
