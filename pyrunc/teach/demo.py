"""pyrunc demo: the article's hardened snippets, each run with pyrunc and checked in the kernel.

    pyrunc demo [--keep DIR]

For each snippet of examples/article/ (capabilities, the seccomp allow-list and socket
filter, read-only root with tmpfs, masked and read-only paths, and the user namespace as
published, which pyrunc runs, without the default devpts gid=5) a bundle is made from the host (a busybox
rootfs and the default config, pyrunc.bundle.make_bundle) with the snippet laid over it
(pyrunc.bundle.merge), then run through `pyrunc verify` with pyrunc. The report shows the
snippet's claims one per line and sums up the default config's other claims (showing any
that broke). The bundles go to a temporary directory, removed at the end, or to --keep DIR.

Without root the snippets are laid over `spec --rootless`'s config and the userns snippet
maps the user's own ids (verify runs in a user namespace of its own: see verify.py).

Exit status: 0 when every bundle ran (broken claims are findings to read, not failures of
the demo), 2 when one did not run or the demo could not start.
"""
import json
import os
import shutil
import sys
import tempfile
import time

from pyrunc.bundle import make_bundle, merge
from pyrunc.errors import PyruncError
from pyrunc.spec.defaults import default_spec
from pyrunc.teach import claims as judging
from pyrunc.teach import verify
from pyrunc.teach.probe import PROBE_SOURCE

# an installed pyrunc carries a copy in the package (setup.py); the repository has examples/
_PACKAGE = os.path.dirname(PROBE_SOURCE)
ARTICLE = next((d for d in (os.path.join(_PACKAGE, "examples", "article"),
                            os.path.join(os.path.dirname(_PACKAGE), "examples", "article"))
                if os.path.isdir(d)), os.path.join(_PACKAGE, "examples", "article"))

SNIPPETS = (
    ("capabilities", "only CAP_NET_BIND_SERVICE, and no new privileges"),
    ("seccomp-whitelist", "an allow-list of system calls, everything else EPERM"),
    ("seccomp-socket-filter", "socket() refused with errno 1 unless AF_INET"),
    ("readonly-root-tmpfs", "a read-only root, tmpfs for /tmp and /var/log"),
    ("masked-readonly-paths", "sensitive /proc and /sys paths hidden or read-only"),
    ("userns", "uid 1000 inside is uid 100000 on the host (the mapping as published)"),
)


def configure(parser):
    parser.add_argument("--keep", metavar="DIR", help="make the bundles in DIR (new or "
                                                      "empty) and keep them")


def fix_userns(config):
    """The default config's devpts option gid=5 names a group the article's namespace does
    not map (the kernel refuses the mount); the mapping itself stays as published (pyrunc
    needs no container root; runc would). Returns the JSON paths the fix touched."""
    touched = []
    for i, m in enumerate(config["mounts"]):
        if m.get("type") == "devpts" and "gid=5" in (m.get("options") or ()):
            m["options"] = [o for o in m["options"] if o != "gid=5"]
            touched.append(f"mounts[{i}]")
    return touched


def snippet_paths(config, fragment):
    """The JSON paths (two levels deep; list entries by index) a fragment sets in `config`:
    claims under them are the snippet's."""
    paths = []
    for key, value in fragment.items():
        if key == "mounts":
            dests = [m.get("destination") for m in config.get("mounts") or ()]
            paths += [f"mounts[{dests.index(m['destination'])}]" for m in value]
        elif isinstance(value, dict):
            for sub, inner in value.items():
                if key == "linux" and sub == "namespaces":
                    kinds = [n.get("type") for n in config["linux"]["namespaces"]]
                    paths += [f"linux.namespaces[{kinds.index(n['type'])}]" for n in inner]
                else:
                    paths.append(f"{key}.{sub}")
        else:
            paths.append(key)
    return paths


def under(path, prefixes):
    return any(path == p or path.startswith((p + ".", p + "[", p + " ")) for p in prefixes)


