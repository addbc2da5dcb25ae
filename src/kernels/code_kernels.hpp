// Kernels over compressed rows (storage/code_matrix.hpp), one table per codec and instruction-set
// level, chosen once at run time like the float32 table (kernels.hpp).
//
// Layout: the float32 tiles' blocks of kBlockRows rows, each block a run of 64-byte lines, but a line
// holds a group of consecutive dims for the 16 rows instead of one dim: bf16 lines hold 2 dims
// (row r's pair at bytes 4r..4r+3), int8 lines 4 dims (row r's quad at bytes 4r..4r+3). That is one
// 32-bit lane per row, the operand shape of vdpbf16ps / vpdpbusd, NEON bfdot / sdot, and of an AMX B
// tile (16 lines = 32 bf16 or 64 int8 dims of 16 rows), so every level reads the same bytes. A
// block has `lines` = ceil(dims / 2) or ceil(dims / 4) lines; dims past the end are zero codes.
//
// int8 rows are stored offset by +128 as unsigned bytes so the rows are the unsigned operand of
// vpdpbusd (u8 x s8) and the query the signed one: sum (c + 128) q = sum c q + 128 sum q, and the
// second term is one constant per query (`offsets`), removed before scaling by the row's scale.
//
// Queries: nq rows of `query_stride` elements (bf16 as uint16_t bits, int8 as int8_t), zero past
// dims; the stride is a multiple of kBf16QueryAlign / kInt8QueryAlign and the buffer holds
// round_up(nq, 16) rows (zero rows past nq), so a matrix unit can read whole tiles. Storage keeps
// kCodeSlackBytes readable bytes past its last block for the same reason: a tile that runs past a
// block's last line reads the next block's (finite) codes against zero query elements.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"

namespace nndex::kernels {

enum class Codec { bf16, int8 };

inline constexpr std::size_t kCodeLineBytes = 64;
inline constexpr std::size_t kBf16DimsPerLine = 2;
inline constexpr std::size_t kInt8DimsPerLine = 4;
inline constexpr std::size_t kBf16QueryAlign = 32;
inline constexpr std::size_t kInt8QueryAlign = 64;
inline constexpr std::size_t kCodeSlackBytes = 1024;
// The score buffer of a `many` call holds round_up(nq, kScoreRowAlign) rows of score_stride floats.
inline constexpr std::size_t kScoreRowAlign = 16;

// Levels in increasing order; NNDEX_ISA caps them like the float32 levels (avx512 keeps its dot
// extensions, amx adds the tiles).
enum class CodeIsa { scalar, neon, neon_dot, avx2, avx2_vnni, avx512, avx512_dot, amx };

// bf16: scores[q * score_stride + r] = sum_j row_r[j] * query_q[j] in float32, for the nblocks * 16
// rows starting at `blocks` (each block `lines` lines).
using ScoreBf16Fn = void (*)(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines,
                             const std::uint16_t* queries, std::size_t query_stride, std::size_t nq, float* scores,
                             std::size_t score_stride);
// int8: scores[q * score_stride + r] = float(sum_j stored_r[j] * query_q[j] - offsets[q]) * row_scales[r],
// the sum in exact int32 (row_scales is indexed from the first row of `blocks`).
using ScoreInt8Fn = void (*)(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks,
                             std::size_t lines, const std::int8_t* queries, const std::int32_t* offsets,
                             std::size_t query_stride, std::size_t nq, float* scores, std::size_t score_stride);

// int8 rows stored row-major (graph navigation codes, graph/nav_codes.hpp): out[i] = sum_j
// stored[j] * query[j] - offset, exact int32, for the row at rows + ids[i] * row_bytes. row_bytes is a
// multiple of kNavRowAlign; `query` holds row_bytes codes (zero past dims) and `offset` must be
// encode_query_int8's 128 * sum(query): levels that sum c * q directly (NEON, on codes - 128) rely on it.
inline constexpr std::size_t kNavRowAlign = 64;
using DotRowsInt8Fn = void (*)(const std::uint8_t* rows, std::size_t row_bytes, const std::uint32_t* ids,
                               std::size_t n, const std::int8_t* query, std::int32_t offset, std::int32_t* out);

struct Bf16Kernels {
  CodeIsa level;
  const char* name;       // e.g. "avx512-bf16"
  const char* isa_tag;    // what Index::isa() appends ("+amx", "+bf16", or "" for a widening path)
  std::size_t many_group; // most queries one `many` call takes
  ScoreBf16Fn few;        // 1..kMaxQueryGroup queries
  ScoreBf16Fn many;       // 1..many_group queries (AMX tiles where present; otherwise == few's shape)
};

struct Int8Kernels {
  CodeIsa level;
  const char* name;
  const char* isa_tag;
  std::size_t many_group;
  ScoreInt8Fn few;
  ScoreInt8Fn many;
  DotRowsInt8Fn dot_rows;  // row-major rows by id (graph navigation)
};

// Best table for this CPU, capped by NNDEX_ISA; resolved once (thread-safe). AMX is used only after
// the kernel granted this process the tile state (Linux arch_prctl); otherwise the next level.
const Bf16Kernels& active_bf16();
const Int8Kernels& active_int8();
// One level's table, or nullptr when this build or CPU cannot run it (tests walk every level).
const Bf16Kernels* bf16_for(CodeIsa level);
const Int8Kernels* int8_for(CodeIsa level);
const char* code_isa_name(CodeIsa level);

// Per-level tables, defined where the build compiled that level's file; nullptr-returning stubs are
// not needed: dispatch only names what the build has.
const Bf16Kernels& bf16_scalar_table();
const Int8Kernels& int8_scalar_table();
#if defined(NNDEX_HAVE_AVX2)
const Bf16Kernels& bf16_avx2_table();
const Int8Kernels& int8_avx2_table();
const Int8Kernels& int8_avx2_vnni_table();
#endif
#if defined(NNDEX_HAVE_AVX512)
const Bf16Kernels& bf16_avx512_table();
const Int8Kernels& int8_avx512_table();
const Bf16Kernels& bf16_avx512_dot_table();
const Int8Kernels& int8_avx512_dot_table();
#endif
#if defined(NNDEX_HAVE_AMX)
const Bf16Kernels& bf16_amx_table();
const Int8Kernels& int8_amx_table();
#endif
#if defined(NNDEX_HAVE_NEON)
const Bf16Kernels& bf16_neon_table();
const Int8Kernels& int8_neon_table();
const Bf16Kernels& bf16_neon_dot_table();
const Int8Kernels& int8_neon_dot_table();
#endif

// bf16 <-> float32 (round to nearest even; a finite value never becomes inf: it saturates to the
// largest finite bf16). Shared by quantisation and the tests.
std::uint16_t to_bf16(float x);
float from_bf16(std::uint16_t b);

}  // namespace nndex::kernels
