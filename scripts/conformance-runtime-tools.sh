#!/bin/bash
# Run the OCI runtime-tools validation programs against pyrunc, runc and crun and print, per
# program, clean or failing for each runtime, then a summary line. Not part of CI; needs root.
#
#   bash scripts/conformance-runtime-tools.sh SUITE_DIR [RUNTIMES] [PROGRAM...]
#
# SUITE_DIR is a runtime-tools checkout where `make runtimetest validation-executables` was
# run (see docs/CONFORMANCE.md); nothing is fetched. RUNTIMES defaults to pyrunc,runc,crun
# (pyrunc is this worktree's bin/pyrunc unless PYRUNC is set). PROGRAMs are names such as
# `hooks_stdin`; default: every validation/*/*.t. Each program's TAP output is kept in
# OUT_DIR (default /tmp/conformance-runtime-tools). A program is clean when it exits 0,
# prints a plan and no "not ok" line (a "not ok ... # TODO" is not counted), as `prove`
# judges it; otherwise FAIL(n) gives the number of "not ok" lines, FAIL(rc=N) the exit
# status of a program that stopped early, FAIL(noplan) a program that exited 0 without TAP.
# Each program's bundles go to a TMPDIR of its own; what a run leaves on the host is undone
# after it: mounts there (in the host's mount namespace: the result gets "+mounts" and the
# TAP log names them) and the cgroups the programs use (cgrouptest, testdir/...).
#
# crun 1.8 refuses this hybrid cgroup host and any ociVersion above 1.0.2: each crun program
# runs in a private mount namespace where cgroup2 (/sys/fs/cgroup/unified) is unmounted, and
# crun is called through a wrapper that rewrites the bundle's ociVersion to 1.0.2 at create.
set -u
suite=${1:?usage: $0 SUITE_DIR [RUNTIMES] [PROGRAM...]}
runtimes=${2:-pyrunc,runc,crun}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT_DIR:-/tmp/conformance-runtime-tools}
timeout_s=${PROGRAM_TIMEOUT:-300}
suite=$(cd "$suite" && pwd) || exit 2
[ -x "$suite/runtimetest" ] || { echo "no $suite/runtimetest: build the suite first" >&2; exit 2; }
mkdir -p "$out"
# the cgroup programs all use the cgroup /cgrouptest (and testdir/cgrouptest/container): two
# runs at once write each other's limits, so runs of this script take turns
exec 9> /tmp/conformance-runtime-tools.lock
flock 9

if [ $# -gt 0 ]; then
    programs=("$@")
else
    programs=()
    for t in "$suite"/validation/*/*.t; do programs+=("$(basename "$t" .t)"); done
fi

crun_wrapper=$out/crun-oci-1.0.2
cat > "$crun_wrapper" <<'EOF'
#!/bin/sh
# crun 1.8.1 refuses ociVersion > 1.0.2: rewrite it in the bundle before create/run.
case "$1" in
create|run)
    bundle=.
    prev=
    for a in "$@"; do
        [ "$prev" = --bundle ] || [ "$prev" = -b ] && bundle=$a
        case "$a" in --bundle=*) bundle=${a#--bundle=} ;; esac
        prev=$a
    done
    [ -f "$bundle/config.json" ] &&
        sed -i 's/"ociVersion": *"[^"]*"/"ociVersion": "1.0.2"/' "$bundle/config.json"
    ;;
esac
exec crun "$@"
EOF
chmod 755 "$crun_wrapper"

runtime_cmd() {
    case "$1" in
    pyrunc) echo "${PYRUNC:-$here/bin/pyrunc}" ;;
    crun) echo "$crun_wrapper" ;;
    *) command -v "$1" ;;
    esac
}

# What a program and its runtime left on the host: mounts under the program's TMPDIR (in
# this mount namespace) and the cgroups the programs name; each is said in LOG and undone.
tidy() {
    local tmp=$1 log=$2 m h d left=0
    while read -r m; do
        echo "# left mounted on the host: $m" >> "$log"
        left=1
    done < <(awk -v t="$tmp/" 'index($2, t) == 1 && split($2, a, "/") <= split(t, b, "/") + 1 {print $2}' /proc/self/mounts)
    [ $left = 1 ] && awk -v t="$tmp/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m"; done
    for h in /sys/fs/cgroup/*/; do
        for d in testdir/cgrouptest/container testdir/cgrouptest testdir cgrouptest; do
            [ -d "$h$d" ] || continue
            for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$h$d" 2>/dev/null && break; sleep 0.2; done
            [ -d "$h$d" ] && echo "# cgroup left busy: $h$d" >> "$log"
        done
    done
    rm -rf --one-file-system "$tmp"
    return $left
}

# result PROGRAM RUNTIME -> "clean" or "FAIL(n)" where n is the number of "not ok" lines;
# a trailing "+mounts" says the runtime left mounts in the host's mount namespace
run_one() {
    local prog=$1 rt=$2 cmd log rc tmp
    cmd=$(runtime_cmd "$rt")
    log=$out/$rt.$prog.tap
    # the programs' bundles (os.MkdirTemp) go to a directory of their own
    tmp=$(mktemp -d "$out/tmp.XXXXXX")
    chmod 755 "$out" "$tmp"  # as /tmp is to them: a container in a user namespace reaches its bundle
    if [ "$rt" = crun ]; then
        (cd "$suite" && TMPDIR=$tmp RUNTIME=$cmd timeout "$timeout_s" \
            unshare --mount --propagation private \
            sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0"' \
            "./validation/$prog/$prog.t") > "$log" 2>&1
    else
        (cd "$suite" && TMPDIR=$tmp RUNTIME=$cmd timeout "$timeout_s" \
            "./validation/$prog/$prog.t") > "$log" 2>&1
    fi
    rc=$?
    local mark=
    tidy "$tmp" "$log" || mark=+mounts
    local notok
    notok=$(grep -E '^not ok' "$log" | grep -vc '# TODO')
    if [ "$rc" -eq 0 ] && [ "$notok" -eq 0 ] && grep -qE '^1\.\.[0-9]+|^[0-9]+\.\.[0-9]+$' "$log"; then
        echo "clean$mark"
    elif [ "$notok" -gt 0 ]; then
        echo "FAIL($notok)$mark"
    elif [ "$rc" -eq 0 ]; then
        echo "FAIL(noplan)$mark"  # as prove says: exit 0 but no TAP plan
    else
        echo "FAIL(rc=$rc)$mark"
    fi
}

IFS=, read -r -a rts <<< "$runtimes"
declare -A clean
printf '%-40s' program; for rt in "${rts[@]}"; do printf ' %-12s' "$rt"; clean[$rt]=0; done; echo
for prog in "${programs[@]}"; do
    printf '%-40s' "$prog"
    for rt in "${rts[@]}"; do
        r=$(run_one "$prog" "$rt")
        case $r in clean*) clean[$rt]=$((clean[$rt] + 1)) ;; esac
        printf ' %-12s' "$r"
    done
    echo
done
printf 'summary (clean of %d):' "${#programs[@]}"
for rt in "${rts[@]}"; do printf ' %s %d' "$rt" "${clean[$rt]}"; done
echo "; TAP logs in $out"
