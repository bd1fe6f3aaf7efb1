/* test_alloc_fail.c - allocation-failure injection (issue 6, SQLite-style).
 *
 * Every allocation a call makes is failed in turn: the allocations of a successful call are
 * counted first, then for k = 0 .. n-1 the call is repeated with the k-th allocation failing.
 * Each time the call must return NVFP4_ERR_OUT_OF_MEMORY, leave its outputs untouched (canary
 * fill), leak nothing (live allocation count back to where it was), and leave its handles in a
 * state where the same call, without injection, gives the reference result again.
 *
 * Two kinds of allocation are injected:
 *  - allocator hooks: the context's (nvfp4_context_create_ex with a counting allocator) and the
 *    handles' (nvfp4_quantizer_create_ex, nvfp4_rounder_create_ex with the same allocator);
 *  - plain malloc/calloc/posix_memalign, which the plain constructors' handles use
 *    (nvfp4_quantizer_create, nvfp4_quantizer_set_importance, the rounder's handle and
 *    calibration state). This test is linked with -Wl,--wrap=malloc,... (tests/meson.build),
 *    so those calls in libnvfp4.a reach the __wrap_ functions below.
 * Every handle call is run both ways. For the _ex handles each run (the counting run and every
 * injected one) must also make no plain allocation and no plain free at all: everything goes
 * through the hooks. test_hooks_only checks the same for a whole embedder session.
 *
 * Set NVFP4_ALLOC_SITES=<file> to have the distinct call sites reached (return addresses as
 * offsets into this executable) written out; tests/alloc_sites.sh maps them to source lines.
 */
#include <execinfo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "nvfp4/nvfp4.h"
#include "nvfp4/rounder.h"

/* ---- injection state ----------------------------------------------------------------------- */

static int g_armed;      /* count (and maybe fail) allocations while set */
static long g_count;     /* allocations seen while armed */
static long g_fail_at;   /* index to fail, or -1 */
static long g_failed;    /* failures injected */
static long g_live_hook; /* live allocations through the hooks */
static long g_live_plain;/* live plain allocations (all of this executable's, library and test) */
static long g_plain_calls;/* plain allocations and non-NULL frees while armed */
static long g_hook_calls; /* hook allocations while armed */

/* Distinct call sites that reached an allocator while armed, each as the offsets (into this
 * executable) of the three frames above the allocator: tests/alloc_sites.sh maps them to source
 * lines and keeps the first frame outside the allocation helpers. */
#define MAX_SITES 512
static char g_sites[MAX_SITES][64];
static int g_nsites;
extern char __executable_start;

__attribute__((noinline)) static void note_site(int skip)
{
    void *bt[12];
    int n = backtrace(bt, 12);
    char key[64];
    int k = 0;
    for (int i = skip; i < skip + 3 && i < n; i++)
        k += snprintf(key + k, sizeof key - (size_t)k, "%s0x%lx", i > skip ? " " : "",
                      (unsigned long)((char *)bt[i] - &__executable_start - 1));
    for (int i = 0; i < g_nsites; i++)
        if (strcmp(g_sites[i], key) == 0)
            return;
    if (g_nsites < MAX_SITES)
        memcpy(g_sites[g_nsites++], key, sizeof key);
}

/* Returns 1 if this allocation is to fail. skip: frames between backtrace() and the caller. */
__attribute__((noinline)) static int inject(int skip)
{
    if (!g_armed)
        return 0;
    long k = g_count++;
    note_site(skip);
    if (k == g_fail_at) {
        g_failed++;
        return 1;
    }
    return 0;
}

extern void *__real_malloc(size_t n);
extern void *__real_calloc(size_t n, size_t m);
extern void __real_free(void *p);
extern int __real_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void __wrap_free(void *p);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

void *__wrap_malloc(size_t n)
{
    g_plain_calls += g_armed;
    if (inject(3))
        return NULL;
    void *p = __real_malloc(n);
    if (p)
        g_live_plain++;
    return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
    g_plain_calls += g_armed;
    if (inject(3))
        return NULL;
    void *p = __real_calloc(n, m);
    if (p)
        g_live_plain++;
    return p;
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    g_plain_calls += g_armed;
    if (inject(3))
        return 12; /* ENOMEM */
    int r = __real_posix_memalign(p, align, n);
    if (r == 0)
        g_live_plain++;
    return r;
}

