"""process.terminal: a pty made inside the container, its master sent over --console-socket."""
import fcntl
import posix
import _socket
import select
import struct
import termios
import tty
from _stat import S_ISCHR, S_ISREG

from pyrunc import syscalls as sc
from pyrunc.linux import rootfs

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCSCTTY = 0x540E


def open_pty():
    """(master fd, slave path) from the container's /dev/ptmx (a devpts newinstance)."""
    master = posix.open("/dev/ptmx", posix.O_RDWR | posix.O_NOCTTY | posix.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    return master, f"/dev/pts/{n}"


def set_size(fd, height, width):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def send_fd(sock_fd, fd, name="/dev/ptmx"):
    """SCM_RIGHTS, as runc sends the console master (the message text is the pty name)."""
    s = _socket.socket(fileno=posix.dup(sock_fd))
    try:
        s.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                     struct.pack("i", fd))])
    finally:
        s.close()


def recv_fd(sock):
    _, anc, _, _ = sock.recvmsg(4096, _socket.CMSG_LEN(4))
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return struct.unpack("i", data[:4])[0]
    raise OSError(0, "no file descriptor received on the console socket")


def make_console_target():
    """An empty /dev/console to bind the pty on, unless one is there."""
    try:
        posix.close(posix.open("/dev/console", posix.O_CREAT | posix.O_EXCL | posix.O_WRONLY
                               | posix.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass


def mount_console(slave_path):
    """The pty slave bind-mounted on /dev/console, as the spec asks (and runc does)."""
    make_console_target()
    # the target opened without following a symlink (CVE-2025-52565): a /dev/console
    # made a symlink would send the bind anywhere, /proc/sys/kernel/core_pattern included
    fd = posix.open("/dev/console", posix.O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC)
    try:
        mode = posix.fstat(fd).st_mode
        if not (S_ISREG(mode) or S_ISCHR(mode)):
            raise OSError(22, "/dev/console is not a file or a device: not bound")
        sc.mount(slave_path, rootfs.on_fd(fd, "/dev/console"), None, sc.MS_BIND,
                 what="bind /dev/console")
    finally:
        posix.close(fd)


def make_controlling(slave_path, size=None):
    """New session, the pty slave as controlling terminal and as stdin/stdout/stderr."""
    posix.setsid()
    slave = posix.open(slave_path, posix.O_RDWR)
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    if size is not None:
        set_size(slave, *size)
    for n in (0, 1, 2):
        posix.dup2(slave, n)
    if slave > 2:
        posix.close(slave)


def copy_size(master):
    """Our terminal's size onto the pty, when our stdin is a terminal: done before the
    process runs, so that it never sees a 0x0 window (runc and crun resize afterwards)."""
    if posix.isatty(0):
        size = posix.get_terminal_size(0)
        set_size(master, size.lines, size.columns)


def proxy(master, pidfd):
    """Foreground `run` with a terminal: copy our stdin to the pty and the pty to our stdout
    until the container exits (pidfd readable). Our tty, if any, is raw meanwhile."""
    saved = None
    if posix.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        copy_size(master)
    watched = [master, pidfd, 0]
    try:
        while True:
            ready, _, _ = select.select(watched, [], [])
            if master in ready:
                try:
                    data = posix.read(master, 65536)
                except OSError:  # EIO: every slave fd closed
                    data = b""
                if not data:
                    break
                posix.write(1, data)
            if 0 in ready:
                data = posix.read(0, 65536)
                if data:
                    posix.write(master, data)
                else:
                    watched.remove(0)
            if pidfd in ready:
                watched.remove(pidfd)  # drain what the pty still holds, then stop
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
