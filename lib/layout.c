/* layout.c - the cuBLASLt/CUTLASS 128×4 scale layout (SPEC §6) and buffer sizes. */
#include <string.h>

#include "internal.h"

static int round_up_ok(int64_t v, int64_t m, int64_t *out)
{
    if (v > INT64_MAX - (m - 1))
        return 0;
    *out = (v + (m - 1)) / m * m; /* v + m alone may overflow */
    return 1;
}

/* Padded size of a 128×4 scale buffer; 0 on overflow. */
static int swizzled_size(int64_t rows, int64_t scale_cols, int64_t *bytes)
{
    int64_t r, c;
    return round_up_ok(rows, 128, &r) && round_up_ok(scale_cols, 4, &c) && nvfp4i_mul_ok(r, c, bytes);
}

void nvfp4i_swizzle(const uint8_t *linear, int64_t rows, int64_t scale_cols, uint8_t *swizzled)
{
    int64_t bytes = 0;
    int64_t k4 = (scale_cols + 3) / 4;
    swizzled_size(rows, scale_cols, &bytes);
    memset(swizzled, 0, (size_t)bytes);
    for (int64_t m = 0; m < rows; m++)
        for (int64_t k = 0; k < scale_cols; k++)
            swizzled[nvfp4i_offset_128x4(m, k, k4)] = linear[m * scale_cols + k];
}

void nvfp4i_unswizzle(const uint8_t *swizzled, int64_t rows, int64_t scale_cols, uint8_t *linear)
{
    int64_t k4 = (scale_cols + 3) / 4;
    for (int64_t m = 0; m < rows; m++)
        for (int64_t k = 0; k < scale_cols; k++)
            linear[m * scale_cols + k] = swizzled[nvfp4i_offset_128x4(m, k, k4)];
}

nvfp4_status nvfp4_scale_offset_128x4(int64_t m, int64_t k, int64_t scale_cols, int64_t *offset)
{
    int64_t bytes;
    if (!offset)
        return NVFP4_ERR_NULL_POINTER;
    if (m < 0 || k < 0 || scale_cols <= 0 || k >= scale_cols || m == INT64_MAX ||
        !swizzled_size(m + 1, scale_cols, &bytes))
        return NVFP4_ERR_SHAPE;
    *offset = nvfp4i_offset_128x4(m, k, (scale_cols + 3) / 4);
    return NVFP4_OK;
}

static nvfp4_status check_swizzle_args(const void *a, int64_t rows, int64_t scale_cols, const void *b)
{
    int64_t bytes;
    if (!a || !b)
        return NVFP4_ERR_NULL_POINTER;
    if (rows <= 0 || scale_cols <= 0 || !swizzled_size(rows, scale_cols, &bytes) || (uint64_t)bytes > SIZE_MAX)
        return NVFP4_ERR_SHAPE;
    return NVFP4_OK;
}

nvfp4_status nvfp4_scales_swizzle(const uint8_t *linear, int64_t rows, int64_t scale_cols, uint8_t *swizzled)
{
    nvfp4_status s = check_swizzle_args(linear, rows, scale_cols, swizzled);
    if (s)
        return s;
    nvfp4i_swizzle(linear, rows, scale_cols, swizzled);
    return NVFP4_OK;
}

nvfp4_status nvfp4_scales_unswizzle(const uint8_t *swizzled, int64_t rows, int64_t scale_cols, uint8_t *linear)
{
    nvfp4_status s = check_swizzle_args(swizzled, rows, scale_cols, linear);
    if (s)
        return s;
    nvfp4i_unswizzle(swizzled, rows, scale_cols, linear);
    return NVFP4_OK;
}

static int format_block(int32_t format)
{
    return format == NVFP4_FORMAT_NVFP4 ? NVFP4I_BLOCK_NVFP4 : format == NVFP4_FORMAT_MXFP4 ? NVFP4I_BLOCK_MXFP4 : 0;
}

nvfp4_status nvfp4_codes_size(int32_t format, int64_t rows, int64_t cols, int64_t *bytes)
{
    int B = format_block(format);
    int64_t padded, v;
    if (!bytes)
        return NVFP4_ERR_NULL_POINTER;
    if (!B)
        return NVFP4_ERR_UNKNOWN_KEY;
    if (rows <= 0 || cols <= 0 || !round_up_ok(cols, B, &padded) || !nvfp4i_mul_ok(rows, padded / 2, &v))
        return NVFP4_ERR_SHAPE;
    *bytes = v;
    return NVFP4_OK;
}

nvfp4_status nvfp4_scales_size(int32_t format, int32_t layout, int64_t rows, int64_t cols, int64_t *bytes)
{
    int B = format_block(format);
    int64_t v;
    if (!bytes)
        return NVFP4_ERR_NULL_POINTER;
    if (!B || (layout != NVFP4_LAYOUT_LINEAR && layout != NVFP4_LAYOUT_128X4))
        return NVFP4_ERR_UNKNOWN_KEY;
    if (rows <= 0 || cols <= 0)
        return NVFP4_ERR_SHAPE;
    int64_t nblk = cols / B + (cols % B != 0);
    if (layout == NVFP4_LAYOUT_LINEAR ? !nvfp4i_mul_ok(rows, nblk, &v) : !swizzled_size(rows, nblk, &v))
        return NVFP4_ERR_SHAPE;
    *bytes = v;
    return NVFP4_OK;
}
