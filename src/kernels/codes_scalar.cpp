// Portable reference kernels for compressed rows (layout: code_kernels.hpp). Every SIMD and matrix-unit
// level is tested against these: int8 results bit for bit (the sums are exact integers), bf16 within
// float32 rounding (hardware dot instructions fuse and order the pair sums their own way).
#include <cmath>
#include <cstring>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

void score_bf16_scalar(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint16_t* queries,
                       std::size_t query_stride, std::size_t nq, float* scores, std::size_t score_stride) {
  constexpr std::size_t kLineElems = kCodeLineBytes / sizeof(std::uint16_t);  // 16 rows x 2 dims
  for (std::size_t q = 0; q < nq; ++q) {
    const std::uint16_t* query = queries + q * query_stride;
    for (std::size_t b = 0; b < nblocks; ++b) {
      const std::uint16_t* block = blocks + b * lines * kLineElems;
      for (std::size_t r = 0; r < kBlockRows; ++r) {
        float acc = 0.0f;
        for (std::size_t l = 0; l < lines; ++l) {
          const std::uint16_t* pair = block + l * kLineElems + r * 2;
          acc = std::fma(from_bf16(pair[0]), from_bf16(query[2 * l]), acc);
          acc = std::fma(from_bf16(pair[1]), from_bf16(query[2 * l + 1]), acc);
        }
        scores[q * score_stride + b * kBlockRows + r] = acc;
      }
    }
  }
}

void score_int8_scalar(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks, std::size_t lines,
                       const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride,
                       std::size_t nq, float* scores, std::size_t score_stride) {
  for (std::size_t q = 0; q < nq; ++q) {
    const std::int8_t* query = queries + q * query_stride;
    for (std::size_t b = 0; b < nblocks; ++b) {
      const std::uint8_t* block = blocks + b * lines * kCodeLineBytes;
      for (std::size_t r = 0; r < kBlockRows; ++r) {
        std::int32_t acc = 0;
        for (std::size_t l = 0; l < lines; ++l) {
          const std::uint8_t* quad = block + l * kCodeLineBytes + r * 4;
          for (std::size_t i = 0; i < 4; ++i) acc += static_cast<std::int32_t>(quad[i]) * query[4 * l + i];
        }
        const std::size_t row = b * kBlockRows + r;
        scores[q * score_stride + row] = static_cast<float>(acc - offsets[q]) * row_scales[row];
      }
    }
  }
}

void dot_rows_int8_scalar(const std::uint8_t* rows, std::size_t row_bytes, const std::uint32_t* ids, std::size_t n,
                          const std::int8_t* query, std::int32_t offset, std::int32_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* row = rows + std::size_t{ids[i]} * row_bytes;
    std::int32_t acc = 0;
    for (std::size_t j = 0; j < row_bytes; ++j) acc += static_cast<std::int32_t>(row[j]) * query[j];
    out[i] = acc - offset;
  }
}

}  // namespace

std::uint16_t to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // stays a (quiet) NaN
  const std::uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  std::uint16_t b = static_cast<std::uint16_t>(rounded >> 16);
  // A finite float that rounds past the largest bf16 saturates instead of becoming inf.
  if ((b & 0x7fffu) == 0x7f80u && std::isfinite(x)) b = static_cast<std::uint16_t>((b & 0x8000u) | 0x7f7fu);
  return b;
}

float from_bf16(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

const Bf16Kernels& bf16_scalar_table() {
  static const Bf16Kernels table{CodeIsa::scalar, "scalar", "", kMaxQueryGroup, &score_bf16_scalar, &score_bf16_scalar};
  return table;
}

const Int8Kernels& int8_scalar_table() {
  static const Int8Kernels table{CodeIsa::scalar, "scalar", "", kMaxQueryGroup, &score_int8_scalar, &score_int8_scalar,
                                 &dot_rows_int8_scalar};
  return table;
}

}  // namespace nndex::kernels
