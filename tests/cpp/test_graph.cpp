// The graph index (graph/): recall against exact search on clustered data, the result contract (min(k,
// rows) distinct rows, best first, exact similarities, batch equals single), per-call ef, saving and
// loading, the option checks, and the row-major int8 kernel every level uses to score neighbours.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "kernels/code_kernels.hpp"
#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

namespace k = nndex::kernels;
using nndex::ApproxMethod;
using nndex::BatchResult;
using nndex::Index;
using nndex::IndexOptions;
using nndex::SearchParams;

std::vector<float> clusters(std::size_t rows, std::size_t dims, std::size_t centres, std::uint32_t seed) {
  return nndex_test::gaussian_clusters(rows, dims, centres, 0.5f, seed);
}

IndexOptions graph_options() {
  IndexOptions o;
  o.approx = true;
  o.method = ApproxMethod::graph;
  return o;
}

double recall(const BatchResult& got, const BatchResult& truth) {
  double hits = 0;
  for (std::size_t q = 0; q < truth.queries; ++q) {
    const auto* t = truth.indices.data() + q * truth.k;
    const std::set<std::int64_t> want(t, t + truth.k);
    for (std::size_t i = 0; i < got.k; ++i) hits += want.count(got.indices[q * got.k + i]);
  }
  return hits / static_cast<double>(truth.queries * truth.k);
}

class GraphRecall : public ::testing::Test {
 protected:
  static constexpr std::size_t kRows = 20000, kDims = 48, kQueries = 200, kK = 10;
  static void SetUpTestSuite() {
    const std::vector<float> all = clusters(kRows + kQueries, kDims, 200, 7);
    data_ = new std::vector<float>(all.begin(), all.begin() + kRows * kDims);
    queries_ = new std::vector<float>(all.begin() + kRows * kDims, all.end());
    IndexOptions o;
    o.approx = true;  // the automatic choice builds the graph
    index_ = new Index(*data_, kRows, kDims, o);
    truth_ = new BatchResult(Index(*data_, kRows, kDims).search_batch(*queries_, kQueries, kK));
  }
  static void TearDownTestSuite() {
    delete truth_;
    delete index_;
    delete queries_;
    delete data_;
  }
  static std::vector<float>* data_;
  static std::vector<float>* queries_;
  static Index* index_;
  static BatchResult* truth_;
};
std::vector<float>* GraphRecall::data_ = nullptr;
std::vector<float>* GraphRecall::queries_ = nullptr;
Index* GraphRecall::index_ = nullptr;
BatchResult* GraphRecall::truth_ = nullptr;

TEST_F(GraphRecall, DefaultsReachTheRecallPromiseOnNewQueries) {
  ASSERT_EQ(index_->method(), "graph");
  EXPECT_GE(index_->ef(), kK);
  EXPECT_GE(recall(index_->search_batch(*queries_, kQueries, kK), *truth_), 0.95);
}

TEST_F(GraphRecall, RecallGrowsWithEfAndAWideBeamIsNearlyExact) {
  SearchParams narrow, wide;
  narrow.ef = 10;
  wide.ef = 400;
  const double r_narrow = recall(index_->search_batch(*queries_, kQueries, kK, narrow), *truth_);
  const double r_wide = recall(index_->search_batch(*queries_, kQueries, kK, wide), *truth_);
  EXPECT_GE(r_wide, r_narrow);
  EXPECT_GE(r_wide, 0.995);
}

TEST_F(GraphRecall, SimilaritiesAreExactAndSingleEqualsBatch) {
  const BatchResult batch = index_->search_batch(*queries_, kQueries, kK);
  const Index exact(*data_, kRows, kDims);
  for (std::size_t q = 0; q < 20; ++q) {
    const std::span<const float> query(queries_->data() + q * kDims, kDims);
    const auto single = index_->search(query, kK);
    ASSERT_EQ(single.size(), kK);
    for (std::size_t i = 0; i < kK; ++i) {
      EXPECT_EQ(single[i].index, batch.indices[q * kK + i]);
      EXPECT_EQ(single[i].similarity, batch.similarities[q * kK + i]);
      if (i > 0) EXPECT_GE(single[i - 1].similarity, single[i].similarity);
    }
    // The top hit, when it is the exact one, has the exact index's similarity bit for bit.
    const auto best = exact.search(query, 1);
    if (best[0].index == single[0].index) EXPECT_EQ(best[0].similarity, single[0].similarity);
  }
}

