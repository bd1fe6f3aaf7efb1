#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, run the main program on its built-in
# default input. Safe to run again. Works as root on a fresh Debian 12 machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-deps.sh" build
. "$here/common.sh"
nvfp4_configure_and_build

main_cmd=("$nvfp4_build/examples/quickstart")
if [ -x "$nvfp4_build/examples/nvfp4" ] && [ "${NVFP4_DEMO:-cmd}" = cmd ]; then
    main_cmd=("$nvfp4_build/examples/nvfp4" demo)
fi
echo "[demo] ${main_cmd[*]}"
echo
"${main_cmd[@]}" </dev/null
