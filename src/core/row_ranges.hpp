// Parallel passes over a matrix's rows that report the lowest bad row whatever the thread timing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <vector>

#include "core/thread_pool.hpp"
#include "nndex/errors.hpp"
#include "nndex/types.hpp"

namespace nndex::core {

// Below this many values one thread prepares faster than waking helpers.
inline constexpr std::size_t kParallelValues = std::size_t{1} << 18;
// Rows per task: big enough to amortise scheduling, small enough to balance and to cancel promptly.
inline constexpr std::size_t kRowsPerTask = 4096;

// Runs body(first_row, last_row, ctx) over the rows in parallel. Tasks cover rows in order and each
// stops at its first error, so the first recorded error is the lowest bad row whatever the timing.
template <class Body>
void for_row_ranges(const MatrixView& src, std::size_t threads, const StopCheck& should_stop, Body&& body) {
  const std::size_t ntasks = (src.rows + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<std::exception_ptr> errors(ntasks);
  auto task = [&](std::size_t t, TaskContext& ctx) {
    try {
      body(t * kRowsPerTask, std::min(src.rows, (t + 1) * kRowsPerTask), ctx);
    } catch (const Error&) {
      errors[t] = std::current_exception();
    }
  };
  parallel_for(ntasks, src.rows * src.cols >= kParallelValues ? threads : 1, should_stop, TaskFn(task));
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace nndex::core
