/* cpu_quant.c - shared CPU building blocks: row loading, amax, block encode/SSE, packing and
 * the row-parallel driver that runs block-wise methods. */
#include <string.h>

#include "internal.h"

void nvfp4i_load_row(const nvfp4i_src *s, int64_t r, float *dst, int64_t padded)
{
    int64_t c = s->cols;
    switch (s->dtype) {
    case NVFP4_DTYPE_F32:
        memcpy(dst, (const float *)s->data + r * s->ld, (size_t)c * sizeof(float));
        break;
    case NVFP4_DTYPE_F16: {
        const uint16_t *p = (const uint16_t *)s->data + r * s->ld;
        for (int64_t i = 0; i < c; i++)
            dst[i] = nvfp4i_f16_to_float(p[i]);
        break;
    }
    default: {
        const uint16_t *p = (const uint16_t *)s->data + r * s->ld;
        for (int64_t i = 0; i < c; i++)
            dst[i] = nvfp4i_bf16_to_float(p[i]);
        break;
    }
    }
    for (int64_t i = c; i < padded; i++)
        dst[i] = 0.0f;
}

void nvfp4i_stats_add(nvfp4i_stats_acc *into, const nvfp4i_stats_acc *a)
{
    into->sse += a->sse;
    into->sum_sq += a->sum_sq;
    into->blocks += a->blocks;
    into->chose4 += a->chose4;
    into->chose6 += a->chose6;
    into->underflow += a->underflow;
    into->nonfinite += a->nonfinite;
}

/* ---- amax -------------------------------------------------------------------------------- */

typedef struct {
    const nvfp4i_src *src;
    uint32_t max_bits[NVFP4I_MAX_THREADS];
    int64_t nonfinite[NVFP4I_MAX_THREADS];
} amax_arg;

/* Max of |x| bit patterns over finite values, and the count of non-finite ones. The hot loop
 * keeps two uint32 maxima (finite values only, and everything) so that it vectorises; the
 * count is taken in a second loop only when a row holds NaN/Inf. */
NVFP4I_CLONES static void amax_f32(const float *p, int64_t n, uint32_t *mx, int64_t *nf)
{
    uint32_t m = *mx, all = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = nvfp4i_f2u(p[i]) & 0x7FFFFFFFu;
        uint32_t f = a & (uint32_t)-(int32_t)(a < 0x7F800000u); /* written as a mask: vectorises */
        all = a > all ? a : all;
        m = f > m ? f : m;
    }
    *mx = m;
    if (all >= 0x7F800000u)
        for (int64_t i = 0; i < n; i++)
            *nf += (nvfp4i_f2u(p[i]) & 0x7F800000u) == 0x7F800000u;
}

/* For 16-bit types the abs bit pattern is monotonic too; map the max back to float at the end. */
NVFP4I_CLONES static void amax_u16(const uint16_t *p, int64_t n, uint16_t expmask, uint16_t *mx, int64_t *nf)
{
    uint16_t m = *mx, all = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t a = (uint16_t)(p[i] & 0x7FFFu);
        uint16_t f = (uint16_t)(a & (uint16_t)-(int16_t)(a < expmask));
        all = a > all ? a : all;
        m = f > m ? f : m;
    }
    *mx = m;
    if (all >= expmask)
        for (int64_t i = 0; i < n; i++)
            *nf += (p[i] & expmask) == expmask;
}

static void amax_range(void *argp, int64_t b, int64_t e, int tid)
{
    amax_arg *arg = argp;
    const nvfp4i_src *s = arg->src;
    uint32_t m32 = 0;
    uint16_t m16 = 0;
    int64_t nf = 0;
    for (int64_t r = b; r < e; r++) {
        if (s->dtype == NVFP4_DTYPE_F32)
            amax_f32((const float *)s->data + r * s->ld, s->cols, &m32, &nf);
        else
            amax_u16((const uint16_t *)s->data + r * s->ld, s->cols,
                     s->dtype == NVFP4_DTYPE_F16 ? 0x7C00u : 0x7F80u, &m16, &nf);
    }
    if (s->dtype == NVFP4_DTYPE_F16)
        m32 = nvfp4i_f2u(nvfp4i_f16_to_float(m16));
    else if (s->dtype == NVFP4_DTYPE_BF16)
        m32 = (uint32_t)m16 << 16;
    arg->max_bits[tid] = m32;
    arg->nonfinite[tid] = nf;
}

