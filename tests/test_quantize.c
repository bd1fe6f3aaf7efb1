/* test_quantize.c - NVFP4/MXFP4 tensors (SPEC §2, §3.1, §6): every output byte of nvfp4_quantize
 * and every dequantised value checked against a reference written here from the SPEC formulas
 * (float arithmetic for each RN32 step, ref_rounding.h for E2M1/E4M3/E8M0), for f32/f16/bf16 input,
 * odd shapes, both recipes, a caller-supplied global scale, MXFP4 RCEIL/FLOOR, the 128×4 layout,
 * the saturate policy, statistics and thread counts. */
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

#define CANARY 0xA5

/* ---- deterministic test data --------------------------------------------------------------- */

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

/* Heavy-tailed values with exact zeros, −0.0, exact grid/tie values, an all-zero block, a
 * block of −0.0, and a block far below the rest (its scale underflows when the tensor amax is large). */
static void fill_data(float *x, int64_t rows, int64_t cols, int64_t ld, uint64_t seed)
{
    rng_seed(seed);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++) {
            float v;
            uint32_t k = rng32() % 100;
            if (c >= cols)
                v = NAN; /* the gap between rows must never be read */
            else if (k < 4)
                v = 0.0f;
            else if (k < 6)
                v = -0.0f;
            else if (k < 10)
                v = (float)(ref_e2m1_value((uint8_t)(rng32() & 15)) * 0.25); /* exact ties after scaling */
            else
                v = (float)(gauss() * exp(1.5 * gauss()));
            x[r * ld + c] = v;
        }
    if (rows >= 2 && cols >= 48) {
        for (int64_t c = 0; c < 16; c++) {
            x[1 * ld + c] = 0.0f;                       /* all-zero block */
            x[1 * ld + 16 + c] = -0.0f;                 /* all −0.0 block */
            x[1 * ld + 32 + c] = (float)(1e-7 * gauss()); /* underflowing block */
        }
        x[0] = 5000.0f; /* a large tensor amax */
    }
}

/* Encodes floats into dtype bits (the values the library will see are the decoded ones). */
static void *to_dtype(const float *x, int64_t n, int32_t dtype, float *seen)
{
    if (dtype == NVFP4_DTYPE_F32) {
        float *o = malloc((size_t)n * sizeof *o);
        memcpy(o, x, (size_t)n * sizeof *o);
        memcpy(seen, x, (size_t)n * sizeof *o);
        return o;
    }
    uint16_t *o = malloc((size_t)n * sizeof *o);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == NVFP4_DTYPE_F16) {
            o[i] = ref_f16_from_double((double)x[i]);
            seen[i] = (float)ref_f16_value(o[i]);
        } else {
            o[i] = ref_bf16_from_double((double)x[i]);
            seen[i] = (float)ref_bf16_value(o[i]);
        }
    }
    return o;
}

/* ---- the reference (SPEC §2, §3, §3.1) ------------------------------------------------------ */

typedef struct {
    int format;   /* NVFP4_FORMAT_* */
    int recipe;   /* NVFP4_RECIPE_* */
    int e8m0;     /* NVFP4_E8M0_* */
    int saturate; /* non-finite policy */
    float gs;     /* caller's s_dec, 0 = compute */
} ref_opts;

typedef struct {
    uint8_t *codes, *scales; /* packed codes, linear scales */
    float s_dec;
    int64_t nblk, row_bytes, underflow, nonfinite;
    double sse, sum_sq;
} ref_out;

static int isfin(float v) { return !isnan(v) && !isinf(v); }

static void ref_free(ref_out *o)
{
    free(o->codes);
    free(o->scales);
}

/* Decoded value of element (code, scale byte) per SPEC §2: RN32(RN32(value·f(S))·s_dec). */
static float ref_decode(const ref_opts *o, uint8_t code, uint8_t sbyte, float s_dec)
{
    float v = (float)ref_e2m1_value(code);
    float sv = o->format == NVFP4_FORMAT_MXFP4 ? (float)ref_e8m0_value(sbyte) : (float)ref_e4m3_value(sbyte);
    float p = v * sv;
    float r = p * s_dec;
    return r;
}

