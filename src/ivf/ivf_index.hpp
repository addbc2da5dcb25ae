// Inverted-file index: rows grouped by their nearest spherical k-means centroid, each cluster stored
// contiguously in the kernels' tiled layout (starting on a block boundary) with its original row ids,
// so probing a cluster is one sequential fused scan and re-ranking is exact.
//
// Memory: the rows once (plus < 16 padding rows per cluster), 8 bytes of id per row, the centroids.
// Compressed (compress()): the lists hold bf16 / int8 codes instead of float32 tiles, and the float32
// rows that re-rank each query's shortlist are kept in row order (or borrowed, or mapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/array.hpp"
#include "core/row_filter.hpp"
#include "core/tiled_matrix.hpp"
#include "scan/scan.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/code_matrix.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::ivf {

struct BuildParams {
  std::size_t nlist = 0;   // 0: chosen from the row count
  std::size_t nprobe = 0;  // 0: calibrated for `recall`
  double recall = 0.95;
  std::uint64_t seed = 0;
  std::size_t threads = 1;
  // Lists to assign the rows to instead of training (a segment added to an IVF index joins the
  // lists of its largest segment, as rows added to a faiss IVF index do); nlist is then theirs.
  const core::TiledMatrix* centroids = nullptr;
};

struct BuildReport {
  std::size_t train_points = 0;
  std::size_t iterations = 0;
  std::size_t reseeded = 0;
  double calibrated_recall = -1.0;  // held-out recall@10 at the chosen nprobe (-1: not calibrated)
  double seed_ms = 0, train_ms = 0, assign_ms = 0, layout_ms = 0, calibrate_ms = 0;
};

struct SearchReport {
  std::size_t probed = 0;      // (query, cluster) pairs scanned
  std::size_t candidates = 0;  // rows scored, over all queries
  std::size_t threads = 1;
  std::size_t shortlist = 0;   // compressed lists: rows re-scored exactly per query
  bool exhaustive = false;     // a filter made scanning every list (its occupied blocks) cheaper
};

// nlist chosen for a row count when the user gives none.
std::size_t default_nlist(std::size_t rows);

// Whether an automatic IVF is worth building for a matrix (an explicit nlist always builds one).
// Below about 2 MiB of rows a full scan takes a few tens of microseconds, and a small sample cannot
// calibrate a recall promise; measured on clustered 128- and 768-dim data, IVF answers single queries
// several times faster than exact search from there on.
inline constexpr std::size_t kMinRowsForIvf = 1024;
inline constexpr std::size_t kMinValuesForIvf = std::size_t{1} << 19;
inline bool ivf_pays_off(std::size_t rows, std::size_t dims) {
  return rows >= kMinRowsForIvf && rows * dims >= kMinValuesForIvf;
}

class IvfIndex {
 public:
  // Everything an IVF index is made of; what the index file stores.
  struct Parts {
    std::size_t rows = 0;
    std::size_t dims = 0;
    core::TiledMatrix data;              // clusters one after another, each from a block boundary
                                         // (empty when compressed: `codes` holds them)
    core::Array<std::int64_t> ids;       // stored row -> original row; -1 on padding
    std::vector<scan::Segment> clusters;
    core::TiledMatrix centroids;
    std::size_t nprobe = 1;
    std::optional<storage::CodeMatrix> codes;  // compressed lists, in the same stored order as `data`
    storage::ExactRows exact_rows;              // with codes: float32 rows, in original row order
  };
  explicit IvfIndex(Parts parts) : p_(std::move(parts)) {}
  const Parts& parts() const { return p_; }

  // rows: n x dims prepared (validated, normalised) row-major floats.
  IvfIndex(const float* rows, std::size_t n, std::size_t dims, const BuildParams& params,
           const kernels::KernelTable& kt, const StopCheck& should_stop);

  // Replaces the float32 lists by codes of `codec` encoded from `prepared` (the build's prepared rows,
  // row-major, original order), and keeps `rows` for re-ranking. Calibration has run on the float32
  // lists already; the shortlist's exact re-scoring keeps recall where it was.
  void compress(kernels::Codec codec, const float* prepared, storage::ExactRows rows, std::size_t threads,
                const StopCheck& should_stop);

  // queries: n x dims prepared floats. Writes n x min(k, rows) results, best first; every query gets
  // exactly that many (clusters beyond nprobe are probed when the first ones hold too few rows).
  // Compressed lists shortlist ceil(k * oversampling) rows per query (0: the storage's default) and
  // re-score them exactly.
  SearchReport search(const float* queries, std::size_t n, std::size_t k, std::size_t nprobe,
                      const kernels::KernelTable& kt, std::size_t max_threads, const StopCheck& should_stop,
                      std::int64_t* out_indices, float* out_scores, double oversampling = 0.0,
                      const core::RowFilter* filter = nullptr) const;
  // Float32 rows in original row order (rows x dims), prepared as at build.
  void copy_rows(const kernels::KernelTable& kt, float* out) const;

  std::size_t rows() const { return p_.rows; }
  bool compressed() const { return p_.codes.has_value(); }
  std::size_t nlist() const { return p_.clusters.size(); }
  std::size_t nprobe() const { return p_.nprobe; }
  std::size_t memory_bytes() const;
  const BuildReport& report() const { return report_; }

 private:
  std::size_t calibrate(const float* rows, const std::vector<std::int64_t>& labels,
                        const std::vector<std::size_t>& train_rows, double target, std::uint64_t seed,
                        const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop);
  // For each query, the clusters to scan, nearest first (CSR: offsets n + 1).
  // `list_rows[c]`: the rows of cluster c a search may return (a filter's), or null for all.
  void probe_lists(const float* queries, std::size_t n, std::size_t nprobe, std::size_t needed_rows,
                   const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop,
                   std::vector<std::size_t>& offsets, std::vector<std::int64_t>& clusters,
                   const std::vector<std::size_t>* list_rows = nullptr) const;

  Parts p_;
  BuildReport report_;
};

}  // namespace nndex::ivf
