"""nvfp4: NVFP4 and MXFP4 quantisation with libnvfp4, numpy in and numpy out.

The shared library is found through $NVFP4_LIBRARY (a path), then ctypes.util.find_library,
then the usual install directories.

    >>> import numpy as np, nvfp4
    >>> w = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    >>> codes, scales, gs = nvfp4.quantize(w, method="4over6")
    >>> w_hat = nvfp4.dequantize(codes, scales, gs, cols=128)

Every library error raises NVFP4Error, carrying the status name and the library's message.
"""

import ctypes
from typing import NamedTuple

import numpy as np

from . import _native

__all__ = [
    "NVFP4Error", "Quantized", "Rounder", "quantize", "dequantize", "round_weights",
    "e2m1_from_float", "e2m1_to_float", "e4m3_from_float", "e4m3_to_float", "e2m1_grid",
    "e2m1_from_array", "e2m1_to_array", "e4m3_from_array", "e4m3_to_array", "e2m1_pack",
    "e2m1_unpack", "e8m0_from_amax", "e8m0_to_float", "scales_swizzle", "scales_unswizzle",
    "codes_size", "scales_size", "has_backend", "has_rounder", "library_version", "library_path",
    "METHODS", "ROUNDER_METHODS",
]
__version__ = "0.1.0"

_lib, library_path = _native.load()

# Values of the C header macros (fixed once released).
_DTYPE = {"float32": 0, "float16": 1, "bfloat16": 2}
_BACKEND = {"cpu": 0, "cuda": 1, "auto": 2}
_CTX_THREADS, _CTX_COLLECT_STATS = 100, 101
METHODS = {"max": 0, "4over6": 1, "soar": 2, "soar_cjso": 3, "soar_dss": 4, "sweep": 5}
ROUNDER_METHODS = {"faar": 0, "gptq": 1}
_FORMAT = {"nvfp4": 0, "mxfp4": 1}
_LAYOUT = {"linear": 0, "128x4": 1}
_BLOCK = {0: 16, 1: 32}

# quantize() keyword parameters: name -> (key, kind, value names)
_QPARAMS = {
    "format": (100, "int", _FORMAT),
    "scale_layout": (101, "int", _LAYOUT),
    "nonfinite": (102, "int", {"strict": 0, "saturate": 1}),
    "recipe": (103, "int", {"exact": 0, "modelopt": 1}),
    "e8m0_mode": (104, "int", {"rceil": 0, "floor": 1}),
    "global_scale": (110, "float", None),
    "rule": (200, "int", {"mse": 0, "mae": 1, "absmax": 2}),
    "e4m3_max": (201, "int", None),
    "cjso_iterations": (300, "int", None),
    "dss_window_lo": (301, "float", None),
    "dss_window_hi": (302, "float", None),
    "cjso_tolerance": (303, "float", None),
    "sweep_radius": (400, "int", None),
}

# Rounder keyword parameters.
_RPARAMS = {
    "scale_method": (100, "int", METHODS),
    "seed": (101, "int", None),
    "progress_interval": (102, "int", None),
    "iterations": (200, "int", None),
    "learning_rate": (201, "float", None),
    "lam": (202, "float", None),
    "beta_start": (203, "float", None),
    "beta_end": (204, "float", None),
    "warmup": (205, "float", None),
    "adam_beta1": (206, "float", None),
    "adam_beta2": (207, "float", None),
    "adam_eps": (208, "float", None),
    "stage2": (210, "int", None),
    "stage2_radius": (211, "int", None),
    "stage2_global": (212, "int", None),
    "damping": (300, "float", None),
    "block_size": (301, "int", None),
    "act_order": (302, "int", None),
}
_R_RESULTS_FLOAT = {"loss_start": 900, "loss_stage1": 901, "loss_final": 902}
_R_RESULTS_INT = {"rows_fallback": 910, "rows_stage2": 911, "iterations_run": 912, "global_stage2": 913,
                  "samples": 920}

_UNSUPPORTED = 8


