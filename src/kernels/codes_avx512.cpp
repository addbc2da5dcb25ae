// AVX-512 (F/BW) kernels over compressed rows for CPUs without the BF16 / VNNI dot instructions:
// each line is widened in registers. A line is one zmm (one 32-bit lane per row).
//   bf16: a pair's low half shifted left 16 is dim 2l in float32, its high half masked is dim 2l+1;
//         two fused multiply-adds in the scalar order (bit-identical to codes_scalar.cpp).
//   int8: the unsigned row bytes split into even/odd 16-bit lanes, the signed query bytes likewise
//         sign-extended, and vpmaddwd sums each pair into exact int32 (|255 * -128| * 2 fits; the
//         saturating vpmaddubsw would not be exact).
// Loads are unaligned (no alignment is required).
// GCC 12 flags the self-initialised _mm512_undefined_*() inside its own AVX-512 intrinsics (a false
// positive GCC 13 no longer reports); the pragmas must precede the header they apply to.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/code_tile_kernel.hpp"

inline __m512i broadcast_group(const std::uint8_t* p) {
  std::int32_t g;
  std::memcpy(&g, p, sizeof g);
  return _mm512_set1_epi32(g);
}

struct Bf16WideOps {
  struct Line {
    __m512 even, odd;
  };
  using Vec = __m512;
  using Q = Line;
  static Line widen(__m512i x) {
    return {_mm512_castsi512_ps(_mm512_slli_epi32(x, 16)),
            _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xffff0000u))))};
  }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Line load(const std::uint8_t* p) { return widen(_mm512_loadu_si512(p)); }
  static Q query(const std::uint8_t* p) { return widen(broadcast_group(p)); }
  static Vec step(const Line& rows, const Q& q, Vec acc) {
    return _mm512_fmadd_ps(rows.odd, q.odd, _mm512_fmadd_ps(rows.even, q.even, acc));
  }
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static void store(float* dst, Vec acc, const NoEpi&, std::size_t, std::size_t) { _mm512_storeu_ps(dst, acc); }
};

struct Int8WideOps {
  struct Line {
    __m512i even, odd;  // bytes 0,2 and 1,3 of each quad as 16-bit lanes
  };
  using Vec = __m512i;
  using Q = Line;
  static Vec zero() { return _mm512_setzero_si512(); }
  static Line load(const std::uint8_t* p) {
    const __m512i x = _mm512_loadu_si512(p);
    return {_mm512_and_si512(x, _mm512_set1_epi16(0x00ff)), _mm512_srli_epi16(x, 8)};
  }
  static Q query(const std::uint8_t* p) {
    const __m512i g = broadcast_group(p);
    return {_mm512_srai_epi16(_mm512_slli_epi16(g, 8), 8), _mm512_srai_epi16(g, 8)};
  }
  static Vec step(const Line& rows, const Q& q, Vec acc) {
    return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(rows.even, q.even), _mm512_madd_epi16(rows.odd, q.odd)));
  }
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static void store(float* dst, Vec acc, const Int8Epi& e, std::size_t q, std::size_t row) {
    const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_set1_epi32(e.offsets[q])));
    _mm512_storeu_ps(dst, _mm512_mul_ps(s, _mm512_loadu_ps(e.row_scales + row)));
  }
};

// Row-major rows: 32 codes a step widened to int16, vpmaddwd into int32 (exact).
struct NavWideOps {
  static constexpr std::size_t kBytes = 32;
  static constexpr bool kSubtractsOffset = true;
  using Acc = __m512i;
  using Q = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static Q load_query(const std::int8_t* p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Acc step(Acc acc, const std::uint8_t* row, Q q) {
    const __m512i r = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row)));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(r, q));
  }
  static std::int32_t total(Acc acc) { return _mm512_reduce_add_epi32(acc); }
};

#include "kernels/nav_rows_kernel.hpp"

}  // namespace

// Each line costs several instructions, so fewer blocks per step than the dot kernels: one query
// 4 blocks (8 FMA chains for bf16), several 3 blocks x 6 queries (18 accumulators + 6 widened lines).
const Bf16Kernels& bf16_avx512_table() {
  static const Bf16Kernels table{CodeIsa::avx512, "avx512", "", kMaxQueryGroup,
                                 &bf16_scores<Bf16WideOps, 4, 3>, &bf16_scores<Bf16WideOps, 4, 3>};
  return table;
}

const Int8Kernels& int8_avx512_table() {
  static const Int8Kernels table{CodeIsa::avx512, "avx512", "", kMaxQueryGroup,
                                 &int8_scores<Int8WideOps, 4, 3>, &int8_scores<Int8WideOps, 4, 3>,
                                 &dot_rows_loop<NavWideOps>};
  return table;
}

}  // namespace nndex::kernels
