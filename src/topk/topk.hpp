// Bounded top-k selection over caller-owned storage (faiss-style: the k slots of a result row are the
// heap itself, so no allocation per query).
//
// Order: a is better than b when a.score > b.score, or the scores are equal and a.index < b.index, so
// every path (serial, split over threads, merged) picks and orders ties the same way.
// While filling, entries are appended unsorted; the heap (worst entry on top) is built when k entries
// are in. So k >= rows costs no heap work at all, and k == 1 is a single compare-and-replace.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

namespace nndex::topk {

inline bool better(float a_score, std::int64_t a_index, float b_score, std::int64_t b_index) {
  return a_score > b_score || (a_score == b_score && a_index < b_index);
}

class TopK {
 public:
  TopK(float* scores, std::int64_t* indices, std::size_t k) : scores_(scores), indices_(indices), k_(k) {}

  // Scores at or below this cannot enter, provided indices arrive in increasing order (a scan);
  // -inf until the heap is full.
  float threshold() const { return threshold_; }
  std::size_t size() const { return size_; }
  bool full() const { return size_ == k_; }

  void push(float score, std::int64_t index) {
    if (size_ < k_) {
      append(score, index);
    } else if (better(score, index, scores_[0], indices_[0])) {
      replace_top(score, index);
    }
  }

  // Sorts the entries best first, in place (heapsort: no allocation); the object is spent afterwards.
  void sort_descending() {
    if (size_ < k_) heapify();
    for (std::size_t n = size_; n > 1; --n) {
      // The worst remaining entry goes to the back of the shrinking heap.
      std::swap(scores_[0], scores_[n - 1]);
      std::swap(indices_[0], indices_[n - 1]);
      sift_down(0, n - 1);
    }
  }

 private:
  void append(float score, std::int64_t index) {
    scores_[size_] = score;
    indices_[size_] = index;
    if (++size_ == k_) {
      heapify();
      threshold_ = scores_[0];
    }
  }

  void replace_top(float score, std::int64_t index) {
    scores_[0] = score;
    indices_[0] = index;
    sift_down(0, size_);
    threshold_ = scores_[0];
  }

  void heapify() {
    for (std::size_t i = size_ / 2; i-- > 0;) sift_down(i, size_);
  }

  // Min-heap under `better`: the parent is never better than its children.
  void sift_down(std::size_t i, std::size_t n) {
    const float score = scores_[i];
    const std::int64_t index = indices_[i];
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && better(scores_[child], indices_[child], scores_[child + 1], indices_[child + 1]))
        ++child;  // take the worse child
      if (!better(score, index, scores_[child], indices_[child])) break;
      scores_[i] = scores_[child];
      indices_[i] = indices_[child];
      i = child;
    }
    scores_[i] = score;
    indices_[i] = index;
  }

  float* scores_;
  std::int64_t* indices_;
  std::size_t k_;
  std::size_t size_ = 0;
  float threshold_ = -std::numeric_limits<float>::infinity();
};

}  // namespace nndex::topk
