/* fuzz_layout.c - libFuzzer harness: the 128×4 scale layout (swizzle, unswizzle, offsets) and
 * the buffer-size functions, on arbitrary 64-bit sizes (overflow edges) and on small real
 * buffers.
 *
 * Invariants: sizes and offsets equal SPEC §6's formulas evaluated in 128-bit arithmetic and are
 * NVFP4_ERR_SHAPE exactly when a size is ≤ 0, an index is out of range or the result does not fit
 * in int64_t; outputs are untouched on error; swizzle zero-fills the padding, puts linear[m,k] at
 * offset(m,k), and unswizzle inverts it.
 */
#include "fuzz_common.h"

typedef __int128 i128;

static int64_t pick_i64(fz_in *in)
{
    static const int64_t edges[] = {0, 1, -1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 127, 128, 129, 255, 256,
                                    INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MAX - 127, INT64_MAX / 2,
                                    INT64_MAX / 128, INT64_MAX / 512, (int64_t)1 << 31, (int64_t)1 << 32,
                                    ((int64_t)1 << 62) - 1, 3037000499LL, 3037000500LL};
    uint8_t s = fz_u8(in);
    if (s < 128)
        return edges[s % (sizeof edges / sizeof edges[0])];
    if (s < 200)
        return (int64_t)(s - 128);
    return (int64_t)fz_u64(in);
}

static i128 rup(i128 v, i128 m) { return (v + m - 1) / m * m; }

static void check_sizes(fz_in *in)
{
    int32_t format = (int32_t)(fz_u8(in) % 3u), layout = (int32_t)(fz_u8(in) % 3u);
    int64_t rows = pick_i64(in), cols = pick_i64(in);
    int64_t out = 0x5A5A5A5A5A5A5A5ALL;
    int B = format == NVFP4_FORMAT_NVFP4 ? 16 : format == NVFP4_FORMAT_MXFP4 ? 32 : 0;

    nvfp4_status s = nvfp4_codes_size(format, rows, cols, &out);
    nvfp4_status want;
    i128 v = 0;
    if (!B)
        want = NVFP4_ERR_UNKNOWN_KEY;
    else if (rows <= 0 || cols <= 0)
        want = NVFP4_ERR_SHAPE;
    else {
        v = (i128)rows * (rup(cols, B) / 2);
        want = rup(cols, B) > INT64_MAX || v > INT64_MAX ? NVFP4_ERR_SHAPE : NVFP4_OK;
    }
    FZ_CHECK(s == want, "codes_size(%d, %lld, %lld) = %d, want %d", format, (long long)rows, (long long)cols, s,
             want);
    FZ_CHECK(s == NVFP4_OK ? out == (int64_t)v : out == 0x5A5A5A5A5A5A5A5ALL, "codes_size value");
    FZ_CHECK(nvfp4_codes_size(format, rows, cols, NULL) == (B ? NVFP4_ERR_NULL_POINTER : NVFP4_ERR_NULL_POINTER),
             "codes_size NULL");

    out = 0x5A5A5A5A5A5A5A5ALL;
    s = nvfp4_scales_size(format, layout, rows, cols, &out);
    if (!B || (layout != NVFP4_LAYOUT_LINEAR && layout != NVFP4_LAYOUT_128X4))
        want = NVFP4_ERR_UNKNOWN_KEY;
    else if (rows <= 0 || cols <= 0)
        want = NVFP4_ERR_SHAPE;
    else {
        i128 nblk = ((i128)cols + B - 1) / B;
        v = layout == NVFP4_LAYOUT_LINEAR ? (i128)rows * nblk : rup(rows, 128) * rup(nblk, 4);
        want = v > INT64_MAX || (layout == NVFP4_LAYOUT_128X4 && rup(rows, 128) > INT64_MAX) ? NVFP4_ERR_SHAPE
                                                                                              : NVFP4_OK;
    }
    FZ_CHECK(s == want, "scales_size(%d, %d, %lld, %lld) = %d, want %d", format, layout, (long long)rows,
             (long long)cols, s, want);
    FZ_CHECK(s == NVFP4_OK ? out == (int64_t)v : out == 0x5A5A5A5A5A5A5A5ALL, "scales_size value");

    /* offsets */
    int64_t m = pick_i64(in), k = pick_i64(in), sc = pick_i64(in);
    out = 0x5A5A5A5A5A5A5A5ALL;
    s = nvfp4_scale_offset_128x4(m, k, sc, &out);
    if (m < 0 || k < 0 || sc <= 0 || k >= sc || rup((i128)m + 1, 128) * rup(sc, 4) > INT64_MAX)
        want = NVFP4_ERR_SHAPE;
    else
        want = NVFP4_OK;
    FZ_CHECK(s == want, "offset(%lld, %lld, %lld) = %d, want %d", (long long)m, (long long)k, (long long)sc, s, want);
    if (s == NVFP4_OK) {
        i128 k4 = ((i128)sc + 3) / 4;
        i128 o = ((i128)(m / 128) * k4 + k / 4) * 512 + (m % 32) * 16 + ((m / 32) % 4) * 4 + (k % 4);
        FZ_CHECK(out == (int64_t)o && o < rup((i128)m + 1, 128) * rup(sc, 4), "offset value %lld",
                 (long long)out);
    } else {
        FZ_CHECK(out == 0x5A5A5A5A5A5A5A5ALL, "offset written on error");
    }
}

