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

/* The decoded error of a block, the same sum as nvfp4i_block_sse() without Σx². */
static inline double blk_err(const float *x, const float *h, const uint8_t *c, float f, float alpha)
{
    double e = 0.0;
    for (int i = 0; i < 16; i++) {
        if (!nvfp4i_isfinite(x[i]))
            continue;
        double w = h ? (double)h[i] : 1.0;
        double d = (double)nvfp4i_decode(c[i], f, alpha) - (double)x[i];
        e += w * d * d;
    }
    return e;
}

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

/* MAX's byte for block amax a at global scale α (SPEC §3.1 with s_enc = 1/α). */
static inline uint8_t max_byte_at(float a, float alpha)
{
    float e = 1.0f / alpha;
    if (!(e <= NVFP4I_FLT_MAX))
        e = NVFP4I_FLT_MAX;
    return nvfp4i_max_scale(a, nvfp4i_max_pre(e));
}

/* ---- DSS --------------------------------------------------------------------------------- */

/* E2M1 rounding thresholds t_k and magnitudes (SPEC §1). A code magnitude steps from k to k+1
 * when |y| crosses t_k, so with y = |x|·u (u = 1/(α·Δq)) element i's code changes only at the
 * breakpoints u = t_k / |x_i|. */
static const double dss_t[8] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, INFINITY}; /* [7]: no more */
static const double dss_mag[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

/* The code magnitude of element i at position u: how many of its breakpoints t_k·r lie at or
 * below u (branch-free: which count it is is unpredictable). */
static inline int dss_count(double r, double u)
{
    return (dss_t[0] * r <= u) + (dss_t[1] * r <= u) + (dss_t[2] * r <= u) + (dss_t[3] * r <= u) +
           (dss_t[4] * r <= u) + (dss_t[5] * r <= u) + (dss_t[6] * r <= u);
}

/* Best stored byte for fixed codes with sums (Σhxq, Σhq², Σhx²): the LS scale's two E4M3
 * neighbours, scored in closed form; returns the error, *b the byte. */
static inline double dss_eval(double sxq, double sqq, double sxx, float alpha, uint8_t *b)
{
    if (!(sqq > 0.0)) {
        *b = 0;
        return sxx;
    }
    uint8_t lo, hi;
    e4m3_bracket(sxq / ((double)alpha * sqq), &lo, &hi);
    double ad = (double)alpha * (double)nvfp4i_e4m3_to_float(lo);
    double e = sxx - 2.0 * ad * sxq + ad * ad * sqq;
    *b = lo;
    if (hi != lo) {
        ad = (double)alpha * (double)nvfp4i_e4m3_to_float(hi);
        double e2 = sxx - 2.0 * ad * sxq + ad * ad * sqq;
        if (e2 < e) {
            e = e2;
            *b = hi;
        }
    }
    return e;
}

/* The sorting of the breakpoints. Up to DSS_RANK_MAX of them (the usual case: about 40 with the
 * default window) each one's rank is counted, O(n²) comparisons but without branches or a
 * loop-carried chain, which beats a comparison sort at that size; above it (up to 16·7) a
 * stable merge sort keeps the O(n log n) bound the design promises per block. Both give the
 * same order: increasing key, equal keys in the order they were appended. */
#define DSS_RANK_MAX 48

static void order_merge(const double *key, int n, uint8_t *order)
{
    uint8_t tmp[16 * 7];
    for (int i = 0; i < n; i++)
        order[i] = (uint8_t)i;
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = key[order[j]] < key[order[i]] ? order[j++] : order[i++];
            while (i < mid)
                tmp[o++] = order[i++];
            while (j < hi)
                tmp[o++] = order[j++];
        }
        memcpy(order, tmp, (size_t)n);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SOAR_AVX2 1
/* rank_c for eight keys at a time (two vectors of four), each key[f] broadcast against them:
 * rank(e) = #{f < e: key_f <= key_e} + #{f >= e: key_f < key_e}, the f inside the group of
 * eight blending the two comparisons by lane. key[] has room for seven padding entries past n,
 * set here to +Inf: never below or equal to a key inside the window, and their own ranks are
 * not stored. */
__attribute__((target("avx2"))) static void rank_avx2(double *key, int n, uint8_t *order)
{
    if (n > DSS_RANK_MAX) {
        order_merge(key, n, order);
        return;
    }
    static const int64_t above[16] = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1};
    for (int f = n; f < n + 7; f++)
        key[f] = INFINITY;
    for (int e0 = 0; e0 < n; e0 += 8) {
        const __m256d k0 = _mm256_loadu_pd(key + e0), k1 = _mm256_loadu_pd(key + e0 + 4);
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        int f = 0;
        for (; f < e0; f++) { /* f below every e of the group */
            const __m256d v = _mm256_broadcast_sd(key + f);
            a0 = _mm256_sub_epi64(a0, _mm256_castpd_si256(_mm256_cmp_pd(v, k0, _CMP_LE_OQ)));
            a1 = _mm256_sub_epi64(a1, _mm256_castpd_si256(_mm256_cmp_pd(v, k1, _CMP_LE_OQ)));
        }
        for (int d = 0; d < 8 && f < n; d++, f++) { /* lane l uses <= iff l > d */
            const __m256d v = _mm256_broadcast_sd(key + f);
            const __m256d m0 = _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)(above + 7 - d)));
            const __m256d m1 = _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)(above + 11 - d)));
            a0 = _mm256_sub_epi64(a0, _mm256_castpd_si256(_mm256_blendv_pd(
                                          _mm256_cmp_pd(v, k0, _CMP_LT_OQ), _mm256_cmp_pd(v, k0, _CMP_LE_OQ), m0)));
            a1 = _mm256_sub_epi64(a1, _mm256_castpd_si256(_mm256_blendv_pd(
                                          _mm256_cmp_pd(v, k1, _CMP_LT_OQ), _mm256_cmp_pd(v, k1, _CMP_LE_OQ), m1)));
        }
        for (; f < n; f++) { /* f above every e of the group */
            const __m256d v = _mm256_broadcast_sd(key + f);
            a0 = _mm256_sub_epi64(a0, _mm256_castpd_si256(_mm256_cmp_pd(v, k0, _CMP_LT_OQ)));
            a1 = _mm256_sub_epi64(a1, _mm256_castpd_si256(_mm256_cmp_pd(v, k1, _CMP_LT_OQ)));
        }
        int64_t r[8];
        _mm256_storeu_si256((__m256i *)(void *)r, a0);
        _mm256_storeu_si256((__m256i *)(void *)(r + 4), a1);
        for (int l = 0; l < 8 && e0 + l < n; l++)
            order[r[l]] = (uint8_t)(e0 + l);
    }
}
static int soar_have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
#define SOAR_AVX2 0
#endif

