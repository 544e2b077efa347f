"""Generate pyrunc's cffi binding modules (out-of-line ABI mode: pure Python, no compiler).

    python native/build.py [OUTDIR]

writes OUTDIR/_libc.py and OUTDIR/_seccomp.py (default: the pyrunc package directory).
Each module is a cffi description of the declarations in the matching .cdef file;
importing it costs a few milliseconds and opens the shared library lazily via ffi.dlopen.
"""
import os
import sys

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
BINDINGS = {"_libc": "libc.cdef", "_seccomp": "seccomp.cdef"}


def ffi_for(cdef_file):
    ffi = cffi.FFI()
    with open(os.path.join(HERE, cdef_file)) as f:
        ffi.cdef(f.read())
    return ffi


def build(outdir):
    for module, cdef_file in BINDINGS.items():
        ffi = ffi_for(cdef_file)
        ffi.set_source("pyrunc." + module, None)
        ffi.emit_python_code(os.path.join(outdir, module + ".py"))


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "pyrunc"))
