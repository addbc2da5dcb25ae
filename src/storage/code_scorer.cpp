#include "storage/code_scorer.hpp"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.hpp"
#include "storage/quantize.hpp"

namespace nndex::storage {
namespace {

using kernels::kBlockRows;
using kernels::kScoreRowAlign;

// The int8 correction sits in the 64 bytes after a record's codes (a whole line, so the codes of the
// next record stay aligned as they were).
constexpr std::size_t kInt8TrailerBytes = 64;
// Queries encoded per task (a few hundred microseconds of work).
constexpr std::size_t kEncodeChunk = 64;
// A matrix unit pays once a batch fills one tile of queries.
constexpr std::size_t kManyFromQueries = kScoreRowAlign;

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

}  // namespace

CodeScorer::CodeScorer(const CodeMatrix& m, std::size_t batch, const kernels::Bf16Kernels* bf16,
                       const kernels::Int8Kernels* int8)
    : m_(m) {
  std::size_t many_group = kernels::kMaxQueryGroup;
  if (m.codec() == Codec::bf16) {
    bf16_ = bf16 != nullptr ? bf16 : &kernels::active_bf16();
    many_group = bf16_->many_group;
    stride_ = query_stride(Codec::bf16, m.dims());
    record_bytes_ = stride_ * sizeof(std::uint16_t);
  } else {
    int8_ = int8 != nullptr ? int8 : &kernels::active_int8();
    many_group = int8_->many_group;
    stride_ = query_stride(Codec::int8, m.dims());
    record_bytes_ = stride_ + kInt8TrailerBytes;
  }
  many_ = many_group > kernels::kMaxQueryGroup && batch >= kManyFromQueries;
  group_ = many_ ? many_group : kernels::kMaxQueryGroup;
  panel_ = scan::panel_blocks_for_bytes(m.block_bytes(), std::min(scan::kPanelMaxBlocks,
                                                                  scan::kScanScoreFloats / (round_up(group_, kScoreRowAlign) * kBlockRows)));
}

std::size_t CodeScorer::scan_bytes() const { return m_.code_bytes() + m_.scale_count() * sizeof(float); }

const char* CodeScorer::kernel_name() const { return bf16_ != nullptr ? bf16_->name : int8_->name; }

core::AlignedBytes CodeScorer::encode(const float* queries, std::size_t n, std::size_t threads) const {
  const std::size_t padded = round_up(std::max<std::size_t>(n, 1), kScoreRowAlign);
  core::AlignedBytes out(padded * record_bytes_, std::byte{0});
  const std::size_t dims = m_.dims();
  auto task = [&](std::size_t t, core::TaskContext&) {
    for (std::size_t q = t * kEncodeChunk; q < std::min(n, (t + 1) * kEncodeChunk); ++q) {
      std::byte* record = out.data() + q * record_bytes_;
      if (bf16_ != nullptr) {
        encode_query_bf16(queries + q * dims, dims, reinterpret_cast<std::uint16_t*>(record));
      } else {
        const std::int32_t offset = encode_query_int8(queries + q * dims, dims, reinterpret_cast<std::int8_t*>(record));
        std::memcpy(record + stride_, &offset, sizeof offset);
      }
    }
  };
  const std::size_t tasks = (n + kEncodeChunk - 1) / kEncodeChunk;
  core::parallel_for(tasks, std::min(threads, tasks), {}, core::TaskFn(task));
  return out;
}

void CodeScorer::score(std::size_t block, std::size_t nblocks, const std::byte* queries, std::size_t nq, float* scores,
                       std::size_t stride) const {
  if (bf16_ != nullptr) {
    const auto* codes = reinterpret_cast<const std::uint16_t*>(m_.block(block));
    const auto* q = reinterpret_cast<const std::uint16_t*>(queries);
    (many_ ? bf16_->many : bf16_->few)(codes, nblocks, m_.lines(), q, stride_, nq, scores, stride);
    return;
  }
  std::int32_t offsets[64] = {};  // many_group <= 64 queries
  for (std::size_t i = 0; i < nq; ++i) std::memcpy(&offsets[i], queries + i * record_bytes_ + stride_, sizeof(std::int32_t));
  const auto* codes = reinterpret_cast<const std::uint8_t*>(m_.block(block));
  const auto* q = reinterpret_cast<const std::int8_t*>(queries);
  (many_ ? int8_->many : int8_->few)(codes, m_.scales() + block * kBlockRows, nblocks, m_.lines(), q, offsets,
                                     record_bytes_, nq, scores, stride);
}

}  // namespace nndex::storage
