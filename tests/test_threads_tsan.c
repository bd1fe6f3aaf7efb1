/* test_threads_tsan.c - the thread-safety contract (core.h, quantize.h, rounder.h) exercised
 * from many threads at once (issue 6).
 *
 * In every build it checks that concurrent use gives exactly the single-threaded results; built
 * with -Db_sanitize=thread (tests/run_sanitizers.sh tsan) ThreadSanitizer also reports any data
 * race inside the library. Cases:
 *  - threads each with their own context and quantizer (every method), repeatedly;
 *  - threads sharing one read-only quantizer (with importance weights) and one read-only input,
 *    each with its own context;
 *  - the same with NVFP4_CTX_THREADS > 1 inside each context (nested parallelism);
 *  - concurrent dequantisation of one shared read-only tensor (both layouts);
 *  - distinct rounders on distinct threads (results must equal a serial run with the same
 *    context thread count: rounder.h promises determinism per thread count);
 *  - the pure functions (conversions, sizes, offsets, status strings) from all threads.
 */
#include <pthread.h>
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

#define NT 8      /* concurrent threads */
#define ROWS 48
#define COLS 200
#define NMETH 6
#define REPS 3

static float g_x[ROWS * COLS];
static float g_h[COLS];
static int64_t g_ncodes, g_nscales[2];

typedef struct {
    uint8_t codes[ROWS * ((COLS + 15) / 16) * 8];
    uint8_t scales[2][4096];
    float gs[2];
    int ok;
} result;

static result g_ref[NMETH][2];      /* [method][importance]: linear and 128×4 */

static void fill(void)
{
    uint32_t s = 12345u;
    for (int i = 0; i < ROWS * COLS; i++) {
        s = s * 1664525u + 1013904223u;
        float u = (float)(s >> 8) / 16777216.0f - 0.5f;
        g_x[i] = u * (float)(1 + (i / COLS) % 5) * ((i % 97) == 0 ? 40.0f : 1.0f);
    }
    for (int i = 0; i < COLS; i++)
        g_h[i] = 0.25f + (float)(i % 4);
    assert_int_equal(nvfp4_codes_size(NVFP4_FORMAT_NVFP4, ROWS, COLS, &g_ncodes), NVFP4_OK);
    for (int l = 0; l < 2; l++)
        assert_int_equal(nvfp4_scales_size(NVFP4_FORMAT_NVFP4, l, ROWS, COLS, &g_nscales[l]), NVFP4_OK);
    assert_true(g_ncodes <= (int64_t)sizeof g_ref[0][0].codes && g_nscales[1] <= 4096);
}

static nvfp4_quantizer *make_q(int method, int imp)
{
    nvfp4_quantizer *q = NULL;
    if (nvfp4_quantizer_create(&q, method) != NVFP4_OK)
        return NULL;
    if (imp && nvfp4_quantizer_set_importance(q, g_h, COLS) != NVFP4_OK) {
        nvfp4_quantizer_destroy(q);
        return NULL;
    }
    return q;
}

/* Quantises g_x with q in both layouts into r (the layout parameter is set on a private copy of
 * the settings: the caller passes one quantizer per layout when it is shared). */
static int run_both(nvfp4_context *ctx, nvfp4_quantizer *q_lin, nvfp4_quantizer *q_sw, result *r)
{
    if (nvfp4_quantize(ctx, q_lin, NVFP4_DTYPE_F32, g_x, ROWS, COLS, COLS, r->codes, r->scales[0], &r->gs[0]) !=
        NVFP4_OK)
        return 0;
    uint8_t codes2[sizeof r->codes];
    if (nvfp4_quantize(ctx, q_sw, NVFP4_DTYPE_F32, g_x, ROWS, COLS, COLS, codes2, r->scales[1], &r->gs[1]) !=
        NVFP4_OK)
        return 0;
    return memcmp(codes2, r->codes, (size_t)g_ncodes) == 0;
}

static int same(const result *a, const result *b)
{
    return memcmp(a->codes, b->codes, (size_t)g_ncodes) == 0 &&
           memcmp(a->scales[0], b->scales[0], (size_t)g_nscales[0]) == 0 &&
           memcmp(a->scales[1], b->scales[1], (size_t)g_nscales[1]) == 0 && memcmp(a->gs, b->gs, sizeof a->gs) == 0;
}

