/* internal.h - shared internal declarations of libnvfp4 (never installed).
 *
 * Internal symbols use the nvfp4i_ prefix so that no version-script pattern can export them.
 * Layering: the public functions (quantize.c, formats.c, context.c, ...) validate arguments once
 * and then call a backend through the dispatch table (dispatch.h). The CPU backend's scale
 * methods plug in as nvfp4i_method entries (one file per method).
 */
#ifndef NVFP4I_INTERNAL_H
#define NVFP4I_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nvfp4/nvfp4.h"
#include "rounding.h"

#define NVFP4I_BLOCK_NVFP4 16
#define NVFP4I_BLOCK_MXFP4 32
#define NVFP4I_MAX_THREADS 1024

/* Builds a loop both for the baseline ISA and AVX2, picked at load time (GCC/clang ifunc). Not
 * under ThreadSanitizer: the instrumented ifunc resolver runs during relocation, before the TSan
 * runtime is up, and crashes the process. */
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 8 && \
    !defined(__SANITIZE_THREAD__)
#define NVFP4I_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NVFP4I_CLONES
#endif

/* ---- context --------------------------------------------------------------------------- */

struct nvfp4_context {
    int32_t backend;          /* NVFP4_BACKEND_CPU or NVFP4_BACKEND_CUDA (resolved) */
    int32_t threads;          /* ≥ 1 (0 is resolved at set time) */
    int32_t collect_stats;    /* 0/1 */
    int32_t cuda_device;
    nvfp4_allocator alloc;    /* always valid hooks */
    int stats_valid;
    nvfp4_stats stats;
    char errmsg[256];
    void *backend_state;      /* CUDA backend: device buffers, stream; NULL on CPU */
};

/* Allocation through the context's hooks (aligned to 64 bytes). size 0 returns NULL. */
void *nvfp4i_alloc(nvfp4_context *ctx, size_t size);
void *nvfp4i_calloc(nvfp4_context *ctx, size_t n, size_t elem); /* zeroed; overflow → NULL */
void nvfp4i_free(nvfp4_context *ctx, void *p);

/* Checks public allocator hooks as nvfp4_context_create_ex() and the handles' _ex constructors
 * do and copies them to *out (size set to sizeof *out): NVFP4_ERR_INVALID_VALUE for a size field
 * smaller than sizeof(nvfp4_allocator) or a NULL hook, nothing written. NULL gives "plain"
 * hooks (both NULL), which each user maps to its default. */
nvfp4_status nvfp4i_allocator_copy(const nvfp4_allocator *in, nvfp4_allocator *out);

/* Allocation for handles that take no context (quantizers, rounders): through h's hooks
 * (aligned to 64 bytes) when h->alloc is set, else plain malloc/calloc/free, so that the plain
 * constructors keep calling malloc. nvfp4i_hcalloc is zeroed and gives NULL on overflow. */
void *nvfp4i_halloc(const nvfp4_allocator *h, size_t size);
void *nvfp4i_hcalloc(const nvfp4_allocator *h, size_t n, size_t elem);
void nvfp4i_hfree(const nvfp4_allocator *h, void *p);
/* h itself when it has hooks, NULL for plain ones: what to pass on to an _ex constructor. */
const nvfp4_allocator *nvfp4i_hooks_or_null(const nvfp4_allocator *h);

