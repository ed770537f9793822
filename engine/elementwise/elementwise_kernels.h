// Element-wise and reduction micro-kernels: one table entry per kernel, filled once per ISA.
//
// Each entry runs serially over one contiguous chunk; elementwise.cpp splits arrays into chunks
// and spreads them over threads. The same source (elementwise_impl.inc) is compiled once per ISA
// with that ISA's flags, so every variant computes the same thing in the same order.
#pragma once

#include <cstdint>

namespace convengine {

struct ElementwiseKernels {
    // out[i] = a[i] (op) b[i]
    void (*add)(const float* a, const float* b, float* out, int64_t n);
    void (*sub)(const float* a, const float* b, float* out, int64_t n);
    void (*mul)(const float* a, const float* b, float* out, int64_t n);
    void (*div)(const float* a, const float* b, float* out, int64_t n);
    // y[i] += alpha * x[i]
    void (*axpy)(float alpha, const float* x, float* y, int64_t n);
    // out[i] = max(x[i], 0); NaN stays NaN
    void (*relu)(const float* x, float* out, int64_t n);
    // out[i] = x[i] > 0 ? grad[i] : 0
    void (*relu_backward)(const float* grad, const float* x, float* out, int64_t n);
    // out[i] = exp(x[i]) within 2 ulp, with inf, 0, subnormal and NaN results where IEEE has them
    void (*exp)(const float* x, float* out, int64_t n);
    // sum of x[i], accumulated in double
    double (*sum)(const float* x, int64_t n);
    // sum of (x[i] - mean)^2, accumulated in double
    double (*sum_squared_deviation)(const float* x, int64_t n, double mean);
    // largest / smallest x[i]; NaN if any x[i] is NaN; n >= 1
    float (*max)(const float* x, int64_t n);
    float (*min)(const float* x, int64_t n);
};

void init_elementwise__ref(ElementwiseKernels& k);
void init_elementwise__avx2(ElementwiseKernels& k);
void init_elementwise__avx512(ElementwiseKernels& k);

}  // namespace convengine
