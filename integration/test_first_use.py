"""The README's quick start, exactly as written, as a new user meets it.

The lines between `<!-- first use` and `<!-- end first use -->` in README.md: the first
indented block is the commands, run one by one by bash in an empty directory with `pyrunc`
on PATH being the command under test (bin/pyrunc, or the installed one PYRUNC_IT_PYRUNC
names); the second is what the last one prints. PYRUNC_ROOT keeps the state in the test's
directory. runc, the oracle, runs the same bundle (`run -b DIR ID`) and prints the same.
"""
import os
import subprocess

import pytest

from integration import itlib

README = os.path.join(itlib.REPO, "README.md")


def quick_start():
    """(commands, expected output lines) from the README."""
    with open(README) as f:
        text = f.read()
    section = text[text.index("<!-- first use"):text.index("<!-- end first use -->")]
    blocks, current = [], None
    for line in section.split("-->", 1)[1].splitlines():
        if line.startswith("    "):
            if current is None:
                current = []
                blocks.append(current)
            current.append(line[4:])
        elif line.strip():
            current = None  # prose ends a block, a blank line does not
    assert len(blocks) == 2, f"README's first use: {len(blocks)} indented blocks, not 2"
    commands, output = blocks
    return [c for c in commands if c.strip()], [o for o in output if o.strip()]


@pytest.fixture
def pyrunc_on_path(workdir):
    argv = itlib.runtime_command("pyrunc")
    if argv is None:
        pytest.fail("no pyrunc to test (scripts/setup.sh, or PYRUNC_IT_PYRUNC)",
                    pytrace=False)
    bin_dir = os.path.join(workdir, "bin")
    os.mkdir(bin_dir)
    os.symlink(argv[0], os.path.join(bin_dir, "pyrunc"))
    root = os.path.join(workdir, "state")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYRUNC_ROOT=root)
    return env, root


def test_readme_quick_start_as_written(workdir, pyrunc_on_path):
    env, root = pyrunc_on_path
    commands, expected = quick_start()
    assert any(c.startswith("pyrunc run bundle/") for c in commands), commands
    home = os.path.join(workdir, "first-use")
    os.mkdir(home)
    before = itlib.pids()
    for command in commands:
        proc = subprocess.run(["bash", "-c", command], cwd=home, env=env, text=True,
                              capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=itlib.TIMEOUT)
        assert proc.returncode == 0, f"{command!r} exited {proc.returncode}: {proc.stderr}"
    assert proc.stdout.splitlines() == expected
    assert proc.stderr == ""
    # run under a generated id, removed afterwards: no state, no process left
    assert os.listdir(root) == []
    assert not itlib.leftover_processes(before, [commands[-1], "hello from"])

    # the oracle runs the same bundle and prints the same
    runc_root = os.path.join(workdir, "runc-state")
    cid = itlib.new_id()
    try:
        proc = subprocess.run(["runc", "--root", runc_root, "run", "-b",
                               os.path.join(home, "bundle"), cid], text=True,
                              capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=itlib.TIMEOUT)
    finally:
        subprocess.run(["runc", "--root", runc_root, "delete", "--force", cid],
                       capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


def test_run_bundle_dir_keep_prints_the_generated_id(workdir, pyrunc_on_path, bundle):
    env, root = pyrunc_on_path
    b = bundle.make("mybundle", "hold=0")
    proc = subprocess.run(["pyrunc", "run", "--keep", b.path + "/"], env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=itlib.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("pyrunc: run: container mybundle-"), proc.stderr
    cid = proc.stderr.split()[-1]
    try:
        state = subprocess.run(["pyrunc", "state", cid], env=env, text=True,
                               capture_output=True, timeout=itlib.TIMEOUT)
        assert state.returncode == 0, state.stderr
        assert '"status": "stopped"' in state.stdout.replace('":"', '": "')
        assert os.listdir(root) == [cid]
    finally:
        subprocess.run(["pyrunc", "delete", "--force", cid], env=env, capture_output=True,
                       timeout=itlib.TIMEOUT)
    assert os.listdir(root) == []
