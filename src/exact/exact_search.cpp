#include "exact/exact_search.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/cache_size.hpp"
#include "core/thread_budget.hpp"
#include "core/thread_pool.hpp"
#include "scan/scan.hpp"
#include "topk/topk.hpp"

namespace nndex::exact {
namespace {

using kernels::kBlockRows;
using scan::Scanner;
using scan::Segment;

// Query block: kept in L2 beside the row panel; each block streams the matrix once.
constexpr std::size_t kQueryBlockBytes = std::size_t{256} << 10;
constexpr std::size_t kQueryBlockMax = 192;
constexpr std::size_t kStreamingBytesFallback = std::size_t{16} << 20;

// From this size on a single query reads the matrix from memory rather than the last-level cache
// (its size is read from the OS; measured: prefetching wins at 2x the cache and loses ~15% inside it).
std::size_t streaming_bytes() {
  static const std::size_t bytes = [] {
    if (const char* v = std::getenv("NNDEX_STREAMING_BYTES")) return static_cast<std::size_t>(std::atoll(v));
    return core::last_level_cache_bytes(kStreamingBytesFallback * 4 / 3) * 3 / 4;
  }();
  return bytes;
}

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }
std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Scores stored blocks [block_begin, block_end) against n queries into n heaps of k laid out n x k;
// `sizes`, when set, gets the entries each heap holds (fewer than k when a filter allows fewer rows).
void scan_into(const Scanner& scanner, std::size_t rows, const std::byte* queries, std::size_t n,
               std::size_t block_begin, std::size_t block_end, float* heap_scores, std::int64_t* heap_ids,
               std::size_t k, bool sort_results, core::TaskContext& ctx, std::size_t* sizes = nullptr) {
  std::vector<topk::TopK> tops;
  tops.reserve(n);
  for (std::size_t q = 0; q < n; ++q) tops.emplace_back(heap_scores + q * k, heap_ids + q * k, k);
  const Segment segment{block_begin, block_end,
                        std::min(rows, block_end * kBlockRows) - std::min(rows, block_begin * kBlockRows)};
  if (!scanner.scan(segment, queries, n, tops.data(), &ctx)) return;
  if (sizes != nullptr)
    for (std::size_t q = 0; q < n; ++q) sizes[q] = tops[q].size();
  if (sort_results)
    for (auto& top : tops) top.sort_descending();
}

}  // namespace

Plan make_plan(std::size_t rows, std::size_t dims, std::size_t n, std::size_t max_threads,
               const core::ThreadBudgetInputs& inputs, StorageShape shape) {
  Plan plan;
  const std::size_t blocks = ceil_div(rows, kBlockRows);
  if (shape.scan_bytes == 0) shape.scan_bytes = blocks * kBlockRows * dims * sizeof(float);
  if (shape.query_bytes == 0) shape.query_bytes = dims * sizeof(float);
  if (shape.group == 0) shape.group = kernels::kMaxQueryGroup;
  plan.panel_blocks = shape.panel_blocks != 0 ? shape.panel_blocks
                                              : scan::panel_blocks_for_bytes(std::max<std::size_t>(1, shape.scan_bytes / blocks));
  const std::size_t group = shape.group;
  const std::size_t cache_block = std::clamp<std::size_t>(kQueryBlockBytes / shape.query_bytes / group * group, group,
                                                          std::max(group, kQueryBlockMax / group * group));

  // A query group or less reads the matrix once and is bound by where the matrix lives.
  const std::size_t scanned = n <= kernels::kMaxQueryGroup ? shape.scan_bytes : 0;
  plan.threads = core::threads_for(n * rows * dims, scanned, max_threads, inputs);
  if (plan.threads == 1) {
    plan.query_block = std::min(n, cache_block);
    plan.path = "serial";
    return plan;
  }
  if (n >= 2 * plan.threads * group) {
    // Enough queries: split them, so no merge is needed; at least two tasks per thread for balance.
    plan.query_block = std::min(cache_block, round_up(ceil_div(n, 2 * plan.threads), group));
    plan.path = "query-split";
    return plan;
  }
  // Few queries: split the rows, each split with its own heaps, merged at the end.
  plan.query_block = n;
  // Four splits per thread balance uneven progress; shares that live in the threads' L2s stay whole.
  const std::size_t per_thread = core::shares_fit_l2(scanned, plan.threads, inputs) ? 1 : 4;
  plan.row_splits = std::clamp<std::size_t>(per_thread * plan.threads, 1, ceil_div(blocks, plan.panel_blocks));
  plan.threads = std::min(plan.threads, plan.row_splits);
  plan.path = "row-split";
  return plan;
}

