#include "collection/collection.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "core/pack.hpp"
#include "core/trace.hpp"
#include "engine/build.hpp"
#include "nndex/errors.hpp"

namespace nndex::collection {
namespace {

std::size_t live_of(const std::vector<Segment>& segments) {
  std::size_t live = 0;
  for (const Segment& s : segments) live += s.live_rows();
  return live;
}

}  // namespace

void check_new_ids(std::span<const std::int64_t> ids, std::size_t rows, const Snapshot* snapshot) {
  if (ids.size() != rows)
    throw InvalidArgument("ids has " + std::to_string(ids.size()) + " entries for " + std::to_string(rows) +
                          " rows (one id per row)");
  std::vector<std::int64_t> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty() && sorted.front() < 0)
    throw InvalidArgument("ids must be non-negative, got " + std::to_string(sorted.front()));
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) throw InvalidArgument("id " + std::to_string(*dup) + " appears more than once in ids");
  if (snapshot != nullptr)
    for (std::int64_t id : sorted)
      if (locate(*snapshot, id).segment >= 0) throw InvalidArgument("id " + std::to_string(id) + " is already in the index");
}

Collection::Collection(Settings settings, Snapshot first) : settings_(std::move(settings)) {
  first.live = live_of(first.segments);
  generation_ = first.generation;
  current_.store(std::make_shared<const Snapshot>(std::move(first)), std::memory_order_release);
}

void Collection::publish(Snapshot next) {
  next.live = live_of(next.segments);
  next.generation = ++generation_;
  current_.store(std::make_shared<const Snapshot>(std::move(next)), std::memory_order_release);
}

Segment Collection::rebuild(std::span<const Segment> parts, const NewRows& extra, const StopCheck& should_stop,
                            const Segment* lists_of, bool whole) const {
  const std::size_t d = settings_.dims;
  const std::span<const std::int64_t> extra_ids = extra.ids;
  std::size_t total = extra_ids.size();
  for (const Segment& p : parts) total += p.live_rows();
  // An explicit nlist larger than the rows left cannot be honoured: such a rebuild sizes itself.
  const bool as_segment = !whole || settings_.options.nlist > total;
  // An exact float32 result from whole exact float32 parts: their tiles are concatenated as they are.
  const engine::BuildChoice choice = engine::choose_structure(settings_.options, total, d, as_segment);
  const bool tiles_only = !choice.ivf && !choice.graph && settings_.options.storage == Storage::f32 &&
                          std::all_of(parts.begin(), parts.end(), [](const Segment& p) {
                            return p.engine->exact_tiles() != nullptr && p.removed_rows() == 0;
                          });
  if (tiles_only && total != 0) {
    core::TiledMatrix added = extra_ids.empty() ? core::TiledMatrix()
                                                : core::pack_matrix(extra.rows, extra.normalize, *settings_.kt,
                                                                    settings_.threads, should_stop);
    Segment seg;
    if (parts.empty()) {  // the new rows alone: their tiles are the segment's
      seg.ids = IdMap::list(std::vector<std::int64_t>(extra_ids.begin(), extra_ids.end()));
      seg.engine = engine::place(engine::make_exact_engine(std::move(added)), settings_.placement, *settings_.kt);
      return seg;
    }
    std::vector<const core::TiledMatrix*> tiles;
    std::vector<std::int64_t> ids;
    ids.reserve(total);
    for (const Segment& p : parts) {
      tiles.push_back(p.engine->exact_tiles());
      for (std::size_t r = 0; r < p.rows(); ++r) ids.push_back(p.ids.at(r));
    }
    if (!extra_ids.empty()) tiles.push_back(&added);
    ids.insert(ids.end(), extra_ids.begin(), extra_ids.end());
    seg.ids = IdMap::list(std::move(ids));
    seg.engine = engine::place(engine::make_exact_engine(core::concat_tiles(tiles, settings_.threads, should_stop)),
                               settings_.placement, *settings_.kt);
    return seg;
  }
  std::vector<float> rows(total * d);
  // The new rows first, at the end of the buffer: a bad value fails the call before any copying.
  if (!extra_ids.empty())
    core::prepare_rows_into(extra.rows, extra.normalize, *settings_.kt, settings_.threads, should_stop,
                            rows.data() + (total - extra_ids.size()) * d);
  std::vector<std::int64_t> ids;
  ids.reserve(total);
  std::size_t at = 0;
  std::vector<float> scratch;
  for (const Segment& p : parts) {
    scratch.resize(p.rows() * d);
    p.engine->copy_rows(*settings_.kt, scratch.data());
    for (std::size_t r = 0; r < p.rows(); ++r) {
      if (!p.is_live(r)) continue;
      std::copy_n(scratch.data() + r * d, d, rows.data() + at * d);
      ids.push_back(p.ids.at(r));
      ++at;
    }
  }
  ids.insert(ids.end(), extra_ids.begin(), extra_ids.end());

  Segment seg;
  seg.ids = IdMap::list(std::move(ids));
  if (total == 0) return seg;
  engine::BuildInput in;
  in.data = MatrixView::row_major(rows.data(), total, d);
  in.normalize = false;  // prepared already: rebuilt rows keep their exact floats
  in.segment = as_segment;
  IndexOptions options = settings_.options;
  if (lists_of != nullptr && lists_of->engine != nullptr) {
    in.ivf_centroids = lists_of->engine->ivf_centroids();
    // A smaller graph over rows of the same kind reaches at least the largest one's recall at the same
    // beam, so it takes that beam rather than calibrating its own (a graph too small to calibrate
    // would otherwise walk with a wide default one: ef 64 for 2,000 rows against 24 for 50,000).
    if (options.ef == 0 && lists_of->engine->ef() != 0) options.ef = lists_of->engine->ef();
  }
  seg.engine = engine::place(engine::build(in, options, *settings_.kt, settings_.threads, should_stop),
                              settings_.placement, *settings_.kt);
  return seg;
}

