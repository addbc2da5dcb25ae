// The IVF path: spherical k-means (internal API) and nndex::Index with approx=true, checked against
// exact search (bit for bit where the contract says so) and for recall on clustered data.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <span>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "core/pack.hpp"
#include "core/tiled_matrix.hpp"
#include "ivf/ivf_index.hpp"
#include "ivf/kmeans.hpp"
#include "kernels/kernels.hpp"
#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::BatchResult;
using nndex::Index;
using nndex::IndexOptions;
using nndex::SearchParams;

// ---------------------------------------------------------------------------------------------------
// Data.

// Random unit vectors (standard normal directions), n x dims row-major.
std::vector<float> unit_vectors(std::size_t n, std::size_t dims, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> out(n * dims);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> v(dims);
    double s = 0.0;
    for (double& x : v) {
      x = normal(gen);
      s += x * x;
    }
    const double norm = std::sqrt(s);
    for (std::size_t j = 0; j < dims; ++j) out[i * dims + j] = static_cast<float>(v[j] / norm);
  }
  return out;
}

struct Mixture {
  std::vector<float> points;   // n x dims
  std::vector<float> centres;  // centres x dims, unit norm
  std::vector<std::size_t> labels;
};

// n points around `centres` random unit centres: centre + noise of norm about spread * (0.7..1.3, per
// centre). With spread 1 a point's cosine to its own centre is about 0.7 and clusters overlap; with
// spread 0.05 they are tight and far apart. Uneven (gamma) cluster weights, like real data, unless
// `balanced`.
Mixture gaussian_mixture(std::size_t n, std::size_t dims, std::size_t centres, double spread, std::uint64_t seed,
                         bool normalise_points = false, bool balanced = false) {
  Mixture m;
  m.centres = unit_vectors(centres, dims, seed ^ 0x9e3779b97f4a7c15ULL);
  std::mt19937_64 gen(seed);
  std::gamma_distribution<double> gamma(2.0, 1.0);
  std::vector<double> weights(centres);
  for (double& w : weights) w = balanced ? 1.0 : gamma(gen);
  std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
  std::uniform_real_distribution<double> scale_dist(0.7, 1.3);
  std::vector<double> scale(centres);
  for (double& s : scale) s = spread * scale_dist(gen);
  std::normal_distribution<double> normal(0.0, 1.0);
  m.points.resize(n * dims);
  m.labels.resize(n);
  const double inv_sqrt_dims = 1.0 / std::sqrt(static_cast<double>(dims));
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = pick(gen);
    m.labels[i] = c;
    std::vector<double> v(dims);
    double s = 0.0;
    for (std::size_t j = 0; j < dims; ++j) {
      v[j] = m.centres[c * dims + j] + scale[c] * normal(gen) * inv_sqrt_dims;
      s += v[j] * v[j];
    }
    const double norm = normalise_points ? std::sqrt(s) : 1.0;
    for (std::size_t j = 0; j < dims; ++j) m.points[i * dims + j] = static_cast<float>(v[j] / norm);
  }
  return m;
}

std::vector<float> slice(const std::vector<float>& v, std::size_t first_row, std::size_t rows, std::size_t dims) {
  return {v.begin() + static_cast<std::ptrdiff_t>(first_row * dims),
          v.begin() + static_cast<std::ptrdiff_t>((first_row + rows) * dims)};
}

// ---------------------------------------------------------------------------------------------------
// Result checks.

bool bitwise_equal(const BatchResult& a, const BatchResult& b) {
  return a.queries == b.queries && a.k == b.k && a.indices == b.indices &&
         a.similarities.size() == b.similarities.size() &&
         std::memcmp(a.similarities.data(), b.similarities.data(), a.similarities.size() * sizeof(float)) == 0;
}

// First (query, position) where two results differ, for failure messages.
std::string first_difference(const BatchResult& a, const BatchResult& b) {
  if (a.queries != b.queries || a.k != b.k) return "shapes differ";
  for (std::size_t i = 0; i < a.indices.size(); ++i) {
    if (a.indices[i] != b.indices[i] ||
        std::memcmp(&a.similarities[i], &b.similarities[i], sizeof(float)) != 0) {
      return "query " + std::to_string(i / a.k) + " pos " + std::to_string(i % a.k) + ": " +
             std::to_string(a.indices[i]) + " (" + std::to_string(a.similarities[i]) + ") vs " +
             std::to_string(b.indices[i]) + " (" + std::to_string(b.similarities[i]) + ")";
    }
  }
  return "none";
}

