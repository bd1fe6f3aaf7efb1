#!/bin/sh
# alloc_sites.sh - which allocation call sites of lib/ the allocation-failure test reaches.
#
#   tests/alloc_sites.sh <build-dir>
#
# Runs <build-dir>/tests/test_alloc_fail with NVFP4_ALLOC_SITES set, maps the recorded return
# addresses to source lines with addr2line (binutils), and compares them with the allocation
# call sites found by grep in lib/*.c (context hooks through nvfp4i_alloc/nvfp4i_calloc, handle
# allocations through nvfp4i_halloc/nvfp4i_hcalloc (the handle's hooks, or malloc/calloc for
# handles of the plain constructors), plain malloc/calloc/posix_memalign, and the hook call in
# nvfp4_context_create_ex; the helpers' own calls of each other, of malloc/calloc and of the
# hooks are part of the helpers and not counted).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
exe=$build/tests/test_alloc_fail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
NVFP4_ALLOC_SITES=$tmp/raw "$exe" >/dev/null
# each line: up to three frames; keep the first that is not an allocation helper
while read -r a b c; do
    for off in $a $b $c; do
        loc=$(addr2line -e "$exe" -f -i "$off" | paste - - | tail -n 1)
        fn=${loc%%	*}
        case $fn in nvfp4i_alloc|nvfp4i_calloc|nvfp4i_halloc|nvfp4i_hcalloc) continue ;; esac
        # optimised debug info puts the hook call of nvfp4_context_create_ex on the function's
        # first line: name the call's own line instead
        if [ "$fn" = nvfp4_context_create_ex ]; then
            printf 'lib/context.c:%s\t%s\n' "$(grep -n 'a\.alloc(a\.opaque' "$src/lib/context.c" | cut -d: -f1)" "$fn"
            break
        fi
        # the same for the handle's own allocation in the _ex constructors of quantizers and rounders
        case $fn in nvfp4_quantizer_create_ex|nvfp4_rounder_create_ex)
            f=quantizer.c
            [ "$fn" = nvfp4_rounder_create_ex ] && f=rounder.c
            printf 'lib/%s:%s\t%s\n' "$f" "$(grep -n '= nvfp4i_hcalloc(&h, 1, sizeof' "$src/lib/$f" | cut -d: -f1)" "$fn"
            break ;;
        esac
        echo "$loc" | awk -F'\t' '{ sub(/.*\/lib\//, "lib/", $2); sub(/ \(discriminator.*/, "", $2); print $2 "\t" $1 }'
        break
    done
done <"$tmp/raw" | sort -u >"$tmp/reached"
grep -nE 'nvfp4i_(c)?alloc\(ctx|nvfp4i_h(c)?alloc\(|[^_a-z](malloc|calloc)\(|posix_memalign\(&p|a\.alloc\(a\.opaque' "$src"/lib/*.c |
    grep -v '^[^:]*:[0-9]*:void \*nvfp4i_' | grep -v 'void \*p = nvfp4i_alloc(ctx, n \* elem)' |
    grep -v 'void \*p = nvfp4i_halloc(h, n \* elem)' | grep -vE '/lib/context.c:[0-9]+:        return (malloc\(size\)|calloc\(n, elem\));' | sed "s|^$src/||" | awk -F: '{ print $1 ":" $2 }' | sort -u >"$tmp/all"
total=$(wc -l <"$tmp/all")
hit=0
while read -r site; do
    if cut -f1 "$tmp/reached" | grep -qx "$site"; then
        hit=$((hit + 1))
        echo "reached  $site"
    else
        echo "MISSED   $site"
    fi
done <"$tmp/all"
echo "allocation call sites reached by injection: $hit of $total"
echo "(frames that map to lines outside that list:)"
cut -f1 "$tmp/reached" | grep -vxF -f "$tmp/all" || true
