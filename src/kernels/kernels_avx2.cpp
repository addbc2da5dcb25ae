// AVX2 + FMA kernels (compiled with -mavx2 -mfma for this file only).
// A 16-row block is two __m256 halves; scores: _mm256_fmadd_ps chains in j order (bit-identical to
// scalar); select_above: _mm256_cmp_ps + movemask; dot: four __m256 accumulators, float32.
#include <immintrin.h>

#include "kernels/kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/tile_kernel.hpp"

struct Avx2Ops {
  struct Block {
    __m256 lo, hi;
  };
  static Block zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static Block load(const float* p) { return {_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
  static __m256 broadcast(float x) { return _mm256_set1_ps(x); }
  static Block fma(const Block& rows, __m256 q, const Block& acc) {
    return {_mm256_fmadd_ps(rows.lo, q, acc.lo), _mm256_fmadd_ps(rows.hi, q, acc.hi)};
  }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1); }
  static void store(float* p, const Block& b) {
    _mm256_storeu_ps(p, b.lo);
    _mm256_storeu_ps(p + 8, b.hi);
  }
};

std::size_t select_above_avx2(const float* scores, std::size_t n, float threshold, std::uint32_t* positions) {
  const __m256 thr_f32x8 = _mm256_set1_ps(threshold);
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; i += 8) {
    unsigned mask = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(scores + i), thr_f32x8, _CMP_GT_OQ)));
    while (mask != 0) {
      positions[count++] = static_cast<std::uint32_t>(i + static_cast<std::size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  return count;
}

float dot_avx2(const float* a, const float* b, std::size_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  const __m256 sum_f32x8 = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  __m128 sum_f32x4 = _mm_add_ps(_mm256_castps256_ps128(sum_f32x8), _mm256_extractf128_ps(sum_f32x8, 1));
  sum_f32x4 = _mm_add_ps(sum_f32x4, _mm_movehl_ps(sum_f32x4, sum_f32x4));
  sum_f32x4 = _mm_add_ss(sum_f32x4, _mm_movehdup_ps(sum_f32x4));
  float sum = _mm_cvtss_f32(sum_f32x4);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

const KernelTable& avx2_table() {
  static const KernelTable table{Isa::avx2, "avx2", &score_tiles_impl<Avx2Ops, 4, 1>,
                                 &score_tiles_streaming_impl<Avx2Ops, 4>, &select_above_avx2,
                                 &dot_avx2, &gather_block_scalar};
  return table;
}

}  // namespace nndex::kernels
