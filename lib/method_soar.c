/* method_soar.c - SOAR (SPEC §3.3, §3.4): CJSO, the closed-form joint optimisation of the
 * global scale α (= s_dec) and the E4M3 block scales Δ_b, and DSS, the per-block exact search
 * over a code-choosing scale Δq decoupled from the stored scale Δd. `soar` = CJSO then DSS.
 *
 * Every error here is the decoded error Σ h_i (x̂_i − x_i)², x̂ = RN32(RN32(v·f(Δ))·α), summed in
 * float64 in element order exactly as nvfp4i_block_sse() sums it, so "never worse" holds for the
 * SSE the library reports. Refinements beyond SPEC (all keep the guarantees; docs/METHODS.md):
 * - CJSO's projection tests both E4M3 neighbours of the least-squares Δ_b (and the current Δ_b)
 *   with codes re-derived, keeping the best, so a Δ step never raises a block's error at fixed α;
 * - a block whose codes are all zero tries the MAX scale for the current α instead of keeping
 *   its old Δ_b (so CJSO can revive blocks that underflowed);
 * - all sums that set α are reduced per row, then across rows in row order, so the result does
 *   not depend on the thread count;
 * - with a caller-supplied global scale α stays fixed and only the Δ_b move.
 */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "method_eval.h"

static float soar_emax(const nvfp4_quantizer *q)
{
    (void)q;
    return 448.0f;
}

/* ---- shared block helpers ---------------------------------------------------------------- */

/* The E4M3 bytes on either side of a positive value D: *lo ≤ D ≤ *hi (equal when exact or
 * outside the range). */
static inline void e4m3_bracket(double D, uint8_t *lo, uint8_t *hi)
{
    uint8_t b = nvfp4i_e4m3_from_float((float)D); /* nearest, saturating at 448 */
    double fb = (double)nvfp4i_e4m3_to_float(b);
    *lo = *hi = b;
    if (fb > D && b > 0)
        *lo = (uint8_t)(b - 1);
    else if (fb < D && b < 0x7E)
        *hi = (uint8_t)(b + 1);
}

/* ---- DSS --------------------------------------------------------------------------------- */

/* SPEC §3.4 minimises per block E(Δq, Δd) = Σ w (x − α·Δd·v(x/(α·Δq)))² over a code-choosing
 * scale Δq in the window [lo·Δref, hi·Δref] (Δref = a/(6α), the unrounded MAX scale) and a
 * stored E4M3 scale Δd. It is solved here through one fact: for a fixed Δd, the codes that
 * minimise E are each element's nearest decoded value, whatever Δq chose them. Those are the
 * coupled codes of Δd (Δq = Δd), up to an element lying within rounding of a midpoint, where
 * the other neighbour is tried as well. So the minimum over (Δq, Δd) is the minimum over stored
 * bytes of the per-element-nearest error, and only bytes that are the best for some code set of
 * the window need trying. The best byte of a fixed code set is a neighbour of its least-squares
 * scale Σwxv/(α·Σwv²), a weighted mean of the ratios x_i/(α·v_i); for codes chosen at Δq each
 * ratio lies in (Δq/2, 1.5·Δq), or in (5/6·Δq, Δref] for an element saturated at 6. Hence the
 * bytes from the one at or below lo·Δref/2 to the one at or above 1.5·hi·Δref hold every
 * candidate of the breakpoint search of SPEC §3.4, and the minimum over them (31 bytes for the
 * default window) is exact: never worse than any (Δq, Δd) pair of the window
 * (tests/test_methods.c checks it against a brute-force grid). docs/METHODS.md has the proof.
 *
 * Two stages per block:
 *  1. every byte of the range is scored approximately in float32, in block-normalised units
 *     (x scaled by the power of two that puts the amax in [1, 2), weights by the one that puts
 *     the largest in [1, 2)): coupled codes, Σ w (z − v·s)² in element order. The scalar code
 *     and each AVX2 lane do the same float operations, so both paths give the same scores.
 *  2. the bytes scoring within 2^-8 (relative) + 2^-16·Σwz² of the best score are scored
 *     exactly: per-element nearest codes and the decoded error Σ w (x̂ − x)² in float64 in
 *     element order, as nvfp4i_block_sse() sums it. The smallest wins (the lowest byte on a tie)
 *     when it beats the start block's own decoded error.
 * A stage-1 score is within about 2^-21·sqrt(E·Σwz²) + 2^-19·E of its exact value (d = z − v·s
 * carries one rounding of v·s and one of the decode, each 2^-24 relative), far inside the
 * margin, so the exact winner is always among the bytes stage 2 scores. Blocks whose amax,
 * weights or decode steps lie outside [2^-100, 2^100] skip stage 1 and score every byte exactly. */

#define DSS_RANGE_MAX 128

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SOAR_AVX2 1
/* The eight-lane paths use AVX2 and FMA (the scalar paths use fmaf, so both give the same bits
 * on any machine). */
#define SOAR_TARGET __attribute__((target("avx2,fma")))
static int soar_have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
#define SOAR_AVX2 0
#endif

#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
/* Eight bytes as int32 lanes, and back (lanes 0..255). */
SOAR_TARGET static inline __m256i bytes8(const uint8_t *b)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)b));
}

SOAR_TARGET static inline void put_bytes8(__m256i v, uint8_t *b)
{
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extractf128_si256(v, 1));
    _mm_storel_epi64((__m128i *)(void *)b, _mm_packus_epi16(w, w));
}

/* nvfp4i_max_scale lane by lane, for amaxes a (int32 lanes). */
SOAR_TARGET static inline __m256i max_scale8(__m256 a, float pre)
{
    return nvfp4i_e4m3_rne8(_mm256_mul_ps(a, _mm256_set1_ps(pre)));
}
#endif

/* ---- block normalisation (DSS's stage 1 and CJSO's float32 scores) ----------------------- */

/* The powers of two that put a block's amax a, and its largest weight wm, into [1, 2); returns
 * whether both lie in [2^-100, 2^100] (else the block is scored exactly, and both are 1). */
static inline int norm_scales(float a, float wm, float *scale2, float *wscale)
{
    const int tame = a >= 0x1p-100f && a <= 0x1p100f && wm >= 0x1p-100f && wm <= 0x1p100f;
    *scale2 = tame ? nvfp4i_u2f((254u - (nvfp4i_f2u(a) >> 23)) << 23) : 1.0f;
    *wscale = tame ? nvfp4i_u2f((254u - (nvfp4i_f2u(wm) >> 23)) << 23) : 1.0f;
    return tame;
}

/* The largest weight of a block (1 without weights). */
static inline float blk_wmax(const float *h)
{
    float wm = 0.0f;
    if (!h)
        return 1.0f;
    for (int i = 0; i < 16; i++)
        wm = h[i] > wm ? h[i] : wm;
    return wm;
}

/* One block's float32 inputs, |x| and the normalised weights wn = h·wscale, with its normalised
 * sums (z = |x|·scale2). The eight-lane paths compute the same values (normalise8). */
typedef struct {
    float ax[16], wn[16];
    float a;              /* max |x| */
    float scale2, wscale; /* norm_scales */
    float S;              /* Σ wn·z² (float32, element order) */
    float za, wa;         /* z and wn of the (first) amax element (wa 0 if there is none) */
    int tame;             /* norm_scales' answer, and S ≥ 2^-60 */
} blk_norm;

static inline void blk_normalise(const float *x, const float *h, blk_norm *n)
{
    float a = 0.0f;
    for (int i = 0; i < 16; i++) {
        n->ax[i] = nvfp4i_u2f(nvfp4i_f2u(x[i]) & 0x7FFFFFFFu);
        a = n->ax[i] > a ? n->ax[i] : a;
    }
    n->a = a;
    n->tame = norm_scales(a, blk_wmax(h), &n->scale2, &n->wscale);
    float S = 0.0f;
    int ia = -1;
    for (int i = 0; i < 16; i++) {
        const float z = n->ax[i] * n->scale2;
        n->wn[i] = h ? h[i] * n->wscale : 1.0f;
        S = S + (n->wn[i] * z) * z;
        if (ia < 0 && n->ax[i] == a)
            ia = i;
    }
    n->S = S;
    n->za = a * n->scale2;
    n->wa = ia < 0 ? 0.0f : n->wn[ia];
    n->tame = n->tame && S >= 0x1p-60f; /* see byte_ok */
}

/* Whether the float32 scores serve byte b in a tame block with normalising scale scale2: b ≠ 0,
 * its decode step fa = f(b)·α within [2^-100, 2^100], and that step in normalised units,
 * s = fa·scale2, within [2^-20, 2^20]. Then every scaled value y = |x|/fa is at most 2^21 and
 * no square leaves float32, and with the block's S ≥ 2^-60 (its tameness) terms lost to
 * underflow (below 2^-126 in y units, 2^-86 normalised) are far inside the score margins. */
static inline int byte_ok(float scale2, uint8_t b, float alpha)
{
    const float fa = nvfp4i_e4m3_to_float(b) * alpha;
    const float s = fa * scale2;
    return b != 0 && fa >= 0x1p-100f && fa <= 0x1p100f && s >= 0x1p-20f && s <= 0x1p20f;
}

/* ---- the float32 score of a byte ---------------------------------------------------------
 * DSS's stage 1 and CJSO score a byte b of a normalised block by its coupled codes, in units of
 * the decode step ("y form"): fa = RN(f(b)·α), inv = min(RN(1/fa), FLT_MAX), y = RN(|x|·inv)
 * (the scaled values that choose the codes, exactly as nvfp4i_encode computes them), v = E2M1(y),
 * d = y − v, e = Σ fma(RN(wn·d), d, e) over elements 0-7 and over 8-15, each in element order,
 * then added (two chains the processor can overlap), score = RN(RN(e·s)·s) with the
 * normalised step s = RN(fa·scale2) (exact: scale2 is a power of two). Against the exact
 * normalised error E = Σ wn (z − x̂n)², x̂n = RN(v·f·α)·scale2: s·y is z within two roundings
 * and s·v is x̂n within two, so s·d = (z − x̂n) + η with |η| ≤ 4.1u|z| + 3.1u|z − x̂n| (u = 2^-24),
 * and with the products and the float32 sum (17u) and the two products by s,
 *     |score − E| ≤ 8.2u·sqrt(E·S) + 25.2u·E + 17u²·S   (S = Σ wn·z²),
 * i.e. about 2^-21·sqrt(E·S) + 2^-19.3·E + 2^-43.9·S. CJSO also takes the least-squares sums in
 * y units, p = Σ fma(wn·v, y, ·) and q = Σ fma(wn·v, v, ·), summed alike. The scalar code and each AVX2 lane
 * do the same IEEE operations (fmaf and the vector FMA round once alike; without weights wn is
 * exactly 1), so both paths give the same scores. */
