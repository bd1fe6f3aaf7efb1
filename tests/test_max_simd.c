/* test_max_simd.c - the AVX2 MAX row kernel equals the scalar rules of rounding.h bit for bit,
 * on rows that reach every branch: zero blocks, E4M3-subnormal and underflowing scales,
 * saturated scales (a caller's global scale below the data), every E2M1 tie, −0.0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "internal.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* random finite float with a wide exponent spread around 2^e0 */
static float rnd(int e0, int spread)
{
    uint32_t u = next_u32();
    int e = e0 + (int)(next_u32() % (uint32_t)(2 * spread + 1)) - spread;
    if (e < -126)
        e = -126;
    if (e > 127)
        e = 127;
    float m = 1.0f + (float)(u & 0xFFFFFF) / 16777216.0f;
    float v = m * ldexpf(1.0f, e);
    return (u >> 31) ? -v : v;
}

static void scalar_row(const float *x, int64_t nblk, float pre, float s_dec, uint8_t *codes, uint8_t *scales,
                       int64_t *uf)
{
    for (int64_t k = 0; k < nblk; k++) {
        float a = nvfp4i_block_amax(x + k * 16, 16);
        uint8_t s = nvfp4i_max_scale(a, pre);
        float sv = nvfp4i_e4m3_to_float(s);
        float inv = nvfp4i_block_inv(a, sv, s_dec);
        *uf += a > 0.0f && sv == 0.0f;
        scales[k] = s;
        for (int j = 0; j < 8; j++)
            codes[k * 8 + j] = (uint8_t)(nvfp4i_encode(x[k * 16 + 2 * j], inv) |
                                         (nvfp4i_encode(x[k * 16 + 2 * j + 1], inv) << 4));
    }
}

static void compare_rows(const float *x, int64_t nblk, float s_enc, float s_dec)
{
    uint8_t c1[8 * 64], c2[8 * 64], s1[64], s2[64];
    int64_t uf1 = 0;
    float pre = nvfp4i_max_pre(s_enc);
    scalar_row(x, nblk, pre, s_dec, c1, s1, &uf1);
    int64_t uf2 = 0;
    assert_int_equal(nvfp4i_max_row_avx2(x, nblk, pre, s_dec, c2, s2, &uf2), nblk);
    assert_memory_equal(s1, s2, (size_t)nblk);
    assert_memory_equal(c1, c2, (size_t)nblk * 8);
    assert_int_equal(uf1, uf2);
}

static void test_random_rows(void **state)
{
    (void)state;
    if (!nvfp4i_have_avx2())
        skip();
    float x[64 * 16];
    for (int it = 0; it < 20000; it++) {
        int e0 = (int)(next_u32() % 200) - 100;
        int spread = (int)(next_u32() % 40);
        for (int i = 0; i < 64 * 16; i++)
            x[i] = rnd(e0, spread);
        /* sprinkle zeros, whole zero blocks and −0.0 */
        for (int i = 0; i < 64; i++)
            x[next_u32() % (64 * 16)] = (next_u32() & 1) ? -0.0f : 0.0f;
        int zb = (int)(next_u32() % 64);
        memset(x + zb * 16, 0, 16 * sizeof(float));
        float amax = 0.0f;
        for (int i = 0; i < 64 * 16; i++)
            amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        float s_enc, s_dec;
        nvfp4i_global_scales(amax, 448.0f, &s_enc, &s_dec);
        compare_rows(x, 64, s_enc, s_dec);
        /* a caller's global scale far from the data: saturated and underflowing block scales */
        float g = ldexpf(1.0f, (int)(next_u32() % 60) - 30) * s_dec;
        compare_rows(x, 64, fminf(1.0f / g, NVFP4I_FLT_MAX), g);
    }
}

/* Every E2M1 threshold and its float neighbours, through a block whose inv is exactly 1. */
static void test_ties(void **state)
{
    (void)state;
    if (!nvfp4i_have_avx2())
        skip();
    static const float t[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f};
    float x[8 * 16];
    int n = 0;
    for (int b = 0; b < 8; b++) {
        x[b * 16] = 6.0f; /* block amax 6 with s_enc = s_dec = 1: scale 1.0, inv 1.0 */
        for (int i = 1; i < 16; i++) {
            float v = t[(n / 3) % 8];
            float y = (n % 3 == 0) ? nextafterf(v, 0.0f) : (n % 3 == 1) ? v : nextafterf(v, 10.0f);
            x[b * 16 + i] = (n & 1) ? -y : y;
            n++;
        }
    }
    compare_rows(x, 8, 1.0f, 1.0f);
}

/* Rows with NaN/Inf (saturate policy): the kernel stops before the first group that holds one,
 * and the public single-pass path (given global scale, saturate) equals the scalar rules. */
static void test_nonfinite_groups(void **state)
{
    (void)state;
    if (!nvfp4i_have_avx2())
        skip();
    enum { NB = 64, C = NB * 16, R = 3 };
    static float x[R * C];
    static uint8_t c1[R * C / 2], c2[R * C / 2], s1[R * NB], s2[R * NB];
    nvfp4_context *ctx;
    nvfp4_quantizer *q;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_NONFINITE, NVFP4_NONFINITE_SATURATE), NVFP4_OK);
    for (int it = 0; it < 200; it++) {
        for (int i = 0; i < R * C; i++)
            x[i] = rnd((int)(next_u32() % 20) - 10, 6);
        int nbad = (int)(next_u32() % 4);
        int first = C;
        for (int j = 0; j < nbad; j++) {
            int i = (int)(next_u32() % (R * C));
            uint32_t kind = next_u32() % 3;
            x[i] = kind == 0 ? INFINITY : kind == 1 ? -INFINITY : NAN;
            if (i < C && i < first)
                first = i;
        }
        float g = ldexpf(1.0f, (int)(next_u32() % 20) - 12);
        float s_enc = fminf(1.0f / g, NVFP4I_FLT_MAX);
        int64_t uf = 0;
        int64_t done = nvfp4i_max_row_avx2(x, NB, nvfp4i_max_pre(s_enc), g, c2, s2, &uf);
        assert_int_equal(done, (first / 128) * 8); /* stops at the group of the first NaN/Inf */
        for (int r = 0; r < R; r++)
            scalar_row(x + r * C, NB, nvfp4i_max_pre(s_enc), g, c1 + r * C / 2, s1 + r * NB, &uf);
        float gs = 0.0f;
        assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, g), NVFP4_OK);
        assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, R, C, C, c2, s2, &gs), NVFP4_OK);
        assert_true(gs == g);
        assert_memory_equal(s1, s2, sizeof s1);
        assert_memory_equal(c1, c2, sizeof c1);
    }
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rows),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_nonfinite_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
