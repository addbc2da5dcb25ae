// Queries on a built or loaded graph: each query walks the graph on its own thread (a walk is a chain
// of dependent hops, so one query gains nothing from a second thread), then the candidates of every
// query are re-ranked exactly together.
#include <algorithm>
#include <string>

#include "core/thread_pool.hpp"
#include "graph/beam.hpp"
#include "graph/graph_index.hpp"
#include "nndex/errors.hpp"
#include "storage/rerank.hpp"

namespace nndex::graph {

WalkScratch& walk_scratch() {
  thread_local WalkScratch scratch;
  return scratch;
}

namespace {

// Reads a level's lists in place.
struct FlatLinks {
  const std::uint32_t* base;
  const std::uint32_t* offsets;  // upper levels: per-node start; null on level 0
  std::size_t stride;            // words per list
  std::size_t level;
  std::size_t operator()(std::uint32_t node, std::uint32_t*, const std::uint32_t** ids) const {
    const std::uint32_t* list =
        offsets == nullptr ? base + std::size_t{node} * stride : base + offsets[node] + (level - 1) * stride;
    *ids = list + 1;
    return list[0];
  }
  void prefetch(std::uint32_t node) const {
    if (offsets != nullptr) return;  // upper levels are small and stay cached
    const char* list = reinterpret_cast<const char*>(base + std::size_t{node} * stride);
    for (std::size_t at = 0; at < stride * sizeof(std::uint32_t); at += 64) __builtin_prefetch(list + at);
  }
};

constexpr std::size_t kQueriesPerTask = 4;

}  // namespace

std::size_t GraphIndex::beam_search(const float* query, std::size_t ef, const kernels::Int8Kernels& kk,
                                    std::vector<std::uint32_t>& out, const core::RowFilter* filter) const {
  WalkScratch& s = walk_scratch();
  s.reserve(p_.degree, p_.nav.row_bytes());
  const std::size_t half = p_.degree / 2;
  auto links_at = [&](std::size_t level) {
    return level == 0 ? FlatLinks{p_.links.data(), nullptr, p_.degree + 1, 0}
                      : FlatLinks{p_.upper.data(), p_.upper_offsets.data(), half + 1, level};
  };
  if (filter != nullptr)
    return walk(p_.nav, kk, query, ef, ef, p_.entry, p_.top_level, links_at, s, out,
                [filter](std::uint32_t id) { return filter->allowed(id); });
  return walk(p_.nav, kk, query, ef, ef, p_.entry, p_.top_level, links_at, s, out);
}

bool filter_scans_exactly(std::size_t allowed, std::size_t rows, std::size_t walk_scored) {
  const double walk = static_cast<double>(walk_scored) * static_cast<double>(rows) / static_cast<double>(allowed);
  return kExactRowCost * static_cast<double>(allowed) <= walk;
}

std::size_t rerank_size(std::size_t k, std::size_t width, std::size_t rows, double oversampling) {
  return std::min(width, storage::shortlist_size(k, rows, oversampling, /*int8=*/true));
}

SearchReport GraphIndex::search(const float* queries, std::size_t n, std::size_t k, std::size_t ef,
                                double oversampling, const kernels::KernelTable& kt, std::size_t max_threads,
                                const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores,
                                const core::RowFilter* filter) const {
  const kernels::Int8Kernels& kk = kernels::active_int8();
  if (filter != nullptr && filter->all()) filter = nullptr;
  const std::size_t allowed = filter != nullptr ? filter->count() : p_.rows;
  const std::size_t kk_rows = std::min(k, allowed);
  SearchReport report;
  if (kk_rows == 0) return report;
  // The beam is never narrower than the results asked for; its best `shortlist` by navigation score
  // are re-ranked (the codes' order is accurate enough that the rest rarely holds a true neighbour).
  const std::size_t width = std::min(std::max(ef == 0 ? p_.ef : ef, kk_rows), allowed);
  const std::size_t shortlist_rows = rerank_size(kk_rows, width, allowed, oversampling);
  report.ef = width;
  report.shortlist = shortlist_rows;
  // A selective filter: its rows scored exactly cost less than a walk that must pass by the rest.
  // degree x width over-counts an unfiltered walk's scorings (measured 0.58x: 504 a query at ef 27,
  // 100,000 x 128 clustered rows), which with kExactRowCost = 2 puts the switch at 5-8% of the rows,
  // where the two measured equal (100,000 x 128 and 50,000 x 384, AMD EPYC: ~190 us a query).
  std::vector<std::int64_t> allowed_rows;
  if (filter != nullptr && filter_scans_exactly(allowed, p_.rows, p_.degree * width)) {
    allowed_rows = filter->list();
    storage::score_rows(p_.exact_rows, queries, n, allowed_rows.data(), allowed_rows.size(), kk_rows, kt, max_threads,
                        should_stop, out_indices, out_scores);
    report.exact = n;
    return report;
  }
  std::vector<std::int64_t> shortlist(n * shortlist_rows);
  std::vector<std::size_t> scored(n, 0);
  std::vector<unsigned char> short_of(n, 0);  // a filtered walk that found fewer than shortlist_rows
  auto walk_task = [&](std::size_t t, core::TaskContext& ctx) {
    if (ctx.stop_requested()) return;
    thread_local std::vector<std::uint32_t> found;
    const std::size_t last = std::min(n, (t + 1) * kQueriesPerTask);
    for (std::size_t q = t * kQueriesPerTask; q < last; ++q) {
      scored[q] = beam_search(queries + q * p_.dims, width, kk, found, filter);
      // The beam holds `width` rows unless the graph reached fewer (then topped up to width, when
      // unfiltered).
      if (found.size() < shortlist_rows) {
        short_of[q] = 1;
        continue;
      }
      std::copy_n(found.begin(), shortlist_rows, shortlist.begin() + static_cast<std::ptrdiff_t>(q * shortlist_rows));
    }
  };
  const std::size_t tasks = (n + kQueriesPerTask - 1) / kQueriesPerTask;
  report.threads = std::min(tasks, std::max<std::size_t>(max_threads, 1));
  core::parallel_for(tasks, report.threads, should_stop, core::TaskFn(walk_task));
  for (std::size_t q = 0; q < n; ++q) report.scored += scored[q];
  // The rare query whose filtered walk reached too few allowed rows is answered exactly, so every query
  // gets min(k, allowed) results; its shortlist slots are filled with any allowed rows meanwhile.
  std::vector<std::size_t> exact_queries;
  for (std::size_t q = 0; q < n; ++q)
    if (short_of[q]) exact_queries.push_back(q);
  if (!exact_queries.empty()) {
    allowed_rows = filter->list();
    for (std::size_t q : exact_queries)
      std::copy_n(allowed_rows.begin(), shortlist_rows, shortlist.begin() + static_cast<std::ptrdiff_t>(q * shortlist_rows));
  }
  storage::rerank(p_.exact_rows, queries, n, shortlist.data(), shortlist_rows, kk_rows, kt, n == 1 ? 1 : max_threads,
                  should_stop, out_indices, out_scores);
  for (std::size_t q : exact_queries)
    storage::score_rows(p_.exact_rows, queries + q * p_.dims, 1, allowed_rows.data(), allowed_rows.size(), kk_rows, kt,
                        1, should_stop, out_indices + q * kk_rows, out_scores + q * kk_rows);
  report.exact = exact_queries.size();
  return report;
}

std::size_t GraphIndex::memory_bytes() const {
  return p_.links.owned_bytes() + p_.upper_offsets.owned_bytes() + p_.upper.owned_bytes() + p_.nav.memory_bytes() +
         p_.exact_rows.memory_bytes();
}

void GraphIndex::validate(const Parts& p, const std::string& name) {
  auto bad = [&](const std::string& what) { throw FileFormatError("'" + name + "': " + what); };
  if (p.degree < kMinDegree || p.degree > kMaxDegree) bad("graph degree " + std::to_string(p.degree) + " out of range");
  if (p.rows == 0 || p.entry >= p.rows) bad("graph entry node out of range");
  if (p.ef == 0) bad("graph beam width is zero");
  if (p.links.size() != p.rows * (p.degree + 1)) bad("graph links section has the wrong size");
  if (p.upper_offsets.size() != p.rows + 1 || p.upper_offsets[0] != 0) bad("graph level table has the wrong size");
  const std::size_t half = p.degree / 2;
  for (std::size_t r = 0; r < p.rows; ++r) {
    const std::uint32_t* list = p.links.data() + r * (p.degree + 1);
    if (list[0] > p.degree) bad("graph node " + std::to_string(r) + " has too many links");
    for (std::uint32_t i = 0; i < list[0]; ++i)
      if (list[1 + i] >= p.rows) bad("graph link out of range at node " + std::to_string(r));
    const std::uint32_t a = p.upper_offsets[r], b = p.upper_offsets[r + 1];
    if (b < a || (b - a) % (half + 1) != 0 || b > p.upper.size()) bad("graph level table is malformed");
  }
  if (p.upper_offsets[p.rows] != p.upper.size()) bad("graph upper links section has the wrong size");
  const std::size_t entry_levels = (p.upper_offsets[p.entry + 1] - p.upper_offsets[p.entry]) / (half + 1);
  if (entry_levels != p.top_level) bad("graph entry node is not on the top level");
  for (std::size_t r = 0; r < p.rows; ++r) {
    const std::size_t levels = (p.upper_offsets[r + 1] - p.upper_offsets[r]) / (half + 1);
    for (std::size_t l = 0; l < levels; ++l) {
      const std::uint32_t* list = p.upper.data() + p.upper_offsets[r] + l * (half + 1);
      if (list[0] > half) bad("graph node " + std::to_string(r) + " has too many upper links");
      for (std::uint32_t i = 0; i < list[0]; ++i) {
        const std::uint32_t t = list[1 + i];
        // An upper link must lead to a node that has that level too, or the walk would read past its lists.
        if (t >= p.rows || (p.upper_offsets[t + 1] - p.upper_offsets[t]) / (half + 1) < l + 1)
          bad("graph upper link out of range at node " + std::to_string(r));
      }
    }
  }
}

}  // namespace nndex::graph
