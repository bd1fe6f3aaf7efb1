/* quickstart.c - quantise a heavy-tailed test matrix with every scale method libnvfp4 offers and
 * print how close each result comes to the original.
 *
 *   quickstart [rows cols [seed]]      (default 256 x 4096, seed 1)
 *
 * The matrix is deterministic for a seed: Student-t values (nu = 3, the heavy tails of LLM
 * weights) with a few outlier columns 20 times larger (the outlier channels of activations) and
 * a few rows 10^5 times smaller (whose block scales underflow under one global scale).
 * For each method the program quantises to NVFP4, dequantises, and reports the relative squared
 * error sum((xq - x)^2) / sum(x^2), the signal-to-noise ratio, the largest absolute error and the
 * number of blocks whose E4M3 scale underflowed to zero. A method this build does not provide is
 * reported as "not available".
 *
 * Build against an installed library:  cc quickstart.c $(pkg-config --cflags --libs nvfp4) -lm
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvfp4/nvfp4.h>

/* ---- deterministic test data ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, never 0. */
static double uniform(uint64_t *state) { return ((double)(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53; }

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static double normal(uint64_t *state)
{
    double u1 = uniform(state), u2 = uniform(state);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Student-t with nu = 3: z / sqrt(chi2_3 / 3). */
static double student_t3(uint64_t *state)
{
    double z = normal(state);
    double a = normal(state), b = normal(state), c = normal(state);
    return z / sqrt((a * a + b * b + c * c) / 3.0);
}

static int is_outlier_col(int64_t c) { return c % 256 == 37; }

/* Every 64th row is 10^5 times smaller than the rest: with one global scale per tensor its block
 * scales fall below E4M3's smallest subnormal (2^-9) and underflow to zero. */
static int is_tiny_row(int64_t r) { return r % 64 == 63; }

static void make_matrix(float *x, int64_t rows, int64_t cols, uint64_t seed)
{
    uint64_t state = seed;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double v = 0.02 * student_t3(&state);
            if (is_outlier_col(c))
                v *= 20.0;
            if (is_tiny_row(r))
                v *= 1e-5;
            x[r * cols + c] = (float)v;
        }
}

/* ---- one method -------------------------------------------------------------------------- */

struct variant {
    const char *name;
    int32_t method;
    int32_t format; /* NVFP4_FORMAT_* */
    int32_t recipe; /* NVFP4_RECIPE_* */
};

static const struct variant variants[] = {
    {"max", NVFP4_METHOD_MAX, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"max/modelopt", NVFP4_METHOD_MAX, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_MODELOPT},
    {"4over6", NVFP4_METHOD_4OVER6, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"soar", NVFP4_METHOD_SOAR, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"soar_cjso", NVFP4_METHOD_SOAR_CJSO, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"soar_dss", NVFP4_METHOD_SOAR_DSS, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"sweep", NVFP4_METHOD_SWEEP, NVFP4_FORMAT_NVFP4, NVFP4_RECIPE_EXACT},
    {"mxfp4 (max)", NVFP4_METHOD_MAX, NVFP4_FORMAT_MXFP4, NVFP4_RECIPE_EXACT},
};

struct result {
    double rel_sse, max_abs_err, ms;
    int64_t blocks, underflow;
    float global_scale;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Quantises x with one variant; returns NVFP4_OK and fills *res, or the first failing status
 * (and *where names the call). */
static nvfp4_status run_variant(nvfp4_context *ctx, const struct variant *v, const float *x,
                                int64_t rows, int64_t cols, struct result *res, const char **where)
{
    nvfp4_quantizer *q = NULL;
    uint8_t *codes = NULL, *scales = NULL;
    float *xq = NULL;
    int64_t codes_bytes = 0, scales_bytes = 0;
    nvfp4_status st;
    const int64_t block = v->format == NVFP4_FORMAT_MXFP4 ? 32 : 16;
    const int64_t nblocks = (cols + block - 1) / block;

    *where = "nvfp4_quantizer_create";
    st = nvfp4_quantizer_create(&q, v->method);
    if (st != NVFP4_OK)
        return st;
    *where = "nvfp4_quantizer_set_int";
    st = nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, v->format);
    if (st == NVFP4_OK && v->recipe != NVFP4_RECIPE_EXACT)
        st = nvfp4_quantizer_set_int(q, NVFP4_Q_RECIPE, v->recipe);
    if (st != NVFP4_OK)
        goto done;
    *where = "nvfp4_codes_size";
    st = nvfp4_codes_size(v->format, rows, cols, &codes_bytes);
    if (st == NVFP4_OK)
        st = nvfp4_scales_size(v->format, NVFP4_LAYOUT_LINEAR, rows, cols, &scales_bytes);
    if (st != NVFP4_OK)
        goto done;
    codes = malloc((size_t)codes_bytes);
    scales = malloc((size_t)scales_bytes);
    xq = malloc((size_t)(rows * cols) * sizeof *xq);
    if (!codes || !scales || !xq) {
        *where = "malloc";
        st = NVFP4_ERR_OUT_OF_MEMORY;
        goto done;
    }

    *where = "nvfp4_quantize";
    double t0 = now_ms();
    st = nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, rows, cols, cols, codes, scales, &res->global_scale);
    res->ms = now_ms() - t0;
    if (st != NVFP4_OK)
        goto done;
    *where = "nvfp4_dequantize_v2";
    st = nvfp4_dequantize_v2(ctx, v->format, NVFP4_LAYOUT_LINEAR, codes, scales, res->global_scale,
                             rows, cols, NVFP4_DTYPE_F32, xq, cols);
    if (st != NVFP4_OK)
        goto done;

    /* The error statistics are computed here from the outputs, independently of the library. */
    double sse = 0.0, ref = 0.0, maxerr = 0.0;
    int64_t underflow = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nblocks; b++) {
            int nonzero = 0;
            for (int64_t c = b * block; c < cols && c < (b + 1) * block; c++) {
                double xv = x[r * cols + c], e = (double)xq[r * cols + c] - xv;
                sse += e * e;
                ref += xv * xv;
                if (fabs(e) > maxerr)
                    maxerr = fabs(e);
                nonzero |= xv != 0.0;
            }
            if (nonzero && scales[r * nblocks + b] == 0)
                underflow++;
        }
    }
    res->rel_sse = ref > 0.0 ? sse / ref : 0.0;
    res->max_abs_err = maxerr;
    res->blocks = rows * nblocks;
    res->underflow = v->format == NVFP4_FORMAT_MXFP4 ? 0 : underflow; /* E8M0 byte 0 is 2^-127 */

