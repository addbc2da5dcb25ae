// Building an engine from rows: the structure the options ask for (exact, compressed, IVF or graph),
// or exact search when the rows are too few for an approximate one to pay off. The Index's first
// segment is built here from the caller's matrix; added, merged and compacted segments from rows an
// index already holds (prepared, so `normalize` is false for them).
#pragma once

#include <cstddef>
#include <memory>

#include "engine/engine.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::engine {

struct BuildInput {
  MatrixView data;
  bool normalize = true;          // L2-normalise the rows (false: they are trusted as given)
  // Compressed storage only: re-rank from `data` itself for the index's life instead of a copy
  // (`keep_alive` holds it), read through `row_reader` from `row_offset` when set.
  std::shared_ptr<const void> keep_alive;
  std::shared_ptr<const storage::FileReader> row_reader;
  std::uint64_t row_offset = 0;
  // An added or merged segment: approximate only when its size pays off, whatever the method named.
  bool segment = false;
  // An IVF segment: assign the rows to these lists instead of training its own (null: train).
  const core::TiledMatrix* ivf_centroids = nullptr;
};

// Whether the build is approximate (`approx` and the size rules) and which structure.
struct BuildChoice {
  bool ivf = false;
  bool graph = false;
};
BuildChoice choose_structure(const IndexOptions& options, std::size_t rows, std::size_t dims, bool segment);

std::unique_ptr<Engine> build(const BuildInput& input, const IndexOptions& options, const kernels::KernelTable& kt,
                              std::size_t threads, const StopCheck& should_stop);

}  // namespace nndex::engine
