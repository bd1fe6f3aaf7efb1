/* cuda_backend.cu - the CUDA backend of libnvfp4 (dispatch.h): MAX quantisation (NVFP4 with the
 * exact and ModelOpt recipes, MXFP4 with RCEIL and FLOOR scales) and dequantisation, on device
 * pointers, bit-identical to the CPU backend.
 *
 * Every rounding step calls lib/rounding.h (compiled here as __host__ __device__); the build
 * passes -fmad=false and keeps IEEE division, so each product and quotient is one RN32 operation
 * as on the CPU. Design (docs/CUDA.md):
 *   pass 1  amax_kernel: max |x| bit pattern over finite values and the count of NaN/Inf, reduced
 *           per block and folded into a per-context device word with one atomic per block;
 *   pass 2  quant_kernel: every block of threads first reads the pass-1 result; under the strict
 *           policy with NaN/Inf present it returns at once, so no output byte is written. Otherwise
 *           it derives the global scales from the amax (the same function the CPU calls) and
 *           quantises. A thread owns 8 consecutive elements (one 16-byte load of bf16/f16, two of
 *           f32); the 2 (NVFP4) or 4 (MXFP4) threads of a scale block share the block amax by warp
 *           shuffles. Scales go straight to the linear or the 128×4 position; pad_kernel zeroes the
 *           128×4 padding.
 * Pass 1 is skipped when nothing needs it (saturate policy and a known global scale, or MXFP4).
 * Each call then copies the pass-1 words back and synchronises the stream, so the returned status
 * is final.
 */
#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>

extern "C" {
#include "dispatch.h"
}

namespace {

/* ---- per-context state ------------------------------------------------------------------- */

/* Device words written by the kernels of one call. */
struct dev_words {
    unsigned int amax_bits;      /* max |x| bits over finite inputs */
    unsigned int pad;
    unsigned long long nonfinite; /* count of NaN/Inf inputs */
    unsigned long long bad_scale; /* dequantise: smallest linear index of an undecodable scale */
};

struct cuda_state {
    cudaStream_t stream; /* the caller's stream (NULL: the legacy default stream) */
    int device;          /* device that `words` lives on, −1 before the first call */
    int sms;             /* multiprocessors of that device */
    dev_words *words;    /* cudaMalloc'd */
};

const int kThreads = 256;

/* ---- fast division by a loop-invariant divisor (Granlund–Montgomery) ----------------------- */

struct fast_div {
    uint32_t d, m, s;
};

fast_div make_fast_div(uint32_t d)
{
    fast_div f;
    uint32_t s = 0;
    while ((1ull << s) < d)
        s++;
    f.d = d;
    f.s = s;
    f.m = (uint32_t)(((1ull << 32) * ((1ull << s) - d)) / d + 1);
    return f;
}

__device__ __forceinline__ uint32_t div_fast(uint32_t n, const fast_div &f)
{
    return (uint32_t)(((uint64_t)__umulhi(n, f.m) + n) >> f.s);
}

/* Row and unit-within-row of unit u (units per row `per`): flat (one row) needs no division;
 * otherwise a 32-bit fast division when the unit count is below 2^32. */
__device__ __forceinline__ void split_unit(uint64_t u, bool flat, bool small, const fast_div &f, uint64_t per,
                                           int64_t *row, int64_t *j)
{
    if (flat) {
        *row = 0;
        *j = (int64_t)u;
    } else if (small) {
        uint32_t r = div_fast((uint32_t)u, f);
        *row = r;
        *j = (int64_t)((uint32_t)u - r * f.d);
    } else {
        *row = (int64_t)(u / per);
        *j = (int64_t)(u % per);
    }
}

/* ---- element loads ----------------------------------------------------------------------- */

template <int DT> __device__ __forceinline__ float to_float(uint16_t h)
{
    return DT == NVFP4_DTYPE_F16 ? nvfp4i_f16_to_float(h) : nvfp4i_bf16_to_float(h);
}

/* Loads the 8 elements of row `row` starting at col0 (zeros past cols). vec: the 8 elements are
 * inside the row and their address is 16-byte aligned. */
template <int DT>
__device__ __forceinline__ void load8(const void *src, int64_t ld, int64_t cols, int64_t row, int64_t col0, bool vec,
                                      float x[8])
{
    if (DT == NVFP4_DTYPE_F32) {
        const float *p = (const float *)src + row * ld + col0;
        if (vec) {
            float4 a = __ldg((const float4 *)p), b = __ldg((const float4 *)p + 1);
            x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
            x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++)
                x[i] = col0 + i < cols ? p[i] : 0.0f;
        }
    } else {
        const uint16_t *p = (const uint16_t *)src + row * ld + col0;
        if (vec) {
            uint4 v = __ldg((const uint4 *)p);
            uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                x[2 * i] = to_float<DT>((uint16_t)(w[i] & 0xFFFFu));
                x[2 * i + 1] = to_float<DT>((uint16_t)(w[i] >> 16));
            }
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++)
                x[i] = col0 + i < cols ? to_float<DT>(p[i]) : 0.0f;
        }
    }
}

/* Raw source words of N consecutive elements of one row (W = N·size/4 words; 16-bit elements two
 * to a word, the lower-addressed one in the low half); elements past cols read as zero bits (+0).
 * vec: all N are inside the row and 16-byte aligned. Keeping the words raw until they are used
 * lets the loads of the next block stay in flight while the current one is computed. */
template <int DT, int N> struct raw_n {
    static constexpr int W = DT == NVFP4_DTYPE_F32 ? N : N / 2;
};

