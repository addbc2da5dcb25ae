// Compressed storage (bf16 / int8) through nndex::Index: exact float32 similarities for the returned
// rows, recall against float32 search, edge rows, every kernel level giving the same shortlist, and
// the index file round trip.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "kernels/code_kernels.hpp"
#include "kernels/kernels.hpp"
#include "nndex/index.hpp"
#include "storage/code_matrix.hpp"
#include "storage/code_scorer.hpp"
#include "storage/quantize.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::Index;
using nndex::IndexOptions;
using nndex::Storage;
using nndex_test::random_floats;

IndexOptions with(Storage storage, bool normalized = false) {
  IndexOptions o;
  o.storage = storage;
  o.normalized = normalized;
  return o;
}

double recall(const nndex::BatchResult& truth, const nndex::BatchResult& got) {
  std::size_t hit = 0;
  for (std::size_t q = 0; q < truth.queries; ++q) {
    std::set<std::int64_t> want(truth.indices.begin() + q * truth.k, truth.indices.begin() + (q + 1) * truth.k);
    for (std::size_t i = 0; i < got.k; ++i) hit += want.count(got.indices[q * got.k + i]);
  }
  return static_cast<double>(hit) / static_cast<double>(truth.queries * truth.k);
}

struct Shape {
  std::size_t rows, dims;
  bool normalized;
};

class CompressedSearch : public ::testing::TestWithParam<std::tuple<Storage, Shape>> {};

// The similarity of every returned row equals, bit for bit, what a float32 index reports for it, and
// recall@10 against float32 search is high; single queries and batches (AMX's path) alike.
TEST_P(CompressedSearch, ExactSimilaritiesAndHighRecall) {
  const auto [storage, shape] = GetParam();
  const auto data = random_floats(shape.rows * shape.dims, 11);
  const std::size_t nq = 40, k = 10;
  const auto queries = random_floats(nq * shape.dims, 12);
  const Index exact(data, shape.rows, shape.dims, with(Storage::f32, shape.normalized));
  const Index packed(data, shape.rows, shape.dims, with(storage, shape.normalized));
  EXPECT_EQ(packed.storage(), storage);
  const auto truth = exact.search_batch(queries, nq, shape.rows + 5);  // every row's f32 similarity
  auto f32_of = [&](std::size_t q, std::int64_t id) {
    for (std::size_t i = 0; i < truth.k; ++i)
      if (truth.indices[q * truth.k + i] == id) return truth.similarities[q * truth.k + i];
    ADD_FAILURE() << "id " << id << " not in the float32 results";
    return 0.0f;
  };
  const auto batch = packed.search_batch(queries, nq, k);
  for (std::size_t q = 0; q < nq; ++q) {
    const auto one = packed.search(std::span<const float>(queries.data() + q * shape.dims, shape.dims), k);
    ASSERT_EQ(one.size(), std::min(k, shape.rows));
    for (std::size_t i = 0; i < one.size(); ++i) {
      EXPECT_EQ(one[i].index, batch.indices[q * batch.k + i]) << "query " << q << " rank " << i;
      EXPECT_EQ(one[i].similarity, f32_of(q, one[i].index));  // bitwise: float ==
      EXPECT_EQ(batch.similarities[q * batch.k + i], f32_of(q, one[i].index));
      if (i > 0) {
        EXPECT_GE(one[i - 1].similarity, one[i].similarity);
      }
    }
  }
  const auto top = exact.search_batch(queries, nq, k);
  EXPECT_GE(recall(top, batch), storage == Storage::bf16 ? 0.99 : 0.98);
}

INSTANTIATE_TEST_SUITE_P(Storages, CompressedSearch,
                         ::testing::Combine(::testing::Values(Storage::bf16, Storage::int8),
                                            ::testing::Values(Shape{1, 3, false}, Shape{7, 1, true}, Shape{100, 17, false},
                                                              Shape{1000, 33, true}, Shape{3000, 128, false},
                                                              Shape{777, 100, false}, Shape{500, 768, true})));

