#!/usr/bin/env bash
# ABI gate of libnvfp4 (meson suite 'abi'). Three modes:
#
#   abi_check.sh baseline SRCDIR LIB.so
#       Dumps LIB.so with abidw and compares it with the checked-in baseline abi/libnvfp4.abi.
#       Fails on an incompatible change (abidiff bit 8) and on any other change (bit 4) that
#       abi/suppressions.abignore does not approve. Adding a function is a change too: approve it by
#       regenerating the baseline (abi/update-baseline.sh) in the same commit.
#
#   abi_check.sh removal SRCDIR LIB.so LIB.a
#       Proves the gate bites: relinks the library's own objects (from LIB.a) twice, once with the
#       real version script and once with one exported function deleted from a temporary copy of it,
#       and asserts that abidiff finds no change for the intact copy and an incompatible change
#       (bit 8, "Removed function") for the broken one.
#
#   abi_check.sh symbols SRCDIR LIB.so
#       Asserts that the dynamic symbol table exports only versioned nvfp4_* functions, each in the
#       node lib/nvfp4.map gives it, that the SONAME is libnvfp4.so.0, and that the symbols in the
#       map, the NVFP4_API declarations in include/nvfp4/*.h and the exports are the same set.
#
#   abi_check.sh headers SRCDIR LIB.so
#       Asserts that each public header compiles on its own as C99, C11 and C++11 with warnings as
#       errors, and that the umbrella header nvfp4/nvfp4.h includes every other one.
#
# Exit status: 0 pass, 1 fail, 77 skip (a tool is missing or the library has no debug info).
set -u

mode=${1:-}
src=${2:-}
lib=${3:-}
[ -n "$mode" ] && [ -d "$src" ] && [ -f "$lib" ] || {
    echo "usage: $0 baseline|removal|symbols|headers SRCDIR LIB.so [LIB.a]" >&2
    exit 1
}

src=$(cd "$src" && pwd)
lib=$(readlink -f "$lib")
baseline=$src/abi/libnvfp4.abi
suppr=$src/abi/suppressions.abignore
headers=$src/include/nvfp4
map=$src/lib/nvfp4.map

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvfp4-abi.XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT

need_abigail() {
    command -v abidw >/dev/null 2>&1 || skip "abidw not installed (Debian: apt-get install abigail-tools)"
    command -v abidiff >/dev/null 2>&1 || skip "abidiff not installed (Debian: apt-get install abigail-tools)"
}

need_debuginfo() {
    # Without DWARF abidw sees only symbol names; the type half of the gate would be blind.
    if ! readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; then
        skip "$1 has no debug info (configure with buildtype=debug or debugoptimized)"
    fi
}

# The same options abi/update-baseline.sh uses, so dumps are comparable and path independent.
dump() {
    abidw --drop-private-types --headers-dir "$headers" --no-corpus-path --no-comp-dir-path \
          --short-locs --no-elf-needed --out-file "$2" "$1"
}

# abidiff's status is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible change.
run_abidiff() { # out-file args...
    local out=$1; shift
    abidiff "$@" >"$out" 2>&1
    return $?
}

map_symbols() { # name node, one per line
    awk '
        /^[ \t]*[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); inglobal = 0; next }
        /global:/ { inglobal = 1; next }
        /local:/  { inglobal = 0; next }
        inglobal && /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*;/ {
            s = $1; sub(/;.*/, "", s); print s, node
        }' "$map" | sort
}

