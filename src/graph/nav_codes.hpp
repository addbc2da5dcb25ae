// The graph's navigation codes: every row as int8 (storage/quantize.hpp's per-row scale, stored +128
// as unsigned bytes), one row-major run of kNavRowAlign-padded bytes per row. A graph hop scores up to
// a node's whole neighbour list, rows scattered over the matrix: row-major codes make each neighbour
// one contiguous read of ceil(dims / 64) cache lines (a quarter of its float32 row), where the scan
// kernels' 16-row blocks would spread it over every line of its block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/huge_pages.hpp"
#include "kernels/code_kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::graph {

class NavCodes {
 public:
  NavCodes() = default;
  // Encodes n prepared (validated, normalised) row-major rows, in parallel.
  NavCodes(const float* prepared, std::size_t n, std::size_t dims, std::size_t threads, const StopCheck& should_stop);
  // Codes and scales inside a loaded file, kept alive by `owner`.
  NavCodes(const std::uint8_t* codes, const float* scales, std::size_t n, std::size_t dims,
           std::shared_ptr<const void> owner);

  static std::size_t row_bytes_for(std::size_t dims);
  std::size_t rows() const { return rows_; }
  std::size_t dims() const { return dims_; }
  std::size_t row_bytes() const { return row_bytes_; }
  const std::uint8_t* codes() const { return codes_; }
  const float* scales() const { return scales_; }
  const std::uint8_t* row(std::size_t r) const { return codes_ + r * row_bytes_; }
  std::size_t memory_bytes() const { return owned_codes_.size() + owned_scales_.size() * sizeof(float); }

  // A query in the kernels' form: row_bytes() codes (zero past dims) in `out`; sets its offset and
  // returns its scale.
  float encode_query(const float* v, std::int8_t* out, std::int32_t* offset) const;
  // Row r's own codes as a query (a node looking for its neighbours while the graph is built).
  float row_as_query(std::size_t r, std::int8_t* out, std::int32_t* offset) const;

  // out[i] = approximate similarity of the query to row ids[i] (both scales applied).
  void score(const kernels::Int8Kernels& kk, const std::uint32_t* ids, std::size_t n, const std::int8_t* query,
             std::int32_t offset, float query_scale, std::int32_t* dots, float* out) const {
    kk.dot_rows(codes_, row_bytes_, ids, n, query, offset, dots);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(dots[i]) * (query_scale * scales_[ids[i]]);
  }
  void prefetch(std::uint32_t r) const {
    const std::uint8_t* p = row(r);
    for (std::size_t b = 0; b < row_bytes_; b += kernels::kNavRowAlign) __builtin_prefetch(p + b);
  }

 private:
  std::size_t rows_ = 0, dims_ = 0, row_bytes_ = 0;
  std::vector<std::uint8_t, core::HugePageAllocator<std::uint8_t>> owned_codes_;
  std::vector<float> owned_scales_;
  const std::uint8_t* codes_ = nullptr;
  const float* scales_ = nullptr;
  std::shared_ptr<const void> owner_;
};

}  // namespace nndex::graph
