// SGEMM micro-kernel, 6 x 64, AVX-512 (compiler flags chosen by the file-name suffix).
//
// Register tile: 6 rows x 64 columns of C = 6 x 4 zmm accumulators (24 of the 32 zmm
// registers), 4 for the current row of the packed B micro-panel, 1 for the broadcast A value.
// Each step of k loads the B row (four aligned 64-byte loads) and, for each of the 6 rows,
// broadcasts one packed A value and issues 4 FMAs: 24 FMAs (12 cycles at 2 FMAs/cycle) for 10
// loads. 24 independent accumulators cover the 4-cycle FMA latency on two ports (8 needed)
// three times. No software prefetch in the k loop: the A micro-panel is reused from L1 by every
// call of loop 1 and the hardware prefetchers keep up with the B micro-panel streaming from L2
// (prefetching either, 4 to 16 steps ahead, measured no difference; prefetching the next A
// micro-panel into L1 or L2 during loop 1 neither).
//
// What limits it (benchmarks/gemm_ceiling.cpp, one core, thread CPU time, best of 5, three runs;
// % of a 24-chain FMA-only loop at 208 GFLOP/s, the same as _C.fma_probe):
//     24 FMAs + 6 broadcasts a step, B row kept in registers   209   100%
//     this kernel, panels in L1 (kc = 128)                     175    84%
//     this kernel, B block in L2 (kc = 384, 960 KiB)           176    85%
//     ... with a 2.25 MiB A block and C rows 2048 apart        165    79%
//     sgemm 2048^3 (adds packing, ~5% of the time by perf)     160    75-77% of _C.fma_probe
// The loss is the instruction mix, not the memory hierarchy: on this core every uop that is
// not an FMA, beyond the six broadcasts, costs about a quarter of a cycle (four extra loads of
// any kind, four integer adds: 5-7% each; NOPs and zero idioms: nothing). The B loads and the
// loop counter thus stretch a step past its 12 FMA cycles; measured, a step takes ~14.3 cycles
// (84%), more than these per-uop costs alone account for (~13). Fewer loads per FMA needs more
// accumulators than 32 registers allow: (MR + NR/16) / (MR * NR/16) is 0.42 for 6 x 64, 0.40 for
// 5 x 80, 0.44 for 9 x 48, 0.58 for 14 x 32, and all of these measured within 3% of each other
// in L1 (173-183 GFLOP/s). FMAs with an embedded broadcast ({1to16}) instead of a broadcast
// register are a load each: 106-114 GFLOP/s. An inline-assembly k loop (B loads first or
// spread, unrolled 1, 2 or 4 times, broadcasts in 1 to 4 registers) reached 190 against 178-181
// as a bare loop in L1, but inside this kernel it only matched GCC's schedule (unrolled 4 times:
// 169-174 against 170-173 GFLOP/s, L1 and L2) or lost (once: 165 against 173 with B in L2), so
// the kernel stays in intrinsics; unrolling 8 instead of 4 times gained nothing either.
//
// Why 6 x 64 rather than the 12 x 32 this file replaced (same 24 accumulators): in place, with
// B micro-panels streaming from an L2-resident block and C tiles coming from L3, it ran 7-9%
// faster here (165-167 against 150-155 GFLOP/s, single core): fewer loads per FMA (10 against
// 14 per 24), and a C tile of 6 rows x 256 bytes touches half as many rows (pages) as one of
// 12 rows x 128 bytes.
//
// Contract: engine/gemm/README.md. Only <immintrin.h>/<cstdint> are included and everything but
// init_gemm__avx512() has internal linkage (see elementwise_impl.inc for why).

#include <immintrin.h>

#include <cstdint>

#include "gemm/gemm_kernels.h"

namespace convengine {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 64;

// Lanes [0, count) of one 16-lane vector, count clamped to 0..16.
inline __mmask16 lanes(int count) {
    if (count >= 16) return static_cast<__mmask16>(0xFFFF);
    if (count <= 0) return static_cast<__mmask16>(0);
    return static_cast<__mmask16>((1u << count) - 1u);
}

// Stores one row of the tile (NV vectors; the masks cut off columns >= n).
template <int NV>
inline void store_row(float* c, const __m512* v_in, const __mmask16* mask, const UkrStore* s,
                      const float* bias_row_i) {
    __m512 v[NV];
    const __m512 alpha = _mm512_set1_ps(s->alpha);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) v[j] = _mm512_mul_ps(v_in[j], alpha);
    if (s->beta != 0.0f) {
        const __m512 beta = _mm512_set1_ps(s->beta);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j)
            v[j] = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask[j], c + 16 * j), v[j]);
    }
    if (bias_row_i) {
        const __m512 br = _mm512_set1_ps(*bias_row_i);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) v[j] = _mm512_add_ps(v[j], br);
    }
    if (s->bias_col) {
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j)
            v[j] = _mm512_add_ps(v[j], _mm512_maskz_loadu_ps(mask[j], s->bias_col + 16 * j));
    }
    if (s->relu) {
        // max(0, v) returns its second operand when either is NaN, so NaN stays NaN.
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) v[j] = _mm512_max_ps(zero, v[j]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm512_mask_storeu_ps(c + 16 * j, mask[j], v[j]);
}

