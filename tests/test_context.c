/* test_context.c - version, status names, backends, contexts (parameters, allocator hooks, last
 * error message) and quantizer parameters: normal use and edge values. Error returns that must
 * leave outputs untouched are in test_errors.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvfp4/nvfp4.h"

#ifndef NVFP4_TEST_PROJECT_VERSION
#error "tests/meson.build passes meson.project_version() as NVFP4_TEST_PROJECT_VERSION"
#endif

static void test_version(void **state)
{
    (void)state;
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d.%d", NVFP4_VERSION_MAJOR, NVFP4_VERSION_MINOR, NVFP4_VERSION_PATCH);
    /* the header, the build system and the library agree */
    assert_string_equal(buf, NVFP4_TEST_PROJECT_VERSION);
    assert_string_equal(nvfp4_version_string(), NVFP4_TEST_PROJECT_VERSION);
    assert_int_equal(nvfp4_version_number(), NVFP4_VERSION_NUMBER);
    assert_int_equal(NVFP4_VERSION_NUMBER,
                     NVFP4_VERSION_MAJOR * 10000 + NVFP4_VERSION_MINOR * 100 + NVFP4_VERSION_PATCH);
}

static void test_status_strings(void **state)
{
    (void)state;
    static const char *const names[] = {
        "NVFP4_OK", "NVFP4_ERR_NULL_POINTER", "NVFP4_ERR_INVALID_VALUE", "NVFP4_ERR_UNKNOWN_KEY",
        "NVFP4_ERR_SHAPE", "NVFP4_ERR_NONFINITE", "NVFP4_ERR_INVALID_SCALE", "NVFP4_ERR_OUT_OF_MEMORY",
        "NVFP4_ERR_UNSUPPORTED", "NVFP4_ERR_CANCELLED", "NVFP4_ERR_BACKEND", "NVFP4_ERR_STATE",
        "NVFP4_ERR_NUMERICAL",
    };
    static const nvfp4_status codes[] = {
        NVFP4_OK, NVFP4_ERR_NULL_POINTER, NVFP4_ERR_INVALID_VALUE, NVFP4_ERR_UNKNOWN_KEY, NVFP4_ERR_SHAPE,
        NVFP4_ERR_NONFINITE, NVFP4_ERR_INVALID_SCALE, NVFP4_ERR_OUT_OF_MEMORY, NVFP4_ERR_UNSUPPORTED,
        NVFP4_ERR_CANCELLED, NVFP4_ERR_BACKEND, NVFP4_ERR_STATE, NVFP4_ERR_NUMERICAL,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(codes[i], (nvfp4_status)i); /* the numbers are fixed */
        assert_string_equal(nvfp4_status_string(codes[i]), names[i]);
    }
    static const nvfp4_status unknown[] = {-1, 13, 99, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = nvfp4_status_string(unknown[i]);
        assert_non_null(s);
        assert_string_equal(s, "NVFP4_ERR_UNKNOWN_STATUS");
    }
}

static void test_backends(void **state)
{
    (void)state;
    assert_int_equal(nvfp4_has_backend(NVFP4_BACKEND_CPU), 1);
    assert_int_equal(nvfp4_has_backend(-1), 0);
    assert_int_equal(nvfp4_has_backend(99), 0);
    nvfp4_context *ctx = NULL;
    int64_t v = -1;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_AUTO), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_BACKEND, &v), NVFP4_OK);
    assert_int_equal(v, nvfp4_has_backend(NVFP4_BACKEND_CUDA) ? NVFP4_BACKEND_CUDA : NVFP4_BACKEND_CPU);
    nvfp4_context_destroy(ctx);
    ctx = NULL;
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        nvfp4_context *keep = (nvfp4_context *)(void *)&v;
        ctx = keep;
        assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CUDA), NVFP4_ERR_UNSUPPORTED);
        assert_ptr_equal(ctx, keep);
    } else {
        assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CUDA), NVFP4_OK);
        assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_BACKEND, &v), NVFP4_OK);
        assert_int_equal(v, NVFP4_BACKEND_CUDA);
        nvfp4_context_destroy(ctx);
    }
    nvfp4_context_destroy(NULL); /* accepted */
}

