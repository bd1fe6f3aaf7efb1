/* rounding.h - the one definition of every rounding rule in libnvfp4 (SPEC.md §1, §3.1).
 *
 * Plain C99 static inline functions on bit patterns, so the CPU reference and the CUDA kernels
 * (nvcc compiles this header too, as __host__ __device__) share every rule and cannot drift.
 * Nothing here depends on the floating-point environment except ordinary IEEE float arithmetic
 * in round-to-nearest mode, and the products/quotients are single operations (RN32) as long as
 * the including file is compiled with -ffp-contract=off (the build does that).
 */
#ifndef NVFP4I_ROUNDING_H
#define NVFP4I_ROUNDING_H

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define NVFP4I_HD __host__ __device__ __forceinline__
#else
#define NVFP4I_HD static inline
#endif

#define NVFP4I_FLT_MAX 3.40282346638528859812e+38F

NVFP4I_HD uint32_t nvfp4i_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

NVFP4I_HD float nvfp4i_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

NVFP4I_HD int nvfp4i_isfinite(float x) { return (nvfp4i_f2u(x) & 0x7F800000u) != 0x7F800000u; }
NVFP4I_HD int nvfp4i_isnan(float x) { return (nvfp4i_f2u(x) & 0x7FFFFFFFu) > 0x7F800000u; }
NVFP4I_HD float nvfp4i_fabs(float x) { return nvfp4i_u2f(nvfp4i_f2u(x) & 0x7FFFFFFFu); }

/* ---- E2M1 -------------------------------------------------------------------------------- */

/* float -> E2M1 code: RNE on the code, saturating; sign bit from the input (−0 → 0x8); NaN → 0x7.
 * The rule, as thresholds on |x| (the magnitude code is the number of thresholds |x| lies beyond;
 * "> t": a tie goes down to the even code, ">= t": a tie goes up to the even code):
 *   > 0.25 (tie 0|0.5 → 0)   >= 0.75 (tie 0.5|1 → 1)   > 1.25 (tie 1|1.5 → 1)   >= 1.75 (tie 1.5|2 → 2)
 *   > 2.5 (tie 2|3 → 2)      >= 3.5 (tie 3|4 → 4)      > 5 (tie 4|6 → 4)
 * Computed without comparisons per threshold (about 14 integer/float operations, branch-free, so
 * that CPU loops vectorise and the CUDA kernels stay memory-bound; equal to the threshold count for
 * all 2^32 inputs, checked exhaustively):
 *   |x| < 1: the code is RNE(2|x|) in {0, 1, 2}, read off the bits of RN32(|x| + 2^22), whose ulp is 0.5;
 *   |x| ≥ 1: one mantissa bit kept with RNE on the float's bits (a carry rolls into the exponent), so
 *            bits >> 22 = 2·biased_exponent + mantissa_bit and the code is that minus 252 (1.0 → 2),
 *            saturated at 7 (6.0); Inf and NaN land on 7 as well. */
NVFP4I_HD uint32_t nvfp4i_e2m1_code_nonnan(float x);

NVFP4I_HD uint8_t nvfp4i_e2m1_from_float(float x)
{
    return (uint8_t)(nvfp4i_isnan(x) ? 0x7u : nvfp4i_e2m1_code_nonnan(x));
}

/* The same rule for an x that is not NaN (±Inf saturates to ±6), as a code in 0..15: for loops
 * that have already excluded NaN (the CUDA kernels' all-finite path), which saves the NaN test
 * and the narrowing. */
NVFP4I_HD uint32_t nvfp4i_e2m1_code_nonnan(float x)
{
    uint32_t u = nvfp4i_f2u(x);
    uint32_t au = u & 0x7FFFFFFFu;
    uint32_t lo = nvfp4i_f2u(nvfp4i_u2f(au) + 4194304.0f) - 0x4A800000u;
    uint32_t hi = ((au + 0x1FFFFFu + ((au >> 22) & 1u)) >> 22) - 252u;
    hi = hi < 7u ? hi : 7u;
    uint32_t m = au < 0x3F800000u ? lo : hi;
    return m | ((u >> 28) & 0x8u);
}

