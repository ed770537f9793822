// Convolution passes: parameter checks, the choice of path, threading and workspace (the paths
// are described in README.md). The kernels they call (im2col packers, col2im, direct kernels)
// are in conv_impl.inc / conv_direct__avx512.cpp, one copy per ISA; the GEMM driver is
// conv_gemm.h. Shape legend, for one group g of one image n:
//   Cg = C/G input channels, OCg = OC/G output channels, T = taps = KD*KH*KW,
//   P = OD*OH*OW output positions, I = D*H*W input positions,
//   X_g  (Cg, I)     the group's input channels        col(X_g) (Cg*T, P)  never stored
//   W_g  (OCg, Cg*T) the group's weights               Y_g  (OCg, P)
//
// Threading: the direct and GEMM paths spread their own work items (bands, weight blocks,
// column panels, k ranges) over num_threads() threads; the fallbacks run (image, group) items
// on whole threads when that balances, else one after another with the GEMM threaded.

#include "conv/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "conv/conv_gemm.h"
#include "conv/conv_kernels.h"
#include "core/int_math.h"
#include "core/kernel_table.h"
#include "core/threading.h"
#include "core/workspace.h"
#include "gemm/gemm.h"

namespace convengine {

namespace {

// ---- geometry ----------------------------------------------------------------------------------

struct Shape {
    int64_t N, C, OC, G, Cg, OCg, T, P, I;
    ConvGeom geom;  // one group of one image
};

Shape make_shape(const ConvParams& p) {
    Shape s{};
    s.N = p.batch;
    s.C = p.in_channels;
    s.OC = p.out_channels;
    s.G = p.groups;
    s.Cg = s.C / s.G;
    s.OCg = s.OC / s.G;
    ConvGeom& g = s.geom;
    for (int i = 0; i < 3; ++i) {
        g.in[i] = p.in[i];
        g.out[i] = p.out[i];
        g.k[i] = p.kernel[i];
        g.s[i] = p.stride[i];
        g.d[i] = p.dilation[i];
        g.p[i] = p.pad[i];
    }
    g.in_plane = g.in[0] * g.in[1] * g.in[2];
    g.out_plane = g.out[0] * g.out[1] * g.out[2];
    g.taps = g.k[0] * g.k[1] * g.k[2];
    s.T = g.taps;
    s.P = g.out_plane;
    s.I = g.in_plane;
    return s;
}

// The stride-1 backward-input pass as a forward convolution of dY: input dY (spatial `out`),
// output dX (spatial `in`), same kernel and dilation, offset p' = d*(k-1) - p, flipped taps.
ConvGeom flipped_geometry(const ConvGeom& g) {
    ConvGeom f = g;
    for (int i = 0; i < 3; ++i) {
        f.in[i] = g.out[i];
        f.out[i] = g.in[i];
        f.s[i] = 1;
        f.p[i] = g.d[i] * (g.k[i] - 1) - g.p[i];
    }
    f.in_plane = g.out_plane;
    f.out_plane = g.in_plane;
    return f;
}

bool is_pointwise(const ConvGeom& g) {
    for (int i = 0; i < 3; ++i)
        if (g.k[i] != 1 || g.s[i] != 1 || g.p[i] != 0 || g.in[i] != g.out[i]) return false;
    return true;
}

bool unit_stride(const ConvGeom& g) { return g.s[0] == 1 && g.s[1] == 1 && g.s[2] == 1; }

bool is_depthwise_like(const Shape& s) { return s.Cg == 1; }

// The path the last pass on this thread took (conv_last_algorithm).
thread_local const char* tls_algorithm = "none";

// ---- threading ---------------------------------------------------------------------------------

// Threads for a pass with `items` independent items of `flops_per_item` each: whole items per
// thread when that balances (items a multiple of the threads, or many items), else 1 (and the
// GEMMs inside spread over the threads). Small problems stay on one thread.
int item_threads(int64_t items, double flops_per_item) {
    const int threads = num_threads();
    if (threads <= 1 || items <= 1 || omp_in_parallel()) return 1;
    if (flops_per_item * static_cast<double>(items) < 2.0e6) return 1;
    if (items % threads == 0 || items >= 4 * threads) return threads;
    return 1;
}

// Runs body(item, thread) for item in [0, items) on `threads` threads (static schedule).
template <typename Body>
void for_items(int64_t items, int threads, Body body) {
    if (threads <= 1) {
        for (int64_t i = 0; i < items; ++i) body(i, 0);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < items; ++i) body(i, omp_get_thread_num());
}

// Threads for cheap, memory-bound loops over `units` units of `work` floats each.
int light_threads(int64_t units, int64_t work) {
    if (omp_in_parallel() || units < 2) return 1;
    const int t = threads_for_elementwise(units * work);
    return static_cast<int>(min64(t, units));
}

// Keeps the first error seen by any thread.
class StatusCollector {
  public:
    void add(const Status& s) {
        if (s.ok()) return;
#pragma omp critical(convengine_conv_status)
        if (status_.ok()) status_ = s;
    }
    Status get() const { return status_; }

