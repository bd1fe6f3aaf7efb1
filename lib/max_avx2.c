/* max_avx2.c - the MAX exact recipe (SPEC §3.1) eight blocks at a time with AVX2.
 *
 * This is the same arithmetic as the scalar rules in rounding.h, lane by lane: the same IEEE
 * single operations (products, one division), the same E4M3 rounding on bit patterns and the
 * same arithmetic form of the E2M1 rule (nvfp4i_e2m1_code_nonnan).
 * It is chosen at run time when the CPU has AVX2; tests/test_max_simd.c holds it bit-identical
 * to the scalar path. Preconditions (checked by the caller): NVFP4 format, exact recipe, nblk a
 * multiple of 8. A group of 8 blocks holding NaN/Inf stops the kernel (the caller's scalar path
 * handles that group), so the kernel also serves a single pass that never counted them.
 */
#include "internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define NVFP4I_AVX2 __attribute__((target("avx2")))

int nvfp4i_have_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}

/* Max over the 8 lanes of each of m[0..7] (unsigned bit patterns), lane b of the result = m[b]'s max. */
NVFP4I_AVX2 static inline __m256i hmax8(const __m256i m[8])
{
    __m256i t0 = _mm256_max_epu32(_mm256_unpacklo_epi32(m[0], m[1]), _mm256_unpackhi_epi32(m[0], m[1]));
    __m256i t1 = _mm256_max_epu32(_mm256_unpacklo_epi32(m[2], m[3]), _mm256_unpackhi_epi32(m[2], m[3]));
    __m256i t2 = _mm256_max_epu32(_mm256_unpacklo_epi32(m[4], m[5]), _mm256_unpackhi_epi32(m[4], m[5]));
    __m256i t3 = _mm256_max_epu32(_mm256_unpacklo_epi32(m[6], m[7]), _mm256_unpackhi_epi32(m[6], m[7]));
    __m256i u0 = _mm256_max_epu32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
    __m256i u1 = _mm256_max_epu32(_mm256_unpacklo_epi64(t2, t3), _mm256_unpackhi_epi64(t2, t3));
    return _mm256_max_epu32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* E4M3 bytes (as int32 lanes) of non-negative y (finite or +Inf): nvfp4i_e4m3_from_float per lane. */
NVFP4I_AVX2 static inline __m256i e4m3_pos8(__m256 y)
{
    const __m256i au = _mm256_castps_si256(y);
    /* normal: RNE to 3 mantissa bits on the bits, rebias, saturate at 0x7E (covers ≥ 448 and Inf) */
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(au, _mm256_set1_epi32(0x7FFFF)),
                                 _mm256_and_si256(_mm256_srli_epi32(au, 20), _mm256_set1_epi32(1)));
    __m256i cn = _mm256_sub_epi32(_mm256_srli_epi32(r, 20), _mm256_set1_epi32(120 << 3));
    cn = _mm256_min_epi32(cn, _mm256_set1_epi32(0x7E));
    /* subnormal (y < 2^-6): m = RNE(y·2^9), exact scaling then round-half-even to an integer */
    __m256 s = _mm256_mul_ps(y, _mm256_set1_ps(512.0f));
    __m256i cs = _mm256_cvtps_epi32(_mm256_round_ps(s, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3C800000), au);
    return _mm256_blendv_epi8(cn, cs, sub);
}

/* Decoded value of E4M3 bytes 0x00..0x7E in int32 lanes: nvfp4i_e4m3_to_float per lane. */
NVFP4I_AVX2 static inline __m256 e4m3_val8(__m256i c)
{
    __m256i e = _mm256_srli_epi32(c, 3), m = _mm256_and_si256(c, _mm256_set1_epi32(7));
    __m256i nb = _mm256_or_si256(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(120)), 23),
                                 _mm256_slli_epi32(m, 20));
    __m256 sv = _mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(0.001953125f));
    __m256i isub = _mm256_cmpeq_epi32(e, _mm256_setzero_si256());
    return _mm256_blendv_ps(_mm256_castsi256_ps(nb), sv, _mm256_castsi256_ps(isub));
}

/* E2M1 codes (int32 lanes) of x·inv: nvfp4i_e2m1_code_nonnan per lane (x finite, so x·inv is not
 * NaN), in the same arithmetic form as rounding.h: below 1, RNE(2|y|) read off RN32(|y| + 2^22);
 * from 1 up, one mantissa bit kept with RNE on the bits, saturated at code 7. */
