// Portable scalar kernels: the reference every SIMD level is tested against, and the fallback for CPUs
// without a SIMD level. Scores use std::fma in the same order as the SIMD kernels (bit-identical);
// dot() accumulates in one float chain.
#include <cmath>

#include "kernels/kernels.hpp"

namespace nndex::kernels {
namespace {

#include "kernels/tile_kernel.hpp"

struct ScalarOps {
  struct Block {
    float v[kBlockRows];
  };
  static Block zero() { return Block{}; }
  static Block load(const float* p) {
    Block b;
    for (std::size_t i = 0; i < kBlockRows; ++i) b.v[i] = p[i];
    return b;
  }
  static float broadcast(float x) { return x; }
  static Block fma(const Block& rows, float q, const Block& acc) {
    Block out;
    for (std::size_t i = 0; i < kBlockRows; ++i) out.v[i] = std::fma(rows.v[i], q, acc.v[i]);
    return out;
  }
  static void prefetch(const float* p) { __builtin_prefetch(p, 0, 2); }
  static void store(float* p, const Block& b) {
    for (std::size_t i = 0; i < kBlockRows; ++i) p[i] = b.v[i];
  }
};

std::size_t select_above_scalar(const float* scores, std::size_t n, float threshold, std::uint32_t* positions) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (scores[i] > threshold) positions[count++] = static_cast<std::uint32_t>(i);
  return count;
}

float dot_scalar(const float* a, const float* b, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; ++i) sum = std::fma(a[i], b[i], sum);
  return sum;
}

}  // namespace

void gather_block_scalar(const float* const* rows, std::size_t count, std::size_t dims, float* block) {
  for (std::size_t r = 0; r < count; ++r)
    for (std::size_t j = 0; j < dims; ++j) block[j * kBlockRows + r] = rows[r][j];
  for (std::size_t r = count; r < kBlockRows; ++r)
    for (std::size_t j = 0; j < dims; ++j) block[j * kBlockRows + r] = 0.0f;
}

const KernelTable& scalar_table() {
  static const KernelTable table{Isa::scalar, "scalar", &score_tiles_impl<ScalarOps, 1, 1>,
                                 &score_tiles_streaming_impl<ScalarOps, 1>, &select_above_scalar,
                                 &dot_scalar, &gather_block_scalar};
  return table;
}

}  // namespace nndex::kernels
