// Compressed-row kernels for baseline NEON (every AArch64 core), layout and contract in code_kernels.hpp.
// bf16: each dim widened to float32 and accumulated with vfmaq in the scalar reference's order, so the
// scores are bit-identical to scalar. int8: exact int32 sums from 16-bit widening multiply-adds, then
// the same float conversion and scaling as scalar (bit-identical).
//
// Register blocking as in tile_kernel.hpp: M queries x NB blocks of 16 rows accumulate in M*NB*4
// vectors; a loaded line feeds every query. One query takes 4 blocks per step (independent chains hide
// the multiply-add latency), two take 2, three or four take 1. At most kPassQueries per pass: the
// widening needs registers the float32 kernel does not (and 16-bit smlal by lane reads only v0-v15),
// so six queries (24 accumulators) still spilled ~15 vector stack accesses per line with GCC 12; a
// 4 + 2 split re-widens each line once more and runs fewer instructions.
#include <arm_neon.h>

#include <cstring>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

constexpr std::size_t kLineU16 = kCodeLineBytes / sizeof(std::uint16_t);
constexpr int kPassQueries = 4;

// GCC's pre-allocation scheduler hoists every line load of a register block ahead of its multiply-adds
// and then spills accumulators (16-30 vector stack accesses per line at NB = 4); without it these
// loops allocate with no spills. Out of line: one call per NB blocks costs nothing.
#if defined(__GNUC__) && !defined(__clang__)
#define NNDEX_CODE_GROUP [[gnu::noinline, gnu::optimize("no-schedule-insns")]]
#else
#define NNDEX_CODE_GROUP [[gnu::noinline]]
#endif

template <int M>
constexpr int blocks_per_step() {
  return M == 1 ? 4 : M == 2 ? 2 : 1;
}

// bf16 line = four uint32x4_t, one row's dim pair per lane (even dim in the low half). bf16 is the
// high half of a float32, so `lane << 16` is the even dim and `lane & 0xffff0000` the odd one, exactly.
// The query pair is widened the same way into [even, odd, even, odd] and used by lane.
template <int NB, int M>
NNDEX_CODE_GROUP void bf16_group(const std::uint16_t* blocks, std::size_t lines, const std::uint16_t* queries,
                       std::size_t query_stride, float* scores, std::size_t score_stride) {
  const std::size_t block_elems = lines * kLineU16;
  const uint32x4_t high = vdupq_n_u32(0xffff0000u);
  float32x4_t acc[M][NB][4];
  #pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
    #pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
      #pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) acc[m][b][k] = vdupq_n_f32(0.0f);
  for (std::size_t l = 0; l < lines; ++l) {
    float32x4_t qv[M];
    #pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      std::uint32_t pair;
      std::memcpy(&pair, queries + m * query_stride + 2 * l, sizeof pair);
      qv[m] = vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u32(vdup_n_u32(pair)), 16));
    }
    #pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const std::uint16_t* line = blocks + b * block_elems + l * kLineU16;
      #pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) {
        const uint32x4_t raw = vld1q_u32(reinterpret_cast<const std::uint32_t*>(line + 8 * k));
        const float32x4_t even = vreinterpretq_f32_u32(vshlq_n_u32(raw, 16));
        const float32x4_t odd = vreinterpretq_f32_u32(vandq_u32(raw, high));
        #pragma GCC unroll 8
        for (int m = 0; m < M; ++m) {
          acc[m][b][k] = vfmaq_laneq_f32(acc[m][b][k], even, qv[m], 0);
          acc[m][b][k] = vfmaq_laneq_f32(acc[m][b][k], odd, qv[m], 1);
        }
      }
    }
  }
  #pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
    #pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
      #pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) vst1q_f32(scores + m * score_stride + b * kBlockRows + 4 * k, acc[m][b][k]);
}

