"""Make a ready-to-run bundle: a small rootfs and a config.json.

    pyrunc bundle DIR [--rootfs busybox|host] [--force] [-- ARGS...]

Two kinds of rootfs:
- busybox: Debian's busybox-static copied to rootfs/bin/busybox, with symlinks for the usual
  applets. One static file, no libraries: the smallest rootfs that still has a shell.
- host: the host's own binaries (sh, ls, cat, id, ...) plus every shared library `ldd`
  names for them, each copied to the same path, so the dynamic loader finds them.

Both get the directories a config's mounts need (proc, sys, dev, tmp), and etc/passwd and
etc/group with root and a user 1000, so `id` and `ps` show names.

config.json is `pyrunc.spec.defaults.default_spec()` (the same shape as `runc spec`, terminal
false), with process.args set to ARGS (default `sh`). `merge()` lays a config fragment (such as
the snippets under examples/article/) over such a config.
"""
import argparse
import copy
import json
import os
import shutil
import stat
import struct
import subprocess

from pyrunc.errors import PyruncError
from pyrunc.spec.defaults import default_spec

BUSYBOX = "/bin/busybox"

# the applets a person or a test reaches for first; only those the busybox binary has are linked
APPLETS = ("sh ash ls cat id echo true false sleep hostname mount umount ps grep env pwd "
           "mkdir rmdir rm touch cp mv ln chmod chown stat readlink head tail wc sed awk "
           "printf test [ kill uname whoami groups date df du find xargs tee sort uniq cut "
           "tr dd od hexdump nproc ip ifconfig nc ping nsenter setpriv unshare vi less more "
           "dmesg free top uptime sync usleep timeout seq yes basename dirname realpath "
           "mktemp mknod mkfifo sysctl which").split()

# binaries copied for --rootfs host (each found on the host's PATH; missing ones are skipped)
HOST_BINARIES = ("sh bash ls cat id echo true false sleep hostname mount umount ps grep env "
                 "pwd mkdir rm touch cp mv ln chmod stat readlink head tail wc sed printf "
                 "test kill uname date df find").split()

ROOTFS_DIRS = ("bin", "proc", "sys", "dev", "tmp", "etc", "root", "home/user", "var/tmp")

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "user:x:1000:1000:user:/home/user:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n"

PT_INTERP = 3