Plan search(const core::TiledMatrix& m, const float* queries, std::size_t n, std::size_t k,
            const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
            std::int64_t* out_indices, float* out_scores, const core::RowFilter* filter) {
  const scan::TileScorer scorer(m, kt, n == 1 && m.bytes() >= streaming_bytes());
  return search(scorer, m.rows(), m.dims(), reinterpret_cast<const std::byte*>(queries), n, k, kt, max_threads,
                should_stop, out_indices, out_scores, filter);
}

Plan search(const scan::BlockScorer& scorer, std::size_t rows, std::size_t dims, const std::byte* queries,
            std::size_t n, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
            const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores,
            const core::RowFilter* filter) {
  if (filter != nullptr && filter->all()) filter = nullptr;
  const std::size_t kk = std::min(k, filter != nullptr ? filter->count() : rows);
  if (kk == 0) return Plan{};
  // A filter's plan is sized by the blocks it reads (all of them when most are occupied: see Scanner).
  std::size_t scanned_rows = filter != nullptr ? std::min(rows, filter->occupied_blocks() * kBlockRows) : rows;
  if (4 * scanned_rows >= 3 * rows) scanned_rows = rows;
  const std::size_t scan_bytes = scorer.scan_bytes() / std::max<std::size_t>(rows, 1) * scanned_rows;
  const Plan plan = make_plan(std::max<std::size_t>(scanned_rows, 1), dims, n, max_threads, core::ThreadBudgetInputs::now(),
                              {std::max<std::size_t>(scan_bytes, 1), scorer.query_bytes(), scorer.group(), scorer.panel_blocks()});
  const std::size_t query_blocks = ceil_div(n, plan.query_block);
  const std::size_t blocks = scorer.blocks();
  const std::size_t qbytes = scorer.query_bytes();
  const Scanner scanner{scorer, kt, nullptr, filter,
                        filter != nullptr && 4 * filter->occupied_blocks() < 3 * ceil_div(rows, kBlockRows)};

  if (plan.row_splits == 1) {
    auto task = [&](std::size_t t, core::TaskContext& ctx) {
      const std::size_t q0 = t * plan.query_block;
      const std::size_t q1 = std::min(n, q0 + plan.query_block);
      scan_into(scanner, rows, queries + q0 * qbytes, q1 - q0, 0, blocks, out_scores + q0 * kk, out_indices + q0 * kk,
                kk, /*sort_results=*/true, ctx);
    };
    core::parallel_for(query_blocks, plan.threads, should_stop, core::TaskFn(task));
    return plan;
  }

  // Row split: splits x n x kk partial heaps.
  const std::size_t splits = plan.row_splits;
  std::vector<float> part_scores(splits * n * kk);
  std::vector<std::int64_t> part_indices(splits * n * kk);
  std::vector<std::size_t> part_sizes(splits * n, 0);
  auto task = [&](std::size_t s, core::TaskContext& ctx) {
    // Even shares: the pool gives each thread a contiguous run of splits, the same run every call.
    const std::size_t b0 = blocks * s / splits;
    const std::size_t b1 = blocks * (s + 1) / splits;
    scan_into(scanner, rows, queries, n, b0, b1, part_scores.data() + s * n * kk, part_indices.data() + s * n * kk,
              kk, /*sort_results=*/false, ctx, part_sizes.data() + s * n);
  };
  core::parallel_for(splits, plan.threads, should_stop, core::TaskFn(task));

  for (std::size_t q = 0; q < n; ++q) {
    topk::TopK top(out_scores + q * kk, out_indices + q * kk, kk);
    for (std::size_t s = 0; s < splits; ++s) {
      const float* ps = part_scores.data() + (s * n + q) * kk;
      const std::int64_t* pi = part_indices.data() + (s * n + q) * kk;
      for (std::size_t i = 0; i < part_sizes[s * n + q]; ++i) top.push(ps[i], pi[i]);
    }
    top.sort_descending();
  }
  return plan;
}

}  // namespace nndex::exact
