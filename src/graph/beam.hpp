// The walk shared by the build and by queries: greedy descent through the upper levels, then a beam
// of `ef` candidates over one level, each hop scoring a node's unvisited neighbours with the
// navigation codes in one kernel call after prefetching all of them (their reads overlap instead of
// each waiting for the last). Links are read through an accessor, so the build can copy a list under
// its node's lock while queries read the flat arrays in place.
//   links(node, buffer, &ids) -> count   (ids points into buffer or straight into the index)
//   links.prefetch(node)                 (a hint that node's list is read soon)
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/huge_pages.hpp"
#include "graph/nav_codes.hpp"
#include "kernels/code_kernels.hpp"

namespace nndex::graph {

struct Candidate {
  float sim;
  std::uint32_t id;
};
// Heap orders as function objects, so the heap operations inline them.
struct WorseFirst {  // min-heap: the worst kept candidate on top
  bool operator()(const Candidate& a, const Candidate& b) const { return a.sim > b.sim; }
};
struct BetterFirst {  // max-heap: the best unexpanded candidate on top
  bool operator()(const Candidate& a, const Candidate& b) const { return a.sim < b.sim; }
};

// Marks of the nodes one walk has reached: one 16-bit epoch per node, so starting a walk is one
// increment instead of clearing n flags (cleared only when the epoch wraps).
class Visited {
 public:
  void begin(std::size_t n) {
    if (marks_.size() < n) marks_.assign(n, 0), epoch_ = 0;
    if (++epoch_ == 0) std::fill(marks_.begin(), marks_.end(), 0), epoch_ = 1;
  }
  bool first_visit(std::uint32_t id) {
    if (marks_[id] == epoch_) return false;
    marks_[id] = epoch_;
    return true;
  }

 private:
  std::vector<std::uint16_t, core::HugePageAllocator<std::uint16_t>> marks_;
  std::uint16_t epoch_ = 0;
};

struct NavQuery {
  const std::int8_t* codes;
  std::int32_t offset;
  float scale;
};

// Per-thread buffers of a walk (thread_local in graph_search.cpp: no allocation per query).
struct WalkScratch {
  Visited visited;
  std::vector<Candidate> frontier, best;
  std::vector<std::uint32_t> ids, links;
  std::vector<std::int32_t> dots;
  std::vector<float> sims;
  std::vector<std::int8_t> query;
  void reserve(std::size_t degree, std::size_t row_bytes) {
    if (ids.size() < degree + 1) ids.resize(degree + 1), links.resize(degree + 1), dots.resize(degree + 1), sims.resize(degree + 1);
    if (query.size() < row_bytes) query.resize(row_bytes);
  }
};
WalkScratch& walk_scratch();

inline float score_one(const NavCodes& nav, const kernels::Int8Kernels& kk, const NavQuery& q, std::uint32_t id,
                       WalkScratch& s) {
  float sim;
  nav.score(kk, &id, 1, q.codes, q.offset, q.scale, s.dots.data(), &sim);
  return sim;
}

// Follows the best neighbour from `at` while it improves; returns the local best.
template <class Links>
Candidate greedy(const NavCodes& nav, const kernels::Int8Kernels& kk, const NavQuery& q, Candidate at, Links&& links,
                 WalkScratch& s, std::size_t& scored) {
  for (bool moved = true; moved;) {
    moved = false;
    const std::uint32_t* ids = nullptr;
    const std::size_t count = links(at.id, s.links.data(), &ids);
    if (count == 0) break;
    for (std::size_t i = 0; i < count; ++i) nav.prefetch(ids[i]);
    nav.score(kk, ids, count, q.codes, q.offset, q.scale, s.dots.data(), s.sims.data());
    scored += count;
    for (std::size_t i = 0; i < count; ++i)
      if (s.sims[i] > at.sim) at = {s.sims[i], ids[i]}, moved = true;
  }
  return at;
}

// Every node may be a result (an unfiltered walk).
struct AcceptAll {
  bool operator()(std::uint32_t) const { return true; }
};

// Beam search from `entry`: leaves the best min(ef, reachable) accepted candidates in s.best (a
// min-heap). Nodes `accept` refuses are still walked through (a filtered search keeps the graph's
// connectivity) but never kept. s.visited must have been begun for this walk.
template <class Links, class Accept = AcceptAll>
void beam(const NavCodes& nav, const kernels::Int8Kernels& kk, const NavQuery& q, Candidate entry, std::size_t ef,
          Links&& links, WalkScratch& s, std::size_t& scored, Accept accept = {}) {
  s.frontier.assign(1, entry);
  s.best.clear();
  if (accept(entry.id)) s.best.push_back(entry);
  s.visited.first_visit(entry.id);
  while (!s.frontier.empty()) {
    const Candidate c = s.frontier.front();
    if (s.best.size() >= ef && c.sim < s.best.front().sim) break;
    std::pop_heap(s.frontier.begin(), s.frontier.end(), BetterFirst{});
    s.frontier.pop_back();
    if (!s.frontier.empty()) links.prefetch(s.frontier.front().id);  // likely the next expanded
    const std::uint32_t* ids = nullptr;
    const std::size_t count = links(c.id, s.links.data(), &ids);
    std::size_t fresh = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (!s.visited.first_visit(ids[i])) continue;
      nav.prefetch(ids[i]);
      s.ids[fresh++] = ids[i];
    }
    if (fresh == 0) continue;
    nav.score(kk, s.ids.data(), fresh, q.codes, q.offset, q.scale, s.dots.data(), s.sims.data());
    scored += fresh;
    for (std::size_t i = 0; i < fresh; ++i) {
      const Candidate n{s.sims[i], s.ids[i]};
      if (s.best.size() >= ef && !(n.sim > s.best.front().sim)) continue;
      s.frontier.push_back(n);
      std::push_heap(s.frontier.begin(), s.frontier.end(), BetterFirst{});
      if (!accept(n.id)) continue;
      s.best.push_back(n);
      std::push_heap(s.best.begin(), s.best.end(), WorseFirst{});
      if (s.best.size() > ef) {
        std::pop_heap(s.best.begin(), s.best.end(), WorseFirst{});
        s.best.pop_back();
      }
    }
  }
}

}  // namespace nndex::graph