class NVFP4Error(Exception):
    """A libnvfp4 call failed.

    Attributes: status (int), status_name (e.g. "NVFP4_ERR_SHAPE"), message (the library's
    detail message, may be empty) and function (the C function that failed).
    """

    def __init__(self, status, function="", message=""):
        self.status = int(status)
        self.status_name = _lib.nvfp4_status_string(self.status).decode()
        self.function = function
        self.message = message or ""
        text = self.status_name
        if function:
            text += " in " + function
        if self.message:
            text += ": " + self.message
        super().__init__(text)


class Quantized(NamedTuple):
    """An NVFP4 (or MXFP4) tensor: packed codes [rows, ceil(cols/16)*8] uint8, scale bytes
    (E4M3 for NVFP4, E8M0 for MXFP4) and the float32 global decode scale."""

    codes: np.ndarray
    scales: np.ndarray
    global_scale: float


def _need(name):
    if not hasattr(_lib, name):
        raise NVFP4Error(_UNSUPPORTED, name, "this libnvfp4 (%s) has no %s" % (library_path, name))
    return getattr(_lib, name)


def _check(status, function, ctx=None, getmsg=None):
    if status != 0:
        msg = ""
        if getmsg is not None:
            msg = getmsg()
        elif ctx is not None:
            m = _lib.nvfp4_context_last_error_message(ctx)
            msg = m.decode(errors="replace") if m else ""
        raise NVFP4Error(status, function, msg)


class _Context:
    def __init__(self, threads=1, backend="cpu", stats=False):
        if backend not in _BACKEND:
            raise ValueError("backend must be one of %s" % sorted(_BACKEND))
        self.ptr = ctypes.c_void_p()
        _check(_lib.nvfp4_context_create(ctypes.byref(self.ptr), _BACKEND[backend]), "nvfp4_context_create")
        try:
            _check(_lib.nvfp4_context_set_int(self.ptr, _CTX_THREADS, int(threads)), "nvfp4_context_set_int", self.ptr)
            if stats:
                _check(_lib.nvfp4_context_set_int(self.ptr, _CTX_COLLECT_STATS, 1), "nvfp4_context_set_int", self.ptr)
        except Exception:
            _lib.nvfp4_context_destroy(self.ptr)
            raise

    def __enter__(self):
        return self.ptr

    def __exit__(self, *exc):
        _lib.nvfp4_context_destroy(self.ptr)
        self.ptr = None


def _dtype_code(dt):
    dt = np.dtype(dt)
    if dt == np.float32:
        return 0
    if dt == np.float16:
        return 1
    if dt.name == "bfloat16" and dt.itemsize == 2:
        return 2
    return None


def _as_source(x, name="x"):
    """A float32/float16/bfloat16 array as given, anything else real converted to float32."""
    x = np.asarray(x)
    if _dtype_code(x.dtype) is None:
        if x.dtype.kind not in "fiub":
            raise TypeError("%s: expected a real array, got dtype %s" % (name, x.dtype))
        x = x.astype(np.float32)
    return x


def _matrix(x, name="x"):
    x = _as_source(x, name)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        raise ValueError("%s: expected a 1-D or 2-D array, got shape %s" % (name, x.shape))
    item = x.itemsize
    rows, cols = x.shape
    # Rows may be strided (a leading dimension), elements within a row must be contiguous.
    if rows > 0 and cols > 0 and x.strides[1] == item and x.strides[0] > 0 and x.strides[0] % item == 0 \
            and x.strides[0] >= cols * item:
        ld = x.strides[0] // item
    else:
        x = np.ascontiguousarray(x)
        ld = max(cols, 1)
    return x, _dtype_code(x.dtype), rows, cols, ld


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a is not None else None


def _set_params(handle, params, table, set_int, set_float, what, getmsg=None):
    for k, v in params.items():
        if k not in table:
            raise TypeError("unknown %s parameter %r (known: %s)" % (what, k, ", ".join(sorted(table))))
        key, kind, names = table[k]
        if names is not None and isinstance(v, str):
            if v not in names:
                raise ValueError("%s=%r: expected one of %s" % (k, v, sorted(names)))
            v = names[v]
        if kind == "int":
            if isinstance(v, bool):
                v = int(v)
            _check(set_int(handle, key, int(v)), set_int.__name__, getmsg=getmsg)
        else:
            _check(set_float(handle, key, float(v)), set_float.__name__, getmsg=getmsg)


