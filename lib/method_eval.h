/* method_eval.h - the block evaluation shared by the searching methods (CJSO, DSS, sweep).
 *
 * A candidate scale byte b for a block at global scale α is scored by its coupled codes
 * q = E2M1(RN32(x · inv)), inv = nvfp4i_block_inv(a, f(b), α), and the decoded error
 * Σ w (x̂ − x)², x̂ = RN32(RN32(v·f(b))·α), summed in float64 in element order exactly as
 * nvfp4i_block_sse() sums it (except that an element decoding to ±Inf makes the error +Inf
 * whatever its weight, so a candidate that overflows never wins), together with the
 * least-squares sums Σ w x v and Σ w v².
 * nvfp4i_eval_block() is the scalar definition; nvfp4i_eval8_avx2() computes the same three
 * sums for eight consecutive blocks with one block per lane, every operation the same IEEE
 * operation in the same order, so both give identical bits (tests/test_methods.c relies on
 * it through the "never worse than MAX" checks, which compare SSEs exactly).
 */
#ifndef NVFP4I_METHOD_EVAL_H
#define NVFP4I_METHOD_EVAL_H

#include <math.h>

#include "internal.h"

/* E2M1 values by code (nvfp4i_e2m1_to_float as a table, for the hot loops). */
static const float nvfp4i_e2m1_tab[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* One element's term of the searches' error: w·d·d, except that a decode past FLT_MAX (d = ±Inf
 * from finite x) counts +Inf whatever the weight (0·Inf would be NaN, which no comparison prefers
 * to leave), so a candidate that overflows never wins. */
static inline double nvfp4i_err_term(double w, double d) { return isinf(d) ? (double)INFINITY : w * d * d; }

/* Scalar: the coupled codes of byte b at α (written to c), their decoded error and the
 * least-squares sums. Non-finite x add nothing. */
static inline double nvfp4i_eval_block(const float *x, const float *h, float a, uint8_t b, float alpha, uint8_t *c,
                                       double *sxq, double *sqq)
{
    const float f = nvfp4i_e4m3_to_float(b);
    const float inv = nvfp4i_block_inv(a, f, alpha);
    for (int i = 0; i < 16; i++)
        c[i] = nvfp4i_encode(x[i], inv);
    double e = 0.0, s1 = 0.0, s2 = 0.0;
    for (int i = 0; i < 16; i++) {
        if (!nvfp4i_isfinite(x[i]))
            continue;
        const double w = h ? (double)h[i] : 1.0;
        const float v = nvfp4i_e2m1_tab[c[i]];
        const double d = (double)((v * f) * alpha) - (double)x[i];
        e += nvfp4i_err_term(w, d);
        s1 += w * (double)x[i] * (double)v;
        s2 += w * (double)v * (double)v;
    }
    *sxq = s1;
    *sqq = s2;
    return e;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NVFP4I_EVAL_AVX2 1
#define NVFP4I_EVAL_TARGET __attribute__((target("avx2")))

static inline int nvfp4i_eval_have_avx2(void) { return __builtin_cpu_supports("avx2"); }

/* 8x8 transpose: in r[b] = 8 consecutive floats of block b, out r[i] = element i of each block. */
NVFP4I_EVAL_TARGET static inline void nvfp4i_tr8(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* The E2M1 grid rounding of 0 ≤ y < 7 (the E2M1 magnitude value 0, 0.5, ..., 6 there). The grid
 * has spacing 0.5 below 2, 1 in [2, 4) and 2 from 4 up, i.e. 2^(max(e, 0) − 1) for y in
 * [2^e, 2^(e+1)); so with M = 2^(max(e, 0) + 22), whose ulp is that spacing, RN32(y + M) − M is
 * y rounded to the grid (exact: y < M/2^21), ties to even on the multiple of the spacing, which is
 * the code's parity, as SPEC §1 rounds. Five operations; tests/test_methods.c checks every float
 * in [0, 7). */
NVFP4I_EVAL_TARGET static inline __m256 nvfp4i_e2m1_val8_lt7(__m256 y)
{
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(y), _mm256_set1_epi32(0x7F800000)),
                                       _mm256_set1_epi32(0x3F800000));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_set1_epi32(22 << 23)));
    return _mm256_sub_ps(_mm256_add_ps(y, m), m);
}

