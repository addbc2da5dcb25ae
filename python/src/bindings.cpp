// nndex._nndex: the thin nanobind layer. Arrays are viewed (never copied) while the GIL is held, the
// work runs with the GIL released, and results come back as numpy arrays owning their buffers.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "io/checksum.hpp"
#include "nndex/nndex.hpp"
#include "query_cache.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using AnyMatrix = nb::ndarray<nb::ro, nb::ndim<2>, nb::device::cpu>;
using Query = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

nndex::MatrixView view_of(const AnyMatrix& a) {
  nndex::MatrixView v;
  if (a.dtype() == nb::dtype<float>()) v.type = nndex::ScalarType::f32;
  else if (a.dtype() == nb::dtype<double>()) v.type = nndex::ScalarType::f64;
  else throw nndex::InvalidArgument("expected a float32 or float64 array");
  v.data = a.data();
  v.rows = a.shape(0);
  v.cols = a.shape(1);
  v.row_stride = a.stride(0);
  v.col_stride = a.stride(1);
  return v;
}

nndex::Storage storage_of(std::string_view name) {
  if (name == "f32") return nndex::Storage::f32;
  if (name == "bf16") return nndex::Storage::bf16;
  if (name == "int8") return nndex::Storage::int8;
  throw nndex::InvalidArgument("storage must be 'f32', 'bf16' or 'int8', got '" + std::string(name) + "'");
}

nndex::Backend backend_of(std::string_view name) {
  if (name == "cpu") return nndex::Backend::cpu;
  if (name == "gpu") return nndex::Backend::gpu;
  if (name == "auto") return nndex::Backend::automatic;
  throw nndex::InvalidArgument("backend must be 'cpu', 'gpu' or 'auto', got '" + std::string(name) + "'");
}

std::optional<std::size_t> device_of(std::int64_t index) {
  return index < 0 ? std::nullopt : std::optional<std::size_t>(static_cast<std::size_t>(index));
}

nb::dict device_dict(const nndex::GpuDevice& d) {
  nb::dict out;
  out["index"] = d.index;
  out["name"] = d.name;
  out["type"] = d.type;
  out["software"] = d.software;
  out["memory_bytes"] = d.memory_bytes;
  out["driver"] = d.driver;
  out["api_version"] = d.api_version;
  return out;
}

nndex::ApproxMethod method_of(std::string_view name) {
  if (name == "auto") return nndex::ApproxMethod::automatic;
  if (name == "ivf") return nndex::ApproxMethod::ivf;
  if (name == "graph") return nndex::ApproxMethod::graph;
  throw nndex::InvalidArgument("approx must be True, False, 'ivf' or 'graph', got '" + std::string(name) + "'");
}

// What a borrowing index holds on to: a reference to the caller's array (and so to the memory map
// under it), dropped with the GIL taken, since the last reference to the rows may go from any thread.
// Once the interpreter is gone the reference is left alone (as nanobind does).
std::shared_ptr<const void> keep_alive(const AnyMatrix& data) {
  return std::shared_ptr<const void>(new AnyMatrix(data), [](const AnyMatrix* held) noexcept {
    if (!Py_IsInitialized()) return;
    nb::gil_scoped_acquire gil;
    delete held;
  });
}

