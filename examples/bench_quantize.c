/* bench_quantize.c - throughput of f32 and bf16 -> NVFP4 quantisation (MAX method) against the
 * memcpy bandwidth of one core on the same buffer size. A benchmark program, not a test.
 *
 *   bench_quantize [MiB [repetitions [cols]]]     (default 64 MiB per input buffer, 9, 4096)
 *
 * Each input buffer (f32 and bf16) is MiB mebibytes of non-zero random values, larger than the
 * last-level cache by default so that the numbers are memory bound. Every measurement runs once to
 * warm up (page faults) and then `repetitions` times; the best and the median are printed.
 *
 * Bandwidths are in GB/s (10^9 bytes per second):
 *   "in"  = input bytes / time,
 *   "r+w" = (input bytes + code bytes + scale bytes) / time, the traffic a streaming kernel moves;
 *   memcpy's r+w counts the bytes read plus the bytes written (2 x buffer).
 * ratio = quantize r+w / memcpy r+w, both on one core (target >= 0.5 for MAX), then the same
 * quantisations with NVFP4_CTX_THREADS = 0 (one worker per online CPU).
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
#include <unistd.h>

#include <nvfp4/nvfp4.h>

static volatile unsigned char sink;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct timing {
    double best, median;
};

static struct timing summarize(double *t, int n)
{
    struct timing r;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    r.best = t[0];
    r.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return r;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Non-zero values of varied magnitude (roughly log-uniform over 2^-8..2^8, random sign). */
static float random_value(uint64_t *s)
{
    uint64_t r = xorshift(s);
    float mant = 1.0f + (float)(r & 0xFFFFFF) * 0x1.0p-24f;
    int e = (int)((r >> 24) % 17) - 8;
    float v = ldexpf(mant, e);
    return (r >> 63) ? -v : v;
}

struct qbench {
    nvfp4_context *ctx;
    const nvfp4_quantizer *q;
    int32_t dtype;
    const void *src;
    int64_t rows, cols;
    uint8_t *codes, *scales;
};

static nvfp4_status quantize_once(const struct qbench *b, double *seconds)
{
    float gs;
    double t0 = now_s();
    nvfp4_status st = nvfp4_quantize(b->ctx, b->q, b->dtype, b->src, b->rows, b->cols, b->cols, b->codes,
                                     b->scales, &gs);
    *seconds = now_s() - t0;
    return st;
}

static int time_quantize(const struct qbench *b, int reps, double *t, struct timing *out)
{
    double s;
    nvfp4_status st = quantize_once(b, &s); /* warm-up */
    for (int i = 0; st == NVFP4_OK && i < reps; i++)
        st = quantize_once(b, &t[i]);
    if (st != NVFP4_OK) {
        fprintf(stderr, "nvfp4_quantize: %s: %s\n", nvfp4_status_string(st),
                nvfp4_context_last_error_message(b->ctx));
        return -1;
    }
    *out = summarize(t, reps);
    return 0;
}