static void test_context_params(void **state)
{
    (void)state;
    nvfp4_context *ctx = NULL;
    int64_t v = -1;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_non_null(ctx);
    /* defaults */
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &v), NVFP4_OK);
    assert_int_equal(v, 1);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_COLLECT_STATS, &v), NVFP4_OK);
    assert_int_equal(v, 0);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_BACKEND, &v), NVFP4_OK);
    assert_int_equal(v, NVFP4_BACKEND_CPU);
    /* set and read back */
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 7), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &v), NVFP4_OK);
    assert_int_equal(v, 7);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 1024), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 0), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &v), NVFP4_OK);
    assert_true(v >= 1 && v <= 1024); /* 0 resolves to the online CPUs */
    int64_t resolved = v;
    /* out of range: an error and no change */
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 1025), NVFP4_ERR_INVALID_VALUE);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, -1), NVFP4_ERR_INVALID_VALUE);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, INT64_MAX), NVFP4_ERR_INVALID_VALUE);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &v), NVFP4_OK);
    assert_int_equal(v, resolved);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, 1), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, 2), NVFP4_ERR_INVALID_VALUE);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, -1), NVFP4_ERR_INVALID_VALUE);
    assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_COLLECT_STATS, &v), NVFP4_OK);
    assert_int_equal(v, 1);
    /* read-only and unknown keys */
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_BACKEND, NVFP4_BACKEND_CPU), NVFP4_ERR_UNKNOWN_KEY);
    assert_int_equal(nvfp4_context_set_int(ctx, 99, 1), NVFP4_ERR_UNKNOWN_KEY);
    v = 12345;
    assert_int_equal(nvfp4_context_get_int(ctx, 99, &v), NVFP4_ERR_UNKNOWN_KEY);
    assert_int_equal(v, 12345);
    nvfp4_context_destroy(ctx);
}

/* ---- allocator hooks ------------------------------------------------------------------------ */

typedef struct {
    long allocs, frees, live, fail_after; /* fail_after < 0: never fail */
    int misaligned;
} counting;

static void *c_alloc(void *opaque, size_t size, size_t align)
{
    counting *c = opaque;
    if (c->fail_after >= 0 && c->allocs >= c->fail_after)
        return NULL;
    if (align == 0 || (align & (align - 1)) != 0 || align > 64)
        c->misaligned++;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 1) != 0)
        return NULL;
    c->allocs++;
    c->live++;
    return p;
}

static void c_free(void *opaque, void *ptr)
{
    counting *c = opaque;
    if (!ptr)
        return;
    c->frees++;
    c->live--;
    free(ptr);
}

static void test_allocator_hooks(void **state)
{
    (void)state;
    counting cnt = {0, 0, 0, -1, 0};
    nvfp4_allocator a = {sizeof(nvfp4_allocator), c_alloc, c_free, &cnt};
    nvfp4_context *ctx = NULL;
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a), NVFP4_OK);
    assert_true(cnt.allocs >= 1); /* the context itself comes from the hooks */
    long after_create = cnt.allocs;
    /* the allocator struct was copied: changing ours does not matter */
    memset(&a, 0, sizeof a);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 2), NVFP4_OK);
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
    float x[3 * 40];
    for (int i = 0; i < 3 * 40; i++)
        x[i] = (float)(i % 11) - 5.0f;
    uint8_t codes[3 * 24], scales[128 * 4];
    float gs;
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 3, 40, 40, codes, scales, &gs), NVFP4_OK);
    assert_true(cnt.allocs > after_create); /* the swizzle scratch came from the hooks too */
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
    assert_int_equal(cnt.live, 0);
    assert_int_equal(cnt.allocs, cnt.frees);
    assert_int_equal(cnt.misaligned, 0);
    /* NULL allocator means malloc/free */
    ctx = NULL;
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, NULL), NVFP4_OK);
    nvfp4_context_destroy(ctx);
}

/* Every allocation failing at the k-th call: each call either succeeds with correct output or
 * returns OUT_OF_MEMORY having written nothing, and nothing leaks. */
