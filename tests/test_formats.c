/* test_formats.c - SPEC §1 conversions against the independent formulation in ref_rounding.h:
 * SPEC check values and ties, every f16 and bf16 input through the array conversions, every
 * scale byte, the E8M0 exponent choice, f16/bf16 round trips, packing. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvfp4/nvfp4.h"
#include "ref_rounding.h"

#define N16 65536
#define CANARY_BYTE 0xA5

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static int same_bits_or_both_nan(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

/* ---- SPEC check values ------------------------------------------------------------------- */

static void test_e2m1_spec_values(void **state)
{
    (void)state;
    static const struct {
        float x;
        uint8_t code;
    } cases[] = {
        {0.25f, 0x0}, {0.75f, 0x2}, {1.25f, 0x2}, {1.75f, 0x4}, {2.5f, 0x4}, {3.5f, 0x6}, {5.0f, 0x6},
        {6.4f, 0x7}, {6.0f, 0x7}, {5.0000005f, 0x7}, {4.9999995f, 0x6}, {0.2500001f, 0x1}, {0.7499999f, 0x1},
        {0.0f, 0x0}, {0.5f, 0x1}, {1.0f, 0x2}, {1.5f, 0x3}, {2.0f, 0x4}, {3.0f, 0x5}, {4.0f, 0x6},
        {-0.25f, 0x8}, {-0.75f, 0xA}, {-1.25f, 0xA}, {-1.75f, 0xC}, {-2.5f, 0xC}, {-3.5f, 0xE},
        {-5.0f, 0xE}, {-6.4f, 0xF}, {1e30f, 0x7}, {FLT_MAX, 0x7}, {-FLT_MAX, 0xF}, {1e-45f, 0x0},
        {-1e-30f, 0x8}, {-0.0f, 0x8}, {-0.1f, 0x8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t got = nvfp4_e2m1_from_float(cases[i].x);
        if (got != cases[i].code)
            fprintf(stderr, "e2m1(%.9g) = 0x%X, SPEC 0x%X\n", (double)cases[i].x, got, cases[i].code);
        assert_int_equal(got, cases[i].code);
        assert_int_equal(ref_e2m1((double)cases[i].x), cases[i].code); /* the oracle agrees */
    }
    assert_int_equal(nvfp4_e2m1_from_float(INFINITY), 0x7);
    assert_int_equal(nvfp4_e2m1_from_float(-INFINITY), 0xF);
    assert_int_equal(nvfp4_e2m1_from_float(NAN), 0x7);
    assert_int_equal(nvfp4_e2m1_from_float(-NAN), 0x7);
    assert_int_equal(nvfp4_e2m1_from_float(ref_u2f(0xFFFFFFFFu)), 0x7);
    assert_int_equal(nvfp4_e2m1_from_float(ref_u2f(0x7F800001u)), 0x7);
}

static void test_e4m3_spec_values(void **state)
{
    (void)state;
    static const struct {
        float x;
        uint8_t b;
    } cases[] = {
        {448.0f, 0x7E}, {449.0f, 0x7E}, {464.0f, 0x7E}, {465.0f, 0x7E}, {1e30f, 0x7E}, {FLT_MAX, 0x7E},
        {-448.0f, 0xFE}, {-465.0f, 0xFE}, {1.0f, 0x38}, {-1.0f, 0xB8}, {0.0f, 0x00}, {-0.0f, 0x80},
        {0x1p-10f, 0x00},            /* tie between 0 and the min subnormal 2^-9 → even 0 */
        {0x1.000002p-10f, 0x01},     /* just above the tie */
        {0x1p-9f, 0x01},             /* min subnormal */
        {0x3p-10f, 0x02},            /* tie between 2^-9 (0x01) and 2·2^-9 (0x02) → even 0x02 */
        {0x5p-10f, 0x02},            /* tie between 0x02 and 0x03 → 0x02 */
        {0x7p-9f, 0x07},             /* max subnormal */
        {0xFp-10f, 0x08},            /* tie between 7·2^-9 and 2^-6 → 0x08 */
        {0x1p-6f, 0x08},             /* min normal */
        {432.0f, 0x7E},              /* tie between 416 (0x7D) and 448 (0x7E) → even 0x7E */
        {424.0f, 0x7D}, {440.0f, 0x7E}, {1e-30f, 0x00}, {-1e-30f, 0x80},
        {17.0f, 0x58},               /* tie between 16 (0x58) and 18 (0x59) → 0x58 */
        {19.0f, 0x5A},               /* tie between 18 (0x59) and 20 (0x5A) → 0x5A */
        {240.0f, 0x77}, {0.1f, 0x1D},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t got = nvfp4_e4m3_from_float(cases[i].x);
        if (got != cases[i].b)
            fprintf(stderr, "e4m3(%a) = 0x%02X, expected 0x%02X\n", (double)cases[i].x, got, cases[i].b);
        assert_int_equal(got, cases[i].b);
        assert_int_equal(ref_e4m3((double)cases[i].x), cases[i].b);
    }
    assert_int_equal(nvfp4_e4m3_from_float(INFINITY), 0x7E);
    assert_int_equal(nvfp4_e4m3_from_float(-INFINITY), 0xFE);
    assert_int_equal(nvfp4_e4m3_from_float(NAN), 0x7F);
    assert_int_equal(nvfp4_e4m3_from_float(-NAN), 0x7F);
    assert_int_equal(nvfp4_e4m3_from_float(ref_u2f(0xFF800001u)), 0x7F);
}

/* ---- every scale byte -------------------------------------------------------------------- */

static void test_e4m3_every_byte(void **state)
{
    (void)state;
    float f32[256];
    uint16_t h[256], bf[256];
    uint8_t bytes[256], back[256];
    for (int b = 0; b < 256; b++)
        bytes[b] = (uint8_t)b;
    assert_int_equal(nvfp4_e4m3_to_array(bytes, 256, NVFP4_DTYPE_F32, f32), NVFP4_OK);
    assert_int_equal(nvfp4_e4m3_to_array(bytes, 256, NVFP4_DTYPE_F16, h), NVFP4_OK);
    assert_int_equal(nvfp4_e4m3_to_array(bytes, 256, NVFP4_DTYPE_BF16, bf), NVFP4_OK);
    for (int b = 0; b < 256; b++) {
        double ref = ref_e4m3_value((uint8_t)b);
        float v = nvfp4_e4m3_to_float((uint8_t)b);
        assert_true(same_bits_or_both_nan((double)v, ref));
        assert_true(same_bits_or_both_nan((double)f32[b], ref));
        /* every E4M3 value is exact in f16 and bf16 */
        assert_true(same_bits_or_both_nan(ref_f16_value(h[b]), ref));
        assert_true(same_bits_or_both_nan(ref_bf16_value(bf[b]), ref));
        if (!isnan(ref)) {
            assert_int_equal(nvfp4_e4m3_from_float(v), b); /* exact values round to themselves */
        }
    }
    /* the array path of the encoder on the decoded values */
    float finite[254];
    uint8_t expect[254];
    int k = 0;
    for (int b = 0; b < 256; b++)
        if ((b & 0x7F) != 0x7F) {
            finite[k] = f32[b];
            expect[k++] = (uint8_t)b;
        }
    assert_int_equal(nvfp4_e4m3_from_array(NVFP4_DTYPE_F32, finite, k, back), NVFP4_OK);
    assert_memory_equal(back, expect, (size_t)k);
    /* value ladder: strictly increasing over 0x00..0x7E, 0x7E is 448, 0x01 is 2^-9, 0x08 is 2^-6 */
    for (int b = 1; b < 0x7F; b++)
        assert_true(nvfp4_e4m3_to_float((uint8_t)b) > nvfp4_e4m3_to_float((uint8_t)(b - 1)));
    assert_true(nvfp4_e4m3_to_float(0x7E) == 448.0f);
    assert_true(nvfp4_e4m3_to_float(0x01) == 0x1p-9f);
    assert_true(nvfp4_e4m3_to_float(0x08) == 0x1p-6f);
}

static void test_e8m0_every_byte(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        float v = nvfp4_e8m0_to_float((uint8_t)b);
        assert_true(same_bits_or_both_nan((double)v, ref_e8m0_value((uint8_t)b)));
    }
    assert_true(nvfp4_e8m0_to_float(127) == 1.0f);
    assert_true(nvfp4_e8m0_to_float(0) == 0x1p-127f);
    assert_true(nvfp4_e8m0_to_float(254) == 0x1p127f);
    assert_true(isnan(nvfp4_e8m0_to_float(255)));
}

