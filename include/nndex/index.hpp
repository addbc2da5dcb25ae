// nndex::Index: top-k similarity search over an in-memory float32 matrix, exact or approximate (graph or IVF).
//
// Thread safety: a constructed Index is immutable; search() and search_batch() may be called from any
// number of threads at once. Work is shared out over one process-wide pool, so concurrent callers do
// not multiply the number of busy threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nndex/errors.hpp"
#include "nndex/types.hpp"

namespace nndex {

namespace storage {
class FileReader;
}

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
  Index(const MatrixView& data, IndexOptions options, std::shared_ptr<const void> keep_alive,
        const StopCheck& should_stop = {}, const RowFile& rows_file = {});

  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  // Top min(k, rows) neighbours of one query, most similar first; ties go to the lower row index.
  std::vector<Neighbor> search(std::span<const float> query, std::size_t k,
                               const SearchParams& params = {}) const;
  // Same for n queries stored row-major (n x dims).
  BatchResult search_batch(std::span<const float> queries, std::size_t n, std::size_t k,
                           const SearchParams& params = {}) const;
  // Writes n x min(k, rows) results into caller-owned arrays (no allocation beyond scratch).
  void search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                   const SearchParams& params = {}) const;

  std::size_t rows() const noexcept;
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

 private:
  struct Impl;
  explicit Index(std::unique_ptr<Impl> impl);
  // `reader`: set for a mapped file (positioned reads of it); null when the bytes are in memory.
  static Index from_file_view(const std::string& name, std::span<const std::byte> bytes,
                              std::shared_ptr<const void> owner, const LoadOptions& options,
                              std::shared_ptr<const storage::FileReader> reader);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nndex
