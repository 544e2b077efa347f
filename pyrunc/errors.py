"""One error type that carries what a user needs to find the fault.

    pyrunc: create c1: mounts[3] (/tmp): mount tmpfs: Invalid argument [step: mounts]

`path` is the JSON path in config.json (with a short hint such as the mount destination),
`step` the init step (the same names as in --debug and --explain output).
"""


class PyruncError(Exception):
    def __init__(self, message, path=None, step=None, errno=None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.step = step
        self.errno = errno

    def __str__(self):
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} [step: {self.step}]" if self.step else text

    def to_wire(self):
        return {"message": self.message, "path": self.path, "step": self.step,
                "errno": self.errno}

    @classmethod
    def from_wire(cls, d):
        return cls(d["message"], d.get("path"), d.get("step"), d.get("errno"))


class Note(str):
    """A warning the user has nothing to do about: pyrunc does what runc does with the
    setting (runc is silent), e.g. ambient capabilities `runc spec` lists that the kernel
    cannot raise. The log says it at info level: in the --log file, on stderr only with
    --debug, so that clients (docker, podman) do not show it on every run. --strict still
    refuses it like any warning."""
    __slots__ = ()


def from_oserror(err, path=None, step=None):
    """Turn an OSError from the syscall layer into a PyruncError with context."""
    message = f"{err.filename}: {err.strerror}" if err.filename else (err.strerror or str(err))
    return PyruncError(message, path=path, step=step, errno=err.errno)
