// Shared helpers of the microbenchmarks: seeded data, packed matrices, the kernel tables to compare.
#pragma once

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/pack.hpp"
#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex_bench {

// n x dims standard-normal rows, each L2-normalised (row-major).
inline std::vector<float> unit_rows(std::size_t n, std::size_t dims, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out(n * dims);
  for (std::size_t i = 0; i < n; ++i) {
    float* row = out.data() + i * dims;
    double norm = 0.0;
    for (std::size_t j = 0; j < dims; ++j) {
      row[j] = normal(rng);
      norm += static_cast<double>(row[j]) * row[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (std::size_t j = 0; j < dims; ++j) row[j] *= inv;
  }
  return out;
}

// Gaussian mixture around `centres` unit centres (noise norm ~0.35), normalised: data with cluster
// structure for the IVF benchmarks.
inline std::vector<float> clustered_rows(std::size_t n, std::size_t dims, std::size_t centres, std::uint64_t seed) {
  const std::vector<float> c = unit_rows(centres, dims, seed ^ 0x9e3779b97f4a7c15ULL);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.35f / std::sqrt(static_cast<float>(dims)));
  std::uniform_int_distribution<std::size_t> pick(0, centres - 1);
  std::vector<float> out(n * dims);
  for (std::size_t i = 0; i < n; ++i) {
    const float* centre = c.data() + pick(rng) * dims;
    float* row = out.data() + i * dims;
    double norm = 0.0;
    for (std::size_t j = 0; j < dims; ++j) {
      row[j] = centre[j] + normal(rng);
      norm += static_cast<double>(row[j]) * row[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (std::size_t j = 0; j < dims; ++j) row[j] *= inv;
  }
  return out;
}

inline nndex::core::TiledMatrix packed(const std::vector<float>& rows, std::size_t n, std::size_t dims) {
  return nndex::core::tile_rows(rows.data(), n, dims);
}

// Every kernel level this build and CPU can run, best first.
inline std::vector<const nndex::kernels::KernelTable*> kernel_tables() {
  using nndex::kernels::Isa;
  std::vector<const nndex::kernels::KernelTable*> out;
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::neon, Isa::scalar})
    if (const auto* kt = nndex::kernels::for_isa(isa)) out.push_back(kt);
  return out;
}

inline std::size_t all_threads() { return nndex::core::hardware_threads(); }

// Rate counters (per second, decimal prefixes in the console; raw per-second numbers in JSON).
inline benchmark::Counter flops_counter(double flops_per_iteration) {
  return benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                            benchmark::Counter::OneK::kIs1000);
}

}  // namespace nndex_bench
