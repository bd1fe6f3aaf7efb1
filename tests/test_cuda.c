/* test_cuda.c - the CUDA backend equals the CPU backend byte for byte (codes, scales, global
 * scale, dequantised values) over shapes (cols not a multiple of the block, rows not a multiple of
 * 128, ld > cols, misaligned pointers), f32/f16/bf16, NVFP4 (exact and ModelOpt recipes), MXFP4
 * (RCEIL and FLOOR), both scale layouts, both non-finite policies and special values; plus the
 * error paths (strict NaN, bad scale bytes, unsupported options, a destroyed stream), with device
 * canaries proving that nothing is written on error. Every test skips, saying why, when
 * nvfp4_has_backend(NVFP4_BACKEND_CUDA) is 0 (no GPU or no driver). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cuda_runtime_api.h>

#include "nvfp4/nvfp4.h"

#define CANARY 0xA5

#define CU(call) assert_int_equal((int)(call), (int)cudaSuccess)

static void need_cuda(void)
{
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        int n = -1;
        cudaError_t e = cudaGetDeviceCount(&n);
        printf("SKIP: no usable CUDA device (cudaGetDeviceCount: %s)\n", cudaGetErrorString(e));
        skip();
    }
}

/* ---- deterministic data ------------------------------------------------------------------ */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 1; }
static uint32_t rng32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static double uniform(void) { return ((double)rng32() + 0.5) / 4294967296.0; }
static double gauss(void) { return uniform() + uniform() + uniform() + uniform() - 2.0; }

enum { DATA_MIXED, DATA_ZEROS, DATA_WIDE, DATA_TINY, DATA_NONFINITE, DATA_NEAR_MAX };

static const float grid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

/* Values per kind: MIXED has zeros, −0, exact E2M1 ties, heavy tails, an all-zero block, a −0
 * block and an underflowing block; WIDE spreads block magnitudes over 2^±60 (subnormal and
 * saturated E4M3 scales); TINY holds float subnormals; NONFINITE adds NaN/±Inf to MIXED.
 * The gap between cols and ld is NaN: it must never be read. */
static float gen_value(int kind, int64_t r, int64_t c, int64_t cols)
{
    if (c >= cols)
        return NAN;
    uint32_t k = rng32() % 100;
    switch (kind) {
    case DATA_ZEROS: return (k & 1) ? -0.0f : 0.0f;
    case DATA_TINY: return (float)((double)((int)(rng32() % 2001) - 1000) * 1.401298464324817e-45);
    case DATA_WIDE: {
        int e = (int)((r * 7 + c / 16) % 121) - 60;
        return (float)(ldexp(gauss(), e));
    }
    case DATA_NEAR_MAX: {
        /* MXFP4 with RCEIL codes |x| ≥ 1.75·2^127 as 4·2^126 = 2^128, which decodes to ±Inf
         * (docs/FORMAT.md): the threshold, its neighbour below, FLT_MAX and block amaxes on both
         * sides of the 2^126 scale, among values up to 2^127 */
        static const float big[] = {3.40282347e+38f, 0x1.cp127f, 0x1.bffffep127f, 0x1.8p127f,
                                    0x1.9p127f,      0x1p127f,   0x1.fp126f};
        float v = k < 40 ? big[rng32() % 7] : (float)ldexp(gauss(), 100 + (int)(rng32() % 27));
        return (rng32() & 1) ? -v : v;
    }
    default: break;
    }
    if (kind == DATA_NONFINITE && k < 3)
        return k == 0 ? NAN : k == 1 ? INFINITY : -INFINITY;
    if (k < 4)
        return 0.0f;
    if (k < 6)
        return -0.0f;
    if (k < 14) /* exact ties after scaling: midpoints and grid points times 0.25 */
        return (float)(((rng32() & 1) ? -1 : 1) * (grid[rng32() % 8] + 0.25 * (rng32() % 2)) * 0.25);
    return (float)(gauss() * exp(1.5 * gauss()));
}

static float *gen(int kind, int64_t rows, int64_t cols, int64_t ld, uint64_t seed)
{
    float *x = malloc((size_t)(rows * ld) * sizeof *x);
    assert_non_null(x);
    rng_seed(seed);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++)
            x[r * ld + c] = gen_value(kind, r, c, cols);
    if (kind == DATA_MIXED && rows >= 2 && cols >= 48) {
        for (int64_t c = 0; c < 16; c++) {
            x[1 * ld + c] = 0.0f;
            x[1 * ld + 16 + c] = -0.0f;
            x[1 * ld + 32 + c] = (float)(1e-7 * gauss());
        }
        x[0] = 5000.0f;
    }
    return x;
}

