/* test_error_table.c - docs/ERRORS.md as a test: for every public function, every status its
 * @retval list documents is provoked here once and compared exactly (issue 6).
 *
 * Each T(function, STATUS, call) below is one row of the table in docs/ERRORS.md. The test
 * records which (function, status) pairs it reached and, at the end, checks them against the
 * table below, which lists every documented pair: all must be reached except the ones marked
 * CUDA-only when this build has no CUDA backend. tests/check_error_table.py checks that this
 * list, the headers' @retval lines and docs/ERRORS.md agree.
 *
 * Out-of-memory rows use a context allocator that fails on request, and -Wl,--wrap for the
 * plain malloc/calloc/posix_memalign calls the library makes where there is no context.
 * Many of the argument errors are also tested, with canary checks, in test_errors.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvfp4/nvfp4.h"
#include "nvfp4/rounder.h"

/* ---- failing allocations ------------------------------------------------------------------ */

static int g_fail_plain; /* fail the next n plain allocations */

extern void *__real_malloc(size_t n);
extern void *__real_calloc(size_t n, size_t m);
extern int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
int __wrap_posix_memalign(void **p, size_t a, size_t n);

void *__wrap_malloc(size_t n)
{
    if (g_fail_plain > 0) {
        g_fail_plain--;
        return NULL;
    }
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m)
{
    if (g_fail_plain > 0) {
        g_fail_plain--;
        return NULL;
    }
    return __real_calloc(n, m);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (g_fail_plain > 0) {
        g_fail_plain--;
        return 12;
    }
    return __real_posix_memalign(p, a, n);
}

static int g_fail_hook; /* fail the context's next hook allocation */

static void *hook_alloc(void *o, size_t size, size_t align)
{
    (void)o;
    if (g_fail_hook) {
        g_fail_hook = 0;
        return NULL;
    }
    void *p = NULL;
    return __real_posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) == 0 ? p : NULL;
}
static void hook_free(void *o, void *p)
{
    (void)o;
    free(p);
}
static const nvfp4_allocator hooks = {sizeof(nvfp4_allocator), hook_alloc, hook_free, NULL};

/* ---- the table ------------------------------------------------------------------------------ */

typedef struct {
    const char *fn;
    nvfp4_status st;
    int cuda_only; /* 1: needs a usable CUDA device; 2: reachable only without one */
    int reached;
} row;

#define R(fn, st) {#fn, NVFP4_##st, 0, 0}
#define RC(fn, st) {#fn, NVFP4_##st, 1, 0}
#define RN(fn, st) {#fn, NVFP4_##st, 2, 0}