def rootless_userns(config, uid, gid):
    """Without root the article's host id 100000 is out of reach: the mapping goes to the
    user's own ids instead (uid 1000 inside is then the user on the host)."""
    for key, own in (("uidMappings", uid), ("gidMappings", gid)):
        config["linux"][key] = [dict(m, hostID=own, size=1) for m in config["linux"][key]]


def build(directory, name, rootless=False):
    """The bundle for snippet `name` in directory/name; returns (path, snippet paths).
    rootless: laid over `spec --rootless`'s config (a user without root)."""
    with open(os.path.join(ARTICLE, name, "fragment.json")) as f:
        fragment = json.load(f)
    config = merge(default_spec(rootless=rootless), fragment)
    paths = snippet_paths(config, fragment)
    if name == "userns":
        paths += fix_userns(config)
        if rootless:
            rootless_userns(config, os.geteuid(), os.getegid())
    return make_bundle(os.path.join(directory, name), config=config), paths


def section(name, title, result, paths):
    """The snippet's claims, one a line; the default config's others summed up, except
    broken ones, which are always shown."""
    mine = [c for c in result.claims if under(c.path, paths)]
    broken = [c for c in result.claims if c not in mine and c.verdict == judging.BROKEN]
    rest = [c for c in result.claims if c not in mine and c not in broken]
    lines = [f"{name}: {title}"]
    lines += ["  " + judging.line(c) for c in mine + broken]
    lines.append(f"  + {len(rest)} more claims of the default config: {judging.counts(rest)}")
    return lines


def run(args):
    if not os.path.isdir(ARTICLE):
        sys.stderr.write(f"pyrunc demo: {ARTICLE}: missing (a wheel carries it; a "
                         "repository has examples/article)\n")
        return 2
    if args.keep:
        directory = os.path.abspath(args.keep)
        if os.path.isdir(directory) and os.listdir(directory):
            sys.stderr.write(f"pyrunc demo: --keep {args.keep}: not empty\n")
            return 2
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="pyrunc-demo-")
    # the container users (uid 1000, a user namespace's) must reach their bundles
    os.chmod(directory, 0o755)
    try:
        return _demo(directory, bool(args.keep))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


def _demo(directory, keep):
    print("pyrunc demo: the article's hardened snippets, each laid over a bundle made from "
          "the host\n(busybox rootfs, default config), run with pyrunc and checked in the "
          "kernel by `pyrunc verify`:\na probe runs as the container process; each claim "
          "of the config is held, BROKEN or not checked.\n")
    rootless = os.geteuid() != 0
    if rootless:
        print("Without root: each snippet is laid over `pyrunc spec --rootless`'s config, and "
              "the user\nnamespace maps your own ids; the kernel then denies setgroups, so "
              "the process keeps\nyour groups (additionalGids shows BROKEN: that is true).\n")
    status, results = 0, []
    started = time.monotonic()
    for name, title in SNIPPETS:
        if rootless and name == "userns":
            title = "uid 1000 inside is your own uid on the host (without root: not 100000)"
        try:
            path, paths = build(directory, name, rootless=rootless)
            result = verify.verify(path, "pyrunc")
        except PyruncError as e:
            print(f"{name}: {title}\n  did not run: {e}\n")
            status = 2
            continue
        results.append(result)
        print("\n".join(section(name, title, result, paths)) + "\n")
    claims = [c for r in results for c in r.claims]
    print(f"{len(results)} bundles in {time.monotonic() - started:.1f} s, "
          + judging.summary(claims))
    print(f"The bundles are in {directory}. Next, on one of them:" if keep else
          "Next, on a bundle (pyrunc demo --keep DIR keeps these):")
    for command, what in (("pyrunc verify BUNDLE --runtime runc", "the same claims under runc"),
                          ("pyrunc check BUNDLE", "the config's risks, nothing started"),
                          ("pyrunc seccomp show BUNDLE", "the compiled filter, per syscall"),
                          ("pyrunc run --explain --bundle BUNDLE ID",
                           "each init step and its system calls")):
        print(f"  {command:<42}{what}")
    print("docs/TEACHING.md walks through them.")
    return status