/* The bytes the library reads for dtype (n elements). */
static void *encode(const float *x, int64_t n, int32_t dtype)
{
    size_t es = dtype == NVFP4_DTYPE_F32 ? 4 : 2;
    uint8_t *o = malloc((size_t)n * es);
    assert_non_null(o);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == NVFP4_DTYPE_F32) {
            memcpy(o + 4 * i, &x[i], 4);
        } else {
            uint16_t h = dtype == NVFP4_DTYPE_F16 ? nvfp4_float_to_f16(x[i]) : nvfp4_float_to_bf16(x[i]);
            memcpy(o + 2 * i, &h, 2);
        }
    }
    return o;
}

static void *dev_copy(const void *h, size_t n, size_t extra_front)
{
    uint8_t *d = NULL;
    CU(cudaMalloc((void **)&d, n + extra_front + 16));
    CU(cudaMemset(d, CANARY, n + extra_front + 16));
    if (h)
        CU(cudaMemcpy(d + extra_front, h, n, cudaMemcpyHostToDevice));
    return d;
}

static void *dev_canary(size_t n) { return dev_copy(NULL, n, 0); }

static uint8_t *host_of(const void *d, size_t n)
{
    uint8_t *h = malloc(n ? n : 1);
    assert_non_null(h);
    CU(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost));
    return h;
}

static void all_canary(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != CANARY) {
            print_error("byte %zu is 0x%02X, not the canary\n", i, p[i]);
            fail();
        }
}

static void same_bytes(const uint8_t *a, const uint8_t *b, size_t n, const char *what, const char *where)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            print_error("%s differ at byte %zu of %zu: CPU 0x%02X, CUDA 0x%02X (%s)\n", what, i, n, a[i], b[i], where);
            fail();
        }
}

/* ---- one comparison -------------------------------------------------------------------- */

typedef struct {
    int32_t format, layout, nonfinite, recipe, e8m0;
    double global_scale;
} qopts;

static nvfp4_quantizer *make_q(const qopts *o)
{
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, o->format), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, o->layout), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_NONFINITE, o->nonfinite), NVFP4_OK);
    if (o->format == NVFP4_FORMAT_NVFP4)
        assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_RECIPE, o->recipe), NVFP4_OK);
    else
        assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_E8M0_MODE, o->e8m0), NVFP4_OK);
    if (o->global_scale > 0.0)
        assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, o->global_scale), NVFP4_OK);
    return q;
}

typedef struct {
    nvfp4_context *cpu, *gpu;
} ctxs;

static int setup(void **state)
{
    ctxs *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    if (nvfp4_context_create(&c->cpu, NVFP4_BACKEND_CPU) != NVFP4_OK)
        return -1;
    if (nvfp4_has_backend(NVFP4_BACKEND_CUDA) && nvfp4_context_create(&c->gpu, NVFP4_BACKEND_CUDA) != NVFP4_OK)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctxs *c = *state;
    nvfp4_context_destroy(c->cpu);
    nvfp4_context_destroy(c->gpu);
    free(c);
    return 0;
}

/* Quantises on both backends and compares every output byte; then dequantises the result on both
 * and compares every destination byte (gap bytes between cols and ld must stay the canary).
 * src_off/codes_off shift the device pointers to defeat vector alignment. */
