"""Networking inside a new network namespace: `lo` up, with an ioctl (no netlink library)."""
import _socket
import fcntl
import sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up():
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        # struct ifreq: the name in 16 bytes, then the flags (a short) in a 24-byte union
        ifreq = b"lo".ljust(16, b"\0") + bytes(24)
        got = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq)
        flags = int.from_bytes(got[16:18], sys.byteorder) | IFF_UP
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, ifreq[:16] + flags.to_bytes(2, sys.byteorder)
                    + bytes(22))
    finally:
        s.close()
