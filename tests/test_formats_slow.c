/* test_formats_slow.c - every float32 bit pattern (all 2^32) through nvfp4_e2m1_from_float,
 * nvfp4_e4m3_from_float, their f32 array forms, nvfp4_float_to_f16 / nvfp4_float_to_bf16 and
 * nvfp4_e8m0_from_amax (both modes),
 * against the independent double-based formulation in ref_rounding.h. Suite 'slow'.
 *
 * The range is split across threads (NVFP4_SLOW_THREADS, default 2). Walking the patterns in
 * order keeps the oracle's branches predictable, which is most of its speed. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvfp4/nvfp4.h"
#include "ref_rounding.h"

#define CHUNK 65536u

typedef struct {
    uint64_t begin, end;      /* bit patterns [begin, end) */
    uint64_t bad_e2m1, bad_e4m3, bad_f16, bad_bf16, bad_array, bad_e8m0;
    uint32_t first_bad;       /* first failing pattern */
    int status;               /* first non-OK array status */
} slice;

static void note_bad(slice *s, uint32_t u, uint64_t *counter)
{
    if (s->bad_e2m1 + s->bad_e4m3 + s->bad_f16 + s->bad_bf16 + s->bad_array + s->bad_e8m0 == 0)
        s->first_bad = u;
    (*counter)++;
}

static void *run_slice(void *arg)
{
    slice *s = arg;
    float *x = malloc(CHUNK * sizeof *x);
    uint8_t *c2 = malloc(CHUNK), *c4 = malloc(CHUNK);
    if (!x || !c2 || !c4) {
        s->status = -1;
        free(x);
        free(c2);
        free(c4);
        return NULL;
    }
    for (uint64_t base = s->begin; base < s->end; base += CHUNK) {
        uint32_t n = (uint32_t)((s->end - base) < CHUNK ? (s->end - base) : CHUNK);
        for (uint32_t i = 0; i < n; i++)
            x[i] = ref_u2f((uint32_t)(base + i));
        nvfp4_status st2 = nvfp4_e2m1_from_array(NVFP4_DTYPE_F32, x, n, c2);
        nvfp4_status st4 = nvfp4_e4m3_from_array(NVFP4_DTYPE_F32, x, n, c4);
        if ((st2 != NVFP4_OK || st4 != NVFP4_OK) && s->status == 0)
            s->status = st2 != NVFP4_OK ? st2 : st4;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)(base + i);
            double v = (double)x[i];
            uint8_t w2 = ref_e2m1(v), w4 = ref_e4m3(v);
            if (nvfp4_e2m1_from_float(x[i]) != w2)
                note_bad(s, u, &s->bad_e2m1);
            if (nvfp4_e4m3_from_float(x[i]) != w4)
                note_bad(s, u, &s->bad_e4m3);
            if (c2[i] != w2 || c4[i] != w4)
                note_bad(s, u, &s->bad_array);
            /* E8M0 exponent choice: every finite amax ≥ 0; everything else is refused */
            uint8_t e_r = 0xEE, e_f = 0xEE;
            nvfp4_status sr = nvfp4_e8m0_from_amax(x[i], NVFP4_E8M0_RCEIL, &e_r);
            nvfp4_status sf = nvfp4_e8m0_from_amax(x[i], NVFP4_E8M0_FLOOR, &e_f);
            if (u < 0x7F800000u || u == 0x80000000u) {
                if (sr != NVFP4_OK || sf != NVFP4_OK || e_r != ref_e8m0_from_amax(x[i], 0) ||
                    e_f != ref_e8m0_from_amax(x[i], 1))
                    note_bad(s, u, &s->bad_e8m0);
            } else if (sr != NVFP4_ERR_INVALID_VALUE || sf != NVFP4_ERR_INVALID_VALUE || e_r != 0xEE ||
                       e_f != 0xEE) {
                note_bad(s, u, &s->bad_e8m0);
            }
            uint16_t h = nvfp4_float_to_f16(x[i]), b = nvfp4_float_to_bf16(x[i]);
            if (isnan(v)) {
                if (!ref_f16_isnan(h))
                    note_bad(s, u, &s->bad_f16);
                if (!ref_bf16_isnan(b))
                    note_bad(s, u, &s->bad_bf16);
            } else {
                if (h != ref_f16_from_double(v))
                    note_bad(s, u, &s->bad_f16);
                if (b != ref_bf16_from_double(v))
                    note_bad(s, u, &s->bad_bf16);
            }
        }
    }
    free(x);
    free(c2);
    free(c4);
    return NULL;
}

static void test_every_float32(void **state)
{
    (void)state;
    int nt = 2;
    const char *env = getenv("NVFP4_SLOW_THREADS");
    if (env && atoi(env) >= 1 && atoi(env) <= 64)
        nt = atoi(env);
    /* NVFP4_SLOW_LIMIT (a count of patterns) shortens the sweep for a quick local check. */
    uint64_t total = 1ull << 32;
    const char *lim = getenv("NVFP4_SLOW_LIMIT");
    if (lim && strtoull(lim, NULL, 0) > 0 && strtoull(lim, NULL, 0) < total)
        total = strtoull(lim, NULL, 0);
    slice sl[64];
    pthread_t th[64];
    memset(sl, 0, sizeof sl);
    ref_init();
    /* contiguous slices: thread 0 the positive patterns, thread 1 the negative ones (2 threads) */
    uint64_t per = (total / (uint64_t)nt + CHUNK - 1) / CHUNK * CHUNK;
    for (int t = 0; t < nt; t++) {
        sl[t].begin = per * (uint64_t)t;
        sl[t].end = t == nt - 1 ? total : per * (uint64_t)(t + 1);
        if (sl[t].begin > total)
            sl[t].begin = total;
        if (sl[t].end > total)
            sl[t].end = total;
        assert_int_equal(pthread_create(&th[t], NULL, run_slice, &sl[t]), 0);
    }
    uint64_t bad = 0;
    for (int t = 0; t < nt; t++) {
        pthread_join(th[t], NULL);
        uint64_t b = sl[t].bad_e2m1 + sl[t].bad_e4m3 + sl[t].bad_f16 + sl[t].bad_bf16 + sl[t].bad_array +
                     sl[t].bad_e8m0;
        if (b || sl[t].status)
            fprintf(stderr,
                    "slice %d: e2m1 %llu, e4m3 %llu, f16 %llu, bf16 %llu, array %llu, e8m0 %llu mismatches; "
                    "first 0x%08X (%a); status %d\n",
                    t, (unsigned long long)sl[t].bad_e2m1, (unsigned long long)sl[t].bad_e4m3,
                    (unsigned long long)sl[t].bad_f16, (unsigned long long)sl[t].bad_bf16,
                    (unsigned long long)sl[t].bad_array, (unsigned long long)sl[t].bad_e8m0, sl[t].first_bad,
                    (double)ref_u2f(sl[t].first_bad), sl[t].status);
        bad += b;
        assert_int_equal(sl[t].status, 0);
    }
    printf("checked %llu float32 patterns\n", (unsigned long long)total);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_float32),
    };
    return cmocka_run_group_tests_name("formats_slow", tests, NULL, NULL);
}