static void check_e8m0(float a)
{
    for (int mode = 0; mode < 2; mode++) {
        uint8_t got = 0xEE;
        assert_int_equal(nvfp4_e8m0_from_amax(a, mode == 0 ? NVFP4_E8M0_RCEIL : NVFP4_E8M0_FLOOR, &got),
                         NVFP4_OK);
        uint8_t want = ref_e8m0_from_amax(a, mode);
        if (got != want)
            fprintf(stderr, "e8m0(%a, %s) = %u, expected %u\n", (double)a, mode ? "floor" : "rceil", got, want);
        assert_int_equal(got, want);
    }
}

static void test_e8m0_from_amax(void **state)
{
    (void)state;
    /* every non-negative finite bf16 (all exponents) and f16 */
    for (uint32_t b = 0; b < 0x7F80u; b++)
        check_e8m0((float)ref_bf16_value((uint16_t)b));
    for (uint32_t h = 0; h < 0x7C00u; h++)
        check_e8m0((float)ref_f16_value((uint16_t)h));
    /* random floats and the neighbourhood of 6·2^k, where RCEIL changes exponent */
    for (int i = 0; i < 1000000; i++)
        check_e8m0(ref_u2f(rng32() & 0x7F7FFFFFu));
    for (int k = -150; k <= 125; k++) {
        float c = ldexpf(6.0f, k);
        check_e8m0(c);
        check_e8m0(nextafterf(c, 0.0f));
        check_e8m0(nextafterf(c, INFINITY));
    }
    check_e8m0(FLT_MAX);
    check_e8m0(FLT_MIN);
    check_e8m0(0x1p-149f);
    /* fixed points: RCEIL amax 6 → 2^0 (127); 6.0001 → 2^1; FLOOR amax 6 → 2^(2−2) (127); 4 → 127; 3.99 → 126 */
    uint8_t b;
    assert_int_equal(nvfp4_e8m0_from_amax(6.0f, NVFP4_E8M0_RCEIL, &b), NVFP4_OK);
    assert_int_equal(b, 127);
    assert_int_equal(nvfp4_e8m0_from_amax(6.01f, NVFP4_E8M0_RCEIL, &b), NVFP4_OK);
    assert_int_equal(b, 128);
    assert_int_equal(nvfp4_e8m0_from_amax(6.0f, NVFP4_E8M0_FLOOR, &b), NVFP4_OK);
    assert_int_equal(b, 127);
    assert_int_equal(nvfp4_e8m0_from_amax(3.99f, NVFP4_E8M0_FLOOR, &b), NVFP4_OK);
    assert_int_equal(b, 126);
    assert_int_equal(nvfp4_e8m0_from_amax(0.0f, NVFP4_E8M0_RCEIL, &b), NVFP4_OK);
    assert_int_equal(b, 0);
    assert_int_equal(nvfp4_e8m0_from_amax(0.0f, NVFP4_E8M0_FLOOR, &b), NVFP4_OK);
    assert_int_equal(b, 0);
}

