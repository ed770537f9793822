// Pooling entry points on C-contiguous float32 tensors (N, C, *spatial), 1 to 3 spatial dims.
//
// Semantics are PyTorch's (torch.nn.functional.*pool*d): output sizes with ceil_mode (the last
// window must start inside the input or the left padding), padding <= kernel / 2, max-pool
// indices as flat positions within each (N, C) plane, NaN wins a max window, the average-pool
// divisor rules, adaptive bins [floor(i*in/out), ceil((i+1)*in/out)). Each entry point
// validates its parameters and returns a Status; work is spread over the (N, C) planes (and
// output depth slices) on convengine::num_threads() threads.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

// Parameters of max and average pooling. Only the first `nd` entries of each array are read.
struct PoolParams {
    int nd = 2;                  // spatial dims: 1, 2 or 3
    int64_t batch = 1;           // N
    int64_t channels = 1;        // C
    int64_t input[3] = {1, 1, 1};
    int64_t kernel[3] = {1, 1, 1};
    int64_t stride[3] = {1, 1, 1};
    int64_t padding[3] = {0, 0, 0};
    int64_t dilation[3] = {1, 1, 1};  // max pooling only; must be 1 for average pooling
    bool ceil_mode = false;
    bool count_include_pad = true;    // average pooling only
    int64_t divisor_override = 0;     // average pooling only; 0: none
};

// Validates `p` and writes the output spatial size (first p.nd entries of `out`).
Status pool_output_size(const PoolParams& p, int64_t out[3]);

// y: (N, C, *out); indices: (N, C, *out) or null when not needed.
Status max_pool_forward(const PoolParams& p, const float* x, float* y, int64_t* indices);
Status avg_pool_forward(const PoolParams& p, const float* x, float* y);
// grad_x: (N, C, *input), overwritten.
Status avg_pool_backward(const PoolParams& p, const float* grad_y, float* grad_x);

// Index-driven passes over `planes` = N*C planes, with `pooled` elements per plane on the pooled
// side (the max-pool output, the unpool input) and `full` on the other side:
// max_pool_backward: grad_x (planes, full) = 0, then grad_x[idx] += grad_y for every pooled
//   element (index -1, a window with no input element, is skipped).
// max_unpool_forward: y (planes, full) = 0, then y[idx] = x (later elements win).
// max_unpool_backward: grad_x (planes, pooled) = grad_y[idx].
// Each fails with invalid_argument if an index is outside [0, full).
Status max_pool_backward(int64_t planes, int64_t full, int64_t pooled, const float* grad_y,
                         const int64_t* indices, float* grad_x);
Status max_unpool_forward(int64_t planes, int64_t full, int64_t pooled, const float* x,
                          const int64_t* indices, float* y);
Status max_unpool_backward(int64_t planes, int64_t full, int64_t pooled, const float* grad_y,
                           const int64_t* indices, float* grad_x);

// Adaptive pooling to any output size (each output >= 1).
struct AdaptivePoolParams {
    int nd = 2;
    int64_t batch = 1;
    int64_t channels = 1;
    int64_t input[3] = {1, 1, 1};
    int64_t output[3] = {1, 1, 1};
};

Status adaptive_avg_pool_forward(const AdaptivePoolParams& p, const float* x, float* y);
Status adaptive_avg_pool_backward(const AdaptivePoolParams& p, const float* grad_y,
                                  float* grad_x);
// indices may be null.
Status adaptive_max_pool_forward(const AdaptivePoolParams& p, const float* x, float* y,
                                 int64_t* indices);

}  // namespace convengine