static void test_allocation_failures(void **state)
{
    (void)state;
    float x[5 * 40];
    for (int i = 0; i < 5 * 40; i++)
        x[i] = (float)((i * 37) % 23) - 11.0f;
    uint8_t want_c[5 * 24], want_s[128 * 4];
    float want_g;
    {
        nvfp4_context *ctx = NULL;
        nvfp4_quantizer *q = NULL;
        assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
        assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
        assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
        assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 5, 40, 40, want_c, want_s, &want_g), NVFP4_OK);
        nvfp4_quantizer_destroy(q);
        nvfp4_context_destroy(ctx);
    }
    int saw_oom = 0;
    for (long k = 0; k < 40; k++) {
        counting cnt = {0, 0, 0, -1, 0};
        nvfp4_allocator a = {sizeof(nvfp4_allocator), c_alloc, c_free, &cnt};
        nvfp4_context *ctx = (nvfp4_context *)(void *)&cnt;
        if (k == 0) {
            cnt.fail_after = 0;
            assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a), NVFP4_ERR_OUT_OF_MEMORY);
            assert_ptr_equal(ctx, (nvfp4_context *)(void *)&cnt); /* untouched */
            assert_int_equal(cnt.live, 0);
            continue;
        }
        assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &a), NVFP4_OK);
        for (int threads = 1; threads <= 2; threads++) {
            assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, threads), NVFP4_OK);
            nvfp4_quantizer *q = NULL;
            assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
            assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
            uint8_t c[5 * 24], s[128 * 4];
            float g = -3.0f;
            memset(c, 0xA5, sizeof c);
            memset(s, 0xA5, sizeof s);
            cnt.fail_after = cnt.allocs + (k - 1); /* allow k−1 more allocations */
            nvfp4_status st = nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 5, 40, 40, c, s, &g);
            if (st == NVFP4_ERR_OUT_OF_MEMORY) {
                saw_oom = 1;
                for (size_t i = 0; i < sizeof c; i++)
                    assert_int_equal(c[i], 0xA5);
                for (size_t i = 0; i < sizeof s; i++)
                    assert_int_equal(s[i], 0xA5);
                assert_true(g == -3.0f);
                assert_true(nvfp4_context_last_error_message(ctx)[0] != '\0');
            } else {
                assert_int_equal(st, NVFP4_OK);
                assert_memory_equal(c, want_c, sizeof c);
                assert_memory_equal(s, want_s, sizeof s);
                assert_true(g == want_g);
            }
            cnt.fail_after = -1;
            nvfp4_quantizer_destroy(q);
        }
        nvfp4_context_destroy(ctx);
        assert_int_equal(cnt.live, 0);
    }
    assert_true(saw_oom); /* the 128×4 scratch is allocated, so the first k fail */
}

static void test_last_error_message(void **state)
{
    (void)state;
    assert_non_null(nvfp4_context_last_error_message(NULL));
    nvfp4_context *ctx = NULL;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_string_equal(nvfp4_context_last_error_message(ctx), "");
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    float x[16] = {1.0f};
    uint8_t c[8], s[1];
    float g;
    assert_int_equal(nvfp4_quantize(ctx, q, 77, x, 1, 16, 16, c, s, &g), NVFP4_ERR_UNKNOWN_KEY);
    assert_true(strlen(nvfp4_context_last_error_message(ctx)) > 0);
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 1, 16, 16, c, s, &g), NVFP4_OK);
    assert_string_equal(nvfp4_context_last_error_message(ctx), "");
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
}

/* ---- quantizer parameters ------------------------------------------------------------------- */

