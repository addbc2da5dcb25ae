// Exact top-k on the GPU: the scoring kernel writes each block's best rows per query, the merge
// kernel folds those lists until one (or, for k > 512, a few) per query remains, and only those
// come back to the host, which finishes the merge. No rows x queries score matrix is ever stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/row_filter.hpp"
#include "gpu/device_matrix.hpp"
#include "gpu/gpu_pipelines.hpp"

namespace nndex::gpu {

class GpuSearch {
 public:
  // Uploads rows x dims row-major floats (prepared as the index stores them).
  GpuSearch(std::shared_ptr<const Context> context, const float* rows, std::size_t n, std::size_t dims,
            std::size_t max_part_bytes = 0);

  // queries: n x dims prepared floats. Writes n x width results (width = min(k, allowed rows)), best
  // first, ties to the lower row. Safe to call from many threads (calls take turns on the device).
  void search(const float* queries, std::size_t n, std::size_t k, const core::RowFilter* filter,
              std::int64_t* out_rows, float* out_scores) const;

  const Context& context() const { return *context_; }
  std::size_t device_bytes() const { return matrix_.bytes(); }
  std::size_t rows() const { return matrix_.rows(); }

 private:
  // Buffers reused from call to call, grown when a call needs more.
  struct Scratch {
    Buffer queries, allowed, lists_a, lists_b, readback;
  };
  void run_pass(const float* queries, std::size_t n, std::size_t width, const core::RowFilter* filter,
                std::int64_t* out_rows, float* out_scores) const;

  std::shared_ptr<const Context> context_;
  std::size_t dims_;
  DeviceMatrix matrix_;
  Pipelines pipelines_;
  mutable std::mutex mutex_;
  mutable Scratch scratch_;
};

}  // namespace nndex::gpu
