"""`pyrunc features`: runtime-spec features.md, listing only what pyrunc really implements."""
from pyrunc import __version__, paths

SECCOMP_ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
                  "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                  "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
                  "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                  "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
                  "SCMP_ARCH_RISCV64")


def features():
    from pyrunc.linux import capabilities, namespaces, rootfs, seccomp
    from pyrunc.spec import NEWEST
    last = capabilities.kernel_last_cap()
    options = sorted(set(rootfs.FLAG_OPTIONS) | set(rootfs.PROPAGATION)
                     | set(rootfs.ATTR_OPTIONS) | set(rootfs.ATIME_OPTIONS))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": NEWEST,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": options,
        "linux": {
            "namespaces": sorted(namespaces.FLAGS),
            "capabilities": sorted((n for n, v in capabilities.CAPS.items() if v <= last),
                                   key=capabilities.CAPS.get),
            # cgroupfs only: no systemd driver; v2 device rules (eBPF) are not built
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": list(SECCOMP_ARCHES),
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.pyrunc.version": __version__},
    }


def unsupported_settings(config):
    """(JSON path, why) for each setting in config that pyrunc does not apply.

    The caller warns, or refuses in strict mode. A security label on a host without its
    LSM is one: crun runs without it, and the label could not be applied by anyone there.
    """
    found = []
    linux, process = config.linux, config.process
    if linux is not None:
        if linux.intelRdt:
            found.append(("linux.intelRdt", "Intel RDT is not implemented"))
        if linux.personality is not None and linux.personality.flags:
            found.append(("linux.personality.flags", "personality flags are not applied"))
    if process is not None and process.execCPUAffinity is not None:
        found.append(("process.execCPUAffinity", "CPU affinity is not implemented"))
    return found + [(path, f"{lsm} is not enabled on this host")
                    for path, lsm, enabled in security_labels(config) if not enabled]


def security_labels(config):
    """(JSON path, LSM name, enabled on this host) for each security label asked for.
    pyrunc applies none: without the LSM that is a warning (crun runs without the label);
    with it, a refusal (the label would be a silent hole)."""
    found = []
    process, linux = config.process, config.linux
    apparmor = paths.isdir("/sys/kernel/security/apparmor")
    selinux = paths.isdir("/sys/fs/selinux")
    if process is not None and process.apparmorProfile:
        found.append(("process.apparmorProfile", "AppArmor", apparmor))
    if process is not None and process.selinuxLabel:
        found.append(("process.selinuxLabel", "SELinux", selinux))
    if linux is not None and linux.mountLabel:
        found.append(("linux.mountLabel", "SELinux", selinux))
    return found


def refused_settings(config):
    """Settings that must not be ignored on this host: labels of an LSM it enables."""
    return [(path, f"{lsm} labels are not implemented")
            for path, lsm, enabled in security_labels(config) if enabled]