static inline float yscore(const blk_norm *n, float f, float alpha, float *pp, float *pq)
{
    const float fa = f * alpha;
    float inv = 1.0f / fa;
    inv = inv <= NVFP4I_FLT_MAX ? inv : NVFP4I_FLT_MAX;
    const float s = fa * n->scale2;
    float e[2] = {0.0f, 0.0f}, p[2] = {0.0f, 0.0f}, q[2] = {0.0f, 0.0f};
    for (int i = 0; i < 16; i++) {
        const float y = n->ax[i] * inv;
        const float v = nvfp4i_e2m1_tab[nvfp4i_e2m1_from_float(y) & 7];
        const float d = y - v;
        e[i >> 3] = fmaf(n->wn[i] * d, d, e[i >> 3]);
        if (pp) {
            const float wv = n->wn[i] * v;
            p[i >> 3] = fmaf(wv, y, p[i >> 3]);
            q[i >> 3] = fmaf(wv, v, q[i >> 3]);
        }
    }
    if (pp) {
        *pp = p[0] + p[1];
        *pq = q[0] + q[1];
    }
    return ((e[0] + e[1]) * s) * s;
}

#if NVFP4I_EVAL_AVX2
/* blk_normalise for eight blocks, lane j = block j, from their transposed elements x[i] (and
 * weights w[i], or w NULL); tame is a lane mask. Finite input only (max_ps would keep a NaN). */
typedef struct {
    __m256 ax[16], wn[16];
    __m256 a, scale2, wscale, S, za, wa, tame;
} norm8;

NVFP4I_EVAL_TARGET static inline void normalise8(const __m256 *x, const __m256 *w, int want_wa, norm8 *n)
{
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_setzero_ps(), wm = one;
    for (int i = 0; i < 16; i++) {
        n->ax[i] = _mm256_andnot_ps(sign, x[i]);
        a = _mm256_max_ps(a, n->ax[i]);
    }
    if (w) {
        wm = _mm256_setzero_ps();
        for (int i = 0; i < 16; i++)
            wm = _mm256_max_ps(wm, w[i]);
    }
    const __m256 lo = _mm256_set1_ps(0x1p-100f), hi = _mm256_set1_ps(0x1p100f);
    n->tame = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(a, lo, _CMP_GE_OQ), _mm256_cmp_ps(a, hi, _CMP_LE_OQ)),
                            _mm256_and_ps(_mm256_cmp_ps(wm, lo, _CMP_GE_OQ), _mm256_cmp_ps(wm, hi, _CMP_LE_OQ)));
    const __m256i c254 = _mm256_set1_epi32(254);
    n->scale2 = _mm256_blendv_ps(
        one, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(c254, _mm256_srli_epi32(_mm256_castps_si256(a), 23)), 23)),
        n->tame);
    n->wscale = _mm256_blendv_ps(
        one, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(c254, _mm256_srli_epi32(_mm256_castps_si256(wm), 23)), 23)),
        n->tame);
    /* S = Σ (wn·z)·z in element order (z·z without weights: 1·z is z); the amax element's
     * weight only for DSS's clipping bound */
    __m256 S = _mm256_setzero_ps(), wa = one, found = _mm256_setzero_ps();
    if (w) {
        wa = _mm256_setzero_ps();
        for (int i = 0; i < 16; i++) {
            const __m256 z = _mm256_mul_ps(n->ax[i], n->scale2);
            n->wn[i] = _mm256_mul_ps(w[i], n->wscale);
            S = _mm256_add_ps(S, _mm256_mul_ps(_mm256_mul_ps(n->wn[i], z), z));
            if (want_wa) {
                const __m256 first = _mm256_andnot_ps(found, _mm256_cmp_ps(n->ax[i], a, _CMP_EQ_OQ));
                wa = _mm256_blendv_ps(wa, n->wn[i], first);
                found = _mm256_or_ps(found, first);
            }
        }
    } else {
        for (int i = 0; i < 16; i++) { /* wn is read only with weights */
            const __m256 z = _mm256_mul_ps(n->ax[i], n->scale2);
            S = _mm256_add_ps(S, _mm256_mul_ps(z, z));
        }
    }
    n->a = a;
    n->S = S;
    n->za = _mm256_mul_ps(a, n->scale2);
    n->wa = wa;
    n->tame = _mm256_and_ps(n->tame, _mm256_cmp_ps(S, _mm256_set1_ps(0x1p-60f), _CMP_GE_OQ));
}
#endif

/* ---- DSS's byte range --------------------------------------------------------------------- */

/* The byte range of a block with amax a > 0 (SPEC window [wlo, whi]), clamped to [1, 0x7E]:
 * from the byte at or below lo·Δref/2 to the one at or above 1.5·hi·Δref, Δref = a/(6α). In
 * float32 with a 2^-20 margin on each side, above the few roundings of ref and the products. */
static inline void dss_range(float a, float alpha, double wlo, double whi, int *blo, int *bhi)
{
    const float ref = (a / 6.0f) / alpha; /* not a/(6α): 6α overflows for α above FLT_MAX/6 */
    const float lo = ref * (float)(0.5 * wlo * (1.0 - 0x1p-20)), hi = ref * (float)(1.5 * whi * (1.0 + 0x1p-20));
    int l = nvfp4i_e4m3_floor_byte(lo), h = nvfp4i_e4m3_floor_byte(hi);
    if (h < 0x7E && nvfp4i_e4m3_to_float((uint8_t)h) < hi)
        h++;
    *blo = l < 1 ? 1 : l;
    *bhi = h < *blo ? *blo : h;
}

/* A block's byte range. */
typedef struct {
    int blo, bhi;
} dss_lane;

/* The stage-2 threshold for the smallest score m. */
static inline float dss_thr(float m, float S) { return m + m * 0x1p-8f + S * 0x1p-16f; }

/* Stage 1 for one block, scalar, from the top byte down: score[k·stride] for byte blo + k
 * (yscore). A byte whose decode step s clips the amax element, za − 6s > 0, has an exact error
 * of at least wa·(za − 6s·(1 + 2^-23))² (its amax term; every other term is ≥ 0); once the
 * float32 value B = RN(RN(wa·dd)·dd), dd = RN(za − RN(6s)), exceeds the threshold of the best
 * score so far, it does for every lower byte too, and the scan stops: B is within
 * 5u·B + 12u·sqrt(B·wa)·s ≤ 2^-20.5·S + 5u·B of that lower bound (s < za/6 < 1/3, wa ≤ S), far
 * inside the threshold's margin, so those bytes cannot hold the exact winner. Returns the
 * lowest k scored; *thr the threshold. dss_stage1_avx2 computes the same scores, stops and
 * threshold in each lane. */
static int dss_stage1(const blk_norm *n, int blo, int bhi, float alpha, float *score, int stride, float *thr)
{
    float mn = INFINITY;
    int k = bhi - blo;
    for (; k >= 0; k--) {
        const float f = nvfp4i_e4m3_to_float((uint8_t)(blo + k));
        const float s = (f * alpha) * n->scale2;
        float dd = n->za - 6.0f * s;
        dd = dd > 0.0f ? dd : 0.0f;
        if ((n->wa * dd) * dd > dss_thr(mn, n->S))
            break;
        const float e = yscore(n, f, alpha, NULL, NULL);
        score[k * stride] = e;
        mn = e < mn ? e : mn;
    }
    *thr = dss_thr(mn, n->S);
    return k + 1;
}

/* Stage 2 for one byte: the per-element nearest codes (written to c) and their decoded error,
 * summed as nvfp4i_block_sse() sums it. From the coupled code, a step towards x is taken while
 * it decodes strictly closer (only near a midpoint does it). */
static double dss_exact(const float *x, const float *h, float a, uint8_t b, float alpha, uint8_t *c)
{
    const float f = nvfp4i_e4m3_to_float(b);
    const float inv = nvfp4i_block_inv(a, f, alpha);
    double e = 0.0;
    for (int i = 0; i < 16; i++) {
        uint8_t code = nvfp4i_encode(x[i], inv);
        if (!nvfp4i_isfinite(x[i])) {
            c[i] = code;
            continue;
        }
        double d = (double)nvfp4i_decode(code, f, alpha) - (double)x[i];
        for (;;) { /* x̂ − x < 0 on the magnitude side: a larger magnitude decodes closer */
            const int up = (d < 0.0) == !(code & 8u);
            const int m = (int)(code & 7u) + (up ? 1 : -1);
            if (d == 0.0 || m < 0 || m > 7)
                break;
            const uint8_t c2 = (uint8_t)((code & 8u) | (uint32_t)m);
            const double d2 = (double)nvfp4i_decode(c2, f, alpha) - (double)x[i];
            if (!(fabs(d2) < fabs(d)))
                break;
            code = c2;
            d = d2;
        }
        c[i] = code;
        const double w = h ? (double)h[i] : 1.0;
        e += nvfp4i_err_term(w, d);
    }
    return e;
}

/* Stage 2 over the candidates (bytes blo + k, k ≥ k0, with score[k·stride] ≤ thr; every byte of
 * the range when score is NULL) and the decision against the start block (byte start, codes
 * already in codes, decoded error es). */
static uint8_t dss_finish(const float *x, const float *h, float a, float alpha, int blo, int bhi, const float *score,
                          int stride, int k0, float thr, uint8_t start, double es, uint8_t *codes, int *won)
{
    double best = es;
    uint8_t bb = start, c[16];
    *won = 0;
    for (int k = score ? k0 : 0; k <= bhi - blo; k++) {
        if (score && !(score[k * stride] <= thr))
            continue;
        const double e = dss_exact(x, h, a, (uint8_t)(blo + k), alpha, c);
        if (e < best) {
            best = e;
            bb = (uint8_t)(blo + k);
            *won = 1;
            if (codes)
                memcpy(codes, c, sizeof c);
        }
    }
    return bb;
}

/* DSS on one block (any input) from the start byte (MAX's, or CJSO's for `soar`). */
static uint8_t dss_block(const float *x, const float *h, float a, float alpha, uint8_t start, double wlo, double whi,
                         uint8_t *codes)
{
    double t1, t2;
    const double es = nvfp4i_eval_block(x, h, a, start, alpha, codes, &t1, &t2);
    if (!(a > 0.0f) || !nvfp4i_isfinite(a) || es == 0.0)
        return start;
    int fin = 1, won, blo, bhi;
    for (int i = 0; i < 16; i++)
        fin &= nvfp4i_isfinite(x[i]);
    dss_range(a, alpha, wlo, whi, &blo, &bhi);
    blk_norm n;
    blk_normalise(x, h, &n);
    if (fin && n.tame && byte_ok(n.scale2, (uint8_t)blo, alpha) && byte_ok(n.scale2, (uint8_t)bhi, alpha)) {
        float score[DSS_RANGE_MAX], thr;
        const int k0 = dss_stage1(&n, blo, bhi, alpha, score, 1, &thr);
        return dss_finish(x, h, a, alpha, blo, bhi, score, 1, k0, thr, start, es, codes, &won);
    }
    return dss_finish(x, h, a, alpha, blo, bhi, NULL, 1, 0, 0.0f, start, es, codes, &won);
}

