/**
 * @file quantize.h
 * @brief Quantizers (scale-selection methods and their parameters), tensor quantisation and
 *        dequantisation, buffer sizes and the 128×4 tensor-core scale layout.
 *
 * An NVFP4 tensor of shape [rows, cols] (row-major, cols the reduction dimension) is:
 * - codes: uint8 [rows, ceil(cols/16)·8]; byte j of a row holds element 2j in bits 3..0 and
 *   element 2j+1 in bits 7..4; padding elements past cols have code 0;
 * - scales: one E4M3 byte per 16 elements, [rows, ceil(cols/16)] linear, or the 128×4 layout;
 * - a float32 global decode scale s_dec (ModelOpt's weight_scale_2 / input_scale).
 * Decode: x̂ = RN32(RN32(value(code)·f(scale))·s_dec).
 *
 * MXFP4 (format ::NVFP4_FORMAT_MXFP4) uses blocks of 32 and E8M0 scale bytes; its global scale
 * is 1.0.
 *
 * Thread safety: a quantizer may be shared read-only by many threads at once once its
 * parameters are set (nvfp4_quantize() takes it const); setting parameters while another
 * thread quantizes with it is not allowed. Contexts follow core.h.
 */
#ifndef NVFP4_QUANTIZE_H
#define NVFP4_QUANTIZE_H