NVFP4I_AVX2 static inline __m256i e2m1_8(__m256 x, __m256 inv)
{
    const __m256 signmask = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256 y = _mm256_mul_ps(x, inv);
    __m256 a = _mm256_andnot_ps(signmask, y);
    __m256i au = _mm256_castps_si256(a);
    __m256i lo = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(a, _mm256_set1_ps(4194304.0f))),
                                  _mm256_set1_epi32(0x4A800000));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(au, _mm256_set1_epi32(0x1FFFFF)),
                                 _mm256_and_si256(_mm256_srli_epi32(au, 22), _mm256_set1_epi32(1)));
    __m256i hi = _mm256_min_epu32(_mm256_sub_epi32(_mm256_srli_epi32(r, 22), _mm256_set1_epi32(252)),
                                  _mm256_set1_epi32(7));
    __m256i below1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3F800000), au);
    __m256i m = _mm256_blendv_epi8(hi, lo, below1);
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(y), 28), _mm256_set1_epi32(8));
    return _mm256_or_si256(m, sign);
}

/* Packs the 16 codes of a block (elements 0..7 in lo, 8..15 in hi) into 8 bytes, even element in
 * the low nibble. */
NVFP4I_AVX2 static inline void pack16(__m256i lo, __m256i hi, uint8_t *out)
{
    /* within each 64-bit lane: low dword = c_even | c_odd << 4 */
    __m256i a = _mm256_add_epi32(lo, _mm256_srli_epi64(lo, 28));
    __m256i b = _mm256_add_epi32(hi, _mm256_srli_epi64(hi, 28));
    __m256i u = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi64x(0xFFFFFFFF)), _mm256_slli_epi64(b, 32));
    /* dwords now: a0 b0 a1 b1 | a2 b2 a3 b3 */
    __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
    p = _mm_packus_epi16(p, p);
    p = _mm_shuffle_epi8(p, _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15));
    _mm_storel_epi64((__m128i *)(void *)out, p);
}

NVFP4I_AVX2 int64_t nvfp4i_max_row_avx2(const float *x, int64_t nblk, float pre, float s_dec, uint8_t *codes,
                                        uint8_t *scales, int64_t *underflow)
{
    const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF);
    int64_t g;
    for (g = 0; g < nblk; g += 8) {
        const float *xg = x + g * 16;
        __m256i m[8];
        for (int b = 0; b < 8; b++) {
            __m256i v0 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xg + b * 16)), absmask);
            __m256i v1 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(xg + b * 16 + 8)), absmask);
            m[b] = _mm256_max_epu32(v0, v1);
        }
        __m256i abits = hmax8(m);
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(abits, _mm256_set1_epi32(0x7F7FFFFF))))
            break; /* NaN/Inf in this group: the scalar path takes it */
        __m256 amax = _mm256_castsi256_ps(abits);
        __m256i code = e4m3_pos8(_mm256_mul_ps(amax, _mm256_set1_ps(pre)));
        __m256 sv = e4m3_val8(code);
        __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(sv, _mm256_set1_ps(s_dec)));
        inv = _mm256_min_ps(inv, _mm256_set1_ps(NVFP4I_FLT_MAX));
        __m256 zero = _mm256_or_ps(_mm256_cmp_ps(amax, _mm256_setzero_ps(), _CMP_EQ_OQ),
                                   _mm256_cmp_ps(sv, _mm256_setzero_ps(), _CMP_EQ_OQ));
        inv = _mm256_andnot_ps(zero, inv);
        __m256 uf = _mm256_andnot_ps(_mm256_cmp_ps(amax, _mm256_setzero_ps(), _CMP_EQ_OQ),
                                     _mm256_cmp_ps(sv, _mm256_setzero_ps(), _CMP_EQ_OQ));
        *underflow += __builtin_popcount((unsigned)_mm256_movemask_ps(uf));
        __m128i sb = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
        _mm_storel_epi64((__m128i *)(void *)(scales + g), _mm_packus_epi16(sb, sb));
        for (int b = 0; b < 8; b++) {
            __m256 ib = _mm256_permutevar8x32_ps(inv, _mm256_set1_epi32(b));
            __m256i c0 = e2m1_8(_mm256_loadu_ps(xg + b * 16), ib);
            __m256i c1 = e2m1_8(_mm256_loadu_ps(xg + b * 16 + 8), ib);
            pack16(c0, c1, codes + (g + b) * 8);
        }
    }
    return g;
}

#else

int nvfp4i_have_avx2(void) { return 0; }

int64_t nvfp4i_max_row_avx2(const float *x, int64_t nblk, float pre, float s_dec, uint8_t *codes, uint8_t *scales,
                            int64_t *underflow)
{
    (void)x, (void)nblk, (void)pre, (void)s_dec, (void)codes, (void)scales, (void)underflow;
    return 0; /* no blocks done: the scalar path does them all */
}

#endif