  private:
    Status status_;
};

// ---- checks ------------------------------------------------------------------------------------

constexpr int64_t kMaxElements = int64_t{1} << 40;

bool product_ok(std::initializer_list<int64_t> factors) {
    int64_t total = 1;
    for (int64_t f : factors) {
        if (f < 0) return false;
        if (f != 0 && total > kMaxElements / f) return false;
        total *= f;
    }
    return true;
}

// ---- operand packers for conv_gemm ------------------------------------------------------------

// op(A) = a row-major matrix (trans 0: element (i, p) at a[i*lda + p]) or its transpose
// (trans 1: at a[p*lda + i]), packed by the GEMM's own pack_a.
struct MatrixA {
    const float* a;
    int64_t lda;
    int trans;
};

void pack_matrix_a(const void* ctx, int64_t k0, int64_t kc, int64_t i0, int64_t mc, int r,
                   float* dst) {
    const MatrixA& A = *static_cast<const MatrixA*>(ctx);
    const float* src = A.trans ? A.a + k0 * A.lda + i0 : A.a + i0 * A.lda + k0;
    kernels().gemm.pack_a(A.trans, src, A.lda, mc, kc, r, dst);
}

// op(A)[o][i*P + pix] = dY[i][g*OCg + o][pix]: the output gradient of every image side by side
// (the backward-weight pass sums over images along k).
struct ImagesA {
    const float* dy_g;  // image 0, channel g*OCg
    int64_t P;
    int64_t image_stride;  // OC * P
};

void pack_images_a(const void* ctx, int64_t k0, int64_t kc, int64_t i0, int64_t mc, int r,
                   float* dst) {
    const ImagesA& A = *static_cast<const ImagesA*>(ctx);
    const GemmKernels& g = kernels().gemm;
    for (int64_t s0 = k0; s0 < k0 + kc;) {
        const int64_t img = s0 / A.P, pix = s0 % A.P;
        const int64_t len = min64(A.P - pix, k0 + kc - s0);
        const float* src = A.dy_g + img * A.image_stride + i0 * A.P + pix;
        for (int64_t q0 = 0; q0 < mc; q0 += r)
            g.pack_a(0, src + q0 * A.P, A.P, min64(r, mc - q0), len, r,
                     dst + q0 * kc + (s0 - k0) * r);
        s0 += len;
    }
}

// Threads for a GEMM-sized pass of `flops`: all of them, but one below ~2 MFLOP.
int gemm_threads(double flops) {
    if (omp_in_parallel()) return 1;
    return flops < 2.0e6 ? 1 : num_threads();
}

int64_t budget_floats() { return workspace_budget() / static_cast<int64_t>(sizeof(float)); }

// ---- direct (packing-free) micro-kernel passes ---------------------------------------------
//
// Where the ISA has one (KernelTable::conv.direct_rows: AVX-512), the forward pass and the
// stride-1 backward-input pass skip im2col altogether: the weights are packed once into blocks
// of 16 or 32 output channels, each thread copies a band of output rows' worth of input
// into a zero-padded buffer (the padding becomes real zeros, so the kernel never tests bounds),
// and the micro-kernel broadcasts input values straight from it. Work items are (image, group,
// band); bands are as tall as the workspace allows, but small enough to give every thread work.

// op(A)[oc][k] of a group: the weights (forward) or the flipped, channel-swapped weights
// (stride-1 backward-input).
// at(oc, o, t) is op(A)[oc][o*taps() + t] (o: the channel summed over, t: the tap).
struct WeightView {
    const float* w_g;
    bool flipped;
    int64_t Cg, T, K;  // Cg: the *forward* convolution's input channels per group
    int64_t taps() const { return T; }
    float at(int64_t oc, int64_t o, int64_t t) const {
        if (!flipped) return w_g[oc * K + o * T + t];
        return w_g[(o * Cg + oc) * T + (T - 1 - t)];
    }
};

// Y (N, G*M, out) = conv of X (N, G*Cin, in) by geometry `geom`, group g's weights view(g)
// (M x Cin*T). False when the direct path does not apply or does not fit the workspace.
// `scratch`/`scratch_floats`: workspace to carve from (a caller already holding the thread's
// lease); null to lease it here.
template <typename View>
bool direct_tiled_pass(const ConvGeom& geom, int64_t N, int64_t G, int64_t Cin, int64_t M,
                       const float* x, View view, const float* bias, bool relu, float* y,
                       Status* status, float* scratch = nullptr, int64_t scratch_floats = 0,
                       int64_t* need_out = nullptr) {
    const ConvKernels& kk = kernels().conv;
    if (kk.direct_rows == nullptr) return false;
    if (geom.s[2] != 1 && geom.s[2] != 2) return false;
    const int64_t OD = geom.out[0], OH = geom.out[1], OW = geom.out[2];
    // Tiles: 14 pixels of a row, 32 channels, or 16 (two rows per tile) when there are 16 or
    // fewer. Rows under 12 pixels waste much of a tile: conv_gemm does better there (measured on
    // 7x7 images: 2-row x 7-pixel tiles ran about 20% slower than the GEMM).
    if (OW < 12) return false;
    // A strided 1x1 convolution reads one input column in s: the band would copy the others for
    // nothing; the GEMM's packer gathers just those (measured ~5% faster on resnet_1x1_down).
    if (geom.taps == 1 && geom.s[2] > 1) return false;
    const int64_t TP = 14;
    const int oc_vecs = M <= 16 ? 1 : 2;
    const int64_t TO = 16 * oc_vecs;
    const int64_t tile_rows = 28 / (TP * oc_vecs);  // 28 accumulators: rows x TP x oc_vecs
    const int64_t T = geom.taps, K = Cin * T;
    const int64_t P = geom.out_plane, I = geom.in_plane;
    const int64_t blocks = ceil_div(M, TO);
    const int64_t wfloats = G * blocks * K * TO;
    const int64_t koff_floats = 2 * K;  // int64 offsets
    // Band geometry for b output rows of the outer dim (D when OD > 1, else H).
    const bool outer_d = OD > 1;
    const int64_t outer = outer_d ? OD : OH;
    // (the 16-channel kernel at stride 1 reads whole 16-pixel vectors instead of 14-pixel tiles)
    const int64_t cover = std::max(ceil_div(OW, TP) * TP, round_up(OW, 16));
    // W stride 2 without dilation, where the kernel then takes its pixel-vector tiles (16
    // channels or fewer, or rows that 16-pixel vectors fit better than 14-pixel tiles): band rows
    // are stored split by column parity (the even columns, then the odd ones, Wh each) and read
    // at stride 1: tap kw of pixel i is half kw % 2, column i + kw/2 (measured 2.68 -> 2.48 ms on
    // convT_unet_up's backward-input; no gain on 14-pixel tiles, 3% slower on resnet_stem).
    const bool pix = oc_vecs == 1 || round_up(OW, 16) < ceil_div(OW, TP) * TP;
    const bool split_w = pix && geom.s[2] == 2 && geom.d[2] == 1 && geom.p[2] >= 0;
    const int64_t Wh = round_up(cover + (geom.k[2] - 1) / 2, 16);
    const int64_t Wb = split_w ? 2 * Wh
                               : round_up((cover - 1) * geom.s[2] +
                                                (geom.k[2] - 1) * geom.d[2] + 1, 16);
    auto band_dims = [&](int64_t b, int64_t* Db, int64_t* Hb) {
        const int64_t extra = (tile_rows - 1) * geom.s[1];  // rows a last partial tile reads
        if (outer_d) {
            *Db = (b - 1) * geom.s[0] + (geom.k[0] - 1) * geom.d[0] + 1;
            *Hb = (OH - 1) * geom.s[1] + (geom.k[1] - 1) * geom.d[1] + 1 + extra;
        } else {
            *Db = (geom.k[0] - 1) * geom.d[0] + 1;
            *Hb = (b - 1) * geom.s[1] + (geom.k[1] - 1) * geom.d[1] + 1 + extra;
        }
    };
    const int threads0 = gemm_threads(2.0 * N * G * M * P * K);
    const int64_t budget = (scratch ? scratch_floats : budget_floats()) - round_up(wfloats, 16) -
                           round_up(koff_floats, 16);
    if (budget <= 0) return false;
    // Two ways to share the work. Band-major: items (image, group, band), bands as tall as fit
    // in about 1 MiB (read many times while their rows are computed: they should stay in L2;
    // 4 MiB for 3-D, see below), but small enough for at least 2 items per thread; the packed
    // weights of a group stream through once per band. Weight-block-major, when a group's
    // weights are large (over 1 MiB: they would stream from L3 for every band of every image)
    // and every image's whole padded input fits the workspace: pad everything first, then each
    // thread takes whole weight blocks, and runs them over one image after another (its blocks
    // stay in its L2, each image's band passes through once). Not when band-major items are
    // whole images already (weights then stream once per image: measured faster on resnet_l3,
    // 7.0 vs 7.6 ms with 2 threads).
    const int64_t units = G * blocks;
    const int64_t want_items = 2 * threads0;
    // 3-D bands copy b + (k-1)*d planes for b output planes (a one-plane band copies every input
    // plane k times): there bands up to 4 MiB cost less than the copies they save (measured 61
    // -> 55 ms on conv3d_ct's backward-input, 1 thread).
    const int64_t band_target =
        std::min<int64_t>(budget / threads0, int64_t{1} << (outer_d ? 20 : 18));
    int64_t Db, Hb;
    band_dims(outer, &Db, &Hb);
    const int64_t whole_band = round_up(Cin * Db * Hb * Wb, 16);
    const bool whole_image_items = whole_band <= band_target && N * G >= want_items;
    const bool weight_major = K * M * static_cast<int64_t>(sizeof(float)) > (int64_t{1} << 20) &&
                              !whole_image_items &&
                              (units % threads0 == 0 || units >= 4 * threads0) &&
                              N * G * whole_band <= budget;
    int64_t b = outer;
    if (!weight_major) {
        if (N * G * ceil_div(outer, b) < want_items)
            b = std::max<int64_t>(1, ceil_div(outer, ceil_div(want_items, N * G)));
        for (;;) {
            band_dims(b, &Db, &Hb);
            if (Cin * Db * Hb * Wb <= band_target || b == 1) break;
            b = (b + 1) / 2;
        }
    }
    band_dims(b, &Db, &Hb);
    const int64_t band_floats = round_up(Cin * Db * Hb * Wb, 16);
    const int64_t nbands = ceil_div(outer, b);
    const int64_t items = N * G * nbands;
    const int threads = static_cast<int>(std::min<int64_t>(threads0, weight_major ? units : items));
    const int64_t band_slots = weight_major ? N * G : threads;
    if (band_floats * band_slots > budget) return false;

    const int64_t need = round_up(wfloats, 16) + round_up(koff_floats, 16) + band_floats * band_slots;
    if (need_out != nullptr) {  // plan only: how much scratch this pass would use
        *need_out = need;
        return true;
    }
    WorkspaceLease ws(scratch ? 0 : need * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) {
        *status = ws.status();
        return true;
    }
    float* wpk = scratch ? scratch : ws.floats();
    int64_t* koff = reinterpret_cast<int64_t*>(wpk + round_up(wfloats, 16));
    float* bands = wpk + round_up(wfloats, 16) + round_up(koff_floats, 16);
    // Pack the weights: group g, block q at wpk + (g*blocks + q)*K*TO, k-major, TO per k; blocks
    // spread over the threads (packed serially, resnet_l3's 2.4 MB took a tenth of the pass).
    const int pack_threads = static_cast<int>(std::min<int64_t>(threads0, G * blocks));
    for_items(G * blocks, pack_threads, [&](int64_t u, int) {
        const int64_t g = u / blocks, q = u % blocks;
        const auto v = view(g);
        const int64_t vt = v.taps();
        float* dst = wpk + u * K * TO;
        for (int64_t o = 0, k = 0; o < Cin; ++o)
            for (int64_t t = 0; t < vt; ++t, ++k)
                for (int64_t j = 0; j < TO; ++j) {
                    const int64_t oc = q * TO + j;
                    dst[k * TO + j] = oc < M ? v.at(oc, o, t) : 0.0f;
                }
    });
    for (int64_t k = 0; k < K; ++k) {
        const int64_t c = k / T, t = k % T;
        const int64_t kw = t % geom.k[2], kh = (t / geom.k[2]) % geom.k[1];
        const int64_t kd = t / (geom.k[2] * geom.k[1]);
        koff[k] = c * Db * Hb * Wb + kd * geom.d[0] * Hb * Wb + kh * geom.d[1] * Wb +
                  (split_w ? kw % 2 * Wh + kw / 2 : kw * geom.d[2]);
    }
    const int64_t D = geom.in[0], H = geom.in[1], W = geom.in[2];
    // Zero-padded copy of band (outer rows [o0, ..)) of image n, group g:
    // buf[c][zd][zh][q] = x[c][zd + d_lo][zh + h_lo][q - pw].
    auto copy_band = [&](int64_t n, int64_t g, int64_t o0, float* buf) {
        const int64_t d_lo = (outer_d ? o0 * geom.s[0] : 0) - geom.p[0];
        const int64_t h_lo = (outer_d ? 0 : o0 * geom.s[1]) - geom.p[1];
        const int64_t pw = geom.p[2];
        const float* xg = x + (n * G + g) * Cin * I;
        for (int64_t c = 0; c < Cin; ++c)
            for (int64_t zd = 0; zd < Db; ++zd)
                for (int64_t zh = 0; zh < Hb; ++zh) {
                    float* row = buf + ((c * Db + zd) * Hb + zh) * Wb;
                    const int64_t id = zd + d_lo, ih = zh + h_lo;
                    if (id < 0 || id >= D || ih < 0 || ih >= H) {
                        std::memset(row, 0, static_cast<size_t>(Wb) * sizeof(float));
                        continue;
                    }
                    const float* src = xg + (c * D + id) * H * W + ih * W;
                    if (split_w) {
                        // padded column q = x column q - pw goes to half q % 2, index q / 2
                        std::memset(row, 0, static_cast<size_t>(Wb) * sizeof(float));
                        const int64_t n = std::min<int64_t>(W, 2 * Wh - pw);
                        if (n <= 0) continue;
                        if (pw % 2 == 0)
                            kk.deinterleave(src, n, row + pw / 2, row + Wh + pw / 2);
                        else
                            kk.deinterleave(src, n, row + Wh + (pw - 1) / 2, row + (pw + 1) / 2);
                        continue;
                    }
                    const int64_t q0 = std::max<int64_t>(0, pw);
                    const int64_t q1 = std::min<int64_t>(Wb, W + pw);
                    for (int64_t q = 0; q < q0 && q < Wb; ++q) row[q] = 0.0f;
                    if (q1 > q0)
                        std::memcpy(row + q0, src + (q0 - pw),
                                    static_cast<size_t>(q1 - q0) * sizeof(float));
                    for (int64_t q = std::max(q0, q1); q < Wb; ++q) row[q] = 0.0f;
                }
    };
    // Outer rows [o0, o1) of image n, group g, weight block q, from its band.
    auto run_block = [&](int64_t n, int64_t g, int64_t o0, int64_t o1, int64_t q,
                         const float* buf) {
        DirectRows a{};
        a.band = buf;
        a.Hb = Hb;
        a.Wb = Wb;
        a.koff = koff;
        a.K = K;
        a.w = wpk + (g * blocks + q) * K * TO;
        a.sd = geom.s[0];
        a.sh = geom.s[1];
        a.sw = split_w ? 1 : geom.s[2];
        a.od0 = outer_d ? o0 : 0;
        a.od1 = outer_d ? o1 : 1;
        a.oh0 = outer_d ? 0 : o0;
        a.oh1 = outer_d ? OH : o1;
        a.band_od0 = a.od0;
        a.band_oh0 = a.oh0;
        a.OH = OH;
        a.OW = OW;
        a.P = P;
        a.y = y + ((n * G + g) * M + q * TO) * P;
        a.oc_valid = std::min<int64_t>(TO, M - q * TO);
        a.bias = bias ? bias + g * M + q * TO : nullptr;
        a.relu = relu ? 1 : 0;
        a.oc_vecs = oc_vecs;
        kk.direct_rows(a);
    };
    if (weight_major) {
        const int copy_threads = static_cast<int>(std::min<int64_t>(threads0, N * G));
        for_items(N * G, copy_threads, [&](int64_t i, int) {
            copy_band(i / G, i % G, 0, bands + i * band_floats);
        });
        for_items(threads, threads, [&](int64_t part, int) {
            const int64_t u0 = units * part / threads, u1 = units * (part + 1) / threads;
            for (int64_t n = 0; n < N; ++n)
                for (int64_t u = u0; u < u1; ++u)
                    run_block(n, u / blocks, 0, outer, u % blocks,
                              bands + (n * G + u / blocks) * band_floats);
        });
        return true;
    }
    for_items(items, threads, [&](int64_t item, int t) {
        const int64_t band = item % nbands;
        const int64_t g = (item / nbands) % G;
        const int64_t n = item / (nbands * G);
        const int64_t o0 = band * b, o1 = std::min(outer, o0 + b);
        float* buf = bands + t * band_floats;
        copy_band(n, g, o0, buf);
        for (int64_t q = 0; q < blocks; ++q) run_block(n, g, o0, o1, q, buf);
    });
    return true;
}

// Leases the plan's workspace and runs gemm_for_group(g, workspace) -> Status for every group,
// stopping at the first error. Returns true: the pass is done (*status says how it went).
template <typename GroupGemm>
bool run_group_gemms(int64_t groups, const ConvGemmPlan& plan, Status* status,
                     GroupGemm gemm_for_group) {
    WorkspaceLease ws(plan.floats * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) {
        *status = ws.status();
        return true;
    }
    for (int64_t g = 0; g < groups; ++g) {
        *status = gemm_for_group(g, ws.floats());
        if (!status->ok()) break;
    }
    return true;
}

// Y_g (OCg, N*P) = W_g (OCg, Cg*T) @ col(X_g) (Cg*T, N*P) for every group: one GEMM per group
// over all images, weights packed once. False (nothing done) when the workspace cannot hold it.
bool forward_gemm(const Shape& s, const float* x, const float* w, const float* bias, bool relu,
                  float* y, Status* status) {
    const int64_t K = s.Cg * s.T;
    ConvGemm p;
    p.m = s.OCg;
    p.n = s.N * s.P;
    p.k = K;
    p.c = {nullptr, s.P, s.P, s.OC * s.P};  // the base per group, below
    ConvGemmPlan plan;
    const int threads = gemm_threads(2.0 * s.OC * s.N * s.P * K);
    if (!conv_gemm_plan_auto(p, threads, budget_floats(), &plan)) return false;
    const ConvKernels& k = kernels().conv;
    return run_group_gemms(s.G, plan, status, [&](int64_t g, float* ws) {
        MatrixA a{w + g * s.OCg * K, K, 0};
        Im2colSource b{&s.geom, x + g * s.Cg * s.I, s.Cg, s.C * s.I};
        p.a = {pack_matrix_a, &a};
        p.b = {k.pack_col, &b};
        p.c = {y + g * s.OCg * s.P, s.P, s.P, s.OC * s.P};
        p.bias_row = bias ? bias + g * s.OCg : nullptr;
        p.relu = relu;
        return conv_gemm(p, plan, ws);
    });
}

// Stride 1: dX_g (Cg, N*I) = W'_g (Cg, OCg*T) @ col'(dY_g) (OCg*T, N*I), the flipped forward
// convolution, one GEMM per group over all images. bias/relu: the transposed forward's.
bool backward_input_gemm(const Shape& s, const float* dy, const float* w, const float* bias,
                         bool relu, float* dx, Status* status) {
    const ConvGeom fg = flipped_geometry(s.geom);
    const int64_t K = s.OCg * s.T;
    ConvGemm p;
    p.m = s.Cg;
    p.n = s.N * s.I;
    p.k = K;
    p.c = {nullptr, s.I, s.I, s.C * s.I};  // the base per group, below
    ConvGemmPlan plan;
    const int threads = gemm_threads(2.0 * s.C * s.N * s.I * K);
    if (!conv_gemm_plan_auto(p, threads, budget_floats(), &plan)) return false;
    const ConvKernels& k = kernels().conv;
    return run_group_gemms(s.G, plan, status, [&](int64_t g, float* ws) {
        FlippedWeights a{w + g * s.OCg * s.Cg * s.T, s.Cg, s.T};
        MatrixA at{w + g * s.OCg * s.Cg, s.Cg, 1};  // 1x1: W_g^T read in place
        Im2colSource b{&fg, dy + g * s.OCg * s.P, s.OCg, s.OC * s.P};
        p.a = s.T == 1 ? PanelSource{pack_matrix_a, &at} : PanelSource{k.pack_w_flipped, &a};
        p.b = {k.pack_col, &b};
        p.c = {dx + g * s.Cg * s.I, s.I, s.I, s.C * s.I};
        p.bias_row = bias ? bias + g * s.Cg : nullptr;
        p.relu = relu;
        return conv_gemm(p, plan, ws);
    });
}

// dW_g (OCg, Cg*T) = dY_g (OCg, N*P) @ col(X_g)^T (N*P, Cg*T): the sum over images is the GEMM's
// k. Threads split k (private partial sums of dW_g, added at the end) or the columns of dW_g
// (each thread then packs all of dY_g), whichever copies less.
bool backward_weight_gemm(const Shape& s, const float* dy, const float* x, float* dw,
                          Status* status) {
    const int64_t n = s.Cg * s.T;
    ConvGemm p;
    p.m = s.OCg;
    p.n = n;
    p.k = s.N * s.P;
    p.c = {nullptr, n, n, 0};  // the base per group, below
    const int threads = gemm_threads(2.0 * s.OC * n * p.k);
    // extra work: the depth split adds (T-1) copies of dW_g, the column split packs dY_g T times
    const bool depth = threads > 1 && p.n < p.k;
    ConvGemmPlan plan;
    if (!conv_gemm_plan(p, depth ? ConvGemmSplit::depth : ConvGemmSplit::columns, threads,
                        budget_floats(), &plan) &&
        !(depth && conv_gemm_plan(p, ConvGemmSplit::columns, threads, budget_floats(), &plan)))
        return false;
    const ConvKernels& k = kernels().conv;
    return run_group_gemms(s.G, plan, status, [&](int64_t g, float* ws) {
        ImagesA a{dy + g * s.OCg * s.P, s.P, s.OC * s.P};
        Im2colSource b{&s.geom, x + g * s.Cg * s.I, s.Cg, s.C * s.I};
        p.a = {pack_images_a, &a};
        p.b = {k.pack_col_t, &b};
        p.c = {dw + g * s.OCg * n, n, n, 0};
        return conv_gemm(p, plan, ws);
    });
}

// ---- forward -----------------------------------------------------------------------------------

// Y_g = relu?(W_g @ col(X_g) + bias_g) for one image, on `threads`-way GEMM (1 inside items).
Status forward_item(const Shape& s, const float* x_ng, const float* w_g, const float* bias_g,
                    bool relu, float* y_ng) {
    GemmEpilogue e;
    if (bias_g != nullptr) {
        e.bias = bias_g;
        e.bias_axis = BiasAxis::row;
    }
    e.relu = relu;
    const int64_t K = s.Cg * s.T;
    if (is_pointwise(s.geom)) {
        // (OCg, P) = (OCg, Cg) @ (Cg, P): the image is already the column matrix.
        return sgemm(false, false, s.OCg, s.P, K, 1.0f, w_g, K, x_ng, s.P, 0.0f, y_ng, s.P, e);
    }
    // (OCg, P) = (OCg, Cg*T) @ col(X_g) (Cg*T, P), B panels packed from the image.
    Im2colSource src{&s.geom, x_ng, s.Cg, s.C * s.I};
    const SgemmBSource b{kernels().conv.pack_col, &src};
    return sgemm_bsource(false, s.OCg, s.P, K, 1.0f, w_g, K, b, 0.0f, y_ng, s.P, e);
}

// Scratch for the direct kernels: one padded plane per thread (when that fits the budget;
// otherwise the kernels run their slower bounds-testing loops with no scratch).
struct DirectScratch {
    int64_t floats = 0;  // per thread
    int threads = 1;
};

DirectScratch direct_scratch(const ConvGeom& g, int threads) {
    DirectScratch d;
    d.threads = threads;
    const int64_t need = (kernels().conv.direct_scratch_floats(g) + 15) / 16 * 16;
    if (need * threads * static_cast<int64_t>(sizeof(float)) <= workspace_budget()) d.floats = need;
    return d;
}

// Cg == 1: the output channels of group g all read input channel g: one padded copy of each
// input plane serves all of them.
Status forward_direct(const Shape& s, const float* x, const float* w, const float* bias,
                      bool relu, float* y) {
    const ConvKernels& k = kernels().conv;
    const int64_t planes = s.N * s.C;  // C == G
    const int threads = light_threads(planes, s.P * s.T * s.OCg);
    const DirectScratch ds = direct_scratch(s.geom, threads);
    WorkspaceLease ws(ds.floats * threads * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) return ws.status();
    for_items(planes, threads, [&](int64_t i, int t) {
        const int64_t g = i % s.C;
        k.direct_forward(s.geom, x + i * s.I, w + g * s.OCg * s.T, s.OCg,
                         bias ? bias + g * s.OCg : nullptr, 0, relu ? 1 : 0,
                         y + i * s.OCg * s.P, s.P, ws.floats() + t * ds.floats, ds.floats);
    });
    return Status::success();
}

Status forward_impl(const Shape& s, const float* x, const float* w, const float* bias, bool relu,
                    float* y) {
    if (s.N == 0) return Status::success();
    if (is_depthwise_like(s)) {
        tls_algorithm = "direct-depthwise";
        return forward_direct(s, x, w, bias, relu, y);
    }
    Status status;
    const int64_t K = s.Cg * s.T;
    auto forward_view = [&](int64_t g) {
        return WeightView{w + g * s.OCg * K, false, s.Cg, s.T, K};
    };
    tls_algorithm = "direct-tiles";
    if (direct_tiled_pass(s.geom, s.N, s.G, s.Cg, s.OCg, x, forward_view, bias, relu, y, &status))
        return status;
    tls_algorithm = "conv-gemm";
    if (forward_gemm(s, x, w, bias, relu, y, &status)) return status;
    tls_algorithm = "gemm-per-image";
    // Fallback (a workspace too small for the packed weights): per image on gemm/sgemm.
    const int64_t items = s.N * s.G;
    const double flops = 2.0 * s.OCg * s.P * s.Cg * s.T;
    const int threads = item_threads(items, flops);
    StatusCollector collected;
    for_items(items, threads, [&](int64_t i, int) {
        const int64_t n = i / s.G, g = i % s.G;
        collected.add(forward_item(s, x + (n * s.C + g * s.Cg) * s.I, w + g * s.OCg * s.Cg * s.T,
                                bias ? bias + g * s.OCg : nullptr, relu,
                                y + (n * s.OC + g * s.OCg) * s.P));
    });
    return collected.get();
}

// ---- backward-input ----------------------------------------------------------------------------

// dx = fill (bias per channel or zero) for `planes` planes of `plane` floats.
void fill_planes(int64_t batch, int64_t channels, int64_t plane, const float* bias, float* dx) {
    const int64_t planes = batch * channels;
    const int threads = light_threads(planes, plane);
    for_items(planes, threads, [&](int64_t i, int) {
        float* d = dx + i * plane;
        if (bias == nullptr) {
            std::memset(d, 0, static_cast<size_t>(plane) * sizeof(float));
        } else {
            const float v = bias[i % channels];
            for (int64_t j = 0; j < plane; ++j) d[j] = v;
        }
    });
}

void relu_in_place(float* x, int64_t n) {
    const int64_t chunk = 1 << 14;
    const int64_t chunks = ceil_div(n, chunk);
    const int threads = light_threads(chunks, chunk);
    for_items(chunks, threads, [&](int64_t c, int) {
        float* p = x + c * chunk;
        const int64_t len = min64(chunk, n - c * chunk);
        for (int64_t j = 0; j < len; ++j) p[j] = p[j] < 0.0f ? 0.0f : p[j];
    });
}

// Cg == 1: dx[n, g] = sum over the group's output channels o of the adjoint of the direct kernel.
// Stride 1 runs the forward kernel on the flipped geometry with flipped taps (a gather: fast);
// larger strides scatter.
Status backward_input_direct(const Shape& s, const float* dy, const float* w, const float* bias,
                             bool relu, float* dx) {
    const ConvKernels& k = kernels().conv;
    const bool flip = unit_stride(s.geom);
    const ConvGeom fg = flipped_geometry(s.geom);
    const int64_t planes = s.N * s.C;  // C == G
    const int threads = light_threads(planes, s.P * s.T * s.OCg);
    const DirectScratch ds = flip ? direct_scratch(fg, threads) : DirectScratch{};
    WorkspaceLease ws(ds.floats * threads * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) return ws.status();
    for_items(planes, threads, [&](int64_t i, int t) {
        const int64_t n = i / s.C, g = i % s.C;
        float* d = dx + i * s.I;
        const float b = bias ? bias[g] : 0.0f;
        if (!flip)
            for (int64_t j = 0; j < s.I; ++j) d[j] = b;
        std::vector<float> wf(flip ? static_cast<size_t>(s.T) : 0);  // one channel's taps
        for (int64_t m = 0; m < s.OCg; ++m) {
            const int64_t o = g * s.OCg + m;
            const float* dyp = dy + (n * s.OC + o) * s.P;
            const bool last = m + 1 == s.OCg;
            if (flip) {
                // the first output channel starts dx from the bias, the others add to it
                for (int64_t q = 0; q < s.T; ++q) wf[q] = w[o * s.T + (s.T - 1 - q)];
                k.direct_forward(fg, dyp, wf.data(), 1, &b, m > 0 ? 1 : 0,
                                 relu && last ? 1 : 0, d, s.I, ws.floats() + t * ds.floats,
                                 ds.floats);
            } else {
                k.dw_backward_input_add(s.geom, dyp, w + o * s.T, d);
            }
        }
        if (relu && !flip)
            for (int64_t j = 0; j < s.I; ++j) d[j] = d[j] < 0.0f ? 0.0f : d[j];
    });
    return Status::success();
}

// Stride 1: dX_g (Cg, I) = W'_g (Cg, OCg*T) @ col'(dY_g) (OCg*T, I), a forward convolution of
// dY with W'_g[c][o*T + t] = W_g[o][c][T-1-t] (flipped taps, channels swapped), held in the
// workspace (one weight-sized copy). Bias and ReLU (transposed forward) go in the epilogue.
Status backward_input_flipped(const Shape& s, const float* dy, const float* wflip,
                              const float* bias, bool relu, float* dx) {
    const ConvGeom fg = flipped_geometry(s.geom);
    const int64_t K = s.OCg * s.T;
    const int64_t items = s.N * s.G;
    const int threads = item_threads(items, 2.0 * s.Cg * s.I * K);
    StatusCollector status;
    for_items(items, threads, [&](int64_t i, int) {
        const int64_t n = i / s.G, g = i % s.G;
        GemmEpilogue e;
        if (bias) {
            e.bias = bias + g * s.Cg;
            e.bias_axis = BiasAxis::row;
        }
        e.relu = relu;
        const float* dy_ng = dy + (n * s.OC + g * s.OCg) * s.P;
        float* dx_ng = dx + (n * s.C + g * s.Cg) * s.I;
        const float* a = wflip + g * s.Cg * K;
        Im2colSource src{&fg, dy_ng, s.OCg, s.OC * s.P};
        const SgemmBSource b{kernels().conv.pack_col, &src};
        status.add(sgemm_bsource(false, s.Cg, s.I, K, 1.0f, a, K, b, 0.0f, dx_ng, s.I, e));
    });
    return status.get();
}

// 1x1, stride 1, no padding: dX_g (Cg, I) = W_g^T (Cg, OCg) @ dY_g (OCg, P = I), W_g read
// transposed in place (no copy, no workspace).
Status backward_input_pointwise(const Shape& s, const float* dy, const float* w,
                                const float* bias, bool relu, float* dx) {
    const int64_t items = s.N * s.G;
    const int threads = item_threads(items, 2.0 * s.Cg * s.I * s.OCg);
    StatusCollector status;
    for_items(items, threads, [&](int64_t i, int) {
        const int64_t n = i / s.G, g = i % s.G;
        GemmEpilogue e;
        if (bias) {
            e.bias = bias + g * s.Cg;
            e.bias_axis = BiasAxis::row;
        }
        e.relu = relu;
        status.add(sgemm(true, false, s.Cg, s.I, s.OCg, 1.0f, w + g * s.OCg * s.Cg, s.Cg,
                         dy + (n * s.OC + g * s.OCg) * s.P, s.P, 0.0f,
                         dx + (n * s.C + g * s.Cg) * s.I, s.I, e));
    });
    return status.get();
}

// W'_g[c][o*T + t] = W_g[o][c][T-1-t] for every group, into `wf` (G*Cg*OCg*T floats).
void flip_weights(const Shape& s, const float* w, float* wf) {
    const int64_t K = s.OCg * s.T;
    for (int64_t g = 0; g < s.G; ++g)
        for (int64_t c = 0; c < s.Cg; ++c) {
            float* row = wf + (g * s.Cg + c) * K;
            for (int64_t o = 0; o < s.OCg; ++o) {
                const float* src = w + ((g * s.OCg + o) * s.Cg + c) * s.T;
                for (int64_t t = 0; t < s.T; ++t) row[o * s.T + t] = src[s.T - 1 - t];
            }
        }
}

// Any stride: col = W_g^T @ dY_g on tiles of (rows of col) x (output positions), each tile
// scattered into dX by col2im. A tile is rows [r0, r0 + nr) of col(X_g) (r = c*T + t) by
// positions [p0, p0 + np): (nr, np) = W_g^T[r0 : r0+nr, :] (nr, OCg) @ dY_g[:, p0 : p0+np].
// Tiles are sized to the workspace budget (down to one row by one position).
Status backward_input_col2im(const Shape& s, const float* dy, const float* w, const float* bias,
                             bool relu, float* dx) {
    const ConvKernels& k = kernels().conv;
    const int64_t rows = s.Cg * s.T;
    const int64_t items = s.N * s.G;
    const int threads = item_threads(items, 2.0 * rows * s.P * s.OCg);
    // Tile: all rows of col by as many positions as fit in about 1 MiB (the tile is written by
    // the GEMM and read back by col2im while it is still in L2); when not even 64 positions fit
    // with every row, fewer rows (whole channels when possible). Never above the budget.
    const int64_t budget_floats =
        workspace_budget() / static_cast<int64_t>(sizeof(float)) / threads;
    const int64_t target = max64(1, min64(budget_floats - 16, int64_t{1} << 18));
    int64_t tile_rows = rows, tile_cols = min64(s.P, target / rows);
    if (tile_cols < min64(s.P, 64)) {
        tile_cols = min64(s.P, min64(64, target));
        tile_rows = max64(1, min64(rows, target / tile_cols));
        if (tile_rows >= s.T) tile_rows = tile_rows / s.T * s.T;
    }
    const int64_t tile_floats = ((tile_rows * tile_cols + 15) / 16) * 16;
    WorkspaceLease ws(tile_floats * threads * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) return ws.status();
    fill_planes(s.N, s.C, s.I, bias, dx);
    StatusCollector status;
    const int gemm_threads_mode = threads == 1;
    for_items(items, threads, [&](int64_t i, int t) {
        const int64_t n = i / s.G, g = i % s.G;
        float* col = ws.floats() + t * tile_floats;
        const float* dy_ng = dy + (n * s.OC + g * s.OCg) * s.P;
        const float* w_g = w + g * s.OCg * rows;
        float* dx_ng = dx + (n * s.C + g * s.Cg) * s.I;
        for (int64_t p0 = 0; p0 < s.P; p0 += tile_cols) {
            const int64_t np = min64(tile_cols, s.P - p0);
            for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
                const int64_t nr = min64(tile_rows, rows - r0);
                // (nr, np) = op(A) (nr, OCg) @ dY (OCg, np); op(A) = W_g^T rows r0.. (lda rows)
                Status st = sgemm(true, false, nr, np, s.OCg, 1.0f, w_g + r0, rows, dy_ng + p0,
                                  s.P, 0.0f, col, np);
                if (!st.ok()) {
                    status.add(st);
                    return;
                }
                if (gemm_threads_mode) {
                    // Scatter in parallel over whole channels (disjoint planes of dX).
                    const int64_t c_first = r0 / s.T, c_last = ceil_div(r0 + nr, s.T);
                    const int64_t nch = c_last - c_first;
                    const int ct = light_threads(nch, s.T * np);
                    for_items(ct, ct, [&](int64_t part, int) {
                        const int64_t ca = c_first + nch * part / ct;
                        const int64_t cb = c_first + nch * (part + 1) / ct;
                        const int64_t ra = max64(r0, ca * s.T), rb = min64(r0 + nr, cb * s.T);
                        if (ra < rb)
                            k.col2im_add(s.geom, col + (ra - r0) * np, np, p0, np, ra, rb,
                                         dx_ng);
                    });
                } else {
                    k.col2im_add(s.geom, col, np, p0, np, r0, r0 + nr, dx_ng);
                }
            }
        }
    });
    if (relu) relu_in_place(dx, s.N * s.C * s.I);
    return status.get();
}

// ---- strided backward-input by phases -------------------------------------------------------
//
// With stride s, the input positions i = i'*s + r of one residue r ("phase", per dim) receive
// only the taps k with (r + p - k*d) divisible by s, each from dY[i' + (r + p - k*d)/s]. Those
// taps are every (s/g)-th k (g = gcd(d, s)) and their offsets step by d/g, so each phase is a
// stride-1 convolution of dY with a smaller, flipped, dilated kernel: it runs on the direct tiles
// into a phase buffer, and the phases of an image are then interleaved into dX. Every element of
// dX belongs to exactly one phase; phases with no taps get the bias (or 0).

int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

struct PhaseDim {
    int64_t size;    // positions i' with i'*s + r < in
    int64_t taps;    // taps of this phase (0: none)
    int64_t k_last;  // the original tap read by phase tap j' = taps-1-... (see k_of)
    int64_t k_step;  // s/g
    int64_t dil;     // d/g
    int64_t pad;     // -e_last: phase output i' reads dY[i' + j'*dil - pad]
};

PhaseDim phase_dim(int64_t in, int64_t K, int64_t s, int64_t d, int64_t p, int64_t r) {
    PhaseDim ph{};
    ph.size = r < in ? (in - r + s - 1) / s : 0;
    const int64_t g = gcd64(d, s);
    ph.k_step = s / g;
    ph.dil = d / g;
    int64_t k0 = -1;
    for (int64_t k = 0; k < K && k < ph.k_step; ++k)
        if (((r + p - k * d) % s + s) % s == 0) {
            k0 = k;
            break;
        }
    if (k0 < 0) return ph;
    ph.taps = (K - 1 - k0) / ph.k_step + 1;
    const int64_t k_max = k0 + (ph.taps - 1) * ph.k_step;
    // phase tap j' (0..taps-1, increasing offsets) is original tap k_max - j'*k_step, offset
    // e = (r + p - k*d)/s; the smallest offset belongs to k_max.
    ph.k_last = k_max;
    ph.pad = -((r + p - k_max * d) / s);
    return ph;
}

struct PhaseView {
    const float* w_g;  // (OCg, Cg, KD, KH, KW) of the group
    int64_t Cg, KH, KW, T;
    int64_t kt[3];     // taps per dim of the phase
    int64_t klast[3], kstep[3];
    std::vector<int64_t> tap;  // phase tap -> original tap (kd*KH + kh)*KW + kw
    void init_taps() {
        tap.clear();
        for (int64_t jd = 0; jd < kt[0]; ++jd)
            for (int64_t jh = 0; jh < kt[1]; ++jh)
                for (int64_t jw = 0; jw < kt[2]; ++jw) {
                    const int64_t kd = klast[0] - jd * kstep[0], kh = klast[1] - jh * kstep[1];
                    const int64_t kw = klast[2] - jw * kstep[2];
                    tap.push_back((kd * KH + kh) * KW + kw);
                }
    }
    int64_t taps() const { return kt[0] * kt[1] * kt[2]; }
    float at(int64_t c, int64_t o, int64_t t) const { return w_g[(o * Cg + c) * T + tap[t]]; }
};

// False when the phases cannot run on the direct tiles (no such kernel, narrow phases, few
// input channels, workspace): the caller takes the col2im path.
bool backward_input_phases(const Shape& s, const float* dy, const float* w, const float* bias,
                           bool relu, float* dx, Status* status) {
    const ConvKernels& kk = kernels().conv;
    if (kk.direct_rows == nullptr || s.Cg < 16) return false;
    const ConvGeom& g0 = s.geom;
    // Kernels no larger than the stride (1x1 or 2x2 with stride 2) give one tap per phase: too
    // little work per phase to pay for the phase buffers; col2im (a plain scatter then) wins.
    for (int d = 0; d < 3; ++d)
        if (g0.s[d] > 1 && g0.k[d] * g0.d[d] <= g0.s[d]) return false;
    PhaseDim ph[3][8];
    int64_t nph[3];
    for (int d = 0; d < 3; ++d) {
        nph[d] = g0.s[d];
        if (nph[d] > 8) return false;
        for (int64_t r = 0; r < nph[d]; ++r) {
            ph[d][r] = phase_dim(g0.in[d], g0.k[d], g0.s[d], g0.d[d], g0.p[d], r);
            // every phase with taps must be wide enough for the tiles
            if (d == 2 && ph[d][r].taps > 0 && ph[d][r].size > 0 && ph[d][r].size < 12) return false;
        }
    }
    const int64_t nphases = nph[0] * nph[1] * nph[2];
    // Images per chunk: the chunk's phase buffers (its dX) take at most half the budget; the
    // direct passes of the phases get what they need of the rest (planned first).
    const int64_t per_image = s.C * s.I;
    const int64_t budget = budget_floats();
    if (per_image > budget / 2) return false;
    const int64_t chunk = std::min<int64_t>(s.N, std::max<int64_t>(1, budget / 2 / per_image));
    const int64_t buf_floats = round_up(chunk * per_image, 16);
    const int64_t rest_budget = budget - buf_floats;
    auto phase_geometry = [&](int64_t q, ConvGeom* pg, const PhaseDim** pd) {
        const int64_t rw = q % nph[2], rh = (q / nph[2]) % nph[1], rd = q / (nph[2] * nph[1]);
        pd[0] = &ph[0][rd];
        pd[1] = &ph[1][rh];
        pd[2] = &ph[2][rw];
        for (int d = 0; d < 3; ++d) {
            pg->in[d] = g0.out[d];
            pg->out[d] = pd[d]->size;
            pg->k[d] = pd[d]->taps;
            pg->s[d] = 1;
            pg->d[d] = pd[d]->dil;
            pg->p[d] = pd[d]->pad;
        }
        pg->in_plane = g0.out_plane;
        pg->out_plane = pd[0]->size * pd[1]->size * pd[2]->size;
        pg->taps = pg->k[0] * pg->k[1] * pg->k[2];
        return pg->out_plane > 0 && pd[0]->taps > 0 && pd[1]->taps > 0 && pd[2]->taps > 0;
    };
    auto phase_view = [&](const PhaseDim* const* pd, const ConvGeom& pg) {
        return [&, pd, pg](int64_t g) {
            PhaseView v{};
            v.w_g = w + g * s.OCg * s.Cg * s.T;
            v.Cg = s.Cg;
            v.KH = g0.k[1];
            v.KW = g0.k[2];
            v.T = s.T;
            for (int d = 0; d < 3; ++d) {
                v.kt[d] = pd[d]->taps;
                v.klast[d] = pd[d]->k_last;
                v.kstep[d] = pd[d]->k_step;
            }
            v.init_taps();
            return v;
        };
    };
    // Plan: the most scratch any phase's direct pass needs (false: some phase cannot run).
    int64_t rest_floats = 0;
    for (int64_t q = 0; q < nphases; ++q) {
        ConvGeom pg{};
        const PhaseDim* pd[3];
        if (!phase_geometry(q, &pg, pd)) continue;
        int64_t need = 0;
        Status unused;
        if (!direct_tiled_pass(pg, chunk, s.G, s.OCg, s.Cg, dy, phase_view(pd, pg), bias, relu,
                               dx, &unused, dx /*not used*/, rest_budget, &need))
            return false;
        rest_floats = std::max(rest_floats, need);
    }
    WorkspaceLease ws((buf_floats + rest_floats) * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) {
        *status = ws.status();
        return true;
    }
    float* bufs = ws.floats();
    float* rest = bufs + buf_floats;
    for (int64_t n0 = 0; n0 < s.N; n0 += chunk) {
        const int64_t nb = std::min(chunk, s.N - n0);
        // Phase buffers: phase q of the chunk at bufs + offset[q], (nb, C, size_d*size_h*size_w).
        int64_t offset[512];
        int64_t used = 0;
        for (int64_t q = 0; q < nphases; ++q) {
            const int64_t rw = q % nph[2], rh = (q / nph[2]) % nph[1], rd = q / (nph[2] * nph[1]);
            offset[q] = used;
            used += nb * s.C * ph[0][rd].size * ph[1][rh].size * ph[2][rw].size;
        }
        for (int64_t q = 0; q < nphases; ++q) {
            ConvGeom pg{};
            const PhaseDim* pd[3];
            const bool has_taps = phase_geometry(q, &pg, pd);
            const int64_t sub = pd[0]->size * pd[1]->size * pd[2]->size;
            if (sub == 0) continue;
            float* out = bufs + offset[q];
            if (!has_taps) {
                fill_planes(nb, s.C, sub, bias, out);
                if (relu) relu_in_place(out, nb * s.C * sub);
                continue;
            }
            if (!direct_tiled_pass(pg, nb, s.G, s.OCg, s.Cg, dy + n0 * s.OC * s.P,
                                   phase_view(pd, pg), bias, relu, out, status, rest,
                                   rest_floats)) {
                *status = Status::invalid("conv: backward-input phase plan changed");
                return true;
            }
            if (!status->ok()) return true;
        }
        // Interleave the phases into dX: dX[c][(i'*s + r)] = phase r [c][i'], one dX row at a
        // time from the phase rows of its residue along W (the last phases may be a column
        // shorter: those columns are written one by one).
        const int64_t planes = nb * s.C;
        const int threads = light_threads(planes, s.I);
        const int64_t sw = g0.s[2];
        for_items(planes, threads, [&](int64_t i, int) {
            float* dplane = dx + (n0 * s.C) * s.I + i * s.I;
            const float* srcs[8];
            for (int64_t ih = 0; ih < g0.in[1]; ++ih)
                for (int64_t id = 0; id < g0.in[0]; ++id) {
                    const int64_t rd = id % g0.s[0], a = id / g0.s[0];
                    const int64_t rh = ih % g0.s[1], b2 = ih / g0.s[1];
                    const int64_t sd = ph[0][rd].size, sh = ph[1][rh].size;
                    for (int64_t rw = 0; rw < sw; ++rw) {
                        const int64_t q = (rd * nph[1] + rh) * nph[2] + rw;
                        srcs[rw] = bufs + offset[q] + (i * sd * sh + a * sh + b2) * ph[2][rw].size;
                    }
                    float* row = dplane + (id * g0.in[1] + ih) * g0.in[2];
                    const int64_t full = ph[2][sw - 1].size;  // columns every phase has
                    kk.interleave(srcs, sw, full, row);
                    for (int64_t iw = full * sw; iw < g0.in[2]; ++iw)
                        row[iw] = srcs[iw % sw][iw / sw];
                }
        });
    }
    return true;
}

// ---- W stride 2: the two W phases of a tile together ----------------------------------------
//
// For 2-D and 1-D convolutions with W stride 2 the phases of one H residue rh are two stride-1
// convolutions over the same dY rows (W residues 0 and 1, different taps and offsets). The
// micro-kernel runs both on the same 14-pixel tile and interleaves them as it stores straight
// into dX rows i'*sh + rh (fold 3 of DirectRows): no phase buffers, no interleave pass, and one
// band copy of dY serves both phases. Each thread copies a band of dY rows for one rh with
// zero padding wide enough for both phases (pad_band = the larger phase pad; the other phase's
// offsets shift by the difference).

// False when the shape does not qualify (not W stride 2, 3-D, kernel no larger than the stride,
// few channels, phases under 12 pixels wide) or the workspace cannot hold the packed weights
// and a band per thread.
bool backward_input_phase_pairs(const Shape& s, const float* dy, const float* w,
                                const float* bias, bool relu, float* dx, Status* status) {
    const ConvGeom& g0 = s.geom;
    const ConvKernels& kk = kernels().conv;
    if (kk.direct_rows == nullptr || s.Cg < 16 || g0.s[2] != 2 || g0.s[1] > 8) return false;
    if (g0.in[0] != 1 || g0.out[0] != 1 || g0.k[0] != 1) return false;
    for (int d = 1; d < 3; ++d)
        if (g0.s[d] > 1 && g0.k[d] * g0.d[d] <= g0.s[d]) return false;
    const int64_t H = g0.in[1], W = g0.in[2], sh = g0.s[1];
    PhaseDim pw[2], ph[8];
    for (int64_t r = 0; r < 2; ++r)
        pw[r] = phase_dim(W, g0.k[2], 2, g0.d[2], g0.p[2], r);
    for (int64_t r = 0; r < sh; ++r)
        ph[r] = phase_dim(H, g0.k[1], sh, g0.d[1], g0.p[1], r);
    const int64_t OWp = pw[0].size;  // phase 0 is the wider one
    if (OWp < 12) return false;
    int64_t pad_band = 0;  // zero columns before dY in a band: the larger phase pad
    int64_t reach = 0;     // columns a tile reads past its first, beyond the 14 pixels
    for (int f = 0; f < 2; ++f)
        if (pw[f].taps > 0) pad_band = max64(pad_band, pw[f].pad);
    for (int f = 0; f < 2; ++f)
        if (pw[f].taps > 0)
            reach = max64(reach, (pw[f].taps - 1) * pw[f].dil + pad_band - pw[f].pad);
    const int64_t Wb = round_up(ceil_div(OWp, 14) * 14 + reach, 16);
    int64_t h_reach = 0;  // extra dY rows a band holds below its phase rows
    for (int64_t r = 0; r < sh; ++r)
        if (ph[r].taps > 0) h_reach = max64(h_reach, (ph[r].taps - 1) * ph[r].dil);
    // Packed weights of (rh, phase f): G x blocks of K x 32, K = OCg * taps_h * taps_w(f).
    const int64_t blocks = ceil_div(s.Cg, 32);
    int64_t K[8][2], woff[8][2], koff_at[8][2];
    int64_t wfloats = 0, koffs = 0;
    for (int64_t r = 0; r < sh; ++r)
        for (int f = 0; f < 2; ++f) {
            K[r][f] = s.OCg * ph[r].taps * pw[f].taps;
            woff[r][f] = wfloats;
            koff_at[r][f] = koffs;
            wfloats += s.G * blocks * K[r][f] * 32;
            koffs += K[r][f];
        }
    const int threads0 = gemm_threads(2.0 * s.N * s.C * s.I * s.OCg * s.T / 4.0);
    const int64_t fixed = round_up(wfloats, 16) + round_up(2 * koffs, 16);
    const int64_t band_target = min64(int64_t{1} << 18, (budget_floats() - fixed) / threads0);
    int64_t rows_max = 0;
    for (int64_t r = 0; r < sh; ++r) rows_max = max64(rows_max, ph[r].size);
    if (rows_max == 0) return false;
    // Band rows: as many as fit the target, but enough items for 2 per thread.
    int64_t b = band_target / (s.OCg * Wb) - h_reach;
    b = min64(b, max64(1, ceil_div(rows_max * sh, ceil_div(2 * threads0, s.N * s.G) * sh)));
    b = min64(b, rows_max);
    if (b < 1) return false;
    const int64_t Hb = b + h_reach;
    const int64_t band_floats = round_up(s.OCg * Hb * Wb, 16);
    const int64_t need = fixed + threads0 * band_floats;
    WorkspaceLease ws(need * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) {
        *status = ws.status();
        return true;
    }
    float* wpk = ws.floats();
    int64_t* koff = reinterpret_cast<int64_t*>(wpk + round_up(wfloats, 16));
    float* bands = wpk + fixed;
    for (int64_t r = 0; r < sh; ++r)
        for (int f = 0; f < 2; ++f) {
            if (K[r][f] == 0) continue;
            PhaseView v{};
            v.Cg = s.Cg;
            v.KH = g0.k[1];
            v.KW = g0.k[2];
            v.T = s.T;
            v.kt[0] = 1;
            v.kt[1] = ph[r].taps;
            v.kt[2] = pw[f].taps;
            v.klast[1] = ph[r].k_last;
            v.klast[2] = pw[f].k_last;
            v.kstep[0] = 1;
            v.kstep[1] = ph[r].k_step;
            v.kstep[2] = pw[f].k_step;
            v.init_taps();
            const int64_t tp = v.taps();
            int64_t* ko = koff + koff_at[r][f];
            for (int64_t o = 0; o < s.OCg; ++o)
                for (int64_t jh = 0; jh < ph[r].taps; ++jh)
                    for (int64_t jw = 0; jw < pw[f].taps; ++jw)
                        ko[(o * ph[r].taps + jh) * pw[f].taps + jw] =
                            (o * Hb + jh * ph[r].dil) * Wb + jw * pw[f].dil + pad_band - pw[f].pad;
            // weight blocks spread over the threads
            const int pack_threads = static_cast<int>(min64(threads0, s.G * blocks));
            for_items(s.G * blocks, pack_threads, [&](int64_t u, int) {
                const int64_t g = u / blocks, q = u % blocks;
                PhaseView vg = v;
                vg.w_g = w + g * s.OCg * s.Cg * s.T;
                float* dst = wpk + woff[r][f] + u * K[r][f] * 32;
                for (int64_t o = 0, k = 0; o < s.OCg; ++o)
                    for (int64_t t = 0; t < tp; ++t, ++k)
                        for (int64_t j = 0; j < 32; ++j) {
                            const int64_t c = q * 32 + j;
                            dst[k * 32 + j] = c < s.Cg ? vg.at(c, o, t) : 0.0f;
                        }
            });
        }
    // Items: (image, group, rh, band of b phase rows).
    std::vector<int64_t> bands_of;  // (rh, first phase row) pairs
    for (int64_t r = 0; r < sh; ++r)
        for (int64_t i0 = 0; i0 < ph[r].size; i0 += b) {
            bands_of.push_back(r);
            bands_of.push_back(i0);
        }
    const int64_t per_image = static_cast<int64_t>(bands_of.size()) / 2;
    const int64_t items = s.N * s.G * per_image;
    const int threads = static_cast<int>(min64(threads0, items));
    const int64_t OH = g0.out[1], OW = g0.out[2];
    for_items(items, threads, [&](int64_t item, int t) {
        const int64_t e = item % per_image, g = item / per_image % s.G;
        const int64_t n = item / (per_image * s.G);
        const int64_t r = bands_of[2 * e], i0 = bands_of[2 * e + 1];
        const int64_t i1 = min64(ph[r].size, i0 + b);
        float* buf = bands + t * band_floats;
        if (ph[r].taps > 0) {
            // buf[o][zh][q] = dY[o][i0 - pad_h + zh][q - pad_band] (0 outside)
            const float* dy_ng = dy + (n * s.OC + g * s.OCg) * s.P;
            for (int64_t o = 0; o < s.OCg; ++o)
                for (int64_t zh = 0; zh < Hb; ++zh) {
                    float* row = buf + (o * Hb + zh) * Wb;
                    const int64_t ih = i0 - ph[r].pad + zh;
                    std::memset(row, 0, static_cast<size_t>(Wb) * sizeof(float));
                    if (ih < 0 || ih >= OH) continue;
                    const int64_t q0 = max64(0, pad_band), q1 = min64(Wb, OW + pad_band);
                    if (q1 > q0)
                        std::memcpy(row + q0, dy_ng + (o * OH + ih) * OW + (q0 - pad_band),
                                    static_cast<size_t>(q1 - q0) * sizeof(float));
                }
        }
        for (int64_t q = 0; q < blocks; ++q) {
            DirectRows a{};
            a.band = buf;
            a.Hb = Hb;
            a.Wb = Wb;
            a.koff = koff + koff_at[r][0];
            a.K = K[r][0];
            a.w = wpk + woff[r][0] + (g * blocks + q) * K[r][0] * 32;
            a.koff1 = koff + koff_at[r][1];
            a.K1 = K[r][1];
            a.w1 = wpk + woff[r][1] + (g * blocks + q) * K[r][1] * 32;
            a.sd = a.sh = a.sw = 1;
            a.od0 = 0;
            a.od1 = 1;
            a.oh0 = a.band_oh0 = i0;
            a.oh1 = i1;
            a.OH = ph[r].size;
            a.OW = OWp;
            a.P = s.I;
            a.y = dx + (n * s.C + g * s.Cg + q * 32) * s.I + r * W;
            a.y_h = sh * W;
            a.y_w = W;
            a.oc_valid = min64(32, s.Cg - q * 32);
            a.bias = bias ? bias + g * s.Cg + q * 32 : nullptr;
            a.relu = relu ? 1 : 0;
            a.oc_vecs = 2;
            a.fold = 3;
            kk.direct_rows(a);
        }
    });
    return true;
}

// ---- strided backward-input with kernel == stride: one tap per output position ------------
//
// When every kernel size equals its stride (no dilation), e.g. the 2x2 stride-2 transposed
// convolution of a U-Net decoder, the windows do not overlap: dX[c, i*s + k - p] receives the
// single tap k from dY[:, i] (positions past the last window get only the bias). Each tap is then
// a 1x1 convolution of dY, and all the taps of one dY pixel together are a 1x1 convolution with
// Cg*T outputs: the pixel-vector tiles of the direct kernel run that over bands of dY rows (no
// phases, no col2im), a tile's 8 weight lanes being 4 channels x the W taps kw = 0, 1, which
// are interleaved as they are stored straight into dX (fold 2 of DirectRows); the (kd, kh) taps
// are separate weight blocks writing every sd-th plane and sh-th row. Bias and ReLU are fused in
// the store. Each thread copies a band of dY rows of every channel of the group (about 256 KiB,
// channel stride padded off a multiple of 4 KiB so that the channels a tile reads do not evict
// each other from L1: reading dY in place was 20% slower) where it stays for all the blocks.

// The packed weights of weight block q = (kd*KH + kh)*cblocks + cb: OCg x 32 floats, dY
// channel o major; lane 2*j + kw holds W_g[o][cb*16 + j][kd][kh][kw] (0 past Cg).
void pack_taps_block(const float* w_g, int64_t OCg, int64_t Cg, int64_t T, int64_t q,
                     int64_t cblocks, float* dst) {
    const int64_t tq = q / cblocks, c0 = q % cblocks * 16;
    for (int64_t o = 0; o < OCg; ++o)
        for (int64_t lane = 0; lane < 32; ++lane) {
            const int64_t c = c0 + lane / 2, kw = lane % 2;
            dst[o * 32 + lane] = c < Cg ? w_g[(o * Cg + c) * T + tq * 2 + kw] : 0.0f;
        }
}

// The dY rows [lo, hi) whose row i*s + k - p falls in [0, size).
void taps_row_range(int64_t rows, int64_t size, int64_t s, int64_t k, int64_t p, int64_t* lo,
                    int64_t* hi) {
    *lo = p > k ? ceil_div(p - k, s) : 0;
    *hi = size + p - k > 0 ? min64(rows, ceil_div(size + p - k, s)) : 0;
}

// False when the shape does not qualify (kernel != stride, W kernel not 2, few channels, dY rows
// under 14 pixels) or the packed weights and a band of one dY row per thread do not fit the
// workspace.
bool backward_input_taps(const Shape& s, const float* dy, const float* w, const float* bias,
                         bool relu, float* dx, Status* status) {
    const ConvGeom& g0 = s.geom;
    const ConvKernels& kk = kernels().conv;
    if (kk.direct_rows == nullptr || s.Cg < 16 || g0.k[2] != 2 || g0.out[2] < 14) return false;
    for (int d = 0; d < 3; ++d)
        if (g0.k[d] != g0.s[d] || (g0.k[d] > 1 && g0.d[d] != 1)) return false;
    const int64_t OD = g0.out[0], OH = g0.out[1], OW = g0.out[2];
    const int64_t D = g0.in[0], H = g0.in[1], W = g0.in[2];
    const int64_t cblocks = ceil_div(s.Cg, 16);
    const int64_t blocks = g0.k[0] * g0.k[1] * cblocks;
    const int64_t block_floats = s.OCg * 32;
    const int64_t wfloats = s.G * blocks * block_floats;
    // Items: (image, group, band of b dY rows (od, oh)), at least 2 per thread; a band of every
    // channel of the group (about 256 KiB) is copied and stays in L2 for all the weight blocks.
    const int threads0 = gemm_threads(2.0 * s.N * s.C * s.I * s.OCg);
    const int64_t nrows = OD * OH;
    const int64_t ld = round_up(OW, 16);
    const int64_t fixed = round_up(wfloats, 16) + round_up(2 * s.OCg, 16);
    const int64_t band_budget = min64(int64_t{1} << 16, (budget_floats() - fixed) / threads0);
    int64_t b = min64(nrows, (band_budget / s.OCg - 16) / ld);
    b = min64(b, max64(1, ceil_div(nrows, ceil_div(2 * threads0, s.N * s.G))));
    if (b < 1) return false;
    const int64_t cs = b * ld + 16;  // channel stride of a band (off a multiple of 4 KiB)
    const int64_t need = fixed + threads0 * s.OCg * cs;
    WorkspaceLease ws(need * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) {
        *status = ws.status();
        return true;
    }
    float* wpk = ws.floats();
    int64_t* koff = reinterpret_cast<int64_t*>(wpk + round_up(wfloats, 16));
    for (int64_t g = 0; g < s.G; ++g)
        for (int64_t q = 0; q < blocks; ++q)
            pack_taps_block(w + g * s.OCg * s.Cg * s.T, s.OCg, s.Cg, s.T, q, cblocks,
                            wpk + (g * blocks + q) * block_floats);
    float* rows = wpk + round_up(wfloats, 16) + round_up(2 * s.OCg, 16);
    for (int64_t o = 0; o < s.OCg; ++o) koff[o] = o * cs;  // dY channel o in a band
    // Positions past the last window (output_padding) get only the bias.
    bool covered = true;
    for (int d = 0; d < 3; ++d) covered = covered && g0.out[d] * g0.s[d] - g0.p[d] >= g0.in[d];
    if (!covered) {
        fill_planes(s.N, s.C, s.I, bias, dx);
        if (relu) relu_in_place(dx, s.N * s.C * s.I);
    }
    const int64_t nbands = ceil_div(nrows, b);
    const int64_t items = s.N * s.G * nbands;
    const int threads = static_cast<int>(min64(threads0, items));
    for_items(items, threads, [&](int64_t item, int t) {
        const int64_t band = item % nbands, g = item / nbands % s.G, n = item / (nbands * s.G);
        float* buf = rows + t * s.OCg * cs;
        const float* dy_ng = dy + (n * s.OC + g * s.OCg) * s.P;
        const int64_t r0 = band * b, r1 = min64(nrows, r0 + b);
        for (int64_t o = 0; o < s.OCg; ++o)
            for (int64_t r = r0; r < r1; ++r)
                std::memcpy(buf + o * cs + (r - r0) * ld, dy_ng + o * s.P + r * OW,
                            static_cast<size_t>(OW) * sizeof(float));
        for (int64_t q = 0; q < blocks; ++q) {
            const int64_t tq = q / cblocks, c0 = q % cblocks * 16;
            const int64_t kd = tq / g0.k[1], kh = tq % g0.k[1];
            DirectRows a{};
            a.band = buf;
            a.Wb = ld;
            a.koff = koff;
            a.K = s.OCg;
            a.w = wpk + (g * blocks + q) * block_floats;
            a.oh0 = a.band_oh0 = r0;
            a.oh1 = r1;
            a.OH = OH;
            a.OW = OW;
            a.P = s.I;
            a.oc_valid = min64(16, s.Cg - c0);
            a.bias = bias ? bias + g * s.Cg + c0 : nullptr;
            a.relu = relu ? 1 : 0;
            a.fold = 2;
            a.y_d = g0.s[0] * H * W;
            a.y_h = g0.s[1] * W;
            a.x_pad = g0.p[2];
            a.y_w = W;
            taps_row_range(OD, D, g0.s[0], kd, g0.p[0], &a.od_lo, &a.od_hi);
            taps_row_range(OH, H, g0.s[1], kh, g0.p[1], &a.oh_lo, &a.oh_hi);
            // dY row (od, oh) lands at a.y + od*y_d + oh*y_h (formed only for rows in range)
            a.y = dx + (n * s.C + g * s.Cg + c0) * s.I +
                  ((kd - g0.p[0]) * H + (kh - g0.p[1])) * W;
            kk.direct_rows(a);
        }
    });
    return true;
}

Status backward_input_impl(const Shape& s, const float* dy, const float* w, const float* bias,
                           bool relu, float* dx) {
    if (s.N == 0) return Status::success();
    if (is_depthwise_like(s)) {
        tls_algorithm = unit_stride(s.geom) ? "direct-depthwise" : "direct-depthwise-scatter";
        return backward_input_direct(s, dy, w, bias, relu, dx);
    }
    if (unit_stride(s.geom)) {
        Status status;
        tls_algorithm = "direct-tiles-flipped";
        auto flipped_view = [&](int64_t g) {
            return WeightView{w + g * s.OCg * s.Cg * s.T, true, s.Cg, s.T, s.OCg * s.T};
        };
        if (direct_tiled_pass(flipped_geometry(s.geom), s.N, s.G, s.OCg, s.Cg, dy, flipped_view,
                              bias, relu, dx, &status))
            return status;
        tls_algorithm = "conv-gemm-flipped";
        if (backward_input_gemm(s, dy, w, bias, relu, dx, &status)) return status;
    }
    if (!unit_stride(s.geom)) {
        Status status;
        tls_algorithm = "taps-direct-tiles";
        if (backward_input_taps(s, dy, w, bias, relu, dx, &status)) return status;
        tls_algorithm = "phase-pairs-direct-tiles";
        if (backward_input_phase_pairs(s, dy, w, bias, relu, dx, &status)) return status;
        tls_algorithm = "phases-direct-tiles";
        if (backward_input_phases(s, dy, w, bias, relu, dx, &status)) return status;
    }
    // Fallbacks (workspace too small for conv_gemm; strides): per image on gemm/sgemm.
    if (is_pointwise(s.geom)) {
        tls_algorithm = "gemm-per-image";
        return backward_input_pointwise(s, dy, w, bias, relu, dx);
    }
    if (unit_stride(s.geom)) {
        tls_algorithm = "gemm-per-image-flipped";
        const int64_t wbytes = s.OC * s.Cg * s.T * static_cast<int64_t>(sizeof(float));
        if (wbytes <= workspace_budget()) {
            WorkspaceLease ws(wbytes);
            if (!ws.ok()) return ws.status();
            flip_weights(s, w, ws.floats());
            return backward_input_flipped(s, dy, ws.floats(), bias, relu, dx);
        }
    }
    tls_algorithm = "gemm-col2im";
    return backward_input_col2im(s, dy, w, bias, relu, dx);
}

// ---- backward-weight ---------------------------------------------------------------------------

// dW_g (OCg, Cg*T) = (beta ? dW_g : 0) + dY_g (OCg, P) @ col(X_g)^T (P, Cg*T), one image.
Status backward_weight_item(const Shape& s, const float* dy_ng, const float* x_ng, float beta,
                            float* dw_g) {
    const int64_t K = s.Cg * s.T;
    if (is_pointwise(s.geom)) {
        // (OCg, Cg) += (OCg, P) @ X_g^T (P, Cg); X_g is stored (Cg, P): B transposed, ldb P.
        return sgemm(false, true, s.OCg, K, s.P, 1.0f, dy_ng, s.P, x_ng, s.I, beta, dw_g, K);
    }
    Im2colSource src{&s.geom, x_ng, s.Cg, s.C * s.I};
    const SgemmBSource b{kernels().conv.pack_col_t, &src};
    return sgemm_bsource(false, s.OCg, K, s.P, 1.0f, dy_ng, s.P, b, beta, dw_g, K);
}

// Cg == 1: items are (group, chunk of its output channels); each pads the group's input plane
// of every image once and accumulates its channels' taps over the batch.
Status backward_weight_direct(const Shape& s, const float* dy, const float* x, float* dw) {
    const ConvKernels& k = kernels().conv;
    const int threads0 = light_threads(s.OC, s.N * s.P * s.T);
    const int64_t per_group = min64(s.OCg, max64(1, ceil_div(4 * threads0, s.G)));
    const int64_t chunk = ceil_div(s.OCg, per_group);
    const int64_t chunks = ceil_div(s.OCg, chunk);
    const int64_t items = s.G * chunks;
    const int threads = static_cast<int>(min64(threads0, items));
    const DirectScratch ds = direct_scratch(s.geom, threads);
    WorkspaceLease ws(ds.floats * threads * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) return ws.status();
    // Each thread owns a range of items and walks them image by image: within one image its
    // items' planes lie next to each other in x and dy, so both are read as long sequential
    // streams (item-major order, jumping by a whole image after every plane: 0.81 against
    // 0.78 ms on 8x128x56x56 3x3 with 2 threads, about the same with 1).
    // Each dW entry still sums its images in order 0..N-1 whatever the thread count.
    for_items(threads, threads, [&](int64_t t, int) {
        const int64_t i0 = items * t / threads, i1 = items * (t + 1) / threads;
        for (int64_t n = 0; n < s.N; ++n)
            for (int64_t i = i0; i < i1; ++i) {
                const int64_t g = i / chunks;
                const int64_t o0 = g * s.OCg + (i % chunks) * chunk;
                const int64_t no = min64(chunk, (g + 1) * s.OCg - o0);
                float* d = dw + o0 * s.T;
                if (n == 0)
                    for (int64_t q = 0; q < no * s.T; ++q) d[q] = 0.0f;
                k.direct_backward_weight(s.geom, x + (n * s.C + g) * s.I,
                                         dy + (n * s.OC + o0) * s.P, no, s.P, d,
                                         ws.floats() + t * ds.floats, ds.floats);
            }
    });
    return Status::success();
}

// Kernels larger than 1x1, stride 1 or 2 along W, AVX-512: dW_g^T = col(X_g) dY_g^T with col(X)
// broadcast from a zero-padded copy of the input (bww_taps in conv_impl.inc; nothing
// im2col-packed; 1x1 kernels pack cheaply and stay on the GEMM, resnet_1x1_down ~5% faster
// there). dW_g^T goes through the workspace and is transposed into dW_g at the end. When the
// images split evenly, each thread sums its share of the images into its own dW_g^T
// (all rows; at most 1 MiB each) and the shares are added at the end: nothing is done twice.
// Otherwise threads own ranges of rows (each pads only its channels but packs all of dY^T).
// Either way the order of the additions depends only on the thread count. False (nothing done)
// when the workspace cannot hold it.
bool backward_weight_taps(const Shape& s, const float* dy, const float* x, float* dw) {
    const ConvKernels& k = kernels().conv;
    const ConvGeom& g = s.geom;
    if (k.bww_taps == nullptr || g.s[2] > 2 || g.taps == 1) return false;
    const int64_t n = s.Cg * s.T, ldt = round_up(s.OCg, 16);
    // dW_g^T is read and written once per block of pixels: above 1 MiB it leaves L2 (resnet_l3,
    // 2.3 MiB: 128 against the GEMM's 140 GFLOP/s on 1 thread; resnet_l4, 9 MiB: 55 against 148).
    if (n * ldt > (int64_t{1} << 18)) return false;
    const int threads = static_cast<int>(
        min64(gemm_threads(2.0 * s.OC * n * s.N * s.P), ceil_div(n, 24)));
    const bool by_images = threads > 1 && (s.N % threads == 0 || s.N >= 4 * threads);
    const int64_t dwt_floats = round_up(n * ldt, 16), copies = by_images ? threads : 1;
    // A thread's rows span all channels, or at most ceil(n / threads) / T + 2 of them.
    const int64_t channels = by_images ? s.Cg : min64(s.Cg, ceil_div(n, threads) / s.T + 2);
    const int64_t per_thread = round_up(k.bww_taps_scratch_floats(g, channels), 16);
    const int64_t floats = copies * dwt_floats + threads * per_thread;
    if (floats > budget_floats()) return false;
    WorkspaceLease ws(floats * static_cast<int64_t>(sizeof(float)));
    if (!ws.ok()) return false;
    float* dwt = ws.floats();
    float* scratch = dwt + copies * dwt_floats;
    for (int64_t grp = 0; grp < s.G; ++grp) {
        float* dw_g = dw + grp * s.OCg * n;
        auto body = [&](int t, int team) {
            BwwTapsArgs a{&g, x + grp * s.Cg * s.I, s.C * s.I, dy + grp * s.OCg * s.P, s.OC * s.P,
                          s.N, s.OCg, 0, n, dwt, ldt, scratch + t * per_thread};
            if (by_images) {
                const int64_t n0 = s.N * t / team, n1 = s.N * (t + 1) / team;
                a.x += n0 * a.x_image_stride;
                a.dy += n0 * a.dy_image_stride;
                a.images = n1 - n0;
                a.dwt = dwt + t * dwt_floats;
            } else {
                a.r0 = n * t / team;
                a.r1 = n * (t + 1) / team;
            }
            k.bww_taps(a);
            if (by_images) {
#pragma omp barrier
            }
            // This thread's rows of dW_g^T (the sum of the copies) into dW_g.
            const int64_t r0 = n * t / team, r1 = n * (t + 1) / team;
            for (int64_t u = 1; u < (by_images ? team : 1); ++u)
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t o = 0; o < s.OCg; ++o)
                        dwt[r * ldt + o] += dwt[u * dwt_floats + r * ldt + o];
            for (int64_t o = 0; o < s.OCg; ++o)
                for (int64_t r = r0; r < r1; ++r) dw_g[o * n + r] = dwt[r * ldt + o];
        };
        if (threads == 1) {
            body(0, 1);
        } else {
#pragma omp parallel num_threads(threads)
            body(omp_get_thread_num(), omp_get_num_threads());
        }
    }
    return true;
}

