/* context.c - contexts: backend choice, threads, allocator hooks, statistics, error detail. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "internal.h"

static void *default_alloc(void *opaque, size_t size, size_t align)
{
    void *p = NULL;
    (void)opaque;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    return p;
}

static void default_free(void *opaque, void *p)
{
    (void)opaque;
    free(p);
}

void *nvfp4i_alloc(nvfp4_context *ctx, size_t size)
{
    if (size == 0)
        return NULL;
    return ctx->alloc.alloc(ctx->alloc.opaque, size, 64);
}

void *nvfp4i_calloc(nvfp4_context *ctx, size_t n, size_t elem)
{
    if (n == 0 || elem == 0 || n > SIZE_MAX / elem)
        return NULL;
    void *p = nvfp4i_alloc(ctx, n * elem);
    if (p)
        memset(p, 0, n * elem);
    return p;
}

void nvfp4i_free(nvfp4_context *ctx, void *p)
{
    if (p)
        ctx->alloc.free(ctx->alloc.opaque, p);
}

nvfp4_status nvfp4i_allocator_copy(const nvfp4_allocator *in, nvfp4_allocator *out)
{
    nvfp4_allocator a;
    memset(&a, 0, sizeof a);
    if (in) {
        if (in->size < sizeof(nvfp4_allocator) || !in->alloc || !in->free)
            return NVFP4_ERR_INVALID_VALUE;
        a.alloc = in->alloc;
        a.free = in->free;
        a.opaque = in->opaque;
    }
    a.size = sizeof a;
    *out = a;
    return NVFP4_OK;
}

void *nvfp4i_halloc(const nvfp4_allocator *h, size_t size)
{
    if (!h->alloc)
        return malloc(size);
    return h->alloc(h->opaque, size ? size : 1, 64);
}

void *nvfp4i_hcalloc(const nvfp4_allocator *h, size_t n, size_t elem)
{
    if (!h->alloc)
        return calloc(n, elem);
    if (elem != 0 && n > SIZE_MAX / elem)
        return NULL;
    void *p = nvfp4i_halloc(h, n * elem);
    if (p)
        memset(p, 0, n * elem);
    return p;
}

void nvfp4i_hfree(const nvfp4_allocator *h, void *p)
{
    if (!h->alloc)
        free(p);
    else if (p)
        h->free(h->opaque, p);
}

const nvfp4_allocator *nvfp4i_hooks_or_null(const nvfp4_allocator *h)
{
    return h->alloc ? h : NULL;
}

nvfp4_status nvfp4i_fail(nvfp4_context *ctx, nvfp4_status status, const char *fmt, ...)
{
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void nvfp4i_clear_error(nvfp4_context *ctx)
{
    if (ctx)
        ctx->errmsg[0] = '\0';
}

int nvfp4_has_backend(int32_t backend)
{
    if (backend == NVFP4_BACKEND_CPU)
        return 1;
    if (backend == NVFP4_BACKEND_CUDA)
        return nvfp4i_cuda_available();
    return 0;
}

nvfp4_status nvfp4_context_create_ex(nvfp4_context **out, int32_t backend, const nvfp4_allocator *allocator)
{
    nvfp4_allocator a;
    if (!out)
        return NVFP4_ERR_NULL_POINTER;
    if (backend != NVFP4_BACKEND_CPU && backend != NVFP4_BACKEND_CUDA && backend != NVFP4_BACKEND_AUTO)
        return NVFP4_ERR_UNKNOWN_KEY;
    if (nvfp4i_allocator_copy(allocator, &a) != NVFP4_OK)
        return NVFP4_ERR_INVALID_VALUE;
    if (!a.alloc) {
        a.alloc = default_alloc;
        a.free = default_free;
        a.opaque = NULL;
    }
    int32_t resolved = backend;
    if (backend == NVFP4_BACKEND_AUTO)
        resolved = nvfp4i_cuda_available() ? NVFP4_BACKEND_CUDA : NVFP4_BACKEND_CPU;
    else if (backend == NVFP4_BACKEND_CUDA && !nvfp4i_cuda_available())
        return NVFP4_ERR_UNSUPPORTED;
    nvfp4_context *ctx = a.alloc(a.opaque, sizeof *ctx, 64);
    if (!ctx)
        return NVFP4_ERR_OUT_OF_MEMORY;
    memset(ctx, 0, sizeof *ctx);
    ctx->backend = resolved;
    ctx->threads = 1;
    ctx->alloc = a;
    ctx->stats.size = sizeof ctx->stats;
    *out = ctx;
    return NVFP4_OK;
}

nvfp4_status nvfp4_context_create(nvfp4_context **out, int32_t backend)
{
    return nvfp4_context_create_ex(out, backend, NULL);
}

void nvfp4_context_destroy(nvfp4_context *ctx)
{
    if (!ctx)
        return;
    nvfp4i_backend_release(ctx);
    nvfp4_allocator a = ctx->alloc;
    a.free(a.opaque, ctx);
}

static int32_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > NVFP4I_MAX_THREADS ? NVFP4I_MAX_THREADS : (int32_t)n;
}

nvfp4_status nvfp4_context_set_int(nvfp4_context *ctx, int32_t key, int64_t value)
{
    if (!ctx)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_CTX_THREADS:
        if (value < 0 || value > NVFP4I_MAX_THREADS)
            return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_VALUE, "threads must be 0..%d", NVFP4I_MAX_THREADS);
        ctx->threads = value == 0 ? online_cpus() : (int32_t)value;
        break;
    case NVFP4_CTX_COLLECT_STATS:
        if (value != 0 && value != 1)
            return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_VALUE, "collect_stats must be 0 or 1");
        ctx->collect_stats = (int32_t)value;
        break;
    case NVFP4_CTX_CUDA_DEVICE:
        if (value < 0 || value > 1023)
            return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_VALUE, "cuda device must be 0..1023");
        if (ctx->backend != NVFP4_BACKEND_CUDA)
            return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED, "the context does not use the CUDA backend");
        ctx->cuda_device = (int32_t)value;
        break;
    default:
        return nvfp4i_fail(ctx, NVFP4_ERR_UNKNOWN_KEY, "unknown or read-only context key %d", (int)key);
    }
    nvfp4i_clear_error(ctx);
    return NVFP4_OK;
}

nvfp4_status nvfp4_context_get_int(const nvfp4_context *ctx, int32_t key, int64_t *value)
{
    if (!ctx || !value)
        return NVFP4_ERR_NULL_POINTER;
    switch (key) {
    case NVFP4_CTX_THREADS: *value = ctx->threads; return NVFP4_OK;
    case NVFP4_CTX_COLLECT_STATS: *value = ctx->collect_stats; return NVFP4_OK;
    case NVFP4_CTX_BACKEND: *value = ctx->backend; return NVFP4_OK;
    case NVFP4_CTX_CUDA_DEVICE: *value = ctx->cuda_device; return NVFP4_OK;
    default: return NVFP4_ERR_UNKNOWN_KEY;
    }
}

const char *nvfp4_context_last_error_message(const nvfp4_context *ctx)
{
    if (!ctx)
        return "no context";
    return ctx->errmsg;
}

nvfp4_status nvfp4_context_get_stats(const nvfp4_context *ctx, nvfp4_stats *out)
{
    if (!ctx || !out)
        return NVFP4_ERR_NULL_POINTER;
    if (out->size < sizeof(size_t))
        return NVFP4_ERR_INVALID_VALUE;
    if (!ctx->collect_stats || !ctx->stats_valid)
        return NVFP4_ERR_STATE;
    size_t n = out->size < sizeof ctx->stats ? out->size : sizeof ctx->stats;
    size_t keep = out->size;
    memcpy(out, &ctx->stats, n);
    out->size = keep;
    return NVFP4_OK;
}
