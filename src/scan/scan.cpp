#include "scan/scan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nndex::scan {
namespace {

using kernels::kBlockRows;
using kernels::kMaxQueryGroup;

constexpr std::size_t kPanelBytes = std::size_t{384} << 10;
constexpr std::size_t kFilterRows = 4 * kBlockRows;

}  // namespace

std::size_t panel_blocks_for(std::size_t dims) {
  std::size_t blocks = std::clamp<std::size_t>(kPanelBytes / (dims * kBlockRows * sizeof(float)), 1, kPanelMaxBlocks);
  return blocks >= 8 ? blocks / 8 * 8 : blocks;  // whole register blocks of the micro-kernel
}

bool Scanner::scan(const Segment& segment, const float* queries, std::size_t nq, topk::TopK* tops,
                   core::TaskContext* ctx) const {
  const std::size_t dims = matrix.dims();
  alignas(64) float scores[kMaxQueryGroup * kPanelMaxBlocks * kBlockRows];
  std::uint32_t positions[kFilterRows + kernels::kSelectSlack];
  const std::size_t stride = panel_blocks * kBlockRows;

  for (std::size_t b = segment.block_begin; b < segment.block_end; b += panel_blocks) {
    if (ctx != nullptr && ctx->stop_requested()) return false;
    const std::size_t nblocks = std::min(panel_blocks, segment.block_end - b);
    const std::size_t first = (b - segment.block_begin) * kBlockRows;  // offset of this panel in the segment
    const std::size_t valid = std::min(nblocks * kBlockRows, segment.rows - first);
    const std::size_t row0 = b * kBlockRows;
    for (std::size_t g = 0; g < nq; g += kMaxQueryGroup) {
      const std::size_t group = std::min(kMaxQueryGroup, nq - g);
      if (streaming && nq == 1) kt.score_tiles_streaming(matrix.block(b), nblocks, dims, queries, scores);
      else kt.score_tiles(matrix.block(b), nblocks, dims, queries + g * dims, group, scores, stride);
      for (std::size_t i = 0; i < group; ++i) {
        topk::TopK& top = tops[g + i];
        const float* s = scores + i * stride;
        // Filter a few blocks at a time so the threshold tightens as the heap fills: a fresh heap
        // would otherwise let a whole panel through.
        for (std::size_t at = 0; at < valid; at += kFilterRows) {
          // In a plain scan ids only grow, so a score equal to the threshold can never win its tie;
          // with an id map it might, so equal scores go on to the full comparison.
          const float threshold = ids == nullptr ? top.threshold()
                                                 : std::nextafter(top.threshold(), -std::numeric_limits<float>::infinity());
          const std::size_t span = std::min(kFilterRows, nblocks * kBlockRows - at);
          const std::size_t found = kt.select_above(s + at, span, threshold, positions);
          for (std::size_t c = 0; c < found; ++c) {
            const std::size_t offset = at + positions[c];
            if (offset >= valid) break;
            const std::size_t row = row0 + offset;
            top.push(s[offset], ids == nullptr ? static_cast<std::int64_t>(row) : ids[row]);
          }
        }
      }
    }
  }
  return true;
}

}  // namespace nndex::scan
