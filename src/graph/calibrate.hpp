// Choosing the default beam width: the smallest ef (to within about 6%) whose exact-re-ranked results
// reach the target recall@10 on held-out rows (rows not yet in the graph, so they are new queries to it,
// as a user's are), against their exact neighbours among the rows that are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::graph {

struct Calibration {
  std::size_t ef = 0;
  double recall = -1.0;
};

// ef when nothing was calibrated (too few rows to hold any out).
inline constexpr std::size_t kUncalibratedEf = 64;

// The rows held out for calibration (sorted), or none when the matrix is too small to spare them.
std::vector<std::uint32_t> calibration_rows(std::size_t rows, std::uint64_t seed);

// candidates(query, ef, want, ids): the graph walk's candidate rows for one prepared query.
using CandidateFn = std::function<void(const float*, std::size_t, std::size_t, std::vector<std::uint32_t>&)>;

// `held`: the rows excluded from the truth (the held-out queries themselves).
Calibration calibrate_ef(const storage::ExactRows& rows, const std::vector<std::uint32_t>& queries,
                         const std::vector<bool>& held, double target, const CandidateFn& candidates,
                         const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop);

}  // namespace nndex::graph
