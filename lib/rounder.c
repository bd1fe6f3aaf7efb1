/* rounder.c - the nvfp4_rounder handle: parameters, calibration accumulation, argument
 * validation, H-weighted losses, and the run that ties the starting quantisation, the rounding
 * method (rounder_faar.c, rounder_gptq.c) and the scale re-fit together.
 *
 * Every public function checks all of its arguments before it changes anything; nvfp4_rounder_run
 * writes its outputs only after the whole computation has succeeded.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "rounder_impl.h"

#define MAX_IN_FEATURES (INT64_C(1) << 20)
#define SAMPLE_CHUNK 256

nvfp4_status nvfp4i_rounder_fail(nvfp4_rounder *r, nvfp4_context *ctx, nvfp4_status status, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (r)
        memcpy(r->errmsg, buf, sizeof buf);
    if (ctx)
        nvfp4i_fail(ctx, status, "%s", buf);
    return status;
}

static nvfp4_status ok(nvfp4_rounder *r)
{
    r->errmsg[0] = '\0';
    return NVFP4_OK;
}

/* ---- handle and parameters --------------------------------------------------------------- */

nvfp4_status nvfp4_rounder_create_ex(nvfp4_rounder **out, int32_t method, int64_t out_features,
                                     int64_t in_features, const nvfp4_allocator *allocator)
{
    int64_t n;
    nvfp4_allocator h;
    if (!out)
        return NVFP4_ERR_NULL_POINTER;
    if (method != NVFP4_ROUNDER_FAAR && method != NVFP4_ROUNDER_GPTQ)
        return NVFP4_ERR_UNKNOWN_KEY;
    if (out_features <= 0 || in_features <= 0 || in_features > MAX_IN_FEATURES ||
        !nvfp4i_mul_ok(out_features, in_features, &n) || n > (int64_t)(SIZE_MAX / 64))
        return NVFP4_ERR_SHAPE;
    if (nvfp4i_allocator_copy(allocator, &h) != NVFP4_OK)
        return NVFP4_ERR_INVALID_VALUE;
    nvfp4_rounder *r = nvfp4i_hcalloc(&h, 1, sizeof *r);
    if (!r)
        return NVFP4_ERR_OUT_OF_MEMORY;
    r->hooks = h;
    if (nvfp4_quantizer_create_ex(&r->scale_q, NVFP4_METHOD_MAX, nvfp4i_hooks_or_null(&h)) != NVFP4_OK) {
        nvfp4i_hfree(&h, r);
        return NVFP4_ERR_OUT_OF_MEMORY;
    }
    r->method = method;
    r->out = out_features;
    r->in = in_features;
    r->seed = 0;
    r->progress_interval = 100;
    r->iterations = 2000;
    r->lr = 1e-2;
    r->lambda = 1e-2;
    r->beta_start = 20.0;
    r->beta_end = 2.0;
    r->warmup = 0.2;
    r->adam_b1 = 0.9;
    r->adam_b2 = 0.999;
    r->adam_eps = 1e-8;
    r->stage2 = method == NVFP4_ROUNDER_FAAR ? 1 : 0;
    r->stage2_radius = 2;
    r->stage2_global = 1;
    r->damping = 0.01;
    r->block_size = 128;
    r->act_order = 0;
    *out = r;
    return NVFP4_OK;
}

nvfp4_status nvfp4_rounder_create(nvfp4_rounder **out, int32_t method, int64_t out_features, int64_t in_features)
{
    return nvfp4_rounder_create_ex(out, method, out_features, in_features, NULL);
}

void nvfp4_rounder_destroy(nvfp4_rounder *r)
{
    if (!r)
        return;
    nvfp4_allocator h = r->hooks;
    nvfp4_quantizer_destroy(r->scale_q);
    nvfp4i_hfree(&h, r->h_acc);
    nvfp4i_hfree(&h, r);
}

static int in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

