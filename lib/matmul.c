/* matmul.c - dense float32 products for the rounder: OpenBLAS when built with it, otherwise a
 * blocked C kernel spread over the context's threads.
 *
 * The C kernel keeps a 4×16 tile of C in local accumulators and runs over k in blocks of 256
 * (a 256×16 panel of B stays in L1/L2 while every row block of the thread passes over it). Each
 * element of C is the float32 sum over k in increasing order whatever the blocking and the
 * thread split, so the result is the same for every thread count.
 */
#include <string.h>

#include "matmul.h"

#ifdef NVFP4_HAVE_BLAS
#include <cblas.h>
#endif

#define MR 4
#define NR 16
#define KC 256

int nvfp4i_have_blas(void)
{
#ifdef NVFP4_HAVE_BLAS
    return 1;
#else
    return 0;
#endif
}

typedef struct {
    int64_t n, k;
    const float *A, *B;
    float *C;
    int64_t lda, ldb, ldc;
} mm_args;

/* C rows [i0, i0+mr) × columns [j, j+NR) over k in [k0, k1): full-width tile. */
static void tile_full(const mm_args *a, int64_t i0, int mr, int64_t j, int64_t k0, int64_t k1)
{
    float acc[MR][NR];
    for (int r = 0; r < mr; r++) {
        if (k0 == 0)
            memset(acc[r], 0, sizeof acc[r]);
        else
            memcpy(acc[r], a->C + (i0 + r) * a->ldc + j, sizeof acc[r]);
    }
    if (mr == MR) {
        const float *a0 = a->A + i0 * a->lda, *a1 = a0 + a->lda, *a2 = a1 + a->lda, *a3 = a2 + a->lda;
        for (int64_t kk = k0; kk < k1; kk++) {
            const float *b = a->B + kk * a->ldb + j;
            float x0 = a0[kk], x1 = a1[kk], x2 = a2[kk], x3 = a3[kk];
            for (int c = 0; c < NR; c++) {
                float bc = b[c];
                acc[0][c] += x0 * bc;
                acc[1][c] += x1 * bc;
                acc[2][c] += x2 * bc;
                acc[3][c] += x3 * bc;
            }
        }
    } else {
        for (int r = 0; r < mr; r++) {
            const float *ar = a->A + (i0 + r) * a->lda;
            for (int64_t kk = k0; kk < k1; kk++) {
                const float *b = a->B + kk * a->ldb + j;
                float x = ar[kk];
                for (int c = 0; c < NR; c++)
                    acc[r][c] += x * b[c];
            }
        }
    }
    for (int r = 0; r < mr; r++)
        memcpy(a->C + (i0 + r) * a->ldc + j, acc[r], sizeof acc[r]);
}

/* The ragged right edge: columns [j, n) with n − j < NR. */
static void tile_edge(const mm_args *a, int64_t i0, int mr, int64_t j, int64_t k0, int64_t k1)
{
    int64_t w = a->n - j;
    for (int r = 0; r < mr; r++) {
        float *c = a->C + (i0 + r) * a->ldc + j;
        const float *ar = a->A + (i0 + r) * a->lda;
        for (int64_t cc = 0; cc < w; cc++) {
            float s = k0 == 0 ? 0.0f : c[cc];
            for (int64_t kk = k0; kk < k1; kk++)
                s += ar[kk] * a->B[kk * a->ldb + j + cc];
            c[cc] = s;
        }
    }
}

static void mm_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const mm_args *a = arg;
    (void)tid;
    if (a->k == 0) {
        for (int64_t i = begin; i < end; i++)
            memset(a->C + i * a->ldc, 0, (size_t)a->n * sizeof(float));
        return;
    }
    for (int64_t j = 0; j < a->n; j += NR) {
        for (int64_t k0 = 0; k0 < a->k; k0 += KC) {
            int64_t k1 = k0 + KC < a->k ? k0 + KC : a->k;
            for (int64_t i = begin; i < end; i += MR) {
                int mr = end - i < MR ? (int)(end - i) : MR;
                if (j + NR <= a->n)
                    tile_full(a, i, mr, j, k0, k1);
                else
                    tile_edge(a, i, mr, j, k0, k1);
            }
        }
    }
}

void nvfp4i_matmul_portable(const nvfp4_context *ctx, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float *C, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    mm_args a = {n, k, A, B, C, lda, ldb, ldc};
    nvfp4i_parallel_for(ctx, m, mm_rows, &a);
}

void nvfp4i_matmul(const nvfp4_context *ctx, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float *C, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
#ifdef NVFP4_HAVE_BLAS
    if (k > 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX &&
        ldc <= INT32_MAX) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A, (int)lda, B,
                    (int)ldb, 0.0f, C, (int)ldc);
        return;
    }
#endif
    nvfp4i_matmul_portable(ctx, m, n, k, A, lda, B, ldb, C, ldc);
}

typedef struct {
    int64_t n, d, ldx;
    const float *X;
    float *Xt;
} tr_args;

static void transpose_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    const tr_args *t = arg;
    (void)tid;
    for (int64_t c = begin; c < end; c++)
        for (int64_t s = 0; s < t->n; s++)
            t->Xt[c * t->n + s] = t->X[s * t->ldx + c];
}

void nvfp4i_gram_portable(const nvfp4_context *ctx, int64_t n, int64_t d, const float *X, int64_t ldx, float *G,
                          float *scratch)
{
    tr_args t = {n, d, ldx, X, scratch};
    nvfp4i_parallel_for(ctx, d, transpose_rows, &t);
    nvfp4i_matmul_portable(ctx, d, d, n, scratch, n, X, ldx, G, d);
}

void nvfp4i_gram(const nvfp4_context *ctx, int64_t n, int64_t d, const float *X, int64_t ldx, float *G,
                 float *scratch)
{
#ifdef NVFP4_HAVE_BLAS
    if (n <= INT32_MAX && d <= INT32_MAX && ldx <= INT32_MAX) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0f, X, (int)ldx, 0.0f, G, (int)d);
        /* mirror the upper triangle in 64×64 tiles (a plain column walk thrashes the cache) */
        for (int64_t i0 = 0; i0 < d; i0 += 64)
            for (int64_t j0 = 0; j0 <= i0; j0 += 64)
                for (int64_t i = i0; i < i0 + 64 && i < d; i++)
                    for (int64_t j = j0; j < j0 + 64 && j < i; j++)
                        G[i * d + j] = G[j * d + i];
        return;
    }
#endif
    nvfp4i_gram_portable(ctx, n, d, X, ldx, G, scratch);
}
