#!/bin/sh
# run_ci.sh - the CI fuzzing step (issue 6): builds the libFuzzer harnesses with clang and runs
# each one for a fixed time from its checked-in seed corpus. Any crash, sanitizer report or
# violated invariant fails the step; the crashing input is left in $BUILD/fuzz-artifacts/.
#
#   tests/fuzz/run_ci.sh [build-dir] [seconds-per-harness]
#
# Defaults: build-fuzz, 30 s. Needs clang with libFuzzer (Debian: clang, libclang-rt-dev or the
# clang package's compiler-rt). The corpus grown during the run stays in the build directory;
# the checked-in seeds are never modified.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build-fuzz}
secs=${2:-30}
case $build in /*) ;; *) build=$src/$build ;; esac

if [ ! -f "$build/build.ninja" ]; then
    CC=${CC_FUZZ:-clang} meson setup "$build" "$src" -Dfuzz=true -Dcuda=disabled -Dpython_tests=disabled \
        -Dslow_tests=false >/dev/null
fi
ninja -C "$build" $(cd "$build" && ninja -t targets all | sed -n 's/^\(tests\/fuzz\/fuzz_[a-z_]*\): .*/\1/p' | sort -u)

# Large allocations must come back as NULL (the library reports NVFP4_ERR_OUT_OF_MEMORY) instead
# of ASan aborting the process.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p "$build/fuzz-artifacts"
status=0
for exe in "$build"/tests/fuzz/fuzz_*; do
    [ -f "$exe" ] && [ -x "$exe" ] || continue
    name=${exe##*/fuzz_}
    seeds=$src/tests/fuzz/corpus/$name
    work=$build/fuzz-corpus/$name
    mkdir -p "$work"
    echo "== fuzz_$name: ${secs}s"
    if ! "$exe" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$build/fuzz-artifacts/$name-" "$work" "$seeds" >"$build/fuzz-$name.log" 2>&1; then
        echo "FAIL: fuzz_$name (log: $build/fuzz-$name.log)"
        grep -E 'INVARIANT|ERROR|runtime error|SUMMARY' "$build/fuzz-$name.log" | head -20 || true
        status=1
    else
        grep -E '^Done|stat::number_of_executed_units|stat::peak_rss' "$build/fuzz-$name.log" || true
    fi
done
exit $status
