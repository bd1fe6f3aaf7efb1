/* quantizer.c - quantizer handles: a scale method and its parameters, set one key at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

nvfp4_status nvfp4_quantizer_create_ex(nvfp4_quantizer **out, int32_t method, const nvfp4_allocator *allocator)
{
    nvfp4_allocator h;
    if (!out)
        return NVFP4_ERR_NULL_POINTER;
    if (!nvfp4i_method_get(method))
        return NVFP4_ERR_UNKNOWN_KEY;
    if (nvfp4i_allocator_copy(allocator, &h) != NVFP4_OK)
        return NVFP4_ERR_INVALID_VALUE;
    nvfp4_quantizer *q = nvfp4i_hcalloc(&h, 1, sizeof *q);
    if (!q)
        return NVFP4_ERR_OUT_OF_MEMORY;
    q->hooks = h;
    q->method = method;
    q->format = NVFP4_FORMAT_NVFP4;
    q->layout = NVFP4_LAYOUT_LINEAR;
    q->nonfinite = NVFP4_NONFINITE_STRICT;
    q->recipe = NVFP4_RECIPE_EXACT;
    q->e8m0_mode = NVFP4_E8M0_RCEIL;
    q->global_scale = 0.0;
    q->rule = NVFP4_RULE_MSE;
    q->e4m3_max_4o6 = 256;
    q->cjso_iters = 8;
    q->cjso_tol = 1e-3;
    q->dss_lo = 0.5;
    q->dss_hi = 2.0;
    q->sweep_radius = 4;
    *out = q;
    return NVFP4_OK;
}

nvfp4_status nvfp4_quantizer_create(nvfp4_quantizer **out, int32_t method)
{
    return nvfp4_quantizer_create_ex(out, method, NULL);
}

void nvfp4_quantizer_destroy(nvfp4_quantizer *q)
{
    if (!q)
        return;
    nvfp4_allocator h = q->hooks;
    nvfp4i_hfree(&h, q->importance);
    nvfp4i_hfree(&h, q);
}

static int in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

nvfp4_status nvfp4_quantizer_set_int(nvfp4_quantizer *q, int32_t param, int64_t value)
{
    if (!q)
        return NVFP4_ERR_NULL_POINTER;
    switch (param) {
    case NVFP4_Q_FORMAT:
        if (!in_range(value, NVFP4_FORMAT_NVFP4, NVFP4_FORMAT_MXFP4))
            return NVFP4_ERR_INVALID_VALUE;
        if (value == NVFP4_FORMAT_MXFP4 && (q->method != NVFP4_METHOD_MAX || q->recipe != NVFP4_RECIPE_EXACT))
            return NVFP4_ERR_UNSUPPORTED; /* MXFP4 scales are powers of two: only MAX applies */
        q->format = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_SCALE_LAYOUT:
        if (!in_range(value, NVFP4_LAYOUT_LINEAR, NVFP4_LAYOUT_128X4))
            return NVFP4_ERR_INVALID_VALUE;
        q->layout = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_NONFINITE:
        if (!in_range(value, NVFP4_NONFINITE_STRICT, NVFP4_NONFINITE_SATURATE))
            return NVFP4_ERR_INVALID_VALUE;
        q->nonfinite = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_RECIPE:
        if (!in_range(value, NVFP4_RECIPE_EXACT, NVFP4_RECIPE_MODELOPT))
            return NVFP4_ERR_INVALID_VALUE;
        if (value == NVFP4_RECIPE_MODELOPT && (q->method != NVFP4_METHOD_MAX || q->format != NVFP4_FORMAT_NVFP4))
            return NVFP4_ERR_UNSUPPORTED; /* the ModelOpt recipe is MAX's export path */
        q->recipe = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_E8M0_MODE:
        if (!in_range(value, NVFP4_E8M0_RCEIL, NVFP4_E8M0_FLOOR))
            return NVFP4_ERR_INVALID_VALUE;
        q->e8m0_mode = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_4OVER6_RULE:
        if (!in_range(value, NVFP4_RULE_MSE, NVFP4_RULE_ABSMAX))
            return NVFP4_ERR_INVALID_VALUE;
        q->rule = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_4OVER6_E4M3_MAX:
        if (value != 256 && value != 448)
            return NVFP4_ERR_INVALID_VALUE;
        q->e4m3_max_4o6 = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_CJSO_ITERATIONS:
        if (!in_range(value, 1, 1000))
            return NVFP4_ERR_INVALID_VALUE;
        q->cjso_iters = (int32_t)value;
        return NVFP4_OK;
    case NVFP4_Q_SWEEP_RADIUS:
        if (!in_range(value, 1, 64))
            return NVFP4_ERR_INVALID_VALUE;
        q->sweep_radius = (int32_t)value;
        return NVFP4_OK;
    default:
        return NVFP4_ERR_UNKNOWN_KEY;
    }
}

