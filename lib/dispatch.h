/* dispatch.h - the layer between the validated public functions and each backend.
 *
 * The public entry points (quantize.c) check every argument once, build an nvfp4i_job and call
 * the context's backend through this table. The CPU backend is cpu_backend.c; the CUDA backend
 * (cuda/) provides the same operations when the library is built with CUDA.
 */
#ifndef NVFP4I_DISPATCH_H
#define NVFP4I_DISPATCH_H

#include "internal.h"

/* A validated dequantisation request. */
typedef struct nvfp4i_deq {
    int32_t format, layout;
    const uint8_t *codes, *scales; /* scales in the caller's layout (not yet checked) */
    float global_scale;
    int64_t rows, cols, nblk;
    int block;
    int32_t dst_dtype;
    void *dst;
    int64_t ld;
} nvfp4i_deq;

typedef struct nvfp4i_backend_ops {
    /* Quantise: job has src, q, nblk/padded/block, h, want_stats and the output pointers set;
     * job->scales is the caller's buffer in the quantizer's layout (q->layout). The backend
     * computes the amax (failing with NVFP4_ERR_NONFINITE under the strict policy before
     * writing anything), the global scales, runs the method, lays out the scales and writes
     * s_dec to *global_scale. Pointers are host memory on the CPU backend and device memory on
     * the CUDA backend. On error nothing is written. */
    nvfp4_status (*quantize)(nvfp4i_job *job, const nvfp4i_method *method, nvfp4i_stats_acc *st,
                             float *global_scale);
    /* Dequantise: the backend checks the scale bytes (NVFP4_ERR_INVALID_SCALE, nothing written)
     * and reads them in d->layout. */
    nvfp4_status (*dequantize)(nvfp4_context *ctx, const nvfp4i_deq *d);
} nvfp4i_backend_ops;

const nvfp4i_backend_ops *nvfp4i_backend_ops_for(const nvfp4_context *ctx);
extern const nvfp4i_backend_ops nvfp4i_cpu_ops;

/* CUDA hooks (cpu_backend.c answers "unavailable" when built without CUDA). */
int nvfp4i_cuda_available(void);
void nvfp4i_backend_release(nvfp4_context *ctx);
#ifdef NVFP4_HAVE_CUDA
extern const nvfp4i_backend_ops nvfp4i_cuda_ops;
#endif

#endif /* NVFP4I_DISPATCH_H */