#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
/* byte_ok lane by lane (bytes as int32 lanes), as a lane mask. */
SOAR_TARGET static inline __m256 cjf_ok8(__m256 scale2, __m256i b, float alpha)
{
    const __m256 fa = _mm256_mul_ps(nvfp4i_e4m3_val8(b), _mm256_set1_ps(alpha)), s = _mm256_mul_ps(fa, scale2);
    __m256 ok = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(b, _mm256_setzero_si256())),
                                 _mm256_cmp_ps(fa, _mm256_set1_ps(0x1p-100f), _CMP_GE_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(fa, _mm256_set1_ps(0x1p100f), _CMP_LE_OQ));
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(s, _mm256_set1_ps(0x1p-20f), _CMP_GE_OQ));
    return _mm256_and_ps(ok, _mm256_cmp_ps(s, _mm256_set1_ps(0x1p20f), _CMP_LE_OQ));
}

/* e += RN(wn·d)·d for the scaled values y (one element, eight lanes); full: y may reach 7. */
#define YSTEP(y, v, d, e, full, wgt, wn)                                                         \
    do {                                                                                          \
        v = (full) ? nvfp4i_e2m1_val8(y) : nvfp4i_e2m1_val8_lt7(y);                                           \
        d = _mm256_sub_ps(y, v);                                                                  \
        e = _mm256_fmadd_ps((wgt) ? _mm256_mul_ps(wn, d) : d, d, e);                              \
    } while (0)

/* Stage 1's element loop for two bytes (inverse steps inv0, inv1). */
SOAR_TARGET __attribute__((noinline)) static void dss_sum2(const norm8 *n, int weighted, int full, __m256 inv0, __m256 inv1, __m256 *pe0,
                                        __m256 *pe1)
{
    /* elements 0-7 and 8-15 in separate sums (yscore's order): four chains at once */
    __m256 e0a = _mm256_setzero_ps(), e0b = e0a, e1a = e0a, e1b = e0a;
    for (int i = 0; i < 8; i++) {
        __m256 v, d;
        const __m256 y0 = _mm256_mul_ps(n->ax[i], inv0), y1 = _mm256_mul_ps(n->ax[i], inv1);
        const __m256 y2 = _mm256_mul_ps(n->ax[i + 8], inv0), y3 = _mm256_mul_ps(n->ax[i + 8], inv1);
        YSTEP(y0, v, d, e0a, full, weighted, n->wn[i]);
        YSTEP(y1, v, d, e1a, full, weighted, n->wn[i]);
        YSTEP(y2, v, d, e0b, full, weighted, n->wn[i + 8]);
        YSTEP(y3, v, d, e1b, full, weighted, n->wn[i + 8]);
    }
    *pe0 = _mm256_add_ps(e0a, e0b);
    *pe1 = _mm256_add_ps(e1a, e1b);
}

/* Stage 1 for eight blocks, lane j = block j, from the top byte down, dss_stage1's operations,
 * stops and threshold in each lane: score[k][j], +Inf for bytes outside lane j's range, below
 * its stop, or in lanes not live (live[j] = 0, computed on their own data). Two bytes per pass,
 * for two independent sums; the scan ends when every lane has stopped. The cheaper grid rounding
 * serves a pass when every live lane's largest scaled value RN(a·inv) is below 7. Returns the
 * lowest k scored; thr[j] the threshold. */
SOAR_TARGET static int dss_stage1_avx2(const norm8 *n, int weighted, const dss_lane *L, const int *live, float alpha,
                                       float (*score)[8], float *thr)
{
    int32_t lo[8], hi[8], dead[8];
    int span = 0;
    for (int j = 0; j < 8; j++) {
        lo[j] = live[j] ? L[j].blo : 1;
        hi[j] = live[j] ? L[j].bhi : 0; /* a dead lane is past its range everywhere */
        dead[j] = live[j] ? 0 : -1;
        span = live[j] && L[j].bhi - L[j].blo > span ? L[j].bhi - L[j].blo : span;
    }
    const __m256 s2 = n->scale2, vS = n->S, vza = n->za, vwa = n->wa;
    const __m256 al = _mm256_set1_ps(alpha), fmax = _mm256_set1_ps(NVFP4I_FLT_MAX), one = _mm256_set1_ps(1.0f);
    const __m256 inf = _mm256_set1_ps(INFINITY), six = _mm256_set1_ps(6.0f), zero = _mm256_setzero_ps();
    const __m256 c8 = _mm256_set1_ps(0x1p-8f), c16 = _mm256_set1_ps(0x1p-16f), seven = _mm256_set1_ps(7.0f);
    const __m256i blo = _mm256_loadu_si256((const __m256i *)(const void *)lo);
    const __m256i bhi = _mm256_loadu_si256((const __m256i *)(const void *)hi);
    __m256 mn = inf, stop = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(const void *)dead));
#define DSS_THR(m) _mm256_add_ps(_mm256_add_ps(m, _mm256_mul_ps(m, c8)), _mm256_mul_ps(vS, c16))
#define DSS_CLIP(sv) /* the clipping bound of dss_stage1 */                                        \
    _mm256_mul_ps(_mm256_mul_ps(vwa, _mm256_max_ps(_mm256_sub_ps(vza, _mm256_mul_ps(six, sv)), zero)),   \
                  _mm256_max_ps(_mm256_sub_ps(vza, _mm256_mul_ps(six, sv)), zero))
    int k = span;
    for (; k >= 0; k -= 2) {
        const __m256i b0 = _mm256_add_epi32(blo, _mm256_set1_epi32(k));
        const __m256i b1 = _mm256_sub_epi32(b0, _mm256_set1_epi32(1));
        const __m256 in0 = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_cmpgt_epi32(b0, bhi), _mm256_set1_epi32(-1)));
        const __m256 in1 = _mm256_castsi256_ps(_mm256_andnot_si256(
            _mm256_or_si256(_mm256_cmpgt_epi32(b1, bhi), _mm256_cmpgt_epi32(blo, b1)), _mm256_set1_epi32(-1)));
        const __m256 fa0 = _mm256_mul_ps(nvfp4i_e4m3_val8(_mm256_min_epi32(b0, bhi)), al);
        const __m256 fa1 = _mm256_mul_ps(nvfp4i_e4m3_val8(_mm256_max_epi32(_mm256_min_epi32(b1, bhi), blo)), al);
        const __m256 sv0 = _mm256_mul_ps(fa0, s2), sv1 = _mm256_mul_ps(fa1, s2);
        stop = _mm256_or_ps(stop, _mm256_and_ps(in0, _mm256_cmp_ps(DSS_CLIP(sv0), DSS_THR(mn), _CMP_GT_OQ)));
        if (_mm256_movemask_ps(stop) == 0xFF)
            break;
        const __m256 inv0 = _mm256_min_ps(_mm256_div_ps(one, fa0), fmax), inv1 = _mm256_min_ps(_mm256_div_ps(one, fa1), fmax);
        /* the largest scaled value of the lanes still going, for the cheaper rounding */
        const __m256 ya = _mm256_max_ps(_mm256_mul_ps(n->a, inv0), _mm256_mul_ps(n->a, inv1));
        const int full = _mm256_movemask_ps(_mm256_andnot_ps(stop, _mm256_cmp_ps(ya, seven, _CMP_GE_OQ))) != 0;
        __m256 e0, e1;
        if (full)
            dss_sum2(n, weighted, 1, inv0, inv1, &e0, &e1);
        else
            dss_sum2(n, weighted, 0, inv0, inv1, &e0, &e1);
        e0 = _mm256_blendv_ps(inf, _mm256_mul_ps(_mm256_mul_ps(e0, sv0), sv0), _mm256_andnot_ps(stop, in0));
        _mm256_storeu_ps(score[k], e0);
        mn = _mm256_min_ps(mn, e0);
        if (k >= 1) {
            stop = _mm256_or_ps(stop, _mm256_and_ps(in1, _mm256_cmp_ps(DSS_CLIP(sv1), DSS_THR(mn), _CMP_GT_OQ)));
            e1 = _mm256_blendv_ps(inf, _mm256_mul_ps(_mm256_mul_ps(e1, sv1), sv1), _mm256_andnot_ps(stop, in1));
            _mm256_storeu_ps(score[k - 1], e1);
            mn = _mm256_min_ps(mn, e1);
        }
    }
    _mm256_storeu_ps(thr, DSS_THR(mn));
#undef DSS_THR
#undef DSS_CLIP
    return k + 1 > 0 ? k + 1 : 0;
}

/* The coupled codes of byte b[j] for each of eight blocks (nvfp4i_encode lane by lane), packed
 * as nvfp4i_pack packs them (element 2i in the low nibble of byte i) straight into out[8j..8j+7].
 * Returns the lanes of `need` where some element's neighbour code towards x might decode strictly
 * closer than its coupled code (only there can the per-element nearest codes differ from the
 * coupled ones). The test works on the scaled value y = RN(|x|·inv) and its coupled value v:
 * with D = f·α, y is |x|/D within 3.01u (u = 2^-24) and the decoded values are v·D and v'·D
 * within u each, so a neighbour v' can decode strictly closer only if |x|/D lies past the
 * midpoint of v and v' less 6u, i.e. |y − v| ≥ |v' − v|/2 − 25u. The test flags
 * |y − v| ≥ h − 2^-18·(y + 1), h the half-gap towards y (+Inf past 6), a superset. */
SOAR_TARGET static int dss_codes_near8(const nvfp4i_eval8_in *in, const float *a, const uint8_t *b, float alpha,
                                       int need, uint8_t *out)
{
    const __m256 f = nvfp4i_e4m3_val8(bytes8(b)), zero = _mm256_setzero_ps();
    const __m256 inv = nvfp4i_block_inv8(_mm256_loadu_ps(a), f, _mm256_set1_ps(alpha));
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 tab = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
    const __m256 hup = _mm256_setr_ps(0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 0.5f, 1.0f, INFINITY);
    const __m256 hdn = _mm256_setr_ps(INFINITY, 0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 0.5f, 1.0f);
    const __m256 tau = _mm256_set1_ps(0x1p-18f);
    __m256i pb[8];
    __m256 maybe = _mm256_setzero_ps();
    for (int i = 0; i < 16; i++) {
        const __m256 y = _mm256_mul_ps(_mm256_andnot_ps(sign, in->x[i]), inv);
        const __m256i m = nvfp4i_e2m1_code8(y);
        const __m256i c = _mm256_or_si256(m, _mm256_srli_epi32(_mm256_castps_si256(_mm256_and_ps(sign, in->x[i])), 28));
        pb[i / 2] = i % 2 ? _mm256_or_si256(pb[i / 2], _mm256_slli_epi32(c, 4)) : c;
        if (need) {
            const __m256 d = _mm256_sub_ps(y, _mm256_permutevar8x32_ps(tab, m));
            const __m256 h = _mm256_blendv_ps(_mm256_permutevar8x32_ps(hdn, m), _mm256_permutevar8x32_ps(hup, m),
                                              _mm256_cmp_ps(d, zero, _CMP_GT_OQ));
            maybe = _mm256_or_ps(maybe, _mm256_cmp_ps(_mm256_sub_ps(h, _mm256_andnot_ps(sign, d)),
                                                      _mm256_fmadd_ps(y, tau, tau), _CMP_LE_OQ));
        }
    }
    /* lane j's eight bytes: the low four in lo, the high four in hi, then 64-bit lanes in order */
    __m256i lo = pb[0], hi = pb[4];
    for (int p = 1; p < 4; p++) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi32(pb[p], 8 * p));
        hi = _mm256_or_si256(hi, _mm256_slli_epi32(pb[4 + p], 8 * p));
    }
    const __m256i u0 = _mm256_unpacklo_epi32(lo, hi), u1 = _mm256_unpackhi_epi32(lo, hi); /* blocks 0 1 4 5, 2 3 6 7 */
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256((__m256i *)(void *)(out + 32), _mm256_permute2x128_si256(u0, u1, 0x31));
    return need & _mm256_movemask_ps(maybe);
}

