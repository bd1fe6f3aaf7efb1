/* ref_rounding.h - an independent formulation of SPEC.md §1 for the tests.
 *
 * lib/rounding.h rounds by comparing against thresholds and by adding to bit patterns. This file
 * deliberately does it another way, straight from the definitions, in double precision:
 * - E2M1: search the SPEC's literal grid {0, 0.5, 1, 1.5, 2, 3, 4, 6} for the nearest point and
 *   break exact ties towards the even code;
 * - E4M3: build the 127 finite non-negative values from the bit fields (ldexp), then find the
 *   nearest one by bisection, ties to the even byte; everything above 448 saturates to 448;
 * - f16 / bf16: rint() of the value divided by the format's quantum at that binade;
 * - E8M0: frexp() exponents.
 * Every float, f16 and bf16 value is exact in double, and the distances compared near a tie are
 * exact too (both operands lie in one or two adjacent binades), so the comparisons are exact
 * where they matter. Everything is static inline so unused helpers do not warn.
 */
#ifndef NVFP4_TEST_REF_ROUNDING_H
#define NVFP4_TEST_REF_ROUNDING_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float ref_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t ref_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- E2M1 ----------------------------------------------------------------------------------- */

/* SPEC §1's table, indexed by magnitude code. */
static const double ref_e2m1_grid[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

static inline double ref_e2m1_value(uint8_t code)
{
    double v = ref_e2m1_grid[code & 7u];
    return (code & 8u) ? -v : v;
}

/* Magnitude code of a ≥ 0 (not NaN): nearest grid point, ties to the even code, > 6 saturates. */
static inline uint8_t ref_e2m1_mag(double a)
{
    if (a > 6.0)
        return 7;
    int best = 0;
    double bd = a; /* distance to grid[0] = 0 */
    for (int i = 1; i < 8; i++) {
        double d = fabs(a - ref_e2m1_grid[i]);
        if (d < bd || (d == bd && (i % 2) == 0)) {
            best = i;
            bd = d;
        } else if (d > bd) {
            break; /* the grid increases: every later point is farther still */
        }
    }
    return (uint8_t)best;
}

/* SPEC §1: sign bit from the input's sign bit (−0 → 0x8), NaN → 0x7. */
static inline uint8_t ref_e2m1(double x)
{
    if (isnan(x))
        return 0x7;
    return (uint8_t)(ref_e2m1_mag(fabs(x)) | (signbit(x) ? 0x8u : 0u));
}

/* ModelOpt's variant (SPEC §3.1 modelopt recipe): the sign is (x < 0), so −0.0 → 0x0. */
static inline uint8_t ref_e2m1_modelopt(double x)
{
    if (isnan(x))
        return 0x7;
    return (uint8_t)(ref_e2m1_mag(fabs(x)) | (x < 0.0 ? 0x8u : 0u));
}

/* ---- E4M3 ----------------------------------------------------------------------------------- */

/* Value of an E4M3 byte from its fields: bias 7, 3 mantissa bits, exponent field 0 subnormal
 * (m·2^-9), 0x7F/0xFF NaN, no infinity. */
static inline double ref_e4m3_value(uint8_t b)
{
    unsigned e = (b >> 3) & 0xFu, m = b & 7u;
    double v;
    if ((b & 0x7Fu) == 0x7Fu)
        return NAN;
    if (e == 0)
        v = ldexp((double)m, -9);
    else
        v = ldexp((double)(8u + m), (int)e - 7 - 3);
    return (b & 0x80u) ? -v : v;
}

/* Byte of a ≥ 0 (not NaN): bisection over the 127 finite values (increasing with the byte),
 * nearest wins, ties to the even byte, satfinite above 448. */
static inline uint8_t ref_e4m3_mag(double a)
{
    static double tab[127];
    static int ready;
    if (!ready) { /* idempotent; callers run it once before starting threads (ref_init()) */
        for (int i = 0; i < 127; i++)
            tab[i] = ref_e4m3_value((uint8_t)i);
        ready = 1;
    }
    if (a >= 448.0)
        return 0x7E;
    int lo = 0, hi = 126; /* invariant: tab[lo] <= a < tab[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (tab[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    double dlo = a - tab[lo], dhi = tab[hi] - a;
    if (dlo < dhi)
        return (uint8_t)lo;
    if (dhi < dlo)
        return (uint8_t)hi;
    return (uint8_t)((lo % 2) == 0 ? lo : hi);
}

/* SPEC §1: RNE with subnormals, satfinite (Inf → 448), NaN → 0x7F, sign bit kept. */
static inline uint8_t ref_e4m3(double x)
{
    if (isnan(x))
        return 0x7F;
    return (uint8_t)(ref_e4m3_mag(fabs(x)) | (signbit(x) ? 0x80u : 0u));
}

/* ---- E8M0 ----------------------------------------------------------------------------------- */

static inline double ref_e8m0_value(uint8_t b)
{
    if (b == 0xFF)
        return NAN;
    return ldexp(1.0, (int)b - 127);
}

/* RCEIL: 2^ceil(log2(v)) with v = RN32(amax · RN32(1/6)), the product NVIDIA's kernels feed to
 * cvt.rp.satfinite.ue8m0 (research/nvfp4-format.md §2.2); FLOOR: 2^(floor(log2 amax) − 2).
 * Exponent clamped to [−127, 127]; zero gives byte 0. */
static inline uint8_t ref_e8m0_from_amax(float amax, int floor_mode)
{
    int ex, e;
    if (!(amax > 0.0f))
        return 0;
    if (floor_mode) {
        double f = frexp((double)amax, &ex); /* amax = f·2^ex, f in [0.5, 1) */
        (void)f;
        e = (ex - 1) - 2;
    } else {
        const float sixth = 1.0f / 6.0f;
        volatile float v = amax * sixth;
        if (!(v > 0.0f))
            return 0;
        double f = frexp((double)v, &ex);
        e = (f == 0.5) ? ex - 1 : ex;
    }
    if (e < -127)
        e = -127;
    if (e > 127)
        e = 127;
    return (uint8_t)(e + 127);
}

/* ---- f16 / bf16 ----------------------------------------------------------------------------- */

static inline double ref_f16_value(uint16_t h)
{
    unsigned e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    double v;
    if (e == 0x1F)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);
    else
        v = ldexp((double)(1024u + m), (int)e - 15 - 10);
    return (h & 0x8000u) ? -v : v;
}

static inline double ref_bf16_value(uint16_t b)
{
    unsigned e = (b >> 7) & 0xFFu, m = b & 0x7Fu;
    double v;
    if (e == 0xFF)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -133);
    else
        v = ldexp((double)(128u + m), (int)e - 127 - 7);
    return (b & 0x8000u) ? -v : v;
}