nvfp4_status nvfp4_rounder_set_int(nvfp4_rounder *r, int32_t key, int64_t value)
{
    if (!r)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_R_SCALE_METHOD: {
        nvfp4_quantizer *q = NULL;
        nvfp4_status s = nvfp4_quantizer_create_ex(&q, value < INT32_MIN || value > INT32_MAX ? -1 : (int32_t)value,
                                                   nvfp4i_hooks_or_null(&r->hooks));
        if (s != NVFP4_OK)
            return nvfp4i_rounder_fail(r, NULL, s, "scale method %lld is not available", (long long)value);
        nvfp4_quantizer_destroy(r->scale_q);
        r->scale_q = q;
        return ok(r);
    }
    case NVFP4_R_SEED:
        if (value < 0)
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "seed must be >= 0");
        r->seed = value;
        return ok(r);
    case NVFP4_R_PROGRESS_INTERVAL:
        if (!in_range(value, 1, INT64_C(1) << 31))
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "progress interval must be 1..2^31");
        r->progress_interval = value;
        return ok(r);
    case NVFP4_R_ITERATIONS:
        if (!in_range(value, 0, 10000000))
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "iterations must be 0..10^7");
        r->iterations = value;
        return ok(r);
    case NVFP4_R_STAGE2:
    case NVFP4_R_STAGE2_GLOBAL:
    case NVFP4_R_ACT_ORDER:
        if (!in_range(value, 0, 1))
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "key %d takes 0 or 1", (int)key);
        if (key == NVFP4_R_STAGE2)
            r->stage2 = (int32_t)value;
        else if (key == NVFP4_R_STAGE2_GLOBAL)
            r->stage2_global = (int32_t)value;
        else
            r->act_order = (int32_t)value;
        return ok(r);
    case NVFP4_R_STAGE2_RADIUS:
        if (!in_range(value, 1, 32))
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "stage-2 radius must be 1..32");
        r->stage2_radius = (int32_t)value;
        return ok(r);
    case NVFP4_R_BLOCK_SIZE:
        if (!in_range(value, 1, 65536))
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "block size must be 1..65536");
        r->block_size = value;
        return ok(r);
    default:
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_UNKNOWN_KEY, "unknown or read-only integer key %d", (int)key);
    }
}

nvfp4_status nvfp4_rounder_set_float(nvfp4_rounder *r, int32_t key, double value)
{
    double lo, hi;
    int open_lo = 0, open_hi = 0;
    double *dst;
    if (!r)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_R_LEARNING_RATE: dst = &r->lr; lo = 0; hi = 100; open_lo = 1; break;
    case NVFP4_R_LAMBDA: dst = &r->lambda; lo = 0; hi = 1e9; break;
    case NVFP4_R_BETA_START: dst = &r->beta_start; lo = 1; hi = 1000; break;
    case NVFP4_R_BETA_END: dst = &r->beta_end; lo = 1; hi = 1000; break;
    case NVFP4_R_WARMUP: dst = &r->warmup; lo = 0; hi = 1; break;
    case NVFP4_R_ADAM_BETA1: dst = &r->adam_b1; lo = 0; hi = 1; open_hi = 1; break;
    case NVFP4_R_ADAM_BETA2: dst = &r->adam_b2; lo = 0; hi = 1; open_hi = 1; break;
    case NVFP4_R_ADAM_EPS: dst = &r->adam_eps; lo = 0; hi = 1e6; open_lo = 1; break;
    case NVFP4_R_DAMPING: dst = &r->damping; lo = 0; hi = 100; break;
    default:
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_UNKNOWN_KEY, "unknown or read-only float key %d", (int)key);
    }
    if (!isfinite(value) || value < lo || value > hi || (open_lo && value == lo) || (open_hi && value == hi))
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "value %g out of range for key %d", value,
                                   (int)key);
    *dst = value;
    return ok(r);
}

