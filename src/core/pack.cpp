#include "core/pack.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "core/prepare.hpp"
#include "core/thread_pool.hpp"
#include "nndex/errors.hpp"

namespace nndex::core {
namespace {

using kernels::kBlockRows;

// Below this many values one thread prepares faster than waking helpers.
constexpr std::size_t kParallelValues = std::size_t{1} << 18;
// Rows per task: big enough to amortise scheduling, small enough to balance and to cancel promptly.
constexpr std::size_t kRowsPerTask = 4096;

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

}  // namespace

void write_block(const float* rows, std::size_t count, std::size_t dims, float* block) {
  for (std::size_t r = 0; r < count; ++r) {
    const float* row = rows + r * dims;
    for (std::size_t j = 0; j < dims; ++j) block[j * kBlockRows + r] = row[j];
  }
  for (std::size_t r = count; r < kBlockRows; ++r)
    for (std::size_t j = 0; j < dims; ++j) block[j * kBlockRows + r] = 0.0f;
}

TiledMatrix pack_matrix(const MatrixView& src, bool normalize, const kernels::KernelTable& kt, std::size_t threads,
                        const StopCheck& should_stop) {
  static_assert(kRowsPerTask % kBlockRows == 0, "tasks must own whole blocks");
  TiledMatrix m(src.rows, src.cols);
  const std::size_t dims = src.cols;
  for_row_ranges(src, threads, should_stop, [&](std::size_t first, std::size_t last, TaskContext& ctx) {
    std::vector<float> rows(kBlockRows * dims);
    for (std::size_t row0 = first; row0 < last; row0 += kBlockRows) {
      if ((row0 - first) % 256 == 0 && ctx.stop_requested()) return;
      const std::size_t count = std::min(kBlockRows, last - row0);
      for (std::size_t r = 0; r < count; ++r)
        prepare_vector(src, row0 + r, normalize, kt, rows.data() + r * dims, {"row", row0 + r});
      write_block(rows.data(), count, dims, m.block(row0 / kBlockRows));
    }
  });
  return m;
}

TiledMatrix tile_rows(const float* rows, std::size_t n, std::size_t dims) {
  TiledMatrix m(n, dims);
  for (std::size_t b = 0; b < m.blocks(); ++b)
    write_block(rows + b * kBlockRows * dims, std::min(kBlockRows, n - b * kBlockRows), dims, m.block(b));
  return m;
}

std::vector<float> prepare_rows(const MatrixView& src, bool normalize, const kernels::KernelTable& kt,
                                std::size_t threads, const StopCheck& should_stop, const char* kind) {
  std::vector<float> out(src.rows * src.cols);
  for_row_ranges(src, threads, should_stop, [&](std::size_t first, std::size_t last, TaskContext& ctx) {
    for (std::size_t r = first; r < last; ++r) {
      if ((r - first) % 1024 == 0 && ctx.stop_requested()) return;
      prepare_vector(src, r, normalize, kt, out.data() + r * src.cols, {kind, r});
    }
  });
  return out;
}

}  // namespace nndex::core
