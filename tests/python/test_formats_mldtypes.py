#!/usr/bin/env python3
"""Compare libnvfp4's E2M1 / E4M3 conversions with ml_dtypes over every bf16 and f16 input.

Loads the shared library named by $NVFP4_LIBRARY through ctypes. Exits 77 (meson's "skipped")
when numpy or ml_dtypes is missing or the library is not given.

Where SPEC.md §1 and ml_dtypes agree the results must be identical. The documented differences
are asserted explicitly instead of being skipped silently:
- float8_e4m3fn casts in ml_dtypes do not saturate: finite |x| > 464 and ±Inf become NaN there,
  while SPEC's satfinite conversion gives ±448 (0x7E / 0xFE). (|x| in (448, 464] rounds to 448 in
  both: 464 is the tie between 448 and the NaN encoding, and ties go to the even code 0x7E.)
- NaN: SPEC gives 0x7F for E4M3 whatever the sign (ml_dtypes keeps the sign: 0xFF for -NaN), and
  0x7 (+6) for E2M1 (float4_e2m1fn has no NaN; ml_dtypes maps NaN to a zero code).
"""
import ctypes
import os
import sys


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


try:
    import numpy as np
    import ml_dtypes
except ImportError as e:  # pragma: no cover - depends on the environment
    skip("numpy and ml_dtypes are needed (%s)" % e)

LIB = os.environ.get("NVFP4_LIBRARY")
if not LIB or not os.path.exists(LIB):
    skip("NVFP4_LIBRARY does not name the built shared library")

F4 = ml_dtypes.float4_e2m1fn
F8 = ml_dtypes.float8_e4m3fn
BF16 = ml_dtypes.bfloat16
DTYPE_F32, DTYPE_F16, DTYPE_BF16 = 0, 1, 2