/* Stage 2 for eight blocks given by pointers (xp[j], hp[j], finite input), one byte each (b[j]):
 * lanes in `near` get dss_exact's error (per-element nearest codes), the others
 * nvfp4i_eval_block's (coupled codes), summed in float64 in element order either way. The
 * coupled code's neighbour towards x can decode strictly closer only where x is within rounding
 * of a midpoint (in a tame block the coupled code is within one step of the nearest, so
 * dss_exact's walk never takes a second step); a float32 test that cannot miss such a lane
 * (|fl(x̂₂ − |x|)| ≤ |fl(x̂ − |x|)|·(1 + 2^-20), each difference within 2^-24 of exact) sends an
 * element down the float64 comparison only when some lane might. */
SOAR_TARGET static void dss_exact8p(const float *const *xp, const float *const *hp, const uint8_t *b, float alpha,
                                    int near, double *err)
{
    __m256 xt[16], wt[16];
    const int weighted = hp[0] != NULL;
    for (int half = 0; half < 2; half++) {
        for (int j = 0; j < 8; j++)
            xt[half * 8 + j] = _mm256_loadu_ps(xp[j] + half * 8);
        nvfp4i_tr8(xt + half * 8);
        if (weighted) {
            for (int j = 0; j < 8; j++)
                wt[half * 8 + j] = _mm256_loadu_ps(hp[j] + half * 8);
            nvfp4i_tr8(wt + half * 8);
        }
    }
    const __m256 al = _mm256_set1_ps(alpha), f = nvfp4i_e4m3_val8(bytes8(b));
    const __m256 inv =
        _mm256_min_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(f, al)), _mm256_set1_ps(NVFP4I_FLT_MAX));
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 tab = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
    const __m256 nearv = _mm256_set1_ps(1.0f + 0x1p-20f);
    const __m256d sd = _mm256_castsi256_pd(_mm256_set1_epi64x((long long)0x8000000000000000ull));
    const __m256i coupled = _mm256_cmpeq_epi32(
        _mm256_and_si256(_mm256_set1_epi32(near), _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)), _mm256_setzero_si256());
    __m256d e0 = _mm256_setzero_pd(), e1 = _mm256_setzero_pd();
    for (int i = 0; i < 16; i++) {
        const __m256 ax = _mm256_andnot_ps(sign, xt[i]);
        const __m256i m = nvfp4i_e2m1_code8(_mm256_mul_ps(ax, inv));
        const __m256 xh = _mm256_mul_ps(_mm256_mul_ps(_mm256_permutevar8x32_ps(tab, m), f), al);
        const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(ax));
        const __m256d a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(ax, 1));
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xh)), a0);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1)), a1);
        /* the neighbour towards x: up where x̂ < |x|, else down; none at x̂ = |x|, past 0..7, or
         * in a coupled lane */
        const __m256i up = _mm256_castps_si256(_mm256_cmp_ps(xh, ax, _CMP_LT_OQ));
        const __m256i m2 = _mm256_sub_epi32(m, _mm256_or_si256(up, _mm256_set1_epi32(1)));
        const __m256i bad =
            _mm256_or_si256(_mm256_or_si256(_mm256_castps_si256(_mm256_cmp_ps(xh, ax, _CMP_EQ_OQ)), coupled),
                            _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), m2),
                                            _mm256_cmpgt_epi32(m2, _mm256_set1_epi32(7))));
        const __m256 xh2 = _mm256_mul_ps(
            _mm256_mul_ps(_mm256_permutevar8x32_ps(tab, _mm256_and_si256(m2, _mm256_set1_epi32(7))), f), al);
        const __m256 maybe = _mm256_andnot_ps(
            _mm256_castsi256_ps(bad),
            _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(xh2, ax)),
                          _mm256_mul_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(xh, ax)), nearv), _CMP_LE_OQ));
        if (_mm256_movemask_ps(maybe)) { /* the exact comparison, in float64 as dss_exact makes it */
            const __m256i ok = _mm256_andnot_si256(bad, _mm256_set1_epi32(-1));
            const __m256d g0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xh2)), a0);
            const __m256d g1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xh2, 1)), a1);
            const __m256d t0 = _mm256_and_pd(_mm256_cmp_pd(_mm256_andnot_pd(sd, g0), _mm256_andnot_pd(sd, d0), _CMP_LT_OQ),
                                             _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ok))));
            const __m256d t1 = _mm256_and_pd(_mm256_cmp_pd(_mm256_andnot_pd(sd, g1), _mm256_andnot_pd(sd, d1), _CMP_LT_OQ),
                                             _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extractf128_si256(ok, 1))));
            d0 = _mm256_blendv_pd(d0, g0, t0);
            d1 = _mm256_blendv_pd(d1, g1, t1);
        }
        if (weighted) {
            const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(wt[i]));
            const __m256d w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(wt[i], 1));
            e0 = _mm256_add_pd(e0, _mm256_mul_pd(_mm256_mul_pd(w0, d0), d0));
            e1 = _mm256_add_pd(e1, _mm256_mul_pd(_mm256_mul_pd(w1, d1), d1));
        } else {
            e0 = _mm256_add_pd(e0, _mm256_mul_pd(d0, d0));
            e1 = _mm256_add_pd(e1, _mm256_mul_pd(d1, d1));
        }
    }
    _mm256_storeu_pd(err, e0);
    _mm256_storeu_pd(err + 4, e1);
}

/* Stage 2 queued over a row: a block with several candidates (or a start byte outside its range)
 * needs the exact error of its start block (coupled codes) and of each candidate (nearest codes);
 * those items are scored eight at a time, whatever blocks they come from, and each block is then
 * resolved as dss_finish resolves it: the smallest candidate error wins (the lowest byte on a tie)
 * when it is strictly below the start block's; a winner's nearest codes come from dss_exact. */
#define DSSQ_ITEMS 64
#define DSSQ_BLOCKS 16
typedef struct {
    const float *x, *h; /* the row (block k at x + 16k) and its weights, or NULL */
    float alpha;
    uint8_t *scales, *codes; /* the row's outputs (linear scales, packed codes) */
    int n, nb;
    int32_t slot[DSSQ_ITEMS];
    uint8_t byte[DSSQ_ITEMS], near[DSSQ_ITEMS];
    int64_t blk[DSSQ_BLOCKS];
    float a[DSSQ_BLOCKS];
    double es[DSSQ_BLOCKS], be[DSSQ_BLOCKS];
    uint8_t bb[DSSQ_BLOCKS];
} dss_queue;

static void dssq_init(dss_queue *q, const float *x, const float *h, float alpha, uint8_t *scales, uint8_t *codes)
{
    q->x = x;
    q->h = h;
    q->alpha = alpha;
    q->scales = scales;
    q->codes = codes;
    q->n = q->nb = 0;
}

SOAR_TARGET static void dssq_flush(dss_queue *q)
{
    for (int i = 0; i < q->n; i += 8) {
        const float *xp[8], *hp[8];
        uint8_t b[8];
        int near = 0;
        double e[8];
        for (int j = 0; j < 8; j++) { /* a short last batch repeats its first item */
            const int t = i + j < q->n ? i + j : i;
            const int64_t k = q->blk[q->slot[t]];
            xp[j] = q->x + 16 * k;
            hp[j] = q->h ? q->h + 16 * k : NULL;
            b[j] = q->byte[t];
            near |= q->near[t] << j;
        }
        dss_exact8p(xp, hp, b, q->alpha, near, e);
        for (int j = 0; j < 8 && i + j < q->n; j++) {
            const int s = q->slot[i + j];
            if (!q->near[i + j])
                q->es[s] = e[j];
            else if (e[j] < q->be[s] || (e[j] == q->be[s] && b[j] < q->bb[s])) {
                q->be[s] = e[j];
                q->bb[s] = b[j];
            }
        }
    }
    for (int s = 0; s < q->nb; s++)
        if (q->be[s] < q->es[s]) {
            const int64_t k = q->blk[s];
            uint8_t c[16];
            q->scales[k] = q->bb[s];
            dss_exact(q->x + 16 * k, q->h ? q->h + 16 * k : NULL, q->a[s], q->bb[s], q->alpha, c);
            nvfp4i_pack(c, 16, q->codes + 8 * k);
        }
    q->n = q->nb = 0;
}

/* Queues block k (amax a, start byte st, already written with its coupled codes) with its
 * candidate bytes cand[0..nc), nc < DSSQ_ITEMS. */
static void dssq_add(dss_queue *q, int64_t k, float a, uint8_t st, const uint8_t *cand, int nc)
{
    if (q->nb == DSSQ_BLOCKS || q->n + 1 + nc > DSSQ_ITEMS)
        dssq_flush(q);
    const int s = q->nb++;
    q->blk[s] = k;
    q->a[s] = a;
    q->be[s] = INFINITY;
    q->bb[s] = 0xFF;
    q->slot[q->n] = s, q->byte[q->n] = st, q->near[q->n] = 0, q->n++;
    for (int i = 0; i < nc; i++)
        q->slot[q->n] = s, q->byte[q->n] = cand[i], q->near[q->n] = 1, q->n++;
}

/* How stage 1 leaves a lane of dss_group_avx2. */
enum {
    DSS_NONE,   /* amax 0: the start block stays */
    DSS_KEEP,   /* the start byte is the only candidate: it stays (codes: see below) */
    DSS_SINGLE, /* one candidate, not the start byte, which scores above the threshold: it wins */
    DSS_EXACT,  /* several candidates, or a start byte outside the range: stage 2 */
    DSS_FULL    /* outside stage 1's float32 range: every byte of the range exactly */
};

/* Writes a block's 16 codes packed at out (nvfp4i_pack). */
static inline void dss_put(const uint8_t *c, uint8_t *out) { nvfp4i_pack(c, 16, out); }