/* Every documented (function, status) pair, in header order (kept equal to docs/ERRORS.md). */
static row table[] = {
    R(nvfp4_context_create, OK), R(nvfp4_context_create, ERR_NULL_POINTER), R(nvfp4_context_create, ERR_UNKNOWN_KEY),
    RN(nvfp4_context_create, ERR_UNSUPPORTED), R(nvfp4_context_create, ERR_OUT_OF_MEMORY),
    R(nvfp4_context_create_ex, OK), R(nvfp4_context_create_ex, ERR_NULL_POINTER),
    R(nvfp4_context_create_ex, ERR_INVALID_VALUE), R(nvfp4_context_create_ex, ERR_UNKNOWN_KEY),
    RN(nvfp4_context_create_ex, ERR_UNSUPPORTED), R(nvfp4_context_create_ex, ERR_OUT_OF_MEMORY),
    R(nvfp4_context_set_int, OK), R(nvfp4_context_set_int, ERR_NULL_POINTER), R(nvfp4_context_set_int, ERR_UNKNOWN_KEY),
    R(nvfp4_context_set_int, ERR_INVALID_VALUE), R(nvfp4_context_set_int, ERR_UNSUPPORTED),
    R(nvfp4_context_get_int, OK), R(nvfp4_context_get_int, ERR_NULL_POINTER), R(nvfp4_context_get_int, ERR_UNKNOWN_KEY),
    RC(nvfp4_context_set_cuda_stream, OK), R(nvfp4_context_set_cuda_stream, ERR_NULL_POINTER),
    R(nvfp4_context_set_cuda_stream, ERR_UNSUPPORTED), RC(nvfp4_context_set_cuda_stream, ERR_OUT_OF_MEMORY),
    RC(nvfp4_context_get_cuda_stream, OK), R(nvfp4_context_get_cuda_stream, ERR_NULL_POINTER),
    R(nvfp4_context_get_cuda_stream, ERR_UNSUPPORTED),
    R(nvfp4_context_get_stats, OK), R(nvfp4_context_get_stats, ERR_NULL_POINTER),
    R(nvfp4_context_get_stats, ERR_INVALID_VALUE), R(nvfp4_context_get_stats, ERR_STATE),
    R(nvfp4_e8m0_from_amax, OK), R(nvfp4_e8m0_from_amax, ERR_NULL_POINTER), R(nvfp4_e8m0_from_amax, ERR_UNKNOWN_KEY),
    R(nvfp4_e8m0_from_amax, ERR_INVALID_VALUE),
    R(nvfp4_e2m1_from_array, OK), R(nvfp4_e2m1_from_array, ERR_NULL_POINTER), R(nvfp4_e2m1_from_array, ERR_UNKNOWN_KEY),
    R(nvfp4_e2m1_from_array, ERR_SHAPE),
    R(nvfp4_e4m3_from_array, OK), R(nvfp4_e4m3_from_array, ERR_NULL_POINTER), R(nvfp4_e4m3_from_array, ERR_UNKNOWN_KEY),
    R(nvfp4_e4m3_from_array, ERR_SHAPE),
    R(nvfp4_e2m1_to_array, OK), R(nvfp4_e2m1_to_array, ERR_NULL_POINTER), R(nvfp4_e2m1_to_array, ERR_UNKNOWN_KEY),
    R(nvfp4_e2m1_to_array, ERR_SHAPE),
    R(nvfp4_e4m3_to_array, OK), R(nvfp4_e4m3_to_array, ERR_NULL_POINTER), R(nvfp4_e4m3_to_array, ERR_UNKNOWN_KEY),
    R(nvfp4_e4m3_to_array, ERR_SHAPE),
    R(nvfp4_e2m1_pack, OK), R(nvfp4_e2m1_pack, ERR_NULL_POINTER), R(nvfp4_e2m1_pack, ERR_SHAPE),
    R(nvfp4_e2m1_pack, ERR_INVALID_VALUE),
    R(nvfp4_e2m1_unpack, OK), R(nvfp4_e2m1_unpack, ERR_NULL_POINTER), R(nvfp4_e2m1_unpack, ERR_SHAPE),
    R(nvfp4_quantizer_create, OK), R(nvfp4_quantizer_create, ERR_NULL_POINTER),
    R(nvfp4_quantizer_create, ERR_UNKNOWN_KEY), R(nvfp4_quantizer_create, ERR_OUT_OF_MEMORY),
    R(nvfp4_quantizer_create_ex, OK), R(nvfp4_quantizer_create_ex, ERR_NULL_POINTER),
    R(nvfp4_quantizer_create_ex, ERR_UNKNOWN_KEY), R(nvfp4_quantizer_create_ex, ERR_INVALID_VALUE),
    R(nvfp4_quantizer_create_ex, ERR_OUT_OF_MEMORY),
    R(nvfp4_quantizer_set_int, OK), R(nvfp4_quantizer_set_int, ERR_NULL_POINTER),
    R(nvfp4_quantizer_set_int, ERR_UNKNOWN_KEY), R(nvfp4_quantizer_set_int, ERR_INVALID_VALUE),
    R(nvfp4_quantizer_set_int, ERR_UNSUPPORTED),
    R(nvfp4_quantizer_set_float, OK), R(nvfp4_quantizer_set_float, ERR_NULL_POINTER),
    R(nvfp4_quantizer_set_float, ERR_UNKNOWN_KEY), R(nvfp4_quantizer_set_float, ERR_INVALID_VALUE),
    R(nvfp4_quantizer_get_int, OK), R(nvfp4_quantizer_get_int, ERR_NULL_POINTER),
    R(nvfp4_quantizer_get_int, ERR_UNKNOWN_KEY),
    R(nvfp4_quantizer_get_float, OK), R(nvfp4_quantizer_get_float, ERR_NULL_POINTER),
    R(nvfp4_quantizer_get_float, ERR_UNKNOWN_KEY),
    R(nvfp4_quantizer_set_importance, OK), R(nvfp4_quantizer_set_importance, ERR_NULL_POINTER),
    R(nvfp4_quantizer_set_importance, ERR_SHAPE), R(nvfp4_quantizer_set_importance, ERR_INVALID_VALUE),
    R(nvfp4_quantizer_set_importance, ERR_OUT_OF_MEMORY),
    R(nvfp4_quantize, OK), R(nvfp4_quantize, ERR_NULL_POINTER), R(nvfp4_quantize, ERR_UNKNOWN_KEY),
    R(nvfp4_quantize, ERR_SHAPE), R(nvfp4_quantize, ERR_NONFINITE), R(nvfp4_quantize, ERR_UNSUPPORTED),
    R(nvfp4_quantize, ERR_OUT_OF_MEMORY), RC(nvfp4_quantize, ERR_BACKEND),
    R(nvfp4_dequantize, OK), R(nvfp4_dequantize, ERR_NULL_POINTER), R(nvfp4_dequantize, ERR_UNKNOWN_KEY),
    R(nvfp4_dequantize, ERR_SHAPE), R(nvfp4_dequantize, ERR_INVALID_SCALE), RC(nvfp4_dequantize, ERR_BACKEND),
    R(nvfp4_dequantize_v2, OK), R(nvfp4_dequantize_v2, ERR_NULL_POINTER), R(nvfp4_dequantize_v2, ERR_UNKNOWN_KEY),
    R(nvfp4_dequantize_v2, ERR_SHAPE), R(nvfp4_dequantize_v2, ERR_INVALID_SCALE),
    R(nvfp4_dequantize_v2, ERR_OUT_OF_MEMORY), RC(nvfp4_dequantize_v2, ERR_BACKEND),
    R(nvfp4_codes_size, OK), R(nvfp4_codes_size, ERR_NULL_POINTER), R(nvfp4_codes_size, ERR_UNKNOWN_KEY),
    R(nvfp4_codes_size, ERR_SHAPE),
    R(nvfp4_scales_size, OK), R(nvfp4_scales_size, ERR_NULL_POINTER), R(nvfp4_scales_size, ERR_UNKNOWN_KEY),
    R(nvfp4_scales_size, ERR_SHAPE),
    R(nvfp4_scale_offset_128x4, OK), R(nvfp4_scale_offset_128x4, ERR_NULL_POINTER),
    R(nvfp4_scale_offset_128x4, ERR_SHAPE),
    R(nvfp4_scales_swizzle, OK), R(nvfp4_scales_swizzle, ERR_NULL_POINTER), R(nvfp4_scales_swizzle, ERR_SHAPE),
    R(nvfp4_scales_unswizzle, OK), R(nvfp4_scales_unswizzle, ERR_NULL_POINTER), R(nvfp4_scales_unswizzle, ERR_SHAPE),
    R(nvfp4_rounder_create, OK), R(nvfp4_rounder_create, ERR_NULL_POINTER), R(nvfp4_rounder_create, ERR_UNKNOWN_KEY),
    R(nvfp4_rounder_create, ERR_SHAPE), R(nvfp4_rounder_create, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_create_ex, OK), R(nvfp4_rounder_create_ex, ERR_NULL_POINTER),
    R(nvfp4_rounder_create_ex, ERR_UNKNOWN_KEY), R(nvfp4_rounder_create_ex, ERR_SHAPE),
    R(nvfp4_rounder_create_ex, ERR_INVALID_VALUE), R(nvfp4_rounder_create_ex, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_set_int, OK), R(nvfp4_rounder_set_int, ERR_NULL_POINTER), R(nvfp4_rounder_set_int, ERR_UNKNOWN_KEY),
    R(nvfp4_rounder_set_int, ERR_INVALID_VALUE), R(nvfp4_rounder_set_int, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_set_float, OK), R(nvfp4_rounder_set_float, ERR_NULL_POINTER),
    R(nvfp4_rounder_set_float, ERR_UNKNOWN_KEY), R(nvfp4_rounder_set_float, ERR_INVALID_VALUE),
    R(nvfp4_rounder_get_int, OK), R(nvfp4_rounder_get_int, ERR_NULL_POINTER), R(nvfp4_rounder_get_int, ERR_UNKNOWN_KEY),
    R(nvfp4_rounder_get_int, ERR_STATE),
    R(nvfp4_rounder_get_float, OK), R(nvfp4_rounder_get_float, ERR_NULL_POINTER),
    R(nvfp4_rounder_get_float, ERR_UNKNOWN_KEY), R(nvfp4_rounder_get_float, ERR_STATE),
    R(nvfp4_rounder_set_quantizer, OK), R(nvfp4_rounder_set_quantizer, ERR_NULL_POINTER),
    R(nvfp4_rounder_set_quantizer, ERR_UNSUPPORTED), R(nvfp4_rounder_set_quantizer, ERR_SHAPE),
    R(nvfp4_rounder_set_quantizer, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_set_progress, OK), R(nvfp4_rounder_set_progress, ERR_NULL_POINTER),
    R(nvfp4_rounder_add_samples, OK), R(nvfp4_rounder_add_samples, ERR_NULL_POINTER),
    R(nvfp4_rounder_add_samples, ERR_UNKNOWN_KEY), R(nvfp4_rounder_add_samples, ERR_SHAPE),
    R(nvfp4_rounder_add_samples, ERR_NONFINITE), R(nvfp4_rounder_add_samples, ERR_NUMERICAL),
    R(nvfp4_rounder_add_samples, ERR_STATE), RC(nvfp4_rounder_add_samples, ERR_UNSUPPORTED),
    R(nvfp4_rounder_add_samples, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_set_gram, OK), R(nvfp4_rounder_set_gram, ERR_NULL_POINTER), R(nvfp4_rounder_set_gram, ERR_SHAPE),
    R(nvfp4_rounder_set_gram, ERR_NONFINITE), R(nvfp4_rounder_set_gram, ERR_INVALID_VALUE),
    R(nvfp4_rounder_set_gram, ERR_OUT_OF_MEMORY),
    R(nvfp4_rounder_clear_calibration, OK), R(nvfp4_rounder_clear_calibration, ERR_NULL_POINTER),
    R(nvfp4_rounder_run, OK), R(nvfp4_rounder_run, ERR_NULL_POINTER), R(nvfp4_rounder_run, ERR_UNKNOWN_KEY),
    R(nvfp4_rounder_run, ERR_SHAPE), R(nvfp4_rounder_run, ERR_NONFINITE), R(nvfp4_rounder_run, ERR_STATE),
    R(nvfp4_rounder_run, ERR_NUMERICAL), R(nvfp4_rounder_run, ERR_CANCELLED), RC(nvfp4_rounder_run, ERR_UNSUPPORTED),
    R(nvfp4_rounder_run, ERR_OUT_OF_MEMORY),
};
#define NROWS ((int)(sizeof table / sizeof table[0]))

