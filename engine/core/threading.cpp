#include "threading.h"

#include <dlfcn.h>
#include <omp.h>

#include <atomic>

namespace convengine {

namespace {

std::atomic<int>& thread_setting() {
    static std::atomic<int> value{omp_get_max_threads() > 0 ? omp_get_max_threads() : 1};
    return value;
}

// Below this many elements an element-wise kernel runs on one thread.
constexpr int64_t kElementsPerThread = 1 << 15;

}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

Status set_num_threads(int n) {
    if (n < 1) return Status::invalid("set_num_threads: n must be >= 1");
    thread_setting().store(n, std::memory_order_relaxed);
    return Status::success();
}

int threads_for_elementwise(int64_t work) {
    const int64_t useful = work / kElementsPerThread;
    const int limit = num_threads();
    if (useful < 2) return 1;
    return useful < limit ? static_cast<int>(useful) : limit;
}

int openmp_version() { return _OPENMP; }

const char* openmp_library() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &info) == 0 || info.dli_fname == nullptr)
        return "";
    return info.dli_fname;
}

}  // namespace convengine
