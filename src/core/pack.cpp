#include "core/pack.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "core/prepare.hpp"
#include "core/row_ranges.hpp"
#include "core/thread_pool.hpp"
#include "nndex/errors.hpp"

namespace nndex::core {
namespace {

using kernels::kBlockRows;

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