void __wrap_free(void *p)
{
    if (p) {
        g_live_plain--;
        g_plain_calls += g_armed;
    }
    __real_free(p);
}

/* The context hooks: aligned memory, counted. */
static void *hook_alloc(void *opaque, size_t size, size_t align)
{
    (void)opaque;
    /* frames: note_site, inject, hook_alloc, then nvfp4i_alloc/nvfp4i_calloc (unless the compiler
     * turned the call into a jump) and the call site */
    g_hook_calls += g_armed;
    if (inject(3))
        return NULL;
    void *p = NULL;
    if (__real_posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) != 0)
        return NULL;
    g_live_hook++;
    return p;
}

static void hook_free(void *opaque, void *p)
{
    (void)opaque;
    if (p) {
        g_live_hook--;
        __real_free(p);
    }
}

static const nvfp4_allocator hooks = {sizeof(nvfp4_allocator), hook_alloc, hook_free, NULL};

static long live(void) { return g_live_hook + g_live_plain; }

/* ---- the generic driver -------------------------------------------------------------------- */

typedef struct op {
    const char *name;
    void *st;
    void (*reset)(void *st);                 /* restore inputs/handles and canary-fill outputs */
    nvfp4_status (*run)(void *st);           /* the call under test */
    void (*untouched)(void *st);             /* asserts outputs/state are as reset() left them */
    void (*record)(void *st);                /* after the counting run: keep the reference */
    void (*same)(void *st);                  /* after a clean re-run: equal to the reference */
    void (*cleanup)(void *st);               /* releases what a successful run created (may be NULL) */
    int hooks_only;                          /* every allocation must go through the hooks */
} op;

/* For a hooks_only op: the run just made no plain allocation or free, and used the hooks. */
static void check_hooks_only(const op *o, long k)
{
    if (!o->hooks_only)
        return;
    if (g_plain_calls != 0 || g_hook_calls == 0)
        print_error("%s: run %ld made %ld plain allocations/frees and %ld through the hooks\n", o->name, k,
                    g_plain_calls, g_hook_calls);
    assert_int_equal(g_plain_calls, 0);
    assert_true(g_hook_calls > 0);
}

static long total_points, total_calls;

static void inject_all(const op *o)
{
    o->reset(o->st);
    g_count = 0;
    g_fail_at = -1;
    g_plain_calls = g_hook_calls = 0;
    g_armed = 1;
    nvfp4_status s = o->run(o->st);
    g_armed = 0;
    if (s != NVFP4_OK)
        print_error("%s: reference run returned %s\n", o->name, nvfp4_status_string(s));
    assert_int_equal(s, NVFP4_OK);
    check_hooks_only(o, -1);
    long n = g_count;
    o->record(o->st);
    if (o->cleanup)
        o->cleanup(o->st);
    for (long k = 0; k < n; k++) {
        o->reset(o->st);
        long before = live();
        g_count = 0;
        g_failed = 0;
        g_fail_at = k;
        g_plain_calls = g_hook_calls = 0;
        g_armed = 1;
        s = o->run(o->st);
        g_armed = 0;
        check_hooks_only(o, k);
        if (s != NVFP4_ERR_OUT_OF_MEMORY || g_failed != 1)
            print_error("%s: allocation %ld of %ld failed, call returned %s (%ld injected)\n", o->name, k, n,
                        nvfp4_status_string(s), g_failed);
        assert_int_equal(s, NVFP4_ERR_OUT_OF_MEMORY);
        assert_int_equal(g_failed, 1);
        if (live() != before)
            print_error("%s: allocation %ld of %ld failed: %ld allocations leaked\n", o->name, k, n, live() - before);
        assert_int_equal(live(), before);
        o->untouched(o->st);
    }
    /* the handles still work and give the same result */
    o->reset(o->st);
    s = o->run(o->st);
    assert_int_equal(s, NVFP4_OK);
    o->same(o->st);
    if (o->cleanup)
        o->cleanup(o->st);
    total_points += n;
    total_calls++;
    g_fail_at = -1;
}

