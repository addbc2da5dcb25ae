// The fused scoring + top-k inner loop shared by the exact and IVF engines.
//
// Rows are scored a panel of blocks at a time against groups of kernels::kMaxQueryGroup queries; the
// scores (at most kMaxQueryGroup x kPanelMaxBlocks x 16 floats = 24 KiB, on the stack) are filtered
// against each query's running threshold with one SIMD compare per 16 scores, and only survivors reach
// the heap. This buffer and the positions array (4 KiB) are all the working memory a thread needs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "topk/topk.hpp"

namespace nndex::scan {

inline constexpr std::size_t kPanelMaxBlocks = 64;

// Blocks per panel for this dims: the panel stays in L2 while every query of a block is scored on it.
std::size_t panel_blocks_for(std::size_t dims);

// A run of stored rows: blocks [block_begin, block_end), of which the first `rows` rows are real
// (the rest of the last block is padding). Stored row i has id ids[i], or i when ids is null.
struct Segment {
  std::size_t block_begin;
  std::size_t block_end;
  std::size_t rows;
};

struct Scanner {
  const core::TiledMatrix& matrix;
  const kernels::KernelTable& kt;
  std::size_t panel_blocks;
  const std::int64_t* ids = nullptr;
  // Single queries over a matrix far larger than the caches use the prefetching kernel.
  bool streaming = false;

  // Pushes every row of `segment` into tops[q] for the nq contiguous prepared queries. Returns false
  // when ctx asked to stop (results are then incomplete).
  bool scan(const Segment& segment, const float* queries, std::size_t nq, topk::TopK* tops,
            core::TaskContext* ctx) const;
};

}  // namespace nndex::scan
