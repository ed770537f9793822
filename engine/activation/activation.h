// Activation entry points on contiguous float32 buffers, forward and backward.
//
// The element-wise ones split the buffer into chunks spread over the engine's threads; softmax
// and log_softmax see the tensor as (outer, dim, inner) with the softmax taken along `dim`
// (inner = 1: contiguous rows; otherwise columns of the inner dims, processed in blocks).
// Backward passes take PyTorch's saved tensor: the input x or the output y, as named.
// `out` may be the same buffer as an input (in place), never a partial overlap.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

enum class GeluApproximation { none, tanh };

Status leaky_relu(const float* x, float* out, int64_t n, float negative_slope);
Status leaky_relu_backward(const float* grad, const float* x, float* out, int64_t n,
                           float negative_slope);
Status elu(const float* x, float* out, int64_t n, float alpha);
Status elu_backward(const float* grad, const float* x, float* out, int64_t n, float alpha);
Status gelu(const float* x, float* out, int64_t n, GeluApproximation approximate);
Status gelu_backward(const float* grad, const float* x, float* out, int64_t n,
                     GeluApproximation approximate);
Status sigmoid(const float* x, float* out, int64_t n);
Status sigmoid_backward(const float* grad, const float* y, float* out, int64_t n);
Status tanh(const float* x, float* out, int64_t n);
Status tanh_backward(const float* grad, const float* y, float* out, int64_t n);

// x, out: (outer, dim, inner), C-contiguous; log selects log_softmax.
Status softmax(const float* x, float* out, int64_t outer, int64_t dim, int64_t inner, bool log);
Status softmax_backward(const float* grad, const float* y, float* out, int64_t outer,
                        int64_t dim, int64_t inner, bool log);

}  // namespace convengine
