/* matmul.h - the rounder's dense float32 products (never installed).
 *
 * With OpenBLAS (NVFP4_HAVE_BLAS) these call cblas_sgemm/cblas_ssyrk; otherwise a blocked C
 * kernel runs row-parallel over the context's threads. The C kernel sums every output element
 * over k in increasing order, so its results do not depend on the thread count.
 */
#ifndef NVFP4I_MATMUL_H
#define NVFP4I_MATMUL_H

#include <stdint.h>

#include "internal.h"

/* C[m, n] = A[m, k] · B[k, n], all row-major with leading dimensions; C must not alias A or B. */
void nvfp4i_matmul(const nvfp4_context *ctx, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float *C, int64_t ldc);

/* G[d, d] = Xᵀ X for X [n, d] (row-major, ld ldx): the full symmetric matrix in float32.
 * scratch: n·d floats (used by the C path for Xᵀ; may be NULL with BLAS). */
void nvfp4i_gram(const nvfp4_context *ctx, int64_t n, int64_t d, const float *X, int64_t ldx, float *G,
                 float *scratch);

/* The built-in kernels alone (what the two functions above run without a BLAS). The portable
 * Gram matrix is exactly symmetric: elements (i, j) and (j, i) are the same sums in the same order. */
void nvfp4i_matmul_portable(const nvfp4_context *ctx, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float *C, int64_t ldc);
void nvfp4i_gram_portable(const nvfp4_context *ctx, int64_t n, int64_t d, const float *X, int64_t ldx, float *G,
                          float *scratch);

/* 1 when the library was built with a BLAS. */
int nvfp4i_have_blas(void);

#endif /* NVFP4I_MATMUL_H */
