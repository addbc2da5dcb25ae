// nndex::Index: validation at the API boundary, then the packed matrix and the exact search engine.
#include "nndex/index.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/pack.hpp"
#include "core/prepare.hpp"
#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "core/trace.hpp"
#include "exact/exact_search.hpp"
#include "io/index_file.hpp"
#include "ivf/ivf_index.hpp"
#include "kernels/kernels.hpp"

namespace nndex {

DimensionMismatch::DimensionMismatch(std::size_t expected, std::size_t actual, const std::string& what)
    : InvalidArgument(what + " has " + std::to_string(actual) + " dims but the index has " + std::to_string(expected) +
                      " (expected " + std::to_string(expected) + ", got " + std::to_string(actual) + ")"),
      expected_(expected),
      actual_(actual) {}

struct Index::Impl {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  std::size_t threads = 1;
  const kernels::KernelTable* kernels = nullptr;
  core::TiledMatrix matrix;          // exact storage (empty when the IVF holds the rows)
  std::unique_ptr<ivf::IvfIndex> ivf;  // approximate storage, when built
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

// The default promises recall@10 >= 0.95 on new queries: calibrating for a point above it absorbs the
// sampling noise of both the calibration queries and the user's.
constexpr double kDefaultRecallTarget = 0.96;

void check_options(const IndexOptions& o) {
  if (!o.approx && (o.nlist != 0 || o.nprobe != 0 || o.recall != 0.0))
    throw InvalidArgument("nlist, nprobe and recall apply only to approximate indexes (approx=true)");
  if (o.recall != 0.0 && !(o.recall > 0.0 && o.recall <= 1.0))
    throw InvalidArgument("recall must be in (0, 1], got " + std::to_string(o.recall));
  if (o.recall != 0.0 && o.nprobe != 0)
    throw InvalidArgument("give nprobe or recall, not both: recall calibrates nprobe");
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
  check_options(options);
  if (options.approx && options.nlist > data.rows)
    throw InvalidArgument("nlist (" + std::to_string(options.nlist) + ") must not exceed the number of rows (" +
                          std::to_string(data.rows) + ")");
  const auto start = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  impl->rows = data.rows;
  impl->dims = data.cols;
  impl->normalized = options.normalized;
  impl->approx = options.approx;
  impl->threads = resolve_threads(options.threads);
  impl->kernels = &kernels::active();
  const kernels::KernelTable& kt = *impl->kernels;

  // An explicit nlist always builds the IVF; the automatic choice falls back to exact search on
  // matrices too small for clusters to pay off.
  const bool build_ivf = options.approx && (options.nlist != 0 || ivf::ivf_pays_off(data.rows, data.cols));
  if (build_ivf) {
    const std::vector<float> rows = core::prepare_rows(data, !options.normalized, kt, impl->threads, should_stop);
    ivf::BuildParams params;
    params.nlist = options.nlist;
    params.nprobe = options.nprobe;
    params.recall = options.recall == 0.0 ? kDefaultRecallTarget : options.recall;
    params.seed = options.seed;
    params.threads = impl->threads;
    impl->ivf = std::make_unique<ivf::IvfIndex>(rows.data(), data.rows, data.cols, params, kt, should_stop);
  } else {
    impl->matrix = core::pack_matrix(data, !options.normalized, kt, impl->threads, should_stop);
  }
  impl_ = std::move(impl);
  if (core::verbose()) {
    if (impl_->ivf) {
      const ivf::BuildReport& r = impl_->ivf->report();
      core::trace("[nndex] build rows=%zu dims=%zu normalized=%d isa=%s threads=%zu path=ivf nlist=%zu nprobe=%zu "
                  "train=%zu iterations=%zu reseeded=%zu calibrated_recall=%.4f seed=%.0fms train=%.0fms assign=%.0fms "
                  "layout=%.0fms calibrate=%.0fms time=%.3fms",
                  data.rows, data.cols, int(options.normalized), kt.name, impl_->threads, impl_->ivf->nlist(),
                  impl_->ivf->nprobe(), r.train_points, r.iterations, r.reseeded, r.calibrated_recall, r.seed_ms,
                  r.train_ms, r.assign_ms, r.layout_ms, r.calibrate_ms, elapsed_ms(start));
    } else {
      core::trace("[nndex] build rows=%zu dims=%zu normalized=%d isa=%s threads=%zu path=%s time=%.3fms", data.rows,
                  data.cols, int(options.normalized), kt.name, impl_->threads,
                  options.approx ? "exact (approx fallback: too few rows for IVF)" : "exact", elapsed_ms(start));
    }
  }
}

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

io::IndexContents contents_of(const Index& index, const core::TiledMatrix& matrix, const ivf::IvfIndex* ivf) {
  io::IndexContents c;
  c.rows = index.rows();
  c.dims = index.dims();
  c.normalized = index.normalized();
  c.approx = index.approx();
  c.matrix = &matrix;
  c.ivf = ivf != nullptr ? &ivf->parts() : nullptr;
  return c;
}

}  // namespace

void Index::save(const std::string& path) const {
  io::save_file(path, contents_of(*this, impl_->matrix, impl_->ivf.get()));
}

std::vector<std::byte> Index::to_bytes() const {
  return io::to_bytes(contents_of(*this, impl_->matrix, impl_->ivf.get()));
}

Index Index::from_file_view(const std::string& name, std::span<const std::byte> bytes,
                            std::shared_ptr<const void> owner, const LoadOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  io::LoadedIndex loaded = io::read_index(name, bytes, std::move(owner), options.verify);
  auto impl = std::make_unique<Impl>();
  impl->rows = loaded.rows;
  impl->dims = loaded.dims;
  impl->normalized = loaded.normalized;
  impl->approx = loaded.approx;
  impl->threads = resolve_threads(options.threads);
  impl->kernels = &kernels::active();
  impl->matrix = std::move(loaded.matrix);
  if (loaded.ivf) impl->ivf = std::make_unique<ivf::IvfIndex>(std::move(*loaded.ivf));
  if (core::verbose())
    core::trace("[nndex] load %s rows=%zu dims=%zu path=%s time=%.3fms", name.c_str(), impl->rows, impl->dims,
                impl->ivf ? "ivf" : "exact", elapsed_ms(start));
  return Index(std::move(impl));
}

Index Index::load(const std::string& path, const LoadOptions& options) {
  io::FileBytes file = io::open_file(path, options.mmap);
  return from_file_view(path, file.bytes, std::move(file.owner), options);
}

Index Index::from_bytes(std::span<const std::byte> bytes, const LoadOptions& options) {
  // Copied into an aligned buffer: the caller's bytes need not outlive the index, nor be aligned.
  constexpr std::size_t kAlign = 4096;
  void* p = std::aligned_alloc(kAlign, (bytes.size() + kAlign) / kAlign * kAlign);
  if (p == nullptr) throw std::bad_alloc();
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return from_file_view("<bytes>", {static_cast<const std::byte*>(p), bytes.size()}, std::move(owner), options);
}

Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

std::size_t Index::rows() const noexcept { return impl_->rows; }
std::size_t Index::dims() const noexcept { return impl_->dims; }
bool Index::normalized() const noexcept { return impl_->normalized; }
std::size_t Index::threads() const noexcept { return impl_->threads; }
std::string_view Index::isa() const noexcept { return impl_->kernels->name; }
std::size_t Index::memory_bytes() const noexcept {
  return impl_->ivf ? impl_->ivf->memory_bytes() : impl_->matrix.bytes();
}
bool Index::approx() const noexcept { return impl_->approx; }
bool Index::uses_ivf() const noexcept { return impl_->ivf != nullptr; }
std::size_t Index::nlist() const noexcept { return impl_->ivf ? impl_->ivf->nlist() : 1; }
std::size_t Index::nprobe() const noexcept { return impl_->ivf ? impl_->ivf->nprobe() : 1; }

void Index::search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                        const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (queries.cols != dims()) throw DimensionMismatch(dims(), queries.cols, "query");
  if (queries.rows == 0) return;
  if (queries.data == nullptr) throw InvalidArgument("query pointer is null");
  const auto start = std::chrono::steady_clock::now();

