"""Scalar and array conversions against ml_dtypes (float4_e2m1fn, float8_e4m3fn) and SPEC §1."""
import ml_dtypes
import numpy as np
import pytest

import nvfp4

E2M1 = ml_dtypes.float4_e2m1fn
E4M3 = ml_dtypes.float8_e4m3fn


def all_bf16_as_f32():
    """Every bfloat16 bit pattern widened to float32 (exact): covers every exponent."""
    return (np.arange(65536, dtype=np.uint32) << 16).view(np.float32)


def dense_f32(n=400_000, seed=1):
    """Random float32 around the E2M1/E4M3 ranges plus the exact rounding thresholds."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-12, 10, n))).astype(np.float32)
    grid = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float32)
    mids = (grid[1:] + grid[:-1]) / 2
    edge = np.concatenate([grid, mids, np.nextafter(mids, 0), np.nextafter(mids, 10), [0.25, 0.2500001, 0.2499999]])
    return np.concatenate([x, edge, -edge]).astype(np.float32)


def ml_e2m1_codes(x):
    return x.astype(E2M1).view(np.uint8) & 0xF


def ml_e4m3_bytes(x):
    return x.astype(E4M3).view(np.uint8)


@pytest.mark.parametrize("x", [all_bf16_as_f32(), dense_f32()], ids=["all-bf16", "random"])
def test_e2m1_from_array_matches_ml_dtypes(x):
    finite = np.isfinite(x)
    got = nvfp4.e2m1_from_array(x)
    assert got.dtype == np.uint8 and got.shape == x.shape
    np.testing.assert_array_equal(got[finite], ml_e2m1_codes(x[finite]))


def test_e2m1_nonfinite_follow_spec():
    # SPEC §1: ±Inf saturate to ±6, NaN -> 0x7 (ml_dtypes gives NaN -> 0x8, so not compared there).
    x = np.array([np.inf, -np.inf, np.nan, -np.nan], np.float32)
    assert list(nvfp4.e2m1_from_array(x)) == [0x7, 0xF, 0x7, 0x7]


def test_e2m1_sign_of_zero_and_tiny_negatives():
    x = np.array([0.0, -0.0, -1e-30, 1e-30, -0.25, 0.25], np.float32)
    assert list(nvfp4.e2m1_from_array(x)) == [0x0, 0x8, 0x8, 0x0, 0x8, 0x0]


def test_e2m1_half_and_bfloat16_inputs_agree_with_their_float32_value():
    for dt in (np.float16, ml_dtypes.bfloat16):
        x = np.arange(65536, dtype=np.uint16).view(dt)
        wide = x.astype(np.float32)
        finite = np.isfinite(wide)
        got = nvfp4.e2m1_from_array(x)
        np.testing.assert_array_equal(got[finite], ml_e2m1_codes(wide[finite]))
        np.testing.assert_array_equal(got, nvfp4.e2m1_from_array(wide))


def test_e2m1_scalar_matches_array_and_grid():
    x = dense_f32(2000, seed=7)
    arr = nvfp4.e2m1_from_array(x)
    assert [nvfp4.e2m1_from_float(v) for v in x] == list(arr)
    codes = np.arange(16, dtype=np.uint8)
    ref = codes.view(E2M1).astype(np.float32)
    np.testing.assert_array_equal(nvfp4.e2m1_to_array(codes), ref)
    np.testing.assert_array_equal(nvfp4.e2m1_grid(), ref)
    assert np.signbit(nvfp4.e2m1_grid()[8])
    assert [nvfp4.e2m1_to_float(c) for c in range(16)] == list(ref)
    # The high nibble is ignored by the decoder.
    np.testing.assert_array_equal(nvfp4.e2m1_to_array(codes | 0xA0), ref)
    for dt in (np.float16, ml_dtypes.bfloat16):
        np.testing.assert_array_equal(nvfp4.e2m1_to_array(codes, dtype=dt), ref.astype(dt))


@pytest.mark.parametrize("x", [all_bf16_as_f32(), dense_f32(seed=3)], ids=["all-bf16", "random"])
def test_e4m3_from_array_matches_ml_dtypes_in_range(x):
    got = nvfp4.e4m3_from_array(x)
    # ml_dtypes does not saturate: compare where its result is finite (|x| <= 464).
    inrange = np.isfinite(x) & (np.abs(x) <= 464)
    np.testing.assert_array_equal(got[inrange], ml_e4m3_bytes(x[inrange]))
    big = np.isfinite(x) & (np.abs(x) > 464)
    assert big.any()
    np.testing.assert_array_equal(got[big], np.where(np.signbit(x[big]), 0xFE, 0x7E))


def test_e4m3_satfinite_and_nan():
    x = np.array([448, 464, 465, 1e30, np.inf, -np.inf, np.nan, -500], np.float32)
    assert list(nvfp4.e4m3_from_array(x)) == [0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0xFE, 0x7F, 0xFE]
    assert nvfp4.e4m3_from_float(float("nan")) == 0x7F
    # smallest subnormal 2^-9; half of it is a tie that rounds to even (0)
    assert nvfp4.e4m3_from_float(2.0 ** -9) == 0x01
    assert nvfp4.e4m3_from_float(2.0 ** -10) == 0x00
    assert nvfp4.e4m3_from_float(1.5 * 2.0 ** -10) == 0x01


def test_e4m3_decode_all_bytes():
    b = np.arange(256, dtype=np.uint8)
    ref = b.view(E4M3).astype(np.float32)
    got = nvfp4.e4m3_to_array(b)
    nan = np.isnan(ref)
    assert list(np.nonzero(nan)[0]) == [0x7F, 0xFF]
    assert np.isnan(got[nan]).all()
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    for i in range(256):
        v = nvfp4.e4m3_to_float(i)
        assert (np.isnan(v) and nan[i]) or v == ref[i]


def test_half_and_bfloat16_e4m3_inputs():
    for dt in (np.float16, ml_dtypes.bfloat16):
        x = np.arange(65536, dtype=np.uint16).view(dt)
        np.testing.assert_array_equal(nvfp4.e4m3_from_array(x), nvfp4.e4m3_from_array(x.astype(np.float32)))


def test_pack_unpack_nibble_order():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 16, size=(3, 37), dtype=np.uint8)
    packed = nvfp4.e2m1_pack(codes)
    assert packed.shape == (3, 19)
    # element 2j in bits 3..0, element 2j+1 in bits 7..4, odd tail padded with 0
    padded = np.concatenate([codes, np.zeros((3, 1), np.uint8)], axis=1)
    np.testing.assert_array_equal(packed, padded[:, 0::2] | (padded[:, 1::2] << 4))
    np.testing.assert_array_equal(nvfp4.e2m1_unpack(packed, 37), codes)
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.e2m1_pack(np.array([0x10], np.uint8))
    assert e.value.status_name == "NVFP4_ERR_INVALID_VALUE"
    with pytest.raises(ValueError):
        nvfp4.e2m1_unpack(packed, 39)


def test_e8m0():
    assert nvfp4.e8m0_to_float(127) == 1.0
    assert np.isnan(nvfp4.e8m0_to_float(255))
    # RCEIL: 2^ceil(log2(amax/6)); amax 6 -> 1.0 (byte 127); amax 6.1 -> 2.0
    assert nvfp4.e8m0_from_amax(6.0) == 127
    assert nvfp4.e8m0_from_amax(6.1) == 128
    with pytest.raises(nvfp4.NVFP4Error) as e:
        nvfp4.e8m0_from_amax(-1.0)
    assert e.value.status_name == "NVFP4_ERR_INVALID_VALUE"


def test_bad_dtypes_are_rejected_before_the_library():
    with pytest.raises(TypeError):
        nvfp4.e2m1_to_array(np.zeros(4, np.uint8), dtype=np.int32)
    with pytest.raises(TypeError):
        nvfp4.e2m1_from_array(np.array(["a"]))
