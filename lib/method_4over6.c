/* method_4over6.c - Four Over Six (SPEC §3.2): per block, the better of "amax → 6" and
 * "amax → 4" (the ×1.5 scale), scored exactly as mit-han-lab/fouroversix's PyTorch reference
 * scores them (quantize/pytorch/reference.py, select_fouroversix), with E2M1 saturation.
 *
 * Arithmetic order, each step one binary32 operation (RN32):
 *   base = RN32(RN32(a_b / 6) · s_enc)         s6 = E4M3(base), s4 = E4M3(RN32(base · 1.5))
 *   codes^c = E2M1(RN32(x · RN32(1 / RN32(s_dec · f(s_c)))))   (0 multiplier if f(s_c) = 0)
 *   x̂^c = RN32(RN32(RN32(value · f(s_c)) · A) / (6·M))       -- the reference's error domain,
 *         not the decode formula: the two differ in the last bit on near-tie blocks
 *   E_c = float32 sum (element order) of (x̂−x)², |x̂−x|, or the max |x̂−x|
 *   choose 4 iff E_4 < E_6.
 * With importance weights each term is RN32(h_i · term). Non-finite inputs (saturate policy)
 * add nothing. When the caller supplies the global scale, A/(6·M) no longer describes the
 * decode, so x̂ is the decoded value RN32(RN32(value · f(s_c)) · s_dec) instead.
 */
#include "internal.h"
#include "method_eval.h"

static float fo6_emax(const nvfp4_quantizer *q) { return (float)q->e4m3_max_4o6; }

/* What every block of one call shares. */
typedef struct {
    float s_enc, s_dec, A, six_m;
    int rule;
    int decode_domain; /* 1: caller-supplied global scale, score through the decode formula */
} fo6_params;

static fo6_params fo6_setup(const nvfp4i_job *job)
{
    fo6_params p;
    p.s_enc = job->s_enc;
    p.s_dec = job->s_dec;
    p.A = job->amax;
    p.six_m = 6.0f * job->emax; /* 1536 or 2688, exact */
    p.rule = job->q->rule;
    p.decode_domain = job->q->global_scale > 0.0;
    return p;
}

/* Reconstruction of each element in the scoring domain, then the block error (float32, in
 * element order). Split in two loops so that the first one vectorises. */
static inline float fo6_error(const fo6_params *p, const float *x, const float *h, const uint8_t *c, float f)
{
    float xh[16];
    if (p->decode_domain) {
        for (int i = 0; i < 16; i++)
            xh[i] = nvfp4i_decode(c[i], f, p->s_dec);
    } else {
        for (int i = 0; i < 16; i++)
            xh[i] = ((nvfp4i_e2m1_to_float(c[i]) * f) * p->A) / p->six_m;
    }
    float e = 0.0f;
    switch (p->rule) {
    case NVFP4_RULE_MAE:
        for (int i = 0; i < 16; i++) {
            float t = nvfp4i_fabs(xh[i] - x[i]);
            if (h)
                t = h[i] * t;
            e = nvfp4i_isfinite(x[i]) ? e + t : e;
        }
        break;
    case NVFP4_RULE_ABSMAX:
        for (int i = 0; i < 16; i++) {
            float t = nvfp4i_fabs(xh[i] - x[i]);
            if (h)
                t = h[i] * t;
            e = nvfp4i_isfinite(x[i]) && t > e ? t : e;
        }
        break;
    default: /* NVFP4_RULE_MSE */
        for (int i = 0; i < 16; i++) {
            float d = xh[i] - x[i];
            float t = d * d;
            if (h)
                t = h[i] * t;
            e = nvfp4i_isfinite(x[i]) ? e + t : e;
        }
        break;
    }
    return e;
}

/* One 16-element block: writes the chosen codes to c and returns the scale byte; *four is set
 * when the ×1.5 candidate wins. */
