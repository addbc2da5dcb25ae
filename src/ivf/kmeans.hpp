// Spherical k-means (cosine) for the IVF coarse quantiser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tiled_matrix.hpp"
#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::ivf {

struct KMeansParams {
  std::size_t clusters = 1;
  std::size_t max_iterations = 10;
  // Stop once fewer than this fraction of points change cluster in an iteration.
  double settle_fraction = 0.005;
  std::uint64_t seed = 0;
  std::size_t threads = 1;
};

struct KMeansResult {
  std::vector<float> centroids;  // clusters x dims, unit norm
  std::size_t iterations = 0;
  std::size_t reseeded = 0;  // empty clusters given a new centre
  double seed_ms = 0;
};

// points: n x dims unit vectors, row-major; needs n >= clusters.
KMeansResult spherical_kmeans(const float* points, std::size_t n, std::size_t dims, const KMeansParams& params,
                              const kernels::KernelTable& kt, const StopCheck& should_stop);

// Nearest centroid (highest dot product; ties to the lower id) of each of n points: a batch top-1
// search over the tiled centroids. Writes labels and their scores.
void assign_nearest(const core::TiledMatrix& centroids, const float* points, std::size_t n,
                    const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop,
                    std::int64_t* labels, float* scores);

}  // namespace nndex::ivf