template <int DT, int N>
__device__ __forceinline__ void load_raw(const void *src, int64_t ld, int64_t cols, int64_t row, int64_t col0, bool vec,
                                         uint32_t (&r)[raw_n<DT, N>::W])
{
    constexpr int W = raw_n<DT, N>::W;
    constexpr int es = DT == NVFP4_DTYPE_F32 ? 4 : 2;
    const char *base = (const char *)src + (row * ld + col0) * es;
    if (vec) {
#pragma unroll
        for (int i = 0; i < W / 4; i++) {
            const uint4 v = __ldg((const uint4 *)base + i);
            r[4 * i] = v.x;
            r[4 * i + 1] = v.y;
            r[4 * i + 2] = v.z;
            r[4 * i + 3] = v.w;
        }
    } else if (DT == NVFP4_DTYPE_F32) {
#pragma unroll
        for (int i = 0; i < N; i++)
            r[i] = col0 + i < cols ? __ldg((const unsigned int *)base + i) : 0u;
    } else {
#pragma unroll
        for (int i = 0; i < W; i++) {
            const uint32_t lo = col0 + 2 * i < cols ? __ldg((const unsigned short *)base + 2 * i) : 0u;
            const uint32_t hi = col0 + 2 * i + 1 < cols ? __ldg((const unsigned short *)base + 2 * i + 1) : 0u;
            r[i] = lo | hi << 16;
        }
    }
}

template <int DT, int N> __device__ __forceinline__ void raw_to_float(const uint32_t (&r)[raw_n<DT, N>::W], float (&x)[N])
{
#pragma unroll
    for (int i = 0; i < raw_n<DT, N>::W; i++) {
        if (DT == NVFP4_DTYPE_F32) {
            x[i] = nvfp4i_u2f(r[i]);
        } else {
            x[2 * i] = to_float<DT>((uint16_t)(r[i] & 0xFFFFu));
            x[2 * i + 1] = to_float<DT>((uint16_t)(r[i] >> 16));
        }
    }
}

/* ---- pass 1: amax and non-finite count ---------------------------------------------------- */

struct amax_params {
    const void *src;
    int64_t rows, cols, ld;
    uint64_t units; /* rows · ceil(cols/8) */
    uint64_t per;   /* ceil(cols/8) */
    fast_div fd;
    bool small, vec;
    dev_words *words;
};

/* Units (8 elements) per thread and group: 4 × 16 bytes of 16-bit data, 2 × 32 bytes of f32. */
template <int DT> struct amax_group {
    static constexpr int U = DT == NVFP4_DTYPE_F32 ? 2 : 4;
};
const int kAmaxUnroll = 4; /* the larger U, for sizing the grid */

template <int DT>
__device__ __forceinline__ void amax_issue(const amax_params &p, uint64_t u0, uint64_t stride,
                                           uint32_t (&r)[amax_group<DT>::U][raw_n<DT, 8>::W])
{
#pragma unroll
    for (int t = 0; t < amax_group<DT>::U; t++) {
        uint64_t u = u0 + (uint64_t)t * stride;
        const bool in = u < p.units;
        u = in ? u : 0; /* a valid address; its words are ignored */
        int64_t row, j;
        split_unit(u, p.rows == 1, p.small, p.fd, p.per, &row, &j);
        const int64_t col0 = j * 8;
        load_raw<DT, 8>(p.src, p.ld, in ? p.cols : 0, row, col0, in && p.vec && col0 + 8 <= p.cols, r[t]);
    }
}

