// Building the graph: HNSW insertion, nodes inserted in parallel (each list guarded by its own spin
// lock, held only to copy or rewrite it), neighbours chosen with the paper's heuristic (a candidate is
// kept only if it is nearer the new node than to every neighbour kept so far, which keeps links
// pointing in different directions). Scores are the navigation codes', so the build reads a quarter
// of the bytes a float32 build would.
//
// With ef left to calibrate, a held-out sample is inserted last: the graph of every other row is
// searched with those rows as new queries (calibrate.cpp), then they join it.
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>

#include "core/thread_pool.hpp"
#include "graph/beam.hpp"
#include "graph/calibrate.hpp"
#include "graph/graph_index.hpp"

namespace nndex::graph {
namespace {

constexpr std::size_t kMaxLevel = 15;
constexpr std::size_t kNodesPerTask = 64;

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// splitmix64 of (seed, r): an independent uniform 64-bit value per row.
std::uint64_t mix(std::uint64_t seed, std::uint64_t r) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (r + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class SpinLock {
 public:
  void lock() {
    while (flag_.test_and_set(std::memory_order_acquire))
      while (flag_.test(std::memory_order_relaxed)) {
      }
  }
  void unlock() { flag_.clear(std::memory_order_release); }

 private:
  std::atomic_flag flag_;
};

struct BuildScratch {
  std::vector<std::int8_t> target_query, candidate_query;
  std::vector<Candidate> candidates, kept, linked;
  std::vector<std::uint32_t> ids;
  std::vector<std::int32_t> dots;
  std::vector<float> sims;
};

class Builder {
 public:
  Builder(const NavCodes& nav, const kernels::Int8Kernels& kk, std::size_t degree, std::size_t ef_construction,
          std::uint64_t seed)
      : nav_(nav), kk_(kk), degree_(degree), half_(degree / 2), ef_(ef_construction), locks_(nav.rows()) {
    const std::size_t n = nav.rows();
    // Levels: floor(-ln(u) / ln(degree / 2)), each row from its own stream so the levels do not
    // depend on insertion order.
    const double ml = 1.0 / std::log(static_cast<double>(half_));
    levels_.resize(n);
    offsets_.resize(n + 1);
    for (std::size_t r = 0; r < n; ++r) {
      const double u = (static_cast<double>(mix(seed, r) >> 11) + 1.0) / 9007199254740992.0;  // (0, 1]
      levels_[r] = static_cast<std::uint8_t>(std::min<double>(kMaxLevel, std::floor(-std::log(u) * ml)));
      offsets_[r + 1] = offsets_[r] + static_cast<std::uint32_t>(levels_[r] * (half_ + 1));
    }
    links_.assign(n * (degree_ + 1), 0);
    upper_.assign(offsets_[n], 0);
  }

  void insert(std::uint32_t node, WalkScratch& s, BuildScratch& b);

  // A level's lists, each copied under its node's lock (other threads may be rewriting it).
  struct LockedLinks {
    Builder* b;
    std::size_t level;
    std::size_t operator()(std::uint32_t node, std::uint32_t* buffer, const std::uint32_t** ids) const {
      const std::uint32_t* list = b->list(node, level);
      std::lock_guard<SpinLock> guard(b->locks_[node]);
      const std::uint32_t count = list[0];
      std::copy(list + 1, list + 1 + count, buffer);
      *ids = buffer;
      return count;
    }
    void prefetch(std::uint32_t node) const {
      const char* list = reinterpret_cast<const char*>(b->list(node, level));
      const std::size_t bytes = (level == 0 ? b->degree_ : b->half_) * sizeof(std::uint32_t) + sizeof(std::uint32_t);
      for (std::size_t at = 0; at < bytes; at += 64) __builtin_prefetch(list + at);
    }
  };
  LockedLinks reader(std::size_t level) { return {this, level}; }

  bool empty() const { return empty_; }
  std::uint32_t entry() const { return entry_; }
  std::uint32_t top_level() const { return top_; }
  void finish(GraphIndex::Parts& p) {
    p.entry = entry_;
    p.top_level = top_;
    p.links = decltype(p.links)(std::move(links_));
    p.upper_offsets = core::Array<std::uint32_t>(std::move(offsets_));
    p.upper = core::Array<std::uint32_t>(std::move(upper_));
  }

 private:
  std::uint32_t* list(std::uint32_t node, std::size_t level) {
    return level == 0 ? &links_[std::size_t{node} * (degree_ + 1)] : &upper_[offsets_[node] + (level - 1) * (half_ + 1)];
  }
  std::size_t max_links(std::size_t level) const { return level == 0 ? degree_ : half_; }
  void select(const std::vector<Candidate>& candidates, std::size_t m, BuildScratch& b);
  void link_back(std::uint32_t target, std::uint32_t node, float sim, std::size_t level, BuildScratch& b);

  const NavCodes& nav_;
  const kernels::Int8Kernels& kk_;
  std::size_t degree_, half_, ef_;
  std::vector<std::uint32_t, core::HugePageAllocator<std::uint32_t>> links_;
  std::vector<std::uint32_t> offsets_, upper_;
  std::vector<std::uint8_t> levels_;
  std::vector<SpinLock> locks_;
  std::mutex top_mutex_;
  bool empty_ = true;
  std::uint32_t entry_ = 0, top_ = 0;
};

// candidates: best first. Leaves at most m of them in b.kept, best first.
void Builder::select(const std::vector<Candidate>& candidates, std::size_t m, BuildScratch& b) {
  b.kept.clear();
  for (const Candidate& c : candidates) {
    if (b.kept.size() >= m) break;
    bool diverse = true;
    if (!b.kept.empty()) {
      NavQuery q{};
      q.scale = nav_.row_as_query(c.id, b.candidate_query.data(), &q.offset);
      for (std::size_t i = 0; i < b.kept.size(); ++i) b.ids[i] = b.kept[i].id;
      nav_.score(kk_, b.ids.data(), b.kept.size(), b.candidate_query.data(), q.offset, q.scale, b.dots.data(),
                 b.sims.data());
      for (std::size_t i = 0; i < b.kept.size() && diverse; ++i) diverse = b.sims[i] < c.sim;
    }
    if (diverse) b.kept.push_back(c);
  }
}

void Builder::link_back(std::uint32_t target, std::uint32_t node, float sim, std::size_t level, BuildScratch& b) {
  std::uint32_t* list = this->list(target, level);
  const std::size_t m = max_links(level);
  std::lock_guard<SpinLock> guard(locks_[target]);
  const std::uint32_t count = list[0];
  for (std::uint32_t i = 0; i < count; ++i)
    if (list[1 + i] == node) return;
  if (count < m) {
    list[1 + count] = node;
    list[0] = count + 1;
    return;
  }
  // Full: the target keeps the most diverse m of its links and the new one.
  NavQuery q{};
  q.scale = nav_.row_as_query(target, b.target_query.data(), &q.offset);
  nav_.score(kk_, list + 1, count, b.target_query.data(), q.offset, q.scale, b.dots.data(), b.sims.data());
  b.candidates.clear();
  for (std::uint32_t i = 0; i < count; ++i) b.candidates.push_back({b.sims[i], list[1 + i]});
  b.candidates.push_back({sim, node});
  std::sort(b.candidates.begin(), b.candidates.end(), [](const Candidate& x, const Candidate& y) { return x.sim > y.sim; });
  select(b.candidates, m, b);
  for (std::size_t i = 0; i < b.kept.size(); ++i) list[1 + i] = b.kept[i].id;
  list[0] = static_cast<std::uint32_t>(b.kept.size());
}

void Builder::insert(std::uint32_t node, WalkScratch& s, BuildScratch& b) {
  const std::size_t level = levels_[node];
  std::unique_lock<std::mutex> hold(top_mutex_);
  if (empty_) {
    entry_ = node, top_ = static_cast<std::uint32_t>(level), empty_ = false;
    return;
  }
  const std::uint32_t entry = entry_;
  const std::size_t top = top_;
  if (level <= top) hold.unlock();  // a new top level keeps the lock until the node is the entry

  NavQuery q{};
  q.scale = nav_.row_as_query(node, s.query.data(), &q.offset);
  q.codes = s.query.data();
  std::size_t scored = 0;
  Candidate at{score_one(nav_, kk_, q, entry, s), entry};
  for (std::size_t l = top; l > level; --l) at = greedy(nav_, kk_, q, at, reader(l), s, scored);
  for (std::size_t l = std::min(level, top) + 1; l-- > 0;) {
    s.visited.begin(nav_.rows());
    beam(nav_, kk_, q, at, ef_, reader(l), s, scored);
    b.candidates = s.best;
    std::sort(b.candidates.begin(), b.candidates.end(), [](const Candidate& x, const Candidate& y) { return x.sim > y.sim; });
    const Candidate nearest = b.candidates.front();  // b.candidates is reused by link_back
    select(b.candidates, max_links(l), b);
    b.linked = b.kept;  // link_back reuses b.kept
    {
      std::uint32_t* own = list(node, l);
      std::lock_guard<SpinLock> guard(locks_[node]);
      for (std::size_t i = 0; i < b.linked.size(); ++i) own[1 + i] = b.linked[i].id;
      own[0] = static_cast<std::uint32_t>(b.linked.size());
    }
    for (const Candidate& c : b.linked) link_back(c.id, node, c.sim, l, b);
    at = nearest;
  }
  if (level > top) entry_ = node, top_ = static_cast<std::uint32_t>(level);
}

WalkScratch& scratch_for(const NavCodes& nav, std::size_t degree) {
  WalkScratch& s = walk_scratch();
  s.reserve(degree, nav.row_bytes());
  return s;
}

BuildScratch& build_scratch(const NavCodes& nav, std::size_t degree) {
  thread_local BuildScratch b;
  b.target_query.resize(nav.row_bytes());
  b.candidate_query.resize(nav.row_bytes());
  b.ids.resize(degree + 1), b.dots.resize(degree + 1), b.sims.resize(degree + 1);
  return b;
}

void insert_all(Builder& builder, const std::vector<std::uint32_t>& nodes, const NavCodes& nav, std::size_t degree,
                std::size_t threads, const StopCheck& should_stop) {
  if (nodes.empty()) return;
  const std::size_t first = builder.empty() ? 1 : 0;  // the first node becomes the entry, alone
  if (first == 1) builder.insert(nodes[0], scratch_for(nav, degree), build_scratch(nav, degree));
  const std::size_t count = nodes.size() - first;
  auto task = [&](std::size_t t, core::TaskContext& ctx) {
    if (ctx.stop_requested()) return;
    WalkScratch& s = scratch_for(nav, degree);
    BuildScratch& b = build_scratch(nav, degree);
    const std::size_t end = std::min(count, (t + 1) * kNodesPerTask);
    for (std::size_t i = t * kNodesPerTask; i < end; ++i) builder.insert(nodes[first + i], s, b);
  };
  core::parallel_for((count + kNodesPerTask - 1) / kNodesPerTask, threads, should_stop, core::TaskFn(task));
}

}  // namespace

GraphIndex::GraphIndex(const float* prepared, storage::ExactRows rows, const BuildParams& params,
                       const kernels::KernelTable& kt, const StopCheck& should_stop) {
  p_.rows = rows.rows();
  p_.dims = rows.dims();
  p_.degree = params.degree;
  p_.exact_rows = std::move(rows);
  auto mark = std::chrono::steady_clock::now();
  p_.nav = NavCodes(prepared, p_.rows, p_.dims, params.threads, should_stop);
  report_.encode_ms = ms_since(mark);

  mark = std::chrono::steady_clock::now();
  const kernels::Int8Kernels& kk = kernels::active_int8();
  Builder builder(p_.nav, kk, p_.degree, std::max(params.ef_construction, p_.degree), params.seed);
  const std::vector<std::uint32_t> held_out =
      params.ef == 0 ? calibration_rows(p_.rows, params.seed) : std::vector<std::uint32_t>{};
  std::vector<bool> held(p_.rows, false);
  for (std::uint32_t r : held_out) held[r] = true;
  std::vector<std::uint32_t> order;
  order.reserve(p_.rows);
  for (std::uint32_t r = 0; r < p_.rows; ++r)
    if (!held[r]) order.push_back(r);
  insert_all(builder, order, p_.nav, p_.degree, params.threads, should_stop);
  report_.insert_ms = ms_since(mark);

  p_.ef = params.ef != 0 ? params.ef : kUncalibratedEf;
  if (!held_out.empty()) {
    mark = std::chrono::steady_clock::now();
    auto candidates = [&](const float* query, std::size_t ef, std::size_t want, std::vector<std::uint32_t>& out) {
      WalkScratch& s = scratch_for(p_.nav, p_.degree);
      walk(p_.nav, kk, query, ef, want, builder.entry(), builder.top_level(),
           [&](std::size_t level) { return builder.reader(level); }, s, out);
    };
    const Calibration c = calibrate_ef(p_.exact_rows, held_out, held, params.recall, candidates, kt, params.threads,
                                       should_stop);
    p_.ef = c.ef;
    report_.calibrated_recall = c.recall;
    report_.calibration_queries = held_out.size();
    report_.calibrate_ms = ms_since(mark);
    mark = std::chrono::steady_clock::now();
    insert_all(builder, held_out, p_.nav, p_.degree, params.threads, should_stop);
    report_.insert_ms += ms_since(mark);
  }
  builder.finish(p_);
}

}  // namespace nndex::graph
