// A read-only array that either owns its elements or borrows them from a mapped file (kept alive by
// `owner`), so loaded indexes can search straight from the page cache.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace nndex::core {

template <class T, class Alloc = std::allocator<T>>
class Array {
 public:
  Array() = default;
  explicit Array(std::vector<T, Alloc> values) : owned_(std::move(values)), data_(owned_.data()), size_(owned_.size()) {}
  Array(const T* data, std::size_t size, std::shared_ptr<const void> owner)
      : data_(data), size_(size), owner_(std::move(owner)) {}

  Array(Array&&) noexcept = default;  // a moved vector keeps its buffer, so data_ stays valid
  Array& operator=(Array&&) noexcept = default;
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  std::size_t owned_bytes() const { return owned_.size() * sizeof(T); }  // 0 when borrowed

 private:
  std::vector<T, Alloc> owned_;
  const T* data_ = nullptr;
  std::size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

}  // namespace nndex::core
