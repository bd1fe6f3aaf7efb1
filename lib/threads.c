/* threads.c - a fork-join parallel for over contiguous ranges (pthreads). */
#include <pthread.h>

#include "internal.h"

typedef struct {
    nvfp4i_range_fn fn;
    void *arg;
    int64_t begin, end;
    int tid;
} chunk;

static void *run_chunk(void *p)
{
    chunk *c = p;
    c->fn(c->arg, c->begin, c->end, c->tid);
    return NULL;
}

/* Start of chunk i of n items split into t near-equal parts (no overflow for any n). */
static int64_t chunk_start(int64_t n, int t, int i)
{
    int64_t q = n / t, r = n % t;
    return q * i + (i < r ? i : r);
}

int nvfp4i_nthreads(const nvfp4_context *ctx, int64_t n)
{
    int64_t t = ctx ? ctx->threads : 1;
    if (t < 1)
        t = 1;
    if (t > n)
        t = n > 0 ? n : 1;
    return (int)t;
}

void nvfp4i_parallel_for(const nvfp4_context *ctx, int64_t n, nvfp4i_range_fn fn, void *arg)
{
    int t = nvfp4i_nthreads(ctx, n);
    if (n <= 0)
        return;
    if (t == 1) {
        fn(arg, 0, n, 0);
        return;
    }
    chunk c[NVFP4I_MAX_THREADS];
    pthread_t th[NVFP4I_MAX_THREADS];
    int started[NVFP4I_MAX_THREADS];
    for (int i = 0; i < t; i++) {
        c[i].fn = fn;
        c[i].arg = arg;
        c[i].begin = chunk_start(n, t, i);
        c[i].end = chunk_start(n, t, i + 1);
        c[i].tid = i;
    }
    /* chunk 0 runs on the calling thread; a chunk whose thread cannot start runs here too */
    for (int i = 1; i < t; i++)
        started[i] = pthread_create(&th[i], NULL, run_chunk, &c[i]) == 0;
    run_chunk(&c[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_chunk(&c[i]);
    }
}
