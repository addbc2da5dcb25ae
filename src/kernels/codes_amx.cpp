// AMX kernels over compressed rows (AMX-TILE/BF16/INT8; compiled with those flags for this file
// only, used only once code_dispatch.cpp got the tile state from the OS). `few` is the AVX-512 dot
// kernel (a tile pass wastes most of its 16 query rows on 1..6 queries); `many` multiplies tiles:
//   A = 16 queries x 64 bytes of the query buffer (32 bf16 or 64 int8 dims; stride = query stride),
//   B = 16 lines of one block: exactly a B tile in VNNI layout (16 rows x one 32-bit group each),
//   C = 16 queries x 16 rows of float32 (bf16) or int32 (int8: tdpbsud, signed query x unsigned
//       rows, the same exact sum as vpdpbusd), stored straight into the score buffer, whose row
//       count is a multiple of 16 (kScoreRowAlign).
// The K loop runs over ceil(lines / 16) chunks; a last partial chunk reads the next block's first
// lines (or the storage slack, kCodeSlackBytes) against the query's zero padding, so a block needs
// no tail handling. Tile loads take any address, but blocks and query rows should be 64-byte
// aligned: a misaligned tile row spans two cache lines (measured 1.6-1.7x slower).
// GCC 12 flags the self-initialised _mm512_undefined_*() inside its own AVX-512 intrinsics (a false
// positive GCC 13 no longer reports); the pragmas must precede the header they apply to.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/code_kernels.hpp"

