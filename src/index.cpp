// nndex::Index: validation at the API boundary, then the packed matrix and the exact search engine.
#include "nndex/index.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/pack.hpp"
#include "core/prepare.hpp"
#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "core/trace.hpp"
#include "exact/exact_search.hpp"
#include "kernels/kernels.hpp"

namespace nndex {

DimensionMismatch::DimensionMismatch(std::size_t expected, std::size_t actual, const std::string& what)
    : InvalidArgument(what + " has " + std::to_string(actual) + " dims but the index has " + std::to_string(expected) +
                      " (expected " + std::to_string(expected) + ", got " + std::to_string(actual) + ")"),
      expected_(expected),
      actual_(actual) {}

struct Index::Impl {
  core::TiledMatrix matrix;
  bool normalized;
  std::size_t threads;
  const kernels::KernelTable* kernels;
};

namespace {

std::size_t resolve_threads(std::size_t requested) {
  return requested == 0 ? core::hardware_threads() : requested;
}

void check_matrix(const MatrixView& data) {
  if (data.rows == 0 || data.cols == 0)
    throw InvalidArgument("data is empty (shape " + std::to_string(data.rows) + " x " + std::to_string(data.cols) +
                          "); an index needs at least one row and one dimension");
  if (data.data == nullptr) throw InvalidArgument("data pointer is null");
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Index::Index(std::span<const float> data, std::size_t rows, std::size_t dims, IndexOptions options)
    : Index((data.size() != rows * dims
                 ? throw InvalidArgument("data holds " + std::to_string(data.size()) + " values, expected rows x dims = " +
                                         std::to_string(rows) + " x " + std::to_string(dims) + " = " +
                                         std::to_string(rows * dims))
                 : MatrixView::row_major(data.data(), rows, dims)),
            options) {}

Index::Index(const float* data, std::size_t rows, std::size_t dims, IndexOptions options)
    : Index(MatrixView::row_major(data, rows, dims), options) {}

Index::Index(const MatrixView& data, IndexOptions options, const StopCheck& should_stop) {
  check_matrix(data);
  const auto start = std::chrono::steady_clock::now();
  const kernels::KernelTable& kt = kernels::active();
  const std::size_t threads = resolve_threads(options.threads);
  impl_ = std::make_unique<Impl>(Impl{core::pack_matrix(data, !options.normalized, kt, threads, should_stop),
                                      options.normalized, threads, &kt});
  if (core::verbose())
    core::trace("[nndex] build rows=%zu dims=%zu normalized=%d isa=%s threads=%zu time=%.3fms", data.rows, data.cols,
                int(options.normalized), kt.name, threads, elapsed_ms(start));
}

Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

std::size_t Index::rows() const noexcept { return impl_->matrix.rows(); }
std::size_t Index::dims() const noexcept { return impl_->matrix.dims(); }
bool Index::normalized() const noexcept { return impl_->normalized; }
std::size_t Index::threads() const noexcept { return impl_->threads; }
std::string_view Index::isa() const noexcept { return impl_->kernels->name; }
std::size_t Index::memory_bytes() const noexcept { return impl_->matrix.bytes(); }

void Index::search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                        const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (queries.cols != dims()) throw DimensionMismatch(dims(), queries.cols, "query");
  if (queries.rows == 0) return;
  if (queries.data == nullptr) throw InvalidArgument("query pointer is null");
  const auto start = std::chrono::steady_clock::now();

  const std::size_t n = queries.rows;
  const std::size_t d = dims();
  std::vector<float> prepared(n * d);
  for (std::size_t q = 0; q < n; ++q)
    core::prepare_vector(queries, q, !impl_->normalized, *impl_->kernels, prepared.data() + q * d,
                         {"query", q, /*numbered=*/n > 1});

  const exact::Plan plan = exact::search(impl_->matrix, prepared.data(), n, k, *impl_->kernels, impl_->threads,
                                         params.should_stop, indices, similarities);
  if (core::verbose())
    core::trace("[nndex] search rows=%zu dims=%zu queries=%zu k=%zu isa=%s threads=%zu path=exact-%s qblock=%zu "
                "splits=%zu panel=%zu time=%.3fms",
                rows(), d, n, std::min(k, rows()), impl_->kernels->name, plan.threads, plan.path, plan.query_block,
                plan.row_splits, plan.panel_blocks, elapsed_ms(start));
}

std::vector<Neighbor> Index::search(std::span<const float> query, std::size_t k, const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (query.size() != dims()) throw DimensionMismatch(dims(), query.size(), "query");
  const std::size_t kk = std::min(k, rows());
  std::vector<std::int64_t> ids(kk);
  std::vector<float> sims(kk);
  search_into(MatrixView::row_major(query.data(), 1, query.size()), k, ids.data(), sims.data(), params);
  std::vector<Neighbor> out(kk);
  for (std::size_t i = 0; i < kk; ++i) out[i] = {ids[i], sims[i]};
  return out;
}

BatchResult Index::search_batch(std::span<const float> queries, std::size_t n, std::size_t k,
                                const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (n == 0 ? !queries.empty() : queries.size() != n * dims()) {
    if (n > 0 && queries.size() % n == 0) throw DimensionMismatch(dims(), queries.size() / n, "query");
    throw InvalidArgument("queries hold " + std::to_string(queries.size()) + " values, expected n x dims = " +
                          std::to_string(n) + " x " + std::to_string(dims()));
  }
  BatchResult result;
  result.queries = n;
  result.k = std::min(k, rows());
  result.indices.resize(n * result.k);
  result.similarities.resize(n * result.k);
  search_into(MatrixView::row_major(queries.data(), n, dims()), k, result.indices.data(), result.similarities.data(),
              params);
  return result;
}

}  // namespace nndex
