// FMA probe, baseline x86-64: SSE has no FMA, so each chain step is a multiply and an add
// (2 FLOPs per lane, as an FMA counts).
#include <emmintrin.h>

#include <cstdint>

namespace convengine {

double fma_probe_rounds__ref(int64_t iterations) {
    constexpr int kChains = 12;
    __m128 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm_set1_ps(static_cast<float>(c));
    const __m128 scale = _mm_set1_ps(0.999999f);
    const __m128 shift = _mm_set1_ps(1e-7f);
    for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], scale), shift);
    }
    __m128 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm_add_ps(sum, acc[c]);
    volatile float sink = _mm_cvtss_f32(sum);
    (void)sink;
    return 2.0 * 4 * kChains * static_cast<double>(iterations);
}

}  // namespace convengine