static int undocumented;

static void reach(const char *fn, nvfp4_status want, nvfp4_status got, int line)
{
    if (got != want)
        print_error("line %d: %s returned %s, expected %s\n", line, fn, nvfp4_status_string(got),
                    nvfp4_status_string(want));
    assert_int_equal(got, want);
    for (int i = 0; i < NROWS; i++)
        if (strcmp(table[i].fn, fn) == 0 && table[i].st == got) {
            table[i].reached++;
            return;
        }
    print_error("line %d: %s returned %s, which its documentation does not list\n", line, fn,
                nvfp4_status_string(got));
    undocumented++;
}

/* T(function, STATUS, arguments): calls function(arguments) and requires STATUS. */
#define T(fn, st, ...) reach(#fn, NVFP4_##st, fn(__VA_ARGS__), __LINE__)

static void test_core(void **state)
{
    (void)state;
    nvfp4_context *ctx = NULL, *c2 = NULL;
    T(nvfp4_context_create, OK, &ctx, NVFP4_BACKEND_CPU);
    T(nvfp4_context_create, ERR_NULL_POINTER, NULL, NVFP4_BACKEND_CPU);
    T(nvfp4_context_create, ERR_UNKNOWN_KEY, &c2, 7);
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        T(nvfp4_context_create, ERR_UNSUPPORTED, &c2, NVFP4_BACKEND_CUDA);
        T(nvfp4_context_create_ex, ERR_UNSUPPORTED, &c2, NVFP4_BACKEND_CUDA, &hooks);
    }
    g_fail_plain = 1; /* the default allocator's posix_memalign */
    T(nvfp4_context_create, ERR_OUT_OF_MEMORY, &c2, NVFP4_BACKEND_CPU);
    g_fail_plain = 0;

    T(nvfp4_context_create_ex, OK, &c2, NVFP4_BACKEND_AUTO, &hooks);
    nvfp4_context_destroy(c2);
    c2 = NULL;
    nvfp4_allocator bad = hooks;
    bad.size = 4;
    T(nvfp4_context_create_ex, ERR_NULL_POINTER, NULL, NVFP4_BACKEND_CPU, &hooks);
    T(nvfp4_context_create_ex, ERR_INVALID_VALUE, &c2, NVFP4_BACKEND_CPU, &bad);
    T(nvfp4_context_create_ex, ERR_UNKNOWN_KEY, &c2, -3, &hooks);
    g_fail_hook = 1;
    T(nvfp4_context_create_ex, ERR_OUT_OF_MEMORY, &c2, NVFP4_BACKEND_CPU, &hooks);
    assert_null(c2);

    int64_t v;
    T(nvfp4_context_set_int, OK, ctx, NVFP4_CTX_THREADS, 2);
    T(nvfp4_context_set_int, ERR_NULL_POINTER, NULL, NVFP4_CTX_THREADS, 2);
    T(nvfp4_context_set_int, ERR_UNKNOWN_KEY, ctx, NVFP4_CTX_BACKEND, 0); /* read-only */
    T(nvfp4_context_set_int, ERR_INVALID_VALUE, ctx, NVFP4_CTX_COLLECT_STATS, 2);
    T(nvfp4_context_set_int, ERR_UNSUPPORTED, ctx, NVFP4_CTX_CUDA_DEVICE, 0); /* CPU context */
    T(nvfp4_context_get_int, OK, ctx, NVFP4_CTX_BACKEND, &v);
    T(nvfp4_context_get_int, ERR_NULL_POINTER, ctx, NVFP4_CTX_BACKEND, NULL);
    T(nvfp4_context_get_int, ERR_UNKNOWN_KEY, ctx, 4242, &v);

    void *stream = (void *)&v;
    T(nvfp4_context_set_cuda_stream, ERR_NULL_POINTER, NULL, NULL);
    T(nvfp4_context_get_cuda_stream, ERR_NULL_POINTER, ctx, NULL);
    T(nvfp4_context_set_cuda_stream, ERR_UNSUPPORTED, ctx, NULL); /* a CPU context, either build */
    T(nvfp4_context_get_cuda_stream, ERR_UNSUPPORTED, ctx, &stream);
    assert_ptr_equal(stream, (void *)&v);

    nvfp4_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    T(nvfp4_context_get_stats, ERR_STATE, ctx, &st); /* collection is off */
    T(nvfp4_context_get_stats, ERR_NULL_POINTER, ctx, NULL);
    st.size = 1;
    T(nvfp4_context_get_stats, ERR_INVALID_VALUE, ctx, &st);
    st.size = sizeof st;
    nvfp4_quantizer *q;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    float x[32] = {1.0f, -2.0f, 3.0f};
    uint8_t codes[16], scales[2];
    float gs;
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, 1), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 1, 32, 32, codes, scales, &gs), NVFP4_OK);
    T(nvfp4_context_get_stats, OK, ctx, &st);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
}