TEST(CompressedSearch, RecallAtDefaultsOnGaussianData) {
  const std::size_t rows = 20000, dims = 128, nq = 200, k = 10;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  std::vector<float> data(rows * dims), queries(nq * dims);
  for (auto& x : data) x = normal(gen);
  for (auto& x : queries) x = normal(gen);
  const Index exact(data, rows, dims);
  const auto truth = exact.search_batch(queries, nq, k);
  EXPECT_GE(recall(truth, Index(data, rows, dims, with(Storage::bf16)).search_batch(queries, nq, k)), 0.999);
  EXPECT_GE(recall(truth, Index(data, rows, dims, with(Storage::int8)).search_batch(queries, nq, k)), 0.995);
}

TEST(CompressedSearch, OversamplingIsValidatedAndWidensTheShortlist) {
  const std::size_t rows = 2000, dims = 64;
  const auto data = random_floats(rows * dims, 3);
  const auto queries = random_floats(10 * dims, 4);
  const Index packed(data, rows, dims, with(Storage::int8));
  nndex::SearchParams p;
  p.oversampling = 0.5;
  EXPECT_THROW(packed.search_batch(queries, 10, 5, p), nndex::InvalidArgument);
  p.oversampling = std::nan("");
  EXPECT_THROW(packed.search_batch(queries, 10, 5, p), nndex::InvalidArgument);
  // Shortlisting every row is an exact search.
  p.oversampling = static_cast<double>(rows);
  const auto all = packed.search_batch(queries, 10, 5, p);
  const auto truth = Index(data, rows, dims).search_batch(queries, 10, 5);
  EXPECT_EQ(all.indices, truth.indices);
  EXPECT_EQ(all.similarities, truth.similarities);
}

// Rows int8 must not get wrong: constant, tiny, huge (normalized=True keeps them as given) and zero.
TEST(CompressedSearch, EdgeRowsUnderInt8AndBf16) {
  const std::size_t dims = 9;
  std::vector<float> data;
  auto row = [&](float v, float step = 0.0f) {
    for (std::size_t j = 0; j < dims; ++j) data.push_back(v + step * static_cast<float>(j));
  };
  row(0.5f);              // constant
  row(1e-30f, 1e-31f);    // tiny
  row(1e18f, -1e17f);     // huge (its squared norm still fits a float)
  row(0.0f);              // zero
  row(-2.0f, 0.25f);
  row(FLT_MIN, FLT_MIN);  // near the subnormals
  const std::size_t rows = data.size() / dims;
  const std::vector<float> query = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Index exact(data, rows, dims, with(Storage::f32, true));
  const auto truth = exact.search(query, rows);
  for (Storage s : {Storage::bf16, Storage::int8}) {
    const auto got = Index(data, rows, dims, with(s, true)).search(query, rows);
    ASSERT_EQ(got.size(), truth.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].index, truth[i].index) << nndex::storage_name(s) << " rank " << i;
      EXPECT_EQ(got[i].similarity, truth[i].similarity);
    }
  }
}

TEST(Quantize, Int8RoundTripsWithinHalfAStep) {
  const std::size_t dims = 37, rows = 5;
  auto data = random_floats(rows * dims, 9, -3.0f, 3.0f);
  for (std::size_t j = 0; j < dims; ++j) data[2 * dims + j] = 0.75f;  // constant: exact
  for (std::size_t j = 0; j < dims; ++j) data[3 * dims + j] = 0.0f;   // zero: scale 0
  nndex::storage::CodeMatrix m(nndex::kernels::Codec::int8, rows, dims);
  nndex::storage::encode_block(data.data(), rows, 0, m);
  const auto* codes = reinterpret_cast<const std::uint8_t*>(m.block(0));
  for (std::size_t r = 0; r < rows; ++r) {
    const float scale = m.scales()[r];
    for (std::size_t j = 0; j < dims; ++j) {
      const int c = static_cast<int>(codes[(j / 4) * 64 + r * 4 + j % 4]) - 128;
      ASSERT_GE(c, -127);
      const float x = data[r * dims + j];
      EXPECT_NEAR(static_cast<float>(c) * scale, x, 0.5f * scale * 1.0001f + 1e-30f) << r << "," << j;
      if (r == 2) {
        EXPECT_EQ(static_cast<float>(c) * scale, x);
      }
    }
  }
  EXPECT_EQ(m.scales()[3], 0.0f);
}

