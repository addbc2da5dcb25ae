// NNDEX_VERBOSE=1: one line per call on stderr naming the path taken. Read once; when unset a call
// pays one predictable branch and builds no line.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace nndex::core {

inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("NNDEX_VERBOSE");
    return v != nullptr && *v != '\0' && !(v[0] == '0' && v[1] == '\0');
  }();
  return on;
}

// "[nndex] <what> key=value key=value ...", written whole in one call so lines from concurrent
// searches do not interleave.
class TraceLine {
 public:
  explicit TraceLine(const char* what) : text_(std::string("[nndex] ") + what) {}

  TraceLine& add(const char* key, std::size_t value) { return add(key, std::to_string(value)); }
  TraceLine& add(const char* key, bool value) { return add(key, std::string(value ? "1" : "0")); }
  TraceLine& add(const char* key, const char* value) { return add(key, std::string(value)); }
  TraceLine& add(const char* key, double value, int decimals) { return add(key, fixed(value, decimals)); }
  TraceLine& add_ms(const char* key, double ms) { return add(key, fixed(ms, 3) + "ms"); }
  TraceLine& add(const char* key, const std::string& value) {
    text_ += ' ';
    text_ += key;
    text_ += '=';
    text_ += value;
    return *this;
  }

  void emit() const { std::fprintf(stderr, "%s\n", text_.c_str()); }

 private:
  static std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
  }
  std::string text_;
};

}  // namespace nndex::core