static void ref_quantize(const ref_opts *o, const float *x, int64_t rows, int64_t cols, int64_t ld, ref_out *out)
{
    const int B = o->format == NVFP4_FORMAT_MXFP4 ? 32 : 16;
    const int64_t nblk = (cols + B - 1) / B;
    memset(out, 0, sizeof *out);
    out->nblk = nblk;
    out->row_bytes = nblk * B / 2;
    out->codes = calloc((size_t)(rows * out->row_bytes), 1);
    out->scales = calloc((size_t)(rows * nblk), 1);

    float A = 0.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * ld + c];
            if (isfin(v))
                A = fabsf(v) > A ? fabsf(v) : A;
            else
                out->nonfinite++;
        }
    float s_enc, s_dec;
    if (o->format == NVFP4_FORMAT_MXFP4) {
        s_enc = s_dec = 1.0f;
    } else if (o->gs > 0.0f) {
        s_dec = o->gs;
        s_enc = 1.0f / s_dec;
        if (s_enc > FLT_MAX)
            s_enc = FLT_MAX;
    } else if (o->recipe == NVFP4_RECIPE_MODELOPT) {
        /* ModelOpt's weight_scale_2 = A / (6·448) as one fp32 division */
        s_dec = A > 0.0f ? A / 2688.0f : 1.0f;
        if (!(s_dec > 0.0f))
            s_dec = 1.0f;
        s_enc = 1.0f / s_dec;
    } else if (A == 0.0f) {
        s_enc = s_dec = 1.0f;
    } else {
        s_enc = (6.0f * 448.0f) / A; /* RN32(6·M/A) */
        if (s_enc > FLT_MAX)
            s_enc = FLT_MAX; /* TE's clamp (research/nvfp4-format.md "suggested reference") */
        s_dec = 1.0f / s_enc;
    }
    out->s_dec = s_dec;
    const float sixth = 1.0f / 6.0f;
    const float pre = s_enc * sixth; /* RN32(s_enc · RN32(1/6)) */

    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nblk; b++) {
            float xb[32];
            for (int i = 0; i < B; i++) {
                int64_t c = b * B + i;
                xb[i] = c < cols ? x[r * ld + c] : 0.0f;
            }
            float ab = 0.0f;
            for (int i = 0; i < B; i++)
                if (isfin(xb[i]) && fabsf(xb[i]) > ab)
                    ab = fabsf(xb[i]);
            uint8_t S, codes[32];
            if (o->format == NVFP4_FORMAT_MXFP4) {
                S = ref_e8m0_from_amax(ab, o->e8m0 == NVFP4_E8M0_FLOOR);
                for (int i = 0; i < B; i++) /* exact: a power-of-two scaling in double */
                    codes[i] = isfin(xb[i]) ? ref_e2m1(ldexp((double)xb[i], 127 - (int)S)) : ref_e2m1(xb[i]);
            } else if (o->recipe == NVFP4_RECIPE_MODELOPT) {
                float six_dec = 6.0f * s_dec;
                float Sf = ab / six_dec;
                if (Sf == 0.0f)
                    Sf = 1.0f;
                S = ref_e4m3(Sf);
                float den = (float)ref_e4m3_value(S) * s_dec;
                for (int i = 0; i < B; i++) {
                    float y = xb[i] / den;
                    /* SPEC §2: padding codes are 0, also where an underflowed scale makes the
                     * recipe's 0/0 a NaN (real zero elements keep the recipe's 0x7) */
                    codes[i] = b * B + i < cols ? ref_e2m1_modelopt(y) : 0;
                }
                out->underflow += ab > 0.0f && den == 0.0f;
            } else {
                float prod = ab * pre;
                S = ref_e4m3(prod);
                float fS = (float)ref_e4m3_value(S);
                float inv = 0.0f;
                if (ab != 0.0f && fS != 0.0f) {
                    float d = fS * s_dec;
                    inv = 1.0f / d;
                    if (inv > FLT_MAX)
                        inv = FLT_MAX;
                }
                for (int i = 0; i < B; i++) {
                    float y = isfin(xb[i]) ? xb[i] * inv : xb[i];
                    codes[i] = ref_e2m1(y);
                }
                out->underflow += ab > 0.0f && fS == 0.0f;
            }
            out->scales[r * nblk + b] = S;
            for (int i = 0; i < B; i += 2)
                out->codes[r * out->row_bytes + b * B / 2 + i / 2] = (uint8_t)(codes[i] | (codes[i + 1] << 4));
            for (int i = 0; i < B && b * B + i < cols; i++) {
                if (!isfin(xb[i]))
                    continue;
                double d = (double)ref_decode(o, codes[i], S, s_dec) - (double)xb[i];
                out->sse += d * d;
                out->sum_sq += (double)xb[i] * (double)xb[i];
            }
        }
}

/* ---- running the library --------------------------------------------------------------------- */

static nvfp4_context *new_ctx(int threads, int stats)
{
    nvfp4_context *ctx = NULL;
    assert_int_equal(nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, threads), NVFP4_OK);
    assert_int_equal(nvfp4_context_set_int(ctx, NVFP4_CTX_COLLECT_STATS, stats), NVFP4_OK);
    return ctx;
}

static nvfp4_quantizer *new_q(const ref_opts *o, int layout)
{
    nvfp4_quantizer *q = NULL;
    assert_int_equal(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, o->format), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_RECIPE, o->recipe), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_E8M0_MODE, o->e8m0), NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_NONFINITE,
                                             o->saturate ? NVFP4_NONFINITE_SATURATE : NVFP4_NONFINITE_STRICT),
                     NVFP4_OK);
    assert_int_equal(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, layout), NVFP4_OK);
    if (o->gs > 0.0f)
        assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, (double)o->gs), NVFP4_OK);
    return q;
}

static int64_t report_diff(const char *what, const uint8_t *got, const uint8_t *want, int64_t n, int64_t per_row)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ < 5)
            fprintf(stderr, "%s[row %lld, byte %lld] = 0x%02X, reference 0x%02X\n", what, (long long)(i / per_row),
                    (long long)(i % per_row), got[i], want[i]);
    return bad;
}

/* Quantises x (given as floats, fed as dtype) with the library, compares every byte with the
 * reference, then dequantises to every dtype (dst ld = cols + 3, gap columns must stay
 * untouched) and compares each value with the reference decode. */
