// The single-file index format (docs/index-format.md): a checksummed header and section table, then
// page-aligned sections that a mapped file can be searched from in place.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tiled_matrix.hpp"
#include "ivf/ivf_index.hpp"

namespace nndex::io {

// 2: XXH64 checksums (1 used XXH3-64) and a canonical layout with zero padding. Older files are refused
// with a message asking for them to be re-saved.
inline constexpr std::uint32_t kFormatVersion = 2;

struct IndexContents {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  const core::TiledMatrix* matrix = nullptr;      // exact storage, or
  const ivf::IvfIndex::Parts* ivf = nullptr;      // IVF storage
};

struct LoadedIndex {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  core::TiledMatrix matrix;                        // set when the file holds an exact index
  std::optional<ivf::IvfIndex::Parts> ivf;         // set when it holds an IVF index
};

// Writes to `path` through a temporary file in the same folder, renamed into place once complete.
void save_file(const std::string& path, const IndexContents& contents);
std::vector<std::byte> to_bytes(const IndexContents& contents);

// The file's bytes, mapped (read-only, shared) or read into an aligned buffer; `owner` keeps them.
struct FileBytes {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;
};
FileBytes open_file(const std::string& path, bool mmap);

// Validates everything before trusting any of it; the result borrows from `bytes` (kept alive by
// `owner`). `name` is used in error messages. `verify` false skips the passes over the payload (section
// checksums and the non-finite float scan); the header checksum, every bound and size, the layout and
// its zero padding, the cluster table and the ids are still checked, so a damaged file cannot crash.
LoadedIndex read_index(const std::string& name, std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                       bool verify = true);

}  // namespace nndex::io
