// Exact top-k search: a grid of (query block, row range) tasks over the shared pool, each running the
// fused scoring + top-k loop of scan.hpp. Enough queries are split between threads (no merging);
// few queries split the rows instead, each split with its own n x k heaps (splits x n x k entries),
// merged at the end. No queries x rows score matrix is ever built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/thread_budget.hpp"
#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::exact {

struct Plan {
  std::size_t threads = 1;        // threads actually used
  std::size_t query_block = 1;    // queries per task
  std::size_t row_splits = 1;     // row ranges per query block
  std::size_t panel_blocks = 1;   // row blocks scored per step
  const char* path = "serial";
};

// queries: n x dims prepared (normalised when the index is) floats, contiguous.
// Writes n x min(k, rows) results, each row best first.
Plan search(const core::TiledMatrix& m, const float* queries, std::size_t n, std::size_t k,
            const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
            std::int64_t* out_indices, float* out_scores);

Plan make_plan(std::size_t rows, std::size_t dims, std::size_t n, std::size_t max_threads,
               const core::ThreadBudgetInputs& inputs = core::ThreadBudgetInputs::now());

}  // namespace nndex::exact