static void check_case(const ref_opts *o, int32_t dtype, int64_t rows, int64_t cols, int64_t ld, uint64_t seed,
                       int threads)
{
    int64_t n = rows * ld;
    float *x = malloc((size_t)n * sizeof *x), *seen = malloc((size_t)n * sizeof *seen);
    fill_data(x, rows, cols, ld, seed);
    void *src = to_dtype(x, n, dtype, seen);

    ref_out ref;
    ref_quantize(o, seen, rows, cols, ld, &ref);

    nvfp4_context *ctx = new_ctx(threads, 1);
    nvfp4_quantizer *q = new_q(o, NVFP4_LAYOUT_LINEAR);
    int64_t csize = 0, ssize = 0;
    assert_int_equal(nvfp4_codes_size(o->format, rows, cols, &csize), NVFP4_OK);
    assert_int_equal(nvfp4_scales_size(o->format, NVFP4_LAYOUT_LINEAR, rows, cols, &ssize), NVFP4_OK);
    assert_int_equal(csize, rows * ref.row_bytes);
    assert_int_equal(ssize, rows * ref.nblk);
    uint8_t *codes = malloc((size_t)csize + 16), *scales = malloc((size_t)ssize + 16);
    memset(codes, CANARY, (size_t)csize + 16);
    memset(scales, CANARY, (size_t)ssize + 16);
    float gs = -1.0f;
    nvfp4_status st = nvfp4_quantize(ctx, q, dtype, src, rows, cols, ld, codes, scales, &gs);
    if (st != NVFP4_OK)
        fprintf(stderr, "quantize: %s (%s)\n", nvfp4_status_string(st), nvfp4_context_last_error_message(ctx));
    assert_int_equal(st, NVFP4_OK);
    if (gs != ref.s_dec)
        fprintf(stderr, "global scale %a, reference %a\n", (double)gs, (double)ref.s_dec);
    assert_true(gs == ref.s_dec);
    int64_t bad = report_diff("scales", scales, ref.scales, ssize, ref.nblk) +
                  report_diff("codes", codes, ref.codes, csize, ref.row_bytes);
    if (bad)
        fprintf(stderr, "case: format %d recipe %d e8m0 %d gs %g dtype %d shape %lldx%lld ld %lld\n", o->format,
                o->recipe, o->e8m0, (double)o->gs, (int)dtype, (long long)rows, (long long)cols, (long long)ld);
    assert_int_equal(bad, 0);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(codes[csize + i], CANARY);
        assert_int_equal(scales[ssize + i], CANARY);
    }

    /* statistics: a recomputation in float64 (the order of summation may differ) */
    nvfp4_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    assert_int_equal(nvfp4_context_get_stats(ctx, &stats), NVFP4_OK);
    assert_int_equal(stats.blocks, rows * ref.nblk);
    assert_int_equal(stats.blocks_underflow, ref.underflow);
    assert_int_equal(stats.nonfinite, ref.nonfinite);
    assert_true(fabs(stats.sse - ref.sse) <= 1e-9 * ref.sse + 1e-300);
    assert_true(fabs(stats.sum_sq - ref.sum_sq) <= 1e-9 * ref.sum_sq + 1e-300);

    /* dequantise to each dtype */
    int64_t dld = cols + 3;
    for (int32_t dt = 0; dt < 3; dt++) {
        size_t es = dt == NVFP4_DTYPE_F32 ? 4 : 2;
        uint8_t *dst = malloc((size_t)(rows * dld) * es);
        memset(dst, CANARY, (size_t)(rows * dld) * es);
        st = nvfp4_dequantize_v2(ctx, o->format, NVFP4_LAYOUT_LINEAR, codes, scales, gs, rows, cols, dt, dst, dld);
        assert_int_equal(st, NVFP4_OK);
        if (o->format == NVFP4_FORMAT_NVFP4) { /* the v1 entry point is NVFP4 linear */
            uint8_t *dst1 = malloc((size_t)(rows * dld) * es);
            memset(dst1, CANARY, (size_t)(rows * dld) * es);
            assert_int_equal(nvfp4_dequantize(ctx, codes, scales, gs, rows, cols, dt, dst1, dld), NVFP4_OK);
            assert_memory_equal(dst1, dst, (size_t)(rows * dld) * es);
            free(dst1);
        }
        int64_t dbad = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < dld; c++) {
                const uint8_t *p = dst + (size_t)(r * dld + c) * es;
                if (c >= cols) {
                    for (size_t k = 0; k < es; k++)
                        assert_int_equal(p[k], CANARY);
                    continue;
                }
                uint8_t code = (uint8_t)((ref.codes[r * ref.row_bytes + c / 2] >> ((c & 1) * 4)) & 0xF);
                int B = o->format == NVFP4_FORMAT_MXFP4 ? 32 : 16;
                float want = ref_decode(o, code, ref.scales[r * ref.nblk + c / B], ref.s_dec);
                int ok;
                if (dt == NVFP4_DTYPE_F32) {
                    float g;
                    memcpy(&g, p, 4);
                    ok = ref_f2u(g) == ref_f2u(want);
                } else {
                    uint16_t g, w = dt == NVFP4_DTYPE_F16 ? ref_f16_from_double(want) : ref_bf16_from_double(want);
                    memcpy(&g, p, 2);
                    ok = g == w;
                }
                if (!ok && dbad++ < 5)
                    fprintf(stderr, "dequantize dtype %d (%lld,%lld): want %a\n", (int)dt, (long long)r,
                            (long long)c, (double)want);
            }
        assert_int_equal(dbad, 0);
        free(dst);
    }
    /* error sanity: MAX keeps the relative error of this data modest (unless the caller's global
     * scale forces saturation or underflow on purpose) */
    if (ref.sum_sq > 0 && o->gs == 0.0f)
        assert_true(stats.sse / stats.sum_sq < 0.05);

    ref_free(&ref);
    free(codes);
    free(scales);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
    free(src);
    free(x);
    free(seen);
}

