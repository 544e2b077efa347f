"""How the `pyrunc` command starts: the installed command's entry point, and the fast launcher.

pip's console script starts Python fully (site processing, the venv's .pth files, `re` for
its own use) before it calls main(): about 10 ms more a command than bin/pyrunc, which
starts Python with -IS and sets the path itself (docs/PERFORMANCE.md). A runtime pays that
on each create, start, state and delete. `python -m pyrunc.launcher OUT` writes such a
launcher for the interpreter that runs it and the pyrunc and cffi it imports:

    ~/venv/bin/python -m pyrunc.launcher ~/venv/bin/pyrunc    # replaces pip's script

scripts/setup.sh writes bin/pyrunc with it too (through scripts/write-launcher.sh), so
what is measured in bench/ starts exactly as what is used.
"""
import posix
import sys

# Self-contained (no pyrunc.launcher import): bench/snapshot.sh launches older trees with it
TEMPLATE = """#!{python} -IS
# {comment}. -IS (isolated, no site) skips site processing, so the
# path to pyrunc and to its packages (cffi's backend) is set here; a short-lived
# command needs no cyclic garbage collection; _exit skips the interpreter's teardown
# (about 7 ms): the streams are flushed first and log files are line-buffered. posix, not
# os: importing os costs 2.4 ms (pyrunc/paths.py says why).
import gc
gc.disable()
import posix
import sys
sys.path[:0] = {paths!r}
from pyrunc.cli import main
status = main()
sys.stdout.flush()
sys.stderr.flush()
posix._exit(status)
"""


def main():
    """The console script's entry point: as the launcher's code, after a full start."""
    import gc
    gc.disable()
    from pyrunc.cli import main as cli_main
    status = cli_main()
    sys.stdout.flush()
    sys.stderr.flush()
    posix._exit(status)


def write(out, python, paths, comment):
    text = TEMPLATE.format(python=python, paths=list(paths), comment=comment)
    tmp = f"{out}.{posix.getpid()}.tmp"
    with open(tmp, "x") as f:  # never through a planted file or symlink
        f.write(text)
    posix.chmod(tmp, 0o755)
    posix.rename(tmp, out)  # over pip's script, or a running launcher, atomically


def _package_parent(name):
    module = __import__(name)
    return module.__file__.rsplit("/", 2)[0] if module.__file__.endswith("/__init__.py") \
        else module.__file__.rsplit("/", 1)[0]


def run(argv):
    """OUT [COMMENT [PATH...]]: without PATHs, where this interpreter finds pyrunc, cffi
    and _cffi_backend."""
    if not argv or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m pyrunc.launcher OUT [COMMENT [PATH...]]\n")
        return 2
    out, comment = argv[0], (argv[1] if len(argv) > 1 else "written by pyrunc.launcher")
    paths = argv[2:]
    if not paths:
        for name in ("pyrunc", "cffi", "_cffi_backend"):
            parent = _package_parent(name)
            if parent not in paths:
                paths.append(parent)
    python = posix.readlink("/proc/self/exe")  # no venv symlink: no pyvenv.cfg lookup
    write(out, python, paths, comment)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