def elf_interp(path):
    """The program interpreter (PT_INTERP) of an ELF file, or None for a static one.

    Raises ValueError if `path` is not a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", table, i * phentsize)
        if p_type == PT_INTERP:
            with open(path, "rb") as f:
                f.seek(p_offset)
                return f.read(p_filesz).rstrip(b"\0").decode()
    return None


def static_busybox(path=BUSYBOX):
    """True when `path` is a statically linked busybox (Debian's busybox-static)."""
    try:
        return elf_interp(path) is None and os.access(path, os.X_OK)
    except (OSError, ValueError):
        return False


def default_rootfs():
    return "busybox" if static_busybox() else "host"


def busybox_applets(path=BUSYBOX):
    """The applets this busybox binary has (from `busybox --list`)."""
    out = subprocess.run([path, "--list"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def shared_libraries(binary):
    """Absolute paths of the loader and libraries `binary` needs, from `ldd` output.

    Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, and, for the
    loader, `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO (`linux-vdso.so.1 (0x...)`)
    has no file. A static binary makes ldd fail: it needs nothing."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    libs = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
            if target == "not found":
                raise PyruncError(f"{binary}: ldd cannot find {line.split()[0]}")
        else:
            target = line.split(" (", 1)[0].strip()
        if target.startswith("/"):
            libs.append(target)
    return libs


def _copy_file(src, dst):
    """Copy the content `src` resolves to into `dst` (a regular file), keeping the mode."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(os.path.realpath(src), dst)
    os.chmod(dst, stat.S_IMODE(os.stat(src).st_mode))


def _populate_busybox(rootfs):
    _copy_file(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    available = busybox_applets()
    for name in APPLETS:
        if name in available:
            os.symlink("busybox", os.path.join(rootfs, "bin", name))


def _populate_host(rootfs):
    search = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    needed = set()
    copied = 0
    for name in HOST_BINARIES:
        path = shutil.which(name, path=search)
        if path is None:
            continue
        _copy_file(path, os.path.join(rootfs, "bin", name))
        needed.update(shared_libraries(path))
        copied += 1
    if not copied:
        raise PyruncError("no host binary found to copy (looked for sh, ls, cat, ...)")
    for lib in sorted(needed):
        # same path as on the host: the loader path is compiled into each binary, and the
        # loader's default search path covers the library directories ldd named
        _copy_file(lib, rootfs + lib)


def _mounted_under(path):
    """Mount points (from our mountinfo) at or below `path`."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return found


def merge(base, fragment):
    """A copy of config `base` with `fragment` laid over it.

    Objects merge key by key; a list replaces the list it meets, except `mounts`, where a
    fragment's mount replaces the base mount with the same destination and is otherwise
    added (a snippet that shows two tmpfs mounts means "also mount these", not "only these");
    and `linux.namespaces`, merged by type the same way."""
    out = copy.deepcopy(base)
    for key, value in fragment.items():
        if key in ("mounts", "namespaces") and isinstance(out.get(key), list):
            ident = "destination" if key == "mounts" else "type"
            merged = list(out[key])
            for item in value:
                same = [i for i, old in enumerate(merged) if old.get(ident) == item.get(ident)]
                if same:
                    merged[same[0]] = copy.deepcopy(item)
                else:
                    merged.append(copy.deepcopy(item))
            out[key] = merged
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_bundle(dir, rootfs=None, args=None, config=None, force=False):
    """Create bundle `dir` (rootfs/ and config.json) and return its absolute path.

    rootfs: "busybox" or "host" (default: busybox when /bin/busybox is static, else host).
    args: process.args (default ["sh"]).
    config: a whole config dict to write instead of the default one (args still applies
    when given). force: replace an existing rootfs/ and config.json."""
    kind = rootfs or default_rootfs()
    if kind not in ("busybox", "host"):
        raise PyruncError(f"--rootfs {kind}: expected busybox or host")
    if kind == "busybox" and not static_busybox():
        raise PyruncError(f"{BUSYBOX} is not a static busybox (apt-get install busybox-static)")
    bundle = os.path.abspath(dir)
    root = os.path.join(bundle, "rootfs")
    conf = os.path.join(bundle, "config.json")
    existing = [p for p in (root, conf) if os.path.lexists(p)]
    if existing and not force:
        raise PyruncError(f"{bundle}: already has {', '.join(map(os.path.basename, existing))}"
                          " (--force replaces them)")
    if existing:
        busy = _mounted_under(root)
        if busy:
            # rmtree would descend into a mounted file system and empty it
            raise PyruncError(f"{root}: still mounted at {busy[0]}; not removing it")
        if os.path.isdir(root) and not os.path.islink(root):
            shutil.rmtree(root)
        elif os.path.lexists(root):
            os.unlink(root)
        if os.path.lexists(conf):
            os.unlink(conf)
    os.makedirs(bundle, exist_ok=True)
    os.mkdir(root, 0o755)
    os.chmod(root, 0o755)  # not narrowed by umask: an unprivileged container user reads it
    for d in ROOTFS_DIRS:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    if os.geteuid() == 0:
        os.chown(os.path.join(root, "home/user"), 1000, 1000)
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        with open(os.path.join(root, "etc", name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(root, "etc", name), 0o644)
    if kind == "busybox":
        _populate_busybox(root)
    else:
        _populate_host(root)
    if config is None:
        spec = default_spec(args=args)
    else:
        spec = copy.deepcopy(config)
        if args is not None:
            spec.setdefault("process", {})["args"] = list(args)
    with open(conf, "w") as f:
        json.dump(spec, f, indent="\t")
        f.write("\n")
    return bundle


def _options(parser, rootfs_default):
    parser.add_argument("--rootfs", choices=("busybox", "host"), default=rootfs_default,
                        help="busybox: Debian's busybox-static and applet links; host: host "
                             "binaries and their shared libraries (default: %(default)s)")
    parser.add_argument("--force", action="store_true", default=False,
                        help="replace an existing DIR/rootfs and DIR/config.json")


class _QuietParser(argparse.ArgumentParser):
    def error(self, message):
        raise PyruncError(f"bundle: {message} (usage: pyrunc bundle DIR [--rootfs "
                          "busybox|host] [--force] [-- ARGS...])")


def _words_parser(rootfs_default, force_default):
    inner = _QuietParser(prog="pyrunc bundle", add_help=False)
    _options(inner, rootfs_default)
    inner.set_defaults(force=force_default)
    inner.add_argument("dir", metavar="DIR")
    inner.add_argument("args", nargs="*")
    return inner


def configure(parser):
    """Add the `bundle` command's arguments to an argparse parser (a subparser is fine).

    Options may stand before or after DIR; everything after `--` is process.args. argparse
    alone cannot take options after a positional that is followed by `-- ARGS` (it consumes
    all positionals at once), so DIR and what follows are collected whole and parsed again
    in run()."""
    parser.description = "Make a ready-to-run bundle: DIR/rootfs and DIR/config.json."
    _options(parser, default_rootfs())
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="DIR [-- ARGS ...]",
                        help="the bundle directory (created if missing), then process.args "
                             "after -- (default: sh)")
    return parser


def parse_words(args):
    """(dir, rootfs, force, process args) from the namespace configure()'s parser made."""
    if not args.words:
        raise PyruncError("bundle: DIR is missing (usage: pyrunc bundle DIR [--rootfs "
                          "busybox|host] [--force] [-- ARGS...])")
    inner = _words_parser(args.rootfs, args.force).parse_intermixed_args(list(args.words))
    return inner.dir, inner.rootfs, inner.force, inner.args


def run(args):
    """Run the `bundle` command from parsed arguments; return the exit status.

    Errors are raised as PyruncError for the CLI to print as one line."""
    directory, rootfs, force, process_args = parse_words(args)
    print(make_bundle(directory, rootfs=rootfs, args=process_args or None, force=force))
    return 0
