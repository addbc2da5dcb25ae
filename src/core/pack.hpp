// Builds the tiled storage from the caller's matrix: validates, normalises and transposes each block of
// rows, in parallel, reporting the lowest bad row whatever the thread timing.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::core {

TiledMatrix pack_matrix(const MatrixView& src, bool normalize, const kernels::KernelTable& kt, std::size_t threads,
                        const StopCheck& should_stop);

// The same validation and normalisation into a plain row-major rows x dims buffer (IVF builds train
// and assign on this layout before packing rows cluster by cluster).
// `kind` names the vectors in errors ("row 7", "query 7").
std::vector<float> prepare_rows(const MatrixView& src, bool normalize, const kernels::KernelTable& kt,
                                std::size_t threads, const StopCheck& should_stop, const char* kind = "row");
// The same into `out` (src.rows x src.cols floats), e.g. a slice of a larger buffer.
void prepare_rows_into(const MatrixView& src, bool normalize, const kernels::KernelTable& kt, std::size_t threads,
                       const StopCheck& should_stop, float* out, const char* kind = "row");

// Tiles an already prepared row-major matrix (no validation).
TiledMatrix tile_rows(const float* rows, std::size_t n, std::size_t dims);

// The rows of `parts`, one after another, in one matrix: whole blocks copied, lanes shifted where a
// part starts inside a block (no transposition, no validation). Every part has the same dims.
TiledMatrix concat_tiles(std::span<const TiledMatrix* const> parts, std::size_t threads = 1,
                         const StopCheck& should_stop = {});

// Rows [0, rows) of `m` back to row-major (rows x dims), block by block.
void untile_rows(const TiledMatrix& m, float* out);

// Scratch-free transposition of up to kBlockRows prepared rows (row-major, `dims` each) into one block.
void write_block(const float* rows, std::size_t count, std::size_t dims, float* block);

}  // namespace nndex::core
