// What an nndex::Index holds (shared by index.cpp, the API, and index_files.cpp, its files).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collection/collection.hpp"
#include "engine/placement.hpp"
#include "kernels/kernels.hpp"
#include "nndex/index.hpp"

namespace nndex {

struct Index::Impl {
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  Storage storage = Storage::f32;
  std::size_t threads = 1;
  const kernels::KernelTable* kernels = nullptr;
  std::string isa;  // the float32 level, plus the compressed-row kernels' tag
  std::size_t file_buffer_bytes = 0;  // a file read (not mapped) into memory, which the engines borrow
  std::unique_ptr<collection::Collection> collection;
};

// The float32 level's name with the compressed-row kernels' tag appended.
std::string isa_of(const kernels::KernelTable& kt, Storage storage);

void save_snapshot(const Index::Impl& impl, const std::string& path);
std::vector<std::byte> snapshot_bytes(const Index::Impl& impl);
// `reader`: set for a mapped file (positioned reads of it); null when the bytes are in memory.
std::unique_ptr<Index::Impl> load_snapshot(const std::string& name, std::span<const std::byte> bytes,
                                           std::shared_ptr<const void> owner, const LoadOptions& options,
                                           std::shared_ptr<const storage::FileReader> reader);

}  // namespace nndex
