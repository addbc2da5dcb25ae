// AVX-512F kernels (compiled with -mavx512f for this file only).
// A 16-row block is one __m512; scores: _mm512_fmadd_ps chains in j order (bit-identical to scalar);
// select_above: _mm512_cmp_ps_mask + register compress and store of positions; dot: four __m512 accumulators with a
// masked tail, float32.
#include <immintrin.h>

#include "kernels/kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/tile_kernel.hpp"

struct Avx512Ops {
  using Block = __m512;
  static Block zero() { return _mm512_setzero_ps(); }
  static Block load(const float* p) { return _mm512_load_ps(p); }
  static __m512 broadcast(float x) { return _mm512_set1_ps(x); }
  static Block fma(Block rows, __m512 q, Block acc) { return _mm512_fmadd_ps(rows, q, acc); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1); }
  static void store(float* p, Block b) { _mm512_storeu_ps(p, b); }
};

std::size_t select_above_avx512(const float* scores, std::size_t n, float threshold, std::uint32_t* positions) {
  const __m512 thr_f32x16 = _mm512_set1_ps(threshold);
  const __m512i step_i32x16 = _mm512_set1_epi32(16);
  __m512i pos_i32x16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 mask = _mm512_cmp_ps_mask(_mm512_loadu_ps(scores + i), thr_f32x16, _CMP_GT_OQ);
    if (mask != 0) {
      // Compress in a register, then a plain store: the compress-to-memory form is microcoded and
      // several times slower on AMD Zen 4. The store writes all 16 lanes (see kSelectSlack).
      _mm512_storeu_si512(positions + count, _mm512_maskz_compress_epi32(mask, pos_i32x16));
      count += static_cast<std::size_t>(__builtin_popcount(mask));
    }
    pos_i32x16 = _mm512_add_epi32(pos_i32x16, step_i32x16);
  }
  return count;
}

float dot_avx512(const float* a, const float* b, std::size_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + i), _mm512_maskz_loadu_ps(tail, b + i), acc1);
  }
  // Lane sum through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized, and this runs once per call.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  float sum = 0.0f;
  for (float lane : lanes) sum += lane;
  return sum;
}

}  // namespace

// One query: 4 blocks (4 FMA chains) per step; measured on Zen 4 against 6 and 8, fewer interleaved
// streams read L2/L3-resident tiles fastest. The streaming variant keeps 8 blocks: it prefetches
// the next 8-block region in address order anyway.
const KernelTable& avx512_table() {
  static const KernelTable table{Isa::avx512, "avx512", &score_tiles_impl<Avx512Ops, 4, 4>,
                                 &score_tiles_streaming_impl<Avx512Ops, 8>, &select_above_avx512,
                                 &dot_avx512};
  return table;
}

}  // namespace nndex::kernels
