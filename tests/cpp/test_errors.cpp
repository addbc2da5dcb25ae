// Every failure is a typed exception derived from nndex::Error, naming what was wrong and where.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::Index;
using nndex::IndexOptions;
using nndex::MatrixView;
using nndex::ScalarType;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs `f`, which must throw exactly type E (derived from nndex::Error); returns the caught copy.
template <class E, class F>
E expect_error(F&& f, const std::string& context) {
  static_assert(std::is_base_of_v<nndex::Error, E>);
  try {
    f();
  } catch (const nndex::Error& e) {
    if (typeid(e) != typeid(E)) {
      ADD_FAILURE() << context << ": threw " << typeid(e).name() << " (" << e.what() << "), expected "
                    << typeid(E).name();
      throw;
    }
    EXPECT_FALSE(std::string(e.what()).empty()) << context;
    return dynamic_cast<const E&>(e);
  } catch (const std::exception& e) {
    ADD_FAILURE() << context << ": threw a non-nndex exception: " << e.what();
    throw;
  }
  ADD_FAILURE() << context << ": nothing thrown";
  throw std::logic_error("no exception");
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string ctx(const std::string& what, std::size_t row, bool normalized) {
  return what + " at row " + std::to_string(row) + (normalized ? " (normalized)" : " (cosine)");
}

TEST(Errors, HierarchyCatchesEverythingAsError) {
  EXPECT_TRUE((std::is_base_of_v<nndex::Error, nndex::InvalidArgument>));
  EXPECT_TRUE((std::is_base_of_v<nndex::InvalidArgument, nndex::DimensionMismatch>));
  EXPECT_TRUE((std::is_base_of_v<nndex::InvalidArgument, nndex::NonFiniteValue>));
  EXPECT_TRUE((std::is_base_of_v<nndex::InvalidArgument, nndex::ZeroNorm>));
  EXPECT_TRUE((std::is_base_of_v<nndex::Error, nndex::Interrupted>));
  EXPECT_TRUE((std::is_base_of_v<std::runtime_error, nndex::Error>));
}

// ---------------------------------------------------------------------------------------------------
// Building.

TEST(Errors, EmptyMatrix) {
  const std::vector<float> none;
  const std::vector<float> some(10, 1.0f);
  const auto e1 = expect_error<nndex::InvalidArgument>([&] { (void)Index(none, 0, 0); }, "0 x 0");
  EXPECT_TRUE(contains(e1.what(), "empty")) << e1.what();
  expect_error<nndex::InvalidArgument>([&] { (void)Index(none, 0, 5); }, "0 rows");
  expect_error<nndex::InvalidArgument>([&] { (void)Index(none, 5, 0); }, "0 dims");
  expect_error<nndex::InvalidArgument>([&] { (void)Index(some.data(), 0, 10); }, "0 rows, pointer");
  expect_error<nndex::InvalidArgument>([&] { (void)Index(some.data(), 10, 0); }, "0 dims, pointer");
  expect_error<nndex::InvalidArgument>([&] { (void)Index(MatrixView{}); }, "default view");
  expect_error<nndex::InvalidArgument>([&] { (void)Index(MatrixView{nullptr, ScalarType::f32, 3, 4, 4, 1}); },
                                       "null data");
}

TEST(Errors, SpanSizeMismatchInConstructor) {
  const std::vector<float> data(11, 1.0f);
  const auto e = expect_error<nndex::InvalidArgument>([&] { (void)Index(data, 3, 4); }, "11 values for 3 x 4");
  EXPECT_TRUE(contains(e.what(), "11")) << e.what();
  EXPECT_TRUE(contains(e.what(), "12")) << e.what();
  expect_error<nndex::InvalidArgument>([&] { (void)Index(std::vector<float>(13, 1.0f), 3, 4); }, "13 values");
}

TEST(Errors, NonFiniteValueNamesRowAndColumn) {
  const std::size_t rows = 40, dims = 5;
  for (bool normalized : {false, true}) {
    for (std::size_t bad_row : {0u, 7u, 16u, 39u}) {
      const std::size_t col = bad_row % dims;
      for (float v : {kNan, kInf, -kInf}) {
        std::vector<float> data = nndex_test::random_floats(rows * dims, 21);
        data[bad_row * dims + col] = v;
        const std::string what = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
        const auto e = expect_error<nndex::NonFiniteValue>(
            [&] { (void)Index(data, rows, dims, IndexOptions{normalized, 2}); }, ctx(what, bad_row, normalized));
        EXPECT_EQ(e.row(), bad_row);
        const std::string msg = e.what();
        EXPECT_TRUE(contains(msg, "row " + std::to_string(bad_row))) << msg;
        EXPECT_TRUE(contains(msg, "column " + std::to_string(col))) << msg;
        EXPECT_TRUE(contains(msg, "(" + what + ")")) << msg;
      }
    }
  }
}

TEST(Errors, NonFiniteInFloat64View) {
  std::vector<double> data(6 * 3, 0.5);
  data[4 * 3 + 2] = -std::numeric_limits<double>::infinity();
  const auto e = expect_error<nndex::NonFiniteValue>(
      [&] { (void)Index(MatrixView::row_major(data.data(), 6, 3)); }, "f64 -inf");
  EXPECT_EQ(e.row(), 4u);
  EXPECT_TRUE(contains(e.what(), "row 4")) << e.what();
  EXPECT_TRUE(contains(e.what(), "-inf")) << e.what();
}

TEST(Errors, Float64OutsideFloat32Range) {
  for (double v : {1e300, -1e39, 3.5e38}) {
    for (bool normalized : {false, true}) {
      std::vector<double> data(10 * 4, 0.25);
      data[6 * 4 + 1] = v;
      const auto e = expect_error<nndex::NonFiniteValue>(
          [&] { (void)Index(MatrixView::row_major(data.data(), 10, 4), IndexOptions{normalized, 1}); },
          "f64 value " + std::to_string(v));
      EXPECT_EQ(e.row(), 6u);
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, "row 6")) << msg;
      EXPECT_TRUE(contains(msg, "float32")) << msg;
      EXPECT_TRUE(contains(msg, "column 1")) << msg;
    }
  }
  // The largest float64 that rounds to a finite float32 is accepted.
  std::vector<double> ok(2 * 2, 0.25);
  ok[0] = static_cast<double>(std::numeric_limits<float>::max());
  EXPECT_NO_THROW(Index(MatrixView::row_major(ok.data(), 2, 2)));
}

