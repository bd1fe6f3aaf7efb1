/* rounder_impl.h - the rounder's handle and the interface between rounder.c (handle, parameters,
 * calibration, validation, losses) and the two methods (rounder_faar.c, rounder_gptq.c).
 * Never installed.
 */
#ifndef NVFP4I_ROUNDER_IMPL_H
#define NVFP4I_ROUNDER_IMPL_H

#include "internal.h"

struct nvfp4_rounder {
    int32_t method; /* NVFP4_ROUNDER_* */
    int64_t out, in;
    /* parameters */
    int64_t seed, progress_interval, iterations;
    double lr, lambda, beta_start, beta_end, warmup, adam_b1, adam_b2, adam_eps;
    int32_t stage2, stage2_radius, stage2_global;
    double damping;
    int64_t block_size;
    int32_t act_order;
    nvfp4_quantizer *scale_q; /* owned copy, allocated through hooks */
    nvfp4_allocator hooks;    /* from nvfp4_rounder_create_ex(); alloc NULL = malloc/free. Every
                                 allocation the handle owns (itself, scale_q, h_acc) uses them. */
    nvfp4_rounder_progress_fn progress;
    void *progress_user;
    /* calibration: H_acc = Σ XᵀX (samples) or the given Gram (gram_set) */
    double *h_acc; /* [in, in] or NULL */
    int64_t samples;
    int gram_set;
    /* results of the last successful run */
    int have_result;
    double loss_start, loss_stage1, loss_final;
    int64_t rows_fallback, rows_stage2, iterations_run;
    int32_t global_changed;
    char errmsg[256];
};

/* The working state of one run. Codes are unpacked (one E2M1 code per byte, [out, in]);
 * scales are linear [out, nblk]. */
typedef struct nvfp4i_rjob {
    nvfp4_context *ctx;
    nvfp4_rounder *r;
    int64_t out, in, nblk;
    const float *W;  /* [out, in] */
    const float *H;  /* [in, in], symmetric */
    float *E, *G;    /* [out, in] scratch for losses */
    double *rowloss; /* [out] scratch */
} nvfp4i_rjob;

/* Row r's loss e H eᵀ for Ŵ = decode(codes, scales, s_dec), all rows; returns Σ/out.
 * rowloss[r] gets each row's e H eᵀ (float64 sums of the float32 product E·H). */
double nvfp4i_rounder_loss(const nvfp4i_rjob *job, const uint8_t *codes, const uint8_t *scales, float s_dec,
                           double *rowloss);

/* Same for an explicit float matrix Ŵ [out, in]. */
double nvfp4i_rounder_loss_dense(const nvfp4i_rjob *job, const float *What, double *rowloss);

/* Records a detail message on the rounder (and the context, when given) and returns status. */
nvfp4_status nvfp4i_rounder_fail(nvfp4_rounder *r, nvfp4_context *ctx, nvfp4_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Stage 1 of FAAR: in/out codes (start rounding in, hardened with per-row fallback out),
 * scales and s_dec fixed. Fills r's iterations_run, rows_fallback. */
nvfp4_status nvfp4i_faar_round(const nvfp4i_rjob *job, uint8_t *codes, const uint8_t *scales, float s_dec,
                               const double *start_rowloss, int64_t *iterations_run, int64_t *rows_fallback);

/* For tests: the FAAR objective L(V) (reconstruction/out, plus λ·regulariser when reg_on) for the
 * variables V [out, in] of the free weights (entries of frozen weights are ignored), its gradient
 * dL/dV in grad (0 for frozen weights) and frozen[x] = 1 for frozen weights. job->E and job->G
 * are used as scratch. Returns NaN if memory runs out. */
double nvfp4i_faar_eval(const nvfp4i_rjob *job, const uint8_t *scales, float s_dec, const float *V, int reg_on,
                        float lambda, float beta, float *grad, uint8_t *frozen);

/* Stage 2 (format alignment): re-fit scales (and optionally s_dec) to fixed codes; never
 * increases the loss. rowloss holds the current per-row losses and is updated. */
nvfp4_status nvfp4i_stage2(const nvfp4i_rjob *job, const uint8_t *codes, uint8_t *scales, float *s_dec,
                           double *rowloss, int64_t *rows_changed, int32_t *global_changed);

/* GPTQ with fixed scales: writes codes. */
nvfp4_status nvfp4i_gptq_round(const nvfp4i_rjob *job, uint8_t *codes, const uint8_t *scales, float s_dec,
                               int64_t *columns_done);

/* Unpacked code for a signed grid value v (one of ±{0,0.5,1,1.5,2,3,4,6}); a zero takes the
 * sign of w (as round-to-nearest does). */
uint8_t nvfp4i_code_of_value(float v, float w);

#endif /* NVFP4I_ROUNDER_IMPL_H */
