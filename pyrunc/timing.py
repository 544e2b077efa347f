"""Per-phase timing for --debug: where the milliseconds of a start go.

Off (report is None) a lap costs one global lookup. Each process keeps its own clock: in a
child the first lap measures from the fork.
"""
import time

report = None  # callable(str), set by the CLI with --debug
_last = time.perf_counter()


def lap(name):
    global _last
    if report is None:
        return
    now = time.perf_counter()
    report(f"time {name}: {(now - _last) * 1e3:.2f} ms")
    _last = now
