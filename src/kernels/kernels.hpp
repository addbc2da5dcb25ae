// The kernel table: one set of hot loops per instruction-set level, chosen once at run time.
//
// Matrix layout ("tiles"): rows are grouped in blocks of kBlockRows; a block stores its rows
// transposed, dims x kBlockRows floats, so element j of every row in the block is one 64-byte line.
// Scoring a block is then kBlockRows independent fused multiply-add chains over j with no horizontal
// reduction, the same for every dims (1 or 1536), and the 16 scores land in one vector ready for the
// top-k threshold test. Every ISA accumulates each score in the same order (j = 0..dims-1, one fused
// multiply-add per step), so all levels return bit-identical scores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nndex::kernels {

inline constexpr std::size_t kBlockRows = 16;
// Queries scored together by one score_tiles call (the micro-kernel's register block).
inline constexpr std::size_t kMaxQueryGroup = 6;
// Extra entries select_above may write past its last position.
inline constexpr std::size_t kSelectSlack = 16;

enum class Isa { scalar = 0, neon = 1, avx2 = 2, avx512 = 3 };

struct KernelTable {
  Isa isa;
  const char* name;
  // scores[q * score_stride + r] = <query q, row r> for the nblocks * kBlockRows rows of `tiles`.
  // `queries` holds nqueries (1..kMaxQueryGroup) contiguous vectors of `dims` floats.
  void (*score_tiles)(const float* tiles, std::size_t nblocks, std::size_t dims, const float* queries,
                      std::size_t nqueries, float* scores, std::size_t score_stride);
  // score_tiles for one query over a matrix too large for the caches: prefetches ahead in address
  // order (bit-identical scores).
  void (*score_tiles_streaming)(const float* tiles, std::size_t nblocks, std::size_t dims, const float* query,
                                float* scores);
  // Writes the positions (ascending) of scores strictly greater than `threshold`; returns their count.
  // n is a multiple of kBlockRows; `positions` must have room for n + kSelectSlack entries (SIMD
  // levels store whole vectors past the last position).
  std::size_t (*select_above)(const float* scores, std::size_t n, float threshold, std::uint32_t* positions);
  // Plain dot product of two contiguous vectors (used for norms); accumulation order is ISA-specific.
  float (*dot)(const float* a, const float* b, std::size_t n);
  // Transposes up to kBlockRows rows (row r at rows[r], `dims` floats each, any alignment) into one
  // block at `block` (dims x 16 floats, 64-byte aligned), zero past `count`: how re-ranking lays out
  // the rows of a shortlist for score_tiles.
  void (*gather_block)(const float* const* rows, std::size_t count, std::size_t dims, float* block);
};

// The portable gather_block, used by the levels without a faster one.
void gather_block_scalar(const float* const* rows, std::size_t count, std::size_t dims, float* block);

// The best table this CPU supports, lowered by NNDEX_ISA=scalar|neon|avx2|avx512 when set.
// Resolved once (thread-safe); the reference stays valid for the life of the process.
const KernelTable& active();
// The table for one level, or nullptr when this build or CPU cannot run it (used by the tests).
const KernelTable* for_isa(Isa isa);
std::string_view isa_name(Isa isa);

// Per-ISA tables; defined only where the build compiled that file.
const KernelTable& scalar_table();
#if defined(NNDEX_HAVE_AVX2)
const KernelTable& avx2_table();
#endif
#if defined(NNDEX_HAVE_AVX512)
const KernelTable& avx512_table();
#endif
#if defined(NNDEX_HAVE_NEON)
const KernelTable& neon_table();
#endif

}  // namespace nndex::kernels
