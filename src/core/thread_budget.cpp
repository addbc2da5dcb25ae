#include "core/thread_budget.hpp"

#include <algorithm>

#include "core/cache_size.hpp"
#include "core/thread_pool.hpp"

namespace nndex::core {
namespace {

// Share of a core's L2 a slice of the matrix may take: the query, heaps and the next call's other
// data need the rest.
constexpr std::size_t kL2UsePercent = 75;

std::size_t usable_l2(const ThreadBudgetInputs& inputs) { return inputs.l2_per_core * kL2UsePercent / 100; }

}  // namespace

bool shares_fit_l2(std::size_t scanned_bytes, std::size_t threads, const ThreadBudgetInputs& inputs) {
  const std::size_t fit = usable_l2(inputs);
  return scanned_bytes > 0 && threads > 0 && fit > 0 && (scanned_bytes + threads - 1) / threads <= fit;
}

ThreadBudgetInputs ThreadBudgetInputs::now() { return {core::helpers_warm(), cache_sizes().l2_per_core}; }

std::size_t threads_for(std::size_t multiply_adds, std::size_t scanned_bytes, std::size_t max_threads,
                        const ThreadBudgetInputs& inputs) {
  max_threads = std::max<std::size_t>(max_threads, 1);
  const std::size_t per_thread = inputs.helpers_warm ? kWarmWorkPerThread : kColdWorkPerThread;
  std::size_t threads = std::clamp<std::size_t>(multiply_adds / per_thread, 1, max_threads);
  if (scanned_bytes > 0 && multiply_adds >= 2 * kWarmWorkPerThread) {
    const std::size_t fit = usable_l2(inputs);
    if (fit > 0 && scanned_bytes > fit) {
      const std::size_t needed = (scanned_bytes + fit - 1) / fit;
      if (needed <= max_threads) threads = std::max(threads, needed);
    }
  }
  return threads;
}

}  // namespace nndex::core