/* dss_block for eight consecutive blocks (finite input): the same bytes and codes, with stage 2
 * only where it can change the answer. A candidate of stage 2 is a byte scoring within the
 * threshold; the exact winner is always one (see above), and the start byte wins unless some
 * candidate's exact error is strictly lower. So:
 *  - DSS_KEEP: the only candidate is the start byte; nothing can beat the start block, which
 *    stays, except that dss_block's stage 2 would score the start byte's per-element nearest
 *    codes against its coupled ones: where a lane's nearest codes may differ (the float32 test of
 *    dss_codes_near8), both errors are computed exactly, as dss_finish would.
 *  - DSS_SINGLE: the only candidate b is not the start byte, and the start byte (inside the range)
 *    scored above the threshold, or lies below the byte where the scan stopped (its exact error
 *    then exceeds the threshold less the clipping bound's slack): the start block's exact error
 *    exceeds the threshold less the score margin, b's lies within the margin of the smallest
 *    score, so b wins, with its per-element nearest codes, as dss_finish would find.
 *  - DSS_EXACT: the start block's exact error and each candidate's, through the row's stage-2
 *    queue (dssq_add), resolved as dss_finish resolves them.
 * Writes the bytes and the 8 packed code bytes of each block (out[8j..]). */
SOAR_TARGET static void dss_group_avx2(dss_queue *q, int64_t kg, float alpha, const uint8_t *start, float pre,
                                       double wlo, double whi, float *a)
{
    const float *x = q->x + 16 * kg, *h = q->h ? q->h + 16 * kg : NULL;
    uint8_t *bytes = q->scales + kg, *out = q->codes + 8 * kg;
    nvfp4i_eval8_in in;
    nvfp4i_eval8_load32(&in, x, h);
    norm8 n8;
    normalise8(in.x, in.weighted ? in.w : NULL, 1, &n8);
    _mm256_storeu_ps(a, n8.a); /* nvfp4i_block_amax of each block (finite input) */
    /* dss_range and the live test (n8.tame, byte_ok at both ends), eight lanes at once */
    const __m256 ref = _mm256_div_ps(_mm256_div_ps(n8.a, _mm256_set1_ps(6.0f)), _mm256_set1_ps(alpha));
    const __m256 rlo = _mm256_mul_ps(ref, _mm256_set1_ps((float)(0.5 * wlo * (1.0 - 0x1p-20))));
    const __m256 rhi = _mm256_mul_ps(ref, _mm256_set1_ps((float)(1.5 * whi * (1.0 + 0x1p-20))));
    __m256i vlo = nvfp4i_e4m3_floor8(rlo), vhi = nvfp4i_e4m3_floor8(rhi);
    vhi = _mm256_sub_epi32(vhi, _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x7E), vhi),
                                                 _mm256_castps_si256(_mm256_cmp_ps(nvfp4i_e4m3_val8(vhi), rhi, _CMP_LT_OQ))));
    vlo = _mm256_max_epi32(vlo, _mm256_set1_epi32(1));
    vhi = _mm256_max_epi32(vhi, vlo);
    const __m256 pos = _mm256_cmp_ps(n8.a, _mm256_setzero_ps(), _CMP_GT_OQ);
    const int pm = _mm256_movemask_ps(pos);
    const int lm = _mm256_movemask_ps(_mm256_and_ps(_mm256_and_ps(pos, n8.tame),
                                                    _mm256_and_ps(cjf_ok8(n8.scale2, vlo, alpha), cjf_ok8(n8.scale2, vhi, alpha))));
    int32_t blo_v[8], bhi_v[8];
    _mm256_storeu_si256((__m256i *)(void *)blo_v, vlo);
    _mm256_storeu_si256((__m256i *)(void *)bhi_v, vhi);
    dss_lane L[8];
    int live[8], kind[8], any = lm != 0;
    if (!start) {
        put_bytes8(max_scale8(n8.a, pre), bytes);
    } else {
        memcpy(bytes, start, 8);
    }
    for (int j = 0; j < 8; j++) {
        live[j] = (lm >> j) & 1;
        L[j].blo = blo_v[j], L[j].bhi = bhi_v[j];
        kind[j] = (pm >> j) & 1 ? DSS_FULL : DSS_NONE;
    }
    uint8_t st0[8];
    memcpy(st0, bytes, 8);
    start = st0;
    float score[DSS_RANGE_MAX][8], thr[8];
    int32_t cnt[8] = {0}, first[8] = {0};
    int k0 = 0, nexact = 0, nfull = 0, need = 0;
    if (any) {
        int span = 0;
        k0 = dss_stage1_avx2(&n8, in.weighted, L, live, alpha, score, thr);
        for (int j = 0; j < 8; j++)
            span = live[j] && L[j].bhi - L[j].blo > span ? L[j].bhi - L[j].blo : span;
        /* per lane: how many candidates, and the first (lowest byte) */
        const __m256 tv = _mm256_loadu_ps(thr);
        __m256i c = _mm256_setzero_si256(), f = _mm256_setzero_si256(), found = _mm256_setzero_si256();
        for (int k = k0; k <= span; k++) {
            const __m256i m = _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(score[k]), tv, _CMP_LE_OQ));
            c = _mm256_sub_epi32(c, m);
            f = _mm256_blendv_epi8(f, _mm256_set1_epi32(k), _mm256_andnot_si256(found, m));
            found = _mm256_or_si256(found, m);
        }
        _mm256_storeu_si256((__m256i *)(void *)cnt, c);
        _mm256_storeu_si256((__m256i *)(void *)first, f);
    }
    for (int j = 0; j < 8; j++) {
        if (live[j]) {
            const int ks = (int)start[j] - L[j].blo;
            const int inside = ks >= 0 && ks <= L[j].bhi - L[j].blo;
            const int scand = inside && ks >= k0 && score[ks][j] <= thr[j];
            kind[j] = inside && cnt[j] == 1 ? (scand ? DSS_KEEP : DSS_SINGLE) : DSS_EXACT;
            if (kind[j] == DSS_SINGLE)
                bytes[j] = (uint8_t)(L[j].blo + first[j]);
        }
        nexact += kind[j] == DSS_EXACT;
        nfull += kind[j] == DSS_FULL;
        need |= (kind[j] == DSS_KEEP || kind[j] == DSS_SINGLE) << j;
    }
    int won[8] = {0};
    if (nfull) { /* outside stage 1's range: every byte exactly */
        double e1[8], t1[8], t2[8];
        nvfp4i_eval8_prep64(&in);
        nvfp4i_eval8(&in, a, start, alpha, e1, t1, t2);
        for (int j = 0; j < 8; j++)
            if (kind[j] == DSS_FULL && e1[j] != 0.0)
                bytes[j] = dss_finish(x + j * 16, h ? h + j * 16 : NULL, a[j], alpha, L[j].blo, L[j].bhi, NULL, 1, 0,
                                      0.0f, bytes[j], e1[j], NULL, &won[j]);
    }
    const int flagged = dss_codes_near8(&in, a, bytes, alpha, need, out);
    for (int j = 0; j < 8; j++) {
        const float *xj = x + j * 16, *hj = h ? h + j * 16 : NULL;
        uint8_t c[16];
        if ((flagged >> j) & 1) {
            const double e = dss_exact(xj, hj, a[j], bytes[j], alpha, c);
            if (kind[j] == DSS_SINGLE) {
                dss_put(c, out + 8 * j);
            } else { /* DSS_KEEP: the nearest codes replace the coupled ones only if strictly better */
                uint8_t c0[16];
                double t1, t2;
                if (e < nvfp4i_eval_block(xj, hj, a[j], bytes[j], alpha, c0, &t1, &t2))
                    dss_put(c, out + 8 * j);
            }
        } else if (won[j]) { /* a DSS_FULL winner: its own nearest codes */
            dss_exact(xj, hj, a[j], bytes[j], alpha, c);
            dss_put(c, out + 8 * j);
        }
    }
    /* stage 2, queued (after this group's outputs are written: a flush may rewrite them) */
    if (nexact)
        for (int j = 0; j < 8; j++)
            if (kind[j] == DSS_EXACT) {
                uint8_t cand[DSS_RANGE_MAX];
                int nc = 0;
                for (int k = k0; k <= L[j].bhi - L[j].blo; k++)
                    if (score[k][j] <= thr[j])
                        cand[nc++] = (uint8_t)(L[j].blo + k);
                if (nc < DSSQ_ITEMS) {
                    dssq_add(q, kg + j, a[j], start[j], cand, nc);
                } else { /* more candidates than the queue holds (a wide window): this block alone */
                    const float *xj = x + j * 16, *hj = h ? h + j * 16 : NULL;
                    uint8_t c[16];
                    double t1, t2;
                    const double es = nvfp4i_eval_block(xj, hj, a[j], start[j], alpha, c, &t1, &t2);
                    int w = 0;
                    bytes[j] = dss_finish(xj, hj, a[j], alpha, L[j].blo, L[j].bhi, &score[0][j], 8, k0, thr[j], start[j],
                                          es, c, &w);
                    if (w)
                        dss_put(c, out + 8 * j);
                }
            }
}
/* The coupled codes of eight blocks at bytes b (nvfp4i_encode_block, finite input), packed. */
SOAR_TARGET static void encode_group8(const float *x, float alpha, const uint8_t *b, uint8_t *out)
{
    nvfp4i_eval8_in in;
    nvfp4i_eval8_load32(&in, x, NULL);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < 16; i++)
        a = _mm256_max_ps(a, _mm256_andnot_ps(sign, in.x[i]));
    float av[8];
    _mm256_storeu_ps(av, a);
    dss_codes_near8(&in, av, b, alpha, 0, out);
}
#define DSS_GROUPS 1
#else
#define DSS_GROUPS 0
#endif

/* soar_dss alone: DSS per block from the MAX scale. */
static uint8_t dss_block_fn(const nvfp4i_job *job, const float *x, const float *h, float a, uint8_t *c,
                            nvfp4i_stats_acc *st)
{
    uint8_t s0 = nvfp4i_max_scale(a, nvfp4i_max_pre(job->s_enc));
    uint8_t s = dss_block(x, h, a, job->s_dec, s0, job->q->dss_lo, job->q->dss_hi, c);
    st->underflow += a > 0.0f && nvfp4i_e4m3_to_float(s) == 0.0f;
    return s;
}

/* The row path of soar_dss: groups of eight blocks when the input is finite, the same bits. */
static void dss_row_fn(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                       nvfp4i_stats_acc *st)
{
    uint8_t c[16];
    int64_t k0 = 0;
#if DSS_GROUPS
    if (job->nonfinite == 0 && soar_have_avx2() && nvfp4i_eval_have_avx2()) {
        const float pre = nvfp4i_max_pre(job->s_enc);
        k0 = job->nblk / 8 * 8;
        dss_queue q;
        dssq_init(&q, x, job->h, job->s_dec, scales_row, codes_row);
        for (int64_t k = 0; k < k0; k += 8) {
            float a[8];
            dss_group_avx2(&q, k, job->s_dec, NULL, pre, job->q->dss_lo, job->q->dss_hi, a);
        }
        dssq_flush(&q);
        for (int64_t k = 0; k < k0; k++)
            st->underflow += scales_row[k] == 0 && nvfp4i_block_amax(x + k * 16, 16) > 0.0f;
    }
#endif
    for (int64_t k = k0; k < job->nblk; k++) {
        const float *xb = x + k * 16;
        scales_row[k] = dss_block_fn(job, xb, job->h ? job->h + k * 16 : NULL, nvfp4i_block_amax(xb, 16), c, st);
        nvfp4i_pack(c, 16, codes_row + k * 8);
    }
    if (job->want_stats) {
        for (int64_t k = 0; k < job->nblk; k++) {
            const float *xb = x + k * 16;
            for (int j = 0; j < 8; j++) {
                c[2 * j] = codes_row[k * 8 + j] & 0xF;
                c[2 * j + 1] = codes_row[k * 8 + j] >> 4;
            }
            st->sse += nvfp4i_block_sse(xb, job->h ? job->h + k * 16 : NULL, 16, c,
                                        nvfp4i_e4m3_to_float(scales_row[k]), job->s_dec, &st->sum_sq);
            st->blocks++;
        }
    }
}

