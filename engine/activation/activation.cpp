#include "activation/activation.h"

#include "activation/activation_kernels.h"
#include "core/kernel_table.h"
#include "core/threading.h"

namespace convengine {

namespace {

// Work is cut into chunks of this many elements (as the element-wise kernels do); a chunk is
// the unit of threading.
constexpr int64_t kChunk = 1 << 13;

template <typename Body>
void for_each_chunk(int64_t n, Body body) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    const int threads = threads_for_elementwise(n);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kChunk;
        const int64_t len = n - begin < kChunk ? n - begin : kChunk;
        body(begin, len);
    }
}

Status check_length(int64_t n, const char* message) {
    return n < 0 ? Status::invalid(message) : Status::success();
}

using Unary = void (*)(const float*, float*, int64_t);
using Binary = void (*)(const float*, const float*, float*, int64_t);

Status run_unary(Unary kernel, const float* x, float* out, int64_t n) {
    if (Status s = check_length(n, "activation: length must be >= 0"); !s.ok()) return s;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(x + i, out + i, len); });
    return Status::success();
}

Status run_binary(Binary kernel, const float* a, const float* b, float* out, int64_t n) {
    if (Status s = check_length(n, "activation backward: length must be >= 0"); !s.ok()) return s;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(a + i, b + i, out + i, len); });
    return Status::success();
}

Status check_softmax_shape(int64_t outer, int64_t dim, int64_t inner) {
    if (outer < 0 || dim < 0 || inner < 0)
        return Status::invalid("softmax: outer, dim and inner sizes must be >= 0");
    if (dim > 0 && inner > 0 && outer > (int64_t(1) << 62) / dim / inner)
        return Status::invalid("softmax: the tensor is too large");
    return Status::success();
}

// Runs body(item) for item in [0, items), each item touching about `work_per_item` elements.
template <typename Body>
void parallel_items(int64_t items, int64_t work_per_item, Body body) {
    int threads = threads_for_elementwise(items * work_per_item);
    if (threads > items) threads = static_cast<int>(items);
    if (threads < 1) threads = 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t i = 0; i < items; ++i) body(i);
}

}  // namespace

Status leaky_relu(const float* x, float* out, int64_t n, float negative_slope) {
    if (Status s = check_length(n, "leaky_relu: length must be >= 0"); !s.ok()) return s;
    auto kernel = kernels().activation.leaky_relu;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(x + i, out + i, len, negative_slope); });
    return Status::success();
}

Status leaky_relu_backward(const float* grad, const float* x, float* out, int64_t n,
                           float negative_slope) {
    if (Status s = check_length(n, "leaky_relu_backward: length must be >= 0"); !s.ok()) return s;
    auto kernel = kernels().activation.leaky_relu_backward;
    for_each_chunk(n, [&](int64_t i, int64_t len) {
        kernel(grad + i, x + i, out + i, len, negative_slope);
    });
    return Status::success();
}

Status elu(const float* x, float* out, int64_t n, float alpha) {
    if (Status s = check_length(n, "elu: length must be >= 0"); !s.ok()) return s;
    auto kernel = kernels().activation.elu;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(x + i, out + i, len, alpha); });
    return Status::success();
}

Status elu_backward(const float* grad, const float* x, float* out, int64_t n, float alpha) {
    if (Status s = check_length(n, "elu_backward: length must be >= 0"); !s.ok()) return s;
    auto kernel = kernels().activation.elu_backward;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(grad + i, x + i, out + i, len, alpha); });
    return Status::success();
}

Status gelu(const float* x, float* out, int64_t n, GeluApproximation approximate) {
    const ActivationKernels& k = kernels().activation;
    return run_unary(approximate == GeluApproximation::tanh ? k.gelu_tanh : k.gelu, x, out, n);
}

Status gelu_backward(const float* grad, const float* x, float* out, int64_t n,
                     GeluApproximation approximate) {
    const ActivationKernels& k = kernels().activation;
    return run_binary(approximate == GeluApproximation::tanh ? k.gelu_tanh_backward
                                                             : k.gelu_backward,
                      grad, x, out, n);
}

Status sigmoid(const float* x, float* out, int64_t n) {
    return run_unary(kernels().activation.sigmoid, x, out, n);
}

Status sigmoid_backward(const float* grad, const float* y, float* out, int64_t n) {
    return run_binary(kernels().activation.sigmoid_backward, grad, y, out, n);
}

Status tanh(const float* x, float* out, int64_t n) {
    return run_unary(kernels().activation.tanh, x, out, n);
}

Status tanh_backward(const float* grad, const float* y, float* out, int64_t n) {
    return run_binary(kernels().activation.tanh_backward, grad, y, out, n);
}

// inner == 1: one item per row. Otherwise one item per (outer index, block of at most
// kSoftmaxColumnBlock inner columns).
Status softmax(const float* x, float* out, int64_t outer, int64_t dim, int64_t inner, bool log) {
    if (Status s = check_softmax_shape(outer, dim, inner); !s.ok()) return s;
    if (outer == 0 || dim == 0 || inner == 0) return Status::success();
    const ActivationKernels& k = kernels().activation;
    if (inner == 1) {
        auto kernel = k.softmax_row;
        parallel_items(outer, dim, [&](int64_t r) { kernel(x + r * dim, out + r * dim, dim, log); });
        return Status::success();
    }
    auto kernel = k.softmax_columns;
    const int64_t blocks = (inner + kSoftmaxColumnBlock - 1) / kSoftmaxColumnBlock;
    parallel_items(outer * blocks, dim * kSoftmaxColumnBlock, [&](int64_t item) {
        const int64_t o = item / blocks, j = (item % blocks) * kSoftmaxColumnBlock;
        const int64_t width = inner - j < kSoftmaxColumnBlock ? inner - j : kSoftmaxColumnBlock;
        const int64_t at = o * dim * inner + j;
        kernel(x + at, out + at, dim, width, inner, log);
    });
    return Status::success();
}

Status softmax_backward(const float* grad, const float* y, float* out, int64_t outer,
                        int64_t dim, int64_t inner, bool log) {
    if (Status s = check_softmax_shape(outer, dim, inner); !s.ok()) return s;
    if (outer == 0 || dim == 0 || inner == 0) return Status::success();
    const ActivationKernels& k = kernels().activation;
    if (inner == 1) {
        auto kernel = k.softmax_row_backward;
        parallel_items(outer, dim, [&](int64_t r) {
            kernel(grad + r * dim, y + r * dim, out + r * dim, dim, log);
        });
        return Status::success();
    }
    auto kernel = k.softmax_columns_backward;
    const int64_t blocks = (inner + kSoftmaxColumnBlock - 1) / kSoftmaxColumnBlock;
    parallel_items(outer * blocks, dim * kSoftmaxColumnBlock, [&](int64_t item) {
        const int64_t o = item / blocks, j = (item % blocks) * kSoftmaxColumnBlock;
        const int64_t width = inner - j < kSoftmaxColumnBlock ? inner - j : kSoftmaxColumnBlock;
        const int64_t at = o * dim * inner + j;
        kernel(grad + at, y + at, out + at, dim, width, inner, log);
    });
    return Status::success();
}

}  // namespace convengine
