#include "scan/scan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nndex::scan {
namespace {

using kernels::kBlockRows;

constexpr std::size_t kPanelBytes = std::size_t{384} << 10;
constexpr std::size_t kFilterRows = 4 * kBlockRows;

}  // namespace

std::size_t panel_blocks_for_bytes(std::size_t block_bytes, std::size_t max_blocks) {
  std::size_t blocks = std::clamp<std::size_t>(kPanelBytes / block_bytes, 1, max_blocks);
  return blocks >= 8 ? blocks / 8 * 8 : blocks;  // whole register blocks of the micro-kernels
}

std::size_t panel_blocks_for(std::size_t dims) {
  return panel_blocks_for_bytes(dims * kBlockRows * sizeof(float));
}

void TileScorer::score(std::size_t block, std::size_t nblocks, const std::byte* queries, std::size_t nq,
                       float* scores, std::size_t stride) const {
  const auto* q = reinterpret_cast<const float*>(queries);
  if (streaming_ && nq == 1) kt_.score_tiles_streaming(m_.block(block), nblocks, m_.dims(), q, scores);
  else kt_.score_tiles(m_.block(block), nblocks, m_.dims(), q, nq, scores, stride);
}

bool Scanner::scan(const Segment& segment, const std::byte* queries, std::size_t nq, topk::TopK* tops,
                   core::TaskContext* ctx) const {
  const std::size_t panel_blocks = scorer.panel_blocks();
  const std::size_t group_max = scorer.group();
  const std::size_t qbytes = scorer.query_bytes();
  alignas(64) float scores[kScanScoreFloats];
  std::uint32_t positions[kPanelMaxBlocks * kBlockRows + kernels::kSelectSlack];
  const std::size_t stride = panel_blocks * kBlockRows;

  auto occupied = [&](std::size_t b) {
    if (ids == nullptr) return filter->any_in_block(b);
    for (std::size_t r = b * kBlockRows; r < (b + 1) * kBlockRows; ++r)
      if (ids[r] >= 0 && filter->allowed(static_cast<std::size_t>(ids[r]))) return true;
    return false;
  };
  for (std::size_t b = segment.block_begin, nblocks = 0; b < segment.block_end; b += nblocks) {
    if (ctx != nullptr && ctx->stop_requested()) return false;
    if (filter == nullptr || !skip_empty_blocks) {
      nblocks = std::min(panel_blocks, segment.block_end - b);
    } else {
      // Score only runs of blocks that hold an allowed row.
      while (b < segment.block_end && !occupied(b)) ++b;
      if (b == segment.block_end) break;
      nblocks = 1;
      while (nblocks < panel_blocks && b + nblocks < segment.block_end && occupied(b + nblocks)) ++nblocks;
    }
    const std::size_t first = (b - segment.block_begin) * kBlockRows;  // offset of this panel in the segment
    const std::size_t valid = std::min(nblocks * kBlockRows, segment.rows - first);
    const std::size_t row0 = b * kBlockRows;
    for (std::size_t g = 0; g < nq; g += group_max) {
      const std::size_t group = std::min(group_max, nq - g);
      scorer.score(b, nblocks, queries + g * qbytes, group, scores, stride);
      for (std::size_t i = 0; i < group; ++i) {
        topk::TopK& top = tops[g + i];
        const float* s = scores + i * stride;
        // Filter a few blocks at a time so the threshold tightens as the heap fills: a fresh heap
        // would otherwise let a whole panel through.
        for (std::size_t at = 0; at < valid;) {
          // In a plain scan ids only grow, so a score equal to the threshold can never win its tie;
          // with an id map it might, so equal scores go on to the full comparison.
          const float threshold = ids == nullptr ? top.threshold()
                                                 : std::nextafter(top.threshold(), -std::numeric_limits<float>::infinity());
          // A full heap's threshold moves little: the rest of the panel is filtered in one call (fast
          // scorers, AMX above all, are otherwise held up by the per-call overhead).
          const std::size_t span = top.full() ? nblocks * kBlockRows - at : std::min(kFilterRows, nblocks * kBlockRows - at);
          const std::size_t found = kt.select_above(s + at, span, threshold, positions);
          for (std::size_t c = 0; c < found; ++c) {
            const std::size_t offset = at + positions[c];
            if (offset >= valid) break;
            const std::size_t row = row0 + offset;
            const std::int64_t id = ids == nullptr ? static_cast<std::int64_t>(row) : ids[row];
            if (filter != nullptr && !filter->allowed(static_cast<std::size_t>(id))) continue;
            top.push(s[offset], id);
          }
          at += span;
        }
      }
    }
  }
  return true;
}

}  // namespace nndex::scan
