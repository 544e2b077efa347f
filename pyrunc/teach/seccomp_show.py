"""pyrunc seccomp show BUNDLE: the bundle's seccomp filter as the kernel will get it.

    pyrunc seccomp show BUNDLE [--pfc-only | --summary-only]

First libseccomp's pseudo filter code (PFC) for the filter pyrunc compiles from
linux.seccomp (the same rules, architectures and skips as `create`), then one line per
syscall a rule names saying what that syscall gets, and what everything else gets
(pyrunc.linux.seccomp.summarize: a rule without conditions decides its syscalls alone).
Names libseccomp does not know are reported on stderr, as `create` warns about them.
Nothing runs: `pyrunc verify` asks the live filter.
"""
import os
import sys

from pyrunc.linux import seccomp
from pyrunc.spec import load_bundle


def configure(parser):
    sub = parser.add_subparsers(dest="action", required=True, metavar="show|learn")
    show = sub.add_parser("show", help="the compiled filter (PFC) and what each syscall gets")
    show.add_argument("bundle", help="the bundle directory (holding config.json)")
    only = show.add_mutually_exclusive_group()
    only.add_argument("--pfc-only", action="store_true", help="only the pseudo filter code")
    only.add_argument("--summary-only", action="store_true",
                      help="only what each syscall gets")
    from pyrunc.teach import learn
    learn.configure(sub)


def summary_lines(summary):
    width = max(len(name) for name, _ in summary)
    return [f"{name:<{width}}  {gets}" for name, gets in summary]


def run(args):
    if args.action == "learn":
        from pyrunc.teach import learn
        return learn.run(args)
    config, _ = load_bundle(args.bundle)
    node = config.linux.seccomp if config.linux else None
    where = os.path.join(args.bundle, "config.json")
    if node is None:
        print(f"{where}: no linux.seccomp: the container may make every syscall")
        return 0
    warnings = []
    out = []
    if not args.summary_only:
        out.append(f"# {where}: linux.seccomp as libseccomp compiles it (pseudo filter code)")
        out.append(seccomp.export_pfc(node, warnings).rstrip("\n"))
    if not args.pfc_only:
        out.append("# what each syscall gets (the first rule without conditions decides "
                   "alone; libseccomp's order)")
        out += summary_lines(seccomp.summarize(node, warnings))
    for w in dict.fromkeys(warnings):   # both passes warn about the same unknown names
        sys.stderr.write(f"pyrunc seccomp: warning: {w}\n")
    print("\n".join(out))
    return 0