TEST(Quantize, Bf16CodesAreRoundedToNearestEven) {
  const std::size_t dims = 5;
  const std::vector<float> row = {1.0f, 1.00390625f /* halfway 1 / 1+2^-7 */, -3.14159f, FLT_MAX, 0.0f};
  nndex::storage::CodeMatrix m(nndex::kernels::Codec::bf16, 1, dims);
  nndex::storage::encode_block(row.data(), 1, 0, m);
  const auto* codes = reinterpret_cast<const std::uint16_t*>(m.block(0));
  auto code = [&](std::size_t j) { return codes[(j / 2) * 32 + j % 2]; };
  EXPECT_EQ(code(0), 0x3f80);
  EXPECT_EQ(code(1), 0x3f80);  // ties to even
  EXPECT_EQ(nndex::kernels::from_bf16(code(2)), -3.140625f);
  EXPECT_EQ(code(3), 0x7f7f);  // saturates, never inf
  EXPECT_EQ(code(4), 0x0000);
}

// Every kernel level the CPU has picks the same shortlist (int8: the same scores bit for bit).
TEST(CodeScorer, EveryLevelScoresTheSameInt8Codes) {
  using namespace nndex;
  const std::size_t rows = 300, dims = 100, nq = 33;
  const auto data = random_floats(rows * dims, 21);
  const auto queries = random_floats(nq * dims, 22);
  storage::CodeMatrix m =
      storage::encode_matrix(MatrixView::row_major(data.data(), rows, dims), true, kernels::Codec::int8,
                             kernels::active(), 1, {}, nullptr);
  std::vector<float> reference;
  for (int level = 0; level <= static_cast<int>(kernels::CodeIsa::amx); ++level) {
    const auto* t = kernels::int8_for(static_cast<kernels::CodeIsa>(level));
    if (t == nullptr) continue;
    const storage::CodeScorer scorer(m, nq, nullptr, t);
    const auto encoded = scorer.encode(queries.data(), nq);
    std::vector<float> scores(48 * m.blocks() * 16);
    const std::size_t stride = m.blocks() * 16;
    for (std::size_t g = 0; g < nq; g += scorer.group()) {
      const std::size_t group = std::min(scorer.group(), nq - g);
      scorer.score(0, m.blocks(), encoded.data() + g * scorer.query_bytes(), group, scores.data() + g * stride, stride);
    }
    scores.resize(nq * stride);
    if (reference.empty()) reference = scores;
    else EXPECT_EQ(scores, reference) << t->name;
  }
}

TEST(CompressedSearch, SaveLoadAndMapKeepResults) {
  const std::size_t rows = 1500, dims = 48, nq = 20;
  const auto data = random_floats(rows * dims, 31);
  const auto queries = random_floats(nq * dims, 32);
  for (Storage s : {Storage::bf16, Storage::int8}) {
    const Index built(data, rows, dims, with(s));
    const auto want = built.search_batch(queries, nq, 7);
    const std::string path = ::testing::TempDir() + "/nndex_storage_" + nndex::storage_name(s) + ".nndex";
    built.save(path);
    for (bool mmap : {true, false}) {
      nndex::LoadOptions lo;
      lo.mmap = mmap;
      const Index loaded = Index::load(path, lo);
      EXPECT_EQ(loaded.storage(), s);
      EXPECT_EQ(loaded.isa(), built.isa());
      const auto got = loaded.search_batch(queries, nq, 7);
      EXPECT_EQ(got.indices, want.indices);
      EXPECT_EQ(got.similarities, want.similarities);
      if (mmap) {
        EXPECT_EQ(loaded.memory_bytes(), 0u);
      }
    }
    const Index copy = Index::from_bytes(built.to_bytes());
    EXPECT_EQ(copy.search_batch(queries, nq, 7).indices, want.indices);
    std::remove(path.c_str());
  }
}

