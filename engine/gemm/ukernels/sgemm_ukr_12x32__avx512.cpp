// SGEMM micro-kernel, 12 x 32, AVX-512 (compiler flags chosen by the file-name suffix).
//
// Register tile: 12 rows x 32 columns of C = 12 x 2 zmm accumulators (24 of the 32 zmm
// registers), 2 for the current row of the packed B micro-panel. Each step of k loads the B row
// (two aligned 64-byte loads) and, for each of the 12 rows, broadcasts one packed A value
// straight from memory into an FMA (vfmadd231ps with an embedded {1to16} broadcast): 24 FMAs,
// 2 loads + 12 broadcast loads, i.e. 12 cycles at 2 FMAs/cycle with the load ports 60% busy.
// 24 independent accumulators cover the 4-cycle FMA latency on two ports (8 needed) three times.
// No software prefetch in the k loop: the A micro-panel is reused from L1 by every call of loop
// 1 and the hardware prefetchers keep up with the B micro-panel streaming from L2 (prefetching
// either, 4 to 16 steps ahead, measured no difference).
//
// Contract: engine/gemm/README.md. Only <immintrin.h>/<cstdint> are included and everything but
// init_gemm__avx512() has internal linkage (see elementwise_impl.inc for why).

#include <immintrin.h>

#include <cstdint>

#include "gemm/gemm_kernels.h"

namespace convengine {
namespace {

constexpr int kMR = 12;
constexpr int kNR = 32;

// Stores one row of the tile: two vectors, the second masked (and the first too when n < 16).
inline void store_row(float* c, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1,
                      const UkrStore* s, const float* bias_row_i) {
    const __m512 alpha = _mm512_set1_ps(s->alpha);
    v0 = _mm512_mul_ps(v0, alpha);
    v1 = _mm512_mul_ps(v1, alpha);
    if (s->beta != 0.0f) {
        const __m512 beta = _mm512_set1_ps(s->beta);
        v0 = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m0, c), v0);
        v1 = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m1, c + 16), v1);
    }
    if (bias_row_i) {
        const __m512 br = _mm512_set1_ps(*bias_row_i);
        v0 = _mm512_add_ps(v0, br);
        v1 = _mm512_add_ps(v1, br);
    }
    if (s->bias_col) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, s->bias_col));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, s->bias_col + 16));
    }
    if (s->relu) {
        // max(0, v) returns its second operand when either is NaN, so NaN stays NaN.
        const __m512 zero = _mm512_setzero_ps();
        v0 = _mm512_max_ps(zero, v0);
        v1 = _mm512_max_ps(zero, v1);
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

// The tile for the first ROWS rows (4, 8 or 12) and the first 16 * NV columns (NV = 1 or 2) of
// the packed panels: the full kernel is <12, 2>; the smaller ones serve edge tiles (m <= 8,
// n <= 16) without computing rows and columns that would be thrown away. The packed A panel
// keeps its MR = 12 stride whatever ROWS is.
template <int ROWS, int NV>
inline void tile(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                 const UkrStore* s) {
    // Warm the C tile while the k loop runs (it is read and written at the end).
    for (int i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
        if (NV == 2) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
    }

    __m512 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; ++i) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        const __m512 b0 = _mm512_load_ps(b);
        const __m512 b1 = NV == 2 ? _mm512_load_ps(b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
        for (int i = 0; i < ROWS; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            if (NV == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
        a += kMR;
        b += kNR;
    }

    const __mmask16 m0 = n >= 16 ? static_cast<__mmask16>(0xFFFF)
                                 : static_cast<__mmask16>((1u << n) - 1u);
    const __mmask16 m1 = n >= 32 ? static_cast<__mmask16>(0xFFFF)
                         : n <= 16 ? static_cast<__mmask16>(0)
                                   : static_cast<__mmask16>((1u << (n - 16)) - 1u);
#pragma GCC unroll 12
    for (int i = 0; i < ROWS; ++i) {
        if (i < m)
            store_row(c + i * ldc, acc0[i], acc1[i], m0, m1, s,
                      s->bias_row ? s->bias_row + i : nullptr);
    }
}

void sgemm_ukr_12x32__avx512(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                             int m, int n, const UkrStore* s) {
    if (n > 16) {
        if (m > 8) return tile<12, 2>(k, a, b, c, ldc, m, n, s);
        if (m > 4) return tile<8, 2>(k, a, b, c, ldc, m, n, s);
        return tile<4, 2>(k, a, b, c, ldc, m, n, s);
    }
    if (m > 8) return tile<12, 1>(k, a, b, c, ldc, m, n, s);
    if (m > 4) return tile<8, 1>(k, a, b, c, ldc, m, n, s);
    return tile<4, 1>(k, a, b, c, ldc, m, n, s);
}

}  // namespace

// Block sizes for this kernel, chosen for the CPU this project runs on: an Intel Xeon of the
// Sapphire Rapids class (avx512_fp16, AMX), 48 KiB 12-way L1d and 2 MiB 16-way L2 per core
// (lscpu, /sys/devices/system/cpu/cpu0/cache), two 512-bit FMA ports. (The issue text assumed a
// Zen 4 with 32 KiB L1d and 1 MiB L2; these are tuned for what is really here.) The loop order
// is README.md's: an A micro-panel stays in L1 while the B micro-panels of a B block stream
// from L2, walking along the rows of C.
//
//  - KC = 384: the A micro-panel, MR x KC = 18 KiB, is reused from L1 by every micro-kernel call
//    of loop 1 while one B micro-panel (KC x NR = 48 KiB) streams past it from L2 at 128 bytes
//    per 12 cycles; the longer KC amortises the C-tile update (24 vector loads and stores per
//    9216 FMAs) over more work.
//  - NC = 768 (a multiple of NR = 32): the B block, KC x NC = 1.125 MiB, stays in the 2 MiB L2
//    for a whole pass of loop 2, with room left for the A micro-panels and C tiles flowing
//    through. Measured (12x32 kernel, C rows 8 KiB apart): KC x NC of 1.0-1.2 MiB ran 170-173
//    GFLOP/s in place; 1.5 MiB dropped to 162, 1.9 MiB to 154.
//  - MC = 1536 (a multiple of MR = 12): the A block, MC x KC = 2.25 MiB, lives in L3; a larger
//    MC packs each B block fewer times (ceil(M / MC)), a smaller one keeps the block closer.
void init_gemm__avx512(GemmKernels& k) {
    k.ukr = sgemm_ukr_12x32__avx512;
    k.mr = kMR;
    k.nr = kNR;
    k.mc = 1536;
    k.kc = 384;
    k.nc = 768;
}

}  // namespace convengine