static const int64_t shapes[][3] = {
    /* rows, cols, ld */
    {1, 1, 1}, {1, 16, 16}, {1, 17, 17}, {2, 48, 48}, {3, 33, 40}, {7, 100, 100}, {16, 64, 80}, {5, 250, 251},
    {33, 160, 160}, {4, 31, 31}, {130, 96, 100}, {2, 64, 64},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static void run_shapes(const ref_opts *o, int32_t dtype)
{
    for (size_t i = 0; i < NSHAPES; i++)
        check_case(o, dtype, shapes[i][0], shapes[i][1], shapes[i][2], 100 + i, 1);
}

static void test_max_exact_f32(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    run_shapes(&o, NVFP4_DTYPE_F32);
}

static void test_max_exact_f16(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    run_shapes(&o, NVFP4_DTYPE_F16);
}

static void test_max_exact_bf16(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    run_shapes(&o, NVFP4_DTYPE_BF16);
}

/* Every width 1..70 (vector kernels' tails), row padding in ld, two thread counts. */
static void test_many_widths(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    for (int64_t cols = 1; cols <= 70; cols++) {
        check_case(&o, NVFP4_DTYPE_F32, 3, cols, cols + (cols % 3), 1000 + cols, 1 + (int)(cols % 2));
        check_case(&o, NVFP4_DTYPE_BF16, 2, cols, cols, 2000 + cols, 1);
    }
    o.format = NVFP4_FORMAT_MXFP4;
    for (int64_t cols = 1; cols <= 70; cols += 3)
        check_case(&o, NVFP4_DTYPE_F16, 2, cols, cols + 1, 3000 + cols, 1);
}

static void test_modelopt(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_MODELOPT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    run_shapes(&o, NVFP4_DTYPE_F32);
    run_shapes(&o, NVFP4_DTYPE_BF16);
}

/* The ModelOpt recipe's documented differences on a small hand-made tensor. */
static void test_modelopt_specifics(void **state)
{
    (void)state;
    float x[48];
    for (int i = 0; i < 16; i++) {
        x[i] = 0.0f;                           /* block 0: zero → byte 0x38 (1.0) */
        x[16 + i] = i % 2 ? -0.0f : 0.0f;      /* block 1: ±0 → codes 0x0 */
        x[32 + i] = (float)(i + 1) * 0.5f;     /* block 2: 0.5 .. 8 */
    }
    x[33] = -0.0f;
    x[34] = -1e-30f;
    nvfp4_context *ctx = new_ctx(1, 0);
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_MODELOPT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
    uint8_t codes[24], scales[3];
    float gs;
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 1, 48, 48, codes, scales, &gs), NVFP4_OK);
    assert_true(gs == 8.0f / 2688.0f);
    assert_int_equal(scales[0], 0x38);
    assert_int_equal(scales[1], 0x38);
    for (int j = 0; j < 16; j++)
        assert_int_equal(codes[j], 0x00); /* −0.0 never gets the sign bit */
    assert_int_equal(codes[16] >> 4, 0x0); /* x[33] = −0.0 */
    assert_int_equal(codes[17] & 0xF, 0x8); /* x[34] = −1e-30 < 0: sign bit, magnitude 0 */
    /* the exact recipe on the same data: zero blocks store 0x00 and −0.0 keeps its sign */
    ref_opts e = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    nvfp4_quantizer *qe = new_q(&e, NVFP4_LAYOUT_LINEAR);
    assert_int_equal(nvfp4_quantize(ctx, qe, NVFP4_DTYPE_F32, x, 1, 48, 48, codes, scales, &gs), NVFP4_OK);
    assert_int_equal(scales[0], 0x00);
    assert_int_equal(scales[1], 0x00);
    assert_int_equal(codes[8], 0x80); /* x[16] = 0 → 0x0, x[17] = −0.0 → 0x8 */
    assert_int_equal(codes[16] >> 4, 0x8);
    /* ModelOpt takes the sign from the scaled value (x / den < 0): an element so small that the
     * quotient underflows to −0.0 gets 0x0 (SPEC §3.1: RN32(x / ...) = −0.0 → 0x0). */
    float y[16];
    for (int i = 0; i < 16; i++)
        y[i] = 1.0f;
    y[0] = 1e30f;
    y[1] = -1e-20f; /* −1e-20 / (448 · 1e30/2688) underflows to −0.0 in float */
    y[2] = -1e-5f;  /* −1e-5 / 1.7e29 = −6e-35: still negative → 0x8 */
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, y, 1, 16, 16, codes, scales, &gs), NVFP4_OK);
    assert_int_equal(scales[0], 0x7E);
    assert_int_equal(codes[0] & 0xF, 0x7);
    assert_int_equal(codes[0] >> 4, 0x0);
    assert_int_equal(codes[1] & 0xF, 0x8);
    nvfp4_quantizer_destroy(q);
    nvfp4_quantizer_destroy(qe);
    nvfp4_context_destroy(ctx);
}

static void test_global_scale(void **state)
{
    (void)state;
    static const float scales[] = {0.01f, 1.0f, 3.7e-3f, 1e-6f /* block scales saturate at 448 */,
                                   100.0f /* block scales underflow */};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, scales[i]};
        check_case(&o, NVFP4_DTYPE_F32, 7, 100, 100, 7 + i, 1);
        check_case(&o, NVFP4_DTYPE_BF16, 3, 33, 40, 17 + i, 1);
        o.recipe = NVFP4_RECIPE_MODELOPT;
        check_case(&o, NVFP4_DTYPE_F32, 7, 100, 100, 27 + i, 1);
    }
}

static void test_mxfp4(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_MXFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    run_shapes(&o, NVFP4_DTYPE_F32);
    run_shapes(&o, NVFP4_DTYPE_F16);
    o.e8m0 = NVFP4_E8M0_FLOOR;
    run_shapes(&o, NVFP4_DTYPE_F32);
    run_shapes(&o, NVFP4_DTYPE_BF16);
}

