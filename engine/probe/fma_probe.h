// A short probe of this machine's FP32 fused multiply-add throughput.
//
// Benchmarks report their GFLOP/s as a fraction of this figure: a GEMM at 90% of it is close to
// what the cores can do. Each thread runs independent FMA chains long enough to hide latency.
// It is a fair peak, not an unreachable one: on the AVX-512 machine this project runs on, 24
// chains measure the same as 12, and so does the GEMM micro-kernel's k loop without its B loads
// (benchmarks/gemm_ceiling.cpp). Time it with the clock that times what it is compared with: by
// CPU time, the calling thread's (fma_probe on one thread runs on the caller).
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

// Runs `iterations` rounds of FMAs on every one of `threads` threads with the active ISA's
// widest vectors and stores the FLOP count performed (2 per lane per FMA) in *flops.
// Timing is left to the caller.
Status fma_probe(int threads, int64_t iterations, double* flops);

// Per-ISA bodies: run `iterations` rounds, return the FLOPs done by the calling thread.
double fma_probe_rounds__ref(int64_t iterations);
double fma_probe_rounds__avx2(int64_t iterations);
double fma_probe_rounds__avx512(int64_t iterations);

}  // namespace convengine
