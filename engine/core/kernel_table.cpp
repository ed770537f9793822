#include "core/kernel_table.h"

#include <atomic>

namespace convengine {

namespace {

KernelTable init_ref() {
    KernelTable t{};
    t.isa = Isa::ref;
    init_elementwise__ref(t.elementwise);
    init_gemm__ref(t.gemm);
    init_gemm_pack__ref(t.gemm);
    init_conv__ref(t.conv);
    init_pool__ref(t.pool);
    init_activation__ref(t.activation);
    return t;
}

KernelTable init_avx2() {
    KernelTable t{};
    t.isa = Isa::avx2;
    init_elementwise__avx2(t.elementwise);
    init_gemm__avx2(t.gemm);
    init_gemm_pack__avx2(t.gemm);
    init_conv__avx2(t.conv);
    init_pool__avx2(t.pool);
    init_activation__avx2(t.activation);
    return t;
}

KernelTable init_avx512() {
    KernelTable t{};
    t.isa = Isa::avx512;
    init_elementwise__avx512(t.elementwise);
    init_gemm__avx512(t.gemm);
    init_gemm_pack__avx512(t.gemm);
    init_conv__avx512(t.conv);
    init_pool__avx512(t.pool);
    init_activation__avx512(t.activation);
    return t;
}

// Building a table only stores function pointers; no ISA-specific code runs here.
const KernelTable* const* all_tables() {
    static const KernelTable ref = init_ref();
    static const KernelTable avx2 = init_avx2();
    static const KernelTable avx512 = init_avx512();
    static const KernelTable* const tables[kIsaCount] = {&ref, &avx2, &avx512};
    return tables;
}

std::atomic<const KernelTable*>& active_table() {
    static std::atomic<const KernelTable*> active{
        all_tables()[static_cast<int>(best_supported_isa())]};
    return active;
}

}  // namespace

const KernelTable& kernels() { return *active_table().load(std::memory_order_acquire); }

const KernelTable& kernels_for(Isa isa) { return *all_tables()[static_cast<int>(isa)]; }

Status select_isa(Isa isa) {
    if (!cpu_supports(isa)) return Status::unsupported("select_isa: this CPU lacks that ISA");
    active_table().store(&kernels_for(isa), std::memory_order_release);
    return Status::success();
}

}  // namespace convengine