Status backward_weight_impl(const Shape& s, const float* dy, const float* x, float* dw) {
    const int64_t wsize = s.OC * s.Cg * s.T;
    if (s.N == 0) {
        std::memset(dw, 0, static_cast<size_t>(wsize) * sizeof(float));
        return Status::success();
    }
    if (is_depthwise_like(s)) {
        tls_algorithm = "direct-depthwise";
        return backward_weight_direct(s, dy, x, dw);
    }
    if (backward_weight_taps(s, dy, x, dw)) {
        tls_algorithm = "taps-broadcast";
        return Status::success();
    }
    {
        Status status;
        tls_algorithm = "conv-gemm";
        if (backward_weight_gemm(s, dy, x, dw, &status)) return status;
    }
    tls_algorithm = "gemm-per-image";
    // Fallback (workspace too small for conv_gemm): per image on gemm/sgemm.
    const int64_t gsize = s.OCg * s.Cg * s.T;
    const double flops = 2.0 * s.OCg * s.P * s.Cg * s.T;
    StatusCollector status;
    // (a) Groups over threads: each thread owns whole groups, summing over images itself.
    const int by_group = item_threads(s.G, flops * s.N);
    if (by_group > 1) {
        for_items(s.G, by_group, [&](int64_t g, int) {
            for (int64_t n = 0; n < s.N; ++n)
                status.add(backward_weight_item(s, dy + (n * s.OC + g * s.OCg) * s.P,
                                                x + (n * s.C + g * s.Cg) * s.I, n ? 1.0f : 0.0f,
                                                dw + g * gsize));
        });
        return status.get();
    }
    // (b) Images over threads, each thread summing into its own copy of dW (thread 0 into dw
    //     itself, the others into the workspace), then one reduction.
    int threads = item_threads(s.N, flops * s.G);
    const int64_t partial_bytes = wsize * static_cast<int64_t>(sizeof(float));
    if (threads > 1 && (threads - 1) * partial_bytes > workspace_budget()) threads = 1;
    if (threads > 1) {
        WorkspaceLease ws((threads - 1) * partial_bytes);
        if (!ws.ok()) return ws.status();
        float* partials = ws.floats();
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num();
            const int team = omp_get_num_threads();
            float* mine = t == 0 ? dw : partials + (t - 1) * wsize;
            const int64_t n0 = s.N * t / team, n1 = s.N * (t + 1) / team;
            if (n0 == n1) std::memset(mine, 0, static_cast<size_t>(wsize) * sizeof(float));
            for (int64_t n = n0; n < n1; ++n)
                for (int64_t g = 0; g < s.G; ++g)
                    status.add(backward_weight_item(s, dy + (n * s.OC + g * s.OCg) * s.P,
                                                    x + (n * s.C + g * s.Cg) * s.I,
                                                    n > n0 ? 1.0f : 0.0f, mine + g * gsize));
#pragma omp barrier
            // Sum the partials into dw, each thread a slice.
            const int64_t e0 = wsize * t / team, e1 = wsize * (t + 1) / team;
            for (int u = 1; u < team; ++u) {
                const float* src = partials + (u - 1) * wsize;
                for (int64_t e = e0; e < e1; ++e) dw[e] += src[e];
            }
        }
        return status.get();
    }
    // (c) One image after another, each GEMM spread over the threads.
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t g = 0; g < s.G; ++g)
            status.add(backward_weight_item(s, dy + (n * s.OC + g * s.OCg) * s.P,
                                            x + (n * s.C + g * s.Cg) * s.I, n ? 1.0f : 0.0f,
                                            dw + g * gsize));
    return status.get();
}

}  // namespace