/* ---- quantize ------------------------------------------------------------------------------ */

#define QR 5
#define QC 40

typedef struct {
    nvfp4_context *ctx;
    nvfp4_quantizer *q;
    float x[QR * QC];
    int32_t fmt, layout;
    uint8_t *codes, *scales, *ref_codes, *ref_scales;
    int64_t ncodes, nscales;
    float gs, ref_gs;
} qst;

static void q_reset(void *p)
{
    qst *s = p;
    memset(s->codes, 0xA5, (size_t)s->ncodes);
    memset(s->scales, 0xA5, (size_t)s->nscales);
    memset(&s->gs, 0xA5, sizeof s->gs);
}

static nvfp4_status q_run(void *p)
{
    qst *s = p;
    return nvfp4_quantize(s->ctx, s->q, NVFP4_DTYPE_F32, s->x, QR, QC, QC, s->codes, s->scales, &s->gs);
}

static int all(const uint8_t *b, int64_t n, uint8_t c)
{
    for (int64_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

static void q_untouched(void *p)
{
    qst *s = p;
    uint32_t g;
    memcpy(&g, &s->gs, 4);
    assert_true(all(s->codes, s->ncodes, 0xA5));
    assert_true(all(s->scales, s->nscales, 0xA5));
    assert_int_equal(g, 0xA5A5A5A5u);
}

static void q_record(void *p)
{
    qst *s = p;
    memcpy(s->ref_codes, s->codes, (size_t)s->ncodes);
    memcpy(s->ref_scales, s->scales, (size_t)s->nscales);
    s->ref_gs = s->gs;
}

static void q_same(void *p)
{
    qst *s = p;
    assert_memory_equal(s->codes, s->ref_codes, (size_t)s->ncodes);
    assert_memory_equal(s->scales, s->ref_scales, (size_t)s->nscales);
    assert_memory_equal(&s->gs, &s->ref_gs, 4);
}

static void fill_x(float *x, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = ((float)((seed >> 8) & 0xFFFF) / 65536.0f - 0.5f) * (float)(1 + (i % 7));
    }
}

static void quantize_case(int32_t method, int32_t fmt, int32_t layout, int imp, int threads, int stats)
{
    qst s;
    memset(&s, 0, sizeof s);
    if (nvfp4_quantizer_create(&s.q, method) != NVFP4_OK)
        return; /* not in this build */
    assert_int_equal(nvfp4_context_create_ex(&s.ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(s.ctx, NVFP4_CTX_THREADS, threads), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(s.ctx, NVFP4_CTX_COLLECT_STATS, stats), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(s.q, NVFP4_Q_FORMAT, fmt), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(s.q, NVFP4_Q_SCALE_LAYOUT, layout), NVFP4_OK);
    if (imp) {
        float h[QC];
        for (int i = 0; i < QC; i++)
            h[i] = (float)(1 + i % 3);
        assert_int_equal(nvfp4_quantizer_set_importance(s.q, h, QC), NVFP4_OK);
    }
    fill_x(s.x, QR * QC, (unsigned)(method * 7 + layout));
    s.fmt = fmt;
    s.layout = layout;
    assert_int_equal(nvfp4_codes_size(fmt, QR, QC, &s.ncodes), NVFP4_OK);
    assert_int_equal(nvfp4_scales_size(fmt, layout, QR, QC, &s.nscales), NVFP4_OK);
    s.codes = malloc((size_t)s.ncodes);
    s.ref_codes = malloc((size_t)s.ncodes);
    s.scales = malloc((size_t)s.nscales);
    s.ref_scales = malloc((size_t)s.nscales);
    char name[128];
    snprintf(name, sizeof name, "quantize(method %d, format %d, layout %d, importance %d, threads %d, stats %d)",
             method, fmt, layout, imp, threads, stats);
    op o = {name, &s, q_reset, q_run, q_untouched, q_record, q_same, NULL, 0};
    inject_all(&o);
    free(s.codes);
    free(s.ref_codes);
    free(s.scales);
    free(s.ref_scales);
    nvfp4_quantizer_destroy(s.q);
    nvfp4_context_destroy(s.ctx);
    assert_int_equal(g_live_hook, 0);
}

static void test_quantize(void **state)
{
    (void)state;
    for (int32_t m = NVFP4_METHOD_MAX; m <= NVFP4_METHOD_SWEEP; m++)
        for (int layout = 0; layout <= 1; layout++)
            for (int imp = 0; imp <= 1; imp++)
                for (int threads = 1; threads <= 3; threads += 2)
                    quantize_case(m, NVFP4_FORMAT_NVFP4, layout, imp, threads, imp);
    for (int layout = 0; layout <= 1; layout++)
        quantize_case(NVFP4_METHOD_MAX, NVFP4_FORMAT_MXFP4, layout, 1, 2, 1);
}

/* ---- dequantize_v2 ------------------------------------------------------------------------- */

typedef struct {
    nvfp4_context *ctx;
    int32_t fmt, layout;
    uint8_t codes[QR * 32], scales[512];
    float dst[QR * QC], ref[QR * QC];
} dst_t;

static void d_reset(void *p) { memset(((dst_t *)p)->dst, 0xA5, sizeof ((dst_t *)p)->dst); }
static nvfp4_status d_run(void *p)
{
    dst_t *s = p;
    return nvfp4_dequantize_v2(s->ctx, s->fmt, s->layout, s->codes, s->scales, 0.5f, QR, QC, NVFP4_DTYPE_F32, s->dst,
                               QC);
}
static void d_untouched(void *p) { assert_true(all((const uint8_t *)((dst_t *)p)->dst, sizeof ((dst_t *)p)->dst, 0xA5)); }
static void d_record(void *p) { memcpy(((dst_t *)p)->ref, ((dst_t *)p)->dst, sizeof ((dst_t *)p)->dst); }
static void d_same(void *p) { assert_memory_equal(((dst_t *)p)->ref, ((dst_t *)p)->dst, sizeof ((dst_t *)p)->dst); }

static void test_dequantize(void **state)
{
    (void)state;
    for (int32_t fmt = 0; fmt <= 1; fmt++)
        for (int32_t layout = 0; layout <= 1; layout++) {
            dst_t s;
            memset(&s, 0, sizeof s);
            assert_int_equal(nvfp4_context_create_ex(&s.ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
            s.fmt = fmt;
            s.layout = layout;
            for (size_t i = 0; i < sizeof s.codes; i++)
                s.codes[i] = (uint8_t)(i * 37);
            for (size_t i = 0; i < sizeof s.scales; i++)
                s.scales[i] = (uint8_t)(0x30 + i % 16);
            char name[64];
            snprintf(name, sizeof name, "dequantize_v2(format %d, layout %d)", fmt, layout);
            op o = {name, &s, d_reset, d_run, d_untouched, d_record, d_same, NULL, 0};
            inject_all(&o);
            nvfp4_context_destroy(s.ctx);
        }
}

/* ---- handles: contexts, quantizers, importance ---------------------------------------------- */

typedef struct {
    nvfp4_context *ctx;
    nvfp4_quantizer *q;
    int which; /* 0 context_create_ex, 1 context_create, 2 quantizer_create, 3 set_importance */
    int ex;    /* quantizers: created with nvfp4_quantizer_create_ex(hooks) */
    float h[QC];
} hst;

static void h_reset(void *p)
{
    hst *s = p;
    if (s->which <= 1)
        s->ctx = (nvfp4_context *)(uintptr_t)0x5A5A5A50u;
    if (s->which == 2)
        s->q = (nvfp4_quantizer *)(uintptr_t)0x5A5A5A50u;
}

static nvfp4_status h_run(void *p)
{
    hst *s = p;
    switch (s->which) {
    case 0: return nvfp4_context_create_ex(&s->ctx, NVFP4_BACKEND_CPU, &hooks);
    case 1: return nvfp4_context_create(&s->ctx, NVFP4_BACKEND_CPU);
    case 2:
        return s->ex ? nvfp4_quantizer_create_ex(&s->q, NVFP4_METHOD_4OVER6, &hooks)
                     : nvfp4_quantizer_create(&s->q, NVFP4_METHOD_4OVER6);
    default: return nvfp4_quantizer_set_importance(s->q, s->h, QC);
    }
}

static void h_untouched(void *p)
{
    hst *s = p;
    if (s->which <= 1)
        assert_ptr_equal(s->ctx, (nvfp4_context *)(uintptr_t)0x5A5A5A50u);
    else if (s->which == 2)
        assert_ptr_equal(s->q, (nvfp4_quantizer *)(uintptr_t)0x5A5A5A50u);
    else {
        assert_int_equal(s->q->importance_n, 7); /* the old weights stay */
        for (int i = 0; i < 7; i++)
            assert_true(s->q->importance[i] == 1.0f);
    }
}

static void h_record(void *p) { (void)p; }
static void h_same(void *p)
{
    hst *s = p;
    if (s->which == 2) {
        int64_t v = -1;
        assert_int_equal(nvfp4_quantizer_get_int(s->q, NVFP4_Q_FORMAT, &v), NVFP4_OK);
        assert_int_equal(v, NVFP4_FORMAT_NVFP4);
    }
    if (s->which == 3) {
        assert_int_equal(s->q->importance_n, QC);
        assert_memory_equal(s->q->importance, s->h, sizeof s->h);
    }
}

static void h_cleanup(void *p)
{
    hst *s = p;
    if (s->which <= 1)
        nvfp4_context_destroy(s->ctx);
    else if (s->which == 2)
        nvfp4_quantizer_destroy(s->q);
    else {
        float old[7] = {1, 1, 1, 1, 1, 1, 1};
        assert_int_equal(nvfp4_quantizer_set_importance(s->q, old, 7), NVFP4_OK);
    }
}

static void test_handles(void **state)
{
    (void)state;
    static const char *names[2][4] = {
        {"context_create_ex", "context_create", "quantizer_create", "quantizer_set_importance"},
        {"", "", "quantizer_create_ex", "quantizer_set_importance(quantizer_create_ex)"}};
    for (int w = 0; w < 4; w++)
        for (int ex = 0; ex <= (w >= 2); ex++) {
            hst s;
            memset(&s, 0, sizeof s);
            s.which = w;
            s.ex = ex;
            for (int i = 0; i < QC; i++)
                s.h[i] = 0.5f;
            if (w == 3) {
                float old[7] = {1, 1, 1, 1, 1, 1, 1};
                if (ex)
                    assert_int_equal(nvfp4_quantizer_create_ex(&s.q, NVFP4_METHOD_MAX, &hooks), NVFP4_OK);
                else
                    assert_int_equal(nvfp4_quantizer_create(&s.q, NVFP4_METHOD_MAX), NVFP4_OK);
                assert_int_equal(nvfp4_quantizer_set_importance(s.q, old, 7), NVFP4_OK);
            }
            op o = {names[ex][w], &s, h_reset, h_run, h_untouched, h_record, h_same, h_cleanup, ex};
            inject_all(&o);
            if (w == 3)
                nvfp4_quantizer_destroy(s.q);
            assert_int_equal(g_live_hook, 0);
        }
}

/* ---- the rounder --------------------------------------------------------------------------- */

#define RO 4
#define RI 32

typedef struct {
    nvfp4_context *ctx;
    nvfp4_rounder *r;
    nvfp4_quantizer *q;
    int32_t method;
    int which; /* 0 create, 1 set_int(SCALE_METHOD), 2 set_quantizer, 3 add_samples, 4 set_gram, 5 run */
    int ex;    /* the rounder is made by nvfp4_rounder_create_ex(hooks) (the quantizer of case 2 the
                  other way round, so that the copy's allocator is the rounder's, not the source's) */
    float X[16 * RI], H[RI * RI], W[RO * RI];
    uint8_t codes[RO * 16], scales[RO * 2], ref_codes[RO * 16], ref_scales[RO * 2];
    float gs, ref_gs;
    int64_t samples_before, method_before;
    double loss_before;
    int have_before;
} rst;

static void r_snapshot(rst *s)
{
    assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SAMPLES, &s->samples_before), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SCALE_METHOD, &s->method_before), NVFP4_OK);
    s->have_before = nvfp4_rounder_get_float(s->r, NVFP4_R_LOSS_FINAL, &s->loss_before) == NVFP4_OK;
}

static void r_reset(void *p)
{
    rst *s = p;
    memset(s->codes, 0xA5, sizeof s->codes);
    memset(s->scales, 0xA5, sizeof s->scales);
    memset(&s->gs, 0xA5, sizeof s->gs);
    if (s->which == 0)
        s->r = (nvfp4_rounder *)(uintptr_t)0x5A5A5A50u;
    else
        r_snapshot(s);
}

static nvfp4_status r_run(void *p)
{
    rst *s = p;
    switch (s->which) {
    case 0:
        return s->ex ? nvfp4_rounder_create_ex(&s->r, s->method, RO, RI, &hooks)
                     : nvfp4_rounder_create(&s->r, s->method, RO, RI);
    case 1: return nvfp4_rounder_set_int(s->r, NVFP4_R_SCALE_METHOD, NVFP4_METHOD_SOAR);
    case 2: return nvfp4_rounder_set_quantizer(s->r, s->q);
    case 3: return nvfp4_rounder_add_samples(s->r, s->ctx, NVFP4_DTYPE_F32, s->X, 16, RI);
    case 4: return nvfp4_rounder_set_gram(s->r, s->H, RI, RI);
    default: return nvfp4_rounder_run(s->r, s->ctx, NVFP4_DTYPE_F32, s->W, RI, s->codes, s->scales, &s->gs);
    }
}

static void r_untouched(void *p)
{
    rst *s = p;
    if (s->which == 0) {
        assert_ptr_equal(s->r, (nvfp4_rounder *)(uintptr_t)0x5A5A5A50u);
        return;
    }
    int64_t smp;
    double loss;
    assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SAMPLES, &smp), NVFP4_OK);
    assert_int_equal(smp, s->samples_before);
    assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SCALE_METHOD, &smp), NVFP4_OK);
    assert_int_equal(smp, s->method_before);
    int have = nvfp4_rounder_get_float(s->r, NVFP4_R_LOSS_FINAL, &loss) == NVFP4_OK;
    assert_int_equal(have, s->have_before);
    if (have)
        assert_memory_equal(&loss, &s->loss_before, sizeof loss);
    assert_true(all(s->codes, sizeof s->codes, 0xA5));
    assert_true(all(s->scales, sizeof s->scales, 0xA5));
    uint32_t g;
    memcpy(&g, &s->gs, 4);
    assert_int_equal(g, 0xA5A5A5A5u);
}

