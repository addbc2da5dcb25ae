// A segment's rows on the device, in the scoring kernel's layout: blocks of 1024 rows, each stored
// column-major in vec4s (zero-padded to whole vec4s and whole blocks), split over as many buffers as
// the device's binding limit needs.
#pragma once

#include <cstddef>
#include <vector>

#include "gpu/gpu_context.hpp"

namespace nndex::gpu {

struct MatrixPart {
  Buffer buffer;
  std::size_t first_block = 0;
  std::size_t blocks = 0;
};

class DeviceMatrix {
 public:
  // rows x dims row-major floats, uploaded through a bounded staging buffer. `max_part_bytes` (0:
  // the device's limit) caps each buffer; tests lower it to cover several parts.
  DeviceMatrix(const Context& context, const float* rows, std::size_t n, std::size_t dims, std::size_t max_part_bytes = 0);

  std::size_t rows() const { return rows_; }
  std::size_t dims4() const { return dims4_; }
  std::size_t blocks() const { return blocks_; }
  const std::vector<MatrixPart>& parts() const { return parts_; }
  std::size_t bytes() const { return blocks_ * block_bytes(); }
  std::size_t block_bytes() const;

 private:
  std::size_t rows_ = 0;
  std::size_t dims_ = 0;
  std::size_t dims4_ = 0;
  std::size_t blocks_ = 0;
  std::vector<MatrixPart> parts_;
};

}  // namespace nndex::gpu
