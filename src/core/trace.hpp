// NNDEX_VERBOSE=1: one line per call on stderr naming the path taken. Read once; when unset a call
// pays one predictable branch.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace nndex::core {

inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("NNDEX_VERBOSE");
    return v != nullptr && *v != '\0' && !(v[0] == '0' && v[1] == '\0');
  }();
  return on;
}

template <class... Args>
void trace(const char* format, Args... args) {
  std::fprintf(stderr, format, args...);
  std::fputc('\n', stderr);
}

}  // namespace nndex::core
