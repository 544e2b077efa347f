"""pyrunc verify BUNDLE: run the bundle's container with a probe and check each claim of its
config in the live process.

    pyrunc verify BUNDLE [--runtime runc|crun|pyrunc|PATH] [--format text|json] [--root DIR]

The container runs once, as the bundle describes it, except for process.args (the static
probe, pyrunc/probe.c, with the experiments this config calls for, then `hold`) and
process.terminal (false: the report is read from its stdout). While the probe holds, its
/proc/PID entries are read from the host; then the container is deleted. Each claim of the
config is compared with what the probe and the host saw: held, broken or not checked, with
the evidence. Exit status: 0 every claim held (or was not checked), 1 a claim broke, 2 the
container did not run (the bundle, the runtime, the probe or root were missing), with one
line on stderr and nothing left behind.

Why an overlay, not a bind mount of the probe into the bundle's rootfs: a runtime creates a
mount point that does not exist, in the rootfs on disk (for the probe's bind mount, and
for any config mount whose destination is missing), and an existing file to mount over may
not exist or be covered by a later mount. So the run gets an overlay: the original rootfs
as its read-only lower layer, a tmpfs as the upper one, holding the probe at /.pyrunc-probe
and taking whatever the runtime or the container writes (a writable root's writes too).
The bundle on disk is never written, whether its rootfs is read-only or not. The overlay
and that tmpfs live in a mount namespace private to verify (made at start: unshare, then
/ made rprivate), so they vanish with verify's process even if it is killed; the runtime
runs in that namespace, so "the runtime's namespace", for unlisted namespace types, means
that one. The temporary bundle's config.json is the original with root.path pointing at
the overlay, relative bind sources made absolute, and the two process fields above.
Limits: a config joining a mount namespace by path sets up its root there, where the
overlay does not exist; an overlay needs the rootfs on a file system overlayfs accepts as a
lower layer (not another overlay two levels deep).

crun on a hybrid cgroup host (cgroup v1 controllers plus a cgroup2 at
/sys/fs/cgroup/unified) refuses to run ("cgroups in hybrid mode not supported, drop all
controllers from cgroupv2"); verify hides the cgroup2 mount under a tmpfs in its private
mount namespace, as `unshare -m sh -c 'mount -t tmpfs none /sys/fs/cgroup/unified && exec
crun "$@"'` would, and only for crun.

Seccomp: for each rule, a sample of its syscalls (the first, the last and one Docker's
profile denies), and for a rule with conditions, arguments that meet them and arguments
that do not; for the default action, one old and one recent syscall no rule names. The
expected action follows libseccomp's semantics (pyrunc.linux.seccomp: a rule without
conditions decides its syscalls alone). The probe's `sys=` experiment asks the filter for
its action without ever running the call (see pyrunc/probe.c).
"""
import json
import os
import sys
from typing import NamedTuple

from pyrunc.errors import PyruncError
from pyrunc.spec import load_config, read_config
from pyrunc.teach.claims import (BROKEN, Plan, _process, host_facts, judge, line,
                                 summary)
from pyrunc.teach.probe import Run, private_mount_namespace, runtime_argv


class Result(NamedTuple):
    bundle: str
    runtime: str
    claims: list

    def count(self, verdict):
        return sum(c.verdict == verdict for c in self.claims)

    @property
    def status(self):
        return 1 if self.count(BROKEN) else 0


def verify(bundle, runtime="pyrunc", root=None):
    """Run BUNDLE's container under `runtime` with the probe; return a Result. Raises
    PyruncError when it does not run (nothing is left behind then either)."""
    raw = read_config(bundle)
    config, _ = load_config(raw)
    if not _process(raw):
        raise PyruncError("config.json has no process: nothing to run")
    argv = runtime_argv(runtime)
    private_mount_namespace()   # first: the runtime's namespaces, as the plan records them
    plan = Plan(raw, config, host_facts(raw))
    with Run(bundle, raw, argv, root, plan.words) as run:
        report, outside = run.observe()
        return Result(os.path.abspath(bundle), run.label, judge(plan, report, outside))


# ---- the command --------------------------------------------------------------------------

def configure(parser):
    parser.add_argument("bundle", help="the bundle directory (holding config.json)")
    parser.add_argument("--runtime", default="pyrunc",
                        help="runc, crun, pyrunc (this one, the default) or the path of any "
                             "runtime with runc's command line")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default), json for tools")
    parser.add_argument("--root", help="the runtime's state directory (default: a scratch "
                                       "directory of verify's own)")


def text_report(result):
    lines = [f"verify {result.bundle} with {result.runtime}"]
    lines += ["  " + line(c) for c in result.claims]
    lines.append(summary(result.claims))
    return "\n".join(lines) + "\n"


def run(args):
    try:
        result = verify(args.bundle, args.runtime, args.root)
    except PyruncError as e:
        sys.stderr.write(f"pyrunc verify: {e}\n")
        return 2
    if args.format == "json":
        print(json.dumps({"bundle": result.bundle, "runtime": result.runtime,
                          "claims": [c._asdict() for c in result.claims],
                          "status": result.status}, indent=2))
    else:
        sys.stdout.write(text_report(result))
    return result.status
