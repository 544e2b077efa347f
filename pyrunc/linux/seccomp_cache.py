"""Compiled seccomp filters kept by hash, so that a warm `create` never opens libseccomp.

Key: the section's canonical JSON, the libseccomp file that would be loaded (path, size,
mtime), the machine and CACHE_FORMAT. Entries are 0600 in a 0700 directory and replaced
atomically; the oldest are evicted past CACHE_MAX_ENTRIES.
"""
import posix

from pyrunc import fastjson, paths

CACHE_FORMAT = 1        # bump when the compiled output or the cache entry layout changes
CACHE_MAX_ENTRIES = 64


def _ld_so_conf_dirs():
    """Library directories from /etc/ld.so.conf and /etc/ld.so.conf.d/*.conf (the include
    every distribution uses), without glob: it would pull in re."""
    lines = []
    confd = "/etc/ld.so.conf.d"
    try:
        names = sorted(n for n in posix.listdir(confd) if n.endswith(".conf"))
    except OSError:
        names = []
    for path in ["/etc/ld.so.conf"] + [paths.join(confd, n) for n in names]:
        try:
            with open(path) as f:
                lines += f.read().splitlines()
        except OSError:
            continue
    dirs = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("/"):
            dirs.append(line)
    return dirs


def _library_identity():
    """The libseccomp.so.2 the dynamic loader would open, found without opening it: the
    resolved file name carries the version (libseccomp.so.2.5.4), size and mtime a rebuild.
    None when not found this way (no caching then)."""
    dirs = [d for d in posix.environ.get(b"LD_LIBRARY_PATH", b"").decode(errors="surrogateescape").split(":") if d]
    for d in dirs + _ld_so_conf_dirs() + ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]:
        path = paths.join(d, "libseccomp.so.2")
        try:
            st = posix.stat(path)
        except OSError:
            continue
        return f"{paths.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    return None


def _sha256():
    try:
        from _sha256 import sha256      # builtin: skips hashlib's OpenSSL import (~5 ms)
    except ImportError:                 # Python 3.12 renamed it _sha2
        from hashlib import sha256
    return sha256


def _plain(value):
    """A model node back to the JSON it was loaded from (absent fields left out)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    slots = getattr(type(value), "__slots__", None)
    if slots is None:
        return value
    return {k: _plain(getattr(value, k)) for k in slots if getattr(value, k) is not None}


def _cache_key(seccomp, identity):
    # fastjson, not json: importing json (and with it re and enum) would cost more than
    # the warm cache saves
    text = fastjson.dumps_canonical(_plain(seccomp))
    material = f"pyrunc-seccomp {CACHE_FORMAT}\0{identity}\0{posix.uname().machine}\0{text}"
    return _sha256()(material.encode()).hexdigest()


def _cache_read(path):
    """(bpf, unknown) from a cache entry, None when missing or damaged.
    Entry: one header line "<bpf length> <i>.<j> ..." (unknown names), then the BPF."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    header, newline, bpf = data.partition(b"\n")
    fields = header.split()
    try:
        length = int(fields[0])
        unknown = [tuple(int(n) for n in u.split(b".")) for u in fields[1:]]
    except (IndexError, ValueError):
        return None
    if not newline or length != len(bpf) or length % 8 or any(len(u) != 2 for u in unknown):
        return None
    return bpf, unknown


def _cache_write(cache_dir, key, bpf, unknown):
    paths.makedirs(cache_dir, 0o700)
    header = " ".join([str(len(bpf))] + [f"{i}.{j}" for i, j in unknown]) + "\n"
    tmp = paths.join(cache_dir, f".{key}.{posix.getpid()}")
    # 0600 whatever the umask: the filter a container gets must be ours alone to write
    with open(posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_NOFOLLOW
                         | posix.O_CLOEXEC, 0o600), "wb") as f:
        f.write(header.encode() + bpf)
    posix.replace(tmp, paths.join(cache_dir, key))   # readers see a whole entry or none
    entries = []
    for e in posix.scandir(cache_dir):
        try:
            if not e.name.startswith("."):
                entries.append((e.stat().st_mtime_ns, e.path))
        except FileNotFoundError:       # another pyrunc evicted it meanwhile
            continue
    entries.sort()
    for _, old in entries[:-CACHE_MAX_ENTRIES]:
        try:
            posix.unlink(old)
        except FileNotFoundError:
            continue


def compile_cached(section, cache_dir, warnings):
    """(BPF, unknown names) for a checked section, from the cache when it can."""
    from pyrunc.linux import seccomp_compile
    identity = _library_identity() if cache_dir else None
    if identity is None:
        return seccomp_compile.export(section, "bpf")
    path = paths.join(cache_dir, _cache_key(section.node, identity))
    hit = _cache_read(path)
    if hit is not None:
        return hit
    bpf, unknown = seccomp_compile.export(section, "bpf")
    # store only when the library found by path is the one the loader opened
    if identity.split(":")[0].endswith(f".so.{seccomp_compile.version()}"):
        try:
            _cache_write(cache_dir, paths.basename(path), bpf, unknown)
        except OSError as err:
            warnings.append(f"{section.path}: cannot store the compiled filter in "
                            f"{cache_dir}: {err.strerror}; it is recompiled next time")
    return bpf, unknown
