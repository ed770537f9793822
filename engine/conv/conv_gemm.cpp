// The convolution GEMM driver (see conv_gemm.h). Loop nest per thread, names as in BLIS and in
// engine/gemm/README.md (whose measured loop order, A micro-panel outer and B micro-panels
// inner, it keeps):
//
//   columns_shared_a:                         columns / rows / depth:
//   for jc in my columns by NC:               for pc in my k by KC:
//     for pc in k by KC:                        pack op(A)[my rows, pc:+KC] -> Ap (mine)
//       Ap = shared A block pc (packed once)    for jc in my columns by NC:
//       pack op(B)[pc:+KC, jc:+NC] -> Bp          pack op(B)[pc:+KC, jc:+NC] -> Bp
//       macro(Ap, Bp)                             macro(Ap, Bp)
//
//   macro: for ir in my rows by MR:  for jr in NC by NR:  ukr(KC, Ap[ir], Bp[jr], C tile)
//
// The first block of a thread's k stores (beta 0), later ones accumulate; bias and ReLU come
// with the last block, or, in the depth split, after the partial sums are added.
#include "conv/conv_gemm.h"

#include <omp.h>

#include "core/int_math.h"
#include "core/kernel_table.h"

namespace convengine {

namespace {

void layout(const ConvGemm& p, ConvGemmPlan* l, int mr, int nr) {
    const bool shared = l->split == ConvGemmSplit::columns_shared_a;
    l->m_pad = round_up(p.m, mr);
    l->a_shared = shared ? round_up(l->m_pad * p.k, 16) : 0;
    const int64_t a_rows = l->split == ConvGemmSplit::rows
                               ? ceil_div(ceil_div(p.m, mr), l->threads) * mr  // a thread's rows
                               : l->m_pad;
    l->a_block = shared ? 0 : round_up(a_rows * l->kc, 16);
    l->b_block = round_up(l->kc * l->nc, 16);
    l->tile = round_up(static_cast<int64_t>(mr) * nr, 16);
    l->partial = l->split == ConvGemmSplit::depth ? round_up(p.m * p.n, 16) : 0;
    l->per_thread = l->b_block + l->a_block + l->tile + l->partial + l->acc;
    l->floats = l->a_shared + l->threads * l->per_thread;
}

// C tile (rows ir.., columns j..) of the micro-kernel's output: `first` stores, later blocks
// add; `last` applies the epilogue (when `epilogue`). With `acc`, tiles go to the thread's
// plain block instead: element (i, j) at acc[(i - i0)*acc_ld + (j - c0)], no epilogue.
struct TileStore {
    const ConvGemm* p;
    const SegmentedC* c;
    bool epilogue;
    float* acc;
    int64_t acc_ld, i0, c0;
};

// dst[i*ldc + j] (+)= src[i*lds + j] for i < rows, j < len (stores when `first`), then + bias[i]
// and max(., 0) when given (the epilogue, on the last block of k).
void merge_piece(const float* src, int64_t lds, float* dst, int64_t ldc, int rows, int len,
                 bool first, const float* bias, bool relu) {
    for (int i = 0; i < rows; ++i) {
        const float* s = src + i * lds;
        float* d = dst + i * ldc;
        if (first) {
            for (int j = 0; j < len; ++j) d[j] = s[j];
        } else {
            for (int j = 0; j < len; ++j) d[j] += s[j];
        }
        if (bias) {
            const float b = bias[i];
            for (int j = 0; j < len; ++j) d[j] += b;
        }
        if (relu)
            for (int j = 0; j < len; ++j) d[j] = d[j] < 0.0f ? 0.0f : d[j];
    }
}

// Rows [i0, i1) (ap: the A panel of row i0) x columns [jc, jc + ncb) of C.
void macro_kernel(const GemmKernels& g, const TileStore& ts, const float* ap, const float* bp,
                  int64_t kcb, int64_t i0, int64_t i1, int64_t jc, int64_t ncb, bool first,
                  bool last, float* tile) {
    const ConvGemm& p = *ts.p;
    const SegmentedC& C = *ts.c;
    const int mr = g.mr, nr = g.nr;
    const bool epi = last && ts.epilogue && !ts.acc;
    UkrStore direct{};
    direct.alpha = 1.0f;
    direct.beta = first ? 0.0f : 1.0f;
    direct.relu = epi && p.relu ? 1 : 0;
    UkrStore scratch{};
    scratch.alpha = 1.0f;
    for (int64_t ir = i0; ir < i1; ir += mr) {
        const int mt = static_cast<int>(min64(mr, i1 - ir));
        const float* a_panel = ap + (ir - i0) * kcb;
        direct.bias_row = epi && p.bias_row ? p.bias_row + ir : nullptr;
        for (int64_t jr = 0; jr < ncb; jr += nr) {
            const int nt = static_cast<int>(min64(nr, ncb - jr));
            const int64_t j = jc + jr;
            const float* b_panel = bp + jr * kcb;
            if (ts.acc) {
                float* c = ts.acc + (ir - ts.i0) * ts.acc_ld + (j - ts.c0);
                g.ukr(kcb, a_panel, b_panel, c, ts.acc_ld, mt, nt, &direct);
                continue;
            }
            const int64_t seg = j / C.seg;
            if ((j + nt - 1) / C.seg == seg) {
                float* c = C.base + seg * C.seg_stride + ir * C.ldc + (j - seg * C.seg);
                g.ukr(kcb, a_panel, b_panel, c, C.ldc, mt, nt, &direct);
                continue;
            }
            // The tile straddles segments (images): compute it apart, then add it to C one
            // segment's piece at a time (rows of contiguous columns).
            g.ukr(kcb, a_panel, b_panel, tile, nr, mt, nt, &scratch);
            int64_t s = seg, col = j - seg * C.seg;
            for (int jj = 0; jj < nt; ++s, col = 0) {
                const int len = static_cast<int>(min64(nt - jj, C.seg - col));
                float* dst = C.base + s * C.seg_stride + ir * C.ldc + col;
                merge_piece(tile + jj, nr, dst, C.ldc, mt, len, first,
                            epi ? direct.bias_row : nullptr, epi && p.relu);
                jj += len;
            }
        }
    }
}

// One thread's share of C: rows [i0, i1), columns [c0, c1), summed over k in [k0, k1).
struct Share {
    int64_t i0, i1, c0, c1, k0, k1;
};

void run_share(const ConvGemm& p, ConvGemmSplit split, const GemmKernels& g, const ConvGemmPlan& l,
               const float* a_shared, int64_t kc_shared, float* mine, const SegmentedC& C,
               bool epilogue, const Share& sh) {
    const int64_t i0 = sh.i0, i1 = sh.i1, c0 = sh.c0, c1 = sh.c1, k0 = sh.k0, k1 = sh.k1;
    if (i0 >= i1 || c0 >= c1 || k0 >= k1) return;
    float* bbuf = mine;
    float* abuf = mine + l.b_block;
    float* tile = abuf + l.a_block;
    float* acc = l.acc > 0 ? tile + l.tile + l.partial : nullptr;
    const TileStore ts{&p, &C, epilogue, acc, l.acc_ld, i0, c0};
    const int64_t nc = balanced_block(c1 - c0, l.nc, g.nr);
    if (split == ConvGemmSplit::columns_shared_a) {  // block pc of A at a_shared + pc * m_pad
        for (int64_t jc = c0; jc < c1; jc += nc) {
            const int64_t ncb = min64(nc, c1 - jc);
            for (int64_t pc = k0; pc < k1; pc += kc_shared) {
                const int64_t kcb = min64(kc_shared, k1 - pc);
                p.b.pack(p.b.ctx, pc, kcb, jc, ncb, g.nr, bbuf);
                macro_kernel(g, ts, a_shared + pc * l.m_pad, bbuf, kcb, 0, p.m, jc, ncb,
                             pc == k0, pc + kcb >= k1, tile);
            }
        }
        return;
    }
    const int64_t kc = balanced_block(k1 - k0, l.kc, 1);
    for (int64_t pc = k0; pc < k1; pc += kc) {
        const int64_t kcb = min64(kc, k1 - pc);
        p.a.pack(p.a.ctx, pc, kcb, i0, i1 - i0, g.mr, abuf);
        for (int64_t jc = c0; jc < c1; jc += nc) {
            const int64_t ncb = min64(nc, c1 - jc);
            p.b.pack(p.b.ctx, pc, kcb, jc, ncb, g.nr, bbuf);
            macro_kernel(g, ts, abuf, bbuf, kcb, i0, i1, jc, ncb, pc == k0, pc + kcb >= k1,
                         tile);
        }
    }
    // The plain block to C, one segment's piece at a time, with the epilogue.
    for (int64_t col = c0; acc != nullptr && col < c1;) {
        const int64_t seg = col / C.seg, off = col - seg * C.seg;
        const int len = static_cast<int>(min64(c1 - col, C.seg - off));
        merge_piece(acc + (col - c0), l.acc_ld, C.base + seg * C.seg_stride + i0 * C.ldc + off,
                    C.ldc, static_cast<int>(i1 - i0), len, true,
                    epilogue && p.bias_row ? p.bias_row + i0 : nullptr, epilogue && p.relu);
        col += len;
    }
}

}  // namespace

bool conv_gemm_plan(const ConvGemm& p, ConvGemmSplit split, int threads, int64_t budget_floats,
                    ConvGemmPlan* plan) {
    const GemmKernels& g = kernels().gemm;
    ConvGemmPlan l;
    l.split = split;
    l.threads = threads < 1 || omp_in_parallel() ? 1 : threads;
    if (split != ConvGemmSplit::depth) {
        const int64_t units = split == ConvGemmSplit::rows ? ceil_div(p.m, g.mr)
                                                           : ceil_div(p.n, 16);
        if (l.threads > units) l.threads = static_cast<int>(units < 1 ? 1 : units);
    }
    // Blocks no larger than the problem needs: KC balanced over k, NC over a thread's columns.
    const bool columns = split == ConvGemmSplit::columns_shared_a || split == ConvGemmSplit::columns;
    const int64_t k_share = split == ConvGemmSplit::depth ? ceil_div(p.k, l.threads) : p.k;
    const int64_t n_share = columns ? ceil_div(p.n, l.threads) : p.n;
    l.kc = balanced_block(k_share, g.kc, 1);
    l.nc = balanced_block(n_share, g.nc, g.nr);
    // Images narrower than a few micro-tiles (most tiles straddle two) and several blocks of k:
    // a thread sums its share in a plain block (up to 1 MiB) and writes it to C once, instead
    // of through the scratch tile on every block of k (resnet_l4: 49-column images, 12 blocks).
    if ((split == ConvGemmSplit::columns || split == ConvGemmSplit::rows) && p.c.seg < p.n &&
        p.c.seg < 4 * g.nr && p.k > l.kc) {
        const int64_t rows = split == ConvGemmSplit::rows
                                 ? ceil_div(ceil_div(p.m, g.mr), l.threads) * g.mr
                                 : p.m;
        l.acc_ld = round_up(n_share + 16, 16);  // column shares are whole units of 16, plus one
        l.acc = rows * l.acc_ld;
        if (l.acc > (int64_t{1} << 18)) l.acc = l.acc_ld = 0;
    }
    layout(p, &l, g.mr, g.nr);
    if (l.floats > budget_floats && l.acc > 0) {
        l.acc = l.acc_ld = 0;
        layout(p, &l, g.mr, g.nr);
    }
    while (l.floats > budget_floats && l.nc > g.nr) {
        l.nc = round_up(l.nc / 2, g.nr);
        layout(p, &l, g.mr, g.nr);
    }
    while (l.floats > budget_floats && l.kc > 16) {
        l.kc = l.kc / 2;
        layout(p, &l, g.mr, g.nr);
    }
    if (l.floats > budget_floats) return false;
    *plan = l;
    return true;
}

bool conv_gemm_plan_auto(const ConvGemm& p, int threads, int64_t budget_floats,
                         ConvGemmPlan* plan) {
    const GemmKernels& g = kernels().gemm;
    const int team = threads < 1 || omp_in_parallel() ? 1 : threads;
    if (team > 1 && p.n <= p.m && conv_gemm_plan(p, ConvGemmSplit::rows, team, budget_floats, plan))
        return true;
    if (ceil_div(p.n, team) <= g.nc &&
        conv_gemm_plan(p, ConvGemmSplit::columns, team, budget_floats, plan))
        return true;
    return conv_gemm_plan(p, ConvGemmSplit::columns_shared_a, team, budget_floats, plan) ||
           conv_gemm_plan(p, ConvGemmSplit::columns, team, budget_floats, plan);
}

Status conv_gemm(const ConvGemm& p, const ConvGemmPlan& l, float* workspace) {
    const ConvGemmSplit split = l.split;
    if (p.m < 0 || p.n < 0 || p.k < 1) return Status::invalid("conv_gemm: bad sizes");
    if (p.m == 0 || p.n == 0) return Status::success();
    if (p.a.pack == nullptr || p.b.pack == nullptr || p.c.base == nullptr || p.c.seg < 1)
        return Status::invalid("conv_gemm: missing operand");
    if (split == ConvGemmSplit::depth && p.c.seg < p.n)
        return Status::invalid("conv_gemm: the depth split needs a plain C");
    const GemmKernels& g = kernels().gemm;
    if (g.nr > 64) return Status::unsupported("conv_gemm: NR above 64");
    int threads = l.threads;
    if (omp_in_parallel()) threads = 1;
    float* a_shared = workspace;
    float* per_thread = workspace + l.a_shared;

    int64_t kc_shared = 0;
    if (split == ConvGemmSplit::columns_shared_a) {
        // All of A, in blocks of k: block pc at a_shared + pc * m_pad, MR-panels of kcb x MR.
        // Panel by panel, all blocks of k of one panel together: a source row (a weight row,
        // k contiguous) is then read in one sweep, not in KC-long pieces far apart (packing
        // 512 x 4608 weights block by block took twice as long).
        kc_shared = balanced_block(p.k, l.kc, 1);
        const int64_t blocks = ceil_div(p.k, kc_shared);
        const int64_t panels = ceil_div(p.m, g.mr);
        const int pack_threads = static_cast<int>(min64(threads, panels));
#pragma omp parallel for num_threads(pack_threads) schedule(static) if (pack_threads > 1)
        for (int64_t q = 0; q < panels; ++q) {
            const int64_t i0 = q * g.mr;
            for (int64_t b = 0; b < blocks; ++b) {
                const int64_t pc = b * kc_shared;
                const int64_t kcb = min64(kc_shared, p.k - pc);
                p.a.pack(p.a.ctx, pc, kcb, i0, min64(g.mr, p.m - i0), g.mr,
                         a_shared + pc * l.m_pad + i0 * kcb);
            }
        }
    }

    if (split != ConvGemmSplit::depth) {
        // Threads own ranges of whole MR-row panels (rows), or column ranges in units of 16
        // columns (not whole NR-wide panels: with few panels, 7 panels shared 4 + 3 left one
        // thread twice the work of the other; a range's last panel may be narrower than NR).
        const int64_t units = ceil_div(p.n, 16), panels = ceil_div(p.m, g.mr);
        auto body = [&](int t, int team) {
            Share sh{0, p.m, 0, p.n, 0, p.k};
            if (split == ConvGemmSplit::rows) {
                sh.i0 = min64(p.m, panels * t / team * g.mr);
                sh.i1 = min64(p.m, panels * (t + 1) / team * g.mr);
            } else {
                sh.c0 = min64(p.n, units * t / team * 16);
                sh.c1 = min64(p.n, units * (t + 1) / team * 16);
            }
            run_share(p, split, g, l, a_shared, kc_shared, per_thread + t * l.per_thread, p.c,
                      true, sh);
        };
        if (threads == 1) {
            body(0, 1);
        } else {
            // The per-thread buffers are sized for `threads` shares: if OpenMP starts a smaller
            // team (OMP_THREAD_LIMIT, OMP_DYNAMIC), a thread runs several shares in turn rather
            // than one share too big for its buffers.
#pragma omp parallel num_threads(threads)
            for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads())
                body(t, threads);
        }
        return Status::success();
    }

