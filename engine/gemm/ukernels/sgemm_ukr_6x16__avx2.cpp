// SGEMM micro-kernel, 6 x 16, AVX2 + FMA (compiler flags chosen by the file-name suffix).
//
// Register tile: 6 rows x 16 columns of C = 6 x 2 ymm accumulators (12 of the 16 ymm registers),
// 2 for the current row of the packed B micro-panel, 1 for the broadcast A value. Each step of k:
// 2 loads of B, 6 broadcasts of A, 12 FMAs (6 cycles at 2 FMAs/cycle); 12 independent
// accumulators cover the 4-cycle FMA latency on two ports (8 needed). The classic BLIS/OpenBLAS
// Haswell shape.
//
// Contract: engine/gemm/README.md. Only <immintrin.h>/<cstdint> are included and everything but
// init_gemm__avx2() has internal linkage (see elementwise_impl.inc for why).

#include <immintrin.h>

#include <cstdint>

#include "gemm/gemm_kernels.h"

namespace convengine {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

// Lane mask for columns [0, count) of one 8-wide vector (count clamped to 0..8).
inline __m256i lane_mask(int count) {
    count = count < 0 ? 0 : (count > 8 ? 8 : count);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
}

inline void store_row(float* c, __m256 v0, __m256 v1, int n, __m256i k0, __m256i k1,
                      const UkrStore* s, const float* bias_row_i) {
    const __m256 alpha = _mm256_set1_ps(s->alpha);
    v0 = _mm256_mul_ps(v0, alpha);
    v1 = _mm256_mul_ps(v1, alpha);
    const bool full = n == kNR;
    if (s->beta != 0.0f) {
        const __m256 beta = _mm256_set1_ps(s->beta);
        const __m256 c0 = full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, k0);
        const __m256 c1 = full ? _mm256_loadu_ps(c + 8) : _mm256_maskload_ps(c + 8, k1);
        v0 = _mm256_fmadd_ps(beta, c0, v0);
        v1 = _mm256_fmadd_ps(beta, c1, v1);
    }
    if (bias_row_i) {
        const __m256 br = _mm256_set1_ps(*bias_row_i);
        v0 = _mm256_add_ps(v0, br);
        v1 = _mm256_add_ps(v1, br);
    }
    if (s->bias_col) {
        const __m256 b0 = full ? _mm256_loadu_ps(s->bias_col) : _mm256_maskload_ps(s->bias_col, k0);
        const __m256 b1 =
            full ? _mm256_loadu_ps(s->bias_col + 8) : _mm256_maskload_ps(s->bias_col + 8, k1);
        v0 = _mm256_add_ps(v0, b0);
        v1 = _mm256_add_ps(v1, b1);
    }
    if (s->relu) {
        // max(0, v) returns its second operand when either is NaN, so NaN stays NaN.
        const __m256 zero = _mm256_setzero_ps();
        v0 = _mm256_max_ps(zero, v0);
        v1 = _mm256_max_ps(zero, v1);
    }
    if (full) {
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
    } else {
        _mm256_maskstore_ps(c, k0, v0);
        _mm256_maskstore_ps(c + 8, k1, v1);
    }
}

void sgemm_ukr_6x16__avx2(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                          int m, int n, const UkrStore* s) {
    for (int i = 0; i < m; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

    __m256 acc0[kMR], acc1[kMR];
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        acc0[i] = _mm256_setzero_ps();
        acc1[i] = _mm256_setzero_ps();
    }

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_load_ps(b);
        const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < kMR; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
        a += kMR;
        b += kNR;
    }

    const __m256i k0 = lane_mask(n);
    const __m256i k1 = lane_mask(n - 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
        if (i < m)
            store_row(c + i * ldc, acc0[i], acc1[i], n, k0, k1, s,
                      s->bias_row ? s->bias_row + i : nullptr);
    }
}

}  // namespace

// Block sizes for this kernel on this machine (Sapphire Rapids class Xeon: 48 KiB 12-way L1d,
// 2 MiB 16-way L2 per core; the Zen 4 figures do not apply here). The AVX2 kernel is the
// fallback for CPUs without AVX-512, tuned for these caches with the loop order of README.md (A
// micro-panel in L1, B block in L2, A block in L3):
//  - KC = 384: the A micro-panel, MR x KC = 9 KiB, stays in L1 while B micro-panels
//    (KC x NR = 24 KiB each) stream past it from L2.
//  - NC = 640 (a multiple of NR = 16): the B block, KC x NC = 960 KiB, about half of L2.
//  - MC = 1536 (a multiple of MR = 6): the A block, MC x KC = 2.25 MiB, in L3.
void init_gemm__avx2(GemmKernels& k) {
    k.ukr = sgemm_ukr_6x16__avx2;
    k.mr = kMR;
    k.nr = kNR;
    k.mc = 1536;
    k.kc = 384;
    k.nc = 640;
}

}  // namespace convengine