lib = ctypes.CDLL(LIB)
for name in ("nvfp4_e2m1_from_array", "nvfp4_e4m3_from_array"):
    f = getattr(lib, name)
    f.restype = ctypes.c_int32
    f.argtypes = [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
for name in ("nvfp4_e2m1_to_array", "nvfp4_e4m3_to_array"):
    f = getattr(lib, name)
    f.restype = ctypes.c_int32
    f.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
for name in ("nvfp4_e2m1_to_float", "nvfp4_e4m3_to_float"):
    f = getattr(lib, name)
    f.restype = ctypes.c_float
    f.argtypes = [ctypes.c_uint8]
lib.nvfp4_bf16_to_float.restype = ctypes.c_float
lib.nvfp4_bf16_to_float.argtypes = [ctypes.c_uint16]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def lib_from(fn, dtype, bits):
    out = np.zeros(bits.size, dtype=np.uint8)
    st = fn(dtype, ptr(bits), bits.size, ptr(out))
    check(st == 0, "%s returned status %d" % (fn.__name__, st))
    return out


def compare_inputs(label, dtype, bits, values):
    """values: the inputs as float32 (exact widening of the 16-bit patterns)."""
    nan = np.isnan(values)
    neg = np.signbit(values)
    # E2M1
    got = lib_from(lib.nvfp4_e2m1_from_array, dtype, bits)
    got32 = lib_from(lib.nvfp4_e2m1_from_array, DTYPE_F32, values)
    check(np.array_equal(got, got32), "%s: e2m1 from %s and from f32 differ" % (label, label))
    with np.errstate(all="ignore"):
        ml = values.astype(F4).view(np.uint8) & 0xF
    agree = ~nan
    diff = np.nonzero((got != ml) & agree)[0]
    check(diff.size == 0, "%s e2m1: %d inputs differ from ml_dtypes, first %s" % (
        label, diff.size, [(hex(int(bits[i])), float(values[i]), int(got[i]), int(ml[i])) for i in diff[:5]]))
    check(bool(np.all(got[nan] == 0x7)), "%s e2m1: NaN must give 0x7 (SPEC §1)" % label)
    ml_nan = sorted(set(int(v) for v in ml[nan]))
    print("%s e2m1: %d inputs agree with ml_dtypes; %d NaN inputs give 0x7 here, ml_dtypes gives %s"
          % (label, int(agree.sum()), int(nan.sum()), [hex(v) for v in ml_nan]))

    # E4M3
    got = lib_from(lib.nvfp4_e4m3_from_array, dtype, bits)
    got32 = lib_from(lib.nvfp4_e4m3_from_array, DTYPE_F32, values)
    check(np.array_equal(got, got32), "%s: e4m3 from %s and from f32 differ" % (label, label))
    with np.errstate(all="ignore"):
        ml = values.astype(F8).view(np.uint8)
        mag = np.abs(values.astype(np.float64))
    over = ~nan & (mag > 464.0)  # includes ±Inf
    agree = ~nan & ~over
    diff = np.nonzero((got != ml) & agree)[0]
    check(diff.size == 0, "%s e4m3: %d inputs differ from ml_dtypes, first %s" % (
        label, diff.size, [(hex(int(bits[i])), float(values[i]), hex(int(got[i])), hex(int(ml[i]))) for i in diff[:5]]))
    sat = np.where(neg, 0xFE, 0x7E).astype(np.uint8)
    check(bool(np.all(got[over] == sat[over])), "%s e4m3: |x| > 464 must saturate to ±448 (SPEC satfinite)" % label)
    check(bool(np.all((ml[over] & 0x7F) == 0x7F)),
          "%s e4m3: ml_dtypes was expected to give NaN above 464 (non-saturating cast)" % label)
    check(bool(np.all(got[nan] == 0x7F)), "%s e4m3: NaN must give 0x7F whatever its sign" % label)
    check(bool(np.all((ml[nan] & 0x7F) == 0x7F)), "%s e4m3: ml_dtypes NaN is not NaN" % label)
    between = ~nan & (mag > 448.0) & (mag <= 464.0)
    check(bool(np.all(got[between] == sat[between])) and bool(np.all(ml[between] == sat[between])),
          "%s e4m3: (448, 464] must round to 448 in both" % label)
    print("%s e4m3: %d inputs agree with ml_dtypes (%d of them in (448, 464]); %d above 464: 448 here, NaN "
          "in ml_dtypes; %d NaN inputs" % (label, int(agree.sum()), int(between.sum()), int(over.sum()),
                                            int(nan.sum())))


def main():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)

    # every bf16 input
    values = bits.view(BF16).astype(np.float32)
    lib_values = np.array([lib.nvfp4_bf16_to_float(int(b)) for b in bits[::257]], dtype=np.float32)
    check(np.array_equal(lib_values.view(np.uint32), values[::257].view(np.uint32)),
          "nvfp4_bf16_to_float differs from ml_dtypes bfloat16")
    compare_inputs("bf16", DTYPE_BF16, bits, values)

    # every f16 input
    compare_inputs("f16", DTYPE_F16, bits, bits.view(np.float16).astype(np.float32))

    # decoding: every E2M1 code and every E4M3 byte
    codes = np.arange(16, dtype=np.uint8)
    ml = codes.view(F4).astype(np.float32)
    one = np.array([lib.nvfp4_e2m1_to_float(int(c)) for c in codes], dtype=np.float32)
    arr = np.zeros(16, dtype=np.float32)
    check(lib.nvfp4_e2m1_to_array(ptr(codes), 16, DTYPE_F32, ptr(arr)) == 0, "e2m1_to_array status")
    check(np.array_equal(one.view(np.uint32), ml.view(np.uint32)), "e2m1_to_float differs from ml_dtypes (-0 included)")
    check(np.array_equal(arr.view(np.uint32), ml.view(np.uint32)), "e2m1_to_array differs from ml_dtypes")

    b = np.arange(256, dtype=np.uint32).astype(np.uint8)
    ml = b.view(F8).astype(np.float32)
    one = np.array([lib.nvfp4_e4m3_to_float(int(v)) for v in b], dtype=np.float32)
    arr = np.zeros(256, dtype=np.float32)
    check(lib.nvfp4_e4m3_to_array(ptr(b), 256, DTYPE_F32, ptr(arr)) == 0, "e4m3_to_array status")
    nan = np.isnan(ml)
    check(sorted(np.nonzero(nan)[0].tolist()) == [0x7F, 0xFF], "ml_dtypes E4M3 NaN bytes are 0x7F/0xFF")
    for name, got in (("e4m3_to_float", one), ("e4m3_to_array", arr)):
        check(bool(np.all(np.isnan(got[nan]))), name + ": 0x7F/0xFF must decode to NaN")
        check(np.array_equal(got[~nan].view(np.uint32), ml[~nan].view(np.uint32)), name + " differs from ml_dtypes")
    # bf16 / f16 outputs of the decoders equal ml_dtypes' own narrowing of the exact values
    for dt, npt in ((DTYPE_BF16, BF16), (DTYPE_F16, np.float16)):
        out = np.zeros(256, dtype=np.uint16)
        check(lib.nvfp4_e4m3_to_array(ptr(b), 256, dt, ptr(out)) == 0, "e4m3_to_array status")
        want = ml.astype(npt).view(np.uint16)
        check(np.array_equal(out[~nan], want[~nan]), "e4m3_to_array dtype %d differs" % dt)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
