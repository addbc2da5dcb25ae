#include "ivf/ivf_index.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "core/pack.hpp"
#include "core/thread_pool.hpp"
#include "exact/exact_search.hpp"
#include "ivf/kmeans.hpp"
#include "nndex/errors.hpp"
#include "storage/quantize.hpp"

namespace nndex::ivf {
namespace {

using kernels::kBlockRows;

// Training sample: enough points per centroid for stable means, bounded so large matrices train fast.
constexpr std::size_t kTrainPointsPerCluster = 40;
// Calibration: held-out rows used as queries, and the k of the recall it measures.
constexpr std::size_t kCalibrationQueries = 1000;
constexpr std::size_t kCalibrationK = 10;

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point& mark) {
  const auto now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - mark).count();
  mark = now;
  return ms;
}

std::vector<std::size_t> sample_rows(std::size_t n, std::size_t count, std::mt19937_64& rng) {
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  count = std::min(count, n);
  for (std::size_t i = 0; i < count; ++i) std::swap(all[i], all[i + rng() % (n - i)]);
  all.resize(count);
  std::sort(all.begin(), all.end());  // gather in memory order
  return all;
}

std::vector<float> gather(const float* rows, std::size_t dims, const std::vector<std::size_t>& which) {
  std::vector<float> out(which.size() * dims);
  for (std::size_t i = 0; i < which.size(); ++i)
    std::copy(rows + which[i] * dims, rows + (which[i] + 1) * dims, out.begin() + static_cast<std::ptrdiff_t>(i * dims));
  return out;
}

}  // namespace

std::size_t default_nlist(std::size_t rows) {
  // About 2 sqrt(n) lists of a few hundred rows: the centroid scan stays a small share of the work
  // while each probe is a long sequential run; at least 64 rows a list on average.
  const auto by_sqrt = static_cast<std::size_t>(std::lround(2.0 * std::sqrt(static_cast<double>(rows))));
  return std::clamp<std::size_t>(by_sqrt, 1, std::max<std::size_t>(1, rows / 64));
}

