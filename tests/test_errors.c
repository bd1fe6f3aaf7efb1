/* test_errors.c - SPEC §7: every error return of every public function in core.h, formats.h and
 * quantize.h, each checked to leave every output untouched (outputs are pre-filled with a canary
 * pattern and compared afterwards). */
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

#define CANARY 0xA5
#define BUF 4096

/* Output buffers shared by the checks; all start as CANARY. */
static uint8_t out_a[BUF], out_b[BUF];
static float out_gs;
static int64_t out_i64;
static double out_dbl;

static void arm(void)
{
    memset(out_a, CANARY, sizeof out_a);
    memset(out_b, CANARY, sizeof out_b);
    memset(&out_gs, CANARY, sizeof out_gs);
    memset(&out_i64, CANARY, sizeof out_i64);
    memset(&out_dbl, CANARY, sizeof out_dbl);
}

static int untouched(void)
{
    for (size_t i = 0; i < BUF; i++)
        if (out_a[i] != CANARY || out_b[i] != CANARY)
            return 0;
    const uint8_t *p = (const uint8_t *)&out_gs;
    for (size_t i = 0; i < sizeof out_gs; i++)
        if (p[i] != CANARY)
            return 0;
    p = (const uint8_t *)&out_i64;
    for (size_t i = 0; i < sizeof out_i64; i++)
        if (p[i] != CANARY)
            return 0;
    p = (const uint8_t *)&out_dbl;
    for (size_t i = 0; i < sizeof out_dbl; i++)
        if (p[i] != CANARY)
            return 0;
    return 1;
}

/* Evaluates call after arming the canaries, expects status want and untouched outputs. */
#define EXPECT(want, call)                                                                                       \
    do {                                                                                                         \
        arm();                                                                                                   \
        nvfp4_status st_ = (call);                                                                               \
        if (st_ != (want))                                                                                       \
            fprintf(stderr, "line %d: %s returned %s, expected %s\n", __LINE__, #call, nvfp4_status_string(st_), \
                    nvfp4_status_string(want));                                                                  \
        assert_int_equal(st_, (want));                                                                           \
        assert_true(untouched());                                                                                \
    } while (0)

static float src_f32[BUF];
static uint16_t src_u16[BUF];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < BUF; i++) {
        src_f32[i] = (float)((i * 7) % 13) - 6.0f;
        src_u16[i] = 0x3C00; /* 1.0 in f16 */
    }
    return 0;
}

/* ---- core.h ----------------------------------------------------------------------------------- */

static void *never(void *o, size_t s, size_t a)
{
    (void)o;
    (void)s;
    (void)a;
    return NULL;
}
static void never_free(void *o, void *p)
{
    (void)o;
    (void)p;
}