nvfp4_status nvfp4i_tensor_amax(nvfp4_context *ctx, const nvfp4i_src *src, float *amax, int64_t *nonfinite)
{
    amax_arg *arg = nvfp4i_alloc(ctx, sizeof *arg);
    if (!arg)
        return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", sizeof *arg);
    arg->src = src;
    int t = nvfp4i_nthreads(ctx, src->rows);
    nvfp4i_parallel_for(ctx, src->rows, amax_range, arg);
    uint32_t m = 0;
    int64_t nf = 0;
    for (int i = 0; i < t; i++) {
        m = arg->max_bits[i] > m ? arg->max_bits[i] : m;
        nf += arg->nonfinite[i];
    }
    nvfp4i_free(ctx, arg);
    *amax = nvfp4i_u2f(m);
    *nonfinite = nf;
    return NVFP4_OK;
}

/* ---- blocks ------------------------------------------------------------------------------ */

int nvfp4i_encode_block(const float *x, int n, float amax, uint8_t scale, float s_dec, uint8_t *codes)
{
    float sv = nvfp4i_e4m3_to_float(scale);
    float inv = nvfp4i_block_inv(amax, sv, s_dec);
    for (int i = 0; i < n; i++)
        codes[i] = nvfp4i_encode(x[i], inv);
    return amax > 0.0f && sv == 0.0f;
}

double nvfp4i_block_sse(const float *x, const float *h, int n, const uint8_t *codes, float scale_value,
                        float s_dec, double *sum_sq)
{
    double lut[16], e = 0.0, s = 0.0;
    for (uint8_t c = 0; c < 16; c++)
        lut[c] = (double)nvfp4i_decode(c, scale_value, s_dec);
    for (int i = 0; i < n; i++) {
        double xi = (double)x[i];
        double w = h ? (double)h[i] : 1.0;
        double d = lut[codes[i] & 0xF] - xi;
        /* non-finite inputs (saturate policy) are not part of the error */
        w = nvfp4i_isfinite(x[i]) ? w : 0.0;
        d = nvfp4i_isfinite(x[i]) ? d : 0.0;
        xi = nvfp4i_isfinite(x[i]) ? xi : 0.0;
        /* a zero weight leaves the element out: a finite input may decode to ±Inf (MXFP4 near
         * FLT_MAX, docs/FORMAT.md), and 0·Inf would turn the sum into NaN; an element of positive
         * weight that decodes to ±Inf makes it +Inf. Adding +0 instead changes no finite sum. */
        e += w != 0.0 ? w * d * d : 0.0;
        s += w * xi * xi;
    }
    if (sum_sq)
        *sum_sq += s;
    return e;
}

void nvfp4i_row_stats(const nvfp4i_job *job, const float *x, const uint8_t *codes_row, const uint8_t *scales_row,
                      int64_t k0, int64_t k1, nvfp4i_stats_acc *st)
{
    const int B = job->block;
    uint8_t c[NVFP4I_BLOCK_MXFP4];
    for (int64_t k = k0; k < k1; k++) {
        for (int j = 0; j < B / 2; j++) {
            c[2 * j] = codes_row[k * (B / 2) + j] & 0xF;
            c[2 * j + 1] = codes_row[k * (B / 2) + j] >> 4;
        }
        st->sse += nvfp4i_block_sse(x + k * B, job->h ? job->h + k * B : NULL, B, c,
                                    nvfp4i_scale_value(job, scales_row[k]), job->s_dec, &st->sum_sq);
        st->blocks++;
    }
}

