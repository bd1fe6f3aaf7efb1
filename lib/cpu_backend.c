/* cpu_backend.c - the CPU backend's quantise/dequantise operations and backend selection. */
#include <string.h>

#include "dispatch.h"

static nvfp4_status cpu_run_method(nvfp4i_job *job, const nvfp4i_method *m, nvfp4i_stats_acc *st)
{
    nvfp4_context *ctx = job->ctx;
    const nvfp4_quantizer *q = job->q;
    float amax = 0.0f;
    int64_t nonfinite = 0;
    /* Pass 1 (amax and the NaN/Inf count) is skipped when nothing reads it: MAX with a
     * caller-supplied global scale (or MXFP4), the saturate policy and no statistics. MAX's row
     * paths then meet NaN/Inf block by block and convert them as SPEC §1 says. */
    int one_pass = m == &nvfp4i_method_max && q->nonfinite == NVFP4_NONFINITE_SATURATE && !job->want_stats &&
                   (q->global_scale > 0.0 || job->block == NVFP4I_BLOCK_MXFP4);
    if (!one_pass) {
        nvfp4_status s = nvfp4i_tensor_amax(ctx, &job->src, &amax, &nonfinite);
        if (s)
            return s;
    }
    if (nonfinite && q->nonfinite == NVFP4_NONFINITE_STRICT)
        return nvfp4i_fail(ctx, NVFP4_ERR_NONFINITE, "input holds %lld NaN/Inf values (strict policy)",
                           (long long)nonfinite);
    job->amax = amax;
    job->emax = m->global_emax(q);
    st->nonfinite = nonfinite;
    job->nonfinite = nonfinite;
    if (job->block == NVFP4I_BLOCK_MXFP4) {
        job->s_enc = 1.0f;
        job->s_dec = 1.0f;
    } else if (q->global_scale > 0.0) {
        job->s_dec = (float)q->global_scale;
        float e = 1.0f / job->s_dec;
        job->s_enc = e <= NVFP4I_FLT_MAX ? e : NVFP4I_FLT_MAX;
    } else if (q->recipe == NVFP4_RECIPE_MODELOPT) {
        /* ModelOpt: weight_scale_2 = RN32(A / 2688) (an all-zero tensor gets 1, see docs) */
        job->s_dec = amax > 0.0f ? amax / (6.0f * job->emax) : 1.0f;
        if (!(job->s_dec > 0.0f))
            job->s_dec = 1.0f;
        job->s_enc = 1.0f / job->s_dec;
    } else {
        nvfp4i_global_scales(amax, job->emax, &job->s_enc, &job->s_dec);
    }
    if (m->tensor_fn)
        return m->tensor_fn(job, st);
    if (m->row_fn)
        return nvfp4i_run_rows(job, m->row_fn, st);
    return nvfp4i_run_blockwise(job, m->block_fn, st);
}

/* Runs the method into linear scales (scratch when the caller wants the 128×4 layout, so that
 * an error leaves the caller's buffer untouched), then lays them out. */
static nvfp4_status cpu_quantize(nvfp4i_job *job, const nvfp4i_method *m, nvfp4i_stats_acc *st, float *global_scale)
{
    nvfp4_context *ctx = job->ctx;
    uint8_t *out = job->scales, *linear = NULL;
    if (job->q->layout == NVFP4_LAYOUT_128X4) {
        linear = nvfp4i_alloc(ctx, (size_t)(job->src.rows * job->nblk));
        if (!linear)
            return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate %lld bytes of scale scratch",
                               (long long)(job->src.rows * job->nblk));
        job->scales = linear;
    }
    nvfp4_status s = cpu_run_method(job, m, st);
    if (s == NVFP4_OK) {
        if (linear)
            nvfp4i_swizzle(linear, job->src.rows, job->nblk, out);
        *global_scale = job->s_dec;
    }
    job->scales = out;
    nvfp4i_free(ctx, linear);
    return s;
}

typedef struct {
    const nvfp4i_deq *d;
} deq_arg;

/* A block's 16 possible decoded values, nvfp4i_decode() of each code: the element loop is then
 * a table lookup per element (same values, bit for bit). */
static void block_table(float sv, float gs, float lut[16])
{
    for (uint8_t c = 0; c < 16; c++)
        lut[c] = nvfp4i_decode(c, sv, gs);
}

