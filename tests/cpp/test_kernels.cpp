// Kernel tables: every ISA level this CPU can run is checked against the scalar table (bit-identical
// scores) and against a float64 reference computed here from the documented tile layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::kernels::Isa;
using nndex::kernels::kBlockRows;
using nndex::kernels::kMaxQueryGroup;
using nndex::kernels::KernelTable;
using nndex_test::AlignedFloats;

constexpr Isa kAllIsas[] = {Isa::scalar, Isa::neon, Isa::avx2, Isa::avx512};
constexpr std::size_t kDims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 100, 127, 768, 1000, 1536};
constexpr std::size_t kBlockCounts[] = {1, 2, 3, 4, 5, 8, 9, 13};

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (nndex::kernels::for_isa(isa) != nullptr) out.push_back(isa);
  return out;
}

std::string isa_str(Isa isa) { return std::string(nndex::kernels::isa_name(isa)); }

const KernelTable& table(Isa isa) { return *nndex::kernels::for_isa(isa); }
const KernelTable& scalar() { return *nndex::kernels::for_isa(Isa::scalar); }

// Tiles for nblocks * 16 rows from a row-major rows x dims matrix, in the documented layout: block b holds
// dims x 16 floats, element [j * 16 + r] = row (b * 16 + r), column j.
AlignedFloats make_tiles(const std::vector<float>& rowmajor, std::size_t nblocks, std::size_t dims) {
  AlignedFloats tiles(nblocks * kBlockRows * dims);
  for (std::size_t b = 0; b < nblocks; ++b)
    for (std::size_t r = 0; r < kBlockRows; ++r)
      for (std::size_t j = 0; j < dims; ++j)
        tiles[b * dims * kBlockRows + j * kBlockRows + r] = rowmajor[(b * kBlockRows + r) * dims + j];
  return tiles;
}

// ---------------------------------------------------------------------------------------------------
// Table lookup.

TEST(KernelTables, ScalarAlwaysAvailableAndTablesMatchTheirLevel) {
  ASSERT_NE(nndex::kernels::for_isa(Isa::scalar), nullptr);
  for (Isa isa : available_isas()) {
    const KernelTable& kt = table(isa);
    EXPECT_EQ(kt.isa, isa);
    EXPECT_EQ(std::string(kt.name), isa_str(isa));
    EXPECT_NE(kt.score_tiles, nullptr);
    EXPECT_NE(kt.select_above, nullptr);
    EXPECT_NE(kt.dot, nullptr);
  }
}

TEST(KernelTables, ActiveIsAnAvailableLevel) {
  const KernelTable& active = nndex::kernels::active();
  const KernelTable* same = nndex::kernels::for_isa(active.isa);
  ASSERT_NE(same, nullptr);
  EXPECT_EQ(same, &active);
  // Without NNDEX_ISA the best level is chosen.
  if (std::getenv("NNDEX_ISA") == nullptr) {
    EXPECT_EQ(active.isa, available_isas().back());
  }
}

TEST(KernelTables, IsaNames) {
  EXPECT_EQ(nndex::kernels::isa_name(Isa::scalar), "scalar");
  EXPECT_EQ(nndex::kernels::isa_name(Isa::neon), "neon");
  EXPECT_EQ(nndex::kernels::isa_name(Isa::avx2), "avx2");
  EXPECT_EQ(nndex::kernels::isa_name(Isa::avx512), "avx512");
}

// ---------------------------------------------------------------------------------------------------
// score_tiles, parameterised over (ISA, dims).

struct ScoreParam {
  Isa isa;
  std::size_t dims;
};

std::vector<ScoreParam> score_params() {
  std::vector<ScoreParam> out;
  for (Isa isa : available_isas())
    for (std::size_t d : kDims) out.push_back({isa, d});
  return out;
}