static void test_core_errors(void **state)
{
    (void)state;
    nvfp4_context *const sentinel = (nvfp4_context *)(void *)out_b;
    nvfp4_context *ctx = sentinel;
    assert_int_equal(nvfp4_context_create(NULL, NVFP4_BACKEND_CPU), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_context_create(&ctx, -1), NVFP4_ERR_UNKNOWN_KEY);
    assert_ptr_equal(ctx, sentinel);
    assert_int_equal(nvfp4_context_create(&ctx, 3), NVFP4_ERR_UNKNOWN_KEY);
    assert_ptr_equal(ctx, sentinel);
    assert_int_equal(nvfp4_context_create_ex(NULL, NVFP4_BACKEND_CPU, NULL), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_context_create_ex(&ctx, 42, NULL), NVFP4_ERR_UNKNOWN_KEY);
    assert_ptr_equal(ctx, sentinel);
    /* bad allocators */
    nvfp4_allocator a0 = {0, never, never_free, NULL};
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a0), NVFP4_ERR_INVALID_VALUE);
    assert_ptr_equal(ctx, sentinel);
    nvfp4_allocator a1 = {1, never, never_free, NULL};
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a1), NVFP4_ERR_INVALID_VALUE);
    assert_ptr_equal(ctx, sentinel);
    nvfp4_allocator a2 = {sizeof(nvfp4_allocator), NULL, never_free, NULL};
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a2), NVFP4_ERR_INVALID_VALUE);
    assert_ptr_equal(ctx, sentinel);
    nvfp4_allocator a3 = {sizeof(nvfp4_allocator), never, NULL, NULL};
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a3), NVFP4_ERR_INVALID_VALUE);
    assert_ptr_equal(ctx, sentinel);
    nvfp4_allocator a4 = {sizeof(nvfp4_allocator), never, never_free, NULL};
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a4), NVFP4_ERR_OUT_OF_MEMORY);
    assert_ptr_equal(ctx, sentinel);

    /* set/get */
    ctx = NULL;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(NULL, NVFP4_CTX_THREADS, 1), NVFP4_ERR_NULL_POINTER);
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_context_get_int(NULL, NVFP4_CTX_THREADS, &out_i64));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_context_get_int(ctx, -5, &out_i64));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_context_get_int(ctx, 104, &out_i64));
    assert_int_equal(nvfp4_context_set_int(ctx, -5, 1), NVFP4_ERR_UNKNOWN_KEY);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 1025), NVFP4_ERR_INVALID_VALUE);

    /* statistics */
    nvfp4_stats *st = (nvfp4_stats *)(void *)out_a;
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_context_get_stats(ctx, NULL));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_context_get_stats(NULL, st));
    /* size smaller than the size field itself (only the size field is ours to set) */
    arm();
    size_t tiny = sizeof(size_t) - 1;
    memcpy(out_a, &tiny, sizeof tiny);
    assert_int_equal(nvfp4_context_get_stats(ctx, st), NVFP4_ERR_INVALID_VALUE);
    assert_memory_equal(out_a, &tiny, sizeof tiny);
    for (size_t i = sizeof tiny; i < BUF; i++)
        assert_int_equal(out_a[i], CANARY);
    /* collection off → STATE; on but nothing ran → STATE */
    arm();
    size_t full = sizeof(nvfp4_stats);
    memcpy(out_a, &full, sizeof full);
    assert_int_equal(nvfp4_context_get_stats(ctx, st), NVFP4_ERR_STATE);
    for (size_t i = sizeof full; i < BUF; i++)
        assert_int_equal(out_a[i], CANARY);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, 1), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_stats(ctx, st), NVFP4_ERR_STATE);
    for (size_t i = sizeof full; i < BUF; i++)
        assert_int_equal(out_a[i], CANARY);
    nvfp4_context_destroy(ctx);
}

/* ---- formats.h -------------------------------------------------------------------------------- */

