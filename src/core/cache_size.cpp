#include "core/cache_size.hpp"

#include <fstream>
#include <string>

#include <unistd.h>

namespace nndex::core {
namespace {

std::size_t parse_size(const std::string& text) {
  std::size_t value = 0, i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') value = value * 10 + static_cast<std::size_t>(text[i++] - '0');
  if (i < text.size() && (text[i] == 'K' || text[i] == 'k')) value <<= 10;
  else if (i < text.size() && (text[i] == 'M' || text[i] == 'm')) value <<= 20;
  return value;
}

std::size_t from_sysfs() {
  std::size_t best_level = 0, best_size = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    std::size_t level = 0;
    std::string size;
    if (!(level_file >> level) || !(size_file >> size)) continue;
    if (level >= best_level) {
      best_level = level;
      best_size = parse_size(size);
    }
  }
  return best_size;
}

}  // namespace

std::size_t last_level_cache_bytes(std::size_t fallback) {
  if (const std::size_t bytes = from_sysfs(); bytes > 0) return bytes;
#if defined(_SC_LEVEL3_CACHE_SIZE)
  if (const long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE); bytes > 0) return static_cast<std::size_t>(bytes);
#endif
  return fallback;
}

}  // namespace nndex::core
