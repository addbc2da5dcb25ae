// Compressed-row kernels on the NEON dot instructions (layout and contract in code_kernels.hpp): BFDOT
// (Armv8.6 bf16) and SDOT (Armv8.2 dotprod). Built with -march=armv8.2-a+dotprod+bf16 for this file only
// and reached only when the HWCAPs report the feature (code_dispatch.cpp). Nothing here may be an
// inline function shared with other files (the linker could keep this file's copy and run it on a core
// without the extensions), so the file includes no headers with inline code beyond the kernel headers.
//
// A line's 32-bit lane per row is exactly the operand shape: one BFDOT / SDOT per 4 rows per line
// accumulates the row's dim pair (bf16) or quad (int8) against the query's, broadcast with ld1r.
// Register blocking as in tile_kernel.hpp: M queries x NB blocks, 4 accumulators per block per query
// (24 at M = 6 plus 4 row vectors and a broadcast: no spills).
#include <arm_neon.h>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

constexpr std::size_t kLineU16 = kCodeLineBytes / sizeof(std::uint16_t);

template <int M>
constexpr int blocks_per_step() {
  return M == 1 ? 4 : M == 2 ? 2 : 1;
}

// As in codes_neon.cpp: GCC's pre-allocation scheduler hoists the block's loads and then spills.
#if defined(__GNUC__) && !defined(__clang__)
#define NNDEX_CODE_GROUP [[gnu::noinline, gnu::optimize("no-schedule-insns")]]
#else
#define NNDEX_CODE_GROUP [[gnu::noinline]]
#endif

// BFDOT computes each pair's two products and their sum before adding to the accumulator, with its own
// rounding (and flushes denormals), so scores differ from the scalar fma chain in the last bits; the
// tests compare bf16 levels with a tolerance.
template <int NB, int M>
NNDEX_CODE_GROUP void bf16_group(const std::uint16_t* blocks, std::size_t lines, const std::uint16_t* queries,
                                 std::size_t query_stride, float* scores, std::size_t score_stride) {
  const std::size_t block_elems = lines * kLineU16;
  float32x4_t acc[NB][M][4];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) acc[b][m][k] = vdupq_n_f32(0.0f);
  for (std::size_t l = 0; l < lines; ++l) {
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const std::uint16_t* line = blocks + b * block_elems + l * kLineU16;
      bfloat16x8_t rows[4];
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) rows[k] = vreinterpretq_bf16_u16(vld1q_u16(line + 8 * k));
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        std::uint32_t pair;
        __builtin_memcpy(&pair, queries + m * query_stride + 2 * l, sizeof pair);
        const bfloat16x8_t q = vreinterpretq_bf16_u32(vdupq_n_u32(pair));
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) acc[b][m][k] = vbfdotq_f32(acc[b][m][k], rows[k], q);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) vst1q_f32(scores + m * score_stride + b * kBlockRows + 4 * k, acc[b][m][k]);
}

// int8: rows are stored u8 (code + 128) for x86's u8 x s8 vpdpbusd. The NEON u8 x s8 dot (USDOT) needs
// FEAT_I8MM, which many dotprod cores lack (Neoverse N1, Apple M1), so each row byte is flipped back to
// its signed code (u ^ 0x80 = u - 128 as s8) and SDOT (s8 x s8) sums code * query exactly. The scalar
// definition is sum stored * q - offsets[q] = sum code * q + (128 * sum q - offsets[q]); that bracket is
// zero as storage fills offsets, but it is computed (per query per call, one SDOT per 16 query bytes)
// and added, so every score is bit-identical to scalar whatever `offsets` holds.
std::int32_t offset_residual(const std::int8_t* query, std::size_t lines, std::int32_t offset) {
  // Past dims the query is zero up to its stride (a multiple of 64 bytes), so whole 16-byte loads from
  // 0 to round_up(4 * lines, 16) stay in the row and add only zeros beyond 4 * lines.
  const std::size_t n = 4 * lines;
  int32x4_t sum = vdupq_n_s32(0);
  for (std::size_t i = 0; i < n; i += 16) sum = vdotq_s32(sum, vld1q_s8(query + i), vdupq_n_s8(1));
  return static_cast<std::int32_t>(128u * static_cast<std::uint32_t>(vaddvq_s32(sum)) -
                                   static_cast<std::uint32_t>(offset));
}

