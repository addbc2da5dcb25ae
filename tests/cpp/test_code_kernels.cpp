// Compressed-row kernels (kernels/code_kernels.hpp): every level this build and CPU can run, `few`
// and `many`, against the scalar reference on blocks built here in the documented layout; int8 bit
// for bit (exact integer sums), bf16 within float32 rounding of the sum. Also the bf16 conversion
// and which level dispatch picks. Portable: the same file runs on the NEON levels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/code_kernels.hpp"

namespace {

namespace k = nndex::kernels;
using k::CodeIsa;
using k::kBlockRows;
using k::kCodeLineBytes;

constexpr CodeIsa kAllLevels[] = {CodeIsa::scalar,    CodeIsa::neon,   CodeIsa::neon_dot,   CodeIsa::avx2,
                                  CodeIsa::avx2_vnni, CodeIsa::avx512, CodeIsa::avx512_dot, CodeIsa::amx};
constexpr std::size_t kDims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 64, 100, 127, 128, 768, 1000, 1536};
constexpr std::size_t kBlockCounts[] = {1, 3, 9};
constexpr std::size_t kMaxNq = 32;  // the largest many_group of any level (AMX)

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float from_bits(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// A 64-byte aligned byte buffer (blocks, queries), zero-filled.
struct Bytes {
  explicit Bytes(std::size_t n) : data(round_up(n, 64) / 8 + 8) {}
  std::uint8_t* get() { return reinterpret_cast<std::uint8_t*>(data.data()); }
  const std::uint8_t* get() const { return reinterpret_cast<const std::uint8_t*>(data.data()); }
  std::vector<std::uint64_t> data;  // uint64 keeps 8-byte alignment; kernels need none
};

// The problem for one (codec, dims, nblocks): blocks in the layout, kCodeSlackBytes of random finite
// bytes after the last block, kMaxNq queries (stride a multiple of the codec's alignment plus one
// more unit, so the stride differs from the padded dims), offsets and row scales.
struct Problem {
  std::size_t dims, nblocks, lines, stride, elem;
  Bytes blocks{0}, queries{0};
  std::vector<std::int32_t> offsets;
  std::vector<float> scales;
  std::vector<double> abs_sums;  // sum |row * query| per (q, row): the bf16 tolerance

  Problem(k::Codec codec, std::size_t d, std::size_t nb, std::uint32_t seed) : dims(d), nblocks(nb) {
    const bool bf16 = codec == k::Codec::bf16;
    elem = bf16 ? 2 : 1;
    const std::size_t per_line = bf16 ? k::kBf16DimsPerLine : k::kInt8DimsPerLine;
    const std::size_t align = bf16 ? k::kBf16QueryAlign : k::kInt8QueryAlign;
    lines = (dims + per_line - 1) / per_line;
    stride = round_up(dims, align) + ((seed & 1) ? align : 0);
    const std::size_t rows = nblocks * kBlockRows;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    auto code = [&](bool live) -> std::uint16_t {
      if (bf16) return live ? k::to_bf16(unit(rng)) : 0;
      return static_cast<std::uint16_t>(live ? byte(rng) : 128);  // stored = code + 128
    };
    const std::size_t block_bytes = lines * kCodeLineBytes;
    blocks = Bytes(nblocks * block_bytes + k::kCodeSlackBytes);
    std::uint8_t* bp = blocks.get();
    for (std::size_t b = 0; b < nblocks; ++b)
      for (std::size_t l = 0; l < lines; ++l)
        for (std::size_t r = 0; r < kBlockRows; ++r)
          for (std::size_t i = 0; i < per_line; ++i) {
            const std::uint16_t c = code(l * per_line + i < dims);
            std::memcpy(bp + b * block_bytes + l * kCodeLineBytes + r * 4 + i * elem, &c, elem);
          }
    // Slack: finite codes (bf16 of values in [-1, 1]); the kernels may read them against zeros.
    for (std::size_t i = 0; i < k::kCodeSlackBytes / 2; ++i) {
      const std::uint16_t c = k::to_bf16(unit(rng));
      std::memcpy(bp + nblocks * block_bytes + 2 * i, &c, 2);
    }
    queries = Bytes(kMaxNq * stride * elem);
    offsets.assign(kMaxNq, 0);
    for (std::size_t q = 0; q < kMaxNq; ++q)
      for (std::size_t j = 0; j < dims; ++j) {
        if (bf16) {
          const std::uint16_t v = k::to_bf16(unit(rng));
          std::memcpy(queries.get() + (q * stride + j) * 2, &v, 2);
        } else {
          const auto v = static_cast<std::int8_t>(byte(rng) - 128);  // -128..127
          queries.get()[q * stride + j] = static_cast<std::uint8_t>(v);
          offsets[q] += 128 * v;
        }
      }
    scales.resize(rows);
    for (float& s : scales) s = 0.5f + 0.5f * std::abs(unit(rng));
    abs_sums.assign(kMaxNq * rows, 0.0);
    if (bf16)
      for (std::size_t q = 0; q < kMaxNq; ++q)
        for (std::size_t row = 0; row < rows; ++row)
          for (std::size_t j = 0; j < dims; ++j)
            abs_sums[q * rows + row] += std::abs(static_cast<double>(k::from_bf16(code_at(row, j))) *
                                                 k::from_bf16(query_bf16(q)[j]));
  }
  std::uint16_t code_at(std::size_t row, std::size_t j) const {
    std::uint16_t c;
    const std::size_t b = row / kBlockRows, r = row % kBlockRows;
    std::memcpy(&c, blocks.get() + b * lines * kCodeLineBytes + (j / 2) * kCodeLineBytes + r * 4 +
                        (j % 2) * 2, 2);
    return c;
  }
  const std::uint16_t* query_bf16(std::size_t q) const {
    return reinterpret_cast<const std::uint16_t*>(queries.get()) + q * stride;
  }
  // The first nq queries in a buffer of round_up(nq, 16) rows, zero past nq (the header's contract).
  Bytes queries_for(std::size_t nq) const {
    Bytes out(round_up(nq, k::kScoreRowAlign) * stride * elem);
    std::memcpy(out.get(), queries.get(), nq * stride * elem);
    return out;
  }
};

using Bf16Fn = k::ScoreBf16Fn;
using Int8Fn = k::ScoreInt8Fn;

// Scores of the first nq queries through `fn` (nq rows of nblocks * 16 + 16 floats; the buffer has
// round_up(nq, 16) rows, pre-filled with a sentinel).
std::vector<float> run_bf16(Bf16Fn fn, const Problem& p, std::size_t nq, std::size_t& stride_out) {
  const std::size_t score_stride = p.nblocks * kBlockRows + kBlockRows;
  std::vector<float> scores(round_up(nq, k::kScoreRowAlign) * score_stride, -12345.0f);
  Bytes q = p.queries_for(nq);
  fn(reinterpret_cast<const std::uint16_t*>(p.blocks.get()), p.nblocks, p.lines,
     reinterpret_cast<const std::uint16_t*>(q.get()), p.stride, nq, scores.data(), score_stride);
  stride_out = score_stride;
  return scores;
}

std::vector<float> run_int8(Int8Fn fn, const Problem& p, std::size_t nq, std::size_t& stride_out) {
  const std::size_t score_stride = p.nblocks * kBlockRows + kBlockRows;
  std::vector<float> scores(round_up(nq, k::kScoreRowAlign) * score_stride, -12345.0f);
  Bytes q = p.queries_for(nq);
  fn(p.blocks.get(), p.scales.data(), p.nblocks, p.lines, reinterpret_cast<const std::int8_t*>(q.get()),
     p.offsets.data(), p.stride, nq, scores.data(), score_stride);
  stride_out = score_stride;
  return scores;
}

// Reference scores for all kMaxNq queries, from the scalar table in groups of its `few` size.
template <class Runner, class Fn>
std::vector<float> reference(Runner run, Fn fn, const Problem& p) {
  const std::size_t rows = p.nblocks * kBlockRows;
  std::vector<float> out(kMaxNq * rows);
  std::size_t stride = 0;
  const std::vector<float> all = run(fn, p, kMaxNq, stride);  // scalar loops take any nq
  for (std::size_t q = 0; q < kMaxNq; ++q)
    for (std::size_t r = 0; r < rows; ++r) out[q * rows + r] = all[q * stride + r];
  return out;
}

std::vector<CodeIsa> levels_with(bool bf16) {
  std::vector<CodeIsa> out;
  for (CodeIsa level : kAllLevels)
    if (bf16 ? k::bf16_for(level) != nullptr : k::int8_for(level) != nullptr) out.push_back(level);
  return out;
}

std::size_t checked_nq(std::size_t group) { return std::min(group, kMaxNq); }

TEST(CodeKernels, Bf16EveryLevelMatchesScalar) {
  std::uint32_t seed = 1;
  for (std::size_t dims : kDims)
    for (std::size_t nblocks : kBlockCounts) {
      const Problem p(k::Codec::bf16, dims, nblocks, seed++);
      const std::vector<float> ref = reference(run_bf16, k::bf16_scalar_table().few, p);
      const std::size_t rows = nblocks * kBlockRows;
      for (CodeIsa level : levels_with(true)) {
        const k::Bf16Kernels& t = *k::bf16_for(level);
        for (int which = 0; which < 2; ++which) {
          const std::size_t max_nq = which == 0 ? k::kMaxQueryGroup : checked_nq(t.many_group);
          for (std::size_t nq = 1; nq <= max_nq; ++nq) {
            std::size_t stride = 0;
            const std::vector<float> got = run_bf16(which == 0 ? t.few : t.many, p, nq, stride);
            for (std::size_t q = 0; q < nq; ++q)
              for (std::size_t r = 0; r < rows; ++r) {
                const double tol = 1e-6 * p.abs_sums[q * rows + r] + 1e-30;
                ASSERT_NEAR(got[q * stride + r], ref[q * rows + r], tol)
                    << t.name << (which == 0 ? " few" : " many") << " dims=" << dims << " blocks=" << nblocks
                    << " nq=" << nq << " q=" << q << " row=" << r;
              }
          }
        }
      }
    }
}

TEST(CodeKernels, Int8EveryLevelMatchesScalarBitForBit) {
  std::uint32_t seed = 1000;
  for (std::size_t dims : kDims)
    for (std::size_t nblocks : kBlockCounts) {
      const Problem p(k::Codec::int8, dims, nblocks, seed++);
      const std::vector<float> ref = reference(run_int8, k::int8_scalar_table().few, p);
      const std::size_t rows = nblocks * kBlockRows;
      for (CodeIsa level : levels_with(false)) {
        const k::Int8Kernels& t = *k::int8_for(level);
        for (int which = 0; which < 2; ++which) {
          const std::size_t max_nq = which == 0 ? k::kMaxQueryGroup : checked_nq(t.many_group);
          for (std::size_t nq = 1; nq <= max_nq; ++nq) {
            std::size_t stride = 0;
            const std::vector<float> got = run_int8(which == 0 ? t.few : t.many, p, nq, stride);
            for (std::size_t q = 0; q < nq; ++q)
              for (std::size_t r = 0; r < rows; ++r)
                ASSERT_EQ(bits(got[q * stride + r]), bits(ref[q * rows + r]))
                    << t.name << (which == 0 ? " few" : " many") << " dims=" << dims << " blocks=" << nblocks
                    << " nq=" << nq << " q=" << q << " row=" << r << ": " << got[q * stride + r] << " vs "
                    << ref[q * rows + r];
          }
        }
      }
    }
}

// Extreme codes: every stored byte 0 or 255 against queries of -128 / 127 (the sums a saturating
// 16-bit path would get wrong), on a long row.
TEST(CodeKernels, Int8ExtremesStayExact) {
  Problem p(k::Codec::int8, 1536, 3, 7);
  std::mt19937 rng(3);
  const std::size_t block_bytes = p.lines * kCodeLineBytes;
  for (std::size_t i = 0; i < p.nblocks * block_bytes; ++i) p.blocks.get()[i] = (rng() & 1) ? 255 : 0;
  for (std::size_t q = 0; q < kMaxNq; ++q) {
    p.offsets[q] = 0;
    for (std::size_t j = 0; j < p.dims; ++j) {
      const std::int8_t v = (q % 3 == 0) ? -128 : (q % 3 == 1 ? 127 : ((rng() & 1) ? -128 : 127));
      p.queries.get()[q * p.stride + j] = static_cast<std::uint8_t>(v);
      p.offsets[q] += 128 * v;
    }
  }
  const std::vector<float> ref = reference(run_int8, k::int8_scalar_table().few, p);
  const std::size_t rows = p.nblocks * kBlockRows;
  for (CodeIsa level : levels_with(false)) {
    const k::Int8Kernels& t = *k::int8_for(level);
    for (Int8Fn fn : {t.few, t.many}) {
      const std::size_t nq = fn == t.few ? k::kMaxQueryGroup : checked_nq(t.many_group);
      std::size_t stride = 0;
      const std::vector<float> got = run_int8(fn, p, nq, stride);
      for (std::size_t q = 0; q < nq; ++q)
        for (std::size_t r = 0; r < rows; ++r)
          ASSERT_EQ(bits(got[q * stride + r]), bits(ref[q * rows + r])) << t.name << " q=" << q << " row=" << r;
    }
  }
}

TEST(CodeKernels, TablesDescribeTheirLevel) {
  for (CodeIsa level : levels_with(true)) {
    const k::Bf16Kernels& t = *k::bf16_for(level);
    EXPECT_EQ(t.level, level);
    EXPECT_NE(t.few, nullptr);
    EXPECT_NE(t.many, nullptr);
    EXPECT_GE(t.many_group, k::kMaxQueryGroup);
  }
  for (CodeIsa level : levels_with(false)) {
    const k::Int8Kernels& t = *k::int8_for(level);
    EXPECT_EQ(t.level, level);
    EXPECT_NE(t.few, nullptr);
    EXPECT_NE(t.many, nullptr);
    EXPECT_GE(t.many_group, k::kMaxQueryGroup);
  }
}

// Without NNDEX_ISA the best level this CPU runs is active (AMX where the OS grants the tiles).
TEST(CodeKernels, ActiveIsTheBestSupportedLevel) {
  const k::Bf16Kernels& bf16 = k::active_bf16();
  const k::Int8Kernels& int8 = k::active_int8();
  std::printf("[ info ] active code kernels: bf16 %s (%s), int8 %s (%s)\n", bf16.name, k::code_isa_name(bf16.level),
              int8.name, k::code_isa_name(int8.level));
  EXPECT_EQ(k::bf16_for(bf16.level), &bf16);
  EXPECT_EQ(k::int8_for(int8.level), &int8);
  if (std::getenv("NNDEX_ISA") == nullptr) {
    EXPECT_EQ(bf16.level, levels_with(true).back());
    EXPECT_EQ(int8.level, levels_with(false).back());
  }
}

// The AMX tiles against the AVX-512 dot kernels they fall back to for few queries.
TEST(CodeKernels, AmxManyMatchesDotFew) {
  const k::Bf16Kernels* amx16 = k::bf16_for(CodeIsa::amx);
  const k::Int8Kernels* amx8 = k::int8_for(CodeIsa::amx);
  if (amx16 == nullptr || amx8 == nullptr) GTEST_SKIP() << "AMX not available in this build / CPU / OS";
  const k::Bf16Kernels& dot16 = *k::bf16_for(CodeIsa::avx512_dot);
  const k::Int8Kernels& dot8 = *k::int8_for(CodeIsa::avx512_dot);
  for (std::size_t dims : {100u, 768u}) {
    const Problem p16(k::Codec::bf16, dims, 9, 77), p8(k::Codec::int8, dims, 9, 78);
    std::size_t s_amx = 0, s_dot = 0;
    const auto a16 = run_bf16(amx16->many, p16, kMaxNq, s_amx);
    const auto a8 = run_int8(amx8->many, p8, kMaxNq, s_amx);
    const std::size_t rows = 9 * kBlockRows;
    for (std::size_t q0 = 0; q0 < kMaxNq; q0 += k::kMaxQueryGroup) {
      const std::size_t n = std::min(k::kMaxQueryGroup, kMaxNq - q0);
      // Few on queries q0..q0+n: shift the problem's queries so they come first.
      Problem s16 = p16, s8 = p8;
      std::memmove(s16.queries.get(), s16.queries.get() + q0 * p16.stride * 2, (kMaxNq - q0) * p16.stride * 2);
      std::memmove(s8.queries.get(), s8.queries.get() + q0 * p8.stride, (kMaxNq - q0) * p8.stride);
      s8.offsets.erase(s8.offsets.begin(), s8.offsets.begin() + static_cast<std::ptrdiff_t>(q0));
      const auto d16 = run_bf16(dot16.few, s16, n, s_dot);
      const auto d8 = run_int8(dot8.few, s8, n, s_dot);
      for (std::size_t q = 0; q < n; ++q)
        for (std::size_t r = 0; r < rows; ++r) {
          ASSERT_EQ(bits(a8[(q0 + q) * s_amx + r]), bits(d8[q * s_dot + r])) << "int8 q=" << q0 + q << " row=" << r;
          ASSERT_NEAR(a16[(q0 + q) * s_amx + r], d16[q * s_dot + r], 1e-6 * p16.abs_sums[(q0 + q) * rows + r] + 1e-30)
              << "bf16 q=" << q0 + q << " row=" << r;
        }
    }
  }
}

TEST(CodeBf16Conversion, RoundsToNearestEven) {
  EXPECT_EQ(k::to_bf16(from_bits(0x3f808000u)), 0x3f80u);  // halfway, even below
  EXPECT_EQ(k::to_bf16(from_bits(0x3f818000u)), 0x3f82u);  // halfway, even above
  EXPECT_EQ(k::to_bf16(from_bits(0x3f808001u)), 0x3f81u);  // just past halfway
  EXPECT_EQ(k::to_bf16(from_bits(0x3f807fffu)), 0x3f80u);  // just below halfway
  EXPECT_EQ(k::to_bf16(1.0f), 0x3f80u);
  EXPECT_EQ(k::to_bf16(-1.0f), 0xbf80u);
  EXPECT_EQ(k::to_bf16(from_bits(0xbf818000u)), 0xbf82u);  // negative halfway: magnitude rounds to even
  EXPECT_EQ(k::to_bf16(from_bits(0xbf808000u)), 0xbf80u);
  EXPECT_EQ(k::to_bf16(0.0f), 0x0000u);
  EXPECT_EQ(k::to_bf16(-0.0f), 0x8000u);
}

TEST(CodeBf16Conversion, SubnormalsAndLimits) {
  EXPECT_EQ(k::to_bf16(from_bits(0x00010000u)), 0x0001u);  // smallest bf16 subnormal, exact
  EXPECT_EQ(k::to_bf16(from_bits(0x00008000u)), 0x0000u);  // halfway to it: even (zero)
  EXPECT_EQ(k::to_bf16(from_bits(0x00018000u)), 0x0002u);  // halfway: even above
  EXPECT_EQ(k::to_bf16(from_bits(0x80018000u)), 0x8002u);
  EXPECT_EQ(bits(k::from_bf16(0x0001u)), 0x00010000u);
  EXPECT_EQ(k::to_bf16(FLT_MAX), 0x7f7fu);  // saturates, never inf
  EXPECT_EQ(k::to_bf16(-FLT_MAX), 0xff7fu);
  EXPECT_EQ(k::to_bf16(from_bits(0x7f7f8000u)), 0x7f7fu);  // halfway to inf: still finite
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(k::to_bf16(inf), 0x7f80u);
  EXPECT_EQ(k::to_bf16(-inf), 0xff80u);
  for (std::uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const std::uint16_t b = k::to_bf16(from_bits(nan));
    EXPECT_TRUE(std::isnan(k::from_bf16(b))) << std::hex << nan << " -> " << b;
    EXPECT_EQ(b & 0x8000u, (nan >> 16) & 0x8000u);
  }
}

TEST(CodeBf16Conversion, EveryBf16RoundTrips) {
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const float x = k::from_bf16(static_cast<std::uint16_t>(b));
    if (std::isnan(x)) continue;
    ASSERT_EQ(k::to_bf16(x), b) << std::hex << b;
  }
}

}  // namespace
