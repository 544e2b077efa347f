"""linux.netDevices: a host interface moved into the container, renamed, with its address.

The "host" here is a scratch network namespace (unshare --net) holding a veth pair (this
kernel has no dummy driver),
so the real host's interfaces are never touched.
"""
import shutil
import subprocess

import pytest

from integration import itlib


NEEDS_SPEC_1_2 = pytest.mark.pyrunc_only("runc 1.1 predates linux.netDevices (spec 1.2)")


@NEEDS_SPEC_1_2
def test_device_moves_renamed_with_its_address(runtime, bundle):
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        pytest.fail("iproute2 and util-linux are needed (scripts/setup.sh installs them)")
    b = bundle.make("b")
    b.config["process"]["args"] = ["sh", "-c", "ip -o addr show; ip -o link show"]
    b.config["linux"]["netDevices"] = {"pyrd0": {"name": "eth7"}}
    b.save()
    cid = itlib.new_id()
    runtime._track(cid)
    script = ("ip link add pyrd0 type veth peer name pyrd1 && ip addr add 198.51.100.7/24 dev pyrd0 && "
              f"{' '.join(runtime.command('run', '--bundle', b.path, cid))}; s=$?; "
              "echo HOST; ip -o link show; exit $s")
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    inside, host = proc.stdout.split("HOST\n")
    assert "eth7" in inside and "198.51.100.7/24" in inside
    link = [line for line in inside.splitlines() if ": eth7" in line][-1]
    assert "<" in link and "UP" in link.split("<")[1].split(">")[0].split(",")
    # gone from the scratch "host" namespace while the container had it
    assert "pyrd0" not in host


@NEEDS_SPEC_1_2
def test_missing_device_fails_cleanly(runtime, bundle):
    b = bundle.make("b")
    b.config["linux"]["netDevices"] = {"pyrnope0": {}}
    cid = itlib.new_id()
    before = itlib.pids()
    proc = runtime.run(b, cid)
    itlib.assert_failed_cleanly(runtime, proc, cid, before, [cid])
    if runtime.name == "pyrunc":
        assert "linux.netDevices.pyrnope0" in proc.stderr
