"""The fuzzer (integration/fuzzlib.py): thousands of mutated real configs through `create` and
`delete --force`. Each must end in an exit status and, on failure, one line: no traceback, no
hang, nothing left (process, mount, cgroup dir, state dir), and a non-zero exit for every
config that is certainly invalid.

PYRUNC_FUZZ_COUNT (default 5000) and PYRUNC_FUZZ_SEED (default 1) choose the configs: config
i is a pure function of (seed, i), so a failure names the one config to replay
(`fuzzlib.config_for`). runc, the oracle, runs a sample (the first 300).
"""
import collections
import json
import os

import pytest

from integration import fuzzlib, itlib

COUNT = int(os.environ.get("PYRUNC_FUZZ_COUNT", "5000"))
SEED = int(os.environ.get("PYRUNC_FUZZ_SEED", "1"))
SAMPLE = 300
WORKERS = 4


def _prefix():
    return f"fz{os.getpid()}"


def _run(name, workdir, count):
    argv = itlib.runtime_command(name)
    if argv is None:
        pytest.fail(f"runtime {name} not found", pytrace=False)
    prefix = _prefix()
    try:
        results = fuzzlib.run_batch(argv, workdir, count, seed=SEED, workers=WORKERS,
                                    prefix=prefix)
        left = fuzzlib.leaks(workdir, prefix)
    except BaseException:
        fuzzlib.remove_leaks(workdir, prefix)
        raise
    if left:
        fuzzlib.remove_leaks(workdir, prefix)  # leave the host as found, then fail
    return results, left


def _summary(results):
    return collections.Counter("created" if r["rc"] == 0 else "refused" for r in results)


def test_fuzzed_configs_fail_cleanly(runtime, workdir):
    count = COUNT if runtime.name == "pyrunc" else min(COUNT, SAMPLE)
    results, left = _run(runtime.name, workdir, count)
    assert len(results) == count
    tracebacks = [r for r in results
                  if fuzzlib.is_traceback(r["err"]) or fuzzlib.is_traceback(r["delete_err"])]
    hangs = [r for r in results if r["rc"] is None or r["delete_rc"] is None]
    # pyrunc refuses nesting over its parser's limit; Go's decoder allows 10,000 levels
    accepted = [r for r in results if r["invalid"] and r["rc"] == 0
                and not (runtime.name != "pyrunc" and r["what"].endswith("text:nesting"))]
    states = [r for r in results if r["state_left"]]
    print(f"{runtime.name}: {count} configs: {dict(_summary(results))}")
    assert not tracebacks, [(r["i"], r["what"], r["err"][-300:]) for r in tracebacks[:5]]
    assert not hangs, [(r["i"], r["what"]) for r in hangs[:5]]
    assert not left, left[:10]
    assert not states, [(r["i"], r["what"]) for r in states[:5]]
    assert not accepted, [(r["i"], r["what"]) for r in accepted[:5]]
    if runtime.name == "pyrunc":
        # a refusal is one line (warnings aside), and the forced delete always succeeds
        for r in results:
            lines = [ln for ln in r["err"].splitlines() if not ln.startswith("pyrunc: warning")]
            assert r["rc"] == 0 or len(lines) == 1, (r["i"], r["what"], r["err"][-500:])
            assert r["delete_rc"] == 0, (r["i"], r["what"], r["delete_err"])
        # the mutations reach past the loader: many configs run, many are refused
        summary = _summary(results)
        assert summary["created"] > count // 10 and summary["refused"] > count // 4, summary


@pytest.mark.skipif("runc" not in os.environ.get("PYRUNC_IT_RUNTIMES", ""),
                    reason="runc is not among PYRUNC_IT_RUNTIMES")