namespace nndex::kernels {
namespace {

constexpr std::size_t kTileRows = 16;
constexpr std::size_t kChunkBytes = kTileRows * kCodeLineBytes;  // one B tile: 16 lines

// Palette 1, all 8 tiles 16 rows x 64 bytes: tmm0-3 accumulators, tmm4-5 query tiles, tmm6-7
// block tiles. A constant object: the ldtilecfg intrinsic tells the compiler it reads only 8
// bytes, so a config filled in at run time could lose its stores.
struct alignas(64) TileConfig {
  std::uint8_t palette;
  std::uint8_t start_row;
  std::uint8_t reserved[14];
  std::uint16_t colsb[16];
  std::uint8_t rows[16];
};
constexpr TileConfig kConfig{1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};
alignas(64) const TileConfig kTileConfig = kConfig;

// Tile numbers must be literal tokens (the intrinsics are inline assembly), hence the macro.
#define NNDEX_TILE_DP(c, a, b)          \
  do {                                  \
    if constexpr (kBf16)                \
      _tile_dpbf16ps(c, a, b);          \
    else                                \
      _tile_dpbsud(c, a, b);            \
  } while (0)

// 32 queries (two A tiles) x `NB` (1 or 2) blocks, C tiles: tmm0/1 for queries 0-15, tmm2/3 for 16-31.
template <bool kBf16, int NB>
inline void tiles_2xn(const std::uint8_t* block, std::size_t block_bytes, std::size_t chunks, const std::uint8_t* q,
                      std::size_t q_bytes, float* scores, std::size_t score_bytes) {
  _tile_zero(0);
  _tile_zero(2);
  if constexpr (NB == 2) {
    _tile_zero(1);
    _tile_zero(3);
  }
  const std::uint8_t* q_hi = q + kTileRows * q_bytes;
  for (std::size_t c = 0; c < chunks; ++c) {
    _tile_loadd(4, q + c * kCodeLineBytes, q_bytes);
    _tile_loadd(5, q_hi + c * kCodeLineBytes, q_bytes);
    _tile_loadd(6, block + c * kChunkBytes, kCodeLineBytes);
    NNDEX_TILE_DP(0, 4, 6);
    NNDEX_TILE_DP(2, 5, 6);
    if constexpr (NB == 2) {
      _tile_loadd(7, block + block_bytes + c * kChunkBytes, kCodeLineBytes);
      NNDEX_TILE_DP(1, 4, 7);
      NNDEX_TILE_DP(3, 5, 7);
    }
  }
  char* out = reinterpret_cast<char*>(scores);
  char* out_hi = out + kTileRows * score_bytes;
  _tile_stored(0, out, score_bytes);
  _tile_stored(2, out_hi, score_bytes);
  if constexpr (NB == 2) {
    _tile_stored(1, out + kBlockRows * sizeof(float), score_bytes);
    _tile_stored(3, out_hi + kBlockRows * sizeof(float), score_bytes);
  }
}

// 16 queries (one A tile) x `NB` (1 or 4) blocks, C tiles tmm0-3; block tiles alternate tmm6/7.
template <bool kBf16, int NB>
inline void tiles_1xn(const std::uint8_t* block, std::size_t block_bytes, std::size_t chunks, const std::uint8_t* q,
                      std::size_t q_bytes, float* scores, std::size_t score_bytes) {
  _tile_zero(0);
  if constexpr (NB == 4) {
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::uint8_t* b = block + c * kChunkBytes;
    _tile_loadd(4, q + c * kCodeLineBytes, q_bytes);
    _tile_loadd(6, b, kCodeLineBytes);
    NNDEX_TILE_DP(0, 4, 6);
    if constexpr (NB == 4) {
      _tile_loadd(7, b + block_bytes, kCodeLineBytes);
      NNDEX_TILE_DP(1, 4, 7);
      _tile_loadd(6, b + 2 * block_bytes, kCodeLineBytes);
      NNDEX_TILE_DP(2, 4, 6);
      _tile_loadd(7, b + 3 * block_bytes, kCodeLineBytes);
      NNDEX_TILE_DP(3, 4, 7);
    }
  }
  char* out = reinterpret_cast<char*>(scores);
  _tile_stored(0, out, score_bytes);
  if constexpr (NB == 4) {
    _tile_stored(1, out + 1 * kBlockRows * sizeof(float), score_bytes);
    _tile_stored(2, out + 2 * kBlockRows * sizeof(float), score_bytes);
    _tile_stored(3, out + 3 * kBlockRows * sizeof(float), score_bytes);
  }
}

#undef NNDEX_TILE_DP

// All blocks of one call for up to 32 queries; the score rows past nq receive the zero queries'
// sums (the buffer has them, kScoreRowAlign).
template <bool kBf16>
void tiles_all(const std::uint8_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint8_t* q,
               std::size_t q_bytes, std::size_t nq, float* scores, std::size_t score_stride) {
  _tile_loadconfig(&kTileConfig);
  const std::size_t block_bytes = lines * kCodeLineBytes;
  const std::size_t chunks = (lines + kTileRows - 1) / kTileRows;
  const std::size_t score_bytes = score_stride * sizeof(float);
  std::size_t b = 0;
  if (nq > kTileRows) {
    for (; b + 2 <= nblocks; b += 2)
      tiles_2xn<kBf16, 2>(blocks + b * block_bytes, block_bytes, chunks, q, q_bytes, scores + b * kBlockRows,
                          score_bytes);
    for (; b < nblocks; ++b)
      tiles_2xn<kBf16, 1>(blocks + b * block_bytes, block_bytes, chunks, q, q_bytes, scores + b * kBlockRows,
                          score_bytes);
  } else {
    for (; b + 4 <= nblocks; b += 4)
      tiles_1xn<kBf16, 4>(blocks + b * block_bytes, block_bytes, chunks, q, q_bytes, scores + b * kBlockRows,
                          score_bytes);
    for (; b < nblocks; ++b)
      tiles_1xn<kBf16, 1>(blocks + b * block_bytes, block_bytes, chunks, q, q_bytes, scores + b * kBlockRows,
                          score_bytes);
  }
  _tile_release();
}

void bf16_amx_many(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint16_t* queries,
                   std::size_t query_stride, std::size_t nq, float* scores, std::size_t score_stride) {
  tiles_all<true>(reinterpret_cast<const std::uint8_t*>(blocks), nblocks, lines,
                  reinterpret_cast<const std::uint8_t*>(queries), query_stride * sizeof(std::uint16_t), nq, scores,
                  score_stride);
}

// The int32 sums land in the score buffer; each row of the first nq is then turned into
// float(sum - offset) * scale in place.
void int8_amx_many(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks, std::size_t lines,
                   const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride, std::size_t nq,
                   float* scores, std::size_t score_stride) {
  tiles_all<false>(blocks, nblocks, lines, reinterpret_cast<const std::uint8_t*>(queries), query_stride, nq, scores,
                   score_stride);
  const std::size_t rows = nblocks * kBlockRows;
  for (std::size_t q = 0; q < nq; ++q) {
    float* row = scores + q * score_stride;
    const __m512i offset = _mm512_set1_epi32(offsets[q]);
    for (std::size_t r = 0; r < rows; r += kBlockRows) {
      const __m512i sum = _mm512_loadu_si512(row + r);
      const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, offset));
      _mm512_storeu_ps(row + r, _mm512_mul_ps(s, _mm512_loadu_ps(row_scales + r)));
    }
  }
}

}  // namespace

// many_group 32: two query tiles share each block tile (2 x 2 C tiles); a batch is cut into
// groups of 32 queries by the caller.
const Bf16Kernels& bf16_amx_table() {
  static const Bf16Kernels table{CodeIsa::amx, "amx-bf16", "+amx", 2 * kTileRows, bf16_avx512_dot_table().few,
                                 &bf16_amx_many};
  return table;
}

const Int8Kernels& int8_amx_table() {
  static const Int8Kernels table{CodeIsa::amx, "amx-int8", "+amx", 2 * kTileRows, int8_avx512_dot_table().few,
                                 &int8_amx_many, int8_avx512_dot_table().dot_rows};
  return table;
}

}  // namespace nndex::kernels