/* ---- E2M1 decode ------------------------------------------------------------------------- */

static void test_e2m1_decode(void **state)
{
    (void)state;
    const float *grid = nvfp4_e2m1_grid();
    assert_non_null(grid);
    uint8_t codes[16];
    float f32[16];
    uint16_t h[16], bf[16];
    for (int c = 0; c < 16; c++)
        codes[c] = (uint8_t)c;
    assert_int_equal(nvfp4_e2m1_to_array(codes, 16, NVFP4_DTYPE_F32, f32), NVFP4_OK);
    assert_int_equal(nvfp4_e2m1_to_array(codes, 16, NVFP4_DTYPE_F16, h), NVFP4_OK);
    assert_int_equal(nvfp4_e2m1_to_array(codes, 16, NVFP4_DTYPE_BF16, bf), NVFP4_OK);
    for (int c = 0; c < 16; c++) {
        double ref = ref_e2m1_value((uint8_t)c);
        /* the table agrees with the bit fields: 1 sign, 2 exponent (bias 1), 1 mantissa bit */
        unsigned e = (c >> 1) & 3u, m = c & 1u;
        double fields = e == 0 ? 0.5 * m : ldexp(1.0 + 0.5 * m, (int)e - 1);
        assert_true(fields == fabs(ref));
        assert_true(same_bits_or_both_nan((double)nvfp4_e2m1_to_float((uint8_t)c), ref));
        assert_true(same_bits_or_both_nan((double)nvfp4_e2m1_to_float((uint8_t)(c | 0xF0)), ref));
        assert_true(same_bits_or_both_nan((double)grid[c], ref));
        assert_true(same_bits_or_both_nan((double)f32[c], ref));
        assert_true(same_bits_or_both_nan(ref_f16_value(h[c]), ref));
        assert_true(same_bits_or_both_nan(ref_bf16_value(bf[c]), ref));
        /* grid values round to themselves */
        assert_int_equal(nvfp4_e2m1_from_float((float)ref), c);
    }
    assert_true(signbit(nvfp4_e2m1_to_float(0x8)));
}

