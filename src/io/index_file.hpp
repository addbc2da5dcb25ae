// The single-file index format (docs/index-format.md): a checksummed header and section table, then
// page-aligned sections that a mapped file can be searched from in place.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tiled_matrix.hpp"
#include "graph/graph_index.hpp"
#include "ivf/ivf_index.hpp"
#include "nndex/types.hpp"
#include "storage/code_matrix.hpp"
#include "storage/exact_rows.hpp"

namespace nndex::io {

// 4: graph indexes (graph sections, flag). 3: compressed storage (codes, scales and float32 rows sections). 2: XXH64 checksums (1 used XXH3-64)
// and a canonical layout with zero padding. Version 2 files (float32 only) read as before; version 1
// files are refused with a message asking for them to be re-saved.
inline constexpr std::uint32_t kFormatVersion = 4;
inline constexpr std::uint32_t kOldestReadableVersion = 2;

struct IndexContents {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  const core::TiledMatrix* matrix = nullptr;      // exact storage, or
  const ivf::IvfIndex::Parts* ivf = nullptr;      // IVF storage (its tiles empty when compressed)
  const storage::CodeMatrix* codes = nullptr;     // compressed storage (in the IVF's stored order)
  const storage::ExactRows* exact_rows = nullptr; // with codes or a graph: the float32 rows, in row order
  const graph::GraphIndex::Parts* graph = nullptr; // graph storage (rows in exact_rows)
  Storage graph_storage = Storage::f32;            // what a graph index was built with (f32 or int8)
};

struct LoadedIndex {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  Storage storage = Storage::f32;
  core::TiledMatrix matrix;                        // set when the file holds an exact float32 index
  std::optional<ivf::IvfIndex::Parts> ivf;         // set when it holds an IVF index
  std::optional<storage::CodeMatrix> codes;        // set when it holds compressed rows, with
  storage::ExactRows exact_rows;                   //   the float32 rows that re-rank them
  std::optional<graph::GraphIndex::Parts> graph;   // set when it holds a graph (its rows inside)
};

// Writes one index image at `base` (page-aligned) through `write_at`; returns its size in bytes.
std::size_t write_index(const IndexContents& contents, const std::function<void(std::size_t, const void*, std::size_t)>& write_at,
                        std::size_t base);

// Writes to `path` through a temporary file in the same folder, renamed into place once complete.
void save_file(const std::string& path, const IndexContents& contents);
std::vector<std::byte> to_bytes(const IndexContents& contents);

// The file's bytes, mapped (read-only, shared) or read into an aligned buffer; `owner` keeps them.
struct FileBytes {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;
  bool mapped = false;  // false: read into an anonymous buffer
  std::shared_ptr<const storage::FileReader> reader;  // mapped files: positioned reads of the same file
};
FileBytes open_file(const std::string& path, bool mmap);

// Validates everything before trusting any of it; the result borrows from `bytes` (kept alive by
// `owner`). `name` is used in error messages. `verify` false skips the passes over the payload (section
// checksums and the non-finite float scan); the header checksum, every bound and size, the layout and
// its zero padding, the cluster table and the ids are still checked, so a damaged file cannot crash.
LoadedIndex read_index(const std::string& name, std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                       bool verify = true);

}  // namespace nndex::io