static void test_formats_errors(void **state)
{
    (void)state;
    uint8_t *o = out_a;
    /* e8m0 */
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_e8m0_from_amax(1.0f, NVFP4_E8M0_RCEIL, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_e8m0_from_amax(1.0f, 2, o));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_e8m0_from_amax(1.0f, -1, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e8m0_from_amax(-1.0f, NVFP4_E8M0_RCEIL, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e8m0_from_amax(-FLT_MIN, NVFP4_E8M0_FLOOR, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e8m0_from_amax(NAN, NVFP4_E8M0_RCEIL, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e8m0_from_amax(INFINITY, NVFP4_E8M0_FLOOR, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e8m0_from_amax(-INFINITY, NVFP4_E8M0_RCEIL, o));

    /* array conversions: from */
    for (int which = 0; which < 2; which++) {
        nvfp4_status (*fn)(int32_t, const void *, int64_t, uint8_t *) =
            which ? nvfp4_e4m3_from_array : nvfp4_e2m1_from_array;
        EXPECT(NVFP4_ERR_NULL_POINTER, fn(NVFP4_DTYPE_F32, NULL, 4, o));
        EXPECT(NVFP4_ERR_NULL_POINTER, fn(NVFP4_DTYPE_F32, src_f32, 4, NULL));
        EXPECT(NVFP4_ERR_UNKNOWN_KEY, fn(3, src_f32, 4, o));
        EXPECT(NVFP4_ERR_UNKNOWN_KEY, fn(-1, src_f32, 4, o));
        EXPECT(NVFP4_ERR_SHAPE, fn(NVFP4_DTYPE_F16, src_u16, -1, o));
        EXPECT(NVFP4_ERR_SHAPE, fn(NVFP4_DTYPE_F32, src_f32, INT64_MIN, o));
        EXPECT(NVFP4_OK, fn(NVFP4_DTYPE_F32, NULL, 0, NULL)); /* n = 0: nothing to read or write */
        EXPECT(NVFP4_OK, fn(NVFP4_DTYPE_BF16, src_u16, 0, o));
    }
    /* to */
    for (int which = 0; which < 2; which++) {
        nvfp4_status (*fn)(const uint8_t *, int64_t, int32_t, void *) =
            which ? nvfp4_e4m3_to_array : nvfp4_e2m1_to_array;
        const uint8_t in[4] = {1, 2, 3, 4};
        EXPECT(NVFP4_ERR_NULL_POINTER, fn(NULL, 4, NVFP4_DTYPE_F32, o));
        EXPECT(NVFP4_ERR_NULL_POINTER, fn(in, 4, NVFP4_DTYPE_F32, NULL));
        EXPECT(NVFP4_ERR_UNKNOWN_KEY, fn(in, 4, 7, o));
        EXPECT(NVFP4_ERR_SHAPE, fn(in, -4, NVFP4_DTYPE_F16, o));
        EXPECT(NVFP4_OK, fn(NULL, 0, NVFP4_DTYPE_F32, NULL));
    }
    /* pack / unpack */
    uint8_t codes[8] = {1, 2, 3, 4, 5, 6, 7, 0x1F};
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_e2m1_pack(NULL, 4, o));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_e2m1_pack(codes, 4, NULL));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_e2m1_pack(codes, -2, o));
    EXPECT(NVFP4_ERR_INVALID_VALUE, nvfp4_e2m1_pack(codes, 8, o)); /* 0x1F has its high nibble set */
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_e2m1_unpack(NULL, 4, o));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_e2m1_unpack(codes, 4, NULL));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_e2m1_unpack(codes, -1, o));
}

/* ---- quantize.h: quantizer --------------------------------------------------------------------- */

