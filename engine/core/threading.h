// Thread count used by every parallel region of the engine.
//
// One process-wide value (not OpenMP's per-thread ICV), so that a kernel called from any Python
// thread uses what `convengine.set_num_threads` set. Default: OpenMP's own default, which honours
// OMP_NUM_THREADS and otherwise counts the cores in the process's affinity mask.
#pragma once

#include <cstdint>

#include "status.h"

namespace convengine {

int num_threads();
Status set_num_threads(int n);

// Threads worth using for `work` units of cheap, memory-bound work (element-wise kernels): a
// parallel region costs a few microseconds, so small arrays stay on one thread.
int threads_for_elementwise(int64_t work);

// OpenMP version macro (yyyymm) the engine was compiled against; 0 without OpenMP.
int openmp_version();

// Path of the shared OpenMP runtime this process resolved (e.g. ".../libgomp.so.1"), or "" when
// it cannot be told.
const char* openmp_library();

}  // namespace convengine
