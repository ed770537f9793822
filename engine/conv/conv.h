// Convolution, 1d/2d/3d, float32, channels-first (N, C, [D,] [H,] W): forward, backward-input,
// backward-weight and bias gradient, and the transposed convolution built from them.
//
// Every spatial problem is handled as 3-D: a 2-D convolution is a 3-D one with D = KD = 1, a
// 1-D one also has H = KH = 1 (callers fill the unused leading dims with 1, stride/dilation 1
// and padding 0). Layouts, all C-contiguous (what PyTorch uses):
//   x  (N, C, D, H, W)              w  (OC, C/G, KD, KH, KW)         bias (OC)
//   y  (N, OC, OD, OH, OW)          G = groups
// Convolution is cross-correlation (no kernel flip):
//   y[n, o, od, oh, ow] = bias[o] + sum over c < C/G, (kd, kh, kw) of
//       w[o, c, kd, kh, kw] * x[n, g*C/G + c, od*sd + kd*dd - pd, oh*sh + kh*dh - ph, ...]
//   with g = o / (OC/G), and x = 0 outside the input (zero padding).
// Only the padding *before* each dim is a parameter; the output size is given explicitly, and
// whatever it implies after the input is zero padding too. That covers symmetric, asymmetric
// ('same' with an odd total) and the sizes a transposed convolution's output_padding asks for.
//
// How the passes run (README.md has the whole table; conv_last_algorithm() names the path taken):
//   forward           packing-free direct tiles (AVX-512: input values broadcast from a
//                     zero-padded band, weights packed once), else the convolution GEMM
//                     (conv_gemm.h) with B panels packed straight from the image (implicit
//                     im2col: no column matrix at all); bias and ReLU in the epilogue.
//   backward-input    stride 1: the forward pass of the flipped, channel-swapped kernel over dY;
//                     larger strides: kernel == stride as one 1x1 convolution over dY for all
//                     taps, else one flipped pass per phase (residue of the stride), or
//                     col = W^T @ dY on workspace-sized tiles and col2im.
//   backward-weight   dW = dY @ col(X)^T with the sum over images as the GEMM's k.
//   C/G == 1          (depthwise, single-channel input) direct vectorised kernels in every pass.
// Scratch memory comes from the capped per-thread workspace (core/workspace.h); no pass ever
// builds a column matrix for the whole batch, or even for a whole image when it does not fit.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

struct ConvParams {
    int64_t batch = 0;         // N
    int64_t in_channels = 0;   // C
    int64_t out_channels = 0;  // OC
    int64_t groups = 1;        // G: divides C and OC
    int64_t in[3] = {1, 1, 1};        // D, H, W
    int64_t out[3] = {1, 1, 1};       // OD, OH, OW (>= 1)
    int64_t kernel[3] = {1, 1, 1};    // KD, KH, KW (>= 1)
    int64_t stride[3] = {1, 1, 1};    // >= 1
    int64_t dilation[3] = {1, 1, 1};  // >= 1
    int64_t pad[3] = {0, 0, 0};       // padding before each dim (>= 0)
};

// Checks every field (sizes >= 1, groups divide the channels, no size overflows int64).
Status check_conv_params(const ConvParams& p);

// The output size along one dim for padding (before, after): floor((in + before + after -
// dilation*(kernel-1) - 1) / stride) + 1 (may be <= 0: the caller reports that).
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                         int64_t pad_after, int64_t dilation);

// y = relu?(conv(x, w) + bias). bias may be null. y is fully written.
Status conv_forward(const ConvParams& p, const float* x, const float* w, const float* bias,
                    bool relu, float* y);

// dx = d(loss)/dx given dy = d(loss)/dy: the adjoint of conv_forward's linear part. dx is fully
// written (input positions no window reads get 0). If `bias` is not null, bias[c] is added to
// dx[:, c] (the transposed convolution's bias, which has C values).
Status conv_backward_input(const ConvParams& p, const float* dy, const float* w,
                           const float* bias, float* dx);

// dw = d(loss)/dw (OC, C/G, KD, KH, KW), fully written.
Status conv_backward_weight(const ConvParams& p, const float* dy, const float* x, float* dw);

// db[o] = sum of dy[:, o] over the batch and every output position. Also serves the transposed
// convolution with its own (N, C_out, ...) gradient: `channels` and `plane` describe dy as
// (batch, channels, plane).
Status conv_backward_bias(int64_t batch, int64_t channels, int64_t plane, const float* dy,
                          float* db);

// Transposed convolution of the convolution `p` describes: it maps (N, OC, out) to (N, C, in)
// with the weight (OC, C/G, k) (PyTorch's conv_transpose weight layout (C_in, C_out/G, k), with
// the transposed op's C_in = OC and C_out = C). These are the convolution passes, rearranged:
//   forward          = conv_backward_input (+ bias per C channel, + ReLU)
//   backward-input   = conv_forward
//   backward-weight  = conv_backward_weight with the roles of x and dy swapped
Status conv_transpose_forward(const ConvParams& p, const float* x, const float* w,
                              const float* bias, bool relu, float* y);
Status conv_transpose_backward_input(const ConvParams& p, const float* dy, const float* w,
                                     float* dx);
Status conv_transpose_backward_weight(const ConvParams& p, const float* dy, const float* x,
                                      float* dw);

// The path the last convolution pass called on this thread took (a string literal):
//   direct-depthwise, direct-depthwise-scatter   C/G == 1: direct vectorised kernels
//   direct-tiles, direct-tiles-flipped            packing-free AVX-512 tiles (forward; stride-1
//                                                 backward-input as a flipped forward)
//   taps-direct-tiles                             kernel == stride backward-input: one 1x1
//                                                 convolution for all taps, stored interleaved
//   phase-pairs-direct-tiles                      W stride 2 (2-D, 1-D) backward-input: both W
//                                                 phases per tile, stored interleaved into dX
//   phases-direct-tiles                           strided backward-input by phases on the tiles
//   conv-gemm, conv-gemm-flipped                  the convolution GEMM driver (conv_gemm.h)
//   gemm-col2im                                   strided backward-input: GEMM tiles + col2im
//   gemm-per-image, gemm-per-image-flipped        fallbacks on gemm/sgemm when the workspace
//                                                 cannot hold the packed weights
// ("none" before any call.) Tests and benchmarks report it.
const char* conv_last_algorithm();

}  // namespace convengine