static void test_formats(void **state)
{
    (void)state;
    uint8_t b = 0, codes[8] = {1, 2, 3, 4, 5, 6, 7, 8}, packed[4];
    float f[8] = {0};
    T(nvfp4_e8m0_from_amax, OK, 6.0f, NVFP4_E8M0_RCEIL, &b);
    T(nvfp4_e8m0_from_amax, ERR_NULL_POINTER, 6.0f, NVFP4_E8M0_FLOOR, NULL);
    T(nvfp4_e8m0_from_amax, ERR_UNKNOWN_KEY, 6.0f, 9, &b);
    T(nvfp4_e8m0_from_amax, ERR_INVALID_VALUE, -1.0f, NVFP4_E8M0_RCEIL, &b);

    T(nvfp4_e2m1_from_array, OK, NVFP4_DTYPE_F32, f, 8, codes);
    T(nvfp4_e2m1_from_array, ERR_NULL_POINTER, NVFP4_DTYPE_F32, NULL, 8, codes);
    T(nvfp4_e2m1_from_array, ERR_UNKNOWN_KEY, 3, f, 8, codes);
    T(nvfp4_e2m1_from_array, ERR_SHAPE, NVFP4_DTYPE_F32, f, -1, codes);
    T(nvfp4_e4m3_from_array, OK, NVFP4_DTYPE_BF16, f, 8, codes);
    T(nvfp4_e4m3_from_array, ERR_NULL_POINTER, NVFP4_DTYPE_F32, f, 8, NULL);
    T(nvfp4_e4m3_from_array, ERR_UNKNOWN_KEY, -1, f, 8, codes);
    T(nvfp4_e4m3_from_array, ERR_SHAPE, NVFP4_DTYPE_F32, f, INT64_MIN, codes);
    T(nvfp4_e2m1_to_array, OK, codes, 8, NVFP4_DTYPE_F16, f);
    T(nvfp4_e2m1_to_array, ERR_NULL_POINTER, codes, 8, NVFP4_DTYPE_F32, NULL);
    T(nvfp4_e2m1_to_array, ERR_UNKNOWN_KEY, codes, 8, 77, f);
    T(nvfp4_e2m1_to_array, ERR_SHAPE, codes, -8, NVFP4_DTYPE_F32, f);
    T(nvfp4_e4m3_to_array, OK, codes, 8, NVFP4_DTYPE_F32, f);
    T(nvfp4_e4m3_to_array, ERR_NULL_POINTER, NULL, 8, NVFP4_DTYPE_F32, f);
    T(nvfp4_e4m3_to_array, ERR_UNKNOWN_KEY, codes, 8, 3, f);
    T(nvfp4_e4m3_to_array, ERR_SHAPE, codes, -2, NVFP4_DTYPE_F32, f);

    T(nvfp4_e2m1_pack, OK, codes, 8, packed);
    T(nvfp4_e2m1_pack, ERR_NULL_POINTER, codes, 8, NULL);
    T(nvfp4_e2m1_pack, ERR_SHAPE, codes, -1, packed);
    codes[3] = 0x10;
    T(nvfp4_e2m1_pack, ERR_INVALID_VALUE, codes, 8, packed);
    T(nvfp4_e2m1_unpack, OK, packed, 8, codes);
    T(nvfp4_e2m1_unpack, ERR_NULL_POINTER, NULL, 8, codes);
    T(nvfp4_e2m1_unpack, ERR_SHAPE, packed, -1, codes);
}

