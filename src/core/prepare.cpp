#include "core/prepare.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "nndex/errors.hpp"

namespace nndex::core {
namespace {

template <class T>
void convert_row(const MatrixView& src, std::size_t r, float* out) {
  const T* row = static_cast<const T*>(src.data) + static_cast<std::ptrdiff_t>(r) * src.row_stride;
  if (src.col_stride == 1) {
    for (std::size_t j = 0; j < src.cols; ++j) out[j] = static_cast<float>(row[j]);
  } else {
    for (std::size_t j = 0; j < src.cols; ++j) out[j] = static_cast<float>(row[static_cast<std::ptrdiff_t>(j) * src.col_stride]);
  }
}

double source_value(const MatrixView& src, std::size_t r, std::size_t j) {
  const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(r) * src.row_stride + static_cast<std::ptrdiff_t>(j) * src.col_stride;
  return src.type == ScalarType::f64 ? static_cast<const double*>(src.data)[at]
                                     : static_cast<double>(static_cast<const float*>(src.data)[at]);
}

[[noreturn]] void throw_non_finite(const MatrixView& src, std::size_t r, const float* v, const VectorLabel& label) {
  for (std::size_t j = 0; j < src.cols; ++j) {
    if (std::isfinite(v[j])) continue;
    const double original = source_value(src, r, j);
    char buf[160];
    if (std::isfinite(original))
      std::snprintf(buf, sizeof buf, " has a value outside the float32 range (%g) at column %zu", original, j);
    else
      std::snprintf(buf, sizeof buf, " contains a non-finite value (%s) at column %zu",
                    std::isnan(original) ? "nan" : (original > 0 ? "inf" : "-inf"), j);
    throw NonFiniteValue(label.str() + buf, label.index);
  }
  throw NonFiniteValue(label.str() + " has values too large for float32: its squared norm overflows "
                       "(scale the data down, or use normalized=False)", label.index);
}

// Exact-zero and tiny or huge vectors: scale by the largest magnitude first so neither the squares
// underflow nor overflow.
double robust_norm(const float* v, std::size_t n) {
  double largest = 0.0;
  for (std::size_t j = 0; j < n; ++j) largest = std::max(largest, static_cast<double>(std::fabs(v[j])));
  if (largest == 0.0) return 0.0;
  double sum = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double x = static_cast<double>(v[j]) / largest;
    sum += x * x;
  }
  return largest * std::sqrt(sum);
}

}  // namespace

std::string VectorLabel::str() const {
  return numbered ? std::string(kind) + " " + std::to_string(index) : std::string(kind);
}

void prepare_vector(const MatrixView& src, std::size_t r, bool normalize, const kernels::KernelTable& kt,
                    float* out, const VectorLabel& label) {
  if (src.type == ScalarType::f64) convert_row<double>(src, r, out);
  else convert_row<float>(src, r, out);

  const std::size_t n = src.cols;
  const float sum_sq = kt.dot(out, out, n);
  if (!std::isfinite(sum_sq)) {
    // A NaN/inf is always reported; an overflowing square is fine when we are about to rescale.
    for (std::size_t j = 0; j < n; ++j)
      if (!std::isfinite(out[j])) throw_non_finite(src, r, out, label);
    if (!normalize) throw_non_finite(src, r, out, label);
  }
  if (!normalize) return;

  const double norm = (std::isfinite(sum_sq) && sum_sq >= FLT_MIN * 1024.0f) ? std::sqrt(static_cast<double>(sum_sq))
                                                                              : robust_norm(out, n);
  if (norm == 0.0)
    throw ZeroNorm(label.str() + " has zero norm; cosine similarity needs a non-zero vector "
                   "(drop it, or use normalized=True for raw dot products)", label.index);
  const double inv = 1.0 / norm;
  for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<float>(static_cast<double>(out[j]) * inv);
}

}  // namespace nndex::core
