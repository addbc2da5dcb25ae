// Small helpers shared by the test files: aligned buffers, seeded data, and a float64 brute-force oracle.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

namespace nndex_test {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// A zero-filled float buffer whose first element is 64-byte aligned (what the tile kernels require).
class AlignedFloats {
 public:
  explicit AlignedFloats(std::size_t n) : n_(n) {
    const std::size_t bytes = std::max<std::size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    p_.reset(static_cast<float*>(p));
  }
  float* data() { return p_.get(); }
  const float* data() const { return p_.get(); }
  std::size_t size() const { return n_; }
  float& operator[](std::size_t i) { return p_.get()[i]; }
  const float& operator[](std::size_t i) const { return p_.get()[i]; }

 private:
  std::size_t n_;
  std::unique_ptr<float[], FreeDeleter> p_;
};

// "prefix" followed by the number, for parameterised test names.
inline std::string label(const char* prefix, std::size_t value) {
  std::string out(prefix);
  out += std::to_string(value);
  return out;
}

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Gaussian clusters, as real embeddings are lumpy: `centres` standard-normal centres, each point one
// of them (uniformly) plus `spread` times standard-normal noise; rows x dims row-major.
inline std::vector<float> gaussian_clusters(std::size_t rows, std::size_t dims, std::size_t centres, float spread,
                                            std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> c(centres * dims);
  for (float& x : c) x = normal(gen);
  std::vector<float> out(rows * dims);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t at = gen() % centres;
    for (std::size_t j = 0; j < dims; ++j) out[r * dims + j] = c[at * dims + j] + spread * normal(gen);
  }
  return out;
}

inline std::vector<float> random_ints(std::size_t n, std::uint32_t seed, int lo, int hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

struct RefHit {
  std::int64_t index;
  double score;
};

inline bool ref_better(const RefHit& a, const RefHit& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

inline std::vector<double> ref_prepare(const float* v, std::size_t dims, bool normalize) {
  std::vector<double> out(v, v + dims);
  if (normalize) {
    double s = 0.0;
    for (double x : out) s += x * x;
    const double norm = std::sqrt(s);
    for (double& x : out) x /= norm;
  }
  return out;
}

// Brute force in float64: optionally L2-normalise rows and queries, score every row by dot product, and
// order all rows by score descending then index ascending (one full ranking per query).
inline std::vector<std::vector<RefHit>> reference_ranking(const std::vector<float>& data, std::size_t rows,
                                                          std::size_t dims, const std::vector<float>& queries,
                                                          std::size_t n, bool normalize) {
  std::vector<std::vector<double>> prepared(rows);
  for (std::size_t r = 0; r < rows; ++r) prepared[r] = ref_prepare(data.data() + r * dims, dims, normalize);
  std::vector<std::vector<RefHit>> result(n);
  for (std::size_t q = 0; q < n; ++q) {
    const std::vector<double> qv = ref_prepare(queries.data() + q * dims, dims, normalize);
    std::vector<RefHit> all(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      double s = 0.0;
      for (std::size_t j = 0; j < dims; ++j) s += prepared[r][j] * qv[j];
      all[r] = {static_cast<std::int64_t>(r), s};
    }
    std::sort(all.begin(), all.end(), ref_better);
    result[q] = std::move(all);
  }
  return result;
}

}  // namespace nndex_test
