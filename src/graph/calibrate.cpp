#include "graph/calibrate.hpp"

#include <algorithm>
#include <mutex>
#include <random>

#include "core/aligned_buffer.hpp"
#include "core/thread_pool.hpp"
#include "graph/graph_index.hpp"
#include "storage/rerank.hpp"
#include "topk/topk.hpp"

namespace nndex::graph {
namespace {

constexpr std::size_t kK = 10;
// Enough held-out queries that the calibrated recall's standard error is about 0.003 (per-query recall
// spreads by about 0.1), so the 0.01 margin of the default target covers it on new queries.
constexpr std::size_t kMaxQueries = 1000;
constexpr std::size_t kMinRows = 2048;  // below this every row is needed; ef stays kUncalibratedEf
constexpr std::size_t kRowsPerTask = 4096;
constexpr std::size_t kMinEf = 10, kMaxEf = 2048;

// Exact top-kK of every query among the rows not held out: row blocks gathered into the float32
// tile layout and scored with the tile kernel, each task keeping its own top-k, merged at the end.
std::vector<std::int64_t> exact_truth(const storage::ExactRows& rows, const std::vector<float>& queries, std::size_t nq,
                                      const std::vector<bool>& held, const kernels::KernelTable& kt,
                                      std::size_t threads, const StopCheck& should_stop) {
  using kernels::kBlockRows;
  const std::size_t d = rows.dims(), n = rows.rows();
  const std::size_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<float> scores(tasks * nq * kK, 0.0f);
  std::vector<std::int64_t> ids(tasks * nq * kK, -1);
  std::vector<std::size_t> sizes(tasks * nq, 0);
  auto task = [&](std::size_t t, core::TaskContext& ctx) {
    std::vector<float> staged(kBlockRows * d), block_scores(kernels::kMaxQueryGroup * kBlockRows);
    std::vector<float, core::CacheLineAllocator<float>> block(kBlockRows * d);  // the tile kernels' alignment
    std::vector<const float*> pointers(kBlockRows);
    std::vector<std::int64_t> block_ids(kBlockRows);
    std::vector<topk::TopK> heaps;
    for (std::size_t q = 0; q < nq; ++q)
      heaps.emplace_back(&scores[(t * nq + q) * kK], &ids[(t * nq + q) * kK], kK);
    const std::size_t last = std::min(n, (t + 1) * kRowsPerTask);
    std::size_t r = t * kRowsPerTask;
    while (r < last) {
      if (ctx.stop_requested()) return;
      std::size_t count = 0;
      for (; r < last && count < kBlockRows; ++r) {
        if (held[r]) continue;
        rows.read(r, kt, staged.data() + count * d);
        pointers[count] = staged.data() + count * d;
        block_ids[count++] = static_cast<std::int64_t>(r);
      }
      if (count == 0) continue;
      kt.gather_block(pointers.data(), count, d, block.data());
      for (std::size_t q0 = 0; q0 < nq; q0 += kernels::kMaxQueryGroup) {
        const std::size_t m = std::min(kernels::kMaxQueryGroup, nq - q0);
        kt.score_tiles(block.data(), 1, d, queries.data() + q0 * d, m, block_scores.data(), kBlockRows);
        for (std::size_t q = 0; q < m; ++q)
          for (std::size_t i = 0; i < count; ++i) heaps[q0 + q].push(block_scores[q * kBlockRows + i], block_ids[i]);
      }
    }
    for (std::size_t q = 0; q < nq; ++q) sizes[t * nq + q] = heaps[q].size();
  };
  core::parallel_for(tasks, threads, should_stop, core::TaskFn(task));

  std::vector<std::int64_t> truth(nq * kK, -1);
  std::vector<float> merged_scores(kK);
  for (std::size_t q = 0; q < nq; ++q) {
    topk::TopK merged(merged_scores.data(), &truth[q * kK], kK);
    for (std::size_t t = 0; t < tasks; ++t)
      for (std::size_t i = 0; i < sizes[t * nq + q]; ++i)
        merged.push(scores[(t * nq + q) * kK + i], ids[(t * nq + q) * kK + i]);
  }
  return truth;
}

}  // namespace

std::vector<std::uint32_t> calibration_rows(std::size_t rows, std::uint64_t seed) {
  if (rows < kMinRows) return {};
  const std::size_t count = std::min(kMaxQueries, rows / 16);
  std::vector<std::uint32_t> picked;
  std::mt19937_64 rng(seed ^ 0x63616c6962ULL);
  std::vector<bool> taken(rows, false);
  while (picked.size() < count) {
    const auto r = static_cast<std::uint32_t>(rng() % rows);
    if (!taken[r]) taken[r] = true, picked.push_back(r);
  }
  std::sort(picked.begin(), picked.end());
  return picked;
}

Calibration calibrate_ef(const storage::ExactRows& rows, const std::vector<std::uint32_t>& queries,
                         const std::vector<bool>& held, double target, const CandidateFn& candidates,
                         const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop) {
  const std::size_t nq = queries.size(), d = rows.dims();
  std::vector<float> prepared(nq * d);
  for (std::size_t q = 0; q < nq; ++q) rows.read(queries[q], kt, prepared.data() + q * d);
  const std::vector<std::int64_t> truth = exact_truth(rows, prepared, nq, held, kt, threads, should_stop);

  // Recall at one beam width over all held-out queries.
  auto recall_at = [&](std::size_t ef) {
    std::vector<std::size_t> hits(nq, 0), wanted(nq, 0);
    auto one = [&](std::size_t q, core::TaskContext&) {
      thread_local std::vector<std::uint32_t> found;
      candidates(prepared.data() + q * d, ef, kK, found);  // best first
      const std::size_t keep = rerank_size(kK, found.size(), rows.rows(), 0.0);
      std::vector<std::int64_t> shortlist(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(keep)), ids(kK);
      std::vector<float> sims(kK);
      const std::size_t k = std::min(kK, shortlist.size());
      storage::rerank(rows, prepared.data() + q * d, 1, shortlist.data(), shortlist.size(), k, kt, 1, should_stop,
                      ids.data(), sims.data());
      for (std::size_t i = 0; i < kK; ++i) {
        const std::int64_t t = truth[q * kK + i];
        if (t < 0) continue;
        ++wanted[q];
        hits[q] += std::find(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), t) != ids.begin() + static_cast<std::ptrdiff_t>(k);
      }
    };
    core::parallel_for(nq, threads, should_stop, core::TaskFn(one));
    double sum = 0.0;
    for (std::size_t q = 0; q < nq; ++q)
      sum += wanted[q] == 0 ? 1.0 : static_cast<double>(hits[q]) / static_cast<double>(wanted[q]);
    return sum / static_cast<double>(nq);
  };
  // Doubling until the target is reached, then bisection down to a step of about 6% (recall grows
  // with ef, up to noise): about a dozen evaluations whatever the answer.
  Calibration best{kMinEf, recall_at(kMinEf)};
  if (best.recall >= target) return best;
  std::size_t lo = kMinEf;
  for (std::size_t ef = 2 * kMinEf; ; ef *= 2) {
    const double r = recall_at(std::min(ef, kMaxEf));
    best = {std::min(ef, kMaxEf), r};
    if (r >= target || ef >= kMaxEf) break;
    lo = ef;
  }
  if (best.recall < target) return best;  // the widest beam tried
  std::size_t hi = best.ef;
  while (hi - lo > std::max<std::size_t>(1, lo / 16)) {
    const std::size_t mid = lo + (hi - lo) / 2;
    const double r = recall_at(mid);
    if (r >= target) hi = mid, best = {mid, r};
    else lo = mid;
  }
  return best;
}

}  // namespace nndex::graph
