#include "isa.h"

#include <cstring>

namespace convengine {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::ref: return "ref";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "unknown";
}

bool parse_isa(const char* name, Isa* out) {
    if (name == nullptr) return false;
    for (int i = 0; i < kIsaCount; ++i) {
        const Isa isa = static_cast<Isa>(i);
        if (std::strcmp(name, isa_name(isa)) == 0) {
            *out = isa;
            return true;
        }
    }
    return false;
}

bool cpu_supports(Isa isa) {
    // __builtin_cpu_supports reads CPUID and also checks (through XGETBV) that the operating
    // system saves the AVX / AVX-512 register state, so a "yes" here is safe to act on.
    __builtin_cpu_init();
    switch (isa) {
        case Isa::ref:
            return true;
        case Isa::avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("fma");
    }
    return false;
}

Isa best_supported_isa() {
    for (int i = kIsaCount - 1; i > 0; --i) {
        const Isa isa = static_cast<Isa>(i);
        if (cpu_supports(isa)) return isa;
    }
    return Isa::ref;
}

}  // namespace convengine
