// The convolution's own GEMM driver: C = A @ B with both operands packed by callbacks straight
// from the tensors (implicit im2col, flipped weights, dY across images), on the GEMM's
// micro-kernel (KernelTable::gemm: ukr, MR x NR, KC/NC blocking, pack_a).
//
// Why not gemm/sgemm_bsource: a convolution multiplies the same weights by every image, so
// (1) the weight operand is packed once per call and shared by all threads and images instead of
// once per image; (2) the columns of all images form one GEMM (n = N*P): a small image (7x7,
// 14x14) no longer wastes most of its last NR-wide panel, and the output, which is (N, OC, P) and
// not one matrix, is written through a segmented layout (below) with a scratch tile only where a
// micro-tile straddles two images; (3) the weight gradient sums over images inside one GEMM
// (k = N*P), each thread owning either a range of k (private partial sums, reduced at the end) or
// a range of columns.
//
// Shapes: op(A) is m x k, op(B) is k x n, C is m x n.
#pragma once

#include <cstdint>

#include "conv/conv_kernels.h"
#include "core/status.h"

namespace convengine {

// A packer with ConvPackB's signature, for either operand:
//   B: pack(ctx, k0, kc, j0, nc, NR, dst): ceil(nc/NR) panels, dst[q*kc*NR + p*NR + j] =
//      op(B)[k0 + p][j0 + q*NR + j] (columns past nc zero); dst 64-byte aligned.
//   A: pack(ctx, k0, kc, i0, mc, MR, dst): ceil(mc/MR) panels, dst[q*kc*MR + p*MR + i] =
//      op(A)[i0 + q*MR + i][k0 + p] (rows past mc zero).
struct PanelSource {
    ConvPackB pack;
    const void* ctx;
};

// C element (i, j) lives at base + (j / seg) * seg_stride + i * ldc + (j % seg): segment s of
// `seg` columns is image s of an (N, channels, P) tensor (seg = P, seg_stride = channels * P,
// ldc = P). A plain row-major matrix is one segment (seg >= n).
struct SegmentedC {
    float* base;
    int64_t ldc;
    int64_t seg;
    int64_t seg_stride;
};

struct ConvGemm {
    int64_t m = 0, n = 0, k = 0;
    PanelSource a{};
    PanelSource b{};
    SegmentedC c{};
    const float* bias_row = nullptr;  // m values added with the last block of k, or null
    bool relu = false;                // then max(., 0)
};

// How the threads share the work.
enum class ConvGemmSplit {
    columns_shared_a,  // A packed once (all of it) and shared; threads own column ranges
    columns,           // threads own column ranges, each packs A per block of k itself
    rows,              // threads own ranges of MR-row panels, each packs its rows of A and
                       // all of B per block of k itself
    depth,             // threads own ranges of k, each sums into a private C (C plain, one
                       // segment); the partial sums are added at the end
};

// Block sizes, thread count and workspace of one conv_gemm call.
struct ConvGemmPlan {
    ConvGemmSplit split = ConvGemmSplit::columns;
    int threads = 1;
    int64_t kc = 0, nc = 0;  // blocks of k and of columns (<= the kernel's KC, NC)
    int64_t m_pad = 0;       // m rounded up to MR
    int64_t a_shared = 0;    // floats: the shared packed A (columns_shared_a)
    int64_t b_block = 0, a_block = 0, tile = 0, partial = 0;  // floats per thread
    int64_t acc = 0, acc_ld = 0;  // a thread's plain C block (floats, row stride), or 0
    int64_t per_thread = 0;
    int64_t floats = 0;      // all of it
};

// Plans the call (p's sizes and C's layout, p.c.seg, set; C's base may come later) within
// `budget_floats` of workspace: the kernel's KC x NC blocks, shrunk (NC
// first, down to NR, then KC) when they do not fit. Returns false when even the smallest blocks
// do not fit (the caller then takes another path).
bool conv_gemm_plan(const ConvGemm& p, ConvGemmSplit split, int threads, int64_t budget_floats,
                    ConvGemmPlan* plan);

// Plans a GEMM whose threads may split rows or columns (not depth), choosing the split:
//   - rows, when n <= m: each thread packs all of B (the smaller operand) and its own rows of
//     A, and the threads never wait for each other. (resnet_l4, m = 512, n = 392, k = 4608, on
//     2 threads: 6.8 ms, against 7.3 with the columns split and A shared block by block with a
//     barrier per block, and far less erratic when another process holds a core);
//   - columns, when each thread's columns make one NC block: each thread packs A block by
//     block itself, into its L2 (on one thread, all of A packed first went through memory and
//     took 1-2 ms longer on resnet_l4);
//   - columns_shared_a otherwise (several column blocks a thread: A packed once, each thread's
//     C block stays in L2 across the blocks of k), or columns when A does not fit.
bool conv_gemm_plan_auto(const ConvGemm& p, int threads, int64_t budget_floats,
                         ConvGemmPlan* plan);

// Runs the planned GEMM with `workspace` (plan.floats floats, 64-byte aligned). C is
// overwritten (beta = 0). Threads: plan.threads (1 inside a parallel region).
Status conv_gemm(const ConvGemm& p, const ConvGemmPlan& plan, float* workspace);

}  // namespace convengine
