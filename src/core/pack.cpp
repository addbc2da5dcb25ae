#include "core/pack.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "core/prepare.hpp"
#include "nndex/errors.hpp"
#include "core/thread_pool.hpp"

namespace nndex::core {
namespace {

using kernels::kBlockRows;

// Below this many values one thread packs faster than waking helpers.
constexpr std::size_t kParallelPackValues = std::size_t{1} << 18;
// Blocks per task: big enough to amortise scheduling, small enough to balance and to cancel promptly.
constexpr std::size_t kBlocksPerTask = 256;

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
  TiledMatrix m(src.rows, src.cols);
  const std::size_t dims = src.cols;
  const std::size_t ntasks = (m.blocks() + kBlocksPerTask - 1) / kBlocksPerTask;
  std::vector<std::exception_ptr> errors(ntasks);

  auto task = [&](std::size_t t, TaskContext& ctx) {
    std::vector<float> rows(kBlockRows * dims);
    const std::size_t first = t * kBlocksPerTask;
    const std::size_t last = std::min(m.blocks(), first + kBlocksPerTask);
    try {
      for (std::size_t b = first; b < last; ++b) {
        if ((b - first) % 16 == 0 && ctx.stop_requested()) return;
        const std::size_t row0 = b * kBlockRows;
        const std::size_t count = std::min(kBlockRows, src.rows - row0);
        for (std::size_t r = 0; r < count; ++r)
          prepare_vector(src, row0 + r, normalize, kt, rows.data() + r * dims, {"row", row0 + r});
        write_block(rows.data(), count, dims, m.block(b));
      }
    } catch (const Error&) {
      errors[t] = std::current_exception();  // tasks cover rows in order: the first slot holds the lowest row
    }
  };
  const std::size_t use = src.rows * dims >= kParallelPackValues ? threads : 1;
  parallel_for(ntasks, use, should_stop, TaskFn(task));
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return m;
}

}  // namespace nndex::core
