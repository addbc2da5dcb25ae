#include "storage/quantize.hpp"

#include <algorithm>
#include <cmath>

#include "core/prepare.hpp"
#include "core/row_ranges.hpp"

namespace nndex::storage {
namespace {

using kernels::kBlockRows;
using kernels::kCodeLineBytes;

// In double: for a subnormal largest magnitude 127 / largest overflows a float.
double inverse_of(float largest) { return largest == 0.0f ? 0.0 : 127.0 / static_cast<double>(largest); }

std::int8_t int8_code(float x, double inverse) {
  const double q = std::nearbyint(static_cast<double>(x) * inverse);
  return static_cast<std::int8_t>(std::clamp(q, -127.0, 127.0));
}

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

}  // namespace

void encode_block(const float* rows, std::size_t count, std::size_t b, CodeMatrix& m) {
  const std::size_t dims = m.dims();
  std::byte* block = m.block(b);
  if (m.codec() == Codec::bf16) {
    auto* out = reinterpret_cast<std::uint16_t*>(block);
    for (std::size_t r = 0; r < count; ++r)
      for (std::size_t j = 0; j < dims; ++j)
        out[(j / 2) * (kCodeLineBytes / 2) + r * 2 + j % 2] = kernels::to_bf16(rows[r * dims + j]);
    return;
  }
  auto* out = reinterpret_cast<std::uint8_t*>(block);
  float* scales = m.scales() + b * kBlockRows;
  for (std::size_t r = 0; r < count; ++r) {
    const float* row = rows + r * dims;
    float largest = 0.0f;
    for (std::size_t j = 0; j < dims; ++j) largest = std::max(largest, std::fabs(row[j]));
    scales[r] = largest / 127.0f;
    const double inverse = inverse_of(largest);
    for (std::size_t j = 0; j < dims; ++j)
      out[(j / 4) * kCodeLineBytes + r * 4 + j % 4] = static_cast<std::uint8_t>(int8_code(row[j], inverse) + 128);
  }
}

std::size_t query_stride(Codec codec, std::size_t dims) {
  return round_up(std::max<std::size_t>(dims, 1), codec == Codec::bf16 ? kernels::kBf16QueryAlign : kernels::kInt8QueryAlign);
}

void encode_query_bf16(const float* v, std::size_t dims, std::uint16_t* out) {
  for (std::size_t j = 0; j < dims; ++j) out[j] = kernels::to_bf16(v[j]);
}

std::int32_t encode_query_int8(const float* v, std::size_t dims, std::int8_t* out) {
  float largest = 0.0f;
  for (std::size_t j = 0; j < dims; ++j) largest = std::max(largest, std::fabs(v[j]));
  const double inverse = inverse_of(largest);
  std::int32_t sum = 0;
  for (std::size_t j = 0; j < dims; ++j) {
    out[j] = int8_code(v[j], inverse);
    sum += out[j];
  }
  return 128 * sum;
}

CodeMatrix encode_matrix(const MatrixView& src, bool normalize, Codec codec, const kernels::KernelTable& kt,
                         std::size_t threads, const StopCheck& should_stop, std::vector<float>* prepared) {
  static_assert(core::kRowsPerTask % kBlockRows == 0, "tasks must own whole blocks");
  CodeMatrix m(codec, src.rows, src.cols);
  const std::size_t dims = src.cols;
  if (prepared != nullptr) prepared->resize(src.rows * dims);
  core::for_row_ranges(src, threads, should_stop, [&](std::size_t first, std::size_t last, core::TaskContext& ctx) {
    std::vector<float> scratch(prepared != nullptr ? 0 : kBlockRows * dims);
    for (std::size_t row0 = first; row0 < last; row0 += kBlockRows) {
      if ((row0 - first) % 256 == 0 && ctx.stop_requested()) return;
      const std::size_t count = std::min(kBlockRows, last - row0);
      float* rows = prepared != nullptr ? prepared->data() + row0 * dims : scratch.data();
      for (std::size_t r = 0; r < count; ++r)
        core::prepare_vector(src, row0 + r, normalize, kt, rows + r * dims, {"row", row0 + r});
      encode_block(rows, count, row0 / kBlockRows, m);
    }
  });
  return m;
}

}  // namespace nndex::storage
