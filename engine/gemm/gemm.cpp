// SGEMM driver: parameter checks, the loops around packing, the macro-kernel, threading and the
// packing workspace. The loop structure and the micro-kernel contract are in README.md.
//
// C is row-major and the micro-kernel vectorises along a row of C (NR columns), broadcasting
// A values (MR rows). That is BLIS's column-major algorithm applied to C^T = op(B)^T op(A)^T, so
// the roles of the two packed blocks are BLIS's with A and B swapped:
//
//   for ic in M by MC:                         loop 5   A block: MC x KC, L3
//     for pc in K by KC:                       loop 4
//       pack op(A)[ic:ic+MC, pc:pc+KC] -> Ap   (MR x kc micro-panels, k-major)
//       for jc in N by NC:                     loop 3   B block: KC x NC, L2
//         pack op(B)[pc:pc+KC, jc:jc+NC] -> Bp (kc x NR micro-panels, k-major)
//         for ir in MC by MR:                  loop 2   A micro-panel: MR x KC, L1
//           for jr in NC by NR:                loop 1   B micro-panels stream from L2
//             micro-kernel: C[ic+ir : +MR, jc+jr : +NR] (+)= Ap[ir] * Bp[jr]
//
// Loop 1 walks along the same MR rows of C, so the C tiles a micro-kernel loads and stores are
// consecutive in memory and the hardware prefetchers stream them (walking down the rows instead,
// as BLIS's own order would here, measured 10% slower: every tile then touches MR new pages).
//
// Threads split either the rows (M, loop 2, in whole micro-tiles) or the columns (N, loop 3, in
// whole vectors), whichever leaves the slowest thread the least work, with a preference for
// N (make_plan):
//   split M: each thread packs the A rows it multiplies (no sharing); the threads pack each B
//            block together (each a contiguous share of its micro-panels) and meet at a barrier
//            before using it (or, with tall row slices, each packs the whole B block itself).
//   split N: the threads pack each A block together and meet at a barrier (or, with wide
//            column slices, each packs the whole A block itself and never waits); each then
//            packs and multiplies its own B blocks (its columns), in its own L2.
// The shared block is double-buffered, so one barrier per shared block suffices: a buffer is
// overwritten two blocks later, after every thread has passed the barrier of the block between.
#include "gemm/gemm.h"

#include <omp.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "core/int_math.h"
#include "core/kernel_table.h"
#include "core/threading.h"

namespace convengine {

namespace {

// ---- workspace -------------------------------------------------------------------------------
//
// One grow-only arena per calling thread holds every packed panel of a call: the shared B block
// (two buffers when threads share it) and one A block per thread (or one B block per thread when
// they split N). Its size is bounded by the block sizes, (2 KC NC + T MC KC) floats, whatever the
// problem size, and a thread that calls again reuses it without touching the allocator. 2 MiB
// alignment plus MADV_HUGEPAGE lets the kernel back it with huge pages (fewer TLB misses when the
// macro-kernel walks a 4 MiB B block).
class Arena {
  public:
    ~Arena() { std::free(base_); }
    float* get(int64_t floats) {
        const int64_t bytes = floats * static_cast<int64_t>(sizeof(float));
        if (bytes > capacity_) {
            constexpr int64_t kHuge = int64_t{1} << 21;
            const int64_t want = round_up(bytes, kHuge);
            void* p = std::aligned_alloc(static_cast<size_t>(kHuge), static_cast<size_t>(want));
            if (p == nullptr) return nullptr;
            madvise(p, static_cast<size_t>(want), MADV_HUGEPAGE);  // a hint; failure is harmless
            std::free(base_);
            base_ = p;
            capacity_ = want;
        }
        return static_cast<float*>(base_);
    }

  private:
    void* base_ = nullptr;
    int64_t capacity_ = 0;
};

thread_local Arena tls_arena;

// ---- thread budget ---------------------------------------------------------------------------
//
// Threads currently running GEMM work, over all calls in the process. A call takes what is left
// of num_threads() (at least one), so two Python threads calling at once on two cores get one
// core each instead of four threads fighting over two cores.
std::atomic<int> g_threads_in_use{0};

class ThreadClaim {
  public:
    explicit ThreadClaim(int want) {
        const int limit = num_threads();
        int used = g_threads_in_use.load(std::memory_order_relaxed);
        do {
            const int left = limit - used;
            count_ = left < 1 ? 1 : (left < want ? left : want);
        } while (!g_threads_in_use.compare_exchange_weak(used, used + count_,
                                                          std::memory_order_relaxed));
    }
    ~ThreadClaim() { g_threads_in_use.fetch_sub(count_, std::memory_order_relaxed); }
    ThreadClaim(const ThreadClaim&) = delete;
    ThreadClaim& operator=(const ThreadClaim&) = delete;
    int count() const { return count_; }

