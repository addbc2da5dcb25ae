#include "core/pack.hpp"

#include <algorithm>
#include <cstring>
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

void prepare_rows_into(const MatrixView& src, bool normalize, const kernels::KernelTable& kt, std::size_t threads,
                       const StopCheck& should_stop, float* out, const char* kind) {
  for_row_ranges(src, threads, should_stop, [&](std::size_t first, std::size_t last, TaskContext& ctx) {
    for (std::size_t r = first; r < last; ++r) {
      if ((r - first) % 1024 == 0 && ctx.stop_requested()) return;
      prepare_vector(src, r, normalize, kt, out + r * src.cols, {kind, r});
    }
  });
}

std::vector<float> prepare_rows(const MatrixView& src, bool normalize, const kernels::KernelTable& kt,
                                std::size_t threads, const StopCheck& should_stop, const char* kind) {
  std::vector<float> out(src.rows * src.cols);
  prepare_rows_into(src, normalize, kt, threads, should_stop, out.data(), kind);
  return out;
}

TiledMatrix concat_tiles(std::span<const TiledMatrix* const> parts, std::size_t threads, const StopCheck& should_stop) {
  std::size_t rows = 0;
  for (const TiledMatrix* p : parts) rows += p->rows();
  const std::size_t dims = parts.empty() ? 0 : parts[0]->dims();
  TiledMatrix out(rows, dims);
  // Within a part, source blocks fill disjoint lanes, so they are copied in parallel; parts go one after
  // another, since a part's padding lanes land where the next part's first rows are written.
  constexpr std::size_t kBlocksPerTask = 64;
  std::size_t at = 0;  // the next destination row
  for (const TiledMatrix* p : parts) {
    const std::size_t shift = at % kBlockRows;
    const std::size_t first_block = at / kBlockRows;
    auto copy = [&](std::size_t task, TaskContext&) {
      for (std::size_t b = task * kBlocksPerTask; b < std::min(p->blocks(), (task + 1) * kBlocksPerTask); ++b) {
        const float* src = p->block(b);
        float* first = out.block(first_block + b);
        if (shift == 0) {
          std::memcpy(first, src, p->block_floats() * sizeof(float));
          continue;
        }
        // Lanes [0, 16 - shift) fill this destination block from lane `shift`; the rest start the next.
        float* second = first_block + b + 1 < out.blocks() ? out.block(first_block + b + 1) : nullptr;
        for (std::size_t j = 0; j < dims; ++j) {
          std::memcpy(first + j * kBlockRows + shift, src + j * kBlockRows, (kBlockRows - shift) * sizeof(float));
          if (second != nullptr)
            std::memcpy(second + j * kBlockRows, src + j * kBlockRows + kBlockRows - shift, shift * sizeof(float));
        }
      }
    };
    const std::size_t tasks = (p->blocks() + kBlocksPerTask - 1) / kBlocksPerTask;
    parallel_for(tasks, p->rows() * dims >= kParallelValues ? threads : 1, should_stop, TaskFn(copy));
    at += p->rows();
  }
  // Zero the padding lanes of the last block, as pack_matrix leaves them.
  if (const std::size_t used = rows % kBlockRows; used != 0)
    for (std::size_t j = 0; j < dims; ++j)
      std::fill_n(out.block(out.blocks() - 1) + j * kBlockRows + used, kBlockRows - used, 0.0f);
  return out;
}

void untile_rows(const TiledMatrix& m, float* out) {
  const std::size_t dims = m.dims();
  for (std::size_t b = 0; b < m.blocks(); ++b) {
    const float* block = m.block(b);
    const std::size_t count = std::min(kBlockRows, m.rows() - b * kBlockRows);
    float* rows = out + b * kBlockRows * dims;
    for (std::size_t j = 0; j < dims; ++j)
      for (std::size_t r = 0; r < count; ++r) rows[r * dims + j] = block[j * kBlockRows + r];
  }
}

}  // namespace nndex::core