TEST(CompressedSearch, BorrowedRowsGiveTheSameResults) {
  const std::size_t rows = 900, dims = 31, nq = 9;
  auto data = std::make_shared<std::vector<float>>(random_floats(rows * dims, 41));
  const auto queries = random_floats(nq * dims, 42);
  const Index owned(*data, rows, dims, with(Storage::int8));
  const Index borrowed(nndex::MatrixView::row_major(data->data(), rows, dims), with(Storage::int8), data);
  EXPECT_LT(borrowed.memory_bytes(), owned.memory_bytes() / 3);
  const auto a = owned.search_batch(queries, nq, 5), b = borrowed.search_batch(queries, nq, 5);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.similarities, b.similarities);
  // Saving a borrowing index writes its rows into the file.
  const Index copy = Index::from_bytes(borrowed.to_bytes());
  EXPECT_EQ(copy.search_batch(queries, nq, 5).similarities, a.similarities);
  EXPECT_THROW(Index(nndex::MatrixView::row_major(data->data(), rows, dims), IndexOptions{}, data),
               nndex::InvalidArgument);
}

}  // namespace

namespace {

// approx=true with compressed storage: compressed lists, exact similarities, recall near float32 IVF
// at the same nprobe, and the file round trip.
TEST(CompressedIvf, ExactSimilaritiesRecallAndRoundTrip) {
  const std::size_t rows = 6000, dims = 96, nq = 50, k = 10;
  std::mt19937 gen(8);
  std::normal_distribution<float> normal;
  std::vector<float> centers(30 * dims), data(rows * dims), queries(nq * dims);
  for (auto& x : centers) x = normal(gen);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < dims; ++j) data[r * dims + j] = centers[(r % 30) * dims + j] + 0.5f * normal(gen);
  for (std::size_t q = 0; q < nq; ++q)
    for (std::size_t j = 0; j < dims; ++j) queries[q * dims + j] = centers[(q % 30) * dims + j] + 0.5f * normal(gen);
  IndexOptions f32;
  f32.approx = true;
  f32.nprobe = 4;
  const Index exact(data, rows, dims);
  const Index ivf32(data, rows, dims, f32);
  const auto truth = exact.search_batch(queries, nq, rows);
  for (Storage s : {Storage::bf16, Storage::int8}) {
    IndexOptions o = f32;
    o.storage = s;
    const Index ivf(data, rows, dims, o);
    ASSERT_TRUE(ivf.uses_ivf());
    EXPECT_EQ(ivf.storage(), s);
    EXPECT_LT(ivf.memory_bytes(), ivf32.memory_bytes() + rows * dims * sizeof(float));
    const auto got = ivf.search_batch(queries, nq, k);
    for (std::size_t q = 0; q < nq; ++q)
      for (std::size_t i = 0; i < k; ++i) {
        const std::int64_t id = got.indices[q * k + i];
        for (std::size_t t = 0; t < truth.k; ++t)
          if (truth.indices[q * truth.k + t] == id) {
            EXPECT_EQ(got.similarities[q * k + i], truth.similarities[q * truth.k + t]);
          }
      }
    EXPECT_GE(recall(ivf32.search_batch(queries, nq, k), got), 0.99) << nndex::storage_name(s);
    const Index loaded = Index::from_bytes(ivf.to_bytes());
    EXPECT_EQ(loaded.storage(), s);
    EXPECT_TRUE(loaded.uses_ivf());
    const auto again = loaded.search_batch(queries, nq, k);
    EXPECT_EQ(again.indices, got.indices);
    EXPECT_EQ(again.similarities, got.similarities);
  }
}