/* DSS on one block: the exact search over Δq ∈ [wlo·Δref, whi·Δref], Δref = a/(6α) (the
 * unrounded MAX scale, i.e. the block amax maps to y ∈ [6/whi, 6/wlo]), with the starting
 * byte(s) as candidates scored by their decoded error. Writes the codes, returns the byte.
 * Element i's code steps up at the breakpoints u = t_k·(1/|x_i|) (float64). The n ≤ 16·7
 * breakpoints inside the window are put in increasing order (equal ones in the order they were
 * appended) and swept, updating Σhxq and Σhq² in O(1) per code change: O(n log n) per block.
 * Breakpoints that coincide change together (only the whole group is a realisable code set). A
 * code set is rounded to E4M3 only when its unconstrained least-squares error
 * Σhx² − (Σhxq)²/Σhq², a lower bound for both E4M3 neighbours, beats the best so far. The
 * codes written are recomputed from the same breakpoint expressions, so they are exactly the
 * set that was scored. */
typedef void (*rank_fn)(double *key, int n, uint8_t *order);

static void rank_c(double *key, int n, uint8_t *order)
{
    if (n > DSS_RANK_MAX) {
        order_merge(key, n, order);
        return;
    }
    for (int e = 0; e < n; e++) {
        int r = 0;
        for (int f = 0; f < n; f++)
            r += (key[f] < key[e]) | ((key[f] == key[e]) & (f < e));
        order[r] = (uint8_t)e;
    }
}