/* The E2M1 magnitude value (0, 0.5, ..., 6) of non-negative y (finite or +Inf):
 * nvfp4i_e2m1_tab[nvfp4i_e2m1_from_float(y) & 7] without the table: the grid rounding above of
 * y capped at 8 (so +Inf and huge y keep M finite; 8 itself rounds to 8), capped at 6. Seven
 * operations; tests/test_methods.c checks every non-negative float. */
NVFP4I_EVAL_TARGET static inline __m256 nvfp4i_e2m1_val8(__m256 y)
{
    return _mm256_min_ps(nvfp4i_e2m1_val8_lt7(_mm256_min_ps(y, _mm256_set1_ps(8.0f))), _mm256_set1_ps(6.0f));
}

/* E2M1 magnitude codes (int32 lanes) of non-negative y (finite or +Inf):
 * nvfp4i_e2m1_from_float(y) & 7, from the grid rounding of nvfp4i_e2m1_val8. With y' = min(y, 8) and
 * M = 2^(max(e, 0) + 22) for y' in [2^e, 2^(e+1)), t = RN32(y' + M) is M plus n grid steps
 * (ties to the even n), and the code is n plus 2·max(e, 0) (the grid steps below 2^e), at
 * most 7. Ten operations; tests/test_methods.c checks every non-negative float. */
NVFP4I_EVAL_TARGET static inline __m256i nvfp4i_e2m1_code8(__m256 y)
{
    const __m256i one = _mm256_set1_epi32(0x3F800000);
    const __m256 yc = _mm256_min_ps(y, _mm256_set1_ps(8.0f));
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(yc), _mm256_set1_epi32(0x7F800000)), one);
    const __m256i m = _mm256_add_epi32(e, _mm256_set1_epi32(22 << 23));
    const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(yc, _mm256_castsi256_ps(m))), m);
    return _mm256_min_epi32(_mm256_add_epi32(n, _mm256_srli_epi32(_mm256_sub_epi32(e, one), 22)), _mm256_set1_epi32(7));
}

/* E4M3 bytes (int32 lanes) of non-negative y (finite or +Inf): nvfp4i_e4m3_from_float lane by
 * lane. Normal range: round the bit pattern to three mantissa bits, ties to even, saturating at
 * 0x7E (448; +Inf included); below 2^-6 the subnormal count RNE(y·2^9), an exact scaling rounded
 * by the default mode. tests/test_methods.c checks it against the scalar rule. */
NVFP4I_EVAL_TARGET static inline __m256i nvfp4i_e4m3_rne8(__m256 y)
{
    const __m256i au = _mm256_castps_si256(y);
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(au, _mm256_set1_epi32(0x7FFFF)),
                                       _mm256_and_si256(_mm256_srli_epi32(au, 20), _mm256_set1_epi32(1)));
    const __m256i cn = _mm256_min_epi32(_mm256_sub_epi32(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(120 << 3)),
                                        _mm256_set1_epi32(0x7E));
    const __m256i cs = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_min_ps(y, _mm256_set1_ps(1.0f)), _mm256_set1_ps(512.0f)));
    return _mm256_blendv_epi8(cn, cs, _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3C800000), au));
}

/* E4M3 values of the bytes b (int32 lanes, 0..0x7E): nvfp4i_e4m3_to_float lane by lane. */
NVFP4I_EVAL_TARGET static inline __m256 nvfp4i_e4m3_val8(__m256i b)
{
    const __m256i nb = _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(_mm256_srli_epi32(b, 3), _mm256_set1_epi32(120)), 23),
                                       _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(7)), 20));
    const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(b), _mm256_set1_ps(0.001953125f));
    return _mm256_blendv_ps(_mm256_castsi256_ps(nb), sub, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), b)));
}

/* nvfp4i_block_inv lane by lane: 0 for a zero block or scale, else
 * min(RN32(1/RN32(f·s_dec)), FLT_MAX). */