static void test_saturate_policy(void **state)
{
    (void)state;
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 1, 0.0f};
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 7) - 3.0f;
    x[3] = NAN;
    x[4] = INFINITY;
    x[5] = -INFINITY;
    x[20] = -NAN;
    for (int i = 32; i < 48; i++) /* a block of nothing but non-finite values */
        x[i] = i % 2 ? INFINITY : NAN;
    for (int fmt = 0; fmt < 2; fmt++)
        for (int recipe = 0; recipe < 2 - fmt; recipe++)
            for (int32_t dt = 0; dt < 3; dt++) {
                o.format = fmt;
                o.recipe = recipe;
                float seen[64];
                void *src = to_dtype(x, 64, dt, seen);
                ref_out ref;
                ref_quantize(&o, seen, 1, 64, 64, &ref);
                nvfp4_context *ctx = new_ctx(1, 1);
                nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
                uint8_t codes[32], scales[4];
                float gs;
                nvfp4_status st = nvfp4_quantize(ctx, q, dt, src, 1, 64, 64, codes, scales, &gs);
                assert_int_equal(st, NVFP4_OK);
                assert_true(gs == ref.s_dec);
                assert_memory_equal(scales, ref.scales, (size_t)ref.nblk);
                assert_memory_equal(codes, ref.codes, 32);
                /* SPEC §1 codes for the non-finite inputs */
                assert_int_equal(codes[1] >> 4, 0x7);   /* x[3] NaN */
                assert_int_equal(codes[2] & 0xF, 0x7);  /* x[4] +Inf */
                assert_int_equal(codes[2] >> 4, 0xF);   /* x[5] −Inf */
                assert_int_equal(codes[10] & 0xF, 0x7); /* x[20] −NaN */
                /* amax excludes them: the global scale comes from |x| ≤ 3 */
                if (fmt == NVFP4_FORMAT_NVFP4 && recipe == NVFP4_RECIPE_EXACT)
                    assert_true(gs == 1.0f / (2688.0f / 3.0f));
                nvfp4_stats stats;
                memset(&stats, 0, sizeof stats);
                stats.size = sizeof stats;
                assert_int_equal(nvfp4_context_get_stats(ctx, &stats), NVFP4_OK);
                assert_int_equal(stats.nonfinite, 20);
                assert_int_equal(stats.nonfinite, ref.nonfinite);
                assert_true(isfinite(stats.sse));
                /* and strict rejects the same input, writing nothing */
                ref_opts s = o;
                s.saturate = 0;
                nvfp4_quantizer *qs = new_q(&s, NVFP4_LAYOUT_LINEAR);
                memset(codes, CANARY, sizeof codes);
                memset(scales, CANARY, sizeof scales);
                gs = -7.0f;
                assert_int_equal(nvfp4_quantize(ctx, qs, dt, src, 1, 64, 64, codes, scales, &gs),
                                 NVFP4_ERR_NONFINITE);
                for (size_t k = 0; k < sizeof codes; k++)
                    assert_int_equal(codes[k], CANARY);
                for (size_t k = 0; k < sizeof scales; k++)
                    assert_int_equal(scales[k], CANARY);
                assert_true(gs == -7.0f);
                nvfp4_quantizer_destroy(qs);
                nvfp4_quantizer_destroy(q);
                nvfp4_context_destroy(ctx);
                ref_free(&ref);
                free(src);
            }
}

/* quantise with the 128×4 layout = swizzle of the linear result; dequantise_v2 reads it back. */
static void test_layout_128x4(void **state)
{
    (void)state;
    static const int64_t dims[][2] = {{1, 16}, {3, 33}, {129, 100}, {200, 512}, {128, 64}};
    for (int fmt = 0; fmt < 2; fmt++)
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            int64_t rows = dims[i][0], cols = dims[i][1];
            float *x = malloc((size_t)(rows * cols) * sizeof *x);
            fill_data(x, rows, cols, cols, 300 + i);
            ref_opts o = {fmt, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
            nvfp4_context *ctx = new_ctx(2, 0);
            nvfp4_quantizer *ql = new_q(&o, NVFP4_LAYOUT_LINEAR), *qs = new_q(&o, NVFP4_LAYOUT_128X4);
            int64_t cs, ls, ss;
            assert_int_equal(nvfp4_codes_size(fmt, rows, cols, &cs), NVFP4_OK);
            assert_int_equal(nvfp4_scales_size(fmt, NVFP4_LAYOUT_LINEAR, rows, cols, &ls), NVFP4_OK);
            assert_int_equal(nvfp4_scales_size(fmt, NVFP4_LAYOUT_128X4, rows, cols, &ss), NVFP4_OK);
            int64_t nblk = ls / rows;
            uint8_t *c1 = malloc((size_t)cs), *c2 = malloc((size_t)cs), *lin = malloc((size_t)ls);
            uint8_t *sw = malloc((size_t)ss + 8), *sw_ref = malloc((size_t)ss);
            memset(sw, CANARY, (size_t)ss + 8);
            float g1, g2;
            assert_int_equal(nvfp4_quantize(ctx, ql, NVFP4_DTYPE_F32, x, rows, cols, cols, c1, lin, &g1), NVFP4_OK);
            assert_int_equal(nvfp4_quantize(ctx, qs, NVFP4_DTYPE_F32, x, rows, cols, cols, c2, sw, &g2), NVFP4_OK);
            assert_memory_equal(c1, c2, (size_t)cs);
            assert_true(g1 == g2);
            assert_int_equal(nvfp4_scales_swizzle(lin, rows, nblk, sw_ref), NVFP4_OK);
            assert_memory_equal(sw, sw_ref, (size_t)ss);
            for (int k = 0; k < 8; k++)
                assert_int_equal(sw[ss + k], CANARY);
            float *d1 = malloc((size_t)(rows * cols) * sizeof *d1), *d2 = malloc((size_t)(rows * cols) * sizeof *d2);
            assert_int_equal(nvfp4_dequantize_v2(ctx, fmt, NVFP4_LAYOUT_LINEAR, c1, lin, g1, rows, cols,
                                                 NVFP4_DTYPE_F32, d1, cols),
                             NVFP4_OK);
            assert_int_equal(nvfp4_dequantize_v2(ctx, fmt, NVFP4_LAYOUT_128X4, c2, sw, g2, rows, cols,
                                                 NVFP4_DTYPE_F32, d2, cols),
                             NVFP4_OK);
            assert_memory_equal(d1, d2, (size_t)(rows * cols) * sizeof *d1);
            free(d1);
            free(d2);
            free(c1);
            free(c2);
            free(lin);
            free(sw);
            free(sw_ref);
            free(x);
            nvfp4_quantizer_destroy(ql);
            nvfp4_quantizer_destroy(qs);
            nvfp4_context_destroy(ctx);
        }
}

