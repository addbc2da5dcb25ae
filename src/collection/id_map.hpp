// The user ids of one segment's rows: a run of consecutive ids (what default ids are: no memory), or
// an explicit list with its rows sorted by id for lookups. Immutable once built, so snapshots share it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace nndex::collection {

class IdMap {
 public:
  IdMap() = default;
  static IdMap range(std::int64_t first, std::size_t rows);
  // `ids`: distinct and non-negative (the caller has checked). Stored as a range when consecutive.
  static IdMap list(std::vector<std::int64_t> ids);

  std::size_t rows() const { return rows_; }
  std::int64_t at(std::size_t r) const { return ids_ ? (*ids_)[r] : first_ + static_cast<std::int64_t>(r); }
  bool is_range() const { return ids_ == nullptr; }
  std::int64_t first() const { return first_; }
  std::int64_t max_id() const { return max_; }  // -1 when empty
  // The local row holding `id`, or -1.
  std::int64_t find(std::int64_t id) const;
  // The ids of `rows` (local rows, in that order).
  IdMap select(std::span<const std::size_t> rows) const;
  std::size_t memory_bytes() const;

 private:
  std::int64_t first_ = 0;
  std::size_t rows_ = 0;
  std::int64_t max_ = -1;
  std::shared_ptr<const std::vector<std::int64_t>> ids_;    // null: first_ + r
  std::shared_ptr<const std::vector<std::uint64_t>> order_; // local rows sorted by id
};

}  // namespace nndex::collection