TEST(Errors, SquaredNormOverflow) {
  // Finite values whose squares overflow float32: fine when normalising (rescaled), an error for raw dot
  // products, since the scores themselves could not be represented.
  const std::vector<float> data = {1, 0, 3e19f, -3e19f, 0, 1};
  const Index cosine(data, 3, 2);
  const auto hits = cosine.search(std::vector<float>{1.0f, -1.0f}, 1);
  EXPECT_EQ(hits[0].index, 1);
  EXPECT_NEAR(hits[0].similarity, 1.0f, 1e-6f);
  const auto e = expect_error<nndex::NonFiniteValue>([&] { (void)Index(data, 3, 2, IndexOptions{true, 1}); },
                                                     "overflowing norm, normalized=true");
  EXPECT_EQ(e.row(), 1u);
  EXPECT_TRUE(contains(e.what(), "row 1")) << e.what();
}

TEST(Errors, TinyRowsStillNormalise) {
  const std::vector<float> data = {1e-30f, 1e-30f, 1.0f, 0.0f, 1e-44f, 0.0f};
  const Index index(data, 3, 2);
  const auto hits = index.search(std::vector<float>{1.0f, 1.0f}, 3);
  EXPECT_EQ(hits[0].index, 0);
  EXPECT_NEAR(hits[0].similarity, 1.0f, 1e-6f);
  EXPECT_NEAR(hits[1].similarity, std::sqrt(0.5f), 1e-6f);
  EXPECT_NEAR(hits[2].similarity, std::sqrt(0.5f), 1e-6f);
}

TEST(Errors, ZeroNormRowOnlyWhenNormalising) {
  for (std::size_t bad_row : {0u, 5u, 16u, 29u}) {
    std::vector<float> data = nndex_test::random_floats(30 * 6, 22);
    for (std::size_t j = 0; j < 6; ++j) data[bad_row * 6 + j] = (j % 2) ? 0.0f : -0.0f;
    const auto e = expect_error<nndex::ZeroNorm>([&] { (void)Index(data, 30, 6, IndexOptions{false, 2}); },
                                                 ctx("zero norm", bad_row, false));
    EXPECT_EQ(e.row(), bad_row);
    EXPECT_TRUE(contains(e.what(), "row " + std::to_string(bad_row))) << e.what();
    EXPECT_TRUE(contains(e.what(), "zero norm")) << e.what();

    // Raw dot products accept it; the zero row scores exactly 0.
    const Index raw(data, 30, 6, IndexOptions{true, 2});
    const auto all = raw.search(std::span<const float>(data.data() + ((bad_row + 1) % 30) * 6, 6), 30);
    bool found = false;
    for (const auto& h : all)
      if (h.index == static_cast<std::int64_t>(bad_row)) {
        found = true;
        EXPECT_EQ(h.similarity, 0.0f);
      }
    EXPECT_TRUE(found);
  }
}

