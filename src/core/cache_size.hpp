// This machine's cache sizes, read once from the OS, for choosing between cache-resident and
// streaming code paths and for sizing per-thread shares without hard-coding any one CPU.
#pragma once

#include <cstddef>

namespace nndex::core {

struct CacheSizes {
  std::size_t l2_per_core = 0;  // bytes of L2 per hardware thread that shares it (0: unknown)
  std::size_t last_level = 0;   // bytes of the largest cache level (0: unknown)
};

// Linux: sysfs first (inside VMs glibc's sysconf can report the host's figures), then sysconf;
// macOS: sysctl. Unknown values are 0.
const CacheSizes& cache_sizes();

// cache_sizes().last_level, or `fallback` when it is unknown.
std::size_t last_level_cache_bytes(std::size_t fallback);

}  // namespace nndex::core