/* The search proper, given the start block's decoded error es: returns 1 with the winning code
 * set in c2 and its byte in *bb when some code set's closed-form error beats es, else 0. The
 * caller confirms the winner by its decoded error (dss_core, or eight at a time in
 * dss_group_avx2). */
__attribute__((always_inline)) static inline int dss_find(const float *x, const float *h, float a, float alpha,
                                                          uint8_t start, double es, double wlo, double whi,
                                                          uint8_t *c2, uint8_t *bb_out, rank_fn rank)
{
    if (a == 0.0f || es == 0.0)
        return 0;

    double ax[16], rax[16], w[16], sxx = 0.0, sxq = 0.0, sqq = 0.0;
    double key[16 * 7 + 8], d1[16 * 7], d2[16 * 7];
    uint8_t order[16 * 7];
    int n = 0;
    const double u_lo = 6.0 / (whi * (double)a), u_hi = 6.0 / (wlo * (double)a);
    for (int i = 0; i < 16; i++) {
        int fin = nvfp4i_isfinite(x[i]);
        ax[i] = fin ? fabs((double)x[i]) : 0.0;
        rax[i] = ax[i] > 0.0 ? 1.0 / ax[i] : 0.0;
        w[i] = fin ? (h ? (double)h[i] : 1.0) : 0.0;
        sxx += w[i] * ax[i] * ax[i];
        if (!(ax[i] > 0.0))
            continue;
        int k0 = dss_count(rax[i], u_lo);
        sxq += w[i] * ax[i] * dss_mag[k0];
        sqq += w[i] * dss_mag[k0] * dss_mag[k0];
        /* its code changes inside the window, appended without branches */
        for (int k = 0; k < 7; k++) {
            key[n] = dss_t[k] * rax[i];
            d1[n] = w[i] * ax[i] * (dss_mag[k + 1] - dss_mag[k]);
            d2[n] = w[i] * (dss_mag[k + 1] * dss_mag[k + 1] - dss_mag[k] * dss_mag[k]);
            n += (k >= k0) & (key[n] < u_hi);
        }
    }
    rank(key, n, order); /* increasing key; equal keys in the order they were appended */
    uint8_t bb = start;
    double best = es, p_best = -1.0; /* p_best < 0: the start block is the best so far */
    for (int s = -1; s < n; s++) {
        double p = u_lo; /* the state after the changes up to s holds on (p, next breakpoint) */
        if (s >= 0) {
            int e = order[s];
            sxq += d1[e];
            sqq += d2[e];
            p = key[e];
            if (s + 1 < n && key[order[s + 1]] == p)
                continue; /* codes that change together: only the whole group is a realisable set */
        }
        if (sxq * sxq > (sxx - best) * sqq) { /* else even the unconstrained scale cannot win */
            uint8_t b;
            double e = dss_eval(sxq, sqq, sxx, alpha, &b);
            if (e < best) {
                best = e;
                bb = b;
                p_best = p;
            }
        }
    }
    if (p_best < 0.0)
        return 0;
    /* the codes of the best interval (p_best, next breakpoint) */
    for (int i = 0; i < 16; i++) {
        if (!nvfp4i_isfinite(x[i])) {
            c2[i] = nvfp4i_e2m1_from_float(x[i]);
            continue;
        }
        int k = ax[i] > 0.0 ? dss_count(rax[i], p_best) : 0;
        c2[i] = (uint8_t)(k | ((nvfp4i_f2u(x[i]) >> 28) & 0x8u));
    }
    *bb_out = bb;
    return 1;
}