TEST_F(GraphRecall, KBeyondEfAndBeyondRowsStillGivesMinKDistinctRows) {
  for (std::size_t kq : {std::size_t{1}, std::size_t{300}, kRows + 5}) {
    SearchParams p;
    p.ef = 12;
    const auto r = index_->search(std::span<const float>(queries_->data(), kDims), kq, p);
    ASSERT_EQ(r.size(), std::min(kq, kRows));
    std::set<std::int64_t> seen;
    for (const auto& n : r) {
      ASSERT_GE(n.index, 0);
      ASSERT_LT(n.index, static_cast<std::int64_t>(kRows));
      seen.insert(n.index);
    }
    EXPECT_EQ(seen.size(), r.size());
  }
}

TEST_F(GraphRecall, SavedAndLoadedIndexAnswersTheSame) {
  const std::vector<std::byte> bytes = index_->to_bytes();
  const Index loaded = Index::from_bytes(bytes);
  EXPECT_EQ(loaded.method(), "graph");
  EXPECT_EQ(loaded.ef(), index_->ef());
  const std::span<const float> some(queries_->data(), 50 * kDims);
  const BatchResult a = index_->search_batch(some, 50, kK);
  const BatchResult b = loaded.search_batch(some, 50, kK);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.similarities, b.similarities);
}

TEST(GraphIndex, TinyMatricesWork) {
  for (std::size_t rows : {std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{40}}) {
    const std::vector<float> data = clusters(rows, 6, 3, static_cast<std::uint32_t>(rows));
    const Index ix(data, rows, 6, graph_options());
    ASSERT_EQ(ix.method(), "graph");
    const BatchResult exact = Index(data, rows, 6).search_batch(data, rows, rows);
    const BatchResult got = ix.search_batch(data, rows, rows);
    ASSERT_EQ(got.k, rows);
    // Every row comes back once per query: the walk is topped up to min(k, rows) when it reaches fewer.
    for (std::size_t q = 0; q < rows; ++q) {
      std::set<std::int64_t> seen(got.indices.begin() + q * rows, got.indices.begin() + (q + 1) * rows);
      EXPECT_EQ(seen.size(), rows);
      EXPECT_EQ(got.indices[q * rows], exact.indices[q * rows]);
    }
  }
}

TEST(GraphIndex, DuplicateRowsAndZeroRowsDoNotBreakTheWalk) {
  std::vector<float> data(3000 * 8, 0.25f);  // all rows equal (raw dot products: 8 x 0.25^2 = 0.5) ...
  for (std::size_t j = 0; j < 8; ++j) data[j] = 0.0f;  // ... but a zero row
  IndexOptions o = graph_options();
  o.normalized = true;
  o.ef = 16;
  const Index ix(data, 3000, 8, o);
  const auto r = ix.search(std::span<const float>(data.data() + 8, 8), 10);
  ASSERT_EQ(r.size(), 10u);
  for (const auto& n : r) EXPECT_EQ(n.similarity, 0.5f);
}

TEST(GraphOptions, InvalidCombinationsAreInvalidArgument) {
  const std::vector<float> data = clusters(500, 4, 5, 3);
  auto build = [&](IndexOptions o) { return Index(data, 500, 4, o); };
  IndexOptions o = graph_options();
  o.storage = nndex::Storage::bf16;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = graph_options();
  o.nprobe = 3;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = graph_options();
  o.graph_degree = 2;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = graph_options();
  o.ef = 20;
  o.recall = 0.9;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = IndexOptions{};
  o.ef = 20;  // needs approx
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = IndexOptions{};
  o.approx = true;
  o.method = ApproxMethod::ivf;
  o.ef = 20;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
  o = IndexOptions{};
  o.approx = true;
  o.nlist = 4;
  o.graph_degree = 16;
  EXPECT_THROW(build(o), nndex::InvalidArgument);
}

