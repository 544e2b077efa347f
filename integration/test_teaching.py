"""docs/TEACHING.md's lab (section 7), run as written, so that the doc cannot rot: every
`$ ` line of it in order, each `# TEXT` line under a command found in that command's
output (runs of spaces compared as one), `# exit N` its exit status (else 0). The lab's
/tmp/lab is a scratch directory here, its container ids are made unique, `python` is this
interpreter and `bin/pyrunc` the repository's (or PYRUNC_IT_PYRUNC's); the containers it
starts are deleted whatever happens."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

from integration import itlib

TEACHING = os.path.join(itlib.REPO, "docs", "TEACHING.md")


class Command:
    def __init__(self, text):
        self.text, self.expect, self.exit = text, [], 0


def lab_commands(text=None):
    """The lab's commands, each with the output it must hold and its exit status."""
    if text is None:
        with open(TEACHING) as f:
            text = f.read()
    start = text.index("\n## 7. A lab")
    lab = text[start:text.index("\n## ", start + 1)]
    commands, last = [], None
    for line in lab.splitlines():
        if line.startswith("    $ "):
            last = Command(line[6:])
            commands.append(last)
        elif line.startswith("    # ") and last is not None:
            m = re.fullmatch(r"exit (\d+)", line[6:])
            if m:
                last.exit = int(m.group(1))
            else:
                last.expect.append(line[6:])
        elif not line.startswith("    "):
            last = None     # a `#` line belongs to the block of its command
    return commands


def _squeeze(text):
    return re.sub(r"[ \t]+", " ", text)


def test_the_lab_parses_into_its_steps():
    commands = lab_commands()
    words = [c.text.split()[1] if c.text.startswith("bin/pyrunc") else c.text.split()[0]
             for c in commands]
    # learn, check, verify, audit: each of them, in that order first
    firsts = [next(i for i, w in enumerate(words) if w == name)
              for name in ("seccomp", "check", "verify", "audit")]
    assert firsts == sorted(firsts), words
    assert all(c.expect or c.exit or c.text.split()[0] in ("python", "runc", "rm", "grep")
               or " create " in c.text or " start " in c.text or " delete " in c.text
               for c in commands), [c.text for c in commands if not c.expect]
    # a `#` line not under a command would go unchecked: the parser keeps none
    assert lab_commands("\n## 7. A lab\n\n    # lost\n\n    $ true\n    # kept\n## End\n")[0] \
        .expect == ["kept"]


def test_the_lab_runs_as_written(workdir):
    scratch = os.path.join(workdir, "lab")
    tag = uuid.uuid4().hex[:8]
    pyrunc = itlib.runtime_command("pyrunc")[0]
    runc = shutil.which("runc")
    made = set()

    def concrete(text):
        text = text.replace("/tmp/lab", scratch)
        text = re.sub(r"\blab-(\w+)", lambda m: made.add(f"lab{tag}-{m.group(1)}") or
                      f"lab{tag}-{m.group(1)}", text)
        text = re.sub(r"^bin/pyrunc\b", pyrunc, text)
        return re.sub(r"^python\b", sys.executable, text)

    try:
        for command in lab_commands():
            line = concrete(command.text)
            # files, not pipes: a container started with `run -d` or `create` keeps its
            # stdio, and a pipe would never reach EOF
            with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
                status = subprocess.run(["bash", "-c", line], cwd=itlib.REPO, stdout=out_f,
                                        stderr=err_f, stdin=subprocess.DEVNULL,
                                        timeout=180).returncode
                out_f.seek(0)
                err_f.seek(0)
                stdout, stderr = out_f.read(), err_f.read()
            out = _squeeze(stdout + stderr)
            assert status == command.exit, (command.text, status, stdout[-3000:],
                                            stderr[-3000:])
            for want in command.expect:
                assert _squeeze(want) in out, (command.text, want, out[-4000:])
        assert not os.path.exists(scratch)      # the lab's clean-up step removed it all
    finally:
        for cid in made:
            subprocess.run([runc, "--root", os.path.join(scratch, "runc"), "delete", "-f",
                            cid], capture_output=True)
            subprocess.run([pyrunc, "--root", os.path.join(scratch, "py"), "delete", "-f",
                            cid], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)  # the runtimes' roots, made again
    assert not [p for p in itlib.pids() if _cmdline_has(p, tag)]


def _cmdline_has(pid, tag):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return tag.encode() in f.read()
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _runc_is_there():
    if shutil.which("runc") is None:
        pytest.fail("the lab runs runc: apt-get install runc", pytrace=False)