#include "nvfp4/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup quantize Quantizers and tensor quantisation
 *  @{ */

/** Opaque quantizer: a scale method and its parameters. */
typedef struct nvfp4_quantizer nvfp4_quantizer;

/** @name Methods (nvfp4_quantizer_create())
 *  @{ */
#define NVFP4_METHOD_MAX 0       /**< Round to nearest with the block amax mapped to 6 (the NVFP4 baseline). */
#define NVFP4_METHOD_4OVER6 1    /**< Four Over Six: per block, the better of "amax → 6" and "amax → 4". */
#define NVFP4_METHOD_SOAR 2      /**< SOAR: CJSO then DSS. */
#define NVFP4_METHOD_SOAR_CJSO 3 /**< SOAR closed-form joint scale optimisation alone. */
#define NVFP4_METHOD_SOAR_DSS 4  /**< SOAR decoupled scale search alone (starting from MAX). */
#define NVFP4_METHOD_SWEEP 5     /**< Coupled search over ±k E4M3 codes around the MAX scale. */
/** @} */

/** @name Quantizer parameter keys
 *  Grouped by hundreds, never renumbered. Integer keys use nvfp4_quantizer_set_int(), float keys
 *  nvfp4_quantizer_set_float(); a key used with the wrong setter is ::NVFP4_ERR_UNKNOWN_KEY.
 *  @{ */
#define NVFP4_Q_FORMAT 100          /**< int: ::NVFP4_FORMAT_NVFP4 (default) or ::NVFP4_FORMAT_MXFP4 (MAX only). */
#define NVFP4_Q_SCALE_LAYOUT 101    /**< int: ::NVFP4_LAYOUT_LINEAR (default) or ::NVFP4_LAYOUT_128X4. */
#define NVFP4_Q_NONFINITE 102       /**< int: ::NVFP4_NONFINITE_STRICT (default) or ::NVFP4_NONFINITE_SATURATE. */
#define NVFP4_Q_RECIPE 103          /**< int: ::NVFP4_RECIPE_EXACT (default) or ::NVFP4_RECIPE_MODELOPT (MAX only). */
#define NVFP4_Q_E8M0_MODE 104       /**< int: ::NVFP4_E8M0_RCEIL (default) or ::NVFP4_E8M0_FLOOR (MXFP4). With RCEIL, finite inputs with |x| ≥ 1.75·2^127 get the value ±2^128, which dequantises to ±Inf (docs/FORMAT.md); FLOOR's values stay within float32. */
#define NVFP4_Q_GLOBAL_SCALE 110    /**< float: caller-supplied decode scale s_dec (> 0, finite); 0 (default) computes it from the amax. */
#define NVFP4_Q_4OVER6_RULE 200     /**< int: ::NVFP4_RULE_MSE (default), ::NVFP4_RULE_MAE or ::NVFP4_RULE_ABSMAX. */
#define NVFP4_Q_4OVER6_E4M3_MAX 201 /**< int: the E4M3 ceiling M of 4/6's global scale, 256 (default) or 448. */
#define NVFP4_Q_CJSO_ITERATIONS 300 /**< int: CJSO iterations, 1..1000 (default 8). */
#define NVFP4_Q_DSS_WINDOW_LO 301   /**< float: DSS window low end as a multiple of the MAX scale, (0, 1] (default 0.5). */
#define NVFP4_Q_DSS_WINDOW_HI 302   /**< float: DSS window high end as a multiple of the MAX scale, [1, 16] (default 2). */
#define NVFP4_Q_CJSO_TOLERANCE 303  /**< float: CJSO stops after an iteration that lowers its loss by less than this fraction, [0, 1) (default 1e-3; 0: only when the loss stops falling). */
#define NVFP4_Q_SWEEP_RADIUS 400    /**< int: sweep over ±k E4M3 codes, 1..64 (default 4). */
/** @} */

/** @name Parameter values
 *  @{ */
#define NVFP4_FORMAT_NVFP4 0       /**< E2M1, block 16, E4M3 scales, FP32 global scale. */
#define NVFP4_FORMAT_MXFP4 1       /**< E2M1, block 32, E8M0 scales, no global scale (1.0). */
#define NVFP4_LAYOUT_LINEAR 0      /**< Scales [rows, nblocks] row-major. */
#define NVFP4_LAYOUT_128X4 1       /**< cuBLASLt/CUTLASS 128×4 tiles, zero padded (SPEC §6). */
#define NVFP4_NONFINITE_STRICT 0   /**< NaN/Inf input is an error (::NVFP4_ERR_NONFINITE). */
#define NVFP4_NONFINITE_SATURATE 1 /**< NaN → 0x7, ±Inf → ±6; excluded from amaxes. */
#define NVFP4_RECIPE_EXACT 0       /**< TransformerEngine's exact association (SPEC §3.1). */
#define NVFP4_RECIPE_MODELOPT 1    /**< Bit-for-bit ModelOpt export (division, zero blocks store 1.0, −0 → 0x0). */
#define NVFP4_RULE_MSE 0           /**< 4/6 block error: sum of squares. */
#define NVFP4_RULE_MAE 1           /**< 4/6 block error: sum of absolute values. */
#define NVFP4_RULE_ABSMAX 2        /**< 4/6 block error: largest absolute error. */
/** @} */

/**
 * @brief Creates a quantizer for a scale method with default parameters.
 * @param[out] out    Receives the quantizer; untouched on error.
 * @param[in]  method One of the NVFP4_METHOD_* values.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p method is unknown.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if allocation fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_create(nvfp4_quantizer **out, int32_t method);

/**
 * @brief Creates a quantizer whose every allocation goes through @p allocator.
 *
 * The same as nvfp4_quantizer_create(), except that the quantizer itself and everything it
 * allocates later (the copy nvfp4_quantizer_set_importance() keeps) are allocated with
 * @p allocator's hooks and released with them, by nvfp4_quantizer_set_importance() and
 * nvfp4_quantizer_destroy(). The hooks are copied; they and their @c opaque must stay valid
 * until the quantizer is destroyed. nvfp4_quantizer_create() is this function with NULL.
 * @param[out] out       Receives the quantizer; untouched on error.
 * @param[in]  method    One of the NVFP4_METHOD_* values.
 * @param[in]  allocator Hooks as for nvfp4_context_create_ex(), or NULL for malloc/free.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p method is unknown.
 * @retval NVFP4_ERR_INVALID_VALUE if @p allocator has a bad size field or NULL hooks.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if allocation fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_create_ex(nvfp4_quantizer **out, int32_t method,
                                                 const nvfp4_allocator *allocator);

/**
 * @brief Sets an integer parameter.
 * @param[in] q     The quantizer.
 * @param[in] param An integer NVFP4_Q_* key.
 * @param[in] value The value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p q is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p param is not an integer key.
 * @retval NVFP4_ERR_INVALID_VALUE if @p value is out of range; nothing changes.
 * @retval NVFP4_ERR_UNSUPPORTED if @p value asks for ::NVFP4_FORMAT_MXFP4 or ::NVFP4_RECIPE_MODELOPT
 *         with a method or setting that cannot produce it (both are MAX only); nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_set_int(nvfp4_quantizer *q, int32_t param, int64_t value);

/**
 * @brief Sets a floating-point parameter.
 * @param[in] q     The quantizer.
 * @param[in] param A float NVFP4_Q_* key.
 * @param[in] value The value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p q is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p param is not a float key.
 * @retval NVFP4_ERR_INVALID_VALUE if @p value is out of range or not finite; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_set_float(nvfp4_quantizer *q, int32_t param, double value);

/**
 * @brief Reads an integer parameter.
 * @param[in]  q     The quantizer.
 * @param[in]  param An integer NVFP4_Q_* key.
 * @param[out] value Receives the value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p q or @p value is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p param is not an integer key.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_get_int(const nvfp4_quantizer *q, int32_t param, int64_t *value);

/**
 * @brief Reads a floating-point parameter.
 * @param[in]  q     The quantizer.
 * @param[in]  param A float NVFP4_Q_* key.
 * @param[out] value Receives the value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p q or @p value is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p param is not a float key.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_get_float(const nvfp4_quantizer *q, int32_t param, double *value);

/**
 * @brief Sets per-column importance weights h (SPEC §3.5): block errors become Σ h_i (x̂_i − x_i)².
 *
 * The weights are copied. They steer every method's choice of scales (4/6's MSE rule, CJSO,
 * DSS, sweep) and weight the reported SSE; MAX's scales do not depend on them.
 * @param[in] q The quantizer.
 * @param[in] h @p n finite, non-negative weights, one per input column; NULL with n = 0 clears.
 * @param[in] n Number of weights; must equal the cols of each later nvfp4_quantize() call.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p q is NULL, or @p h is NULL while n > 0.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @retval NVFP4_ERR_INVALID_VALUE if a weight is negative or not finite; nothing changes.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the copy cannot be allocated; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantizer_set_importance(nvfp4_quantizer *q, const float *h, int64_t n);

/**
 * @brief Destroys a quantizer. NULL is accepted.
 * @param[in] q The quantizer.
 * @since 0.1
 */
NVFP4_API void nvfp4_quantizer_destroy(nvfp4_quantizer *q);

/**
 * @brief Quantises a matrix.
 *
 * Validates every argument first; on any error nothing is written to @p codes, @p scales or
 * @p global_scale.
 * @param[in]  ctx          The context (its backend, threads and statistics switch).
 * @param[in]  q            The quantizer.
 * @param[in]  src_dtype    ::NVFP4_DTYPE_F32, ::NVFP4_DTYPE_F16 or ::NVFP4_DTYPE_BF16.
 * @param[in]  src          [rows, cols] row-major with leading dimension @p ld elements.
 * @param[in]  rows         Row count (> 0).
 * @param[in]  cols         Column count (> 0).
 * @param[in]  ld           Leading dimension (≥ cols).
 * @param[out] codes        nvfp4_codes_size() bytes.
 * @param[out] scales       nvfp4_scales_size() bytes for the quantizer's format and layout.
 * @param[out] global_scale Receives s_dec (1.0 for MXFP4).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p src_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0, ld < cols, the sizes overflow, or importance
 *         weights were set for a different column count.
 * @retval NVFP4_ERR_NONFINITE if the input holds NaN/Inf under the strict policy.
 * @retval NVFP4_ERR_UNSUPPORTED if the method does not support the quantizer's format/recipe.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if scratch memory cannot be allocated.
 * @retval NVFP4_ERR_BACKEND if the CUDA backend fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_quantize(nvfp4_context *ctx, const nvfp4_quantizer *q,
                                      int32_t src_dtype, const void *src, int64_t rows, int64_t cols,
                                      int64_t ld, uint8_t *codes, uint8_t *scales, float *global_scale);

/**
 * @brief Dequantises an NVFP4 tensor with linear scales (SPEC §2).
 * @param[in]  ctx          The context.
 * @param[in]  codes        [rows, ceil(cols/16)·8] bytes.
 * @param[in]  scales       [rows, ceil(cols/16)] E4M3 bytes, linear layout.
 * @param[in]  global_scale s_dec (finite, ≥ 0).
 * @param[in]  rows         Row count (> 0).
 * @param[in]  cols         Column count (> 0).
 * @param[in]  dst_dtype    Output type.
 * @param[out] dst          [rows, cols] with leading dimension @p ld.
 * @param[in]  ld           Leading dimension (≥ cols).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p dst_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if sizes are invalid.
 * @retval NVFP4_ERR_INVALID_SCALE if a scale byte is ≥ 0x7F or the global scale is negative or
 *         not finite; nothing is written.
 * @retval NVFP4_ERR_BACKEND if the CUDA backend fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_dequantize(nvfp4_context *ctx, const uint8_t *codes, const uint8_t *scales,
                                        float global_scale, int64_t rows, int64_t cols,
                                        int32_t dst_dtype, void *dst, int64_t ld);

/**
 * @brief Dequantises with an explicit format and scale layout (NVFP4 or MXFP4; linear or 128×4).
 *
 * For MXFP4 the scale bytes are E8M0 (0xFF is invalid) and the result is also multiplied by
 * @p global_scale (pass 1.0). Every element is RN32 of its exact value, so one whose value is
 * beyond float32's range becomes ±Inf: MXFP4 can hold ±2^128 and more, and nvfp4_quantize() with
 * ::NVFP4_E8M0_RCEIL codes finite inputs with |x| ≥ 1.75·2^127 as ±2^128, the hardware's nearest
 * value (docs/FORMAT.md, "MXFP4 near FLT_MAX"); ::NVFP4_E8M0_FLOOR never does.
 * @param[in]  ctx          The context.
 * @param[in]  format       ::NVFP4_FORMAT_NVFP4 or ::NVFP4_FORMAT_MXFP4.
 * @param[in]  scale_layout ::NVFP4_LAYOUT_LINEAR or ::NVFP4_LAYOUT_128X4.
 * @param[in]  codes        nvfp4_codes_size() bytes.
 * @param[in]  scales       nvfp4_scales_size() bytes.
 * @param[in]  global_scale The global decode scale (finite, ≥ 0).
 * @param[in]  rows         Row count (> 0).
 * @param[in]  cols         Column count (> 0).
 * @param[in]  dst_dtype    Output type.
 * @param[out] dst          [rows, cols] with leading dimension @p ld.
 * @param[in]  ld           Leading dimension (≥ cols).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p format, @p scale_layout or @p dst_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if sizes are invalid.
 * @retval NVFP4_ERR_INVALID_SCALE if a scale byte cannot be decoded or the global scale is bad.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if scratch memory cannot be allocated.
 * @retval NVFP4_ERR_BACKEND if the CUDA backend fails.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_dequantize_v2(nvfp4_context *ctx, int32_t format, int32_t scale_layout,
                                           const uint8_t *codes, const uint8_t *scales,
                                           float global_scale, int64_t rows, int64_t cols,
                                           int32_t dst_dtype, void *dst, int64_t ld);

/**
 * @brief Size in bytes of the packed codes of a [rows, cols] tensor.
 * @param[in]  format ::NVFP4_FORMAT_NVFP4 or ::NVFP4_FORMAT_MXFP4.
 * @param[in]  rows   Row count (> 0).
 * @param[in]  cols   Column count (> 0).
 * @param[out] bytes  Receives rows · ceil(cols/block) · block/2.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p bytes is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p format is unknown.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0 or the result overflows.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_codes_size(int32_t format, int64_t rows, int64_t cols, int64_t *bytes);

/**
 * @brief Size in bytes of the scales of a [rows, cols] tensor in a layout.
 * @param[in]  format ::NVFP4_FORMAT_NVFP4 or ::NVFP4_FORMAT_MXFP4.
 * @param[in]  layout ::NVFP4_LAYOUT_LINEAR or ::NVFP4_LAYOUT_128X4.
 * @param[in]  rows   Row count (> 0).
 * @param[in]  cols   Column count (> 0).
 * @param[out] bytes  Receives the size (128×4: round_up(rows,128) · round_up(nblocks,4)).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p bytes is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p format or @p layout is unknown.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0 or the result overflows.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_scales_size(int32_t format, int32_t layout, int64_t rows, int64_t cols,
                                         int64_t *bytes);

/**
 * @brief Byte offset of scale (m, k) in the 128×4 layout (SPEC §6).
 * @param[in]  m          Row (0 ≤ m).
 * @param[in]  k          Scale column (0 ≤ k < scale_cols).
 * @param[in]  scale_cols Scale columns before padding (nblocks per row, > 0).
 * @param[out] offset     Receives ((m/128)·ceil(K/4) + k/4)·512 + (m%32)·16 + ((m/32)%4)·4 + k%4.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p offset is NULL.
 * @retval NVFP4_ERR_SHAPE if an index is out of range or the offset overflows.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_scale_offset_128x4(int64_t m, int64_t k, int64_t scale_cols, int64_t *offset);

/**
 * @brief Converts linear scales [rows, scale_cols] to the zero-padded 128×4 layout.
 * @param[in]  linear     rows · scale_cols bytes.
 * @param[in]  rows       Row count (> 0).
 * @param[in]  scale_cols Scale columns (> 0).
 * @param[out] swizzled   round_up(rows,128) · round_up(scale_cols,4) bytes; padding is zeroed.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0 or overflows.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_scales_swizzle(const uint8_t *linear, int64_t rows, int64_t scale_cols,
                                            uint8_t *swizzled);

/**
 * @brief Converts 128×4-layout scales back to linear [rows, scale_cols] (padding is dropped).
 * @param[in]  swizzled   round_up(rows,128) · round_up(scale_cols,4) bytes.
 * @param[in]  rows       Row count (> 0).
 * @param[in]  scale_cols Scale columns (> 0).
 * @param[out] linear     rows · scale_cols bytes.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL.
 * @retval NVFP4_ERR_SHAPE if a size is ≤ 0 or overflows.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_scales_unswizzle(const uint8_t *swizzled, int64_t rows, int64_t scale_cols,
                                              uint8_t *linear);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NVFP4_QUANTIZE_H */
