/* fuzz_convert.c - libFuzzer harness: the scalar and array conversions of formats.h and
 * nvfp4_status_string().
 *
 * Each scalar conversion is compared with a reference written from its definition (nearest
 * value of the target grid computed in double, ties to the even code, saturation, NaN and sign
 * rules of SPEC §1), not with the library's bit tricks. The array functions must equal the scalar
 * ones element by element, return a documented status, and write nothing on error.
 */
#include "fuzz_common.h"

static const double e2m1_mag[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

static int isnan_f(float x) { return (fz_f_bits(x) & 0x7FFFFFFFu) > 0x7F800000u; }

/* E2M1: nearest magnitude, ties to the even code, saturating at 6; sign bit copied; NaN → 0x7. */
static uint8_t ref_e2m1(float x)
{
    if (isnan_f(x))
        return 0x7;
    double a = fabs((double)x);
    uint8_t best = 7;
    if (a < 6.0) {
        double bd = INFINITY;
        for (uint8_t m = 0; m < 8; m++) {
            double d = fabs(a - e2m1_mag[m]);
            if (d < bd || (d == bd && (m & 1u) == 0)) {
                bd = d;
                best = m;
            }
        }
    }
    return (uint8_t)(best | ((fz_f_bits(x) >> 28) & 8u));
}

static double e4m3_mag(uint8_t b) /* b in 0..0x7E */
{
    int e = b >> 3, m = b & 7;
    return e == 0 ? ldexp((double)m, -9) : ldexp(1.0 + m / 8.0, e - 7);
}

/* E4M3: nearest of the 127 finite magnitudes, ties to the even byte, |x| ≥ 448 → 448, NaN → 0x7F. */
static uint8_t ref_e4m3(float x)
{
    if (isnan_f(x))
        return 0x7F;
    double a = fabs((double)x);
    uint8_t sign = (fz_f_bits(x) >> 24) & 0x80u, best = 0x7E;
    if (a < 448.0) {
        double bd = INFINITY;
        for (uint8_t b = 0; b <= 0x7E; b++) {
            double d = fabs(a - e4m3_mag(b));
            if (d < bd || (d == bd && (b & 1u) == 0)) {
                bd = d;
                best = b;
            }
        }
    }
    return (uint8_t)(sign | best);
}

/* binary16 / bfloat16 rounding: nearest representable, ties to even, overflow to Inf. p = stored
 * mantissa bits, emin = minimum normal exponent, emax_val = largest finite value. */
static double round_fmt(double a, int p, int emin, double maxv, int *odd)
{
    if (a == 0.0) {
        *odd = 0;
        return 0.0;
    }
    int e;
    frexp(a, &e); /* a = f·2^e, f in [0.5, 1) */
    e -= 1;       /* a in [2^e, 2^(e+1)) */
    if (e < emin)
        e = emin;
    double ulp = ldexp(1.0, e - p);
    double q = a / ulp; /* exact: a has ≤ 24 significant bits */
    double fl = floor(q), fr = q - fl;
    double n = fl;
    if (fr > 0.5 || (fr == 0.5 && fmod(fl, 2.0) != 0.0))
        n = fl + 1.0;
    *odd = fmod(n, 2.0) != 0.0;
    double r = n * ulp;
    /* the rounding boundary for overflow: max + half an ulp of the top binade, ties to even → Inf */
    double top_ulp = ldexp(1.0, (int)floor(log2(maxv)) - p);
    if (a >= maxv + top_ulp / 2)
        return INFINITY;
    return r;
}

static void check_scalars(float x, uint8_t b, uint16_t h)
{
    /* E2M1 */
    uint8_t c = nvfp4_e2m1_from_float(x);
    FZ_CHECK(c == ref_e2m1(x), "e2m1(%a) = 0x%X, want 0x%X", (double)x, c, ref_e2m1(x));
    float cv = nvfp4_e2m1_to_float(b);
    double want = e2m1_mag[b & 7u];
    FZ_CHECK((double)fabsf(cv) == want && (signbit(cv) != 0) == ((b & 8u) != 0), "e2m1_to_float(0x%02X) = %a", b,
             (double)cv);
    FZ_CHECK(fz_f_bits(nvfp4_e2m1_grid()[b & 0xFu]) == fz_f_bits(cv), "grid[%u]", b & 0xFu);

    /* E4M3 */
    uint8_t e = nvfp4_e4m3_from_float(x);
    FZ_CHECK(e == ref_e4m3(x), "e4m3(%a) = 0x%02X, want 0x%02X", (double)x, e, ref_e4m3(x));
    float ev = nvfp4_e4m3_to_float(b);
    if ((b & 0x7Fu) == 0x7Fu) {
        FZ_CHECK(isnan_f(ev), "e4m3_to_float(0x%02X) not NaN", b);
    } else {
        FZ_CHECK((double)fabsf(ev) == e4m3_mag(b & 0x7Fu) && (signbit(ev) != 0) == ((b & 0x80u) != 0),
                 "e4m3_to_float(0x%02X) = %a", b, (double)ev);
        FZ_CHECK(nvfp4_e4m3_from_float(ev) == b, "e4m3 round trip 0x%02X", b);
    }

    /* E8M0 */
    float mv = nvfp4_e8m0_to_float(b);
    if (b == 0xFF)
        FZ_CHECK(isnan_f(mv), "e8m0 0xFF not NaN");
    else
        FZ_CHECK((double)mv == ldexp(1.0, (int)b - 127), "e8m0_to_float(0x%02X) = %a", b, (double)mv);
    for (int32_t mode = -1; mode <= 2; mode++) {
        uint8_t out = 0xA5;
        nvfp4_status s = nvfp4_e8m0_from_amax(x, mode, &out);
        if (mode != NVFP4_E8M0_RCEIL && mode != NVFP4_E8M0_FLOOR) {
            FZ_CHECK(s == NVFP4_ERR_UNKNOWN_KEY && out == 0xA5, "e8m0 mode %d = %d", mode, s);
            continue;
        }
        if (!isfinite(x) || x < 0.0f) {
            FZ_CHECK(s == NVFP4_ERR_INVALID_VALUE && out == 0xA5, "e8m0(%a) = %d", (double)x, s);
            continue;
        }
        FZ_CHECK(s == NVFP4_OK, "e8m0(%a) = %d", (double)x, s);
        int ex = 0;
        uint8_t w;
        if (mode == NVFP4_E8M0_RCEIL) {
            float v = x * 0.16666667163372039794921875f; /* RN32(amax · RN32(1/6)) */
            if (!(v > 0.0f)) {
                w = 0;
            } else {
                double f = frexp((double)v, &ex); /* v = f·2^ex */
                int cl = f == 0.5 ? ex - 1 : ex;   /* ceil(log2 v) */
                cl = cl < -127 ? -127 : cl > 127 ? 127 : cl;
                w = (uint8_t)(cl + 127);
            }
        } else if (!(x > 0.0f)) {
            w = 0;
        } else {
            frexp((double)x, &ex);
            int fl = ex - 1 - 2;
            fl = fl < -127 ? -127 : fl > 127 ? 127 : fl;
            w = (uint8_t)(fl + 127);
        }
        FZ_CHECK(out == w, "e8m0(%a, %d) = 0x%02X, want 0x%02X", (double)x, mode, out, w);
    }
    FZ_CHECK(nvfp4_e8m0_from_amax(x, NVFP4_E8M0_RCEIL, NULL) == NVFP4_ERR_NULL_POINTER, "e8m0 NULL");

    /* f16 */
    float hv = nvfp4_f16_to_float(h);
    int he = (h >> 10) & 0x1F, hm = h & 0x3FF;
    if (he == 0x1F && hm) {
        FZ_CHECK(isnan_f(hv) && (signbit(hv) != 0) == ((h & 0x8000u) != 0), "f16 NaN 0x%04X", h);
    } else {
        double hw = he == 0x1F ? INFINITY : he == 0 ? ldexp(hm, -24) : ldexp(1024 + hm, he - 25);
        FZ_CHECK((double)fabsf(hv) == hw && (signbit(hv) != 0) == ((h & 0x8000u) != 0), "f16_to_float(0x%04X) = %a",
                 h, (double)hv);
        FZ_CHECK(nvfp4_float_to_f16(hv) == h, "f16 round trip 0x%04X", h);
    }
    uint16_t hx = nvfp4_float_to_f16(x);
    if (isnan_f(x)) {
        FZ_CHECK((hx & 0x7C00u) == 0x7C00u && (hx & 0x3FFu) && ((hx & 0x8000u) != 0) == (signbit(x) != 0),
                 "float_to_f16(NaN) = 0x%04X", hx);
    } else {
        int odd;
        double r = round_fmt(fabs((double)x), 10, -14, 65504.0, &odd);
        float got = nvfp4_f16_to_float(hx);
        FZ_CHECK((double)fabsf(got) == r && (signbit(got) != 0) == (signbit(x) != 0), "float_to_f16(%a) = 0x%04X, want %a",
                 (double)x, hx, r);
    }

    /* bf16 */
    float bv = nvfp4_bf16_to_float(h);
    FZ_CHECK(fz_f_bits(bv) == (uint32_t)h << 16, "bf16_to_float(0x%04X)", h);
    uint16_t bx = nvfp4_float_to_bf16(x);
    if (isnan_f(x)) {
        FZ_CHECK((bx & 0x7F80u) == 0x7F80u && (bx & 0x40u) && ((bx & 0x8000u) != 0) == (signbit(x) != 0),
                 "float_to_bf16(NaN) = 0x%04X", bx);
    } else {
        int odd;
        double r = round_fmt(fabs((double)x), 7, -126, 3.3895313892515355e+38, &odd);
        float got = nvfp4_bf16_to_float(bx);
        FZ_CHECK((double)fabsf(got) == r && (signbit(got) != 0) == (signbit(x) != 0),
                 "float_to_bf16(%a) = 0x%04X, want %a", (double)x, bx, r);
    }
}

static void check_arrays(fz_in *in)
{
    int32_t dtype = (int32_t)(fz_u8(in) % 4u);
    int64_t n = fz_u8(in) % 70;
    uint8_t mode = fz_u8(in);
    int64_t qn = (mode & 3u) == 3u ? -1 - (int64_t)(mode >> 2) : n;
    int nullsrc = (mode & 0x1Cu) == 0x1Cu, nulldst = (mode & 0x60u) == 0x60u;
    size_t esz = dtype == NVFP4_DTYPE_F16 || dtype == NVFP4_DTYPE_BF16 ? 2u : 4u;
    uint8_t *src = fz_malloc((size_t)n * 4 + 1), *b8 = fz_malloc((size_t)n + 1), *dst = fz_malloc((size_t)n * 4 + 1);
    for (int64_t i = 0; i < n; i++) {
        if (esz == 4) {
            float f = fz_float(in);
            memcpy(src + 4 * i, &f, 4);
        } else {
            uint16_t v = fz_u16(in);
            memcpy(src + 2 * i, &v, 2);
        }
        b8[i] = fz_u8(in);
    }
    uint32_t errs = 0;
    if (qn < 0)
        errs |= FZ_BIT(NVFP4_ERR_SHAPE);
    if (dtype > NVFP4_DTYPE_BF16)
        errs |= FZ_BIT(NVFP4_ERR_UNKNOWN_KEY);
    if (qn > 0 && (nullsrc || nulldst))
        errs |= FZ_BIT(NVFP4_ERR_NULL_POINTER);

    for (int fn = 0; fn < 4; fn++) {
        memset(dst, FZ_CANARY, (size_t)n * 4 + 1);
        nvfp4_status s;
        const void *in_p = fn < 2 ? (const void *)src : (const void *)b8;
        if (nullsrc)
            in_p = NULL;
        void *out_p = nulldst ? NULL : dst;
        switch (fn) {
        case 0: s = nvfp4_e2m1_from_array(dtype, in_p, qn, out_p); break;
        case 1: s = nvfp4_e4m3_from_array(dtype, in_p, qn, out_p); break;
        case 2: s = nvfp4_e2m1_to_array(in_p, qn, dtype, out_p); break;
        default: s = nvfp4_e4m3_to_array(in_p, qn, dtype, out_p); break;
        }
        if (errs || s != NVFP4_OK) {
            FZ_CHECK(errs && fz_status_in(s, errs), "array fn %d = %d, documented set 0x%x", fn, s, errs);
            FZ_CHECK(fz_all(dst, (size_t)n * 4 + 1, FZ_CANARY), "array fn %d wrote on error", fn);
            continue;
        }
        size_t osz = fn < 2 ? 1u : esz;
        FZ_CHECK(fz_all(dst + (size_t)n * osz, (size_t)n * 4 + 1 - (size_t)n * osz, FZ_CANARY),
                 "array fn %d wrote past n", fn);
        for (int64_t i = 0; i < n; i++) {
            float x;
            if (esz == 4)
                memcpy(&x, src + 4 * i, 4);
            else {
                uint16_t v;
                memcpy(&v, src + 2 * i, 2);
                x = dtype == NVFP4_DTYPE_F16 ? nvfp4_f16_to_float(v) : nvfp4_bf16_to_float(v);
            }
            if (fn == 0)
                FZ_CHECK(dst[i] == nvfp4_e2m1_from_float(x), "e2m1_from_array[%lld]", (long long)i);
            else if (fn == 1)
                FZ_CHECK(dst[i] == nvfp4_e4m3_from_float(x), "e4m3_from_array[%lld]", (long long)i);
            else {
                float v = fn == 2 ? nvfp4_e2m1_to_float(b8[i]) : nvfp4_e4m3_to_float(b8[i]);
                if (esz == 4) {
                    float got;
                    memcpy(&got, dst + 4 * i, 4);
                    FZ_CHECK(fz_f_bits(got) == fz_f_bits(v) || (isnan_f(got) && isnan_f(v)), "to_array fn %d [%lld]", fn,
                             (long long)i);
                } else {
                    uint16_t got, want = dtype == NVFP4_DTYPE_F16 ? nvfp4_float_to_f16(v) : nvfp4_float_to_bf16(v);
                    memcpy(&got, dst + 2 * i, 2);
                    FZ_CHECK(got == want, "to_array fn %d [%lld] 0x%04X want 0x%04X", fn, (long long)i, got, want);
                }
            }
        }
    }

    /* pack / unpack */
    int high = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(mode & 0x80u))
            b8[i] &= 0x0Fu;
        high |= b8[i] > 0x0F;
    }
    uint32_t perr = 0;
    if (qn < 0)
        perr |= FZ_BIT(NVFP4_ERR_SHAPE);
    if (qn > 0 && (nullsrc || nulldst))
        perr |= FZ_BIT(NVFP4_ERR_NULL_POINTER);
    if (qn > 0 && high && !nullsrc)
        perr |= FZ_BIT(NVFP4_ERR_INVALID_VALUE);
    memset(dst, FZ_CANARY, (size_t)n * 4 + 1);
    nvfp4_status s = nvfp4_e2m1_pack(nullsrc ? NULL : b8, qn, nulldst ? NULL : dst);
    if (perr || s != NVFP4_OK) {
        FZ_CHECK(perr && fz_status_in(s, perr), "pack = %d, documented 0x%x", s, perr);
        FZ_CHECK(fz_all(dst, (size_t)n * 4 + 1, FZ_CANARY), "pack wrote on error");
    } else {
        size_t pn = (size_t)(n + 1) / 2;
        FZ_CHECK(fz_all(dst + pn, (size_t)n * 4 + 1 - pn, FZ_CANARY), "pack wrote past ceil(n/2)");
        uint8_t *un = fz_malloc((size_t)n + 1);
        FZ_CHECK(nvfp4_e2m1_unpack(dst, n, un) == NVFP4_OK && memcmp(un, b8, (size_t)n) == 0, "unpack(pack(x)) != x");
        if (n & 1)
            FZ_CHECK((dst[n / 2] >> 4) == 0, "odd pack pad nibble");
        free(un);
    }
    memset(dst, FZ_CANARY, (size_t)n * 4 + 1);
    s = nvfp4_e2m1_unpack(nullsrc ? NULL : b8, qn, nulldst ? NULL : dst);
    uint32_t uerr = perr & ~FZ_BIT(NVFP4_ERR_INVALID_VALUE);
    if (uerr || s != NVFP4_OK) {
        FZ_CHECK(uerr && fz_status_in(s, uerr), "unpack = %d", s);
        FZ_CHECK(fz_all(dst, (size_t)n * 4 + 1, FZ_CANARY), "unpack wrote on error");
    } else {
        for (int64_t i = 0; i < n; i++)
            FZ_CHECK(dst[i] == ((b8[i / 2] >> ((i & 1) * 4)) & 0xFu), "unpack[%lld]", (long long)i);
        FZ_CHECK(fz_all(dst + n, (size_t)n * 3 + 1, FZ_CANARY), "unpack wrote past n");
    }
    free(src);
    free(b8);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size, 0};
    uint8_t what = fz_u8(&in);
    int nscalar = 1 + (what & 7u);
    for (int i = 0; i < nscalar; i++) {
        float x = fz_float(&in);
        check_scalars(x, fz_u8(&in), fz_u16(&in));
    }
    if (what & 8u)
        check_arrays(&in);
    int32_t st = (int32_t)fz_u32(&in);
    const char *name = nvfp4_status_string(st);
    FZ_CHECK(name != NULL && name[0] != '\0', "status_string(%d)", st);
    if (st >= 0 && st <= 12)
        FZ_CHECK(strncmp(name, "NVFP4_", 6) == 0 && strcmp(name, "NVFP4_ERR_UNKNOWN_STATUS") != 0, "status %d", st);
    else
        FZ_CHECK(strcmp(name, "NVFP4_ERR_UNKNOWN_STATUS") == 0, "status %d named %s", st, name);
    return 0;
}
