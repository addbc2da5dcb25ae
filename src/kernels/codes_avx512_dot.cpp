// AVX-512 dot-instruction kernels over compressed rows (AVX512-BF16 vdpbf16ps, AVX512-VNNI vpdpbusd;
// compiled with those flags for this file only). A 64-byte line is exactly one zmm: one 32-bit lane
// per row, so each line step is one instruction per query against the query's broadcast pair/quad.
// Loads are unaligned (no alignment is required; 64-byte aligned blocks avoid split lines).
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

// vdpbf16ps: acc += a.lo * b.lo + a.hi * b.hi per lane (bf16 products are exact in float32; the
// instruction flushes subnormal inputs and outputs, which quantised unit rows never produce).
struct Bf16DotOps {
  using Vec = __m512;
  using Line = __m512i;
  using Q = __m512i;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Line load(const std::uint8_t* p) { return _mm512_loadu_si512(p); }
  static Q query(const std::uint8_t* p) { return broadcast_group(p); }
  static Vec step(Line rows, Q q, Vec acc) { return _mm512_dpbf16_ps(acc, (__m512bh)rows, (__m512bh)q); }
  // To L2, as the float32 streaming kernel does: 1.9x f32 on 1M x 128 where prefetching into L1 gave 1.7x.
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1); }
  static void store(float* dst, Vec acc, const NoEpi&, std::size_t, std::size_t) { _mm512_storeu_ps(dst, acc); }
};

// vpdpbusd: unsigned rows (codes + 128) x signed query, four products summed into an exact int32.
struct Int8DotOps {
  using Vec = __m512i;
  using Line = __m512i;
  using Q = __m512i;
  static Vec zero() { return _mm512_setzero_si512(); }
  static Line load(const std::uint8_t* p) { return _mm512_loadu_si512(p); }
  static Q query(const std::uint8_t* p) { return broadcast_group(p); }
  static Vec step(Line rows, Q q, Vec acc) { return _mm512_dpbusd_epi32(acc, rows, q); }
  static void prefetch(const std::uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static void store(float* dst, Vec acc, const Int8Epi& e, std::size_t q, std::size_t row) {
    const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_set1_epi32(e.offsets[q])));
    _mm512_storeu_ps(dst, _mm512_mul_ps(s, _mm512_loadu_ps(e.row_scales + row)));
  }
};

// Row-major rows: one vpdpbusd per 64 codes; exact int32.
struct NavDotOps {
  static constexpr std::size_t kBytes = 64;
  static constexpr bool kSubtractsOffset = true;
  using Acc = __m512i;
  using Q = __m512i;
  static Acc zero() { return _mm512_setzero_si512(); }
  static Q load_query(const std::int8_t* p) { return _mm512_loadu_si512(p); }
  static Acc step(Acc acc, const std::uint8_t* row, Q q) { return _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(row), q); }
  static std::int32_t total(Acc acc) { return _mm512_reduce_add_epi32(acc); }
};

#include "kernels/nav_rows_kernel.hpp"

}  // namespace

// One query: 8 blocks per step (8 independent chains cover the 4-5 cycle latency; the prefetch
// streams the next 8-block region). Several queries: 4 blocks x up to 6 queries = 24 accumulators
// + 4 lines + 1 broadcast fit the 32 zmm registers.
const Bf16Kernels& bf16_avx512_dot_table() {
  static const Bf16Kernels table{CodeIsa::avx512_dot, "avx512-bf16", "+bf16", kMaxQueryGroup,
                                 &bf16_scores<Bf16DotOps, 8, 4>, &bf16_scores<Bf16DotOps, 8, 4>};
  return table;
}

const Int8Kernels& int8_avx512_dot_table() {
  static const Int8Kernels table{CodeIsa::avx512_dot, "avx512-vnni", "+vnni", kMaxQueryGroup,
                                 &int8_scores<Int8DotOps, 8, 4>, &int8_scores<Int8DotOps, 8, 4>,
                                 &dot_rows_loop<NavDotOps>};
  return table;
}

}  // namespace nndex::kernels
