"""linux.netDevices (spec 1.2): host interfaces moved into the container's network namespace.

Done by the parent, which is in the host's namespaces, once C1 has made the new network
namespace: the device moves (RTM_NEWLINK with IFLA_NET_NS_PID), then, inside that namespace,
it gets its new name, the addresses it had on the host (a move drops them; runc keeps them
too) and is set up. pyroute2 costs ~350 ms to import: only configs with netDevices pay it.
"""
import os

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError


def check_names(net_devices, fail):
    """Interface names the kernel accepts: 1 to 15 bytes, no '/', ':' or whitespace."""
    for host, dev in net_devices.items():
        for where, name in ((f"linux.netDevices.{host}", host),
                            (f"linux.netDevices.{host}.name", dev.name)):
            if name is None:
                continue
            if not 0 < len(name.encode()) <= 15 or any(c in name for c in "/: \t\n") \
                    or name in (".", ".."):
                fail(where, f"{name!r} is not a valid interface name")
    names = [dev.name or host for host, dev in net_devices.items()]
    if len(set(names)) != len(names):
        fail("linux.netDevices", "two devices get the same name in the container")


def move_devices(net_devices, pid):
    """Move each host device into the network namespace of `pid`, renamed, with its
    addresses, and up."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        _move(IPRoute, net_devices, pid)
    except NetlinkError as e:
        raise PyruncError(f"netlink: {e}", path="linux.netDevices", step="net_devices") from None


def _move(IPRoute, net_devices, pid):
    moved = []
    with IPRoute() as ipr:
        for host in net_devices:
            where = f"linux.netDevices.{host}"
            found = ipr.link_lookup(ifname=host)
            if not found:
                raise PyruncError("no such interface on the host", path=where, step="net_devices")
            addrs = [(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                     for a in ipr.get_addr(index=found[0])
                     if a["scope"] == 0 and a.get_attr("IFA_ADDRESS")]
            ipr.link("set", index=found[0], net_ns_pid=pid)
            moved.append((host, net_devices[host].name or host, addrs))
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.CLONE_NEWNET, what="setns container network")
        try:
            with IPRoute() as ipr:
                for host, name, addrs in moved:
                    index = ipr.link_lookup(ifname=host)[0]
                    if name != host:
                        ipr.link("set", index=index, ifname=name)
                    for address, prefix in addrs:
                        ipr.addr("add", index=index, address=address, prefixlen=prefix)
                    ipr.link("set", index=index, state="up")
        finally:
            sc.setns(host_ns, sc.CLONE_NEWNET, what="setns back to the host network")
    finally:
        os.close(host_ns)
        os.close(target)
