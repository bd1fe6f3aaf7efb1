#!/usr/bin/env bash
# Installs what libnvfp4 needs on Debian/Ubuntu, skipping what is already there.
#
#   scripts/install-deps.sh build     compiler, meson, ninja, pkg-config and the libraries
#   scripts/install-deps.sh test      the above plus the test tools (doxygen, libabigail,
#                                     valgrind, clang) and the Python packages of the cross-checks
#
# Needs root (or sudo) only when something is missing. Never prompts (noninteractive apt, no
# stdin). Python packages go to every python3 the build may use: Debian's /usr/bin/python3 (with
# --break-system-packages where PEP 668 requires it) and a different python3 first on PATH (pyenv).
# A failed Python install is a warning: the Python tests then skip with a reason.
set -euo pipefail

level=${1:-build}
case "$level" in build | test) ;; *) echo "usage: $0 build|test" >&2; exit 2 ;; esac

build_pkgs=(gcc libc6-dev binutils meson ninja-build pkg-config libcmocka-dev libcjson-dev libopenblas-dev)
test_pkgs=(doxygen abigail-tools clang libclang-rt-dev valgrind python3 python3-pip ca-certificates)
py_pkgs=(numpy ml_dtypes safetensors pytest)

say() { printf '[deps] %s\n' "$*"; }

pkgs=("${build_pkgs[@]}")
[ "$level" = test ] && pkgs+=("${test_pkgs[@]}")

if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=()
        if [ "$(id -u)" -ne 0 ]; then
            command -v sudo >/dev/null 2>&1 || { say "missing ${missing[*]} and not root (no sudo)"; exit 1; }
            sudo=(sudo -n)
        fi
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -q </dev/null
        "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    else
        say "system packages present"
    fi
else
    say "not a Debian system: install ${pkgs[*]} (or equivalents) yourself; continuing"
fi

[ "$level" = test ] || exit 0

# Python: every interpreter a meson test may pick.
pys=(/usr/bin/python3)
onpath=$(command -v python3 || true)
if [ -n "$onpath" ] && [ "$(readlink -f "$onpath")" != "$(readlink -f /usr/bin/python3)" ]; then
    pys+=("$onpath")
fi
for py in "${pys[@]}"; do
    [ -x "$py" ] || command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import numpy, ml_dtypes, safetensors, pytest' >/dev/null 2>&1; then
        say "$py: Python packages present"
        continue
    fi
    say "$py: pip install ${py_pkgs[*]}"
    args=(-m pip install --quiet --disable-pip-version-check --no-input)
    if "$py" "${args[@]}" "${py_pkgs[@]}" </dev/null 2>/tmp/nvfp4-pip.$$ ||
        { grep -q externally-managed /tmp/nvfp4-pip.$$ &&
          "$py" "${args[@]}" --break-system-packages "${py_pkgs[@]}" </dev/null; }; then
        say "$py: Python packages installed"
    else
        cat /tmp/nvfp4-pip.$$ >&2 || true
        say "WARNING: could not pip-install ${py_pkgs[*]} for $py; the Python cross-checks will skip"
    fi
    rm -f /tmp/nvfp4-pip.$$
done