// Every query row holds exactly min(k, rows) distinct in-range ids, best first (ties: lower id first),
// and each similarity is bit for bit the score exact search gives that row (`all_scores`: for every
// query, the score of every row, from an exact index over the same data).
void expect_valid_rows(const BatchResult& r, std::size_t rows, std::size_t k,
                       const std::vector<std::vector<float>>& all_scores, const std::string& where) {
  const std::size_t kk = std::min(k, rows);
  ASSERT_EQ(r.k, kk) << where;
  ASSERT_EQ(r.indices.size(), r.queries * kk) << where;
  ASSERT_EQ(r.similarities.size(), r.queries * kk) << where;
  for (std::size_t q = 0; q < r.queries; ++q) {
    std::set<std::int64_t> seen;
    for (std::size_t i = 0; i < kk; ++i) {
      const std::int64_t id = r.indices[q * kk + i];
      const float s = r.similarities[q * kk + i];
      ASSERT_GE(id, 0) << where << " query " << q << " pos " << i;
      ASSERT_LT(id, static_cast<std::int64_t>(rows)) << where << " query " << q << " pos " << i;
      EXPECT_TRUE(seen.insert(id).second) << where << " query " << q << ": row " << id << " returned twice";
      if (!all_scores.empty()) {
        const float exact = all_scores[q][static_cast<std::size_t>(id)];
        EXPECT_EQ(std::memcmp(&s, &exact, sizeof s), 0)
            << where << " query " << q << " row " << id << ": " << s << " vs exact " << exact;
      }
      if (i > 0) {
        const float ps = r.similarities[q * kk + i - 1];
        const std::int64_t pid = r.indices[q * kk + i - 1];
        EXPECT_TRUE(ps > s || (ps == s && pid < id)) << where << " query " << q << ": not best-first at pos " << i;
      }
    }
  }
}

// Scores of every row for every query, from exact search with k = rows.
std::vector<std::vector<float>> all_exact_scores(const Index& exact, const std::vector<float>& queries,
                                                 std::size_t n) {
  const BatchResult full = exact.search_batch(queries, n, exact.rows());
  std::vector<std::vector<float>> out(n, std::vector<float>(exact.rows()));
  for (std::size_t q = 0; q < n; ++q)
    for (std::size_t i = 0; i < full.k; ++i)
      out[q][static_cast<std::size_t>(full.indices[q * full.k + i])] = full.similarities[q * full.k + i];
  return out;
}

// Per query: how many of the exact top-k the approximate top-k found.
std::vector<std::size_t> hits(const BatchResult& approx, const BatchResult& exact) {
  std::vector<std::size_t> out(exact.queries);
  for (std::size_t q = 0; q < exact.queries; ++q) {
    std::set<std::int64_t> truth(exact.indices.begin() + static_cast<std::ptrdiff_t>(q * exact.k),
                                 exact.indices.begin() + static_cast<std::ptrdiff_t>((q + 1) * exact.k));
    for (std::size_t i = 0; i < approx.k; ++i) out[q] += truth.count(approx.indices[q * approx.k + i]);
  }
  return out;
}

double recall(const BatchResult& approx, const BatchResult& exact) {
  std::size_t total = 0;
  for (std::size_t h : hits(approx, exact)) total += h;
  return static_cast<double>(total) / static_cast<double>(exact.queries * exact.k);
}


SearchParams probe(std::size_t nprobe) {
  SearchParams p;
  p.nprobe = nprobe;
  return p;
}

IndexOptions approx_options(std::size_t nlist = 0, std::size_t nprobe = 0, bool normalized = false,
                            std::size_t threads = 0) {
  IndexOptions o;
  o.normalized = normalized;
  o.threads = threads;
  o.approx = true;
  o.method = nndex::ApproxMethod::ivf;
  o.nlist = nlist;
  o.nprobe = nprobe;
  return o;
}

// Runs `f`, which must throw exactly E.
template <class E, class F>
void expect_exactly(F&& f, const std::string& where) {
  try {
    f();
  } catch (const nndex::Error& e) {
    EXPECT_TRUE(typeid(e) == typeid(E)) << where << ": threw " << typeid(e).name() << " (" << e.what() << ")";
    EXPECT_FALSE(std::string(e.what()).empty()) << where;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << ": threw a non-nndex exception: " << e.what();
    return;
  }
  ADD_FAILURE() << where << ": nothing thrown";
}

// ---------------------------------------------------------------------------------------------------
// Spherical k-means.

using nndex::ivf::assign_nearest;
using nndex::ivf::KMeansParams;
using nndex::ivf::KMeansResult;
using nndex::ivf::spherical_kmeans;

const nndex::kernels::KernelTable& kt() { return nndex::kernels::active(); }

KMeansResult run_kmeans(const std::vector<float>& points, std::size_t n, std::size_t dims, std::size_t clusters,
                        std::uint64_t seed, std::size_t threads = 1, std::size_t iterations = 10) {
  KMeansParams p;
  p.clusters = clusters;
  p.seed = seed;
  p.threads = threads;
  p.max_iterations = iterations;
  return spherical_kmeans(points.data(), n, dims, p, kt(), {});
}

// The kernels score with one fused multiply-add per dimension in order j = 0..dims-1, so this is the
// kernels' score bit for bit.
float fma_dot(const float* a, const float* b, std::size_t dims) {
  float acc = 0.0f;
  for (std::size_t j = 0; j < dims; ++j) acc = std::fma(a[j], b[j], acc);
  return acc;
}

std::vector<std::size_t> cluster_sizes(const std::vector<float>& centroids, std::size_t clusters,
                                       const std::vector<float>& points, std::size_t n, std::size_t dims) {
  const nndex::core::TiledMatrix tiled = nndex::core::tile_rows(centroids.data(), clusters, dims);
  std::vector<std::int64_t> labels(n);
  std::vector<float> scores(n);
  assign_nearest(tiled, points.data(), n, kt(), 1, {}, labels.data(), scores.data());
  std::vector<std::size_t> sizes(clusters, 0);
  for (std::int64_t l : labels) {
    EXPECT_GE(l, 0);
    EXPECT_LT(l, static_cast<std::int64_t>(clusters));
    if (l >= 0 && l < static_cast<std::int64_t>(clusters)) ++sizes[static_cast<std::size_t>(l)];
  }
  return sizes;
}