static void test_quantizers(void **state)
{
    (void)state;
    nvfp4_quantizer *q = NULL, *q2 = NULL;
    int64_t v;
    double d;
    float h[4] = {1, 2, 3, 4};
    T(nvfp4_quantizer_create, OK, &q, NVFP4_METHOD_4OVER6);
    T(nvfp4_quantizer_create, ERR_NULL_POINTER, NULL, NVFP4_METHOD_MAX);
    T(nvfp4_quantizer_create, ERR_UNKNOWN_KEY, &q2, 99);
    g_fail_plain = 1;
    T(nvfp4_quantizer_create, ERR_OUT_OF_MEMORY, &q2, NVFP4_METHOD_MAX);
    g_fail_plain = 0;
    assert_null(q2);

    nvfp4_allocator bad = hooks;
    T(nvfp4_quantizer_create_ex, OK, &q2, NVFP4_METHOD_SWEEP, &hooks);
    nvfp4_quantizer_destroy(q2);
    q2 = NULL;
    T(nvfp4_quantizer_create_ex, OK, &q2, NVFP4_METHOD_MAX, NULL);
    nvfp4_quantizer_destroy(q2);
    q2 = NULL;
    T(nvfp4_quantizer_create_ex, ERR_NULL_POINTER, NULL, NVFP4_METHOD_MAX, &hooks);
    T(nvfp4_quantizer_create_ex, ERR_UNKNOWN_KEY, &q2, -1, &hooks);
    bad.size = sizeof bad - 1;
    T(nvfp4_quantizer_create_ex, ERR_INVALID_VALUE, &q2, NVFP4_METHOD_MAX, &bad);
    bad = hooks;
    bad.alloc = NULL;
    T(nvfp4_quantizer_create_ex, ERR_INVALID_VALUE, &q2, NVFP4_METHOD_MAX, &bad);
    bad = hooks;
    bad.free = NULL;
    T(nvfp4_quantizer_create_ex, ERR_INVALID_VALUE, &q2, NVFP4_METHOD_MAX, &bad);
    g_fail_hook = 1;
    T(nvfp4_quantizer_create_ex, ERR_OUT_OF_MEMORY, &q2, NVFP4_METHOD_MAX, &hooks);
    assert_null(q2);

    T(nvfp4_quantizer_set_int, OK, q, NVFP4_Q_4OVER6_RULE, NVFP4_RULE_MAE);
    T(nvfp4_quantizer_set_int, ERR_NULL_POINTER, NULL, NVFP4_Q_4OVER6_RULE, 0);
    T(nvfp4_quantizer_set_int, ERR_UNKNOWN_KEY, q, NVFP4_Q_GLOBAL_SCALE, 1); /* a float key */
    T(nvfp4_quantizer_set_int, ERR_INVALID_VALUE, q, NVFP4_Q_SCALE_LAYOUT, 2);
    T(nvfp4_quantizer_set_int, ERR_UNSUPPORTED, q, NVFP4_Q_FORMAT, NVFP4_FORMAT_MXFP4); /* MAX only */
    T(nvfp4_quantizer_set_float, OK, q, NVFP4_Q_GLOBAL_SCALE, 0.5);
    T(nvfp4_quantizer_set_float, ERR_NULL_POINTER, NULL, NVFP4_Q_GLOBAL_SCALE, 0.5);
    T(nvfp4_quantizer_set_float, ERR_UNKNOWN_KEY, q, NVFP4_Q_FORMAT, 0.0);
    T(nvfp4_quantizer_set_float, ERR_INVALID_VALUE, q, NVFP4_Q_DSS_WINDOW_HI, 17.0);
    T(nvfp4_quantizer_get_int, OK, q, NVFP4_Q_4OVER6_RULE, &v);
    T(nvfp4_quantizer_get_int, ERR_NULL_POINTER, q, NVFP4_Q_4OVER6_RULE, NULL);
    T(nvfp4_quantizer_get_int, ERR_UNKNOWN_KEY, q, NVFP4_Q_DSS_WINDOW_LO, &v);
    T(nvfp4_quantizer_get_float, OK, q, NVFP4_Q_DSS_WINDOW_LO, &d);
    T(nvfp4_quantizer_get_float, ERR_NULL_POINTER, NULL, NVFP4_Q_DSS_WINDOW_LO, &d);
    T(nvfp4_quantizer_get_float, ERR_UNKNOWN_KEY, q, NVFP4_Q_SWEEP_RADIUS, &d);

    T(nvfp4_quantizer_set_importance, OK, q, h, 4);
    T(nvfp4_quantizer_set_importance, ERR_NULL_POINTER, q, NULL, 4);
    T(nvfp4_quantizer_set_importance, ERR_SHAPE, q, h, -4);
    h[2] = -1.0f;
    T(nvfp4_quantizer_set_importance, ERR_INVALID_VALUE, q, h, 4);
    h[2] = 3.0f;
    g_fail_plain = 1;
    T(nvfp4_quantizer_set_importance, ERR_OUT_OF_MEMORY, q, h, 4);
    g_fail_plain = 0;
    nvfp4_quantizer_destroy(q);
}