class _Quantizer:
    def __init__(self, method, params):
        if method not in METHODS:
            raise ValueError("method must be one of %s" % sorted(METHODS))
        params = dict(params)
        importance = params.pop("importance", None)
        self.ptr = ctypes.c_void_p()
        _check(_lib.nvfp4_quantizer_create(ctypes.byref(self.ptr), METHODS[method]), "nvfp4_quantizer_create")
        try:
            # The format comes first: other parameters are checked against it.
            if "format" in params:
                _set_params(self.ptr, {"format": params.pop("format")}, _QPARAMS, _lib.nvfp4_quantizer_set_int,
                            _lib.nvfp4_quantizer_set_float, "quantizer")
            _set_params(self.ptr, params, _QPARAMS, _lib.nvfp4_quantizer_set_int, _lib.nvfp4_quantizer_set_float,
                        "quantizer")
            if importance is not None:
                h = np.ascontiguousarray(np.asarray(importance, dtype=np.float32).ravel())
                _check(_lib.nvfp4_quantizer_set_importance(self.ptr, h.ctypes.data_as(_native.c_fp), h.size),
                       "nvfp4_quantizer_set_importance")
        except Exception:
            _lib.nvfp4_quantizer_destroy(self.ptr)
            raise

    def get_int(self, key):
        v = ctypes.c_int64()
        _check(_lib.nvfp4_quantizer_get_int(self.ptr, key, ctypes.byref(v)), "nvfp4_quantizer_get_int")
        return v.value

    def close(self):
        if self.ptr:
            _lib.nvfp4_quantizer_destroy(self.ptr)
            self.ptr = None


def codes_size(rows, cols, format="nvfp4"):
    """Bytes of packed codes for a [rows, cols] tensor."""
    out = ctypes.c_int64()
    _check(_lib.nvfp4_codes_size(_FORMAT[format], rows, cols, ctypes.byref(out)), "nvfp4_codes_size")
    return out.value


def scales_size(rows, cols, format="nvfp4", scale_layout="linear"):
    """Bytes of scales for a [rows, cols] tensor in a layout."""
    out = ctypes.c_int64()
    _check(_lib.nvfp4_scales_size(_FORMAT[format], _LAYOUT[scale_layout], rows, cols, ctypes.byref(out)),
           "nvfp4_scales_size")
    return out.value


