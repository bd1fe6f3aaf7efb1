#!/bin/sh
# run_long.sh - the long local fuzzing run recorded in docs/RELIABILITY.md: each harness in turn,
# up to N executions or T seconds, niced, from the checked-in seeds plus the corpus grown so far.
#
#   tests/fuzz/run_long.sh <build-dir> <max-executions> <max-seconds-per-harness> [harness...]
#
# Prints one summary line per harness: executions, seconds, exec/s, cov and ft (libFuzzer's
# last status line), corpus size and crashes (artifacts written).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
runs=$2
secs=$3
shift 3
names=${*:-convert layout dequantize checkpoint rounder quantize}
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
mkdir -p "$build/fuzz-long"
for n in $names; do
    exe=$build/tests/fuzz/fuzz_$n
    work=$build/fuzz-corpus/$n
    mkdir -p "$work" "$build/fuzz-long/artifacts-$n"
    log=$build/fuzz-long/$n.log
    start=$(date +%s)
    rc=0
    nice -n 19 "$exe" -runs="$runs" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-long/artifacts-$n/" "$work" "$src/tests/fuzz/corpus/$n" >"$log" 2>&1 || rc=$?
    t=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    crashes=$(ls "$build/fuzz-long/artifacts-$n" | wc -l)
    echo "fuzz_$n: exit $rc, ${execs:-?} executions in ${t} s ($(( ${execs:-0} / (t > 0 ? t : 1) )) exec/s), cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}, crash artifacts $crashes"
done
