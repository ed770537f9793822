#include "pool/pool.h"

#include <atomic>
#include <cstring>
#include <new>

#include "core/kernel_table.h"
#include "core/threading.h"
#include "pool/pool_kernels.h"

namespace convengine {

namespace {

// Every size and parameter must be below this, so that products of a few of them stay far
// from int64 overflow and flat indices of a plane stay exact.
constexpr int64_t kMaxValue = int64_t(1) << 31;

// a * b, or -1 when it would pass 2^62.
int64_t checked_mul(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > (int64_t(1) << 62)) return -1;
    return r;
}

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// planes = N * C, in = the input plane's size; fails on negative or huge sizes.
Status check_tensor(int nd, int64_t batch, int64_t channels, const int64_t* input,
                    int64_t* planes, int64_t* in_plane) {
    if (nd < 1 || nd > 3) return Status::invalid("pool: the number of spatial dims must be 1, 2 or 3");
    if (batch < 0 || channels < 0 || batch >= kMaxValue || channels >= kMaxValue)
        return Status::invalid("pool: batch and channel counts must be >= 0");
    int64_t size = 1;
    for (int i = 0; i < nd; ++i) {
        if (input[i] < 1 || input[i] >= kMaxValue)
            return Status::invalid("pool: every input spatial size must be >= 1");
        size = checked_mul(size, input[i]);
        if (size < 0) return Status::invalid("pool: the input is too large");
    }
    *planes = checked_mul(batch, channels);
    if (*planes < 0 || checked_mul(*planes, size) < 0) return Status::invalid("pool: the input is too large");
    *in_plane = size;
    return Status::success();
}

// Runs body(item, scratch) for every item in [0, items), spread over the engine's threads when
// `work` (elements touched) makes that worth it. Each thread gets its own zeroed scratch of
// `scratch_floats` floats (none when 0).
template <typename Body>
Status parallel_items(int64_t items, int64_t work, int64_t scratch_floats, Body body) {
    if (items <= 0) return Status::success();
    int threads = threads_for_elementwise(work);
    if (threads > items) threads = static_cast<int>(items);
    std::atomic<bool> out_of_memory{false};
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float* scratch = nullptr;
        if (scratch_floats > 0) {
            scratch = new (std::nothrow) float[static_cast<size_t>(scratch_floats)]();
            if (scratch == nullptr) out_of_memory.store(true, std::memory_order_relaxed);
        }
#pragma omp for schedule(static)
        for (int64_t item = 0; item < items; ++item) {
            if (scratch_floats > 0 && scratch == nullptr) continue;
            body(item, scratch);
        }
        delete[] scratch;
    }
    if (out_of_memory.load()) return Status::out_of_memory("pool: could not allocate scratch");
    return Status::success();
}

// The geometry normalised to (D, H, W): leading dims of a 1-d or 2-d pool have size 1.
PoolGeometry geometry(const PoolParams& p, const int64_t out[3]) {
    PoolGeometry g{};
    const int lead = 3 - p.nd;
    for (int i = 0; i < 3; ++i) {
        const bool real = i >= lead;
        const int j = i - lead;
        g.in[i] = real ? p.input[j] : 1;
        g.out[i] = real ? out[j] : 1;
        g.kernel[i] = real ? p.kernel[j] : 1;
        g.stride[i] = real ? p.stride[j] : 1;
        g.pad[i] = real ? p.padding[j] : 0;
        g.dilation[i] = real ? p.dilation[j] : 1;
    }
    g.count_include_pad = p.count_include_pad;
    g.divisor_override = p.divisor_override;
    // avg-pool scratch: column factors, then a padded row long enough for every window and
    // for the vector paths' over-read (see pool_kernels.h).
    int64_t row = g.pad[2] + g.in[2];
    const int64_t reach = (g.out[2] - 1) * g.stride[2] + g.kernel[2];
    if (reach > row) row = reach;
    g.scratch_floats = g.out[2] + row + 2 * g.stride[2] + 64;
    return g;
}

struct Sizes {
    int64_t planes, in_plane, out_plane;
};