// The tile for the first ROWS rows (2, 4 or 6) and the first 16 * NV columns (NV = 1..4) of the
// packed panels: the full kernel is <6, 4>; the smaller ones serve edge tiles without computing
// rows and columns that would be thrown away. The panels keep their MR / NR strides.
template <int ROWS, int NV>
void tile(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
          const UkrStore* s) {
    // Warm the C tile while the k loop runs (it is read and written at the end).
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < NV; ++j)
            _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * j), _MM_HINT_T0);

    __m512 acc[ROWS][NV];
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) bv[j] = _mm512_load_ps(b + 16 * j);
#pragma GCC unroll 6
        for (int i = 0; i < ROWS; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += kMR;
        b += kNR;
    }

    __mmask16 mask[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) mask[j] = lanes(n - 16 * j);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
        if (i < m)
            store_row<NV>(c + i * ldc, acc[i], mask, s, s->bias_row ? s->bias_row + i : nullptr);
    }
}

template <int ROWS>
void tile_rows(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
               const UkrStore* s) {
    if (n > 48) return tile<ROWS, 4>(k, a, b, c, ldc, m, n, s);
    if (n > 32) return tile<ROWS, 3>(k, a, b, c, ldc, m, n, s);
    if (n > 16) return tile<ROWS, 2>(k, a, b, c, ldc, m, n, s);
    return tile<ROWS, 1>(k, a, b, c, ldc, m, n, s);
}

void sgemm_ukr_6x64__avx512(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                            int m, int n, const UkrStore* s) {
    if (m > 4) return tile_rows<6>(k, a, b, c, ldc, m, n, s);
    if (m > 2) return tile_rows<4>(k, a, b, c, ldc, m, n, s);
    return tile_rows<2>(k, a, b, c, ldc, m, n, s);
}

}  // namespace

// Block sizes for this kernel, chosen for the CPU this project runs on: an Intel Xeon of the
// Sapphire Rapids class (avx512_fp16, AMX), 48 KiB 12-way L1d and 2 MiB 16-way L2 per core
// (lscpu, /sys/devices/system/cpu/cpu0/cache), two 512-bit FMA ports. (The issue text assumed a
// Zen 4 with 32 KiB L1d and 1 MiB L2; these are tuned for what is really here.) The loop order
// is README.md's: an A micro-panel stays in L1 while the B micro-panels of a B block stream
// from L2, walking along the rows of C.
//
//  - KC = 384: the A micro-panel, MR x KC = 9 KiB, stays in L1 (a fifth of it) while each B
//    micro-panel streams past from L2 at 256 bytes per 12 cycles; a long KC amortises the C-tile
//    update (24 vector loads and stores per 9216 FMAs). Streaming B from L2 costs little: the
//    kernel runs as fast with a 960 KiB B block as with both panels in L1 (see above). The
//    BLIS-like alternative, a B micro-panel kept in L1 while A micro-panels stream past (loops
//    1 and 2 swapped, KC = 96-128 so that 64 x KC floats fit), measured 139-145 against 151-154
//    GFLOP/s for this order in the same run: the C tiles, walked down the rows, are then read
//    and written three to four times as often.
//  - NC = 640 (a multiple of NR = 64): the B block, KC x NC = 960 KiB, stays in the 2 MiB L2 for
//    a whole pass of loop 2, with room for the A micro-panels and C tiles flowing through.
//    Measured in place (single core, C rows 8 KiB apart): B blocks of 0.75-1.0 MiB ran 164-167
//    GFLOP/s for KC from 256 to 512; 1.25 MiB fell to 161-162, 1.5 MiB to 146-157.
//  - MC = 1536 (a multiple of MR = 6): the A block, MC x KC = 2.25 MiB, lives in L3; a larger MC
//    packs each B block fewer times (ceil(M / MC)), a smaller one keeps the block closer.
//    For M = 2048 (two A blocks of 1026 rows) packing B once instead (MC = 2052) halved the B
//    packing time but made packing A, now a 3 MiB block, as much slower (perf: 5.1% against
//    4.6% of the samples in packing, no measurable change in GFLOP/s).
// Re-measured on 2048^3 (single core, alternating runs): KC x NC of 384 x 640, 512 x 512,
// 256 x 960 and 320 x 768 all ran 153-162 GFLOP/s, inside the run-to-run noise of this shared
// machine.
void init_gemm__avx512(GemmKernels& k) {
    k.ukr = sgemm_ukr_6x64__avx512;
    k.mr = kMR;
    k.nr = kNR;
    k.mc = 1536;
    k.kc = 384;
    k.nc = 640;
}

}  // namespace convengine