def test_pyrunc_refuses_what_runc_cannot_decode(workdir):
    """On the sample: a config runc refuses as undecodable (a JSON type fault) pyrunc refuses
    too. The rest of the comparison is printed: where the two differ, and why."""
    ours, left_ours = _run("pyrunc", os.path.join(_mkdir(workdir, "pyrunc")), SAMPLE)
    theirs, left_theirs = _run("runc", os.path.join(_mkdir(workdir, "runc")), SAMPLE)
    assert not left_ours and not left_theirs, (left_ours, left_theirs)
    table = collections.Counter()
    missed = []
    for a, b in zip(ours, theirs):
        table[("pyrunc " + ("creates" if a["rc"] == 0 else "refuses"),
               "runc " + ("creates" if b["rc"] == 0 else "refuses"))] += 1
        if b["rc"] != 0 and "cannot unmarshal" in b["err"] and a["rc"] == 0:
            missed.append((a["i"], a["what"], b["err"][-200:]))
        if (a["rc"] == 0) != (b["rc"] == 0):
            print(f"differ {a['i']}: {a['what']}\n  pyrunc {a['rc']}: {_last(a['err'])}\n"
                  f"  runc {b['rc']}: {_last(b['err'])}")
    print(dict(table))
    assert not missed, missed[:5]


def _last(text):
    lines = text.strip().splitlines()
    return lines[-1][-200:] if lines else ""


def _mkdir(base, name):
    path = os.path.join(base, name)
    os.mkdir(path)
    os.chmod(path, 0o755)
    return path


def test_the_leak_check_sees_a_container_left_behind(runtime, workdir):
    """The checks above can fail: a created container, not deleted, is a process, a cgroup
    dir and a state dir to leaks(); after delete --force there is nothing."""
    prefix = _prefix()
    cid = f"{prefix}-left"
    bundle = fuzzlib.make_worker_bundle(os.path.join(workdir, "bundle-left"))
    seeds = dict(fuzzlib.load_seeds())
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(fuzzlib.normalise(seeds["runc-spec"], bundle, cid), f)
    root = os.path.join(workdir, "state-left")
    runtime.root = root  # teardown's delete --force uses this root
    argv = [*runtime.argv, "--root", root]
    rc, err, _ = fuzzlib._run([*argv, "create", "--bundle", bundle, cid],
                              os.path.join(workdir, "stderr-left"))
    runtime.ids.append(cid)
    assert rc == 0, err
    kinds = {entry.split()[0] for entry in fuzzlib.leaks(workdir, prefix)}
    rc, err, _ = fuzzlib._run([*argv, "delete", "--force", cid],
                              os.path.join(workdir, "stderr-left"))
    assert rc == 0, err
    assert kinds >= {"process", "cgroup", "state"}, kinds
    assert fuzzlib.leaks(workdir, prefix) == []


# the article's userns snippet runs once the default devpts gid=5 goes, as the article says
# (integration/test_article.py); runc refuses it anyway (no container uid 0)
@pytest.mark.parametrize("seed", [name for name, _ in fuzzlib.load_seeds()
                                  if name != "article-userns"])
def test_every_seed_creates_unmutated(runtime, workdir, seed):
    """The seeds as their tools wrote them (normalised to a bundle) are valid configs: each
    one creates, with pyrunc as with runc (docker's `blockIO.weight: 0` included)."""
    prefix = _prefix()
    cid = f"{prefix}-seed"
    bundle = fuzzlib.make_worker_bundle(os.path.join(workdir, "bundle-seed"))
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(fuzzlib.normalise(dict(fuzzlib.load_seeds())[seed], bundle, cid), f)
    root = os.path.join(workdir, "state-seed")
    runtime.root = root
    runtime.ids.append(cid)
    err = os.path.join(workdir, "stderr-seed")
    rc, text, _ = fuzzlib._run([*runtime.argv, "--root", root, "create", "--bundle", bundle,
                                cid], err)
    assert rc == 0, text
    rc, text, _ = fuzzlib._run([*runtime.argv, "--root", root, "delete", "--force", cid], err)
    assert rc == 0, text
    assert fuzzlib.leaks(workdir, prefix) == []