static inline uint8_t fo6_block(const fo6_params *p, const float *x, const float *h, float a, uint8_t *c,
                                int *four)
{
    uint8_t c4[16];
    *four = 0;
    if (a == 0.0f) { /* both candidates are the zero scale: keep 6 */
        for (int i = 0; i < 16; i++)
            c[i] = nvfp4i_encode(x[i], 0.0f);
        return 0;
    }
    float base = (a / 6.0f) * p->s_enc;
    uint8_t b6 = nvfp4i_e4m3_from_float(base);
    uint8_t b4 = nvfp4i_e4m3_from_float(base * 1.5f);
    float f6 = nvfp4i_e4m3_to_float(b6), f4 = nvfp4i_e4m3_to_float(b4);
    float inv6 = nvfp4i_block_inv(a, f6, p->s_dec), inv4 = nvfp4i_block_inv(a, f4, p->s_dec);
    for (int i = 0; i < 16; i++) {
        c[i] = nvfp4i_encode(x[i], inv6);
        c4[i] = nvfp4i_encode(x[i], inv4);
    }
    if (b4 == b6) /* identical candidates (e.g. the ×1.5 scale saturated at 448): a tie */
        return b6;
    float e6 = fo6_error(p, x, h, c, f6);
    float e4 = fo6_error(p, x, h, c4, f4);
    if (e4 < e6) {
        for (int i = 0; i < 16; i++)
            c[i] = c4[i];
        *four = 1;
        return b4;
    }
    return b6;
}

static uint8_t fo6_block_fn(const nvfp4i_job *job, const float *x, const float *h, float a, uint8_t *c,
                            nvfp4i_stats_acc *st)
{
    fo6_params p = fo6_setup(job);
    int four;
    uint8_t s = fo6_block(&p, x, h, a, c, &four);
    st->chose4 += four;
    st->chose6 += !four;
    st->underflow += a > 0.0f && nvfp4i_e4m3_to_float(s) == 0.0f;
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FO6_AVX2 1
#define FO6_TARGET __attribute__((target("avx2")))

/* The candidate's lane constants. On the fast path (2^-100 ≤ A ≤ 2^100) the reconstruction
 * RN32(RN32(RN32(v·f)·A)/(6M)) of E2M1 value v = 2^e·m' (m' = 1 or 1.5) equals 2^e·Q_m' with
 * Q_m' = RN32(RN32((m'·f)·A)/(6M)): v·f and m'·f are exact, and scaling by 2^e commutes with
 * every rounding as long as nothing leaves the normal range, which the bounds on A guarantee
 * (every nonzero intermediate lies in [2^-122, 2^110]). So two divisions per lane replace
 * sixteen. Outside those bounds the product and the division run per element. */
typedef struct {
    __m256 inv, f, q1, q3;
} fo6_lane;

FO6_TARGET static inline fo6_lane fo6_lane_setup(__m256 inv, __m256 f, __m256 A, __m256 sixm)
{
    fo6_lane l;
    l.inv = inv;
    l.f = f;
    l.q1 = _mm256_div_ps(_mm256_mul_ps(f, A), sixm);
    l.q3 = _mm256_div_ps(_mm256_mul_ps(_mm256_mul_ps(f, _mm256_set1_ps(1.5f)), A), sixm);
    return l;
}

/* One candidate's magnitude codes and scored term for element vector x (lanes = blocks), on
 * magnitudes: ax = |x| and x̂ = the decoded magnitude, so d = x̂ − |x| is ±(x̂_signed − x) and
 * d², |d| are the reference's terms bit for bit. */
FO6_TARGET static inline __m256 fo6_cand(__m256 ax, const fo6_lane *l, __m256 A, __m256 sixm, int fast, int rule,
                                         __m256i *mag)
{
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256i m = nvfp4i_e2m1_code8(_mm256_mul_ps(ax, l->inv));
    __m256 xh;
    *mag = m;
    if (fast) {
        const __m256 sel = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, -1, 0, -1, 0, -1));
        const __m256 sc = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.0f, 2.0f, 2.0f, 4.0f, 4.0f);
        __m256 q = _mm256_blendv_ps(l->q1, l->q3, _mm256_permutevar8x32_ps(sel, m));
        xh = _mm256_mul_ps(q, _mm256_permutevar8x32_ps(sc, m));
    } else {
        const __m256 tab = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
        xh = _mm256_div_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_permutevar8x32_ps(tab, m), l->f), A), sixm);
    }
    __m256 d = _mm256_sub_ps(xh, ax);
    return rule == NVFP4_RULE_MSE ? _mm256_mul_ps(d, d) : _mm256_andnot_ps(sign, d);
}

/* 8x8 transpose of int32 lanes (the same shuffle pattern as fo6_tr8). */
FO6_TARGET static inline void fo6_tr8i(__m256i r[8])
{
    __m256 f[8];
    for (int i = 0; i < 8; i++)
        f[i] = _mm256_castsi256_ps(r[i]);
    nvfp4i_tr8(f);
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_castps_si256(f[i]);
}