static void test_quantize(void **state)
{
    (void)state;
    nvfp4_context *ctx;
    nvfp4_quantizer *q, *qmx;
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create(&qmx, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(qmx, NVFP4_Q_FORMAT, NVFP4_FORMAT_MXFP4), NVFP4_OK);
    float x[2 * 32], y[2 * 32];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 9) - 4.0f;
    uint8_t codes[64], scales[512], sw[512];
    float gs;
    T(nvfp4_quantize, OK, ctx, q, NVFP4_DTYPE_F32, x, 2, 32, 32, codes, scales, &gs);
    T(nvfp4_quantize, ERR_NULL_POINTER, ctx, q, NVFP4_DTYPE_F32, x, 2, 32, 32, codes, NULL, &gs);
    T(nvfp4_quantize, ERR_UNKNOWN_KEY, ctx, q, 5, x, 2, 32, 32, codes, scales, &gs);
    T(nvfp4_quantize, ERR_SHAPE, ctx, q, NVFP4_DTYPE_F32, x, 2, 32, 31, codes, scales, &gs);
    x[7] = 1.0f / 0.0f;
    T(nvfp4_quantize, ERR_NONFINITE, ctx, q, NVFP4_DTYPE_F32, x, 2, 32, 32, codes, scales, &gs);
    x[7] = 3.0f;
    /* MXFP4 has no global scale a caller could supply (the setter accepts it, quantize refuses) */
    assert_int_equal(nvfp4_quantizer_set_float(qmx, NVFP4_Q_GLOBAL_SCALE, 2.0), NVFP4_OK);
    T(nvfp4_quantize, ERR_UNSUPPORTED, ctx, qmx, NVFP4_DTYPE_F32, x, 2, 32, 32, codes, scales, &gs);
    g_fail_hook = 1;
    T(nvfp4_quantize, ERR_OUT_OF_MEMORY, ctx, q, NVFP4_DTYPE_F32, x, 2, 32, 32, codes, scales, &gs);

    T(nvfp4_dequantize, OK, ctx, codes, scales, gs, 2, 32, NVFP4_DTYPE_F32, y, 32);
    T(nvfp4_dequantize, ERR_NULL_POINTER, ctx, NULL, scales, gs, 2, 32, NVFP4_DTYPE_F32, y, 32);
    T(nvfp4_dequantize, ERR_UNKNOWN_KEY, ctx, codes, scales, gs, 2, 32, 9, y, 32);
    T(nvfp4_dequantize, ERR_SHAPE, ctx, codes, scales, gs, 0, 32, NVFP4_DTYPE_F32, y, 32);
    T(nvfp4_dequantize, ERR_INVALID_SCALE, ctx, codes, scales, -1.0f, 2, 32, NVFP4_DTYPE_F32, y, 32);

    assert_int_equal(nvfp4_scales_swizzle(scales, 2, 2, sw), NVFP4_OK);
    T(nvfp4_dequantize_v2, OK, ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, codes, sw, gs, 2, 32, NVFP4_DTYPE_BF16,
      y, 32);
    T(nvfp4_dequantize_v2, ERR_NULL_POINTER, ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, codes, sw, gs, 2, 32,
      NVFP4_DTYPE_F32, NULL, 32);
    T(nvfp4_dequantize_v2, ERR_UNKNOWN_KEY, ctx, NVFP4_FORMAT_NVFP4, 2, codes, sw, gs, 2, 32, NVFP4_DTYPE_F32, y, 32);
    T(nvfp4_dequantize_v2, ERR_SHAPE, ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, codes, sw, gs, 2, -32,
      NVFP4_DTYPE_F32, y, 32);
    uint8_t bad[512];
    memcpy(bad, sw, sizeof bad);
    bad[1] = 0x7F; /* (0,1) of the 128×4 tile */
    T(nvfp4_dequantize_v2, ERR_INVALID_SCALE, ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, codes, bad, gs, 2, 32,
      NVFP4_DTYPE_F32, y, 32);
    g_fail_hook = 1;
    T(nvfp4_dequantize_v2, ERR_OUT_OF_MEMORY, ctx, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, codes, sw, gs, 2, 32,
      NVFP4_DTYPE_F32, y, 32);

    int64_t n;
    T(nvfp4_codes_size, OK, NVFP4_FORMAT_MXFP4, 3, 33, &n);
    T(nvfp4_codes_size, ERR_NULL_POINTER, NVFP4_FORMAT_MXFP4, 3, 33, NULL);
    T(nvfp4_codes_size, ERR_UNKNOWN_KEY, 2, 3, 33, &n);
    T(nvfp4_codes_size, ERR_SHAPE, NVFP4_FORMAT_NVFP4, INT64_MAX, 33, &n);
    T(nvfp4_scales_size, OK, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, 3, 33, &n);
    T(nvfp4_scales_size, ERR_NULL_POINTER, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, 3, 33, NULL);
    T(nvfp4_scales_size, ERR_UNKNOWN_KEY, NVFP4_FORMAT_NVFP4, 5, 3, 33, &n);
    T(nvfp4_scales_size, ERR_SHAPE, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, INT64_MAX - 1, 33, &n);
    T(nvfp4_scale_offset_128x4, OK, 5, 2, 8, &n);
    assert_int_equal(n, 82); /* SPEC §6's check value */
    T(nvfp4_scale_offset_128x4, ERR_NULL_POINTER, 5, 2, 8, NULL);
    T(nvfp4_scale_offset_128x4, ERR_SHAPE, 5, 8, 8, &n);
    T(nvfp4_scales_swizzle, OK, scales, 2, 2, sw);
    T(nvfp4_scales_swizzle, ERR_NULL_POINTER, NULL, 2, 2, sw);
    T(nvfp4_scales_swizzle, ERR_SHAPE, scales, 2, 0, sw);
    T(nvfp4_scales_unswizzle, OK, sw, 2, 2, scales);
    T(nvfp4_scales_unswizzle, ERR_NULL_POINTER, sw, 2, 2, NULL);
    T(nvfp4_scales_unswizzle, ERR_SHAPE, sw, -2, 2, scales);

    nvfp4_quantizer_destroy(q);
    nvfp4_quantizer_destroy(qmx);
    nvfp4_context_destroy(ctx);
}

static int cancel_now(int64_t it, double loss, void *user)
{
    (void)it;
    (void)loss;
    (void)user;
    return 1;
}