// Ctrl-C while the GIL is released: the calling thread re-takes the GIL every few ms of work to let
// Python run its signal handlers; a raised KeyboardInterrupt stays set and is re-raised on return.
bool python_interrupt_pending() {
  nb::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

template <class T>
nb::ndarray<nb::numpy, T> owned_array(std::unique_ptr<T[]> data, std::size_t rows, std::size_t cols, bool two_d) {
  T* raw = data.release();
  nb::capsule owner(raw, [](void* p) noexcept { delete[] static_cast<T*>(p); });
  if (two_d) return nb::ndarray<nb::numpy, T>(raw, {rows, cols}, owner);
  return nb::ndarray<nb::numpy, T>(raw, {cols}, owner);
}

// A numpy array that takes over `data`'s buffer (no copy).
template <class T>
nb::ndarray<nb::numpy, T> vector_array(std::vector<T>&& data, std::size_t rows, std::size_t cols, bool two_d) {
  auto* held = new std::vector<T>(std::move(data));
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  if (two_d) return nb::ndarray<nb::numpy, T>(held->data(), {rows, cols}, owner);
  return nb::ndarray<nb::numpy, T>(held->data(), {cols}, owner);
}

using IdArray = nb::ndarray<const std::int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using MaskArray = nb::ndarray<const std::uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

std::span<const std::int64_t> span_of(const std::optional<IdArray>& ids) {
  if (!ids) return {};
  return {ids->data(), ids->shape(0)};
}

// The filter of a search: allowed ids, or a mask indexed by id (bool arrays arrive as uint8), or none.
nndex::Filter filter_of(const std::optional<IdArray>& ids, const std::optional<MaskArray>& mask) {
  if (ids) return nndex::Filter::allow_ids({ids->data(), ids->shape(0)});
  if (mask) return nndex::Filter::allow_mask({mask->data(), mask->shape(0)});
  return {};
}

// Searches below this many multiply-adds (a few microseconds) keep the GIL.
constexpr std::size_t kGilFreeWork = std::size_t{1} << 15;

// A per-NNdex query-result cache bound to one native index (which it keeps alive).
struct CachedIndex {
  nb::object owner;  // the nndex::Index Python object
  const nndex::Index* index;
  nndex_py::QueryCache cache;
  std::size_t max_rows;  // batches of more rows are searched without the cache
  std::uint64_t generation = 0;  // the index's generation the cached results belong to
};

// The cache key of `queries`: their elements in C order (gathered into `scratch` when the view is
// strided), dtype, shape, k, nprobe, ef and oversampling.
nndex_py::QueryKey key_of(const nndex::MatrixView& q, bool two_d, std::size_t k, std::size_t nprobe, std::size_t ef,
                          double oversampling, std::vector<std::byte>& scratch) {
  const std::size_t item = q.type == nndex::ScalarType::f32 ? sizeof(float) : sizeof(double);
  nndex_py::QueryKey key{nullptr, q.rows * q.cols * item, q.type == nndex::ScalarType::f32 ? std::uint8_t{0} : std::uint8_t{1},
                         two_d, q.rows, q.cols, k, nprobe, ef, oversampling};
  if (q.col_stride == 1 && (q.rows == 1 || q.row_stride == static_cast<std::ptrdiff_t>(q.cols))) {
    key.data = static_cast<const std::byte*>(q.data);
    return key;
  }
  scratch.resize(key.bytes);
  const auto* base = static_cast<const std::byte*>(q.data);
  for (std::size_t r = 0; r < q.rows; ++r)
    for (std::size_t c = 0; c < q.cols; ++c)
      std::memcpy(scratch.data() + (r * q.cols + c) * item,
                  base + (static_cast<std::ptrdiff_t>(r) * q.row_stride + static_cast<std::ptrdiff_t>(c) * q.col_stride) *
                             static_cast<std::ptrdiff_t>(item),
                  item);
  key.data = scratch.data();
  return key;
}

// One search, answered from `cache` when it holds the result and stored there on a miss. The lookup
// and the fill run in this call, with the GIL held; only the search itself may release it.
nb::tuple run_search(const nndex::Index& index, const nndex::MatrixView& queries, std::int64_t k, std::size_t nprobe,
                     std::size_t ef, double oversampling, bool two_d, CachedIndex* cached = nullptr,
                     const nndex::Filter& filter = {}) {
  // Checked before the cache is consulted, so a refused call leaves the cache's counts alone (and no
  // NaN ever reaches a key).
  if (k < 1) throw nndex::InvalidArgument("k must be at least 1, got " + std::to_string(k));
  if (!(oversampling == 0.0 || oversampling >= 1.0))
    throw nndex::InvalidArgument(std::string("oversampling must be at least 1, got ") +
                                 nb::repr(nb::float_(oversampling)).c_str());
  // Filtered searches are not cached (the key would have to hold the filter).
  const bool use_cache = cached != nullptr && filter.kind == nndex::Filter::Kind::none && queries.rows > 0 &&
                         queries.rows <= cached->max_rows && queries.cols == index.dims() && queries.data != nullptr;
  std::vector<std::byte> scratch;
  nndex_py::QueryKey key;
  std::uint64_t hash = 0;
  if (use_cache) {
    // Results of an earlier state of the index are dropped once it changes.
    const nndex::Index::State state = index.state();
    if (state.generation != cached->generation) {
      cached->cache.clear();
      cached->generation = state.generation;
    }
    const std::size_t kk = std::min<std::size_t>(static_cast<std::size_t>(k), state.rows);
    const std::size_t count = queries.rows * kk;
    auto ids = std::unique_ptr<std::int64_t[]>(new std::int64_t[count]);
    auto sims = std::unique_ptr<float[]>(new float[count]);
    key = key_of(queries, two_d, static_cast<std::size_t>(k), nprobe, ef, oversampling, scratch);
    hash = cached->cache.hash(key);
    if (cached->cache.lookup(key, hash, ids.get(), sims.get(), count))
      return nb::make_tuple(owned_array(std::move(ids), queries.rows, kk, two_d),
                            owned_array(std::move(sims), queries.rows, kk, two_d));
  }
  nndex::SearchParams params{&python_interrupt_pending, nprobe, ef, oversampling, filter};
  nndex::BatchResult r;
  if (queries.rows * index.rows() * index.dims() < kGilFreeWork) {
    // A few microseconds of work: releasing and re-taking the GIL would cost a noticeable share.
    r = index.search_batch(queries, static_cast<std::size_t>(k), params);
  } else {
    nb::gil_scoped_release nogil;
    r = index.search_batch(queries, static_cast<std::size_t>(k), params);
  }
  if (use_cache && r.generation == cached->generation)
    cached->cache.insert(key, hash, r.indices.data(), r.similarities.data(), r.indices.size());
  return nb::make_tuple(vector_array(std::move(r.indices), queries.rows, r.k, two_d),
                        vector_array(std::move(r.similarities), queries.rows, r.k, two_d));
}

nb::tuple search_one(const nndex::Index& index, const Query& query, std::int64_t k, std::size_t nprobe,
                     std::size_t ef, double oversampling, CachedIndex* cached, const nndex::Filter& filter = {}) {
  if (query.shape(0) != index.dims()) throw nndex::DimensionMismatch(index.dims(), query.shape(0), "query");
  return run_search(index, nndex::MatrixView::row_major(query.data(), 1, query.shape(0)), k, nprobe, ef,
                    oversampling, false, cached, filter);
}

}  // namespace

