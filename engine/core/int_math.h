// Integer helpers for sizes and block arithmetic (non-negative operands, y > 0).
//
// Inline functions shared by several files: include this only from baseline (non-ISA) sources,
// so the linker never has to choose between copies compiled for different ISAs (the rule in
// engine/elementwise/elementwise_impl.inc).
#pragma once

#include <cstdint>

namespace convengine {

inline int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
inline int64_t round_up(int64_t x, int64_t r) { return ceil_div(x, r) * r; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// The size of ceil(total / limit) nearly equal blocks, each a multiple of `unit` (but the last):
// equal blocks beat (limit, limit, small rest).
inline int64_t balanced_block(int64_t total, int64_t limit, int64_t unit) {
    if (total <= 0) return unit;
    const int64_t blocks = ceil_div(total, limit);
    return min64(limit, round_up(ceil_div(total, blocks), unit));
}

}  // namespace convengine
