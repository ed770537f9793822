// Activation micro-kernels: one table entry per kernel, filled once per ISA.
//
// The element-wise entries run serially over one contiguous chunk; activation.cpp splits arrays
// into chunks and spreads them over threads. The same source (activation_impl.inc) is compiled
// once per ISA with that ISA's flags, so every variant computes the same thing in the same order.
// Backward kernels take what PyTorch's do: the input x (leaky_relu, elu, gelu) or the output y
// (sigmoid, tanh, softmax, log_softmax).
#pragma once

#include <cstdint>

namespace convengine {

// Softmax kernels process at most this many columns at once (see softmax_columns).
constexpr int64_t kSoftmaxColumnBlock = 256;

struct ActivationKernels {
    // out = x > 0 ? x : slope * x
    void (*leaky_relu)(const float* x, float* out, int64_t n, float slope);
    // out = x > 0 ? grad : slope * grad
    void (*leaky_relu_backward)(const float* grad, const float* x, float* out, int64_t n,
                                float slope);
    // out = x > 0 ? x : alpha * expm1(x)
    void (*elu)(const float* x, float* out, int64_t n, float alpha);
    // out = x > 0 ? grad : grad * alpha * exp(x)
    void (*elu_backward)(const float* grad, const float* x, float* out, int64_t n, float alpha);
    // out = x * Phi(x), Phi the standard normal CDF (GELU, approximate='none')
    void (*gelu)(const float* x, float* out, int64_t n);
    // out = grad * (Phi(x) + x * phi(x))
    void (*gelu_backward)(const float* grad, const float* x, float* out, int64_t n);
    // out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (approximate='tanh'),
    // computed as x * sigmoid(2u) so that it stays accurate where 1 + tanh(u) cancels
    void (*gelu_tanh)(const float* x, float* out, int64_t n);
    void (*gelu_tanh_backward)(const float* grad, const float* x, float* out, int64_t n);
    // out = 1 / (1 + exp(-x)); backward: out = grad * y * (1 - y)
    void (*sigmoid)(const float* x, float* out, int64_t n);
    void (*sigmoid_backward)(const float* grad, const float* y, float* out, int64_t n);
    // out = tanh(x); backward: out = grad * (1 - y^2)
    void (*tanh)(const float* x, float* out, int64_t n);
    void (*tanh_backward)(const float* grad, const float* y, float* out, int64_t n);
    // Softmax (log_softmax when `log`) of one contiguous row of n >= 1 values.
    void (*softmax_row)(const float* x, float* out, int64_t n, bool log);
    // Its gradient from the output y: softmax: y * (grad - sum(grad * y));
    // log_softmax: grad - exp(y) * sum(grad).
    void (*softmax_row_backward)(const float* grad, const float* y, float* out, int64_t n,
                                 bool log);
    // Softmax along a strided dim: `dim` rows, `stride` floats apart, of `width` contiguous
    // columns (1 <= width <= kSoftmaxColumnBlock); each column is one softmax.
    void (*softmax_columns)(const float* x, float* out, int64_t dim, int64_t width,
                            int64_t stride, bool log);
    void (*softmax_columns_backward)(const float* grad, const float* y, float* out, int64_t dim,
                                     int64_t width, int64_t stride, bool log);
};

void init_activation__ref(ActivationKernels& k);
void init_activation__avx2(ActivationKernels& k);
void init_activation__avx512(ActivationKernels& k);

}  // namespace convengine