// ---- public entry points -----------------------------------------------------------------------

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before,
                         int64_t pad_after, int64_t dilation) {
    if (stride < 1) return 0;
    const int64_t span = in + pad_before + pad_after - dilation * (kernel - 1) - 1;
    if (span < 0) return 0;
    return span / stride + 1;
}

Status check_conv_params(const ConvParams& p) {
    if (p.batch < 0) return Status::invalid("conv: batch must be >= 0");
    if (p.in_channels < 1) return Status::invalid("conv: in_channels must be >= 1");
    if (p.out_channels < 1) return Status::invalid("conv: out_channels must be >= 1");
    if (p.groups < 1) return Status::invalid("conv: groups must be >= 1");
    if (p.in_channels % p.groups != 0)
        return Status::invalid("conv: groups must divide in_channels");
    if (p.out_channels % p.groups != 0)
        return Status::invalid("conv: groups must divide out_channels");
    for (int i = 0; i < 3; ++i) {
        if (p.in[i] < 1) return Status::invalid("conv: input spatial sizes must be >= 1");
        if (p.out[i] < 1) return Status::invalid("conv: output spatial sizes must be >= 1");
        if (p.kernel[i] < 1) return Status::invalid("conv: kernel sizes must be >= 1");
        if (p.stride[i] < 1) return Status::invalid("conv: strides must be >= 1");
        if (p.dilation[i] < 1) return Status::invalid("conv: dilations must be >= 1");
        if (p.pad[i] < 0) return Status::invalid("conv: padding must be >= 0");
        if (!product_ok({p.kernel[i], p.dilation[i]}) || !product_ok({p.out[i], p.stride[i]}) ||
            p.pad[i] > kMaxElements)
            return Status::invalid("conv: spatial parameters are too large");
    }
    const int64_t taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
    if (!product_ok({p.batch, p.in_channels, p.in[0], p.in[1], p.in[2]}) ||
        !product_ok({p.batch, p.out_channels, p.out[0], p.out[1], p.out[2]}) ||
        !product_ok({p.out_channels, p.in_channels, p.kernel[0], p.kernel[1], p.kernel[2]}) ||
        !product_ok({p.in_channels, taps, p.out[0], p.out[1], p.out[2]}))
        return Status::invalid("conv: sizes are too large");
    return Status::success();
}

