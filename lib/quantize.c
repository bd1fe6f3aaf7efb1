/* quantize.c - the public quantise/dequantise entry points: validate every argument once,
 * then dispatch to the context's backend. Nothing is written to the outputs on any error. */
#include <string.h>

#include "dispatch.h"

/* Shape checks shared by both directions: rows, cols > 0, ld ≥ cols, and every buffer size
 * (source/destination elements, codes, scales) representable. */
static nvfp4_status check_shape(nvfp4_context *ctx, int64_t rows, int64_t cols, int64_t ld, int32_t dtype,
                                int block, int64_t *nblk)
{
    int64_t elems, bytes, padded;
    if (rows <= 0 || cols <= 0)
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "rows and cols must be positive (got %lld x %lld)",
                           (long long)rows, (long long)cols);
    if (ld < cols)
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "ld (%lld) is smaller than cols (%lld)", (long long)ld,
                           (long long)cols);
    /* the last row ends at (rows-1)·ld + cols elements */
    if (!nvfp4i_mul_ok(rows - 1, ld, &elems) || elems > INT64_MAX - cols ||
        !nvfp4i_mul_ok(elems + cols, (int64_t)nvfp4i_dtype_size(dtype), &bytes) || (uint64_t)bytes > SIZE_MAX)
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "tensor size overflows (rows %lld, ld %lld)", (long long)rows,
                           (long long)ld);
    if (cols > INT64_MAX - block)
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "cols too large");
    *nblk = (cols + block - 1) / block;
    padded = *nblk * block;
    if (!nvfp4i_mul_ok(rows, padded, &elems) || !nvfp4i_mul_ok(rows, *nblk, &bytes))
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "packed size overflows");
    return NVFP4_OK;
}

static void fill_stats(nvfp4_context *ctx, const nvfp4i_stats_acc *st)
{
    nvfp4_stats *s = &ctx->stats;
    s->size = sizeof *s;
    s->sse = st->sse;
    s->sum_sq = st->sum_sq;
    s->blocks = st->blocks;
    s->blocks_chose_4 = st->chose4;
    s->blocks_chose_6 = st->chose6;
    s->blocks_underflow = st->underflow;
    s->nonfinite = st->nonfinite;
    s->cjso_iterations = st->cjso_iterations;
    s->reserved0 = 0;
    s->cjso_initial_sse = st->cjso_initial_sse;
    s->cjso_final_sse = st->cjso_final_sse;
    ctx->stats_valid = 1;
}

nvfp4_status nvfp4_quantize(nvfp4_context *ctx, const nvfp4_quantizer *q, int32_t src_dtype, const void *src,
                            int64_t rows, int64_t cols, int64_t ld, uint8_t *codes, uint8_t *scales,
                            float *global_scale)
{
    int64_t nblk;
    if (!ctx)
        return NVFP4_ERR_NULL_POINTER;
    nvfp4i_clear_error(ctx);
    if (!q || !src || !codes || !scales || !global_scale)
        return nvfp4i_fail(ctx, NVFP4_ERR_NULL_POINTER, "a pointer argument is NULL");
    if (!nvfp4i_dtype_ok(src_dtype))
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown source dtype %d", (int)src_dtype);
    const nvfp4i_method *m = nvfp4i_method_get(q->method);
    if (!m)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown method %d", (int)q->method);
    int block = q->format == NVFP4_FORMAT_MXFP4 ? NVFP4I_BLOCK_MXFP4 : NVFP4I_BLOCK_NVFP4;
    nvfp4_status s = check_shape(ctx, rows, cols, ld, src_dtype, block, &nblk);
    if (s)
        return s;
    if (q->importance && q->importance_n != cols)
        return nvfp4i_fail(ctx, NVFP4_ERR_SHAPE, "importance weights have %lld entries for %lld columns",
                           (long long)q->importance_n, (long long)cols);
    if (q->format == NVFP4_FORMAT_MXFP4 && q->global_scale > 0.0)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED, "MXFP4 has no global scale to supply");

    nvfp4i_job job;
    memset(&job, 0, sizeof job);
    job.ctx = ctx;
    job.q = q;
    job.src.dtype = src_dtype;
    job.src.data = src;
    job.src.rows = rows;
    job.src.cols = cols;
    job.src.ld = ld;
    job.nblk = nblk;
    job.block = block;
    job.padded = nblk * block;
    job.want_stats = ctx->collect_stats;
    job.codes = codes;
    job.scales = scales;

    float *hpad = NULL;
    if (q->importance) {
        hpad = nvfp4i_calloc(ctx, (size_t)job.padded, sizeof(float));
        if (!hpad)
            return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate importance scratch");
        memcpy(hpad, q->importance, (size_t)cols * sizeof(float));
        job.h = hpad;
    }

    nvfp4i_stats_acc st;
    memset(&st, 0, sizeof st);
    s = nvfp4i_backend_ops_for(ctx)->quantize(&job, m, &st, global_scale);
    if (s == NVFP4_OK && ctx->collect_stats)
        fill_stats(ctx, &st);
    nvfp4i_free(ctx, hpad);
    return s;
}

nvfp4_status nvfp4_dequantize_v2(nvfp4_context *ctx, int32_t format, int32_t scale_layout, const uint8_t *codes,
                                 const uint8_t *scales, float global_scale, int64_t rows, int64_t cols,
                                 int32_t dst_dtype, void *dst, int64_t ld)
{
    int64_t nblk;
    if (!ctx)
        return NVFP4_ERR_NULL_POINTER;
    nvfp4i_clear_error(ctx);
    if (!codes || !scales || !dst)
        return nvfp4i_fail(ctx, NVFP4_ERR_NULL_POINTER, "a pointer argument is NULL");
    if (format != NVFP4_FORMAT_NVFP4 && format != NVFP4_FORMAT_MXFP4)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown format %d", (int)format);
    if (scale_layout != NVFP4_LAYOUT_LINEAR && scale_layout != NVFP4_LAYOUT_128X4)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown scale layout %d", (int)scale_layout);
    if (!nvfp4i_dtype_ok(dst_dtype))
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown destination dtype %d", (int)dst_dtype);
    int block = format == NVFP4_FORMAT_MXFP4 ? NVFP4I_BLOCK_MXFP4 : NVFP4I_BLOCK_NVFP4;
    nvfp4_status s = check_shape(ctx, rows, cols, ld, dst_dtype, block, &nblk);
    if (s)
        return s;
    if (!nvfp4i_isfinite(global_scale) || global_scale < 0.0f)
        return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_SCALE, "global scale must be finite and non-negative");

    nvfp4i_deq d;
    d.format = format;
    d.layout = scale_layout;
    d.codes = codes;
    d.scales = scales;
    d.global_scale = global_scale;
    d.rows = rows;
    d.cols = cols;
    d.nblk = nblk;
    d.block = block;
    d.dst_dtype = dst_dtype;
    d.dst = dst;
    d.ld = ld;
    return nvfp4i_backend_ops_for(ctx)->dequantize(ctx, &d);
}

nvfp4_status nvfp4_dequantize(nvfp4_context *ctx, const uint8_t *codes, const uint8_t *scales, float global_scale,
                              int64_t rows, int64_t cols, int32_t dst_dtype, void *dst, int64_t ld)
{
    return nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, codes, scales, global_scale, rows,
                               cols, dst_dtype, dst, ld);
}