/* threads 1, 2, 3 and 0 (one per CPU) give the same bytes and the same counters. */
static void test_threads_identical(void **state)
{
    (void)state;
    const int64_t rows = 257, cols = 1000, ld = 1003;
    float *x = malloc((size_t)(rows * ld) * sizeof *x), *seen = malloc((size_t)(rows * ld) * sizeof *seen);
    fill_data(x, rows, cols, ld, 99);
    for (int32_t dt = 0; dt < 3; dt += 2) {
        void *src = to_dtype(x, rows * ld, dt, seen);
        for (int fmt = 0; fmt < 2; fmt++) {
            ref_opts o = {fmt, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
            int64_t cs, ss;
            assert_int_equal(nvfp4_codes_size(fmt, rows, cols, &cs), NVFP4_OK);
            assert_int_equal(nvfp4_scales_size(fmt, NVFP4_LAYOUT_LINEAR, rows, cols, &ss), NVFP4_OK);
            uint8_t *c0 = malloc((size_t)cs), *s0 = malloc((size_t)ss), *c = malloc((size_t)cs),
                    *s = malloc((size_t)ss);
            float g0 = 0, g = 0;
            nvfp4_stats st0, st;
            static const int counts[] = {1, 2, 3, 0};
            for (size_t t = 0; t < 4; t++) {
                nvfp4_context *ctx = new_ctx(counts[t], 1);
                nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
                int64_t got;
                assert_int_equal(nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &got), NVFP4_OK);
                assert_true(counts[t] == 0 ? got >= 1 : got == counts[t]);
                uint8_t *cc = t ? c : c0, *sc = t ? s : s0;
                float *gg = t ? &g : &g0;
                nvfp4_stats *pst = t ? &st : &st0;
                assert_int_equal(nvfp4_quantize(ctx, q, dt, src, rows, cols, ld, cc, sc, gg), NVFP4_OK);
                memset(pst, 0, sizeof *pst);
                pst->size = sizeof *pst;
                assert_int_equal(nvfp4_context_get_stats(ctx, pst), NVFP4_OK);
                if (t) {
                    assert_memory_equal(c, c0, (size_t)cs);
                    assert_memory_equal(s, s0, (size_t)ss);
                    assert_true(g == g0);
                    assert_int_equal(st.blocks, st0.blocks);
                    assert_int_equal(st.blocks_underflow, st0.blocks_underflow);
                    assert_true(fabs(st.sse - st0.sse) <= 1e-12 * st0.sse);
                    assert_true(fabs(st.sum_sq - st0.sum_sq) <= 1e-12 * st0.sum_sq);
                }
                nvfp4_quantizer_destroy(q);
                nvfp4_context_destroy(ctx);
            }
            /* and the bytes are the reference's */
            ref_out ref;
            ref_quantize(&o, seen, rows, cols, ld, &ref);
            assert_memory_equal(c0, ref.codes, (size_t)cs);
            assert_memory_equal(s0, ref.scales, (size_t)ss);
            ref_free(&ref);
            free(c0);
            free(s0);
            free(c);
            free(s);
        }
        free(src);
    }
    free(x);
    free(seen);
}

/* Statistics: SSE equals a recomputation from the library's own dequantised output. */
/* The statistics decode the stored codes: with the ModelOpt recipe and a subnormal global
 * scale the zero padding of a 1-column tensor was coded 0x7 before SPEC §2's fix-up to 0, and
 * the statistics read the unfixed codes (found by fuzz_quantize on the 16-core run). */
static void test_stats_padding_modelopt(void **state)
{
    (void)state;
    float x[5] = {0.0f, 0x1p-148f, 0.0f, 0x1p-136f, 0.0f}, y[5];
    nvfp4_context *ctx = new_ctx(1, 1);
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_MODELOPT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
    assert_int_equal(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, 0x1.8p-148), NVFP4_OK);
    uint8_t codes[5 * 8], scales[5];
    float gs;
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, 5, 1, 1, codes, scales, &gs), NVFP4_OK);
    for (int r = 0; r < 5; r++)
        for (int j = 0; j < 8; j++)
            assert_int_equal(codes[r * 8 + j] & (j ? 0xFF : 0xF0), 0); /* padding codes are 0 */
    nvfp4_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_OK);
    assert_int_equal(nvfp4_dequantize(ctx, codes, scales, gs, 5, 1, NVFP4_DTYPE_F32, y, 1), NVFP4_OK);
    double sse = 0;
    for (int i = 0; i < 5; i++)
        sse += ((double)y[i] - (double)x[i]) * ((double)y[i] - (double)x[i]);
    assert_true(sse > 0);
    assert_true(st.sse == sse); /* 2^-284 both: no padding element counted */
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
}