TEST(KMeans, CentroidsAreUnitNorm) {
  const std::size_t n = 3000, dims = 24, clusters = 37;
  const Mixture m = gaussian_mixture(n, dims, 20, 1.0, 101, /*normalise_points=*/true);
  const KMeansResult r = run_kmeans(m.points, n, dims, clusters, 5);
  ASSERT_EQ(r.centroids.size(), clusters * dims);
  EXPECT_GE(r.iterations, 1u);
  EXPECT_LE(r.iterations, 10u);
  for (std::size_t c = 0; c < clusters; ++c) {
    double s = 0.0;
    for (std::size_t j = 0; j < dims; ++j) {
      ASSERT_TRUE(std::isfinite(r.centroids[c * dims + j])) << "centroid " << c;
      s += static_cast<double>(r.centroids[c * dims + j]) * r.centroids[c * dims + j];
    }
    EXPECT_NEAR(std::sqrt(s), 1.0, 1e-5) << "centroid " << c;
  }
}

TEST(KMeans, DeterministicForASeed) {
  const std::size_t n = 2500, dims = 16, clusters = 30;
  const Mixture m = gaussian_mixture(n, dims, 25, 1.0, 102, true);
  const KMeansResult a = run_kmeans(m.points, n, dims, clusters, 77, 1);
  const KMeansResult b = run_kmeans(m.points, n, dims, clusters, 77, 1);
  const KMeansResult c = run_kmeans(m.points, n, dims, clusters, 77, 2);  // threads change nothing
  ASSERT_EQ(a.centroids.size(), b.centroids.size());
  EXPECT_EQ(std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a.centroids.data(), c.centroids.data(), a.centroids.size() * sizeof(float)), 0);
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(a.reseeded, b.reseeded);
  const KMeansResult other = run_kmeans(m.points, n, dims, clusters, 78, 1);
  EXPECT_NE(std::memcmp(a.centroids.data(), other.centroids.data(), a.centroids.size() * sizeof(float)), 0)
      << "a different seed gave the very same centroids";
}

TEST(KMeans, NoEmptyClustersOnWellSpreadData) {
  const std::size_t dims = 16;
  for (const std::size_t clusters : {8u, 40u, 100u}) {
    const std::size_t n = clusters * 40;
    const std::vector<float> points = unit_vectors(n, dims, 200 + clusters);
    for (const std::uint64_t seed : {1u, 2u}) {
      const KMeansResult r = run_kmeans(points, n, dims, clusters, seed);
      const std::vector<std::size_t> sizes = cluster_sizes(r.centroids, clusters, points, n, dims);
      for (std::size_t c = 0; c < clusters; ++c)
        EXPECT_GT(sizes[c], 0u) << "cluster " << c << " of " << clusters << " is empty (seed " << seed << ")";
    }
  }
}

TEST(KMeans, RecoversWellSeparatedPlantedCentres) {
  // 8 tight, equally likely clusters (the seeding samples 8 points a cluster, so a much smaller
  // cluster can be missed by it; that is a quality trade-off, not tested here).
  const std::size_t dims = 32, planted = 8, n = 1600;
  const Mixture m = gaussian_mixture(n, dims, planted, 0.05, 103, true, true);
  for (const std::uint64_t seed : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u}) {
    const KMeansResult r = run_kmeans(m.points, n, dims, planted, seed);
    std::vector<std::size_t> matched_by(planted, planted);
    for (std::size_t p = 0; p < planted; ++p) {
      double best = -2.0;
      std::size_t best_c = 0;
      for (std::size_t c = 0; c < planted; ++c) {
        double dot = 0.0;
        for (std::size_t j = 0; j < dims; ++j)
          dot += static_cast<double>(m.centres[p * dims + j]) * r.centroids[c * dims + j];
        if (dot > best) {
          best = dot;
          best_c = c;
        }
      }
      EXPECT_GT(best, 0.99) << "planted centre " << p << " has no centroid near it (seed " << seed << ")";
      matched_by[p] = best_c;
    }
    // One centroid per planted centre.
    EXPECT_EQ(std::set<std::size_t>(matched_by.begin(), matched_by.end()).size(), planted) << "seed " << seed;
  }
}

