// A search over a snapshot: each segment searched by its engine among its allowed rows (the caller's
// filter, less removed rows), the results mapped to user ids and merged. One segment with default
// ids and nothing removed or filtered is searched straight into the caller's arrays, as before ids.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collection/snapshot.hpp"
#include "core/trace.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::collection {

// The rows a search may return, per segment (null: all of that segment's rows).
class SegmentFilters {
 public:
  // Throws InvalidArgument for a malformed filter (a negative id, a mask too short for the ids).
  SegmentFilters(const Snapshot& snapshot, const Filter& filter);
  const core::RowFilter* of(std::size_t segment) const { return filters_[segment]; }
  std::size_t allowed() const { return allowed_; }  // over all segments

 private:
  std::vector<core::RowFilter> owned_;
  std::vector<const core::RowFilter*> filters_;
  std::size_t allowed_ = 0;
};

// queries: n x dims prepared floats. Writes n x w results (w = min(k, allowed rows)) and returns w;
// indices are user ids.
std::size_t search(const Snapshot& snapshot, const SegmentFilters& filters, const float* queries, std::size_t n,
                   std::size_t k, const SearchParams& params, const kernels::KernelTable& kt, std::size_t threads,
                   std::int64_t* out_ids, float* out_scores, core::TraceLine* trace);

}  // namespace nndex::collection
