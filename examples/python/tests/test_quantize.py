"""quantize()/dequantize() against an independent numpy formulation of SPEC §2 and §3.1.

The reference below uses numpy float32 arithmetic (each operation rounds to nearest float32, as
RN32 in the SPEC) and ml_dtypes for the E2M1/E4M3 roundings, so it shares no code with the
library.
"""
import ml_dtypes
import numpy as np
import pytest

import nvfp4

F32 = np.float32
E2M1_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def e4m3(v):
    """float32 -> E4M3 byte, satfinite (ml_dtypes overflows to NaN above 464, SPEC saturates)."""
    v = np.minimum(v.astype(np.float32), F32(448.0))
    return v.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)


def f_e4m3(b):
    return b.view(ml_dtypes.float8_e4m3fn).astype(np.float32)


def e2m1(v):
    """float32 -> E2M1 code (RNE on the code, saturating; inputs here are finite)."""
    v = np.clip(v, F32(-6.0), F32(6.0))
    return v.astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 0xF


def ref_max(x):
    """SPEC §3.1 (TransformerEngine's exact association), numpy float32 throughout."""
    x = x.astype(np.float32)
    rows, cols = x.shape
    nb = -(-cols // 16)
    xp = np.zeros((rows, nb * 16), np.float32)
    xp[:, :cols] = x
    A = np.max(np.abs(x))
    if A == 0:
        s_enc, s_dec = F32(1), F32(1)
    else:
        s_enc = F32(F32(6 * 448) / A)
        s_dec = F32(F32(1) / s_enc)
    pre = F32(s_enc * F32(F32(1) / F32(6)))
    blocks = xp.reshape(rows, nb, 16)
    a = np.max(np.abs(blocks), axis=2)
    S = e4m3(a * pre)
    fS = f_e4m3(S)
    with np.errstate(divide="ignore"):
        inv = np.where((a == 0) | (fS == 0), F32(0), np.minimum(F32(1) / (fS * s_dec), np.finfo(np.float32).max))
    inv = inv.astype(np.float32)
    codes = e2m1(blocks * inv[:, :, None]).reshape(rows, nb * 16)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    return packed, S, s_dec


def ref_dequantize(packed, scales, s_dec, cols):
    """SPEC §2: x = RN32(RN32(value(code) * f(S)) * s_dec)."""
    lo, hi = packed & 0xF, packed >> 4
    codes = np.empty((packed.shape[0], packed.shape[1] * 2), np.uint8)
    codes[:, 0::2], codes[:, 1::2] = lo, hi
    v = E2M1_VALUES[codes]
    fS = np.repeat(f_e4m3(scales), 16, axis=1)
    return ((v * fS).astype(np.float32) * F32(s_dec)).astype(np.float32)[:, :cols]


def heavy_tailed(rows, cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(rows, cols)) * np.exp(0.5 * rng.standard_normal((rows, 1)))
    x[:, rng.integers(0, cols, 2)] *= 20  # outlier columns
    return x.astype(np.float32)


@pytest.mark.parametrize("shape,seed", [((64, 256), 1), ((7, 50), 2), ((33, 16), 3), ((1, 1000), 4)])
def test_max_matches_numpy_reference(shape, seed):
    x = heavy_tailed(*shape, seed)
    x[0, :16] = 0.0  # an all-zero block
    q = nvfp4.quantize(x, method="max")
    codes, S, s_dec = ref_max(x)
    assert q.global_scale == s_dec
    np.testing.assert_array_equal(q.scales, S)
    np.testing.assert_array_equal(q.codes, codes)


def test_dequantize_matches_numpy_reference():
    x = heavy_tailed(40, 96, 9)
    q = nvfp4.quantize(x)
    ref = ref_dequantize(q.codes, q.scales, q.global_scale, 96)
    got = nvfp4.dequantize(q.codes, q.scales, q.global_scale, cols=96)
    assert got.dtype == np.float32 and got.shape == (40, 96)
    np.testing.assert_array_equal(got, ref)
    for dt in (np.float16, ml_dtypes.bfloat16):
        np.testing.assert_array_equal(nvfp4.dequantize(*q, cols=96, dtype=dt), ref.astype(dt))


def test_padding_columns_decode_to_nothing():
    x = heavy_tailed(5, 21, 11)
    q = nvfp4.quantize(x)
    assert q.codes.shape == (5, 16) and q.scales.shape == (5, 2)
    lo = q.codes[:, 10] >> 4  # element 21 is padding: code 0
    assert (lo == 0).all() and (q.codes[:, 11:] == 0).all()
    assert nvfp4.dequantize(*q, cols=21).shape == (5, 21)


def test_half_bfloat16_and_strided_inputs_match_float32():
    x32 = heavy_tailed(16, 64, 12)
    for dt in (np.float16, ml_dtypes.bfloat16):
        xd = x32.astype(dt)
        a, b = nvfp4.quantize(xd), nvfp4.quantize(xd.astype(np.float32))
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.scales, b.scales)
        assert a.global_scale == b.global_scale
    big = heavy_tailed(16, 100, 13)
    view = big[:, 10:74]  # leading dimension 100
    a, b = nvfp4.quantize(view), nvfp4.quantize(np.ascontiguousarray(view))
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.scales, b.scales)
    c = nvfp4.quantize(np.asfortranarray(view))  # non-contiguous rows are copied
    np.testing.assert_array_equal(c.codes, b.codes)


