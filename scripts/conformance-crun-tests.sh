#!/bin/bash
# crun's own test suite (tests/test_*.py) against pyrunc, runc and crun, side by side.
# Not part of CI: the suite lives outside this repository and nothing is fetched here
# (docs/CONFORMANCE.md, "crun's tests", says how to check it out). Usage, as root:
#   scripts/conformance-crun-tests.sh SUITE_DIR [RUNTIMES] [FILE...]
# SUITE_DIR: a crun checkout (its tests/ is used). RUNTIMES: comma-separated, default
# pyrunc,runc,crun. FILE: test files such as test_exec.py (default: all).
# Prints "ok"/"not ok"/"skip" per portable test per runtime, then a summary; TAP logs and the
# list of tests left out as crun-specific go to $OUT (default /tmp/conformance-crun-tests).
# Env: JOBS (tests at once, 3), TIMEOUT (seconds a test, 120), PYRUNC (the binary),
# REPORT_ONLY=1 (summarise the TAP files in $OUT without running anything).
set -u
suite=$(realpath "${1:?usage: $0 SUITE_DIR [RUNTIMES] [FILE...]}")
runtimes=${2:-pyrunc,runc,crun}
shift; [ $# -gt 0 ] && shift
repo=$(realpath "$(dirname "$0")/..")
out=${OUT:-/tmp/conformance-crun-tests}
per_test_timeout=${TIMEOUT:-300}
tests="$suite/tests"
mkdir -p "$out"
wrappers=$(mktemp -d)
# cgroup_setup's nested-path test uses cgroupsPath /test/deeply/nested/path/PID, whose empty
# parents every runtime leaves after delete: removed at the end unless they were here before
before_test_cgroups=$(ls -d /sys/fs/cgroup/*/test 2>/dev/null)
trap 'rm -rf "$wrappers"' EXIT

# The suite runs a static init built from its own init.c (tests/run_all_tests.sh's INIT).
if [ ! -x "$wrappers/init" ]; then
    touch "$wrappers/config.h"   # newer init.c includes the build's config.h; it needs nothing from it
    gcc -static -O2 -I"$wrappers" -o "$wrappers/init" "$tests/init.c" || exit 1
fi
# crun's Makefile runs the tests from the top of its tree, where some (crun 1.8.1's) call
# ./tests/init: they run from $top, a directory of our own with tests/init in it, so the
# suite's checkout gets nothing written into it (their .testsuite-run-* go to $top too)
top="$wrappers/top"
mkdir -p "$top/tests" && ln -sf "$wrappers/init" "$top/tests/init"
# test_mounts.py reads mountinfo with util-linux's python binding (import libmount), which
# Debian 12 does not package; without it the file runs no test. This stand-in does the one
# thing it uses: Table(path).find_target(target), the topmost mount there, with vfs_options
# (the mount's own options) and fs_options (the superblock's).
cat >"$wrappers/libmount.py" <<'LIBMOUNT'
class Fs:
    def __init__(self, fields):
        sep = fields.index("-")
        unescape = lambda s: s.encode().decode("unicode_escape")
        self.target = unescape(fields[4])
        self.vfs_options = fields[5]
        self.fstype, self.source = fields[sep + 1], unescape(fields[sep + 2])
        self.fs_options = fields[sep + 3] if len(fields) > sep + 3 else None


class Table:
    def __init__(self, path):
        self.fs = [Fs(l.split()) for l in open(path) if " - " in l]

    def find_target(self, target):
        for fs in reversed(self.fs):
            if fs.target == target:
                return fs
        return None
LIBMOUNT

# The suite passes crun's global "--cgroup-manager cgroupfs|systemd", which runc and pyrunc spell
# as nothing (cgroupfs, their default) or --systemd-cgroup, and crun's "run/create --config
# config.json", which is their default (another --config is left for them to refuse).
translate='args=(); while [ $# -gt 0 ]; do
    case "$1" in
        --cgroup-manager) [ "$2" = systemd ] && args+=(--systemd-cgroup); shift 2; continue ;;
        --cgroup-manager=systemd) args+=(--systemd-cgroup) ;;
        --cgroup-manager=*) ;;
        --config) [ "$2" = config.json ] && { shift 2; continue; } ; args+=("$1") ;;
        *) args+=("$1") ;;
    esac; shift
done'
printf '#!/bin/bash\n%s\nexec %q "${args[@]}"\n' "$translate" "${PYRUNC:-$repo/bin/pyrunc}" >"$wrappers/pyrunc"
printf '#!/bin/bash\n%s\nexec %q "${args[@]}"\n' "$translate" "$(command -v runc)" >"$wrappers/runc"
# crun 1.8.1 refuses this hybrid-cgroup host: each call runs in a private mount namespace where
# cgroup2 is unmounted (as bench/run.py does).
cat >"$wrappers/crun" <<'EOF'
#!/bin/bash
exec unshare --mount --propagation private sh -c \
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"
EOF
chmod +x "$wrappers/pyrunc" "$wrappers/runc" "$wrappers/crun"

if [ $# -gt 0 ]; then files=("$@"); else
    mapfile -t files < <(cd "$tests" && ls test_*.py | sort)
fi

# The portable rule (docs/CONFORMANCE.md): a test is left out when it, or a helper of its own
# file it calls, uses a crun-only interface (see crun-portable.py for the markers).
python3 "$repo/scripts/crun-portable.py" "$tests" "${files[@]}" >"$out/portable.tsv" || exit 1

IFS=, read -ra rts <<<"$runtimes"
# Each portable test runs alone (RUN_TESTS=name), JOBS at once (default 3), so that one that
# hangs costs only itself; a name with a space cannot be selected so, and its file runs whole.
# REPORT_ONLY=1: no run, only the summary of the TAP files already in $OUT (say, pyrunc
# measured again beside an earlier runc and crun run).
if [ -z "${REPORT_ONLY:-}" ]; then
for rt in "${rts[@]}"; do rm -f "$out/$rt".*.tap; done
tty_files=${TTY_FILES-test_terminal.py test_tty.py}
export tests top wrappers out per_test_timeout tty_files
python3 - "$out/portable.tsv" "${rts[@]}" <<'JOBS' |
import sys
tests = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
for rt in sys.argv[2:]:
    whole = sorted({f for f, name, v, _ in tests if v == "portable" and " " in name})
    for f in whole:
        print(rt, f)
    for f, name, v, _ in tests:
        if v == "portable" and f not in whole:
            print(rt, f, name)
JOBS
    xargs -P "${JOBS:-3}" -L 1 sh -c 'cd "$top" || exit; log="$out/$0.$1.${2:-all}"
        run="python3 -u $tests/$1"
        # the terminal tests skip unless stdout is a terminal: a pseudo-terminal of their own
        # (script(1)); its output has CRLF line ends and stderr mixed in (TAP ignores it)
        case " $tty_files " in *" $1 "*) run="script -qefc \"python3 -u $tests/$1\" /dev/null" ;; esac
        env ${2:+RUN_TESTS=$2} PYTHONPATH="$wrappers" OCI_RUNTIME="$wrappers/$0" \
            INIT="$wrappers/init" timeout -k 10 "$per_test_timeout" sh -c "$run" \
            >"$log.out" 2>"$log.err" </dev/null
        tr -d "\r" <"$log.out" >"$log.tap" && rm -f "$log.out"'

# Some of crun's tests leave the host changed when the runtime does not behave as crun:
# delete/test_simple_delete freezes the container's process in a v1 freezer cgroup "frozen"
# it removes only on success; cgroup_setup's v1 exec tests leave test-v1-exec-cgroup-*.
# Put the host back: thaw (the pending SIGKILL then ends the process), remove empty cgroups.
# Processes this run started and left: the suite's own probes (init check-feature ... can
# hang), and a runtime a timeout orphaned (runc run waiting for a seccomp agent) with its init.
for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in "$wrappers/init") kill -9 "${p#/proc/}" 2>/dev/null ;; esac
    if [ "$exe" = "$(command -v runc)" ] && grep -qz -- "$top/.testsuite-run-" "$p/cmdline" 2>/dev/null; then
        kill -9 "${p#/proc/}" 2>/dev/null
    fi
done
rm -rf "$top"/.testsuite-run-*
sleep 1
for c in /sys/fs/cgroup/pids/test-tmp*; do   # their inits, zombies whose threads still run
    [ -f "$c/cgroup.procs" ] && xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null
done
sleep 1
if [ -d /sys/fs/cgroup/freezer/frozen ]; then
    echo THAWED >/sys/fs/cgroup/freezer/frozen/freezer.state; sleep 1
    rmdir /sys/fs/cgroup/freezer/frozen || echo "left: /sys/fs/cgroup/freezer/frozen" >&2
fi
for d in /sys/fs/cgroup/*/test-tmp* /sys/fs/cgroup/*/test-v1-exec-cgroup-* \
         /sys/fs/cgroup/memory/*/*/test-tmp* /sys/fs/cgroup/memory/*/*/test-v1-exec-cgroup-*; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && echo "left (busy): $d" >&2
done
for d in /sys/fs/cgroup/*/test; do
    [ -d "$d" ] || continue
    case " $before_test_cgroups " in *" $d "*) continue ;; esac
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && echo "left (busy): $d" >&2
done
fi

python3 - "$out" "$runtimes" "${files[@]}" <<'EOF'
import glob, re, sys
out, rts, files = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
portable = {}
for line in open(f"{out}/portable.tsv"):
    f, name, verdict = line.rstrip("\n").split("\t")[:3]
    portable[(f, name)] = verdict == "portable"
res = {}
for rt in rts:
    for tap in glob.glob(f"{out}/{rt}.test_*.tap"):
        f = tap[len(f"{out}/{rt}."):].split(".py.")[0] + ".py"
        for line in open(tap, errors="replace"):
            m = re.match(r"(not ok|ok) \d+ - (.*?)( #.*)?$", line.rstrip("\n"))
            if m:
                r = "skip" if m[1] == "ok" and "#SKIP" in (m[3] or "") else m[1]
                res[(rt, f, m[2])] = r
count = {rt: {"ok": 0, "not ok": 0, "skip": 0, "missing": 0} for rt in rts}
print("%-50s" % "test" + "".join(" %-8s" % rt for rt in rts))
for (f, name), p in sorted(portable.items()):
    if not p:
        continue
    row = []
    for rt in rts:
        r = res.get((rt, f, name), "missing")
        count[rt][r] += 1
        row.append(r)
    print("%-50s" % f"{f[5:-3]}/{name}" + "".join(" %-8s" % r for r in row))
n = sum(portable.values())
print(f"portable tests: {n} (left out as crun-specific: {len(portable) - n})")
for rt in rts:
    c = count[rt]
    print(f"{rt}: passed {c['ok']} failed {c['not ok'] + c['missing']} (of which no result, a "
          f"timeout or crash: {c['missing']}) skipped {c['skip']}")
if "pyrunc" in rts:
    peers = [rt for rt in rts if rt != "pyrunc"]
    worse = [f"{f[5:-3]}/{name}" for (f, name), p in sorted(portable.items()) if p
             and res.get(("pyrunc", f, name), "missing") in ("not ok", "missing")
             and any(res.get((rt, f, name)) == "ok" for rt in peers)]
    print(f"pyrunc fails, a peer passes: {len(worse)}")
    for w in worse:
        print("  " + w)
EOF
