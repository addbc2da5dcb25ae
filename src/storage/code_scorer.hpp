// scan::BlockScorer over compressed rows: queries are encoded once per call into fixed-size records
// (bf16 values, or int8 values followed by the query's +128 correction), and blocks are scored with
// the active bf16 / int8 kernel table. Batches large enough to fill a matrix unit use the table's
// `many` kernel (AMX tiles), everything else the `few` kernel.
#pragma once

#include <cstddef>
#include <vector>

#include "core/aligned_buffer.hpp"
#include "kernels/code_kernels.hpp"
#include "scan/scan.hpp"
#include "storage/code_matrix.hpp"

namespace nndex::storage {

class CodeScorer final : public scan::BlockScorer {
 public:
  // `batch`: queries in the call (decides few / many). Tables default to the active ones.
  CodeScorer(const CodeMatrix& m, std::size_t batch, const kernels::Bf16Kernels* bf16 = nullptr,
             const kernels::Int8Kernels* int8 = nullptr);

  std::size_t blocks() const override { return m_.blocks(); }
  std::size_t scan_bytes() const override;
  std::size_t group() const override { return group_; }
  std::size_t panel_blocks() const override { return panel_; }
  std::size_t query_bytes() const override { return record_bytes_; }
  std::size_t query_padding_rows() const override { return kernels::kScoreRowAlign - 1; }
  void score(std::size_t block, std::size_t nblocks, const std::byte* queries, std::size_t nq, float* scores,
             std::size_t stride) const override;

  // n prepared float32 queries (n x dims) as records, plus zeroed padding rows; large batches on up to
  // `threads` threads.
  core::AlignedBytes encode(const float* queries, std::size_t n, std::size_t threads = 1) const;
  // The kernel in use, for traces ("amx-int8", "avx512-bf16", ...).
  const char* kernel_name() const;

 private:
  const CodeMatrix& m_;
  const kernels::Bf16Kernels* bf16_ = nullptr;
  const kernels::Int8Kernels* int8_ = nullptr;
  bool many_ = false;
  std::size_t group_ = 0, panel_ = 0, stride_ = 0, record_bytes_ = 0;
};

}  // namespace nndex::storage
