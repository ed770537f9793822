// Scratch memory for the convolution passes: one persistent buffer per calling thread, capped.
//
// A pass that needs scratch (a column tile for col2im, flipped weights, per-thread partial
// weight gradients) leases the calling thread's buffer for the duration of the call:
//
//     WorkspaceLease ws(bytes);            // grows the buffer if needed, never beyond the cap
//     if (!ws.ok()) return ws.status();
//     float* scratch = ws.floats();
//
// The buffer is grow-only (a later call of the same size touches no allocator and no fresh
// pages: fresh buffers over 32 MiB cost about 1.7 us per 4 KiB page here) up to the process-wide
// cap, workspace_limit() bytes (default 64 MiB). Passes size their tiles from
// workspace_budget(), so they never ask for more than the cap; a lease above the cap fails with
// out_of_memory instead of allocating. When the cap is lowered below a thread's buffer, that
// buffer is freed and reallocated at its next lease.
//
// The engine also tracks the bytes held by every workspace buffer together and their high-water
// mark (C++ allocations that Python's tracemalloc cannot see), for tests and benchmarks.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace convengine {

constexpr int64_t kDefaultWorkspaceLimit = int64_t{64} << 20;

// The cap, in bytes, on one thread's workspace buffer.
int64_t workspace_limit();
// Sets the cap (bytes >= 0). Passes then tile more finely; none fails for want of workspace,
// since each can fall back to tiles of one output row (a few KiB; see workspace_budget).
Status set_workspace_limit(int64_t bytes);

// Bytes a pass may plan for: the cap (rounded down to 64 bytes), but never below
// kMinWorkspaceBudget, the smallest tile
// set every pass can work with (so a limit of 0 still computes, with the smallest tiles).
constexpr int64_t kMinWorkspaceBudget = int64_t{64} << 10;
int64_t workspace_budget();

// Bytes currently held by all workspace buffers, and the most they ever held together since the
// last reset (reset_workspace_peak sets the mark to what is held now).
int64_t workspace_bytes_held();
int64_t workspace_peak_bytes();
void reset_workspace_peak();
// Frees the calling thread's buffer (tests; also lets a benchmark start cold).
void release_thread_workspace();

// The calling thread's buffer, at least `bytes` long and 64-byte aligned (2 MiB-aligned and
// advised for huge pages when large), for as long as the lease lives. Leases do not nest on one
// thread: a pass takes one lease and carves it up. A lease of 0 bytes holds nothing (and may be
// taken while another is held).
class WorkspaceLease {
  public:
    explicit WorkspaceLease(int64_t bytes);
    ~WorkspaceLease();
    WorkspaceLease(const WorkspaceLease&) = delete;
    WorkspaceLease& operator=(const WorkspaceLease&) = delete;

    bool ok() const { return status_.ok(); }
    Status status() const { return status_; }
    float* floats() const { return static_cast<float*>(data_); }

  private:
    void* data_ = nullptr;
    Status status_;
    bool held_ = false;  // this lease holds the thread's buffer (a 0-byte lease holds nothing)
};

}  // namespace convengine