/* The search with the start block (its byte, decoded error es and codes, already in codes and
 * replaced only if the search wins): the closed form is exact arithmetic, the decoded error
 * decides. */
__attribute__((always_inline)) static inline uint8_t dss_core(const float *x, const float *h, float a, float alpha,
                                                              uint8_t start, double es, double wlo, double whi,
                                                              uint8_t *codes, rank_fn rank)
{
    uint8_t c2[16], bb;
    if (!dss_find(x, h, a, alpha, start, es, wlo, whi, c2, &bb, rank))
        return start;
    double e_dss = blk_err(x, h, c2, nvfp4i_e4m3_to_float(bb), alpha);
    if (e_dss < es) {
        memcpy(codes, c2, sizeof c2);
        return bb;
    }
    return start;
}

static uint8_t dss_search_c(const float *x, const float *h, float a, float alpha, uint8_t start, double es,
                            double wlo, double whi, uint8_t *codes)
{
    return dss_core(x, h, a, alpha, start, es, wlo, whi, codes, rank_c);
}

#if SOAR_AVX2
__attribute__((target("avx2"))) static uint8_t dss_search_avx2(const float *x, const float *h, float a, float alpha,
                                                               uint8_t start, double es, double wlo, double whi,
                                                               uint8_t *codes)
{
    return dss_core(x, h, a, alpha, start, es, wlo, whi, codes, rank_avx2);
}

__attribute__((target("avx2"))) static int dss_find_avx2(const float *x, const float *h, float a, float alpha,
                                                         uint8_t start, double es, double wlo, double whi,
                                                         uint8_t *c2, uint8_t *bb)
{
    return dss_find(x, h, a, alpha, start, es, wlo, whi, c2, bb, rank_avx2);
}
#endif

/* DSS on one block from the better of two start bytes (the first on a tie). */
static uint8_t dss_block(const float *x, const float *h, float a, float alpha, uint8_t start, uint8_t start2,
                         double wlo, double whi, uint8_t *codes)
{
    uint8_t c2[16];
    double t1, t2;
    double es = nvfp4i_eval_block(x, h, a, start, alpha, codes, &t1, &t2);
    if (start2 != start) {
        double e2 = nvfp4i_eval_block(x, h, a, start2, alpha, c2, &t1, &t2);
        if (e2 < es) {
            es = e2;
            start = start2;
            memcpy(codes, c2, sizeof c2);
        }
    }
#if SOAR_AVX2
    if (soar_have_avx2()) /* a load and a test of libgcc's CPU model, no shared state of ours */
        return dss_search_avx2(x, h, a, alpha, start, es, wlo, whi, codes);
#endif
    return dss_search_c(x, h, a, alpha, start, es, wlo, whi, codes);
}

