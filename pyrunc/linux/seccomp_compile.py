"""linux.seccomp compiled with libseccomp (cffi): the parent's cold path only.

A warm cache hit (seccomp_cache.py) and the init never import this module or open the
library. How the spec maps onto libseccomp: see seccomp.py.
"""
import errno
import posix

from pyrunc.linux.seccomp import error as _error

_NR_SCMP_ERROR = -1             # seccomp_syscall_resolve_name: unknown name
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_BINARY_TREE_AFTER = 32         # rules before libseccomp's binary tree (runc's threshold)

_lib = None


def _libseccomp():
    """The cffi binding and the library, imported and opened on first use."""
    global _lib
    if _lib is None:
        from pyrunc._seccomp import ffi
        try:
            _lib = ffi, ffi.dlopen("libseccomp.so.2")
        except OSError as err:
            raise _error(f"cannot open libseccomp.so.2: {err}", "linux.seccomp") from None
    return _lib


def version():
    v = _libseccomp()[1].seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"


def syscall_resolver():
    """name -> its syscall number for libseccomp, None when unknown. Names foreign to the
    native architecture resolve to negative pseudo numbers, which rules accept."""
    lib = _libseccomp()[1]
    cache = {}

    def resolve(name):
        if name not in cache:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            cache[name] = None if number == _NR_SCMP_ERROR else number
        return cache[name]
    return resolve


def arch_tokens(section):
    lib = _libseccomp()[1]
    tokens = []
    for i, name in enumerate(section.node.architectures or ()):
        token = 0
        if name.startswith("SCMP_ARCH_"):
            token = lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
        if token == 0:
            raise _error(f"unknown architecture {name!r} (libseccomp {version()})",
                         f"{section.path}.architectures[{i}]")
        tokens.append((i, token))
    return tokens


def export(section, what):
    """Compile with libseccomp; return (BPF or PFC bytes, [(rule index, name index)] of
    the names libseccomp does not know)."""
    ffi, lib = _libseccomp()
    resolve = syscall_resolver()
    ctx = lib.seccomp_init(section.default)
    if ctx == ffi.NULL:
        raise _error(f"libseccomp refuses {section.node.defaultAction} as default action "
                     "(this kernel may lack it)", f"{section.path}.defaultAction")
    try:
        for i, token in arch_tokens(section):
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno.EEXIST:     # EEXIST: the native one, always there
                raise _error(f"libseccomp cannot add it: {posix.strerror(-rc)}",
                             f"{section.path}.architectures[{i}]")
        unknown, added = [], 0
        for rule in section.effective():
            for j, name in enumerate(rule.names):
                number = resolve(name)
                if number is None:
                    unknown.append((rule.index, j))
                    continue
                for group in rule.groups:
                    conds = ffi.new("struct scmp_arg_cmp[]", group) if group else ffi.NULL
                    rc = lib.seccomp_rule_add_array(ctx, rule.action, number, len(group), conds)
                    if rc < 0:
                        raise _error(_rule_refused(name, rc), rule.path)
                added += 1
        if added > _BINARY_TREE_AFTER:
            lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)
        fd = posix.memfd_create("pyrunc-seccomp", posix.MFD_CLOEXEC)
        try:
            rc = (lib.seccomp_export_bpf if what == "bpf" else lib.seccomp_export_pfc)(ctx, fd)
            if rc < 0:
                raise _error(f"libseccomp cannot export the filter: {posix.strerror(-rc)}",
                             section.path)
            size = posix.lseek(fd, 0, 1)  # SEEK_CUR
            return posix.pread(fd, size, 0), unknown
        finally:
            posix.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _rule_refused(name, rc):
    if rc == -errno.EEXIST:
        return (f"libseccomp refuses the rule for {name!r}: another rule gives it a different "
                "action for the same argument conditions")
    return f"libseccomp refuses the rule for {name!r}: {posix.strerror(-rc)}"
