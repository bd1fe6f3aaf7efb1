/* method_sweep.c - the scale sweep (SPEC §3.5, ScaleSweep / llama.cpp's neighbouring-code
 * search): per block, every E4M3 byte within ±k of the MAX byte is tried with its own codes
 * (Δq = Δd, the coupled recipe of SPEC §3.1) and the one with the smallest decoded error
 * Σ h (x̂ − x)² is kept. Candidates are visited by distance from the MAX byte (lower first), and
 * only a strictly smaller error replaces the current best, so ties keep the byte closest to
 * MAX and the result is never worse than MAX's. A block whose MAX scale underflows (byte 0)
 * reaches the subnormal scales 1..k, so the sweep also rescues underflowed blocks.
 */
#include <string.h>

#include "internal.h"

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
    nvfp4i_encode_block(x, 16, a, b0, s_dec, c);
    if (a > 0.0f) {
        double e = nvfp4i_block_sse(x, h, 16, c, nvfp4i_e4m3_to_float(b0), s_dec, NULL);
        for (int d = 1; d <= k && e > 0.0; d++) {
            for (int side = -1; side <= 1; side += 2) {
                int b = (int)b0 + side * d;
                if (b < 0 || b > 0x7E)
                    continue;
                nvfp4i_encode_block(x, 16, a, (uint8_t)b, s_dec, t);
                double e2 = nvfp4i_block_sse(x, h, 16, t, nvfp4i_e4m3_to_float((uint8_t)b), s_dec, NULL);
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

const nvfp4i_method nvfp4i_method_sweep = {"sweep", sweep_emax, sweep_block_fn, NULL, NULL};