static void test_quantizer_errors(void **state)
{
    (void)state;
    nvfp4_quantizer *const sentinel = (nvfp4_quantizer *)(void *)out_b;
    nvfp4_quantizer *q = sentinel;
    assert_int_equal(nvfp4_quantizer_create(NULL, NVFP4_METHOD_MAX), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_quantizer_create(&q, -1), NVFP4_ERR_UNKNOWN_KEY);
    assert_ptr_equal(q, sentinel);
    assert_int_equal(nvfp4_quantizer_create(&q, 1000), NVFP4_ERR_UNKNOWN_KEY);
    assert_ptr_equal(q, sentinel);
    q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);

    assert_int_equal(nvfp4_quantizer_set_int(NULL, NVFP4_Q_FORMAT, 0), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_quantizer_set_float(NULL, NVFP4_Q_GLOBAL_SCALE, 1.0), NVFP4_ERR_NULL_POINTER);
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantizer_get_int(NULL, NVFP4_Q_FORMAT, &out_i64));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantizer_get_int(q, NVFP4_Q_FORMAT, NULL));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantizer_get_float(NULL, NVFP4_Q_GLOBAL_SCALE, &out_dbl));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantizer_get_float(q, NVFP4_Q_GLOBAL_SCALE, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_quantizer_get_int(q, 12345, &out_i64));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_quantizer_get_float(q, 12345, &out_dbl));
    assert_int_equal(nvfp4_quantizer_set_int(q, 12345, 0), NVFP4_ERR_UNKNOWN_KEY);
    assert_int_equal(nvfp4_quantizer_set_float(q, 12345, 0.0), NVFP4_ERR_UNKNOWN_KEY);

    /* out-of-range values change nothing */
    static const struct {
        int32_t key;
        int64_t bad;
    } bad_ints[] = {
        {NVFP4_Q_FORMAT, 2},           {NVFP4_Q_FORMAT, -1},       {NVFP4_Q_SCALE_LAYOUT, 2},
        {NVFP4_Q_NONFINITE, 2},        {NVFP4_Q_RECIPE, 2},        {NVFP4_Q_E8M0_MODE, 2},
        {NVFP4_Q_4OVER6_RULE, 3},      {NVFP4_Q_4OVER6_E4M3_MAX, 300}, {NVFP4_Q_4OVER6_E4M3_MAX, 0},
        {NVFP4_Q_CJSO_ITERATIONS, 0},  {NVFP4_Q_CJSO_ITERATIONS, 1001}, {NVFP4_Q_SWEEP_RADIUS, 0},
        {NVFP4_Q_SWEEP_RADIUS, 65},    {NVFP4_Q_FORMAT, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        int64_t before = 0, after = 0;
        assert_int_equal(nvfp4_quantizer_get_int(q, bad_ints[i].key, &before), NVFP4_OK);
        nvfp4_status s = nvfp4_quantizer_set_int(q, bad_ints[i].key, bad_ints[i].bad);
        if (s != NVFP4_ERR_INVALID_VALUE)
            fprintf(stderr, "set_int(%d, %lld) = %s\n", (int)bad_ints[i].key, (long long)bad_ints[i].bad,
                    nvfp4_status_string(s));
        assert_int_equal(s, NVFP4_ERR_INVALID_VALUE);
        assert_int_equal(nvfp4_quantizer_get_int(q, bad_ints[i].key, &after), NVFP4_OK);
        assert_int_equal(after, before);
    }
    static const struct {
        int32_t key;
        double bad;
    } bad_flts[] = {
        {NVFP4_Q_GLOBAL_SCALE, -1.0},     {NVFP4_Q_GLOBAL_SCALE, NAN},       {NVFP4_Q_GLOBAL_SCALE, INFINITY},
        {NVFP4_Q_GLOBAL_SCALE, 1e300},    {NVFP4_Q_DSS_WINDOW_LO, 0.0},      {NVFP4_Q_DSS_WINDOW_LO, 1.5},
        {NVFP4_Q_DSS_WINDOW_LO, NAN},     {NVFP4_Q_DSS_WINDOW_HI, 0.5},      {NVFP4_Q_DSS_WINDOW_HI, 17.0},
        {NVFP4_Q_DSS_WINDOW_HI, INFINITY}, {NVFP4_Q_CJSO_TOLERANCE, -1e-9},  {NVFP4_Q_CJSO_TOLERANCE, 1.0},
        {NVFP4_Q_CJSO_TOLERANCE, NAN},
    };
    for (size_t i = 0; i < sizeof bad_flts / sizeof bad_flts[0]; i++) {
        double before = 0, after = 0;
        assert_int_equal(nvfp4_quantizer_get_float(q, bad_flts[i].key, &before), NVFP4_OK);
        nvfp4_status s = nvfp4_quantizer_set_float(q, bad_flts[i].key, bad_flts[i].bad);
        if (s != NVFP4_ERR_INVALID_VALUE)
            fprintf(stderr, "set_float(%d, %g) = %s\n", (int)bad_flts[i].key, bad_flts[i].bad,
                    nvfp4_status_string(s));
        assert_int_equal(s, NVFP4_ERR_INVALID_VALUE);
        assert_int_equal(nvfp4_quantizer_get_float(q, bad_flts[i].key, &after), NVFP4_OK);
        assert_true(after == before);
    }

    /* importance weights */
    float h[4] = {1, 1, 1, 1};
    assert_int_equal(nvfp4_quantizer_set_importance(NULL, h, 4), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_quantizer_set_importance(q, NULL, 4), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, -1), NVFP4_ERR_SHAPE);
    h[2] = -1.0f;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, 4), NVFP4_ERR_INVALID_VALUE);
    h[2] = NAN;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, 4), NVFP4_ERR_INVALID_VALUE);
    h[2] = INFINITY;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, 4), NVFP4_ERR_INVALID_VALUE);
    nvfp4_quantizer_destroy(q);
}