def test_error_and_stats_agree_with_numpy():
    x = heavy_tailed(32, 128, 14)
    q, st = nvfp4.quantize(x, stats=True)
    xh = nvfp4.dequantize(*q, cols=128).astype(np.float64)
    sse = np.sum((xh - x) ** 2)
    assert st["sse"] == pytest.approx(sse, rel=1e-9)
    assert st["sum_sq"] == pytest.approx(np.sum(x.astype(np.float64) ** 2), rel=1e-9)
    assert st["blocks"] == 32 * 8
    assert 0 < sse / st["sum_sq"] < 0.03


def available_methods():
    out = []
    for m in nvfp4.METHODS:
        try:
            nvfp4.quantize(np.ones((1, 16), np.float32), method=m)
            out.append(m)
        except nvfp4.NVFP4Error as e:
            assert e.status_name == "NVFP4_ERR_UNKNOWN_KEY"  # not in this build yet
    return out


@pytest.mark.parametrize("method", available_methods())
def test_every_method_returns_a_valid_tensor(method):
    x = heavy_tailed(48, 160, 15)
    q, st = nvfp4.quantize(x, method=method, stats=True)
    assert q.codes.shape == (48, 80) and q.scales.shape == (48, 10)
    assert (q.scales < 0x7F).all()
    assert np.isfinite(q.global_scale) and q.global_scale > 0
    xh = nvfp4.dequantize(*q, cols=160)
    assert np.isfinite(xh).all()
    rel = np.sum((xh.astype(np.float64) - x) ** 2) / np.sum(x.astype(np.float64) ** 2)
    assert rel == pytest.approx(st["sse"] / st["sum_sq"], rel=1e-6)
    assert rel < 0.03


@pytest.mark.parametrize("method", [m for m in available_methods() if m in ("soar", "soar_cjso", "soar_dss", "sweep")])
def test_searching_methods_are_never_worse_than_max(method):
    # CJSO, DSS and the sweep start from MAX and keep the best candidate (SPEC §3.3-3.5).
    x = heavy_tailed(32, 256, 16)
    _, smax = nvfp4.quantize(x, method="max", stats=True)
    _, s = nvfp4.quantize(x, method=method, stats=True)
    assert s["sse"] <= smax["sse"] * (1 + 1e-12)


def test_modelopt_recipe_per_block_arithmetic():
    # ModelOpt export (SPEC §3.1): S = a/(6*s_dec), S := 1 where 0, byte = E4M3(S),
    # code = E2M1(x / (f(S)*s_dec)), -0.0 -> 0x0. The global scale is the library's.
    x = heavy_tailed(24, 64, 17)
    x[1, 16:32] = 0.0
    x[2, 3] = -0.0
    q = nvfp4.quantize(x, method="max", recipe="modelopt")
    s_dec = F32(q.global_scale)
    assert s_dec == np.max(np.abs(x)) / F32(2688)  # ModelOpt: weight_scale_2 = amax / (6 * 448)
    blocks = x.reshape(24, 4, 16)
    a = np.max(np.abs(blocks), axis=2)
    S = (a / F32(F32(6) * s_dec)).astype(np.float32)
    S[S == 0] = 1.0
    Sb = e4m3(S)
    y = (blocks / (f_e4m3(Sb) * s_dec)[:, :, None]).astype(np.float32)
    codes = e2m1(np.abs(y)) | np.where(y < 0, 8, 0).astype(np.uint8)
    codes = codes.reshape(24, 64)
    np.testing.assert_array_equal(q.scales, Sb)
    assert q.scales[1, 1] == 0x38  # an all-zero block stores 1.0
    np.testing.assert_array_equal(q.codes, (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8))