/* ---- CJSO -------------------------------------------------------------------------------- */

enum { PASS_INIT, PASS_UPDATE, PASS_EVAL };

typedef struct {
    nvfp4i_job *job;
    float *xbuf;      /* [threads][padded] */
    float *nrm;       /* [4][rows·nblk]: each block's a, scale2 (0 if not tame), wscale, S, from PASS_INIT */
    uint8_t *cur;     /* the iterate's block bytes [rows·nblk] (written in PASS_INIT) */
    uint8_t *next;    /* the updated bytes (PASS_INIT, PASS_UPDATE) */
    double *row_loss;  /* [rows]: the iterate's loss as scored (see yscore) */
    double *row_bnd;   /* [rows]: a bound on |scored − exact| of row_loss */
    double *row_num;   /* [rows]: Σ_b Δ_b Σ h x q */
    double *row_den;   /* [rows]: Σ_b Δ_b² Σ h q² */
    double *row_exact; /* [rows]: PASS_INIT with statistics: MAX's exact loss */
    float alpha;
    int mode;
    int avx2;
    /* the output pass */
    int dss;
    nvfp4i_stats_acc *st; /* [threads] */
} cj_arg;

/* ---- CJSO's float32 scores ------------------------------------------------------------------
 * A CJSO pass scores every block at its current byte and at the E4M3 neighbours of that score's
 * least-squares scale. Most blocks are scored in float32 (yscore: the y form in block-normalised
 * units, as DSS's stage 1 scores), which costs a fraction of the exact float64 evaluation; a
 * block is scored exactly (nvfp4i_eval_block) when it is not tame (amax or weights outside
 * [2^-100, 2^100], S < 2^-60) or byte_ok fails for one of its bytes (byte 0 included), or it
 * holds a non-finite value. Within a block the bytes compare by score (the same units for all),
 * so a block's choice can differ from the exact one only between near-equal errors, where
 * either serves. The iterate's loss carries a bound on |scored − exact|: yscore's
 * 8.2u·sqrt(E·S) + 25.2u·E + 17u²·S is below 2^-17·(E + sqrt((S + E)·E)) + 2^-40·S, the bound
 * used. cjso_run takes an iterate only when its loss plus bound is below the best loss minus
 * its bound, so the exact loss falls too and CJSO is never worse than MAX. The eight-lane path
 * and the block-by-block path do the same float operations per block, so they agree bit for bit. */

/* The E4M3 neighbours lo ≤ D ≤ hi of the least-squares scale of a score at byte value f,
 * D = f·(p/q) (of the MAX scale a/(6α) when every code is zero), in float32. */
static inline void cjf_bracket(const blk_norm *n, float f, float alpha, float p, float q, uint8_t *lo, uint8_t *hi)
{
    const float D = q > 0.0f ? f * (p / q) : (n->a / 6.0f) / alpha;
    const int l = nvfp4i_e4m3_floor_byte(D);
    *lo = (uint8_t)l;
    *hi = (uint8_t)(l < 0x7E && nvfp4i_e4m3_to_float((uint8_t)l) < D ? l + 1 : l);
}

/* A fast block's contribution from its scores, in the input's units (r2 = 1/scale2,
 * rw = 1/wscale, exact): the current byte's loss eb and its bound, and the α-step sums of the
 * winner (byte best, sums p, q in y units: Σ w x v ≈ p·RN(f·α)·rw, Σ w v² = q·rw). cjf_account8
 * computes the same values lane by lane. */
static inline void cjf_account(const blk_norm *n, float eb, uint8_t best, float p, float q, float alpha, double *loss,
                               double *bnd, double *num, double *den)
{
    const double r2 = 1.0 / (double)n->scale2, rw = 1.0 / (double)n->wscale, de = (double)eb, S = (double)n->S;
    const double ue = r2 * r2 * rw;
    const float fb = nvfp4i_e4m3_to_float(best);
    const double f = (double)fb, fa = (double)(fb * alpha);
    *loss += de * ue;
    *bnd += (0x1p-17 * (de + sqrt((S + de) * de)) + 0x1p-40 * S) * ue;
    *num += f * ((double)p * fa * rw);
    *den += f * f * ((double)q * rw);
}

/* The exact evaluation of one block for a CJSO pass (blocks the float32 scores do not serve):
 * loss of byte b, the Δ step over both neighbours of its LS scale, the α-step sums. */
static uint8_t cj_block_exact(const float *xb, const float *hb, float a, uint8_t b, float alpha, int eval_only,
                              double *loss, double *num, double *den)
{
    uint8_t c[16];
    double sxq, sqq;
    double e = nvfp4i_eval_block(xb, hb, a, b, alpha, c, &sxq, &sqq);
    *loss += e;
    if (eval_only || !(a > 0.0f)) {
        if (!eval_only) {
            const double f = (double)nvfp4i_e4m3_to_float(b);
            *num += f * sxq;
            *den += f * f * sqq;
        }
        return b;
    }
    uint8_t best = b, cand[2];
    const double D = sqq > 0.0 ? sxq / ((double)alpha * sqq) : (double)a / (6.0 * (double)alpha);
    e4m3_bracket(D, &cand[0], &cand[1]);
    for (int t = 0; t < 2; t++) {
        if (cand[t] == best || (t == 1 && cand[1] == cand[0]))
            continue;
        double s1, s2;
        const double e2 = nvfp4i_eval_block(xb, hb, a, cand[t], alpha, c, &s1, &s2);
        if (e2 < e) {
            e = e2;
            best = cand[t];
            sxq = s1;
            sqq = s2;
        }
    }
    /* Near FLT_MAX both neighbours of the LS scale can decode past it (its fit ignores the
     * overflow), and so can MAX's byte: step down until the block decodes finitely. */
    for (uint8_t b2 = best; !(e < INFINITY) && b2 > 1;) {
        double s1, s2;
        const double e2 = nvfp4i_eval_block(xb, hb, a, --b2, alpha, c, &s1, &s2);
        if (e2 < e) {
            e = e2;
            best = b2;
            sxq = s1;
            sqq = s2;
        }
    }
    const double f = (double)nvfp4i_e4m3_to_float(best);
    *num += f * sxq;
    *den += f * f * sqq;
    return best;
}

/* One block of a CJSO pass, the definition both paths follow: returns the next byte. */
static uint8_t cj_block(const float *xb, const float *hb, uint8_t b, float alpha, int eval_only, double *loss,
                        double *bnd, double *num, double *den)
{
    blk_norm n;
    blk_normalise(xb, hb, &n);
    int fin = 1;
    for (int i = 0; i < 16; i++)
        fin &= nvfp4i_isfinite(xb[i]);
    if (fin && n.tame && byte_ok(n.scale2, b, alpha)) {
        float p, q;
        float e = yscore(&n, nvfp4i_e4m3_to_float(b), alpha, &p, &q);
        if (eval_only) {
            cjf_account(&n, e, b, p, q, alpha, loss, bnd, num, den);
            return b;
        }
        uint8_t lo, hi, cand[2];
        cjf_bracket(&n, nvfp4i_e4m3_to_float(b), alpha, p, q, &lo, &hi);
        int nc = 0, ok = 1;
        if (lo != b)
            cand[nc++] = lo;
        if (hi != b && hi != lo)
            cand[nc++] = hi;
        for (int t = 0; t < nc; t++)
            ok &= byte_ok(n.scale2, cand[t], alpha);
        if (ok) {
            const float eb = e;
            uint8_t best = b;
            for (int t = 0; t < nc; t++) {
                float p2, q2;
                const float e2 = yscore(&n, nvfp4i_e4m3_to_float(cand[t]), alpha, &p2, &q2);
                if (e2 < e) {
                    e = e2;
                    best = cand[t];
                    p = p2;
                    q = q2;
                }
            }
            cjf_account(&n, eb, best, p, q, alpha, loss, bnd, num, den);
            return best;
        }
    }
    /* in EVAL the sums are unused */
    double dn = 0.0, dd = 0.0;
    const uint8_t best = cj_block_exact(xb, hb, nvfp4i_block_amax(xb, 16), b, alpha, eval_only, loss, &dn, &dd);
    *num += dn;
    *den += dd;
    return best;
}

#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
/* yscore with its sums for eight blocks at bytes b (int32 lanes; lanes whose byte is not ok
 * compute on garbage and are not used); full: some used lane's scaled values may reach 7. */
#define CJF_STEP(i, ee, p, q, full, wgt)                                                          \
    do {                                                                                          \
        const __m256 y = _mm256_mul_ps(n->ax[i], inv);                                            \
        __m256 v, d;                                                                              \
        YSTEP(y, v, d, ee, full, wgt, n->wn[i]);                                                  \
        const __m256 wv = (wgt) ? _mm256_mul_ps(n->wn[i], v) : v;                                  \
        p = _mm256_fmadd_ps(wv, y, p);                                                            \
        q = _mm256_fmadd_ps(wv, v, q);                                                            \
    } while (0)
#define CJF_SCORE8_BODY(full, wgt)                                                                \
    do {                                                                                          \
        for (int i = 0; i < 8; i++) {                                                             \
            CJF_STEP(i, ea, pa, qa, full, wgt);                                                   \
            CJF_STEP(i + 8, eb, pb, qb, full, wgt);                                               \
        }                                                                                         \
    } while (0)
SOAR_TARGET __attribute__((noinline)) static void cjf_score8(const norm8 *n, int weighted, __m256 use, __m256i b, float alpha, __m256 *e,
                                          __m256 *s1, __m256 *s2)
{
    const __m256 fa = _mm256_mul_ps(nvfp4i_e4m3_val8(b), _mm256_set1_ps(alpha));
    const __m256 inv = _mm256_min_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), fa), _mm256_set1_ps(NVFP4I_FLT_MAX));
    const __m256 s = _mm256_mul_ps(fa, n->scale2);
    const int full = _mm256_movemask_ps(_mm256_and_ps(use, _mm256_cmp_ps(_mm256_mul_ps(n->a, inv), _mm256_set1_ps(7.0f), _CMP_GE_OQ))) != 0;
    __m256 ea = _mm256_setzero_ps(), eb = ea, pa = ea, pb = ea, qa = ea, qb = ea;
    if (weighted) {
        if (full) {
            CJF_SCORE8_BODY(1, 1);
        } else {
            CJF_SCORE8_BODY(0, 1);
        }
    } else {
        if (full) {
            CJF_SCORE8_BODY(1, 0);
        } else {
            CJF_SCORE8_BODY(0, 0);
        }
    }
    *e = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(ea, eb), s), s);
    *s1 = _mm256_add_ps(pa, pb);
    *s2 = _mm256_add_ps(qa, qb);
}
#undef CJF_SCORE8_BODY
#undef CJF_STEP

