"""Fixtures for the integration tests: they run a real runtime as root and look at the kernel.

PYRUNC_IT_RUNTIMES picks the runtimes (comma list; default "pyrunc"); "runc" validates the
tests against the oracle. PYRUNC_IT_PYRUNC is the pyrunc command to test (default the
repository's bin/pyrunc; scripts/test-installed.sh gives a pip-installed one). PYRUNC_IT_KEEP=1 keeps each test's directory for a post-mortem.

- the suite skips when not root, with the reason; under CI (CI=true) that is a failure. A
  missing tool (static busybox, gcc to build the probe, the runtime itself) always fails:
  a skip would hide a broken setup.
- `crun_oracle` tests: when runc is among the runtimes and crun is installed, crun joins
  them (itlib.runtime_command says how crun runs on this hybrid-cgroup host).
- `runtime`: a driver (itlib.Runtime) for each runtime named, with --root and --log inside
  the test's own directory; at teardown every container it made is deleted with --force,
  and the test errors if a container process or a cgroup named after a container outlives
  that (both are removed, to leave the host as found).
- `workdir`: the test's own directory, 0755 so a container user (uid 1000, or a user
  namespace's mapped uid) can reach its bundle; at teardown the test errors if any mount
  below it is left in the host's mount table (and the mount is detached, to leave the host
  as found).
- `bundle`: a factory of busybox bundles with the probe at /probe (make("name", *words)).
- `probe`: probe(bundle, *words) runs the bundle's /probe with WORDS through `run`, checks
  the exit status (0) and returns the parsed report (itlib.Report).
- every test: the host's hostname and domainname must be the same afterwards (a runtime
  that forgot the UTS namespace would rename the host; the names are put back).
"""
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from integration import itlib

IN_CI = os.environ.get("CI") == "true"


def _missing(reason):
    pytest.fail(f"integration tests cannot run: {reason}", pytrace=False)


def runtimes():
    names = os.environ.get("PYRUNC_IT_RUNTIMES", "pyrunc")
    return [n.strip() for n in names.split(",") if n.strip()]


def pytest_configure(config):
    config.addinivalue_line("markers", "pyrunc_only(why): the test is about something only "
                            "pyrunc does (a spec 1.2+ field runc 1.1 lacks, a pyrunc "
                            "switch); it is not generated for other runtimes")
    config.addinivalue_line("markers", "crun_oracle: crun (when installed) joins runc as "
                            "a second oracle of this test")


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames:
        names = runtimes()
        if metafunc.definition.get_closest_marker("pyrunc_only"):
            names = [n for n in names if n == "pyrunc"]
        elif (metafunc.definition.get_closest_marker("crun_oracle") and "crun" not in names
              and "runc" in names and shutil.which("crun")):
            names = [*names, "crun"]
        metafunc.parametrize("runtime", names, indirect=True)


@pytest.fixture(autouse=True, scope="session")
def _requirements():
    if os.geteuid() != 0:
        reason = "the integration tests need root (they create namespaces and mounts)"
        if IN_CI:
            pytest.fail(f"CI runs as root; here: {reason}", pytrace=False)
        pytest.skip(reason)
    from pyrunc.bundle import static_busybox
    if not static_busybox():
        _missing("/bin/busybox is not a static busybox (apt-get install busybox-static)")
    if shutil.which("gcc") is None:
        _missing("gcc is needed to build the probe (apt-get install gcc libc6-dev)")


@pytest.fixture(autouse=True)
def _host_names_unchanged():
    """A runtime that forgot the UTS namespace would rename the host: put the names back
    and fail the test."""
    with open("/proc/sys/kernel/domainname") as f:
        domain = f.read().strip()
    host = socket.gethostname()
    yield
    with open("/proc/sys/kernel/domainname") as f:
        domain_now = f.read().strip()
    host_now = socket.gethostname()
    if (host_now, domain_now) != (host, domain):
        socket.sethostname(host)
        with open("/proc/sys/kernel/domainname", "w") as f:
            f.write(domain)
        pytest.fail(f"the host's names changed: {host!r}/{domain!r} -> "
                    f"{host_now!r}/{domain_now!r} (restored)", pytrace=False)


@pytest.fixture(scope="session")
def probe_binary():
    try:
        return itlib.build_probe()
    except RuntimeError as e:
        _missing(str(e))


@pytest.fixture(scope="session")
def _base_dir():
    # not pytest's tmp_path: its parents are 0700, which a container user cannot traverse
    # while the runtime prepares the rootfs inside a user namespace
    base = tempfile.mkdtemp(prefix="pyrunc-it-", dir="/tmp")
    os.chmod(base, 0o755)
    yield base
    if not os.environ.get("PYRUNC_IT_KEEP") and not itlib.host_mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def workdir(_base_dir, request):
    path = tempfile.mkdtemp(prefix=request.node.name[:40].replace("/", "_") + "-",
                            dir=_base_dir)
    os.chmod(path, 0o755)
    yield path
    left = itlib.host_mounts_under(path)
    for point in reversed(left):
        # a runtime leaked a mount into the host: detach it so the host is left as found
        subprocess.run(["umount", "-l", point], capture_output=True)
    if left:
        pytest.fail(f"mounts left in the host's mount table: {left}", pytrace=False)
    if not os.environ.get("PYRUNC_IT_KEEP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runtime(request, workdir):
    name = request.param
    argv = itlib.runtime_command(name)
    if argv is None:
        _missing(f"runtime {name} (PYRUNC_IT_RUNTIMES) not found: for pyrunc, "
                 f"$PYRUNC_IT_PYRUNC, or bin/pyrunc or .venv/bin/pyrunc in the repository "
                 f"(pip install -e .)")
    driver = itlib.Runtime(name, argv, workdir)
    yield driver
    problems = driver.cleanup()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


class BundleFactory:
    def __init__(self, workdir, probe):
        self.workdir = workdir
        self.probe = probe

    def make(self, name="bundle", *words):
        return itlib.new_bundle(os.path.join(self.workdir, name), self.probe, *words)


@pytest.fixture
def bundle(workdir, probe_binary):
    return BundleFactory(workdir, probe_binary)


@pytest.fixture
def probe(runtime):
    """probe(bundle, *words) -> Report: `run` the probe with WORDS, expecting exit 0."""
    def run_probe(b, *words, expect_status=0):
        b.probe_args(*words)
        cid = itlib.new_id()
        proc = runtime.run(b, cid)
        assert proc.returncode == expect_status, (
            f"{runtime.name} run exited {proc.returncode}; stderr: {proc.stderr}")
        return itlib.parse_report(proc.stdout)
    return run_probe
