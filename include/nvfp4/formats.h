/**
 * @file formats.h
 * @brief Element and scale formats: E2M1 (FP4), E4M3 (UE4M3 scales), E8M0 (MXFP4 scales),
 *        and array conversions from f32, f16 and bf16.
 *
 * The rounding rules are those of SPEC.md §1, which are what NVIDIA hardware conversion does:
 * - float → E2M1: round to nearest, ties to even on the code, saturating at ±6; the sign bit is
 *   the input's sign bit (−0.0 → 0x8); ±Inf → ±6; NaN → 0x7 (+6).
 * - float → E4M3: round to nearest even including subnormals, satfinite (|x| ≥ 448 → 448,
 *   Inf → 448), NaN → 0x7F.
 *
 * All functions here are pure and thread-safe. Results do not depend on the floating-point
 * environment (rounding is done on bit patterns).
 */
#ifndef NVFP4_FORMATS_H
#define NVFP4_FORMATS_H

#include "nvfp4/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup formats Formats: scalar and array conversions
 *  @{ */

/**
 * @brief Rounds a float to an E2M1 code (SPEC §1).
 * @param[in] x Any float, including NaN, ±Inf, subnormals and −0.0.
 * @return The 4-bit code in the low nibble (0x0..0xF); bit 3 is the sign.
 * @since 0.1
 */
NVFP4_API uint8_t nvfp4_e2m1_from_float(float x);

/**
 * @brief Decodes an E2M1 code (exact).
 * @param[in] code The code in the low nibble; the high nibble is ignored.
 * @return One of ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}; code 0x8 gives −0.0.
 * @since 0.1
 */
NVFP4_API float nvfp4_e2m1_to_float(uint8_t code);

/**
 * @brief Rounds a float to an E4M3 byte (RNE with subnormals, satfinite; SPEC §1).
 * @param[in] x Any float. Negative values keep their sign bit (the block scales the library
 *              writes are never negative).
 * @return The E4M3 byte; NaN gives 0x7F, |x| ≥ 448 and ±Inf give ±448 (0x7E / 0xFE).
 * @since 0.1
 */
NVFP4_API uint8_t nvfp4_e4m3_from_float(float x);

/**
 * @brief Decodes an E4M3 byte (exact).
 * @param[in] b Any byte.
 * @return The value; 0x7F and 0xFF give NaN.
 * @since 0.1
 */
NVFP4_API float nvfp4_e4m3_to_float(uint8_t b);

/**
 * @brief The E2M1 grid: 16 floats indexed by code (0x8 is −0.0).
 * @return A pointer to static, read-only storage.
 * @since 0.1
 */
NVFP4_API const float *nvfp4_e2m1_grid(void);

/** @name E8M0 exponent choice (MXFP4 scales)
 *  @{ */
#define NVFP4_E8M0_RCEIL 0 /**< NVIDIA: 2^ceil(log2(v)) for v = amax/6 (default). */
#define NVFP4_E8M0_FLOOR 1 /**< OCP MX spec: 2^(floor(log2(amax)) − 2). */
/** @} */

/**
 * @brief Chooses the E8M0 scale byte of an MXFP4 block from its amax.
 * @param[in] amax The block's largest magnitude (finite, ≥ 0).
 * @param[in] mode ::NVFP4_E8M0_RCEIL or ::NVFP4_E8M0_FLOOR.
 * @param[out] out Receives the byte (2^(byte−127)); a zero amax gives byte 0 (2^-127). The
 *             exponent is clamped to [−127, 127].
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p mode is unknown.
 * @retval NVFP4_ERR_INVALID_VALUE if @p amax is negative, NaN or infinite.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e8m0_from_amax(float amax, int32_t mode, uint8_t *out);

/**
 * @brief Decodes an E8M0 byte: 2^(b−127); 0xFF gives NaN.
 * @param[in] b The byte.
 * @return The value (exact; byte 0 is the float subnormal 2^-127).
 * @since 0.1
 */
NVFP4_API float nvfp4_e8m0_to_float(uint8_t b);

/**
 * @brief Converts an f16 bit pattern to float (exact).
 * @param[in] h The binary16 bits.
 * @return The value.
 * @since 0.1
 */
NVFP4_API float nvfp4_f16_to_float(uint16_t h);

/**
 * @brief Rounds a float to binary16 (RNE; overflow gives ±Inf; NaN stays NaN).
 * @param[in] x The value.
 * @return The binary16 bits.
 * @since 0.1
 */
NVFP4_API uint16_t nvfp4_float_to_f16(float x);

/**
 * @brief Converts a bfloat16 bit pattern to float (exact).
 * @param[in] b The bfloat16 bits.
 * @return The value.
 * @since 0.1
 */
NVFP4_API float nvfp4_bf16_to_float(uint16_t b);

/**
 * @brief Rounds a float to bfloat16 (RNE; overflow gives ±Inf; NaN stays a quiet NaN).
 * @param[in] x The value.
 * @return The bfloat16 bits.
 * @since 0.1
 */
NVFP4_API uint16_t nvfp4_float_to_bf16(float x);

/**
 * @brief Converts an array to E2M1 codes, one code per output byte (unpacked).
 * @param[in]  src_dtype ::NVFP4_DTYPE_F32, ::NVFP4_DTYPE_F16 or ::NVFP4_DTYPE_BF16.
 * @param[in]  src       @p n elements.
 * @param[in]  n         Element count (≥ 0).
 * @param[out] codes     @p n bytes.
 * @retval NVFP4_OK on success (n = 0 writes nothing).
 * @retval NVFP4_ERR_NULL_POINTER if @p src or @p codes is NULL while n > 0.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p src_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e2m1_from_array(int32_t src_dtype, const void *src, int64_t n,
                                             uint8_t *codes);

/**
 * @brief Converts an array to E4M3 bytes.
 * @param[in]  src_dtype ::NVFP4_DTYPE_F32, ::NVFP4_DTYPE_F16 or ::NVFP4_DTYPE_BF16.
 * @param[in]  src       @p n elements.
 * @param[in]  n         Element count (≥ 0).
 * @param[out] bytes     @p n bytes.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p src or @p bytes is NULL while n > 0.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p src_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e4m3_from_array(int32_t src_dtype, const void *src, int64_t n,
                                             uint8_t *bytes);

/**
 * @brief Decodes E2M1 codes (one per byte, low nibble) to an array.
 * @param[in]  codes     @p n bytes.
 * @param[in]  n         Element count (≥ 0).
 * @param[in]  dst_dtype Output type.
 * @param[out] dst       @p n elements.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL while n > 0.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p dst_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e2m1_to_array(const uint8_t *codes, int64_t n, int32_t dst_dtype,
                                           void *dst);

/**
 * @brief Decodes E4M3 bytes to an array (NaN bytes give NaN).
 * @param[in]  bytes     @p n bytes.
 * @param[in]  n         Element count (≥ 0).
 * @param[in]  dst_dtype Output type.
 * @param[out] dst       @p n elements.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL while n > 0.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p dst_dtype is unknown.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e4m3_to_array(const uint8_t *bytes, int64_t n, int32_t dst_dtype,
                                           void *dst);

/**
 * @brief Packs unpacked E2M1 codes two per byte: element 2j in bits 3..0, 2j+1 in bits 7..4.
 * @param[in]  codes  @p n codes, one per byte (high nibbles must be zero).
 * @param[in]  n      Element count (≥ 0); odd n pads the last high nibble with 0.
 * @param[out] packed ceil(n/2) bytes.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL while n > 0.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @retval NVFP4_ERR_INVALID_VALUE if a code has its high nibble set; nothing is written.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e2m1_pack(const uint8_t *codes, int64_t n, uint8_t *packed);

/**
 * @brief Unpacks E2M1 codes to one per byte (the inverse of nvfp4_e2m1_pack()).
 * @param[in]  packed ceil(n/2) bytes.
 * @param[in]  n      Element count (≥ 0).
 * @param[out] codes  @p n bytes.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if a pointer is NULL while n > 0.
 * @retval NVFP4_ERR_SHAPE if @p n is negative.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_e2m1_unpack(const uint8_t *packed, int64_t n, uint8_t *codes);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NVFP4_FORMATS_H */