template <int NB, int M>
NNDEX_CODE_GROUP void int8_group(const std::uint8_t* blocks, const float* row_scales, std::size_t lines,
                                 const std::int8_t* queries, const std::int32_t* residuals, std::size_t query_stride,
                                 float* scores, std::size_t score_stride) {
  const std::size_t block_bytes = lines * kCodeLineBytes;
  const uint8x16_t flip = vdupq_n_u8(0x80);
  int32x4_t acc[NB][M][4];
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) acc[b][m][k] = vdupq_n_s32(0);
  for (std::size_t l = 0; l < lines; ++l) {
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const std::uint8_t* line = blocks + b * block_bytes + l * kCodeLineBytes;
      int8x16_t rows[4];
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) rows[k] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(line + 16 * k), flip));
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        std::int32_t quad;
        __builtin_memcpy(&quad, queries + m * query_stride + 4 * l, sizeof quad);
        const int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(quad));
#pragma GCC unroll 8
        for (int k = 0; k < 4; ++k) acc[b][m][k] = vdotq_s32(acc[b][m][k], rows[k], q);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) {
    const int32x4_t residual = vdupq_n_s32(residuals[m]);
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
      for (int k = 0; k < 4; ++k) {
        const std::size_t row = b * kBlockRows + 4 * k;
        const float32x4_t sum = vcvtq_f32_s32(vaddq_s32(acc[b][m][k], residual));
        vst1q_f32(scores + m * score_stride + row, vmulq_f32(sum, vld1q_f32(row_scales + row)));
      }
  }
}

// The dot scheme's int8_group adds each query's residual (see offset_residual).
template <int M>
void int8_terms(const std::int8_t* queries, std::size_t lines, const std::int32_t* offsets, std::size_t query_stride,
                std::int32_t (&terms)[M]) {
  for (int m = 0; m < M; ++m) terms[m] = offset_residual(queries + m * query_stride, lines, offsets[m]);
}

#include "kernels/code_neon_driver.hpp"

// Row-major rows: SDOT of codes - 128 (the top bit flipped) with the query: sum c * q directly.
struct NavSdotOps {
  static constexpr std::size_t kBytes = 16;
  static constexpr bool kSubtractsOffset = false;
  using Acc = int32x4_t;
  using Q = int8x16_t;
  static Acc zero() { return vdupq_n_s32(0); }
  static Q load_query(const std::int8_t* p) { return vld1q_s8(p); }
  static Acc step(Acc acc, const std::uint8_t* row, Q q) {
    return vdotq_s32(acc, vreinterpretq_s8_u8(veorq_u8(vld1q_u8(row), vdupq_n_u8(0x80))), q);
  }
  static std::int32_t total(Acc acc) { return vaddvq_s32(acc); }
};

#include "kernels/nav_rows_kernel.hpp"

}  // namespace

// No matrix unit on NEON: `many` is `few`, in groups of kMaxQueryGroup.
const Bf16Kernels& bf16_neon_dot_table() {
  static const Bf16Kernels table{CodeIsa::neon_dot, "neon-bf16", "+bf16", kMaxQueryGroup,
                                 &bf16_passes<static_cast<int>(kMaxQueryGroup)>,
                                 &bf16_passes<static_cast<int>(kMaxQueryGroup)>};
  return table;
}

const Int8Kernels& int8_neon_dot_table() {
  static const Int8Kernels table{CodeIsa::neon_dot, "neon-dot", "+dot", kMaxQueryGroup,
                                 &int8_passes<static_cast<int>(kMaxQueryGroup)>,
                                 &int8_passes<static_cast<int>(kMaxQueryGroup)>, &dot_rows_loop<NavSdotOps>};
  return table;
}

}  // namespace nndex::kernels