/* ---- every f16 and bf16 input through the array conversions ------------------------------ */

static void check_all16(int32_t dtype)
{
    uint16_t *src = malloc(N16 * sizeof *src);
    float *f = malloc(N16 * sizeof *f);
    uint8_t *c2 = malloc(N16), *c4 = malloc(N16), *c2f = malloc(N16), *c4f = malloc(N16);
    assert_non_null(src);
    assert_non_null(f);
    assert_non_null(c2);
    assert_non_null(c4);
    assert_non_null(c2f);
    assert_non_null(c4f);
    for (uint32_t i = 0; i < N16; i++) {
        src[i] = (uint16_t)i;
        f[i] = dtype == NVFP4_DTYPE_F16 ? nvfp4_f16_to_float((uint16_t)i) : nvfp4_bf16_to_float((uint16_t)i);
    }
    assert_int_equal(nvfp4_e2m1_from_array(dtype, src, N16, c2), NVFP4_OK);
    assert_int_equal(nvfp4_e4m3_from_array(dtype, src, N16, c4), NVFP4_OK);
    assert_int_equal(nvfp4_e2m1_from_array(NVFP4_DTYPE_F32, f, N16, c2f), NVFP4_OK);
    assert_int_equal(nvfp4_e4m3_from_array(NVFP4_DTYPE_F32, f, N16, c4f), NVFP4_OK);
    long bad = 0;
    for (uint32_t i = 0; i < N16; i++) {
        double v = dtype == NVFP4_DTYPE_F16 ? ref_f16_value((uint16_t)i) : ref_bf16_value((uint16_t)i);
        assert_true(same_bits_or_both_nan((double)f[i], v)); /* the widening is exact */
        uint8_t w2 = ref_e2m1(v), w4 = ref_e4m3(v);
        if (c2[i] != w2 || c4[i] != w4 || c2f[i] != w2 || c4f[i] != w4 || nvfp4_e2m1_from_float(f[i]) != w2 ||
            nvfp4_e4m3_from_float(f[i]) != w4) {
            if (bad++ < 10)
                fprintf(stderr, "%s 0x%04X (%a): e2m1 %X/%X/%X want %X, e4m3 %02X/%02X/%02X want %02X\n",
                        dtype == NVFP4_DTYPE_F16 ? "f16" : "bf16", i, v, c2[i], c2f[i],
                        nvfp4_e2m1_from_float(f[i]), w2, c4[i], c4f[i], nvfp4_e4m3_from_float(f[i]), w4);
        }
    }
    assert_int_equal(bad, 0);
    free(src);
    free(f);
    free(c2);
    free(c4);
    free(c2f);
    free(c4f);
}

static void test_all_f16_inputs(void **state)
{
    (void)state;
    check_all16(NVFP4_DTYPE_F16);
}

static void test_all_bf16_inputs(void **state)
{
    (void)state;
    check_all16(NVFP4_DTYPE_BF16);
}

/* ---- f16 / bf16 round trips -------------------------------------------------------------- */

static void test_f16_round_trip(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < N16; i++) {
        uint16_t h = (uint16_t)i;
        float f = nvfp4_f16_to_float(h);
        assert_true(same_bits_or_both_nan((double)f, ref_f16_value(h)));
        uint16_t back = nvfp4_float_to_f16(f);
        if (ref_f16_isnan(h)) {
            assert_true(ref_f16_isnan(back));
            assert_int_equal(back & 0x8000u, h & 0x8000u);
        } else {
            assert_int_equal(back, h);
        }
    }
}

