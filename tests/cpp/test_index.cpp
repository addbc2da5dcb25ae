// nndex::Index end to end against a float64 brute force, plus the exact-search planner and its paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/pack.hpp"
#include "core/prepare.hpp"
#include "core/thread_pool.hpp"
#include "core/cache_size.hpp"
#include "exact/exact_search.hpp"
#include "kernels/kernels.hpp"
#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::BatchResult;
using nndex::Index;
using nndex::IndexOptions;
using nndex::MatrixView;
using nndex::ScalarType;
using nndex_test::RefHit;

// ---------------------------------------------------------------------------------------------------
// Checking one result row against the float64 ranking.

// `ranking` is the full reference ranking of every row for this query.
void expect_matches_reference(const std::int64_t* idx, const float* sim, std::size_t got_k,
                              const std::vector<RefHit>& ranking, std::size_t k, double tol, const std::string& where) {
  const std::size_t rows = ranking.size();
  const std::size_t kk = std::min(k, rows);
  ASSERT_EQ(got_k, kk) << where;
  std::map<std::int64_t, double> score_of;
  for (const RefHit& h : ranking) score_of[h.index] = h.score;
  std::set<std::int64_t> seen;
  for (std::size_t i = 0; i < kk; ++i) {
    ASSERT_GE(idx[i], 0) << where << " pos " << i;
    ASSERT_LT(idx[i], static_cast<std::int64_t>(rows)) << where << " pos " << i;
    EXPECT_TRUE(seen.insert(idx[i]).second) << where << ": index " << idx[i] << " returned twice";
    // The i-th similarity is the i-th best score, and it belongs to the returned row.
    EXPECT_NEAR(sim[i], ranking[i].score, tol) << where << " pos " << i;
    EXPECT_NEAR(sim[i], score_of[idx[i]], tol) << where << " pos " << i << " row " << idx[i];
    if (i > 0) {
      EXPECT_TRUE(sim[i - 1] > sim[i] || (sim[i - 1] == sim[i] && idx[i - 1] < idx[i]))
          << where << ": not ordered at pos " << i;
    }
    // Where the reference has no near-tie around position i, the row itself must match.
    const bool clear_before = i == 0 || ranking[i - 1].score - ranking[i].score > 2 * tol;
    const bool clear_after = i + 1 >= rows || ranking[i].score - ranking[i + 1].score > 2 * tol;
    if (clear_before && clear_after) {
      EXPECT_EQ(idx[i], ranking[i].index) << where << " pos " << i;
    }
  }
}

bool bitwise_equal(const BatchResult& a, const BatchResult& b) {
  return a.queries == b.queries && a.k == b.k && a.indices == b.indices &&
         a.similarities.size() == b.similarities.size() &&
         std::memcmp(a.similarities.data(), b.similarities.data(), a.similarities.size() * sizeof(float)) == 0;
}

// ---------------------------------------------------------------------------------------------------
// End to end over shapes.

struct Shape {
  std::size_t rows, dims, queries;
};

class IndexVsReference : public ::testing::TestWithParam<std::tuple<Shape, bool>> {};