NVFP4I_EVAL_TARGET static inline __m256 nvfp4i_block_inv8(__m256 a, __m256 f, __m256 sdec)
{
    const __m256 inv = _mm256_min_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(f, sdec)),
                                     _mm256_set1_ps(NVFP4I_FLT_MAX));
    const __m256 zero = _mm256_or_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ),
                                     _mm256_cmp_ps(f, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return _mm256_andnot_ps(zero, inv);
}

/* nvfp4i_e4m3_floor_byte lane by lane (int32 lanes) for v ≥ 0. */
NVFP4I_EVAL_TARGET static inline __m256i nvfp4i_e4m3_floor8(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i nb = _mm256_or_si256(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(120)), 3),
                                       _mm256_and_si256(_mm256_srli_epi32(u, 20), _mm256_set1_epi32(7)));
    const __m256i sb = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_min_ps(v, _mm256_set1_ps(0.015625f)), _mm256_set1_ps(512.0f)));
    __m256i r = _mm256_blendv_epi8(nb, sb, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(0.015625f), _CMP_LT_OQ)));
    return _mm256_blendv_epi8(_mm256_set1_epi32(0x7E), r, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(448.0f), _CMP_LT_OQ)));
}

/* Eight blocks transposed once (lanes = blocks), scored for any number of candidate bytes. */
typedef struct {
    __m256 x[16], w[16];
    __m256d xd[32];  /* x as float64, element i's lanes 0-3 in [2i], 4-7 in [2i+1] */
    __m256d wd[32];  /* w as float64 (weighted only) */
    __m256d wxd[32]; /* RN64(w·x), the first product of Σ w·x·v (weighted only) */
    int weighted;
} nvfp4i_eval8_in;

/* The transposes only (x and w as float32); nvfp4i_eval8_prep64 adds the float64 copies that
 * nvfp4i_eval8 and DSS's exact stage read. */
NVFP4I_EVAL_TARGET static inline void nvfp4i_eval8_load32(nvfp4i_eval8_in *in, const float *x, const float *h)
{
    for (int half = 0; half < 2; half++) {
        for (int b = 0; b < 8; b++)
            in->x[half * 8 + b] = _mm256_loadu_ps(x + b * 16 + half * 8);
        nvfp4i_tr8(in->x + half * 8);
        if (h) {
            for (int b = 0; b < 8; b++)
                in->w[half * 8 + b] = _mm256_loadu_ps(h + b * 16 + half * 8);
            nvfp4i_tr8(in->w + half * 8);
        }
    }
    in->weighted = h != NULL;
}

/* The conversions every candidate would repeat, once (the same values, so the same bits). */
NVFP4I_EVAL_TARGET static inline void nvfp4i_eval8_prep64(nvfp4i_eval8_in *in)
{
    for (int i = 0; i < 16; i++) {
        in->xd[2 * i] = _mm256_cvtps_pd(_mm256_castps256_ps128(in->x[i]));
        in->xd[2 * i + 1] = _mm256_cvtps_pd(_mm256_extractf128_ps(in->x[i], 1));
        if (in->weighted) {
            in->wd[2 * i] = _mm256_cvtps_pd(_mm256_castps256_ps128(in->w[i]));
            in->wd[2 * i + 1] = _mm256_cvtps_pd(_mm256_extractf128_ps(in->w[i], 1));
            in->wxd[2 * i] = _mm256_mul_pd(in->wd[2 * i], in->xd[2 * i]);
            in->wxd[2 * i + 1] = _mm256_mul_pd(in->wd[2 * i + 1], in->xd[2 * i + 1]);
        }
    }
}

NVFP4I_EVAL_TARGET static inline void nvfp4i_eval8_load(nvfp4i_eval8_in *in, const float *x, const float *h)
{
    nvfp4i_eval8_load32(in, x, h);
    nvfp4i_eval8_prep64(in);
}