Status prepare(const PoolParams& p, PoolGeometry* g, Sizes* s) {
    int64_t out[3];
    if (Status st = pool_output_size(p, out); !st.ok()) return st;
    if (Status st = check_tensor(p.nd, p.batch, p.channels, p.input, &s->planes, &s->in_plane);
        !st.ok())
        return st;
    *g = geometry(p, out);
    s->out_plane = g->out[0] * g->out[1] * g->out[2];
    return Status::success();
}

// Adaptive pooling whose every output size divides the input size is ordinary pooling with
// kernel = stride = in / out (same windows, same divisor); returns false otherwise.
bool as_uniform_pool(const AdaptivePoolParams& a, PoolParams* p) {
    p->nd = a.nd;
    p->batch = a.batch;
    p->channels = a.channels;
    for (int i = 0; i < a.nd; ++i) {
        if (a.input[i] % a.output[i] != 0) return false;
        p->input[i] = a.input[i];
        p->kernel[i] = p->stride[i] = a.input[i] / a.output[i];
        p->padding[i] = 0;
        p->dilation[i] = 1;
    }
    return true;
}

Status check_adaptive(const AdaptivePoolParams& a, PoolGeometry* g, Sizes* s) {
    if (Status st = check_tensor(a.nd, a.batch, a.channels, a.input, &s->planes, &s->in_plane);
        !st.ok())
        return st;
    for (int i = 0; i < a.nd; ++i)
        if (a.output[i] < 1 || a.output[i] >= kMaxValue)
            return Status::invalid("adaptive pool: every output size must be >= 1");
    *g = PoolGeometry{};
    const int lead = 3 - a.nd;
    for (int i = 0; i < 3; ++i) {
        g->in[i] = i >= lead ? a.input[i - lead] : 1;
        g->out[i] = i >= lead ? a.output[i - lead] : 1;
        g->kernel[i] = g->stride[i] = g->dilation[i] = 1;
    }
    s->out_plane = checked_mul(checked_mul(g->out[0], g->out[1]), g->out[2]);
    if (s->out_plane < 0 || checked_mul(s->planes, s->out_plane) < 0)
        return Status::invalid("adaptive pool: the output is too large");
    g->scratch_floats = g->in[2];
    return Status::success();
}

// The shared body of the three index-driven passes.
enum class IndexPass { scatter_add, scatter, gather };

template <IndexPass kPass>
Status index_pass(int64_t planes, int64_t full, int64_t pooled, const float* src,
                  const int64_t* indices, float* dst) {
    if (planes < 0 || full < 0 || pooled < 0)
        return Status::invalid("max pool/unpool: sizes must be >= 0");
    if (checked_mul(planes, full) < 0 || checked_mul(planes, pooled) < 0)
        return Status::invalid("max pool/unpool: the tensors are too large");
    std::atomic<bool> bad_index{false};
    Status st = parallel_items(planes, planes * (full + pooled), 0, [&](int64_t plane, float*) {
        const int64_t* idx = indices + plane * pooled;
        if (kPass == IndexPass::gather) {
            const float* s = src + plane * full;
            float* d = dst + plane * pooled;
            for (int64_t j = 0; j < pooled; ++j) {
                const int64_t i = idx[j];
                if (i < 0 || i >= full) {
                    bad_index.store(true, std::memory_order_relaxed);
                    d[j] = 0.0f;
                    continue;
                }
                d[j] = s[i];
            }
            return;
        }
        const float* s = src + plane * pooled;
        float* d = dst + plane * full;
        std::memset(d, 0, static_cast<size_t>(full) * sizeof(float));
        for (int64_t j = 0; j < pooled; ++j) {
            const int64_t i = idx[j];
            if (kPass == IndexPass::scatter_add && i == -1) continue;  // an empty window
            if (i < 0 || i >= full) {
                bad_index.store(true, std::memory_order_relaxed);
                continue;
            }
            if (kPass == IndexPass::scatter_add)
                d[i] += s[j];
            else
                d[i] = s[j];
        }
    });
    if (!st.ok()) return st;
    if (bad_index.load())
        return Status::invalid("max pool/unpool: an index is outside the plane it points into");
    return Status::success();
}

}  // namespace