def _scales_shape(rows, cols, fmt, layout):
    nb = -(-cols // _BLOCK[fmt])
    if layout == 1:
        return (-(-rows // 128) * 128, -(-nb // 4) * 4)
    return (rows, nb)


def quantize(x, method="max", threads=1, stats=False, **params):
    """Quantises a matrix [rows, cols] (float32, float16 or ml_dtypes.bfloat16; other real types
    are converted to float32; a 1-D array is one row).

    method: 'max', '4over6', 'soar', 'soar_cjso', 'soar_dss' or 'sweep'.
    params: format ('nvfp4'|'mxfp4'), scale_layout ('linear'|'128x4'), nonfinite
    ('strict'|'saturate'), recipe ('exact'|'modelopt'), e8m0_mode ('rceil'|'floor'),
    global_scale (float), rule ('mse'|'mae'|'absmax'), e4m3_max (256|448), cjso_iterations,
    cjso_tolerance, dss_window_lo, dss_window_hi, sweep_radius, importance (per-column weights).

    Returns Quantized(codes uint8 [rows, ceil(cols/16)*8], scales uint8 [rows, ceil(cols/16)]
    (128x4: [round_up(rows,128), round_up(nblocks,4)]), global_scale float); with stats=True a
    pair (Quantized, dict of the library's statistics for this call).

    The work runs on the CPU backend: numpy arrays live in host memory, and the CUDA backend
    takes device pointers.
    """
    x, dt, rows, cols, ld = _matrix(x)
    q = _Quantizer(method, params)
    try:
        fmt = q.get_int(100)
        layout = q.get_int(101)
        codes = np.zeros((rows, codes_size(rows, cols, "mxfp4" if fmt else "nvfp4") // rows), dtype=np.uint8)
        scales = np.zeros(_scales_shape(rows, cols, fmt, layout), dtype=np.uint8)
        gs = ctypes.c_float()
        with _Context(threads, "cpu", stats) as ctx:
            st = _lib.nvfp4_quantize(ctx, q.ptr, dt, _ptr(x), rows, cols, ld, _ptr(codes), _ptr(scales),
                                     ctypes.byref(gs))
            _check(st, "nvfp4_quantize", ctx)
            result = Quantized(codes, scales, float(gs.value))
            if not stats:
                return result
            s = _native.Stats()
            s.size = ctypes.sizeof(s)
            _check(_lib.nvfp4_context_get_stats(ctx, ctypes.byref(s)), "nvfp4_context_get_stats", ctx)
            d = {name: getattr(s, name) for name, _ in _native.Stats._fields_ if name not in ("size", "reserved0")}
            return result, d
    finally:
        q.close()


def _out_dtype(dtype):
    code = _dtype_code(dtype)
    if code is None:
        raise TypeError("dtype must be float32, float16 or ml_dtypes.bfloat16, got %s" % np.dtype(dtype))
    return np.dtype(dtype), code


def dequantize(codes, scales, global_scale, cols, dtype=np.float32, format="nvfp4", scale_layout="linear",
               threads=1):
    """Decodes an NVFP4 (or MXFP4) tensor to a [rows, cols] array of dtype (float32, float16 or
    bfloat16): x = value(code) * scale * global_scale (SPEC §2)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    scales = np.ascontiguousarray(scales, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError("codes: expected a 2-D array [rows, ceil(cols/16)*8]")
    rows = codes.shape[0]
    cols = int(cols)
    fmt, layout = _FORMAT[format], _LAYOUT[scale_layout]
    if rows > 0 and cols > 0:
        need_c = codes_size(rows, cols, format)
        need_s = scales_size(rows, cols, format, scale_layout)
        if codes.size != need_c:
            raise ValueError("codes: %d bytes, a [%d, %d] %s tensor has %d" % (codes.size, rows, cols, format, need_c))
        if scales.size != need_s:
            raise ValueError("scales: %d bytes, expected %d" % (scales.size, need_s))
    odt, code = _out_dtype(dtype)
    out = np.empty((rows, max(cols, 0)), dtype=odt)
    with _Context(threads, "cpu") as ctx:
        if fmt == 0 and layout == 0:
            st = _lib.nvfp4_dequantize(ctx, _ptr(codes), _ptr(scales), float(global_scale), rows, cols, code,
                                       _ptr(out), max(cols, 1))
            _check(st, "nvfp4_dequantize", ctx)
        else:
            f = _need("nvfp4_dequantize_v2")
            st = f(ctx, fmt, layout, _ptr(codes), _ptr(scales), float(global_scale), rows, cols, code, _ptr(out),
                   max(cols, 1))
            _check(st, "nvfp4_dequantize_v2", ctx)
    return out


# ---- scalar and array conversions -------------------------------------------------------------

def e2m1_from_float(x):
    """float -> E2M1 code (0..15): RNE on the code, saturating at ±6, NaN -> 7."""
    return int(_lib.nvfp4_e2m1_from_float(float(x)))


def e2m1_to_float(code):
    """E2M1 code (low nibble) -> float."""
    return float(_lib.nvfp4_e2m1_to_float(int(code) & 0xFF))


def e4m3_from_float(x):
    """float -> E4M3 byte: RNE with subnormals, satfinite at 448, NaN -> 0x7F."""
    return int(_lib.nvfp4_e4m3_from_float(float(x)))


def e4m3_to_float(b):
    """E4M3 byte -> float (0x7F and 0xFF are NaN)."""
    return float(_lib.nvfp4_e4m3_to_float(int(b) & 0xFF))


def e8m0_from_amax(amax, mode="rceil"):
    """The MXFP4 E8M0 scale byte of a block with this amax (mode 'rceil' or 'floor')."""
    out = ctypes.c_uint8()
    _check(_need("nvfp4_e8m0_from_amax")(float(amax), {"rceil": 0, "floor": 1}[mode], ctypes.byref(out)),
           "nvfp4_e8m0_from_amax")
    return int(out.value)


def e8m0_to_float(b):
    """E8M0 byte -> 2^(b-127) (0xFF is NaN)."""
    return float(_need("nvfp4_e8m0_to_float")(int(b) & 0xFF))


def e2m1_grid():
    """The 16 E2M1 values indexed by code, as float32."""
    p = _lib.nvfp4_e2m1_grid()
    return np.array([p[i] for i in range(16)], dtype=np.float32)


def _from_array(fn, name, x):
    x = _as_source(x)
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, dtype=np.uint8)
    _check(fn(_dtype_code(flat.dtype), _ptr(flat), flat.size, _ptr(out)), name)
    return out.reshape(x.shape)


def _to_array(fn, name, b, dtype):
    b = np.ascontiguousarray(b, dtype=np.uint8)
    odt, code = _out_dtype(dtype)
    flat = b.reshape(-1)
    out = np.empty(flat.shape, dtype=odt)
    _check(fn(_ptr(flat), flat.size, code, _ptr(out)), name)
    return out.reshape(b.shape)


def e2m1_from_array(x):
    """Array of floats (float32/float16/bfloat16, others via float32) -> E2M1 codes, one per byte."""
    return _from_array(_lib.nvfp4_e2m1_from_array, "nvfp4_e2m1_from_array", x)


def e4m3_from_array(x):
    """Array of floats -> E4M3 bytes."""
    return _from_array(_lib.nvfp4_e4m3_from_array, "nvfp4_e4m3_from_array", x)


def e2m1_to_array(codes, dtype=np.float32):
    """E2M1 codes (one per byte, low nibble) -> values."""
    return _to_array(_lib.nvfp4_e2m1_to_array, "nvfp4_e2m1_to_array", codes, dtype)


def e4m3_to_array(b, dtype=np.float32):
    """E4M3 bytes -> values (NaN for 0x7F/0xFF)."""
    return _to_array(_lib.nvfp4_e4m3_to_array, "nvfp4_e4m3_to_array", b, dtype)


def e2m1_pack(codes):
    """Packs codes two per byte (element 2j in bits 3..0, 2j+1 in bits 7..4) along the last axis."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = codes.shape[-1] if codes.ndim else 1
    lead = codes.shape[:-1] if codes.ndim else ()
    rows = codes.reshape(-1, n)
    out = np.empty((rows.shape[0], (n + 1) // 2), dtype=np.uint8)
    for i in range(rows.shape[0]):
        r = np.ascontiguousarray(rows[i])
        o = np.empty((n + 1) // 2, dtype=np.uint8)
        _check(_lib.nvfp4_e2m1_pack(_ptr(r), n, _ptr(o)), "nvfp4_e2m1_pack")
        out[i] = o
    return out.reshape(lead + ((n + 1) // 2,))


def e2m1_unpack(packed, n=None):
    """Unpacks codes (the inverse of e2m1_pack) along the last axis; n elements per row."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    m = packed.shape[-1]
    n = 2 * m if n is None else int(n)
    if n > 2 * m:
        raise ValueError("n=%d needs %d packed bytes per row, got %d" % (n, (n + 1) // 2, m))
    lead = packed.shape[:-1]
    rows = packed.reshape(-1, m)
    out = np.empty((rows.shape[0], n), dtype=np.uint8)
    for i in range(rows.shape[0]):
        r = np.ascontiguousarray(rows[i])
        o = np.empty(n, dtype=np.uint8)
        _check(_lib.nvfp4_e2m1_unpack(_ptr(r), n, _ptr(o)), "nvfp4_e2m1_unpack")
        out[i] = o
    return out.reshape(lead + (n,))


def scales_swizzle(scales):
    """Linear scales [rows, nblocks] -> the cuBLASLt/CUTLASS 128x4 layout (zero padded),
    returned as [round_up(rows,128), round_up(nblocks,4)] bytes."""
    s = np.ascontiguousarray(scales, dtype=np.uint8)
    rows, nb = s.shape
    out = np.empty((-(-rows // 128) * 128, -(-nb // 4) * 4), dtype=np.uint8)
    _check(_lib.nvfp4_scales_swizzle(_ptr(s), rows, nb, _ptr(out)), "nvfp4_scales_swizzle")
    return out


def scales_unswizzle(swizzled, rows, nblocks):
    """The inverse of scales_swizzle."""
    s = np.ascontiguousarray(swizzled, dtype=np.uint8)
    need = -(-rows // 128) * 128 * (-(-nblocks // 4) * 4)
    if s.size != need:
        raise ValueError("swizzled: %d bytes, expected %d" % (s.size, need))
    out = np.empty((rows, nblocks), dtype=np.uint8)
    _check(_lib.nvfp4_scales_unswizzle(_ptr(s), rows, nblocks, _ptr(out)), "nvfp4_scales_unswizzle")
    return out


def has_backend(name):
    """Whether the library can use a backend ('cpu' or 'cuda') on this machine."""
    return bool(_lib.nvfp4_has_backend(_BACKEND[name]))


def library_version():
    """The loaded library's version string."""
    return _lib.nvfp4_version_string().decode()


def has_rounder():
    """Whether the loaded library has the adaptive-rounding optimizer (FAAR, GPTQ)."""
    return hasattr(_lib, "nvfp4_rounder_create")


# ---- the rounder --------------------------------------------------------------------------------

class Rounder:
    """Adaptive rounding (FAAR or GPTQ) of one layer W [out_features, in_features] under the
    calibration Gram matrix H = XᵀX/n: minimises tr((Ŵ−W) H (Ŵ−W)ᵀ)/out_features.

        r = Rounder(out_features, in_features, method="faar", iterations=500)
        r.set_gram(H)            # or r.add_samples(X) any number of times
        q = r.run(W)             # Quantized(codes, scales, global_scale)
        r.results()              # loss_start, loss_stage1, loss_final, ...

    Parameters (keywords): scale_method ('max', '4over6', ...), seed, progress_interval,
    iterations, learning_rate, lam, beta_start, beta_end, warmup, adam_beta1, adam_beta2,
    adam_eps, stage2, stage2_radius, stage2_global, damping, block_size, act_order.
    """

    def __init__(self, out_features, in_features, method="faar", threads=1, **params):
        if method not in ROUNDER_METHODS:
            raise ValueError("method must be one of %s" % sorted(ROUNDER_METHODS))
        create = _need("nvfp4_rounder_create")
        self.out_features, self.in_features = int(out_features), int(in_features)
        self.threads = threads
        self.ptr = ctypes.c_void_p()
        _check(create(ctypes.byref(self.ptr), ROUNDER_METHODS[method], self.out_features, self.in_features),
               "nvfp4_rounder_create")
        self._callback = None
        try:
            self.set(**params)
        except Exception:
            self.close()
            raise

    def _msg(self):
        m = _lib.nvfp4_rounder_last_error_message(self.ptr)
        return m.decode(errors="replace") if m else ""

    def set(self, **params):
        """Sets parameters by name (see the class docstring)."""
        _set_params(self.ptr, params, _RPARAMS, _lib.nvfp4_rounder_set_int, _lib.nvfp4_rounder_set_float, "rounder",
                    getmsg=self._msg)

    def set_scale_method(self, method="max", **params):
        """Starts from a scale method with parameters (as quantize() takes them)."""
        q = _Quantizer(method, params)
        try:
            _check(_lib.nvfp4_rounder_set_quantizer(self.ptr, q.ptr), "nvfp4_rounder_set_quantizer", getmsg=self._msg)
        finally:
            q.close()

    def set_progress(self, fn):
        """fn(iteration, loss) is called during run(); returning True cancels it. None removes."""
        if fn is None:
            self._callback = None
            _check(_lib.nvfp4_rounder_set_progress(self.ptr, ctypes.cast(None, _native.PROGRESS_FN), None),
                   "nvfp4_rounder_set_progress")
            return

        def tramp(it, loss, user):
            try:
                return 1 if fn(int(it), float(loss)) else 0
            except Exception:
                return 1

        self._callback = _native.PROGRESS_FN(tramp)
        _check(_lib.nvfp4_rounder_set_progress(self.ptr, self._callback, None), "nvfp4_rounder_set_progress")

    def set_gram(self, H):
        """Sets the Gram matrix H [in_features, in_features] (symmetric, float32)."""
        H = np.ascontiguousarray(H, dtype=np.float32)
        if H.ndim != 2 or H.shape[0] != H.shape[1]:
            raise ValueError("H: expected a square matrix, got shape %s" % (H.shape,))
        _check(_lib.nvfp4_rounder_set_gram(self.ptr, H.ctypes.data_as(_native.c_fp), H.shape[0], H.shape[1]),
               "nvfp4_rounder_set_gram", getmsg=self._msg)

    def add_samples(self, X):
        """Accumulates calibration inputs X [n, in_features]."""
        X, dt, n, cols, ld = _matrix(X, "X")
        with _Context(self.threads) as ctx:
            _check(_lib.nvfp4_rounder_add_samples(self.ptr, ctx, dt, _ptr(X), n, ld), "nvfp4_rounder_add_samples",
                   getmsg=self._msg)

    def clear_calibration(self):
        _check(_lib.nvfp4_rounder_clear_calibration(self.ptr), "nvfp4_rounder_clear_calibration")

    def run(self, W):
        """Rounds W [out_features, in_features]; returns Quantized."""
        W, dt, rows, cols, ld = _matrix(W, "W")
        if (rows, cols) != (self.out_features, self.in_features):
            raise ValueError("W: shape %s, the rounder was made for %s" % ((rows, cols),
                                                                         (self.out_features, self.in_features)))
        codes = np.zeros((rows, codes_size(rows, cols) // rows), dtype=np.uint8)
        scales = np.zeros((rows, -(-cols // 16)), dtype=np.uint8)
        gs = ctypes.c_float()
        with _Context(self.threads) as ctx:
            _check(_lib.nvfp4_rounder_run(self.ptr, ctx, dt, _ptr(W), ld, _ptr(codes), _ptr(scales), ctypes.byref(gs)),
                   "nvfp4_rounder_run", getmsg=self._msg)
        return Quantized(codes, scales, float(gs.value))

    def results(self):
        """The figures of the last successful run (losses, fallback rows, ...)."""
        out = {}
        for k, key in _R_RESULTS_FLOAT.items():
            v = ctypes.c_double()
            _check(_lib.nvfp4_rounder_get_float(self.ptr, key, ctypes.byref(v)), "nvfp4_rounder_get_float",
                   getmsg=self._msg)
            out[k] = v.value
        for k, key in _R_RESULTS_INT.items():
            v = ctypes.c_int64()
            _check(_lib.nvfp4_rounder_get_int(self.ptr, key, ctypes.byref(v)), "nvfp4_rounder_get_int",
                   getmsg=self._msg)
            out[k] = v.value
        return out

    def get(self, name):
        """Reads one parameter by name."""
        key, kind, _ = _RPARAMS[name]
        if kind == "int":
            v = ctypes.c_int64()
            _check(_lib.nvfp4_rounder_get_int(self.ptr, key, ctypes.byref(v)), "nvfp4_rounder_get_int")
        else:
            v = ctypes.c_double()
            _check(_lib.nvfp4_rounder_get_float(self.ptr, key, ctypes.byref(v)), "nvfp4_rounder_get_float")
        return v.value

    def close(self):
        if getattr(self, "ptr", None):
            _lib.nvfp4_rounder_destroy(self.ptr)
            self.ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def round_weights(W, H=None, X=None, method="faar", threads=1, **params):
    """One-call adaptive rounding: W [out, in] with a Gram matrix H [in, in] or samples X [n, in].
    Returns (Quantized, results dict)."""
    W = np.asarray(W)
    if (H is None) == (X is None):
        raise ValueError("give exactly one of H (Gram matrix) or X (calibration samples)")
    rows, cols = (1, W.shape[0]) if W.ndim == 1 else W.shape
    with Rounder(rows, cols, method=method, threads=threads, **params) as r:
        if H is not None:
            r.set_gram(H)
        else:
            r.add_samples(X)
        q = r.run(W)
        return q, r.results()