/* Magnitudes of the 8 non-negative codes: 0, 0.5, 1, 1.5, 2, 3, 4, 6, without a table (usable on
 * the device without constant memory) and without int→float conversions: for m ≥ 2 the value is
 * 2^((m>>1)−1)·(1 + (m&1)/2), whose bits are (126 << 23) + (m << 22); m = 1 is 0.5. */
NVFP4I_HD float nvfp4i_e2m1_mag(uint32_t m)
{
    m &= 7u;
    return nvfp4i_u2f(m >= 2u ? 0x3F000000u + (m << 22) : (m == 1u ? 0x3F000000u : 0u));
}

NVFP4I_HD float nvfp4i_e2m1_to_float(uint8_t code)
{
    float v = nvfp4i_e2m1_mag(code & 7u);
    return (code & 8u) ? -v : v;
}

/* ---- E4M3 -------------------------------------------------------------------------------- */

/* float -> E4M3 byte: RNE including subnormals, satfinite (|x| ≥ 448 → 448, Inf → 448), NaN → 0x7F. */
NVFP4I_HD uint8_t nvfp4i_e4m3_from_float(float x)
{
    uint32_t u = nvfp4i_f2u(x);
    uint32_t sign = (u >> 24) & 0x80u;
    uint32_t au = u & 0x7FFFFFFFu;
    if (au > 0x7F800000u)
        return 0x7F;
    if (au >= 0x43E00000u) /* 448.0f and above, Inf included */
        return (uint8_t)(sign | 0x7Eu);
    if (au < 0x3C800000u) { /* below 2^-6: subnormal E4M3, value m·2^-9 with m = RNE(a·2^9) */
        float s = nvfp4i_u2f(au) * 512.0f; /* exact: scaling by a power of two, s < 8 */
        uint32_t m = (uint32_t)s;          /* truncation */
        float frac = s - (float)m;         /* exact */
        if (frac > 0.5f || (frac == 0.5f && (m & 1u)))
            m++;
        return (uint8_t)(sign | m); /* m == 8 is 0x08, the smallest normal: correct */
    }
    /* normal: keep 3 mantissa bits with RNE on the float's bits; carries roll into the exponent */
    uint32_t r = au + 0x7FFFFu + ((au >> 20) & 1u);
    uint32_t e = (r >> 23) - 127u + 7u;
    uint32_t mant = (r >> 20) & 7u;
    uint32_t code = (e << 3) | mant;
    if (code > 0x7Eu) /* a in (448, 464) cannot reach here; kept as a guard */
        code = 0x7Eu;
    return (uint8_t)(sign | code);
}

/* The largest E4M3 byte whose value is ≤ v, for v ≥ 0 (0 below 2^-9; 0x7E from 448 up, and for
 * NaN): the float's exponent and top three mantissa bits, truncated (the searching methods
 * bracket a scale between two bytes with it). */
NVFP4I_HD uint8_t nvfp4i_e4m3_floor_byte(float v)
{
    if (!(v < 448.0f))
        return 0x7E;
    if (v < 0.015625f)
        return (uint8_t)(v * 512.0f); /* subnormal E4M3: m·2^-9, exact scaling, truncated */
    const uint32_t u = nvfp4i_f2u(v);
    return (uint8_t)((((u >> 23) - 120u) << 3) | ((u >> 20) & 7u));
}

NVFP4I_HD float nvfp4i_e4m3_to_float(uint8_t b)
{
    uint32_t e = (b >> 3) & 0xFu, m = b & 7u;
    float v;
    if ((b & 0x7Fu) == 0x7Fu)
        return nvfp4i_u2f(0x7FC00000u);
    if (e == 0)
        v = (float)m * 0.001953125f; /* m·2^-9 */
    else
        v = nvfp4i_u2f(((e - 7u + 127u) << 23) | (m << 20));
    return (b & 0x80u) ? -v : v;
}