static void test_stats_recomputed(void **state)
{
    (void)state;
    const int64_t rows = 19, cols = 75;
    float *x = malloc((size_t)(rows * cols) * sizeof *x), *y = malloc((size_t)(rows * cols) * sizeof *y);
    fill_data(x, rows, cols, cols, 5);
    nvfp4_context *ctx = new_ctx(1, 1);
    ref_opts o = {NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT, NVFP4_E8M0_RCEIL, 0, 0.0f};
    nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
    uint8_t codes[19 * 40], scales[19 * 5];
    float gs;
    nvfp4_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_ERR_STATE); /* nothing ran yet */
    assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, rows, cols, cols, codes, scales, &gs), NVFP4_OK);
    assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_OK);
    assert_int_equal(nvfp4_dequantize(ctx, codes, scales, gs, rows, cols, NVFP4_DTYPE_F32, y, cols), NVFP4_OK);
    double sse = 0, ss = 0;
    for (int64_t i = 0; i < rows * cols; i++) {
        double d = (double)y[i] - (double)x[i];
        sse += d * d;
        ss += (double)x[i] * (double)x[i];
    }
    assert_true(sse > 0);
    assert_true(fabs(st.sse - sse) <= 1e-9 * sse);
    assert_true(fabs(st.sum_sq - ss) <= 1e-9 * ss);
    assert_int_equal(st.blocks, rows * 5);
    assert_int_equal(st.blocks_chose_4, 0);
    assert_int_equal(st.nonfinite, 0);
    assert_int_equal(st.blocks_underflow, 1); /* fill_data's tiny block under x[0] = 5000 */
    /* a caller that knows an older, shorter struct gets only that much written */
    unsigned char small[offsetof(nvfp4_stats, sum_sq)];
    memset(small, CANARY, sizeof small);
    size_t sz = sizeof small;
    memcpy(small, &sz, sizeof sz);
    unsigned char big[sizeof(nvfp4_stats) + 16];
    memset(big, CANARY, sizeof big);
    memcpy(big, small, sizeof small);
    assert_int_equal(nvfp4_context_get_stats(ctx, (nvfp4_stats *)(void *)big), NVFP4_OK);
    for (size_t i = sizeof small; i < sizeof big; i++)
        assert_int_equal(big[i], CANARY);
    double got_sse;
    memcpy(&got_sse, big + offsetof(nvfp4_stats, sse), sizeof got_sse);
    assert_true(got_sse == st.sse);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
    free(x);
    free(y);
}

/* MXFP4 near FLT_MAX (docs/FORMAT.md, "MXFP4 near FLT_MAX"): with RCEIL a finite element with
 * |x| ≥ 1.75·2^127 keeps the hardware's scale 2^126 and code 4, whose value 2^128 float32 cannot
 * hold: it dequantises to ±Inf (RN32 of the exact value), every other element exactly; FLOOR
 * never overflows. The statistics stay defined: an element of positive weight that decodes to
 * ±Inf makes sse +Inf, one of zero weight is left out (it used to give 0·Inf = NaN). */
