// A std::vector allocator for the large arrays a graph walk reads at random (navigation codes, links,
// visited marks): blocks of 2 MiB or more are 2 MiB-aligned and, on Linux, advised to use transparent
// huge pages, so a walk over hundreds of MB does not miss the TLB on nearly every hop (with 4 KiB pages
// a 128 MB array spans 32,768 pages, far more than the TLB holds). Smaller blocks are cache-line
// aligned. Where the kernel does not grant huge pages the advice is a no-op.
#pragma once

#include <cstddef>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nndex::core {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  static std::align_val_t alignment(std::size_t bytes) {
    return std::align_val_t{bytes >= kHugePageBytes ? kHugePageBytes : 64};
  }
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    void* p = ::operator new(bytes, alignment(bytes));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePageBytes) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) { ::operator delete(p, alignment(n * sizeof(T))); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
};

}  // namespace nndex::core
