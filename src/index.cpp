// nndex::Index: validation and query preparation at the API boundary; the work is done by the one
// engine the index holds (engine/engine.hpp: exact or IVF).
#include "nndex/index.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "core/pack.hpp"
#include "core/prepare.hpp"
#include "core/thread_pool.hpp"
#include "core/tiled_matrix.hpp"
#include "core/trace.hpp"
#include "engine/engine.hpp"
#include "engine/options.hpp"
#include "graph/graph_index.hpp"
#include "io/file_access.hpp"
#include "io/index_file.hpp"
#include "ivf/ivf_index.hpp"
#include "kernels/code_kernels.hpp"
#include "kernels/kernels.hpp"
#include "storage/exact_rows.hpp"
#include "storage/quantize.hpp"

namespace nndex {

const char* method_name(ApproxMethod method) {
  switch (method) {
    case ApproxMethod::ivf: return "ivf";
    case ApproxMethod::graph: return "graph";
    default: return "auto";
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

struct Index::Impl {
  std::size_t rows = 0;
  std::size_t dims = 0;
  bool normalized = false;
  bool approx = false;
  Storage storage = Storage::f32;
  std::size_t threads = 1;
  const kernels::KernelTable* kernels = nullptr;
  std::string isa;  // the float32 level, plus the compressed-row kernels' tag
  std::size_t file_buffer_bytes = 0;  // a file read (not mapped) into memory, which the engine borrows
  std::unique_ptr<engine::Engine> engine;
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

// int8 sums are exact in int32 up to this many dims (255 x 127 per dim).
constexpr std::size_t kMaxInt8Dims = 65536;

std::string isa_of(const kernels::KernelTable& kt, Storage storage) {
  std::string name = kt.name;
  if (storage == Storage::bf16) name += kernels::active_bf16().isa_tag;
  if (storage == Storage::int8) name += kernels::active_int8().isa_tag;
  return name;
}

kernels::Codec codec_of(Storage storage) {
  return storage == Storage::int8 ? kernels::Codec::int8 : kernels::Codec::bf16;
}

// The float32 rows a compressed index re-ranks with: the caller's own (kept alive by `keep_alive`, read
// through `reader` when the file under them is known), or else the build's `prepared` rows.
storage::ExactRows exact_rows_for(const MatrixView& data, bool normalize, std::shared_ptr<const void> keep_alive,
                                  std::vector<float> prepared, std::shared_ptr<const storage::FileReader> reader,
                                  std::uint64_t file_offset) {
  if (keep_alive == nullptr) return storage::ExactRows::owned(std::move(prepared), data.cols);
  storage::ExactRows rows = storage::ExactRows::borrowed(data, normalize, std::move(keep_alive));
  if (reader != nullptr) rows.read_through(std::move(reader), file_offset);
  return rows;
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

Index::Index(const MatrixView& data, IndexOptions options, const StopCheck& should_stop)
    : Index(data, options, nullptr, should_stop) {}

Index::Index(const MatrixView& data, IndexOptions options, std::shared_ptr<const void> keep_alive,
             const StopCheck& should_stop, const RowFile& rows_file) {
  check_matrix(data);
  engine::check_options(options);
  if (keep_alive != nullptr && options.storage == Storage::f32)
    throw InvalidArgument("borrowing the rows applies only to compressed storage (bf16 or int8)");
  // Re-ranked rows from the file under the view, when it says where they lie (checked here, so a wrong
  // offset is an error and not wrong answers later).
  std::shared_ptr<const storage::FileReader> row_reader;
  if (!rows_file.path.empty()) {
    if (keep_alive == nullptr)
      throw InvalidArgument("rows_file applies only to an index that borrows its rows (compressed storage)");
    if (data.row_stride != static_cast<std::ptrdiff_t>(data.cols) || data.col_stride != 1)
      throw InvalidArgument("rows_file needs a C-order view of the file's rows");
    std::uint64_t size = 0;
    row_reader = io::open_reader(rows_file.path, &size);
    const std::size_t element = data.type == ScalarType::f64 ? sizeof(double) : sizeof(float);
    if (row_reader != nullptr && (rows_file.offset > size || (size - rows_file.offset) / element / data.cols < data.rows))
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
  auto impl = std::make_unique<Impl>();
  impl->rows = data.rows;
  impl->dims = data.cols;
  impl->normalized = options.normalized;
  impl->approx = options.approx;
  impl->storage = options.storage;
  impl->threads = resolve_threads(options.threads);
  impl->kernels = &kernels::active();
  impl->isa = isa_of(*impl->kernels, options.storage);
  const kernels::KernelTable& kt = *impl->kernels;

  // An explicit nlist or method graph always builds that structure; otherwise matrices too small for
  // an approximate structure to pay off are searched exactly.
  const ApproxMethod method = engine::resolve_method(options);
  const bool pays_off =
      options.nlist != 0 || options.method == ApproxMethod::graph || ivf::ivf_pays_off(data.rows, data.cols);
  const bool build_ivf = options.approx && pays_off && method == ApproxMethod::ivf;
  const bool build_graph = options.approx && pays_off && method == ApproxMethod::graph;
  if (data.rows > std::numeric_limits<std::uint32_t>::max() && build_graph)
    throw InvalidArgument("a graph index holds at most 2^32 - 1 rows; use method ivf");
  if (build_graph) {
    std::vector<float> rows = core::prepare_rows(data, !options.normalized, kt, impl->threads, should_stop);
    graph::BuildParams params;
    if (options.graph_degree != 0) params.degree = options.graph_degree;
    if (options.ef_construction != 0) params.ef_construction = options.ef_construction;
    params.ef = options.ef;
    params.recall = options.recall == 0.0 ? kDefaultRecallTarget : options.recall;
    params.seed = options.seed;
    params.threads = impl->threads;
    // The rows re-rank the beam: the prepared copy, or the caller's own when borrowed.
    const bool borrow = keep_alive != nullptr;
    const std::vector<float> encode_from = borrow ? std::move(rows) : std::vector<float>{};
    storage::ExactRows exact = exact_rows_for(data, !options.normalized, std::move(keep_alive), std::move(rows),
                                              std::move(row_reader), rows_file.offset);
    const float* prepared = borrow ? encode_from.data() : exact.prepared();
    impl->engine = engine::make_graph_engine(
        std::make_unique<graph::GraphIndex>(prepared, std::move(exact), params, kt, should_stop), options.storage);
  } else if (build_ivf) {
    std::vector<float> rows = core::prepare_rows(data, !options.normalized, kt, impl->threads, should_stop);
    ivf::BuildParams params;
    params.nlist = options.nlist;
    params.nprobe = options.nprobe;
    params.recall = options.recall == 0.0 ? kDefaultRecallTarget : options.recall;
    params.seed = options.seed;
    params.threads = impl->threads;
    auto ivf = std::make_unique<ivf::IvfIndex>(rows.data(), data.rows, data.cols, params, kt, should_stop);
    if (options.storage != Storage::f32) {
      // The lists become codes; the prepared rows stay for re-ranking unless the caller's are borrowed.
      const bool borrow = keep_alive != nullptr;
      const std::vector<float> encode_from = borrow ? std::move(rows) : std::vector<float>{};
      storage::ExactRows exact = exact_rows_for(data, !options.normalized, std::move(keep_alive), std::move(rows),
                                                std::move(row_reader), rows_file.offset);
      const float* prepared = borrow ? encode_from.data() : exact.prepared();
      ivf->compress(codec_of(options.storage), prepared, std::move(exact), impl->threads, should_stop);
    }
    impl->engine = engine::make_ivf_engine(std::move(ivf));
  } else if (options.storage != Storage::f32) {
    // Prepared rows are kept for re-ranking only when the caller's are not borrowed.
    std::vector<float> prepared;
    storage::CodeMatrix codes = storage::encode_matrix(data, !options.normalized, codec_of(options.storage), kt,
                                                       impl->threads, should_stop,
                                                       keep_alive != nullptr ? nullptr : &prepared);
    impl->engine = engine::make_compressed_engine(
        std::move(codes), exact_rows_for(data, !options.normalized, std::move(keep_alive), std::move(prepared),
                                         std::move(row_reader), rows_file.offset));
  } else {
    impl->engine = engine::make_exact_engine(core::pack_matrix(data, !options.normalized, kt, impl->threads, should_stop));
  }
  impl_ = std::move(impl);
  if (core::verbose()) {
    core::TraceLine line("build");
    line.add("rows", data.rows).add("dims", data.cols).add("normalized", options.normalized).add("isa", impl_->isa);
    line.add("threads", impl_->threads);
    if (build_ivf || build_graph || !options.approx) impl_->engine->describe_build(line);
    else line.add("path", "exact (approx fallback: too few rows for IVF)");
    line.add_ms("time", elapsed_ms(start)).emit();
  }
}

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

io::IndexContents contents_of(const Index& index, const engine::Engine& engine) {
  io::IndexContents c;
  c.rows = index.rows();
  c.dims = index.dims();
  c.normalized = index.normalized();
  c.approx = index.approx();
  engine.describe_storage(c);
  c.graph_storage = index.storage();
  return c;
}

}  // namespace

void Index::save(const std::string& path) const {
  io::save_file(path, contents_of(*this, *impl_->engine));
}

std::vector<std::byte> Index::to_bytes() const {
  return io::to_bytes(contents_of(*this, *impl_->engine));
}

Index Index::from_file_view(const std::string& name, std::span<const std::byte> bytes,
                            std::shared_ptr<const void> owner, const LoadOptions& options,
                            std::shared_ptr<const storage::FileReader> reader) {
  const bool mapped = reader != nullptr;
  const auto start = std::chrono::steady_clock::now();
  io::LoadedIndex loaded = io::read_index(name, bytes, std::move(owner), options.verify);
  auto impl = std::make_unique<Impl>();
  impl->rows = loaded.rows;
  impl->dims = loaded.dims;
  impl->normalized = loaded.normalized;
  impl->approx = loaded.approx;
  impl->storage = loaded.storage;
  impl->file_buffer_bytes = mapped ? 0 : bytes.size();
  if (mapped && loaded.exact_rows.prepared() != nullptr) {
    // Re-ranked rows are read with pread, not through the mapping (storage/exact_rows.hpp).
    const auto* rows = reinterpret_cast<const std::byte*>(loaded.exact_rows.prepared());
    io::unmap_resident_pages(rows, loaded.exact_rows.rows() * loaded.exact_rows.dims() * sizeof(float));
    loaded.exact_rows.read_through(std::move(reader), static_cast<std::size_t>(rows - bytes.data()));
  }
  impl->threads = resolve_threads(options.threads);
  impl->kernels = &kernels::active();
  impl->isa = isa_of(*impl->kernels, loaded.storage);
  if (loaded.graph) {
    impl->engine = engine::make_graph_engine(std::make_unique<graph::GraphIndex>(std::move(*loaded.graph)), loaded.storage);
  } else if (loaded.ivf) {
    if (loaded.codes) {
      loaded.ivf->codes = std::move(loaded.codes);
      loaded.ivf->exact_rows = std::move(loaded.exact_rows);
    }
    impl->engine = engine::make_ivf_engine(std::make_unique<ivf::IvfIndex>(std::move(*loaded.ivf)));
  }
  else if (loaded.codes) impl->engine = engine::make_compressed_engine(std::move(*loaded.codes), std::move(loaded.exact_rows));
  else impl->engine = engine::make_exact_engine(std::move(loaded.matrix));
  if (core::verbose())
    core::TraceLine(("load " + name).c_str())
        .add("rows", impl->rows)
        .add("dims", impl->dims)
        .add("path", impl->engine->method())
        .add_ms("time", elapsed_ms(start))
        .emit();
  return Index(std::move(impl));
}

Index Index::load(const std::string& path, const LoadOptions& options) {
  io::FileBytes file = io::open_file(path, options.mmap);
  return from_file_view(path, file.bytes, std::move(file.owner), options,
                        file.mapped ? std::move(file.reader) : nullptr);
}

Index Index::from_bytes(std::span<const std::byte> bytes, const LoadOptions& options) {
  // Copied into an aligned buffer: the caller's bytes need not outlive the index, nor be aligned.
  constexpr std::size_t kAlign = 4096;
  void* p = std::aligned_alloc(kAlign, (bytes.size() + kAlign) / kAlign * kAlign);
  if (p == nullptr) throw std::bad_alloc();
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return from_file_view("<bytes>", {static_cast<const std::byte*>(p), bytes.size()}, std::move(owner), options, nullptr);
}

Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

std::size_t Index::rows() const noexcept { return impl_->rows; }
std::size_t Index::dims() const noexcept { return impl_->dims; }
bool Index::normalized() const noexcept { return impl_->normalized; }
std::size_t Index::threads() const noexcept { return impl_->threads; }
std::string_view Index::isa() const noexcept { return impl_->isa; }
Storage Index::storage() const noexcept { return impl_->storage; }
std::size_t Index::memory_bytes() const noexcept { return impl_->engine->memory_bytes() + impl_->file_buffer_bytes; }
bool Index::approx() const noexcept { return impl_->approx; }
bool Index::uses_ivf() const noexcept { return impl_->engine->uses_ivf(); }
std::string_view Index::method() const noexcept { return impl_->engine->method(); }
std::size_t Index::ef() const noexcept { return impl_->engine->ef(); }
std::size_t Index::nlist() const noexcept { return impl_->engine->nlist(); }
std::size_t Index::nprobe() const noexcept { return impl_->engine->nprobe(); }

void Index::search_into(const MatrixView& queries, std::size_t k, std::int64_t* indices, float* similarities,
                        const SearchParams& params) const {
  if (k < 1) throw InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (queries.cols != dims()) throw DimensionMismatch(dims(), queries.cols, "query");
  if (!(params.oversampling == 0.0 || params.oversampling >= 1.0))
    throw InvalidArgument("oversampling must be at least 1 (or 0 for the default), got " +
                          std::to_string(params.oversampling));
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

  std::optional<core::TraceLine> line;
  if (core::verbose()) {
    line.emplace("search");
    line->add("rows", rows()).add("dims", d).add("queries", n).add("k", std::min(k, rows()));
    line->add("isa", impl_->isa);
  }
  impl_->engine->search(prepared.data(), n, k, params, *impl_->kernels, impl_->threads, indices, similarities,
                        line ? &*line : nullptr);
  if (line) line->add_ms("time", elapsed_ms(start)).emit();
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