/* max of each unsigned 16-bit half (one instruction from sm_90 on) */
__device__ __forceinline__ uint32_t vmax_u16x2(uint32_t a, uint32_t b)
{
    uint32_t r;
    asm("max.u16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Max |x| bit pattern over finite elements and the count of NaN/Inf. 16-bit types compare their
 * own bit patterns (monotonic in |x|, as the CPU does), two to a word: a half is NaN/Inf when its
 * exponent field is all ones, which adding one unit to the masked exponent carries into the
 * half's top bit; those halves are dropped from the max and counted. The packed maximum is
 * split and converted at the end (amax_finish). */
template <int DT>
__device__ __forceinline__ void amax_fold(const uint32_t (&r)[amax_group<DT>::U][raw_n<DT, 8>::W], uint32_t *m, uint32_t *nf)
{
#pragma unroll
    for (int t = 0; t < amax_group<DT>::U; t++)
#pragma unroll
        for (int i = 0; i < raw_n<DT, 8>::W; i++) {
            const uint32_t w = r[t][i];
            if (DT == NVFP4_DTYPE_F32) {
                const uint32_t a = w & 0x7FFFFFFFu;
                const bool fin = a < 0x7F800000u;
                *m = fin && a > *m ? a : *m;
                *nf += !fin;
            } else {
                const uint32_t exp2 = DT == NVFP4_DTYPE_F16 ? 0x7C007C00u : 0x7F807F80u;
                const uint32_t one2 = DT == NVFP4_DTYPE_F16 ? 0x04000400u : 0x00800080u;
                const uint32_t nb = ((w & exp2) + one2) & 0x80008000u; /* top bit of each non-finite half */
                const uint32_t drop = nb | (nb - (nb >> 15));            /* 0xFFFF in each non-finite half */
                *m = vmax_u16x2(*m, w & 0x7FFF7FFFu & ~drop);
                *nf += __popc(nb);
            }
        }
}

/* The thread's maximum as float bits. */
template <int DT> __device__ __forceinline__ uint32_t amax_finish(uint32_t m)
{
    if (DT == NVFP4_DTYPE_F32)
        return m;
    const uint32_t lo = m & 0xFFFFu, hi = m >> 16;
    return nvfp4i_f2u(to_float<DT>((uint16_t)(lo > hi ? lo : hi)));
}

template <int DT> __global__ void __launch_bounds__(kThreads) amax_kernel(amax_params p)
{
    constexpr int U = amax_group<DT>::U;
    uint32_t m = 0, nf = 0;
    const uint64_t stride = (uint64_t)gridDim.x * kThreads;
    uint64_t u = (uint64_t)blockIdx.x * kThreads + threadIdx.x;
    uint32_t ra[U][raw_n<DT, 8>::W], rb[U][raw_n<DT, 8>::W];
    if (u < p.units) {
        /* two groups in flight: issue the next one, then fold the one that has arrived */
        amax_issue<DT>(p, u, stride, ra);
        for (;;) {
            uint64_t un = u + U * stride;
            bool more = un < p.units;
            amax_issue<DT>(p, more ? un : u, stride, rb);
            amax_fold<DT>(ra, &m, &nf);
            if (!more)
                break;
            u = un;
            un = u + U * stride;
            more = un < p.units;
            amax_issue<DT>(p, more ? un : u, stride, ra);
            amax_fold<DT>(rb, &m, &nf);
            if (!more)
                break;
            u = un;
        }
    }
    m = amax_finish<DT>(m);
    m = __reduce_max_sync(0xFFFFFFFFu, m);
    nf = __reduce_add_sync(0xFFFFFFFFu, nf);
    __shared__ uint32_t sm[kThreads / 32];
    __shared__ uint32_t sn[kThreads / 32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        sm[warp] = m;
        sn[warp] = nf;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long n = 0;
        for (int w = 0; w < kThreads / 32; w++) {
            m = sm[w] > m ? sm[w] : m;
            n += sn[w];
        }
        if (m)
            atomicMax(&p.words->amax_bits, m);
        if (n)
            atomicAdd(&p.words->nonfinite, n);
    }
}

/* ---- pass 2: quantise -------------------------------------------------------------------- */

enum { KIND_EXACT = 0, KIND_MODELOPT = 1, KIND_MX = 2 };

struct quant_params {
    const void *src;
    int64_t rows, cols, ld;
    int64_t nblk, row_bytes, k4; /* blocks per row, code bytes per row, ceil(nblk/4) */
    uint64_t units;              /* rows · nblk: one thread per scale block */
    fast_div fd;
    bool small, vec, codes_vec, swizzled, strict, floor_mode;
    float user_sdec; /* > 0: the caller's global decode scale */
    float emax;      /* the method's E4M3 ceiling M */
    const dev_words *words; /* pass-1 results, or NULL in one-pass mode */
    uint8_t *codes, *scales;
    float *global_scale;
};

/* The global scales, as cpu_backend.c's cpu_run_method() chooses them. */
__device__ __forceinline__ void global_scales(int kind, float user_sdec, float amax, float emax, float *s_enc,
                                              float *s_dec)
{
    if (kind == KIND_MX) {
        *s_enc = 1.0f;
        *s_dec = 1.0f;
    } else if (user_sdec > 0.0f) {
        *s_dec = user_sdec;
        float e = 1.0f / user_sdec;
        *s_enc = e <= NVFP4I_FLT_MAX ? e : NVFP4I_FLT_MAX;
    } else if (kind == KIND_MODELOPT) {
        float d = amax > 0.0f ? amax / (6.0f * emax) : 1.0f;
        if (!(d > 0.0f))
            d = 1.0f;
        *s_dec = d;
        *s_enc = 1.0f / d;
    } else {
        nvfp4i_global_scales(amax, emax, s_enc, s_dec);
    }
}

/* True when the pass-1 results say the call must write nothing (strict policy, NaN/Inf seen). */
__device__ __forceinline__ bool blocked(const dev_words *w, bool strict)
{
    return w && strict && w->nonfinite != 0;
}

/* Block amax over finite values (the CPU's nvfp4i_block_amax). FINITE: the tensor is known to hold
 * no NaN/Inf, so a float max of |x| gives the same value. */
template <bool FINITE, int B> __device__ __forceinline__ float block_amax(const float (&x)[B])
{
    if (FINITE) {
        float a = 0.0f;
#pragma unroll
        for (int i = 0; i < B; i++)
            a = fmaxf(a, fabsf(x[i]));
        return a;
    }
    uint32_t m = 0;
#pragma unroll
    for (int i = 0; i < B; i++) {
        uint32_t a = nvfp4i_f2u(x[i]) & 0x7FFFFFFFu;
        m = a < 0x7F800000u && a > m ? a : m;
    }
    return nvfp4i_u2f(m);
}

/* One scale block (method_max.c's max_block): the scale byte, and the codes packed two per byte
 * into out[B/8] words. FINITE: nvfp4i_encode(x, inv) is E2M1(RN32(x·inv)) for finite x, and the
 * product is never NaN, so the NaN-free core of the E2M1 rule applies. */
template <int KIND, bool FINITE, int B>
__device__ __forceinline__ uint8_t quant_block(const float (&x)[B], float pre, float s_dec, float six_dec,
                                               bool floor_mode, uint32_t (&out)[B / 8])
{
    const float a = block_amax<FINITE, B>(x);
    uint8_t s;
    if (KIND == KIND_MODELOPT) {
        /* ModelOpt's export: S = RN32(a / RN32(6·s_dec)), 1 for zero blocks,
         * code = E2M1(RN32(x / RN32(f(S)·s_dec))) without a sign for ±0 quotients */
        float S = a / six_dec;
        if (S == 0.0f)
            S = 1.0f;
        s = nvfp4i_e4m3_from_float(S);
        const float den = nvfp4i_e4m3_to_float(s) * s_dec;
#pragma unroll
        for (int w = 0; w < B / 8; w++) {
            uint32_t packed = 0;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float y = x[8 * w + i] / den;
                uint8_t c = nvfp4i_e2m1_from_float(y);
                packed |= (uint32_t)(y == 0.0f ? (uint8_t)(c & 0x7u) : c) << (4 * i);
            }
            out[w] = packed;
        }
        return s;
    }
    float inv;
    if (KIND == KIND_MX) {
        s = nvfp4i_e8m0_from_amax(a, floor_mode);
        inv = nvfp4i_e8m0_inverse(s);
    } else {
        s = nvfp4i_max_scale(a, pre);
        inv = nvfp4i_block_inv(a, nvfp4i_e4m3_to_float(s), s_dec);
    }
#pragma unroll
    for (int w = 0; w < B / 8; w++) {
        uint32_t packed = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            /* finite x and inv: x·inv is never NaN */
            const uint32_t c = FINITE ? nvfp4i_e2m1_code_nonnan(x[8 * w + i] * inv) : nvfp4i_encode(x[8 * w + i], inv);
            packed |= c << (4 * i);
        }
        out[w] = packed;
    }
    return s;
}

