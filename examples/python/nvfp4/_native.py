"""Loading libnvfp4 and declaring the C prototypes (ctypes)."""

import ctypes
import ctypes.util
import glob
import os
import sys

c_status = ctypes.c_int32
c_u8p = ctypes.POINTER(ctypes.c_uint8)
c_fp = ctypes.POINTER(ctypes.c_float)
c_i64p = ctypes.POINTER(ctypes.c_int64)
c_dp = ctypes.POINTER(ctypes.c_double)
c_vp = ctypes.c_void_p
i32, i64 = ctypes.c_int32, ctypes.c_int64


class Stats(ctypes.Structure):
    """Mirror of nvfp4_stats (core.h); the library fills at most `size` bytes."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("sse", ctypes.c_double),
        ("sum_sq", ctypes.c_double),
        ("blocks", ctypes.c_int64),
        ("blocks_chose_4", ctypes.c_int64),
        ("blocks_chose_6", ctypes.c_int64),
        ("blocks_underflow", ctypes.c_int64),
        ("nonfinite", ctypes.c_int64),
        ("cjso_iterations", ctypes.c_int32),
        ("reserved0", ctypes.c_int32),
        ("cjso_initial_sse", ctypes.c_double),
        ("cjso_final_sse", ctypes.c_double),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p)

# name: (restype, argtypes). Symbols missing from an older library are skipped, and the Python
# functions that need them raise NVFP4Error(NVFP4_ERR_UNSUPPORTED) instead.
PROTOTYPES = {
    "nvfp4_status_string": (ctypes.c_char_p, [c_status]),
    "nvfp4_version_string": (ctypes.c_char_p, []),
    "nvfp4_version_number": (ctypes.c_uint32, []),
    "nvfp4_has_backend": (ctypes.c_int, [i32]),
    "nvfp4_context_create": (c_status, [ctypes.POINTER(c_vp), i32]),
    "nvfp4_context_destroy": (None, [c_vp]),
    "nvfp4_context_set_int": (c_status, [c_vp, i32, i64]),
    "nvfp4_context_get_int": (c_status, [c_vp, i32, c_i64p]),
    "nvfp4_context_last_error_message": (ctypes.c_char_p, [c_vp]),
    "nvfp4_context_get_stats": (c_status, [c_vp, ctypes.POINTER(Stats)]),
    "nvfp4_e2m1_from_float": (ctypes.c_uint8, [ctypes.c_float]),
    "nvfp4_e2m1_to_float": (ctypes.c_float, [ctypes.c_uint8]),
    "nvfp4_e4m3_from_float": (ctypes.c_uint8, [ctypes.c_float]),
    "nvfp4_e4m3_to_float": (ctypes.c_float, [ctypes.c_uint8]),
    "nvfp4_e2m1_grid": (c_fp, []),
    "nvfp4_e8m0_from_amax": (c_status, [ctypes.c_float, i32, c_u8p]),
    "nvfp4_e8m0_to_float": (ctypes.c_float, [ctypes.c_uint8]),
    "nvfp4_f16_to_float": (ctypes.c_float, [ctypes.c_uint16]),
    "nvfp4_float_to_f16": (ctypes.c_uint16, [ctypes.c_float]),
    "nvfp4_bf16_to_float": (ctypes.c_float, [ctypes.c_uint16]),
    "nvfp4_float_to_bf16": (ctypes.c_uint16, [ctypes.c_float]),
    "nvfp4_e2m1_from_array": (c_status, [i32, c_vp, i64, c_vp]),
    "nvfp4_e4m3_from_array": (c_status, [i32, c_vp, i64, c_vp]),
    "nvfp4_e2m1_to_array": (c_status, [c_vp, i64, i32, c_vp]),
    "nvfp4_e4m3_to_array": (c_status, [c_vp, i64, i32, c_vp]),
    "nvfp4_e2m1_pack": (c_status, [c_vp, i64, c_vp]),
    "nvfp4_e2m1_unpack": (c_status, [c_vp, i64, c_vp]),
    "nvfp4_quantizer_create": (c_status, [ctypes.POINTER(c_vp), i32]),
    "nvfp4_quantizer_destroy": (None, [c_vp]),
    "nvfp4_quantizer_set_int": (c_status, [c_vp, i32, i64]),
    "nvfp4_quantizer_set_float": (c_status, [c_vp, i32, ctypes.c_double]),
    "nvfp4_quantizer_get_int": (c_status, [c_vp, i32, c_i64p]),
    "nvfp4_quantizer_get_float": (c_status, [c_vp, i32, c_dp]),
    "nvfp4_quantizer_set_importance": (c_status, [c_vp, c_fp, i64]),
    "nvfp4_quantize": (c_status, [c_vp, c_vp, i32, c_vp, i64, i64, i64, c_vp, c_vp, c_fp]),
    "nvfp4_dequantize": (c_status, [c_vp, c_vp, c_vp, ctypes.c_float, i64, i64, i32, c_vp, i64]),
    "nvfp4_dequantize_v2": (c_status, [c_vp, i32, i32, c_vp, c_vp, ctypes.c_float, i64, i64, i32, c_vp, i64]),
    "nvfp4_codes_size": (c_status, [i32, i64, i64, c_i64p]),
    "nvfp4_scales_size": (c_status, [i32, i32, i64, i64, c_i64p]),
    "nvfp4_scales_swizzle": (c_status, [c_vp, i64, i64, c_vp]),
    "nvfp4_scales_unswizzle": (c_status, [c_vp, i64, i64, c_vp]),
    "nvfp4_rounder_create": (c_status, [ctypes.POINTER(c_vp), i32, i64, i64]),
    "nvfp4_rounder_destroy": (None, [c_vp]),
    "nvfp4_rounder_set_int": (c_status, [c_vp, i32, i64]),
    "nvfp4_rounder_set_float": (c_status, [c_vp, i32, ctypes.c_double]),
    "nvfp4_rounder_get_int": (c_status, [c_vp, i32, c_i64p]),
    "nvfp4_rounder_get_float": (c_status, [c_vp, i32, c_dp]),
    "nvfp4_rounder_set_quantizer": (c_status, [c_vp, c_vp]),
    "nvfp4_rounder_set_progress": (c_status, [c_vp, PROGRESS_FN, c_vp]),
    "nvfp4_rounder_add_samples": (c_status, [c_vp, c_vp, i32, c_vp, i64, i64]),
    "nvfp4_rounder_set_gram": (c_status, [c_vp, c_fp, i64, i64]),
    "nvfp4_rounder_clear_calibration": (c_status, [c_vp]),
    "nvfp4_rounder_run": (c_status, [c_vp, c_vp, i32, c_vp, i64, c_vp, c_vp, c_fp]),
    "nvfp4_rounder_last_error_message": (ctypes.c_char_p, [c_vp]),
}

# Symbols every supported library has; the rest are optional.
REQUIRED = [
    "nvfp4_status_string", "nvfp4_version_string", "nvfp4_version_number", "nvfp4_context_create",
    "nvfp4_context_destroy", "nvfp4_quantizer_create", "nvfp4_quantize", "nvfp4_dequantize",
]

_COMMON_DIRS = [
    os.path.join(sys.prefix, "lib"),
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/local/lib/x86_64-linux-gnu",
    "/usr/local/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/opt/nvfp4/lib",
]


def candidates():
    """Where the library is looked for, in order: $NVFP4_LIBRARY, find_library, common dirs."""
    env = os.environ.get("NVFP4_LIBRARY")
    if env:
        return [env]
    out = []
    found = ctypes.util.find_library("nvfp4")
    if found:
        out.append(found)
    for d in _COMMON_DIRS:
        out.extend(sorted(glob.glob(os.path.join(d, "libnvfp4.so*")), key=len))
    return out


def load():
    env = os.environ.get("NVFP4_LIBRARY")
    if env and not os.path.exists(env):
        raise ImportError("NVFP4_LIBRARY=%r does not exist" % env)
    errors = []
    for path in candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
            continue
        missing = [s for s in REQUIRED if not hasattr(lib, s)]
        if missing:
            errors.append("%s: not libnvfp4 (missing %s)" % (path, ", ".join(missing)))
            continue
        for name, (res, args) in PROTOTYPES.items():
            if hasattr(lib, name):
                f = getattr(lib, name)
                f.restype = res
                f.argtypes = args
        return lib, path
    raise ImportError(
        "libnvfp4 not found: install it (meson install) or set NVFP4_LIBRARY to the path of "
        "libnvfp4.so" + ("; tried " + "; ".join(errors) if errors else ""))
