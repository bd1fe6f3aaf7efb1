/* fuzz_common.h - shared helpers of the libFuzzer harnesses (tests/fuzz/).
 *
 * A harness reads its choices (method, shape, parameters, element bit patterns) from the input
 * with the fz_* readers below; an exhausted input reads as zeros, so every input is valid and
 * short inputs are the simple cases. A violated invariant prints one line naming it and calls
 * abort(), which libFuzzer reports as a crash and saves the input.
 */
#ifndef NVFP4_FUZZ_COMMON_H
#define NVFP4_FUZZ_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvfp4/nvfp4.h"

typedef struct fz_in {
    const uint8_t *p;
    size_t n, pos;
} fz_in;

static inline uint8_t fz_u8(fz_in *in) { return in->pos < in->n ? in->p[in->pos++] : 0u; }
static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | ((uint16_t)fz_u8(in) << 8));
}
static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | ((uint32_t)fz_u16(in) << 16);
}
static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t lo = fz_u32(in);
    return lo | ((uint64_t)fz_u32(in) << 32);
}
static inline size_t fz_left(const fz_in *in) { return in->pos < in->n ? in->n - in->pos : 0; }

static inline float fz_bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t fz_f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline double fz_bits_d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Floats worth hitting on purpose: zeros, E2M1 rounding thresholds and grid points, E4M3 limits,
 * float limits and subnormals, non-finite values. */
static const float fz_special[] = {
    0.0f, -0.0f, 0.25f, -0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, -5.0f, 6.0f, -6.0f,
    0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 448.0f, 464.0f, 0.001953125f, 0.015625f, 2688.0f,
    1e-45f, -1e-45f, 1.17549435e-38f, 5.87747175e-39f, 3.40282347e+38f, -3.40282347e+38f,
    65504.0f, 65520.0f, 1e-7f, 0.1f, -0.3f, 7.0f, 1e30f, 1e-30f, 0.2500001f, 0.2499999f,
};

/* A float from the input: raw bits, a special value, or a special value times a power of two. */
static inline float fz_float(fz_in *in)
{
    uint8_t mode = fz_u8(in);
    switch (mode & 3u) {
    case 0:
        return fz_bits_f(fz_u32(in));
    case 1: {
        uint8_t k = fz_u8(in);
        if (k == 255)
            return fz_bits_f(0x7FC00000u); /* NaN */
        if (k == 254)
            return fz_bits_f(0x7F800000u); /* +Inf */
        if (k == 253)
            return fz_bits_f(0xFF800000u); /* -Inf */
        return fz_special[k % (sizeof fz_special / sizeof fz_special[0])];
    }
    case 2: {
        float v = fz_special[fz_u8(in) % (sizeof fz_special / sizeof fz_special[0])];
        return ldexpf(v, (int)(int8_t)fz_u8(in));
    }
    default:
        return (float)(int8_t)fz_u8(in) * 0.125f;
    }
}

#define FZ_CHECK(cond, ...)                                                                      \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "INVARIANT VIOLATED at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* 1 if every byte of p[0..n) is c. */
static inline int fz_all(const void *p, size_t n, uint8_t c)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

/* malloc that never returns NULL for the sizes the harnesses use (aborts otherwise), so that a
 * harness failure is never mistaken for a library one. */
static inline void *fz_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

#define FZ_CANARY 0xA5u

/* A status is one of those in the set (bit s set in mask). */
#define FZ_BIT(s) (1u << (unsigned)(s))
static inline int fz_status_in(nvfp4_status s, uint32_t mask)
{
    return s >= 0 && s < 32 && (mask & FZ_BIT(s)) != 0;
}

#endif
