// The index's storage: rows in blocks of kernels::kBlockRows, each block transposed (see kernels.hpp).
// Only the last block is padded (with zero rows), so memory is rows * dims * 4 bytes plus < 16 rows.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/kernels.hpp"

namespace nndex::core {

class TiledMatrix {
 public:
  TiledMatrix() = default;
  TiledMatrix(std::size_t rows, std::size_t dims);

  std::size_t rows() const { return rows_; }
  std::size_t dims() const { return dims_; }
  std::size_t blocks() const { return blocks_; }
  std::size_t block_floats() const { return dims_ * kernels::kBlockRows; }
  std::size_t bytes() const { return blocks_ * block_floats() * sizeof(float); }

  const float* block(std::size_t b) const { return data_.get() + b * block_floats(); }
  float* block(std::size_t b) { return data_.get() + b * block_floats(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::size_t rows_ = 0;
  std::size_t dims_ = 0;
  std::size_t blocks_ = 0;
  std::unique_ptr<float[], Free> data_;
};

}  // namespace nndex::core
