// IVF search: the clusters nearest each query (a small exact search over the centroids), then every
// probed cluster scanned once for all the queries that probe it, heaps merged per query.
#include <algorithm>
#include <numeric>
#include <optional>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "core/thread_budget.hpp"
#include "core/thread_pool.hpp"
#include "exact/exact_search.hpp"
#include "ivf/ivf_index.hpp"
#include "storage/code_scorer.hpp"
#include "storage/rerank.hpp"
#include "topk/topk.hpp"

namespace nndex::ivf {

void IvfIndex::probe_lists(const float* queries, std::size_t n, std::size_t nprobe, std::size_t needed_rows,
                           const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop,
                           std::vector<std::size_t>& offsets, std::vector<std::int64_t>& lists,
                           const std::vector<std::size_t>* list_rows) const {
  const std::size_t nlist = p_.clusters.size();
  auto rows_in = [&](std::int64_t c) {
    const auto i = static_cast<std::size_t>(c);
    return list_rows != nullptr ? (*list_rows)[i] : p_.clusters[i].rows;
  };
  std::vector<float> scores(n * nprobe);
  lists.resize(n * nprobe);
  exact::search(p_.centroids, queries, n, nprobe, kt, threads, should_stop, lists.data(), scores.data());
  offsets.assign(n + 1, 0);
  for (std::size_t q = 0; q < n; ++q) offsets[q + 1] = offsets[q] + nprobe;

  // Rare without a filter: the probed clusters hold fewer than k rows (allowed rows, with one). Such
  // queries take clusters further down their full centroid order until they have enough, so every
  // query returns exactly min(k, rows) results.
  std::vector<std::size_t> short_queries;
  for (std::size_t q = 0; q < n; ++q) {
    std::size_t have = 0;
    for (std::size_t i = offsets[q]; i < offsets[q + 1]; ++i) have += rows_in(lists[i]);
    if (have < needed_rows) short_queries.push_back(q);
  }
  if (short_queries.empty()) return;
  std::vector<std::vector<std::int64_t>> extended(n);
  std::vector<std::int64_t> order(nlist);
  std::vector<float> order_scores(nlist);
  for (std::size_t q : short_queries) {
    exact::search(p_.centroids, queries + q * p_.dims, 1, nlist, kt, 1, should_stop, order.data(), order_scores.data());
    std::size_t have = 0;
    for (std::size_t r = 0; r < nlist && (r < nprobe || have < needed_rows); ++r) {
      extended[q].push_back(order[r]);
      have += rows_in(order[r]);
    }
  }
  std::vector<std::int64_t> merged;
  std::vector<std::size_t> merged_offsets(n + 1, 0);
  for (std::size_t q = 0; q < n; ++q) {
    if (!extended[q].empty()) merged.insert(merged.end(), extended[q].begin(), extended[q].end());
    else merged.insert(merged.end(), lists.begin() + static_cast<std::ptrdiff_t>(offsets[q]),
                       lists.begin() + static_cast<std::ptrdiff_t>(offsets[q + 1]));
    merged_offsets[q + 1] = merged.size();
  }
  lists.swap(merged);
  offsets.swap(merged_offsets);
}

SearchReport IvfIndex::search(const float* queries, std::size_t n, std::size_t k, std::size_t nprobe,
                              const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
                              std::int64_t* out_indices, float* out_scores, double oversampling,
                              const core::RowFilter* filter) const {
  SearchReport report;
  const std::size_t nlist = p_.clusters.size();
  if (filter != nullptr && filter->all()) filter = nullptr;
  const std::size_t allowed = filter != nullptr ? filter->count() : p_.rows;
  const std::size_t kk = std::min(k, allowed);
  if (kk == 0) return report;
  nprobe = std::clamp<std::size_t>(nprobe, 1, nlist);
  // Compressed lists fill heaps of the shortlist's size, re-scored exactly at the end.
  const std::size_t hk = p_.codes ? storage::shortlist_size(kk, allowed, oversampling,
                                                            p_.codes->codec() == kernels::Codec::int8)
                                  : kk;
  report.shortlist = p_.codes ? hk : 0;

  // A filter: each list's allowed rows and the blocks holding them. Unfiltered, a query scores about
  // C = rows * nprobe / nlist candidates; filtered, it probes lists until it has scored as many
  // allowed ones (the allowed rows are a sample of the rows, so that many keeps the recall of the
  // unfiltered search: the k best allowed rows lie further out, among about k / p of all rows).
  // When the allowed rows are no more than C, or the blocks holding them are no more than C / 16,
  // every list is scanned instead (only its occupied blocks), which is exact among the allowed rows.
  std::size_t needed = hk;
  std::size_t occupied = 0;  // blocks holding an allowed row
  std::vector<std::size_t> list_rows;
  if (filter != nullptr) {
    list_rows.assign(nlist, 0);
    for (std::size_t c = 0; c < nlist; ++c) {
      const scan::Segment& seg = p_.clusters[c];
      for (std::size_t b = seg.block_begin; b < seg.block_end; ++b) {
        std::size_t here = 0;
        for (std::size_t r = b * kernels::kBlockRows; r < (b + 1) * kernels::kBlockRows; ++r)
          here += p_.ids[r] >= 0 && filter->allowed(static_cast<std::size_t>(p_.ids[r]));
        list_rows[c] += here;
        occupied += here != 0;
      }
    }
    const std::size_t candidates = p_.rows * nprobe / nlist;
    needed = std::max(hk, candidates);
    if (allowed <= candidates || occupied * kernels::kBlockRows <= candidates) nprobe = nlist;
    report.exhaustive = nprobe == nlist;
  }

  std::vector<std::size_t> offsets;
  std::vector<std::int64_t> lists;
  probe_lists(queries, n, nprobe, std::min(needed, allowed), kt, max_threads, should_stop, offsets, lists,
              filter != nullptr ? &list_rows : nullptr);

  // Invert to cluster -> queries, so each probed cluster is loaded once and scored against every
  // query that probes it.
  std::vector<std::size_t> per_cluster(nlist + 1, 0);
  for (std::int64_t c : lists) ++per_cluster[static_cast<std::size_t>(c) + 1];
  std::partial_sum(per_cluster.begin(), per_cluster.end(), per_cluster.begin());
  std::vector<std::size_t> cluster_queries(lists.size());
  {
    std::vector<std::size_t> fill(per_cluster.begin(), per_cluster.end() - 1);
    for (std::size_t q = 0; q < n; ++q)
      for (std::size_t i = offsets[q]; i < offsets[q + 1]; ++i) cluster_queries[fill[static_cast<std::size_t>(lists[i])]++] = q;
  }
  std::vector<std::size_t> active;
  std::size_t work = 0;
  for (std::size_t c = 0; c < nlist; ++c) {
    const std::size_t users = per_cluster[c + 1] - per_cluster[c];
    if (users == 0 || p_.clusters[c].rows == 0 || (filter != nullptr && list_rows[c] == 0)) continue;
    active.push_back(c);
    work += users * p_.clusters[c].rows * p_.dims;
    report.candidates += users * p_.clusters[c].rows;
  }
  report.probed = lists.size();
  const std::size_t threads =
      core::threads_for(work, 0, std::min(std::max<std::size_t>(max_threads, 1), active.size()));
  report.threads = threads;

  // One set of n heaps per participating thread (threads x n x hk entries), merged at the end.
  std::vector<float> heap_scores(threads * n * hk);
  std::vector<std::int64_t> heap_ids(threads * n * hk);
  std::vector<topk::TopK> tops;
  tops.reserve(threads * n);
  for (std::size_t t = 0; t < threads; ++t)
    for (std::size_t q = 0; q < n; ++q)
      tops.emplace_back(heap_scores.data() + (t * n + q) * hk, heap_ids.data() + (t * n + q) * hk, hk);

  std::optional<scan::TileScorer> tiles;
  std::optional<storage::CodeScorer> codes;
  core::AlignedBytes code_queries;
  if (p_.codes) {
    codes.emplace(*p_.codes, n);
    code_queries = codes->encode(queries, n, max_threads);
  } else {
    tiles.emplace(p_.data, kt);
  }
  const scan::BlockScorer& scorer = codes ? static_cast<const scan::BlockScorer&>(*codes) : *tiles;
  const auto* encoded = codes ? code_queries.data() : reinterpret_cast<const std::byte*>(queries);
  const std::size_t stored_blocks = p_.codes ? p_.codes->blocks() : p_.data.blocks();
  const scan::Scanner scanner{scorer, kt, p_.ids.data(), filter, filter != nullptr && 4 * occupied < 3 * stored_blocks};
  const std::size_t qbytes = scorer.query_bytes();
  auto task = [&](std::size_t a, core::TaskContext& ctx) {
    const std::size_t c = active[a];
    const std::size_t first = per_cluster[c];
    const std::size_t users = per_cluster[c + 1] - first;
    topk::TopK* mine = tops.data() + ctx.participant() * n;
    // Gather this cluster's queries and their heaps side by side for the scanner (zeroed padding rows
    // past the last, for scorers that read whole tiles).
    core::AlignedBytes group((users + scorer.query_padding_rows()) * qbytes, std::byte{0});
    std::vector<topk::TopK> local;
    local.reserve(users);
    for (std::size_t u = 0; u < users; ++u) {
      const std::size_t q = cluster_queries[first + u];
      std::copy(encoded + q * qbytes, encoded + (q + 1) * qbytes, group.begin() + static_cast<std::ptrdiff_t>(u * qbytes));
      local.push_back(mine[q]);
    }
    scanner.scan(p_.clusters[c], group.data(), users, local.data(), &ctx);
    for (std::size_t u = 0; u < users; ++u) mine[cluster_queries[first + u]] = local[u];
  };
  core::parallel_for(active.size(), threads, should_stop, core::TaskFn(task));

  std::vector<float> shortlist_scores(p_.codes ? n * hk : 0);
  std::vector<std::int64_t> shortlist_ids(p_.codes ? n * hk : 0);
  float* merged_scores = p_.codes ? shortlist_scores.data() : out_scores;
  std::int64_t* merged_ids = p_.codes ? shortlist_ids.data() : out_indices;
  for (std::size_t q = 0; q < n; ++q) {
    topk::TopK out(merged_scores + q * hk, merged_ids + q * hk, hk);
    for (std::size_t t = 0; t < threads; ++t) {
      const topk::TopK& part = tops[t * n + q];
      const float* ps = heap_scores.data() + (t * n + q) * hk;
      const std::int64_t* pi = heap_ids.data() + (t * n + q) * hk;
      for (std::size_t i = 0; i < part.size(); ++i) out.push(ps[i], pi[i]);
    }
    out.sort_descending();
  }
  if (p_.codes)
    storage::rerank(p_.exact_rows, queries, n, shortlist_ids.data(), hk, kk, kt, max_threads, should_stop, out_indices,
                    out_scores);
  return report;
}

void IvfIndex::copy_rows(const kernels::KernelTable& kt, float* out) const {
  if (p_.codes) {
    for (std::size_t r = 0; r < p_.rows; ++r) p_.exact_rows.read(r, kt, out + r * p_.dims);
    return;
  }
  const std::size_t stored = p_.data.blocks() * kernels::kBlockRows;
  for (std::size_t at = 0; at < stored; ++at) {
    if (p_.ids[at] < 0) continue;
    const float* block = p_.data.block(at / kernels::kBlockRows);
    float* row = out + static_cast<std::size_t>(p_.ids[at]) * p_.dims;
    for (std::size_t j = 0; j < p_.dims; ++j) row[j] = block[j * kernels::kBlockRows + at % kernels::kBlockRows];
  }
}

}  // namespace nndex::ivf