IvfIndex::IvfIndex(const float* rows, std::size_t n, std::size_t dims, const BuildParams& params,
                   const kernels::KernelTable& kt, const StopCheck& should_stop)
{
  p_.rows = n;
  p_.dims = dims;
  const std::size_t nlist =
      params.centroids != nullptr ? params.centroids->rows() : params.nlist == 0 ? default_nlist(n) : params.nlist;
  if (nlist > n && params.centroids == nullptr)
    throw InvalidArgument("nlist (" + std::to_string(nlist) + ") must not exceed the number of rows (" +
                          std::to_string(n) + ")");
  std::mt19937_64 rng(params.seed);
  auto mark = Clock::now();

  // 1. Train on a sample (unless the lists are given).
  std::vector<std::size_t> train_rows;
  if (params.centroids != nullptr) {
    p_.centroids = *params.centroids;  // shares the (immutable) tiles
  } else {
    train_rows = sample_rows(n, nlist * kTrainPointsPerCluster, rng);
    const std::vector<float> train = gather(rows, dims, train_rows);
    KMeansParams kp;
    kp.clusters = nlist;
    kp.seed = rng();
    kp.threads = params.threads;
    const KMeansResult km = spherical_kmeans(train.data(), train_rows.size(), dims, kp, kt, should_stop);
    report_.train_points = train_rows.size();
    report_.iterations = km.iterations;
    report_.reseeded = km.reseeded;
    report_.seed_ms = km.seed_ms;
    report_.train_ms = ms_since(mark) - km.seed_ms;
    p_.centroids = core::tile_rows(km.centroids.data(), nlist, dims);
  }

  // 2. Assign every row (a batch top-1 search over the centroids).
  std::vector<std::int64_t> labels(n);
  {
    std::vector<float> unused(n);
    assign_nearest(p_.centroids, rows, n, kt, params.threads, should_stop, labels.data(), unused.data());
  }
  report_.assign_ms = ms_since(mark);

  // 3. Lay the clusters out one after another, each on a block boundary.
  std::vector<std::size_t> counts(nlist, 0);
  for (std::int64_t label : labels) ++counts[static_cast<std::size_t>(label)];
  p_.clusters.resize(nlist);
  std::size_t block = 0;
  for (std::size_t c = 0; c < nlist; ++c) {
    const std::size_t blocks = (counts[c] + kBlockRows - 1) / kBlockRows;
    p_.clusters[c] = {block, block + blocks, counts[c]};
    block += blocks;
  }
  p_.data = core::TiledMatrix(block * kBlockRows, dims);
  std::vector<std::int64_t> ids(block * kBlockRows, -1);
  {
    std::vector<std::size_t> fill(nlist);
    for (std::size_t c = 0; c < nlist; ++c) fill[c] = p_.clusters[c].block_begin * kBlockRows;
    for (std::size_t r = 0; r < n; ++r) ids[fill[static_cast<std::size_t>(labels[r])]++] = static_cast<std::int64_t>(r);
  }
  auto write = [&](std::size_t b, core::TaskContext&) {
    std::vector<float> scratch(kBlockRows * dims);
    std::size_t count = 0;
    for (std::size_t r = 0; r < kBlockRows; ++r) {
      const std::int64_t id = ids[b * kBlockRows + r];
      if (id < 0) break;
      std::copy(rows + static_cast<std::size_t>(id) * dims, rows + (static_cast<std::size_t>(id) + 1) * dims,
                scratch.begin() + static_cast<std::ptrdiff_t>(r * dims));
      ++count;
    }
    core::write_block(scratch.data(), count, dims, p_.data.block(b));
  };
  core::parallel_for(block, params.threads, should_stop, core::TaskFn(write));
  p_.ids = core::Array<std::int64_t>(std::move(ids));
  report_.layout_ms = ms_since(mark);

  // 4. nprobe: as given, or the smallest that reaches the recall target on held-out rows.
  if (params.nprobe != 0) {
    p_.nprobe = std::min(params.nprobe, nlist);
  } else {
    p_.nprobe = calibrate(rows, labels, train_rows, params.recall, rng(), kt, params.threads, should_stop);
  }
  report_.calibrate_ms = ms_since(mark);
}

std::size_t IvfIndex::memory_bytes() const {
  // What this object allocated; storage borrowed from a loaded file is the Index's to count.
  const std::size_t tiles = p_.data.borrowed() ? 0 : p_.data.bytes();
  const std::size_t centroids = p_.centroids.borrowed() ? 0 : p_.centroids.bytes();
  const std::size_t compressed = p_.codes ? p_.codes->memory_bytes() + p_.exact_rows.memory_bytes() : 0;
  return tiles + p_.ids.owned_bytes() + centroids + p_.clusters.size() * sizeof(scan::Segment) + compressed;
}

void IvfIndex::compress(kernels::Codec codec, const float* prepared, storage::ExactRows rows, std::size_t threads,
                        const StopCheck& should_stop) {
  const std::size_t stored = p_.ids.size();
  storage::CodeMatrix codes(codec, stored, p_.dims);
  auto encode = [&](std::size_t b, core::TaskContext&) {
    std::vector<float> scratch(kBlockRows * p_.dims);
    std::size_t count = 0;
    for (; count < kBlockRows; ++count) {
      const std::int64_t id = p_.ids[b * kBlockRows + count];
      if (id < 0) break;  // padding slots end a cluster's last block
      std::copy(prepared + static_cast<std::size_t>(id) * p_.dims, prepared + (static_cast<std::size_t>(id) + 1) * p_.dims,
                scratch.begin() + static_cast<std::ptrdiff_t>(count * p_.dims));
    }
    storage::encode_block(scratch.data(), count, b, codes);
  };
  core::parallel_for(codes.blocks(), threads, should_stop, core::TaskFn(encode));
  p_.codes = std::move(codes);
  p_.exact_rows = std::move(rows);
  p_.data = core::TiledMatrix();
}

