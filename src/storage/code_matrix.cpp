#include "storage/code_matrix.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nndex::storage {
namespace {

constexpr std::size_t kCacheLine = 64;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::shared_ptr<const void> zeroed(std::size_t bytes, void** out) {
  // Large code arrays get huge-page alignment, as TiledMatrix does: a single query streams them.
  const std::size_t align = bytes >= 2 * kHugePage ? kHugePage : kCacheLine;
  const std::size_t size = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size == 0 ? align : size);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);
#endif
  std::memset(p, 0, size == 0 ? align : size);
  *out = p;
  return std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
}

}  // namespace

std::size_t CodeMatrix::lines_for(Codec codec, std::size_t dims) {
  const std::size_t per_line = codec == Codec::bf16 ? kernels::kBf16DimsPerLine : kernels::kInt8DimsPerLine;
  return (dims + per_line - 1) / per_line;
}

std::size_t CodeMatrix::code_bytes_for(Codec codec, std::size_t rows, std::size_t dims) {
  return (rows + kernels::kBlockRows - 1) / kernels::kBlockRows * lines_for(codec, dims) * kernels::kCodeLineBytes;
}

CodeMatrix::CodeMatrix(Codec codec, std::size_t rows, std::size_t dims)
    : codec_(codec),
      rows_(rows),
      dims_(dims),
      lines_(lines_for(codec, dims)),
      blocks_((rows + kernels::kBlockRows - 1) / kernels::kBlockRows) {
  void* p = nullptr;
  owner_ = zeroed(code_bytes() + kernels::kCodeSlackBytes, &p);
  codes_ = static_cast<std::byte*>(p);
  if (codec == Codec::int8) {
    scales_owner_ = zeroed(scale_count() * sizeof(float), &p);
    scales_ = static_cast<float*>(p);
  }
}

CodeMatrix::CodeMatrix(Codec codec, std::size_t rows, std::size_t dims, const std::byte* codes, const float* scales,
                       std::shared_ptr<const void> owner)
    : codec_(codec),
      rows_(rows),
      dims_(dims),
      lines_(lines_for(codec, dims)),
      blocks_((rows + kernels::kBlockRows - 1) / kernels::kBlockRows),
      borrowed_(true),
      codes_(const_cast<std::byte*>(codes)),  // never written through: borrowed codes are only searched
      scales_(const_cast<float*>(scales)),
      owner_(std::move(owner)) {}

std::size_t CodeMatrix::memory_bytes() const {
  return borrowed_ ? 0 : code_bytes() + kernels::kCodeSlackBytes + scale_count() * sizeof(float);
}

}  // namespace nndex::storage