/* The block of unit u: its row and block index, and its raw words (u must be < units). */
template <int DT, int B>
__device__ __forceinline__ void quant_issue(const quant_params &p, uint64_t u, int64_t *row, int64_t *k,
                                            uint32_t (&r)[raw_n<DT, B>::W])
{
    split_unit(u, p.rows == 1, p.small, p.fd, (uint64_t)p.nblk, row, k);
    const int64_t col0 = *k * B;
    load_raw<DT, B>(p.src, p.ld, p.cols, *row, col0, p.vec && col0 + B <= p.cols, r);
}

template <int DT, int KIND, int B>
__device__ __forceinline__ void quant_store(const quant_params &p, bool finite, float pre, float s_dec, float six_dec,
                                            int64_t row, int64_t k, const uint32_t (&r)[raw_n<DT, B>::W])
{
    float x[B];
    raw_to_float<DT, B>(r, x);
    uint32_t w[B / 8];
    const uint8_t s = finite ? quant_block<KIND, true, B>(x, pre, s_dec, six_dec, p.floor_mode, w)
                             : quant_block<KIND, false, B>(x, pre, s_dec, six_dec, p.floor_mode, w);
    /* SPEC §2: padding codes are 0. The ModelOpt recipe divides by f(S)·s_dec, which is 0 in an
     * underflowed block, and would code the zero padding as 0/0 = NaN → 0x7 (the CPU backend
     * clears the same nibbles). */
    const int64_t valid = p.cols - k * B;
    if (valid < B)
        for (int i = valid > 0 ? (int)valid : 0; i < B; i++)
            w[i / 8] &= ~(0xFu << (4 * (i % 8)));
    uint8_t *c = p.codes + row * p.row_bytes + k * (B / 2);
    if (p.codes_vec) {
        if constexpr (B == 16)
            *(uint2 *)c = make_uint2(w[0], w[1]);
        else
            *(uint4 *)c = make_uint4(w[0], w[1], w[2], w[3]);
    } else {
#pragma unroll
        for (int i = 0; i < B / 2; i++)
            c[i] = (uint8_t)(w[i / 4] >> (8 * (i % 4)));
    }
    p.scales[p.swizzled ? nvfp4i_offset_128x4(row, k, p.k4) : row * p.nblk + k] = s;
}

template <int DT, int KIND> __global__ void __launch_bounds__(kThreads) quant_kernel(quant_params p)
{
    if (blocked(p.words, p.strict))
        return;
    constexpr int B = KIND == KIND_MX ? 32 : 16;
    const float amax = p.words ? nvfp4i_u2f(p.words->amax_bits) : 0.0f;
    /* pass 1 ran and saw no NaN/Inf: the fast path (same results, fewer operations) */
    const bool finite = p.words && p.words->nonfinite == 0;
    float s_enc, s_dec;
    global_scales(KIND, p.user_sdec, amax, p.emax, &s_enc, &s_dec);
    if (blockIdx.x == 0 && threadIdx.x == 0)
        *p.global_scale = s_dec;
    const float pre = nvfp4i_max_pre(s_enc);
    const float six_dec = 6.0f * s_dec;

    /* Two blocks in flight per thread: the next block's loads are issued before the current one
     * is converted and encoded (grid-stride order; the last issue re-reads a valid block). */
    const uint64_t stride = (uint64_t)gridDim.x * kThreads;
    uint64_t u = (uint64_t)blockIdx.x * kThreads + threadIdx.x;
    if (u >= p.units)
        return;
    uint32_t ra[raw_n<DT, B>::W], rb[raw_n<DT, B>::W];
    int64_t row_a, k_a, row_b, k_b;
    quant_issue<DT, B>(p, u, &row_a, &k_a, ra);
    for (;;) {
        uint64_t un = u + stride;
        bool more = un < p.units;
        quant_issue<DT, B>(p, more ? un : u, &row_b, &k_b, rb);
        quant_store<DT, KIND, B>(p, finite, pre, s_dec, six_dec, row_a, k_a, ra);
        if (!more)
            break;
        u = un;
        un = u + stride;
        more = un < p.units;
        quant_issue<DT, B>(p, more ? un : u, &row_a, &k_a, ra);
        quant_store<DT, KIND, B>(p, finite, pre, s_dec, six_dec, row_b, k_b, rb);
        if (!more)
            break;
        u = un;
    }
}

/* Zeroes the padding of a 128×4 scale buffer: rows [rows, R) × [0, 4·k4) and [0, rows) × [nblk, 4·k4). */
struct pad_params {
    int64_t rows, nblk, k4, rows_padded;
    bool strict;
    const dev_words *words;
    uint8_t *scales;
};

__global__ void __launch_bounds__(kThreads) pad_kernel(pad_params p)
{
    if (blocked(p.words, p.strict))
        return;
    const int64_t C = p.k4 * 4, extra = C - p.nblk;
    const int64_t n_a = (p.rows_padded - p.rows) * C, n_b = p.rows * extra;
    const int64_t stride = (int64_t)gridDim.x * kThreads;
    for (int64_t i = (int64_t)blockIdx.x * kThreads + threadIdx.x; i < n_a + n_b; i += stride) {
        int64_t m, k;
        if (i < n_a) {
            m = p.rows + i / C;
            k = i % C;
        } else {
            m = (i - n_a) / extra;
            k = p.nblk + (i - n_a) % extra;
        }
        p.scales[nvfp4i_offset_128x4(m, k, p.k4)] = 0;
    }
}

/* ---- dequantise -------------------------------------------------------------------------- */