/* ---- quantize.h: nvfp4_quantize ---------------------------------------------------------------- */

static void test_quantize_errors(void **state)
{
    (void)state;
    nvfp4_context *ctx = NULL;
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    const int32_t F = NVFP4_DTYPE_F32;
    const float *x = src_f32;
    uint8_t *c = out_a, *s = out_b;
    float *g = &out_gs;

    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(NULL, q, F, x, 4, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(ctx, NULL, F, x, 4, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(ctx, q, F, NULL, 4, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, NULL, s, g));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, c, NULL, g));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, c, s, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_quantize(ctx, q, 3, x, 4, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_quantize(ctx, q, -1, x, 4, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 0, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, -1, 32, 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 4, 0, 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 4, -16, 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 4, 32, 31, c, s, g)); /* ld < cols */
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 4, 32, -1, c, s, g));
    /* sizes that overflow int64 / size_t: must be rejected before anything is read */
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, INT64_MAX / 2, 16, 16, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 1ll << 32, 1ll << 32, 1ll << 32, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 2, INT64_MAX, INT64_MAX, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 1, INT64_MAX - 3, INT64_MAX - 3, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 3, 16, INT64_MAX / 2, c, s, g));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, NVFP4_DTYPE_BF16, src_u16, INT64_MAX / 4, 8, 8, c, s, g));

    /* non-finite input under the strict (default) policy, in every dtype and position */
    float bad[64];
    memcpy(bad, src_f32, sizeof bad);
    static const float nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 3; k++)
        for (int pos = 0; pos < 64; pos += 21) {
            memcpy(bad, src_f32, sizeof bad);
            bad[pos] = nonfinite[k];
            EXPECT(NVFP4_ERR_NONFINITE, nvfp4_quantize(ctx, q, F, bad, 2, 32, 32, c, s, g));
        }
    uint16_t bad16[64];
    memcpy(bad16, src_u16, sizeof bad16);
    bad16[40] = 0x7C00; /* f16 +Inf */
    EXPECT(NVFP4_ERR_NONFINITE, nvfp4_quantize(ctx, q, NVFP4_DTYPE_F16, bad16, 2, 32, 32, c, s, g));
    bad16[40] = 0xFE00; /* f16 NaN */
    EXPECT(NVFP4_ERR_NONFINITE, nvfp4_quantize(ctx, q, NVFP4_DTYPE_F16, bad16, 2, 32, 32, c, s, g));
    bad16[40] = 0x7FC0; /* bf16 NaN */
    EXPECT(NVFP4_ERR_NONFINITE, nvfp4_quantize(ctx, q, NVFP4_DTYPE_BF16, bad16, 2, 32, 32, c, s, g));
    bad16[40] = 0xFF80; /* bf16 −Inf */
    EXPECT(NVFP4_ERR_NONFINITE, nvfp4_quantize(ctx, q, NVFP4_DTYPE_BF16, bad16, 2, 32, 32, c, s, g));
    /* but a NaN in the gap between rows (ld > cols) is never read */
    memcpy(bad, src_f32, sizeof bad);
    bad[30] = NAN;
    bad[31] = INFINITY;
    arm();
    assert_int_equal(nvfp4_quantize(ctx, q, F, bad, 2, 30, 32, c, s, g), NVFP4_OK);

    /* importance weights for another column count */
    float h[16];
    for (int i = 0; i < 16; i++)
        h[i] = 1.0f;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, 16), NVFP4_OK);
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, c, s, g));
    assert_int_equal(nvfp4_quantizer_set_importance(q, NULL, 0), NVFP4_OK);

    /* MXFP4 has no global scale to supply */
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, NVFP4_FORMAT_MXFP4), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, 0.5), NVFP4_OK);
    EXPECT(NVFP4_ERR_UNSUPPORTED, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, c, s, g));
    nvfp4_quantizer_destroy(q);

    /* MXFP4 or the ModelOpt recipe with a method other than MAX: refused when set or when run */
    for (int32_t m = NVFP4_METHOD_4OVER6; m <= NVFP4_METHOD_SWEEP; m++) {
        for (int which = 0; which < 2; which++) {
            q = NULL;
            assert_int_equal(nvfp4_quantizer_create(&q, m), NVFP4_OK);
            nvfp4_status st = which ? nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, NVFP4_FORMAT_MXFP4)
                                    : nvfp4_quantizer_set_int(q, NVFP4_Q_RECIPE, NVFP4_RECIPE_MODELOPT);
            if (st == NVFP4_OK)
                EXPECT(NVFP4_ERR_UNSUPPORTED, nvfp4_quantize(ctx, q, F, x, 4, 32, 32, c, s, g));
            else
                assert_true(st == NVFP4_ERR_UNSUPPORTED || st == NVFP4_ERR_INVALID_VALUE);
            nvfp4_quantizer_destroy(q);
        }
    }
    nvfp4_context_destroy(ctx);
}

