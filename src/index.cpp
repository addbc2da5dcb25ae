// nndex::Index: validation and query preparation at the API boundary. The rows live in segments
// (collection/): a search takes the published snapshot and searches every segment's engine; add,
// remove and compact publish new snapshots.
#include "nndex/index.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "collection/collection.hpp"
#include "collection/segment_search.hpp"
#include "core/prepare.hpp"
#include "core/pack.hpp"
#include "core/thread_pool.hpp"
#include "core/trace.hpp"
#include "engine/build.hpp"
#include "engine/options.hpp"
#include "index_impl.hpp"
#include "io/file_access.hpp"
#include "io/index_file.hpp"
#include "kernels/code_kernels.hpp"
#include "kernels/kernels.hpp"

namespace nndex {

const char* method_name(ApproxMethod method) {
  switch (method) {
    case ApproxMethod::ivf: return "ivf";
    case ApproxMethod::graph: return "graph";
    default: return "auto";
  }
}

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::gpu: return "gpu";
    case Backend::automatic: return "auto";
    default: return "cpu";
  }
}

const char* storage_name(Storage storage) {
  switch (storage) {
    case Storage::bf16: return "bf16";
    case Storage::int8: return "int8";
    default: return "f32";
  }
}

DimensionMismatch::DimensionMismatch(std::size_t expected, std::size_t actual, const std::string& what)
    : InvalidArgument(what + " has " + std::to_string(actual) + " dims but the index has " + std::to_string(expected) +
                      " (expected " + std::to_string(expected) + ", got " + std::to_string(actual) + ")"),
      expected_(expected),
      actual_(actual) {}