struct deq_params {
    const uint8_t *codes, *scales;
    float global_scale;
    int64_t rows, cols, ld, nblk, row_bytes, k4;
    uint64_t units; /* rows · nblk: one thread per scale block */
    fast_div fd;
    bool small, swizzled, mx, codes_vec, vec;
    void *dst;
    dev_words *words;
};

/* Finds the first (row-major) undecodable scale byte: NaN E4M3 (0x7F/0xFF), any sign bit, or E8M0 0xFF. */
__global__ void __launch_bounds__(kThreads) check_scales_kernel(deq_params p, fast_div fb, bool small_b)
{
    const uint64_t n = (uint64_t)p.rows * (uint64_t)p.nblk;
    const uint64_t stride = (uint64_t)gridDim.x * kThreads;
    for (uint64_t i = (uint64_t)blockIdx.x * kThreads + threadIdx.x; i < n; i += stride) {
        uint8_t b;
        if (p.swizzled) {
            int64_t r, k;
            split_unit(i, false, small_b, fb, (uint64_t)p.nblk, &r, &k);
            b = p.scales[nvfp4i_offset_128x4(r, k, p.k4)];
        } else {
            b = p.scales[i];
        }
        if (p.mx ? b == 0xFF : b >= 0x7F)
            atomicMin(&p.words->bad_scale, (unsigned long long)i);
    }
}

template <int DT> __device__ __forceinline__ void store_elem(void *dst, int64_t i, float v)
{
    if (DT == NVFP4_DTYPE_F32)
        ((float *)dst)[i] = v;
    else if (DT == NVFP4_DTYPE_F16)
        ((uint16_t *)dst)[i] = nvfp4i_float_to_f16(v);
    else
        ((uint16_t *)dst)[i] = nvfp4i_float_to_bf16(v);
}

/* A block's codes (B/2 bytes as B/8 words) and scale byte. */
template <int B>
__device__ __forceinline__ void deq_issue(const deq_params &p, uint64_t u, int64_t *row, int64_t *k,
                                          uint32_t (&cw)[B / 8], uint32_t *sb)
{
    split_unit(u, p.rows == 1, p.small, p.fd, (uint64_t)p.nblk, row, k);
    const uint8_t *c = p.codes + *row * p.row_bytes + *k * (B / 2);
    if (p.codes_vec) {
        if constexpr (B == 16) {
            const uint2 v = __ldg((const uint2 *)c);
            cw[0] = v.x;
            cw[1] = v.y;
        } else {
            const uint4 v = __ldg((const uint4 *)c);
            cw[0] = v.x;
            cw[1] = v.y;
            cw[2] = v.z;
            cw[3] = v.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < B / 8; i++)
            cw[i] = (uint32_t)__ldg(c + 4 * i) | (uint32_t)__ldg(c + 4 * i + 1) << 8 |
                    (uint32_t)__ldg(c + 4 * i + 2) << 16 | (uint32_t)__ldg(c + 4 * i + 3) << 24;
    }
    *sb = __ldg(p.scales + (p.swizzled ? nvfp4i_offset_128x4(*row, *k, p.k4) : *row * p.nblk + *k));
}

template <int DT, int B>
__device__ __forceinline__ void deq_store(const deq_params &p, int64_t row, int64_t k, const uint32_t (&cw)[B / 8],
                                          uint32_t sb)
{
    const float sv = B == 32 ? nvfp4i_e8m0_to_float((uint8_t)sb) : nvfp4i_e4m3_to_float((uint8_t)sb);
    const int64_t col0 = k * B;
    const int64_t o = row * p.ld + col0;
#pragma unroll
    for (int g = 0; g < B / 8; g++) {
        float v[8];
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = nvfp4i_decode((uint8_t)((cw[g] >> (4 * i)) & 0xFu), sv, p.global_scale);
        const int64_t c0 = col0 + 8 * g;
        if (p.vec && c0 + 8 <= p.cols) {
            if (DT == NVFP4_DTYPE_F32) {
                float4 *d = (float4 *)((float *)p.dst + o + 8 * g);
                __stcs(d, make_float4(v[0], v[1], v[2], v[3]));
                __stcs(d + 1, make_float4(v[4], v[5], v[6], v[7]));
            } else {
                uint32_t w[4];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    uint16_t lo = DT == NVFP4_DTYPE_F16 ? nvfp4i_float_to_f16(v[2 * i]) : nvfp4i_float_to_bf16(v[2 * i]);
                    uint16_t hi = DT == NVFP4_DTYPE_F16 ? nvfp4i_float_to_f16(v[2 * i + 1])
                                                        : nvfp4i_float_to_bf16(v[2 * i + 1]);
                    w[i] = (uint32_t)lo | (uint32_t)hi << 16;
                }
                __stcs((uint4 *)((uint16_t *)p.dst + o + 8 * g), make_uint4(w[0], w[1], w[2], w[3]));
            }
        } else {
            const int64_t n = p.cols - c0;
#pragma unroll
            for (int i = 0; i < 8; i++)
                if (i < n)
                    store_elem<DT>(p.dst, o + 8 * g + i, v[i]);
        }
    }
}

template <int DT, int B> __global__ void __launch_bounds__(kThreads) deq_kernel(deq_params p)
{
    if (p.words->bad_scale != ~0ull)
        return;
    const uint64_t stride = (uint64_t)gridDim.x * kThreads;
    uint64_t u = (uint64_t)blockIdx.x * kThreads + threadIdx.x;
    if (u >= p.units)
        return;
    uint32_t ca[B / 8], cb[B / 8], sa, sb;
    int64_t row_a, k_a, row_b, k_b;
    deq_issue<B>(p, u, &row_a, &k_a, ca, &sa);
    for (;;) {
        uint64_t un = u + stride;
        bool more = un < p.units;
        deq_issue<B>(p, more ? un : u, &row_b, &k_b, cb, &sb);
        deq_store<DT, B>(p, row_a, k_a, ca, sa);
        if (!more)
            break;
        u = un;
        un = u + stride;
        more = un < p.units;
        deq_issue<B>(p, more ? un : u, &row_a, &k_a, ca, &sa);
        deq_store<DT, B>(p, row_b, k_b, cb, sb);
        if (!more)
            break;
        u = un;
    }
}

