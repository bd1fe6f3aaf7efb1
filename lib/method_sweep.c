/* method_sweep.c - the scale sweep (SPEC §3.5, ScaleSweep / llama.cpp's neighbouring-code
 * search): per block, every E4M3 byte within ±k of the MAX byte is tried with its own codes
 * (Δq = Δd, the coupled recipe of SPEC §3.1) and the one with the smallest decoded error
 * Σ h (x̂ − x)² is kept. Candidates are visited by distance from the MAX byte (lower first), and
 * only a strictly smaller error replaces the current best, so ties keep the byte closest to
 * MAX and the result is never worse than MAX's. A block whose MAX scale underflows (byte 0)
 * reaches the subnormal scales 1..k, so the sweep also rescues underflowed blocks.
 * The row path scores eight blocks at a time with AVX2 (method_eval.h), the same bits.
 */
#include <string.h>

#include "internal.h"
#include "method_eval.h"

static float sweep_emax(const nvfp4_quantizer *q)
{
    (void)q;
    return 448.0f;
}

static uint8_t sweep_block_fn(const nvfp4i_job *job, const float *x, const float *h, float a, uint8_t *c,
                              nvfp4i_stats_acc *st)
{
    const float s_dec = job->s_dec;
    const int k = job->q->sweep_radius;
    uint8_t b0 = nvfp4i_max_scale(a, nvfp4i_max_pre(job->s_enc)), best = b0;
    uint8_t t[16];
    double t1, t2;
    /* the searches' error (nvfp4i_eval_block: a decode past FLT_MAX counts as +Inf whatever
     * its weight), which the eight-lane path computes too */
    double e = nvfp4i_eval_block(x, h, a, b0, s_dec, c, &t1, &t2);
    if (a > 0.0f) {
        for (int d = 1; d <= k && e > 0.0; d++) {
            for (int side = -1; side <= 1; side += 2) {
                int b = (int)b0 + side * d;
                if (b < 0 || b > 0x7E)
                    continue;
                double e2 = nvfp4i_eval_block(x, h, a, (uint8_t)b, s_dec, t, &t1, &t2);
                if (e2 < e) {
                    e = e2;
                    best = (uint8_t)b;
                    memcpy(c, t, sizeof t);
                }
            }
        }
    }
    st->underflow += a > 0.0f && nvfp4i_e4m3_to_float(best) == 0.0f;
    return best;
}

#if NVFP4I_EVAL_AVX2
/* Blocks k..k+7 of a row: the same candidates in the same order as sweep_block_fn. */
NVFP4I_EVAL_TARGET static void sweep_group_avx2(const nvfp4i_job *job, const float *x, const float *h, uint8_t *best)
{
    const float s_dec = job->s_dec, pre = nvfp4i_max_pre(job->s_enc);
    const int k = job->q->sweep_radius;
    nvfp4i_eval8_in in;
    nvfp4i_eval8_load(&in, x, h);
    float a[8];
    uint8_t b0[8], cand[8];
    double e[8], e2[8], t1[8], t2[8];
    for (int j = 0; j < 8; j++) {
        a[j] = nvfp4i_block_amax(x + j * 16, 16);
        b0[j] = best[j] = nvfp4i_max_scale(a[j], pre);
    }
    nvfp4i_eval8(&in, a, b0, s_dec, e, t1, t2);
    for (int d = 1; d <= k; d++) {
        for (int side = -1; side <= 1; side += 2) {
            int live = 0;
            for (int j = 0; j < 8; j++) {
                int b = (int)b0[j] + side * d;
                int ok = a[j] > 0.0f && b >= 0 && b <= 0x7E && e[j] > 0.0;
                cand[j] = ok ? (uint8_t)b : b0[j];
                live |= ok;
            }
            if (!live)
                continue;
            nvfp4i_eval8(&in, a, cand, s_dec, e2, t1, t2);
            for (int j = 0; j < 8; j++)
                if (cand[j] != b0[j] && e2[j] < e[j]) {
                    e[j] = e2[j];
                    best[j] = cand[j];
                }
        }
    }
}
#endif

/* The row path: groups of eight blocks with AVX2 (finite input), the rest block by block. */
static void sweep_row_fn(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                         nvfp4i_stats_acc *st)
{
    uint8_t c[16];
    int64_t k0 = 0;
#if NVFP4I_EVAL_AVX2
    if (job->nonfinite == 0 && nvfp4i_eval_have_avx2()) {
        k0 = job->nblk / 8 * 8;
        for (int64_t k = 0; k < k0; k += 8)
            sweep_group_avx2(job, x + k * 16, job->h ? job->h + k * 16 : NULL, scales_row + k);
        for (int64_t k = 0; k < k0; k++) {
            const float *xb = x + k * 16;
            float a = nvfp4i_block_amax(xb, 16);
            nvfp4i_encode_block(xb, 16, a, scales_row[k], job->s_dec, c);
            st->underflow += a > 0.0f && nvfp4i_e4m3_to_float(scales_row[k]) == 0.0f;
            nvfp4i_pack(c, 16, codes_row + k * 8);
        }
    }
#endif
    for (int64_t k = k0; k < job->nblk; k++) {
        const float *xb = x + k * 16;
        scales_row[k] = sweep_block_fn(job, xb, job->h ? job->h + k * 16 : NULL, nvfp4i_block_amax(xb, 16), c, st);
        nvfp4i_pack(c, 16, codes_row + k * 8);
    }
    if (job->want_stats)
        nvfp4i_row_stats(job, x, codes_row, scales_row, 0, job->nblk, st);
}

const nvfp4i_method nvfp4i_method_sweep = {"sweep", sweep_emax, sweep_block_fn, sweep_row_fn, NULL};