header_symbols() {
    # Every function declared with the export macro: "NVFP4_API <type> name(".
    cat "$headers"/*.h | tr '\n' ' ' | grep -o 'NVFP4_API [^;(]*(' |
        grep -o 'nvfp4_[A-Za-z0-9_]*[ ]*($' | tr -d ' (' | sort -u
}

case "$mode" in
baseline)
    need_abigail
    need_debuginfo "$lib"
    [ -f "$baseline" ] || fail "no baseline at $baseline; create it with abi/update-baseline.sh"
    dump "$lib" "$tmp/current.abi" || fail "abidw could not read $lib"
    args=()
    [ -f "$suppr" ] && args+=(--suppressions "$suppr")
    run_abidiff "$tmp/report" "${args[@]}" "$baseline" "$tmp/current.abi"
    rc=$?
    cat "$tmp/report"
    echo "abidiff exit status: $rc (bits: 1 error, 2 usage, 4 change, 8 incompatible)"
    if [ $((rc & 3)) -ne 0 ]; then fail "abidiff failed to run"; fi
    if [ $((rc & 8)) -ne 0 ]; then
        fail "INCOMPATIBLE ABI change against abi/libnvfp4.abi (a symbol was removed or a type changed)."
    fi
    if [ $((rc & 4)) -ne 0 ]; then
        fail "unapproved ABI change. If it is intended (e.g. a new function in the open node), run
      abi/update-baseline.sh and commit abi/libnvfp4.abi, or approve it in abi/suppressions.abignore."
    fi
    echo "PASS: ABI identical to the baseline"
    ;;

removal)
    need_abigail
    need_debuginfo "$lib"
    archive=${4:-}
    [ -f "$archive" ] || fail "removal mode needs the static archive as 4th argument"
    archive=$(readlink -f "$archive")
    command -v "${CC:-cc}" >/dev/null 2>&1 || skip "no C compiler driver to relink with"
    victim=${NVFP4_ABI_VICTIM:-nvfp4_e4m3_to_float}
    grep -q "^[[:space:]]*$victim;" "$map" || fail "$victim is not in $map"

    mkdir -p "$tmp/obj" "$tmp/intact" "$tmp/broken"
    (cd "$tmp/obj" && ar x "$archive") || fail "cannot unpack $archive"
    objs=("$tmp"/obj/*.o)
    [ -e "${objs[0]}" ] || fail "no objects in $archive"
    grep -v "^[[:space:]]*$victim;" "$map" >"$tmp/broken.map"
    # The copy differs from the real map by exactly one line.
    [ "$(diff "$map" "$tmp/broken.map" | grep -c '^<')" -eq 1 ] || fail "could not cut $victim from the map"

    soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    link() { # map out
        "${CC:-cc}" -shared -o "$2" -Wl,-soname,"$soname" -Wl,--version-script="$1" "${objs[@]}" \
            -lpthread -lm
    }
    link "$map" "$tmp/intact/$soname" || fail "relinking the intact copy failed"
    link "$tmp/broken.map" "$tmp/broken/$soname" || fail "relinking the broken copy failed"
    nm -D --defined-only "$tmp/broken/$soname" | grep -q " $victim@" && fail "$victim still exported"

    dump "$lib" "$tmp/real.abi" || fail "abidw could not read $lib"
    dump "$tmp/intact/$soname" "$tmp/intact.abi" || fail "abidw could not read the intact copy"
    dump "$tmp/broken/$soname" "$tmp/broken.abi" || fail "abidw could not read the broken copy"

    # 1. Control: relinking the same objects with the real map must not change the ABI, so the
    #    change found in step 2 comes from the deleted map line and nothing else.
    run_abidiff "$tmp/r0" "$tmp/real.abi" "$tmp/intact.abi"
    rc0=$?
    [ "$rc0" -eq 0 ] || { cat "$tmp/r0"; fail "the intact relink differs from the built library (abidiff $rc0)"; }
    echo "control: intact relink vs built library: abidiff exit 0"

    # 2. The broken copy against the built library and, when present, against the baseline the
    #    'baseline' test uses: both must report bit 8 and name the removed function.
    refs=("$tmp/real.abi")
    [ -f "$baseline" ] && refs+=("$baseline")
    for ref in "${refs[@]}"; do
        run_abidiff "$tmp/r1" "$ref" "$tmp/broken.abi"
        rc1=$?
        cat "$tmp/r1"
        echo "broken copy (without $victim) vs $(basename "$ref"): abidiff exit $rc1"
        [ $((rc1 & 3)) -eq 0 ] || fail "abidiff failed to run"
        [ $((rc1 & 8)) -ne 0 ] || fail "abidiff did not flag the removal of $victim as incompatible"
        grep -q "Removed function" "$tmp/r1" || fail "report does not list a removed function"
        grep -q "$victim" "$tmp/r1" || fail "report does not name $victim"
    done
    echo "PASS: removing $victim from the version script is caught as an incompatible change (bit 8)"
    ;;

symbols)
    command -v nm >/dev/null 2>&1 || skip "nm not installed (binutils)"
    command -v readelf >/dev/null 2>&1 || skip "readelf not installed (binutils)"
    bad=0
    soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    if [ "$soname" != "libnvfp4.so.0" ]; then echo "SONAME is '$soname', expected libnvfp4.so.0"; bad=1; fi

    map_symbols >"$tmp/map.txt"
    cut -d' ' -f1 "$tmp/map.txt" >"$tmp/map.names"
    header_symbols >"$tmp/hdr.names"
    nm -D --defined-only "$lib" >"$tmp/nm.txt" || fail "nm -D failed on $lib"
    [ -s "$tmp/map.names" ] || fail "no symbols parsed from $map"
    [ -s "$tmp/hdr.names" ] || fail "no NVFP4_API declarations parsed from $headers"

    : >"$tmp/exp.txt"
    while read -r _addr type name; do
        [ -n "${name:-}" ] || { name=$type; type=$_addr; }
        case "$type:$name" in
        A:NVFP4_[0-9]*.[0-9]*) ;; # the version node's own definition
        [TWi]:nvfp4_*@@NVFP4_*)
            sym=${name%%@@*}
            node=${name#*@@}
            mapnode=$(awk -v s="$sym" '$1 == s { print $2 }' "$tmp/map.txt")
            if [ "$mapnode" != "$node" ]; then
                echo "$sym is exported in node $node but lib/nvfp4.map puts it in '${mapnode:-no node}'"
                bad=1
            fi
            echo "$sym" >>"$tmp/exp.txt"
            ;;
        *)
            echo "unexpected export: $type $name (only versioned nvfp4_* functions may be exported)"
            bad=1
            ;;
        esac
    done <"$tmp/nm.txt"
    sort -o "$tmp/exp.txt" "$tmp/exp.txt"

    report_diff() { # label-a file-a label-b file-b
        local only
        only=$(comm -23 "$2" "$4")
        [ -z "$only" ] || { echo "in $1 but not in $3:"; echo "$only" | sed 's/^/    /'; bad=1; }
    }
    report_diff "lib/nvfp4.map" "$tmp/map.names" "the public headers" "$tmp/hdr.names"
    report_diff "the public headers" "$tmp/hdr.names" "lib/nvfp4.map" "$tmp/map.names"
    report_diff "lib/nvfp4.map" "$tmp/map.names" "nm -D of the library" "$tmp/exp.txt"
    report_diff "nm -D of the library" "$tmp/exp.txt" "lib/nvfp4.map" "$tmp/map.names"

    n=$(wc -l <"$tmp/exp.txt")
    if [ "$bad" -ne 0 ]; then
        echo "--- nm -D --defined-only $lib"
        cat "$tmp/nm.txt"
        fail "symbol table check"
    fi
    echo "PASS: $n exports, all versioned nvfp4_*; map, headers and nm -D agree; SONAME $soname"
    ;;

headers)
    # Every public header stands alone (includes what it uses), compiles as strict C99/C11 and
    # as C++ (extern "C" guards), and is reachable from the umbrella header.
    cc=${CC:-cc}
    command -v "$cc" >/dev/null 2>&1 || skip "no C compiler ($cc)"
    cxx=
    for c in c++ g++ clang++; do command -v "$c" >/dev/null 2>&1 && { cxx=$c; break; }; done
    bad=0
    n=0
    for h in "$headers"/*.h; do
        name=$(basename "$h")
        n=$((n + 1))
        if [ "$name" != nvfp4.h ] && ! grep -q "#include \"nvfp4/$name\"" "$headers/nvfp4.h"; then
            echo "nvfp4/$name is not included by nvfp4/nvfp4.h"; bad=1
        fi
        printf '#include <nvfp4/%s>\nint nvfp4_header_test_dummy;\n' "$name" >"$tmp/t.c"
        for std in c99 c11; do
            "$cc" -std=$std -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$src/include" "$tmp/t.c" \
                >"$tmp/err" 2>&1 || { echo "nvfp4/$name fails alone as $std:"; cat "$tmp/err"; bad=1; }
        done
        if [ -n "$cxx" ]; then
            cp "$tmp/t.c" "$tmp/t.cpp"
            "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$src/include" "$tmp/t.cpp" \
                >"$tmp/err" 2>&1 || { echo "nvfp4/$name fails as C++11:"; cat "$tmp/err"; bad=1; }
        fi
    done
    [ "$bad" -eq 0 ] || fail "public header check"
    echo "PASS: $n public headers compile alone as C99, C11${cxx:+ and C++11 ($cxx)}; all reachable from nvfp4.h"
    ;;

*)
    fail "unknown mode '$mode'"
    ;;
esac
