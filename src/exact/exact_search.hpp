// Exact top-k search: a grid of (query block, row range) tasks over the shared pool, each running the
// fused scoring + top-k loop of scan.hpp. Enough queries are split between threads (no merging);
// few queries split the rows instead, each split with its own n x k heaps (splits x n x k entries),
// merged at the end. No queries x rows score matrix is ever built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/row_filter.hpp"
#include "core/thread_budget.hpp"
#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "scan/scan.hpp"

namespace nndex::exact {

struct Plan {
  std::size_t threads = 1;        // threads actually used
  std::size_t query_block = 1;    // queries per task
  std::size_t row_splits = 1;     // row ranges per query block
  std::size_t panel_blocks = 1;   // row blocks scored per step
  const char* path = "serial";
};

// queries: n x dims prepared (normalised when the index is) floats, contiguous.
// Writes n x min(k, rows) results, each row best first. With `filter`, only its rows are candidates
// (n x min(k, filter->count()) results) and blocks holding none of them are not read.
Plan search(const core::TiledMatrix& m, const float* queries, std::size_t n, std::size_t k,
            const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
            std::int64_t* out_indices, float* out_scores, const core::RowFilter* filter = nullptr);

// The same over any storage: `rows` stored rows behind `scorer`, n queries already encoded by it
// (scorer.query_bytes() each, plus its padding rows).
Plan search(const scan::BlockScorer& scorer, std::size_t rows, std::size_t dims, const std::byte* queries,
            std::size_t n, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
            const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores,
            const core::RowFilter* filter = nullptr);

// What the plan needs to know of the storage besides its shape; zeros mean float32 tiles.
struct StorageShape {
  std::size_t scan_bytes = 0;   // bytes a full pass reads
  std::size_t query_bytes = 0;  // bytes of one encoded query
  std::size_t group = 0;        // queries per scoring call
  std::size_t panel_blocks = 0; // blocks the scorer scores per step
};

Plan make_plan(std::size_t rows, std::size_t dims, std::size_t n, std::size_t max_threads,
               const core::ThreadBudgetInputs& inputs = core::ThreadBudgetInputs::now(), StorageShape shape = {});

}  // namespace nndex::exact