  const std::size_t n = queries.rows;
  const std::size_t d = dims();
  std::vector<float> prepared;
  if (n == 1) {
    prepared.resize(d);
    core::prepare_vector(queries, 0, !impl_->normalized, *impl_->kernels, prepared.data(), {"query", 0, false});
  } else {
    prepared = core::prepare_rows(queries, !impl_->normalized, *impl_->kernels, impl_->threads, params.should_stop,
                                  "query");
  }

  if (impl_->ivf) {
    const std::size_t nprobe = params.nprobe != 0 ? params.nprobe : impl_->ivf->nprobe();
    const ivf::SearchReport r = impl_->ivf->search(prepared.data(), n, k, nprobe, *impl_->kernels, impl_->threads,
                                                   params.should_stop, indices, similarities);
    if (core::verbose())
      core::trace("[nndex] search rows=%zu dims=%zu queries=%zu k=%zu isa=%s threads=%zu path=ivf nlist=%zu "
                  "nprobe=%zu probes=%zu candidates=%zu time=%.3fms",
                  rows(), d, n, std::min(k, rows()), impl_->kernels->name, r.threads, impl_->ivf->nlist(),
                  std::min(nprobe, impl_->ivf->nlist()), r.probed, r.candidates, elapsed_ms(start));
    return;
  }
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
