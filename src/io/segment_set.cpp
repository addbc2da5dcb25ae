#include "io/segment_set.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "io/checksum.hpp"
#include "io/format.hpp"

namespace nndex::io {
namespace {

using format::align_up;
using format::bad;

constexpr char kSetMagic[8] = {'N', 'N', 'D', 'E', 'X', 'S', 'E', 'T'};

struct SetHeader {
  char magic[8];
  std::uint32_t version;
  std::uint32_t segments;
  std::int64_t next_id;
  std::uint64_t header_bytes;  // this header, the table and its checksum, before page alignment
  std::uint64_t dims;
  std::uint32_t flags;         // kNormalized, kApprox as in an image's header
  std::uint32_t storage;       // 0 f32, 1 bf16, 2 int8
  std::uint64_t reserved[2];
};
static_assert(sizeof(SetHeader) == 64);

struct SetEntry {
  std::uint64_t image_offset, image_bytes;
  std::uint64_t ids_offset, ids_bytes;    // ids_bytes 0: the rows' ids are first_id, first_id + 1, ...
  std::int64_t first_id;
  std::uint64_t live_offset, live_bytes;  // live_bytes 0: no row removed
  std::uint64_t checksum;                 // XXH64 of the ids bytes, then (seed: that) of the live bytes
};
static_assert(sizeof(SetEntry) == 64);

constexpr std::size_t kMaxSegments = 1u << 16;

std::uint64_t blob_checksum(const void* ids, std::size_t ids_bytes, const void* live, std::size_t live_bytes) {
  return xxh64(live, live_bytes, xxh64(ids, ids_bytes));
}

}  // namespace

bool is_segment_set(std::span<const std::byte> bytes) {
  return bytes.size() >= sizeof kSetMagic && std::memcmp(bytes.data(), kSetMagic, sizeof kSetMagic) == 0;
}

std::size_t write_segment_set(std::span<const SegmentImage> segments, const SetInfo& info,
                              const std::function<void(std::size_t, const void*, std::size_t)>& write_at) {
  SetHeader h{};
  std::memcpy(h.magic, kSetMagic, sizeof kSetMagic);
  h.version = kSegmentSetVersion;
  h.segments = static_cast<std::uint32_t>(segments.size());
  h.next_id = info.next_id;
  h.dims = info.dims;
  h.flags = (info.normalized ? format::kNormalized : 0u) | (info.approx ? format::kApprox : 0u);
  h.storage = static_cast<std::uint32_t>(info.storage);
  h.header_bytes = sizeof(SetHeader) + segments.size() * sizeof(SetEntry) + sizeof(std::uint64_t);
  std::vector<SetEntry> table(segments.size());
  std::size_t at = align_up(h.header_bytes);
  std::vector<std::int64_t> ids;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const SegmentImage& seg = segments[s];
    SetEntry& e = table[s];
    e.image_offset = at;
    e.image_bytes = write_index(seg.contents, write_at, at);
    at = align_up(at + e.image_bytes);
    ids.clear();
    if (!seg.ids->is_range()) {
      ids.resize(seg.ids->rows());
      for (std::size_t r = 0; r < ids.size(); ++r) ids[r] = seg.ids->at(r);
      e.ids_offset = at;
      e.ids_bytes = ids.size() * sizeof(std::int64_t);
      write_at(at, ids.data(), e.ids_bytes);
      at = align_up(at + e.ids_bytes);
    }
    e.first_id = seg.ids->is_range() ? seg.ids->first() : 0;
    const void* live = nullptr;
    if (seg.live != nullptr) {
      live = seg.live->words().data();
      e.live_offset = at;
      e.live_bytes = seg.live->words().size() * sizeof(std::uint64_t);
      write_at(at, live, e.live_bytes);
      at = align_up(at + e.live_bytes);
    }
    e.checksum = blob_checksum(ids.data(), e.ids_bytes, live, e.live_bytes);
  }
  write_at(0, &h, sizeof h);
  if (!table.empty()) write_at(sizeof h, table.data(), table.size() * sizeof(SetEntry));
  // The checksum covers the header and table as written.
  std::vector<std::byte> head(sizeof h + table.size() * sizeof(SetEntry));
  std::memcpy(head.data(), &h, sizeof h);
  if (!table.empty()) std::memcpy(head.data() + sizeof h, table.data(), table.size() * sizeof(SetEntry));
  const std::uint64_t sum = xxh64(head.data(), head.size());
  write_at(head.size(), &sum, sizeof sum);
  return at;
}