/* Records a detail message for nvfp4_context_last_error_message() and returns status. */
nvfp4_status nvfp4i_fail(nvfp4_context *ctx, nvfp4_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void nvfp4i_clear_error(nvfp4_context *ctx);

/* ---- threads --------------------------------------------------------------------------- */

/* Calls fn(arg, begin, end, tid) over [0, n) split into ctx->threads contiguous chunks (fewer
 * if n is small), chunk t handled by thread t; returns when all are done. tid < nvfp4i_nthreads.
 * Falls back to running serially if threads cannot be started (results are identical: each
 * chunk is a pure function of its range). */
typedef void (*nvfp4i_range_fn)(void *arg, int64_t begin, int64_t end, int tid);
void nvfp4i_parallel_for(const nvfp4_context *ctx, int64_t n, nvfp4i_range_fn fn, void *arg);
/* The number of chunks nvfp4i_parallel_for(ctx, n, ...) will use (≥ 1). */
int nvfp4i_nthreads(const nvfp4_context *ctx, int64_t n);

/* ---- quantizer --------------------------------------------------------------------------- */

struct nvfp4_quantizer {
    int32_t method;
    int32_t format;        /* NVFP4_FORMAT_* */
    int32_t layout;        /* NVFP4_LAYOUT_* */
    int32_t nonfinite;     /* NVFP4_NONFINITE_* */
    int32_t recipe;        /* NVFP4_RECIPE_* */
    int32_t e8m0_mode;     /* NVFP4_E8M0_* */
    double global_scale;   /* 0 = compute */
    int32_t rule;          /* NVFP4_RULE_* */
    int32_t e4m3_max_4o6;  /* 256 or 448 */
    int32_t cjso_iters;
    double cjso_tol; /* NVFP4_Q_CJSO_TOLERANCE */
    double dss_lo, dss_hi;
    int32_t sweep_radius;
    float *importance;     /* copy from nvfp4i_halloc(&hooks) or NULL */
    int64_t importance_n;
    nvfp4_allocator hooks; /* from nvfp4_quantizer_create_ex(); alloc NULL = malloc/free */
};

/* ---- source rows ------------------------------------------------------------------------- */

typedef struct nvfp4i_src {
    int32_t dtype;
    const void *data;
    int64_t rows, cols, ld;
} nvfp4i_src;

/* Loads row r as floats into dst[0..padded) with zeros past cols. */
void nvfp4i_load_row(const nvfp4i_src *s, int64_t r, float *dst, int64_t padded);

/* Row r as floats [0..padded): in place for f32 rows that need no padding, else loaded into buf. */
static inline const float *nvfp4i_row(const nvfp4i_src *s, int64_t r, float *buf, int64_t padded)
{
    if (s->dtype == NVFP4_DTYPE_F32 && s->cols == padded)
        return (const float *)s->data + r * s->ld;
    nvfp4i_load_row(s, r, buf, padded);
    return buf;
}

/* ---- a quantisation job (what a method sees) --------------------------------------------- */

typedef struct nvfp4i_stats_acc {
    double sse, sum_sq;
    int64_t blocks, chose4, chose6, underflow, nonfinite;
    int32_t cjso_iterations;
    double cjso_initial_sse, cjso_final_sse;
} nvfp4i_stats_acc;

typedef struct nvfp4i_job {
    nvfp4_context *ctx;
    const nvfp4_quantizer *q;
    nvfp4i_src src;
    int64_t nblk;          /* blocks per row */
    int64_t padded;        /* nblk · block */
    int block;             /* 16 or 32 */
    float amax;            /* tensor amax over finite values */
    float emax;            /* the E4M3 ceiling M used for the global scale (448, or 4/6's) */
    float s_enc, s_dec;    /* global scales (SPEC §3) */
    const float *h;        /* importance weights, zero-padded to `padded` entries, or NULL */
    int want_stats;
    int64_t nonfinite;     /* NaN/Inf values in the source (always 0 under the strict policy; 0 and
                              amax 0 also when the backend skipped pass 1: MAX with a given scale) */
    /* outputs: codes packed [rows, nblk·block/2]; scales LINEAR [rows, nblk] */
    uint8_t *codes;
    uint8_t *scales;
} nvfp4i_job;

/* A per-block quantiser: x[block] (zeros past cols), h[block] or NULL, the block's finite amax.
 * Writes `block` unpacked codes (one per byte) and returns the stored scale byte. Adds the
 * block's counters (chose4/6, underflow) to st; SSE is added by the row driver. */
typedef uint8_t (*nvfp4i_block_fn)(const nvfp4i_job *job, const float *x, const float *h, float amax,
                                   uint8_t *codes, nvfp4i_stats_acc *st);

/* A method: either block-wise (block_fn, run row-parallel by the shared driver) or whole-tensor
 * (tensor_fn, which owns all passes, e.g. CJSO). global_emax gives M for the global scale. */
/* A whole-row fast path (optional): quantises row r of the job from its loaded floats x[padded]
 * into codes_row and scales_row, adding counters (and SSE when job->want_stats) to st. */
typedef void (*nvfp4i_row_fn)(const nvfp4i_job *job, const float *x, uint8_t *codes_row, uint8_t *scales_row,
                              nvfp4i_stats_acc *st);

/* A method is block-wise (block_fn, optionally with a row_fn fast path, run row-parallel by the
 * shared driver) or whole-tensor (tensor_fn owns all passes, e.g. CJSO). A tensor_fn must make
 * every allocation before it writes any output, so that an error leaves the outputs untouched.
 * global_emax gives the E4M3 ceiling M used for the global scale. */
typedef struct nvfp4i_method {
    const char *name;
    float (*global_emax)(const nvfp4_quantizer *q);
    nvfp4i_block_fn block_fn;                                               /* or NULL */
    nvfp4i_row_fn row_fn;                                                   /* or NULL */
    /* or NULL; may move job->s_dec (CJSO optimises the global scale; quantize.c returns it) */
    nvfp4_status (*tensor_fn)(nvfp4i_job *job, nvfp4i_stats_acc *st);
} nvfp4i_method;

/* Method table entries (one file each). */
extern const nvfp4i_method nvfp4i_method_max;
extern const nvfp4i_method nvfp4i_method_4over6;
extern const nvfp4i_method nvfp4i_method_soar;
extern const nvfp4i_method nvfp4i_method_soar_cjso;
extern const nvfp4i_method nvfp4i_method_soar_dss;
extern const nvfp4i_method nvfp4i_method_sweep;
const nvfp4i_method *nvfp4i_method_get(int32_t method);

/* ---- shared CPU building blocks ---------------------------------------------------------- */

/* MAX's block scale byte nvfp4i_max_scale()/nvfp4i_max_pre() are in rounding.h (shared with CUDA). */

/* Encodes a block with a given stored scale byte (exact recipe). Returns 1 if the block
 * underflowed (amax > 0, f(S) == 0). */
int nvfp4i_encode_block(const float *x, int n, float amax, uint8_t scale, float s_dec, uint8_t *codes);

/* Σ w·(x̂ − x)² of a block (float64, element order) decoding `codes` with the decoded scale
 * value f(S) and s_dec; h may be NULL (weights 1). Non-finite x are skipped. Also adds Σ w·x²
 * to *sum_sq when sum_sq is not NULL. */
double nvfp4i_block_sse(const float *x, const float *h, int n, const uint8_t *codes, float scale_value,
                        float s_dec, double *sum_sq);

/* Packs n (even) unpacked codes into n/2 bytes. */
void nvfp4i_pack(const uint8_t *codes, int64_t n, uint8_t *packed);

/* The driver for block-wise methods: quantises the whole job row-parallel with block_fn
 * (adds SSE/sum_sq and block counts to st when job->want_stats). Allocates its per-thread
 * scratch before writing anything; NVFP4_ERR_OUT_OF_MEMORY leaves the outputs untouched. */
nvfp4_status nvfp4i_run_blockwise(const nvfp4i_job *job, nvfp4i_block_fn fn, nvfp4i_stats_acc *st);
/* The same driver over a method's whole-row fast path. */
nvfp4_status nvfp4i_run_rows(const nvfp4i_job *job, nvfp4i_row_fn fn, nvfp4i_stats_acc *st);
/* Decoded value of a stored scale byte in the job's format (E4M3 or E8M0). */
static inline float nvfp4i_scale_value(const nvfp4i_job *job, uint8_t b)
{
    return job->block == NVFP4I_BLOCK_MXFP4 ? nvfp4i_e8m0_to_float(b) : nvfp4i_e4m3_to_float(b);
}
/* Block amax over finite values (bit-pattern max, vectorisable). */
static inline float nvfp4i_block_amax(const float *x, int n)
{
    uint32_t m = 0;
    for (int i = 0; i < n; i++) {
        uint32_t a = nvfp4i_f2u(x[i]) & 0x7FFFFFFFu;
        a &= (uint32_t)-(int32_t)(a < 0x7F800000u); /* finite only, as a mask so it vectorises */
        m = a > m ? a : m;
    }
    return nvfp4i_u2f(m);
}
/* AVX2 fast path of MAX (max_avx2.c): nblk a multiple of 8, exact recipe. Returns the number of
 * blocks done (a multiple of 8), stopping before the first group of 8 blocks that holds NaN/Inf;
 * adds underflowed blocks to *underflow. Call only when nvfp4i_have_avx2() is 1. */
int nvfp4i_have_avx2(void);
int64_t nvfp4i_max_row_avx2(const float *x, int64_t nblk, float pre, float s_dec, uint8_t *codes, uint8_t *scales,
                            int64_t *underflow);
/* Adds the SSE, Σx² and block count of blocks [k0, k1) of a finished row (packed codes and
 * stored scale bytes) to st: the statistics of methods that write rows directly. */
void nvfp4i_row_stats(const nvfp4i_job *job, const float *x, const uint8_t *codes_row, const uint8_t *scales_row,
                      int64_t k0, int64_t k1, nvfp4i_stats_acc *st);
/* Adds a's counters and sums into *into (thread partials are combined in thread order). */
void nvfp4i_stats_add(nvfp4i_stats_acc *into, const nvfp4i_stats_acc *a);

/* Tensor amax over finite values and count of non-finite values, row-parallel. */
nvfp4_status nvfp4i_tensor_amax(nvfp4_context *ctx, const nvfp4i_src *src, float *amax, int64_t *nonfinite);

/* The 128×4 offset nvfp4i_offset_128x4() is in rounding.h (shared with CUDA). */
void nvfp4i_swizzle(const uint8_t *linear, int64_t rows, int64_t scale_cols, uint8_t *swizzled);
void nvfp4i_unswizzle(const uint8_t *swizzled, int64_t rows, int64_t scale_cols, uint8_t *linear);

/* Checked arithmetic for sizes: returns 0 on overflow. */
static inline int nvfp4i_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return 0;
    if (a != 0 && b > INT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static inline size_t nvfp4i_dtype_size(int32_t dtype) { return dtype == NVFP4_DTYPE_F32 ? 4u : 2u; }
static inline int nvfp4i_dtype_ok(int32_t dtype)
{
    return dtype == NVFP4_DTYPE_F32 || dtype == NVFP4_DTYPE_F16 || dtype == NVFP4_DTYPE_BF16;
}

#endif /* NVFP4I_INTERNAL_H */