done:
    free(xq);
    free(scales);
    free(codes);
    nvfp4_quantizer_destroy(q);
    return st;
}

int main(int argc, char **argv)
{
    int64_t rows = 256, cols = 4096;
    uint64_t seed = 1;
    if (argc == 2 || argc > 4) {
        fprintf(stderr, "usage: %s [rows cols [seed]]\n", argv[0]);
        return 2;
    }
    if (argc >= 3) {
        rows = strtoll(argv[1], NULL, 10);
        cols = strtoll(argv[2], NULL, 10);
        if (argc == 4)
            seed = strtoull(argv[3], NULL, 10);
        if (rows <= 0 || cols <= 0 || rows > (1 << 20) || cols > (1 << 20) || rows * cols > (1 << 28)) {
            fprintf(stderr, "rows and cols must be positive with rows*cols <= 2^28\n");
            return 2;
        }
    }

    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    if (!x) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    make_matrix(x, rows, cols, seed);
    int64_t outliers = 0, tiny = 0;
    for (int64_t c = 0; c < cols; c++)
        outliers += is_outlier_col(c);
    for (int64_t r = 0; r < rows; r++)
        tiny += is_tiny_row(r);

    nvfp4_context *ctx = NULL;
    nvfp4_status st = nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU);
    if (st != NVFP4_OK) {
        fprintf(stderr, "nvfp4_context_create: %s\n", nvfp4_status_string(st));
        free(x);
        return 1;
    }

    printf("libnvfp4 %s quickstart\n", nvfp4_version_string());
    printf("input: %lld x %lld float32, Student-t (nu = 3) x 0.02, seed %llu,\n"
           "       %lld outlier columns x 20, %lld tiny rows x 1e-5\n\n",
           (long long)rows, (long long)cols, (unsigned long long)seed, (long long)outliers, (long long)tiny);
    printf("%-14s %-10s %11s %8s %11s %19s %10s\n", "method", "status", "rel. SSE", "SNR dB",
           "max |err|", "underflow blocks", "time ms");

    int max_ok = 0, failed = 0;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        struct result res;
        const char *where = "";
        memset(&res, 0, sizeof res);
        st = run_variant(ctx, &variants[i], x, rows, cols, &res, &where);
        if (st == NVFP4_OK) {
            char uf[40];
            snprintf(uf, sizeof uf, "%lld / %lld", (long long)res.underflow, (long long)res.blocks);
            printf("%-14s %-10s %11.4e %8.2f %11.4e %19s %10.1f\n", variants[i].name, "ok",
                   res.rel_sse, res.rel_sse > 0.0 ? -10.0 * log10(res.rel_sse) : INFINITY,
                   res.max_abs_err, uf, res.ms);
            if (i == 0)
                max_ok = 1;
        } else if (st == NVFP4_ERR_UNKNOWN_KEY || st == NVFP4_ERR_UNSUPPORTED) {
            printf("%-14s not available in this build (%s from %s)\n", variants[i].name,
                   nvfp4_status_string(st), where);
        } else {
            printf("%-14s FAILED: %s from %s: %s\n", variants[i].name, nvfp4_status_string(st), where,
                   nvfp4_context_last_error_message(ctx));
            failed = 1;
        }
    }
    printf("\nrel. SSE = sum((xq - x)^2) / sum(x^2) over all elements; SNR dB = -10 log10(rel. SSE).\n"
           "underflow blocks: blocks with a nonzero input whose E4M3 scale rounded to 0 (they decode to 0).\n");

    nvfp4_context_destroy(ctx);
    free(x);
    return max_ok && !failed ? 0 : 1;
}