/* Eight blocks at a time, lanes = blocks, so each lane's error is summed in element order
 * exactly as fo6_error() does, with every rule of rounding.h applied lane by lane.
 * Preconditions: finite input, the reference error domain. */
FO6_TARGET __attribute__((always_inline)) static inline void
fo6_row_core(const fo6_params *p, const float *x, const float *h, int64_t ngroups, uint8_t *codes_row,
             uint8_t *scales_row, int64_t *n4, int64_t *uf, const int fast, const int rule)
{
    const __m256 A = _mm256_set1_ps(p->A), sixm = _mm256_set1_ps(p->six_m), sdec = _mm256_set1_ps(p->s_dec);
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 signm = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    for (int64_t g = 0; g < ngroups; g++) {
        const float *xg = x + g * 128;
        const float *hg = h ? h + g * 128 : NULL;
        __m256 r[16], w[16];
        for (int half = 0; half < 2; half++) {
            for (int b = 0; b < 8; b++)
                r[half * 8 + b] = _mm256_loadu_ps(xg + b * 16 + half * 8);
            nvfp4i_tr8(r + half * 8);
            if (hg) {
                for (int b = 0; b < 8; b++)
                    w[half * 8 + b] = _mm256_loadu_ps(hg + b * 16 + half * 8);
                nvfp4i_tr8(w + half * 8);
            }
        }
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < 16; i++)
            a = _mm256_max_ps(a, _mm256_and_ps(absm, r[i]));
        __m256 base = _mm256_mul_ps(_mm256_div_ps(a, _mm256_set1_ps(6.0f)), _mm256_set1_ps(p->s_enc));
        __m256i b6 = nvfp4i_e4m3_rne8(base), b4 = nvfp4i_e4m3_rne8(_mm256_mul_ps(base, _mm256_set1_ps(1.5f)));
        __m256 f6 = nvfp4i_e4m3_val8(b6), f4 = nvfp4i_e4m3_val8(b4);
        __m256 i6 = nvfp4i_block_inv8(a, f6, sdec), i4 = nvfp4i_block_inv8(a, f4, sdec);
        const fo6_lane l6 = fo6_lane_setup(i6, f6, A, sixm), l4 = fo6_lane_setup(i4, f4, A, sixm);
        __m256 e6 = _mm256_setzero_ps(), e4 = _mm256_setzero_ps();
        __m256i c6[16], c4[16], sg[16];
        for (int i = 0; i < 16; i++) {
            __m256 ax = _mm256_and_ps(absm, r[i]);
            sg[i] = _mm256_srli_epi32(_mm256_castps_si256(_mm256_and_ps(signm, r[i])), 28);
            __m256 t6 = fo6_cand(ax, &l6, A, sixm, fast, rule, &c6[i]);
            __m256 t4 = fo6_cand(ax, &l4, A, sixm, fast, rule, &c4[i]);
            if (hg) {
                t6 = _mm256_mul_ps(w[i], t6);
                t4 = _mm256_mul_ps(w[i], t4);
            }
            if (rule == NVFP4_RULE_ABSMAX) {
                e6 = _mm256_max_ps(t6, e6);
                e4 = _mm256_max_ps(t4, e4);
            } else {
                e6 = _mm256_add_ps(e6, t6);
                e4 = _mm256_add_ps(e4, t4);
            }
        }
        __m256i pick = _mm256_castps_si256(_mm256_cmp_ps(e4, e6, _CMP_LT_OQ));
        int pm = _mm256_movemask_ps(_mm256_castsi256_ps(pick));
        *n4 += __builtin_popcount((unsigned)pm);
        __m256 fs = _mm256_blendv_ps(f6, f4, _mm256_castsi256_ps(pick));
        __m256 ufm = _mm256_andnot_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ),
                                      _mm256_cmp_ps(fs, _mm256_setzero_ps(), _CMP_EQ_OQ));
        *uf += __builtin_popcount((unsigned)_mm256_movemask_ps(ufm));
        __m256i bs = _mm256_blendv_epi8(b6, b4, pick);
        __m128i sb = _mm_packus_epi32(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        _mm_storel_epi64((__m128i *)(void *)(scales_row + g * 8), _mm_packus_epi16(sb, sb));
        /* byte j of each block = code(2j) | code(2j+1) << 4, then blocks back to rows */
        __m256i pb[8];
        for (int j = 0; j < 8; j++) {
            __m256i lo = _mm256_or_si256(_mm256_blendv_epi8(c6[2 * j], c4[2 * j], pick), sg[2 * j]);
            __m256i hi = _mm256_or_si256(_mm256_blendv_epi8(c6[2 * j + 1], c4[2 * j + 1], pick), sg[2 * j + 1]);
            pb[j] = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
        }
        fo6_tr8i(pb); /* pb[b] = the 8 bytes of block b in int32 lanes */
        for (int b = 0; b < 8; b += 2) {
            __m256i two = _mm256_packus_epi32(pb[b], pb[b + 1]); /* words: b0..3 b'0..3 | b4..7 b'4..7 */
            two = _mm256_packus_epi16(two, two);                  /* bytes: b0..3 b'0..3 .. | b4..7 b'4..7 .. */
            __m128i lo = _mm256_castsi256_si128(two), hi = _mm256_extracti128_si256(two, 1);
            __m128i blk = _mm_unpacklo_epi32(lo, hi); /* b0..3 b4..7 b'0..3 b'4..7 */
            _mm_storeu_si128((__m128i *)(void *)(codes_row + (g * 8 + b) * 8), blk);
        }
    }
}

