// Graph index (HNSW: Malkov & Yashunin, 2016): every row is a node linked to up to `degree` near
// neighbours on level 0, and a geometrically thinning sample of rows forms the upper levels (degree / 2
// links each) that a search descends greedily to find its way in. A query walks level 0 with a beam of
// `ef` candidates, scoring neighbours with the int8 navigation codes (graph/nav_codes.hpp), and the
// beam is re-scored exactly in float32 (storage/rerank.hpp), so similarities are exact and only the
// candidate set is approximate.
//
// Layout for search speed: level-0 links are one flat array, degree + 1 words per node (count, then
// ids), so a hop is one contiguous read, and the rows it leads to are prefetched together before they
// are scored. Memory per row: row_bytes of codes + 4 (scale) + 4 * (degree + 1) of links + 4 (upper
// offset) + the float32 row the re-ranking reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/array.hpp"
#include "core/huge_pages.hpp"
#include "core/row_filter.hpp"
#include "graph/nav_codes.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::graph {

inline constexpr std::size_t kDefaultDegree = 32;
inline constexpr std::size_t kMinDegree = 4;
inline constexpr std::size_t kMaxDegree = 256;
// 100 rather than hnswlib's 200. 64 built 34% faster on 62,000 real 384-dim embeddings for a 20% wider
// beam, but on 1,000,000 clustered 128-dim rows it lost connectivity: recall@10 0.93 instead of 0.96 at
// ef = 128, and 0.98 at most however wide the beam.
inline constexpr std::size_t kDefaultEfConstruction = 100;

struct BuildParams {
  std::size_t degree = kDefaultDegree;
  std::size_t ef_construction = kDefaultEfConstruction;
  std::size_t ef = 0;       // 0: calibrated for `recall`
  double recall = 0.96;
  std::uint64_t seed = 0;
  std::size_t threads = 1;
};

struct BuildReport {
  double calibrated_recall = -1.0;  // held-out recall@10 at the chosen ef (-1: not calibrated)
  std::size_t calibration_queries = 0;
  double encode_ms = 0, insert_ms = 0, calibrate_ms = 0;
};

// Beam rows re-scored exactly for k results from a beam of `width`.
std::size_t rerank_size(std::size_t k, std::size_t width, std::size_t rows, double oversampling);

struct SearchReport {
  std::size_t threads = 1;
  std::size_t ef = 0;
  std::size_t shortlist = 0;  // beam rows re-scored per query
  std::size_t scored = 0;  // rows scored with codes, over all queries
  std::size_t exact = 0;   // queries answered by scoring a filter's rows exactly instead
};

// Whether a filter allowing `allowed` of `rows` rows is searched by scoring those rows exactly
// rather than by a filtered walk. A walk scores about `walk_scored` codes unfiltered and, since it
// keeps only allowed rows, about walk_scored * rows / allowed filtered; an exact pass reads each
// allowed float32 row once (kExactRowCost code scorings' worth: four times the bytes, read in order).
inline constexpr double kExactRowCost = 2.0;
bool filter_scans_exactly(std::size_t allowed, std::size_t rows, std::size_t walk_scored);

class GraphIndex {
 public:
  // What the index file stores.
  struct Parts {
    std::size_t rows = 0, dims = 0;
    std::size_t degree = kDefaultDegree;  // level-0 link slots; upper levels have degree / 2
    std::size_t ef = 0;                   // default beam width
    std::uint32_t entry = 0;              // the top level's entry node
    std::uint32_t top_level = 0;
    core::Array<std::uint32_t, core::HugePageAllocator<std::uint32_t>> links;  // rows x (degree + 1): count, ids
    core::Array<std::uint32_t> upper_offsets;  // rows + 1: where each node's upper levels start in `upper`
    core::Array<std::uint32_t> upper;          // per node, levels 1..L, (degree / 2 + 1) words each
    NavCodes nav;
    storage::ExactRows exact_rows;             // float32 rows for the re-ranking, in row order
  };
  explicit GraphIndex(Parts parts) : p_(std::move(parts)) {}
  const Parts& parts() const { return p_; }

  // `prepared`: n x dims validated (normalised) row-major floats, encoded into navigation codes;
  // `rows` re-ranks (it may own `prepared` itself, or borrow the caller's).
  GraphIndex(const float* prepared, storage::ExactRows rows, const BuildParams& params, const kernels::KernelTable& kt,
             const StopCheck& should_stop);

  // queries: n x dims prepared floats. Writes n x min(k, rows) exact results, best first; `ef` 0 takes
  // the index's default, and the beam is never narrower than k. Of the beam, the best
  // rerank_size(...) by navigation score are re-scored in float32 (`oversampling` as for compressed
  // storage: 0 is int8's default).
  SearchReport search(const float* queries, std::size_t n, std::size_t k, std::size_t ef, double oversampling,
                      const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
                      std::int64_t* out_indices, float* out_scores,
                      const core::RowFilter* filter = nullptr) const;

  std::size_t rows() const { return p_.rows; }
  std::size_t ef() const { return p_.ef; }
  std::size_t degree() const { return p_.degree; }
  std::size_t memory_bytes() const;
  const BuildReport& report() const { return report_; }

  // Checks the structure of loaded parts (every id in range, counts within degree, offsets
  // monotonic); throws FileFormatError naming `name`.
  static void validate(const Parts& parts, const std::string& name);

 private:
  // For one query: candidate ids (the beam, at least min(k, rows)) into `out`; returns rows scored.
  std::size_t beam_search(const float* query, std::size_t ef, const kernels::Int8Kernels& kk,
                          std::vector<std::uint32_t>& out, const core::RowFilter* filter) const;

  Parts p_;
  BuildReport report_;
};

}  // namespace nndex::graph
