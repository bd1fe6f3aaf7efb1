/**
 * @file core.h
 * @brief Status codes, element types, version queries, the context handle and statistics.
 *
 * Everything in libnvfp4 returns an ::nvfp4_status and writes results through out-pointers.
 * Functions never abort, never print and never call exit().
 *
 * Thread safety: the functions in this header that take no handle are pure and thread-safe.
 * A context may be used by one thread at a time; distinct contexts are independent. The library
 * has no hidden mutable global state.
 */
#ifndef NVFP4_CORE_H
#define NVFP4_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "nvfp4/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup core Core: status, types, version, context
 *  @{ */

#ifndef NVFP4_API
#if defined(NVFP4_STATIC)
#define NVFP4_API
#elif defined(_WIN32)
#ifdef NVFP4_BUILDING
#define NVFP4_API __declspec(dllexport)
#else
#define NVFP4_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
/** Marks a declaration as part of the exported interface. */
#define NVFP4_API __attribute__((visibility("default")))
#else
#define NVFP4_API
#endif
#endif

/** Result of every fallible call: ::NVFP4_OK (0) or one of the NVFP4_ERR_* codes (> 0). */
typedef int32_t nvfp4_status;

/** @name Status codes
 *  Numbers are fixed once released; gaps are reserved.
 *  @{ */
#define NVFP4_OK 0                     /**< Success. */
#define NVFP4_ERR_NULL_POINTER 1       /**< A required pointer argument was NULL. */
#define NVFP4_ERR_INVALID_VALUE 2      /**< A parameter value is out of its documented range. */
#define NVFP4_ERR_UNKNOWN_KEY 3        /**< Unknown enum value: parameter key, method, dtype, format, layout or backend. */
#define NVFP4_ERR_SHAPE 4              /**< Zero, negative or overflowing sizes, or ld smaller than cols, or mismatched shapes. */
#define NVFP4_ERR_NONFINITE 5          /**< NaN or Inf in the input under the strict non-finite policy. */
#define NVFP4_ERR_INVALID_SCALE 6      /**< A scale byte that cannot be decoded (NaN or sign bit set) or a bad global scale. */
#define NVFP4_ERR_OUT_OF_MEMORY 7      /**< An allocation failed; nothing was written. */
#define NVFP4_ERR_UNSUPPORTED 8        /**< The backend or combination of options is not available in this build. */
#define NVFP4_ERR_CANCELLED 9          /**< A progress callback asked to stop; outputs are untouched. */
#define NVFP4_ERR_BACKEND 10           /**< The compute backend (e.g. the CUDA runtime) reported a failure. */
#define NVFP4_ERR_STATE 11             /**< The handle is not in a state that allows the call (e.g. no calibration data yet). */
#define NVFP4_ERR_NUMERICAL 12         /**< A numerical precondition failed (e.g. a matrix is not positive definite). */
/** @} */

/** @name Element types (::nvfp4_dtype values)
 *  @{ */
#define NVFP4_DTYPE_F32 0  /**< IEEE binary32. */
#define NVFP4_DTYPE_F16 1  /**< IEEE binary16, as uint16_t bit patterns. */
#define NVFP4_DTYPE_BF16 2 /**< bfloat16, as uint16_t bit patterns. */
/** @} */

/** @name Backends
 *  @{ */
#define NVFP4_BACKEND_CPU 0  /**< The portable CPU reference backend (always present). */
#define NVFP4_BACKEND_CUDA 1 /**< The CUDA backend (present when built with CUDA and a device is visible). */
#define NVFP4_BACKEND_AUTO 2 /**< CUDA when available, otherwise CPU. */
/** @} */

/**
 * @brief Names a status code.
 * @param[in] s Any value.
 * @return A static string such as "NVFP4_ERR_SHAPE"; "NVFP4_ERR_UNKNOWN_STATUS" for values that
 *         are not status codes. Never NULL.
 * @since 0.1
 */
NVFP4_API const char *nvfp4_status_string(nvfp4_status s);

/**
 * @brief The library version as "MAJOR.MINOR.PATCH".
 * @return A static string, never NULL.
 * @since 0.1
 */
NVFP4_API const char *nvfp4_version_string(void);

/**
 * @brief The library version as MAJOR*10000 + MINOR*100 + PATCH.
 * @return The run-time version number; compare with ::NVFP4_VERSION_NUMBER.
 * @since 0.1
 */
NVFP4_API uint32_t nvfp4_version_number(void);

/**
 * @brief Whether a backend can be used by this build on this machine.
 * @param[in] backend ::NVFP4_BACKEND_CPU or ::NVFP4_BACKEND_CUDA.
 * @return 1 if nvfp4_context_create() with this backend would succeed, 0 otherwise.
 * @since 0.1
 */
NVFP4_API int nvfp4_has_backend(int32_t backend);

/** Opaque execution context: backend, thread count, allocator, statistics, last error. */
typedef struct nvfp4_context nvfp4_context;

/**
 * @brief Allocator hooks for a context, a quantizer or a rounder (zstd's customMem, with a size
 *        field for growth); see nvfp4_context_create_ex(), nvfp4_quantizer_create_ex(),
 *        nvfp4_rounder_create_ex().
 *
 * Set @c size to sizeof(nvfp4_allocator). @c alloc returns memory aligned to at least @p align
 * (a power of two, at most 64) or NULL; @c free releases it (and accepts NULL).
 */
typedef struct nvfp4_allocator {
    size_t size;                                          /**< sizeof(nvfp4_allocator) as the caller knows it. */
    void *(*alloc)(void *opaque, size_t size, size_t align); /**< Allocate @p size bytes. */
    void (*free)(void *opaque, void *ptr);                /**< Release memory from @c alloc. */
    void *opaque;                                         /**< Passed back to both hooks. */
} nvfp4_allocator;

/**
 * @brief Creates a context.
 * @param[out] out     Receives the new context; left untouched on error.
 * @param[in]  backend ::NVFP4_BACKEND_CPU, ::NVFP4_BACKEND_CUDA or ::NVFP4_BACKEND_AUTO.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p backend is not a backend.
 * @retval NVFP4_ERR_UNSUPPORTED if the CUDA backend is asked for but unavailable.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the context cannot be allocated.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_create(nvfp4_context **out, int32_t backend);

/**
 * @brief Creates a context whose every allocation goes through @p allocator.
 * @param[out] out       Receives the new context; left untouched on error.
 * @param[in]  backend   As for nvfp4_context_create().
 * @param[in]  allocator Hooks to copy into the context, or NULL for malloc/free.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p out is NULL.
 * @retval NVFP4_ERR_INVALID_VALUE if @p allocator has a bad size field or NULL hooks.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p backend is not a backend.
 * @retval NVFP4_ERR_UNSUPPORTED if the CUDA backend is asked for but unavailable.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the context cannot be allocated.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_create_ex(nvfp4_context **out, int32_t backend,
                                               const nvfp4_allocator *allocator);

/**
 * @brief Destroys a context. NULL is accepted and ignored.
 * @param[in] ctx The context.
 * @since 0.1
 */
NVFP4_API void nvfp4_context_destroy(nvfp4_context *ctx);

/** @name Context parameters (keys for nvfp4_context_set_int())
 *  @{ */
#define NVFP4_CTX_THREADS 100       /**< Worker threads for CPU work: 1 (default) to 1024, or 0 for one per online CPU. */
#define NVFP4_CTX_COLLECT_STATS 101 /**< 1: record ::nvfp4_stats for each call; 0 (default): do not. */
#define NVFP4_CTX_BACKEND 102       /**< Read-only: the backend actually in use (::NVFP4_BACKEND_CPU or ::NVFP4_BACKEND_CUDA). */
#define NVFP4_CTX_CUDA_DEVICE 103   /**< CUDA device ordinal (default 0); CUDA backend only. */
/** @} */

/**
 * @brief Sets an integer context parameter.
 * @param[in] ctx   The context.
 * @param[in] key   One of the NVFP4_CTX_* keys.
 * @param[in] value The new value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p ctx is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is unknown or read-only.
 * @retval NVFP4_ERR_INVALID_VALUE if @p value is out of range; nothing changes.
 * @retval NVFP4_ERR_UNSUPPORTED if @p key is ::NVFP4_CTX_CUDA_DEVICE and the context does not use
 *         the CUDA backend; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_set_int(nvfp4_context *ctx, int32_t key, int64_t value);

/**
 * @brief Reads an integer context parameter.
 * @param[in]  ctx   The context.
 * @param[in]  key   One of the NVFP4_CTX_* keys.
 * @param[out] value Receives the value.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p ctx or @p value is NULL.
 * @retval NVFP4_ERR_UNKNOWN_KEY if @p key is unknown.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_get_int(const nvfp4_context *ctx, int32_t key, int64_t *value);

/**
 * @brief Sets the CUDA stream on which a CUDA context does its work.
 *
 * On a context that uses ::NVFP4_BACKEND_CUDA, nvfp4_quantize(), nvfp4_dequantize() and
 * nvfp4_dequantize_v2() take device pointers (source, codes, scales, destination and the
 * @c global_scale out-pointer of nvfp4_quantize()) and enqueue their kernels on this stream. Each
 * call waits for the work it enqueued to complete before it returns, so its status is final and
 * its outputs are ready; work the caller enqueued earlier on the same stream runs first. The
 * default is NULL, CUDA's legacy default stream. The stream is not checked here and must stay
 * valid (not destroyed) while the context uses it. A call on a stream where CUDA refuses the work,
 * for example one that is capturing a CUDA graph (these calls synchronise, which capture does not
 * allow), returns ::NVFP4_ERR_BACKEND and writes nothing. The context never destroys the stream.
 * @param[in,out] ctx    The context.
 * @param[in]     stream A @c cudaStream_t cast to @c void*, or NULL for the default stream.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p ctx is NULL.
 * @retval NVFP4_ERR_UNSUPPORTED if @p ctx does not use the CUDA backend (always the case in a
 *         build without CUDA); nothing changes.
 * @retval NVFP4_ERR_OUT_OF_MEMORY if the backend state cannot be allocated; nothing changes.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_set_cuda_stream(nvfp4_context *ctx, void *stream);

/**
 * @brief Reads the CUDA stream of a CUDA context.
 * @param[in]  ctx    The context.
 * @param[out] stream Receives the stream set by nvfp4_context_set_cuda_stream() (NULL by default).
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if @p ctx or @p stream is NULL.
 * @retval NVFP4_ERR_UNSUPPORTED if @p ctx does not use the CUDA backend; @p stream is untouched.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_get_cuda_stream(const nvfp4_context *ctx, void **stream);

/**
 * @brief Detail about the last error a call on this context returned.
 * @param[in] ctx The context (NULL gives a fixed string).
 * @return A string owned by the context, valid until its next call; "" after a success.
 * @since 0.1
 */
NVFP4_API const char *nvfp4_context_last_error_message(const nvfp4_context *ctx);

/**
 * @brief Statistics of the last quantisation on a context (when ::NVFP4_CTX_COLLECT_STATS is 1).
 *
 * Set @c size to sizeof(nvfp4_stats) before calling nvfp4_context_get_stats(); later versions
 * only append fields, and the library fills no more than @c size bytes.
 */
typedef struct nvfp4_stats {
    size_t size;               /**< sizeof(nvfp4_stats) as the caller knows it. */
    double sse;                /**< Σ h·(x̂ − x)² over all finite elements (h the importance weight if set, else 1), in float64, x̂ the float32 dequantised value; elements of weight 0 are left out. +Inf when an element of positive weight decodes to ±Inf (MXFP4 with RCEIL for |x| ≥ 1.75·2^127, see docs/FORMAT.md); never NaN. */
    double sum_sq;             /**< Σ x² over the same elements (weighted likewise): sse/sum_sq is the relative error. */
    int64_t blocks;            /**< Number of scale blocks. */
    int64_t blocks_chose_4;    /**< Blocks where Four Over Six chose the ×1.5 ("map to 4") scale. */
    int64_t blocks_chose_6;    /**< Blocks where Four Over Six kept the "map to 6" scale. */
    int64_t blocks_underflow;  /**< Blocks with a nonzero amax whose scale rounded to zero. */
    int64_t nonfinite;         /**< Non-finite inputs met (saturate policy). */
    int32_t cjso_iterations;   /**< CJSO iterations run (0 for other methods). */
    int32_t reserved0;         /**< Reserved, 0. */
    double cjso_initial_sse;   /**< CJSO: the starting (MAX) SSE, weighted like @c sse. */
    double cjso_final_sse;     /**< CJSO: the best SSE found, weighted like @c sse (never above the initial). */
} nvfp4_stats;

/**
 * @brief Copies the statistics of the last successful quantisation on @p ctx.
 * @param[in]     ctx The context.
 * @param[in,out] out Caller's struct with @c size set; filled up to that size.
 * @retval NVFP4_OK on success.
 * @retval NVFP4_ERR_NULL_POINTER if an argument is NULL.
 * @retval NVFP4_ERR_INVALID_VALUE if @c out->size is smaller than the @c size field itself.
 * @retval NVFP4_ERR_STATE if statistics collection is off or no quantisation has run.
 * @since 0.1
 */
NVFP4_API nvfp4_status nvfp4_context_get_stats(const nvfp4_context *ctx, nvfp4_stats *out);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* NVFP4_CORE_H */
