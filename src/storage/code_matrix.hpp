// Compressed rows: bf16 or int8 codes in the kernels' block layout (kernels/code_kernels.hpp), plus
// one float scale per row for int8. Like TiledMatrix, the bytes are owned (an aligned allocation) or
// borrowed from a mapped index file, and kernels::kCodeSlackBytes stay readable past the last block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/array.hpp"
#include "kernels/code_kernels.hpp"

namespace nndex::storage {

using kernels::Codec;

class CodeMatrix {
 public:
  CodeMatrix() = default;
  // Allocates zeroed codes (and scales) for rows x dims.
  CodeMatrix(Codec codec, std::size_t rows, std::size_t dims);
  // Borrows codes (code_bytes() + kCodeSlackBytes readable, 64-byte aligned) and, for int8, one scale
  // per stored row (blocks() * 16), alive as long as `owner`.
  CodeMatrix(Codec codec, std::size_t rows, std::size_t dims, const std::byte* codes, const float* scales,
             std::shared_ptr<const void> owner);

  static std::size_t lines_for(Codec codec, std::size_t dims);
  static std::size_t code_bytes_for(Codec codec, std::size_t rows, std::size_t dims);

  Codec codec() const { return codec_; }
  std::size_t rows() const { return rows_; }
  std::size_t dims() const { return dims_; }
  std::size_t lines() const { return lines_; }
  std::size_t blocks() const { return blocks_; }
  std::size_t block_bytes() const { return lines_ * kernels::kCodeLineBytes; }
  std::size_t code_bytes() const { return blocks_ * block_bytes(); }  // without the slack
  std::size_t scale_count() const { return codec_ == Codec::int8 ? blocks_ * kernels::kBlockRows : 0; }
  // Bytes held in anonymous memory (0 when borrowed).
  std::size_t memory_bytes() const;
  bool borrowed() const { return borrowed_; }

  const std::byte* codes() const { return codes_; }
  const std::byte* block(std::size_t b) const { return codes_ + b * block_bytes(); }
  std::byte* block(std::size_t b) { return codes_ + b * block_bytes(); }
  const float* scales() const { return scales_; }
  float* scales() { return scales_; }

 private:
  Codec codec_ = Codec::bf16;
  std::size_t rows_ = 0, dims_ = 0, lines_ = 0, blocks_ = 0;
  bool borrowed_ = false;
  std::byte* codes_ = nullptr;
  float* scales_ = nullptr;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<const void> scales_owner_;
};

}  // namespace nndex::storage