static void compare(ctxs *c, int kind, int32_t dtype, int64_t rows, int64_t cols, int64_t ld, const qopts *o,
                    uint64_t seed, size_t src_off, size_t codes_off, int32_t deq_dtype)
{
    char where[200];
    snprintf(where, sizeof where,
             "kind %d dtype %d %lldx%lld ld %lld fmt %d layout %d nonfinite %d recipe %d e8m0 %d gs %g offs %zu/%zu",
             kind, (int)dtype, (long long)rows, (long long)cols, (long long)ld, (int)o->format, (int)o->layout,
             (int)o->nonfinite, (int)o->recipe, (int)o->e8m0, o->global_scale, src_off, codes_off);
    nvfp4_quantizer *q = make_q(o);
    float *x = gen(kind, rows, cols, ld, seed);
    const size_t es = dtype == NVFP4_DTYPE_F32 ? 4 : 2;
    const size_t nsrc = (size_t)(rows * ld) * es;
    void *hsrc = encode(x, rows * ld, dtype);
    int64_t ncodes, nscales;
    assert_int_equal(nvfp4_codes_size(o->format, rows, cols, &ncodes), NVFP4_OK);
    assert_int_equal(nvfp4_scales_size(o->format, o->layout, rows, cols, &nscales), NVFP4_OK);

    uint8_t *hc = malloc((size_t)ncodes), *hs = malloc((size_t)nscales);
    assert_non_null(hc);
    assert_non_null(hs);
    memset(hc, CANARY, (size_t)ncodes);
    memset(hs, CANARY, (size_t)nscales);
    float hgs = -1.0f;
    nvfp4_status s_cpu = nvfp4_quantize(c->cpu, q, dtype, hsrc, rows, cols, ld, hc, hs, &hgs);

    uint8_t *dsrc = dev_copy(hsrc, nsrc, src_off);
    uint8_t *dc = dev_canary((size_t)ncodes + codes_off), *ds = dev_canary((size_t)nscales);
    float *dgs = dev_canary(sizeof(float));
    nvfp4_status s_gpu =
        nvfp4_quantize(c->gpu, q, dtype, dsrc + src_off, rows, cols, ld, dc + codes_off, ds, dgs);
    if (s_gpu != s_cpu)
        print_error("status CPU %d, CUDA %d (%s): %s\n", s_cpu, s_gpu, where,
                    nvfp4_context_last_error_message(c->gpu));
    assert_int_equal(s_gpu, s_cpu);

    uint8_t *gc = host_of(dc, (size_t)ncodes + codes_off), *gs = host_of(ds, (size_t)nscales),
            *ggs = host_of(dgs, sizeof(float));
    if (s_cpu == NVFP4_OK) {
        all_canary(gc, codes_off);
        same_bytes(hc, gc + codes_off, (size_t)ncodes, "codes", where);
        same_bytes(hs, gs, (size_t)nscales, "scales", where);
        same_bytes((const uint8_t *)&hgs, ggs, sizeof(float), "global scale", where);
    } else {
        all_canary(gc, (size_t)ncodes + codes_off);
        all_canary(gs, (size_t)nscales);
        all_canary(ggs, sizeof(float));
        assert_string_equal(nvfp4_context_last_error_message(c->gpu), nvfp4_context_last_error_message(c->cpu));
    }

    if (s_cpu == NVFP4_OK && deq_dtype >= 0) {
        const size_t des = deq_dtype == NVFP4_DTYPE_F32 ? 4 : 2;
        const size_t nd = (size_t)(rows * ld) * des;
        uint8_t *hd = malloc(nd);
        assert_non_null(hd);
        memset(hd, CANARY, nd);
        uint8_t *dd = dev_canary(nd);
        nvfp4_status a = nvfp4_dequantize_v2(c->cpu, o->format, o->layout, hc, hs, hgs, rows, cols, deq_dtype, hd, ld);
        nvfp4_status b =
            nvfp4_dequantize_v2(c->gpu, o->format, o->layout, dc + codes_off, ds, hgs, rows, cols, deq_dtype, dd, ld);
        assert_int_equal(a, NVFP4_OK);
        assert_int_equal(b, NVFP4_OK);
        uint8_t *gd = host_of(dd, nd);
        same_bytes(hd, gd, nd, "dequantised values", where);
        free(gd);
        free(hd);
        CU(cudaFree(dd));
    }
    free(gc);
    free(gs);
    free(ggs);
    CU(cudaFree(dsrc));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
    free(hc);
    free(hs);
    free(hsrc);
    free(x);
    nvfp4_quantizer_destroy(q);
}

typedef struct {
    int64_t rows, cols, ld;
} shape;

static const shape shapes[] = {
    {1, 1, 1},    {1, 16, 16},   {2, 17, 17},    {3, 31, 40},    {5, 33, 33},     {7, 48, 56},
    {128, 64, 64}, {129, 100, 104}, {130, 7, 9},  {33, 257, 300},  {200, 1024, 1024}, {257, 2000, 2008},
    {64, 4096, 4096}, {1, 5000, 5000}, {300, 80, 83},
};

