#include "ivf/kmeans.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "core/pack.hpp"
#include "core/thread_pool.hpp"
#include "exact/exact_search.hpp"

namespace nndex::ivf {
namespace {

// k-means++ needs a pass over its points per centre; seeding from a subsample keeps that cheap while
// still spreading the centres.
constexpr std::size_t kSeedPointsPerCluster = 8;

void copy_row(const float* points, std::size_t row, std::size_t dims, float* out) {
  std::copy(points + row * dims, points + (row + 1) * dims, out);
}

// k-means++ (D^2 sampling; for unit vectors |a-b|^2 = 2 - 2<a,b>) over a seeded subsample.
std::vector<float> seed_centroids(const float* points, std::size_t n, std::size_t dims, std::size_t clusters,
                                  std::mt19937_64& rng, const kernels::KernelTable& kt) {
  std::vector<float> centroids(clusters * dims);
  const std::size_t m = std::min(n, std::max(clusters, clusters * kSeedPointsPerCluster));
  std::vector<std::size_t> pool(n);
  std::iota(pool.begin(), pool.end(), std::size_t{0});
  for (std::size_t i = 0; i < m; ++i) std::swap(pool[i], pool[i + rng() % (n - i)]);
  pool.resize(m);

  // The pool is tiled once so each new centre is scored against every pool point in one kernel pass.
  const std::vector<float> pool_rows = [&] {
    std::vector<float> rows(m * dims);
    for (std::size_t i = 0; i < m; ++i) copy_row(points, pool[i], dims, rows.data() + i * dims);
    return rows;
  }();
  const core::TiledMatrix pool_tiles = core::tile_rows(pool_rows.data(), m, dims);
  std::vector<float> sims(pool_tiles.blocks() * kernels::kBlockRows);

  std::vector<double> nearest(m, std::numeric_limits<double>::infinity());
  std::size_t chosen = pool[rng() % m];
  for (std::size_t c = 0; c < clusters; ++c) {
    copy_row(points, chosen, dims, centroids.data() + c * dims);
    if (c + 1 == clusters) break;
    kt.score_tiles(pool_tiles.block(0), pool_tiles.blocks(), dims, centroids.data() + c * dims, 1, sims.data(),
                   sims.size());
    double total = 0.0;
    for (std::size_t i = 0; i < m; ++i) {
      const double d2 = std::max(0.0, 2.0 - 2.0 * static_cast<double>(sims[i]));
      nearest[i] = std::min(nearest[i], d2);
      total += nearest[i];
    }
    if (!(total > 0.0)) {  // every point already is a centre: duplicates are all that is left
      chosen = pool[rng() % m];
      continue;
    }
    const double target = std::uniform_real_distribution<double>(0.0, total)(rng);
    double running = 0.0;
    std::size_t pick = m - 1;
    for (std::size_t i = 0; i < m; ++i) {
      running += nearest[i];
      if (running >= target && nearest[i] > 0.0) {
        pick = i;
        break;
      }
    }
    chosen = pool[pick];
  }
  return centroids;
}

void normalise(float* v, std::size_t dims, const kernels::KernelTable& kt) {
  const double norm = std::sqrt(static_cast<double>(kt.dot(v, v, dims)));
  if (norm > 0.0)
    for (std::size_t j = 0; j < dims; ++j) v[j] = static_cast<float>(v[j] / norm);
}

}  // namespace

void assign_nearest(const core::TiledMatrix& centroids, const float* points, std::size_t n,
                    const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop,
                    std::int64_t* labels, float* scores) {
  exact::search(centroids, points, n, 1, kt, threads, should_stop, labels, scores);
}

KMeansResult spherical_kmeans(const float* points, std::size_t n, std::size_t dims, const KMeansParams& params,
                              const kernels::KernelTable& kt, const StopCheck& should_stop) {
  const std::size_t clusters = params.clusters;
  std::mt19937_64 rng(params.seed);
  KMeansResult result;
  const auto seed_start = std::chrono::steady_clock::now();
  result.centroids = seed_centroids(points, n, dims, clusters, rng, kt);
  result.seed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - seed_start).count();

  std::vector<std::int64_t> labels(n, -1), previous(n, -1);
  std::vector<float> scores(n);
  std::vector<std::size_t> counts(clusters), offsets(clusters + 1), order(n);
  for (std::size_t it = 0; it < params.max_iterations; ++it) {
    const core::TiledMatrix tiled = core::tile_rows(result.centroids.data(), clusters, dims);
    assign_nearest(tiled, points, n, kt, params.threads, should_stop, labels.data(), scores.data());
    result.iterations = it + 1;
    std::size_t changed = 0;
    for (std::size_t i = 0; i < n; ++i) changed += labels[i] != previous[i];
    std::swap(labels, previous);  // `previous` now holds this iteration's labels

    // Group points by cluster (counting sort) so each task sums whole clusters: no per-thread copies
    // of the centroid table, however many clusters there are.
    std::fill(counts.begin(), counts.end(), 0);
    for (std::size_t i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(previous[i])];
    offsets[0] = 0;
    for (std::size_t c = 0; c < clusters; ++c) offsets[c + 1] = offsets[c] + counts[c];
    {
      std::vector<std::size_t> fill(offsets.begin(), offsets.end() - 1);
      for (std::size_t i = 0; i < n; ++i) order[fill[static_cast<std::size_t>(previous[i])]++] = i;
    }
    constexpr std::size_t kClustersPerTask = 64;
    auto update = [&](std::size_t t, core::TaskContext&) {
      std::vector<double> sum(dims);
      for (std::size_t c = t * kClustersPerTask; c < std::min(clusters, (t + 1) * kClustersPerTask); ++c) {
        if (counts[c] == 0) continue;
        std::fill(sum.begin(), sum.end(), 0.0);
        for (std::size_t at = offsets[c]; at < offsets[c + 1]; ++at) {
          const float* p = points + order[at] * dims;
          for (std::size_t j = 0; j < dims; ++j) sum[j] += p[j];
        }
        float* centre = result.centroids.data() + c * dims;
        for (std::size_t j = 0; j < dims; ++j) centre[j] = static_cast<float>(sum[j]);
        normalise(centre, dims, kt);
      }
    };
    core::parallel_for((clusters + kClustersPerTask - 1) / kClustersPerTask, params.threads, should_stop,
                       core::TaskFn(update));

    // Re-seed empty clusters with the points their centres fit worst, so no list is left dead.
    std::vector<std::size_t> empty;
    for (std::size_t c = 0; c < clusters; ++c)
      if (counts[c] == 0) empty.push_back(c);
    if (!empty.empty()) {
      std::vector<std::size_t> worst(n);
      std::iota(worst.begin(), worst.end(), std::size_t{0});
      const std::size_t take = std::min(empty.size(), n);
      std::partial_sort(worst.begin(), worst.begin() + static_cast<std::ptrdiff_t>(take), worst.end(),
                        [&](std::size_t a, std::size_t b) { return scores[a] < scores[b] || (scores[a] == scores[b] && a < b); });
      for (std::size_t e = 0; e < take; ++e) copy_row(points, worst[e], dims, result.centroids.data() + empty[e] * dims);
      result.reseeded += take;
      continue;  // the new centres need another assignment before settling
    }
    if (it > 0 && static_cast<double>(changed) <= params.settle_fraction * static_cast<double>(n)) break;
  }
  return result;
}

}  // namespace nndex::ivf
