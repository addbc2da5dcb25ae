// The file of an index that has changed since it was built (docs/index-format.md, "Segment sets"):
// a checksummed table of segments, each a complete single-index image (index_file.hpp) with the user
// ids of its rows and which of them are removed, all page-aligned so a mapped file is searched in
// place. An index of one segment with default ids and nothing removed is written as a plain image,
// byte for byte what it was before ids existed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collection/id_map.hpp"
#include "core/row_filter.hpp"
#include "io/index_file.hpp"

namespace nndex::io {

inline constexpr std::uint32_t kSegmentSetVersion = 1;

struct SegmentImage {
  IndexContents contents;
  const collection::IdMap* ids = nullptr;
  const core::RowFilter* live = nullptr;  // null: every row live
};

// Whether `bytes` start like a segment set (else they should be a plain image).
bool is_segment_set(std::span<const std::byte> bytes);

// What the set records besides its segments (so an index with every row removed still loads).
struct SetInfo {
  std::int64_t next_id = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  Storage storage = Storage::f32;
};

std::size_t write_segment_set(std::span<const SegmentImage> segments, const SetInfo& info,
                              const std::function<void(std::size_t, const void*, std::size_t)>& write_at);

struct LoadedSegment {
  std::span<const std::byte> image;  // a plain image inside the file, for read_index
  std::size_t image_offset = 0;      // where it starts in the file
  collection::IdMap ids;             // checked against the image's row count by the caller
  bool ids_range = true;
  std::vector<std::int64_t> explicit_ids;  // when !ids_range
  std::int64_t first_id = 0;
  std::shared_ptr<const core::RowFilter> live;
  std::vector<std::uint64_t> live_words;
};
struct LoadedSegmentSet {
  std::vector<LoadedSegment> segments;
  SetInfo info;
};
// Validates the table, the checksums of the id and removal sections (with `verify`) and their shapes;
// the images are read by the caller (read_index), which then calls finish_segment.
LoadedSegmentSet read_segment_set(const std::string& name, std::span<const std::byte> bytes, bool verify);
// Checks a segment's ids and removal bits against its image's row count and builds them.
void finish_segment(const std::string& name, LoadedSegment& segment, std::size_t rows);

}  // namespace nndex::io
