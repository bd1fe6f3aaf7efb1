/* bench_cuda.c - throughput of the CUDA backend's quantise and dequantise against the device's
 * own copy bandwidth, measured in the same run.
 *
 *   bench_cuda [rows cols [inputs [reps]]]      (default 8192 8192 3 30)
 *
 * Copy ceiling: cudaMemcpy device-to-device of a 1 GiB buffer, counting bytes read + written.
 * Each configuration runs `reps` calls of the public API (nvfp4_quantize / nvfp4_dequantize_v2
 * on a CUDA context, which return once their stream work is done) over `inputs` different
 * random tensors in turn, so that every timed call reads a tensor that is not in L2 (an 8192²
 * bf16 tensor is 128 MiB; the H200's L2 is 50 MiB). Time: CUDA events around each call on the
 * context's stream (median); wall: host clock around each call (median, includes the launch and
 * the final synchronisation). Bytes:
 *   compulsory  source read once + codes + scales written (what a fused kernel must move);
 *   moved       what this design moves: the strict policy or a computed global scale reads the
 *               source twice (pass 1: amax, pass 2: quantise).
 * The first configuration is also checked byte for byte against the CPU backend.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "nvfp4/nvfp4.h"

#define CK(call)                                                                                      \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess) {                                                                      \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

#define NK(call)                                                                                      \
    do {                                                                                              \
        nvfp4_status s_ = (call);                                                                     \
        if (s_ != NVFP4_OK) {                                                                         \
            fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call, nvfp4_status_string(s_), \
                    nvfp4_context_last_error_message(gctx));                                          \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

static nvfp4_context *gctx;

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs >> 32);
}

/* Normal-ish values with a per-row magnitude, never all zero. */
static float value(int64_t r)
{
    float g = ((float)rnd() + (float)rnd() + (float)rnd() + (float)rnd()) * (1.0f / 4294967296.0f) - 2.0f;
    return g * (float)(1 + r % 7) * 0.37f;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double copy_bandwidth(cudaStream_t st)
{
    const size_t n = (size_t)1 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    CK(cudaMemset(b, 2, n));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double t[20];
    for (int i = -3; i < 20; i++) {
        CK(cudaEventRecord(e0, st));
        CK(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, n, cudaMemcpyDeviceToDevice, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 0)
            t[i] = ms * 1e-3;
    }
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    return 2.0 * (double)n / median(t, 20);
}

typedef struct {
    const char *name;
    int32_t dtype, format, layout, nonfinite;
    double global_scale;
    int dequant; /* 1: time nvfp4_dequantize_v2 into dtype instead */
} config;

int main(int argc, char **argv)
{
    int64_t rows = argc > 2 ? atoll(argv[1]) : 8192, cols = argc > 2 ? atoll(argv[2]) : 8192;
    int inputs = argc > 3 ? atoi(argv[3]) : 3, reps = argc > 4 ? atoi(argv[4]) : 30;
    if (rows <= 0 || cols <= 0 || cols % 32 || inputs < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_cuda [rows cols(multiple of 32) [inputs [reps ≤ 1000]]]\n");
        return 2;
    }
    if (!nvfp4_has_backend(NVFP4_BACKEND_CUDA)) {
        printf("bench_cuda: no CUDA device visible; nothing to measure\n");
        return 0;
    }
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %d SMs, L2 %d MiB, libnvfp4 %s\n", prop.name, prop.multiProcessorCount,
           prop.l2CacheSize >> 20, nvfp4_version_string());

    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    if (nvfp4_context_create(&gctx, NVFP4_BACKEND_CUDA) != NVFP4_OK)
        return 1;
    NK(nvfp4_context_set_cuda_stream(gctx, st));

    const double copy_bw = copy_bandwidth(st);
    printf("cudaMemcpy device-to-device, 1 GiB, (read + written) / time: %.0f GB/s\n\n", copy_bw * 1e-9);

    const int64_t n = rows * cols;
    /* inputs: f32 and bf16 copies of `inputs` random tensors */
    void *src32[16], *src16[16];
    if (inputs > 16)
        inputs = 16;
    float *h = malloc((size_t)n * sizeof *h);
    uint16_t *h16 = malloc((size_t)n * sizeof *h16);
    if (!h || !h16)
        return 1;
    for (int k = 0; k < inputs; k++) {
        for (int64_t i = 0; i < n; i++) {
            h[i] = value(i / cols);
            h16[i] = nvfp4_float_to_bf16(h[i]);
        }
        CK(cudaMalloc(&src32[k], (size_t)n * 4));
        CK(cudaMalloc(&src16[k], (size_t)n * 2));
        CK(cudaMemcpy(src32[k], h, (size_t)n * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(src16[k], h16, (size_t)n * 2, cudaMemcpyHostToDevice));
    }
    uint8_t *codes[16], *scales[16];
    void *deq;
    float *dgs;
    int64_t ncodes, nscales;
    NK(nvfp4_codes_size(NVFP4_FORMAT_NVFP4, rows, cols, &ncodes));
    NK(nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, rows, cols, &nscales));
    for (int k = 0; k < inputs; k++) {
        CK(cudaMalloc((void **)&codes[k], (size_t)ncodes));
        CK(cudaMalloc((void **)&scales[k], (size_t)nscales));
    }
    CK(cudaMalloc(&deq, (size_t)n * 4));
    CK(cudaMalloc((void **)&dgs, sizeof(float)));

    const config cfgs[] = {
        {"quantize bf16 NVFP4 linear, strict (2 passes)", NVFP4_DTYPE_BF16, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR,
         NVFP4_NONFINITE_STRICT, 0.0, 0},
        {"quantize bf16 NVFP4 128x4, strict (2 passes)", NVFP4_DTYPE_BF16, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4,
         NVFP4_NONFINITE_STRICT, 0.0, 0},
        {"quantize bf16 NVFP4 128x4, saturate + given scale (1 pass)", NVFP4_DTYPE_BF16, NVFP4_FORMAT_NVFP4,
         NVFP4_LAYOUT_128X4, NVFP4_NONFINITE_SATURATE, 1.0 / 1024, 0},
        {"quantize bf16 MXFP4 linear, saturate (1 pass)", NVFP4_DTYPE_BF16, NVFP4_FORMAT_MXFP4, NVFP4_LAYOUT_LINEAR,
         NVFP4_NONFINITE_SATURATE, 0.0, 0},
        {"quantize f32 NVFP4 linear, strict (2 passes)", NVFP4_DTYPE_F32, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR,
         NVFP4_NONFINITE_STRICT, 0.0, 0},
        {"dequantize NVFP4 128x4 -> bf16", NVFP4_DTYPE_BF16, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, 0, 0.0, 1},
        {"dequantize NVFP4 linear -> f32", NVFP4_DTYPE_F32, NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, 0, 0.0, 1},
    };
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double *tev = malloc((size_t)reps * sizeof *tev), *twall = malloc((size_t)reps * sizeof *twall);

    printf("%d x %d elements, %d inputs rotated, %d timed calls each (median)\n", (int)rows, (int)cols, inputs, reps);
    printf("%-58s %9s %9s %10s %7s %10s %7s\n", "configuration", "event us", "wall us", "compul GB/s", "% copy",
           "moved GB/s", "% copy");
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        const config *c = &cfgs[ci];
        nvfp4_quantizer *q = NULL;
        NK(nvfp4_quantizer_create(&q, NVFP4_METHOD_MAX));
        NK(nvfp4_quantizer_set_int(q, NVFP4_Q_FORMAT, c->format));
        NK(nvfp4_quantizer_set_int(q, NVFP4_Q_SCALE_LAYOUT, c->layout));
        NK(nvfp4_quantizer_set_int(q, NVFP4_Q_NONFINITE, c->nonfinite));
        if (c->global_scale > 0)
            NK(nvfp4_quantizer_set_float(q, NVFP4_Q_GLOBAL_SCALE, c->global_scale));
        const size_t es = c->dtype == NVFP4_DTYPE_F32 ? 4 : 2;
        const double block = c->format == NVFP4_FORMAT_MXFP4 ? 32.0 : 16.0;
        const double packed = (double)n * (0.5 + 1.0 / block);
        if (c->dequant) /* codes for the dequantise runs */
            for (int k = 0; k < inputs; k++)
                NK(nvfp4_quantize(gctx, q, NVFP4_DTYPE_BF16, src16[k], rows, cols, cols, codes[k], scales[k], dgs));
        float gs = 0.0f;
        CK(cudaMemcpy(&gs, dgs, 4, cudaMemcpyDeviceToHost));
        for (int i = -3; i < reps; i++) {
            const int k = (i + 3) % inputs;
            const void *src = c->dtype == NVFP4_DTYPE_F32 ? src32[k] : src16[k];
            CK(cudaEventRecord(e0, st));
            double w0 = now();
            if (c->dequant)
                NK(nvfp4_dequantize_v2(gctx, c->format, c->layout, codes[k], scales[k], gs, rows, cols, c->dtype, deq,
                                       cols));
            else
                NK(nvfp4_quantize(gctx, q, c->dtype, src, rows, cols, cols, codes[k], scales[k], dgs));
            double w1 = now();
            CK(cudaEventRecord(e1, st));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            if (i >= 0) {
                tev[i] = ms * 1e-3;
                twall[i] = w1 - w0;
            }
        }
        const double t = median(tev, reps), tw = median(twall, reps);
        const double compulsory = (double)n * (double)es + packed;
        const int two_pass = !c->dequant && (c->nonfinite == NVFP4_NONFINITE_STRICT ||
                                             (c->format == NVFP4_FORMAT_NVFP4 && c->global_scale <= 0));
        const double moved = compulsory + (two_pass ? (double)n * (double)es : 0.0);
        printf("%-58s %9.1f %9.1f %10.0f %6.1f%% %10.0f %6.1f%%\n", c->name, t * 1e6, tw * 1e6, compulsory / t * 1e-9,
               100.0 * compulsory / t / copy_bw, moved / t * 1e-9, 100.0 * moved / t / copy_bw);

        if (ci == 0) { /* the result equals the CPU backend's, byte for byte */
            nvfp4_context *cpu = NULL;
            NK(nvfp4_context_create(&cpu, NVFP4_BACKEND_CPU));
            NK(nvfp4_context_set_int(cpu, NVFP4_CTX_THREADS, 0));
            const int k = (reps + 2) % inputs; /* the last input quantised */
            uint16_t *hs = malloc((size_t)n * 2);
            uint8_t *hc = malloc((size_t)ncodes), *hsc = malloc((size_t)nscales), *gc = malloc((size_t)ncodes),
                    *gsc = malloc((size_t)nscales);
            CK(cudaMemcpy(hs, src16[k], (size_t)n * 2, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(gc, codes[k], (size_t)ncodes, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(gsc, scales[k], (size_t)(rows * cols / 16), cudaMemcpyDeviceToHost));
            float cgs, ggs;
            CK(cudaMemcpy(&ggs, dgs, 4, cudaMemcpyDeviceToHost));
            nvfp4_status s = nvfp4_quantize(cpu, q, NVFP4_DTYPE_BF16, hs, rows, cols, cols, hc, hsc, &cgs);
            int same = s == NVFP4_OK && memcmp(hc, gc, (size_t)ncodes) == 0 &&
                       memcmp(hsc, gsc, (size_t)(rows * cols / 16)) == 0 && memcmp(&cgs, &ggs, 4) == 0;
            printf("  (check: CUDA output %s the CPU backend's, byte for byte)\n", same ? "equals" : "DIFFERS FROM");
            free(hs);
            free(hc);
            free(hsc);
            free(gc);
            free(gsc);
            nvfp4_context_destroy(cpu);
            if (!same)
                return 1;
        }
        nvfp4_quantizer_destroy(q);
    }
    printf("\ncompulsory bytes = source read once + codes + scales; moved = what the design reads and writes\n");
    free(tev);
    free(twall);
    free(h);
    free(h16);
    for (int k = 0; k < inputs; k++) {
        cudaFree(src32[k]);
        cudaFree(src16[k]);
        cudaFree(codes[k]);
        cudaFree(scales[k]);
    }
    cudaFree(deq);
    cudaFree(dgs);
    nvfp4_context_destroy(gctx);
    cudaStreamDestroy(st);
    return 0;
}