TEST(CompressedSearch, MemoryBytesCountsAnonymousMemoryOnly) {
  const std::size_t rows = 4000, dims = 64;
  const auto data = random_floats(rows * dims, 51);
  for (Storage s : {Storage::f32, Storage::bf16, Storage::int8}) {
    const Index built(data, rows, dims, with(s));
    const std::size_t codes = s == Storage::f32 ? rows * dims * 4 : s == Storage::bf16 ? rows * dims * 2 : rows * dims;
    const std::size_t f32_rows = s == Storage::f32 ? 0 : rows * dims * 4;
    EXPECT_GE(built.memory_bytes(), codes + f32_rows);
    EXPECT_LT(built.memory_bytes(), (codes + f32_rows) * 11 / 10 + 8192);
    const std::string path = ::testing::TempDir() + "/nndex_memory_" + nndex::storage_name(s) + ".nndex";
    built.save(path);
    nndex::LoadOptions lo;
    lo.mmap = true;
    EXPECT_LT(Index::load(path, lo).memory_bytes(), 4096u) << "a mapped index lives in the page cache";
    lo.mmap = false;
    EXPECT_GE(Index::load(path, lo).memory_bytes(), codes + f32_rows) << "a read index holds the file";
    std::remove(path.c_str());
  }
}

}  // namespace

namespace {

// RowFile: a borrowing index re-reads its rows from the file under the view; misuse is refused.
TEST(CompressedSearch, RowFileReadsTheSameRowsAndRefusesMisuse) {
  const std::size_t rows = 700, dims = 24, nq = 8, offset = 128;
  auto data = std::make_shared<std::vector<float>>(random_floats(rows * dims, 61));
  const auto queries = random_floats(nq * dims, 62);
  const std::string path = ::testing::TempDir() + "/nndex_rowfile.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::vector<char> header(offset, 'x');
    std::fwrite(header.data(), 1, header.size(), f);
    std::fwrite(data->data(), sizeof(float), data->size(), f);
    std::fclose(f);
  }
  const auto view = nndex::MatrixView::row_major(data->data(), rows, dims);
  for (bool approx : {false, true}) {
    IndexOptions o = with(Storage::int8);
    o.approx = approx;
    o.nlist = approx ? 10 : 0;
    const Index owned(*data, rows, dims, o);
    const Index from_file(view, o, data, {}, nndex::RowFile{path, offset});
    const auto a = owned.search_batch(queries, nq, 5), b = from_file.search_batch(queries, nq, 5);
    EXPECT_EQ(a.indices, b.indices);
    EXPECT_EQ(a.similarities, b.similarities);
  }
  const IndexOptions o = with(Storage::int8);
  EXPECT_THROW(Index(view, o, data, {}, nndex::RowFile{path, offset + 4}), nndex::InvalidArgument) << "too short";
  EXPECT_THROW(Index(view, o, data, {}, nndex::RowFile{path + ".missing", 0}), nndex::IoError);
  EXPECT_THROW(Index(view, o, nullptr, {}, nndex::RowFile{path, offset}), nndex::InvalidArgument) << "no borrow";
  nndex::MatrixView strided = view;
  strided.rows = rows / 2;
  strided.row_stride = static_cast<std::ptrdiff_t>(2 * dims);
  EXPECT_THROW(Index(strided, o, data, {}, nndex::RowFile{path, offset}), nndex::InvalidArgument) << "not C order";
  std::remove(path.c_str());
}

TEST(CompressedSearch, Int8RefusesDimsItsSumsCannotHold) {
  const std::vector<float> wide(65537, 0.5f);
  EXPECT_THROW(Index(wide, 1, wide.size(), with(Storage::int8)), nndex::InvalidArgument);
  EXPECT_NO_THROW(Index(wide, 1, wide.size(), with(Storage::bf16)));
}

}  // namespace
