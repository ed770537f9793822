#include "core/workspace.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>

#include "core/int_math.h"

namespace convengine {

namespace {

std::atomic<int64_t> g_limit{kDefaultWorkspaceLimit};
std::atomic<int64_t> g_held{0};
std::atomic<int64_t> g_peak{0};

void note_held(int64_t delta) {
    const int64_t now = g_held.fetch_add(delta, std::memory_order_relaxed) + delta;
    int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}

// One thread's buffer. Freed when the thread exits.
class ThreadBuffer {
  public:
    ~ThreadBuffer() { reset(); }

    void* get(int64_t bytes) {
        const int64_t limit = workspace_budget();
        if (capacity_ > limit) reset();  // the cap was lowered: give the memory back
        if (bytes <= capacity_) return base_;
        if (bytes > limit) return nullptr;
        // Grow geometrically (but within the cap) so that a sequence of growing requests does
        // not reallocate each time; 2 MiB granularity for large buffers (huge pages).
        constexpr int64_t kHuge = int64_t{1} << 21;
        // (limit is a multiple of 64, see workspace_budget, so rounding never passes it.)
        int64_t want = bytes < 2 * capacity_ ? 2 * capacity_ : bytes;
        if (want > limit) want = limit;
        int64_t align = 64;
        if (want >= kHuge && round_up(want, kHuge) <= limit) align = kHuge;
        want = round_up(want, align);
        reset();
        void* p = std::aligned_alloc(static_cast<size_t>(align), static_cast<size_t>(want));
        if (p == nullptr) return nullptr;
        if (align == kHuge) madvise(p, static_cast<size_t>(want), MADV_HUGEPAGE);  // a hint
        base_ = p;
        capacity_ = want;
        note_held(want);
        return base_;
    }

    void reset() {
        if (base_ == nullptr) return;
        std::free(base_);
        note_held(-capacity_);
        base_ = nullptr;
        capacity_ = 0;
    }

    bool leased = false;

  private:
    void* base_ = nullptr;
    int64_t capacity_ = 0;
};

thread_local ThreadBuffer tls_buffer;

}  // namespace

int64_t workspace_limit() { return g_limit.load(std::memory_order_relaxed); }

Status set_workspace_limit(int64_t bytes) {
    if (bytes < 0) return Status::invalid("set_workspace_limit: bytes must be >= 0");
    g_limit.store(bytes, std::memory_order_relaxed);
    return Status::success();
}

int64_t workspace_budget() {
    const int64_t limit = workspace_limit() / 64 * 64;
    return limit > kMinWorkspaceBudget ? limit : kMinWorkspaceBudget;
}

int64_t workspace_bytes_held() { return g_held.load(std::memory_order_relaxed); }
int64_t workspace_peak_bytes() { return g_peak.load(std::memory_order_relaxed); }
void reset_workspace_peak() { g_peak.store(g_held.load(std::memory_order_relaxed)); }
void release_thread_workspace() {
    if (!tls_buffer.leased) tls_buffer.reset();
}

WorkspaceLease::WorkspaceLease(int64_t bytes) {
    if (bytes < 0) {
        status_ = Status::invalid("workspace: negative size");
        return;
    }
    if (bytes == 0) return;  // nothing to lease (and nothing to give back)
    if (tls_buffer.leased) {
        status_ = Status::invalid("workspace: the calling thread already holds a lease");
        return;
    }
    if (bytes > workspace_budget()) {
        status_ = Status::out_of_memory("workspace: request exceeds the workspace limit");
        return;
    }
    data_ = tls_buffer.get(bytes);
    if (data_ == nullptr) {
        status_ = Status::out_of_memory("workspace: cannot allocate the workspace buffer");
        return;
    }
    tls_buffer.leased = true;
    held_ = true;
}

WorkspaceLease::~WorkspaceLease() {
    if (held_) tls_buffer.leased = false;
}

}  // namespace convengine