nvfp4_status nvfp4_quantizer_get_int(const nvfp4_quantizer *q, int32_t param, int64_t *value)
{
    if (!q || !value)
        return NVFP4_ERR_NULL_POINTER;
    switch (param) {
    case NVFP4_Q_FORMAT: *value = q->format; return NVFP4_OK;
    case NVFP4_Q_SCALE_LAYOUT: *value = q->layout; return NVFP4_OK;
    case NVFP4_Q_NONFINITE: *value = q->nonfinite; return NVFP4_OK;
    case NVFP4_Q_RECIPE: *value = q->recipe; return NVFP4_OK;
    case NVFP4_Q_E8M0_MODE: *value = q->e8m0_mode; return NVFP4_OK;
    case NVFP4_Q_4OVER6_RULE: *value = q->rule; return NVFP4_OK;
    case NVFP4_Q_4OVER6_E4M3_MAX: *value = q->e4m3_max_4o6; return NVFP4_OK;
    case NVFP4_Q_CJSO_ITERATIONS: *value = q->cjso_iters; return NVFP4_OK;
    case NVFP4_Q_SWEEP_RADIUS: *value = q->sweep_radius; return NVFP4_OK;
    default: return NVFP4_ERR_UNKNOWN_KEY;
    }
}

nvfp4_status nvfp4_quantizer_set_float(nvfp4_quantizer *q, int32_t param, double value)
{
    if (!q)
        return NVFP4_ERR_NULL_POINTER;
    switch (param) {
    case NVFP4_Q_GLOBAL_SCALE: {
        if (!isfinite(value) || value < 0.0)
            return NVFP4_ERR_INVALID_VALUE;
        float f = (float)value;
        if (value > 0.0 && !(f > 0.0f && nvfp4i_isfinite(f)))
            return NVFP4_ERR_INVALID_VALUE; /* must survive the conversion to float32 */
        q->global_scale = (double)f;
        return NVFP4_OK;
    }
    case NVFP4_Q_DSS_WINDOW_LO:
        if (!isfinite(value) || value <= 0.0 || value > 1.0)
            return NVFP4_ERR_INVALID_VALUE;
        q->dss_lo = value;
        return NVFP4_OK;
    case NVFP4_Q_DSS_WINDOW_HI:
        if (!isfinite(value) || value < 1.0 || value > 16.0)
            return NVFP4_ERR_INVALID_VALUE;
        q->dss_hi = value;
        return NVFP4_OK;
    case NVFP4_Q_CJSO_TOLERANCE:
        if (!(value >= 0.0 && value < 1.0))
            return NVFP4_ERR_INVALID_VALUE;
        q->cjso_tol = value;
        return NVFP4_OK;
    default:
        return NVFP4_ERR_UNKNOWN_KEY;
    }
}

nvfp4_status nvfp4_quantizer_get_float(const nvfp4_quantizer *q, int32_t param, double *value)
{
    if (!q || !value)
        return NVFP4_ERR_NULL_POINTER;
    switch (param) {
    case NVFP4_Q_GLOBAL_SCALE: *value = q->global_scale; return NVFP4_OK;
    case NVFP4_Q_DSS_WINDOW_LO: *value = q->dss_lo; return NVFP4_OK;
    case NVFP4_Q_DSS_WINDOW_HI: *value = q->dss_hi; return NVFP4_OK;
    case NVFP4_Q_CJSO_TOLERANCE: *value = q->cjso_tol; return NVFP4_OK;
    default: return NVFP4_ERR_UNKNOWN_KEY;
    }
}

nvfp4_status nvfp4_quantizer_set_importance(nvfp4_quantizer *q, const float *h, int64_t n)
{
    if (!q)
        return NVFP4_ERR_NULL_POINTER;
    if (n < 0)
        return NVFP4_ERR_SHAPE;
    if (n > 0 && !h)
        return NVFP4_ERR_NULL_POINTER;
    if (n == 0) {
        nvfp4i_hfree(&q->hooks, q->importance);
        q->importance = NULL;
        q->importance_n = 0;
        return NVFP4_OK;
    }
    for (int64_t i = 0; i < n; i++)
        if (!nvfp4i_isfinite(h[i]) || h[i] < 0.0f)
            return NVFP4_ERR_INVALID_VALUE;
    if ((uint64_t)n > SIZE_MAX / sizeof(float))
        return NVFP4_ERR_OUT_OF_MEMORY;
    float *copy = nvfp4i_halloc(&q->hooks, (size_t)n * sizeof(float));
    if (!copy)
        return NVFP4_ERR_OUT_OF_MEMORY;
    memcpy(copy, h, (size_t)n * sizeof(float));
    nvfp4i_hfree(&q->hooks, q->importance);
    q->importance = copy;
    q->importance_n = n;
    return NVFP4_OK;
}
