#include "exact/exact_search.hpp"

#include <algorithm>
#include <vector>

#include "core/thread_pool.hpp"
#include "topk/topk.hpp"

namespace nndex::exact {
namespace {

using kernels::kBlockRows;
using kernels::kMaxQueryGroup;

// Measured crossovers (bench/): below this many multiply-adds per thread, waking a helper costs more
// than it saves.
constexpr std::size_t kMinWorkPerThread = std::size_t{1} << 18;
// Row panel: kept in L2 while every query of the block is scored against it.
constexpr std::size_t kPanelBytes = std::size_t{384} << 10;
constexpr std::size_t kPanelMaxBlocks = 64;
// Query block: kept in L2 beside the panel; each block streams the matrix once.
constexpr std::size_t kQueryBlockBytes = std::size_t{256} << 10;
constexpr std::size_t kQueryBlockMax = 192;

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }
std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

struct Heaps {
  float* scores;
  std::int64_t* indices;
  std::size_t k;
};

// Scores rows [block_begin, block_end) against queries [q_begin, q_end) into heaps (one per query,
// laid out n x k from the first query of the block).
void scan(const core::TiledMatrix& m, const float* queries, std::size_t q_begin, std::size_t q_end,
          std::size_t block_begin, std::size_t block_end, std::size_t panel_blocks, const kernels::KernelTable& kt,
          Heaps heaps, bool sort_results, core::TaskContext& ctx) {
  const std::size_t dims = m.dims();
  const std::size_t rows = m.rows();
  const std::size_t nq = q_end - q_begin;
  alignas(64) float scores[kMaxQueryGroup * kPanelMaxBlocks * kBlockRows];
  std::uint32_t positions[kPanelMaxBlocks * kBlockRows];

  std::vector<topk::TopK> tops;
  tops.reserve(nq);
  for (std::size_t q = 0; q < nq; ++q) tops.emplace_back(heaps.scores + q * heaps.k, heaps.indices + q * heaps.k, heaps.k);

  const std::size_t stride = panel_blocks * kBlockRows;
  for (std::size_t b = block_begin; b < block_end; b += panel_blocks) {
    if (ctx.stop_requested()) return;
    const std::size_t nblocks = std::min(panel_blocks, block_end - b);
    const std::size_t row0 = b * kBlockRows;
    const std::size_t valid = std::min(nblocks * kBlockRows, rows - row0);
    for (std::size_t g = 0; g < nq; g += kMaxQueryGroup) {
      const std::size_t group = std::min(kMaxQueryGroup, nq - g);
      kt.score_tiles(m.block(b), nblocks, dims, queries + (q_begin + g) * dims, group, scores, stride);
      for (std::size_t i = 0; i < group; ++i) {
        topk::TopK& top = tops[g + i];
        const float* s = scores + i * stride;
        const std::size_t found = kt.select_above(s, nblocks * kBlockRows, top.threshold(), positions);
        for (std::size_t c = 0; c < found && positions[c] < valid; ++c)
          top.push(s[positions[c]], static_cast<std::int64_t>(row0 + positions[c]));
      }
    }
  }
  if (sort_results)
    for (auto& top : tops) top.sort_descending();
}

}  // namespace

Plan make_plan(std::size_t rows, std::size_t dims, std::size_t n, std::size_t max_threads) {
  Plan plan;
  const std::size_t blocks = ceil_div(rows, kBlockRows);
  plan.panel_blocks = std::clamp<std::size_t>(kPanelBytes / (dims * kBlockRows * sizeof(float)), 1, kPanelMaxBlocks);
  plan.panel_blocks = plan.panel_blocks >= 8 ? plan.panel_blocks / 8 * 8 : plan.panel_blocks;
  const std::size_t cache_block =
      std::clamp<std::size_t>(kQueryBlockBytes / (dims * sizeof(float)) / kMaxQueryGroup * kMaxQueryGroup,
                              kMaxQueryGroup, kQueryBlockMax);

  const std::size_t work = n * rows * dims;
  plan.threads = std::clamp<std::size_t>(work / kMinWorkPerThread, 1, std::max<std::size_t>(max_threads, 1));
  if (plan.threads == 1) {
    plan.query_block = std::min(n, cache_block);
    plan.path = "serial";
    return plan;
  }
  if (n >= 2 * plan.threads * kMaxQueryGroup) {
    // Enough queries: split them, so no merge is needed; at least two tasks per thread for balance.
    plan.query_block = std::min(cache_block, round_up(ceil_div(n, 2 * plan.threads), kMaxQueryGroup));
    plan.path = "query-split";
    return plan;
  }
  // Few queries: split the rows, each split with its own heaps, merged at the end.
  plan.query_block = n;
  plan.row_splits = std::clamp<std::size_t>(4 * plan.threads, 1, ceil_div(blocks, plan.panel_blocks));
  plan.threads = std::min(plan.threads, plan.row_splits);
  plan.path = "row-split";
  return plan;
}

Plan search(const core::TiledMatrix& m, const float* queries, std::size_t n, std::size_t k,
            const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
            std::int64_t* out_indices, float* out_scores) {
  const std::size_t kk = std::min(k, m.rows());
  const Plan plan = make_plan(m.rows(), m.dims(), n, max_threads);
  const std::size_t query_blocks = ceil_div(n, plan.query_block);
  const std::size_t blocks = m.blocks();

  if (plan.row_splits == 1) {
    auto task = [&](std::size_t t, core::TaskContext& ctx) {
      const std::size_t q0 = t * plan.query_block;
      const std::size_t q1 = std::min(n, q0 + plan.query_block);
      Heaps heaps{out_scores + q0 * kk, out_indices + q0 * kk, kk};
      scan(m, queries, q0, q1, 0, blocks, plan.panel_blocks, kt, heaps, /*sort_results=*/true, ctx);
    };
    core::parallel_for(query_blocks, plan.threads, should_stop, core::TaskFn(task));
    return plan;
  }

  // Row split: splits x n x kk partial heaps.
  const std::size_t splits = plan.row_splits;
  const std::size_t blocks_per_split = round_up(ceil_div(blocks, splits), plan.panel_blocks);
  std::vector<float> part_scores(splits * n * kk);
  std::vector<std::int64_t> part_indices(splits * n * kk);
  std::vector<std::size_t> part_sizes(splits, 0);
  auto task = [&](std::size_t s, core::TaskContext& ctx) {
    const std::size_t b0 = std::min(blocks, s * blocks_per_split);
    const std::size_t b1 = std::min(blocks, b0 + blocks_per_split);
    Heaps heaps{part_scores.data() + s * n * kk, part_indices.data() + s * n * kk, kk};
    scan(m, queries, 0, n, b0, b1, plan.panel_blocks, kt, heaps, /*sort_results=*/false, ctx);
    part_sizes[s] = std::min(kk, (std::min(m.rows(), b1 * kBlockRows)) - std::min(m.rows(), b0 * kBlockRows));
  };
  core::parallel_for(splits, plan.threads, should_stop, core::TaskFn(task));

  for (std::size_t q = 0; q < n; ++q) {
    topk::TopK top(out_scores + q * kk, out_indices + q * kk, kk);
    for (std::size_t s = 0; s < splits; ++s) {
      const float* ps = part_scores.data() + (s * n + q) * kk;
      const std::int64_t* pi = part_indices.data() + (s * n + q) * kk;
      for (std::size_t i = 0; i < part_sizes[s]; ++i) top.push(ps[i], pi[i]);
    }
    top.sort_descending();
  }
  return plan;
}

}  // namespace nndex::exact
