/* formats.c - the public scalar and array conversions (thin wrappers over rounding.h). */
#include "internal.h"

uint8_t nvfp4_e2m1_from_float(float x) { return nvfp4i_e2m1_from_float(x); }
float nvfp4_e2m1_to_float(uint8_t code) { return nvfp4i_e2m1_to_float(code); }
uint8_t nvfp4_e4m3_from_float(float x) { return nvfp4i_e4m3_from_float(x); }
float nvfp4_e4m3_to_float(uint8_t b) { return nvfp4i_e4m3_to_float(b); }
float nvfp4_e8m0_to_float(uint8_t b) { return nvfp4i_e8m0_to_float(b); }
float nvfp4_f16_to_float(uint16_t h) { return nvfp4i_f16_to_float(h); }
uint16_t nvfp4_float_to_f16(float x) { return nvfp4i_float_to_f16(x); }
float nvfp4_bf16_to_float(uint16_t b) { return nvfp4i_bf16_to_float(b); }
uint16_t nvfp4_float_to_bf16(float x) { return nvfp4i_float_to_bf16(x); }

static const float e2m1_grid[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

const float *nvfp4_e2m1_grid(void) { return e2m1_grid; }

nvfp4_status nvfp4_e8m0_from_amax(float amax, int32_t mode, uint8_t *out)
{
    if (!out)
        return NVFP4_ERR_NULL_POINTER;
    if (mode != NVFP4_E8M0_RCEIL && mode != NVFP4_E8M0_FLOOR)
        return NVFP4_ERR_UNKNOWN_KEY;
    if (!nvfp4i_isfinite(amax) || amax < 0.0f)
        return NVFP4_ERR_INVALID_VALUE;
    *out = nvfp4i_e8m0_from_amax(amax, mode == NVFP4_E8M0_FLOOR);
    return NVFP4_OK;
}

static float load(int32_t dtype, const void *src, int64_t i)
{
    switch (dtype) {
    case NVFP4_DTYPE_F32: return ((const float *)src)[i];
    case NVFP4_DTYPE_F16: return nvfp4i_f16_to_float(((const uint16_t *)src)[i]);
    default: return nvfp4i_bf16_to_float(((const uint16_t *)src)[i]);
    }
}

static void store(int32_t dtype, void *dst, int64_t i, float v)
{
    switch (dtype) {
    case NVFP4_DTYPE_F32: ((float *)dst)[i] = v; break;
    case NVFP4_DTYPE_F16: ((uint16_t *)dst)[i] = nvfp4i_float_to_f16(v); break;
    default: ((uint16_t *)dst)[i] = nvfp4i_float_to_bf16(v); break;
    }
}

static nvfp4_status check_array(int32_t dtype, const void *a, const void *b, int64_t n)
{
    if (n < 0)
        return NVFP4_ERR_SHAPE;
    if (!nvfp4i_dtype_ok(dtype))
        return NVFP4_ERR_UNKNOWN_KEY;
    if (n > 0 && (!a || !b))
        return NVFP4_ERR_NULL_POINTER;
    return NVFP4_OK;
}

nvfp4_status nvfp4_e2m1_from_array(int32_t src_dtype, const void *src, int64_t n, uint8_t *codes)
{
    nvfp4_status s = check_array(src_dtype, src, codes, n);
    if (s)
        return s;
    for (int64_t i = 0; i < n; i++)
        codes[i] = nvfp4i_e2m1_from_float(load(src_dtype, src, i));
    return NVFP4_OK;
}

nvfp4_status nvfp4_e4m3_from_array(int32_t src_dtype, const void *src, int64_t n, uint8_t *bytes)
{
    nvfp4_status s = check_array(src_dtype, src, bytes, n);
    if (s)
        return s;
    for (int64_t i = 0; i < n; i++)
        bytes[i] = nvfp4i_e4m3_from_float(load(src_dtype, src, i));
    return NVFP4_OK;
}

nvfp4_status nvfp4_e2m1_to_array(const uint8_t *codes, int64_t n, int32_t dst_dtype, void *dst)
{
    nvfp4_status s = check_array(dst_dtype, codes, dst, n);
    if (s)
        return s;
    for (int64_t i = 0; i < n; i++)
        store(dst_dtype, dst, i, nvfp4i_e2m1_to_float(codes[i]));
    return NVFP4_OK;
}

nvfp4_status nvfp4_e4m3_to_array(const uint8_t *bytes, int64_t n, int32_t dst_dtype, void *dst)
{
    nvfp4_status s = check_array(dst_dtype, bytes, dst, n);
    if (s)
        return s;
    for (int64_t i = 0; i < n; i++)
        store(dst_dtype, dst, i, nvfp4i_e4m3_to_float(bytes[i]));
    return NVFP4_OK;
}

nvfp4_status nvfp4_e2m1_pack(const uint8_t *codes, int64_t n, uint8_t *packed)
{
    if (n < 0)
        return NVFP4_ERR_SHAPE;
    if (n > 0 && (!codes || !packed))
        return NVFP4_ERR_NULL_POINTER;
    for (int64_t i = 0; i < n; i++)
        if (codes[i] > 0xF)
            return NVFP4_ERR_INVALID_VALUE;
    for (int64_t j = 0; j < n / 2; j++)
        packed[j] = (uint8_t)(codes[2 * j] | (codes[2 * j + 1] << 4));
    if (n & 1)
        packed[n / 2] = codes[n - 1];
    return NVFP4_OK;
}

nvfp4_status nvfp4_e2m1_unpack(const uint8_t *packed, int64_t n, uint8_t *codes)
{
    if (n < 0)
        return NVFP4_ERR_SHAPE;
    if (n > 0 && (!codes || !packed))
        return NVFP4_ERR_NULL_POINTER;
    for (int64_t i = 0; i < n; i++)
        codes[i] = (uint8_t)((packed[i / 2] >> ((i & 1) * 4)) & 0xF);
    return NVFP4_OK;
}
