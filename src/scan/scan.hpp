// The fused scoring + top-k inner loop shared by the exact and IVF engines, over any storage.
//
// Rows are scored a panel of blocks at a time against groups of queries (BlockScorer::group()); the
// scores (at most kScanScoreFloats floats, on the stack) are filtered against each query's running
// threshold with one SIMD compare per 16 scores, and only survivors reach the heap. This buffer and
// the positions array are all the working memory a thread needs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/row_filter.hpp"
#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "topk/topk.hpp"

namespace nndex::scan {

inline constexpr std::size_t kPanelMaxBlocks = 64;
inline constexpr std::size_t kScanScoreFloats = 32 * 32 * kernels::kBlockRows;  // 64 KiB

// Blocks per panel for blocks of `block_bytes`: the panel stays in L2 while every query of a block
// is scored on it; at most `max_blocks`.
std::size_t panel_blocks_for_bytes(std::size_t block_bytes, std::size_t max_blocks = kPanelMaxBlocks);
// The same for float32 tiles of `dims`.
std::size_t panel_blocks_for(std::size_t dims);

// A run of stored rows: blocks [block_begin, block_end), of which the first `rows` rows are real
// (the rest of the last block is padding).
struct Segment {
  std::size_t block_begin;
  std::size_t block_end;
  std::size_t rows;
};

// What a scan scores: float32 tiles or compressed codes behind one interface, so the engines plan,
// split and merge the same way whatever the storage. Queries are handed over already encoded in the
// scorer's form (`query_bytes` each, from encode()), so a batch is encoded once per call.
class BlockScorer {
 public:
  virtual ~BlockScorer() = default;
  virtual std::size_t blocks() const = 0;
  virtual std::size_t scan_bytes() const = 0;  // what one pass over every block reads
  virtual std::size_t group() const = 0;       // queries per score() call
  virtual std::size_t panel_blocks() const = 0;
  virtual std::size_t query_bytes() const = 0;
  // Extra zeroed query rows an encoded batch must carry past its last query (matrix units read whole tiles).
  virtual std::size_t query_padding_rows() const { return 0; }
  // scores[i * stride + r] for queries [0, nq) at `queries` and the rows of blocks [block, block + nblocks).
  virtual void score(std::size_t block, std::size_t nblocks, const std::byte* queries, std::size_t nq, float* scores,
                     std::size_t stride) const = 0;
};

// Float32 tiles: queries are prepared floats, scored with the float32 kernel table.
class TileScorer final : public BlockScorer {
 public:
  TileScorer(const core::TiledMatrix& m, const kernels::KernelTable& kt, bool streaming = false)
      : m_(m), kt_(kt), panel_(panel_blocks_for(m.dims())), streaming_(streaming) {}
  std::size_t blocks() const override { return m_.blocks(); }
  std::size_t scan_bytes() const override { return m_.bytes(); }
  std::size_t group() const override { return kernels::kMaxQueryGroup; }
  std::size_t panel_blocks() const override { return panel_; }
  std::size_t query_bytes() const override { return m_.dims() * sizeof(float); }
  void score(std::size_t block, std::size_t nblocks, const std::byte* queries, std::size_t nq, float* scores,
             std::size_t stride) const override;

 private:
  const core::TiledMatrix& m_;
  const kernels::KernelTable& kt_;
  std::size_t panel_;
  bool streaming_;  // single queries over a matrix far larger than the caches prefetch ahead
};

struct Scanner {
  const BlockScorer& scorer;
  const kernels::KernelTable& kt;  // select_above
  const std::int64_t* ids = nullptr;  // stored row i has id ids[i], or i when null
  // Rows (by id) that may enter the heaps; null: all.
  const core::RowFilter* filter = nullptr;
  // With a filter: blocks without an allowed row are not scored at all. Worth it only when that skips
  // much: the runs left are scored in shorter calls (int8 rows with 80% of blocks occupied took 1.8x
  // as long as a full scan; float32 with 56% took 0.73x), so callers turn it off from 75% occupied.
  bool skip_empty_blocks = true;

  // Pushes every row of `segment` into tops[q] for the nq encoded queries at `queries`. Returns false
  // when ctx asked to stop (results are then incomplete).
  bool scan(const Segment& segment, const std::byte* queries, std::size_t nq, topk::TopK* tops,
            core::TaskContext* ctx) const;
};

}  // namespace nndex::scan
