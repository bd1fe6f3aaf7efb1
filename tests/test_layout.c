/* test_layout.c - SPEC §6: the 128×4 tensor-core scale layout (offsets, swizzle/unswizzle with
 * zero padding) and the buffer-size functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nvfp4/nvfp4.h"

#define CANARY 0xA5
#define TAIL 64

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

/* SPEC §6 written out: K16 = padded scale columns. */
static int64_t spec_offset(int64_t m, int64_t k, int64_t scale_cols)
{
    int64_t k16 = round_up(scale_cols, 4);
    return ((m / 128) * (k16 / 4) + k / 4) * 512 + (m % 32) * 16 + ((m / 32) % 4) * 4 + (k % 4);
}

static void test_check_values(void **state)
{
    (void)state;
    int64_t off = -1;
    /* M = K = 128: 8 scale columns */
    assert_int_equal(nvfp4_scale_offset_128x4(5, 2, 8, &off), NVFP4_OK);
    assert_int_equal(off, 82);
    assert_int_equal(nvfp4_scale_offset_128x4(5, 5, 8, &off), NVFP4_OK);
    assert_int_equal(off, 593);
    assert_int_equal(nvfp4_scale_offset_128x4(0, 0, 8, &off), NVFP4_OK);
    assert_int_equal(off, 0);
    assert_int_equal(nvfp4_scale_offset_128x4(127, 7, 8, &off), NVFP4_OK);
    assert_int_equal(off, 512 + 31 * 16 + 3 * 4 + 3);
    assert_int_equal(nvfp4_scale_offset_128x4(128, 0, 8, &off), NVFP4_OK);
    assert_int_equal(off, 2 * 512);
}

static void test_offsets_are_a_bijection(void **state)
{
    (void)state;
    static const int64_t rows_list[] = {1, 31, 32, 33, 127, 128, 129, 300};
    for (int64_t sc = 1; sc <= 13; sc++) {
        for (size_t r = 0; r < sizeof rows_list / sizeof rows_list[0]; r++) {
            int64_t rows = rows_list[r];
            int64_t padded = round_up(rows, 128) * round_up(sc, 4);
            uint8_t *seen = calloc((size_t)padded, 1);
            assert_non_null(seen);
            /* every position of the padded tile, including padding, maps to a distinct byte */
            for (int64_t m = 0; m < round_up(rows, 128); m++)
                for (int64_t k = 0; k < sc; k++) {
                    int64_t off = -1;
                    assert_int_equal(nvfp4_scale_offset_128x4(m, k, sc, &off), NVFP4_OK);
                    assert_int_equal(off, spec_offset(m, k, sc));
                    assert_true(off >= 0 && off < padded);
                    assert_int_equal(seen[off], 0);
                    seen[off] = 1;
                }
            free(seen);
        }
    }
}

static void test_swizzle_round_trip(void **state)
{
    (void)state;
    static const int64_t rows_list[] = {1, 3, 32, 100, 127, 128, 129, 257};
    static const int64_t cols_list[] = {1, 2, 3, 4, 5, 7, 8, 9, 17};
    uint32_t seed = 12345;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
            int64_t rows = rows_list[ri], sc = cols_list[ci];
            int64_t n = rows * sc, padded = round_up(rows, 128) * round_up(sc, 4), size = -1;
            assert_int_equal(nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_128X4, rows, sc * 16, &size),
                             NVFP4_OK);
            assert_int_equal(size, padded);
            assert_int_equal(nvfp4_scales_size(NVFP4_FORMAT_NVFP4, NVFP4_LAYOUT_LINEAR, rows, sc * 16, &size),
                             NVFP4_OK);
            assert_int_equal(size, n);
            uint8_t *lin = malloc((size_t)n), *sw = malloc((size_t)padded + TAIL), *back = malloc((size_t)n + TAIL);
            assert_non_null(lin);
            assert_non_null(sw);
            assert_non_null(back);
            for (int64_t i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                lin[i] = (uint8_t)(1 + (seed >> 24) % 255); /* never 0, so padding is distinguishable */
            }
            memset(sw, CANARY, (size_t)padded + TAIL);
            assert_int_equal(nvfp4_scales_swizzle(lin, rows, sc, sw), NVFP4_OK);
            int64_t nonzero = 0;
            for (int64_t i = 0; i < padded; i++)
                nonzero += sw[i] != 0;
            assert_int_equal(nonzero, n); /* padding is zero, every scale placed once */
            for (int64_t m = 0; m < rows; m++)
                for (int64_t k = 0; k < sc; k++)
                    assert_int_equal(sw[spec_offset(m, k, sc)], lin[m * sc + k]);
            for (int i = 0; i < TAIL; i++)
                assert_int_equal(sw[padded + i], CANARY); /* nothing written past the padded size */
            /* garbage in the padding must not reach the linear scales */
            uint8_t *mark = calloc((size_t)padded, 1);
            assert_non_null(mark);
            for (int64_t m = 0; m < rows; m++)
                for (int64_t k = 0; k < sc; k++)
                    mark[spec_offset(m, k, sc)] = 1;
            for (int64_t i = 0; i < padded; i++)
                if (!mark[i])
                    sw[i] = 0xEE;
            memset(back, CANARY, (size_t)n + TAIL);
            assert_int_equal(nvfp4_scales_unswizzle(sw, rows, sc, back), NVFP4_OK);
            assert_memory_equal(back, lin, (size_t)n);
            for (int i = 0; i < TAIL; i++)
                assert_int_equal(back[n + i], CANARY);
            free(mark);
            free(lin);
            free(sw);
            free(back);
        }
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const int64_t rows_list[] = {1, 2, 127, 128, 129, 1000};
    static const int64_t cols_list[] = {1, 2, 15, 16, 17, 31, 32, 33, 64, 100, 4096};
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
            int64_t rows = rows_list[ri], cols = cols_list[ci], got = -1;
            for (int fmt = 0; fmt < 2; fmt++) {
                int64_t block = fmt == NVFP4_FORMAT_NVFP4 ? 16 : 32, nblk = ceil_div(cols, block);
                assert_int_equal(nvfp4_codes_size(fmt, rows, cols, &got), NVFP4_OK);
                assert_int_equal(got, rows * nblk * block / 2);
                assert_int_equal(nvfp4_scales_size(fmt, NVFP4_LAYOUT_LINEAR, rows, cols, &got), NVFP4_OK);
                assert_int_equal(got, rows * nblk);
                assert_int_equal(nvfp4_scales_size(fmt, NVFP4_LAYOUT_128X4, rows, cols, &got), NVFP4_OK);
                assert_int_equal(got, round_up(rows, 128) * round_up(nblk, 4));
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_offsets_are_a_bijection),
        cmocka_unit_test(test_swizzle_round_trip),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests_name("layout", tests, NULL, NULL);
}