TEST(Errors, Float64ValuesThatUnderflowToZeroAreAZeroRow) {
  std::vector<double> data = {1.0, 2.0, 1e-60, -1e-70};
  const auto e = expect_error<nndex::ZeroNorm>([&] { (void)Index(MatrixView::row_major(data.data(), 2, 2)); },
                                               "f64 underflow");
  EXPECT_EQ(e.row(), 1u);
}

TEST(Errors, LowestBadRowIsReported) {
  const std::size_t rows = 40, dims = 4;
  for (std::size_t threads : {1u, 4u}) {
    // Zero row first, NaN later: ZeroNorm for the lower row.
    std::vector<float> data = nndex_test::random_floats(rows * dims, 23);
    for (std::size_t j = 0; j < dims; ++j) data[9 * dims + j] = 0.0f;
    data[33 * dims + 1] = kNan;
    auto z = expect_error<nndex::ZeroNorm>([&] { (void)Index(data, rows, dims, IndexOptions{false, threads}); },
                                           "zero at 9, nan at 33");
    EXPECT_EQ(z.row(), 9u);
    // NaN first, zero later.
    data = nndex_test::random_floats(rows * dims, 24);
    data[2 * dims + 3] = kNan;
    for (std::size_t j = 0; j < dims; ++j) data[3 * dims + j] = 0.0f;
    auto nf = expect_error<nndex::NonFiniteValue>([&] { (void)Index(data, rows, dims, IndexOptions{false, threads}); },
                                                  "nan at 2, zero at 3");
    EXPECT_EQ(nf.row(), 2u);
  }
}

TEST(Errors, LowestBadRowIsReportedFromAParallelBuild) {
  const std::size_t rows = 100000, dims = 16;
  std::vector<float> data = nndex_test::random_floats(rows * dims, 25);
  data[90000 * dims + 3] = kInf;
  data[70000 * dims + 11] = kNan;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto e = expect_error<nndex::NonFiniteValue>([&] { (void)Index(data, rows, dims, IndexOptions{false, 4}); },
                                                       "bad rows 70000 and 90000");
    EXPECT_EQ(e.row(), 70000u);
    EXPECT_TRUE(contains(e.what(), "row 70000")) << e.what();
    EXPECT_TRUE(contains(e.what(), "nan")) << e.what();
  }
  // A bad row near the end alone, and with a zero row even earlier.
  data[70000 * dims + 11] = 0.5f;
  auto e = expect_error<nndex::NonFiniteValue>([&] { (void)Index(data, rows, dims, IndexOptions{false, 4}); }, "90000");
  EXPECT_EQ(e.row(), 90000u);
  for (std::size_t j = 0; j < dims; ++j) data[99 * dims + j] = 0.0f;
  auto z = expect_error<nndex::ZeroNorm>([&] { (void)Index(data, rows, dims, IndexOptions{false, 4}); }, "99 and 90000");
  EXPECT_EQ(z.row(), 99u);
}

// ---------------------------------------------------------------------------------------------------
// Searching.

class SearchErrors : public ::testing::Test {
 protected:
  static constexpr std::size_t kRows = 20, kDims = 4;
  std::vector<float> data_ = nndex_test::random_floats(kRows * kDims, 26);
  Index cosine_{data_, kRows, kDims, IndexOptions{false, 2}};
  Index dot_{data_, kRows, kDims, IndexOptions{true, 2}};
};

TEST_F(SearchErrors, QueryDimensionMismatch) {
  for (std::size_t wrong : {0u, 1u, 3u, 5u, 100u}) {
    const std::vector<float> q(wrong, 1.0f);
    const auto e = expect_error<nndex::DimensionMismatch>([&] { cosine_.search(q, 3); },
                                                          "query of " + std::to_string(wrong));
    EXPECT_EQ(e.expected(), kDims);
    EXPECT_EQ(e.actual(), wrong);
    const std::string msg = e.what();
    EXPECT_TRUE(contains(msg, std::to_string(kDims))) << msg;
    EXPECT_TRUE(contains(msg, std::to_string(wrong))) << msg;
    EXPECT_TRUE(contains(msg, "dims")) << msg;
  }
  // search_into with a view of the wrong width.
  const std::vector<float> q(2 * 5, 1.0f);
  std::vector<std::int64_t> ids(10);
  std::vector<float> sims(10);
  const auto e = expect_error<nndex::DimensionMismatch>(
      [&] { cosine_.search_into(MatrixView::row_major(q.data(), 2, 5), 3, ids.data(), sims.data()); }, "search_into");
  EXPECT_EQ(e.expected(), kDims);
  EXPECT_EQ(e.actual(), 5u);
}

