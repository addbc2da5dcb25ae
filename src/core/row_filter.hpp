// The rows of one segment a search may return: one bit per stored row (the caller's filter and the
// rows not removed, combined once per call), with the count and per-block occupancy the engines use
// to choose between skipping and scanning.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/kernels.hpp"

namespace nndex::core {

class RowFilter {
 public:
  RowFilter() = default;
  explicit RowFilter(std::size_t rows) : rows_(rows), words_((rows + 63) / 64, 0) {}

  // Every row allowed.
  static RowFilter all_rows(std::size_t rows) {
    RowFilter f(rows);
    std::fill(f.words_.begin(), f.words_.end(), ~std::uint64_t{0});
    if (rows % 64 != 0) f.words_.back() = (std::uint64_t{1} << (rows % 64)) - 1;
    f.count_ = rows;
    return f;
  }

  void deny(std::size_t r) {
    std::uint64_t& w = words_[r / 64];
    const std::uint64_t bit = std::uint64_t{1} << (r % 64);
    count_ -= (w & bit) != 0;
    w &= ~bit;
  }
  void allow(std::size_t r) {
    std::uint64_t& w = words_[r / 64];
    const std::uint64_t bit = std::uint64_t{1} << (r % 64);
    count_ += (w & bit) == 0;
    w |= bit;
  }
  // Bulk building: set bits without counting, then recount() once.
  void set(std::size_t r) { words_[r / 64] |= std::uint64_t{1} << (r % 64); }
  void or_word(std::size_t w, std::uint64_t bits) { words_[w] |= bits; }
  // Keeps only the rows `other` allows too (same rows), and recounts.
  void intersect(const RowFilter& other) {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] &= other.words_[i];
    recount();
  }
  void recount() {
    count_ = 0;
    for (std::uint64_t w : words_) count_ += static_cast<std::size_t>(std::popcount(w));
  }
  bool allowed(std::size_t r) const { return (words_[r / 64] >> (r % 64)) & 1u; }
  std::size_t rows() const { return rows_; }
  std::size_t memory_bytes() const { return words_.size() * sizeof(std::uint64_t); }
  const std::vector<std::uint64_t>& words() const { return words_; }
  // From saved words (bits past `rows` must be clear: the caller checks).
  static RowFilter from_words(std::size_t rows, std::vector<std::uint64_t> words) {
    RowFilter f;
    f.rows_ = rows;
    f.words_ = std::move(words);
    f.recount();
    return f;
  }
  std::size_t count() const { return count_; }
  bool all() const { return count_ == rows_; }

  // Whether any row of block b (kernels::kBlockRows rows, in stored order) is allowed.
  bool any_in_block(std::size_t b) const {
    static_assert(kernels::kBlockRows == 16, "four blocks per word");
    return ((words_[b / 4] >> (b % 4 * 16)) & 0xffffu) != 0;
  }
  // Blocks holding at least one allowed row: what a scan that skips the others reads.
  std::size_t occupied_blocks() const {
    std::size_t n = 0;
    for (std::uint64_t w : words_)
      for (int s = 0; s < 64; s += 16) n += ((w >> s) & 0xffffu) != 0;
    return n;
  }

  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < words_.size(); ++i)
      for (std::uint64_t w = words_[i]; w != 0; w &= w - 1) fn(i * 64 + static_cast<std::size_t>(std::countr_zero(w)));
  }
  std::vector<std::int64_t> list() const {
    std::vector<std::int64_t> out;
    out.reserve(count_);
    for_each([&](std::size_t r) { out.push_back(static_cast<std::int64_t>(r)); });
    return out;
  }

 private:
  std::size_t rows_ = 0;
  std::size_t count_ = 0;
  std::vector<std::uint64_t> words_;
};

}  // namespace nndex::core