/* Scores candidate bytes c in the lanes of mask v and takes them where they score strictly lower. */
SOAR_TARGET static inline void cjf_try8(const norm8 *n, int weighted, __m256i c, __m256 v, float alpha, __m256 *e,
                                        __m256 *s1, __m256 *s2, __m256i *best)
{
    __m256 e2, p, q;
    cjf_score8(n, weighted, v, c, alpha, &e2, &p, &q);
    const __m256 m = _mm256_and_ps(v, _mm256_cmp_ps(e2, *e, _CMP_LT_OQ));
    *e = _mm256_blendv_ps(*e, e2, m);
    *s1 = _mm256_blendv_ps(*s1, p, m);
    *s2 = _mm256_blendv_ps(*s2, q, m);
    *best = _mm256_blendv_epi8(*best, c, _mm256_castps_si256(m));
}

/* cjf_account's four values (acc[0..3][h]: loss, bound, num, den) for lanes 0-3 or 4-7 (h = 0
 * or 1), the same IEEE operations. */
SOAR_TARGET static inline void cjf_account4(const norm8 *n, __m256 eb, __m256i best, __m256 p, __m256 q, float alpha,
                                            int h, __m256d (*acc)[2], int hh)
{
#define HALF(v) _mm256_cvtps_pd(h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v))
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d r2 = _mm256_div_pd(one, HALF(n->scale2)), rw = _mm256_div_pd(one, HALF(n->wscale));
    const __m256d de = HALF(eb), S = HALF(n->S), ue = _mm256_mul_pd(_mm256_mul_pd(r2, r2), rw);
    const __m256 fb = nvfp4i_e4m3_val8(best);
    const __m256d f = HALF(fb), fa = HALF(_mm256_mul_ps(fb, _mm256_set1_ps(alpha)));
    acc[0][hh] = _mm256_mul_pd(de, ue);
    const __m256d sq = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_add_pd(S, de), de));
    acc[1][hh] = _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(0x1p-17), _mm256_add_pd(de, sq)),
                                             _mm256_mul_pd(_mm256_set1_pd(0x1p-40), S)),
                               ue);
    acc[2][hh] = _mm256_mul_pd(f, _mm256_mul_pd(_mm256_mul_pd(HALF(p), fa), rw));
    acc[3][hh] = _mm256_mul_pd(_mm256_mul_pd(f, f), _mm256_mul_pd(HALF(q), rw));
#undef HALF
}

/* cj_block for blocks k..k+7 of row r (finite input), lane j = block j: the same float
 * operations and decisions; each block's loss, bound and α-step sums go to the row's lane
 * partials acc[0..3][j] (see cj_range); lanes that are not fast go through cj_block's exact
 * branch one by one. */
SOAR_TARGET static void cjf_group_avx2(cj_arg *g, const float *x, int64_t r, int64_t k, float pre, double (*acc)[8],
                                       double *exact)
{
    const nvfp4i_job *job = g->job;
    const int64_t idx0 = r * job->nblk + k;
    const float alpha = g->alpha;
    const float *xb = x + k * 16, *hb = job->h ? job->h + k * 16 : NULL;
    const int eval_only = g->mode == PASS_EVAL, weighted = hb != NULL;
    __m256 xt[16], wt[16];
    for (int half = 0; half < 2; half++) {
        for (int j = 0; j < 8; j++)
            xt[half * 8 + j] = _mm256_loadu_ps(xb + j * 16 + half * 8);
        nvfp4i_tr8(xt + half * 8);
        if (hb) {
            for (int j = 0; j < 8; j++)
                wt[half * 8 + j] = _mm256_loadu_ps(hb + j * 16 + half * 8);
            nvfp4i_tr8(wt + half * 8);
        }
    }
    /* the normalisation is the same in every pass: PASS_INIT computes and keeps it */
    norm8 n8;
    const int64_t nbt = job->src.rows * job->nblk;
    float *na = g->nrm + idx0, *ns2 = na + nbt, *nws = ns2 + nbt, *nS = nws + nbt;
    if (g->mode == PASS_INIT) {
        normalise8(xt, hb ? wt : NULL, 0, &n8);
        _mm256_storeu_ps(na, n8.a);
        _mm256_storeu_ps(ns2, _mm256_and_ps(n8.tame, n8.scale2));
        _mm256_storeu_ps(nws, n8.wscale);
        _mm256_storeu_ps(nS, n8.S);
    } else {
        const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
        for (int i = 0; i < 16; i++)
            n8.ax[i] = _mm256_andnot_ps(sign, xt[i]);
        n8.a = _mm256_loadu_ps(na);
        n8.scale2 = _mm256_loadu_ps(ns2);
        n8.wscale = _mm256_loadu_ps(nws);
        n8.S = _mm256_loadu_ps(nS);
        n8.tame = _mm256_cmp_ps(n8.scale2, _mm256_setzero_ps(), _CMP_NEQ_OQ);
        if (hb)
            for (int i = 0; i < 16; i++)
                n8.wn[i] = _mm256_mul_ps(wt[i], n8.wscale);
    }
    const __m256 av = n8.a;
    float a[8];
    _mm256_storeu_ps(a, av);
    if (g->mode == PASS_INIT)
        put_bytes8(max_scale8(av, pre), g->cur + idx0);
    const __m256i b = bytes8(g->cur + idx0);
    if (exact) {
        uint8_t c[16];
        double t1, t2;
        for (int j = 0; j < 8; j++)
            *exact += nvfp4i_eval_block(xb + j * 16, hb ? hb + j * 16 : NULL, a[j], g->cur[idx0 + j], alpha, c, &t1, &t2);
    }
    __m256 fast = _mm256_and_ps(n8.tame, cjf_ok8(n8.scale2, b, alpha));
    __m256 e, s1, s2;
    cjf_score8(&n8, weighted, fast, b, alpha, &e, &s1, &s2);
    const __m256 eb = e;
    __m256i best = b;
    if (!eval_only) {
        /* the neighbours of the LS scale, other than b, packed to the front */
        const __m256 fbv = nvfp4i_e4m3_val8(b);
        const __m256 D = _mm256_blendv_ps(_mm256_div_ps(_mm256_div_ps(_mm256_max_ps(av, _mm256_setzero_ps()), _mm256_set1_ps(6.0f)),
                                                        _mm256_set1_ps(alpha)),
                                          _mm256_mul_ps(fbv, _mm256_div_ps(s1, s2)),
                                          _mm256_cmp_ps(s2, _mm256_setzero_ps(), _CMP_GT_OQ));
        const __m256i lo = nvfp4i_e4m3_floor8(D);
        const __m256i up = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x7E), lo),
                                            _mm256_castps_si256(_mm256_cmp_ps(nvfp4i_e4m3_val8(lo), D, _CMP_LT_OQ)));
        const __m256i hi = _mm256_sub_epi32(lo, up);
        const __m256i lo_ne = _mm256_xor_si256(_mm256_cmpeq_epi32(lo, b), _mm256_set1_epi32(-1));
        const __m256i hi_ne = _mm256_xor_si256(_mm256_cmpeq_epi32(hi, b), _mm256_set1_epi32(-1));
        const __m256i c1 = _mm256_blendv_epi8(hi, lo, lo_ne);
        const __m256 v1 = _mm256_castsi256_ps(_mm256_or_si256(lo_ne, hi_ne));
        const __m256 v2 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_and_si256(lo_ne, hi_ne), up));
        fast = _mm256_and_ps(fast, _mm256_or_ps(_mm256_andnot_ps(v1, _mm256_castsi256_ps(_mm256_set1_epi32(-1))), cjf_ok8(n8.scale2, c1, alpha)));
        fast = _mm256_and_ps(fast, _mm256_or_ps(_mm256_andnot_ps(v2, _mm256_castsi256_ps(_mm256_set1_epi32(-1))), cjf_ok8(n8.scale2, hi, alpha)));
        if (_mm256_movemask_ps(_mm256_and_ps(fast, v1)))
            cjf_try8(&n8, weighted, c1, _mm256_and_ps(fast, v1), alpha, &e, &s1, &s2, &best);
        if (_mm256_movemask_ps(_mm256_and_ps(fast, v2)))
            cjf_try8(&n8, weighted, hi, _mm256_and_ps(fast, v2), alpha, &e, &s1, &s2, &best);
    }
    const int fm = _mm256_movemask_ps(fast);
    __m256d v[4][2]; /* loss, bound, num, den for lanes 0-3 and 4-7 */
    cjf_account4(&n8, eb, best, s1, s2, alpha, 0, v, 0);
    cjf_account4(&n8, eb, best, s1, s2, alpha, 1, v, 1);
    uint8_t nb[8]; /* the next bytes, packed from the lanes (0..0x7E each) */
    put_bytes8(best, nb);
    /* the fast lanes' values into the lane partials */
    const __m256i fmask = _mm256_castps_si256(fast);
    const __m256d m0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(fmask)));
    const __m256d m1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extractf128_si256(fmask, 1)));
    for (int t = 0; t < 4; t++) {
        _mm256_storeu_pd(acc[t], _mm256_add_pd(_mm256_loadu_pd(acc[t]), _mm256_and_pd(v[t][0], m0)));
        _mm256_storeu_pd(acc[t] + 4, _mm256_add_pd(_mm256_loadu_pd(acc[t] + 4), _mm256_and_pd(v[t][1], m1)));
    }
    if (fm != 0xFF)
        for (int j = 0; j < 8; j++)
            if (!((fm >> j) & 1))
                nb[j] = cj_block_exact(xb + j * 16, hb ? hb + j * 16 : NULL, a[j], g->cur[idx0 + j], alpha, eval_only,
                                       &acc[0][j], &acc[2][j], &acc[3][j]);
    if (!eval_only)
        memcpy(g->next + idx0, nb, 8);
}
#endif

/* One pass over rows [b, e): the loss of the iterate (α, cur) with its bound and, unless
 * PASS_EVAL, the Δ step (per block: both E4M3 neighbours of the LS scale with codes re-derived,
 * kept only if they score lower; the plain RNE projection of SPEC §3.3 leaves ~5 % of CJSO's
 * gain, docs/METHODS.md) and the sums of the α step. Eight blocks at a time with AVX2 when the
 * input is finite; the block-by-block path gives the same bits. */