Status pool_output_size(const PoolParams& p, int64_t out[3]) {
    if (p.nd < 1 || p.nd > 3) return Status::invalid("pool: the number of spatial dims must be 1, 2 or 3");
    for (int i = 0; i < p.nd; ++i) {
        const int64_t n = p.input[i], k = p.kernel[i], s = p.stride[i], pad = p.padding[i],
                      d = p.dilation[i];
        if (n < 1 || n >= kMaxValue) return Status::invalid("pool: every input spatial size must be >= 1");
        if (k < 1 || k >= kMaxValue) return Status::invalid("pool: kernel_size must be >= 1");
        if (s < 1 || s >= kMaxValue) return Status::invalid("pool: stride must be >= 1");
        if (d < 1 || d >= kMaxValue) return Status::invalid("pool: dilation must be >= 1");
        if (pad < 0) return Status::invalid("pool: padding must be >= 0");
        if (pad > k / 2) return Status::invalid("pool: padding must be at most half of kernel_size");
        // PyTorch: floor or ceil of span / stride, plus one; in ceil mode the last window must
        // start inside the input or the left padding.
        const int64_t span = n + 2 * pad - d * (k - 1) - 1;
        int64_t o = floor_div(span + (p.ceil_mode ? s - 1 : 0), s) + 1;
        if (p.ceil_mode && o > 0 && (o - 1) * s >= n + pad) --o;
        if (o < 1) return Status::invalid("pool: the output size would be <= 0 (the input is smaller than the kernel)");
        out[i] = o;
    }
    return Status::success();
}

Status max_pool_forward(const PoolParams& p, const float* x, float* y, int64_t* indices) {
    PoolGeometry g;
    Sizes s;
    if (Status st = prepare(p, &g, &s); !st.ok()) return st;
    const int64_t od_count = g.out[0], slice = g.out[1] * g.out[2];
    auto kernel = kernels().pool.max_pool_slice;
    return parallel_items(s.planes * od_count, s.planes * (s.in_plane + s.out_plane), 0,
                          [&](int64_t item, float*) {
                              const int64_t plane = item / od_count, od = item % od_count;
                              const int64_t at = plane * s.out_plane + od * slice;
                              kernel(g, x + plane * s.in_plane, od, y + at,
                                     indices ? indices + at : nullptr);
                          });
}

Status avg_pool_forward(const PoolParams& p, const float* x, float* y) {
    for (int i = 0; i < p.nd && i < 3; ++i)
        if (p.dilation[i] != 1) return Status::invalid("avg_pool: dilation must be 1");
    PoolGeometry g;
    Sizes s;
    if (Status st = prepare(p, &g, &s); !st.ok()) return st;
    const int64_t od_count = g.out[0], slice = g.out[1] * g.out[2];
    auto kernel = kernels().pool.avg_pool_slice;
    return parallel_items(s.planes * od_count, s.planes * (s.in_plane + s.out_plane),
                          g.scratch_floats, [&](int64_t item, float* scratch) {
                              const int64_t plane = item / od_count, od = item % od_count;
                              kernel(g, x + plane * s.in_plane, od,
                                     y + plane * s.out_plane + od * slice, scratch);
                          });
}

Status avg_pool_backward(const PoolParams& p, const float* grad_y, float* grad_x) {
    for (int i = 0; i < p.nd && i < 3; ++i)
        if (p.dilation[i] != 1) return Status::invalid("avg_pool: dilation must be 1");
    PoolGeometry g;
    Sizes s;
    if (Status st = prepare(p, &g, &s); !st.ok()) return st;
    auto kernel = kernels().pool.avg_pool_backward_plane;
    return parallel_items(s.planes, s.planes * (s.in_plane + s.out_plane), g.scratch_floats,
                          [&](int64_t plane, float* scratch) {
                              kernel(g, grad_y + plane * s.out_plane,
                                     grad_x + plane * s.in_plane, scratch);
                          });
}

Status max_pool_backward(int64_t planes, int64_t full, int64_t pooled, const float* grad_y,
                         const int64_t* indices, float* grad_x) {
    return index_pass<IndexPass::scatter_add>(planes, full, pooled, grad_y, indices, grad_x);
}

Status max_unpool_forward(int64_t planes, int64_t full, int64_t pooled, const float* x,
                          const int64_t* indices, float* y) {
    return index_pass<IndexPass::scatter>(planes, full, pooled, x, indices, y);
}

