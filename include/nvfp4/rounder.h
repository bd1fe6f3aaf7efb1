/**
 * @file rounder.h
 * @brief The adaptive-rounding optimizer: FAAR (format-aware adaptive rounding with a second,
 *        scale-alignment stage) and GPTQ, for one linear layer at a time, on the CPU.
 *
 * A rounder is created for a layer shape [out_features, in_features] and a method. It collects
 * calibration statistics — the layer's input samples X [n, in_features], streamed in any number
 * of calls, or a ready Gram matrix H = XᵀX/n — and then turns a weight matrix W
 * [out_features, in_features] into an ordinary NVFP4 tensor (codes, linear E4M3 scales, a float32
 * global decode scale, exactly as nvfp4_quantize() writes them) that minimises the H-weighted
 * reconstruction loss
 *
 *     L = tr((Ŵ − W) H (Ŵ − W)ᵀ) / out_features
 *
 * instead of the plain squared error. The starting point is the tensor a scale method
 * (::NVFP4_METHOD_MAX by default, or any method with its parameters through
 * nvfp4_rounder_set_quantizer()) produces; its loss, the loss after the rounding stage and the
 * final loss are readable afterwards (::NVFP4_R_LOSS_START, ::NVFP4_R_LOSS_STAGE1,
 * ::NVFP4_R_LOSS_FINAL). FAAR never returns a tensor whose loss exceeds the starting one.
 * See docs/ROUNDER.md for the algorithms and the choices this library made.
 *
 * Thread safety: a rounder is used by one thread at a time; distinct rounders are independent.
 * The work of one call is spread over the context's threads (and OpenBLAS's, when the library
 * was built with it). Results are deterministic for a given thread count and build.
 */
#ifndef NVFP4_ROUNDER_H
#define NVFP4_ROUNDER_H