  private:
    int count_ = 1;
};

// ---- the problem -----------------------------------------------------------------------------

struct Problem {
    bool trans_a;
    int64_t m, n, k;
    float alpha;
    const float* a;
    int64_t lda;
    // op(B): either a matrix (b, ldb, trans_b) or a packer (source != nullptr).
    const float* b;
    int64_t ldb;
    bool trans_b;
    const SgemmBSource* source;
    float beta;
    float* c;
    int64_t ldc;
    GemmEpilogue epilogue;
};

// Packs columns [j0, j0 + nc) (j0 a multiple of NR within the block) of rows [pc, pc + kc) of
// op(B) into dst, as ceil(nc / NR) micro-panels.
void pack_b_block(const Problem& P, const GemmKernels& g, int64_t pc, int64_t kc, int64_t j0,
                  int64_t nc, float* dst) {
    if (nc <= 0) return;
    if (P.source != nullptr) {
        P.source->pack(P.source->ctx, pc, kc, j0, nc, g.nr, dst);
        return;
    }
    const float* src = P.trans_b ? P.b + j0 * P.ldb + pc : P.b + pc * P.ldb + j0;
    g.pack_b(P.trans_b ? 1 : 0, src, P.ldb, kc, nc, g.nr, dst);
}

void pack_a_block(const Problem& P, const GemmKernels& g, int64_t ic, int64_t mc, int64_t pc,
                  int64_t kc, float* dst) {
    const float* src = P.trans_a ? P.a + pc * P.lda + ic : P.a + ic * P.lda + pc;
    g.pack_a(P.trans_a ? 1 : 0, src, P.lda, mc, kc, g.mr, dst);
}

// Loops 2 and 1: rows [r0, r1) of a packed A block (whose row 0 is C row ic) times one packed B
// block (kc x nc) into C[ic+r0 : ic+r1, jc : jc+nc]. `first` / `last`: this is the first / last
// block of k (beta applies on the first, the epilogue on the last).
void macro_kernel(const Problem& P, const GemmKernels& g, int64_t ic, int64_t r0, int64_t r1,
                  int64_t jc, int64_t nc, int64_t kc, bool first, bool last, const float* ap,
                  const float* bp) {
    UkrStore store{};
    store.alpha = P.alpha;
    store.beta = first ? P.beta : 1.0f;
    store.relu = last && P.epilogue.relu ? 1 : 0;
    const bool row_bias = last && P.epilogue.bias_axis == BiasAxis::row;
    const bool col_bias = last && P.epilogue.bias_axis == BiasAxis::col;
    const int mr = g.mr;
    const int nr = g.nr;
    for (int64_t ir = r0; ir < r1; ir += mr) {
        const int m_tile = static_cast<int>(min64(mr, r1 - ir));
        store.bias_row = row_bias ? P.epilogue.bias + ic + ir : nullptr;
        const float* a_panel = ap + ir * kc;
        float* c_row = P.c + (ic + ir) * P.ldc + jc;
        for (int64_t jr = 0; jr < nc; jr += nr) {
            const int n_tile = static_cast<int>(min64(nr, nc - jr));
            store.bias_col = col_bias ? P.epilogue.bias + jc + jr : nullptr;
            g.ukr(kc, a_panel, bp + jr * kc, c_row + jr, P.ldc, m_tile, n_tile, &store);
        }
    }
}

// How the threads share the work, and the block sizes used for this problem.
struct Plan {
    int threads;
    bool split_m;
    bool private_a;      // split N: every thread packs the whole A block itself (no barrier)
    bool private_b;      // split M: every thread packs the whole B block itself (no barrier)
    int64_t mc, kc, nc;  // <= the registered ones, balanced so that blocks are nearly equal
};

// Split N with at least this many columns per thread packs A privately, split M with at least
// this many rows per thread packs B privately (see make_plan). Measured with 2 threads while
// other processes kept both cores ~70% busy: 256 instead of 1024 (so barrier-free) ran
// 64x25088x576 with B transposed 11x faster and 512x4608x392 2.2x faster; 0 (always private)
// gained nothing more and packs too much for slices this narrow.
constexpr int64_t kPrivateSlice = 256;

// Column granularity of the split N: a thread's columns start at a multiple of this. The AVX-512
// kernel computes a partial tile of n columns at the cost of ceil(n / 16) vectors, so slices
// of whole vectors balance the work far better than slices of whole NR = 64 panels.
int64_t column_step(const GemmKernels& g) { return g.nr % 16 == 0 ? 16 : g.nr; }

Plan make_plan(const Problem& P, const GemmKernels& g, int threads) {
    const int64_t m_tiles = ceil_div(P.m, g.mr);
    const int64_t step = column_step(g);
    const int64_t n_steps = ceil_div(P.n, step);
    // Below ~4 MFLOP a parallel region's start-up (microseconds) is not worth it.
    const double flops = 2.0 * static_cast<double>(P.m) * static_cast<double>(P.n) *
                         static_cast<double>(P.k);
    if (flops < 4.0e6) threads = 1;

    // Work of the slowest thread, in (row tile x column step) units, with a penalty for the
    // barriers a split needs: none when each thread packs the shared operand itself (slices of
    // kPrivateSlice or more), one per A block for split N (5%), one per B block for split M
    // (10%). Barriers cost dearly when another process holds one of the cores: a descheduled
    // thread holds the others up for a scheduler time slice. Ties go to split N.
    bool split_m = false;
    if (threads > 1) {
        const int64_t m_slice = ceil_div(m_tiles, threads) * g.mr;
        const int64_t n_slice = ceil_div(n_steps, threads) * step;
        const double cost_m = static_cast<double>(ceil_div(m_tiles, threads) * n_steps) *
                              (m_slice >= kPrivateSlice ? 1.0 : 1.1);
        const double cost_n = static_cast<double>(m_tiles * ceil_div(n_steps, threads)) *
                              (n_slice >= kPrivateSlice ? 1.0 : 1.05);
        split_m = cost_m < cost_n;
        const int64_t units = split_m ? m_tiles : n_steps;
        if (units < threads) threads = static_cast<int>(units < 1 ? 1 : units);
    }
    Plan plan{};
    plan.threads = threads;
    plan.split_m = split_m || threads == 1;
    plan.kc = balanced_block(P.k, g.kc, 1);
    plan.mc = balanced_block(P.m, g.mc, g.mr);
    const int64_t n_slice = split_m ? P.n : ceil_div(n_steps, threads) * step;
    plan.nc = balanced_block(min64(n_slice, P.n), g.nc, g.nr);
    // Split N with wide slices: packing the whole A block in every thread costs one copy per
    // element against 2 * n_slice >= 512 FLOPs on it (a few percent), and saves the barrier per
    // A block, which is what costs most when another process holds one of the cores.
    plan.private_a = !plan.split_m && n_slice >= kPrivateSlice;
    // The same for split M with tall slices: the whole B block in every thread.
    const int64_t m_slice = ceil_div(m_tiles, threads) * g.mr;
    plan.private_b = split_m && threads > 1 && m_slice >= kPrivateSlice;
    return plan;
}

// [begin, end) of `units` split `parts` ways, part `t`.
void share(int64_t units, int parts, int t, int64_t* begin, int64_t* end) {
    *begin = units * t / parts;
    *end = units * (t + 1) / parts;
}

// Packed-panel buffers of one call (see run()).
struct Buffers {
    float* shared[2];  // the double-buffered shared block: B (split M) or A (split N)
    float* own_base;   // per-thread private block: A (split M) or B (split N) [+ A (private_a)]
    int64_t own_stride;
    int64_t own_a_offset;  // private_a: where the thread's A block follows its B block
    int64_t own_b_offset;  // private_b: where the thread's B block follows its A block
};

// One thread's part of the loop nest; every thread runs the same ic/pc loops (and, in split M,
// the same jc loop), so they all reach the same barriers.
void run_thread(const Problem& P, const GemmKernels& g, const Plan& plan, int t, int threads,
                const Buffers& buf) {
    const int64_t mr = g.mr;
    const int64_t nr = g.nr;
    float* own = buf.own_base + t * buf.own_stride;
    int shared_index = 0;
    auto sync = [&] {
        if (threads > 1) {
#pragma omp barrier
        }
    };

    // Columns of this thread (split N, whole column steps) or all of them.
    int64_t col0 = 0, col1 = P.n;
    if (!plan.split_m) {
        const int64_t step = column_step(g);
        share(ceil_div(P.n, step), threads, t, &col0, &col1);
        col0 *= step;
        col1 = min64(col1 * step, P.n);
    }

    for (int64_t ic = 0; ic < P.m; ic += plan.mc) {                        // loop 5
        const int64_t mc = min64(plan.mc, P.m - ic);
        const int64_t tiles = ceil_div(mc, mr);
        // Rows of the A block this thread multiplies (split M) or all of them.
        int64_t r0 = 0, r1 = mc;
        if (plan.split_m) {
            share(tiles, threads, t, &r0, &r1);
            r0 *= mr;
            r1 = min64(r1 * mr, mc);
        }
        for (int64_t pc = 0; pc < P.k; pc += plan.kc) {                    // loop 4
            const int64_t kc = min64(plan.kc, P.k - pc);
            const bool first = pc == 0;
            const bool last = pc + kc >= P.k;
            float* ap;
            if (plan.split_m) {
                // Private A: only this thread's rows, packed where the full block would have them.
                ap = own;
                if (r1 > r0) pack_a_block(P, g, ic + r0, r1 - r0, pc, kc, ap + r0 * kc);
            } else if (plan.private_a) {
                // Private A, all of it (split N with wide slices): no barrier.
                ap = own + buf.own_a_offset;
                pack_a_block(P, g, ic, mc, pc, kc, ap);
            } else {
                // Shared A: each thread packs a contiguous share of the micro-panels.
                ap = buf.shared[shared_index];
                shared_index ^= 1;
                int64_t q0, q1;
                share(tiles, threads, t, &q0, &q1);
                const int64_t row_begin = q0 * mr;
                const int64_t row_end = min64(q1 * mr, mc);
                if (row_end > row_begin)
                    pack_a_block(P, g, ic + row_begin, row_end - row_begin, pc, kc,
                                 ap + row_begin * kc);
                sync();
            }
            for (int64_t jc = col0; jc < col1; jc += plan.nc) {            // loop 3
                const int64_t nc = min64(plan.nc, col1 - jc);
                float* bp;
                if (plan.private_b) {
                    // Private B, all of it (split M with tall slices): no barrier.
                    bp = own + buf.own_b_offset;
                    pack_b_block(P, g, pc, kc, jc, nc, bp);
                } else if (plan.split_m) {
                    bp = buf.shared[shared_index];
                    shared_index ^= 1;
                    int64_t q0, q1;
                    share(ceil_div(nc, nr), threads, t, &q0, &q1);
                    const int64_t col_begin = q0 * nr;
                    const int64_t col_end = min64(q1 * nr, nc);
                    if (col_end > col_begin)
                        pack_b_block(P, g, pc, kc, jc + col_begin, col_end - col_begin,
                                     bp + col_begin * kc);
                    sync();
                } else {
                    bp = own;
                    pack_b_block(P, g, pc, kc, jc, nc, bp);
                }
                if (r1 > r0) macro_kernel(P, g, ic, r0, r1, jc, nc, kc, first, last, ap, bp);
            }
        }
    }
}

// C = relu?(beta * C + bias) when alpha == 0 or k == 0 (A and B are not read).
void scale_only(const Problem& P) {
    const GemmEpilogue& e = P.epilogue;
    for (int64_t i = 0; i < P.m; ++i) {
        float* row = P.c + i * P.ldc;
        for (int64_t j = 0; j < P.n; ++j) {
            float v = P.beta == 0.0f ? 0.0f : P.beta * row[j];
            if (e.bias_axis == BiasAxis::row) v += e.bias[i];
            if (e.bias_axis == BiasAxis::col) v += e.bias[j];
            if (e.relu) v = v < 0.0f ? 0.0f : v;
            row[j] = v;
        }
    }
}

Status run(const Problem& P) {
    if (P.m == 0 || P.n == 0) return Status::success();
    if (P.k == 0 || P.alpha == 0.0f) {
        scale_only(P);
        return Status::success();
    }
    const GemmKernels& g = kernels().gemm;
    const int want = omp_in_parallel() ? 1 : num_threads();
    ThreadClaim claim(want);
    const Plan plan = make_plan(P, g, claim.count());

    // Workspace: two shared blocks, then one private block per thread.
    //   split M:           shared = B blocks (kc x nc), private = A block (mc x kc)
    //   split N:           shared = A blocks,           private = B block
    //   split N, private_a: no shared block,            private = B block + A block
    //   split M, private_b: no shared block,            private = A block + B block
    // One thread runs as split M with a single "shared" B buffer: nobody else reads it.
    const int64_t a_floats = round_up(round_up(plan.mc, g.mr) * plan.kc, 16);
    const int64_t b_floats = round_up(round_up(plan.nc, g.nr) * plan.kc, 16);
    const bool no_shared = plan.private_a || plan.private_b;
    const int64_t shared_floats = no_shared ? 0 : plan.split_m ? b_floats : a_floats;
    const int64_t own_floats = no_shared ? a_floats + b_floats : plan.split_m ? a_floats : b_floats;
    const int64_t shared_count = plan.threads > 1 ? 2 : 1;
    float* base = tls_arena.get(shared_count * shared_floats + plan.threads * own_floats);
    if (base == nullptr) return Status::out_of_memory("sgemm: cannot allocate the packing workspace");

    Buffers buf{};
    buf.shared[0] = base;
    buf.shared[1] = base + (shared_count - 1) * shared_floats;
    buf.own_base = base + shared_count * shared_floats;
    buf.own_stride = own_floats;
    buf.own_a_offset = b_floats;
    buf.own_b_offset = a_floats;
    if (plan.threads == 1) {
        run_thread(P, g, plan, 0, 1, buf);
        return Status::success();
    }
#pragma omp parallel num_threads(plan.threads)
    {
        // The runtime may give fewer threads than asked; the split follows the real team.
        run_thread(P, g, plan, omp_get_thread_num(), omp_get_num_threads(), buf);
    }
    return Status::success();
}

// ---- parameter checks ------------------------------------------------------------------------

constexpr int64_t kMaxIndex = std::numeric_limits<int64_t>::max() / 8;

// True when rows x ld (+ cols) elements can be addressed without overflowing.
bool addressable(int64_t rows, int64_t ld) { return rows == 0 || ld <= kMaxIndex / rows; }

Status check_common(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a,
                    float* c, int64_t ldc, const GemmEpilogue& e) {
    if (m < 0) return Status::invalid("sgemm: m must be >= 0");
    if (n < 0) return Status::invalid("sgemm: n must be >= 0");
    if (k < 0) return Status::invalid("sgemm: k must be >= 0");
    const int64_t a_cols = trans_a ? m : k;
    const int64_t a_rows = trans_a ? k : m;
    if (lda < 1 || lda < a_cols)
        return Status::invalid("sgemm: lda must be >= max(1, number of columns of A as stored)");
    if (ldc < 1 || ldc < n) return Status::invalid("sgemm: ldc must be >= max(1, n)");
    if (!addressable(a_rows, lda)) return Status::invalid("sgemm: A is too large to address");
    if (!addressable(m, ldc)) return Status::invalid("sgemm: C is too large to address");
    if (m > 0 && n > 0 && c == nullptr) return Status::invalid("sgemm: C is null");
    if (m > 0 && n > 0 && k > 0 && a == nullptr) return Status::invalid("sgemm: A is null");
    switch (e.bias_axis) {
        case BiasAxis::none:
            if (e.bias != nullptr)
                return Status::invalid("sgemm: bias given but bias_axis is none");
            break;
        case BiasAxis::row:
        case BiasAxis::col:
            if (e.bias == nullptr && m > 0 && n > 0)
                return Status::invalid("sgemm: bias_axis is row or col but bias is null");
            break;
        default:
            return Status::invalid("sgemm: bias_axis must be none, row or col");
    }
    return Status::success();
}

}  // namespace

Status sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc, const GemmEpilogue& epilogue) {
    if (Status s = check_common(m, n, k, a, lda, trans_a, c, ldc, epilogue); !s.ok()) return s;
    const int64_t b_cols = trans_b ? k : n;
    const int64_t b_rows = trans_b ? n : k;
    if (ldb < 1 || ldb < b_cols)
        return Status::invalid("sgemm: ldb must be >= max(1, number of columns of B as stored)");
    if (!addressable(b_rows, ldb)) return Status::invalid("sgemm: B is too large to address");
    if (m > 0 && n > 0 && k > 0 && b == nullptr) return Status::invalid("sgemm: B is null");
    const Problem P{trans_a, m, n, k, alpha, a, lda, b, ldb, trans_b, nullptr, beta, c, ldc,
                    epilogue};
    return run(P);
}

Status sgemm_bsource(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                     int64_t lda, const SgemmBSource& b, float beta, float* c, int64_t ldc,
                     const GemmEpilogue& epilogue) {
    if (Status s = check_common(m, n, k, a, lda, trans_a, c, ldc, epilogue); !s.ok()) return s;
    if (b.pack == nullptr) return Status::invalid("sgemm_bsource: the B packer is null");
    if (kernels().gemm.nr > kMaxNR)
        return Status::unsupported("sgemm_bsource: the active micro-kernel's NR exceeds kMaxNR");
    const Problem P{trans_a, m, n, k, alpha, a, lda, nullptr, 0, false, &b, beta, c, ldc,
                    epilogue};
    return run(P);
}

}  // namespace convengine