/* fo6_row_core with the common cases (the fast reconstruction, the MSE rule) as constants, so
 * the element loop carries no run-time switches; the same operations either way. */
FO6_TARGET static void fo6_row_avx2(const fo6_params *p, const float *x, const float *h, int64_t ngroups,
                                    uint8_t *codes_row, uint8_t *scales_row, int64_t *n4, int64_t *uf)
{
    const int fast = p->A >= 0x1p-100f && p->A <= 0x1p100f;
    if (fast && p->rule == NVFP4_RULE_MSE && !h)
        fo6_row_core(p, x, NULL, ngroups, codes_row, scales_row, n4, uf, 1, NVFP4_RULE_MSE);
    else if (fast && p->rule == NVFP4_RULE_MSE)
        fo6_row_core(p, x, h, ngroups, codes_row, scales_row, n4, uf, 1, NVFP4_RULE_MSE);
    else
        fo6_row_core(p, x, h, ngroups, codes_row, scales_row, n4, uf, fast, p->rule);
}

static int fo6_have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
#define FO6_AVX2 0
#endif

/* The whole-row path the driver prefers: eight blocks at a time with AVX2 where it applies,
 * otherwise the same block routine without a call per block. */
static void fo6_row_fn(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                       nvfp4i_stats_acc *st)
{
    fo6_params p = fo6_setup(job);
    uint8_t c[16];
    int64_t n4 = 0, uf = 0, k0 = 0;
#if FO6_AVX2
    if (job->nonfinite == 0 && !p.decode_domain && fo6_have_avx2()) {
        k0 = job->nblk / 8 * 8;
        fo6_row_avx2(&p, x, job->h, k0 / 8, codes_row, scales_row, &n4, &uf);
    }
#endif
    for (int64_t k = k0; k < job->nblk; k++) {
        const float *xb = x + k * 16;
        const float *hb = job->h ? job->h + k * 16 : NULL;
        float a = nvfp4i_block_amax(xb, 16);
        int four;
        uint8_t s = fo6_block(&p, xb, hb, a, c, &four);
        n4 += four;
        uf += a > 0.0f && nvfp4i_e4m3_to_float(s) == 0.0f;
        scales_row[k] = s;
        nvfp4i_pack(c, 16, codes_row + k * 8);
    }
    if (job->want_stats) {
        for (int64_t k = 0; k < job->nblk; k++) {
            const float *xb = x + k * 16;
            const float *hb = job->h ? job->h + k * 16 : NULL;
            uint8_t cb[16];
            for (int j = 0; j < 8; j++) {
                cb[2 * j] = codes_row[k * 8 + j] & 0xF;
                cb[2 * j + 1] = codes_row[k * 8 + j] >> 4;
            }
            st->sse += nvfp4i_block_sse(xb, hb, 16, cb, nvfp4i_e4m3_to_float(scales_row[k]), job->s_dec, &st->sum_sq);
            st->blocks++;
        }
    }
    st->chose4 += n4;
    st->chose6 += job->nblk - n4;
    st->underflow += uf;
}

const nvfp4i_method nvfp4i_method_4over6 = {"4over6", fo6_emax, fo6_block_fn, fo6_row_fn, NULL};