TEST(KMeans, AssignNearestIsTheBruteForceArgmaxWithTiesToTheLowerId) {
  const std::size_t dims = 20, n = 700;
  // 45 centroids, several of them exact duplicates of earlier ones (ties must go to the lower id).
  std::vector<float> centroids = unit_vectors(45, dims, 104);
  const std::pair<std::size_t, std::size_t> copies[] = {{7, 3}, {20, 3}, {44, 0}, {31, 30}};
  for (const auto& [dst, src] : copies)
    std::copy(centroids.begin() + static_cast<std::ptrdiff_t>(src * dims),
              centroids.begin() + static_cast<std::ptrdiff_t>((src + 1) * dims),
              centroids.begin() + static_cast<std::ptrdiff_t>(dst * dims));
  const std::size_t clusters = 45;
  std::vector<float> points = unit_vectors(n, dims, 105);
  // Some points are centroids themselves, some duplicated centroids.
  for (std::size_t i = 0; i < 10; ++i)
    std::copy(centroids.begin() + static_cast<std::ptrdiff_t>(((i * 7) % clusters) * dims),
              centroids.begin() + static_cast<std::ptrdiff_t>(((i * 7) % clusters + 1) * dims),
              points.begin() + static_cast<std::ptrdiff_t>(i * dims));
  const nndex::core::TiledMatrix tiled = nndex::core::tile_rows(centroids.data(), clusters, dims);
  for (const std::size_t threads : {1u, 2u}) {
    std::vector<std::int64_t> labels(n, -7);
    std::vector<float> scores(n);
    assign_nearest(tiled, points.data(), n, kt(), threads, {}, labels.data(), scores.data());
    std::size_t ties = 0;
    for (std::size_t i = 0; i < n; ++i) {
      float best = -std::numeric_limits<float>::infinity();
      std::size_t best_c = 0;
      std::size_t equal_best = 0;
      for (std::size_t c = 0; c < clusters; ++c) {
        const float s = fma_dot(centroids.data() + c * dims, points.data() + i * dims, dims);
        if (s > best) {
          best = s;
          best_c = c;
          equal_best = 1;
        } else if (s == best) {
          ++equal_best;
        }
      }
      ties += equal_best > 1;
      EXPECT_EQ(labels[i], static_cast<std::int64_t>(best_c)) << "point " << i << " threads " << threads;
      EXPECT_EQ(std::memcmp(&scores[i], &best, sizeof best), 0) << "point " << i << ": " << scores[i] << " vs " << best;
    }
    EXPECT_GT(ties, 0u) << "the test data should contain ties";
  }
}

TEST(KMeans, AsManyClustersAsPoints) {
  const std::size_t dims = 8, n = 33;
  const std::vector<float> points = unit_vectors(n, dims, 106);
  const KMeansResult r = run_kmeans(points, n, dims, n, 3);
  const std::vector<std::size_t> sizes = cluster_sizes(r.centroids, n, points, n, dims);
  for (std::size_t c = 0; c < n; ++c) EXPECT_EQ(sizes[c], 1u) << "cluster " << c;
}

// ---------------------------------------------------------------------------------------------------
// Index with approx=true: the fallback, explicit nlist, and equality with exact search.

TEST(IvfIndex, SmallMatrixWithoutNlistFallsBackToExactSearch) {
  const std::size_t rows = 3000, dims = 24, nq = 40;
  const Mixture m = gaussian_mixture(rows + nq, dims, 30, 1.0, 201);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  for (const bool normalized : {false, true}) {
    const Index approx(data, rows, dims, approx_options(0, 0, normalized));
    IndexOptions eo;
    eo.normalized = normalized;
    const Index exact(data, rows, dims, eo);
    EXPECT_TRUE(approx.approx());
    EXPECT_FALSE(approx.uses_ivf());
    EXPECT_EQ(approx.nlist(), 1u);
    EXPECT_EQ(approx.nprobe(), 1u);
    EXPECT_FALSE(exact.approx());
    EXPECT_FALSE(exact.uses_ivf());
    EXPECT_EQ(exact.nlist(), 1u);
    EXPECT_EQ(exact.nprobe(), 1u);
    for (const std::size_t k : {1u, 10u, 3000u, 5000u}) {
      const BatchResult a = approx.search_batch(queries, nq, k);
      const BatchResult e = exact.search_batch(queries, nq, k);
      EXPECT_TRUE(bitwise_equal(a, e)) << "k " << k << ": " << first_difference(a, e);
      // A per-call nprobe is harmless on the fallback.
      const BatchResult p = approx.search_batch(queries, nq, k, probe(7));
      EXPECT_TRUE(bitwise_equal(p, e)) << "k " << k << ": " << first_difference(p, e);
    }
  }
  // Just below the automatic threshold is still exact, from it on the IVF is built; an explicit nlist
  // always builds the IVF.
  // At 512 dims the value threshold binds at the row threshold; at 8 dims only the value one does.
  using nndex::ivf::kMinRowsForIvf;
  using nndex::ivf::kMinValuesForIvf;
  for (const std::size_t dims : {std::size_t{8}, std::size_t{512}}) {
    const std::size_t rows = std::max(kMinRowsForIvf, kMinValuesForIvf / dims);
    const std::vector<float> big = gaussian_mixture(rows, dims, 10, 1.0, 202).points;
    const std::span<const float> below(big.data(), (rows - 1) * dims);
    EXPECT_FALSE(Index(below, rows - 1, dims, approx_options()).uses_ivf()) << dims;
    EXPECT_TRUE(Index(below, rows - 1, dims, approx_options(8)).uses_ivf()) << dims;
    const Index at(big, rows, dims, approx_options());
    EXPECT_TRUE(at.uses_ivf()) << dims;
    EXPECT_EQ(at.nlist(), nndex::ivf::default_nlist(rows)) << dims;
  }
}