static void deq_range(void *argp, int64_t b, int64_t e, int tid)
{
    const nvfp4i_deq *d = ((deq_arg *)argp)->d;
    const int B = d->block;
    const int64_t row_bytes = d->nblk * B / 2;
    float lut[16], vals[32];
    (void)tid;
    for (int64_t r = b; r < e; r++) {
        const uint8_t *cr = d->codes + r * row_bytes;
        const uint8_t *sr = d->scales + r * d->nblk;
        for (int64_t k = 0; k < d->nblk; k++) {
            float sv = d->format == NVFP4_FORMAT_MXFP4 ? nvfp4i_e8m0_to_float(sr[k]) : nvfp4i_e4m3_to_float(sr[k]);
            block_table(sv, d->global_scale, lut);
            const uint8_t *cb = cr + k * (B / 2);
            for (int j = 0; j < B / 2; j++) {
                vals[2 * j] = lut[cb[j] & 0xF];
                vals[2 * j + 1] = lut[cb[j] >> 4];
            }
            int64_t c0 = k * B;
            int n = (int)(d->cols - c0 < B ? d->cols - c0 : B);
            int64_t o = r * d->ld + c0;
            switch (d->dst_dtype) {
            case NVFP4_DTYPE_F32:
                memcpy((float *)d->dst + o, vals, (size_t)n * sizeof(float));
                break;
            case NVFP4_DTYPE_F16:
                for (int i = 0; i < n; i++)
                    ((uint16_t *)d->dst)[o + i] = nvfp4i_float_to_f16(vals[i]);
                break;
            default:
                for (int i = 0; i < n; i++)
                    ((uint16_t *)d->dst)[o + i] = nvfp4i_float_to_bf16(vals[i]);
                break;
            }
        }
    }
}

static nvfp4_status cpu_dequantize(nvfp4_context *ctx, const nvfp4i_deq *in)
{
    nvfp4i_deq d = *in;
    uint8_t *tmp = NULL;
    if (d.layout == NVFP4_LAYOUT_128X4) {
        tmp = nvfp4i_alloc(ctx, (size_t)(d.rows * d.nblk));
        if (!tmp)
            return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate scale scratch");
        nvfp4i_unswizzle(d.scales, d.rows, d.nblk, tmp);
        d.scales = tmp;
        d.layout = NVFP4_LAYOUT_LINEAR;
    }
    for (int64_t i = 0; i < d.rows * d.nblk; i++) {
        int bad = d.format == NVFP4_FORMAT_MXFP4 ? d.scales[i] == 0xFF : d.scales[i] >= 0x7F;
        if (bad) {
            uint8_t b = d.scales[i]; /* d.scales may be tmp: read it before the free */
            nvfp4i_free(ctx, tmp);
            return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_SCALE,
                               "scale byte 0x%02X at row %lld, block %lld cannot be decoded", b,
                               (long long)(i / d.nblk), (long long)(i % d.nblk));
        }
    }
    deq_arg a = {&d};
    nvfp4i_parallel_for(ctx, d.rows, deq_range, &a);
    nvfp4i_free(ctx, tmp);
    return NVFP4_OK;
}

const nvfp4i_backend_ops nvfp4i_cpu_ops = {cpu_quantize, cpu_dequantize};

const nvfp4i_backend_ops *nvfp4i_backend_ops_for(const nvfp4_context *ctx)
{
#ifdef NVFP4_HAVE_CUDA
    if (ctx->backend == NVFP4_BACKEND_CUDA)
        return &nvfp4i_cuda_ops;
#else
    (void)ctx;
#endif
    return &nvfp4i_cpu_ops;
}

#ifndef NVFP4_HAVE_CUDA
/* A build without CUDA: no CUDA context can exist (cuda/cuda_backend.cu defines these otherwise). */
int nvfp4i_cuda_available(void) { return 0; }
void nvfp4i_backend_release(nvfp4_context *ctx) { (void)ctx; }

nvfp4_status nvfp4_context_set_cuda_stream(nvfp4_context *ctx, void *stream)
{
    (void)stream;
    if (!ctx)
        return NVFP4_ERR_NULL_POINTER;
    return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED, "this build of libnvfp4 has no CUDA backend");
}

nvfp4_status nvfp4_context_get_cuda_stream(const nvfp4_context *ctx, void **stream)
{
    if (!ctx || !stream)
        return NVFP4_ERR_NULL_POINTER;
    return NVFP4_ERR_UNSUPPORTED;
}
#endif