static void test_rounder(void **state)
{
    (void)state;
    enum { O = 2, I = 16 };
    nvfp4_context *ctx;
    nvfp4_rounder *r = NULL, *r2 = NULL, *g = NULL;
    nvfp4_quantizer *q;
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
    T(nvfp4_rounder_create, OK, &r, NVFP4_ROUNDER_FAAR, O, I);
    T(nvfp4_rounder_create, ERR_NULL_POINTER, NULL, NVFP4_ROUNDER_FAAR, O, I);
    T(nvfp4_rounder_create, ERR_UNKNOWN_KEY, &r2, 2, O, I);
    T(nvfp4_rounder_create, ERR_SHAPE, &r2, NVFP4_ROUNDER_GPTQ, O, 0);
    g_fail_plain = 1;
    T(nvfp4_rounder_create, ERR_OUT_OF_MEMORY, &r2, NVFP4_ROUNDER_GPTQ, O, I);
    g_fail_plain = 0;
    assert_null(r2);

    nvfp4_allocator bad = hooks;
    T(nvfp4_rounder_create_ex, OK, &r2, NVFP4_ROUNDER_GPTQ, O, I, &hooks);
    nvfp4_rounder_destroy(r2);
    r2 = NULL;
    T(nvfp4_rounder_create_ex, ERR_NULL_POINTER, NULL, NVFP4_ROUNDER_FAAR, O, I, &hooks);
    T(nvfp4_rounder_create_ex, ERR_UNKNOWN_KEY, &r2, -1, O, I, &hooks);
    T(nvfp4_rounder_create_ex, ERR_SHAPE, &r2, NVFP4_ROUNDER_FAAR, -O, I, &hooks);
    bad.size = 0;
    T(nvfp4_rounder_create_ex, ERR_INVALID_VALUE, &r2, NVFP4_ROUNDER_FAAR, O, I, &bad);
    bad = hooks;
    bad.alloc = NULL;
    T(nvfp4_rounder_create_ex, ERR_INVALID_VALUE, &r2, NVFP4_ROUNDER_FAAR, O, I, &bad);
    g_fail_hook = 1;
    T(nvfp4_rounder_create_ex, ERR_OUT_OF_MEMORY, &r2, NVFP4_ROUNDER_FAAR, O, I, &hooks);
    assert_null(r2);

    int64_t v;
    double d;
    T(nvfp4_rounder_set_int, OK, r, NVFP4_R_ITERATIONS, 20);
    T(nvfp4_rounder_set_int, ERR_NULL_POINTER, NULL, NVFP4_R_ITERATIONS, 20);
    T(nvfp4_rounder_set_int, ERR_UNKNOWN_KEY, r, NVFP4_R_LOSS_FINAL, 0);
    T(nvfp4_rounder_set_int, ERR_INVALID_VALUE, r, NVFP4_R_STAGE2_RADIUS, 33);
    g_fail_plain = 1;
    T(nvfp4_rounder_set_int, ERR_OUT_OF_MEMORY, r, NVFP4_R_SCALE_METHOD, NVFP4_METHOD_4OVER6);
    g_fail_plain = 0;
    T(nvfp4_rounder_set_float, OK, r, NVFP4_R_LAMBDA, 0.5);
    T(nvfp4_rounder_set_float, ERR_NULL_POINTER, NULL, NVFP4_R_LAMBDA, 0.5);
    T(nvfp4_rounder_set_float, ERR_UNKNOWN_KEY, r, NVFP4_R_ITERATIONS, 1.0);
    T(nvfp4_rounder_set_float, ERR_INVALID_VALUE, r, NVFP4_R_ADAM_BETA1, 1.0);
    T(nvfp4_rounder_get_int, OK, r, NVFP4_R_SAMPLES, &v);
    T(nvfp4_rounder_get_int, ERR_NULL_POINTER, r, NVFP4_R_SAMPLES, NULL);
    T(nvfp4_rounder_get_int, ERR_UNKNOWN_KEY, r, NVFP4_R_LAMBDA, &v);
    T(nvfp4_rounder_get_int, ERR_STATE, r, NVFP4_R_ROWS_FALLBACK, &v); /* no run yet */
    T(nvfp4_rounder_get_float, OK, r, NVFP4_R_LAMBDA, &d);
    T(nvfp4_rounder_get_float, ERR_NULL_POINTER, NULL, NVFP4_R_LAMBDA, &d);
    T(nvfp4_rounder_get_float, ERR_UNKNOWN_KEY, r, 7777, &d);
    T(nvfp4_rounder_get_float, ERR_STATE, r, NVFP4_R_LOSS_FINAL, &d);

    float h[I + 1];
    for (int i = 0; i <= I; i++)
        h[i] = 1.0f;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, I), NVFP4_OK);
    T(nvfp4_rounder_set_quantizer, OK, r, q);
    T(nvfp4_rounder_set_quantizer, ERR_NULL_POINTER, r, NULL);
    g_fail_plain = 2; /* the copy and its weights: either failing is OUT_OF_MEMORY */
    T(nvfp4_rounder_set_quantizer, ERR_OUT_OF_MEMORY, r, q);
    g_fail_plain = 0;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, I + 1), NVFP4_OK);
    T(nvfp4_rounder_set_quantizer, ERR_SHAPE, r, q);
    assert_int_equal(nvfp4_quantizer_set_importance(q, NULL, 0), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
    T(nvfp4_rounder_set_quantizer, ERR_UNSUPPORTED, r, q);
    nvfp4_quantizer_destroy(q);
    T(nvfp4_rounder_set_progress, OK, r, NULL, NULL);
    T(nvfp4_rounder_set_progress, ERR_NULL_POINTER, NULL, cancel_now, NULL);

    float X[8 * I], W[O * I], H[I * I];
    for (int i = 0; i < 8 * I; i++)
        X[i] = (float)((i * 7) % 11) - 5.0f;
    for (int i = 0; i < O * I; i++)
        W[i] = (float)((i * 5) % 13) / 4.0f - 1.5f;
    uint8_t codes[O * 8], scales[O];
    float gs;
    T(nvfp4_rounder_run, ERR_STATE, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs); /* no calibration */
    T(nvfp4_rounder_add_samples, OK, r, ctx, NVFP4_DTYPE_F32, X, 8, I);
    T(nvfp4_rounder_add_samples, ERR_NULL_POINTER, r, NULL, NVFP4_DTYPE_F32, X, 8, I);
    T(nvfp4_rounder_add_samples, ERR_UNKNOWN_KEY, r, ctx, 3, X, 8, I);
    T(nvfp4_rounder_add_samples, ERR_SHAPE, r, ctx, NVFP4_DTYPE_F32, X, 0, I);
    X[5] = 0.0f / 0.0f;
    T(nvfp4_rounder_add_samples, ERR_NONFINITE, r, ctx, NVFP4_DTYPE_F32, X, 8, I);
    X[5] = 2e19f; /* its square alone passes FLT_MAX: the float32 Gram matrix would overflow */
    T(nvfp4_rounder_add_samples, ERR_NUMERICAL, r, ctx, NVFP4_DTYPE_F32, X, 8, I);
    X[5] = 1.0f;
    g_fail_hook = 1;
    T(nvfp4_rounder_add_samples, ERR_OUT_OF_MEMORY, r, ctx, NVFP4_DTYPE_F32, X, 8, I);

    T(nvfp4_rounder_run, OK, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);
    T(nvfp4_rounder_get_int, OK, r, NVFP4_R_ROWS_FALLBACK, &v);
    T(nvfp4_rounder_get_float, OK, r, NVFP4_R_LOSS_FINAL, &d);
    T(nvfp4_rounder_run, ERR_NULL_POINTER, r, ctx, NVFP4_DTYPE_F32, W, I, NULL, scales, &gs);
    T(nvfp4_rounder_run, ERR_UNKNOWN_KEY, r, ctx, -1, W, I, codes, scales, &gs);
    T(nvfp4_rounder_run, ERR_SHAPE, r, ctx, NVFP4_DTYPE_F32, W, I - 1, codes, scales, &gs);
    W[3] = 1.0f / 0.0f;
    T(nvfp4_rounder_run, ERR_NONFINITE, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);
    W[3] = 0.25f;
    assert_int_equal(nvfp4_rounder_set_progress(r, cancel_now, NULL), NVFP4_OK);
    T(nvfp4_rounder_run, ERR_CANCELLED, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);
    assert_int_equal(nvfp4_rounder_set_progress(r, NULL, NULL), NVFP4_OK);
    g_fail_hook = 1;
    T(nvfp4_rounder_run, ERR_OUT_OF_MEMORY, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);

    /* Gram matrices */
    for (int i = 0; i < I; i++)
        for (int j = 0; j < I; j++)
            H[i * I + j] = i == j ? 2.0f : 0.0f;
    T(nvfp4_rounder_set_gram, ERR_NULL_POINTER, r, NULL, I, I);
    T(nvfp4_rounder_set_gram, ERR_SHAPE, r, H, I - 1, I);
    T(nvfp4_rounder_clear_calibration, OK, r);
    T(nvfp4_rounder_clear_calibration, ERR_NULL_POINTER, NULL);
    g_fail_plain = 1; /* no calibration state yet: set_gram allocates it */
    T(nvfp4_rounder_set_gram, ERR_OUT_OF_MEMORY, r, H, I, I);
    g_fail_plain = 0;
    T(nvfp4_rounder_set_gram, OK, r, H, I, I);
    T(nvfp4_rounder_add_samples, ERR_STATE, r, ctx, NVFP4_DTYPE_F32, X, 8, I); /* a Gram matrix was set */
    H[1] = 1.0f; /* H[0][1] != H[1][0] */
    T(nvfp4_rounder_set_gram, ERR_INVALID_VALUE, r, H, I, I);
    H[1] = 1.0f / 0.0f;
    T(nvfp4_rounder_set_gram, ERR_NONFINITE, r, H, I, I);
    H[1] = 0.0f;

    /* GPTQ needs a positive definite damped H: an indefinite one is NUMERICAL */
    T(nvfp4_rounder_create, OK, &g, NVFP4_ROUNDER_GPTQ, O, I);
    assert_int_equal(nvfp4_rounder_set_float(g, NVFP4_R_DAMPING, 0.0), NVFP4_OK);
    for (int i = 0; i < I; i++)
        for (int j = 0; j < I; j++)
            H[i * I + j] = i == j ? 1.0f : (abs(i - j) == 1 ? 1.0f : 0.0f); /* eigenvalues down to 1 − 2cos(π/17) < 0 */
    T(nvfp4_rounder_set_gram, OK, g, H, I, I);
    T(nvfp4_rounder_run, ERR_NUMERICAL, g, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);
    /* loss terms beyond float32: H near FLT_MAX with weights of order 1 */
    for (int i = 0; i < I; i++)
        for (int j = 0; j < I; j++)
            H[i * I + j] = i == j ? 1e38f : 0.0f;
    T(nvfp4_rounder_set_gram, OK, r, H, I, I);
    T(nvfp4_rounder_run, ERR_NUMERICAL, r, ctx, NVFP4_DTYPE_F32, W, I, codes, scales, &gs);

    nvfp4_rounder_destroy(g);
    nvfp4_rounder_destroy(r);
    nvfp4_context_destroy(ctx);
}