TEST(IvfIndex, ExplicitNlistBuildsTheIvf) {
  const std::size_t rows = 2000, dims = 16;
  const std::vector<float> data = gaussian_mixture(rows, dims, 20, 1.0, 203).points;
  const Index index(data, rows, dims, approx_options(40));
  EXPECT_TRUE(index.approx());
  EXPECT_TRUE(index.uses_ivf());
  EXPECT_EQ(index.nlist(), 40u);
  EXPECT_GE(index.nprobe(), 1u);
  EXPECT_LE(index.nprobe(), 40u);
  EXPECT_EQ(index.rows(), rows);
  EXPECT_EQ(index.dims(), dims);
  EXPECT_GT(index.memory_bytes(), rows * dims * sizeof(float));

  const Index given(data, rows, dims, approx_options(40, 3));
  EXPECT_EQ(given.nlist(), 40u);
  EXPECT_EQ(given.nprobe(), 3u);
  // nprobe beyond nlist probes everything.
  const Index capped(data, rows, dims, approx_options(40, 1000));
  EXPECT_EQ(capped.nprobe(), 40u);
}

TEST(IvfIndex, DefaultNlistAboveTheThreshold) {
  const std::size_t rows = 20000, dims = 32;
  const std::vector<float> data = gaussian_mixture(rows, dims, 50, 1.0, 204).points;
  const Index index(data, rows, dims, approx_options());
  EXPECT_TRUE(index.uses_ivf());
  EXPECT_EQ(index.nlist(), nndex::ivf::default_nlist(rows));
  EXPECT_NEAR(static_cast<double>(index.nlist()), 2.0 * std::sqrt(static_cast<double>(rows)), 2.0);
  EXPECT_GE(index.nprobe(), 1u);
  EXPECT_LT(index.nprobe(), index.nlist());
}

TEST(IvfIndex, DefaultNlistFunction) {
  EXPECT_EQ(nndex::ivf::default_nlist(1), 1u);
  EXPECT_EQ(nndex::ivf::default_nlist(63), 1u);
  EXPECT_EQ(nndex::ivf::default_nlist(640), 10u);  // capped at rows / 64
  EXPECT_EQ(nndex::ivf::default_nlist(1000000), 2000u);
  for (std::size_t rows = 1; rows < 200000; rows = rows * 3 + 1) {
    const std::size_t n = nndex::ivf::default_nlist(rows);
    EXPECT_GE(n, 1u);
    EXPECT_LE(n, rows);
  }
}

class IvfVsExact : public ::testing::TestWithParam<bool> {};  // normalized

TEST_P(IvfVsExact, OneListAndFullProbeEqualExactSearchBitwise) {
  const bool normalized = GetParam();
  const std::size_t rows = 2500, dims = 20, nq = 60;
  const Mixture m = gaussian_mixture(rows + nq, dims, 40, 1.0, 205);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  IndexOptions eo;
  eo.normalized = normalized;
  const Index exact(data, rows, dims, eo);

  const Index one(data, rows, dims, approx_options(1, 0, normalized));
  EXPECT_TRUE(one.uses_ivf());
  EXPECT_EQ(one.nlist(), 1u);
  EXPECT_EQ(one.nprobe(), 1u);
  const Index many(data, rows, dims, approx_options(50, 2, normalized));
  ASSERT_EQ(many.nlist(), 50u);
  for (const std::size_t k : {1u, 10u, 100u, 2500u, 3000u}) {
    const BatchResult e = exact.search_batch(queries, nq, k);
    const BatchResult a = one.search_batch(queries, nq, k);
    EXPECT_TRUE(bitwise_equal(a, e)) << "nlist 1, k " << k << ": " << first_difference(a, e);
    const BatchResult full = many.search_batch(queries, nq, k, probe(50));
    EXPECT_TRUE(bitwise_equal(full, e)) << "nprobe = nlist, k " << k << ": " << first_difference(full, e);
    const BatchResult beyond = many.search_batch(queries, nq, k, probe(500));
    EXPECT_TRUE(bitwise_equal(beyond, e)) << "nprobe > nlist, k " << k << ": " << first_difference(beyond, e);
  }
  // The same for single queries.
  for (std::size_t q = 0; q < 5; ++q) {
    const std::span<const float> query(queries.data() + q * dims, dims);
    const auto e = exact.search(query, 10);
    const auto a = many.search(query, 10, probe(50));
    ASSERT_EQ(a.size(), e.size());
    for (std::size_t i = 0; i < e.size(); ++i) {
      EXPECT_EQ(a[i].index, e[i].index) << "query " << q << " pos " << i;
      EXPECT_EQ(std::memcmp(&a[i].similarity, &e[i].similarity, sizeof(float)), 0) << "query " << q << " pos " << i;
    }
  }
}

TEST_P(IvfVsExact, EveryQueryGetsExactlyMinKRowsBestFirst) {
  const bool normalized = GetParam();
  // About 10 rows a list, so k is often larger than the probed clusters hold.
  const std::size_t rows = 2000, dims = 32, nq = 40, nlist = 200;
  const Mixture m = gaussian_mixture(rows + nq, dims, 40, 1.0, 206);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  IndexOptions eo;
  eo.normalized = normalized;
  const Index exact(data, rows, dims, eo);
  const auto scores = all_exact_scores(exact, queries, nq);
  const Index index(data, rows, dims, approx_options(nlist, 1, normalized));
  ASSERT_EQ(index.nprobe(), 1u);
  for (const std::size_t nprobe : {0u, 1u, 2u, 7u}) {
    for (const std::size_t k : {1u, 5u, 10u, 50u, 300u, 1999u, 2000u, 2001u, 10000u}) {
      const BatchResult r = index.search_batch(queries, nq, k, probe(nprobe));
      expect_valid_rows(r, rows, k, scores, "nprobe " + std::to_string(nprobe) + " k " + std::to_string(k));
      if (k >= rows) {
        // Everything was needed, so everything was probed: the exact ranking.
        const BatchResult e = exact.search_batch(queries, nq, k);
        EXPECT_TRUE(bitwise_equal(r, e)) << first_difference(r, e);
      }
    }
  }
}