/* nvfp4i_eval_block's sums for the eight blocks with bytes b[8] (amaxes a[8]); finite input. */
NVFP4I_EVAL_TARGET static inline void nvfp4i_eval8(const nvfp4i_eval8_in *in, const float *a, const uint8_t *b,
                                                   float alpha, double *err, double *sxq, double *sqq)
{
    float fv[8], iv[8];
    for (int j = 0; j < 8; j++) {
        fv[j] = nvfp4i_e4m3_to_float(b[j]);
        iv[j] = nvfp4i_block_inv(a[j], fv[j], alpha);
    }
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 tab = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
    const __m256 f = _mm256_loadu_ps(fv), inv = _mm256_loadu_ps(iv), al = _mm256_set1_ps(alpha);
    __m256d e0 = _mm256_setzero_pd(), e1 = _mm256_setzero_pd(), p0 = _mm256_setzero_pd(),
            p1 = _mm256_setzero_pd(), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    __m256 qf = _mm256_setzero_ps();
    for (int i = 0; i < 16; i++) {
        __m256 y = _mm256_mul_ps(in->x[i], inv);
        __m256 ay = _mm256_andnot_ps(sign, y);
        __m256i m = nvfp4i_e2m1_code8(ay);
        __m256 v = _mm256_or_ps(_mm256_permutevar8x32_ps(tab, m), _mm256_and_ps(sign, y));
        __m256 xh = _mm256_mul_ps(_mm256_mul_ps(v, f), al);
        const __m256d xl = in->xd[2 * i], xu = in->xd[2 * i + 1];
        __m256d vl = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), vu = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        __m256d dl = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xh)), xl);
        __m256d du = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1)), xu);
        if (in->weighted) { /* an element decoding to ±Inf adds +Inf whatever its weight */
            const __m256d wl = in->wd[2 * i], wu = in->wd[2 * i + 1], pinf = _mm256_set1_pd(INFINITY);
            const __m256d absm = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
            const __m256d tl = _mm256_mul_pd(_mm256_mul_pd(wl, dl), dl), tu = _mm256_mul_pd(_mm256_mul_pd(wu, du), du);
            e0 = _mm256_add_pd(e0, _mm256_blendv_pd(tl, pinf, _mm256_cmp_pd(_mm256_and_pd(dl, absm), pinf, _CMP_EQ_OQ)));
            e1 = _mm256_add_pd(e1, _mm256_blendv_pd(tu, pinf, _mm256_cmp_pd(_mm256_and_pd(du, absm), pinf, _CMP_EQ_OQ)));
            p0 = _mm256_add_pd(p0, _mm256_mul_pd(in->wxd[2 * i], vl));
            p1 = _mm256_add_pd(p1, _mm256_mul_pd(in->wxd[2 * i + 1], vu));
            q0 = _mm256_add_pd(q0, _mm256_mul_pd(_mm256_mul_pd(wl, vl), vl));
            q1 = _mm256_add_pd(q1, _mm256_mul_pd(_mm256_mul_pd(wu, vu), vu));
        } else { /* w = 1: 1·d is d exactly */
            e0 = _mm256_add_pd(e0, _mm256_mul_pd(dl, dl));
            e1 = _mm256_add_pd(e1, _mm256_mul_pd(du, du));
            p0 = _mm256_add_pd(p0, _mm256_mul_pd(xl, vl));
            p1 = _mm256_add_pd(p1, _mm256_mul_pd(xu, vu));
            qf = _mm256_add_ps(qf, _mm256_mul_ps(v, v));
        }
    }
    if (!in->weighted) { /* Σv²: squares of E2M1 values and their partial sums (multiples of 1/4
                          * up to 576) are exact in float32, so this is the float64 sum's value */
        q0 = _mm256_cvtps_pd(_mm256_castps256_ps128(qf));
        q1 = _mm256_cvtps_pd(_mm256_extractf128_ps(qf, 1));
    }
    _mm256_storeu_pd(err, e0);
    _mm256_storeu_pd(err + 4, e1);
    _mm256_storeu_pd(sxq, p0);
    _mm256_storeu_pd(sxq + 4, p1);
    _mm256_storeu_pd(sqq, q0);
    _mm256_storeu_pd(sqq + 4, q1);
}
#else
#define NVFP4I_EVAL_AVX2 0
#endif

#endif /* NVFP4I_METHOD_EVAL_H */