static void test_equal_shapes_dtypes(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const int32_t dtypes[] = {NVFP4_DTYPE_F32, NVFP4_DTYPE_F16, NVFP4_DTYPE_BF16};
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int d = 0; d < 3; d++)
            for (int layout = 0; layout < 2; layout++) {
                qopts o = {NVFP4_FORMAT_NVFP4, layout, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.0};
                const shape *s = &shapes[i];
                compare(c, DATA_MIXED, dtypes[d], s->rows, s->cols, s->ld, &o, seed++, 0, 0, dtypes[(d + layout) % 3]);
            }
}

static void test_equal_formats_recipes(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const int32_t dtypes[] = {NVFP4_DTYPE_F32, NVFP4_DTYPE_F16, NVFP4_DTYPE_BF16};
    const qopts opts[] = {
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_MODELOPT, 0, 0.0},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_SATURATE, NVFP4_RECIPE_MODELOPT, 0, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, 0, NVFP4_E8M0_RCEIL, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_STRICT, 0, NVFP4_E8M0_FLOOR, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_SATURATE, 0, NVFP4_E8M0_FLOOR, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_SATURATE, 0, NVFP4_E8M0_RCEIL, 0.0},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_SATURATE, NVFP4_RECIPE_EXACT, 0, 0.0},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.01},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_SATURATE, NVFP4_RECIPE_EXACT, 0, 0.5},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_SATURATE, NVFP4_RECIPE_MODELOPT, 0, 1e-3},
    };
    const int kinds[] = {DATA_MIXED, DATA_WIDE, DATA_TINY, DATA_ZEROS};
    uint64_t seed = 1000;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si += 3) {
                const shape *s = &shapes[(si + i + k) % (sizeof shapes / sizeof shapes[0])];
                int32_t dt = dtypes[(i + k + si) % 3];
                compare(c, kinds[k], dt, s->rows, s->cols, s->ld, &opts[i], seed++, 0, 0, dtypes[(i + si) % 3]);
            }
}

/* NaN/±Inf under the saturate policy (excluded from amaxes, NaN → 0x7, ±Inf → ±6), one- and
 * two-pass paths; and a caller global scale small enough that scales and codes saturate. */
static void test_equal_special(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const int32_t dtypes[] = {NVFP4_DTYPE_F32, NVFP4_DTYPE_F16, NVFP4_DTYPE_BF16};
    uint64_t seed = 5000;
    for (int d = 0; d < 3; d++) {
        qopts sat = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_SATURATE, NVFP4_RECIPE_EXACT, 0, 0.0};
        compare(c, DATA_NONFINITE, dtypes[d], 129, 200, 208, &sat, seed++, 0, 0, dtypes[d]);
        sat.global_scale = 1e-4; /* one pass: no amax needed */
        compare(c, DATA_NONFINITE, dtypes[d], 129, 200, 208, &sat, seed++, 0, 0, dtypes[d]);
        sat.layout = NVFP4_LAYOUT_128X4;
        sat.recipe = NVFP4_RECIPE_MODELOPT;
        compare(c, DATA_NONFINITE, dtypes[d], 77, 96, 96, &sat, seed++, 0, 0, dtypes[d]);
        qopts mx = {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_SATURATE, 0, NVFP4_E8M0_RCEIL, 0.0};
        compare(c, DATA_NONFINITE, dtypes[d], 50, 130, 130, &mx, seed++, 0, 0, dtypes[d]);
        /* s_dec far too small: block scales saturate at 448 and elements at ±6 */
        qopts tiny = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 1e-30};
        compare(c, DATA_WIDE, dtypes[d], 40, 160, 160, &tiny, seed++, 0, 0, dtypes[d]);
        tiny.recipe = NVFP4_RECIPE_MODELOPT;
        compare(c, DATA_WIDE, dtypes[d], 40, 160, 160, &tiny, seed++, 0, 0, dtypes[d]);
        /* s_dec huge: every block scale underflows */
        qopts huge = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 1e30};
        compare(c, DATA_MIXED, dtypes[d], 40, 160, 160, &huge, seed++, 0, 0, dtypes[d]);
    }
}

/* Finite input near FLT_MAX: MXFP4 with RCEIL keeps the hardware's scale 2^126 and code 4 for
 * |x| ≥ 1.75·2^127, whose value 2^128 dequantises to ±Inf; both backends must give the same
 * bytes, the ±Inf included (docs/FORMAT.md, "MXFP4 near FLT_MAX"). */