NB_MODULE(_nndex, m) {
  m.doc() = "nndex native extension: exact and approximate (graph, IVF) top-k similarity search, and the query-result "
            "cache (use the nndex package, not this module).";
  m.attr("__version__") = NNDEX_VERSION_STRING;

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const nndex::Interrupted&) {
      if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    } catch (const nndex::IoError& e) {
      // OSError(errno, message, filename): FileNotFoundError, PermissionError, ... as Python raises them.
      nb::object error = nb::steal(PyObject_CallFunction(PyExc_OSError, "isO", e.error_code(), e.what(),
                                                         nb::str(e.path().c_str()).ptr()));
      if (!error.is_valid()) return;  // constructing the exception failed; that error stands
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    } catch (const nndex::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("gpu_devices", [] {
    std::vector<nndex::GpuDevice> devices;
    {
      nb::gil_scoped_release nogil;  // the first call loads Vulkan and its drivers
      devices = nndex::gpu_devices();
    }
    nb::list out;
    for (const auto& d : devices) out.append(device_dict(d));
    return out;
  });
  m.def("gpu_unavailable_reason", [] {
    nb::gil_scoped_release nogil;
    return nndex::gpu_unavailable_reason();
  });
  m.def("gpu_backend_built", &nndex::gpu_backend_built);

  nb::class_<nndex::Index>(m, "Index")
      .def(
          "__init__",
          [](nndex::Index* self, AnyMatrix data, bool normalized, std::size_t threads, bool approx, std::size_t nlist,
             std::size_t nprobe, double recall, std::uint64_t seed, std::string_view storage, bool borrow,
             std::string rows_path, std::uint64_t rows_offset, std::string_view method, std::size_t ef,
             std::size_t graph_degree, std::size_t ef_construction, std::optional<IdArray> ids, std::string_view backend,
             std::int64_t gpu_device) {
            const nndex::MatrixView view = view_of(data);
            nndex::IndexOptions options;
            options.normalized = normalized;
            options.threads = threads;
            options.approx = approx;
            options.nlist = nlist;
            options.nprobe = nprobe;
            options.recall = recall;
            options.seed = seed;
            options.storage = storage_of(storage);
            options.method = method_of(method);
            options.ef = ef;
            options.graph_degree = graph_degree;
            options.ef_construction = ef_construction;
            options.backend = backend_of(backend);
            options.gpu_device = device_of(gpu_device);
            // borrow: compressed storage re-ranks from `data` itself (kept alive) instead of a copy.
            // rows_path / rows_offset: where a borrowed C-order view's rows lie in its file (a .npy), so
            // re-ranking reads them with pread rather than through the map (nndex::RowFile).
            std::shared_ptr<const void> owner = borrow ? keep_alive(data) : nullptr;
            const nndex::RowFile rows_file{std::move(rows_path), rows_offset};
            nb::gil_scoped_release nogil;
            new (self) nndex::Index(view, options, std::move(owner), &python_interrupt_pending, rows_file, span_of(ids));
          },
          "data"_a.noconvert(), "normalized"_a, "threads"_a, "approx"_a, "nlist"_a, "nprobe"_a, "recall"_a, "seed"_a,
          "storage"_a = "f32", "borrow"_a = false, "rows_path"_a = "", "rows_offset"_a = 0, "method"_a = "auto",
          "ef"_a = 0, "graph_degree"_a = 0, "ef_construction"_a = 0, "ids"_a.noconvert() = nb::none(),
          "backend"_a = "cpu", "gpu_device"_a = -1)
      .def(
          "search",
          [](const nndex::Index& self, Query query, std::int64_t k, std::size_t nprobe, double oversampling, std::size_t ef,
             std::optional<IdArray> filter_ids, std::optional<MaskArray> filter_mask) {
            return search_one(self, query, k, nprobe, ef, oversampling, nullptr, filter_of(filter_ids, filter_mask));
          },
          "query"_a.noconvert(), "k"_a, "nprobe"_a = 0, "oversampling"_a = 0.0, "ef"_a = 0,
          "filter_ids"_a.noconvert() = nb::none(), "filter_mask"_a.noconvert() = nb::none())
      .def(
          "search_batch",
          [](const nndex::Index& self, AnyMatrix queries, std::int64_t k, std::size_t nprobe, double oversampling, std::size_t ef,
             std::optional<IdArray> filter_ids, std::optional<MaskArray> filter_mask) {
            return run_search(self, view_of(queries), k, nprobe, ef, oversampling, true, nullptr,
                              filter_of(filter_ids, filter_mask));
          },
          "queries"_a.noconvert(), "k"_a, "nprobe"_a = 0, "oversampling"_a = 0.0, "ef"_a = 0,
          "filter_ids"_a.noconvert() = nb::none(), "filter_mask"_a.noconvert() = nb::none())
      .def(
          "add",
          [](nndex::Index& self, AnyMatrix vectors, std::optional<IdArray> ids) {
            const nndex::MatrixView view = view_of(vectors);
            std::vector<std::int64_t> added;
            {
              nb::gil_scoped_release nogil;
              added = self.add(view, span_of(ids), &python_interrupt_pending);
            }
            const std::size_t n = added.size();
            return vector_array(std::move(added), 1, n, false);
          },
          "vectors"_a.noconvert(), "ids"_a.noconvert() = nb::none())
      .def(
          "remove",
          [](nndex::Index& self, IdArray ids) {
            nb::gil_scoped_release nogil;
            return self.remove(span_of(ids), &python_interrupt_pending);
          },
          "ids"_a.noconvert())
      .def("compact",
           [](nndex::Index& self) {
             nb::gil_scoped_release nogil;
             self.compact(&python_interrupt_pending);
           })
      .def("live_ids",
           [](const nndex::Index& self) {
             std::vector<std::int64_t> ids = self.ids();
             const std::size_t n = ids.size();
             return vector_array(std::move(ids), 1, n, false);
           })
      .def("contains", &nndex::Index::contains, "id"_a)
      .def_prop_ro("segments", &nndex::Index::segments)
      .def_prop_ro("removed_rows", &nndex::Index::removed_rows)
      .def_prop_ro("generation", &nndex::Index::generation)
      .def_prop_ro("next_id", [](const nndex::Index& self) { return self.state().next_id; })
      .def_prop_ro("mask_entries", [](const nndex::Index& self) { return self.state().mask_entries; })
      .def_prop_ro("rows", &nndex::Index::rows)
      .def_prop_ro("dims", &nndex::Index::dims)
      .def_prop_ro("normalized", &nndex::Index::normalized)
      .def_prop_ro("threads", &nndex::Index::threads)
      .def_prop_ro("isa", [](const nndex::Index& i) { return std::string(i.isa()); })
      .def_prop_ro("storage", [](const nndex::Index& i) { return std::string(nndex::storage_name(i.storage())); })
      .def_prop_ro("backend", [](const nndex::Index& i) { return std::string(i.backend()); })
      .def_prop_ro("gpu_device",
                   [](const nndex::Index& i) -> nb::object {
                     const std::optional<nndex::GpuDevice> d = i.gpu_device();
                     return d ? nb::object(device_dict(*d)) : nb::none();
                   })
      .def(
          "save",
          [](const nndex::Index& self, const std::string& path) {
            nb::gil_scoped_release nogil;
            self.save(path);
          },
          "path"_a)
      .def_static(
          "load",
          [](const std::string& path, bool mmap, std::size_t threads, bool verify, std::string_view backend,
             std::int64_t gpu_device) {
            nndex::LoadOptions options;
            options.mmap = mmap;
            options.threads = threads;
            options.verify = verify;
            options.backend = backend_of(backend);
            options.gpu_device = device_of(gpu_device);
            nb::gil_scoped_release nogil;
            return nndex::Index::load(path, options);
          },
          "path"_a, "mmap"_a, "threads"_a, "verify"_a = true, "backend"_a = "cpu", "gpu_device"_a = -1)
      .def("to_bytes",
           [](const nndex::Index& self) {
             std::vector<std::byte> bytes;
             {
               nb::gil_scoped_release nogil;
               bytes = self.to_bytes();
             }
             return nb::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
           })
      .def_static(
          "from_bytes",
          [](nb::bytes data, std::size_t threads, std::string_view backend, std::int64_t gpu_device) {
            const std::span<const std::byte> view(reinterpret_cast<const std::byte*>(data.c_str()), data.size());
            nndex::LoadOptions options;
            options.mmap = false;
            options.threads = threads;
            options.backend = backend_of(backend);
            options.gpu_device = device_of(gpu_device);
            nb::gil_scoped_release nogil;
            return nndex::Index::from_bytes(view, options);
          },
          "data"_a, "threads"_a, "backend"_a = "cpu", "gpu_device"_a = -1)
      .def_prop_ro("memory_bytes", &nndex::Index::memory_bytes)
      .def_prop_ro("approx", &nndex::Index::approx)
      .def_prop_ro("uses_ivf", &nndex::Index::uses_ivf)
      .def_prop_ro("nlist", &nndex::Index::nlist)
      .def_prop_ro("nprobe", &nndex::Index::nprobe)
      .def_prop_ro("method", [](const nndex::Index& i) { return std::string(i.method()); })
      .def_prop_ro("ef", &nndex::Index::ef);

  nb::class_<CachedIndex>(m, "QueryCache")
      .def(
          "__init__",
          [](CachedIndex* self, nb::object index, std::size_t max_entries, std::size_t max_bytes, std::size_t max_rows,
             bool colliding_hash) {
            const nndex::Index* native = &nb::cast<const nndex::Index&>(index);
            new (self) CachedIndex{std::move(index), native, nndex_py::QueryCache(max_entries, max_bytes, colliding_hash),
                                   max_rows};
          },
          "index"_a, "max_entries"_a, "max_bytes"_a, "max_rows"_a, "colliding_hash"_a = false,
          "A bounded LRU of search results over `index`; search() and search_batch() as Index's.")
      .def(
          "search",
          [](CachedIndex& self, Query query, std::int64_t k, std::size_t nprobe, double oversampling, std::size_t ef,
             std::optional<IdArray> filter_ids, std::optional<MaskArray> filter_mask) {
            return search_one(*self.index, query, k, nprobe, ef, oversampling, &self, filter_of(filter_ids, filter_mask));
          },
          "query"_a.noconvert(), "k"_a, "nprobe"_a = 0, "oversampling"_a = 0.0, "ef"_a = 0,
          "filter_ids"_a.noconvert() = nb::none(), "filter_mask"_a.noconvert() = nb::none())
      .def(
          "search_batch",
          [](CachedIndex& self, AnyMatrix queries, std::int64_t k, std::size_t nprobe, double oversampling, std::size_t ef,
             std::optional<IdArray> filter_ids, std::optional<MaskArray> filter_mask) {
            return run_search(*self.index, view_of(queries), k, nprobe, ef, oversampling, true, &self,
                              filter_of(filter_ids, filter_mask));
          },
          "queries"_a.noconvert(), "k"_a, "nprobe"_a = 0, "oversampling"_a = 0.0, "ef"_a = 0,
          "filter_ids"_a.noconvert() = nb::none(), "filter_mask"_a.noconvert() = nb::none())
      .def(
          "stats",
          [](const CachedIndex& self) {
            const nndex_py::QueryCacheStats s = self.cache.stats();
            return nb::make_tuple(s.hits, s.misses, s.entries, s.bytes);
          },
          "(hits, misses, entries, bytes)")
      .def("clear", [](CachedIndex& self) { self.cache.clear(); })
      .def_prop_ro("index", [](const CachedIndex& self) { return self.owner; })
      .def_prop_ro("max_entries", [](const CachedIndex& self) { return self.cache.max_entries(); })
      .def_prop_ro("max_bytes", [](const CachedIndex& self) { return self.cache.max_bytes(); })
      .def_prop_ro("max_rows", [](const CachedIndex& self) { return self.max_rows; });

  // The index files' checksum, for the tests (compared with the PyPI xxhash package).
  m.def("_xxh64", [](nb::bytes data, std::uint64_t seed) { return nndex::io::xxh64(data.c_str(), data.size(), seed); },
        "data"_a, "seed"_a = 0);
  m.def("hardware_threads", [] { return std::thread::hardware_concurrency(); });
}