/* ---- host side --------------------------------------------------------------------------- */

/* Makes ctx->cuda_device current for the length of a call and restores the caller's device. */
struct device_guard {
    int prev;
    bool restore;
    device_guard() : prev(0), restore(false) {}
    ~device_guard()
    {
        if (restore)
            cudaSetDevice(prev);
    }
};

nvfp4_status cuda_error(nvfp4_context *ctx, cudaError_t e, const char *what)
{
    cudaGetLastError(); /* clear a non-sticky error so that it does not leak into the next call */
    if (e == cudaErrorMemoryAllocation)
        return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "CUDA %s: out of device memory", what);
    return nvfp4i_fail(ctx, NVFP4_ERR_BACKEND, "CUDA %s failed: %s (%s)", what, cudaGetErrorName(e),
                       cudaGetErrorString(e));
}

/* The context's state, created on first use (host memory through the context's allocator). */
cuda_state *state_of(nvfp4_context *ctx)
{
    cuda_state *st = (cuda_state *)ctx->backend_state;
    if (!st) {
        st = (cuda_state *)nvfp4i_alloc(ctx, sizeof *st);
        if (!st)
            return NULL;
        st->stream = NULL;
        st->device = -1;
        st->sms = 0;
        st->words = NULL;
        ctx->backend_state = st;
    }
    return st;
}

/* Enters a call: state, device, stream check and device words. */
nvfp4_status enter(nvfp4_context *ctx, device_guard *g, cuda_state **out)
{
    cuda_state *st = state_of(ctx);
    if (!st)
        return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate the CUDA backend state");
    cudaError_t e = cudaGetDevice(&g->prev);
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "cudaGetDevice");
    if (g->prev != ctx->cuda_device) {
        e = cudaSetDevice(ctx->cuda_device);
        if (e != cudaSuccess)
            return cuda_error(ctx, e, "cudaSetDevice");
        g->restore = true;
    }
    if (st->words && st->device != ctx->cuda_device) {
        /* the context moved to another device: free the words on the old one */
        cudaSetDevice(st->device);
        cudaFree(st->words);
        cudaSetDevice(ctx->cuda_device);
        st->words = NULL;
    }
    if (!st->words) {
        e = cudaDeviceGetAttribute(&st->sms, cudaDevAttrMultiProcessorCount, ctx->cuda_device);
        if (e != cudaSuccess)
            return cuda_error(ctx, e, "cudaDeviceGetAttribute");
        e = cudaMalloc((void **)&st->words, sizeof(dev_words));
        if (e != cudaSuccess) {
            st->words = NULL;
            return cuda_error(ctx, e, "cudaMalloc of the backend's device words");
        }
        st->device = ctx->cuda_device;
    }
    e = cudaStreamQuery(st->stream);
    if (e != cudaSuccess && e != cudaErrorNotReady)
        return cuda_error(ctx, e, "stream check (cudaStreamQuery)");
    *out = st;
    return NVFP4_OK;
}

/* Enough blocks to fill every multiprocessor at the kernel's occupancy, fewer for small work
 * (grid-stride loops cover the rest). */
template <typename K> unsigned grid_for(const cuda_state *st, uint64_t work, K kernel)
{
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0) != cudaSuccess || per_sm < 1) {
        cudaGetLastError();
        per_sm = 4;
    }
    uint64_t want = (work + kThreads - 1) / kThreads;
    uint64_t cap = (uint64_t)(st->sms > 0 ? st->sms : 1) * (uint64_t)per_sm;
    if (want < 1)
        want = 1;
    return (unsigned)(want < cap ? want : cap);
}

bool aligned(const void *p, size_t a) { return ((uintptr_t)p % a) == 0; }

template <int DT> void launch_amax(const cuda_state *st, cudaStream_t s, const amax_params &p)
{
    amax_kernel<DT><<<grid_for(st, (p.units + kAmaxUnroll - 1) / kAmaxUnroll, amax_kernel<DT>), kThreads, 0, s>>>(p);
}

template <int DT, int KIND> void launch_quant_kind(const cuda_state *st, cudaStream_t s, const quant_params &p)
{
    quant_kernel<DT, KIND><<<grid_for(st, p.units, quant_kernel<DT, KIND>), kThreads, 0, s>>>(p);
}

template <int DT> void launch_quant(int kind, const cuda_state *st, cudaStream_t s, const quant_params &p)
{
    if (kind == KIND_MX)
        launch_quant_kind<DT, KIND_MX>(st, s, p);
    else if (kind == KIND_MODELOPT)
        launch_quant_kind<DT, KIND_MODELOPT>(st, s, p);
    else
        launch_quant_kind<DT, KIND_EXACT>(st, s, p);
}