static void cj_range(void *argp, int64_t rb, int64_t re, int tid)
{
    cj_arg *g = argp;
    const nvfp4i_job *job = g->job;
    const int64_t nblk = job->nblk;
    const float alpha = g->alpha;
    const float pre = nvfp4i_max_pre(job->s_enc);
    const int want_exact = g->mode == PASS_INIT && job->want_stats, eval_only = g->mode == PASS_EVAL;
    float *xbuf = g->xbuf + (size_t)tid * (size_t)job->padded;
    int64_t k8 = 0;
#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
    if (job->nonfinite == 0 && g->avx2)
        k8 = nblk / 8 * 8;
#endif
    const int64_t kl = nblk / 8 * 8; /* blocks below kl go to lane partials (either path) */
    for (int64_t r = rb; r < re; r++) {
        double acc[4][8], exact = 0.0; /* loss, bound, num, den of blocks k < kl, by k mod 8 */
        memset(acc, 0, sizeof acc);
        const float *x = nvfp4i_row(&job->src, r, xbuf, job->padded);
#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
        for (int64_t k = 0; k < k8; k += 8)
            cjf_group_avx2(g, x, r, k, pre, acc, want_exact ? &exact : NULL);
#endif
        double tail[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t k = k8; k < nblk; k++) {
            const float *xb = x + k * 16;
            const float *hb = job->h ? job->h + k * 16 : NULL;
            const int64_t idx = r * nblk + k;
            uint8_t b;
            if (g->mode == PASS_INIT) {
                b = nvfp4i_max_scale(nvfp4i_block_amax(xb, 16), pre);
                g->cur[idx] = b;
            } else {
                b = g->cur[idx];
            }
            if (want_exact) {
                uint8_t c[16];
                double t1, t2;
                exact += nvfp4i_eval_block(xb, hb, nvfp4i_block_amax(xb, 16), b, alpha, c, &t1, &t2);
            }
            const int j = (int)(k % 8);
            double *sum[4] = {&acc[0][j], &acc[1][j], &acc[2][j], &acc[3][j]};
            if (k >= kl)
                for (int t = 0; t < 4; t++)
                    sum[t] = &tail[t];
            const uint8_t nb = cj_block(xb, hb, b, alpha, eval_only, sum[0], sum[1], sum[2], sum[3]);
            if (!eval_only)
                g->next[idx] = nb;
        }
        /* the lane partials in lane order, then the tail blocks in order */
        double tot[4];
        for (int t = 0; t < 4; t++) {
            tot[t] = 0.0;
            for (int j = 0; j < 8; j++)
                tot[t] += acc[t][j];
            tot[t] += tail[t];
        }
        const double loss = tot[0], bnd = tot[1], num = tot[2], den = tot[3];
        g->row_loss[r] = loss;
        g->row_bnd[r] = bnd;
        g->row_num[r] = num;
        g->row_den[r] = den;
        g->row_exact[r] = exact;
    }
}

/* The output pass: codes and scales from (α, cur), DSS per block when asked. */
static void out_range(void *argp, int64_t rb, int64_t re, int tid)
{
    cj_arg *g = argp;
    const nvfp4i_job *job = g->job;
    const int64_t nblk = job->nblk, row_bytes = job->padded / 2;
    const float alpha = g->alpha;
    float *xbuf = g->xbuf + (size_t)tid * (size_t)job->padded;
    nvfp4i_stats_acc *st = &g->st[tid];
    uint8_t c[16];
    int64_t k8 = 0;
#if DSS_GROUPS
    if (job->nonfinite == 0 && g->avx2)
        k8 = nblk / 8 * 8;
#endif
    for (int64_t r = rb; r < re; r++) {
        uint8_t *scales = job->scales + r * nblk, *codes = job->codes + r * row_bytes;
        const uint8_t *cur = g->cur + r * nblk;
        const float *x = nvfp4i_row(&job->src, r, xbuf, job->padded);
        if (g->dss && job->want_stats) /* the CJSO iterate's exact loss, for the statistics */
            for (int64_t k = 0; k < nblk; k++) {
                const float *xb = x + k * 16;
                double t1, t2;
                st->cjso_final_sse += nvfp4i_eval_block(xb, job->h ? job->h + k * 16 : NULL,
                                                        nvfp4i_block_amax(xb, 16), cur[k], alpha, c, &t1, &t2);
            }
#if DSS_GROUPS
        dss_queue dq;
        dssq_init(&dq, x, job->h, alpha, scales, codes);
        for (int64_t k = 0; k < k8; k += 8) { /* blocks k..k+7 at once: DSS, or CJSO's codes */
            float a8[8];
            if (g->dss) {
                dss_group_avx2(&dq, k, alpha, cur + k, 0.0f, job->q->dss_lo, job->q->dss_hi, a8);
            } else {
                memcpy(scales + k, cur + k, 8);
                encode_group8(x + k * 16, alpha, cur + k, codes + k * 8);
            }
        }
        dssq_flush(&dq);
#endif
        for (int64_t k = k8; k < nblk; k++) {
            const float *xb = x + k * 16;
            const float *hb = job->h ? job->h + k * 16 : NULL;
            const float a = nvfp4i_block_amax(xb, 16);
            uint8_t b = cur[k];
            if (g->dss) /* from the CJSO byte; MAX's byte at this α lies inside DSS's range */
                b = dss_block(xb, hb, a, alpha, b, job->q->dss_lo, job->q->dss_hi, c);
            else
                nvfp4i_encode_block(xb, 16, a, b, alpha, c);
            scales[k] = b;
            nvfp4i_pack(c, 16, codes + k * 8);
        }
        for (int64_t k = 0; k < nblk; k++) {
            const float *xb = x + k * 16;
            st->underflow += scales[k] == 0 && nvfp4i_block_amax(xb, 16) > 0.0f;
            if (job->want_stats) {
                const float sv = nvfp4i_e4m3_to_float(scales[k]);
                for (int j = 0; j < 8; j++) {
                    c[2 * j] = codes[k * 8 + j] & 0xF;
                    c[2 * j + 1] = codes[k * 8 + j] >> 4;
                }
                st->sse += nvfp4i_block_sse(xb, job->h ? job->h + k * 16 : NULL, 16, c, sv, alpha, &st->sum_sq);
                st->blocks++;
            }
        }
    }
}

static double sum_rows(const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* CJSO from MAX, then the output pass (with DSS for `soar`). Allocates everything first. */
static nvfp4_status cjso_run(nvfp4i_job *job, nvfp4i_stats_acc *st, int dss)
{
    nvfp4_context *ctx = job->ctx;
    const int64_t rows = job->src.rows, nb = rows * job->nblk;
    const int t = nvfp4i_nthreads(ctx, rows);
    if (job->block != NVFP4I_BLOCK_NVFP4)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED, "SOAR needs the NVFP4 format");
    cj_arg g;
    memset(&g, 0, sizeof g);
    g.job = job;
    g.dss = dss;
#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
    g.avx2 = nvfp4i_eval_have_avx2() && soar_have_avx2();
#endif
    uint8_t *buf[3];
    g.xbuf = nvfp4i_alloc(ctx, (size_t)t * (size_t)job->padded * sizeof(float));
    for (int i = 0; i < 3; i++)
        buf[i] = nvfp4i_alloc(ctx, (size_t)nb);
    /* five doubles per row, then the eight-lane path's per-block normalisation (four floats) */
    g.row_loss = nvfp4i_alloc(ctx, (size_t)rows * 5 * sizeof(double) + (size_t)nb * 4 * sizeof(float));
    g.st = nvfp4i_calloc(ctx, (size_t)t, sizeof(nvfp4i_stats_acc));
    nvfp4_status s = NVFP4_OK;
    if (!g.xbuf || !buf[0] || !buf[1] || !buf[2] || !g.row_loss || !g.st) {
        s = nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate CJSO state for %lld blocks", (long long)nb);
        goto done;
    }
    g.row_bnd = g.row_loss + rows;
    g.row_num = g.row_loss + 2 * rows;
    g.row_den = g.row_loss + 3 * rows;
    g.row_exact = g.row_loss + 4 * rows;
    g.nrm = (float *)(void *)(g.row_loss + 5 * rows);

    const int fixed_alpha = job->q->global_scale > 0.0;
    const int iters = job->q->cjso_iters;
    uint8_t *cur = buf[0], *next = buf[1], *best = buf[2], *tmp;
    float alpha = job->s_dec, best_alpha = alpha;
    double best_loss = INFINITY, best_bnd = 0.0, loss0 = 0.0;
    int used = 0;
    for (int it = 0;; it++) {
        const int last = it == iters;
        g.alpha = alpha;
        g.cur = cur;
        g.next = next;
        g.mode = it == 0 ? PASS_INIT : last ? PASS_EVAL : PASS_UPDATE;
        nvfp4i_parallel_for(ctx, rows, cj_range, &g);
        const double loss = sum_rows(g.row_loss, rows), bnd = sum_rows(g.row_bnd, rows);
        if (it == 0)
            loss0 = sum_rows(g.row_exact, rows);
        /* an iterate is taken only when its scored loss is lower by more than both bounds, so
         * its exact loss is lower too */
        if (it > 0 && !(loss + bnd < best_loss - best_bnd))
            break;
        /* converged: this iterate lowered the loss by less than the tolerance */
        const int small = it > 0 && best_loss - loss < job->q->cjso_tol * best_loss;
        best_loss = loss;
        best_bnd = bnd;
        best_alpha = alpha;
        tmp = best, best = cur, cur = tmp;
        if (last || small)
            break;
        double num = sum_rows(g.row_num, rows), den = sum_rows(g.row_den, rows);
        float na = (float)(num / den);
        if (!fixed_alpha && den > 0.0 && num > 0.0 && na > 0.0 && nvfp4i_isfinite(na) && na >= 1.17549435e-38f)
            alpha = na;
        used = it + 1;
        tmp = cur, cur = next, next = tmp;
    }

    job->s_dec = best_alpha;
    {
        float e = 1.0f / best_alpha;
        job->s_enc = e <= NVFP4I_FLT_MAX ? e : NVFP4I_FLT_MAX;
    }
    g.alpha = best_alpha;
    g.cur = best;
    nvfp4i_parallel_for(ctx, rows, out_range, &g);
    double final_sse = 0.0;
    for (int i = 0; i < t; i++) {
        final_sse += g.st[i].cjso_final_sse;
        nvfp4i_stats_add(st, &g.st[i]);
    }
    st->cjso_iterations = used;
    st->cjso_initial_sse = loss0;
    /* the exact loss of the iterate kept: for CJSO alone, the output's own SSE */
    st->cjso_final_sse = dss ? final_sse : st->sse;

done:
    nvfp4i_free(ctx, g.xbuf);
    for (int i = 0; i < 3; i++)
        nvfp4i_free(ctx, buf[i]);
    nvfp4i_free(ctx, g.row_loss);
    nvfp4i_free(ctx, g.st);
    return s;
}

static nvfp4_status cjso_tensor_fn(nvfp4i_job *job, nvfp4i_stats_acc *st) { return cjso_run(job, st, 0); }
static nvfp4_status soar_tensor_fn(nvfp4i_job *job, nvfp4i_stats_acc *st) { return cjso_run(job, st, 1); }

const nvfp4i_method nvfp4i_method_soar_cjso = {"soar_cjso", soar_emax, NULL, NULL, cjso_tensor_fn};
const nvfp4i_method nvfp4i_method_soar_dss = {"soar_dss", soar_emax, dss_block_fn, dss_row_fn, NULL};
const nvfp4i_method nvfp4i_method_soar = {"soar", soar_emax, NULL, NULL, soar_tensor_fn};
