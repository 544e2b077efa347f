"""A claim of a config and its verdict: the vocabulary of verify's and audit's reports."""
import errno
from typing import NamedTuple

HELD, BROKEN, NOT_CHECKED = "held", "broken", "not checked"
# a claim no runtime can keep: the kernel refuses it whatever the runtime does; reported
# apart, with the reason and `check`'s finding, and it does not fail verify
UNKEEPABLE = "unkeepable"
VERDICTS = (HELD, BROKEN, UNKEEPABLE, NOT_CHECKED)


class Claim(NamedTuple):
    verdict: str    # held, broken, unkeepable, not checked
    path: str       # JSON path in config.json, with a hint: "mounts[1] (/dev)"
    claim: str      # what the config says
    seen: str       # the evidence
    why: str = ""   # for an unkeepable claim: why no runtime can keep it, and check's finding


def _linux(raw):
    return raw.get("linux") or {}


def _errno_text(n):
    return f"{errno.errorcode.get(n, n)}" if n else "no answer"