static void test_bf16_round_trip(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < N16; i++) {
        uint16_t b = (uint16_t)i;
        float f = nvfp4_bf16_to_float(b);
        assert_true(same_bits_or_both_nan((double)f, ref_bf16_value(b)));
        uint16_t back = nvfp4_float_to_bf16(f);
        if (ref_bf16_isnan(b)) {
            assert_true(ref_bf16_isnan(back));
            assert_int_equal(back & 0x8000u, b & 0x8000u);
        } else {
            assert_int_equal(back, b);
        }
    }
}

static void check_narrow(float x)
{
    uint16_t h = nvfp4_float_to_f16(x), b = nvfp4_float_to_bf16(x);
    if (isnan(x)) {
        assert_true(ref_f16_isnan(h));
        assert_true(ref_bf16_isnan(b));
        return;
    }
    uint16_t wh = ref_f16_from_double((double)x), wb = ref_bf16_from_double((double)x);
    if (h != wh || b != wb)
        fprintf(stderr, "narrow(%a): f16 %04X want %04X, bf16 %04X want %04X\n", (double)x, h, wh, b, wb);
    assert_int_equal(h, wh);
    assert_int_equal(b, wb);
}

/* float → f16 / bf16 rounding: every halfway point between neighbouring f16 (bf16) values and its
 * float neighbours, plus random floats. (Every float is covered by the slow suite.) */
static void test_float_to_half_rounding(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 0x7C00u; i++) {
        double lo = ref_f16_value((uint16_t)i), hi = ref_f16_value((uint16_t)(i + 1));
        float mid = (float)((lo + hi) / 2); /* exact: f16 midpoints have 12 significant bits */
        for (int s = 0; s < 2; s++) {
            float m = s ? -mid : mid;
            check_narrow(m);
            check_narrow(nextafterf(m, 0.0f));
            check_narrow(nextafterf(m, INFINITY));
            check_narrow(nextafterf(m, -INFINITY));
        }
    }
    for (uint32_t i = 0; i < 0x7F80u; i++) {
        uint32_t mid = (i << 16) | 0x8000u; /* the bf16 halfway point above bf16 i */
        check_narrow(ref_u2f(mid));
        check_narrow(ref_u2f(mid - 1));
        check_narrow(ref_u2f(mid + 1));
        check_narrow(ref_u2f(mid | 0x80000000u));
    }
    check_narrow(65504.0f);
    check_narrow(65519.99f);
    check_narrow(65520.0f);
    check_narrow(INFINITY);
    check_narrow(-INFINITY);
    check_narrow(NAN);
    check_narrow(FLT_MAX);
    check_narrow(0x1p-25f);
    check_narrow(0x1.000002p-25f);
    check_narrow(-0.0f);
    for (int i = 0; i < 2000000; i++)
        check_narrow(ref_u2f(rng32()));
    assert_int_equal(nvfp4_float_to_f16(65520.0f), 0x7C00);
    assert_int_equal(nvfp4_float_to_f16(0x1p-25f), 0x0000);        /* tie to even zero */
    assert_int_equal(nvfp4_float_to_f16(0x3p-25f), 0x0002);        /* tie to even */
    assert_int_equal(nvfp4_float_to_bf16(ref_u2f(0x3F808000u)), 0x3F80);
    assert_int_equal(nvfp4_float_to_bf16(ref_u2f(0x3F818000u)), 0x3F82);
    assert_int_equal(nvfp4_float_to_bf16(FLT_MAX), 0x7F80);       /* rounds up to Inf */
}

/* Short and misaligned arrays (vector loops' heads and tails): every n in 0..80 at every start
 * offset 0..7, all three source types, canaries after the last output byte. */
