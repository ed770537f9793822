// Ceilings of the AVX-512 SGEMM micro-kernel, layer by layer: how fast the 6 x 64 kernel runs
// with its panels in L1, with the B block in L2, with the A block and C as large as in a 2048^3
// GEMM, against loops with the kernel's instruction mix minus parts of it. Single thread, timed
// by the thread's CPU time (other processes sharing the core do not inflate it; they still
// evict its caches, so take the best of several runs). Not part of the build; from the
// repository root:
//
//   g++ -O3 -std=c++17 -Iengine -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma
//       -mprefer-vector-width=512 -fno-math-errno -fno-trapping-math
//       benchmarks/gemm_ceiling.cpp engine/gemm/ukernels/sgemm_ukr_6x64__avx512.cpp -o /tmp/ceil
//   /tmp/ceil
//
// Rows (GFLOP/s, best of 5 runs of ~0.2 s each):
//   fma only          24 independent FMA chains, registers only: the FMA peak (what
//                     _C.fma_probe measures, with 12 chains)
//   fma + broadcast   the kernel's k loop without the B loads (B row kept in registers): 24 FMAs
//                     and 6 broadcast loads per step
//   ukr L1            the registered micro-kernel, kc = 128: A and B micro-panels in L1
//   ukr L2            kc = 384, a 960 KiB B block (10 micro-panels) streamed from L2, one A
//                     micro-panel in L1 (loops 1 and 2 of the macro-kernel, C in L1)
//   ukr in place      as ukr L2, with a 2.25 MiB A block (256 micro-panels, from L3) and C rows
//                     2048 floats apart: the macro-kernel's memory traffic without the packing
#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "gemm/gemm_kernels.h"

namespace convengine {
void init_gemm__avx512(GemmKernels& k);
}

namespace {

using convengine::GemmKernels;
using convengine::UkrStore;

double thread_seconds() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Best GFLOP/s of `round` (which returns its FLOPs) over 5 runs of about 0.2 s. Rounds should
// take 100 us or more: reading the thread's CPU clock is a system call.
template <typename F>
double best_gflops(F round) {
    double best = 0.0;
    for (int run = 0; run < 5; ++run) {
        const double start = thread_seconds();
        double flops = 0.0;
        while (thread_seconds() - start < 0.2) flops += round();
        const double rate = flops / (thread_seconds() - start) / 1e9;
        if (rate > best) best = rate;
    }
    return best;
}

float* filled(int64_t count, float value) {
    const int64_t bytes = ((count * 4 + (2 << 20) - 1) / (2 << 20)) * (2 << 20);
    auto* p = static_cast<float*>(std::aligned_alloc(2 << 20, static_cast<size_t>(bytes)));
    for (int64_t i = 0; i < count; ++i) p[i] = value;
    return p;
}

// 24 accumulators x `steps` FMAs with register operands only.
__attribute__((noinline)) void fma_only(int64_t steps, float* out) {
    __m512 acc[24];
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    for (int i = 0; i < 24; ++i) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

// The micro-kernel's k loop with the B row held in registers: 6 broadcasts and 24 FMAs a step.
__attribute__((noinline)) void fma_broadcast(int64_t steps, const float* a, const float* b,
                                             float* out) {
    __m512 acc[6][4];
    __m512 bv[4];
    for (int j = 0; j < 4; ++j) bv[j] = _mm512_load_ps(b + 16 * j);
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 6
        for (int i = 0; i < 6; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
        }
        a += 6;
    }
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 4; ++j) _mm512_storeu_ps(out + 64 * i + 16 * j, acc[i][j]);
}

// Calls the micro-kernel for every pair of `a_panels` A and `b_panels` B micro-panels (B inner,
// as loop 1 of the macro-kernel), C tiles at row stride ldc; `repeats` times.
double ukr_round(const GemmKernels& g, int64_t kc, int a_panels, int b_panels, const float* a,
                 const float* b, float* c, int64_t ldc, int repeats) {
    const UkrStore store{1.0f, 1.0f, nullptr, nullptr, 0};
    for (int r = 0; r < repeats; ++r)
        for (int ia = 0; ia < a_panels; ++ia)
            for (int ib = 0; ib < b_panels; ++ib)
                g.ukr(kc, a + ia * kc * g.mr, b + ib * kc * g.nr, c + ia * g.mr * ldc + ib * g.nr,
                      ldc, g.mr, g.nr, &store);
    return 2.0 * g.mr * g.nr * static_cast<double>(kc) * a_panels * b_panels * repeats;
}

}  // namespace

int main() {
    GemmKernels g{};
    convengine::init_gemm__avx512(g);
    if (g.mr != 6 || g.nr != 64) {
        std::printf("this benchmark expects the 6 x 64 kernel\n");
        return 1;
    }
    float* out = filled(24 * 16, 0.0f);
    const int64_t kc = 384;
    float* a = filled(256 * kc * g.mr, 1e-3f);
    float* b = filled(10 * kc * g.nr, 1e-3f);
    float* c = filled(256 * 6 * 2048 + 640, 0.0f);

    const double fma = best_gflops([&] {
        fma_only(32768, out);
        return 2.0 * 16 * 24 * 32768;
    });
    const double fma_bc = best_gflops([&] {
        for (int r = 0; r < 256; ++r) fma_broadcast(128, a, b, out);
        return 2.0 * 16 * 24 * 128 * 256;
    });
    const double l1 = best_gflops([&] { return ukr_round(g, 128, 1, 1, a, b, c, 64, 256); });
    const double l2 = best_gflops([&] { return ukr_round(g, kc, 1, 10, a, b, c, 640, 16); });
    const double in_place =
        best_gflops([&] { return ukr_round(g, kc, 256, 10, a, b, c, 2048, 1); });

    std::printf("fma only          %6.1f GFLOP/s\n", fma);
    std::printf("fma + broadcast   %6.1f GFLOP/s  %5.1f%%\n", fma_bc, 100 * fma_bc / fma);
    std::printf("ukr L1            %6.1f GFLOP/s  %5.1f%%\n", l1, 100 * l1 / fma);
    std::printf("ukr L2            %6.1f GFLOP/s  %5.1f%%\n", l2, 100 * l2 / fma);
    std::printf("ukr in place      %6.1f GFLOP/s  %5.1f%%\n", in_place, 100 * in_place / fma);
    std::printf("(%% of the fma-only loop)\n");
    return 0;
}
