#include "core/tiled_matrix.hpp"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nndex::core {
namespace {

constexpr std::size_t kCacheLine = 64;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

}  // namespace

std::size_t TiledMatrix::bytes_for(std::size_t rows, std::size_t dims) {
  return (rows + kernels::kBlockRows - 1) / kernels::kBlockRows * kernels::kBlockRows * dims * sizeof(float);
}

TiledMatrix::TiledMatrix(std::size_t rows, std::size_t dims)
    : rows_(rows), dims_(dims), blocks_((rows + kernels::kBlockRows - 1) / kernels::kBlockRows) {
  // Large matrices are aligned to huge pages so the kernel can back them with 2 MiB pages: a single
  // query streams the whole matrix, and fewer TLB misses keep it at memory bandwidth.
  const std::size_t want = bytes();
  const std::size_t align = want >= 2 * kHugePage ? kHugePage : kCacheLine;
  const std::size_t size = (want + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size == 0 ? align : size);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);
#endif
  data_ = static_cast<float*>(p);
  owner_ = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
}

TiledMatrix::TiledMatrix(std::size_t rows, std::size_t dims, const float* data, std::shared_ptr<const void> owner)
    : rows_(rows),
      dims_(dims),
      blocks_((rows + kernels::kBlockRows - 1) / kernels::kBlockRows),
      borrowed_(true),
      data_(const_cast<float*>(data)),  // never written through: borrowed storage is only searched
      owner_(std::move(owner)) {}

}  // namespace nndex::core