/* ---- E8M0 -------------------------------------------------------------------------------- */

/* Exponent of the smallest power of two ≥ v (RCEIL) or the largest ≤ v (FLOOR), for finite v > 0. */
NVFP4I_HD int nvfp4i_log2_ceil(float v)
{
    uint32_t u = nvfp4i_f2u(v);
    int e = (int)(u >> 23);
    uint32_t mant = u & 0x7FFFFFu;
    if (e == 0) { /* subnormal: v = mant·2^-149 */
        int msb = 31;
        while (!(mant >> msb))
            msb--;
        return (mant & (mant - 1u)) ? msb - 149 + 1 : msb - 149;
    }
    return mant ? e - 127 + 1 : e - 127;
}

NVFP4I_HD int nvfp4i_log2_floor(float v)
{
    uint32_t u = nvfp4i_f2u(v);
    int e = (int)(u >> 23);
    uint32_t mant = u & 0x7FFFFFu;
    if (e == 0) {
        int msb = 31;
        while (!(mant >> msb))
            msb--;
        return msb - 149;
    }
    return e - 127;
}

/* E8M0 byte for a block of amax a (finite, ≥ 0). RCEIL: 2^ceil(log2(RN32(a·RN32(1/6)))) as
 * cvt.rp.satfinite.ue8m0x2.f32 on amax·(1/6); FLOOR (OCP): 2^(floor(log2 a) − 2).
 * The exponent is clamped to [−127, 127]; a zero amax gives byte 0. */
NVFP4I_HD uint8_t nvfp4i_e8m0_from_amax(float a, int floor_mode)
{
    int e;
    if (!(a > 0.0f))
        return 0;
    if (floor_mode) {
        e = nvfp4i_log2_floor(a) - 2;
    } else {
        float v = a * 0.16666667163372039794921875f; /* RN32(1/6) */
        if (!(v > 0.0f))
            return 0;
        e = nvfp4i_log2_ceil(v);
    }
    if (e < -127)
        e = -127;
    if (e > 127)
        e = 127;
    return (uint8_t)(e + 127);
}

/* 2^(b−127) for b in 0..254 (exact; b = 0 is the float subnormal 2^-127). */
NVFP4I_HD float nvfp4i_e8m0_to_float(uint8_t b)
{
    if (b == 0xFF)
        return nvfp4i_u2f(0x7FC00000u);
    if (b == 0)
        return nvfp4i_u2f(0x00400000u);
    return nvfp4i_u2f((uint32_t)b << 23);
}

/* 2^(127−b): the exact multiplier that maps a block onto the element grid (b in 0..254). */
NVFP4I_HD float nvfp4i_e8m0_inverse(uint8_t b)
{
    int e = 127 - (int)b; /* in [−127, 127] */
    if (e == -127)
        return nvfp4i_u2f(0x00400000u);
    return nvfp4i_u2f((uint32_t)(e + 127) << 23);
}

/* ---- f16 / bf16 -------------------------------------------------------------------------- */

NVFP4I_HD float nvfp4i_bf16_to_float(uint16_t b) { return nvfp4i_u2f((uint32_t)b << 16); }

