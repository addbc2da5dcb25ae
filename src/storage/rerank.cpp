#include "storage/rerank.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/pack.hpp"
#include "core/thread_budget.hpp"
#include "core/thread_pool.hpp"
#include "topk/topk.hpp"

namespace nndex::storage {
namespace {

using kernels::kBlockRows;

constexpr std::size_t kQueriesPerTask = 8;
constexpr std::size_t kGatherRows = 4 * kBlockRows;  // rows gathered and scored per step

}  // namespace

std::size_t shortlist_size(std::size_t k, std::size_t rows, double oversampling, bool int8) {
  const double factor = oversampling > 0.0 ? oversampling : (int8 ? 4.0 : 2.0);
  const double wanted = std::ceil(static_cast<double>(k) * factor);
  const std::size_t s = wanted >= static_cast<double>(rows) ? rows : static_cast<std::size_t>(wanted);
  return std::clamp(s, std::min(k, rows), rows);
}

void rerank(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* shortlist_ids,
            std::size_t shortlist, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
            const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores) {
  const std::size_t dims = rows.dims();
  const std::size_t tasks = (n + kQueriesPerTask - 1) / kQueriesPerTask;
  const std::size_t threads = core::threads_for(n * shortlist * dims, 0, std::min(max_threads, tasks));
  auto task = [&](std::size_t t, core::TaskContext& ctx) {
    std::vector<float> gathered(kGatherRows * dims);
    std::vector<float> tiles(kGatherRows * dims + 16);
    // score_tiles loads whole 64-byte lines: align the block buffer by hand.
    float* block = tiles.data() + (16 - reinterpret_cast<std::uintptr_t>(tiles.data()) / sizeof(float) % 16) % 16;
    alignas(64) float scores[kGatherRows];
    for (std::size_t q = t * kQueriesPerTask; q < std::min(n, (t + 1) * kQueriesPerTask); ++q) {
      if (ctx.stop_requested()) return;
      const float* query = queries + q * dims;
      const std::int64_t* ids = shortlist_ids + q * shortlist;
      topk::TopK top(out_scores + q * k, out_indices + q * k, k);
      for (std::size_t at = 0; at < shortlist; at += kGatherRows) {
        const std::size_t count = std::min(kGatherRows, shortlist - at);
        for (std::size_t i = 0; i < count; ++i) rows.read(static_cast<std::size_t>(ids[at + i]), kt, gathered.data() + i * dims);
        const std::size_t nblocks = (count + kBlockRows - 1) / kBlockRows;
        for (std::size_t b = 0; b < nblocks; ++b)
          core::write_block(gathered.data() + b * kBlockRows * dims, std::min(kBlockRows, count - b * kBlockRows), dims,
                            block + b * kBlockRows * dims);
        kt.score_tiles(block, nblocks, dims, query, 1, scores, kGatherRows);
        for (std::size_t i = 0; i < count; ++i) top.push(scores[i], ids[at + i]);
      }
      top.sort_descending();
    }
  };
  core::parallel_for(tasks, threads, should_stop, core::TaskFn(task));
}

}  // namespace nndex::storage