static void test_equal_near_flt_max(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const qopts opts[] = {
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, 0, NVFP4_E8M0_RCEIL, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_SATURATE, 0, NVFP4_E8M0_RCEIL, 0.0},
        {NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, 0, NVFP4_E8M0_FLOOR, 0.0},
        {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.0},
    };
    const int32_t dtypes[] = {NVFP4_DTYPE_F32, NVFP4_DTYPE_BF16, NVFP4_DTYPE_F16};
    /* the data reaches the case: some finite elements at or above the threshold */
    float *x = gen(DATA_NEAR_MAX, 37, 200, 203, 9000);
    int over = 0;
    for (int64_t i = 0; i < 37 * 203; i++)
        over += isfinite(x[i]) && fabsf(x[i]) >= 0x1.cp127f;
    free(x);
    assert_true(over > 0);
    uint64_t seed = 9000;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        for (int d = 0; d < 3; d++) /* f32 input; bf16 input (FLT_MAX rounds to Inf there: an error
                                     * under the strict policy, ±6 under saturate, alike on both) */
            compare(c, DATA_NEAR_MAX, d == 1 ? NVFP4_DTYPE_BF16 : NVFP4_DTYPE_F32, 37, 200, 203, &opts[i],
                    seed++, 0, 0, dtypes[d]);
}

/* Misaligned source and code pointers and ld values that are no multiple of 8 take the scalar
 * load/store paths; a large bf16 tensor takes the vector path over many thread blocks. */
static void test_equal_alignment_and_large(void **state)
{
    need_cuda();
    ctxs *c = *state;
    qopts o = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.0};
    compare(c, DATA_MIXED, NVFP4_DTYPE_BF16, 65, 512, 512, &o, 77, 2, 1, NVFP4_DTYPE_BF16);
    compare(c, DATA_MIXED, NVFP4_DTYPE_F32, 65, 512, 513, &o, 78, 4, 2, NVFP4_DTYPE_F32);
    compare(c, DATA_MIXED, NVFP4_DTYPE_F16, 65, 512, 520, &o, 79, 6, 3, NVFP4_DTYPE_F16);
    o.format = NVFP4_FORMAT_MXFP4;
    compare(c, DATA_MIXED, NVFP4_DTYPE_BF16, 65, 500, 501, &o, 80, 2, 1, NVFP4_DTYPE_F32);
    o.format = NVFP4_FORMAT_NVFP4;
    o.layout = NVFP4_LAYOUT_128X4;
    compare(c, DATA_MIXED, NVFP4_DTYPE_BF16, 2049, 8192, 8192, &o, 81, 0, 0, NVFP4_DTYPE_BF16);
    o.layout = NVFP4_LAYOUT_LINEAR;
    compare(c, DATA_WIDE, NVFP4_DTYPE_F32, 1000, 3000, 3000, &o, 82, 0, 0, NVFP4_DTYPE_F16);
}

/* ---- error paths ------------------------------------------------------------------------- */

static void test_strict_nonfinite_writes_nothing(void **state)
{
    need_cuda();
    ctxs *c = *state;
    for (int layout = 0; layout < 2; layout++)
        for (int f = 0; f < 2; f++) {
            qopts o = {f, layout, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0.0};
            /* compare() checks: same status and message on both backends, device canaries intact */
            compare(c, DATA_NONFINITE, NVFP4_DTYPE_BF16, 130, 100, 100, &o, 900 + (uint64_t)(layout * 2 + f), 0, 0, -1);
        }
    /* a single NaN in an otherwise finite tensor, far from the first block */
    qopts o = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.0};
    nvfp4_quantizer *q = make_q(&o);
    const int64_t rows = 300, cols = 1000;
    float *x = gen(DATA_MIXED, rows, cols, cols, 4242);
    x[rows * cols - 3] = NAN;
    float *dx = dev_copy(x, (size_t)(rows * cols) * 4, 0);
    int64_t nc, ns;
    assert_int_equal(nvfp4_codes_size(o.format, rows, cols, &nc), NVFP4_OK);
    assert_int_equal(nvfp4_scales_size(o.format, o.layout, rows, cols, &ns), NVFP4_OK);
    uint8_t *dc = dev_canary((size_t)nc), *ds = dev_canary((size_t)ns);
    float *dgs = dev_canary(4);
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_ERR_NONFINITE);
    assert_non_null(strstr(nvfp4_context_last_error_message(c->gpu), "1 NaN/Inf"));
    uint8_t *h = host_of(dc, (size_t)nc);
    all_canary(h, (size_t)nc);
    free(h);
    h = host_of(ds, (size_t)ns);
    all_canary(h, (size_t)ns);
    free(h);
    h = host_of(dgs, 4);
    all_canary(h, 4);
    free(h);
    /* the context still works afterwards */
    x[rows * cols - 3] = 1.0f;
    CU(cudaMemcpy(dx, x, (size_t)(rows * cols) * 4, cudaMemcpyHostToDevice));
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_OK);
    CU(cudaFree(dx));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
    free(x);
    nvfp4_quantizer_destroy(q);
}