static void print_row(const char *what, double in_bytes, double out_bytes, struct timing tm)
{
    printf("%-34s %8.2f %8.2f %10.2f %10.2f %9.2f\n", what, in_bytes / tm.best * 1e-9,
           (in_bytes + out_bytes) / tm.best * 1e-9, (in_bytes + out_bytes) / tm.median * 1e-9,
           tm.best * 1e3, tm.median * 1e3);
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 64;
    int reps = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 9;
    int64_t cols = argc > 3 ? strtoll(argv[3], NULL, 10) : 4096;
    if (argc > 4 || mib < 1 || mib > 16384 || reps < 1 || reps > 1000 || cols < 16 || cols % 16) {
        fprintf(stderr, "usage: %s [MiB (1..16384) [repetitions (1..1000) [cols (multiple of 16)]]]\n",
                argv[0]);
        return 2;
    }
    const size_t bytes = (size_t)mib << 20;
    const int64_t rows32 = (int64_t)(bytes / 4) / cols, rows16 = (int64_t)(bytes / 2) / cols;
    if (rows32 < 1) {
        fprintf(stderr, "buffer too small for %lld columns\n", (long long)cols);
        return 2;
    }
    const int64_t n32 = rows32 * cols, n16 = rows16 * cols;

    float *f32 = malloc((size_t)n32 * sizeof *f32);
    uint16_t *bf16 = malloc((size_t)n16 * sizeof *bf16);
    unsigned char *copy = malloc((size_t)n32 * sizeof *f32);
    int64_t codes_bytes = 0, scales_bytes = 0, codes16 = 0, scales16 = 0;
    nvfp4_codes_size(NVFP4_FORMAT_NVFP4, rows16, cols, &codes16);
    nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, rows16, cols, &scales16);
    nvfp4_codes_size(NVFP4_FORMAT_NVFP4, rows32, cols, &codes_bytes);
    nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, rows32, cols, &scales_bytes);
    uint8_t *codes = malloc((size_t)codes16);
    uint8_t *scales = malloc((size_t)scales16);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!f32 || !bf16 || !copy || !codes || !scales || !t) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n32; i++)
        f32[i] = random_value(&seed);
    for (int64_t i = 0; i < n16; i++)
        bf16[i] = nvfp4_float_to_bf16(random_value(&seed));
    memset(copy, 1, (size_t)n32 * sizeof *f32);
    memset(codes, 0, (size_t)codes16);
    memset(scales, 0, (size_t)scales16);

    nvfp4_context *ctx = NULL;
    nvfp4_quantizer *q = NULL;
    nvfp4_status st = nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU);
    if (st == NVFP4_OK)
        st = nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX);
    if (st != NVFP4_OK) {
        fprintf(stderr, "setup: %s\n", nvfp4_status_string(st));
        return 1;
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("libnvfp4 %s bench_quantize: MAX method, linear scales, %ld MiB per input buffer, "
           "cols %lld, %d repetitions (+1 warm-up), %ld online CPUs\n",
           nvfp4_version_string(), mib, (long long)cols, reps, ncpu);
    printf("f32: %lld x %lld (%lld elements); bf16: %lld x %lld (%lld elements)\n\n", (long long)rows32,
           (long long)cols, (long long)n32, (long long)rows16, (long long)cols, (long long)n16);
    printf("%-34s %8s %8s %10s %10s %9s\n", "", "in GB/s", "r+w GB/s", "r+w median", "best ms", "median ms");

    /* memcpy on one core: the reference bandwidth. */
    memcpy(copy, f32, bytes);
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        memcpy(copy, f32, bytes);
        t[i] = now_s() - t0;
        sink ^= copy[((size_t)i * 7919u) % bytes]; /* the copy is read, so it cannot be elided */
    }
    struct timing tm_copy = summarize(t, reps);
    print_row("memcpy, 1 core", (double)bytes, (double)bytes, tm_copy);
    const double copy_rw = 2.0 * (double)bytes / tm_copy.best;

    struct qbench b32 = {ctx, q, NVFP4_DTYPE_F32, f32, rows32, cols, codes, scales};
    struct qbench b16 = {ctx, q, NVFP4_DTYPE_BF16, bf16, rows16, cols, codes, scales};
    const double out32 = (double)(codes_bytes + scales_bytes), out16 = (double)(codes16 + scales16);
    struct timing tf, tb, tfa, tba;
    if (time_quantize(&b32, reps, t, &tf) || time_quantize(&b16, reps, t, &tb))
        return 1;
    print_row("f32 -> NVFP4 MAX, 1 thread", (double)n32 * 4, out32, tf);
    print_row("bf16 -> NVFP4 MAX, 1 thread", (double)n16 * 2, out16, tb);

    st = nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 0);
    int64_t threads = 1;
    nvfp4_context_get_int(ctx, NVFP4_CTX_THREADS, &threads);
    if (st != NVFP4_OK || time_quantize(&b32, reps, t, &tfa) || time_quantize(&b16, reps, t, &tba))
        return 1;
    char label[64];
    snprintf(label, sizeof label, "f32 -> NVFP4 MAX, %lld threads", (long long)threads);
    print_row(label, (double)n32 * 4, out32, tfa);
    snprintf(label, sizeof label, "bf16 -> NVFP4 MAX, %lld threads", (long long)threads);
    print_row(label, (double)n16 * 2, out16, tba);

    const double f32_rw = ((double)n32 * 4 + out32) / tf.best, bf16_rw = ((double)n16 * 2 + out16) / tb.best;
    printf("\nratio to single-core memcpy r+w bandwidth (best of %d; target >= 0.50 for MAX on one core):\n",
           reps);
    printf("  f32  MAX, 1 thread: %.2f   bf16 MAX, 1 thread: %.2f\n", f32_rw / copy_rw, bf16_rw / copy_rw);
    printf("  f32  MAX, %lld threads: %.2f   bf16 MAX, %lld threads: %.2f\n", (long long)threads,
           ((double)n32 * 4 + out32) / tfa.best / copy_rw, (long long)threads,
           ((double)n16 * 2 + out16) / tba.best / copy_rw);

    /* A static (calibrated) global scale under the saturate policy needs no amax pass: MAX then
     * reads the input once. The scale is the one the computed path chose, so the codes match. */
    float gs32 = 0.0f, gs16 = 0.0f;
    nvfp4_quantizer *q1 = NULL;
    struct timing tf1, tb1;
    st = nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, 1);
    if (st == NVFP4_OK)
        st = nvfp4_quantize(ctx, q, NVFP4_DTYPE_F32, f32, rows32, cols, cols, codes, scales, &gs32);
    if (st == NVFP4_OK)
        st = nvfp4_quantize(ctx, q, NVFP4_DTYPE_BF16, bf16, rows16, cols, cols, codes, scales, &gs16);
    if (st == NVFP4_OK)
        st = nvfp4_quantizer_create(&q1, NVFP4_METHOD_MAX);
    if (st == NVFP4_OK)
        st = nvfp4_quantizer_set_int(q1, NVFP4_Q_NONFINITE, NVFP4_NONFINITE_SATURATE);
    if (st == NVFP4_OK)
        st = nvfp4_quantizer_set_float(q1, NVFP4_Q_GLOBAL_SCALE, gs32);
    struct qbench b32s = {ctx, q1, NVFP4_DTYPE_F32, f32, rows32, cols, codes, scales};
    struct qbench b16s = {ctx, q1, NVFP4_DTYPE_BF16, bf16, rows16, cols, codes, scales};
    if (st != NVFP4_OK || time_quantize(&b32s, reps, t, &tf1) ||
        nvfp4_quantizer_set_float(q1, NVFP4_Q_GLOBAL_SCALE, gs16) != NVFP4_OK || time_quantize(&b16s, reps, t, &tb1))
        return 1;
    printf("\nwith a given global scale, saturate policy (one pass over the input), 1 thread:\n");
    print_row("f32 -> NVFP4 MAX, given scale", (double)n32 * 4, out32, tf1);
    print_row("bf16 -> NVFP4 MAX, given scale", (double)n16 * 2, out16, tb1);
    printf("  ratio f32: %.2f   bf16: %.2f\n", ((double)n32 * 4 + out32) / tf1.best / copy_rw,
           ((double)n16 * 2 + out16) / tb1.best / copy_rw);
    printf("\ntwo-pass runs counting the bytes they move (the input is read twice), 1 thread:\n");
    printf("  ratio f32: %.2f   bf16: %.2f\n", ((double)n32 * 8 + out32) / tf.best / copy_rw,
           ((double)n16 * 4 + out16) / tb.best / copy_rw);

    nvfp4_quantizer_destroy(q1);
    nvfp4_quantizer_destroy(q);
    nvfp4_context_destroy(ctx);
    free(t);
    free(scales);
    free(codes);
    free(copy);
    free(bf16);
    free(f32);
    return 0;
}
