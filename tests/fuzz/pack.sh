#!/bin/sh
# pack.sh - gathers what a long parallel fuzzing run on another machine (no compiler needed)
# takes: the harness binaries, their checked-in seeds, the corpus grown so far and
# run_parallel.sh.
#
#   tests/fuzz/pack.sh <build-fuzz-dir> <out-dir> [harness...]      (default: quantize rounder)
#
# Layout of <out-dir>: fuzz_<name> (the binaries as built: ASan+UBSan, symbols kept),
# seeds/<name>/ (tests/fuzz/corpus/<name>), corpus/<name>/ (<build>/fuzz-corpus/<name>, the
# directory run_parallel.sh should write new inputs to), run_parallel.sh, and pack-info.txt (the
# commit the sources were at, whether tests/fuzz, lib or include differed from it, the compiler,
# each binary's SHA-256), which run_parallel.sh copies into its summary. A directory whose name
# starts with build (e.g. build-fuzzpack) is ignored by git and can be carried to another
# machine. On the other machine:
#   FUZZ_OUT=$OUT sh <out-dir>/run_parallel.sh <out-dir> quantize 16 540 <out-dir>/corpus/quantize <out-dir>/seeds/quantize
# The binaries link only libc, libm, libstdc++ and libgcc_s (checked below). Prints the pack's
# total size and fails if it is 60 MiB or more (the debug info of the copies is stripped first,
# the symbols kept, when that brings it under).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -lt 2 ]; then
    echo "usage: $0 <build-fuzz-dir> <out-dir> [harness...]" >&2
    exit 2
fi
build=$1
out=$2
shift 2
names=${*:-quantize rounder}
limit=$((60 * 1024 * 1024))

mkdir -p "$out"
# Remove only what an earlier pack put there.
rm -rf "$out/seeds" "$out/corpus" "$out/parallel" "$out/run_parallel.sh" "$out/pack-info.txt"
for n in $names; do
    rm -f "$out/fuzz_$n"
done

for n in $names; do
    exe=$build/tests/fuzz/fuzz_$n
    if [ ! -x "$exe" ]; then
        echo "$0: $exe not built" >&2
        exit 1
    fi
    # Only the C/C++ runtime may be needed on the other machine (the sanitizers are linked in).
    other=$(ldd "$exe" | grep '=>' | grep -v -E '/(libc|libm|libstdc\+\+|libgcc_s)\.so' || true)
    if [ -n "$other" ]; then
        echo "$0: fuzz_$n needs more shared libraries than the C/C++ runtime:" >&2
        echo "$other" >&2
        exit 1
    fi
    cp "$exe" "$out/fuzz_$n"
    mkdir -p "$out/seeds/$n" "$out/corpus/$n"
    cp -R "$src/tests/fuzz/corpus/$n/." "$out/seeds/$n/"
    if [ -d "$build/fuzz-corpus/$n" ]; then
        cp -R "$build/fuzz-corpus/$n/." "$out/corpus/$n/"
    fi
done
cp "$src/tests/fuzz/run_parallel.sh" "$out/run_parallel.sh"
chmod +x "$out/run_parallel.sh"

size=$(du -s -b "$out" | cut -f1)
if [ "$size" -ge "$limit" ]; then
    for n in $names; do
        strip --strip-debug "$out/fuzz_$n"
    done
    size=$(du -s -b "$out" | cut -f1)
    echo "stripped debug info from the binaries"
fi
# after any stripping: the checksums are those of the binaries that run
{
    echo "commit: $(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)"
    # the build compiles the working tree: say whether what the binaries are made of differs
    changed=$(git -C "$src" status --porcelain -- lib include tests/fuzz examples/nvfp4 2>/dev/null | wc -l)
    echo "uncommitted changes under lib, include, tests/fuzz, examples/nvfp4 when packed: $changed files"
    echo "compiler: $(sed -n 's/^C compiler for the host machine: //p' "$build/meson-logs/meson-log.txt" 2>/dev/null | head -n 1)"
    echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for n in $names; do
        echo "fuzz_$n: $(sha256sum "$out/fuzz_$n" | cut -d' ' -f1)"
    done
} >"$out/pack-info.txt"
for n in $names; do
    echo "fuzz_$n: binary $(du -b "$out/fuzz_$n" | cut -f1) bytes, seeds $(find "$out/seeds/$n" -type f | wc -l), corpus $(find "$out/corpus/$n" -type f | wc -l) inputs"
done
echo "pack $out: $size bytes ($((size / 1024 / 1024)) MiB)"
if [ "$size" -ge "$limit" ]; then
    echo "$0: pack is 60 MiB or more" >&2
    exit 1
fi