nvfp4_status nvfp4_rounder_get_int(const nvfp4_rounder *r, int32_t key, int64_t *value)
{
    int64_t v;
    if (!r || !value)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_R_SCALE_METHOD: v = r->scale_q->method; break;
    case NVFP4_R_SEED: v = r->seed; break;
    case NVFP4_R_PROGRESS_INTERVAL: v = r->progress_interval; break;
    case NVFP4_R_ITERATIONS: v = r->iterations; break;
    case NVFP4_R_STAGE2: v = r->stage2; break;
    case NVFP4_R_STAGE2_RADIUS: v = r->stage2_radius; break;
    case NVFP4_R_STAGE2_GLOBAL: v = r->stage2_global; break;
    case NVFP4_R_BLOCK_SIZE: v = r->block_size; break;
    case NVFP4_R_ACT_ORDER: v = r->act_order; break;
    case NVFP4_R_SAMPLES: v = r->samples; break;
    case NVFP4_R_ROWS_FALLBACK:
    case NVFP4_R_ROWS_STAGE2:
    case NVFP4_R_ITERATIONS_RUN:
    case NVFP4_R_GLOBAL_STAGE2:
        if (!r->have_result)
            return NVFP4_ERR_STATE;
        v = key == NVFP4_R_ROWS_FALLBACK ? r->rows_fallback
            : key == NVFP4_R_ROWS_STAGE2 ? r->rows_stage2
            : key == NVFP4_R_ITERATIONS_RUN ? r->iterations_run
                                             : r->global_changed;
        break;
    default:
        return NVFP4_ERR_UNKNOWN_KEY;
    }
    *value = v;
    return NVFP4_OK;
}

nvfp4_status nvfp4_rounder_get_float(const nvfp4_rounder *r, int32_t key, double *value)
{
    double v;
    if (!r || !value)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_R_LEARNING_RATE: v = r->lr; break;
    case NVFP4_R_LAMBDA: v = r->lambda; break;
    case NVFP4_R_BETA_START: v = r->beta_start; break;
    case NVFP4_R_BETA_END: v = r->beta_end; break;
    case NVFP4_R_WARMUP: v = r->warmup; break;
    case NVFP4_R_ADAM_BETA1: v = r->adam_b1; break;
    case NVFP4_R_ADAM_BETA2: v = r->adam_b2; break;
    case NVFP4_R_ADAM_EPS: v = r->adam_eps; break;
    case NVFP4_R_DAMPING: v = r->damping; break;
    case NVFP4_R_LOSS_START:
    case NVFP4_R_LOSS_STAGE1:
    case NVFP4_R_LOSS_FINAL:
        if (!r->have_result)
            return NVFP4_ERR_STATE;
        v = key == NVFP4_R_LOSS_START ? r->loss_start : key == NVFP4_R_LOSS_STAGE1 ? r->loss_stage1 : r->loss_final;
        break;
    default:
        return NVFP4_ERR_UNKNOWN_KEY;
    }
    *value = v;
    return NVFP4_OK;
}

nvfp4_status nvfp4_rounder_set_quantizer(nvfp4_rounder *r, const nvfp4_quantizer *q)
{
    if (!r || !q)
        return NVFP4_ERR_NULL_POINTER;
    if (q->format != NVFP4_FORMAT_NVFP4 || q->layout != NVFP4_LAYOUT_LINEAR)
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_UNSUPPORTED,
                                   "the rounder needs an NVFP4 quantizer with linear scales");
    if (q->importance && q->importance_n != r->in)
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_SHAPE, "importance weights for %lld columns, layer has %lld",
                                   (long long)q->importance_n, (long long)r->in);
    nvfp4_quantizer *c = nvfp4i_halloc(&r->hooks, sizeof *c);
    if (!c)
        return NVFP4_ERR_OUT_OF_MEMORY;
    *c = *q;
    c->hooks = r->hooks; /* the copy belongs to the rounder, whatever allocator q has */
    if (q->importance) {
        c->importance = nvfp4i_halloc(&r->hooks, (size_t)q->importance_n * sizeof(float));
        if (!c->importance) {
            nvfp4i_hfree(&r->hooks, c);
            return NVFP4_ERR_OUT_OF_MEMORY;
        }
        memcpy(c->importance, q->importance, (size_t)q->importance_n * sizeof(float));
    }
    nvfp4_quantizer_destroy(r->scale_q);
    r->scale_q = c;
    return ok(r);
}

nvfp4_status nvfp4_rounder_set_progress(nvfp4_rounder *r, nvfp4_rounder_progress_fn fn, void *user)
{
    if (!r)
        return NVFP4_ERR_NULL_POINTER;
    r->progress = fn;
    r->progress_user = fn ? user : NULL;
    return ok(r);
}

