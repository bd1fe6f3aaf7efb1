#!/usr/bin/env bash
# Installs the build into a temporary DESTDIR and builds examples/quickstart.c against the
# installed library the way a user would, through `pkg-config --cflags --libs nvfp4`, then runs it.
#
#   link_pkgconfig.sh SRCDIR BUILDDIR
#
# pkg-config is pointed at the staged .pc file (PKG_CONFIG_LIBDIR) with PKG_CONFIG_SYSROOT_DIR set
# to the DESTDIR, so the -I and -L flags it prints land inside the staging tree.
# Exit status: 0 pass, 1 fail, 77 skip (pkg-config or a C compiler missing).
set -u
src=$(cd "${1:?usage: $0 SRCDIR BUILDDIR}" && pwd)
build=$(cd "${2:?usage: $0 SRCDIR BUILDDIR}" && pwd)
cc=${CC:-cc}

command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config not installed"; exit 77; }
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc)"; exit 77; }
command -v meson >/dev/null 2>&1 || { echo "SKIP: meson not on PATH"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvfp4-pc.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "meson install --destdir failed"; }

pc=$(find "$stage" -name nvfp4.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no nvfp4.pc installed under $stage"
header=$(find "$stage" -path '*/include/nvfp4/nvfp4.h' | head -n 1)
[ -n "$header" ] || fail "nvfp4/nvfp4.h not installed"
so=$(find "$stage" -name 'libnvfp4.so.0' | head -n 1)
[ -n "$so" ] || fail "libnvfp4.so.0 not installed"

export PKG_CONFIG_LIBDIR=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR=$stage
unset PKG_CONFIG_PATH
pkg-config --validate nvfp4 || fail "pkg-config --validate nvfp4"
cflags=$(pkg-config --cflags nvfp4) || fail "pkg-config --cflags"
libs=$(pkg-config --libs nvfp4) || fail "pkg-config --libs"
echo "installed: ${pc#"$stage"} (version $(pkg-config --modversion nvfp4))"
echo "pkg-config --cflags --libs nvfp4: $cflags $libs"
case "$cflags $libs" in *"$stage"*) ;; *) fail "pkg-config flags do not point into the staged tree" ;; esac
libdir=$(dirname "$so")

# A user's build: only the installed header and library, no project include paths.
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror -o "$tmp/quickstart" "$src/examples/quickstart.c" $cflags $libs -lm ||
    fail "building quickstart.c against the installed library"
readelf -d "$tmp/quickstart" | grep -q 'NEEDED.*\[libnvfp4\.so\.0\]' ||
    fail "quickstart does not link the shared libnvfp4.so.0"

LD_LIBRARY_PATH=$libdir "$tmp/quickstart" 64 256 7 >"$tmp/out.txt" 2>&1
rc=$?
cat "$tmp/out.txt"
[ "$rc" -eq 0 ] || fail "quickstart exited with $rc"
# It must have used the staged library, not one from the build tree or the system.
LD_LIBRARY_PATH=$libdir ldd "$tmp/quickstart" | grep 'libnvfp4\.so\.0' | grep -q "$stage" ||
    fail "the dynamic loader did not pick the installed library"
grep -q '^max  *ok ' "$tmp/out.txt" || fail "quickstart did not report the max method"

# Static linking through pkg-config --static must work too (Libs.private).
# shellcheck disable=SC2086
if [ -n "$(find "$stage" -name libnvfp4.a | head -n 1)" ]; then
    "$cc" -std=c11 -o "$tmp/quickstart_static" "$src/examples/quickstart.c" $cflags \
        -Wl,-Bstatic $(pkg-config --libs-only-L nvfp4) -lnvfp4 -Wl,-Bdynamic \
        $(pkg-config --static --libs-only-other --libs-only-l nvfp4 | sed 's/-lnvfp4//') -lm ||
        fail "static link through pkg-config --static"
    "$tmp/quickstart_static" 32 64 >/dev/null || fail "statically linked quickstart failed"
    echo "static link through pkg-config --static: ok"
fi
echo "PASS: built and ran quickstart.c against the installed library through pkg-config"
