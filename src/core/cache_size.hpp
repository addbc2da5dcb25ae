// The size of this machine's last-level cache, for choosing between cache-resident and streaming
// code paths without hard-coding any one CPU.
#pragma once

#include <cstddef>

namespace nndex::core {

// Bytes of the largest cache level the OS reports (Linux sysfs first: inside VMs glibc's sysconf
// can report the host's figure), or `fallback` when nothing is known.
std::size_t last_level_cache_bytes(std::size_t fallback);

}  // namespace nndex::core