/* ---- quantize.h: dequantize -------------------------------------------------------------------- */

static void test_dequantize_errors(void **state)
{
    (void)state;
    nvfp4_context *ctx = NULL;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    uint8_t codes[4 * 16], scales[128 * 4];
    memset(codes, 0x21, sizeof codes);
    memset(scales, 0x38, sizeof scales);
    void *d = out_a;
    const int32_t F = NVFP4_DTYPE_F32;
    const int32_t N = NVFP4_FORMAT_NVFP4, L = NVFP4_LAYOUT_LINEAR;

    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize(NULL, codes, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize(ctx, NULL, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize(ctx, codes, NULL, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, 32, F, NULL, 32));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, 32, 5, d, 32));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize(ctx, codes, scales, 1.0f, 0, 32, F, d, 32));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, -32, F, d, 32));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, 32, F, d, 16));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize(ctx, codes, scales, 1.0f, INT64_MAX / 2, 32, F, d, 32));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, INT64_MAX, F, d, INT64_MAX));
    /* bad global scales */
    EXPECT(NVFP4_ERR_INVALID_SCALE, nvfp4_dequantize(ctx, codes, scales, -1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_INVALID_SCALE, nvfp4_dequantize(ctx, codes, scales, NAN, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_INVALID_SCALE, nvfp4_dequantize(ctx, codes, scales, INFINITY, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_INVALID_SCALE, nvfp4_dequantize(ctx, codes, scales, -INFINITY, 4, 32, F, d, 32));
    /* every scale byte ≥ 0x7F, in the last block, is refused with nothing written */
    for (int b = 0x7F; b <= 0xFF; b++) {
        scales[4 * 2 - 1] = (uint8_t)b;
        EXPECT(NVFP4_ERR_INVALID_SCALE, nvfp4_dequantize(ctx, codes, scales, 1.0f, 4, 32, F, d, 32));
        EXPECT(NVFP4_ERR_INVALID_SCALE,
               nvfp4_dequantize_v2(ctx, N, L, codes, scales, 1.0f, 4, 32, NVFP4_DTYPE_BF16, d, 32));
    }
    scales[4 * 2 - 1] = 0x38;
    arm();
    assert_int_equal(nvfp4_dequantize(ctx, codes, scales, 0.0f, 4, 32, F, d, 32), NVFP4_OK); /* 0 is allowed */
    /* v2 */
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_dequantize_v2(ctx, 2, L, codes, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_dequantize_v2(ctx, N, 2, codes, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_dequantize_v2(ctx, N, L, codes, scales, 1.0f, 4, 32, -1, d, 32));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize_v2(NULL, N, L, codes, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_dequantize_v2(ctx, N, L, NULL, scales, 1.0f, 4, 32, F, d, 32));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_dequantize_v2(ctx, N, L, codes, scales, 1.0f, -4, 32, F, d, 32));
    /* a bad byte in the 128×4 layout (at the position of scale (3, 1)) */
    uint8_t sw[128 * 4];
    memset(sw, 0x38, sizeof sw);
    sw[3 * 16 + 1] = 0x7F;
    EXPECT(NVFP4_ERR_INVALID_SCALE,
           nvfp4_dequantize_v2(ctx, N, NVFP4_LAYOUT_128X4, codes, sw, 1.0f, 4, 32, F, d, 32));
    /* MXFP4: 0xFF (E8M0 NaN) is the invalid byte; 0x7F (1.0) and 0x80.. are fine */
    memset(scales, 0x7F, sizeof scales);
    arm();
    assert_int_equal(nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_MXFP4, L, codes, scales, 1.0f, 4, 32, F, d, 32),
                     NVFP4_OK);
    scales[3] = 0xFF;
    EXPECT(NVFP4_ERR_INVALID_SCALE,
           nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_MXFP4, L, codes, scales, 1.0f, 4, 32, F, d, 32));
    nvfp4_context_destroy(ctx);
}