void nvfp4i_pack(const uint8_t *codes, int64_t n, uint8_t *packed)
{
    for (int64_t j = 0; j < n / 2; j++)
        packed[j] = (uint8_t)(codes[2 * j] | (codes[2 * j + 1] << 4));
}

/* ---- the row-parallel driver ------------------------------------------------------------- */

typedef struct {
    const nvfp4i_job *job;
    nvfp4i_block_fn block_fn;
    nvfp4i_row_fn row_fn;
    float *xbuf;     /* [threads][padded] */
    uint8_t *cbuf;   /* [threads][block] */
    nvfp4i_stats_acc *st; /* [threads] */
} drive_arg;

static void drive_range(void *argp, int64_t b, int64_t e, int tid)
{
    drive_arg *a = argp;
    const nvfp4i_job *job = a->job;
    const int B = job->block;
    const int64_t row_bytes = job->padded / 2;
    float *x = a->xbuf + (size_t)tid * (size_t)job->padded;
    uint8_t *c = a->cbuf + (size_t)tid * (size_t)B;
    nvfp4i_stats_acc *st = &a->st[tid];
    for (int64_t r = b; r < e; r++) {
        uint8_t *codes_row = job->codes + r * row_bytes;
        uint8_t *scales_row = job->scales + r * job->nblk;
        if (a->row_fn) {
            /* f32 rows that need no padding are read in place */
            a->row_fn(job, nvfp4i_row(&job->src, r, x, job->padded), codes_row, scales_row, st);
            continue;
        }
        nvfp4i_load_row(&job->src, r, x, job->padded);
        for (int64_t k = 0; k < job->nblk; k++) {
            const float *xb = x + k * B;
            const float *hb = job->h ? job->h + k * B : NULL;
            uint8_t s = a->block_fn(job, xb, hb, nvfp4i_block_amax(xb, B), c, st);
            scales_row[k] = s;
            nvfp4i_pack(c, B, codes_row + k * (B / 2));
            if (job->want_stats) {
                st->sse += nvfp4i_block_sse(xb, hb, B, c, nvfp4i_scale_value(job, s), job->s_dec, &st->sum_sq);
                st->blocks++;
            }
        }
    }
}

static nvfp4_status drive(const nvfp4i_job *job, nvfp4i_block_fn bf, nvfp4i_row_fn rf, nvfp4i_stats_acc *st)
{
    nvfp4_context *ctx = job->ctx;
    int t = nvfp4i_nthreads(ctx, job->src.rows);
    drive_arg a;
    a.job = job;
    a.block_fn = bf;
    a.row_fn = rf;
    a.xbuf = nvfp4i_alloc(ctx, (size_t)t * (size_t)job->padded * sizeof(float));
    a.cbuf = nvfp4i_alloc(ctx, (size_t)t * (size_t)job->block);
    a.st = nvfp4i_calloc(ctx, (size_t)t, sizeof(nvfp4i_stats_acc));
    if (!a.xbuf || !a.cbuf || !a.st) {
        nvfp4i_free(ctx, a.xbuf);
        nvfp4i_free(ctx, a.cbuf);
        nvfp4i_free(ctx, a.st);
        return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate row scratch for %d threads", t);
    }
    nvfp4i_parallel_for(ctx, job->src.rows, drive_range, &a);
    for (int i = 0; i < t; i++)
        nvfp4i_stats_add(st, &a.st[i]);
    nvfp4i_free(ctx, a.xbuf);
    nvfp4i_free(ctx, a.cbuf);
    nvfp4i_free(ctx, a.st);
    return NVFP4_OK;
}

nvfp4_status nvfp4i_run_blockwise(const nvfp4i_job *job, nvfp4i_block_fn fn, nvfp4i_stats_acc *st)
{
    return drive(job, fn, NULL, st);
}

nvfp4_status nvfp4i_run_rows(const nvfp4i_job *job, nvfp4i_row_fn fn, nvfp4i_stats_acc *st)
{
    return drive(job, NULL, fn, st);
}
