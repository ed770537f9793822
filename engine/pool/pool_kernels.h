// Pooling micro-kernels: one table entry per kernel, filled once per ISA (pool_impl.inc).
//
// Every kernel works on one (N, C) plane, or on one output depth slice of it, of a C-contiguous
// float32 tensor; pool.cpp validates the parameters, splits the work over planes and threads
// and hands each thread its own zeroed scratch buffer. 1-d and 2-d pooling run through the
// same kernels as 3-d: the geometry is normalised to three spatial dims (D, H, W) with leading
// dims of size 1 (kernel 1, stride 1, padding 0, dilation 1).
#pragma once

#include <cstdint>

namespace convengine {

// Geometry of one pooling call, normalised to (D, H, W). Plain data: no member functions, so
// that nothing inline is shared between the ISA translation units.
struct PoolGeometry {
    int64_t in[3];        // input spatial size (D, H, W)
    int64_t out[3];       // output spatial size
    int64_t kernel[3];
    int64_t stride[3];
    int64_t pad[3];       // implicit padding on both sides (-inf for max, 0 for average)
    int64_t dilation[3];  // 1 for average pooling
    // Average pooling: the divisor is divisor_override when it is non-zero, else the window
    // size clipped to the padded input (count_include_pad) or to the input (the real count).
    bool count_include_pad;
    int64_t divisor_override;
    // Floats in the scratch buffer pool.cpp gives each thread (see scratch layout below).
    int64_t scratch_floats;
};

// Scratch layout of the average-pooling kernels, `scratch_floats` zeroed floats in all:
//   [0, out[2])             per-column divisor factor (filled by the kernel on every call)
//   [out[2], scratch_floats) one padded row: pad[2] zeros | in[2] values | zeros to the end,
//                           at least (out[2]-1)*stride[2] + kernel[2] + stride[2] floats.
// The kernels leave the padding zeros in place.

struct PoolKernels {
    // Max pooling of output depth slice `od` of one plane: y is that slice (out[1] * out[2]
    // values); indices (optional, may be null) gets flat indices into the input plane
    // (PyTorch's rule: a value is taken when it is > the current maximum or NaN, so the first
    // maximum in row-major window order wins and the last NaN wins; a window with no input
    // element gives -inf and index -1).
    void (*max_pool_slice)(const PoolGeometry& g, const float* x_plane, int64_t od, float* y,
                           int64_t* indices);
    // Average pooling of output depth slice `od` of one plane.
    void (*avg_pool_slice)(const PoolGeometry& g, const float* x_plane, int64_t od, float* y,
                           float* scratch);
    // Gradient of average pooling for one whole plane: grad_x = the sum over the windows
    // covering each element of grad_y / divisor (every element written, 0 where none covers).
    void (*avg_pool_backward_plane)(const PoolGeometry& g, const float* grad_y_plane,
                                    float* grad_x_plane, float* scratch);
    // Adaptive average pooling of output depth slice `od` (bins start = floor(i*in/out),
    // end = ceil((i+1)*in/out)); scratch: in[2] floats. Only in/out of g are used.
    void (*adaptive_avg_slice)(const PoolGeometry& g, const float* x_plane, int64_t od,
                               float* y, float* scratch);
    // Gradient of adaptive average pooling for one whole plane (grad_x zeroed by the caller).
    void (*adaptive_avg_backward_plane)(const PoolGeometry& g, const float* grad_y_plane,
                                        float* grad_x_plane);
    // Adaptive max pooling of output depth slice `od`; indices optional as in max_pool_slice.
    void (*adaptive_max_slice)(const PoolGeometry& g, const float* x_plane, int64_t od,
                               float* y, int64_t* indices);
    // Global average pooling of `planes` contiguous planes of `size` floats: y[p] = their mean
    // (float sums); and its gradient, grad_x[p, :] = grad_y[p] / size.
    void (*global_avg)(const float* x, int64_t planes, int64_t size, float* y);
    void (*global_avg_backward)(const float* grad_y, int64_t planes, int64_t size,
                                float* grad_x);
};

void init_pool__ref(PoolKernels& k);
void init_pool__avx2(PoolKernels& k);
void init_pool__avx512(PoolKernels& k);

}  // namespace convengine
