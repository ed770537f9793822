// GEMM kernel-table entries: one micro-kernel, its block sizes and the packing routines, per ISA.
//
// Filled once per compiled ISA by init_gemm__<isa>() (in engine/gemm/ukernels/, next to the
// micro-kernel it registers, together with the block sizes chosen for that kernel) and
// init_gemm_pack__<isa>() (engine/gemm/pack__<isa>.cpp). The contract every entry follows is
// written down in engine/gemm/README.md; the summary is repeated here.
//
// Everything is row-major. Names follow BLIS: MR x NR is the register tile of C computed by one
// micro-kernel call; MC, KC, NC block the M, K and N dimensions for the caches.
#pragma once

#include <cstdint>

namespace convengine {

// What a micro-kernel does when it stores its MR x NR tile (see README.md, "store"):
//   C[i][j] = relu?( alpha * acc[i][j] + beta * C[i][j] + bias_row[i] + bias_col[j] )
// beta == 0 means C is not read (it may hold NaN). bias_row / bias_col are null when absent and
// otherwise point at the bias of the tile's first row / column. relu is 0 or 1.
struct UkrStore {
    float alpha;
    float beta;
    const float* bias_row;
    const float* bias_col;
    int relu;
};

// The micro-kernel: acc = sum over p < k of a[p*MR + i] * b[p*NR + j] for i < MR, j < NR, then
// stores rows i < m and columns j < n of the tile into c (row stride ldc) as UkrStore says.
//   a: packed A micro-panel, k x MR, k-major (a[p*MR + i] = op(A)[i][p]); zero-padded rows
//   b: packed B micro-panel, k x NR, k-major (b[p*NR + j] = op(B)[p][j]); zero-padded columns;
//      64-byte aligned
//   k >= 0 (k == 0: acc is zero); 1 <= m <= MR; 1 <= n <= NR.
using SgemmUkr = void (*)(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                          int m, int n, const UkrStore* store);

// Packs an mc x kc block of op(A) into ceil(mc/mr) micro-panels of kc x mr floats each
// (layout above), zero-filling rows mc..; `a` points at op(A)[0][0] of the block:
//   trans == 0: op(A)[i][p] = a[i*lda + p]      trans == 1: op(A)[i][p] = a[p*lda + i]
using SgemmPackA = void (*)(int trans, const float* a, int64_t lda, int64_t mc, int64_t kc,
                            int mr, float* dst);

// Packs a kc x nc block of op(B) into ceil(nc/nr) micro-panels of kc x nr floats each,
// zero-filling columns nc..; `b` points at op(B)[0][0] of the block:
//   trans == 0: op(B)[p][j] = b[p*ldb + j]      trans == 1: op(B)[p][j] = b[j*ldb + p]
using SgemmPackB = void (*)(int trans, const float* b, int64_t ldb, int64_t kc, int64_t nc,
                            int nr, float* dst);

struct GemmKernels {
    SgemmUkr ukr;
    // Register tile and cache blocks, registered with the kernel (see its init_gemm__<isa>).
    // MC is a multiple of MR and NC a multiple of NR.
    int mr, nr, mc, kc, nc;
    SgemmPackA pack_a;
    SgemmPackB pack_b;
};

void init_gemm__ref(GemmKernels& k);
void init_gemm__avx2(GemmKernels& k);
void init_gemm__avx512(GemmKernels& k);

void init_gemm_pack__ref(GemmKernels& k);
void init_gemm_pack__avx2(GemmKernels& k);
void init_gemm_pack__avx512(GemmKernels& k);

}  // namespace convengine
