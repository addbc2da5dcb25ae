#include "core/cache_size.hpp"

#include <cstdint>
#include <fstream>
#include <string>

#if defined(__linux__)
#include <unistd.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

namespace nndex::core {
namespace {

std::size_t parse_size(const std::string& text) {
  std::size_t value = 0, i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') value = value * 10 + static_cast<std::size_t>(text[i++] - '0');
  if (i < text.size() && (text[i] == 'K' || text[i] == 'k')) value <<= 10;
  else if (i < text.size() && (text[i] == 'M' || text[i] == 'm')) value <<= 20;
  return value;
}

// Hardware threads in a sysfs cpu list such as "0-3,8,10-11".
std::size_t count_cpus(const std::string& list) {
  std::size_t count = 0, i = 0;
  while (i < list.size()) {
    std::size_t first = 0, last = 0;
    while (i < list.size() && list[i] >= '0' && list[i] <= '9') first = first * 10 + static_cast<std::size_t>(list[i++] - '0');
    last = first;
    if (i < list.size() && list[i] == '-') {
      last = 0;
      ++i;
      while (i < list.size() && list[i] >= '0' && list[i] <= '9') last = last * 10 + static_cast<std::size_t>(list[i++] - '0');
    }
    count += last >= first ? last - first + 1 : 1;
    while (i < list.size() && (list[i] < '0' || list[i] > '9')) ++i;
  }
  return count;
}

#if defined(__linux__)
CacheSizes from_sysfs() {
  CacheSizes sizes;
  std::size_t best_level = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size"), type_file(dir + "type"), shared_file(dir + "shared_cpu_list");
    std::size_t level = 0;
    std::string size, type, shared;
    if (!(level_file >> level) || !(size_file >> size)) continue;
    type_file >> type;
    if (type == "Instruction") continue;
    const std::size_t bytes = parse_size(size);
    if (level == 2) {
      shared_file >> shared;
      const std::size_t sharers = shared.empty() ? 1 : count_cpus(shared);
      sizes.l2_per_core = bytes / (sharers > 0 ? sharers : 1);
    }
    if (level >= best_level) {
      best_level = level;
      sizes.last_level = bytes;
    }
  }
  return sizes;
}
#endif

CacheSizes detect() {
  CacheSizes sizes;
#if defined(__linux__)
  sizes = from_sysfs();
#if defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
  if (sizes.l2_per_core == 0)
    if (const long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE); bytes > 0) sizes.l2_per_core = static_cast<std::size_t>(bytes);
  if (sizes.last_level == 0)
    if (const long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE); bytes > 0) sizes.last_level = static_cast<std::size_t>(bytes);
#endif
#elif defined(__APPLE__)
  // Apple cores share an L2 per cluster and have no L3: the L2 is also the last level.
  auto read = [](const char* name) -> std::size_t {
    std::uint64_t value = 0;
    std::size_t len = sizeof(value);
    return sysctlbyname(name, &value, &len, nullptr, 0) == 0 ? static_cast<std::size_t>(value) : 0;
  };
  sizes.last_level = read("hw.l3cachesize");
  std::size_t l2 = read("hw.perflevel0.l2cachesize");
  const std::size_t sharers = read("hw.perflevel0.cpusperl2");
  if (l2 == 0) l2 = read("hw.l2cachesize");
  if (sizes.last_level == 0) sizes.last_level = l2;
  sizes.l2_per_core = sharers > 0 ? l2 / sharers : l2;
#endif
  return sizes;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes = detect();
  return sizes;
}

std::size_t last_level_cache_bytes(std::size_t fallback) {
  const std::size_t bytes = cache_sizes().last_level;
  return bytes > 0 ? bytes : fallback;
}

}  // namespace nndex::core
