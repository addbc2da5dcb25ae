// NEON kernels (AArch64, where NEON is baseline). A 16-row block is four float32x4_t; scores:
// vfmaq_f32 chains in j order (bit-identical to scalar); select_above: scalar compare loop; dot: four
// float32x4_t accumulators, float32.
#include <arm_neon.h>

#include "kernels/kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/tile_kernel.hpp"

struct NeonOps {
  struct Block {
    float32x4_t v0, v1, v2, v3;
  };
  static Block zero() { return {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)}; }
  static Block load(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)}; }
  static float32x4_t broadcast(float x) { return vdupq_n_f32(x); }
  static Block fma(const Block& r, float32x4_t q, const Block& a) {
    return {vfmaq_f32(a.v0, r.v0, q), vfmaq_f32(a.v1, r.v1, q), vfmaq_f32(a.v2, r.v2, q), vfmaq_f32(a.v3, r.v3, q)};
  }
  static void prefetch(const float* p) { __builtin_prefetch(p, 0, 2); }
  static void store(float* p, const Block& b) {
    vst1q_f32(p, b.v0);
    vst1q_f32(p + 4, b.v1);
    vst1q_f32(p + 8, b.v2);
    vst1q_f32(p + 12, b.v3);
  }
};

std::size_t select_above_neon(const float* scores, std::size_t n, float threshold, std::uint32_t* positions) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (scores[i] > threshold) positions[count++] = static_cast<std::uint32_t>(i);
  return count;
}

float dot_neon(const float* a, const float* b, std::size_t n) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    acc2 = vfmaq_f32(acc2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    acc3 = vfmaq_f32(acc3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

const KernelTable& neon_table() {
  static const KernelTable table{Isa::neon, "neon", &score_tiles_impl<NeonOps, 2, 1>,
                                 &score_tiles_streaming_impl<NeonOps, 2>, &select_above_neon, &dot_neon, &gather_block_scalar};
  return table;
}

}  // namespace nndex::kernels
