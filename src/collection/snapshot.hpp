// What a search sees: the index's segments as they were when it started. A mutation never changes a
// published snapshot; it builds the next one (sharing every unchanged segment) and publishes it, so a
// search sees the index before or after each add / remove / compact, never between.
//
// A segment is an immutable engine over some rows (the first one built with the index, later ones by
// add(), merges and compaction), the user ids of its rows and which of them are removed. Removed rows
// stay in the engine, never returned, until their segment is rebuilt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "collection/id_map.hpp"
#include "core/row_filter.hpp"
#include "engine/engine.hpp"

namespace nndex::collection {

struct Segment {
  std::shared_ptr<const engine::Engine> engine;
  IdMap ids;
  std::shared_ptr<const core::RowFilter> live;  // null: every row live; else the live rows' bits

  std::size_t rows() const { return ids.rows(); }
  std::size_t live_rows() const { return live ? live->count() : rows(); }
  std::size_t removed_rows() const { return rows() - live_rows(); }
  bool is_live(std::size_t r) const { return !live || live->allowed(r); }
};

struct Snapshot {
  std::vector<Segment> segments;
  std::size_t live = 0;        // live rows over all segments
  std::int64_t next_id = 0;    // the next default id: one past the largest id ever used
  std::uint64_t generation = 0; // how many mutations came before it (result caches key on it)
};

// The local row and segment of a live id, or segment == -1.
struct Location {
  std::ptrdiff_t segment = -1;
  std::size_t row = 0;
};
Location locate(const Snapshot& snapshot, std::int64_t id);

// How many entries a filter mask over `snapshot` must have: one past the largest id of a segment that
// holds live rows (0 when none does).
std::size_t mask_entries(const Snapshot& snapshot);

// The segment with the most rows among `segments`, leaving out index `skip` (null when none): the one
// that describes the index (method, ef, nlist) and whose lists and beam width new segments take.
const Segment* largest(std::span<const Segment> segments, std::size_t skip = static_cast<std::size_t>(-1));

}  // namespace nndex::collection