#include "nvfp4/core.h"
#include "nvfp4/quantize.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup rounder Adaptive rounding (FAAR, GPTQ)
 *  @{ */

/** Opaque adaptive-rounding optimizer for one layer shape. */
typedef struct nvfp4_rounder nvfp4_rounder;

/** @name Rounding methods (nvfp4_rounder_create())
 *  @{ */
#define NVFP4_ROUNDER_FAAR 0 /**< Format-aware adaptive rounding (AdaRound on the E2M1 grid) then scale alignment. */
#define NVFP4_ROUNDER_GPTQ 1 /**< GPTQ error feedback with fixed block scales (MR-GPTQ style), the baseline. */
/** @} */

/** @name Rounder parameter keys
 *  Grouped by hundreds, never renumbered. Integer keys use nvfp4_rounder_set_int(), float keys
 *  nvfp4_rounder_set_float(); a key used with the wrong setter is ::NVFP4_ERR_UNKNOWN_KEY.
 *  Keys in the 900s are read-only results of the last successful nvfp4_rounder_run().
 *  @{ */
#define NVFP4_R_SCALE_METHOD 100      /**< int: NVFP4_METHOD_* whose scales start the optimisation, with default parameters (default ::NVFP4_METHOD_MAX). nvfp4_rounder_set_quantizer() sets a method with parameters. */
#define NVFP4_R_SEED 101              /**< int: seed, ≥ 0 (default 0). Reserved for stochastic variants: FAAR and GPTQ as implemented draw no random numbers, so results do not depend on it. */
#define NVFP4_R_PROGRESS_INTERVAL 102 /**< int: FAAR iterations between progress callbacks, 1..2^31 (default 100). */
#define NVFP4_R_ITERATIONS 200        /**< int: FAAR iterations of Adam, 0..10^7 (default 2000); 0 hardens the starting rounding. */
#define NVFP4_R_LEARNING_RATE 201     /**< float: Adam learning rate, (0, 100] (default 0.01). */
#define NVFP4_R_LAMBDA 202            /**< float: weight λ of the rounding regulariser, [0, 1e9] (default 0.01). */
#define NVFP4_R_BETA_START 203        /**< float: regulariser exponent β at the end of the warm-up, [1, 1000] (default 20). */
#define NVFP4_R_BETA_END 204          /**< float: β at the last iteration, [1, 1000] (default 2); β falls linearly in between. */
#define NVFP4_R_WARMUP 205            /**< float: fraction of the iterations run without the regulariser, [0, 1] (default 0.2). */
#define NVFP4_R_ADAM_BETA1 206        /**< float: Adam's first-moment decay, [0, 1) (default 0.9). */
#define NVFP4_R_ADAM_BETA2 207        /**< float: Adam's second-moment decay, [0, 1) (default 0.999). */
#define NVFP4_R_ADAM_EPS 208          /**< float: Adam's ε relative to the RMS of the first reconstruction gradient, (0, 1e6] (default 1e-8); large values make Adam behave like momentum SGD. */
#define NVFP4_R_STAGE2 210            /**< int: 1 runs the format-alignment stage (scale re-fit) after rounding, 0 skips it (default 1 for FAAR, 0 for GPTQ). */
#define NVFP4_R_STAGE2_RADIUS 211     /**< int: stage 2 tries E4M3 codes up to this far from each scale, 1..32 (default 2). */
#define NVFP4_R_STAGE2_GLOBAL 212     /**< int: 1 lets stage 2 re-fit the global scale too, 0 keeps it (default 1); a global scale fixed through the quantizer (::NVFP4_Q_GLOBAL_SCALE) is always kept. */
#define NVFP4_R_DAMPING 300           /**< float: GPTQ damping as a fraction of the mean of diag(H), [0, 100] (default 0.01). */
#define NVFP4_R_BLOCK_SIZE 301        /**< int: GPTQ column block (lazy batch update) width, 1..65536 (default 128). */
#define NVFP4_R_ACT_ORDER 302         /**< int: 1 processes GPTQ columns in decreasing diag(H) order, 0 in natural order (default 0). */
#define NVFP4_R_LOSS_START 900        /**< float, read-only: loss of the starting tensor (the scale method's round-to-nearest). */
#define NVFP4_R_LOSS_STAGE1 901       /**< float, read-only: loss after the rounding stage (FAAR hardened with per-row fallback, or GPTQ). */
#define NVFP4_R_LOSS_FINAL 902        /**< float, read-only: loss of the returned tensor (after stage 2 when it ran). */
#define NVFP4_R_ROWS_FALLBACK 910     /**< int, read-only: rows where FAAR kept the starting rounding because its own was worse. */
#define NVFP4_R_ROWS_STAGE2 911       /**< int, read-only: rows whose block scales stage 2 changed. */
#define NVFP4_R_ITERATIONS_RUN 912    /**< int, read-only: FAAR iterations run (GPTQ: columns processed). */
#define NVFP4_R_GLOBAL_STAGE2 913     /**< int, read-only: 1 if stage 2 changed the global scale. */
#define NVFP4_R_SAMPLES 920           /**< int, read-only, always readable: samples accumulated so far (0 after nvfp4_rounder_set_gram()). */
/** @} */

/**
 * @brief Progress callback of nvfp4_rounder_run().
 *
 * FAAR calls it every ::NVFP4_R_PROGRESS_INTERVAL iterations and after the last one; GPTQ after
 * each column block.
 * @param iteration FAAR: iterations done (1-based); GPTQ: columns processed.
 * @param loss      FAAR: the reconstruction loss L of the soft weights at that iteration (the
 *                  regulariser excluded); GPTQ: its running error estimate Σ (w − q)²/U_jj² / out,
 *                  U the upper Cholesky factor of the damped H⁻¹.
 * @param user      The pointer given to nvfp4_rounder_set_progress().
 * @return 0 to continue; any other value cancels the run (::NVFP4_ERR_CANCELLED, outputs untouched).
 */
typedef int (*nvfp4_rounder_progress_fn)(int64_t iteration, double loss, void *user);

/**
 * @brief Creates a rounder for a layer shape with default parameters.
 * @param[out] out          Receives the rounder; untouched on error.
 * @param[in]  method       ::NVFP4_ROUNDER_FAAR or ::NVFP4_ROUNDER_GPTQ.
 * @param[in]  out_features Rows of W (> 0).
 * @param[in]  in_features  Columns of W and size of H (> 0, at most 2^20).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p method is unknown.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0, too large, or out·in overflows.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if allocation fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_create(nvfp4_rounder **out, int32_t method, int64_t out_features,
                                            int64_t in_features);

/**
 * @brief Creates a rounder whose every allocation of its own goes through @p allocator.
 *
 * The same as nvfp4_rounder_create(), except that the rounder and all memory it keeps — its
 * scale quantizer (including the ones nvfp4_rounder_set_int() with ::NVFP4_R_SCALE_METHOD and
 * nvfp4_rounder_set_quantizer() make), the calibration state of nvfp4_rounder_add_samples() and
 * nvfp4_rounder_set_gram() — are allocated with @p allocator's hooks and released with them
 * (nvfp4_rounder_clear_calibration(), nvfp4_rounder_destroy()). Scratch memory of a call that
 * takes a context still comes from that context's allocator. The hooks are copied; they and
 * their @c opaque must stay valid until the rounder is destroyed. nvfp4_rounder_create() is this
 * function with NULL.
 * @param[out] out          Receives the rounder; untouched on error.
 * @param[in]  method       ::NVFP4_ROUNDER_FAAR or ::NVFP4_ROUNDER_GPTQ.
 * @param[in]  out_features Rows of W (> 0).
 * @param[in]  in_features  Columns of W and size of H (> 0, at most 2^20).
 * @param[in]  allocator    Hooks as for nvfp4_context_create_ex(), or NULL for malloc/free.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p method is unknown.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0, too large, or out·in overflows.
 * @retval NVFP4_ERR_INVALID_VALUE if @p allocator has a bad size field or NULL hooks.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if allocation fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_create_ex(nvfp4_rounder **out, int32_t method, int64_t out_features,
                                               int64_t in_features, const nvfp4_allocator *allocator);

/**
 * @brief Destroys a rounder and its calibration data. NULL is accepted.
 * @param[in] r The rounder.
 * @since 0.1
 */
NVFP4_API void nvfp4_rounder_destroy(nvfp4_rounder *r);

/**
 * @brief Sets an integer parameter.
 * @param[in] r     The rounder.
 * @param[in] key   An integer NVFP4_R_* key that is not read-only.
 * @param[in] value The value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is not a writable integer key, or (::NVFP4_R_SCALE_METHOD)
 *         @p value is not a scale method this build has.
 * @retval NVFP4_ERR_INVALID_VALUE if @p value is out of range; nothing changes.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if a new scale quantizer cannot be allocated; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_set_int(nvfp4_rounder *r, int32_t key, int64_t value);

/**
 * @brief Sets a floating-point parameter.
 * @param[in] r     The rounder.
 * @param[in] key   A float NVFP4_R_* key that is not read-only.
 * @param[in] value The value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is not a writable float key.
 * @retval NVFP4_ERR_INVALID_VALUE if @p value is out of range or not finite; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_set_float(nvfp4_rounder *r, int32_t key, double value);

/**
 * @brief Reads an integer parameter or result.
 * @param[in]  r     The rounder.
 * @param[in]  key   An integer NVFP4_R_* key.
 * @param[out] value Receives the value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r or @p value is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is not an integer key.
 * @retval NVFP4_ERR_STATE if @p key is a result and no run has succeeded yet.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_get_int(const nvfp4_rounder *r, int32_t key, int64_t *value);

/**
 * @brief Reads a floating-point parameter or result.
 * @param[in]  r     The rounder.
 * @param[in]  key   A float NVFP4_R_* key.
 * @param[out] value Receives the value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r or @p value is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is not a float key.
 * @retval NVFP4_ERR_STATE if @p key is a result and no run has succeeded yet.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_get_float(const nvfp4_rounder *r, int32_t key, double *value);

/**
 * @brief Takes the scale method and all its parameters from a quantizer (copied; @p q may be
 *        destroyed afterwards).
 *
 * Global-scale, importance-weight, recipe and rule parameters all carry over to the starting
 * tensor. The quantizer must produce NVFP4 with linear scales.
 * @param[in] r The rounder.
 * @param[in] q The quantizer to copy.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r or @p q is NULL.
 * @retval NVFP4_ERR_UNSUPPORTED if @p q's format is MXFP4 or its scale layout is not linear.
 * @retval NVFP4_ERR_SHAPE if @p q has importance weights whose count is not in_features.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the copy cannot be allocated; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_set_quantizer(nvfp4_rounder *r, const nvfp4_quantizer *q);

/**
 * @brief Sets (or, with @p fn NULL, removes) the progress callback.
 * @param[in] r    The rounder.
 * @param[in] fn   Called during nvfp4_rounder_run(), on the calling thread.
 * @param[in] user Passed back to @p fn.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r is NULL.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_set_progress(nvfp4_rounder *r, nvfp4_rounder_progress_fn fn, void *user);

/**
 * @brief Adds calibration samples: the layer's inputs X [n, in_features].
 *
 * Accumulates XᵀX (float32 products in chunks of 256 samples, summed in float64) so that any
 * number of calls streams a calibration set larger than memory; the Gram matrix used is
 * H = ΣXᵀX / (total samples). Each chunk — samples 0–255, 256–511, … of this call — must keep
 * its float32 products finite: for every feature j, D_j = Σ x_j² over the chunk's m samples must
 * satisfy D_j·(1 + (m + 2)·2^-23) ≤ FLT_MAX (docs/ROUNDER.md, "Float32 range"; |x| up to about
 * 1.1·10^18 always passes). Not allowed after nvfp4_rounder_set_gram() until
 * nvfp4_rounder_clear_calibration(). On error nothing is accumulated.
 * @param[in] r     The rounder.
 * @param[in] ctx   The context (its threads; CPU backend, host pointers).
 * @param[in] dtype ::NVFP4_DTYPE_F32, ::NVFP4_DTYPE_F16 or ::NVFP4_DTYPE_BF16.
 * @param[in] X     [n, in_features] row-major with leading dimension @p ld elements.
 * @param[in] n     Number of samples (> 0).
 * @param[in] ld    Leading dimension (≥ in_features).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r, @p ctx or @p X is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p n ≤ 0 (zero samples), @p ld < in_features, or the sizes overflow.
 * @retval NVFP4_ERR_NONFINITE if a sample holds NaN or Inf.
 * @retval NVFP4_ERR_NUMERICAL if a chunk's float32 Gram product could overflow (the bound above);
 *         nothing is accumulated.
 * @retval NVFP4_ERR_STATE if a Gram matrix was set.
 * @retval NVFP4_ERR_UNSUPPORTED if @p ctx uses the CUDA backend.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if scratch memory cannot be allocated.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_add_samples(nvfp4_rounder *r, nvfp4_context *ctx, int32_t dtype,
                                                 const void *X, int64_t n, int64_t ld);

/**
 * @brief Sets a ready Gram matrix H [in_features, in_features] (e.g. XᵀX/n), replacing any
 *        accumulated samples. H is copied.
 *
 * H must be symmetric (|H_ij − H_ji| ≤ 1e-4·√(H_ii·H_jj), the mean of the two is used), finite,
 * with a non-negative diagonal. On error the calibration state is unchanged. Whether H is too
 * large for the run's float32 arithmetic depends on W as well: nvfp4_rounder_run() decides
 * (::NVFP4_ERR_NUMERICAL).
 * @param[in] r  The rounder.
 * @param[in] H  [n, n] row-major with leading dimension @p ld elements.
 * @param[in] n  Order of H; must equal in_features.
 * @param[in] ld Leading dimension (≥ n).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r or @p H is NULL.
 * @retval NVFP4_ERR_SHAPE if @p n is not in_features or @p ld < n.
 * @retval NVFP4_ERR_NONFINITE if H holds NaN or Inf.
 * @retval NVFP4_ERR_INVALID_VALUE if H is not symmetric or has a negative diagonal entry.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the copy cannot be allocated.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_set_gram(nvfp4_rounder *r, const float *H, int64_t n, int64_t ld);

/**
 * @brief Forgets all calibration data (samples or Gram matrix).
 * @param[in] r The rounder.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p r is NULL.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_clear_calibration(nvfp4_rounder *r);

/**
 * @brief Rounds a weight matrix W [out_features, in_features] to NVFP4 with the rounder's method.
 *
 * Validates every argument and the calibration state first. The outputs are written only when
 * the whole run succeeds; on any error (including a cancelling callback) @p codes, @p scales and
 * @p global_scale are untouched and the previous results stay readable.
 *
 * The run computes in float32 and refuses, before optimising, inputs for which that could
 * overflow (docs/ROUNDER.md, "Float32 range"). With T_b = RN32(RN32(6·f(S_b))·s_dec) the largest
 * value of block b of the starting tensor, ε = (1 + 2^-23)·max_b (T_b + max_{i∈b} |w_i|) bounds
 * every error |Ŵ − W| the run evaluates on the starting grid, and ρ = max_i Σ_j |H_ij| (H the
 * float32 Gram matrix), the loss bound is G = (1 + (in + 1)·2^-23)·ε·ρ ≤ FLT_MAX. FAAR with
 * iterations also needs its gradient bound
 * Γ = ((2/out)·G·2·d_max·0.3 + λ·2·β_max·0.3)·(1 + 2^-20), d_max = max_b RN32(f(S_b)·s_dec),
 * to satisfy Γ²·exp((3·iterations + 8)·2^-23) ≤ FLT_MAX (Adam squares it). Inside these bounds
 * every loss is finite and FAAR never returns a tensor whose loss exceeds the starting one; stage 2
 * leaves the starting grid and skips any candidate whose float32 loss is not finite. Real layers
 * are many orders of magnitude inside: weights of order 1 pass both bounds while ρ stays below
 * about 10^19, and activations of 10^4 (bf16 outliers) give ρ ≈ in·10^8.
 * @param[in]  r            The rounder (with calibration data).
 * @param[in]  ctx          The context (CPU backend; its thread count).
 * @param[in]  src_dtype    ::NVFP4_DTYPE_F32, ::NVFP4_DTYPE_F16 or ::NVFP4_DTYPE_BF16.
 * @param[in]  W            [out_features, in_features] row-major, leading dimension @p ld elements.
 * @param[in]  ld           Leading dimension (≥ in_features).
 * @param[out] codes        nvfp4_codes_size(::NVFP4_FORMAT_NVFP4, out, in) bytes.
 * @param[out] scales       out · ceil(in/16) E4M3 bytes, linear layout.
 * @param[out] global_scale Receives the decode scale s_dec.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p src_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p ld < in_features.
 * @retval NVFP4_ERR_NONFINITE if W holds NaN or Inf.
 * @retval NVFP4_ERR_STATE if no calibration data was given.
 * @retval NVFP4_ERR_NUMERICAL if the float32 range bounds above do not hold, if GPTQ's damped H
 *         is not positive definite, or if GPTQ's error feedback leaves float32's range (an H too
 *         ill-conditioned for its damping); nothing is written.
 * @retval NVFP4_ERR_CANCELLED if the progress callback returned non-zero.
 * @retval NVFP4_ERR_UNSUPPORTED if @p ctx uses the CUDA backend.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if working memory cannot be allocated.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_rounder_run(nvfp4_rounder *r, nvfp4_context *ctx, int32_t src_dtype, const void *W,
                                         int64_t ld, uint8_t *codes, uint8_t *scales, float *global_scale);

/**
 * @brief Detail about the last error a call on this rounder returned.
 * @param[in] r The rounder (NULL gives a fixed string).
 * @return A string owned by the rounder, valid until its next call; "" after a success.
 * @since 0.1
 */
NVFP4_API const char *nvfp4_rounder_last_error_message(const nvfp4_rounder *r);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NVFP4_ROUNDER_H */
