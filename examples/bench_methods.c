/* bench_methods.c - throughput and accuracy of the scale-selection methods on one tensor.
 *
 * For Gaussian, Laplace and Student-t(ν=3) weights (seeded; a few columns scaled ×8 as the
 * outlier channels of LLM weights), times MAX, Four Over Six, SOAR-CJSO, SOAR-DSS, SOAR and the
 * sweep on one thread and on all threads (NVFP4_CTX_THREADS = 0), best of --reps runs, and
 * prints each method's relative squared error Σ(x̂−x)²/Σx² from the library's statistics
 * (collected in a separate, untimed run: statistics cost a pass of their own).
 *
 *   bench_methods [--rows R] [--cols C] [--reps N] [--threads T] [--seed S]
 *
 * A program, not a test: numbers depend on the machine and its load.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvfp4/nvfp4.h"

static uint64_t rng_state;
static uint64_t rng64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform(void) { return ((double)(rng64() >> 11) + 0.5) / 9007199254740992.0; }
static double gauss(void) { return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()); }
static double laplace(void)
{
    double u = uniform() - 0.5;
    return u < 0 ? log(1.0 + 2.0 * u) : -log(1.0 - 2.0 * u);
}
static double student3(void)
{
    double z = gauss(), c = 0.0;
    for (int i = 0; i < 3; i++) {
        double g = gauss();
        c += g * g;
    }
    return z / sqrt(c / 3.0);
}

static const char *dist_name[3] = {"Gaussian", "Laplace", "Student-t(3)"};

static void fill(float *x, int64_t rows, int64_t cols, int dist, uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < rows * cols; i++) {
        double v = dist == 0 ? gauss() : dist == 1 ? laplace() : student3();
        x[i] = (float)(0.02 * v);
    }
    for (int k = 0; k < 4; k++) { /* outlier input channels */
        int64_t c = (int64_t)(rng64() % (uint64_t)cols);
        for (int64_t r = 0; r < rows; r++)
            x[r * cols + c] *= 8.0f;
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const struct {
    int32_t method;
    const char *name;
} methods[] = {
    {NVFP4_METHOD_MAX, "MAX"},          {NVFP4_METHOD_4OVER6, "4/6 (mse, 256)"},
    {NVFP4_METHOD_SOAR_CJSO, "CJSO (tol 1e-3)"}, {NVFP4_METHOD_SOAR_DSS, "DSS [0.5,2]"},
    {NVFP4_METHOD_SOAR, "SOAR (CJSO+DSS)"}, {NVFP4_METHOD_SWEEP, "sweep (±4)"},
};
#define NM (int)(sizeof methods / sizeof methods[0])

/* Best-of-reps wall time of one quantisation, after a warm-up run. */
static int timed(nvfp4_context *ctx, nvfp4_quantizer *q, const float *x, int64_t rows, int64_t cols, int reps,
                 uint8_t *codes, uint8_t *scales, double *best)
{
    float gs;
    *best = INFINITY;
    /* one untimed run first: page faults, thread start-up and clock ramp-up stay out */
    if (nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, rows, cols, cols, codes, scales, &gs))
        return 1;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        nvfp4_status s = nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, x, rows, cols, cols, codes, scales, &gs);
        double t = now() - t0;
        if (s) {
            fprintf(stderr, "quantize failed: %s\n", nvfp4_status_string(s));
            return 1;
        }
        *best = t < *best ? t : *best;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t rows = 512, cols = 4096, threads = 0;
    int reps = 3;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows"))
            rows = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--cols"))
            cols = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = (uint64_t)atoll(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--rows R] [--cols C] [--reps N] [--threads T] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (rows <= 0 || cols <= 0 || reps <= 0 || threads < 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    int64_t ncodes, nscales;
    if (nvfp4_codes_size(NVFP4_FORMAT_NVFP4, rows, cols, &ncodes) ||
        nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, rows, cols, &nscales)) {
        fprintf(stderr, "bad shape\n");
        return 2;
    }
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    uint8_t *codes = malloc((size_t)ncodes), *scales = malloc((size_t)nscales);
    nvfp4_context *c1 = NULL, *cn = NULL, *cs = NULL;
    if (!x || !codes || !scales || nvfp4_context_create(&c1, NVFP4_BACKEND_CPU) ||
        nvfp4_context_create(&cn, NVFP4_BACKEND_CPU) || nvfp4_context_create(&cs, NVFP4_BACKEND_CPU)) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    nvfp4_context_set_int(c1, NVFP4_CTX_THREADS, 1);
    nvfp4_context_set_int(cn, NVFP4_CTX_THREADS, threads);
    nvfp4_context_set_int(cs, NVFP4_CTX_THREADS, threads);
    nvfp4_context_set_int(cs, NVFP4_CTX_COLLECT_STATS, 1);
    int64_t nthreads = 0;
    nvfp4_context_get_int(cn, NVFP4_CTX_THREADS, &nthreads);
    const double melem = (double)(rows * cols) / 1e6;

    printf("tensor %lld x %lld f32 (%.1f M elements), best of %d, all cores = %lld threads\n", (long long)rows,
           (long long)cols, melem, reps, (long long)nthreads);
    for (int d = 0; d < 3; d++) {
        fill(x, rows, cols, d, seed + (uint64_t)d);
        printf("\n%s (4 outlier columns x8)\n", dist_name[d]);
        printf("| method | 1 core Melem/s | vs MAX | %lld threads Melem/s | vs MAX | rel. SSE | vs MAX SSE |\n",
               (long long)nthreads);
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        double t_max = 0.0, tn_max = 0.0, e_max = 0.0;
        for (int m = 0; m < NM; m++) {
            nvfp4_quantizer *q = NULL;
            if (nvfp4_quantizer_create(&q, methods[m].method)) {
                fprintf(stderr, "cannot create quantizer\n");
                return 1;
            }
            double t1, tn;
            nvfp4_stats st;
            float gs;
            if (timed(c1, q, x, rows, cols, reps, codes, scales, &t1) ||
                timed(cn, q, x, rows, cols, reps, codes, scales, &tn) ||
                nvfp4_quantize(cs, q, NVFP4_DTYPE_F32, x, rows, cols, cols, codes, scales, &gs))
                return 1;
            st.size = sizeof st;
            if (nvfp4_context_get_stats(cs, &st))
                return 1;
            double rel = st.sse / st.sum_sq;
            if (m == 0) {
                t_max = t1;
                tn_max = tn;
                e_max = rel;
            }
            char extra[48] = "";
            if (st.cjso_iterations > 0)
                snprintf(extra, sizeof extra, " [%d it]", (int)st.cjso_iterations);
            printf("| %s%s | %.1f | %.3f | %.1f | %.3f | %.4e | %.3f |\n", methods[m].name, extra, melem / t1,
                   t_max / t1, melem / tn, tn_max / tn, rel, rel / e_max);
            nvfp4_quantizer_destroy(q);
        }
    }
    nvfp4_context_destroy(c1);
    nvfp4_context_destroy(cn);
    nvfp4_context_destroy(cs);
    free(x);
    free(codes);
    free(scales);
    return 0;
}