def test_scale_layout_128x4_is_the_swizzle_of_linear():
    x = heavy_tailed(130, 96, 18)
    lin = nvfp4.quantize(x)
    sw = nvfp4.quantize(x, scale_layout="128x4")
    assert sw.scales.shape == (256, 8)
    np.testing.assert_array_equal(sw.codes, lin.codes)
    np.testing.assert_array_equal(sw.scales, nvfp4.scales_swizzle(lin.scales))
    np.testing.assert_array_equal(nvfp4.scales_unswizzle(sw.scales, 130, 6), lin.scales)
    np.testing.assert_array_equal(nvfp4.dequantize(*sw, cols=96, scale_layout="128x4"),
                                  nvfp4.dequantize(*lin, cols=96))


def test_mxfp4_round_trip():
    x = heavy_tailed(8, 64, 19)
    q = nvfp4.quantize(x, format="mxfp4")
    assert q.global_scale == 1.0 and q.scales.shape == (8, 2)
    xh = nvfp4.dequantize(*q, cols=64, format="mxfp4")
    # E8M0 scales are powers of two: every decoded value is grid value * 2^k
    assert np.isfinite(xh).all()
    rel = np.sum((xh - x) ** 2) / np.sum(x ** 2)
    assert rel < 0.05


def test_caller_global_scale_is_used():
    x = heavy_tailed(8, 32, 20)
    q = nvfp4.quantize(x, global_scale=0.01)
    assert q.global_scale == F32(0.01)


def test_errors_carry_status_name_and_message():
    x = heavy_tailed(4, 32, 21)
    x[1, 2] = np.nan
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.quantize(x)
    assert e.value.status_name == "NVFP4_ERR_NONFINITE"
    assert e.value.function == "nvfp4_quantize"
    assert e.value.message  # the context's last error message
    assert "NVFP4_ERR_NONFINITE" in str(e.value)
    # saturate policy accepts it
    q = nvfp4.quantize(x, nonfinite="saturate")
    assert q.codes.shape == (4, 16)
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.quantize(x[:, :16] * 0 + 1, cjso_iterations=0)
    assert e.value.status_name in ("NVFP4_ERR_INVALID_VALUE", "NVFP4_ERR_UNKNOWN_KEY")
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.quantize(np.zeros((0, 16), np.float32))
    assert e.value.status_name == "NVFP4_ERR_SHAPE"
    with pytest.raises(TypeError):
        nvfp4.quantize(x, no_such_parameter=1)
    with pytest.raises(ValueError):
        nvfp4.quantize(x, method="nope")
    with pytest.raises(ValueError):
        nvfp4.quantize(np.zeros((2, 2, 16), np.float32))


def test_dequantize_rejects_bad_scales_and_sizes():
    x = heavy_tailed(4, 32, 22)
    q = nvfp4.quantize(x)
    bad = q.scales.copy()
    bad[0, 0] = 0x7F
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.dequantize(q.codes, bad, q.global_scale, cols=32)
    assert e.value.status_name == "NVFP4_ERR_INVALID_SCALE"
    with pytest.raises(ValueError):
        nvfp4.dequantize(q.codes, q.scales, q.global_scale, cols=48)
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.dequantize(q.codes, q.scales, float("nan"), cols=32)
    assert e.value.status_name == "NVFP4_ERR_INVALID_SCALE"


def test_threads_do_not_change_results():
    x = heavy_tailed(64, 512, 23)
    a, b = nvfp4.quantize(x, threads=1), nvfp4.quantize(x, threads=3)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.scales, b.scales)


def test_backend_query():
    assert nvfp4.has_backend("cpu")
    assert isinstance(nvfp4.has_backend("cuda"), bool)
    with pytest.raises(TypeError):
        nvfp4.quantize(np.ones((1, 16), np.float32), backend="cuda")  # host arrays only
