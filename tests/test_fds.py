"""syscalls.close_from: what the children close before the container can see them."""
import os

from pyrunc import syscalls as sc


def test_close_from_closes_all_but_the_kept_ones_and_nothing_below():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child: pytest's own fds stay open
        try:
            null = os.open("/dev/null", os.O_RDONLY)
            for fd in (500, 501, 502, 504, 505, 900):
                os.dup2(null, fd)
            sc.close_from(500, keep=(501, 504, None, 3))
            left = sorted(int(n) for n in os.listdir("/proc/self/fd") if int(n) >= 500)
            os.write(w, " ".join(map(str, left)).encode())  # w, below 500: still open
        finally:
            os._exit(0)
    os.close(w)
    seen = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert seen == "501 504"
