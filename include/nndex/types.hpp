// Plain value types shared by the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace nndex {

enum class ScalarType { f32, f64 };

// How an index stores its rows.
//   f32:  float32, scored exactly.
//   bf16: bfloat16 (half the bytes), int8: one signed byte per value with a float scale per row (a
//         quarter): scored compressed to choose a shortlist (SearchParams::oversampling), which is
//         then re-scored in float32, so the similarities returned are exact float32 similarities.
enum class Storage { f32, bf16, int8 };

// Where exact float32 searches run (IndexOptions::backend).
//   cpu:       the CPU kernels.
//   gpu:       a Vulkan GPU (nndex/gpu.hpp), which holds a copy of the rows; GpuError when there is none.
//   automatic: the best hardware GPU for calls large enough to gain, the CPU otherwise and when no
//              hardware GPU exists (software Vulkan devices are never chosen).
// Approximate (IVF, graph) and compressed (bf16, int8) indexes search on the CPU whatever it says.
enum class Backend { cpu, gpu, automatic };
const char* backend_name(Backend backend);  // "cpu", "gpu", "auto"

// The approximate structure (IndexOptions::method).
enum class ApproxMethod { automatic, ivf, graph };
const char* method_name(ApproxMethod method);  // "auto", "ivf", "graph"
const char* storage_name(Storage storage);  // "f32", "bf16", "int8"

// A read-only 2-D view of the caller's data: any element strides (row-major, column-major, sliced),
// float32 or float64. The index converts while packing, so no intermediate copy is made.
struct MatrixView {
  const void* data = nullptr;
  ScalarType type = ScalarType::f32;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::ptrdiff_t row_stride = 0;  // in elements
  std::ptrdiff_t col_stride = 1;  // in elements

  static MatrixView row_major(const float* data, std::size_t rows, std::size_t cols) {
    return {data, ScalarType::f32, rows, cols, static_cast<std::ptrdiff_t>(cols), 1};
  }
  static MatrixView row_major(const double* data, std::size_t rows, std::size_t cols) {
    return {data, ScalarType::f64, rows, cols, static_cast<std::ptrdiff_t>(cols), 1};
  }
};

// Polled by the calling thread every few milliseconds during long work; returning true abandons
// the call with nndex::Interrupted.
using StopCheck = std::function<bool()>;

struct IndexOptions {
  // false: rows are L2-normalised into the index (cosine similarity);
  // true: rows are trusted as given and scores are raw dot products.
  bool normalized = false;
  // Upper bound on threads used by one call; 0 means every hardware thread.
  std::size_t threads = 0;

  // Approximate search, re-ranked exactly: a graph (HNSW) walked on int8 navigation codes, or an
  // inverted-file index (spherical k-means clusters) probed per query. Matrices too small for either to
  // pay off are searched exactly (approx stays set).
  bool approx = false;
  // Which structure `approx` builds. automatic: the graph, unless IVF options (nlist, nprobe) or bf16
  // storage ask for IVF. Named explicitly, the graph is built whatever the matrix's size.
  ApproxMethod method = ApproxMethod::automatic;
  // Graph: neighbours per node on level 0 (upper levels have half; 0: 32), the build's beam width
  // (0: 100), and the search's default beam width (0: calibrated to reach `recall`).
  std::size_t graph_degree = 0;
  std::size_t ef_construction = 0;
  std::size_t ef = 0;
  // IVF:
  std::size_t nlist = 0;       // clusters; 0 chooses from the row count
  std::size_t nprobe = 0;      // clusters probed per query; 0 calibrates it to reach `recall`
  double recall = 0.0;         // target recall@10 of the calibration (nprobe, or the graph's ef);
                               // 0: the default, which aims for at least 0.95 on new queries
                               // (calibrates for 0.96)
  std::uint64_t seed = 0x6e6e646578ULL;  // k-means sampling and seeding; same seed, same index

  Storage storage = Storage::f32;

  Backend backend = Backend::cpu;
  std::optional<std::size_t> gpu_device = std::nullopt;  // GpuDevice::index; none: the best device
};

// Where the rows of a borrowed matrix (a memory-mapped file) also lie on disk: the file and the byte
// offset of row 0, rows stored C-order without gaps. A compressed index built over such a view reads
// the rows it re-ranks with positioned reads of the file instead of through the mapping, where each
// page fault would map its neighbours in too and fill the process's resident memory.
struct RowFile {
  std::string path;  // empty: none
  std::uint64_t offset = 0;
};

struct LoadOptions {
  // true: map the file and search straight from the page cache (processes share the pages);
  // false: read it into memory.
  bool mmap = true;
  std::size_t threads = 0;  // as IndexOptions::threads
  // true: verify the section checksums (and that every float is finite) before use: one pass over
  // the whole file. false, for trusted files: skip that pass; the structure (header checksum, bounds,
  // sizes, layout, padding, cluster table, ids) is still validated, so a damaged file cannot crash.
  bool verify = true;
  Backend backend = Backend::cpu;  // as IndexOptions::backend
  std::optional<std::size_t> gpu_device = std::nullopt;
};

// Restricts a search to some rows, by id (SearchParams::filter): a list of allowed ids (ids the index
// does not hold are ignored) or a mask indexed by id (mask[id] != 0 allows id; it must have more
// entries than the largest id in the index). Results are the best min(k, allowed rows) among them,
// for every kind of index. The spans are read during the call only.
struct Filter {
  enum class Kind { none, ids, mask };
  Kind kind = Kind::none;
  std::span<const std::int64_t> ids;
  std::span<const std::uint8_t> mask;

  static Filter allow_ids(std::span<const std::int64_t> ids) { return {Kind::ids, ids, {}}; }
  static Filter allow_mask(std::span<const std::uint8_t> mask) { return {Kind::mask, {}, mask}; }
};

// Per-call settings, so one index can serve many threads with different needs.
struct SearchParams {
  StopCheck should_stop;
  std::size_t nprobe = 0;  // IVF indexes: clusters probed for this call; 0 uses the index's
  std::size_t ef = 0;      // graph indexes: beam width for this call (at least k is used); 0 uses the index's
  // Compressed storage: rows shortlisted per result, ceil(k * oversampling), before the exact float32
  // re-scoring (Qdrant's name; faiss IndexRefine calls it k_factor). 0: the default, 1.5 for bf16 and
  // 2 for int8 with at least k + 8 rows (recall@10 against float32 >= 0.999 and >= 0.995 on real and
  // Gaussian embeddings).
  // Must be 0 or >= 1; ignored by float32 indexes.
  double oversampling = 0.0;
  Filter filter;  // none: every row
};

struct Neighbor {
  std::int64_t index;
  float similarity;
};

// n x k results in two flat row-major arrays, each row most similar first. k is what the search
// could return: min(k asked, rows allowed).
struct BatchResult {
  std::size_t queries = 0;
  std::size_t k = 0;
  std::uint64_t generation = 0;  // Index::generation() of the state searched
  std::vector<std::int64_t> indices;
  std::vector<float> similarities;
};

}  // namespace nndex