TEST_P(IndexVsReference, MatchesBruteForceForEveryKAndThreadCount) {
  const auto [shape, normalized] = GetParam();
  const std::size_t rows = shape.rows, dims = shape.dims, n = shape.queries;
  const std::uint32_t seed = static_cast<std::uint32_t>(rows * 131 + dims);
  const std::vector<float> data = nndex_test::random_floats(rows * dims, seed);
  const std::vector<float> queries = nndex_test::random_floats(n * dims, seed + 1);
  const auto ranking = nndex_test::reference_ranking(data, rows, dims, queries, n, !normalized);

  // Tolerance for float32 vs float64 scores: cosine scores are <= 1; raw dot products scale with the norms.
  double scale = 1.0;
  if (normalized) {
    double max_row = 0.0, max_q = 0.0;
    for (std::size_t r = 0; r < rows; ++r) {
      double s = 0;
      for (std::size_t j = 0; j < dims; ++j) s += double(data[r * dims + j]) * data[r * dims + j];
      max_row = std::max(max_row, std::sqrt(s));
    }
    for (std::size_t q = 0; q < n; ++q) {
      double s = 0;
      for (std::size_t j = 0; j < dims; ++j) s += double(queries[q * dims + j]) * queries[q * dims + j];
      max_q = std::max(max_q, std::sqrt(s));
    }
    scale = std::max(1.0, max_row * max_q);
  }
  const double tol = 1e-5 * scale;

  const std::vector<std::size_t> ks = {1, 5, rows, rows + 3};
  std::map<std::size_t, BatchResult> first;  // per k, from threads=1
  for (std::size_t threads : {1u, 2u, 4u}) {
    const Index index(data, rows, dims, IndexOptions{normalized, threads});
    ASSERT_EQ(index.rows(), rows);
    ASSERT_EQ(index.dims(), dims);
    ASSERT_EQ(index.threads(), threads);
    ASSERT_EQ(index.normalized(), normalized);
    for (std::size_t k : ks) {
      const std::string where = "threads=" + std::to_string(threads) + " k=" + std::to_string(k);
      const BatchResult batch = index.search_batch(queries, n, k);
      ASSERT_EQ(batch.queries, n);
      ASSERT_EQ(batch.k, std::min(k, rows)) << where;
      ASSERT_EQ(batch.indices.size(), n * batch.k);
      ASSERT_EQ(batch.similarities.size(), n * batch.k);
      for (std::size_t q = 0; q < n; ++q) {
        expect_matches_reference(batch.indices.data() + q * batch.k, batch.similarities.data() + q * batch.k, batch.k,
                                 ranking[q], k, tol, where + " q=" + std::to_string(q));
        // A single search equals the same row of the batch, bit for bit.
        const auto single = index.search(std::span<const float>(queries.data() + q * dims, dims), k);
        ASSERT_EQ(single.size(), batch.k);
        for (std::size_t i = 0; i < single.size(); ++i) {
          EXPECT_EQ(single[i].index, batch.indices[q * batch.k + i]) << where << " q=" << q << " pos " << i;
          EXPECT_EQ(std::memcmp(&single[i].similarity, &batch.similarities[q * batch.k + i], sizeof(float)), 0)
              << where << " q=" << q << " pos " << i;
        }
      }
      if (HasFailure()) return;
      if (threads == 1) {
        first[k] = batch;
      } else {
        EXPECT_TRUE(bitwise_equal(batch, first[k])) << "results differ between threads=1 and " << where;
      }
    }
  }
}

std::string shape_name(const ::testing::TestParamInfo<std::tuple<Shape, bool>>& info) {
  const Shape s = std::get<0>(info.param);
  std::ostringstream name;  // (not string operator+: GCC 12 gives a false -Wrestrict there)
  name << "r" << s.rows << "_d" << s.dims << (std::get<1>(info.param) ? "_dot" : "_cosine");
  return name.str();
}

INSTANTIATE_TEST_SUITE_P(Shapes, IndexVsReference,
                         ::testing::Combine(::testing::Values(Shape{1, 1, 3}, Shape{1, 3, 3}, Shape{5, 2, 7},
                                                              Shape{17, 15, 8}, Shape{33, 17, 13},
                                                              Shape{100, 1000, 7}, Shape{1000, 48, 9},
                                                              Shape{3000, 768, 3}),
                                            ::testing::Bool()),
                         shape_name);

// ---------------------------------------------------------------------------------------------------
// Accessors and small behaviours.