static void r_record(void *p)
{
    rst *s = p;
    memcpy(s->ref_codes, s->codes, sizeof s->codes);
    memcpy(s->ref_scales, s->scales, sizeof s->scales);
    s->ref_gs = s->gs;
}

static void r_same(void *p)
{
    rst *s = p;
    int64_t v = -1;
    if (s->which == 1 || s->which == 2) {
        assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SCALE_METHOD, &v), NVFP4_OK);
        assert_int_equal(v, s->which == 1 ? NVFP4_METHOD_SOAR : NVFP4_METHOD_SWEEP);
    }
    if (s->which == 3) {
        assert_int_equal(nvfp4_rounder_get_int(s->r, NVFP4_R_SAMPLES, &v), NVFP4_OK);
        assert_int_equal(v, 16);
    }
    if (s->which == 5) {
        assert_memory_equal(s->codes, s->ref_codes, sizeof s->codes);
        assert_memory_equal(s->scales, s->ref_scales, sizeof s->scales);
        assert_memory_equal(&s->gs, &s->ref_gs, 4);
    }
}

static void r_cleanup(void *p)
{
    rst *s = p;
    if (s->which == 0)
        nvfp4_rounder_destroy(s->r);
    if (s->which == 3 || s->which == 4) /* each run starts without calibration, as the first did */
        assert_int_equal(nvfp4_rounder_clear_calibration(s->r), NVFP4_OK);
}

