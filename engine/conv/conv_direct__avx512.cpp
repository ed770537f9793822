// Direct convolution micro-kernel, AVX-512 (compiler flags chosen by the file-name suffix).
//
// Computes 14 output pixels (consecutive along W) x 32 output channels in 28 zmm accumulators
// (or 2 rows x 14 pixels x 16 channels),
// summing over k = (c, kd, kh, kw): per step, the 32 weights of k are two aligned vector loads
// from the packed weights and each of the 14 input values is broadcast straight from a zero-padded
// copy of the input band (no im2col panel at all: the input is read in place, at pixel i the
// address src + k_offset[k] + i*SW). That is the GEMM C^T = col(X)^T W^T with col(X)^T never
// packed. At the end the 14 x 32 tile is transposed in registers (16 x 16 blocks) and stored as
// 32 rows of 14 pixels of the (OC, P) output, with bias and ReLU.
//
// Only <immintrin.h>/<cstdint> and our own plain declarations are included and everything but
// init_conv_direct__avx512() has internal linkage (see elementwise_impl.inc for why).
#include <immintrin.h>

#include <cstdint>

#include "conv/conv_kernels.h"

namespace convengine {
namespace {

#include "conv/transpose16_avx512.inc"

// One tile of R output rows x PW pixels x V vectors of output channels (R*PW*V = 28 zmm
// accumulators): acc[r*PW + i][v] = sum over k of src_r[koff[k] + i*SW] * w[k*16V + 16v ..],
// with src_r = src + r*row_step.
template <int SW, int R, int PW, int V>
inline void tile_sum(const float* src, int64_t row_step, const int64_t* koff, int64_t K,
                     const float* w, __m512 acc[R * PW][V]) {
    // Accumulate in locals (acc may alias memory: with it GCC kept one accumulator on the stack)
    __m512 c[R * PW][V];
#pragma GCC unroll 28
    for (int i = 0; i < R * PW; ++i)
        for (int v = 0; v < V; ++v) c[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        const float* s = src + koff[k];
        __m512 wv[V];
        for (int v = 0; v < V; ++v) wv[v] = _mm512_load_ps(w + 16 * v);
        w += 16 * V;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
#pragma GCC unroll 14
            for (int i = 0; i < PW; ++i) {
                const __m512 b = _mm512_set1_ps(s[r * row_step + i * SW]);
                for (int v = 0; v < V; ++v)
                    c[r * PW + i][v] = _mm512_fmadd_ps(b, wv[v], c[r * PW + i][v]);
            }
        }
    }
#pragma GCC unroll 28
    for (int i = 0; i < R * PW; ++i)
        for (int v = 0; v < V; ++v) acc[i][v] = c[i][v];
}

// Stores rows [0, rows) x pixels [0, npix) of the tile as output channels [0, oc_valid):
// y[oc*P + r*y_row + i]. Pixel slot r*PW + i sits in lane (slot % 16) of group slot / 16.
template <int R, int PW, int V>
inline void tile_store(__m512 acc[R * PW][V], int rows, int64_t npix, int64_t oc_valid,
                       const float* bias, int relu, float* y, int64_t y_row, int64_t P) {
    constexpr int kSlots = R * PW;
    constexpr int kGroups = (kSlots + 15) / 16;
    for (int v = 0; v < V; ++v) {
        if (v * 16 >= oc_valid) break;
        for (int q = 0; q < kGroups; ++q) {
            __m512 t[16];
            for (int l = 0; l < 16; ++l)
                t[l] = q * 16 + l < kSlots ? acc[q * 16 + l][v] : _mm512_setzero_ps();
            transpose16(t);  // t[j]: output channel v*16 + j, pixel slots along the lanes
            for (int r = 0; r < rows; ++r) {
                // slots [r*PW, r*PW + npix) that fall in this group
                const int a = r * PW > q * 16 ? r * PW - q * 16 : 0;
                const int b = r * PW + static_cast<int>(npix) - q * 16 < 16
                                  ? r * PW + static_cast<int>(npix) - q * 16
                                  : 16;
                if (b <= a) continue;
                const __mmask16 m = static_cast<__mmask16>(((1u << (b - a)) - 1u) << a);
                // lane l holds pixel (q*16 + l - r*PW) of row r
                float* base = y + r * y_row + (q * 16 - r * PW);
                for (int j = 0; j < 16; ++j) {
                    const int64_t oc = v * 16 + j;
                    if (oc >= oc_valid) break;
                    __m512 out = t[j];
                    if (bias) out = _mm512_add_ps(out, _mm512_set1_ps(bias[oc]));
                    if (relu) out = _mm512_max_ps(_mm512_setzero_ps(), out);  // NaN stays NaN
                    _mm512_mask_storeu_ps(base + oc * P, m, out);
                }
            }
        }
    }
}

template <int SW, int R, int PW, int V>
void rows_impl(const DirectRows& a) {
    alignas(64) __m512 acc[R * PW][V];
    for (int64_t od = a.od0; od < a.od1; ++od)
        for (int64_t oh = a.oh0; oh < a.oh1; oh += R) {
            const int rows = a.oh1 - oh < R ? static_cast<int>(a.oh1 - oh) : R;
            const float* rowbase =
                a.band + ((od - a.band_od0) * a.sd * a.Hb + (oh - a.band_oh0) * a.sh) * a.Wb;
            float* yrow = a.y + (od * a.OH + oh) * a.OW;
            for (int64_t ow0 = 0; ow0 < a.OW; ow0 += PW) {
                const int64_t npix = a.OW - ow0 < PW ? a.OW - ow0 : PW;
                tile_sum<SW, R, PW, V>(rowbase + ow0 * SW, a.sh * a.Wb, a.koff, a.K, a.w, acc);
                tile_store<R, PW, V>(acc, rows, npix, a.oc_valid, a.bias, a.relu, yrow + ow0,
                                     a.OW, a.P);
            }
        }
}

// Lanes [lo, hi) of 16, clipped to [0, 16), as a mask.
inline __mmask16 lane_range(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    if (hi <= lo) return 0;
    return static_cast<__mmask16>(((1u << (hi - lo)) - 1u) << lo);
}

// fold 3: per 14-pixel tile, phase 0's 14 x 32 tile is computed, transposed and parked in
// `spill` (32 channel rows of 16 lanes, in L1), then phase 1's; each channel's two rows are
// interleaved into 28 consecutive columns 2*ow0 .. of the output row.
void rows_pair(const DirectRows& a) {
    alignas(64) __m512 acc[14][2];
    alignas(64) float spill[32 * 16];
    const __m512i lo_idx =
        _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t oh = a.oh0; oh < a.oh1; ++oh) {
        const float* rowbase = a.band + (oh - a.band_oh0) * a.sh * a.Wb;
        float* yrow = a.y + oh * a.y_h;
        for (int64_t ow0 = 0; ow0 < a.OW; ow0 += 14) {
            const int64_t npix = a.OW - ow0 < 14 ? a.OW - ow0 : 14;
            const int64_t c0 = 2 * ow0;
            const int64_t e_hi = 2 * npix < a.y_w - c0 ? 2 * npix : a.y_w - c0;
            const __mmask16 m_lo = lane_range(0, e_hi), m_hi = lane_range(-16, e_hi - 16);
            __m512 t[16];
            tile_sum<1, 1, 14, 2>(rowbase + ow0, 0, a.koff, a.K, a.w, acc);
            for (int v = 0; v < 2; ++v) {
                for (int l = 0; l < 16; ++l) t[l] = l < 14 ? acc[l][v] : _mm512_setzero_ps();
                transpose16(t);
                for (int j = 0; j < 16; ++j) _mm512_store_ps(spill + (v * 16 + j) * 16, t[j]);
            }
            tile_sum<1, 1, 14, 2>(rowbase + ow0, 0, a.koff1, a.K1, a.w1, acc);
            for (int v = 0; v < 2 && v * 16 < a.oc_valid; ++v) {
                for (int l = 0; l < 16; ++l) t[l] = l < 14 ? acc[l][v] : _mm512_setzero_ps();
                transpose16(t);
                for (int j = 0; j < 16 && v * 16 + j < a.oc_valid; ++j) {
                    const int oc = v * 16 + j;
                    const __m512 even = _mm512_load_ps(spill + oc * 16);
                    __m512 lo = _mm512_permutex2var_ps(even, lo_idx, t[j]);
                    __m512 hi = _mm512_permutex2var_ps(even, hi_idx, t[j]);
                    if (a.bias) {
                        const __m512 b = _mm512_set1_ps(a.bias[oc]);
                        lo = _mm512_add_ps(lo, b);
                        hi = _mm512_add_ps(hi, b);
                    }
                    if (a.relu) {
                        lo = _mm512_max_ps(_mm512_setzero_ps(), lo);  // NaN stays NaN
                        hi = _mm512_max_ps(_mm512_setzero_ps(), hi);
                    }
                    float* base = yrow + oc * a.P + c0;
                    _mm512_mask_storeu_ps(base, m_lo, lo);
                    _mm512_mask_storeu_ps(base + 16, m_hi, hi);
                }
            }
        }
    }
}