/* The pairs that need a CUDA context, where a device is usable (the GPU machine; skipped here
 * otherwise): the stream calls, the backend state's allocation through the hooks, a device
 * ordinal no machine has for NVFP4_ERR_BACKEND (the calls fail entering the backend, before
 * any pointer is used), and the rounder's refusal of a CUDA context. */
static void test_cuda_rows(void **state)
{
    (void)state;
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        printf("no usable CUDA device: the %s pairs are not applicable\n", "CUDA-only");
        return;
    }
    nvfp4_context *g = NULL, *h = NULL;
    void *stream = NULL;
    T(nvfp4_context_create, OK, &g, NVFP4_BACKEND_CUDA);
    T(nvfp4_context_set_cuda_stream, OK, g, NULL);
    T(nvfp4_context_get_cuda_stream, OK, g, &stream);
    assert_null(stream);
    T(nvfp4_context_create_ex, OK, &h, NVFP4_BACKEND_CUDA, &hooks);
    g_fail_hook = 1; /* the backend state is allocated on first use */
    T(nvfp4_context_set_cuda_stream, ERR_OUT_OF_MEMORY, h, NULL);
    g_fail_hook = 0;
    nvfp4_context_destroy(h);

    enum { O = 2, I = 16 };
    float x[O * I], w[O * I], gs = 1.0f;
    uint8_t codes[O * I / 2], scales[O], lin[O];
    for (int i = 0; i < O * I; i++)
        x[i] = (float)(i % 7) - 3.0f;
    memset(scales, 0x38, sizeof scales);
    memset(lin, 0x38, sizeof lin);
    memset(codes, 0x11, sizeof codes);
    nvfp4_rounder *r = NULL;
    assert_int_equal(nvfp4_rounder_create(&r, NVFP4_ROUNDER_GPTQ, O, I), NVFP4_OK);
    T(nvfp4_rounder_add_samples, ERR_UNSUPPORTED, r, g, NVFP4_DTYPE_F32, x, O, I);
    T(nvfp4_rounder_run, ERR_UNSUPPORTED, r, g, NVFP4_DTYPE_F32, x, I, codes, scales, &gs);
    nvfp4_rounder_destroy(r);

    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(g, NVFP4_CTX_CUDA_DEVICE, 1000), NVFP4_OK); /* no such device */
    T(nvfp4_quantize, ERR_BACKEND, g, q, NVFP4_DTYPE_F32, x, O, I, I, codes, scales, &gs);
    T(nvfp4_dequantize, ERR_BACKEND, g, codes, lin, 1.0f, O, I, NVFP4_DTYPE_F32, w, I);
    T(nvfp4_dequantize_v2, ERR_BACKEND, g, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, codes, lin, 1.0f, O, I,
      NVFP4_DTYPE_F32, w, I);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(g);
}

static void test_table_complete(void **state)
{
    (void)state;
    int missing = 0, cuda = nvfp4_has_backend(NVFP4_BACKEND_CUDA);
    for (int i = 0; i < NROWS; i++) {
        if (table[i].reached || (table[i].cuda_only == 1 && !cuda) || (table[i].cuda_only == 2 && cuda))
            continue;
        print_error("not reached: %s -> %s\n", table[i].fn, nvfp4_status_string(table[i].st));
        missing++;
    }
    int reached = 0, skipped = 0;
    for (int i = 0; i < NROWS; i++) {
        reached += table[i].reached > 0;
        skipped += !table[i].reached && ((table[i].cuda_only == 1 && !cuda) || (table[i].cuda_only == 2 && cuda));
    }
    printf("error table: %d of %d documented (function, status) pairs reached; %d pairs not applicable "
           "here (CUDA-only without a device, or CPU-only with one); %d undocumented statuses seen\n",
           reached, NROWS, skipped, undocumented);
    assert_int_equal(missing, 0);
    assert_int_equal(undocumented, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core),     cmocka_unit_test(test_formats), cmocka_unit_test(test_quantizers),
        cmocka_unit_test(test_quantize), cmocka_unit_test(test_rounder), cmocka_unit_test(test_cuda_rows),
        cmocka_unit_test(test_table_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
