#include "storage/exact_rows.hpp"

#include <cstring>
#include <vector>

#include "core/prepare.hpp"

namespace nndex::storage {

ExactRows ExactRows::owned(std::vector<float> prepared, std::size_t dims) {
  ExactRows e;
  e.rows_ = dims == 0 ? 0 : prepared.size() / dims;
  e.dims_ = dims;
  e.owned_ = std::move(prepared);
  e.prepared_ = e.owned_.data();
  return e;
}

ExactRows ExactRows::mapped(const float* prepared, std::size_t rows, std::size_t dims, std::shared_ptr<const void> owner) {
  ExactRows e;
  e.rows_ = rows;
  e.dims_ = dims;
  e.prepared_ = prepared;
  e.owner_ = std::move(owner);
  return e;
}

ExactRows ExactRows::borrowed(const MatrixView& source, bool normalize, std::shared_ptr<const void> owner) {
  ExactRows e;
  e.rows_ = source.rows;
  e.dims_ = source.cols;
  e.source_ = source;
  e.normalize_ = normalize;
  e.owner_ = std::move(owner);
  return e;
}

void ExactRows::read_through(std::shared_ptr<const FileReader> file, std::size_t file_offset) {
  file_ = std::move(file);
  file_offset_ = file_offset;
}

void ExactRows::read(std::size_t r, const kernels::KernelTable& kt, float* out) const {
  if (file_ != nullptr && prepared_ != nullptr) {  // a mapped index file: prepared float32 rows
    file_->read(file_offset_ + r * dims_ * sizeof(float), dims_ * sizeof(float), out);
    return;
  }
  if (file_ != nullptr) {
    // The caller's file (a .npy): read the raw row, then prepare it exactly as the build did.
    const std::size_t element = source_.type == ScalarType::f64 ? sizeof(double) : sizeof(float);
    thread_local std::vector<std::byte> raw;
    raw.resize(dims_ * element);
    file_->read(file_offset_ + r * dims_ * element, raw.size(), raw.data());
    const MatrixView one{raw.data(), source_.type, 1, dims_, static_cast<std::ptrdiff_t>(dims_), 1};
    core::prepare_vector(one, 0, normalize_, kt, out, {"row", r});
    return;
  }
  if (prepared_ != nullptr) {
    std::memcpy(out, prepared_ + r * dims_, dims_ * sizeof(float));
    return;
  }
  // The build validated every row, so this cannot throw unless the caller changed the borrowed data.
  core::prepare_vector(source_, r, normalize_, kt, out, {"row", r});
}

}  // namespace nndex::storage
