// Internals of the index file shared by its readers and writers (index_file.cpp, graph_sections.cpp):
// the header and section-table structs, the section kinds and flags, and the checked access to a
// section's bytes. The format itself is documented in docs/index-format.md.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "io/checksum.hpp"
#include "nndex/errors.hpp"

namespace nndex::io::format {

static_assert(std::endian::native == std::endian::little, "the index format is little-endian");

inline constexpr char kMagic[8] = {'N', 'N', 'D', 'E', 'X', 'I', 'D', 'X'};
inline constexpr std::size_t kAlign = 4096;  // sections start on page boundaries: mappable, 64-byte aligned
inline constexpr std::size_t kFixedHeader = 64;
inline constexpr std::size_t kSectionEntry = 32;
inline constexpr std::size_t kMaxSections = 8;

inline constexpr std::uint32_t kNormalized = 1, kApprox = 2, kIvf = 4, kBf16 = 8, kInt8 = 16, kGraph = 32;  // header flags
inline constexpr std::uint32_t kKnownFlags = kNormalized | kApprox | kIvf | kBf16 | kInt8 | kGraph;
enum SectionKind : std::uint32_t {
  kTiles = 1, kIds = 2, kClusters = 3, kCentroids = 4, kCodes = 5, kScales = 6, kRows = 7,
  // graph (format 4)
  kGraphInfo = 8, kNavCodes = 9, kNavScales = 10, kLinks = 11, kUpperOffsets = 12, kUpperLinks = 13
};

struct FixedHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_bytes;  // fixed header + section table (the header checksum follows)
  std::uint32_t flags;
  std::uint32_t block_rows;
  std::uint64_t rows;
  std::uint64_t dims;
  std::uint64_t nlist;
  std::uint64_t nprobe;
  std::uint64_t sections;
};
static_assert(sizeof(FixedHeader) == kFixedHeader);

struct SectionEntry {
  std::uint32_t kind;
  std::uint32_t element_bytes;
  std::uint64_t offset;
  std::uint64_t bytes;
  std::uint64_t checksum;  // XXH64 (seed 0) of the section's bytes
};
static_assert(sizeof(SectionEntry) == kSectionEntry);

struct Section {
  SectionKind kind;
  std::uint32_t element_bytes;
  const void* data;
  std::size_t bytes;
};

inline std::size_t align_up(std::size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

[[noreturn]] inline void bad(const std::string& name, const std::string& problem) {
  throw FileFormatError("nndex index file '" + name + "': " + problem);
}

inline bool all_finite(const float* v, std::size_t n) {
  // Exponent bits all ones means NaN or infinity; integer form so the loop vectorises.
  std::uint32_t bad_bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, v + i, sizeof bits);
    bad_bits |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad_bits == 0;
}

template <class T>
const T* section_data(const std::string& name, std::span<const std::byte> bytes, const SectionEntry& e,
                      std::size_t expected_bytes, const char* what, bool verify) {
  if (e.bytes != expected_bytes)
    bad(name, std::string(what) + " section holds " + std::to_string(e.bytes) + " bytes, expected " +
                  std::to_string(expected_bytes));
  if (e.offset % kAlign != 0 || e.offset > bytes.size() || e.bytes > bytes.size() - e.offset)
    bad(name, std::string(what) + " section lies outside the file (truncated?)");
  if (verify && xxh64(bytes.data() + e.offset, e.bytes) != e.checksum)
    bad(name, std::string("checksum mismatch in the ") + what + " section (the file is corrupt)");
  const T* data = reinterpret_cast<const T*>(bytes.data() + e.offset);
  if constexpr (std::is_same_v<T, float>) {
    if (!verify) return data;  // a trusted file: no pass over the payload at all
    // Checksums catch damage, not a crafted file: NaN/inf would silently drop rows from results.
    if (!all_finite(data, e.bytes / sizeof(float))) bad(name, std::string("non-finite values in the ") + what + " section");
  }
  return data;
}

// a * b, or nullopt on overflow.
inline std::optional<std::size_t> mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return std::nullopt;
  return a * b;
}

}  // namespace nndex::io::format
