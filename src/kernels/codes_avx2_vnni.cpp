// AVX-VNNI kernels over int8 rows (compiled with -mavxvnni for this file only; Alder Lake and later
// cores without AVX-512): vpdpbusd on ymm halves, rows the unsigned operand (codes + 128), the
// broadcast query quad the signed one; exact int32 sums. Loads are unaligned.
#include <immintrin.h>

#include <cstring>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/code_tile_kernel.hpp"

struct Int8VnniOps {
  struct Vec {
    __m256i lo, hi;  // rows 0..7 and 8..15
  };
  using Line = Vec;
  using Q = __m256i;
  static Vec zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static Line load(const std::uint8_t* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
  }
  static Q query(const std::uint8_t* p) {
    std::int32_t g;
    std::memcpy(&g, p, sizeof g);
    return _mm256_set1_epi32(g);
  }
  static Vec step(const Line& rows, Q q, const Vec& acc) {
    return {_mm256_dpbusd_avx_epi32(acc.lo, rows.lo, q), _mm256_dpbusd_avx_epi32(acc.hi, rows.hi, q)};
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

// Row-major rows: vpdpbusd, rows unsigned, query signed; exact int32.
struct NavVnniOps {
  static constexpr std::size_t kBytes = 32;
  static constexpr bool kSubtractsOffset = true;
  using Acc = __m256i;
  using Q = __m256i;
  static Acc zero() { return _mm256_setzero_si256(); }
  static Q load_query(const std::int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Acc step(Acc acc, const std::uint8_t* row, Q q) {
    return _mm256_dpbusd_avx_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row)), q);
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

// 16 ymm registers: one query 4 blocks per step (8 chains), several queries 1 block (up to 12
// accumulators + 2 lines + 1 broadcast).
const Int8Kernels& int8_avx2_vnni_table() {
  static const Int8Kernels table{CodeIsa::avx2_vnni, "avx2-vnni", "+vnni", kMaxQueryGroup,
                                 &int8_scores<Int8VnniOps, 4, 1>, &int8_scores<Int8VnniOps, 4, 1>,
                                 &dot_rows_loop<NavVnniOps>};
  return table;
}

}  // namespace nndex::kernels