namespace {

void check_matrix(const MatrixView& data) {
  if (data.rows == 0 || data.cols == 0)
    throw InvalidArgument("data is empty (shape " + std::to_string(data.rows) + " x " + std::to_string(data.cols) +
                          "); an index needs at least one row and one dimension");
  if (data.data == nullptr) throw InvalidArgument("data pointer is null");
}

// int8 sums are exact in int32 up to this many dims (255 x 127 per dim).
constexpr std::size_t kMaxInt8Dims = 65536;

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

Index::Index(const MatrixView& data, IndexOptions options, const StopCheck& should_stop)
    : Index(data, options, nullptr, should_stop) {}

Index::Index(const MatrixView& data, std::span<const std::int64_t> ids, IndexOptions options,
             const StopCheck& should_stop)
    : Index(data, options, nullptr, should_stop, {}, ids) {}

Index::Index(const MatrixView& data, IndexOptions options, std::shared_ptr<const void> keep_alive,
             const StopCheck& should_stop, const RowFile& rows_file, std::span<const std::int64_t> ids) {
  check_matrix(data);
  engine::check_options(options);
  if (!ids.empty() || data.rows == 0) collection::check_new_ids(ids, data.rows, nullptr);
  if (keep_alive != nullptr && options.storage == Storage::f32)
    throw InvalidArgument("borrowing the rows applies only to compressed storage (bf16 or int8)");
  engine::BuildInput in;
  in.data = data;
  in.normalize = !options.normalized;
  in.keep_alive = std::move(keep_alive);
  // Re-ranked rows from the file under the view, when it says where they lie (checked here, so a wrong
  // offset is an error and not wrong answers later).
  if (!rows_file.path.empty()) {
    if (in.keep_alive == nullptr)
      throw InvalidArgument("rows_file applies only to an index that borrows its rows (compressed storage)");
    if (data.row_stride != static_cast<std::ptrdiff_t>(data.cols) || data.col_stride != 1)
      throw InvalidArgument("rows_file needs a C-order view of the file's rows");
    std::uint64_t size = 0;
    in.row_reader = io::open_reader(rows_file.path, &size);
    in.row_offset = rows_file.offset;
    const std::size_t element = data.type == ScalarType::f64 ? sizeof(double) : sizeof(float);
    if (in.row_reader != nullptr && (rows_file.offset > size || (size - rows_file.offset) / element / data.cols < data.rows))
      throw InvalidArgument("rows_file '" + rows_file.path + "' is too short for " + std::to_string(data.rows) + " x " +
                            std::to_string(data.cols) + " values from offset " + std::to_string(rows_file.offset));
  }
  if (options.storage == Storage::int8 && data.cols > kMaxInt8Dims)
    throw InvalidArgument("int8 storage supports at most " + std::to_string(kMaxInt8Dims) + " dims, got " +
                          std::to_string(data.cols) + " (use bf16)");
  if (options.approx && options.nlist > data.rows)
    throw InvalidArgument("nlist (" + std::to_string(options.nlist) + ") must not exceed the number of rows (" +
                          std::to_string(data.rows) + ")");
  const auto start = std::chrono::steady_clock::now();
  // The device first: a missing GPU fails the call before any work.
  engine::Placement placement = engine::resolve_placement(options.backend, options.gpu_device);
  auto impl = std::make_unique<Impl>();
  impl->dims = data.cols;
  impl->normalized = options.normalized;
  impl->approx = options.approx;
  impl->storage = options.storage;
  impl->threads = options.threads == 0 ? core::hardware_threads() : options.threads;
  impl->kernels = &kernels::active();
  impl->isa = isa_of(*impl->kernels, options.storage);

  collection::Segment first;
  first.engine = engine::place(engine::build(in, options, *impl->kernels, impl->threads, should_stop), placement,
                               *impl->kernels);
  first.ids = ids.empty() ? collection::IdMap::range(0, data.rows)
                          : collection::IdMap::list(std::vector<std::int64_t>(ids.begin(), ids.end()));
  collection::Snapshot snap;
  snap.next_id = first.ids.max_id() + 1;
  snap.segments.push_back(std::move(first));
  impl->collection = std::make_unique<collection::Collection>(
      collection::Settings{options, data.cols, impl->threads, impl->kernels, std::move(placement)}, std::move(snap));
  impl_ = std::move(impl);
  if (core::verbose()) {
    core::TraceLine line("build");
    line.add("rows", data.rows).add("dims", data.cols).add("normalized", options.normalized).add("isa", impl_->isa);
    line.add("threads", impl_->threads).add("backend", std::string(backend()));
    const engine::BuildChoice choice = engine::choose_structure(options, data.rows, data.cols, false);
    if (choice.ivf || choice.graph || !options.approx) impl_->collection->snapshot()->segments[0].engine->describe_build(line);
    else line.add("path", "exact (approx fallback: too few rows for IVF)");
    line.add_ms("time", elapsed_ms(start)).emit();
  }
}

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void Index::save(const std::string& path) const { save_snapshot(*impl_, path); }
std::vector<std::byte> Index::to_bytes() const { return snapshot_bytes(*impl_); }

Index Index::load(const std::string& path, const LoadOptions& options) {
  io::FileBytes file = io::open_file(path, options.mmap);
  return Index(load_snapshot(path, file.bytes, std::move(file.owner), options, file.mapped ? std::move(file.reader) : nullptr));
}

Index Index::from_bytes(std::span<const std::byte> bytes, const LoadOptions& options) {
  // Copied into an aligned buffer: the caller's bytes need not outlive the index, nor be aligned.
  constexpr std::size_t kAlign = 4096;
  void* p = std::aligned_alloc(kAlign, (bytes.size() + kAlign) / kAlign * kAlign);
  if (p == nullptr) throw std::bad_alloc();
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return Index(load_snapshot("<bytes>", {static_cast<const std::byte*>(p), bytes.size()}, std::move(owner), options, nullptr));
}

Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

std::size_t Index::rows() const noexcept { return impl_->collection->snapshot()->live; }
std::size_t Index::dims() const noexcept { return impl_->dims; }
bool Index::normalized() const noexcept { return impl_->normalized; }
std::size_t Index::threads() const noexcept { return impl_->threads; }
std::string_view Index::isa() const noexcept { return impl_->isa; }
Storage Index::storage() const noexcept { return impl_->storage; }
bool Index::approx() const noexcept { return impl_->approx; }

std::size_t Index::memory_bytes() const noexcept {
  const auto snap = impl_->collection->snapshot();
  std::size_t bytes = impl_->file_buffer_bytes;
  for (const auto& s : snap->segments)
    bytes += s.engine->memory_bytes() + s.ids.memory_bytes() + (s.live ? s.live->memory_bytes() : 0);
  return bytes;
}

namespace {

// What the index's largest segment says of `fact`, or `none` for an index with no rows.
template <class Fact, class T>
T describe(const collection::Collection& c, Fact fact, T none) {
  const auto snap = c.snapshot();
  const collection::Segment* s = collection::largest(snap->segments);
  return s != nullptr ? fact(*s->engine) : none;
}

}  // namespace

std::string_view Index::method() const noexcept {
  return describe(*impl_->collection, [](const engine::Engine& e) { return std::string_view(e.method()); },
                  std::string_view("exact"));
}
bool Index::uses_ivf() const noexcept { return method() == "ivf"; }
std::size_t Index::ef() const noexcept {
  return describe(*impl_->collection, [](const engine::Engine& e) { return e.ef(); }, std::size_t{0});
}
std::size_t Index::nlist() const noexcept {
  return describe(*impl_->collection, [](const engine::Engine& e) { return e.nlist(); }, std::size_t{1});
}
std::size_t Index::nprobe() const noexcept {
  return describe(*impl_->collection, [](const engine::Engine& e) { return e.nprobe(); }, std::size_t{1});
}

std::string_view Index::backend() const noexcept {
  // Exact segments all sit on the placement's device; an index with none yet says where they would.
  return describe(*impl_->collection, [](const engine::Engine& e) { return std::string_view(e.backend()); },
                  std::string_view(engine::backend_in_use(impl_->collection->settings().placement)));
}
std::optional<GpuDevice> Index::gpu_device() const { return engine::device_of(impl_->collection->settings().placement); }

std::vector<std::int64_t> Index::add(const MatrixView& vectors, std::span<const std::int64_t> ids,
                                     const StopCheck& should_stop) {
  return impl_->collection->add(vectors, ids, should_stop);
}
std::vector<std::int64_t> Index::add(std::span<const float> vectors, std::size_t n, std::span<const std::int64_t> ids) {
  if (vectors.size() != n * dims())
    throw InvalidArgument("vectors hold " + std::to_string(vectors.size()) + " values, expected n x dims = " +
                          std::to_string(n) + " x " + std::to_string(dims()));
  return add(MatrixView::row_major(vectors.data(), n, dims()), ids);
}
std::size_t Index::remove(std::span<const std::int64_t> ids, const StopCheck& should_stop) {
  return impl_->collection->remove(ids, should_stop);
}
void Index::compact(const StopCheck& should_stop) { impl_->collection->compact(should_stop); }

std::vector<std::int64_t> Index::ids() const {
  const auto snap = impl_->collection->snapshot();
  std::vector<std::int64_t> out;
  out.reserve(snap->live);
  for (const auto& s : snap->segments)
    for (std::size_t r = 0; r < s.rows(); ++r)
      if (s.is_live(r)) out.push_back(s.ids.at(r));
  return out;
}
bool Index::contains(std::int64_t id) const { return collection::locate(*impl_->collection->snapshot(), id).segment >= 0; }
std::size_t Index::segments() const noexcept { return impl_->collection->snapshot()->segments.size(); }
std::size_t Index::removed_rows() const noexcept {
  std::size_t n = 0;
  for (const auto& s : impl_->collection->snapshot()->segments) n += s.removed_rows();
  return n;
}
std::uint64_t Index::generation() const noexcept { return impl_->collection->snapshot()->generation; }
Index::State Index::state() const noexcept {
  const auto snap = impl_->collection->snapshot();
  return {snap->generation, snap->live, snap->next_id, collection::mask_entries(*snap)};
}

namespace {

void check_search(const Index& index, const MatrixView& queries, std::size_t k, const SearchParams& params) {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (queries.cols != index.dims()) throw DimensionMismatch(index.dims(), queries.cols, "query");
  if (!(params.oversampling == 0.0 || params.oversampling >= 1.0))
    throw InvalidArgument("oversampling must be at least 1 (or 0 for the default), got " +
                          std::to_string(params.oversampling));
  if (queries.rows != 0 && queries.data == nullptr) throw InvalidArgument("query pointer is null");
}

}  // namespace

namespace {

// One search of `snap`: queries prepared here, n x width results (width = min(k, allowed)) written
// into the caller's arrays, which the caller sized from `filters`.
void search_snapshot(const Index::Impl& impl, const collection::Snapshot& snap, const collection::SegmentFilters& filters,
                     const MatrixView& queries, std::size_t k, const SearchParams& params, std::int64_t* indices,
                     float* similarities) {
  const std::size_t n = queries.rows;
  if (n == 0 || std::min(k, filters.allowed()) == 0) return;
  const auto start = std::chrono::steady_clock::now();
  const std::size_t d = impl.dims;
  std::vector<float> prepared;
  if (n == 1) {
    prepared.resize(d);
    core::prepare_vector(queries, 0, !impl.normalized, *impl.kernels, prepared.data(), {"query", 0, false});
  } else {
    prepared = core::prepare_rows(queries, !impl.normalized, *impl.kernels, impl.threads, params.should_stop, "query");
  }
  std::optional<core::TraceLine> line;
  if (core::verbose()) {
    line.emplace("search");
    line->add("rows", snap.live).add("dims", d).add("queries", n).add("k", std::min(k, filters.allowed()));
    line->add("isa", impl.isa);
  }
  collection::search(snap, filters, prepared.data(), n, k, params, *impl.kernels, impl.threads, indices, similarities,
                     line ? &*line : nullptr);
  if (line) line->add_ms("time", elapsed_ms(start)).emit();
}

}  // namespace

BatchResult Index::search_batch(const MatrixView& queries, std::size_t k, const SearchParams& params) const {
  check_search(*this, queries, k, params);
  const std::shared_ptr<const collection::Snapshot> snap = impl_->collection->snapshot();
  const collection::SegmentFilters filters(*snap, params.filter);
  BatchResult result;
  result.queries = queries.rows;
  result.k = std::min(k, filters.allowed());
  result.generation = snap->generation;
  result.indices.resize(queries.rows * result.k);
  result.similarities.resize(queries.rows * result.k);
  search_snapshot(*impl_, *snap, filters, queries, k, params, result.indices.data(), result.similarities.data());
  return result;
}

std::size_t Index::search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                               const SearchParams& params) const {
  check_search(*this, queries, k, params);
  const std::shared_ptr<const collection::Snapshot> snap = impl_->collection->snapshot();
  const collection::SegmentFilters filters(*snap, params.filter);
  search_snapshot(*impl_, *snap, filters, queries, k, params, indices, similarities);
  return std::min(k, filters.allowed());
}

std::vector<Neighbor> Index::search(std::span<const float> query, std::size_t k, const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (query.size() != dims()) throw DimensionMismatch(dims(), query.size(), "query");
  const BatchResult r = search_batch(MatrixView::row_major(query.data(), 1, query.size()), k, params);
  std::vector<Neighbor> out(r.k);
  for (std::size_t i = 0; i < r.k; ++i) out[i] = {r.indices[i], r.similarities[i]};
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
  return search_batch(MatrixView::row_major(queries.data(), n, dims()), k, params);
}

}  // namespace nndex
