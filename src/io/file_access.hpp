// Platform file access for the index format (src/io/file_access.cpp): POSIX, with a portable fallback
// for Windows. open_file (declared in index_file.hpp) is defined there too.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "storage/exact_rows.hpp"

namespace nndex::io {

using WriteAt = std::function<void(std::size_t offset, const void* data, std::size_t bytes)>;

// Writes `path` atomically: `fill` writes the pieces through its argument into a uniquely named
// temporary file beside `path` and returns the total size; the file is then sized, flushed and renamed
// over `path`. On any failure the temporary file is removed and IoError names `path`.
void write_file_atomically(const std::string& path, const std::function<std::size_t(const WriteAt&)>& fill);

// For a mapped region that is read through FileBytes::reader instead (the float32 rows that re-rank a
// compressed index): drops the pages the load's verification pass mapped in, so they leave the
// process's resident memory. The pages stay in the page cache.
void unmap_resident_pages(const void* data, std::size_t bytes);

// Positioned reads of `path`, opened once (IoError if it cannot be); with its size in bytes. nullptr
// where the platform has no positioned reads (callers then read through their mapping).
std::shared_ptr<const storage::FileReader> open_reader(const std::string& path, std::uint64_t* size);

}  // namespace nndex::io