/* Generic RNE to a binary format with `mbits` stored mantissa bits, minimum normal exponent
 * emin, maximum exponent emax; returns the bit pattern (sign excluded) or the Inf pattern.
 * NaN must be handled by the caller. */
static inline uint32_t ref_round_binary(double a, int mbits, int emin, int emax)
{
    int ex;
    if (a == 0.0)
        return 0;
    if (isinf(a))
        return (uint32_t)(emax - emin + 2) << mbits; /* all-ones exponent, zero mantissa */
    (void)frexp(a, &ex);
    int e = ex - 1; /* a in [2^e, 2^(e+1)) */
    if (e < emin)
        e = emin;
    double n = rint(ldexp(a, mbits - e)); /* exact scaling; rint = RNE in the default mode */
    if (n >= ldexp(1.0, mbits + 1)) {     /* rounded up into the next binade */
        n /= 2.0;
        e += 1;
    }
    if (e > emax)
        return (uint32_t)(emax - emin + 2) << mbits;
    if (n < ldexp(1.0, mbits)) /* subnormal (only possible at e == emin) */
        return (uint32_t)n;
    return ((uint32_t)(e - emin + 1) << mbits) | ((uint32_t)n - (1u << mbits));
}

/* float → f16 bits, RNE, overflow → Inf. NaN gives 0x7E00 with the sign (callers compare NaN-ness). */
static inline uint16_t ref_f16_from_double(double x)
{
    uint16_t s = signbit(x) ? 0x8000u : 0u;
    if (isnan(x))
        return (uint16_t)(s | 0x7E00u);
    return (uint16_t)(s | ref_round_binary(fabs(x), 10, -14, 15));
}

static inline uint16_t ref_bf16_from_double(double x)
{
    uint16_t s = signbit(x) ? 0x8000u : 0u;
    if (isnan(x))
        return (uint16_t)(s | 0x7FC0u);
    return (uint16_t)(s | ref_round_binary(fabs(x), 7, -126, 127));
}

static inline int ref_f16_isnan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }
static inline int ref_bf16_isnan(uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu) != 0; }

/* Build the lookup tables before any thread uses them. */
static inline void ref_init(void) { (void)ref_e4m3_mag(0.0); }

#endif /* NVFP4_TEST_REF_ROUNDING_H */
