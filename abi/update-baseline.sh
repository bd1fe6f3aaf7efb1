#!/usr/bin/env bash
# Regenerates the ABI baseline abi/libnvfp4.abi from a built shared library.
#
#   abi/update-baseline.sh              configure and build a CPU-only library in build-abi/
#   abi/update-baseline.sh BUILDDIR     use the library of an existing build instead
#
# Run it when the public interface changes on purpose (a new function in the open version node,
# a new release node) and commit abi/libnvfp4.abi with the change; the 'abi' test suite compares
# every build against this file. The library must carry debug info (buildtype debug or
# debugoptimized, the project default). The default build is CPU-only so that every public
# function has C debug info (functions compiled by nvcc have none; abidiff matches them by
# symbol, so a CUDA build still compares cleanly against this baseline).
# The abidw options must match tests/abi_check.sh's dump().
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
command -v abidw >/dev/null || { echo "abidw not found (apt-get install abigail-tools)" >&2; exit 1; }
if [ $# -ge 1 ]; then
    build=$1
else
    build=$src/build-abi
    [ -f "$build/build.ninja" ] ||
        meson setup "$build" "$src" -Dcuda=disabled -Dtests=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$build" >/dev/null
lib=$(find "$build" -maxdepth 2 -name 'libnvfp4.so.*.*.*' -type f | head -n 1)
[ -n "$lib" ] || { echo "no libnvfp4.so.X.Y.Z under $build" >&2; exit 1; }
readelf -S "$lib" | grep -q '\.debug_info' || { echo "$lib has no debug info" >&2; exit 1; }
abidw --drop-private-types --headers-dir "$src/include/nvfp4" --no-corpus-path --no-comp-dir-path \
      --short-locs --no-elf-needed --out-file "$here/libnvfp4.abi" "$lib"
echo "wrote $here/libnvfp4.abi from $lib:"
nm -D --defined-only "$lib" | grep -c '@@NVFP4_' | sed 's/^/  exported functions: /'
