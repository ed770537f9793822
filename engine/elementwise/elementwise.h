// Element-wise and reduction entry points on contiguous float32 buffers.
//
// Each validates its sizes, splits the buffer into fixed-size chunks spread over the engine's
// threads and runs the active ISA's kernel on each chunk. Reductions combine per-chunk partial
// results in chunk order, so the result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

enum class BinaryOp { add, sub, mul, div };

// out = a (op) b, all of length n. out may alias a or b.
Status binary(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// y += alpha * x
Status axpy(float alpha, const float* x, float* y, int64_t n);
Status relu(const float* x, float* out, int64_t n);
Status relu_backward(const float* grad, const float* x, float* out, int64_t n);
Status exp(const float* x, float* out, int64_t n);

Status sum(const float* x, int64_t n, double* out);
// sum of (x - mean)^2: with sum() gives the variance in two passes.
Status sum_squared_deviation(const float* x, int64_t n, double mean, double* out);
// n >= 1; NaN if any element is NaN.
Status max(const float* x, int64_t n, float* out);
Status min(const float* x, int64_t n, float* out);

}  // namespace convengine
