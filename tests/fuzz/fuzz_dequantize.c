/* fuzz_dequantize.c - libFuzzer harness: nvfp4_dequantize_v2() and nvfp4_dequantize() on
 * arbitrary code and scale bytes, global-scale bit patterns, formats, layouts, dtypes, shapes
 * and leading dimensions.
 *
 * Invariants: the status is OK exactly when no documented error condition holds (else one whose
 * condition holds); on error the destination keeps its canary fill; on success every element is
 * RN32(RN32(value(code)·f(S))·s_dec) (SPEC §2) converted to the destination type, bit for bit,
 * the gaps between rows (ld > cols) keep their canary, 128×4 padding bytes are never looked at
 * (they may hold anything), and v1 equals v2 for NVFP4 with linear scales.
 */
#include "fuzz_common.h"

static nvfp4_context *ctx;

static float scale_value(int mx, uint8_t b)
{
    if (mx)
        return b == 0xFF ? NAN : ldexpf(1.0f, (int)b - 127);
    if ((b & 0x7Fu) == 0x7Fu)
        return NAN;
    int e = (b >> 3) & 0xF, m = b & 7;
    float v = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return (b & 0x80u) ? -v : v;
}

static const float e2m1_vals[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size, 0};
    if (!ctx && nvfp4_context_create(&ctx, NVFP4_BACKEND_CPU) != NVFP4_OK)
        abort();
    uint8_t fb = fz_u8(&in), lb = fz_u8(&in), db = fz_u8(&in), rb = fz_u8(&in), cb = fz_u8(&in), ldb = fz_u8(&in);
    uint8_t flags = fz_u8(&in);
    int32_t format = fb % 3u, layout = lb % 3u, dtype = db % 4u;
    if (fb == 0xFF)
        format = INT32_MIN;
    int mx = format == NVFP4_FORMAT_MXFP4;
    int B = mx ? 32 : 16;
    int64_t rows = 1 + rb % 6;
    if ((rb & 0xC0u) == 0xC0u)
        rows = 126 + rb % 6;
    int64_t cols = 1 + cb % 100;
    if (rows > 8 && cols > 40)
        cols = 1 + cols % 40;
    int64_t ld = cols + ldb % 4;
    float gs = fz_float(&in);
    if (flags & 1u)
        gs = fabsf(gs); /* mostly valid */
    if ((flags & 6u) == 6u)
        gs = 1.0f;
    if (mx && (flags & 8u))
        gs = 1.0f;

    /* buffers sized for the valid interpretation (an unknown format/layout uses NVFP4 linear) */
    int vfmt = format == NVFP4_FORMAT_MXFP4 ? NVFP4_FORMAT_MXFP4 : NVFP4_FORMAT_NVFP4;
    int vlay = layout == NVFP4_LAYOUT_128X4 ? NVFP4_LAYOUT_128X4 : NVFP4_LAYOUT_LINEAR;
    int64_t ncodes, nscales;
    FZ_CHECK(nvfp4_codes_size(vfmt, rows, cols, &ncodes) == NVFP4_OK, "codes_size");
    FZ_CHECK(nvfp4_scales_size(vfmt, vlay, rows, cols, &nscales) == NVFP4_OK, "scales_size");
    int64_t nblk = (cols + (vfmt ? 32 : 16) - 1) / (vfmt ? 32 : 16);
    uint8_t *codes = fz_malloc((size_t)ncodes), *scales = fz_malloc((size_t)nscales);
    for (int64_t i = 0; i < ncodes; i++)
        codes[i] = fz_u8(&in);
    uint8_t smode = fz_u8(&in);
    for (int64_t i = 0; i < nscales; i++) {
        uint8_t b = fz_u8(&in);
        if (!(smode & 1u)) /* biased to valid bytes */
            b = mx ? (b == 0xFF ? 0xFE : b) : (uint8_t)(b % 0x7Fu);
        scales[i] = b;
    }
    if ((smode & 6u) == 6u && nscales > 0) /* one poisoned byte somewhere */
        scales[fz_u8(&in) % nscales] = mx ? 0xFF : (uint8_t)(0x7F | (fz_u8(&in) & 0x80u));

    /* the linear view of the scales the library must use */
    uint8_t *lin = fz_malloc((size_t)(rows * nblk));
    for (int64_t m = 0; m < rows; m++)
        for (int64_t k = 0; k < nblk; k++) {
            int64_t off = m * nblk + k;
            if (vlay == NVFP4_LAYOUT_128X4)
                FZ_CHECK(nvfp4_scale_offset_128x4(m, k, nblk, &off) == NVFP4_OK, "offset");
            lin[m * nblk + k] = scales[off];
        }

    int64_t qrows = rows, qcols = cols, qld = ld;
    int bad_shape = 1;
    switch (flags >> 4) {
    case 15: qrows = -1; break;
    case 14: qcols = 0; break;
    case 13: qld = cols - 1; break;
    case 12: qrows = INT64_MAX; break;
    case 11: qrows = ((int64_t)1 << 62) / ld + 2; break; /* (rows-1)·ld·2 > 2^63 bytes */
    default: bad_shape = 0; break;
    }

    uint32_t errs = 0;
    if (format != NVFP4_FORMAT_NVFP4 && format != NVFP4_FORMAT_MXFP4)
        errs |= FZ_BIT(NVFP4_ERR_UNKNOWN_KEY);
    if (layout != NVFP4_LAYOUT_LINEAR && layout != NVFP4_LAYOUT_128X4)
        errs |= FZ_BIT(NVFP4_ERR_UNKNOWN_KEY);
    if (dtype > NVFP4_DTYPE_BF16)
        errs |= FZ_BIT(NVFP4_ERR_UNKNOWN_KEY);
    if (bad_shape)
        errs |= FZ_BIT(NVFP4_ERR_SHAPE);
    if (!(gs >= 0.0f) || !isfinite(gs))
        errs |= FZ_BIT(NVFP4_ERR_INVALID_SCALE);
    for (int64_t i = 0; i < rows * nblk; i++)
        if (mx ? lin[i] == 0xFF : lin[i] >= 0x7F)
            errs |= FZ_BIT(NVFP4_ERR_INVALID_SCALE);

    size_t esz = dtype == NVFP4_DTYPE_F16 || dtype == NVFP4_DTYPE_BF16 ? 2u : 4u;
    int64_t dn = (rows - 1) * ld + cols;
    uint8_t *dst = fz_malloc((size_t)dn * esz);
    memset(dst, FZ_CANARY, (size_t)dn * esz);

    nvfp4_status s = nvfp4_dequantize_v2(ctx, format, layout, codes, scales, gs, qrows, qcols, dtype, dst, qld);
    if (errs || s != NVFP4_OK) {
        FZ_CHECK(errs && fz_status_in(s, errs), "dequantize_v2 = %d (%s), documented set 0x%x", s,
                 nvfp4_context_last_error_message(ctx), errs);
        FZ_CHECK(fz_all(dst, (size_t)dn * esz, FZ_CANARY), "destination written on error %d", s);
        goto done;
    }
    (void)B;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < ld && r * ld + c < dn; c++) {
            const uint8_t *e = dst + (size_t)(r * ld + c) * esz;
            if (c >= cols) {
                FZ_CHECK(fz_all(e, esz, FZ_CANARY), "ld gap written at (%lld,%lld)", (long long)r, (long long)c);
                continue;
            }
            int64_t pb = (int64_t)(nblk * (mx ? 32 : 16) / 2);
            uint8_t code = (uint8_t)((codes[r * pb + c / 2] >> ((c & 1) * 4)) & 0xFu);
            float sv = scale_value(mx, lin[r * nblk + c / (mx ? 32 : 16)]);
            float v = (e2m1_vals[code] * sv) * gs;
            if (esz == 4) {
                float got;
                memcpy(&got, e, 4);
                FZ_CHECK(fz_f_bits(got) == fz_f_bits(v), "(%lld,%lld): %a, SPEC %a", (long long)r, (long long)c,
                         (double)got, (double)v);
            } else {
                uint16_t got, want = dtype == NVFP4_DTYPE_F16 ? nvfp4_float_to_f16(v) : nvfp4_float_to_bf16(v);
                memcpy(&got, e, 2);
                FZ_CHECK(got == want, "(%lld,%lld): 0x%04X, want 0x%04X", (long long)r, (long long)c, got, want);
            }
        }
    }
    if (format == NVFP4_FORMAT_NVFP4 && layout == NVFP4_LAYOUT_LINEAR) {
        uint8_t *d1 = fz_malloc((size_t)dn * esz);
        memcpy(d1, dst, (size_t)dn * esz);
        memset(dst, FZ_CANARY, (size_t)dn * esz);
        s = nvfp4_dequantize(ctx, codes, scales, gs, rows, cols, dtype, dst, ld);
        FZ_CHECK(s == NVFP4_OK && memcmp(d1, dst, (size_t)dn * esz) == 0, "v1 differs from v2 (%d)", s);
        free(d1);
    }
done:
    free(dst);
    free(lin);
    free(codes);
    free(scales);
    return 0;
}
