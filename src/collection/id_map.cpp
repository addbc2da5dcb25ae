#include "collection/id_map.hpp"

#include <algorithm>
#include <numeric>

namespace nndex::collection {

IdMap IdMap::range(std::int64_t first, std::size_t rows) {
  IdMap m;
  m.first_ = first;
  m.rows_ = rows;
  m.max_ = rows == 0 ? -1 : first + static_cast<std::int64_t>(rows) - 1;
  return m;
}

IdMap IdMap::list(std::vector<std::int64_t> ids) {
  bool consecutive = true;
  for (std::size_t r = 1; r < ids.size() && consecutive; ++r) consecutive = ids[r] == ids[0] + static_cast<std::int64_t>(r);
  if (ids.empty() || consecutive) return range(ids.empty() ? 0 : ids[0], ids.size());
  IdMap m;
  m.rows_ = ids.size();
  m.max_ = *std::max_element(ids.begin(), ids.end());
  std::vector<std::uint64_t> order(ids.size());
  std::iota(order.begin(), order.end(), std::uint64_t{0});
  std::sort(order.begin(), order.end(), [&](std::uint64_t a, std::uint64_t b) { return ids[a] < ids[b]; });
  m.ids_ = std::make_shared<const std::vector<std::int64_t>>(std::move(ids));
  m.order_ = std::make_shared<const std::vector<std::uint64_t>>(std::move(order));
  return m;
}

std::int64_t IdMap::find(std::int64_t id) const {
  if (!ids_) return id >= first_ && id <= max_ ? id - first_ : -1;
  const std::vector<std::int64_t>& ids = *ids_;
  const auto it = std::lower_bound(order_->begin(), order_->end(), id,
                                   [&](std::uint64_t row, std::int64_t value) { return ids[row] < value; });
  return it != order_->end() && ids[*it] == id ? static_cast<std::int64_t>(*it) : -1;
}

IdMap IdMap::select(std::span<const std::size_t> rows) const {
  std::vector<std::int64_t> ids(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) ids[i] = at(rows[i]);
  return list(std::move(ids));
}

std::size_t IdMap::memory_bytes() const {
  return ids_ ? ids_->size() * sizeof(std::int64_t) + order_->size() * sizeof(std::uint64_t) : 0;
}

}  // namespace nndex::collection
