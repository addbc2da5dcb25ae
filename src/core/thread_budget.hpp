// How many threads one scoring call gets: enough work per thread to repay bringing a helper in, and,
// for scans bound by reading the matrix, enough threads that each one's share stays in its own L2.
#pragma once

#include <cstddef>

namespace nndex::core {

// Multiply-adds that justify one more thread when the helper is asleep: a futex wake-up costs tens of
// microseconds in a VM (measured with bench/ single queries on AMD Zen 4: two threads start to win
// at about 1.5 M multiply-adds).
inline constexpr std::size_t kColdWorkPerThread = 720'000;
// The same when a helper is still polling after the previous call (helpers_warm()): the hand-over
// costs about a microsecond, so a share of a few microseconds of work already pays.
inline constexpr std::size_t kWarmWorkPerThread = 128'000;

// What the choice depends on besides the call itself; now() reads it, tests give it.
struct ThreadBudgetInputs {
  bool helpers_warm = false;    // core::helpers_warm()
  std::size_t l2_per_core = 0;  // core::cache_sizes().l2_per_core (0: unknown, no L2 rule)
  static ThreadBudgetInputs now();
};

// multiply_adds: the call's work. scanned_bytes: bytes of stored rows a memory-bound call (a single
// query or a small batch) reads once, or 0 when the call is compute-bound. A matrix too large for
// one core's L2 whose per-thread shares fit the L2s is split that far even when the pool is cold:
// from then on each thread reads its share from its own L2 (the pool gives it the same share).
std::size_t threads_for(std::size_t multiply_adds, std::size_t scanned_bytes, std::size_t max_threads,
                        const ThreadBudgetInputs& inputs = ThreadBudgetInputs::now());

// Whether `threads` equal shares of `scanned_bytes` each fit one core's L2. Such a call is best split
// into exactly one share per thread: a second, smaller task per thread would let an early thread
// steal a late one's data and move it between caches on every call.
bool shares_fit_l2(std::size_t scanned_bytes, std::size_t threads, const ThreadBudgetInputs& inputs);

}  // namespace nndex::core
