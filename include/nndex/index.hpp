// nndex::Index: top-k similarity search over an in-memory float32 matrix, exact or approximate (graph or
// IVF), with user ids, filters, and rows added and removed after the build.
//
// Thread safety: every member may be called from any number of threads at once. A search works on the
// index as it was when the search began (a snapshot): add(), remove() and compact() build their
// changes aside and publish them at once, so a search sees each mutation entirely or not at all and
// never waits for one; mutations wait for each other. Work is shared out over one process-wide pool,
// so concurrent callers do not multiply the number of busy threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nndex/errors.hpp"
#include "nndex/gpu.hpp"
#include "nndex/types.hpp"

namespace nndex {

class Index {
 public:
  // Builds from a row-major float32 matrix of rows x dims.
  Index(std::span<const float> data, std::size_t rows, std::size_t dims, IndexOptions options = {});
  Index(const float* data, std::size_t rows, std::size_t dims, IndexOptions options = {});
  // Builds from any strided float32/float64 view; `should_stop` can abandon a long build.
  explicit Index(const MatrixView& data, IndexOptions options = {}, const StopCheck& should_stop = {});
  // Compressed storage only: the float32 rows used for re-ranking are read from `data` itself for the
  // life of the index instead of being copied (`keep_alive` holds them; they must not change). Built
  // over a memory-mapped file, only the pages of re-ranked rows are ever read, so resident memory is
  // essentially the codes. `rows_file`, when `data` is a contiguous row-major view of a file (a mapped
  // .npy), makes re-ranking read the rows from that file (see RowFile).
  // `ids`: one unique non-negative id per row (empty: the row numbers 0..rows-1).
  Index(const MatrixView& data, IndexOptions options, std::shared_ptr<const void> keep_alive,
        const StopCheck& should_stop = {}, const RowFile& rows_file = {}, std::span<const std::int64_t> ids = {});
  Index(const MatrixView& data, std::span<const std::int64_t> ids, IndexOptions options = {},
        const StopCheck& should_stop = {});

  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  // Top min(k, rows) neighbours of one query, most similar first, as ids (ties: the lower id). With
  // params.filter, the top min(k, allowed rows) among the rows it allows.
  std::vector<Neighbor> search(std::span<const float> query, std::size_t k,
                               const SearchParams& params = {}) const;
  // Same for n queries stored row-major (n x dims).
  BatchResult search_batch(std::span<const float> queries, std::size_t n, std::size_t k,
                           const SearchParams& params = {}) const;
  // Same for any strided float32/float64 view of n queries.
  BatchResult search_batch(const MatrixView& queries, std::size_t k, const SearchParams& params = {}) const;
  // Writes n x w results (w = min(k, allowed rows), returned) contiguously into caller-owned arrays,
  // which must have room for n x k entries.
  std::size_t search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                          const SearchParams& params = {}) const;

  // Adds rows (any float view of dims() columns, validated and normalised as the build's) with `ids`
  // (one unique non-negative id each, none already in the index) or, when empty, consecutive ids after
  // the largest ever used. Returns the ids added. On error nothing is added.
  std::vector<std::int64_t> add(const MatrixView& vectors, std::span<const std::int64_t> ids = {},
                                const StopCheck& should_stop = {});
  std::vector<std::int64_t> add(std::span<const float> vectors, std::size_t n, std::span<const std::int64_t> ids = {});
  // Removes the rows with these ids; returns how many. An id not in the index (or given twice) is an
  // InvalidArgument naming it, and nothing is removed. Removed rows are never returned again; their
  // space is reclaimed when compact() runs, or by itself for a segment whose removed rows pass 25%.
  std::size_t remove(std::span<const std::int64_t> ids, const StopCheck& should_stop = {});
  // Rebuilds the index into one segment of its live rows (ids unchanged), reclaiming removed rows and
  // re-calibrating approximate search.
  void compact(const StopCheck& should_stop = {});
  std::vector<std::int64_t> ids() const;  // the live ids, in stored order
  bool contains(std::int64_t id) const;
  std::size_t segments() const noexcept;      // segments searched (see collection/collection.hpp)
  std::size_t removed_rows() const noexcept;  // removed but not yet reclaimed
  std::uint64_t generation() const noexcept;  // mutations so far (0 for a fresh index)
  // One consistent reading of the figures above and of the next default id (one past the largest id
  // ever used), from the same state of the index.
  struct State {
    std::uint64_t generation = 0;
    std::size_t rows = 0;
    std::int64_t next_id = 0;
    std::size_t mask_entries = 0;  // entries a Filter::allow_mask needs (one past the largest id held)
  };
  State state() const noexcept;

  std::size_t rows() const noexcept;  // live rows
  std::size_t dims() const noexcept;
  bool normalized() const noexcept;
  std::size_t threads() const noexcept;  // resolved: never 0
  // Kernel level in use: "avx512", "avx2", "neon" or "scalar", with the compressed-row extension a
  // bf16 / int8 index scores with appended: "+amx" (AMX tiles for batches), "+bf16", "+vnni", "+dot".
  std::string_view isa() const noexcept;
  // Bytes the index holds in anonymous memory: what it built (rows, codes, the float32 rows for
  // re-ranking unless borrowed, ids, centroids), or the whole file when it was loaded without mmap.
  // A memory-mapped load holds almost nothing: its storage is the file's pages in the page cache.
  std::size_t memory_bytes() const noexcept;
  Storage storage() const noexcept;
  // "gpu" when the index's exact float32 searches run on a GPU (Backend::automatic: its calls large
  // enough to gain), else "cpu".
  std::string_view backend() const noexcept;
  // The GPU in use, if any.
  std::optional<GpuDevice> gpu_device() const;

  // Writes the index to one file (format: docs/index-format.md). Atomic: the file appears complete
  // under `path` or not at all.
  void save(const std::string& path) const;
  // Reads an index written by save(); rebuilds nothing. Throws FileFormatError for a bad file and
  // IoError when the file cannot be read.
  static Index load(const std::string& path, const LoadOptions& options = {});
  // The same format in memory (used for pickling).
  std::vector<std::byte> to_bytes() const;
  static Index from_bytes(std::span<const std::byte> bytes, const LoadOptions& options = {});

  bool approx() const noexcept;        // as requested in IndexOptions
  // The structure searched: "exact" (also when approx fell back on a small matrix), "ivf" or "graph".
  std::string_view method() const noexcept;
  bool uses_ivf() const noexcept;      // method() == "ivf"
  std::size_t ef() const noexcept;     // graph: default beam width (0 for other methods)
  std::size_t nlist() const noexcept;  // clusters in force (1 when searching exactly)
  std::size_t nprobe() const noexcept; // default clusters probed per query (1 when searching exactly)

 public:
  struct Impl;  // opaque (src/index_impl.hpp)

 private:
  explicit Index(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nndex