template <int R, int PW, int V>
void rows_sw(const DirectRows& a) {
    if (a.sw == 1) rows_impl<1, R, PW, V>(a);
    else rows_impl<2, R, PW, V>(a);
}

// ---- stride 1: pixels along the vectors ------------------------------------------------------
//
// With one vector of 16 output channels per pixel, the tiles above broadcast an input value per
// FMA (28 loads for 28 FMAs: the load ports, not the FMAs, set the pace). Turned around, a tile
// holds 8 output channels x 3 vectors of 16 consecutive pixels (24 accumulators): per k, 3
// unaligned input loads and 8 weight broadcasts feed 24 FMAs, and the accumulators are already
// rows of the (OC, P) output (no transpose). The 16 or 32 packed weights of a k serve two or
// four such passes (channels 0-7, 8-15, ...). Used for 16 channels or fewer (measured 25% faster
// per output than the 2 x 14 x 16 tiles), and for 32 when rows of 16-pixel vectors waste fewer
// lanes than rows of 14-pixel tiles (as fast per output lane: 64-pixel rows ran 8% faster, 56-
// pixel rows 12% slower). A tile's 3 vectors run through the output rows in order (vector u
// of the rows is pixels [16*(u % nvec), +16) of row u / nvec, nvec = ceil(OW/16)); the band must
// hold 16*nvec columns (plus the kernel's reach) per row.

