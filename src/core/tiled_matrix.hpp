// The index's storage: rows in blocks of kernels::kBlockRows, each block transposed (see kernels.hpp).
// Only the last block is padded (with zero rows), so memory is rows * dims * 4 bytes plus < 16 rows.
// The floats are either owned (an aligned allocation) or borrowed from a mapped index file, kept
// alive by `owner`.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/kernels.hpp"

namespace nndex::core {

class TiledMatrix {
 public:
  TiledMatrix() = default;
  // Allocates storage for rows x dims (contents unset).
  TiledMatrix(std::size_t rows, std::size_t dims);
  // Borrows blocks laid out at `data` (64-byte aligned), alive as long as `owner`.
  TiledMatrix(std::size_t rows, std::size_t dims, const float* data, std::shared_ptr<const void> owner);

  static std::size_t bytes_for(std::size_t rows, std::size_t dims);

  std::size_t rows() const { return rows_; }
  std::size_t dims() const { return dims_; }
  std::size_t blocks() const { return blocks_; }
  std::size_t block_floats() const { return dims_ * kernels::kBlockRows; }
  std::size_t bytes() const { return blocks_ * block_floats() * sizeof(float); }
  bool borrowed() const { return borrowed_; }

  const float* data() const { return data_; }
  const float* block(std::size_t b) const { return data_ + b * block_floats(); }
  float* block(std::size_t b) { return data_ + b * block_floats(); }

 private:
  std::size_t rows_ = 0;
  std::size_t dims_ = 0;
  std::size_t blocks_ = 0;
  bool borrowed_ = false;
  float* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

}  // namespace nndex::core