nvfp4_status cuda_quantize(nvfp4i_job *job, const nvfp4i_method *m, nvfp4i_stats_acc *acc, float *global_scale)
{
    nvfp4_context *ctx = job->ctx;
    const nvfp4_quantizer *q = job->q;
    (void)acc;
    if (m != &nvfp4i_method_max)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED,
                           "the CUDA backend implements the MAX method only (asked for '%s'); use a CPU context",
                           m->name);
    if (job->h)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED,
                           "the CUDA backend does not take importance weights; use a CPU context");
    if (job->want_stats)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED,
                           "the CUDA backend collects no statistics; set NVFP4_CTX_COLLECT_STATS to 0");

    device_guard g;
    cuda_state *st;
    nvfp4_status s = enter(ctx, &g, &st);
    if (s)
        return s;

    const int64_t rows = job->src.rows, cols = job->src.cols, ld = job->src.ld;
    const int dt = job->src.dtype;
    const size_t esize = nvfp4i_dtype_size(dt);
    const int kind = job->block == NVFP4I_BLOCK_MXFP4 ? KIND_MX
                     : q->recipe == NVFP4_RECIPE_MODELOPT ? KIND_MODELOPT
                                                          : KIND_EXACT;
    const bool strict = q->nonfinite == NVFP4_NONFINITE_STRICT;
    const bool need_amax = kind != KIND_MX && !(q->global_scale > 0.0);
    const bool two_pass = strict || need_amax;
    const bool base16 = aligned(job->src.data, 16);
    const bool vec = base16 && ((uint64_t)ld * esize) % 16 == 0;
    /* A contiguous tensor (ld == cols) is one long row to the amax pass; to the quantise pass too
     * when its rows hold whole blocks and the scales are linear (the 128×4 offsets need rows). */
    const bool dense = ld == cols;
    const bool flat_q = dense && cols % job->block == 0 && q->layout == NVFP4_LAYOUT_LINEAR;
    cudaStream_t stream = st->stream;
    cudaError_t e;

    if (two_pass) {
        e = cudaMemsetAsync(st->words, 0, sizeof(dev_words), stream);
        if (e != cudaSuccess)
            return cuda_error(ctx, e, "cudaMemsetAsync");
        amax_params ap;
        ap.src = job->src.data;
        ap.rows = dense ? 1 : rows;
        ap.cols = dense ? rows * cols : cols;
        ap.ld = dense ? rows * cols : ld;
        ap.per = (uint64_t)((ap.cols + 7) / 8);
        ap.units = (uint64_t)ap.rows * ap.per;
        ap.small = ap.units < (1ull << 32);
        ap.fd = make_fast_div(ap.small && !dense ? (uint32_t)ap.per : 1u);
        ap.vec = dense ? base16 : vec;
        ap.words = st->words;
        switch (dt) {
        case NVFP4_DTYPE_F32: launch_amax<NVFP4_DTYPE_F32>(st, stream, ap); break;
        case NVFP4_DTYPE_F16: launch_amax<NVFP4_DTYPE_F16>(st, stream, ap); break;
        default: launch_amax<NVFP4_DTYPE_BF16>(st, stream, ap); break;
        }
        e = cudaGetLastError();
        if (e != cudaSuccess)
            return cuda_error(ctx, e, "amax kernel launch");
    }

    quant_params qp;
    qp.src = job->src.data;
    qp.rows = flat_q ? 1 : rows;
    qp.cols = flat_q ? rows * cols : cols;
    qp.ld = flat_q ? rows * cols : ld;
    qp.nblk = flat_q ? rows * job->nblk : job->nblk;
    qp.row_bytes = qp.nblk * job->block / 2;
    qp.k4 = (job->nblk + 3) / 4;
    qp.units = (uint64_t)rows * (uint64_t)job->nblk;
    qp.small = qp.units < (1ull << 32);
    qp.fd = make_fast_div(qp.small && !flat_q ? (uint32_t)job->nblk : 1u);
    qp.vec = flat_q ? base16 : vec;
    qp.codes_vec = aligned(job->codes, (size_t)job->block / 2);
    qp.swizzled = q->layout == NVFP4_LAYOUT_128X4;
    qp.strict = strict;
    qp.floor_mode = q->e8m0_mode == NVFP4_E8M0_FLOOR;
    qp.user_sdec = kind != KIND_MX && q->global_scale > 0.0 ? (float)q->global_scale : 0.0f;
    qp.emax = m->global_emax(q);
    qp.words = two_pass ? st->words : NULL;
    qp.codes = job->codes;
    qp.scales = job->scales;
    qp.global_scale = global_scale;
    switch (dt) {
    case NVFP4_DTYPE_F32: launch_quant<NVFP4_DTYPE_F32>(kind, st, stream, qp); break;
    case NVFP4_DTYPE_F16: launch_quant<NVFP4_DTYPE_F16>(kind, st, stream, qp); break;
    default: launch_quant<NVFP4_DTYPE_BF16>(kind, st, stream, qp); break;
    }
    e = cudaGetLastError();
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "quantise kernel launch");

    if (qp.swizzled) {
        pad_params pp;
        pp.rows = rows;
        pp.nblk = job->nblk;
        pp.k4 = qp.k4;
        pp.rows_padded = (rows + 127) / 128 * 128;
        pp.strict = strict;
        pp.words = qp.words;
        pp.scales = job->scales;
        const uint64_t n = (uint64_t)(pp.rows_padded - rows) * (uint64_t)(pp.k4 * 4) +
                           (uint64_t)rows * (uint64_t)(pp.k4 * 4 - job->nblk);
        if (n) {
            pad_kernel<<<grid_for(st, n, pad_kernel), kThreads, 0, stream>>>(pp);
            e = cudaGetLastError();
            if (e != cudaSuccess)
                return cuda_error(ctx, e, "padding kernel launch");
        }
    }

    dev_words w;
    memset(&w, 0, sizeof w);
    if (two_pass) {
        e = cudaMemcpyAsync(&w, st->words, sizeof w, cudaMemcpyDeviceToHost, stream);
        if (e != cudaSuccess)
            return cuda_error(ctx, e, "cudaMemcpyAsync");
    }
    e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "cudaStreamSynchronize");
    job->nonfinite = (int64_t)w.nonfinite;
    job->amax = nvfp4i_u2f(w.amax_bits);
    if (strict && w.nonfinite)
        return nvfp4i_fail(ctx, NVFP4_ERR_NONFINITE, "input holds %lld NaN/Inf values (strict policy)",
                           (long long)w.nonfinite);
    return NVFP4_OK;
}

