// Single-precision GEMM (BLIS structure: packing, macro-kernel, one micro-kernel per ISA).
//
//   C = relu?( alpha * op(A) @ op(B) + beta * C + bias )
//
// All matrices are row-major. op(A) is m x k, op(B) is k x n, C is m x n:
//   trans_a == false: A is m x k, element (i, p) at a[i*lda + p], lda >= k
//   trans_a == true:  A is k x m (op(A) = A^T), element (i, p) of op(A) at a[p*lda + i], lda >= m
//   trans_b == false: B is k x n, element (p, j) at b[p*ldb + j], ldb >= n
//   trans_b == true:  B is n x k (op(B) = B^T), element (p, j) of op(B) at b[j*ldb + p], ldb >= k
//   C: element (i, j) at c[i*ldc + j], ldc >= n
// (every leading dimension is also >= 1). beta == 0 means C is only written, never read (it may
// hold NaN); alpha == 0 or k == 0 means A and B are not read. C must not overlap A, B or bias.
//
// The epilogue is applied while each C tile is stored, after the last block of k: bias[i] per
// row (BiasAxis::row, m values: a convolution's per-output-channel bias on (OC, OH*OW)) or
// bias[j] per column (BiasAxis::col, n values: a Linear layer's bias on (batch, out_features)),
// then max(., 0) if relu (NaN stays NaN).
//
// Entry points validate every parameter and return a Status; they never abort, print or throw.
// They run on up to convengine::num_threads() OpenMP threads, fewer when other calls are already
// using threads (several Python threads calling at once share the budget instead of
// oversubscribing the cores) and one when called from inside a parallel region.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

enum class BiasAxis : int {
    none = 0,  // no bias; `bias` must be null
    row = 1,   // bias[i] added to row i (m values)
    col = 2,   // bias[j] added to column j (n values)
};

struct GemmEpilogue {
    const float* bias = nullptr;
    BiasAxis bias_axis = BiasAxis::none;
    bool relu = false;
};

Status sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc, const GemmEpilogue& epilogue = GemmEpilogue{});

// ---- B from any source (implicit im2col) ------------------------------------------------------
//
// A convolution does not build its column matrix: it hands the GEMM a packer that writes packed
// B micro-panels straight from the image (engine/conv/conv_kernels.h: ConvKernels::pack_col
// reads NCHW images with kernel, stride, padding and dilation; pack_col_t the transposed column
// matrix of the weight gradient). Each call materialises one kc x nc block, about to be used from
// L2, so no column matrix is ever stored.
//
// pack(ctx, k0, kc, j0, nc, nr, dst) must write rows [k0, k0 + kc) x columns [j0, j0 + nc) of
// op(B) (k x n) as ceil(nc / nr) micro-panels of kc x nr floats, one after the other, each
// k-major (dst[q*kc*nr + p*nr + jj] = op(B)[k0 + p][j0 + q*nr + jj]) with columns past nc set to
// zero: the layout of GemmKernels::pack_b (README.md, "Packed layouts"). dst is 64-byte aligned.
// The GEMM calls it from several threads at once for disjoint column ranges, so it must only read
// shared state. nr is the active micro-kernel's NR (<= kMaxNR).
struct SgemmBSource {
    void (*pack)(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr,
                 float* dst);
    const void* ctx;
};

constexpr int kMaxNR = 64;

// As sgemm, with op(B) given by a packer instead of a matrix.
Status sgemm_bsource(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                     int64_t lda, const SgemmBSource& b, float beta, float* c, int64_t ldc,
                     const GemmEpilogue& epilogue = GemmEpilogue{});

}  // namespace convengine
