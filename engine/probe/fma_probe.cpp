#include "probe/fma_probe.h"

#include "core/kernel_table.h"

namespace convengine {

Status fma_probe(int threads, int64_t iterations, double* flops) {
    if (threads < 1) return Status::invalid("fma_probe: threads must be >= 1");
    if (iterations < 1) return Status::invalid("fma_probe: iterations must be >= 1");
    double (*rounds)(int64_t) = fma_probe_rounds__ref;
    switch (kernels().isa) {
        case Isa::ref: rounds = fma_probe_rounds__ref; break;
        case Isa::avx2: rounds = fma_probe_rounds__avx2; break;
        case Isa::avx512: rounds = fma_probe_rounds__avx512; break;
    }
    double total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += rounds(iterations);
    *flops = total;
    return Status::success();
}

}  // namespace convengine