    // Depth split: thread t sums k range t into its own C (thread 0 into C itself), then the
    // partial sums are added into C, with the epilogue, each thread a range of rows.
    if (threads == 1) {
        run_share(p, split, g, l, nullptr, 0, per_thread, p.c, true, {0, p.m, 0, p.n, 0, p.k});
        return Status::success();
    }
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int team = omp_get_num_threads();
        float* mine = per_thread + t * l.per_thread;
        float* partial = mine + l.b_block + l.a_block + l.tile;
        const SegmentedC own = t == 0 ? p.c : SegmentedC{partial, p.n, p.n, 0};
        const int64_t k0 = p.k * t / team, k1 = p.k * (t + 1) / team;
        if (k0 < k1) {
            run_share(p, split, g, l, nullptr, 0, mine, own, false,
                      {0, p.m, 0, p.n, k0, k1});
        } else {
            for (int64_t i = 0; i < p.m; ++i)
                for (int64_t j = 0; j < p.n; ++j) own.base[i * own.ldc + j] = 0.0f;
        }
#pragma omp barrier
        const int64_t r0 = p.m * t / team, r1 = p.m * (t + 1) / team;
        for (int64_t i = r0; i < r1; ++i) {
            float* row = p.c.base + i * p.c.ldc;
            for (int u = 1; u < team; ++u) {
                const float* src = per_thread + u * l.per_thread + l.b_block + l.a_block +
                                   l.tile + i * p.n;
                for (int64_t j = 0; j < p.n; ++j) row[j] += src[j];
            }
            const float b = p.bias_row ? p.bias_row[i] : 0.0f;
            if (p.bias_row || p.relu)
                for (int64_t j = 0; j < p.n; ++j) {
                    const float v = row[j] + b;
                    row[j] = p.relu && v < 0.0f ? 0.0f : v;
                }
        }
    }
    return Status::success();
}

}  // namespace convengine
