// The mutable side of an index: the published snapshot (collection/snapshot.hpp) and the mutations
// that replace it. Mutations are serialised by one writer lock and build everything new (segments,
// removal bits) before publishing, so searches never wait for them and never see a half-done one.
//
// Segments and merging (log-structured, as Lucene or Milvus segments): every add() builds a segment
// from its rows, taking along each newest segment no larger than what it is building (a binary
// counter: O(log rows) segments, each row rebuilt O(log rows) times; for 50 adds of 1,000 rows onto
// 50,000 the rule rebuilds 3.3 rows per row added, against 4.8 when segments up to twice the size merge). A segment is exact until its rows
// pay off for the index's approximate structure (the first segment's rules), then graph or IVF,
// calibrated on its own rows. remove() marks rows removed; a segment whose removed rows pass
// kCompactRemovedFraction of it is rebuilt from its live rows. compact() rebuilds everything into
// one segment.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "collection/snapshot.hpp"
#include "engine/placement.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::collection {

// Lucene's default allows about a third; a quarter keeps a filtered graph walk within 4/3 of its cost.
inline constexpr double kCompactRemovedFraction = 0.25;

struct Settings {
  IndexOptions options;  // what segments are built with (approx, method, storage, graph and IVF options)
  std::size_t dims = 0;
  std::size_t threads = 1;
  const kernels::KernelTable* kt = nullptr;
  engine::Placement placement;  // where exact segments search (engine/placement.hpp)
};

class Collection {
 public:
  Collection(Settings settings, Snapshot first);

  std::shared_ptr<const Snapshot> snapshot() const { return current_.load(std::memory_order_acquire); }
  const Settings& settings() const { return settings_; }

  // rows: any float view of settings().dims columns (validated, normalised unless the index is
  // `normalized`); ids: one per row, or empty for the next default ids. Returns the ids added.
  std::vector<std::int64_t> add(const MatrixView& rows, std::span<const std::int64_t> ids, const StopCheck& should_stop);
  // Returns the number removed. Every id must be live and appear once, or nothing is removed.
  std::size_t remove(std::span<const std::int64_t> ids, const StopCheck& should_stop);
  void compact(const StopCheck& should_stop);

 private:
  // Rows being added, as the caller gave them: the rebuild validates and (when `normalize`) normalises
  // them straight into the new segment's storage.
  struct NewRows {
    MatrixView rows;
    std::span<const std::int64_t> ids;
    bool normalize = false;
  };
  // A segment over the live rows of `parts` followed by `extra`.
  // `lists_of`: the index's largest segment when that is not rebuilt itself; an IVF segment joins its
  // lists and a graph segment takes its beam width (otherwise each trains / calibrates its own).
  // `whole`: the result is the index's only segment, built by the first segment's rules (a graph or IVF
  // named explicitly is built whatever its size, as the constructor does).
  Segment rebuild(std::span<const Segment> parts, const NewRows& extra, const StopCheck& should_stop,
                  const Segment* lists_of = nullptr, bool whole = false) const;
  void publish(Snapshot next);

  Settings settings_;
  std::mutex writer_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::uint64_t generation_ = 0;
};

// Checks ids given for new rows: one per row, non-negative, distinct, and (with `snapshot`) not live
// already. Throws InvalidArgument naming the first offending id.
void check_new_ids(std::span<const std::int64_t> ids, std::size_t rows, const Snapshot* snapshot);

}  // namespace nndex::collection
