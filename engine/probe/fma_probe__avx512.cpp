// FMA probe, AVX-512: 12 independent chains of 16-lane FMAs (two FMA ports x 4-cycle latency
// need at least 8 in flight).
#include <immintrin.h>

#include <cstdint>

namespace convengine {

double fma_probe_rounds__avx512(int64_t iterations) {
    constexpr int kChains = 12;
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(static_cast<float>(c));
    const __m512 scale = _mm512_set1_ps(0.999999f);
    const __m512 shift = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], scale, shift);
    }
    // Use the results so that the loop is not optimised away.
    __m512 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
    volatile float sink = _mm512_reduce_add_ps(sum);
    (void)sink;
    return 2.0 * 16 * kChains * static_cast<double>(iterations);
}

}  // namespace convengine