constexpr int kPixVecs = 3;
constexpr int kPixChannels = 8;

// acc[j][v] = sum over k of w[k*wstride + j] * src_v[koff[k] .. + 16] for j < 8 (w points at
// the tile's first channel).
inline void pix_tile_sum(const float* const src[kPixVecs], const int64_t* koff, int64_t K,
                         const float* w, int64_t wstride, __m512 acc[kPixChannels][kPixVecs]) {
    for (int j = 0; j < kPixChannels; ++j)
        for (int v = 0; v < kPixVecs; ++v) acc[j][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
        const int64_t o = koff[k];
        __m512 x[kPixVecs];
        for (int v = 0; v < kPixVecs; ++v) x[v] = _mm512_loadu_ps(src[v] + o);
        for (int j = 0; j < kPixChannels; ++j) {
            const __m512 b = _mm512_set1_ps(w[j]);
            for (int v = 0; v < kPixVecs; ++v) acc[j][v] = _mm512_fmadd_ps(b, x[v], acc[j][v]);
        }
        w += wstride;
    }
}

void rows_pix(const DirectRows& a) {
    alignas(64) __m512 acc[kPixChannels][kPixVecs];
    const int64_t nvec = (a.OW + 15) / 16;
    const int64_t rows = a.oh1 - a.oh0;
    const int64_t total = rows * nvec;  // vectors per output plane
    for (int64_t od = a.od0; od < a.od1; ++od) {
        const float* plane = a.band + (od - a.band_od0) * a.sd * a.Hb * a.Wb;
        float* yplane = a.y + od * a.OH * a.OW;
        for (int64_t u0 = 0; u0 < total; u0 += kPixVecs) {
            const float* src[kPixVecs];
            float* dst[kPixVecs];
            __mmask16 mask[kPixVecs];
            for (int v = 0; v < kPixVecs; ++v) {
                // past the last vector: repeat it, store nothing
                const int64_t u = u0 + v < total ? u0 + v : total - 1;
                const int64_t oh = a.oh0 + u / nvec, c = (u % nvec) * 16;
                src[v] = plane + (oh - a.band_oh0) * a.sh * a.Wb + c;
                dst[v] = yplane + oh * a.OW + c;
                const int64_t n = u0 + v < total ? (a.OW - c < 16 ? a.OW - c : 16) : 0;
                mask[v] = static_cast<__mmask16>((1u << n) - 1u);
            }
            for (int64_t j0 = 0; j0 < a.oc_valid; j0 += kPixChannels) {
                pix_tile_sum(src, a.koff, a.K, a.w + j0, 16 * a.oc_vecs, acc);
                for (int j = 0; j < kPixChannels && j0 + j < a.oc_valid; ++j) {
                    const int64_t oc = j0 + j;
                    const __m512 b = _mm512_set1_ps(a.bias ? a.bias[oc] : 0.0f);
                    for (int v = 0; v < kPixVecs; ++v) {
                        __m512 out = _mm512_add_ps(acc[j][v], b);
                        if (a.relu) out = _mm512_max_ps(_mm512_setzero_ps(), out);  // NaN stays
                        _mm512_mask_storeu_ps(dst[v] + oc * a.P, mask[v], out);
                    }
                }
            }
        }
    }
}