static void check_buffers(fz_in *in)
{
    uint8_t rb = fz_u8(in);
    int64_t rows = 1 + rb % 140, sc = 1 + fz_u8(in) % 24;
    if (rows > 64 && sc > 9)
        sc = 1 + sc % 9;
    int64_t nlin = rows * sc, nsw = ((rows + 127) / 128 * 128) * ((sc + 3) / 4 * 4);
    uint8_t *lin = fz_malloc((size_t)nlin), *sw = fz_malloc((size_t)nsw), *back = fz_malloc((size_t)nlin);
    for (int64_t i = 0; i < nlin; i++)
        lin[i] = fz_u8(in);
    memset(sw, FZ_CANARY, (size_t)nsw);

    uint8_t mode = fz_u8(in);
    /* errors first: nothing may be written */
    if (mode & 1u) {
        int64_t br = (mode & 2u) ? 0 : -(int64_t)(mode >> 2), bc = (mode & 2u) ? sc : 0;
        FZ_CHECK(nvfp4_scales_swizzle(lin, br, bc, sw) == NVFP4_ERR_SHAPE, "swizzle bad shape");
        FZ_CHECK(nvfp4_scales_swizzle(NULL, rows, sc, sw) == NVFP4_ERR_NULL_POINTER, "swizzle NULL");
        FZ_CHECK(nvfp4_scales_swizzle(lin, INT64_MAX, INT64_MAX, sw) == NVFP4_ERR_SHAPE, "swizzle overflow");
        FZ_CHECK(fz_all(sw, (size_t)nsw, FZ_CANARY), "swizzle wrote on error");
        memset(back, FZ_CANARY, (size_t)nlin);
        FZ_CHECK(nvfp4_scales_unswizzle(sw, br, bc, back) == NVFP4_ERR_SHAPE, "unswizzle bad shape");
        FZ_CHECK(nvfp4_scales_unswizzle(sw, rows, sc, NULL) == NVFP4_ERR_NULL_POINTER, "unswizzle NULL");
        FZ_CHECK(fz_all(back, (size_t)nlin, FZ_CANARY), "unswizzle wrote on error");
    }

    FZ_CHECK(nvfp4_scales_swizzle(lin, rows, sc, sw) == NVFP4_OK, "swizzle");
    uint8_t *used = fz_malloc((size_t)nsw);
    memset(used, 0, (size_t)nsw);
    for (int64_t m = 0; m < rows; m++)
        for (int64_t k = 0; k < sc; k++) {
            int64_t off;
            FZ_CHECK(nvfp4_scale_offset_128x4(m, k, sc, &off) == NVFP4_OK && off >= 0 && off < nsw, "offset");
            FZ_CHECK(!used[off], "offset %lld used twice", (long long)off);
            used[off] = 1;
            FZ_CHECK(sw[off] == lin[m * sc + k], "swizzled (%lld,%lld)", (long long)m, (long long)k);
        }
    for (int64_t i = 0; i < nsw; i++)
        FZ_CHECK(used[i] || sw[i] == 0, "padding byte %lld not zero", (long long)i);
    memset(back, FZ_CANARY, (size_t)nlin);
    FZ_CHECK(nvfp4_scales_unswizzle(sw, rows, sc, back) == NVFP4_OK, "unswizzle");
    FZ_CHECK(memcmp(back, lin, (size_t)nlin) == 0, "unswizzle(swizzle(x)) != x");

    /* unswizzle reads only the addressed bytes: random padding changes nothing */
    for (int64_t i = 0; i < nsw; i++)
        if (!used[i])
            sw[i] = fz_u8(in);
    FZ_CHECK(nvfp4_scales_unswizzle(sw, rows, sc, back) == NVFP4_OK && memcmp(back, lin, (size_t)nlin) == 0,
             "unswizzle looked at padding");
    free(used);
    free(lin);
    free(sw);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size, 0};
    uint8_t what = fz_u8(&in);
    if (what & 1u)
        check_buffers(&in);
    for (int i = 0; i < 1 + (what >> 5); i++)
        check_sizes(&in);
    return 0;
}