static void test_quantizer_params(void **state)
{
    (void)state;
    nvfp4_quantizer *q = NULL;
    int64_t v = -1;
    double d = -1;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    static const struct {
        int32_t key;
        int64_t def, other;
    } ints[] = {
        {NVFP4_Q_FORMAT, NVFP4_FORMAT_NVFP4, NVFP4_FORMAT_MXFP4},
        {NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_LINEAR, NVFP4_LAYOUT_128X4},
        {NVFP4_Q_NONFINITE, NVFP4_NONFINITE_STRICT, NVFP4_NONFINITE_SATURATE},
        {NVFP4_Q_E8M0_MODE, NVFP4_E8M0_RCEIL, NVFP4_E8M0_FLOOR},
        {NVFP4_Q_4OVER6_RULE, NVFP4_RULE_MSE, NVFP4_RULE_ABSMAX},
        {NVFP4_Q_4OVER6_E4M3_MAX, 256, 448},
        {NVFP4_Q_CJSO_ITERATIONS, 8, 1000},
        {NVFP4_Q_SWEEP_RADIUS, 4, 64},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        assert_int_equal(nvfp4_quantizer_get_int(q, ints[i].key, &v), NVFP4_OK);
        assert_int_equal(v, ints[i].def);
        assert_int_equal(nvfp4_quantizer_set_int(q, ints[i].key, ints[i].other), NVFP4_OK);
        assert_int_equal(nvfp4_quantizer_get_int(q, ints[i].key, &v), NVFP4_OK);
        assert_int_equal(v, ints[i].other);
        assert_int_equal(nvfp4_quantizer_set_int(q, ints[i].key, ints[i].def), NVFP4_OK);
        /* the float setter does not take an integer key */
        assert_int_equal(nvfp4_quantizer_set_float(q, ints[i].key, 1.0), NVFP4_ERR_UNKNOWN_KEY);
        assert_int_equal(nvfp4_quantizer_get_float(q, ints[i].key, &d), NVFP4_ERR_UNKNOWN_KEY);
    }
    assert_int_equal(nvfp4_quantizer_get_int(q, NVFP4_Q_RECIPE, &v), NVFP4_OK);
    assert_int_equal(v, NVFP4_RECIPE_EXACT);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_RECIPE, NVFP4_RECIPE_MODELOPT), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_get_int(q, NVFP4_Q_RECIPE, &v), NVFP4_OK);
    assert_int_equal(v, NVFP4_RECIPE_MODELOPT);
    static const struct {
        int32_t key;
        double def, other;
    } flts[] = {
        {NVFP4_Q_GLOBAL_SCALE, 0.0, 0.25},
        {NVFP4_Q_DSS_WINDOW_LO, 0.5, 1.0},
        {NVFP4_Q_DSS_WINDOW_HI, 2.0, 16.0},
        {NVFP4_Q_CJSO_TOLERANCE, 1e-3, 0.0},
    };
    for (size_t i = 0; i < sizeof flts / sizeof flts[0]; i++) {
        assert_int_equal(nvfp4_quantizer_get_float(q, flts[i].key, &d), NVFP4_OK);
        assert_true(d == flts[i].def);
        assert_int_equal(nvfp4_quantizer_set_float(q, flts[i].key, flts[i].other), NVFP4_OK);
        assert_int_equal(nvfp4_quantizer_get_float(q, flts[i].key, &d), NVFP4_OK);
        assert_true(d == flts[i].other);
        assert_int_equal(nvfp4_quantizer_set_int(q, flts[i].key, 1), NVFP4_ERR_UNKNOWN_KEY);
        assert_int_equal(nvfp4_quantizer_get_int(q, flts[i].key, &v), NVFP4_ERR_UNKNOWN_KEY);
    }
    /* the global scale can be reset to "compute" */
    assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, 0.0), NVFP4_OK);
    /* importance weights: set, then clear */
    float h[4] = {1, 2, 0, 0.5f};
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, 4), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q, NULL, 0), NVFP4_OK);
    nvfp4_quantizer_destroy(q);
    nvfp4_quantizer_destroy(NULL);
    for (int32_t m = NVFP4_METHOD_MAX; m <= NVFP4_METHOD_SWEEP; m++) {
        q = NULL;
        assert_int_equal(nvfp4_quantizer_create(&q, m), NVFP4_OK);
        nvfp4_quantizer_destroy(q);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),          cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_backends),         cmocka_unit_test(test_context_params),
        cmocka_unit_test(test_allocator_hooks),  cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_last_error_message), cmocka_unit_test(test_quantizer_params),
    };
    return cmocka_run_group_tests_name("context", tests, NULL, NULL);
}