TEST(Index, Accessors) {
  const std::vector<float> data = nndex_test::random_floats(40 * 8, 1);
  const Index index(data, 40, 8);
  EXPECT_EQ(index.rows(), 40u);
  EXPECT_EQ(index.dims(), 8u);
  EXPECT_FALSE(index.normalized());
  EXPECT_EQ(index.threads(), nndex::core::hardware_threads()) << "threads=0 must mean every hardware thread";
  EXPECT_EQ(index.threads(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_FALSE(index.isa().empty());
  EXPECT_EQ(index.isa(), nndex::kernels::active().name);
  const std::set<std::string> known = {"scalar", "neon", "avx2", "avx512"};
  EXPECT_TRUE(known.count(std::string(index.isa()))) << index.isa();
  EXPECT_GE(index.memory_bytes(), 40u * 8u * sizeof(float));

  const Index dot(data.data(), 40, 8, IndexOptions{true, 3});
  EXPECT_TRUE(dot.normalized());
  EXPECT_EQ(dot.threads(), 3u);
}

TEST(Index, MoveKeepsTheIndex) {
  const std::vector<float> data = nndex_test::random_floats(30 * 4, 2);
  Index a(data, 30, 4);
  const auto before = a.search(std::span<const float>(data.data() + 4 * 7, 4), 3);
  Index b(std::move(a));
  EXPECT_EQ(b.rows(), 30u);
  const auto after = b.search(std::span<const float>(data.data() + 4 * 7, 4), 3);
  ASSERT_EQ(after.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(after[i].index, before[i].index);
  Index c(std::vector<float>{1, 0}, 1, 2);
  c = std::move(b);
  EXPECT_EQ(c.rows(), 30u);
  EXPECT_EQ(c.search(std::span<const float>(data.data() + 4 * 7, 4), 1)[0].index, 7);
}

TEST(Index, EachRowFindsItself) {
  const std::size_t rows = 257, dims = 31;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 3);
  const Index index(data, rows, dims, IndexOptions{false, 2});
  const BatchResult res = index.search_batch(data, rows, 1);
  for (std::size_t r = 0; r < rows; ++r) {
    EXPECT_EQ(res.indices[r], static_cast<std::int64_t>(r));
    EXPECT_NEAR(res.similarities[r], 1.0f, 1e-5f);
  }
}

TEST(Index, KIsCappedAtRows) {
  const std::vector<float> data = nndex_test::random_floats(7 * 3, 4);
  const Index index(data, 7, 3);
  EXPECT_EQ(index.search(std::span<const float>(data.data(), 3), 1000).size(), 7u);
  const BatchResult res = index.search_batch(data, 7, 100);
  EXPECT_EQ(res.k, 7u);
  EXPECT_EQ(res.indices.size(), 49u);
  for (std::size_t q = 0; q < 7; ++q) {
    std::vector<std::int64_t> ids(res.indices.begin() + q * 7, res.indices.begin() + q * 7 + 7);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6})) << "every row once for query " << q;
  }
}

TEST(Index, EmptyBatchIsNotAnError) {
  const std::vector<float> data = nndex_test::random_floats(10 * 3, 5);
  const Index index(data, 10, 3);
  const BatchResult res = index.search_batch(std::span<const float>(), 0, 4);
  EXPECT_EQ(res.queries, 0u);
  EXPECT_TRUE(res.indices.empty());
  EXPECT_TRUE(res.similarities.empty());
}

TEST(Index, KnownCosineAnswer) {
  // Axis vectors, an opposite one, and a scaled copy of row 1.
  const std::vector<float> data = {1, 0, 0, 1, -1, 0, 0, 3};
  const Index index(data, 4, 2);
  const auto hits = index.search(std::vector<float>{0.0f, 2.0f}, 4);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits[0].index, 1);
  EXPECT_EQ(hits[1].index, 3);
  EXPECT_EQ(hits[0].similarity, 1.0f);
  EXPECT_EQ(hits[1].similarity, 1.0f);
  EXPECT_EQ(hits[2].similarity, 0.0f);
  EXPECT_EQ(hits[3].similarity, 0.0f);
  EXPECT_EQ(hits[2].index, 0);  // tie at 0: lower index first
  EXPECT_EQ(hits[3].index, 2);

  const Index dot(data, 4, 2, IndexOptions{true, 1});
  const auto raw = dot.search(std::vector<float>{0.0f, 2.0f}, 2);
  EXPECT_EQ(raw[0].index, 3);
  EXPECT_EQ(raw[0].similarity, 6.0f);
  EXPECT_EQ(raw[1].index, 1);
  EXPECT_EQ(raw[1].similarity, 2.0f);
}

// ---------------------------------------------------------------------------------------------------
// Ties.

TEST(Index, DuplicateRowsComeOutLowestIndexFirst) {
  const std::size_t rows = 50, dims = 6;
  std::vector<float> data = nndex_test::random_floats(rows * dims, 6);
  const std::vector<std::size_t> dup = {3, 17, 40, 41};
  for (std::size_t r : dup) std::copy(data.begin() + 9 * dims, data.begin() + 10 * dims, data.begin() + r * dims);
  // A power-of-two multiple normalises to exactly the same floats.
  for (std::size_t j = 0; j < dims; ++j) data[44 * dims + j] = data[9 * dims + j] * 4.0f;
  const std::vector<float> query(data.begin() + 9 * dims, data.begin() + 10 * dims);
  for (std::size_t threads : {1u, 4u}) {
    const Index index(data, rows, dims, IndexOptions{false, threads});
    const auto hits = index.search(query, 6);
    const std::vector<std::int64_t> want = {3, 9, 17, 40, 41, 44};
    for (std::size_t i = 0; i < 6; ++i) {
      EXPECT_EQ(hits[i].index, want[i]) << "pos " << i;
      EXPECT_EQ(hits[i].similarity, hits[0].similarity);
    }
    const auto two = index.search(query, 2);
    EXPECT_EQ(two[0].index, 3);
    EXPECT_EQ(two[1].index, 9);
  }
}