TEST_P(IvfVsExact, SingleSearchEqualsItsBatchRow) {
  const bool normalized = GetParam();
  const std::size_t rows = 3000, dims = 24, nq = 30, k = 15;
  const Mixture m = gaussian_mixture(rows + nq, dims, 30, 1.0, 207);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  const Index index(data, rows, dims, approx_options(60, 0, normalized));
  for (const std::size_t nprobe : {0u, 1u, 5u}) {
    const BatchResult batch = index.search_batch(queries, nq, k, probe(nprobe));
    for (std::size_t q = 0; q < nq; ++q) {
      const auto one = index.search(std::span<const float>(queries.data() + q * dims, dims), k, probe(nprobe));
      ASSERT_EQ(one.size(), batch.k);
      for (std::size_t i = 0; i < one.size(); ++i) {
        EXPECT_EQ(one[i].index, batch.indices[q * k + i]) << "nprobe " << nprobe << " query " << q << " pos " << i;
        EXPECT_EQ(std::memcmp(&one[i].similarity, &batch.similarities[q * k + i], sizeof(float)), 0)
            << "nprobe " << nprobe << " query " << q << " pos " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Normalized, IvfVsExact, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "DotProduct" : "Cosine");
                         });

TEST(IvfIndex, SameSeedSameIndexAndResults) {
  const std::size_t rows = 4000, dims = 16, nq = 50;
  const Mixture m = gaussian_mixture(rows + nq, dims, 40, 1.0, 208);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  IndexOptions o = approx_options(64);
  o.seed = 12345;
  const Index a(data, rows, dims, o);
  const Index b(data, rows, dims, o);
  EXPECT_EQ(a.nlist(), b.nlist());
  EXPECT_EQ(a.nprobe(), b.nprobe());
  EXPECT_TRUE(a.to_bytes() == b.to_bytes()) << "same seed, different index files";
  for (const std::size_t nprobe : {0u, 1u, 3u}) {
    const BatchResult ra = a.search_batch(queries, nq, 10, probe(nprobe));
    const BatchResult rb = b.search_batch(queries, nq, 10, probe(nprobe));
    EXPECT_TRUE(bitwise_equal(ra, rb)) << "nprobe " << nprobe << ": " << first_difference(ra, rb);
  }
  o.seed = 54321;
  const Index c(data, rows, dims, o);
  EXPECT_FALSE(a.to_bytes() == c.to_bytes()) << "another seed gave the same clustering";
}

TEST(IvfIndex, OneAndTwoThreadsGiveIdenticalResults) {
  const std::size_t rows = 6000, dims = 32, nq = 300;
  const Mixture m = gaussian_mixture(rows + nq, dims, 60, 1.0, 209);
  const std::vector<float> data = slice(m.points, 0, rows, dims);
  const std::vector<float> queries = slice(m.points, rows, nq, dims);
  const Index one(data, rows, dims, approx_options(64, 0, false, 1));
  const Index two(data, rows, dims, approx_options(64, 0, false, 2));
  EXPECT_EQ(one.threads(), 1u);
  EXPECT_EQ(two.threads(), 2u);
  EXPECT_EQ(one.nprobe(), two.nprobe());
  EXPECT_TRUE(one.to_bytes() == two.to_bytes()) << "the build depends on the thread count";
  for (const std::size_t nprobe : {0u, 1u, 8u, 64u}) {
    for (const std::size_t k : {1u, 10u, 100u}) {
      const BatchResult r1 = one.search_batch(queries, nq, k, probe(nprobe));
      const BatchResult r2 = two.search_batch(queries, nq, k, probe(nprobe));
      EXPECT_TRUE(bitwise_equal(r1, r2)) << "nprobe " << nprobe << " k " << k << ": " << first_difference(r1, r2);
    }
  }
}

TEST(IvfIndex, HigherRecallTargetProbesAtLeastAsMuch) {
  const std::size_t rows = 6000, dims = 16;
  const std::vector<float> data = gaussian_mixture(rows, dims, 60, 1.0, 210).points;
  IndexOptions low = approx_options(64);
  low.recall = 0.5;
  IndexOptions high = approx_options(64);
  high.recall = 0.99;
  const Index a(data, rows, dims, low);
  const Index b(data, rows, dims, high);
  const Index d(data, rows, dims, approx_options(64));
  EXPECT_LE(a.nprobe(), d.nprobe());
  EXPECT_LE(d.nprobe(), b.nprobe());
  EXPECT_LE(b.nprobe(), 64u);
}

TEST(IvfIndex, DegenerateDataWithDuplicatesAndEmptyLists) {
  // dims 1 under cosine: every row is +1 or -1, so at most two lists can hold rows.
  const std::size_t rows = 300, dims = 1, nq = 4;
  std::vector<float> data(rows);
  for (std::size_t i = 0; i < rows; ++i) data[i] = (i % 3 == 0 ? -1.0f : 1.0f) * static_cast<float>(i + 1);
  const std::vector<float> queries = {2.0f, -0.5f, 7.0f, -3.0f};
  const Index exact(data, rows, dims);
  const auto scores = all_exact_scores(exact, queries, nq);
  const Index index(data, rows, dims, approx_options(6, 1));
  EXPECT_TRUE(index.uses_ivf());
  EXPECT_EQ(index.nlist(), 6u);
  for (const std::size_t nprobe : {1u, 2u, 6u}) {
    for (const std::size_t k : {1u, 10u, 150u, 250u, 300u, 400u}) {
      const BatchResult r = index.search_batch(queries, nq, k, probe(nprobe));
      expect_valid_rows(r, rows, k, scores, "nprobe " + std::to_string(nprobe) + " k " + std::to_string(k));
      // Ties everywhere: the lowest ids of the best group come first, exactly as in exact search.
      const BatchResult e = exact.search_batch(queries, nq, k);
      EXPECT_TRUE(bitwise_equal(r, e)) << "nprobe " << nprobe << " k " << k << ": " << first_difference(r, e);
    }
  }
}

TEST(IvfIndex, OneRowAndOneListPerRow) {
  const std::vector<float> row = {0.25f, -1.0f, 3.0f};
  const Index single(row, 1, 3, approx_options(1));
  EXPECT_TRUE(single.uses_ivf());
  const auto r = single.search(std::vector<float>{1.0f, 1.0f, 1.0f}, 5);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].index, 0);

  const std::size_t rows = 50, dims = 6, nq = 10;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 211);
  const std::vector<float> queries = nndex_test::random_floats(nq * dims, 212);
  const Index exact(data, rows, dims);
  const Index each(data, rows, dims, approx_options(rows));
  EXPECT_EQ(each.nlist(), rows);
  const auto scores = all_exact_scores(exact, queries, nq);
  for (const std::size_t k : {1u, 3u, 50u}) {
    expect_valid_rows(each.search_batch(queries, nq, k, probe(1)), rows, k, scores, "k " + std::to_string(k));
    const BatchResult full = each.search_batch(queries, nq, k, probe(rows));
    const BatchResult e = exact.search_batch(queries, nq, k);
    EXPECT_TRUE(bitwise_equal(full, e)) << first_difference(full, e);
  }
}