static void test_dequantize_bad_scale(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const int64_t rows = 200, cols = 96, nblk = 6;
    for (int layout = 0; layout < 2; layout++)
        for (int f = 0; f < 2; f++) {
            const int64_t nb = f ? (cols + 31) / 32 : nblk;
            int64_t nc, ns;
            assert_int_equal(nvfp4_codes_size(f, rows, cols, &nc), NVFP4_OK);
            assert_int_equal(nvfp4_scales_size(f, layout, rows, cols, &ns), NVFP4_OK);
            uint8_t *codes = malloc((size_t)nc), *lin = malloc((size_t)(rows * nb)), *sc = malloc((size_t)ns);
            for (int64_t i = 0; i < nc; i++)
                codes[i] = (uint8_t)(i * 37);
            for (int64_t i = 0; i < rows * nb; i++)
                lin[i] = (uint8_t)(f ? 100 + i % 50 : 0x30 + i % 16);
            lin[150 * nb + 1] = f ? 0xFF : 0x7F;        /* the first bad byte in row-major order */
            lin[170 * nb + 0] = f ? 0xFF : 0x80;        /* a later one (sign bit) */
            if (layout == NVFP4_LAYOUT_128X4)
                assert_int_equal(nvfp4_scales_swizzle(lin, rows, nb, sc), NVFP4_OK);
            else
                memcpy(sc, lin, (size_t)ns);
            uint8_t *dcodes = dev_copy(codes, (size_t)nc, 0), *dsc = dev_copy(sc, (size_t)ns, 0);
            const size_t nd = (size_t)(rows * cols) * 2;
            uint8_t *dd = dev_canary(nd), *hd = malloc(nd);
            memset(hd, CANARY, nd);
            nvfp4_status a = nvfp4_dequantize_v2(c->cpu, f, layout, codes, sc, 1.0f, rows, cols, NVFP4_DTYPE_BF16, hd, cols);
            nvfp4_status b = nvfp4_dequantize_v2(c->gpu, f, layout, dcodes, dsc, 1.0f, rows, cols, NVFP4_DTYPE_BF16, dd, cols);
            assert_int_equal(a, NVFP4_ERR_INVALID_SCALE);
            assert_int_equal(b, NVFP4_ERR_INVALID_SCALE);
            assert_string_equal(nvfp4_context_last_error_message(c->gpu), nvfp4_context_last_error_message(c->cpu));
            assert_non_null(strstr(nvfp4_context_last_error_message(c->gpu), "row 150, block 1"));
            uint8_t *g = host_of(dd, nd);
            all_canary(g, nd);
            free(g);
            CU(cudaFree(dcodes));
            CU(cudaFree(dsc));
            CU(cudaFree(dd));
            free(hd);
            free(codes);
            free(lin);
            free(sc);
        }
}