const char *nvfp4_rounder_last_error_message(const nvfp4_rounder *r)
{
    return r ? r->errmsg : "no rounder";
}

/* ---- calibration ------------------------------------------------------------------------- */

nvfp4_status nvfp4_rounder_clear_calibration(nvfp4_rounder *r)
{
    if (!r)
        return NVFP4_ERR_NULL_POINTER;
    nvfp4i_hfree(&r->hooks, r->h_acc);
    r->h_acc = NULL;
    r->samples = 0;
    r->gram_set = 0;
    return ok(r);
}

typedef struct {
    const float *G;
    double *acc;
    int64_t d;
} addg_args;

static void add_gram_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const addg_args *a = arg;
    (void)tid;
    for (int64_t i = begin; i < end; i++)
        for (int64_t j = 0; j < a->d; j++)
            a->acc[i * a->d + j] += (double)a->G[i * a->d + j];
}

nvfp4_status nvfp4_rounder_add_samples(nvfp4_rounder *r, nvfp4_context *ctx, int32_t dtype, const void *X, int64_t n,
                                       int64_t ld)
{
    int64_t tmp, d;
    if (!r || !ctx || !X)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NULL_POINTER, "a required pointer is NULL");
    d = r->in;
    if (!nvfp4i_dtype_ok(dtype))
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown dtype %d", (int)dtype);
    if (n <= 0)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_SHAPE, "zero samples (n = %lld)", (long long)n);
    if (ld < d || !nvfp4i_mul_ok(n - 1, ld, &tmp) || tmp > INT64_MAX - d)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_SHAPE, "ld %lld < in_features %lld or sizes overflow",
                                   (long long)ld, (long long)d);
    if (ctx->backend != NVFP4_BACKEND_CPU)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_UNSUPPORTED, "the rounder runs on the CPU backend only");
    if (r->gram_set)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_STATE, "a Gram matrix was set; clear the calibration first");
    if (r->samples > INT64_MAX - n)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_SHAPE, "sample count overflows");

    nvfp4i_src src = {dtype, X, n, d, ld};
    int64_t ch = n < SAMPLE_CHUNK ? n : SAMPLE_CHUNK;
    /* one block: d doubles (each feature's Σx² over a chunk) then the chunk of samples */
    double *sq = nvfp4i_alloc(ctx, (size_t)d * sizeof(double) + (size_t)(ch * d) * sizeof(float));
    float *buf = sq ? (float *)(void *)(sq + d) : NULL;
    float *scr = nvfp4i_alloc(ctx, (size_t)(ch * d) * sizeof(float));
    float *G = nvfp4i_alloc(ctx, (size_t)(d * d) * sizeof(float));
    double *acc = r->h_acc ? r->h_acc : nvfp4i_hcalloc(&r->hooks, (size_t)(d * d), sizeof(double));
    nvfp4_status st = NVFP4_OK;
    if (!sq || !scr || !G || !acc) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate %lld-feature Gram scratch",
                                 (long long)d);
        goto done;
    }
    /* First pass, before anything is accumulated: refuse non-finite samples, and chunks whose
     * float32 Gram matrix would overflow. A chunk of m samples sums m float32 products per entry;
     * every partial sum of entry (i, j), rounding included, is at most
     * (1 + 2^-24)^(m+1)·Σ|x_i x_j| ≤ (1 + (m+2)·2^-23)·max(D_i, D_j), D_j = Σ x_j² over the chunk
     * (Cauchy–Schwarz; the extra 2^-23 covers the float64 sum of D), so the chunk is accepted
     * exactly when that stays within FLT_MAX. H = ΣXᵀX/n then fits float32 too: every chunk adds
     * at most FLT_MAX per entry and holds at least one sample. */
    int64_t big_s0 = -1, big_m = 0, big_j = 0; /* the first chunk that would overflow */
    double big_sq = 0.0, big_lim = 0.0;
    for (int64_t s0 = 0; s0 < n; s0 += ch) {
        const int64_t m = n - s0 < ch ? n - s0 : ch;
        const double lim = (double)NVFP4I_FLT_MAX / (1.0 + (double)(m + 2) * 0x1p-23);
        for (int64_t j = 0; j < d; j++)
            sq[j] = 0.0;
        for (int64_t s = s0; s < s0 + m; s++) {
            nvfp4i_load_row(&src, s, buf, d);
            for (int64_t j = 0; j < d; j++) {
                if (!nvfp4i_isfinite(buf[j])) {
                    st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NONFINITE, "sample %lld, feature %lld is not finite",
                                             (long long)s, (long long)j);
                    goto done;
                }
                sq[j] += (double)buf[j] * (double)buf[j];
            }
        }
        for (int64_t j = 0; j < d && big_s0 < 0; j++)
            if (!(sq[j] <= lim)) {
                big_s0 = s0;
                big_m = m;
                big_j = j;
                big_sq = sq[j];
                big_lim = lim;
            }
    }
    if (big_s0 >= 0) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NUMERICAL,
                                 "samples %lld..%lld: feature %lld's sum of squares %g exceeds the %g a float32 Gram "
                                 "chunk of %lld samples can hold",
                                 (long long)big_s0, (long long)(big_s0 + big_m - 1), (long long)big_j, big_sq, big_lim,
                                 (long long)big_m);
        goto done;
    }
    for (int64_t s0 = 0; s0 < n; s0 += ch) {
        int64_t m = n - s0 < ch ? n - s0 : ch;
        for (int64_t s = 0; s < m; s++)
            nvfp4i_load_row(&src, s0 + s, buf + s * d, d);
        nvfp4i_gram(ctx, m, d, buf, d, G, scr);
        addg_args a = {G, acc, d};
        nvfp4i_parallel_for(ctx, d, add_gram_rows, &a);
    }
    r->h_acc = acc;
    acc = NULL;
    r->samples += n;
    ok(r);
    nvfp4i_clear_error(ctx);