class ScoreTiles : public ::testing::TestWithParam<ScoreParam> {
 protected:
  // Scores `queries` (nq x dims) against `rowmajor` with both the tested table and scalar, with a padded
  // score stride, and checks bit-identity plus that the padding is left alone. Returns the scores.
  std::vector<float> score_and_compare(const std::vector<float>& rowmajor, std::size_t nblocks,
                                       const std::vector<float>& queries, std::size_t nq, std::size_t pad) {
    const std::size_t dims = GetParam().dims;
    const AlignedFloats tiles = make_tiles(rowmajor, nblocks, dims);
    const std::size_t stride = nblocks * kBlockRows + pad;
    const float sentinel = -12345.5f;
    std::vector<float> got(nq * stride, sentinel);
    std::vector<float> want(nq * stride, sentinel);
    table(GetParam().isa).score_tiles(tiles.data(), nblocks, dims, queries.data(), nq, got.data(), stride);
    scalar().score_tiles(tiles.data(), nblocks, dims, queries.data(), nq, want.data(), stride);
    for (std::size_t q = 0; q < nq; ++q) {
      for (std::size_t i = 0; i < nblocks * kBlockRows; ++i) {
        const float g = got[q * stride + i];
        const float w = want[q * stride + i];
        std::uint32_t gb, wb;
        std::memcpy(&gb, &g, 4);
        std::memcpy(&wb, &w, 4);
        if (gb != wb) {
          ADD_FAILURE() << "not bit-identical to scalar: nblocks=" << nblocks << " nq=" << nq << " q=" << q
                        << " row=" << i << " got " << g << " scalar " << w;
          return got;
        }
      }
      for (std::size_t i = nblocks * kBlockRows; i < stride; ++i)
        EXPECT_EQ(got[q * stride + i], sentinel) << "wrote past nblocks*16 into the stride padding";
    }
    return got;
  }
};

TEST_P(ScoreTiles, BitIdenticalToScalarAndCloseToFloat64) {
  const std::size_t dims = GetParam().dims;
  std::uint32_t seed = 1000 + static_cast<std::uint32_t>(dims);
  for (std::size_t nblocks : kBlockCounts) {
    const std::size_t rows = nblocks * kBlockRows;
    const std::vector<float> data = nndex_test::random_floats(rows * dims, seed++);
    for (std::size_t nq = 1; nq <= kMaxQueryGroup; ++nq) {
      const std::vector<float> queries = nndex_test::random_floats(nq * dims, seed++);
      const std::size_t pad = (nq % 2 == 0) ? 0 : 7;
      const std::vector<float> got = score_and_compare(data, nblocks, queries, nq, pad);
      if (HasFailure()) return;
      const std::size_t stride = rows + pad;
      for (std::size_t q = 0; q < nq; ++q) {
        for (std::size_t r = 0; r < rows; ++r) {
          double ref = 0.0, scale = 0.0;
          for (std::size_t j = 0; j < dims; ++j) {
            const double p = static_cast<double>(data[r * dims + j]) * queries[q * dims + j];
            ref += p;
            scale += std::fabs(p);
          }
          const double tol = 1e-4 * std::max(scale, 1e-30);
          ASSERT_NEAR(got[q * stride + r], ref, tol) << "nblocks=" << nblocks << " nq=" << nq << " q=" << q
                                                      << " row=" << r;
        }
      }
    }
  }
}

TEST_P(ScoreTiles, IntegerInputsAreExact) {
  const std::size_t dims = GetParam().dims;
  std::uint32_t seed = 5000 + static_cast<std::uint32_t>(dims);
  // |products| <= 64 and dims <= 1536: every partial sum is an integer below 2^24, so float is exact.
  for (std::size_t nblocks : kBlockCounts) {
    const std::size_t rows = nblocks * kBlockRows;
    const std::vector<float> data = nndex_test::random_ints(rows * dims, seed++, -8, 8);
    for (std::size_t nq = 1; nq <= kMaxQueryGroup; ++nq) {
      const std::vector<float> queries = nndex_test::random_ints(nq * dims, seed++, -8, 8);
      const std::vector<float> got = score_and_compare(data, nblocks, queries, nq, 0);
      if (HasFailure()) return;
      for (std::size_t q = 0; q < nq; ++q) {
        for (std::size_t r = 0; r < rows; ++r) {
          double ref = 0.0;
          for (std::size_t j = 0; j < dims; ++j) ref += static_cast<double>(data[r * dims + j]) * queries[q * dims + j];
          ASSERT_EQ(static_cast<double>(got[q * rows + r]), ref)
              << "nblocks=" << nblocks << " nq=" << nq << " q=" << q << " row=" << r;
        }
      }
    }
  }
}

TEST_P(ScoreTiles, ZeroPaddedRowsScoreZero) {
  // The index pads its last block with zero rows; they must score exactly +0 against any query.
  const std::size_t dims = GetParam().dims;
  std::vector<float> data(2 * kBlockRows * dims, 0.0f);
  const std::vector<float> filled = nndex_test::random_floats(5 * dims, 77);
  std::copy(filled.begin(), filled.end(), data.begin());
  const std::vector<float> queries = nndex_test::random_floats(3 * dims, 78);
  const std::vector<float> got = score_and_compare(data, 2, queries, 3, 0);
  for (std::size_t q = 0; q < 3; ++q)
    for (std::size_t r = 5; r < 2 * kBlockRows; ++r) {
      EXPECT_EQ(got[q * 2 * kBlockRows + r], 0.0f);
      EXPECT_FALSE(std::signbit(got[q * 2 * kBlockRows + r])) << "padding row " << r << " scored -0";
    }
}