Status max_unpool_backward(int64_t planes, int64_t full, int64_t pooled, const float* grad_y,
                           const int64_t* indices, float* grad_x) {
    return index_pass<IndexPass::gather>(planes, full, pooled, grad_y, indices, grad_x);
}

// Global pooling (every output size 1) runs over many planes per call: one plane of a late
// ResNet layer is only 7x7.
bool is_global(const PoolGeometry& g) { return g.out[0] == 1 && g.out[1] == 1 && g.out[2] == 1; }

template <typename Kernel>
Status run_global(const Sizes& s, Kernel kernel) {
    constexpr int64_t kPlanesPerItem = 64;
    const int64_t items = (s.planes + kPlanesPerItem - 1) / kPlanesPerItem;
    return parallel_items(items, s.planes * (s.in_plane + 1), 0, [&](int64_t item, float*) {
        const int64_t first = item * kPlanesPerItem;
        const int64_t count = s.planes - first < kPlanesPerItem ? s.planes - first : kPlanesPerItem;
        kernel(first, count);
    });
}

Status adaptive_avg_pool_forward(const AdaptivePoolParams& a, const float* x, float* y) {
    PoolGeometry g;
    Sizes s;
    if (Status st = check_adaptive(a, &g, &s); !st.ok()) return st;
    if (is_global(g)) {
        auto kernel = kernels().pool.global_avg;
        return run_global(s, [&](int64_t first, int64_t count) {
            kernel(x + first * s.in_plane, count, s.in_plane, y + first);
        });
    }
    PoolParams uniform;
    if (as_uniform_pool(a, &uniform)) return avg_pool_forward(uniform, x, y);
    const int64_t od_count = g.out[0], slice = g.out[1] * g.out[2];
    auto kernel = kernels().pool.adaptive_avg_slice;
    return parallel_items(s.planes * od_count, s.planes * (s.in_plane + s.out_plane),
                          g.scratch_floats, [&](int64_t item, float* scratch) {
                              const int64_t plane = item / od_count, od = item % od_count;
                              kernel(g, x + plane * s.in_plane, od,
                                     y + plane * s.out_plane + od * slice, scratch);
                          });
}

Status adaptive_avg_pool_backward(const AdaptivePoolParams& a, const float* grad_y,
                                  float* grad_x) {
    PoolGeometry g;
    Sizes s;
    if (Status st = check_adaptive(a, &g, &s); !st.ok()) return st;
    if (is_global(g)) {
        auto kernel = kernels().pool.global_avg_backward;
        return run_global(s, [&](int64_t first, int64_t count) {
            kernel(grad_y + first, count, s.in_plane, grad_x + first * s.in_plane);
        });
    }
    PoolParams uniform;
    if (as_uniform_pool(a, &uniform)) return avg_pool_backward(uniform, grad_y, grad_x);
    auto kernel = kernels().pool.adaptive_avg_backward_plane;
    return parallel_items(s.planes, s.planes * (s.in_plane + s.out_plane), 0,
                          [&](int64_t plane, float*) {
                              float* gx = grad_x + plane * s.in_plane;
                              std::memset(gx, 0, static_cast<size_t>(s.in_plane) * sizeof(float));
                              kernel(g, grad_y + plane * s.out_plane, gx);
                          });
}

Status adaptive_max_pool_forward(const AdaptivePoolParams& a, const float* x, float* y,
                                 int64_t* indices) {
    PoolGeometry g;
    Sizes s;
    if (Status st = check_adaptive(a, &g, &s); !st.ok()) return st;
    PoolParams uniform;
    if (as_uniform_pool(a, &uniform)) return max_pool_forward(uniform, x, y, indices);
    const int64_t od_count = g.out[0], slice = g.out[1] * g.out[2];
    auto kernel = kernels().pool.adaptive_max_slice;
    return parallel_items(s.planes * od_count, s.planes * (s.in_plane + s.out_plane), 0,
                          [&](int64_t item, float*) {
                              const int64_t plane = item / od_count, od = item % od_count;
                              const int64_t at = plane * s.out_plane + od * slice;
                              kernel(g, x + plane * s.in_plane, od, y + at,
                                     indices ? indices + at : nullptr);
                          });
}

}  // namespace convengine
