// Exact re-ranking of a compressed scan's shortlist: each shortlisted row is read in float32
// (storage/exact_rows.hpp), gathered 16 at a time into one transposed block and scored with the same
// float32 tile kernel a float32 index uses, so the similarities returned are bit for bit those a
// storage="f32" index reports for the same rows, and ties break the same way (lower row first).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::storage {

// queries: n x dims prepared floats. shortlist_ids: n x shortlist row ids (best approximate first or
// in any order). Writes n x k exact results (k <= shortlist), best first.
void rerank(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* shortlist_ids,
            std::size_t shortlist, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
            const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores);

// The same with one list of `count` rows for every query: an exact search among those rows (a
// selective filter's allowed rows). Writes n x min(k, count) results.
void score_rows(const ExactRows& rows, const float* queries, std::size_t n, const std::int64_t* row_ids,
                std::size_t count, std::size_t k, const kernels::KernelTable& kt, std::size_t max_threads,
                const StopCheck& should_stop, std::int64_t* out_indices, float* out_scores);

// Rows a compressed index shortlists for k results: ceil(k * oversampling), at least k, at most rows.
// oversampling 0 takes the storage's default: max(ceil(k * 1.5), k + 8) for bf16 and
// max(ceil(k * 2), k + 8) for int8 (see SearchParams::oversampling).
inline constexpr double kDefaultBf16Oversampling = 1.5;
inline constexpr double kDefaultInt8Oversampling = 2.0;
inline constexpr std::size_t kDefaultExtraRows = 8;
std::size_t shortlist_size(std::size_t k, std::size_t rows, double oversampling, bool int8);

}  // namespace nndex::storage