TEST(GraphOptions, AutomaticChoiceAndExplicitMethods) {
  const std::vector<float> data = clusters(5000, 128, 20, 4);
  IndexOptions o;
  o.approx = true;
  EXPECT_EQ(Index(data, 5000, 128, o).method(), "graph");
  o.storage = nndex::Storage::bf16;  // the graph navigates on int8: bf16 takes IVF
  EXPECT_EQ(Index(data, 5000, 128, o).method(), "ivf");
  o = IndexOptions{};
  o.approx = true;
  o.method = ApproxMethod::ivf;
  EXPECT_EQ(Index(data, 5000, 128, o).method(), "ivf");
  o = IndexOptions{};
  o.approx = true;
  o.storage = nndex::Storage::int8;
  const Index int8_graph(data, 5000, 128, o);
  EXPECT_EQ(int8_graph.method(), "graph");
  EXPECT_EQ(int8_graph.storage(), nndex::Storage::int8);
  EXPECT_EQ(Index::from_bytes(int8_graph.to_bytes()).storage(), nndex::Storage::int8);
}

// The row-major int8 kernel (DotRowsInt8Fn) on every level against the scalar one, bit for bit, on
// awkward dims, repeated and scattered ids, and extreme codes.
TEST(NavKernels, DotRowsEveryLevelMatchesScalar) {
  using k::CodeIsa;
  const CodeIsa levels[] = {CodeIsa::scalar, CodeIsa::neon,   CodeIsa::neon_dot,   CodeIsa::avx2,
                            CodeIsa::avx2_vnni, CodeIsa::avx512, CodeIsa::avx512_dot, CodeIsa::amx};
  std::mt19937 rng(11);
  for (std::size_t dims : {1, 3, 16, 17, 63, 64, 65, 100, 127, 128, 384, 1000, 1536}) {
    const std::size_t row_bytes = (dims + k::kNavRowAlign - 1) / k::kNavRowAlign * k::kNavRowAlign;
    const std::size_t rows = 37;
    std::vector<std::uint8_t> codes(rows * row_bytes, 128);
    std::vector<std::int8_t> query(row_bytes, 0);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < dims; ++j)
        codes[r * row_bytes + j] = r == 0 ? 1 : r == 1 ? 255 : static_cast<std::uint8_t>(1 + rng() % 255);
    std::int32_t sum = 0;
    for (std::size_t j = 0; j < dims; ++j) sum += query[j] = static_cast<std::int8_t>(dims % 2 ? -127 : static_cast<int>(rng() % 255) - 127);
    const std::int32_t offset = 128 * sum;
    std::vector<std::uint32_t> ids;
    for (std::size_t i = 0; i < 23; ++i) ids.push_back(static_cast<std::uint32_t>(i < 3 ? i : rng() % rows));
    ids.push_back(5);  // a repeated id
    std::vector<std::int32_t> want(ids.size()), got(ids.size());
    k::int8_scalar_table().dot_rows(codes.data(), row_bytes, ids.data(), ids.size(), query.data(), offset, want.data());
    // The scalar kernel itself against the definition: sum (code - 128) * q.
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::int64_t s = 0;
      for (std::size_t j = 0; j < dims; ++j) s += (static_cast<int>(codes[ids[i] * row_bytes + j]) - 128) * query[j];
      ASSERT_EQ(want[i], s) << "dims " << dims;
    }
    for (CodeIsa level : levels) {
      const k::Int8Kernels* t = k::int8_for(level);
      if (t == nullptr) continue;
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4}, ids.size()}) {
        std::fill(got.begin(), got.end(), -1);
        t->dot_rows(codes.data(), row_bytes, ids.data(), n, query.data(), offset, got.data());
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i]) << t->name << " dims " << dims << " i " << i;
      }
    }
  }
}

}  // namespace