std::size_t IvfIndex::calibrate(const float* rows, const std::vector<std::int64_t>& labels,
                                const std::vector<std::size_t>& train_rows, double target, std::uint64_t seed,
                                const kernels::KernelTable& kt, std::size_t threads, const StopCheck& should_stop) {
  const std::size_t nlist = p_.clusters.size();
  if (nlist <= 1 || p_.rows <= kCalibrationK + 1) return nlist;
  std::mt19937_64 rng(seed);
  // Held-out queries: rows the k-means never saw sit closer to their centroids, which would
  // overstate recall. Only when every row trained are training rows used.
  std::vector<std::size_t> held_out;
  {
    std::vector<bool> trained(p_.rows, false);
    for (std::size_t r : train_rows) trained[r] = true;
    for (std::size_t r = 0; r < p_.rows; ++r)
      if (!trained[r]) held_out.push_back(r);
  }
  std::vector<std::size_t> picked;
  if (held_out.size() >= kCalibrationK) {
    for (std::size_t i : sample_rows(held_out.size(), kCalibrationQueries, rng)) picked.push_back(held_out[i]);
  } else {
    picked = sample_rows(p_.rows, kCalibrationQueries, rng);
  }
  const std::vector<float> queries = gather(rows, p_.dims, picked);
  const std::size_t nq = picked.size();

  // Exact neighbours (a full probe is an exact search), the query row itself left out.
  const std::size_t kk = std::min(kCalibrationK + 1, p_.rows);
  std::vector<std::int64_t> truth(nq * kk);
  std::vector<float> truth_scores(nq * kk);
  search(queries.data(), nq, kk, nlist, kt, threads, should_stop, truth.data(), truth_scores.data());

  // A true neighbour is found exactly when its cluster is probed (re-ranking is exact), so each
  // query's recall at every nprobe follows from the ranks of its neighbours' clusters in its centroid
  // order. Difference arrays over nprobe accumulate the mean and the spread of per-query recall.
  std::vector<double> sum_diff(nlist + 2, 0.0), square_diff(nlist + 2, 0.0);
  constexpr std::size_t kChunk = 32;
  std::vector<std::int64_t> order(kChunk * nlist);
  std::vector<float> order_scores(kChunk * nlist);
  std::vector<std::size_t> rank(nlist), ranks;
  for (std::size_t q0 = 0; q0 < nq; q0 += kChunk) {
    const std::size_t m = std::min(kChunk, nq - q0);
    exact::search(p_.centroids, queries.data() + q0 * p_.dims, m, nlist, kt, threads, should_stop, order.data(),
                  order_scores.data());
    for (std::size_t q = 0; q < m; ++q) {
      for (std::size_t r = 0; r < nlist; ++r) rank[static_cast<std::size_t>(order[q * nlist + r])] = r;
      ranks.clear();
      for (std::size_t j = 0; j < kk && ranks.size() < kCalibrationK; ++j) {
        const std::int64_t id = truth[(q0 + q) * kk + j];
        if (static_cast<std::size_t>(id) == picked[q0 + q]) continue;
        ranks.push_back(rank[static_cast<std::size_t>(labels[static_cast<std::size_t>(id)])] + 1);  // nprobe needed
      }
      std::sort(ranks.begin(), ranks.end());
      const double k = static_cast<double>(ranks.size());
      for (std::size_t i = 0; i < ranks.size(); ++i) {
        // Recall steps from i/k to (i+1)/k at nprobe = ranks[i].
        sum_diff[ranks[i]] += 1.0 / k;
        square_diff[ranks[i]] += (2.0 * static_cast<double>(i) + 1.0) / (k * k);
      }
    }
  }
  // Smallest nprobe whose one-sided 95% lower confidence bound on mean recall reaches the target.
  double sum = 0.0, squares = 0.0;
  const double n = static_cast<double>(nq);
  for (std::size_t p = 1; p <= nlist; ++p) {
    sum += sum_diff[p];
    squares += square_diff[p];
    const double mean = sum / n;
    const double variance = std::max(0.0, squares / n - mean * mean);
    if (mean - 1.645 * std::sqrt(variance / n) >= target || p == nlist) {
      report_.calibrated_recall = mean;
      return p;
    }
  }
  return nlist;
}

}  // namespace nndex::ivf