done:
    if (acc && acc != r->h_acc)
        nvfp4i_hfree(&r->hooks, acc);
    nvfp4i_free(ctx, sq);
    nvfp4i_free(ctx, scr);
    nvfp4i_free(ctx, G);
    return st;
}

nvfp4_status nvfp4_rounder_set_gram(nvfp4_rounder *r, const float *H, int64_t n, int64_t ld)
{
    if (!r || !H)
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_NULL_POINTER, "a required pointer is NULL");
    if (n != r->in || ld < n)
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_SHAPE, "H is %lld x %lld (ld %lld), layer has %lld inputs",
                                   (long long)n, (long long)n, (long long)ld, (long long)r->in);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (!nvfp4i_isfinite(H[i * ld + j]))
                return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_NONFINITE, "H[%lld][%lld] is not finite", (long long)i,
                                           (long long)j);
    for (int64_t i = 0; i < n; i++)
        if (H[i * ld + i] < 0.0f)
            return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE, "H[%lld][%lld] < 0", (long long)i,
                                       (long long)i);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            double a = H[i * ld + j], b = H[j * ld + i];
            double tol = 1e-4 * sqrt((double)H[i * ld + i] * (double)H[j * ld + j]);
            if (fabs(a - b) > tol)
                return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_INVALID_VALUE,
                                           "H is not symmetric: H[%lld][%lld] = %g, H[%lld][%lld] = %g", (long long)i,
                                           (long long)j, a, (long long)j, (long long)i, b);
        }
    double *acc = r->h_acc ? r->h_acc : nvfp4i_halloc(&r->hooks, (size_t)(n * n) * sizeof(double));
    if (!acc)
        return nvfp4i_rounder_fail(r, NULL, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate H");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            acc[i * n + j] = 0.5 * ((double)H[i * ld + j] + (double)H[j * ld + i]);
    r->h_acc = acc;
    r->samples = 0;
    r->gram_set = 1;
    return ok(r);
}

/* ---- losses ------------------------------------------------------------------------------ */

typedef struct {
    const nvfp4i_rjob *job;
    const uint8_t *codes, *scales;
    float s_dec;
    const float *What;
    double *rowloss;
} loss_args;

