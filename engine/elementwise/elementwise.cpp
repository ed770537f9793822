#include "elementwise/elementwise.h"

#include <cstddef>
#include <vector>

#include "core/kernel_table.h"
#include "core/threading.h"

namespace convengine {

namespace {

// Work is cut into chunks of this many elements (fits L1 with room for two inputs and an
// output); a chunk is the unit both of threading and of partial sums in reductions.
constexpr int64_t kChunk = 1 << 13;

int64_t chunk_count(int64_t n) { return (n + kChunk - 1) / kChunk; }

// Runs body(begin, length) over every chunk of [0, n), in parallel when it pays off.
template <typename Body>
void for_each_chunk(int64_t n, Body body) {
    const int64_t chunks = chunk_count(n);
    const int threads = threads_for_elementwise(n);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kChunk;
        const int64_t len = n - begin < kChunk ? n - begin : kChunk;
        body(begin, len);
    }
}

// Computes one partial result per chunk and returns them in chunk order.
template <typename T, typename Body>
std::vector<T> chunk_partials(int64_t n, Body body) {
    std::vector<T> partials(static_cast<size_t>(chunk_count(n)));
    for_each_chunk(n, [&](int64_t begin, int64_t len) { partials[begin / kChunk] = body(begin, len); });
    return partials;
}

Status check_length(int64_t n) {
    return n < 0 ? Status::invalid("element-wise kernel: length must be >= 0") : Status::success();
}

}  // namespace

Status binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
    if (Status s = check_length(n); !s.ok()) return s;
    const ElementwiseKernels& k = kernels().elementwise;
    void (*kernel)(const float*, const float*, float*, int64_t) = nullptr;
    switch (op) {
        case BinaryOp::add: kernel = k.add; break;
        case BinaryOp::sub: kernel = k.sub; break;
        case BinaryOp::mul: kernel = k.mul; break;
        case BinaryOp::div: kernel = k.div; break;
    }
    if (kernel == nullptr) return Status::invalid("binary: unknown operation");
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(a + i, b + i, out + i, len); });
    return Status::success();
}

Status axpy(float alpha, const float* x, float* y, int64_t n) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.axpy;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(alpha, x + i, y + i, len); });
    return Status::success();
}

Status relu(const float* x, float* out, int64_t n) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.relu;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(x + i, out + i, len); });
    return Status::success();
}

Status relu_backward(const float* grad, const float* x, float* out, int64_t n) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.relu_backward;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(grad + i, x + i, out + i, len); });
    return Status::success();
}

Status exp(const float* x, float* out, int64_t n) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.exp;
    for_each_chunk(n, [&](int64_t i, int64_t len) { kernel(x + i, out + i, len); });
    return Status::success();
}

Status sum(const float* x, int64_t n, double* out) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.sum;
    double total = 0.0;
    for (double p : chunk_partials<double>(n, [&](int64_t i, int64_t len) { return kernel(x + i, len); }))
        total += p;
    *out = total;
    return Status::success();
}

Status sum_squared_deviation(const float* x, int64_t n, double mean, double* out) {
    if (Status s = check_length(n); !s.ok()) return s;
    auto kernel = kernels().elementwise.sum_squared_deviation;
    double total = 0.0;
    for (double p : chunk_partials<double>(n, [&](int64_t i, int64_t len) { return kernel(x + i, len, mean); }))
        total += p;
    *out = total;
    return Status::success();
}

namespace {

// max and min share everything but the kernel and the comparison that combines partials.
template <bool kIsMax>
Status extremum(const float* x, int64_t n, float* out) {
    if (n < 1) return Status::invalid(kIsMax ? "max: the input is empty" : "min: the input is empty");
    auto kernel = kIsMax ? kernels().elementwise.max : kernels().elementwise.min;
    const std::vector<float> partials =
        chunk_partials<float>(n, [&](int64_t i, int64_t len) { return kernel(x + i, len); });
    float best = partials[0];
    for (float p : partials) {
        if (p != p) { best = p; break; }  // NaN wins
        best = kIsMax ? (p > best ? p : best) : (p < best ? p : best);
    }
    *out = best;
    return Status::success();
}

}  // namespace

Status max(const float* x, int64_t n, float* out) { return extremum<true>(x, n, out); }
Status min(const float* x, int64_t n, float* out) { return extremum<false>(x, n, out); }

}  // namespace convengine