static void test_unsupported(void **state)
{
    need_cuda();
    ctxs *c = *state;
    const int64_t rows = 4, cols = 32;
    float *x = gen(DATA_MIXED, rows, cols, cols, 9);
    float *dx = dev_copy(x, sizeof(float) * rows * cols, 0);
    uint8_t *dc = dev_canary(64), *ds = dev_canary(64);
    float *dgs = dev_canary(4);
    nvfp4_quantizer *q = NULL;
    /* another method */
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_4OVER6), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_ERR_UNSUPPORTED);
    assert_non_null(strstr(nvfp4_context_last_error_message(c->gpu), "MAX"));
    nvfp4_quantizer_destroy(q);
    /* importance weights */
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    float h[32];
    for (int i = 0; i < 32; i++)
        h[i] = 1.0f + (float)i;
    assert_int_equal(nvfp4_quantizer_set_importance(q, h, cols), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_ERR_UNSUPPORTED);
    nvfp4_quantizer_destroy(q);
    /* statistics */
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(c->gpu, NVFP4_CTX_COLLECT_STATS, 1), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_ERR_UNSUPPORTED);
    assert_int_equal(nvfp4_context_set_int(c->gpu, NVFP4_CTX_COLLECT_STATS, 0), NVFP4_OK);
    uint8_t *hb = host_of(dc, 64);
    all_canary(hb, 64);
    free(hb);
    hb = host_of(ds, 64);
    all_canary(hb, 64);
    free(hb);
    /* and with everything back to supported settings it runs */
    assert_int_equal(nvfp4_quantize(c->gpu, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_OK);
    nvfp4_quantizer_destroy(q);
    CU(cudaFree(dx));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
    free(x);
}