template <int DT> void launch_deq(const cuda_state *st, cudaStream_t s, const deq_params &p)
{
    if (p.mx)
        deq_kernel<DT, 32><<<grid_for(st, p.units, deq_kernel<DT, 32>), kThreads, 0, s>>>(p);
    else
        deq_kernel<DT, 16><<<grid_for(st, p.units, deq_kernel<DT, 16>), kThreads, 0, s>>>(p);
}

nvfp4_status cuda_dequantize(nvfp4_context *ctx, const nvfp4i_deq *d)
{
    device_guard g;
    cuda_state *st;
    nvfp4_status s = enter(ctx, &g, &st);
    if (s)
        return s;
    cudaStream_t stream = st->stream;
    deq_params p;
    p.codes = d->codes;
    p.scales = d->scales;
    p.global_scale = d->global_scale;
    /* contiguous, whole blocks per row, linear scales: one long row (no row/column division) */
    const bool flat = d->ld == d->cols && d->cols % d->block == 0 && d->layout == NVFP4_LAYOUT_LINEAR;
    p.rows = flat ? 1 : d->rows;
    p.cols = flat ? d->rows * d->cols : d->cols;
    p.ld = flat ? p.cols : d->ld;
    p.nblk = flat ? d->rows * d->nblk : d->nblk;
    p.row_bytes = p.nblk * d->block / 2;
    p.k4 = (d->nblk + 3) / 4;
    p.units = (uint64_t)d->rows * (uint64_t)d->nblk;
    p.small = p.units < (1ull << 32);
    p.fd = make_fast_div(p.small && !flat ? (uint32_t)d->nblk : 1u);
    p.swizzled = d->layout == NVFP4_LAYOUT_128X4;
    p.mx = d->format == NVFP4_FORMAT_MXFP4;
    p.codes_vec = aligned(d->codes, (size_t)d->block / 2);
    p.vec = aligned(d->dst, 16) && (flat || ((uint64_t)d->ld * nvfp4i_dtype_size(d->dst_dtype)) % 16 == 0);
    p.dst = d->dst;
    p.words = st->words;

    cudaError_t e = cudaMemsetAsync(st->words, 0xFF, sizeof(dev_words), stream);
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "cudaMemsetAsync");
    const uint64_t nscales = (uint64_t)d->rows * (uint64_t)d->nblk;
    const bool small_b = nscales < (1ull << 32);
    check_scales_kernel<<<grid_for(st, nscales, check_scales_kernel), kThreads, 0, stream>>>(p, make_fast_div(small_b ? (uint32_t)d->nblk : 1u),
                                                                      small_b);
    e = cudaGetLastError();
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "scale check kernel launch");
    switch (d->dst_dtype) {
    case NVFP4_DTYPE_F32: launch_deq<NVFP4_DTYPE_F32>(st, stream, p); break;
    case NVFP4_DTYPE_F16: launch_deq<NVFP4_DTYPE_F16>(st, stream, p); break;
    default: launch_deq<NVFP4_DTYPE_BF16>(st, stream, p); break;
    }
    e = cudaGetLastError();
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "dequantise kernel launch");
    dev_words w;
    e = cudaMemcpyAsync(&w, st->words, sizeof w, cudaMemcpyDeviceToHost, stream);
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "cudaMemcpyAsync");
    e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess)
        return cuda_error(ctx, e, "cudaStreamSynchronize");
    if (w.bad_scale != ~0ull) {
        const int64_t i = (int64_t)w.bad_scale, r = i / d->nblk, k = i % d->nblk;
        uint8_t b = 0;
        const int64_t off = p.swizzled ? nvfp4i_offset_128x4(r, k, p.k4) : i;
        if (cudaMemcpy(&b, d->scales + off, 1, cudaMemcpyDeviceToHost) != cudaSuccess)
            cudaGetLastError();
        return nvfp4i_fail(ctx, NVFP4_ERR_INVALID_SCALE, "scale byte 0x%02X at row %lld, block %lld cannot be decoded",
                           b, (long long)r, (long long)k);
    }
    return NVFP4_OK;
}

} /* namespace */

extern "C" {

const nvfp4i_backend_ops nvfp4i_cuda_ops = {cuda_quantize, cuda_dequantize};

int nvfp4i_cuda_available(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

void nvfp4i_backend_release(nvfp4_context *ctx)
{
    cuda_state *st = (cuda_state *)ctx->backend_state;
    if (!st)
        return;
    if (st->words) {
        int prev = 0;
        bool have_prev = cudaGetDevice(&prev) == cudaSuccess;
        if (cudaSetDevice(st->device) == cudaSuccess)
            cudaFree(st->words);
        if (have_prev)
            cudaSetDevice(prev);
        cudaGetLastError();
    }
    nvfp4i_free(ctx, st);
    ctx->backend_state = NULL;
}

nvfp4_status nvfp4_context_set_cuda_stream(nvfp4_context *ctx, void *stream)
{
    if (!ctx)
        return NVFP4_ERR_NULL_POINTER;
    if (ctx->backend != NVFP4_BACKEND_CUDA)
        return nvfp4i_fail(ctx, NVFP4_ERR_UNSUPPORTED, "the context does not use the CUDA backend");
    cuda_state *st = state_of(ctx);
    if (!st)
        return nvfp4i_fail(ctx, NVFP4_ERR_OUT_OF_MEMORY, "cannot allocate the CUDA backend state");
    st->stream = (cudaStream_t)stream;
    nvfp4i_clear_error(ctx);
    return NVFP4_OK;
}

nvfp4_status nvfp4_context_get_cuda_stream(const nvfp4_context *ctx, void **stream)
{
    if (!ctx || !stream)
        return NVFP4_ERR_NULL_POINTER;
    if (ctx->backend != NVFP4_BACKEND_CUDA)
        return NVFP4_ERR_UNSUPPORTED;
    const cuda_state *st = (const cuda_state *)ctx->backend_state;
    *stream = st ? (void *)st->stream : NULL;
    return NVFP4_OK;
}

} /* extern "C" */
