"""A private mount and network namespace for the client daemons (dockerd, podman's netavark,
containerd's CRI with CNI), so that nothing they do reaches the host: bridges, veths,
iptables rules, /run/netns files, sysctls of the network namespace all live and die in it.

A holder process (`unshare --mount --net --propagation private`) mounts tmpfs over the
directories the clients compile in (/run, /var/lib/cni, /var/lib/containers,
/etc/cni/net.d), brings lo up and sleeps; every client command runs in its namespaces
through `nsenter`. close() ends what was started in them (the daemons are stopped first by
their fixtures; anything still in the network namespace is ours, and is killed and
reported), then the holder: the namespaces and their mounts go with it.

cgroups are not namespaced: each daemon gets a cgroup parent named with CGROUP_PREFIX,
removed at close() (remove_cgroups), innermost first.
"""
import os
import signal
import subprocess
import sys
import time

CGROUP_TOP = "/sys/fs/cgroup"
PRIVATE_DIRS = ("/run", "/var/lib/cni", "/var/lib/containers", "/etc/cni/net.d")
HOLDER = """set -e
for d in {dirs}; do mkdir -p "$d"; mount -t tmpfs -o mode=0755 pyrunc-it-sandbox "$d"; done
mkdir -p /run/netns /run/lock
ip link set lo up
echo ready
exec sleep 2147483647
"""


class Sandbox:
    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c",
             HOLDER.format(dirs=" ".join(PRIVATE_DIRS))],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError(f"sandbox holder failed: {self.holder.stderr.read()}")
        self.pid = self.holder.pid
        self.net_inode = os.stat(f"/proc/{self.pid}/ns/net").st_ino
        self.started = []

    def argv(self, *argv):
        return ["nsenter", "--target", str(self.pid), "--mount", "--net", "--", *argv]

    def run(self, argv, timeout=60, **kw):
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        if "stdout" not in kw and "stderr" not in kw:
            kw["capture_output"] = True
        return subprocess.run(self.argv(*argv), text=True, timeout=timeout, **kw)

    def popen(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(*argv), start_new_session=True, **kw)
        self.started.append(proc)
        return proc

    def pids_inside(self):
        """Processes in the sandbox's network namespace, but the holder."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.pid:
                continue
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == self.net_inode:
                    found.append(int(entry))
            except OSError:
                continue
        return found

    def close(self, settle=10.0):
        """Stop what still runs inside (reported), then the holder. The list of what was
        left running: a daemon that does not stop its children is a finding."""
        deadline = time.monotonic() + settle
        while self.pids_inside() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = []
        for pid in self.pids_inside():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    left.append(f"{pid} {f.read().strip()}")
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.holder.kill()
        self.holder.wait(timeout=10)
        return left


def http_get(box, url, timeout=3):
    """GET url from the sandbox's network namespace (outside any container); the body on
    stdout. Python's client: the host's static busybox wget crashes outside a container."""
    return box.run([sys.executable, "-c", "import sys, urllib.request; sys.stdout.write("
                    "urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))"
                    ".read().decode())", url, str(timeout)], timeout=timeout + 10)


def http_get_until(box, url, timeout=10.0):
    """http_get, again every 0.2 s until it answers (a server just started) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        proc = http_get(box, url)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc
        time.sleep(0.2)


def cgroup_dirs(name):
    """NAME's directory in every hierarchy that has one."""
    out = []
    for h in [CGROUP_TOP] + [os.path.join(CGROUP_TOP, n) for n in os.listdir(CGROUP_TOP)]:
        path = os.path.join(h, name)
        if os.path.isdir(path) and not os.path.islink(h):
            out.append(path)
    return out


def remove_cgroups(name, timeout=10.0):
    """rmdir NAME's tree in every hierarchy, innermost first; what could not go."""
    problems = []
    deadline = time.monotonic() + timeout
    for top in cgroup_dirs(name):
        for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        problems.append(f"{d}: {e.strerror}")
                        break
                    time.sleep(0.1)
    return problems


def logging_launcher(path, runtime_path, calls_log, configs_dir, extra_args=""):
    """A runtime script that records each call (argv, one line) and the config.json of
    each create, then execs the runtime: how the client calls were captured for
    docs/CLIENTS.md and integration/data/clients/."""
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
echo "$*" >> {calls_log}
prev=
for a in "$@"; do
    if [ "$prev" = --bundle ] || [ "$prev" = -b ]; then bundle=$a; fi
    prev=$a
done
case " $* " in *" create "*)
    [ -n "$bundle" ] && cp "$bundle/config.json" {configs_dir}/config-$$.json ;;
esac
exec {runtime_path} {extra_args} "$@"
""")
    os.chmod(path, 0o755)
    return path