static void test_streams(void **state)
{
    need_cuda();
    ctxs *c = *state;
    void *sp = (void *)&sp;
    /* CPU contexts have no stream */
    assert_int_equal(nvfp4_context_set_cuda_stream(c->cpu, NULL), NVFP4_ERR_UNSUPPORTED);
    assert_int_equal(nvfp4_context_get_cuda_stream(c->cpu, &sp), NVFP4_ERR_UNSUPPORTED);
    assert_int_equal(nvfp4_context_set_cuda_stream(NULL, NULL), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_context_get_cuda_stream(c->gpu, NULL), NVFP4_ERR_NULL_POINTER);
    assert_int_equal(nvfp4_context_get_cuda_stream(c->gpu, &sp), NVFP4_OK);
    assert_null(sp);

    cudaStream_t st;
    CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    assert_int_equal(nvfp4_context_set_cuda_stream(c->gpu, (void *)st), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_cuda_stream(c->gpu, &sp), NVFP4_OK);
    assert_ptr_equal(sp, (void *)st);
    /* results on a user stream equal the CPU's */
    qopts o = {NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_STRICT, NVFP4_RECIPE_EXACT, 0, 0.0};
    compare(c, DATA_MIXED, NVFP4_DTYPE_BF16, 300, 1000, 1000, &o, 31, 0, 0, NVFP4_DTYPE_BF16);

    /* A stream CUDA refuses to run the call on: one capturing a graph (the call must synchronise,
     * which a capturing stream does not allow). NVFP4_ERR_BACKEND, nothing written, and the
     * context recovers. (A destroyed stream is undefined behaviour in CUDA itself.) */
    const int64_t rows = 8, cols = 64;
    float *x = gen(DATA_MIXED, rows, cols, cols, 10);
    float *dx = dev_copy(x, sizeof(float) * rows * cols, 0);
    uint8_t *dc = dev_canary(rows * cols / 2), *ds = dev_canary(rows * cols / 16);
    float *dgs = dev_canary(4);
    nvfp4_quantizer *q = make_q(&o);
    o.layout = NVFP4_LAYOUT_LINEAR;
    nvfp4_quantizer *ql = make_q(&o);
    CU(cudaStreamBeginCapture(st, cudaStreamCaptureModeRelaxed));
    assert_int_equal(nvfp4_quantize(c->gpu, ql, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_ERR_BACKEND);
    printf("capturing stream: %s\n", nvfp4_context_last_error_message(c->gpu));
    assert_non_null(strstr(nvfp4_context_last_error_message(c->gpu), "CUDA"));
    assert_int_equal(nvfp4_dequantize_v2(c->gpu, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, dc, ds, 1.0f, rows, cols,
                                         NVFP4_DTYPE_F32, dx, cols),
                     NVFP4_ERR_BACKEND);
    cudaGraph_t graph = NULL;
    (void)cudaStreamEndCapture(st, &graph); /* invalidated by the refused call */
    if (graph)
        cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    uint8_t *hb = host_of(dc, rows * cols / 2);
    all_canary(hb, rows * cols / 2);
    free(hb);
    hb = host_of(ds, rows * cols / 16);
    all_canary(hb, rows * cols / 16);
    free(hb);
    assert_int_equal(nvfp4_quantize(c->gpu, ql, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_cuda_stream(c->gpu, NULL), NVFP4_OK);
    CU(cudaStreamDestroy(st));
    assert_int_equal(nvfp4_quantize(c->gpu, ql, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_OK);
    nvfp4_quantizer_destroy(q);
    nvfp4_quantizer_destroy(ql);
    CU(cudaFree(dx));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
    free(x);
}

/* A device ordinal that does not exist is a backend error, not a crash. */
static void test_bad_device(void **state)
{
    need_cuda();
    ctxs *c = *state;
    int n = 0;
    CU(cudaGetDeviceCount(&n));
    nvfp4_context *g = NULL;
    assert_int_equal(nvfp4_context_create(&g, NVFP4_BACKEND_CUDA), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(g, NVFP4_CTX_CUDA_DEVICE, n), NVFP4_OK);
    float *dx = dev_canary(64 * 4);
    uint8_t *dc = dev_canary(32), *ds = dev_canary(4);
    float *dgs = dev_canary(4);
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantize(g, q, NVFP4_DTYPE_F32, dx, 1, 64, 64, dc, ds, dgs), NVFP4_ERR_BACKEND);
    int cur = -1;
    CU(cudaGetDevice(&cur));
    assert_int_equal(cur, 0); /* the caller's current device is left alone */
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(g);
    (void)c;
    CU(cudaFree(dx));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
}

/* Device memory exhausted: a fresh context's first call needs a small device allocation (its
 * scratch words), so with every byte of device memory taken it must return
 * NVFP4_ERR_OUT_OF_MEMORY, write nothing, and work once memory is back. */
static void test_device_out_of_memory(void **state)
{
    need_cuda();
    (void)state;
    const int64_t rows = 4, cols = 64;
    float x[4 * 64];
    for (int i = 0; i < rows * cols; i++)
        x[i] = (float)(i % 17) - 8.0f;
    float *dx = dev_copy(x, sizeof x, 0);
    uint8_t *dc = dev_canary(128), *ds = dev_canary(16);
    float *dgs = dev_canary(4);
    nvfp4_context *g = NULL;
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_context_create(&g, NVFP4_BACKEND_CUDA), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    /* take the device's memory, largest pieces first */
    enum { MAX_HOG = 1 << 16 };
    void **hog = calloc(MAX_HOG, sizeof *hog);
    assert_non_null(hog);
    int nh = 0;
    for (size_t sz = (size_t)1 << 32; sz >= 256 && nh < MAX_HOG;) {
        if (cudaMalloc(&hog[nh], sz) == cudaSuccess)
            nh++;
        else
            sz /= 2;
    }
    cudaGetLastError();
    const nvfp4_status s = nvfp4_quantize(g, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs);
    for (int i = 0; i < nh; i++)
        CU(cudaFree(hog[i]));
    free(hog);
    fprintf(stderr, "  %d device allocations held; quantize returned %s (%s)\n", nh, nvfp4_status_string(s),
            nvfp4_context_last_error_message(g));
    assert_int_equal(s, NVFP4_ERR_OUT_OF_MEMORY);
    uint8_t *h = host_of(dc, 128);
    all_canary(h, 128);
    free(h);
    h = host_of(ds, 16);
    all_canary(h, 16);
    free(h);
    h = host_of(dgs, 4);
    all_canary(h, 4);
    free(h);
    /* memory back: the same context works */
    assert_int_equal(nvfp4_quantize(g, q, NVFP4_DTYPE_F32, dx, rows, cols, cols, dc, ds, dgs), NVFP4_OK);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(g);
    CU(cudaFree(dx));
    CU(cudaFree(dc));
    CU(cudaFree(ds));
    CU(cudaFree(dgs));
}

int main(void)
{
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        int n = -1;
        cudaError_t e = cudaGetDeviceCount(&n);
        printf("SKIP: no usable CUDA device, so the CUDA backend is unavailable (cudaGetDeviceCount: %s)\n",
               cudaGetErrorString(e));
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_shapes_dtypes),
        cmocka_unit_test(test_equal_formats_recipes),
        cmocka_unit_test(test_equal_special),
        cmocka_unit_test(test_equal_near_flt_max),
        cmocka_unit_test(test_equal_alignment_and_large),
        cmocka_unit_test(test_strict_nonfinite_writes_nothing),
        cmocka_unit_test(test_dequantize_bad_scale),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_bad_device),
        cmocka_unit_test(test_device_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