// fold 2 on the pixel-vector tiles: lanes of w are 2*j + kw (channel j, tap kw), so a tile's 8
// lanes are 4 channels x both taps; the band rows [oh0, oh1) are flattened rows r = od*OH + oh
// (row r at band + (r - band_oh0)*Wb), read in whole 16-pixel vectors. The two taps of a channel
// are interleaved into 32 consecutive output columns per vector (no transpose).
void rows_fold(const DirectRows& a) {
    alignas(64) __m512 acc[kPixChannels][kPixVecs];
    const __m512i lo_idx =
        _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const int64_t nvec = (a.OW + 15) / 16;
    const int64_t total = (a.oh1 - a.oh0) * nvec;
    for (int64_t u0 = 0; u0 < total; u0 += kPixVecs) {
        const float* src[kPixVecs];
        float* dst[kPixVecs];  // output column 0 of the vector's row, null: nothing to store
        __mmask16 m_lo[kPixVecs], m_hi[kPixVecs];
        for (int v = 0; v < kPixVecs; ++v) {
            const int64_t u = u0 + v < total ? u0 + v : total - 1;
            const int64_t r = a.oh0 + u / nvec, px = (u % nvec) * 16;
            const int64_t od = r / a.OH, oh = r % a.OH;
            src[v] = a.band + (r - a.band_oh0) * a.Wb + px;
            const bool in = u0 + v < total && od >= a.od_lo && od < a.od_hi && oh >= a.oh_lo &&
                            oh < a.oh_hi;
            dst[v] = in ? a.y + od * a.y_d + oh * a.y_h : nullptr;
            // element e of the 32 interleaved values goes to column c0 + e
            const int64_t c0 = 2 * px - a.x_pad;
            const int64_t e_lo = -c0;
            const int64_t e_hi = 2 * (a.OW - px) < a.y_w - c0 ? 2 * (a.OW - px) : a.y_w - c0;
            m_lo[v] = lane_range(e_lo, e_hi);
            m_hi[v] = lane_range(e_lo - 16, e_hi - 16);
            if (dst[v]) dst[v] += c0;
        }
        for (int64_t j0 = 0; j0 < 2 * a.oc_valid; j0 += kPixChannels) {
            pix_tile_sum(src, a.koff, a.K, a.w + j0, 32, acc);
            for (int m = 0; m < kPixChannels / 2; ++m) {
                const int64_t c = j0 / 2 + m;
                if (c >= a.oc_valid) break;
                const __m512 b = _mm512_set1_ps(a.bias ? a.bias[c] : 0.0f);
                for (int v = 0; v < kPixVecs; ++v) {
                    if (!dst[v]) continue;
                    __m512 lo = _mm512_permutex2var_ps(acc[2 * m][v], lo_idx, acc[2 * m + 1][v]);
                    __m512 hi = _mm512_permutex2var_ps(acc[2 * m][v], hi_idx, acc[2 * m + 1][v]);
                    lo = _mm512_add_ps(lo, b);
                    hi = _mm512_add_ps(hi, b);
                    if (a.relu) {
                        lo = _mm512_max_ps(_mm512_setzero_ps(), lo);  // NaN stays NaN
                        hi = _mm512_max_ps(_mm512_setzero_ps(), hi);
                    }
                    _mm512_mask_storeu_ps(dst[v] + c * a.P, m_lo[v], lo);
                    _mm512_mask_storeu_ps(dst[v] + c * a.P + 16, m_hi[v], hi);
                }
            }
        }
    }
}

void direct_rows(const DirectRows& a) {
    if (a.fold == 2) rows_fold(a);
    else if (a.fold == 3) rows_pair(a);
    else if (a.sw == 1 && (a.oc_vecs == 1 || (a.OW + 15) / 16 * 16 < (a.OW + 13) / 14 * 14))
        rows_pix(a);
    else if (a.oc_vecs == 1) rows_sw<2, 14, 1>(a);
    else rows_sw<1, 14, 2>(a);
}

}  // namespace

void init_conv_direct__avx512(ConvKernels& k) {
    k.direct_rows = direct_rows;
}

}  // namespace convengine
