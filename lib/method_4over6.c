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

/* The whole-row path the driver prefers: the same block routine without a call per block. */
static void fo6_row_fn(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                       nvfp4i_stats_acc *st)
{
    fo6_params p = fo6_setup(job);
    uint8_t c[16];
    int64_t n4 = 0, uf = 0;
    for (int64_t k = 0; k < job->nblk; k++) {
        const float *xb = x + k * 16;
        const float *hb = job->h ? job->h + k * 16 : NULL;
        float a = nvfp4i_block_amax(xb, 16);
        int four;
        uint8_t s = fo6_block(&p, xb, hb, a, c, &four);
        float sv = nvfp4i_e4m3_to_float(s);
        n4 += four;
        uf += a > 0.0f && sv == 0.0f;
        scales_row[k] = s;
        nvfp4i_pack(c, 16, codes_row + k * 8);
        if (job->want_stats) {
            st->sse += nvfp4i_block_sse(xb, hb, 16, c, sv, job->s_dec, &st->sum_sq);
            st->blocks++;
        }
    }
    st->chose4 += n4;
    st->chose6 += job->nblk - n4;
    st->underflow += uf;
}

const nvfp4i_method nvfp4i_method_4over6 = {"4over6", fo6_emax, fo6_block_fn, fo6_row_fn, NULL};
