#!/bin/sh
# run_parallel.sh - one harness on many cores: the long local run of docs/RELIABILITY.md for the
# slow harnesses (quantize, rounder), which cannot reach 10 M executions on one core in a day.
#
#   tests/fuzz/run_parallel.sh <dir-with-binaries> <harness> <workers> <seconds> <corpus-dir...>
#
# <dir-with-binaries> holds fuzz_<harness> (a pack made by tests/fuzz/pack.sh) or is a build
# directory (then tests/fuzz/fuzz_<harness> is used). The first corpus directory receives the new
# inputs, the others are only read (pass the checked-in seeds last). Logs and crash artifacts go
# to $FUZZ_LOG_DIR/<harness>/ (default <dir-with-binaries>/parallel/<harness>/; emptied first):
# fuzz-<job>.log per worker, parent.log, artifacts/, summary.txt.
#
# Uses libFuzzer's -jobs=N -workers=N, not -fork=N: in fork mode the libFuzzer of clang 14 prints
# its running total only when a job adds inputs, and the executions of the jobs still running at
# the time limit (up to 300 s each) are never counted, so the total it reports is a lower bound.
# Each -jobs worker prints its own final stats; the total here is their sum.
#
# Prints one summary line like run_long.sh's: executions (sum over workers), seconds, exec/s,
# cov and ft (largest over the workers' last status lines), corpus (largest in-memory corpus of a
# worker; files in the first corpus directory in parentheses), crash artifacts (anything written
# under artifacts/ except slow-unit-* inputs, which are counted apart), workers.
# Exits non-zero if a crash artifact appeared or the parent libFuzzer exited non-zero.
#
# With FUZZ_OUT=<dir> (e.g. the device tool's $OUT) it also leaves there, as at most four small
# files that a remote run can bring back: <harness>-summary.txt (the summary line, the pack's
# pack-info.txt when there is one: commit, binary checksums; and each worker's executions),
# <harness>-corpus.tar.gz (the inputs the run added to the first corpus directory, to unpack
# into the local corpus), <harness>-logs.tar.gz (parent.log and the last 400 lines of each
# worker's log) and, when anything was written there, <harness>-artifacts.tar.gz.
set -eu
if [ $# -lt 5 ]; then
    echo "usage: $0 <dir-with-binaries> <harness> <workers> <seconds> <corpus-dir...>" >&2
    exit 2
fi
bin=$(cd "$1" && pwd)
n=${2#fuzz_}
workers=$3
secs=$4
shift 4

exe=$bin/fuzz_$n
[ -x "$exe" ] || exe=$bin/tests/fuzz/fuzz_$n
if [ ! -x "$exe" ]; then
    echo "$0: no fuzz_$n in $bin or $bin/tests/fuzz" >&2
    exit 2
fi

# Corpus directories as absolute paths: the workers run inside the log directory.
corpora=
for d in "$@"; do
    mkdir -p "$d"
    a=$(cd "$d" && pwd)
    case $a in *' '*) echo "$0: corpus path with a space: $a" >&2; exit 2 ;; esac
    corpora="$corpora $a"
done
first=${corpora# }
first=${first%% *}

logs=${FUZZ_LOG_DIR:-$bin/parallel}/$n
rm -rf "$logs"
mkdir -p "$logs/artifacts"
logs=$(cd "$logs" && pwd)

export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

start=$(date +%s)
touch "$logs/start.stamp"
rc=0
# The workers write fuzz-<job>.log into the current directory. The outer timeout is a guard only
# (each worker stops itself after $secs s); SIGINT still makes libFuzzer print its final stats.
# shellcheck disable=SC2086 # $corpora is split on purpose
(cd "$logs" && timeout -s INT -k 5 $((secs + 20)) nice -n 19 "$exe" -jobs="$workers" -workers="$workers" \
    -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$logs/artifacts/" $corpora >"$logs/parent.log" 2>&1) || rc=$?
t=$(( $(date +%s) - start ))

execs=0
cov=0
ft=0
corp=0
nlogs=0
for f in "$logs"/fuzz-*.log; do
    [ -f "$f" ] || continue
    nlogs=$((nlogs + 1))
    e=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
    execs=$((execs + ${e:-0}))
    last=$(grep -E '^#[0-9]+' "$f" | tail -n 1 || true)
    c=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    x=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    p=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    if [ "${c:-0}" -gt "$cov" ]; then cov=$c; fi
    if [ "${x:-0}" -gt "$ft" ]; then ft=$x; fi
    if [ "${p:-0}" -gt "$corp" ]; then corp=$p; fi
done
files=0
for a in "$first"/*; do
    if [ -f "$a" ]; then files=$((files + 1)); fi
done
crashes=0
slow=0
for a in "$logs"/artifacts/*; do
    [ -e "$a" ] || continue
    case ${a##*/} in
        slow-unit-*) slow=$((slow + 1)) ;;
        *) crashes=$((crashes + 1)) ;;
    esac
done
line="fuzz_$n: exit $rc, $execs executions in ${t} s ($(( execs / (t > 0 ? t : 1) )) exec/s), cov $cov ft $ft, corpus $corp ($files files), crash artifacts $crashes, slow units $slow, workers $workers ($nlogs logs)"
echo "$line" | tee "$logs/summary.txt"
{
    if [ -f "$bin/pack-info.txt" ]; then
        echo "pack:"
        sed 's/^/  /' "$bin/pack-info.txt"
    fi
    echo "binary: $(sha256sum "$exe" | cut -d' ' -f1) $exe"
    echo "workers (executions, last status line):"
    for f in "$logs"/fuzz-*.log; do
        [ -f "$f" ] || continue
        e=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
        echo "  ${f##*/}: ${e:-?} $(grep -E '^#[0-9]+' "$f" | tail -n 1 || true)"
    done
} >>"$logs/summary.txt"

if [ -n "${FUZZ_OUT:-}" ]; then
    mkdir -p "$FUZZ_OUT"
    cp "$logs/summary.txt" "$FUZZ_OUT/$n-summary.txt"
    # the inputs this run added (libFuzzer names them by their SHA-1, so unpacking them into a
    # corpus directory that has some of them already changes nothing)
    (cd "$first" && find . -maxdepth 1 -type f -newer "$logs/start.stamp" -print | sed 's|^\./||' |
        tar -czf "$FUZZ_OUT/$n-corpus.tar.gz" -T -)
    mkdir -p "$logs/tails"
    for f in "$logs"/fuzz-*.log; do
        [ -f "$f" ] && tail -n 400 "$f" >"$logs/tails/${f##*/}"
    done
    cp "$logs/parent.log" "$logs/tails/parent.log"
    tar -czf "$FUZZ_OUT/$n-logs.tar.gz" -C "$logs" tails
    if [ -n "$(ls -A "$logs/artifacts")" ]; then
        tar -czf "$FUZZ_OUT/$n-artifacts.tar.gz" -C "$logs" artifacts
    fi
    echo "results in $FUZZ_OUT: $(cd "$FUZZ_OUT" && ls "$n"-* | tr '\n' ' ')"
fi
if [ "$crashes" -gt 0 ]; then
    for a in "$logs"/artifacts/*; do
        case ${a##*/} in slow-unit-*) ;; *) echo "  $a" ;; esac
    done
    grep -h -E 'INVARIANT|ERROR:|runtime error|SUMMARY' "$logs"/fuzz-*.log | head -20 || true
    exit 1
fi
[ "$rc" -eq 0 ] || exit 1
exit 0
