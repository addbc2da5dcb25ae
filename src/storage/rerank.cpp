#include "storage/rerank.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/thread_budget.hpp"
#include "core/thread_pool.hpp"
#include "topk/topk.hpp"

namespace nndex::storage {
namespace {

using kernels::kBlockRows;

constexpr std::size_t kQueriesPerTask = 8;
constexpr std::size_t kGatherRows = 4 * kBlockRows;  // rows gathered and scored per step

void prefetch_rows(const ExactRows& rows, const std::int64_t* ids, std::size_t count) {
  const std::size_t bytes = rows.dims() * sizeof(float);
  for (std::size_t i = 0; i < count; ++i) {
    const char* row = reinterpret_cast<const char*>(rows.in_memory(static_cast<std::size_t>(ids[i])));
    if (row == nullptr) return;  // rows read from a file or prepared on read: nothing to prefetch
    for (std::size_t at = 0; at < bytes; at += 64) __builtin_prefetch(row + at, 0, 3);
  }
}

}  // namespace

std::size_t shortlist_size(std::size_t k, std::size_t rows, double oversampling, bool int8) {
  double wanted = 0.0;
  if (oversampling > 0.0) {
    wanted = std::ceil(static_cast<double>(k) * oversampling);
  } else {
    // The defaults: int8 codes are about 6x noisier than bf16 ones. The extra rows keep small k safe
    // (k = 1 needs a few candidates whatever the factor).
    wanted = std::max(std::ceil(static_cast<double>(k) * (int8 ? kDefaultInt8Oversampling : kDefaultBf16Oversampling)),
                      static_cast<double>(k + kDefaultExtraRows));
  }
  const std::size_t s = wanted >= static_cast<double>(rows) ? rows : static_cast<std::size_t>(wanted);
  return std::clamp(s, std::min(k, rows), rows);
}

namespace {

// Query q's shortlist starts at shortlist_ids + q * stride (stride 0: one list for every query).
void rerank_lists(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* shortlist_ids,
                  std::size_t shortlist, std::size_t stride, std::size_t k, const kernels::KernelTable& kt,
                  std::size_t max_threads, const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores) {
  const std::size_t dims = rows.dims();
  const std::size_t tasks = (n + kQueriesPerTask - 1) / kQueriesPerTask;
  const std::size_t threads = core::threads_for(n * shortlist * dims, 0, std::min(max_threads, tasks));
  auto task = [&](std::size_t t, core::TaskContext& ctx) {
    // Per-thread buffers, grown once: a single query's re-ranking is a few microseconds, which a fresh
    // zero-filled allocation of both would double.
    thread_local std::vector<float> scratch, tiles;
    if (scratch.size() < kGatherRows * dims) scratch.resize(kGatherRows * dims);  // rows not in memory as they are
    if (tiles.size() < kGatherRows * dims + 16) tiles.resize(kGatherRows * dims + 16);
    // score_tiles loads whole 64-byte lines: align the block buffer by hand.
    float* block = tiles.data() + (16 - reinterpret_cast<std::uintptr_t>(tiles.data()) / sizeof(float) % 16) % 16;
    alignas(64) float scores[kGatherRows];
    const float* row_at[kGatherRows];
    const std::size_t q_end = std::min(n, (t + 1) * kQueriesPerTask);
    prefetch_rows(rows, shortlist_ids + t * kQueriesPerTask * stride, shortlist);
    for (std::size_t q = t * kQueriesPerTask; q < q_end; ++q) {
      if (ctx.stop_requested()) return;
      // The next query's rows are scattered over the matrix: start loading them now, so their
      // cache misses overlap this query's work instead of stalling the transposes.
      if (q + 1 < q_end && stride != 0) prefetch_rows(rows, shortlist_ids + (q + 1) * stride, shortlist);
      const float* query = queries + q * dims;
      const std::int64_t* ids = shortlist_ids + q * stride;
      topk::TopK top(out_scores + q * k, out_indices + q * k, k);
      for (std::size_t at = 0; at < shortlist; at += kGatherRows) {
        const std::size_t count = std::min(kGatherRows, shortlist - at);
        for (std::size_t i = 0; i < count; ++i) {
          const auto r = static_cast<std::size_t>(ids[at + i]);
          row_at[i] = rows.in_memory(r);
          if (row_at[i] == nullptr) {
            rows.read(r, kt, scratch.data() + i * dims);
            row_at[i] = scratch.data() + i * dims;
          }
        }
        const std::size_t nblocks = (count + kBlockRows - 1) / kBlockRows;
        for (std::size_t b = 0; b < nblocks; ++b)
          kt.gather_block(row_at + b * kBlockRows, std::min(kBlockRows, count - b * kBlockRows), dims,
                          block + b * kBlockRows * dims);
        kt.score_tiles(block, nblocks, dims, query, 1, scores, kGatherRows);
        for (std::size_t i = 0; i < count; ++i) top.push(scores[i], ids[at + i]);
      }
      top.sort_descending();
    }
  };
  core::parallel_for(tasks, threads, should_stop, core::TaskFn(task));
}

}  // namespace

void rerank(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* shortlist_ids,
            std::size_t shortlist, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
            const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores) {
  rerank_lists(rows, queries, n, shortlist_ids, shortlist, shortlist, k, kt, max_threads, should_stop, out_indices,
               out_scores);
}

void score_rows(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* row_ids,
                std::size_t count, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
                const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores) {
  rerank_lists(rows, queries, n, row_ids, count, 0, k, kt, max_threads, should_stop, out_indices, out_scores);
}

}  // namespace nndex::storage