/* ---- quantize.h: sizes and layout ------------------------------------------------------------- */

static void test_size_and_layout_errors(void **state)
{
    (void)state;
    int64_t *o = &out_i64;
    const int32_t N = NVFP4_FORMAT_NVFP4, L = NVFP4_LAYOUT_LINEAR, S = NVFP4_LAYOUT_128X4;
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_codes_size(N, 1, 16, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_codes_size(2, 1, 16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(N, 0, 16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(N, 1, 0, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(N, -1, 16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(N, INT64_MAX, INT64_MAX, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(N, 1, INT64_MAX, o)); /* rounding up to 16 overflows */
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_codes_size(NVFP4_FORMAT_MXFP4, 1ll << 40, 1ll << 40, o));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scales_size(N, L, 1, 16, NULL));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_scales_size(-1, L, 1, 16, o));
    EXPECT(NVFP4_ERR_UNKNOWN_KEY, nvfp4_scales_size(N, 2, 1, 16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_size(N, L, 0, 16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_size(N, S, 1, -16, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_size(N, S, INT64_MAX, 16, o)); /* round_up(rows, 128) overflows */
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_size(N, L, INT64_MAX / 2, 64, o));

    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scale_offset_128x4(5, 2, 8, NULL));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(-1, 2, 8, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(5, -1, 8, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(5, 8, 8, o)); /* k ≥ scale_cols */
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(5, 0, 0, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(5, 0, -4, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(INT64_MAX, 0, 4, o));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scale_offset_128x4(0, INT64_MAX - 1, INT64_MAX, o));

    uint8_t lin[64];
    memset(lin, 1, sizeof lin);
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scales_swizzle(NULL, 4, 4, out_a));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scales_swizzle(lin, 4, 4, NULL));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_swizzle(lin, 0, 4, out_a));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_swizzle(lin, 4, 0, out_a));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_swizzle(lin, -4, 4, out_a));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_swizzle(lin, INT64_MAX, 4, out_a));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_swizzle(lin, 4, INT64_MAX, out_a));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scales_unswizzle(NULL, 4, 4, out_a));
    EXPECT(NVFP4_ERR_NULL_POINTER, nvfp4_scales_unswizzle(lin, 4, 4, NULL));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_unswizzle(lin, 4, -1, out_a));
    EXPECT(NVFP4_ERR_SHAPE, nvfp4_scales_unswizzle(lin, 1ll << 40, 1ll << 40, out_a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_errors),        cmocka_unit_test(test_formats_errors),
        cmocka_unit_test(test_quantizer_errors),   cmocka_unit_test(test_quantize_errors),
        cmocka_unit_test(test_dequantize_errors),  cmocka_unit_test(test_size_and_layout_errors),
    };
    return cmocka_run_group_tests_name("errors", tests, setup, NULL);
}