static void rounder_case(int32_t method, int which, int threads, int extra, int ex)
{
    rst s;
    memset(&s, 0, sizeof s);
    s.method = method;
    s.which = which;
    s.ex = ex;
    assert_int_equal(nvfp4_context_create_ex(&s.ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(s.ctx, NVFP4_CTX_THREADS, threads), NVFP4_OK);
    fill_x(s.X, 16 * RI, 3u);
    fill_x(s.W, RO * RI, 5u);
    for (int i = 0; i < RI; i++)
        for (int j = 0; j < RI; j++) {
            double acc = 0.0;
            for (int k = 0; k < 16; k++)
                acc += (double)s.X[k * RI + i] * (double)s.X[k * RI + j];
            s.H[i * RI + j] = (float)(acc / 16.0) + (i == j ? 0.01f : 0.0f);
        }
    if (which != 0) {
        if (ex)
            assert_int_equal(nvfp4_rounder_create_ex(&s.r, method, RO, RI, &hooks), NVFP4_OK);
        else
            assert_int_equal(nvfp4_rounder_create(&s.r, method, RO, RI), NVFP4_OK);
        assert_int_equal(nvfp4_rounder_set_int(s.r, NVFP4_R_ITERATIONS, 30), NVFP4_OK);
        if (extra & 1)
            assert_int_equal(nvfp4_rounder_set_int(s.r, NVFP4_R_ACT_ORDER, 1), NVFP4_OK);
        if (extra & 2)
            assert_int_equal(nvfp4_rounder_set_int(s.r, NVFP4_R_STAGE2, 1), NVFP4_OK);
        if (extra & 4)
            assert_int_equal(nvfp4_rounder_set_int(s.r, NVFP4_R_SCALE_METHOD, NVFP4_METHOD_4OVER6), NVFP4_OK);
    }
    if (which == 2) {
        float h[RI];
        for (int i = 0; i < RI; i++)
            h[i] = 1.0f + (float)(i % 2);
        if (ex)
            assert_int_equal(nvfp4_quantizer_create(&s.q, NVFP4_METHOD_SWEEP), NVFP4_OK);
        else
            assert_int_equal(nvfp4_quantizer_create_ex(&s.q, NVFP4_METHOD_SWEEP, &hooks), NVFP4_OK);
        assert_int_equal(nvfp4_quantizer_set_importance(s.q, h, RI), NVFP4_OK);
    }
    if (which == 5) {
        if (extra & 8)
            assert_int_equal(nvfp4_rounder_add_samples(s.r, s.ctx, NVFP4_DTYPE_F32, s.X, 16, RI), NVFP4_OK);
        else
            assert_int_equal(nvfp4_rounder_set_gram(s.r, s.H, RI, RI), NVFP4_OK);
    }
    static const char *names[] = {"rounder_create", "rounder_set_int(SCALE_METHOD)", "rounder_set_quantizer",
                                  "rounder_add_samples", "rounder_set_gram", "rounder_run"};
    char name[128];
    snprintf(name, sizeof name, "%s%s(method %d, threads %d, variant %d)", names[which], ex ? "[create_ex]" : "",
             method, threads, extra);
    op o = {name, &s, r_reset, r_run, r_untouched, r_record, r_same, r_cleanup, ex};
    inject_all(&o);
    if (which != 0)
        nvfp4_rounder_destroy(s.r);
    nvfp4_quantizer_destroy(s.q);
    nvfp4_context_destroy(s.ctx);
    assert_int_equal(g_live_hook, 0);
}

static void test_rounder(void **state)
{
    (void)state;
    for (int ex = 0; ex <= 1; ex++)
        for (int32_t m = NVFP4_ROUNDER_FAAR; m <= NVFP4_ROUNDER_GPTQ; m++) {
            for (int w = 0; w <= 4; w++)
                rounder_case(m, w, 1, 0, ex);
            rounder_case(m, 3, 3, 0, ex);
            rounder_case(m, 5, 1, 0, ex);
            rounder_case(m, 5, 3, 8, ex);
            rounder_case(m, 5, 1, m == NVFP4_ROUNDER_GPTQ ? 1 | 2 | 4 : 4, ex);
        }
}

/* ---- handles made with hooks never call the system allocator -------------------------------- */

/* Runs, armed (counting, nothing failing), a whole embedder session on handles made with
 * nvfp4_quantizer_create_ex / nvfp4_rounder_create_ex(hooks) (ex = 1) or the plain constructors
 * (ex = 0) and a hooks context: every call of the Gap list, a quantize and a rounder run, the
 * destroys. Returns the plain calls made by the handle-only calls (no context involved). */
static long session(int ex, int32_t rmethod)
{
    nvfp4_context *ctx = NULL;
    nvfp4_quantizer *q = NULL, *q2 = NULL;
    nvfp4_rounder *r = NULL;
    float x[QR * QC], h[RI], X[16 * RI], H[RI * RI], W[RO * RI];
    uint8_t codes[QR * 32], scales[512], rcodes[RO * 16], rscales[RO * 2];
    float gs;
    fill_x(x, QR * QC, 11u);
    fill_x(X, 16 * RI, 3u);
    fill_x(W, RO * RI, 5u);
    for (int i = 0; i < RI; i++)
        h[i] = 1.0f + (float)(i % 3);
    for (int i = 0; i < RI; i++)
        for (int j = 0; j < RI; j++)
            H[i * RI + j] = (i == j ? 2.0f : 0.0f) + 0.25f * (float)((i + j) % 3 == 0);
    const nvfp4_allocator *a = ex ? &hooks : NULL;
    assert_int_equal(nvfp4_context_create_ex(&ctx, NVFP4_BACKEND_CPU, &hooks), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 2), NVFP4_OK);
    long hook0 = g_live_hook, plain0 = g_live_plain;
    g_fail_at = -1;
    g_plain_calls = g_hook_calls = 0;
    g_armed = 1;
    /* handle-only calls first: they have no context to fall back on */
    assert_int_equal(nvfp4_quantizer_create_ex(&q, NVFP4_METHOD_4OVER6, a), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, RI), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q, NULL, 0), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, RI), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_create_ex(&r, rmethod, RO, RI, a), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_set_int(r, NVFP4_R_ITERATIONS, 20), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_set_int(r, NVFP4_R_SCALE_METHOD, NVFP4_METHOD_SOAR), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_set_quantizer(r, q), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_set_gram(r, H, RI, RI), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_clear_calibration(r), NVFP4_OK);
    long handle_plain = g_plain_calls, handle_hook = g_hook_calls;
    if (ex) {
        assert_int_equal(handle_plain, 0);
        assert_true(handle_hook >= 8); /* q, 2 importance copies, r, its quantizer, 2 set_*, H */
    } else {
        assert_int_equal(handle_hook, 0);
        assert_true(handle_plain >= 8);
    }
    /* then calls with the context */
    assert_int_equal(nvfp4_rounder_add_samples(r, ctx, NVFP4_DTYPE_F32, X, 16, RI), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_add_samples(r, ctx, NVFP4_DTYPE_F32, X, 8, RI), NVFP4_OK);
    assert_int_equal(nvfp4_rounder_run(r, ctx, NVFP4_DTYPE_F32, W, RI, rcodes, rscales, &gs), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create_ex(&q2, NVFP4_METHOD_SOAR, a), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_importance(q2, h, RI), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(ctx, q2, NVFP4_DTYPE_F32, x, QR, RI, QC, codes, scales, &gs), NVFP4_OK);
    nvfp4_rounder_destroy(r);
    nvfp4_quantizer_destroy(q);
    nvfp4_quantizer_destroy(q2);
    g_armed = 0;
    if (ex)
        assert_int_equal(g_plain_calls, 0);
    assert_int_equal(g_live_hook, hook0);
    assert_int_equal(g_live_plain, plain0);
    nvfp4_context_destroy(ctx);
    return handle_plain;
}

static void test_hooks_only(void **state)
{
    (void)state;
    for (int32_t m = NVFP4_ROUNDER_FAAR; m <= NVFP4_ROUNDER_GPTQ; m++) {
        assert_int_equal(session(1, m), 0);
        assert_true(session(0, m) > 0); /* the plain constructors still use malloc */
    }
    assert_int_equal(g_live_hook, 0);
}

/* ---- the summary ----------------------------------------------------------------------------- */

static void test_report(void **state)
{
    (void)state;
    printf("allocation-failure injection: %ld injection points over %ld calls, %d distinct call sites reached\n",
           total_points, total_calls, g_nsites);
    const char *path = getenv("NVFP4_ALLOC_SITES");
    if (path) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < g_nsites; i++)
            fprintf(f, "%s\n", g_sites[i]);
        fclose(f);
    }
    assert_true(total_points > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_dequantize),
        cmocka_unit_test(test_rounder),
        cmocka_unit_test(test_hooks_only),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