// int8 line: vld4q_u8 de-interleaves the 16 row quads into one vector per dim (lane = row). Each is
// widened to int16 (0..255, so also a valid signed value) and multiplied by the query element with
// smlal by lane into int32 lanes, one per row: four instructions per dim per query for 16 rows, exact.
// K (the dim within the line) is a template argument because lane indices must be constants.
template <int K, int M>
inline void int8_dim(int32x4_t (&acc)[M][4], const uint8x16x4_t& raw, const int16x8_t (&qv)[M]) {
  const int16x8_t lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(raw.val[K])));
  const int16x8_t hi = vreinterpretq_s16_u16(vmovl_high_u8(raw.val[K]));
  #pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    acc[m][0] = vmlal_laneq_s16(acc[m][0], vget_low_s16(lo), qv[m], K);
    acc[m][1] = vmlal_high_laneq_s16(acc[m][1], lo, qv[m], K);
    acc[m][2] = vmlal_laneq_s16(acc[m][2], vget_low_s16(hi), qv[m], K);
    acc[m][3] = vmlal_high_laneq_s16(acc[m][3], hi, qv[m], K);
  }
}

template <int NB, int M>
NNDEX_CODE_GROUP void int8_group(const std::uint8_t* blocks, const float* row_scales, std::size_t lines,
                       const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride,
                       float* scores, std::size_t score_stride) {
  const std::size_t block_bytes = lines * kCodeLineBytes;
  int32x4_t acc[NB][M][4];
  #pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
    #pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
      #pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) acc[b][m][k] = vdupq_n_s32(0);
  for (std::size_t l = 0; l < lines; ++l) {
    // The line's 4 query bytes (memcpy: no 4-byte alignment is promised), widened to int16 lanes 0..3.
    int16x8_t qv[M];
    #pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      std::int32_t quad;
      std::memcpy(&quad, queries + m * query_stride + 4 * l, sizeof quad);
      qv[m] = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(quad)));
    }
    // Block by block, so only one block's de-interleaved line is live.
    #pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const uint8x16x4_t raw = vld4q_u8(blocks + b * block_bytes + l * kCodeLineBytes);
      int8_dim<0>(acc[b], raw, qv);
      int8_dim<1>(acc[b], raw, qv);
      int8_dim<2>(acc[b], raw, qv);
      int8_dim<3>(acc[b], raw, qv);
    }
  }
  #pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    const int32x4_t offset = vdupq_n_s32(offsets[m]);
    #pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
      #pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) {
        const std::size_t row = b * kBlockRows + 4 * k;
        const float32x4_t sum = vcvtq_f32_s32(vsubq_s32(acc[b][m][k], offset));
        vst1q_f32(scores + m * score_stride + row, vmulq_f32(sum, vld1q_f32(row_scales + row)));
      }
  }
}

// The baseline's int8_group subtracts the offsets as given.
template <int M>
void int8_terms(const std::int8_t*, std::size_t, const std::int32_t* offsets, std::size_t, std::int32_t (&terms)[M]) {
  for (int m = 0; m < M; ++m) terms[m] = offsets[m];
}

#include "kernels/code_neon_driver.hpp"

// Row-major rows: codes - 128 (flip the top bit) times the query, int16 products (at most 127 x 127)
// accumulated pairwise into int32: sum c * q directly, so the +128 offset is never added.
struct NavNeonOps {
  static constexpr std::size_t kBytes = 16;
  static constexpr bool kSubtractsOffset = false;
  using Acc = int32x4_t;
  using Q = int8x16_t;
  static Acc zero() { return vdupq_n_s32(0); }
  static Q load_query(const std::int8_t* p) { return vld1q_s8(p); }
  static Acc step(Acc acc, const std::uint8_t* row, Q q) {
    const int8x16_t c = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(row), vdupq_n_u8(0x80)));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(c), vget_low_s8(q)));
    return vpadalq_s16(acc, vmull_high_s8(c, q));
  }
  static std::int32_t total(Acc acc) { return vaddvq_s32(acc); }
};

#include "kernels/nav_rows_kernel.hpp"

}  // namespace

// No matrix unit on NEON: `many` is `few`, in groups of kMaxQueryGroup.
const Bf16Kernels& bf16_neon_table() {
  static const Bf16Kernels table{CodeIsa::neon, "neon", "", kMaxQueryGroup, &bf16_passes<kPassQueries>,
                                 &bf16_passes<kPassQueries>};
  return table;
}

const Int8Kernels& int8_neon_table() {
  static const Int8Kernels table{CodeIsa::neon, "neon", "", kMaxQueryGroup, &int8_passes<kPassQueries>,
                                 &int8_passes<kPassQueries>, &dot_rows_loop<NavNeonOps>};
  return table;
}

}  // namespace nndex::kernels
