#!/usr/bin/env bash
# Quick start, command 2: install what is missing (build and test tools), build, run every test.
# Works as root on a fresh Debian 12 machine and in CI (no stdin, no GPU needed). Tests that
# cannot run here (no GPU, a tool missing) report SKIP with a reason and do not fail the run.
#
# NVFP4_TEST_ARGS adds arguments to `meson test` (e.g. "--suite abi");
# NVFP4_TIMEOUT_MULTIPLIER scales every test's timeout (default 1; CI uses 3 on slow runners).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-deps.sh" test
. "$here/common.sh"
nvfp4_configure_and_build

echo "[test] meson test -C $nvfp4_build"
rc=0
# shellcheck disable=SC2086
meson test -C "$nvfp4_build" --print-errorlogs --num-processes "$(nproc 2>/dev/null || echo 2)" \
    --timeout-multiplier "${NVFP4_TIMEOUT_MULTIPLIER:-1}" ${NVFP4_TEST_ARGS:-} </dev/null || rc=$?

# One summary line from meson's machine-readable log.
log=$nvfp4_build/meson-logs/testlog.json
if [ -f "$log" ]; then
    count() { grep -c "\"result\": \"$1\"" "$log" || true; }
    echo "SUMMARY: $(count OK) passed, $(count FAIL) failed, $(count SKIP) skipped, $(count TIMEOUT) timed out," \
         "$(count ERROR) errors, $(grep -c '"result"' "$log" || true) tests run (log: $log)"
    if [ "$(count SKIP)" != 0 ]; then
        echo "skipped tests (exit 77):"
        grep '"result": "SKIP"' "$log" | sed -n 's/.*"name": "\([^"]*\)".*/  \1/p'
    fi
fi
[ "$rc" -eq 0 ] && echo "RESULT: all tests passed" || echo "RESULT: FAILED (meson test exit $rc)"
exit "$rc"
