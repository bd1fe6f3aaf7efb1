/* bench_rounder.c - the adaptive-rounding optimizer on a synthetic layer: FAAR's loss against the
 * iteration count, the final H-weighted losses of RTN, 4/6, SOAR, GPTQ and FAAR side by side, and
 * FAAR's run time for a 1024×1024 layer in full and a 4096×4096 layer extrapolated from short runs.
 *
 *   bench_rounder [--out N] [--in N] [--iters T] [--rho R] [--threads T] [--big N] [--big-iters K]
 *                 [--no-big] [--all-scales]
 *
 * The layer: W ~ N(0, 0.02²); calibration inputs with AR(1) correlation R (default 0.5) along the
 * feature index and log-normal channel scales, 2·in samples. The loss is
 * L = tr((Ŵ − W) H (Ŵ − W)ᵀ)/out with H = XᵀX/n; the table also prints L relative to RTN's.
 * A program, not a test: the numbers depend on the machine and its load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvfp4/nvfp4.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(void)
{
    double u = urand(), v = urand();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int64_t out, in, n;
    float *W, *X;
} layer;

static int make_layer(layer *L, int64_t out, int64_t in, int64_t n, double rho)
{
    L->out = out;
    L->in = in;
    L->n = n;
    L->W = malloc((size_t)(out * in) * sizeof(float));
    L->X = malloc((size_t)(n * in) * sizeof(float));
    double *cs = malloc((size_t)in * sizeof(double));
    if (!L->W || !L->X || !cs) {
        free(cs);
        return -1;
    }
    for (int64_t j = 0; j < in; j++)
        cs[j] = exp(0.5 * nrand());
    for (int64_t s = 0; s < n; s++) {
        double x = nrand();
        for (int64_t j = 0; j < in; j++) {
            x = rho * x + sqrt(1.0 - rho * rho) * nrand();
            L->X[s * in + j] = (float)(x * cs[j]);
        }
    }
    for (int64_t i = 0; i < out * in; i++)
        L->W[i] = (float)(0.02 * nrand());
    free(cs);
    return 0;
}

static int print_progress(int64_t it, double loss, void *user)
{
    double t0 = *(const double *)user;
    printf("  iteration %5lld  soft loss %.6e  (%.1f s)\n", (long long)it, loss, now() - t0);
    fflush(stdout);
    return 0;
}

typedef struct {
    double start, stage1, final, seconds;
    int ok;
} outcome;

/* One rounder run; iters < 0 keeps the default. */
static outcome run(nvfp4_context *ctx, const layer *L, int32_t method, int32_t scale_method, int64_t iters,
                   int stage2, int progress_every)
{
    outcome o = {0, 0, 0, 0, 0};
    nvfp4_rounder *r = NULL;
    int64_t nb = (L->in + 15) / 16;
    uint8_t *codes = malloc((size_t)(L->out * nb * 8)), *scales = malloc((size_t)(L->out * nb));
    float gs = 0.0f;
    double t0 = now();
    nvfp4_status st = codes && scales ? nvfp4_rounder_create(&r, method, L->out, L->in) : NVFP4_ERR_OUT_OF_MEMORY;
    if (st == NVFP4_OK)
        st = nvfp4_rounder_set_int(r, NVFP4_R_SCALE_METHOD, scale_method);
    if (st == NVFP4_OK && iters >= 0)
        st = nvfp4_rounder_set_int(r, NVFP4_R_ITERATIONS, iters);
    if (st == NVFP4_OK && stage2 >= 0)
        st = nvfp4_rounder_set_int(r, NVFP4_R_STAGE2, stage2);
    if (st == NVFP4_OK && progress_every > 0) {
        st = nvfp4_rounder_set_int(r, NVFP4_R_PROGRESS_INTERVAL, progress_every);
        if (st == NVFP4_OK)
            st = nvfp4_rounder_set_progress(r, print_progress, &t0);
    }
    if (st == NVFP4_OK)
        st = nvfp4_rounder_add_samples(r, ctx, NVFP4_DTYPE_F32, L->X, L->n, L->in);
    if (st == NVFP4_OK)
        st = nvfp4_rounder_run(r, ctx, NVFP4_DTYPE_F32, L->W, L->in, codes, scales, &gs);
    o.seconds = now() - t0;
    if (st == NVFP4_OK) {
        nvfp4_rounder_get_float(r, NVFP4_R_LOSS_START, &o.start);
        nvfp4_rounder_get_float(r, NVFP4_R_LOSS_STAGE1, &o.stage1);
        nvfp4_rounder_get_float(r, NVFP4_R_LOSS_FINAL, &o.final);
        o.ok = 1;
    } else {
        fprintf(stderr, "rounder failed: %s (%s)\n", nvfp4_status_string(st),
                r ? nvfp4_rounder_last_error_message(r) : "");
    }
    nvfp4_rounder_destroy(r);
    free(codes);
    free(scales);
    return o;
}

static int have_method(int32_t m)
{
    nvfp4_quantizer *q = NULL;
    if (nvfp4_quantizer_create(&q, m) != NVFP4_OK)
        return 0;
    nvfp4_quantizer_destroy(q);
    return 1;
}