#if NVFP4I_EVAL_AVX2 && SOAR_AVX2
/* dss_block for eight consecutive blocks (finite input): the start errors eight at a time. */
NVFP4I_EVAL_TARGET static void dss_group_avx2(const float *x, const float *h, const float *a, float alpha,
                                              const uint8_t *s1, const uint8_t *s2, double wlo, double whi,
                                              uint8_t *bytes, uint8_t *codes)
{
    nvfp4i_eval8_in in;
    double e1[8], e2[8], t1[8], t2[8];
    int two = 0;
    nvfp4i_eval8_load(&in, x, h);
    nvfp4i_eval8(&in, a, s1, alpha, e1, t1, t2);
    for (int j = 0; j < 8; j++)
        two |= s2[j] != s1[j];
    if (two)
        nvfp4i_eval8(&in, a, s2, alpha, e2, t1, t2);
    uint8_t c2[128], b2[8];
    int found[8], any = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t start = s1[j];
        double es = e1[j];
        if (two && s2[j] != s1[j] && e2[j] < es) {
            start = s2[j];
            es = e2[j];
        }
        e1[j] = es;
        bytes[j] = start;
        const float *xb = x + j * 16;
        found[j] = dss_find_avx2(xb, h ? h + j * 16 : NULL, a[j], alpha, start, es, wlo, whi, c2 + j * 16, b2 + j);
        if (!found[j]) { /* any valid block for the lane; its error is not used */
            memset(c2 + j * 16, 0, 16);
            b2[j] = start;
        }
        any |= found[j];
    }
    /* the winners' decoded errors, eight lanes at once, summed as blk_err sums them */
    if (any)
        nvfp4i_err8_codes(&in, c2, b2, alpha, e2);
    for (int j = 0; j < 8; j++) {
        if (found[j] && e2[j] < e1[j]) {
            memcpy(codes + j * 16, c2 + j * 16, 16);
            bytes[j] = b2[j];
        } else { /* the start block's codes, only where it stays */
            const float inv = nvfp4i_block_inv(a[j], nvfp4i_e4m3_to_float(bytes[j]), alpha);
            for (int i = 0; i < 16; i++)
                codes[j * 16 + i] = nvfp4i_encode(x[j * 16 + i], inv);
        }
    }
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
    uint8_t s = dss_block(x, h, a, job->s_dec, s0, s0, job->q->dss_lo, job->q->dss_hi, c);
    st->underflow += a > 0.0f && nvfp4i_e4m3_to_float(s) == 0.0f;
    return s;
}