LoadedSegmentSet read_segment_set(const std::string& name, std::span<const std::byte> bytes, bool verify) {
  if (bytes.size() < sizeof(SetHeader)) bad(name, "segment table is truncated");
  SetHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.version != kSegmentSetVersion)
    bad(name, "segment set version " + std::to_string(h.version) + " is not supported (this build reads " +
                  std::to_string(kSegmentSetVersion) + ")");
  if (h.segments > kMaxSegments) bad(name, "too many segments (" + std::to_string(h.segments) + ")");
  const std::size_t table_bytes = std::size_t{h.segments} * sizeof(SetEntry);
  if (h.header_bytes != sizeof h + table_bytes + sizeof(std::uint64_t) || h.header_bytes > bytes.size())
    bad(name, "segment table is truncated or malformed");
  std::uint64_t sum;
  std::memcpy(&sum, bytes.data() + sizeof h + table_bytes, sizeof sum);
  if (xxh64(bytes.data(), sizeof h + table_bytes) != sum) bad(name, "segment table checksum mismatch (the file is corrupt)");
  if (h.next_id < 0) bad(name, "negative next id");
  if (h.dims == 0 || (h.flags & ~(format::kNormalized | format::kApprox)) != 0 || h.storage > 2)
    bad(name, "segment table has bad dims, flags or storage");
  LoadedSegmentSet out;
  out.info.next_id = h.next_id;
  out.info.dims = h.dims;
  out.info.normalized = (h.flags & format::kNormalized) != 0;
  out.info.approx = (h.flags & format::kApprox) != 0;
  out.info.storage = static_cast<Storage>(h.storage);
  std::vector<SetEntry> table(h.segments);
  if (!table.empty()) std::memcpy(table.data(), bytes.data() + sizeof h, table_bytes);
  auto within = [&](std::uint64_t offset, std::uint64_t size, const char* what) {
    if (offset % format::kAlign != 0 || offset > bytes.size() || size > bytes.size() - offset ||
        offset < align_up(h.header_bytes))
      bad(name, std::string(what) + " lies outside the file (truncated?)");
  };
  for (const SetEntry& e : table) {
    within(e.image_offset, e.image_bytes, "a segment image");
    LoadedSegment seg;
    seg.image = bytes.subspan(e.image_offset, e.image_bytes);
    seg.image_offset = e.image_offset;
    const void* ids = nullptr;
    const void* live = nullptr;
    if (e.ids_bytes != 0) {
      within(e.ids_offset, e.ids_bytes, "a segment's ids");
      if (e.ids_bytes % sizeof(std::int64_t) != 0) bad(name, "a segment's ids section has a partial id");
      ids = bytes.data() + e.ids_offset;
      seg.ids_range = false;
      seg.explicit_ids.resize(e.ids_bytes / sizeof(std::int64_t));
      std::memcpy(seg.explicit_ids.data(), ids, e.ids_bytes);
    }
    if (e.first_id < 0) bad(name, "a segment's first id is negative");
    seg.first_id = e.first_id;
    if (e.live_bytes != 0) {
      within(e.live_offset, e.live_bytes, "a segment's removal bits");
      if (e.live_bytes % sizeof(std::uint64_t) != 0) bad(name, "a segment's removal bits have a partial word");
      live = bytes.data() + e.live_offset;
      seg.live_words.resize(e.live_bytes / sizeof(std::uint64_t));
      std::memcpy(seg.live_words.data(), live, e.live_bytes);
    }
    if (verify && blob_checksum(ids, e.ids_bytes, live, e.live_bytes) != e.checksum)
      bad(name, "checksum mismatch in a segment's ids or removal bits (the file is corrupt)");
    out.segments.push_back(std::move(seg));
  }
  return out;
}

void finish_segment(const std::string& name, LoadedSegment& seg, std::size_t rows) {
  if (seg.ids_range) {
    if (seg.first_id > std::numeric_limits<std::int64_t>::max() - static_cast<std::int64_t>(rows))
      bad(name, "a segment's ids overflow");
    seg.ids = collection::IdMap::range(seg.first_id, rows);
  } else {
    if (seg.explicit_ids.size() != rows) bad(name, "a segment's ids do not match its rows");
    for (std::int64_t id : seg.explicit_ids)
      if (id < 0) bad(name, "a segment holds a negative id");
    seg.ids = collection::IdMap::list(std::move(seg.explicit_ids));
  }
  if (!seg.live_words.empty()) {
    if (seg.live_words.size() != (rows + 63) / 64) bad(name, "a segment's removal bits do not match its rows");
    if (rows % 64 != 0 && (seg.live_words.back() >> (rows % 64)) != 0) bad(name, "a segment's removal bits have stray bits");
    seg.live = std::make_shared<const core::RowFilter>(core::RowFilter::from_words(rows, std::move(seg.live_words)));
  }
}

}  // namespace nndex::io
