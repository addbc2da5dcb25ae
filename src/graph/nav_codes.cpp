#include "graph/nav_codes.hpp"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.hpp"
#include "storage/quantize.hpp"

namespace nndex::graph {

std::size_t NavCodes::row_bytes_for(std::size_t dims) {
  return (std::max<std::size_t>(dims, 1) + kernels::kNavRowAlign - 1) / kernels::kNavRowAlign * kernels::kNavRowAlign;
}

NavCodes::NavCodes(const float* prepared, std::size_t n, std::size_t dims, std::size_t threads,
                   const StopCheck& should_stop)
    : rows_(n), dims_(dims), row_bytes_(row_bytes_for(dims)) {
  owned_codes_.assign(n * row_bytes_, 128);  // zero codes past dims
  owned_scales_.resize(n);
  constexpr std::size_t kRowsPerTask = 1024;
  auto encode = [&](std::size_t task, core::TaskContext&) {
    std::vector<std::int8_t> codes(row_bytes_, 0);
    const std::size_t last = std::min(n, (task + 1) * kRowsPerTask);
    for (std::size_t r = task * kRowsPerTask; r < last; ++r) {
      const float* v = prepared + r * dims;
      float largest = 0.0f;
      for (std::size_t j = 0; j < dims; ++j) largest = std::max(largest, std::fabs(v[j]));
      owned_scales_[r] = largest / 127.0f;
      storage::encode_query_int8(v, dims, codes.data());
      std::uint8_t* out = owned_codes_.data() + r * row_bytes_;
      for (std::size_t j = 0; j < dims; ++j) out[j] = static_cast<std::uint8_t>(codes[j] + 128);
    }
  };
  core::parallel_for((n + kRowsPerTask - 1) / kRowsPerTask, threads, should_stop, core::TaskFn(encode));
  codes_ = owned_codes_.data();
  scales_ = owned_scales_.data();
}

NavCodes::NavCodes(const std::uint8_t* codes, const float* scales, std::size_t n, std::size_t dims,
                   std::shared_ptr<const void> owner)
    : rows_(n), dims_(dims), row_bytes_(row_bytes_for(dims)), codes_(codes), scales_(scales), owner_(std::move(owner)) {}

float NavCodes::encode_query(const float* v, std::int8_t* out, std::int32_t* offset) const {
  std::fill(out, out + row_bytes_, std::int8_t{0});
  *offset = storage::encode_query_int8(v, dims_, out);
  float largest = 0.0f;
  for (std::size_t j = 0; j < dims_; ++j) largest = std::max(largest, std::fabs(v[j]));
  return largest / 127.0f;
}

float NavCodes::row_as_query(std::size_t r, std::int8_t* out, std::int32_t* offset) const {
  // Two plain loops the compiler vectorises (the build calls this for every candidate it weighs).
  const std::uint8_t* codes = row(r);
  for (std::size_t j = 0; j < row_bytes_; ++j) out[j] = static_cast<std::int8_t>(codes[j] ^ 0x80u);
  std::int32_t sum = 0;
  for (std::size_t j = 0; j < row_bytes_; ++j) sum += codes[j];
  *offset = 128 * (sum - 128 * static_cast<std::int32_t>(row_bytes_));
  return scales_[r];
}

}  // namespace nndex::graph