int main(int argc, char **argv)
{
    int64_t out = 1024, in = 1024, iters = 2000, big = 4096, big_iters = 8;
    double rho = 0.5;
    int threads = 2, do_big = 1, all_scales = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--out") && v) out = atoll(argv[++i]);
        else if (!strcmp(a, "--in") && v) in = atoll(argv[++i]);
        else if (!strcmp(a, "--iters") && v) iters = atoll(argv[++i]);
        else if (!strcmp(a, "--rho") && v) rho = atof(argv[++i]);
        else if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--big") && v) big = atoll(argv[++i]);
        else if (!strcmp(a, "--big-iters") && v) big_iters = atoll(argv[++i]);
        else if (!strcmp(a, "--no-big")) do_big = 0;
        else if (!strcmp(a, "--all-scales")) all_scales = 1;
        else {
            fprintf(stderr, "usage: %s [--out N] [--in N] [--iters T] [--rho R] [--threads T] [--big N] "
                            "[--big-iters K] [--no-big] [--all-scales]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines appear as they come, also into a file */
    nvfp4_context *ctx = NULL;
    if (nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK ||
        nvfp4_context_set_int(ctx, NVFP4_CTX_THREADS, threads) != NVFP4_OK) {
        fprintf(stderr, "cannot create a CPU context with %d threads\n", threads);
        return 1;
    }
    layer L;
    if (make_layer(&L, out, in, 2 * in, rho) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    printf("layer %lld x %lld, %lld calibration samples, AR(1) rho %.2f, %d threads\n\n", (long long)out,
           (long long)in, (long long)L.n, rho, threads);

    printf("FAAR (MAX scales), %lld iterations: soft reconstruction loss by iteration\n", (long long)iters);
    outcome faar = run(ctx, &L, NVFP4_ROUNDER_FAAR, NVFP4_METHOD_MAX, iters, 1, iters >= 20 ? (int)(iters / 20) : 1);
    if (!faar.ok)
        return 1;
    printf("FAAR run time: %.2f s (%lld iterations, stage 2 included)\n\n", faar.seconds, (long long)iters);

    static const struct {
        int32_t m;
        const char *name;
    } scales[] = {{NVFP4_METHOD_MAX, "MAX"}, {NVFP4_METHOD_4OVER6, "4/6"}, {NVFP4_METHOD_SOAR, "SOAR"}};
    const double rtn = faar.start;
    printf("%-28s %14s %10s %9s\n", "method", "loss", "vs RTN", "time s");
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        if (!have_method(scales[k].m)) {
            printf("%-28s %14s\n", scales[k].name, "(not in this build)");
            continue;
        }
        char name[64];
        /* the round-to-nearest loss of each scale method is the rounders' starting loss */
        outcome g = run(ctx, &L, NVFP4_ROUNDER_GPTQ, scales[k].m, -1, 1, 0);
        if (!g.ok)
            return 1;
        snprintf(name, sizeof name, "RTN, %s scales", scales[k].name);
        printf("%-28s %14.6e %10.4f\n", name, g.start, g.start / rtn);
        snprintf(name, sizeof name, "GPTQ, %s scales", scales[k].name);
        printf("%-28s %14.6e %10.4f %9.2f\n", name, g.stage1, g.stage1 / rtn, g.seconds);
        snprintf(name, sizeof name, "GPTQ + stage 2, %s scales", scales[k].name);
        printf("%-28s %14.6e %10.4f\n", name, g.final, g.final / rtn);
        outcome f = faar;
        if (k > 0 && all_scales)
            f = run(ctx, &L, NVFP4_ROUNDER_FAAR, scales[k].m, iters, 1, 0);
        if (k == 0 || all_scales) {
            if (!f.ok)
                return 1;
            snprintf(name, sizeof name, "FAAR stage 1, %s scales", scales[k].name);
            printf("%-28s %14.6e %10.4f\n", name, f.stage1, f.stage1 / rtn);
            snprintf(name, sizeof name, "FAAR + stage 2, %s scales", scales[k].name);
            printf("%-28s %14.6e %10.4f %9.2f\n", name, f.final, f.final / rtn, f.seconds);
        }
    }
    free(L.W);
    free(L.X);

    if (do_big) {
        /* time(T) = fixed + T·per_iteration: two short runs give both, then T = 2000 */
        layer B;
        if (make_layer(&B, big, big, big, rho) != 0) {
            fprintf(stderr, "out of memory for the %lld x %lld layer\n", (long long)big, (long long)big);
            return 1;
        }
        printf("\n%lld x %lld layer, FAAR with %lld and %lld iterations (stage 2 included):\n", (long long)big,
               (long long)big, (long long)big_iters, (long long)(2 * big_iters));
        outcome a = run(ctx, &B, NVFP4_ROUNDER_FAAR, NVFP4_METHOD_MAX, big_iters, 1, 0);
        outcome b = run(ctx, &B, NVFP4_ROUNDER_FAAR, NVFP4_METHOD_MAX, 2 * big_iters, 1, 0);
        if (!a.ok || !b.ok)
            return 1;
        double per = (b.seconds - a.seconds) / (double)big_iters;
        double fixed = a.seconds - per * (double)big_iters;
        printf("  %lld iterations: %.2f s; %lld iterations: %.2f s\n", (long long)big_iters, a.seconds,
               (long long)(2 * big_iters), b.seconds);
        printf("  per iteration %.3f s, fixed (calibration, start, losses, stage 2) %.2f s\n", per, fixed);
        printf("  extrapolated to 2000 iterations: %.0f s (%.2f h)\n", fixed + 2000.0 * per,
               (fixed + 2000.0 * per) / 3600.0);
        free(B.W);
        free(B.X);
    }
    nvfp4_context_destroy(ctx);
    return 0;
}
