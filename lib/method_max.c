/* method_max.c - MAX (SPEC §3.1): the NVFP4 baseline, its ModelOpt-compatible recipe, and MXFP4. */
#include "internal.h"

static float max_emax(const nvfp4_quantizer *q)
{
    (void)q;
    return 448.0f;
}

/* Exact recipe (TransformerEngine's association). Returns the scale byte; sets *uf on underflow. */
static inline uint8_t max_block_exact(const float *x, int n, float a, float pre, float s_dec, uint8_t *c, int *uf)
{
    uint8_t s = nvfp4i_max_scale(a, pre);
    float sv = nvfp4i_e4m3_to_float(s);
    float inv = nvfp4i_block_inv(a, sv, s_dec);
    for (int i = 0; i < n; i++)
        c[i] = nvfp4i_encode(x[i], inv);
    *uf = a > 0.0f && sv == 0.0f;
    return s;
}

/* ModelOpt's export: S = RN32(a / RN32(6·s_dec)), S := 1 where S == 0, byte = E4M3(S),
 * code = E2M1(y), y = RN32(x / RN32(f(S)·s_dec)), with the sign taken from y < 0 as ModelOpt does (a
 * quotient of ±0.0, from −0.0 input or from underflow, gives 0x0). */
static inline uint8_t max_block_modelopt(const float *x, int n, float a, float six_dec, float s_dec, uint8_t *c,
                                         int *uf)
{
    float S = a / six_dec;
    if (S == 0.0f)
        S = 1.0f;
    uint8_t s = nvfp4i_e4m3_from_float(S);
    float den = nvfp4i_e4m3_to_float(s) * s_dec;
    for (int i = 0; i < n; i++) {
        float y = x[i] / den;
        uint8_t code = nvfp4i_e2m1_from_float(y);
        c[i] = y == 0.0f ? (uint8_t)(code & 0x7u) : code; /* ±0 quotient: no sign (y < 0 is false) */
    }
    *uf = a > 0.0f && den == 0.0f;
    return s;
}

/* MXFP4: E8M0 scale from the amax, elements multiplied by the exact power of two. */
static inline uint8_t max_block_mx(const float *x, int n, float a, int floor_mode, uint8_t *c)
{
    uint8_t s = nvfp4i_e8m0_from_amax(a, floor_mode);
    float inv = nvfp4i_e8m0_inverse(s);
    for (int i = 0; i < n; i++)
        c[i] = nvfp4i_encode(x[i], inv);
    return s;
}

static uint8_t max_block(const nvfp4i_job *job, const float *x, const float *h, float a, uint8_t *c,
                         nvfp4i_stats_acc *st)
{
    int uf = 0;
    uint8_t s;
    (void)h;
    if (job->block == NVFP4I_BLOCK_MXFP4)
        s = max_block_mx(x, job->block, a, job->q->e8m0_mode == NVFP4_E8M0_FLOOR, c);
    else if (job->q->recipe == NVFP4_RECIPE_MODELOPT)
        s = max_block_modelopt(x, job->block, a, 6.0f * job->s_dec, job->s_dec, c, &uf);
    else
        s = max_block_exact(x, job->block, a, nvfp4i_max_pre(job->s_enc), job->s_dec, c, &uf);
    st->underflow += uf;
    return s;
}

/* The fast path: the exact NVFP4 recipe over a whole row, with fixed-size inner loops that the
 * compiler vectorises; the other variants go block by block. */
static void max_row(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                    nvfp4i_stats_acc *st)
{
    const int64_t nblk = job->nblk;
    const int B = job->block;
    uint8_t c[32];
    if (B != NVFP4I_BLOCK_NVFP4 || job->q->recipe != NVFP4_RECIPE_EXACT) {
        for (int64_t k = 0; k < nblk; k++) {
            const float *xb = x + k * B;
            uint8_t s = max_block(job, xb, NULL, nvfp4i_block_amax(xb, B), c, st);
            /* SPEC §2: padding codes are 0. The ModelOpt recipe divides by f(S)·s_dec, which is 0
             * in an underflowed block, and would code the zero padding as 0/0 = NaN → 0x7; the
             * codes are fixed before the statistics read them (they decode the stored codes). */
            for (int64_t col = job->src.cols > k * B ? job->src.cols : k * B; col < (k + 1) * B; col++)
                c[col - k * B] = 0;
            scales_row[k] = s;
            nvfp4i_pack(c, B, codes_row + k * (B / 2));
            if (job->want_stats) {
                const float *hb = job->h ? job->h + k * B : NULL;
                st->sse += nvfp4i_block_sse(xb, hb, B, c, nvfp4i_scale_value(job, s), job->s_dec, &st->sum_sq);
                st->blocks++;
            }
        }
        return;
    }
    const float pre = nvfp4i_max_pre(job->s_enc), s_dec = job->s_dec;
    int64_t uf = 0, k0 = 0;
    if (nblk >= 8 && nvfp4i_have_avx2()) {
        k0 = nblk & ~(int64_t)7;
        for (int64_t k = 0; k < k0;) {
            k += nvfp4i_max_row_avx2(x + k * 16, k0 - k, pre, s_dec, codes_row + k * 8, scales_row + k, &uf);
            /* a group holding NaN/Inf (saturate policy) goes through the scalar rules */
            for (int64_t end = k + 8; k < k0 && k < end; k++) {
                int u = 0;
                scales_row[k] = max_block_exact(x + k * 16, 16, nvfp4i_block_amax(x + k * 16, 16), pre, s_dec, c, &u);
                nvfp4i_pack(c, 16, codes_row + k * 8);
                uf += u;
            }
        }
        if (job->want_stats)
            nvfp4i_row_stats(job, x, codes_row, scales_row, 0, k0, st);
    }
    for (int64_t k = k0; k < nblk; k++) {
        int u = 0;
        scales_row[k] = max_block_exact(x + k * 16, 16, nvfp4i_block_amax(x + k * 16, 16), pre, s_dec, c, &u);
        nvfp4i_pack(c, 16, codes_row + k * 8);
        uf += u;
    }
    if (job->want_stats)
        nvfp4i_row_stats(job, x, codes_row, scales_row, k0, nblk, st);
    st->underflow += uf;
}

const nvfp4i_method nvfp4i_method_max = {"max", max_emax, max_block, max_row, NULL};
