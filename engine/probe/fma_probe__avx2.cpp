// FMA probe, AVX2+FMA: 12 independent chains of 8-lane FMAs.
#include <immintrin.h>

#include <cstdint>

namespace convengine {

double fma_probe_rounds__avx2(int64_t iterations) {
    constexpr int kChains = 12;
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(static_cast<float>(c));
    const __m256 scale = _mm256_set1_ps(0.999999f);
    const __m256 shift = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], scale, shift);
    }
    __m256 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, sum);
    volatile float sink = lanes[0];
    (void)sink;
    return 2.0 * 8 * kChains * static_cast<double>(iterations);
}

}  // namespace convengine
