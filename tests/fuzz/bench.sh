#!/bin/sh
# bench.sh - the reproducible speed measurement of docs/RELIABILITY.md ("Speed of the slow
# harnesses"): each harness for a fixed time on ONE core, libFuzzer seed 1, from the checked-in
# seeds (and, read-only, any further corpus directories given), into an empty scratch corpus.
#
#   tests/fuzz/bench.sh <build-dir> <seconds> <harness...> [-- <corpus-dir>...]
#
# <build-dir> holds tests/fuzz/fuzz_<harness> (a build directory) or fuzz_<harness> (a pack of
# tests/fuzz/pack.sh). Prints one line per harness: executions (stat::number_of_executed_units),
# wall seconds, exec/s, CPU seconds of the process (user + sys, threads included) and executions
# per CPU second (steadier than exec/s on a machine shared with other work), cov and ft of the
# last status line, the corpus size, and the exit status. Nothing is written outside a scratch
# directory, which is removed afterwards unless a harness failed (its crash input is there) or
# BENCH_KEEP=1 is set; its path is printed then.
set -eu
if [ $# -lt 3 ]; then
    echo "usage: $0 <build-dir> <seconds> <harness...> [-- <corpus-dir>...]" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(cd "$1" && pwd)
secs=$2
shift 2
names=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    names="$names ${1#fuzz_}"
    shift
done
[ $# -gt 0 ] && shift
extra=
for d in "$@"; do
    extra="$extra $(cd "$d" && pwd)"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/nvfp4-bench.XXXXXX")
for n in $names; do
    exe=$bin/tests/fuzz/fuzz_$n
    [ -x "$exe" ] || exe=$bin/fuzz_$n
    if [ ! -x "$exe" ]; then
        echo "$0: no fuzz_$n in $bin" >&2
        exit 2
    fi
    mkdir -p "$scratch/$n/corpus" "$scratch/$n/artifacts"
    rc=0
    # GNU time gives the CPU seconds; without it only the wall time is known (CPU printed as 0).
    timer=
    if [ -x /usr/bin/time ]; then
        timer="/usr/bin/time -f %e_%U_%S -o $scratch/$n/time"
    fi
    start=$(date +%s)
    # shellcheck disable=SC2086 # $timer and $extra are split on purpose
    $timer nice -n 10 "$exe" -seed=1 -max_total_time="$secs" \
        -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$scratch/$n/artifacts/" \
        "$scratch/$n/corpus" $extra "$src/tests/fuzz/corpus/$n" >"$scratch/$n/log" 2>&1 || rc=$?
    [ -n "$timer" ] || echo "$(( $(date +%s) - start ))_0_0" >"$scratch/$n/time"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$n/log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$scratch/$n/log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    times=$(tail -n 1 "$scratch/$n/time" | tr '_' ' ')
    echo "$n ${execs:-?} $times ${cov:-?} ${ft:-?} ${corp:-?} $rc" | awk '{
        cpu = $4 + $5
        printf "fuzz_%s: %s executions in %.0f s (%.0f exec/s), %.1f CPU s (%.0f exec per CPU s), cov %s ft %s, corpus %s, exit %s\n",
               $1, $2, $3, ($3 > 0 ? $2 / $3 : 0), cpu, (cpu > 0 ? $2 / cpu : 0), $6, $7, $8, $9 }'
    if [ "$rc" -ne 0 ]; then
        grep -E 'INVARIANT|ERROR:|runtime error|SUMMARY' "$scratch/$n/log" | head -5 || true
        echo "  log and crash input kept: $scratch/$n/log, $scratch/$n/artifacts/"
        BENCH_KEEP=1
    fi
done
if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "kept $scratch"
else
    rm -rf "$scratch"
fi