/* The row path of soar_dss: groups of eight blocks when the input is finite, the same bits. */
static void dss_row_fn(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                       nvfp4i_stats_acc *st)
{
    uint8_t c[128];
    int64_t k0 = 0;
#if DSS_GROUPS
    if (job->nonfinite == 0 && soar_have_avx2() && nvfp4i_eval_have_avx2()) {
        const float pre = nvfp4i_max_pre(job->s_enc);
        k0 = job->nblk / 8 * 8;
        for (int64_t k = 0; k < k0; k += 8) {
            float a[8];
            uint8_t s0[8];
            for (int j = 0; j < 8; j++) {
                a[j] = nvfp4i_block_amax(x + (k + j) * 16, 16);
                s0[j] = nvfp4i_max_scale(a[j], pre);
            }
            dss_group_avx2(x + k * 16, job->h ? job->h + k * 16 : NULL, a, job->s_dec, s0, s0, job->q->dss_lo,
                           job->q->dss_hi, scales_row + k, c);
            for (int j = 0; j < 8; j++)
                st->underflow += a[j] > 0.0f && nvfp4i_e4m3_to_float(scales_row[k + j]) == 0.0f;
            nvfp4i_pack(c, 128, codes_row + k * 8);
        }
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
    uint8_t *cur;     /* the iterate's block bytes [rows·nblk] (written in PASS_INIT) */
    uint8_t *next;    /* the updated bytes (PASS_INIT, PASS_UPDATE) */
    double *row_loss; /* [rows] */
    double *row_num;  /* [rows]: Σ_b Δ_b Σ h x q */
    double *row_den;  /* [rows]: Σ_b Δ_b² Σ h q² */
    float alpha;
    int mode;
    int avx2;
    /* the output pass */
    int dss;
    nvfp4i_stats_acc *st; /* [threads] */
} cj_arg;

/* The Δ step of one block: from its codes' least-squares sums, both E4M3 neighbours of the LS
 * scale (or of the MAX scale when every code is zero) as candidates. */
static inline int cj_candidates(float a, float alpha, double sxq, double sqq, uint8_t *cand)
{
    if (!(a > 0.0f))
        return 0;
    double D = sqq > 0.0 ? sxq / ((double)alpha * sqq) : (double)a / (6.0 * (double)alpha);
    e4m3_bracket(D, &cand[0], &cand[1]);
    return cand[1] == cand[0] ? 1 : 2;
}

#if NVFP4I_EVAL_AVX2
/* cj_range's block loop for blocks k..k+7 of row r, the same decisions in the same order. */
NVFP4I_EVAL_TARGET static void cj_group_avx2(cj_arg *g, const float *x, int64_t r, int64_t k, float pre,
                                             double *loss, double *num, double *den)
{
    const nvfp4i_job *job = g->job;
    const int64_t idx0 = r * job->nblk + k;
    const float alpha = g->alpha;
    nvfp4i_eval8_in in;
    nvfp4i_eval8_load(&in, x + k * 16, job->h ? job->h + k * 16 : NULL);
    float a[8];
    uint8_t b[8], best[8], cand[2][8];
    int nc[8];
    for (int j = 0; j < 8; j++) {
        a[j] = nvfp4i_block_amax(x + (k + j) * 16, 16);
        if (g->mode == PASS_INIT) {
            b[j] = nvfp4i_max_scale(a[j], pre);
            g->cur[idx0 + j] = b[j];
        } else {
            b[j] = g->cur[idx0 + j];
        }
    }
    double e[8], sxq[8], sqq[8], e2[8], s1[8], s2[8];
    nvfp4i_eval8(&in, a, b, alpha, e, sxq, sqq);
    for (int j = 0; j < 8; j++)
        *loss += e[j];
    if (g->mode == PASS_EVAL)
        return;
    /* Each lane's candidates other than its current byte, in order (lower neighbour first),
     * packed to the front: a neighbour equal to the current byte is skipped anyway, so a
     * second evaluation is needed only when some lane's scale moves past a byte boundary. */
    int any[2] = {0, 0};
    for (int j = 0; j < 8; j++) {
        uint8_t cj[2];
        int n = cj_candidates(a[j], alpha, sxq[j], sqq[j], cj), m = 0;
        cand[0][j] = cand[1][j] = b[j];
        for (int t = 0; t < n; t++)
            if (cj[t] != b[j])
                cand[m++][j] = cj[t];
        nc[j] = m;
        any[0] |= m > 0;
        any[1] |= m > 1;
        best[j] = b[j];
    }
    for (int t = 0; t < 2; t++) {
        if (!any[t])
            continue;
        nvfp4i_eval8(&in, a, cand[t], alpha, e2, s1, s2);
        for (int j = 0; j < 8; j++) {
            if (t >= nc[j])
                continue;
            if (e2[j] < e[j]) {
                e[j] = e2[j];
                best[j] = cand[t][j];
                sxq[j] = s1[j];
                sqq[j] = s2[j];
            }
        }
    }
    for (int j = 0; j < 8; j++) {
        g->next[idx0 + j] = best[j];
        double f = (double)nvfp4i_e4m3_to_float(best[j]);
        *num += f * sxq[j];
        *den += f * f * sqq[j];
    }
}
#endif

/* One pass over rows [b, e): the loss of the iterate (α, cur) and, unless PASS_EVAL, the
 * Δ step (per block: both E4M3 neighbours of the LS scale with codes re-derived, kept only if
 * they lower the block's error; the plain RNE projection of SPEC §3.3 leaves ~5 % of CJSO's
 * gain, docs/METHODS.md) and the sums of the α step. Eight blocks at a time with AVX2 when the
 * input is finite; the scalar path gives the same bits. */
static void cj_range(void *argp, int64_t rb, int64_t re, int tid)
{
    cj_arg *g = argp;
    const nvfp4i_job *job = g->job;
    const int64_t nblk = job->nblk;
    const float alpha = g->alpha;
    const float pre = nvfp4i_max_pre(job->s_enc);
    float *x = g->xbuf + (size_t)tid * (size_t)job->padded;
    uint8_t c[16];
    int64_t k8 = 0;
#if NVFP4I_EVAL_AVX2
    if (job->nonfinite == 0 && g->avx2)
        k8 = nblk / 8 * 8;
#endif
    for (int64_t r = rb; r < re; r++) {
        double loss = 0.0, num = 0.0, den = 0.0;
        nvfp4i_load_row(&job->src, r, x, job->padded);
#if NVFP4I_EVAL_AVX2
        for (int64_t k = 0; k < k8; k += 8)
            cj_group_avx2(g, x, r, k, pre, &loss, &num, &den);
#endif
        for (int64_t k = k8; k < nblk; k++) {
            const float *xb = x + k * 16;
            const float *hb = job->h ? job->h + k * 16 : NULL;
            const int64_t idx = r * nblk + k;
            float a = nvfp4i_block_amax(xb, 16);
            uint8_t b;
            if (g->mode == PASS_INIT) {
                b = nvfp4i_max_scale(a, pre);
                g->cur[idx] = b;
            } else {
                b = g->cur[idx];
            }
            double sxq, sqq;
            double e = nvfp4i_eval_block(xb, hb, a, b, alpha, c, &sxq, &sqq);
            loss += e;
            if (g->mode == PASS_EVAL)
                continue;
            uint8_t best = b, cand[2];
            int nc = cj_candidates(a, alpha, sxq, sqq, cand);
            for (int j = 0; j < nc; j++) {
                if (cand[j] == best)
                    continue;
                double s1, s2;
                double e2 = nvfp4i_eval_block(xb, hb, a, cand[j], alpha, c, &s1, &s2);
                if (e2 < e) {
                    e = e2;
                    best = cand[j];
                    sxq = s1;
                    sqq = s2;
                }
            }
            g->next[idx] = best;
            double f = (double)nvfp4i_e4m3_to_float(best);
            num += f * sxq;
            den += f * f * sqq;
        }
        g->row_loss[r] = loss;
        g->row_num[r] = num;
        g->row_den[r] = den;
    }
}

/* The output pass: codes and scales from (α, cur), DSS per block when asked. */
static void out_range(void *argp, int64_t rb, int64_t re, int tid)
{
    cj_arg *g = argp;
    const nvfp4i_job *job = g->job;
    const int64_t nblk = job->nblk, row_bytes = job->padded / 2;
    const float alpha = g->alpha;
    float *x = g->xbuf + (size_t)tid * (size_t)job->padded;
    nvfp4i_stats_acc *st = &g->st[tid];
    uint8_t c[16], gc[128], gb[8];
    int64_t k8 = 0;
#if DSS_GROUPS
    if (g->dss && job->nonfinite == 0 && g->avx2 && soar_have_avx2())
        k8 = nblk / 8 * 8;
#endif
    for (int64_t r = rb; r < re; r++) {
        nvfp4i_load_row(&job->src, r, x, job->padded);
        for (int64_t k = 0; k < nblk; k++) {
            const float *xb = x + k * 16;
            const float *hb = job->h ? job->h + k * 16 : NULL;
            const uint8_t *cb = c;
            float a = nvfp4i_block_amax(xb, 16);
            uint8_t b = g->cur[r * nblk + k];
#if DSS_GROUPS
            if (k < k8) {
                if (k % 8 == 0) { /* DSS for blocks k..k+7 at once */
                    float a8[8];
                    uint8_t s2[8];
                    for (int j = 0; j < 8; j++) {
                        a8[j] = nvfp4i_block_amax(xb + j * 16, 16);
                        s2[j] = max_byte_at(a8[j], alpha);
                    }
                    dss_group_avx2(xb, hb, a8, alpha, g->cur + r * nblk + k, s2, job->q->dss_lo, job->q->dss_hi,
                                   gb, gc);
                }
                b = gb[k % 8];
                cb = gc + (k % 8) * 16;
            } else
#endif
            if (g->dss)
                b = dss_block(xb, hb, a, alpha, b, max_byte_at(a, alpha), job->q->dss_lo, job->q->dss_hi, c);
            else
                nvfp4i_encode_block(xb, 16, a, b, alpha, c);
            float sv = nvfp4i_e4m3_to_float(b);
            job->scales[r * nblk + k] = b;
            nvfp4i_pack(cb, 16, job->codes + r * row_bytes + k * 8);
            st->underflow += a > 0.0f && sv == 0.0f;
            if (job->want_stats) {
                st->sse += nvfp4i_block_sse(xb, hb, 16, cb, sv, alpha, &st->sum_sq);
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
#if NVFP4I_EVAL_AVX2
    g.avx2 = nvfp4i_eval_have_avx2();
#endif
    uint8_t *buf[3];
    g.xbuf = nvfp4i_alloc(ctx, (size_t)t * (size_t)job->padded * sizeof(float));
    for (int i = 0; i < 3; i++)
        buf[i] = nvfp4i_alloc(ctx, (size_t)nb);
    g.row_loss = nvfp4i_alloc(ctx, (size_t)rows * sizeof(double));
    g.row_num = nvfp4i_alloc(ctx, (size_t)rows * sizeof(double));
    g.row_den = nvfp4i_alloc(ctx, (size_t)rows * sizeof(double));
    g.st = nvfp4i_calloc(ctx, (size_t)t, sizeof(nvfp4i_stats_acc));
    nvfp4_status s = NVFP4_OK;
    if (!g.xbuf || !buf[0] || !buf[1] || !buf[2] || !g.row_loss || !g.row_num || !g.row_den || !g.st) {
        s = nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate CJSO state for %lld blocks", (long long)nb);
        goto done;
    }

    const int fixed_alpha = job->q->global_scale > 0.0;
    const int iters = job->q->cjso_iters;
    uint8_t *cur = buf[0], *next = buf[1], *best = buf[2], *tmp;
    float alpha = job->s_dec, best_alpha = alpha;
    double best_loss = INFINITY, loss0 = 0.0;
    int used = 0;
    for (int it = 0;; it++) {
        const int last = it == iters;
        g.alpha = alpha;
        g.cur = cur;
        g.next = next;
        g.mode = it == 0 ? PASS_INIT : last ? PASS_EVAL : PASS_UPDATE;
        nvfp4i_parallel_for(ctx, rows, cj_range, &g);
        double loss = sum_rows(g.row_loss, rows);
        if (it == 0)
            loss0 = loss;
        if (it > 0 && !(loss < best_loss))
            break; /* no decrease: keep the best iterate */
        best_loss = loss;
        best_alpha = alpha;
        tmp = best, best = cur, cur = tmp;
        if (last)
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
    for (int i = 0; i < t; i++)
        nvfp4i_stats_add(st, &g.st[i]);
    st->cjso_iterations = used;
    st->cjso_initial_sse = loss0;
    st->cjso_final_sse = best_loss;

done:
    nvfp4i_free(ctx, g.xbuf);
    for (int i = 0; i < 3; i++)
        nvfp4i_free(ctx, buf[i]);
    nvfp4i_free(ctx, g.row_loss);
    nvfp4i_free(ctx, g.row_num);
    nvfp4i_free(ctx, g.row_den);
    nvfp4i_free(ctx, g.st);
    return s;
}

static nvfp4_status cjso_tensor_fn(nvfp4i_job *job, nvfp4i_stats_acc *st) { return cjso_run(job, st, 0); }
static nvfp4_status soar_tensor_fn(nvfp4i_job *job, nvfp4i_stats_acc *st) { return cjso_run(job, st, 1); }

const nvfp4i_method nvfp4i_method_soar_cjso = {"soar_cjso", soar_emax, NULL, NULL, cjso_tensor_fn};
const nvfp4i_method nvfp4i_method_soar_dss = {"soar_dss", soar_emax, dss_block_fn, dss_row_fn, NULL};
const nvfp4i_method nvfp4i_method_soar = {"soar", soar_emax, NULL, NULL, soar_tensor_fn};