static void decode_err_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const loss_args *a = arg;
    const nvfp4i_rjob *j = a->job;
    (void)tid;
    for (int64_t r = begin; r < end; r++) {
        const float *w = j->W + r * j->in;
        float *e = j->E + r * j->in;
        if (a->What) {
            const float *wh = a->What + r * j->in;
            for (int64_t i = 0; i < j->in; i++)
                e[i] = wh[i] - w[i];
            continue;
        }
        const uint8_t *c = a->codes + r * j->in;
        const uint8_t *s = a->scales + r * j->nblk;
        for (int64_t i = 0; i < j->in; i++)
            e[i] = nvfp4i_decode(c[i], nvfp4i_e4m3_to_float(s[i / 16]), a->s_dec) - w[i];
    }
}

static void dot_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const loss_args *a = arg;
    const nvfp4i_rjob *j = a->job;
    (void)tid;
    for (int64_t r = begin; r < end; r++) {
        const float *e = j->E + r * j->in, *g = j->G + r * j->in;
        double s = 0.0;
        for (int64_t i = 0; i < j->in; i++)
            s += (double)e[i] * (double)g[i];
        a->rowloss[r] = s;
    }
}

static double loss_common(const nvfp4i_rjob *job, loss_args *a)
{
    nvfp4i_parallel_for(job->ctx, job->out, decode_err_rows, a);
    nvfp4i_matmul(job->ctx, job->out, job->in, job->in, job->E, job->in, job->H, job->in, job->G, job->in);
    nvfp4i_parallel_for(job->ctx, job->out, dot_rows, a);
    double s = 0.0;
    for (int64_t r = 0; r < job->out; r++)
        s += a->rowloss[r];
    return s / (double)job->out;
}

double nvfp4i_rounder_loss(const nvfp4i_rjob *job, const uint8_t *codes, const uint8_t *scales, float s_dec,
                           double *rowloss)
{
    loss_args a = {job, codes, scales, s_dec, NULL, rowloss};
    return loss_common(job, &a);
}

double nvfp4i_rounder_loss_dense(const nvfp4i_rjob *job, const float *What, double *rowloss)
{
    loss_args a = {job, NULL, NULL, 0.0f, What, rowloss};
    return loss_common(job, &a);
}

uint8_t nvfp4i_code_of_value(float v, float w)
{
    float a = nvfp4i_fabs(v);
    uint8_t m = nvfp4i_e2m1_from_float(a); /* exact for grid values */
    int neg = v < 0.0f || (v == 0.0f && nvfp4i_f2u(w) >> 31);
    return (uint8_t)(m | (neg ? 8u : 0u));
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct {
    const double *acc;
    float *H;
    int64_t d;
    double scale;
} hconv_args;

static void hconv_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const hconv_args *a = arg;
    (void)tid;
    for (int64_t i = begin; i < end; i++)
        for (int64_t j = 0; j < a->d; j++)
            a->H[i * a->d + j] = (float)(a->acc[i * a->d + j] * a->scale);
}

/* The run's float32 range (docs/ROUNDER.md, "Float32 range"). Every weight the run evaluates is
 * W itself or a value on the grid of the starting scales — |Ŵ| ≤ T_b = RN32(RN32(6·f(S_b))·s_dec),
 * by monotonic rounding, for the hardened codes, FAAR's soft weights and GPTQ's codes alike — so
 * every error is |Ŵ − W| ≤ ε = max over blocks (T_b + max_b |w|)·(1 + 2^-23), and every entry of
 * the float32 product E·H, partial sums and rounding included, is at most
 * (1 + (in + 1)·2^-23)·ε·ρ with ρ the largest row sum of |H| (H is symmetric). Within FLT_MAX,
 * every loss the run computes is finite. FAAR's gradient is
 * (2/out)·(E·H)·gap·f(S)·s_dec·h' + λ·(−2β|2h − 1|^(β−1))·h' with gap ≤ 2 and h' ≤ 0.3, and Adam
 * squares it; its running averages may grow by three roundings per iteration. Stage 2 leaves the
 * starting grid, so it checks the loss of each candidate instead (nvfp4i_stage2). */