TEST_F(SearchErrors, BatchSizeMismatch) {
  // 3 queries of 5 values: a dims mismatch.
  const auto dm = expect_error<nndex::DimensionMismatch>([&] { cosine_.search_batch(std::vector<float>(15, 1.0f), 3, 2); },
                                                         "3 x 5");
  EXPECT_EQ(dm.expected(), kDims);
  EXPECT_EQ(dm.actual(), 5u);
  // 13 values for 3 queries: not a whole number of vectors.
  const auto ia = expect_error<nndex::InvalidArgument>([&] { cosine_.search_batch(std::vector<float>(13, 1.0f), 3, 2); },
                                                       "13 values for 3 queries");
  EXPECT_TRUE(contains(ia.what(), "13")) << ia.what();
  // Values but n = 0.
  expect_error<nndex::InvalidArgument>([&] { cosine_.search_batch(std::vector<float>(4, 1.0f), 0, 2); }, "n = 0");
  // Too few values for n.
  // 4 values for 2 queries reads as 2 queries of 2 dims.
  const auto dm2 = expect_error<nndex::DimensionMismatch>(
      [&] { cosine_.search_batch(std::vector<float>(4, 1.0f), 2, 2); }, "4 values for 2 queries");
  EXPECT_EQ(dm2.actual(), 2u);
}

TEST_F(SearchErrors, KZero) {
  const std::vector<float> q(kDims, 1.0f);
  const auto e = expect_error<nndex::InvalidArgument>([&] { cosine_.search(q, 0); }, "search k=0");
  EXPECT_TRUE(contains(e.what(), "k")) << e.what();
  expect_error<nndex::InvalidArgument>([&] { cosine_.search_batch(q, 1, 0); }, "search_batch k=0");
  std::int64_t id;
  float sim;
  expect_error<nndex::InvalidArgument>(
      [&] { cosine_.search_into(MatrixView::row_major(q.data(), 1, kDims), 0, &id, &sim); }, "search_into k=0");
  // k=0 is reported even with a wrong-sized query (the first problem found, still typed).
  expect_error<nndex::InvalidArgument>([&] { cosine_.search(std::vector<float>(1, 1.0f), 0); }, "k=0 and bad dims");
}

TEST_F(SearchErrors, NonFiniteQuery) {
  for (float v : {kNan, kInf, -kInf}) {
    for (Index* index : {&cosine_, &dot_}) {
      std::vector<float> q = {0.5f, 0.25f, v, 1.0f};
      const auto e = expect_error<nndex::NonFiniteValue>([&] { index->search(q, 3); }, "single query");
      EXPECT_EQ(e.row(), 0u);
      EXPECT_TRUE(contains(e.what(), "query")) << e.what();
      EXPECT_TRUE(contains(e.what(), "column 2")) << e.what();

      std::vector<float> batch = nndex_test::random_floats(5 * kDims, 27);
      batch[3 * kDims + 1] = v;
      batch[4 * kDims + 0] = v;
      const auto eb = expect_error<nndex::NonFiniteValue>([&] { index->search_batch(batch, 5, 3); }, "batch");
      EXPECT_EQ(eb.row(), 3u);
      EXPECT_TRUE(contains(eb.what(), "query 3")) << eb.what();
    }
  }
}

TEST_F(SearchErrors, ZeroQuery) {
  const std::vector<float> zero(kDims, 0.0f);
  const auto e = expect_error<nndex::ZeroNorm>([&] { cosine_.search(zero, 3); }, "zero query");
  EXPECT_EQ(e.row(), 0u);
  EXPECT_TRUE(contains(e.what(), "query")) << e.what();
  EXPECT_TRUE(contains(e.what(), "zero norm")) << e.what();

  std::vector<float> batch = nndex_test::random_floats(3 * kDims, 28);
  std::fill(batch.begin() + 2 * kDims, batch.end(), 0.0f);
  const auto eb = expect_error<nndex::ZeroNorm>([&] { cosine_.search_batch(batch, 3, 3); }, "zero query in batch");
  EXPECT_EQ(eb.row(), 2u);
  EXPECT_TRUE(contains(eb.what(), "query 2")) << eb.what();

  // Raw dot products: a zero query is fine and scores 0 everywhere, ties broken by index.
  const auto hits = dot_.search(zero, 5);
  ASSERT_EQ(hits.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(hits[i].index, static_cast<std::int64_t>(i));
    EXPECT_EQ(hits[i].similarity, 0.0f);
  }
}

TEST_F(SearchErrors, IndexStillWorksAfterErrors) {
  const std::vector<float> q(data_.begin() + 7 * kDims, data_.begin() + 8 * kDims);
  EXPECT_THROW(cosine_.search(std::vector<float>(kDims, kNan), 1), nndex::NonFiniteValue);
  EXPECT_THROW(cosine_.search(std::vector<float>(kDims + 1, 1.0f), 1), nndex::DimensionMismatch);
  EXPECT_EQ(cosine_.search(q, 1)[0].index, 7);
}

}  // namespace
