// Encoding float32 vectors as codes (layout: kernels/code_kernels.hpp).
//   bf16: round to nearest even, finite values saturating rather than becoming inf.
//   int8: symmetric per-vector scale max|x| / 127, codes round(x / scale) in [-127, 127]. A constant
//         row is exact (every code +-127), a zero row has scale 0, and tiny or huge rows keep their
//         full relative precision because the scale is a float of their own magnitude.
// Queries are encoded the same way per call; an int8 query's own scale is left out (it is the same
// for every row, so the ranking is unchanged).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/code_kernels.hpp"
#include "nndex/types.hpp"
#include "storage/code_matrix.hpp"

namespace nndex::storage {

// Writes up to 16 prepared rows (row-major, `dims` each) into block `b` of `m` (and their scales).
void encode_block(const float* rows, std::size_t count, std::size_t b, CodeMatrix& m);

// Elements per encoded query in the kernels' form (zero-padded past dims to the matrix unit's tile).
std::size_t query_stride(Codec codec, std::size_t dims);
// One query: `dims` values into out[0..dims) (the padding is the caller's, zeroed). int8 returns the
// +128 correction, 128 * the sum of its codes.
void encode_query_bf16(const float* v, std::size_t dims, std::uint16_t* out);
std::int32_t encode_query_int8(const float* v, std::size_t dims, std::int8_t* out);

// Validates, prepares (normalising when asked) and encodes every row of `src`, in parallel, reporting
// the lowest bad row. With `prepared` set, also keeps the prepared rows there (row-major) for exact
// re-ranking.
CodeMatrix encode_matrix(const MatrixView& src, bool normalize, Codec codec, const kernels::KernelTable& kt,
                         std::size_t threads, const StopCheck& should_stop, std::vector<float>* prepared);

}  // namespace nndex::storage