static nvfp4_status check_float32_range(nvfp4_rounder *r, nvfp4_context *ctx, const float *Wf, const float *H,
                                        const uint8_t *sc, float s_dec, int64_t out, int64_t in, int64_t nblk)
{
    double eps = 0.0, dmax = 0.0, rho = 0.0;
    for (int64_t row = 0; row < out; row++)
        for (int64_t b = 0; b < nblk; b++) {
            const float fS = nvfp4i_e4m3_to_float(sc[row * nblk + b]);
            const float top = nvfp4i_decode(0x7, fS, s_dec), step = fS * s_dec;
            const float *w = Wf + row * in + b * 16;
            double wb = 0.0;
            for (int64_t i = 0; i < 16 && b * 16 + i < in; i++)
                wb = fabs((double)w[i]) > wb ? fabs((double)w[i]) : wb;
            const double e = nvfp4i_isfinite(top) ? (double)top + wb : INFINITY;
            eps = e > eps ? e : eps;
            dmax = (double)step > dmax ? (double)step : dmax;
        }
    eps *= 1.0 + 0x1p-23;
    for (int64_t i = 0; i < in; i++) {
        double t = 0.0;
        for (int64_t j = 0; j < in; j++)
            t += fabs((double)H[i * in + j]);
        rho = t > rho ? t : rho;
    }
    const double gb = (1.0 + (double)(in + 1) * 0x1p-23) * eps * rho;
    if (!(gb <= (double)NVFP4I_FLT_MAX))
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NUMERICAL,
                                   "loss terms beyond float32: max|W^ - W| bound %g times the largest row sum of |H| "
                                   "%g exceeds FLT_MAX",
                                   eps, rho);
    if (r->method == NVFP4_ROUNDER_FAAR && r->iterations > 0) {
        const double gs = (double)(float)(2.0 / (double)out);
        const double beta = r->beta_start > r->beta_end ? r->beta_start : r->beta_end;
        const double grad = (gs * gb * 2.0 * dmax * 0.3 + (double)(float)r->lambda * 2.0 * beta * 0.3) * (1.0 + 0x1p-20);
        const double grow = exp((3.0 * (double)r->iterations + 8.0) * 0x1p-23);
        if (!(grad * grad * grow <= (double)NVFP4I_FLT_MAX))
            return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NUMERICAL,
                                       "FAAR's gradients beyond float32: their bound %g squares past FLT_MAX in "
                                       "Adam's second moment",
                                       grad);
    }
    return NVFP4_OK;
}