Status conv_forward(const ConvParams& p, const float* x, const float* w, const float* bias,
                    bool relu, float* y) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (p.batch > 0 && (x == nullptr || y == nullptr)) return Status::invalid("conv_forward: null array");
    if (w == nullptr) return Status::invalid("conv_forward: null weight");
    return forward_impl(make_shape(p), x, w, bias, relu, y);
}

Status conv_backward_input(const ConvParams& p, const float* dy, const float* w,
                           const float* bias, float* dx) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (p.batch > 0 && (dy == nullptr || dx == nullptr))
        return Status::invalid("conv_backward_input: null array");
    if (w == nullptr) return Status::invalid("conv_backward_input: null weight");
    return backward_input_impl(make_shape(p), dy, w, bias, false, dx);
}

Status conv_backward_weight(const ConvParams& p, const float* dy, const float* x, float* dw) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (dw == nullptr || (p.batch > 0 && (dy == nullptr || x == nullptr)))
        return Status::invalid("conv_backward_weight: null array");
    return backward_weight_impl(make_shape(p), dy, x, dw);
}

Status conv_backward_bias(int64_t batch, int64_t channels, int64_t plane, const float* dy,
                          float* db) {
    if (batch < 0 || channels < 1 || plane < 0)
        return Status::invalid("conv_backward_bias: bad sizes");
    if (!product_ok({batch, channels, plane})) return Status::invalid("conv_backward_bias: sizes are too large");
    if (db == nullptr || (batch * plane > 0 && dy == nullptr))
        return Status::invalid("conv_backward_bias: null array");
    const int threads = light_threads(channels, batch * plane);
    for_items(channels, threads, [&](int64_t o, int) {
        double total = 0.0;
        for (int64_t n = 0; n < batch; ++n) {
            const float* d = dy + (n * channels + o) * plane;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < plane; ++j) acc += d[j];
            total += acc;
        }
        db[o] = static_cast<float>(total);
    });
    return Status::success();
}

