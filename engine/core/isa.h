// Instruction-set variants compiled into one build, and CPU detection.
//
// Every hot kernel is compiled once per variant (files named `*__avx2.cpp`, `*__avx512.cpp` get
// that ISA's compiler flags; everything else is baseline x86-64). The best variant the CPU
// supports is chosen once, when the Python module is imported (see kernel_table.h).
#pragma once

namespace convengine {

enum class Isa : int {
    ref = 0,     // baseline x86-64 (SSE2), scalar reference kernels
    avx2 = 1,    // AVX2 + FMA (Haswell and later, Zen 1 and later)
    avx512 = 2,  // AVX-512 F/BW/DQ/VL (Skylake-SP and later, Zen 4 and later)
};

constexpr int kIsaCount = 3;

// "ref", "avx2" or "avx512".
const char* isa_name(Isa isa);

// Parses an ISA name; returns false (and leaves *out unchanged) for an unknown name.
bool parse_isa(const char* name, Isa* out);

// True when this CPU and the operating system support every instruction the variant uses.
bool cpu_supports(Isa isa);

// The widest variant this CPU supports.
Isa best_supported_isa();

}  // namespace convengine