nvfp4_status nvfp4_rounder_run(nvfp4_rounder *r, nvfp4_context *ctx, int32_t src_dtype, const void *W, int64_t ld,
                               uint8_t *codes, uint8_t *scales, float *global_scale)
{
    int64_t tmp;
    if (!r || !ctx || !W || !codes || !scales || !global_scale)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NULL_POINTER, "a required pointer is NULL");
    const int64_t out = r->out, in = r->in, nblk = (in + 15) / 16;
    if (!nvfp4i_dtype_ok(src_dtype))
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown dtype %d", (int)src_dtype);
    if (ld < in || !nvfp4i_mul_ok(out - 1, ld, &tmp) || tmp > INT64_MAX - in)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_SHAPE, "ld %lld < in_features %lld", (long long)ld,
                                   (long long)in);
    if (ctx->backend != NVFP4_BACKEND_CPU)
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_UNSUPPORTED, "the rounder runs on the CPU backend only");
    if (!r->h_acc || (!r->gram_set && r->samples == 0))
        return nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_STATE, "no calibration data: add samples or set a Gram matrix");

    const size_t nw = (size_t)(out * in);
    float *Wf = nvfp4i_alloc(ctx, nw * sizeof(float));
    float *H = nvfp4i_alloc(ctx, (size_t)(in * in) * sizeof(float));
    float *E = nvfp4i_alloc(ctx, nw * sizeof(float));
    float *G = nvfp4i_alloc(ctx, nw * sizeof(float));
    double *rowloss = nvfp4i_alloc(ctx, (size_t)out * sizeof(double));
    double *rowloss0 = nvfp4i_alloc(ctx, (size_t)out * sizeof(double));
    uint8_t *pcodes = nvfp4i_alloc(ctx, (size_t)(out * nblk * 8));
    uint8_t *sc = nvfp4i_alloc(ctx, (size_t)(out * nblk));
    uint8_t *cu = nvfp4i_alloc(ctx, nw);
    nvfp4_status st = NVFP4_OK;
    if (!Wf || !H || !E || !G || !rowloss || !rowloss0 || !pcodes || !sc || !cu) {
        st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate working memory for %lld x %lld",
                                 (long long)out, (long long)in);
        goto done;
    }
    nvfp4i_src src = {src_dtype, W, out, in, ld};
    for (int64_t row = 0; row < out; row++) {
        float *w = Wf + row * in;
        nvfp4i_load_row(&src, row, w, in);
        for (int64_t i = 0; i < in; i++)
            if (!nvfp4i_isfinite(w[i])) {
                st = nvfp4i_rounder_fail(r, ctx, NVFP4_ERR_NONFINITE, "W[%lld][%lld] is not finite", (long long)row,
                                         (long long)i);
                goto done;
            }
    }
    hconv_args hc = {r->h_acc, H, in, r->gram_set ? 1.0 : 1.0 / (double)r->samples};
    nvfp4i_parallel_for(ctx, in, hconv_rows, &hc);

    /* the starting tensor: the scale method's own rounding */
    float s_dec = 0.0f;
    st = nvfp4_quantize(ctx, r->scale_q, NVFP4_DTYPE_F32, Wf, out, in, in, pcodes, sc, &s_dec);
    if (st != NVFP4_OK) {
        st = nvfp4i_rounder_fail(r, ctx, st, "starting quantisation failed: %s", nvfp4_status_string(st));
        goto done;
    }
    for (int64_t row = 0; row < out; row++)
        for (int64_t i = 0; i < in; i++) {
            uint8_t b = pcodes[row * nblk * 8 + i / 2];
            cu[row * in + i] = (uint8_t)((i & 1) ? b >> 4 : b & 0xF);
        }

    st = check_float32_range(r, ctx, Wf, H, sc, s_dec, out, in, nblk);
    if (st != NVFP4_OK)
        goto done;

    nvfp4i_rjob job = {ctx, r, out, in, nblk, Wf, H, E, G, rowloss};
    double loss0 = nvfp4i_rounder_loss(&job, cu, sc, s_dec, rowloss0);
    double loss1, loss2;
    int64_t iters = 0, fallback = 0, rows2 = 0;
    int32_t gchanged = 0;
    if (r->method == NVFP4_ROUNDER_FAAR)
        st = nvfp4i_faar_round(&job, cu, sc, s_dec, rowloss0, &iters, &fallback);
    else
        st = nvfp4i_gptq_round(&job, cu, sc, s_dec, &iters);
    if (st != NVFP4_OK)
        goto done;
    loss1 = nvfp4i_rounder_loss(&job, cu, sc, s_dec, rowloss);
    loss2 = loss1;
    if (r->stage2) {
        st = nvfp4i_stage2(&job, cu, sc, &s_dec, rowloss, &rows2, &gchanged);
        if (st != NVFP4_OK)
            goto done;
        loss2 = 0.0;
        for (int64_t row = 0; row < out; row++)
            loss2 += rowloss[row];
        loss2 /= (double)out;
    }

    /* success: publish */
    memset(codes, 0, (size_t)(out * nblk * 8));
    for (int64_t row = 0; row < out; row++)
        for (int64_t i = 0; i < in; i++)
            codes[row * nblk * 8 + i / 2] |= (uint8_t)(cu[row * in + i] << ((i & 1) * 4));
    memcpy(scales, sc, (size_t)(out * nblk));
    *global_scale = s_dec;
    r->have_result = 1;
    r->loss_start = loss0;
    r->loss_stage1 = loss1;
    r->loss_final = loss2;
    r->rows_fallback = fallback;
    r->rows_stage2 = rows2;
    r->iterations_run = iters;
    r->global_changed = gchanged;
    ok(r);
    nvfp4i_clear_error(ctx);
done:
    nvfp4i_free(ctx, Wf);
    nvfp4i_free(ctx, H);
    nvfp4i_free(ctx, E);
    nvfp4i_free(ctx, G);
    nvfp4i_free(ctx, rowloss);
    nvfp4i_free(ctx, rowloss0);
    nvfp4i_free(ctx, pcodes);
    nvfp4i_free(ctx, sc);
    nvfp4i_free(ctx, cu);
    return st;
}
