// SGEMM micro-kernel, 4 x 8, scalar reference (baseline x86-64 flags).
//
// The slow, obvious path every other micro-kernel is tested against: plain loops over the
// packed panels (contract in engine/gemm/README.md). The compiler may vectorise the j loops with
// SSE2, which changes nothing in the arithmetic (one multiply-add per (i, j, p), in p order).
//
// As in every ISA-variant file, everything but init_gemm__ref() has internal linkage.

#include <cstdint>

#include "gemm/gemm_kernels.h"

namespace convengine {
namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

void sgemm_ukr_4x8__ref(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int m,
                        int n, const UkrStore* s) {
    float acc[kMR][kNR] = {};
    for (int64_t p = 0; p < k; ++p) {
        for (int i = 0; i < kMR; ++i) {
            const float ai = a[p * kMR + i];
            for (int j = 0; j < kNR; ++j) acc[i][j] += ai * b[p * kNR + j];
        }
    }
    for (int i = 0; i < m; ++i) {
        float* crow = c + i * ldc;
        for (int j = 0; j < n; ++j) {
            float v = s->alpha * acc[i][j];
            if (s->beta != 0.0f) v += s->beta * crow[j];
            if (s->bias_row) v += s->bias_row[i];
            if (s->bias_col) v += s->bias_col[j];
            if (s->relu) v = v < 0.0f ? 0.0f : v;  // NaN stays NaN
            crow[j] = v;
        }
    }
}

}  // namespace

// Block sizes for the reference kernel. It is the correctness oracle, not a fast path, so they
// are only sensible, not tuned (loop order of README.md): the 4 x KC A micro-panel (4 KiB with
// KC = 256) stays in the 48 KiB L1d, the KC x NC = 256 x 1024 B block (1 MiB) in the 2 MiB L2,
// and the MC x KC = 512 x 256 A block (512 KiB) in L3.
void init_gemm__ref(GemmKernels& k) {
    k.ukr = sgemm_ukr_4x8__ref;
    k.mr = kMR;
    k.nr = kNR;
    k.mc = 512;
    k.kc = 256;
    k.nc = 1024;
}

}  // namespace convengine
