#include "engine/build.hpp"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/pack.hpp"
#include "core/prepare.hpp"
#include "engine/options.hpp"
#include "graph/graph_index.hpp"
#include "ivf/ivf_index.hpp"
#include "nndex/errors.hpp"
#include "storage/quantize.hpp"

namespace nndex::engine {
namespace {

// The default promises recall@10 >= 0.95 on new queries: calibrating for a point above it absorbs the
// sampling noise of both the calibration queries and the user's.
constexpr double kDefaultRecallTarget = 0.96;

kernels::Codec codec_of(Storage storage) {
  return storage == Storage::int8 ? kernels::Codec::int8 : kernels::Codec::bf16;
}

// The float32 rows a compressed index re-ranks with: the caller's own (kept alive by `keep_alive`, read
// through the reader when the file under them is known), or else the build's `prepared` rows.
storage::ExactRows exact_rows_for(const BuildInput& in, std::vector<float> prepared) {
  if (in.keep_alive == nullptr) return storage::ExactRows::owned(std::move(prepared), in.data.cols);
  storage::ExactRows rows = storage::ExactRows::borrowed(in.data, in.normalize, in.keep_alive);
  if (in.row_reader != nullptr) rows.read_through(in.row_reader, in.row_offset);
  return rows;
}

}  // namespace

BuildChoice choose_structure(const IndexOptions& options, std::size_t rows, std::size_t dims, bool segment) {
  // An explicit nlist or method graph always builds that structure for the first segment; otherwise
  // matrices too small for an approximate structure to pay off are searched exactly.
  const ApproxMethod method = resolve_method(options);
  const bool named = !segment && (options.nlist != 0 || options.method == ApproxMethod::graph);
  const bool pays_off = named || ivf::ivf_pays_off(rows, dims);
  BuildChoice c;
  c.ivf = options.approx && pays_off && method == ApproxMethod::ivf;
  c.graph = options.approx && pays_off && method == ApproxMethod::graph;
  return c;
}

std::unique_ptr<Engine> build(const BuildInput& in, const IndexOptions& options, const kernels::KernelTable& kt,
                              std::size_t threads, const StopCheck& should_stop) {
  const MatrixView& data = in.data;
  const BuildChoice choice = choose_structure(options, data.rows, data.cols, in.segment);
  if (data.rows > std::numeric_limits<std::uint32_t>::max() && choice.graph)
    throw InvalidArgument("a graph index holds at most 2^32 - 1 rows; use method ivf");
  const bool borrow = in.keep_alive != nullptr;
  const double recall = options.recall == 0.0 ? kDefaultRecallTarget : options.recall;
  if (choice.graph) {
    std::vector<float> rows = core::prepare_rows(data, in.normalize, kt, threads, should_stop);
    graph::BuildParams params;
    if (options.graph_degree != 0) params.degree = options.graph_degree;
    if (options.ef_construction != 0) params.ef_construction = options.ef_construction;
    params.ef = options.ef;
    params.recall = recall;
    params.seed = options.seed;
    params.threads = threads;
    // The rows re-rank the beam: the prepared copy, or the caller's own when borrowed.
    const std::vector<float> encode_from = borrow ? std::move(rows) : std::vector<float>{};
    storage::ExactRows exact = exact_rows_for(in, std::move(rows));
    const float* prepared = borrow ? encode_from.data() : exact.prepared();
    return make_graph_engine(std::make_unique<graph::GraphIndex>(prepared, std::move(exact), params, kt, should_stop),
                             options.storage);
  }
  if (choice.ivf) {
    std::vector<float> rows = core::prepare_rows(data, in.normalize, kt, threads, should_stop);
    ivf::BuildParams params;
    params.nlist = in.segment ? 0 : options.nlist;
    params.nprobe = in.segment ? 0 : options.nprobe;
    params.recall = recall;
    params.seed = options.seed;
    params.threads = threads;
    params.centroids = in.ivf_centroids;
    auto ivf = std::make_unique<ivf::IvfIndex>(rows.data(), data.rows, data.cols, params, kt, should_stop);
    if (options.storage != Storage::f32) {
      // The lists become codes; the prepared rows stay for re-ranking unless the caller's are borrowed.
      const std::vector<float> encode_from = borrow ? std::move(rows) : std::vector<float>{};
      storage::ExactRows exact = exact_rows_for(in, std::move(rows));
      const float* prepared = borrow ? encode_from.data() : exact.prepared();
      ivf->compress(codec_of(options.storage), prepared, std::move(exact), threads, should_stop);
    }
    return make_ivf_engine(std::move(ivf));
  }
  if (options.storage != Storage::f32) {
    // Prepared rows are kept for re-ranking only when the caller's are not borrowed.
    std::vector<float> prepared;
    storage::CodeMatrix codes = storage::encode_matrix(data, in.normalize, codec_of(options.storage), kt, threads,
                                                       should_stop, borrow ? nullptr : &prepared);
    return make_compressed_engine(std::move(codes), exact_rows_for(in, std::move(prepared)));
  }
  return make_exact_engine(core::pack_matrix(data, in.normalize, kt, threads, should_stop));
}

}  // namespace nndex::engine
