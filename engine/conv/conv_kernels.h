// Convolution kernel-table entries: the im2col packers that feed the GEMM, col2im, and the
// direct depthwise kernels, compiled once per ISA (conv_impl.inc, included by conv__<isa>.cpp)
// and registered by init_conv__<isa>() into KernelTable::conv.
//
// All of them work on one group of one image (or, for the forward packer, on a run of images)
// described by a ConvGeom: 3-D spatial sizes with 1 in the unused leading dims, channels-first,
// C-contiguous. Padding may be negative here: the passes rewrite a backward pass as a forward
// convolution with offset p' = d*(k-1) - p, and positions outside [0, size) always read 0.
#pragma once

#include <cstdint>

namespace convengine {

struct ConvGeom {
    int64_t in[3];   // D, H, W of the convolution input
    int64_t out[3];  // OD, OH, OW
    int64_t k[3];    // KD, KH, KW
    int64_t s[3];    // stride
    int64_t d[3];    // dilation
    int64_t p[3];    // padding before (input index = o*s + k*d - p)
    int64_t in_plane;   // D*H*W
    int64_t out_plane;  // OD*OH*OW
    int64_t taps;       // KD*KH*KW
};

// The column matrix col(X) of one group, never stored: row r = c*taps + t (t = (kd*KH + kh)*KW
// + kw), column j = i*out_plane + (od*OH + oh)*OW + ow for image i of `images`; its element is
// x[i, c, od*sd + kd*dd - pd, oh*sh + kh*dh - ph, ow*sw + kw*dw - pw] (0 outside the input).
struct Im2colSource {
    const ConvGeom* g;
    const float* x;        // image 0, channel 0 of the group
    int64_t channels;      // channels of the group (rows = channels * taps)
    int64_t image_stride;  // floats from one image to the next
};

// Rows of the direct (packing-free) convolution micro-kernel: output rows (od, oh) in
// [od0, od1) x [oh0, oh1) of one image, for one block of `oc_valid` output
// channels (oc_valid <= 16 * oc_vecs), from a zero-padded band of the input.
//   band: the padded input band, channel 0; its (Db, Hb, Wb) rows start at output row
//         (band_od0, band_oh0): output (od, oh, ow), tap offset koff[k] reads
//         band[koff[k] + ((od - band_od0)*sd*Hb + (oh - band_oh0)*sh)*Wb + ow*sw]
//   koff: K offsets, one per k = (c, kd, kh, kw) (c*Db*Hb*Wb + kd*dd*Hb*Wb + kh*dh*Wb + kw*dw)
//   w:    packed weights of the block, K x (16 * oc_vecs) floats, 64-byte aligned (zero past
//         oc_valid)
//   y:    output channel 0 of the block in this image: y[oc*P + (od*OH + oh)*OW + ow]
//   bias: oc_valid values or null; relu: max(., 0) after the bias.
//   oc_vecs: 2 (tiles of 14 pixels x 32 channels, w has 32 per k) or 1 (2 rows x 14 pixels x
//            16 channels, w has 16 per k; the band must then hold one more row (sh rows) below
//            the last, read by a last tile when the row count is odd). With sw 1 (always for
//            oc_vecs 1, for 2 when it wastes fewer lanes) the kernel runs tiles of 8 channels x
//            3 vectors of 16 pixels instead, reading each row up to a whole vector past OW.
// sw is 1 or 2; the band must hold every read, including those of the pixels of the last tile
// of a row past OW (up to a whole tile or vector).
struct DirectRows {
    const float* band;
    int64_t Hb, Wb;
    const int64_t* koff;
    int64_t K;
    const float* w;
    int64_t sd, sh, sw;
    int64_t od0, od1, oh0, oh1;
    int64_t band_od0, band_oh0;
    int64_t OH, OW, P;
    float* y;
    int64_t oc_valid;
    const float* bias;
    int relu;
    int oc_vecs;
    // fold 2 (stride 1): the 1x1 convolution of a kernel == stride backward-input whose W kernel
    // is 2. w has 32 floats per k, lane 2*j + kw for channel j < 16 of the block and W tap kw;
    // band rows [oh0, oh1) are flattened rows r = od*OH + oh at band + (r - band_oh0)*Wb, each
    // read in whole 16-pixel vectors (Wb >= OW rounded up to 16). Element (j, r, ow) of tap kw
    // goes to y[j*P + od*y_d + oh*y_h + 2*ow + kw - x_pad] when that column is in [0, y_w);
    // rows with od outside [od_lo, od_hi) or oh outside [oh_lo, oh_hi) are skipped (their
    // output rows fall outside the output). oc_valid counts the channels (<= 16).
    // fold 0: the layout above.
    int fold;
    int64_t y_d, y_h, x_pad, y_w;
    int64_t od_lo, od_hi, oh_lo, oh_hi;
    // fold 3 (oc_vecs 2, sw 1, od range of 1): the two W phases of a stride-2 backward-input.
    // Phase 0 is the convolution above (koff, K, w), phase 1 another over the same band (koff1,
    // K1, w1; K may be 0: all zero); output row oh, pixel ow of phase f goes to
    // y[oc*P + oh*y_h + 2*ow + f] when that column is below y_w (tiles stored interleaved).
    const int64_t* koff1;
    int64_t K1;
    const float* w1;
};

// The flipped, channel-swapped weights of a stride-1 backward-input pass (a forward convolution
// of dY), op(A)[c][o*T + t] = w_g[o][c][T-1-t], read straight from W (no flipped copy).
struct FlippedWeights {
    const float* w_g;  // (OCg, Cg, T): the group's forward weights
    int64_t Cg, T;
};

// A packer with SgemmBSource's signature (gemm/gemm.h): writes rows [k0, k0 + kc) x columns
// [j0, j0 + nc) of op(B) as ceil(nc / nr) k-major micro-panels of kc x nr floats (columns past
// nc zero). ctx is an Im2colSource.
using ConvPackB = void (*)(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                           int nr, float* dst);

// dwt[r*ldt + o] = sum over images i and output pixels p of col(X_i)[r][p] * dy_i[o][p], for
// r in [r0, r1) (r = c*taps + t) and o < ocg (columns up to 16*ceil(ocg/16) written, the rest of
// the row zero); x and dy point at image 0, channel 0 of the group.
struct BwwTapsArgs {
    const ConvGeom* g;
    const float* x;
    int64_t x_image_stride;
    const float* dy;
    int64_t dy_image_stride;
    int64_t images, ocg, r0, r1;
    float* dwt;
    int64_t ldt;
    float* scratch;
};

struct ConvKernels {
    // op(B) = col(X): k = channels*taps rows, n = images*out_plane columns (forward; and the
    // backward-input of a stride-1 convolution, run as a forward one).
    ConvPackB pack_col;
    // op(B) = col(X)^T of image 0: k = out_plane rows, n = channels*taps columns
    // (backward-weight: dW += dY @ col(X)^T).
    ConvPackB pack_col_t;
    // op(A) = the flipped weights (ctx: FlippedWeights), as r-row A micro-panels: rows
    // [i0, i0 + mc) (input channels c), k [k0, k0 + kc) (o*T + t); ConvPackB's signature with
    // (k0, kc, i0, mc, r) (see conv_gemm.h, PanelSource).
    ConvPackB pack_w_flipped;
    // dX_g += col2im(tile) for rows [r0, r1) of col(X_g) (r = c*T + t) and output positions
    // [p0, p0 + np): tile element (r, p) at col[(r - r0)*ldcol + (p - p0)]. dx points at channel
    // 0 of the group. Rows of different channels touch disjoint planes of dx.
    void (*col2im_add)(const ConvGeom& g, const float* col, int64_t ldcol, int64_t p0,
                       int64_t np, int64_t r0, int64_t r1, float* dx);
    // Direct kernels for C/G == 1 (depthwise, and single-channel inputs), one input plane at a
    // time. The plane is copied into `scratch` with padded rows (direct_scratch_floats(g)
    // floats; with less, a slower bounds-testing loop runs instead), then for each of `nout`
    // filters w[o*taps ...] (output planes y + o*y_stride):
    //   y = (accumulate ? y : bias[o]) + sum over taps of w[t] * x(shifted); max(., 0) if relu.
    // bias may be null (0).
    void (*direct_forward)(const ConvGeom& g, const float* x, const float* w, int64_t nout,
                           const float* bias, int accumulate, int relu, float* y,
                           int64_t y_stride, float* scratch, int64_t scratch_floats);
    //   dw[o*taps + t] += sum over output positions of dy[o] * x(shifted), dy planes dy_stride
    //   apart.
    void (*direct_backward_weight)(const ConvGeom& g, const float* x, const float* dy,
                                   int64_t nout, int64_t dy_stride, float* dw, float* scratch,
                                   int64_t scratch_floats);
    int64_t (*direct_scratch_floats)(const ConvGeom& g);
    // The direct (packing-free) micro-kernel for C/G > 1, or null where the ISA has none (the
    // passes then use conv_gemm).
    void (*direct_rows)(const DirectRows& a);
    // The weight gradient with col(X) broadcast from a zero-padded copy of the input (AVX-512;
    // null elsewhere; stride 1 or 2 along W): rows [r0, r1) of dW_g^T (see BwwTapsArgs),
    // with bww_taps_scratch_floats(g, channels) floats of scratch for a range of rows that
    // spans `channels` channels.
    void (*bww_taps)(const BwwTapsArgs& a);
    int64_t (*bww_taps_scratch_floats)(const ConvGeom& g, int64_t channels);
    // out[j*s + r] = src[r][j] for r < s, j < n (the phases of a row of stride s, interleaved).
    void (*interleave)(const float* const* src, int64_t s, int64_t n, float* out);
    // even[j] = src[2j] (j < (n+1)/2), odd[j] = src[2j+1] (j < n/2): a row split by column
    // parity (the bands of W-stride-2 direct tiles).
    void (*deinterleave)(const float* src, int64_t n, float* even, float* odd);
    //   dx += scatter of w[t] * dy, one dy plane (any stride; stride 1 runs as a direct_forward
    //   of the flipped geometry instead).
    void (*dw_backward_input_add)(const ConvGeom& g, const float* dy, const float* w,
                                  float* dx);
};

void init_conv__ref(ConvKernels& k);
void init_conv__avx2(ConvKernels& k);
void init_conv__avx512(ConvKernels& k);
void init_conv_direct__avx512(ConvKernels& k);  // conv_direct__avx512.cpp

}  // namespace convengine