// ---------------------------------------------------------------------------------------------------
// Recall on a clustered set (30,000 x 32), shared by the tests below.

class IvfRecall : public ::testing::Test {
 protected:
  static constexpr std::size_t kRows = 30000, kDims = 32, kQueries = 300, kK = 10;

  static void SetUpTestSuite() {
    const Mixture m = gaussian_mixture(kRows + kQueries, kDims, 300, 1.0, 301);
    data_ = new std::vector<float>(slice(m.points, 0, kRows, kDims));
    queries_ = new std::vector<float>(slice(m.points, kRows, kQueries, kDims));
    index_ = new Index(*data_, kRows, kDims, approx_options());
    exact_ = new Index(*data_, kRows, kDims);
    truth_ = new BatchResult(exact_->search_batch(*queries_, kQueries, kK));
  }
  static void TearDownTestSuite() {
    delete truth_;
    delete exact_;
    delete index_;
    delete queries_;
    delete data_;
  }

  static std::vector<float>* data_;
  static std::vector<float>* queries_;
  static Index* index_;
  static Index* exact_;
  static BatchResult* truth_;
};

std::vector<float>* IvfRecall::data_ = nullptr;
std::vector<float>* IvfRecall::queries_ = nullptr;
Index* IvfRecall::index_ = nullptr;
Index* IvfRecall::exact_ = nullptr;
BatchResult* IvfRecall::truth_ = nullptr;

TEST_F(IvfRecall, DefaultNprobeReachesRecall) {
  const Index& ix = *index_;
  ASSERT_TRUE(ix.uses_ivf());
  EXPECT_EQ(ix.nlist(), nndex::ivf::default_nlist(kRows));
  EXPECT_GE(ix.nprobe(), 1u);
  EXPECT_LT(ix.nprobe(), ix.nlist()) << "calibration probes everything: no speed-up";
  const BatchResult r = ix.search_batch(*queries_, kQueries, kK);
  const double rec = recall(r, *truth_);
  RecordProperty("recall_at_10", std::to_string(rec));
  RecordProperty("nprobe", std::to_string(ix.nprobe()));
  EXPECT_GE(rec, 0.95) << "the default promises recall@10 >= 0.95; nlist " << ix.nlist() << " nprobe " << ix.nprobe();
  expect_valid_rows(r, kRows, kK, {}, "default nprobe");
}

TEST_F(IvfRecall, RecallNeverDropsAsNprobeGrows) {
  const Index& ix = *index_;
  const std::size_t nlist = ix.nlist();
  std::vector<std::size_t> probes = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, nlist};
  double previous = -1.0;
  std::vector<std::size_t> previous_hits(kQueries, 0);
  for (const std::size_t p : probes) {
    const BatchResult r = ix.search_batch(*queries_, kQueries, kK, probe(p));
    const std::vector<std::size_t> h = hits(r, *truth_);
    const double rec = recall(r, *truth_);
    EXPECT_GE(rec, previous) << "nprobe " << p;
    // Probing a superset of lists with exact re-ranking can never lose a true neighbour.
    for (std::size_t q = 0; q < kQueries; ++q)
      EXPECT_GE(h[q], previous_hits[q]) << "nprobe " << p << " query " << q;
    previous = rec;
    previous_hits = h;
  }
  EXPECT_EQ(previous, 1.0);
  const BatchResult all = ix.search_batch(*queries_, kQueries, kK, probe(nlist));
  EXPECT_TRUE(bitwise_equal(all, *truth_)) << first_difference(all, *truth_);
}

