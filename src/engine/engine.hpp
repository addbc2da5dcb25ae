// The search engine of one segment (collection/snapshot.hpp), chosen when the segment is built or loaded.
//   exact: the packed matrix, scanned in full by the fused score + top-k loop (exact/);
//   ivf:   clustered lists probed per query and re-ranked exactly (ivf/);
//   compressed: bf16 / int8 codes scanned in full to shortlist rows, re-scored in float32 (exact/, storage/);
//   graph: an HNSW graph walked on int8 navigation codes, its beam re-scored in float32 (graph/).
// Index (src/index.cpp) validates and prepares queries; collection/ searches each segment's engine
// among the rows a filter allows and maps its row numbers to ids. Other backends plug in as engines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/row_filter.hpp"
#include "core/tiled_matrix.hpp"
#include "core/trace.hpp"
#include "io/index_file.hpp"
#include "graph/graph_index.hpp"
#include "ivf/ivf_index.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"
#include "storage/code_matrix.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::engine {

class Engine {
 public:
  virtual ~Engine() = default;

  virtual const char* method() const { return "exact"; }  // "exact", "ivf" or "graph"
  virtual const char* backend() const { return "cpu"; }   // "cpu", or "gpu" (gpu/gpu_engine.cpp)
  virtual bool uses_ivf() const { return false; }
  virtual std::size_t ef() const { return 0; }       // graph: default beam width (0: not a graph)
  virtual std::size_t nlist() const { return 1; }   // clusters in force (1: exact)
  virtual std::size_t nprobe() const { return 1; }  // default clusters probed per query (1: exact)
  virtual std::size_t memory_bytes() const = 0;

  // queries: n x dims prepared floats. Writes n x min(k, rows) results, best first (row numbers of
  // this engine); with `filter`, only its rows are results: n x min(k, filter->count()). When `trace`
  // is set, adds the path taken and its parameters to it.
  virtual void search(const float* queries, std::size_t n, std::size_t k, const SearchParams& params,
                      const kernels::KernelTable& kt, std::size_t threads, std::int64_t* out_indices,
                      float* out_scores, core::TraceLine* trace, const core::RowFilter* filter) const = 0;

  virtual std::size_t rows() const = 0;
  // Exact float32: the tiles themselves, which merges of such segments concatenate; null otherwise.
  virtual const core::TiledMatrix* exact_tiles() const { return nullptr; }
  // IVF: the lists' centroids, which segments added later are assigned to; null for other engines.
  virtual const core::TiledMatrix* ivf_centroids() const { return nullptr; }
  // Every row, prepared as at build, row-major in row order (rows() x dims): what merging and
  // compacting segments rebuild from.
  virtual void copy_rows(const kernels::KernelTable& kt, float* out) const = 0;

  // What the index file stores for this engine (the storage pointers of `contents`).
  virtual void describe_storage(io::IndexContents& contents) const = 0;
  // Build details for NNDEX_VERBOSE.
  virtual void describe_build(core::TraceLine& trace) const = 0;
};

std::unique_ptr<Engine> make_exact_engine(core::TiledMatrix matrix);
std::unique_ptr<Engine> make_ivf_engine(std::unique_ptr<ivf::IvfIndex> ivf);
std::unique_ptr<Engine> make_graph_engine(std::unique_ptr<graph::GraphIndex> graph, Storage storage);
std::unique_ptr<Engine> make_compressed_engine(storage::CodeMatrix codes, storage::ExactRows rows);

}  // namespace nndex::engine