namespace nndex::graph {

// One query's candidates: descend levels top..1 greedily from `entry`, then a beam of `ef` on level 0;
// `ids` gets at least min(want, rows) distinct rows, best (by navigation score) first (a graph that reaches fewer is topped up in row
// order, which only a tiny or damaged graph needs). links_at(level) returns that level's accessor.
// Returns rows scored.
// With `accept`, only accepted rows are kept and none is topped up: `ids` may then hold fewer.
template <class LinksAt, class Accept = AcceptAll>
std::size_t walk(const NavCodes& nav, const kernels::Int8Kernels& kk, const float* query, std::size_t ef,
                 std::size_t want, std::uint32_t entry, std::uint32_t top_level, LinksAt&& links_at, WalkScratch& s,
                 std::vector<std::uint32_t>& ids, Accept accept = {}) {
  NavQuery q{};
  q.scale = nav.encode_query(query, s.query.data(), &q.offset);
  q.codes = s.query.data();
  std::size_t scored = 1;
  Candidate at{score_one(nav, kk, q, entry, s), entry};
  for (std::uint32_t level = top_level; level > 0; --level) at = greedy(nav, kk, q, at, links_at(level), s, scored);
  s.visited.begin(nav.rows());
  beam(nav, kk, q, at, std::max(ef, want), links_at(0), s, scored, accept);
  std::sort_heap(s.best.begin(), s.best.end(), WorseFirst{});  // best first
  ids.clear();
  for (const Candidate& c : s.best) ids.push_back(c.id);
  if constexpr (!std::is_same_v<Accept, AcceptAll>) return scored;
  const std::size_t target = std::min(want, nav.rows());
  for (std::uint32_t r = 0; ids.size() < target && r < nav.rows(); ++r)
    if (s.visited.first_visit(r)) ids.push_back(r);
  return scored;
}

}  // namespace nndex::graph