std::vector<std::int64_t> Collection::add(const MatrixView& rows, std::span<const std::int64_t> ids,
                                          const StopCheck& should_stop) {
  if (rows.cols != settings_.dims) throw DimensionMismatch(settings_.dims, rows.cols, "vectors");
  if (rows.rows != 0 && rows.data == nullptr) throw InvalidArgument("vectors pointer is null");
  std::lock_guard lock(writer_);
  const std::shared_ptr<const Snapshot> now = snapshot();
  std::vector<std::int64_t> added;
  if (!ids.empty() || rows.rows == 0) {
    check_new_ids(ids, rows.rows, now.get());
    added.assign(ids.begin(), ids.end());
  } else {
    added.resize(rows.rows);
    for (std::size_t i = 0; i < rows.rows; ++i) added[i] = now->next_id + static_cast<std::int64_t>(i);
  }
  if (rows.rows == 0) return added;

  // Take along every newest segment no larger than what is being built (a binary counter).
  Snapshot next = *now;
  std::size_t building = rows.rows;
  std::size_t first_merged = next.segments.size();
  while (first_merged > 0 && next.segments[first_merged - 1].live_rows() <= building) {
    --first_merged;
    building += next.segments[first_merged].live_rows();
  }
  const std::span<const Segment> merged(next.segments.data() + first_merged, next.segments.size() - first_merged);
  // The segments kept as they are hold the largest unless it is being merged (then lists are retrained).
  const Segment* lists_of = largest(std::span<const Segment>(next.segments.data(), first_merged));
  for (const Segment& m : merged)
    if (lists_of != nullptr && m.rows() > lists_of->rows()) lists_of = nullptr;
  const auto start = std::chrono::steady_clock::now();
  const NewRows extra{rows, added, /*normalize=*/!settings_.options.normalized};
  Segment seg = rebuild(merged, extra, should_stop, lists_of, /*whole=*/first_merged == 0);
  if (core::verbose()) {
    core::TraceLine line("add");
    line.add("rows", rows.rows).add("merged_segments", merged.size()).add("segment_rows", seg.rows());
    seg.engine->describe_build(line);
    line.add_ms("time", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    line.emit();
  }
  next.segments.resize(first_merged);
  next.segments.push_back(std::move(seg));
  next.next_id = std::max(now->next_id, *std::max_element(added.begin(), added.end()) + 1);
  publish(std::move(next));
  return added;
}

std::size_t Collection::remove(std::span<const std::int64_t> ids, const StopCheck& should_stop) {
  std::lock_guard lock(writer_);
  const std::shared_ptr<const Snapshot> now = snapshot();
  std::vector<Location> where(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    where[i] = locate(*now, ids[i]);
    if (where[i].segment < 0) throw InvalidArgument("id " + std::to_string(ids[i]) + " is not in the index");
  }
  {
    std::vector<std::int64_t> sorted(ids.begin(), ids.end());
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) throw InvalidArgument("id " + std::to_string(*dup) + " appears more than once in ids");
  }
  if (ids.empty()) return 0;
  Snapshot next = *now;
  std::vector<std::shared_ptr<core::RowFilter>> changed(next.segments.size());
  for (const Location& at : where) {
    const auto s = static_cast<std::size_t>(at.segment);
    if (!changed[s]) {
      const Segment& seg = next.segments[s];
      changed[s] = std::make_shared<core::RowFilter>(seg.live ? *seg.live : core::RowFilter::all_rows(seg.rows()));
    }
    changed[s]->deny(at.row);
  }
  std::vector<Segment> kept;
  for (std::size_t s = 0; s < next.segments.size(); ++s) {
    Segment seg = std::move(next.segments[s]);
    if (changed[s]) seg.live = std::move(changed[s]);
    if (seg.live_rows() == 0) continue;  // nothing left to search
    if (static_cast<double>(seg.removed_rows()) > kCompactRemovedFraction * static_cast<double>(seg.rows())) {
      const Segment* lists_of = largest(now->segments, s);
      if (lists_of != nullptr && lists_of->rows() < seg.rows()) lists_of = nullptr;  // it is the largest itself
      seg = rebuild({&seg, 1}, {}, should_stop, lists_of, /*whole=*/now->segments.size() == 1);
    }
    kept.push_back(std::move(seg));
  }
  next.segments = std::move(kept);
  publish(std::move(next));
  return ids.size();
}

void Collection::compact(const StopCheck& should_stop) {
  std::lock_guard lock(writer_);
  const std::shared_ptr<const Snapshot> now = snapshot();
  const bool whole = now->segments.size() == 1 && now->segments[0].removed_rows() == 0;
  if (whole || now->segments.empty()) return;
  Snapshot next = *now;
  Segment seg = rebuild(next.segments, {}, should_stop, nullptr, /*whole=*/true);
  next.segments.clear();
  if (seg.rows() != 0) next.segments.push_back(std::move(seg));
  publish(std::move(next));
}

}  // namespace nndex::collection
