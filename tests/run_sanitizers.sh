#!/bin/sh
# run_sanitizers.sh - the test suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# ThreadSanitizer and valgrind memcheck (issue 6). Any report fails the run.
#
#   tests/run_sanitizers.sh [asan|tsan|valgrind|all] [build-dir-prefix]
#
#   asan      build-san-asan:  -Db_sanitize=address,undefined, every unit test (UB is fatal:
#             -fno-sanitize-recover=all; leaks are reported by LeakSanitizer at exit)
#   tsan      build-san-tsan:  -Db_sanitize=thread, the concurrency test and the unit tests
#             that run the library on several threads
#   valgrind  build-san-vg:    a plain build, every unit test under
#             valgrind --error-exitcode=1 --leak-check=full
#
# Left out everywhere: the exhaustive float32 suite 'slow' (hours under a sanitizer; its
# functions are covered by the formats suite and the convert fuzzer), and the suites that test
# something other than this library's memory behaviour: 'abi' (abidiff), 'docs' (Doxygen),
# 'python' (a CPython process loading the shared library), 'install' (links a staged
# install with pkg-config: the sanitizer runtime would have to be preloaded) and 'fuzz'.
# Set NVFP4_SAN_SUITES to a space-separated list of suites to run only those.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
prefix=${2:-$src/build-san}
jobs=${NVFP4_SAN_JOBS:-2}
skip="--no-suite slow --no-suite abi --no-suite docs --no-suite python --no-suite fuzz --no-suite install"
common="-Dcuda=disabled -Dpython_tests=disabled -Dslow_tests=false -Dbuildtype=debugoptimized"

suites() {
    if [ -n "${NVFP4_SAN_SUITES:-}" ]; then
        for s in $NVFP4_SAN_SUITES; do printf ' --suite %s' "$s"; done
    else
        printf ' %s' "$skip"
    fi
}

setup() { # dir, extra meson args...
    dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        # shellcheck disable=SC2086
        meson setup "$dir" "$src" $common "$@" >/dev/null
    fi
    ninja -C "$dir" -j "$jobs" >/dev/null
}

run_asan() {
    dir=$prefix-asan
    echo "== ASan+UBSan ($dir)"
    setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$dir" --print-errorlogs --num-processes "$jobs" --timeout-multiplier 4 $(suites)
}

run_tsan() {
    dir=$prefix-tsan
    echo "== TSan ($dir)"
    setup "$dir" -Db_sanitize=thread -Db_lundef=false
    if [ -n "${NVFP4_SAN_SUITES:-}" ]; then
        sel=$(suites)
    else
        sel="--suite threads --suite quantize --suite methods --suite rounder --suite context"
    fi
    # halt_on_error: the first data race fails the test
    # shellcheck disable=SC2086
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        meson test -C "$dir" --print-errorlogs --num-processes 1 --timeout-multiplier 6 $sel
}

run_valgrind() {
    dir=$prefix-vg
    echo "== valgrind memcheck ($dir)"
    command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed (apt-get install valgrind)"; return 0; }
    setup "$dir"
    # Definite and indirect leaks fail; 'possible' leaks are glibc's and cmocka's own bookkeeping.
    # NVFP4_VG_ORIGINS=1 adds --track-origins=yes (better reports, about twice as slow).
    origins=""
    [ "${NVFP4_VG_ORIGINS:-0}" = 1 ] && origins=" --track-origins=yes"
    # shellcheck disable=SC2086
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" --timeout-multiplier 20 $(suites) \
        --wrap="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect$origins --quiet"
}

case $what in
asan) run_asan ;;
tsan) run_tsan ;;
valgrind) run_valgrind ;;
all)
    run_asan
    run_tsan
    run_valgrind
    ;;
*)
    echo "usage: $0 [asan|tsan|valgrind|all] [build-dir-prefix]" >&2
    exit 2
    ;;
esac
echo "sanitizers: $what clean"