static int setup(void **state)
{
    (void)state;
    fill();
    nvfp4_context *ctx;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    for (int m = 0; m < NMETH; m++)
        for (int imp = 0; imp < 2; imp++) {
            nvfp4_quantizer *a = make_q(m, imp), *b = make_q(m, imp);
            if (!a || !b) {
                nvfp4_quantizer_destroy(a);
                nvfp4_quantizer_destroy(b);
                continue;
            }
            assert_int_equal(nvfp4_quantizer_set_int(b, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
            g_ref[m][imp].ok = run_both(ctx, a, b, &g_ref[m][imp]);
            assert_true(g_ref[m][imp].ok);
            nvfp4_quantizer_destroy(a);
            nvfp4_quantizer_destroy(b);
        }
    nvfp4_context_destroy(ctx);
    return 0;
}

/* ---- own context, own quantizers ---------------------------------------------------------- */

typedef struct {
    int id, inner_threads;
    const nvfp4_quantizer *shared_lin, *shared_sw; /* NULL: make our own */
    int method, imp;
    int failures;
} job;

static void *own_worker(void *p)
{
    job *j = p;
    nvfp4_context *ctx;
    if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK) {
        j->failures++;
        return NULL;
    }
    nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, j->inner_threads);
    nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, 1);
    for (int rep = 0; rep < REPS; rep++)
        for (int k = 0; k < NMETH; k++) {
            int m = (j->id + k) % NMETH, imp = (j->id + rep) & 1;
            if (!g_ref[m][imp].ok)
                continue;
            nvfp4_quantizer *a = make_q(m, imp), *b = make_q(m, imp);
            result r;
            if (!a || !b || nvfp4_quantizer_set_int(b, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4) != NVFP4_OK ||
                !run_both(ctx, a, b, &r) || !same(&r, &g_ref[m][imp]))
                j->failures++;
            nvfp4_stats st;
            memset(&st, 0, sizeof st);
            st.size = sizeof st;
            if (nvfp4_context_get_stats(ctx, &st) != NVFP4_OK || st.blocks != ROWS * ((COLS + 15) / 16))
                j->failures++;
            nvfp4_quantizer_destroy(a);
            nvfp4_quantizer_destroy(b);
        }
    nvfp4_context_destroy(ctx);
    return NULL;
}

static void *shared_worker(void *p)
{
    job *j = p;
    nvfp4_context *ctx;
    if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK) {
        j->failures++;
        return NULL;
    }
    nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, j->inner_threads);
    for (int rep = 0; rep < REPS; rep++) {
        result r;
        /* nvfp4_quantize takes the quantizer const: sharing it read-only is allowed */
        if (!run_both(ctx, (nvfp4_quantizer *)(uintptr_t)j->shared_lin, (nvfp4_quantizer *)(uintptr_t)j->shared_sw,
                      &r) ||
            !same(&r, &g_ref[j->method][j->imp]))
            j->failures++;
        /* read-only getters on the shared quantizer are fine too */
        int64_t v;
        if (nvfp4_quantizer_get_int(j->shared_lin, NVFP4_Q_SCALE_LAYOUT, &v) != NVFP4_OK || v != 0)
            j->failures++;
    }
    nvfp4_context_destroy(ctx);
    return NULL;
}

static void run_threads(void *(*fn)(void *), job *jobs, int n)
{
    pthread_t th[NT];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, &jobs[i]), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < n; i++) {
        if (jobs[i].failures)
            print_error("thread %d: %d results differ from the single-threaded run\n", i, jobs[i].failures);
        assert_int_equal(jobs[i].failures, 0);
    }
}

static void test_own_handles(void **state)
{
    (void)state;
    job jobs[NT];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < NT; i++) {
        jobs[i].id = i;
        jobs[i].inner_threads = 1;
    }
    run_threads(own_worker, jobs, NT);
}

static void test_own_handles_inner_threads(void **state)
{
    (void)state;
    job jobs[4];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 4; i++) {
        jobs[i].id = i;
        jobs[i].inner_threads = 2 + i % 3; /* NVFP4_CTX_THREADS > 1 inside each context */
    }
    run_threads(own_worker, jobs, 4);
}

static void test_shared_quantizer(void **state)
{
    (void)state;
    for (int m = 0; m < NMETH; m++) {
        if (!g_ref[m][1].ok)
            continue;
        nvfp4_quantizer *a = make_q(m, 1), *b = make_q(m, 1);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(nvfp4_quantizer_set_int(b, NVFP4_Q_SCALE_LAYOUT, NVFP4_LAYOUT_128X4), NVFP4_OK);
        job jobs[NT];
        memset(jobs, 0, sizeof jobs);
        for (int i = 0; i < NT; i++) {
            jobs[i].id = i;
            jobs[i].inner_threads = 1 + (i % 3 == 2) * 2;
            jobs[i].shared_lin = a;
            jobs[i].shared_sw = b;
            jobs[i].method = m;
            jobs[i].imp = 1;
        }
        run_threads(shared_worker, jobs, NT);
        nvfp4_quantizer_destroy(a);
        nvfp4_quantizer_destroy(b);
    }
}

/* ---- shared read-only tensor, concurrent dequantisation ---------------------------------- */

typedef struct {
    int inner, failures;
    const float *ref;
} djob;