NVFP4I_HD uint16_t nvfp4i_float_to_bf16(float x)
{
    uint32_t u = nvfp4i_f2u(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN, sign kept */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

NVFP4I_HD float nvfp4i_f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    float v;
    if (e == 0x1F)
        return nvfp4i_u2f(sign | 0x7F800000u | (m << 13));
    if (e == 0)
        v = (float)m * 5.9604644775390625e-8f; /* m·2^-24, exact */
    else
        v = nvfp4i_u2f(((e - 15u + 127u) << 23) | (m << 13));
    return nvfp4i_u2f(nvfp4i_f2u(v) | sign);
}

NVFP4I_HD uint16_t nvfp4i_float_to_f16(float x)
{
    uint32_t u = nvfp4i_f2u(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t au = u & 0x7FFFFFFFu;
    if (au > 0x7F800000u)
        return (uint16_t)(sign | 0x7E00u | ((au >> 13) & 0x3FFu));
    if (au >= 0x477FF000u) /* ≥ 65520 rounds to Inf */
        return (uint16_t)(sign | 0x7C00u);
    if (au < 0x38800000u) { /* below 2^-14: f16 subnormal m·2^-24, m = RNE(a·2^24) */
        float s = nvfp4i_u2f(au) * 16777216.0f; /* exact, s < 1024 */
        uint32_t m = (uint32_t)s;
        float frac = s - (float)m;
        if (frac > 0.5f || (frac == 0.5f && (m & 1u)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t r = au + 0xFFFu + ((au >> 13) & 1u);
    uint32_t e = (r >> 23) - 127u + 15u;
    return (uint16_t)(sign | (e << 10) | ((r >> 13) & 0x3FFu));
}

/* ---- the NVFP4 scale recipe (SPEC §3.1), shared by every backend ------------------------- */

#define NVFP4I_RN_ONE_SIXTH 0.16666667163372039794921875f /* RN32(1/6) = 0x3E2AAAAB */

/* Global scales from the tensor amax A (finite ≥ 0) and the E4M3 ceiling M:
 * s_enc = RN32(6·M / A) clamped to FLT_MAX (TE), s_dec = RN32(1/s_enc); A == 0 → both 1. */
NVFP4I_HD void nvfp4i_global_scales(float amax, float emax, float *s_enc, float *s_dec)
{
    if (!(amax > 0.0f)) {
        *s_enc = 1.0f;
        *s_dec = 1.0f;
        return;
    }
    float e = (6.0f * emax) / amax;
    if (!(e <= NVFP4I_FLT_MAX))
        e = NVFP4I_FLT_MAX;
    *s_enc = e;
    *s_dec = 1.0f / e;
}

/* Element multiplier for a stored scale byte: 0 if the block is zero or the scale underflowed,
 * else min(RN32(1/RN32(f(S)·s_dec)), FLT_MAX). */
NVFP4I_HD float nvfp4i_block_inv(float block_amax, float scale_value, float s_dec)
{
    if (block_amax == 0.0f || scale_value == 0.0f)
        return 0.0f;
    float d = scale_value * s_dec;
    float inv = 1.0f / d;
    return inv <= NVFP4I_FLT_MAX ? inv : NVFP4I_FLT_MAX;
}

/* The code of one element given the multiplier: E2M1(RN32(x·inv)); a non-finite x (saturate
 * policy only) converts by itself (±Inf → ±6, NaN → 0x7), never through 0·Inf. */
NVFP4I_HD uint8_t nvfp4i_encode(float x, float inv)
{
    float y = nvfp4i_isfinite(x) ? x * inv : x;
    return nvfp4i_e2m1_from_float(y);
}

/* Decode one element: RN32(RN32(value·f(S))·s_dec). */
NVFP4I_HD float nvfp4i_decode(uint8_t code, float scale_value, float s_dec)
{
    return (nvfp4i_e2m1_to_float(code) * scale_value) * s_dec;
}

/* MAX's block scale byte for amax a (SPEC §3.1): E4M3(RN32(a·pre)), pre = RN32(s_enc·RN32(1/6)). */
NVFP4I_HD uint8_t nvfp4i_max_scale(float a, float pre) { return nvfp4i_e4m3_from_float(a * pre); }
NVFP4I_HD float nvfp4i_max_pre(float s_enc) { return s_enc * NVFP4I_RN_ONE_SIXTH; }

/* ---- the 128×4 scale layout (SPEC §6), shared by every backend --------------------------- */

/* Byte offset of scale (m, k) with K4 = ceil(scale_cols/4). */
NVFP4I_HD int64_t nvfp4i_offset_128x4(int64_t m, int64_t k, int64_t k4)
{
    return ((m / 128) * k4 + (k / 4)) * 512 + (m % 32) * 16 + ((m / 32) % 4) * 4 + (k % 4);
}

#endif /* NVFP4I_ROUNDING_H */