TEST_P(ScoreTiles, StreamingKernelIsBitIdenticalToScalar) {
  // The prefetching single-query kernel runs only for matrices beyond 3/4 of the last-level cache,
  // which some machines never reach in the suite: it is checked here directly at every level.
  const std::size_t dims = GetParam().dims;
  std::uint32_t seed = 9000 + static_cast<std::uint32_t>(dims);
  for (std::size_t nblocks : kBlockCounts) {
    const std::vector<float> data = nndex_test::random_floats(nblocks * kBlockRows * dims, seed++);
    const AlignedFloats tiles = make_tiles(data, nblocks, dims);
    const std::vector<float> query = nndex_test::random_floats(dims, seed++);
    const float sentinel = -12345.5f;
    std::vector<float> got(nblocks * kBlockRows + 1, sentinel), want(nblocks * kBlockRows, sentinel);
    table(GetParam().isa).score_tiles_streaming(tiles.data(), nblocks, dims, query.data(), got.data());
    scalar().score_tiles(tiles.data(), nblocks, dims, query.data(), 1, want.data(), nblocks * kBlockRows);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << "nblocks=" << nblocks;
    EXPECT_EQ(got.back(), sentinel) << "wrote past nblocks*16";
  }
}

std::string score_param_name(const ::testing::TestParamInfo<ScoreParam>& info) {
  return isa_str(info.param.isa) + "_d" + std::to_string(info.param.dims);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ScoreTiles, ::testing::ValuesIn(score_params()), score_param_name);

// ---------------------------------------------------------------------------------------------------
// select_above, parameterised over ISA.

class SelectAbove : public ::testing::TestWithParam<Isa> {
 protected:
  static std::vector<std::uint32_t> plain(const std::vector<float>& s, float threshold) {
    std::vector<std::uint32_t> out;
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] > threshold) out.push_back(static_cast<std::uint32_t>(i));
    return out;
  }
  void check(const std::vector<float>& s, float threshold, const std::string& what) {
    // The documented slack, plus one marker slot that must never be written.
    std::vector<std::uint32_t> positions(s.size() + nndex::kernels::kSelectSlack + 1, 0xDEADBEEFu);
    const std::size_t count = table(GetParam()).select_above(s.data(), s.size(), threshold, positions.data());
    const std::vector<std::uint32_t> want = plain(s, threshold);
    ASSERT_EQ(count, want.size()) << what << " n=" << s.size() << " threshold=" << threshold;
    EXPECT_EQ(positions.back(), 0xDEADBEEFu) << what << ": wrote past the documented slack";
    positions.resize(count);
    EXPECT_EQ(positions, want) << what << " n=" << s.size() << " threshold=" << threshold;
  }
};

TEST_P(SelectAbove, MatchesPlainLoop) {
  const float inf = std::numeric_limits<float>::infinity();
  std::uint32_t seed = 31;
  for (std::size_t n : {std::size_t{16}, std::size_t{32}, std::size_t{1024}}) {
    const std::vector<float> s = nndex_test::random_floats(n, seed++);
    const float lo = *std::min_element(s.begin(), s.end());
    const float hi = *std::max_element(s.begin(), s.end());
    check(s, -inf, "random");
    check(s, inf, "random");
    check(s, lo, "random, threshold = min");  // strictly greater: the minimum itself is excluded
    check(s, hi, "random, threshold = max");  // nothing
    check(s, std::nextafter(hi, -inf), "random, just below max");
    check(s, s[n / 2], "random, threshold = a present value");
    for (float t : nndex_test::random_floats(8, seed++, -1.2f, 1.2f)) check(s, t, "random threshold");

    const std::vector<float> equal(n, 0.25f);
    check(equal, 0.25f, "all equal, threshold equal");
    check(equal, std::nextafter(0.25f, -inf), "all equal, threshold just below");
    check(equal, -inf, "all equal, -inf");
    check(equal, inf, "all equal, +inf");

    // Infinite scores, and scores equal to an infinite threshold.
    std::vector<float> extremes(n, 0.0f);
    for (std::size_t i = 0; i < n; i += 3) extremes[i] = -inf;
    for (std::size_t i = 1; i < n; i += 5) extremes[i] = inf;
    check(extremes, -inf, "infinite scores");
    check(extremes, inf, "infinite scores");
    check(extremes, 0.0f, "infinite scores");
    check(extremes, -0.0f, "infinite scores, -0 threshold");

    // A single survivor in the last slot and in the first.
    std::vector<float> one(n, -1.0f);
    one[n - 1] = 1.0f;
    check(one, 0.0f, "last only");
    one[n - 1] = -1.0f;
    one[0] = 1.0f;
    check(one, 0.0f, "first only");
  }
}

