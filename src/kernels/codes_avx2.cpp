// AVX2 + FMA kernels over compressed rows (compiled with those flags for this file only): a 64-byte
// line is two ymm halves of 8 rows, widened in registers like codes_avx512.cpp.
//   bf16: low half << 16 is dim 2l, high half masked is dim 2l+1; two FMAs in the scalar order
//         (bit-identical to codes_scalar.cpp).
//   int8: even/odd bytes as 16-bit lanes, vpmaddwd into exact int32 (vpmaddubsw saturates).
// Loads are unaligned (no alignment is required).
#include <immintrin.h>

#include <cstring>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/code_tile_kernel.hpp"

inline __m256i broadcast_group(const std::uint8_t* p) {
  std::int32_t g;
  std::memcpy(&g, p, sizeof g);
  return _mm256_set1_epi32(g);
}

struct Bf16Avx2Ops {
  struct Half {
    __m256 even, odd;
  };
  struct Line {
    Half lo, hi;  // rows 0..7 and 8..15
  };
  struct Vec {
    __m256 lo, hi;
  };
  using Q = Half;
  static Half widen(__m256i x) {
    return {_mm256_castsi256_ps(_mm256_slli_epi32(x, 16)),
            _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xffff0000u))))};
  }
  static Vec zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Line load(const std::uint8_t* p) {
    return {widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
            widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)))};
  }
  static Q query(const std::uint8_t* p) { return widen(broadcast_group(p)); }
  static __m256 half_step(const Half& r, const Q& q, __m256 acc) {
    return _mm256_fmadd_ps(r.odd, q.odd, _mm256_fmadd_ps(r.even, q.even, acc));
  }
  static Vec step(const Line& rows, const Q& q, const Vec& acc) {
    return {half_step(rows.lo, q, acc.lo), half_step(rows.hi, q, acc.hi)};
  }
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static void store(float* dst, const Vec& acc, const NoEpi&, std::size_t, std::size_t) {
    _mm256_storeu_ps(dst, acc.lo);
    _mm256_storeu_ps(dst + 8, acc.hi);
  }
};

struct Int8Avx2Ops {
  struct Half {
    __m256i even, odd;
  };
  struct Line {
    Half lo, hi;
  };
  struct Vec {
    __m256i lo, hi;
  };
  using Q = Half;
  static Half split(__m256i x) { return {_mm256_and_si256(x, _mm256_set1_epi16(0x00ff)), _mm256_srli_epi16(x, 8)}; }
  static Vec zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static Line load(const std::uint8_t* p) {
    return {split(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
            split(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)))};
  }
  static Q query(const std::uint8_t* p) {
    const __m256i g = broadcast_group(p);
    return {_mm256_srai_epi16(_mm256_slli_epi16(g, 8), 8), _mm256_srai_epi16(g, 8)};
  }
  static __m256i half_step(const Half& r, const Q& q, __m256i acc) {
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(r.even, q.even), _mm256_madd_epi16(r.odd, q.odd)));
  }
  static Vec step(const Line& rows, const Q& q, const Vec& acc) {
    return {half_step(rows.lo, q, acc.lo), half_step(rows.hi, q, acc.hi)};
  }
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static void store_half(float* dst, __m256i acc, std::int32_t offset, const float* scales) {
    const __m256 s = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, _mm256_set1_epi32(offset)));
    _mm256_storeu_ps(dst, _mm256_mul_ps(s, _mm256_loadu_ps(scales)));
  }
  static void store(float* dst, const Vec& acc, const Int8Epi& e, std::size_t q, std::size_t row) {
    store_half(dst, acc.lo, e.offsets[q], e.row_scales + row);
    store_half(dst + 8, acc.hi, e.offsets[q], e.row_scales + row + 8);
  }
};

// Row-major rows: 32 codes a step widened to int16 (vpmaddubsw would saturate 255 x 127 pairs),
// multiplied pairwise into int32 with vpmaddwd: exact.
struct NavAvx2Ops {
  static constexpr std::size_t kBytes = 32;
  static constexpr bool kSubtractsOffset = true;
  using Acc = __m256i;
  struct Q {
    __m256i lo, hi;
  };
  static Acc zero() { return _mm256_setzero_si256(); }
  static Q load_query(const std::int8_t* p) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1))};
  }
  static Acc step(Acc acc, const std::uint8_t* row, const Q& q) {
    const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row));
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(r)), q.lo);
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(r, 1)), q.hi);
    return _mm256_add_epi32(acc, _mm256_add_epi32(lo, hi));
  }
  static std::int32_t total(Acc acc) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
  }
};

#include "kernels/nav_rows_kernel.hpp"

}  // namespace

// 16 ymm registers: one query 2 blocks per step, several queries 1 block (2 accumulators each).
const Bf16Kernels& bf16_avx2_table() {
  static const Bf16Kernels table{CodeIsa::avx2, "avx2", "", kMaxQueryGroup, &bf16_scores<Bf16Avx2Ops, 2, 1>,
                                 &bf16_scores<Bf16Avx2Ops, 2, 1>};
  return table;
}

const Int8Kernels& int8_avx2_table() {
  static const Int8Kernels table{CodeIsa::avx2, "avx2", "", kMaxQueryGroup, &int8_scores<Int8Avx2Ops, 2, 1>,
                                 &int8_scores<Int8Avx2Ops, 2, 1>, &dot_rows_loop<NavAvx2Ops>};
  return table;
}

}  // namespace nndex::kernels
