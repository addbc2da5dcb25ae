// AVX-512F kernels (compiled with -mavx512f for this file only).
// A 16-row block is one __m512; scores: _mm512_fmadd_ps chains in j order (bit-identical to scalar);
// select_above: _mm512_cmp_ps_mask + register compress and store of positions; dot: four __m512 accumulators with a
// masked tail, float32.
#include <immintrin.h>

#include <algorithm>

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

// 16 rows x 16 dims per step, transposed in registers: 32-bit interleave of row pairs, 64-bit
// shuffles to groups of 4 rows, then a 4 x 4 transpose of 128-bit lanes (shuffle_f32x4), giving one
// 16-row line per dim. About 4x faster than element-wise stores, which dominated batch re-ranking.
void gather_block_avx512(const float* const* rows, std::size_t count, std::size_t dims, float* block) {
  for (std::size_t j0 = 0; j0 < dims; j0 += 16) {
    const std::size_t width = std::min<std::size_t>(16, dims - j0);
    const __mmask16 mask = static_cast<__mmask16>(width == 16 ? 0xFFFFu : (1u << width) - 1u);
    __m512 r[16], t[16], u[16];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < 16; ++i) r[i] = i < count ? _mm512_maskz_loadu_ps(mask, rows[i] + j0) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);      // rows 2k, 2k+1 at dims 4L+0, 4L+1
      t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);  // the same at dims 4L+2, 4L+3
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {  // u[4k+e]: rows 4k..4k+3 at dim 4L+e of each 128-bit lane L
      u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
      u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
      u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
      u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int e = 0; e < 4; ++e) {
      const __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88);   // lanes A0 A2 B0 B2
      const __m512 v1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);   // A1 A3 B1 B3
      const __m512 v2 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
      const __m512 v3 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
      const __m512 line[4] = {_mm512_shuffle_f32x4(v0, v2, 0x88), _mm512_shuffle_f32x4(v1, v3, 0x88),
                              _mm512_shuffle_f32x4(v0, v2, 0xDD), _mm512_shuffle_f32x4(v1, v3, 0xDD)};
#pragma GCC unroll 4
      for (std::size_t l = 0; l < 4; ++l) {  // dim 4l + e of this step
        const std::size_t c = 4 * l + static_cast<std::size_t>(e);
        if (c < width) _mm512_store_ps(block + (j0 + c) * kBlockRows, line[l]);
      }
    }
  }
}

}  // namespace

// One query: 4 blocks (4 FMA chains) per step; measured on Zen 4 against 6 and 8, fewer interleaved
// streams read L2/L3-resident tiles fastest. The streaming variant keeps 8 blocks: it prefetches
// the next 8-block region in address order anyway.
const KernelTable& avx512_table() {
  static const KernelTable table{Isa::avx512, "avx512", &score_tiles_impl<Avx512Ops, 4, 4>,
                                 &score_tiles_streaming_impl<Avx512Ops, 8>, &select_above_avx512,
                                 &dot_avx512, &gather_block_avx512};
  return table;
}

}  // namespace nndex::kernels