static void test_array_lengths_and_offsets(void **state)
{
    (void)state;
    enum { MAXN = 80, OFF = 8 };
    float f[MAXN + OFF];
    uint16_t h[MAXN + OFF], b[MAXN + OFF];
    uint8_t o2[MAXN + OFF + 8], o4[MAXN + OFF + 8];
    for (int i = 0; i < MAXN + OFF; i++) {
        uint32_t r = rng32();
        f[i] = (r & 7) == 0 ? ref_u2f(rng32()) : (float)((double)(int32_t)r / 2147483648.0 * 8.0);
        h[i] = (uint16_t)rng32();
        b[i] = (uint16_t)rng32();
    }
    f[3] = NAN;
    f[5] = -INFINITY;
    for (int32_t dt = 0; dt < 3; dt++)
        for (int off = 0; off < OFF; off++)
            for (int n = 0; n <= MAXN; n++) {
                const void *src = dt == NVFP4_DTYPE_F32 ? (const void *)(f + off)
                                  : dt == NVFP4_DTYPE_F16 ? (const void *)(h + off)
                                                          : (const void *)(b + off);
                memset(o2, CANARY_BYTE, sizeof o2);
                memset(o4, CANARY_BYTE, sizeof o4);
                assert_int_equal(nvfp4_e2m1_from_array(dt, src, n, o2 + off), NVFP4_OK);
                assert_int_equal(nvfp4_e4m3_from_array(dt, src, n, o4 + off), NVFP4_OK);
                for (int i = 0; i < n; i++) {
                    double v = dt == NVFP4_DTYPE_F32   ? (double)f[off + i]
                               : dt == NVFP4_DTYPE_F16 ? ref_f16_value(h[off + i])
                                                       : ref_bf16_value(b[off + i]);
                    assert_int_equal(o2[off + i], ref_e2m1(v));
                    assert_int_equal(o4[off + i], ref_e4m3(v));
                }
                for (int i = 0; i < off; i++) {
                    assert_int_equal(o2[i], CANARY_BYTE);
                    assert_int_equal(o4[i], CANARY_BYTE);
                }
                for (int i = off + n; i < (int)sizeof o2; i++) {
                    assert_int_equal(o2[i], CANARY_BYTE);
                    assert_int_equal(o4[i], CANARY_BYTE);
                }
            }
}

/* ---- packing ----------------------------------------------------------------------------- */

static void test_pack_unpack(void **state)
{
    (void)state;
    enum { N = 1001 };
    uint8_t codes[N], packed[(N + 1) / 2 + 4], back[N + 4];
    for (int i = 0; i < N; i++)
        codes[i] = (uint8_t)(rng32() & 0xF);
    memset(packed, 0xA5, sizeof packed);
    assert_int_equal(nvfp4_e2m1_pack(codes, N, packed), NVFP4_OK);
    for (int j = 0; j < N / 2; j++)
        assert_int_equal(packed[j], codes[2 * j] | (codes[2 * j + 1] << 4));
    assert_int_equal(packed[N / 2], codes[N - 1]); /* odd n: high nibble 0 */
    assert_int_equal(packed[(N + 1) / 2], 0xA5);   /* nothing past ceil(n/2) */
    memset(back, 0xA5, sizeof back);
    assert_int_equal(nvfp4_e2m1_unpack(packed, N, back), NVFP4_OK);
    assert_memory_equal(back, codes, N);
    assert_int_equal(back[N], 0xA5);
    /* n = 0 writes nothing */
    memset(packed, 0xA5, sizeof packed);
    memset(back, 0xA5, sizeof back);
    assert_int_equal(nvfp4_e2m1_pack(codes, 0, packed), NVFP4_OK);
    assert_int_equal(nvfp4_e2m1_unpack(packed, 0, back), NVFP4_OK);
    assert_int_equal(packed[0], 0xA5);
    assert_int_equal(back[0], 0xA5);
}

int main(void)
{
    ref_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2m1_spec_values),
        cmocka_unit_test(test_e4m3_spec_values),
        cmocka_unit_test(test_e4m3_every_byte),
        cmocka_unit_test(test_e8m0_every_byte),
        cmocka_unit_test(test_e8m0_from_amax),
        cmocka_unit_test(test_e2m1_decode),
        cmocka_unit_test(test_all_f16_inputs),
        cmocka_unit_test(test_all_bf16_inputs),
        cmocka_unit_test(test_f16_round_trip),
        cmocka_unit_test(test_bf16_round_trip),
        cmocka_unit_test(test_float_to_half_rounding),
        cmocka_unit_test(test_array_lengths_and_offsets),
        cmocka_unit_test(test_pack_unpack),
    };
    return cmocka_run_group_tests_name("formats", tests, NULL, NULL);
}
