// The kernel table: every ISA-specific kernel the engine has, for one ISA.
//
// One table is built per compiled ISA (init_<isa>() in kernel_table.cpp calls each op family's
// init_<family>__<isa>(), which lives next to that family's kernels and also registers its block
// sizes). The active table is chosen once, when the Python module is imported; engine code reads
// it through kernels() and never tests the ISA itself.
#pragma once

#include "core/isa.h"
#include "activation/activation_kernels.h"
#include "core/status.h"
#include "conv/conv_kernels.h"
#include "elementwise/elementwise_kernels.h"
#include "gemm/gemm_kernels.h"
#include "pool/pool_kernels.h"

namespace convengine {

struct KernelTable {
    Isa isa;
    ElementwiseKernels elementwise;
    GemmKernels gemm;
    ConvKernels conv;
    PoolKernels pool;
    ActivationKernels activation;
};

// The active table. Before any select_isa() call it is the best one the CPU supports.
const KernelTable& kernels();

// The table for one ISA, whether or not it is active (for tests that compare variants).
// The caller must check cpu_supports(isa) before running its kernels.
const KernelTable& kernels_for(Isa isa);

// Makes `isa` the active variant; fails (and changes nothing) if the CPU lacks it.
// Not meant to be called while kernels run on other threads.
Status select_isa(Isa isa);

}  // namespace convengine
