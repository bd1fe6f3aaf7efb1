# Shared by the quick-start scripts (sourced, not run): configure and build libnvfp4.
# NVFP4_BUILD_DIR (default: build) names the build directory; NVFP4_MESON_OPTIONS adds options
# to a first `meson setup`.

nvfp4_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nvfp4_build=${NVFP4_BUILD_DIR:-build}
case "$nvfp4_build" in /*) ;; *) nvfp4_build=$nvfp4_root/$nvfp4_build ;; esac

nvfp4_configure_and_build() {
    cd "$nvfp4_root"
    if [ -f "$nvfp4_build/build.ninja" ] && [ -f "$nvfp4_build/meson-private/coredata.dat" ]; then
        # Reconfigure so that tools installed since the first setup (doxygen, Python modules
        # after quickstart-demo.sh) are found; meson only looks for them at configure time.
        echo "[build] meson setup --reconfigure $nvfp4_build"
        meson setup --reconfigure "$nvfp4_build" </dev/null
    else
        echo "[build] meson setup $nvfp4_build"
        # shellcheck disable=SC2086
        meson setup "$nvfp4_build" ${NVFP4_MESON_OPTIONS:-} </dev/null
    fi
    echo "[build] ninja -C $nvfp4_build"
    ninja -C "$nvfp4_build" </dev/null
}