TEST(Index, AllRowsIdenticalOnEveryPath) {
  // 4000 identical rows: every split, merge and heap must keep rows 0..k-1 in order.
  const std::size_t rows = 4000, dims = 300;
  const std::vector<float> row = nndex_test::random_floats(dims, 7);
  std::vector<float> data(rows * dims);
  for (std::size_t r = 0; r < rows; ++r) std::copy(row.begin(), row.end(), data.begin() + r * dims);
  std::vector<float> queries;
  for (std::size_t q = 0; q < 30; ++q) {
    const auto v = nndex_test::random_floats(dims, 100 + static_cast<std::uint32_t>(q));
    queries.insert(queries.end(), v.begin(), v.end());
  }
  for (std::size_t threads : {1u, 2u, 4u}) {
    const Index index(data, rows, dims, IndexOptions{false, threads});
    for (std::size_t n : {1u, 3u, 30u}) {
      for (std::size_t k : {1u, 10u, 700u}) {
        const BatchResult res = index.search_batch(std::span<const float>(queries.data(), n * dims), n, k);
        for (std::size_t q = 0; q < n; ++q)
          for (std::size_t i = 0; i < k; ++i)
            ASSERT_EQ(res.indices[q * k + i], static_cast<std::int64_t>(i))
                << "threads=" << threads << " n=" << n << " k=" << k << " q=" << q;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// MatrixView inputs.

class MatrixViews : public ::testing::TestWithParam<std::size_t> {};

TEST_P(MatrixViews, StridedAndFloat64ViewsMatchRowMajorFloat32) {
  const std::size_t threads = GetParam();
  const std::size_t rows = 203, dims = 37, n = 5;
  // Float64 source values (not all exactly representable in float32).
  std::vector<double> src(rows * dims);
  {
    const auto f = nndex_test::random_floats(rows * dims, 8);
    const auto g = nndex_test::random_floats(rows * dims, 9);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = double(f[i]) + double(g[i]) * 1e-9;
  }
  // The reference: the float32 row-major copy.
  std::vector<float> f32(rows * dims);
  for (std::size_t i = 0; i < src.size(); ++i) f32[i] = static_cast<float>(src[i]);
  const std::vector<float> queries = nndex_test::random_floats(n * dims, 10);

  for (bool normalized : {false, true}) {
    const IndexOptions opts{normalized, threads};
    const BatchResult want = Index(f32, rows, dims, opts).search_batch(queries, n, 9);

    auto check = [&](const MatrixView& view, const char* what) {
      const Index index(view, opts);
      EXPECT_EQ(index.rows(), rows) << what;
      EXPECT_EQ(index.dims(), dims) << what;
      EXPECT_TRUE(bitwise_equal(index.search_batch(queries, n, 9), want)) << what << " normalized=" << normalized;
    };

    check(MatrixView::row_major(f32.data(), rows, dims), "f32 row-major view");
    check(MatrixView::row_major(src.data(), rows, dims), "f64 row-major");

    // Column-major copies: element (r, j) at j * rows + r.
    std::vector<float> f32_cm(rows * dims);
    std::vector<double> f64_cm(rows * dims);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < dims; ++j) {
        f32_cm[j * rows + r] = f32[r * dims + j];
        f64_cm[j * rows + r] = src[r * dims + j];
      }
    const auto rs = static_cast<std::ptrdiff_t>(rows);
    check(MatrixView{f32_cm.data(), ScalarType::f32, rows, dims, 1, rs}, "f32 column-major");
    check(MatrixView{f64_cm.data(), ScalarType::f64, rows, dims, 1, rs}, "f64 column-major");

    // Sliced: the matrix sits at every 3rd row and every 2nd column of a bigger buffer, from an offset.
    const std::size_t big_cols = dims * 2 + 5;
    std::vector<double> big64(rows * 3 * big_cols, std::nan(""));
    std::vector<float> big32(rows * 3 * big_cols, std::nanf(""));
    const std::size_t offset = 1 * big_cols + 3;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < dims; ++j) {
        big64[offset + r * 3 * big_cols + j * 2] = src[r * dims + j];
        big32[offset + r * 3 * big_cols + j * 2] = f32[r * dims + j];
      }
    const auto bs = static_cast<std::ptrdiff_t>(3 * big_cols);
    check(MatrixView{big64.data() + offset, ScalarType::f64, rows, dims, bs, 2}, "f64 sliced");
    check(MatrixView{big32.data() + offset, ScalarType::f32, rows, dims, bs, 2}, "f32 sliced");

    // Negative strides: rows stored bottom-up and columns right-to-left (a flipped numpy view).
    std::vector<float> flipped(rows * dims);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < dims; ++j) flipped[(rows - 1 - r) * dims + (dims - 1 - j)] = f32[r * dims + j];
    check(MatrixView{flipped.data() + rows * dims - 1, ScalarType::f32, rows, dims,
                     -static_cast<std::ptrdiff_t>(dims), -1},
          "f32 reversed");
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, MatrixViews, ::testing::Values<std::size_t>(1, 4),
                         [](const auto& info) { return nndex_test::label("threads", info.param); });

TEST(Index, SearchIntoWithStridedQueries) {
  const std::size_t rows = 120, dims = 19, n = 8, k = 4;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 11);
  std::vector<double> qd(n * dims);
  const auto qf = nndex_test::random_floats(n * dims, 12);
  for (std::size_t i = 0; i < qd.size(); ++i) qd[i] = qf[i];
  const Index index(data, rows, dims, IndexOptions{false, 2});
  const BatchResult want = index.search_batch(qf, n, k);

  std::vector<std::int64_t> ids(n * k, -1);
  std::vector<float> sims(n * k);
  index.search_into(MatrixView::row_major(qd.data(), n, dims), k, ids.data(), sims.data());
  EXPECT_EQ(ids, want.indices);
  EXPECT_EQ(sims, want.similarities);

  // Column-major float32 queries.
  std::vector<float> qcm(n * dims);
  for (std::size_t q = 0; q < n; ++q)
    for (std::size_t j = 0; j < dims; ++j) qcm[j * n + q] = qf[q * dims + j];
  std::fill(ids.begin(), ids.end(), -1);
  index.search_into(MatrixView{qcm.data(), ScalarType::f32, n, dims, 1, static_cast<std::ptrdiff_t>(n)}, k,
                    ids.data(), sims.data());
  EXPECT_EQ(ids, want.indices);
  EXPECT_EQ(sims, want.similarities);

  // k above rows writes n x rows.
  std::vector<std::int64_t> all_ids(n * rows + 1, -7);
  std::vector<float> all_sims(n * rows + 1, -7.0f);
  index.search_into(MatrixView::row_major(qf.data(), n, dims), rows + 50, all_ids.data(), all_sims.data());
  EXPECT_EQ(all_ids.back(), -7) << "wrote past n x min(k, rows)";
  EXPECT_EQ(all_sims.back(), -7.0f);
}

TEST(Index, ConcurrentSearchesAgreeWithSequential) {
  const std::size_t rows = 2000, dims = 64, n = 40;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 13);
  const std::vector<float> queries = nndex_test::random_floats(n * dims, 14);
  const Index index(data, rows, dims, IndexOptions{false, 4});
  const BatchResult want = index.search_batch(queries, n, 10);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        if (t % 2 == 0) {
          if (!bitwise_equal(index.search_batch(queries, n, 10), want)) mismatches.fetch_add(1);
        } else {
          const std::size_t q = static_cast<std::size_t>(t * 7 + round) % n;
          const auto hits = index.search(std::span<const float>(queries.data() + q * dims, dims), 10);
          for (std::size_t i = 0; i < 10; ++i)
            if (hits[i].index != want.indices[q * 10 + i]) mismatches.fetch_add(1);
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// The stop check is first polled ~10 ms into a call, so these tests grow the work until a call lasts
// that long on this machine (usually the first attempt does).

TEST(Index, StopCheckInterruptsSearchAndIndexStaysUsable) {
  const std::size_t rows = 20000, dims = 256;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 15);
  const std::vector<float> queries = nndex_test::random_floats(3200 * dims, 16);
  const Index index(data, rows, dims, IndexOptions{false, 1});
  nndex::SearchParams stop;
  std::atomic<int> polls{0};
  stop.should_stop = [&] {
    polls.fetch_add(1);
    return true;
  };
  bool interrupted = false;
  for (std::size_t n = 200; n <= 3200 && !interrupted; n *= 2) {
    try {
      index.search_batch(std::span<const float>(queries.data(), n * dims), n, 5, stop);
    } catch (const nndex::Interrupted&) {
      interrupted = true;
    }
  }
  EXPECT_TRUE(interrupted) << "no search was interrupted";
  EXPECT_GE(polls.load(), 1);
  // A stop check that never fires changes nothing, and the index is intact.
  nndex::SearchParams never;
  never.should_stop = [] { return false; };
  const BatchResult a = index.search_batch(std::span<const float>(queries.data(), 3 * dims), 3, 5, never);
  const BatchResult b = index.search_batch(std::span<const float>(queries.data(), 3 * dims), 3, 5);
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_EQ(a.indices[0], index.search(std::span<const float>(queries.data(), dims), 1)[0].index);
}

TEST(Index, StopCheckInterruptsBuild) {
  // Column-major views make packing slow (strided reads).
  const std::size_t dims = 128;
  bool interrupted = false;
  for (std::size_t rows = 60000; rows <= 240000 && !interrupted; rows *= 2) {
    const std::vector<float> data = nndex_test::random_floats(rows * dims, 17);
    const MatrixView cm{data.data(), ScalarType::f32, rows, dims, 1, static_cast<std::ptrdiff_t>(rows)};
    try {
      const Index index(cm, IndexOptions{false, 1}, [] { return true; });
    } catch (const nndex::Interrupted&) {
      interrupted = true;
      // The same build with a stop check that never fires completes.
      const Index ok(cm, IndexOptions{false, 1}, [] { return false; });
      EXPECT_EQ(ok.rows(), rows);
      EXPECT_EQ(ok.search(std::vector<float>(dims, 1.0f), 1).size(), 1u);
    }
  }
  EXPECT_TRUE(interrupted) << "no build was interrupted";
}

// ---------------------------------------------------------------------------------------------------
// The planner and its three paths.

using nndex::exact::Plan;

// The planner's thread choice also depends on the pool (a helper still polling after the previous
// call) and on the per-core L2; these tests fix both. Cold pool, no L2 rule:
constexpr nndex::core::ThreadBudgetInputs kCold{false, 0};
Plan make_plan(std::size_t rows, std::size_t dims, std::size_t n, std::size_t max_threads,
               const nndex::core::ThreadBudgetInputs& inputs = kCold) {
  return nndex::exact::make_plan(rows, dims, n, max_threads, inputs);
}

// The work threshold for a second thread is an internal tuning constant, so the tests find it: the fewest
// rows (dims 256, one query) for which the planner uses more than one thread.
std::size_t first_parallel_rows(const nndex::core::ThreadBudgetInputs& inputs = kCold) {
  std::size_t lo = 1, hi = std::size_t{1} << 26;  // lo serial, hi parallel
  EXPECT_EQ(make_plan(lo, 256, 1, 16, inputs).threads, 1u);
  EXPECT_GT(make_plan(hi, 256, 1, 16, inputs).threads, 1u);
  while (hi - lo > 1) {
    const std::size_t mid = lo + (hi - lo) / 2;
    (make_plan(mid, 256, 1, 16, inputs).threads > 1 ? hi : lo) = mid;
  }
  return hi;
}

TEST(ExactPlan, BothSidesOfTheWorkThreshold) {
  const std::size_t r = first_parallel_rows();
  const Plan below = make_plan(r - 1, 256, 1, 16);
  EXPECT_STREQ(below.path, "serial");
  EXPECT_EQ(below.threads, 1u);
  EXPECT_EQ(below.query_block, 1u);
  EXPECT_EQ(below.row_splits, 1u);
  const Plan at = make_plan(r, 256, 1, 16);
  EXPECT_STREQ(at.path, "row-split") << "one query can only be split by rows";
  EXPECT_EQ(at.threads, 2u) << "just past the threshold is worth exactly two threads";
  EXPECT_GE(at.row_splits, 2u);
  EXPECT_EQ(at.query_block, 1u);
  // The threshold is on total work (queries x rows x dims): the same work as two queries is parallel.
  EXPECT_EQ(make_plan((r + 1) / 2, 256, 2, 16).threads, 2u);
  EXPECT_EQ(make_plan(r, 128, 2, 16).threads, 2u);
  // Tiny problems stay serial whatever the thread budget.
  const Plan tiny = make_plan(5, 2, 7, 64);
  EXPECT_STREQ(tiny.path, "serial");
  EXPECT_EQ(tiny.query_block, 7u);
}

TEST(ExactPlan, AWarmPoolSplitsSmallerSearches) {
  const std::size_t cold = first_parallel_rows(kCold);
  const std::size_t warm = first_parallel_rows({true, 0});
  EXPECT_LT(warm, cold);
  EXPECT_EQ(cold / warm, nndex::core::kColdWorkPerThread / nndex::core::kWarmWorkPerThread);
}

TEST(ExactPlan, ASingleQueryBeyondOneL2IsSplitUntilTheSharesFit) {
  constexpr std::size_t MiB = std::size_t{1} << 20;
  // 1000 x 768 floats = 3 MB: too much for a 2 MiB L2 (1.5 MiB usable), two shares fit two of them.
  EXPECT_EQ(make_plan(1000, 768, 1, 2, {false, 2 * MiB}).threads, 2u);
  EXPECT_EQ(make_plan(1000, 768, 1, 16, {false, 2 * MiB}).threads, 2u) << "no more threads than the L2s need";
  EXPECT_STREQ(make_plan(1000, 768, 1, 2, {false, 2 * MiB}).path, "row-split");
  // 1 MiB L2s need four shares: with two threads the rule cannot help and the work rule decides.
  EXPECT_EQ(make_plan(1000, 768, 1, 2, {false, 1 * MiB}).threads, 1u);
  EXPECT_EQ(make_plan(1000, 768, 1, 4, {false, 1 * MiB}).threads, 4u);
  // A matrix that fits one L2 stays on one thread when the pool is cold.
  EXPECT_EQ(make_plan(1000, 256, 1, 16, {false, 2 * MiB}).threads, 1u);
  // Tiny matrices are never split for the L2, whatever its size.
  EXPECT_EQ(make_plan(300, 64, 1, 16, {false, 4096}).threads, 1u);
}

TEST(ExactPlan, OneThreadIsAlwaysSerial) {
  for (std::size_t max_threads : {0u, 1u}) {
    const Plan p = make_plan(100000, 768, 1000, max_threads);
    EXPECT_STREQ(p.path, "serial");
    EXPECT_EQ(p.threads, 1u);
    EXPECT_EQ(p.row_splits, 1u);
    EXPECT_LE(p.query_block, 1000u);
  }
}

TEST(ExactPlan, QuerySplitNeedsTwoGroupsPerThread) {
  // A matrix big enough that any number of queries saturates the thread budget. The queries are split
  // once there are at least two groups of kMaxQueryGroup per thread; below that the rows are split.
  const std::size_t g = nndex::kernels::kMaxQueryGroup;
  for (std::size_t threads : {2u, 3u, 4u}) {
    const std::size_t n_switch = 2 * threads * g;
    const Plan below = make_plan(1u << 16, 256, n_switch - 1, threads);
    EXPECT_STREQ(below.path, "row-split") << "threads=" << threads;
    EXPECT_EQ(below.threads, threads);
    EXPECT_EQ(below.query_block, n_switch - 1);
    EXPECT_GE(below.row_splits, threads);
    const Plan at = make_plan(1u << 16, 256, n_switch, threads);
    EXPECT_STREQ(at.path, "query-split") << "threads=" << threads;
    EXPECT_EQ(at.threads, threads);
    EXPECT_EQ(at.row_splits, 1u);
    EXPECT_EQ(at.query_block % g, 0u);
    EXPECT_GE((n_switch + at.query_block - 1) / at.query_block, 2 * threads) << "at least two tasks per thread";
  }
}

TEST(ExactPlan, Invariants) {
  for (std::size_t rows : {1u, 15u, 16u, 17u, 1000u, 100000u})
    for (std::size_t dims : {1u, 3u, 48u, 768u, 4096u})
      for (std::size_t n : {1u, 5u, 6u, 100u, 5000u})
        for (std::size_t t : {0u, 1u, 2u, 3u, 8u, 64u}) {
          const Plan p = make_plan(rows, dims, n, t);
          const std::string where = std::to_string(rows) + "x" + std::to_string(dims) + " n=" + std::to_string(n) +
                                    " t=" + std::to_string(t);
          EXPECT_GE(p.threads, 1u) << where;
          EXPECT_LE(p.threads, std::max<std::size_t>(t, 1)) << where;
          EXPECT_GE(p.query_block, 1u) << where;
          EXPECT_LE(p.query_block, n) << where;
          EXPECT_GE(p.row_splits, 1u) << where;
          EXPECT_GE(p.panel_blocks, 1u) << where;
          EXPECT_LE(p.panel_blocks, 64u) << where;
          const std::string path = p.path;
          EXPECT_TRUE(path == "serial" || path == "query-split" || path == "row-split") << where;
          if (path != "row-split") {
            EXPECT_EQ(p.row_splits, 1u) << where;
          } else {
            EXPECT_EQ(p.query_block, n) << where;
            EXPECT_LE(p.threads, p.row_splits) << where;
          }
        }
}

// Runs exact::search directly on packed storage so the path taken can be checked.
struct Packed {
  nndex::core::TiledMatrix matrix;
  std::vector<float> queries;  // prepared
};

Packed pack(const std::vector<float>& data, std::size_t rows, std::size_t dims, const std::vector<float>& raw_queries,
            std::size_t n) {
  const auto& kt = nndex::kernels::active();
  Packed p{nndex::core::pack_matrix(MatrixView::row_major(data.data(), rows, dims), true, kt, 2, {}), {}};
  p.queries.resize(n * dims);
  const MatrixView qv = MatrixView::row_major(raw_queries.data(), n, dims);
  for (std::size_t q = 0; q < n; ++q)
    nndex::core::prepare_vector(qv, q, true, kt, p.queries.data() + q * dims, {"query", q});
  return p;
}

class ExactPaths : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ExactPaths, SerialQuerySplitAndRowSplitAgreeBitwise) {
  const std::size_t n = GetParam();
  const std::size_t rows = 8203, dims = 256;  // not a multiple of 16: a padded last block
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 18);
  const std::vector<float> raw = nndex_test::random_floats(n * dims, 19 + static_cast<std::uint32_t>(n));
  const Packed p = pack(data, rows, dims, raw, n);
  const auto& kt = nndex::kernels::active();
  const auto ranking = nndex_test::reference_ranking(data, rows, dims, raw, n, true);

  for (std::size_t k : {1u, 10u, 300u, 8203u, 9000u}) {
    const std::size_t kk = std::min<std::size_t>(k, rows);
    std::vector<std::int64_t> ids_serial(n * kk);
    std::vector<float> sims_serial(n * kk);
    const Plan serial = nndex::exact::search(p.matrix, p.queries.data(), n, k, kt, 1, {}, ids_serial.data(),
                                             sims_serial.data());
    EXPECT_STREQ(serial.path, "serial");
    for (std::size_t q = 0; q < n; ++q)
      expect_matches_reference(ids_serial.data() + q * kk, sims_serial.data() + q * kk, kk, ranking[q], k, 1e-5,
                               "serial k=" + std::to_string(k) + " q=" + std::to_string(q));

    std::set<std::string> paths;
    for (std::size_t threads : {2u, 3u, 4u, 16u}) {
      std::vector<std::int64_t> ids(n * kk, -1);
      std::vector<float> sims(n * kk);
      const Plan plan = nndex::exact::search(p.matrix, p.queries.data(), n, k, kt, threads, {}, ids.data(), sims.data());
      paths.insert(plan.path);
      // The pool may or may not be warm from the previous call: the plan is one of the two.
      const std::size_t l2 = nndex::core::cache_sizes().l2_per_core;
      const Plan cold = make_plan(rows, dims, n, threads, {false, l2});
      const Plan warm = make_plan(rows, dims, n, threads, {true, l2});
      EXPECT_TRUE((std::string(plan.path) == cold.path && plan.threads == cold.threads) ||
                  (std::string(plan.path) == warm.path && plan.threads == warm.threads))
          << plan.path << " threads=" << plan.threads;
      EXPECT_EQ(ids, ids_serial) << plan.path << " threads=" << threads << " k=" << k;
      EXPECT_EQ(std::memcmp(sims.data(), sims_serial.data(), sims.size() * sizeof(float)), 0)
          << plan.path << " threads=" << threads << " k=" << k;
    }
    // Below 24 queries every multi-thread plan splits rows; from 24, 2 threads split the queries.
    if (n < 24) {
      EXPECT_TRUE(paths.count("row-split")) << "n=" << n;
    } else {
      EXPECT_TRUE(paths.count("query-split")) << "n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(QueryCounts, ExactPaths, ::testing::Values<std::size_t>(1, 4, 23, 24, 50),
                         [](const auto& info) { return nndex_test::label("n", info.param); });

}  // namespace