static void *deq_worker(void *p)
{
    djob *j = p;
    nvfp4_context *ctx;
    if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK) {
        j->failures++;
        return NULL;
    }
    nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, j->inner);
    float *out = malloc(sizeof(float) * ROWS * COLS);
    for (int rep = 0; rep < REPS && out; rep++)
        for (int l = 0; l < 2; l++) {
            const result *r = &g_ref[NVFP4_METHOD_MAX][0];
            if (nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_NVFP4, l, r->codes, r->scales[l], r->gs[l], ROWS, COLS,
                                    NVFP4_DTYPE_F32, out, COLS) != NVFP4_OK ||
                memcmp(out, j->ref, sizeof(float) * ROWS * COLS) != 0)
                j->failures++;
        }
    free(out);
    nvfp4_context_destroy(ctx);
    return NULL;
}

static void test_shared_dequantize(void **state)
{
    (void)state;
    nvfp4_context *ctx;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    float *ref = malloc(sizeof(float) * ROWS * COLS);
    assert_non_null(ref);
    const result *r = &g_ref[NVFP4_METHOD_MAX][0];
    assert_int_equal(nvfp4_dequantize(ctx, r->codes, r->scales[0], r->gs[0], ROWS, COLS, NVFP4_DTYPE_F32, ref, COLS),
                     NVFP4_OK);
    nvfp4_context_destroy(ctx);
    djob jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i].inner = 1 + i % 3;
        jobs[i].failures = 0;
        jobs[i].ref = ref;
        assert_int_equal(pthread_create(&th[i], NULL, deq_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    free(ref);
}

/* ---- rounders ------------------------------------------------------------------------------ */

#define RO 8
#define RI 64

typedef struct {
    int method, inner, failures;
    uint8_t codes[RO * RI / 2], scales[RO * RI / 16];
    float gs;
} rjob;

static int round_once(int method, int inner, uint8_t *codes, uint8_t *scales, float *gs)
{
    nvfp4_context *ctx;
    nvfp4_rounder *r;
    int ok = 0;
    if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK)
        return 0;
    nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, inner);
    if (nvfp4_rounder_create(&r, method, RO, RI) == NVFP4_OK) {
        nvfp4_rounder_set_int(r, NVFP4_R_ITERATIONS, 40);
        ok = nvfp4_rounder_add_samples(r, ctx, NVFP4_DTYPE_F32, g_x, ROWS, COLS) == NVFP4_OK &&
             nvfp4_rounder_run(r, ctx, NVFP4_DTYPE_F32, g_x + 5, COLS, codes, scales, gs) == NVFP4_OK;
        nvfp4_rounder_destroy(r);
    }
    nvfp4_context_destroy(ctx);
    return ok;
}

static void *rounder_worker(void *p)
{
    rjob *j = p;
    uint8_t c[sizeof j->codes], s[sizeof j->scales];
    float g;
    for (int rep = 0; rep < 2; rep++)
        if (!round_once(j->method, j->inner, c, s, &g) || memcmp(c, j->codes, sizeof c) != 0 ||
            memcmp(s, j->scales, sizeof s) != 0 || memcmp(&g, &j->gs, sizeof g) != 0)
            j->failures++;
    return NULL;
}

static void test_rounders(void **state)
{
    (void)state;
    rjob jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].method = i % 2 ? NVFP4_ROUNDER_GPTQ : NVFP4_ROUNDER_FAAR;
        jobs[i].inner = 1 + (i / 2) * 2;
        jobs[i].failures = 0;
        /* the serial reference with the same context thread count */
        assert_true(round_once(jobs[i].method, jobs[i].inner, jobs[i].codes, jobs[i].scales, &jobs[i].gs));
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, rounder_worker, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
}

/* ---- pure functions ------------------------------------------------------------------------- */

static void *pure_worker(void *p)
{
    int *bad = p;
    for (uint32_t i = 0; i < 65536; i++) {
        float f = nvfp4_f16_to_float((uint16_t)i);
        if ((i & 0x7C00u) != 0x7C00u && nvfp4_float_to_f16(f) != (uint16_t)i)
            (*bad)++;
        uint8_t b = (uint8_t)i;
        if ((b & 0x7F) != 0x7F && nvfp4_e4m3_from_float(nvfp4_e4m3_to_float(b)) != b)
            (*bad)++;
        if (nvfp4_e2m1_to_float(nvfp4_e2m1_from_float(nvfp4_e2m1_grid()[i & 15])) != nvfp4_e2m1_grid()[i & 15])
            (*bad)++;
        if (!nvfp4_status_string((nvfp4_status)(i % 20)))
            (*bad)++;
        int64_t off;
        if (nvfp4_scale_offset_128x4(i % 300, i % 7, 7, &off) != NVFP4_OK)
            (*bad)++;
    }
    return NULL;
}

static void test_pure_functions(void **state)
{
    (void)state;
    pthread_t th[NT];
    int bad[NT] = {0};
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pure_worker, &bad[i]), 0);
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_handles),      cmocka_unit_test(test_own_handles_inner_threads),
        cmocka_unit_test(test_shared_quantizer), cmocka_unit_test(test_shared_dequantize),
        cmocka_unit_test(test_rounders),         cmocka_unit_test(test_pure_functions),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