TEST_P(SelectAbove, NanThresholdSelectsNothing) {
  const std::vector<float> s = nndex_test::random_floats(64, 5);
  std::vector<std::uint32_t> positions(64 + nndex::kernels::kSelectSlack);
  EXPECT_EQ(table(GetParam()).select_above(s.data(), s.size(), std::numeric_limits<float>::quiet_NaN(),
                                           positions.data()),
            0u);
}

// ---------------------------------------------------------------------------------------------------
// dot, parameterised over ISA.

class Dot : public ::testing::TestWithParam<Isa> {};

TEST_P(Dot, CloseToFloat64) {
  std::vector<std::size_t> sizes(std::begin(kDims), std::end(kDims));
  sizes.insert(sizes.begin(), 0);
  std::uint32_t seed = 900;
  for (std::size_t n : sizes) {
    // Separate, unaligned-friendly buffers: dot takes plain contiguous vectors.
    const std::vector<float> a = nndex_test::random_floats(n + 1, seed++);
    const std::vector<float> b = nndex_test::random_floats(n + 1, seed++);
    const float got = table(GetParam()).dot(a.data() + 1, b.data() + 1, n);  // +1: deliberately not 64-aligned
    double ref = 0.0, scale = 0.0;
    for (std::size_t i = 1; i <= n; ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      scale += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    if (n == 0) {
      EXPECT_EQ(got, 0.0f);
      continue;
    }
    const double tol = 2.0 * static_cast<double>(n) * std::numeric_limits<float>::epsilon() * scale;
    EXPECT_NEAR(got, ref, tol) << "n=" << n;
  }
}

TEST_P(Dot, SumOfSquaresOfIntegersIsExact) {
  for (std::size_t n : kDims) {
    const std::vector<float> a = nndex_test::random_ints(n, 40 + static_cast<std::uint32_t>(n), -20, 20);
    double ref = 0.0;
    for (float x : a) ref += static_cast<double>(x) * x;
    EXPECT_EQ(static_cast<double>(table(GetParam()).dot(a.data(), a.data(), n)), ref) << "n=" << n;
  }
}

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) { return isa_str(info.param); }

INSTANTIATE_TEST_SUITE_P(AllIsas, SelectAbove, ::testing::ValuesIn(available_isas()), isa_param_name);
INSTANTIATE_TEST_SUITE_P(AllIsas, Dot, ::testing::ValuesIn(available_isas()), isa_param_name);

// ---------------------------------------------------------------------------------------------------
// gather_block, parameterised over ISA: the documented block layout from scattered, unaligned rows,
// for every row count (zero rows past it) and the awkward dims.

class GatherBlock : public ::testing::TestWithParam<Isa> {};

TEST_P(GatherBlock, TransposesScatteredRowsLikeTheLayout) {
  std::uint32_t seed = 1300;
  for (std::size_t dims : kDims) {
    // Rows in separate buffers, each one float past an alignment boundary.
    std::vector<std::vector<float>> storage;
    std::vector<const float*> rows;
    for (std::size_t r = 0; r < kBlockRows; ++r) {
      storage.push_back(nndex_test::random_floats(dims + 1, seed++));
      rows.push_back(storage.back().data() + 1);
    }
    for (std::size_t count : {std::size_t{1}, std::size_t{5}, std::size_t{15}, std::size_t{16}}) {
      AlignedFloats block(dims * kBlockRows);
      for (std::size_t i = 0; i < block.size(); ++i) block[i] = std::nanf("");  // every slot must be written
      table(GetParam()).gather_block(rows.data(), count, dims, block.data());
      for (std::size_t j = 0; j < dims; ++j)
        for (std::size_t r = 0; r < kBlockRows; ++r) {
          const float want = r < count ? rows[r][j] : 0.0f;
          ASSERT_EQ(block[j * kBlockRows + r], want) << "dims=" << dims << " count=" << count << " j=" << j << " r=" << r;
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, GatherBlock, ::testing::ValuesIn(available_isas()), isa_param_name);

}  // namespace