TEST_F(IvfRecall, StopCheckInterruptsSearchAndIndexStaysUsable) {
  const Index& ix = *index_;
  SearchParams stop;
  std::atomic<int> polls{0};
  stop.should_stop = [&] {
    polls.fetch_add(1);
    return true;
  };
  stop.nprobe = ix.nlist();
  bool interrupted = false;
  // Whole-matrix probes of up to 2400 queries: far more than the ~10 ms before the first poll.
  std::vector<float> many;
  for (std::size_t rep = 0; rep < 8; ++rep) many.insert(many.end(), queries_->begin(), queries_->end());
  for (std::size_t n = 300; n <= 8 * kQueries && !interrupted; n *= 2) {
    try {
      ix.search_batch(std::span<const float>(many.data(), n * kDims), n, kK, stop);
    } catch (const nndex::Interrupted&) {
      interrupted = true;
    }
  }
  EXPECT_TRUE(interrupted);
  EXPECT_GE(polls.load(), 1);
  SearchParams never;
  never.should_stop = [] { return false; };
  const BatchResult a = ix.search_batch(*queries_, kQueries, kK, never);
  const BatchResult b = ix.search_batch(*queries_, kQueries, kK);
  EXPECT_TRUE(bitwise_equal(a, b)) << first_difference(a, b);
}

// ---------------------------------------------------------------------------------------------------
// Options and interruption.

TEST(IvfOptions, InvalidCombinationsAreInvalidArgument) {
  const std::size_t rows = 100, dims = 4;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 401);
  auto build = [&](IndexOptions o) { return [&data, o] { Index ix(data, rows, dims, o); }; };

  expect_exactly<nndex::InvalidArgument>(build(approx_options(101)), "nlist > rows");
  expect_exactly<nndex::InvalidArgument>(build(approx_options(1000000)), "nlist >> rows");
  for (const double r : {-0.5, 1.0000001, 1.5, -1e-300, std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
    IndexOptions o = approx_options(10);
    o.recall = r;
    expect_exactly<nndex::InvalidArgument>(build(o), "recall " + std::to_string(r));
  }
  {
    IndexOptions o = approx_options(10, 3);
    o.recall = 0.9;
    expect_exactly<nndex::InvalidArgument>(build(o), "nprobe and recall");
  }
  {
    IndexOptions o;
    o.nlist = 10;
    expect_exactly<nndex::InvalidArgument>(build(o), "nlist without approx");
    o = {};
    o.nprobe = 2;
    expect_exactly<nndex::InvalidArgument>(build(o), "nprobe without approx");
    o = {};
    o.recall = 0.9;
    expect_exactly<nndex::InvalidArgument>(build(o), "recall without approx");
  }
  // The edges that are allowed.
  {
    IndexOptions o = approx_options(100);
    o.recall = 1.0;
    EXPECT_NO_THROW(Index(data, rows, dims, o));
    o.recall = 1e-9;
    EXPECT_NO_THROW(Index(data, rows, dims, o));
    EXPECT_NO_THROW(Index(data, rows, dims, approx_options(100, 100)));
    // recall is accepted (and unused) where the matrix is too small for the IVF.
    IndexOptions f = approx_options();
    f.recall = 0.9;
    EXPECT_NO_THROW(Index(data, rows, dims, f));
  }
}

TEST(IvfOptions, StopCheckInterruptsAnIvfBuild) {
  const std::size_t dims = 64;
  bool interrupted = false;
  for (std::size_t rows = 40000; rows <= 160000 && !interrupted; rows *= 2) {
    const std::vector<float> data = nndex_test::random_floats(rows * dims, 402);
    std::atomic<int> polls{0};
    try {
      const Index ix(nndex::MatrixView::row_major(data.data(), rows, dims), approx_options(0, 0, false, 1), [&] {
        polls.fetch_add(1);
        return true;
      });
    } catch (const nndex::Interrupted&) {
      interrupted = true;
      EXPECT_GE(polls.load(), 1);
    }
  }
  EXPECT_TRUE(interrupted) << "no IVF build was interrupted";
  // A stop check that never fires changes nothing.
  const std::size_t rows = 3000;
  const std::vector<float> data = nndex_test::random_floats(rows * 8, 403);
  const Index plain(data, rows, 8, approx_options(30));
  const Index polled(nndex::MatrixView::row_major(data.data(), rows, 8), approx_options(30), [] { return false; });
  EXPECT_TRUE(plain.to_bytes() == polled.to_bytes());
}

TEST(IvfOptions, KMeansItselfHonoursTheStopCheck) {
  const std::size_t n = 60000, dims = 64, clusters = 500;
  const std::vector<float> points = unit_vectors(n, dims, 404);
  KMeansParams p;
  p.clusters = clusters;
  p.threads = 1;
  EXPECT_THROW(spherical_kmeans(points.data(), n, dims, p, kt(), [] { return true; }), nndex::Interrupted);
}

}  // namespace