static void test_mxfp4_near_flt_max(void **state)
{
    (void)state;
    enum { ROWS = 2, COLS = 64, NB = 2 };
    const float thr = 0x1.cp127f; /* 1.75·2^127: the midpoint between 3·2^126 and 4·2^126 = 2^128 */
    float x[ROWS * COLS], y[ROWS * COLS], h[COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = (float)((i * 37) % 29 - 14) * 0.25f;
    x[0] = thr;                      /* the tie: code 4 (even), +Inf */
    x[1] = nextafterf(thr, 0.0f);    /* just below: code 3, 1.5·2^127 */
    x[2] = -FLT_MAX;                 /* code 0xC, −Inf */
    x[3] = 0x1.8p127f;               /* 3·2^126 exactly */
    x[4] = 0x1p-30f;                 /* far below the block's scale: code 0 */
    x[COLS + 5] = 0x1.9p127f;        /* row 1, block 0: amax between 1.5 and 1.75·2^127 (finite) */
    x[COLS + 40] = FLT_MAX;          /* row 1, block 1 */
    x[COLS + 41] = -thr;
    for (int c = 0; c < COLS; c++)
        h[c] = 1.0f;
    for (int e8 = NVFP4_E8M0_RCEIL; e8 <= NVFP4_E8M0_FLOOR; e8++) {
        ref_opts o = {NVFP4_FORMAT_MXFP4, NVFP4_RECIPE_EXACT, e8, 0, 0.0f};
        nvfp4_context *ctx = new_ctx(1, 1);
        nvfp4_quantizer *q = new_q(&o, NVFP4_LAYOUT_LINEAR);
        uint8_t codes[ROWS * COLS / 2], scales[ROWS * NB];
        float gs = 0.0f;
        assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, ROWS, COLS, COLS, codes, scales, &gs), NVFP4_OK);
        assert_true(gs == 1.0f);
        nvfp4_stats st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_OK);
        assert_int_equal(nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, codes, scales, 1.0f, ROWS,
                                             COLS, NVFP4_DTYPE_F32, y, COLS),
                         NVFP4_OK);
        double sse = 0.0, sum_sq = 0.0;
        int n_inf = 0;
        for (int r = 0; r < ROWS; r++)
            for (int k = 0; k < NB; k++) {
                /* the hardware's bits: cvt.rp.satfinite.ue8m0x2 on amax/6, cvt.rn.satfinite.e2m1x2 */
                float a = 0.0f;
                for (int i = 0; i < 32; i++)
                    a = fabsf(x[r * COLS + k * 32 + i]) > a ? fabsf(x[r * COLS + k * 32 + i]) : a;
                uint8_t sb = 0;
                assert_int_equal(nvfp4_e8m0_from_amax(a, e8, &sb), NVFP4_OK);
                assert_int_equal(scales[r * NB + k], sb);
                if (e8 == NVFP4_E8M0_RCEIL && k == 0)
                    assert_int_equal(sb, 253); /* 2^126 */
                for (int i = 0; i < 32; i++) {
                    int c = k * 32 + i;
                    float v = x[r * COLS + c];
                    uint8_t code = (uint8_t)((codes[r * COLS / 2 + c / 2] >> ((c & 1) * 4)) & 0xF);
                    assert_int_equal(code, nvfp4_e2m1_from_float(v * ldexpf(1.0f, 127 - (int)sb)));
                    double exact = (double)nvfp4_e2m1_to_float(code) * ldexp(1.0, (int)sb - 127);
                    float got = y[r * COLS + c];
                    if (e8 == NVFP4_E8M0_RCEIL && fabsf(v) >= thr) {
                        /* the format's nearest value is ±2^128: RN32 overflows to ±Inf */
                        assert_true(exact == (v > 0 ? 0x1p128 : -0x1p128));
                        assert_true(isinf(got) && (got > 0) == (v > 0));
                        n_inf++;
                        sum_sq += (double)v * (double)v;
                        continue;
                    }
                    assert_true(isfinite(got));
                    assert_true((double)got == exact);
                    sse += ((double)got - (double)v) * ((double)got - (double)v);
                    sum_sq += (double)v * (double)v;
                }
            }
        assert_int_equal(n_inf, e8 == NVFP4_E8M0_RCEIL ? 4 : 0);
        if (n_inf)
            assert_true(isinf(st.sse) && st.sse > 0);
        else
            assert_true(fabs(st.sse - sse) <= 1e-12 * sse);
        assert_true(fabs(st.sum_sq - sum_sq) <= 1e-12 * sum_sq);
        /* bf16 and f16 results are the float32 ones converted (±Inf stays ±Inf) */
        uint16_t y16[ROWS * COLS];
        assert_int_equal(nvfp4_dequantize_v2(ctx, NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR, codes, scales, 1.0f, ROWS,
                                             COLS, NVFP4_DTYPE_BF16, y16, COLS),
                         NVFP4_OK);
        for (int i = 0; i < ROWS * COLS; i++)
            assert_int_equal(y16[i], nvfp4_float_to_bf16(y[i]));

        /* importance weights: zero on the columns that overflow, so sse is the finite sum over
         * the others (NaN before), and a positive weight on one gives +Inf again */
        if (e8 == NVFP4_E8M0_RCEIL) {
            for (int c = 0; c < COLS; c++)
                h[c] = (c == 0 || c == 2 || c == 40 || c == 41) ? 0.0f : 1.0f + (float)(c % 3);
            assert_int_equal(nvfp4_quantizer_set_importance(q, h, COLS), NVFP4_OK);
            uint8_t codes2[sizeof codes], scales2[sizeof scales];
            assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, ROWS, COLS, COLS, codes2, scales2, &gs),
                             NVFP4_OK);
            assert_memory_equal(codes2, codes, sizeof codes); /* weights do not change MAX's bits */
            assert_memory_equal(scales2, scales, sizeof scales);
            assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_OK);
            double wsse = 0.0, wss = 0.0;
            for (int i = 0; i < ROWS * COLS; i++) {
                double w = h[i % COLS], d = (double)y[i] - (double)x[i];
                wss += w * (double)x[i] * (double)x[i];
                if (w != 0.0)
                    wsse += w * d * d;
            }
            assert_true(isfinite(st.sse));
            assert_true(fabs(st.sse - wsse) <= 1e-12 * wsse);
            assert_true(fabs(st.sum_sq - wss) <= 1e-12 * wss);
            h[2] = 0.5f;
            assert_int_equal(nvfp4_quantizer_set_importance(q, h, COLS), NVFP4_OK);
            assert_int_equal(nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, ROWS, COLS, COLS, codes2, scales2, &gs),
                             NVFP4_OK);
            assert_int_equal(nvfp4_context_get_stats(ctx, &st), NVFP4_OK);
            assert_true(isinf(st.sse) && st.sse > 0);
        }
        nvfp4_quantizer_destroy(q);
        nvfp4_context_destroy(ctx);
    }
}

int main(void)
{
    ref_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_exact_f32),    cmocka_unit_test(test_max_exact_f16),
        cmocka_unit_test(test_max_exact_bf16),   cmocka_unit_test(test_many_widths),
        cmocka_unit_test(test_modelopt),
        cmocka_unit_test(test_modelopt_specifics), cmocka_unit_test(test_global_scale),
        cmocka_unit_test(test_mxfp4),            cmocka_unit_test(test_saturate_policy),
        cmocka_unit_test(test_layout_128x4),     cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_stats_recomputed),
        cmocka_unit_test(test_stats_padding_modelopt),
        cmocka_unit_test(test_mxfp4_near_flt_max),
    };
    return cmocka_run_group_tests_name("quantize", tests, NULL, NULL);
}