Status conv_transpose_forward(const ConvParams& p, const float* x, const float* w,
                              const float* bias, bool relu, float* y) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (p.batch > 0 && (x == nullptr || y == nullptr))
        return Status::invalid("conv_transpose_forward: null array");
    if (w == nullptr) return Status::invalid("conv_transpose_forward: null weight");
    return backward_input_impl(make_shape(p), x, w, bias, relu, y);
}

Status conv_transpose_backward_input(const ConvParams& p, const float* dy, const float* w,
                                     float* dx) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (p.batch > 0 && (dy == nullptr || dx == nullptr))
        return Status::invalid("conv_transpose_backward_input: null array");
    if (w == nullptr) return Status::invalid("conv_transpose_backward_input: null weight");
    return forward_impl(make_shape(p), dy, w, nullptr, false, dx);
}

Status conv_transpose_backward_weight(const ConvParams& p, const float* dy, const float* x,
                                      float* dw) {
    if (Status st = check_conv_params(p); !st.ok()) return st;
    if (dw == nullptr || (p.batch > 0 && (dy == nullptr || x == nullptr)))
        return Status::invalid("conv_transpose_backward_weight: null array");
    // The convolution's input is the transposed op's output gradient, its output gradient the
    // transposed op's input.
    return backward_weight_impl(make_shape(p), x, dy, dw);
}

const char* conv_last_algorithm() { return tls_algorithm; }

}  // namespace convengine
