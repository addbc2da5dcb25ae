// The graph engine: HNSW walked on int8 navigation codes, beam of ef (per call or calibrated) re-ranked
// exactly.
#include "engine/engine.hpp"

namespace nndex::engine {
namespace {

class GraphEngine final : public Engine {
 public:
  GraphEngine(std::unique_ptr<graph::GraphIndex> graph, Storage storage) : graph_(std::move(graph)), storage_(storage) {}

  const char* method() const override { return "graph"; }
  std::size_t ef() const override { return graph_->ef(); }
  std::size_t memory_bytes() const override { return graph_->memory_bytes(); }

  void search(const float* queries, std::size_t n, std::size_t k, const SearchParams& params,
              const kernels::KernelTable& kt, std::size_t threads, std::int64_t* out_indices, float* out_scores,
              core::TraceLine* trace, const core::RowFilter* filter) const override {
    const graph::SearchReport r =
        graph_->search(queries, n, k, params.ef, params.oversampling, kt, threads, params.should_stop, out_indices,
                       out_scores, filter);
    if (trace != nullptr)
      trace->add("threads", r.threads).add("path", "graph").add("ef", r.ef).add("shortlist", r.shortlist).add("scored", r.scored);
    if (trace != nullptr && filter != nullptr) trace->add("allowed", filter->count()).add("exact_queries", r.exact);
  }

  std::size_t rows() const override { return graph_->rows(); }
  void copy_rows(const kernels::KernelTable& kt, float* out) const override {
    const storage::ExactRows& rows = graph_->parts().exact_rows;
    for (std::size_t r = 0; r < rows.rows(); ++r) rows.read(r, kt, out + r * rows.dims());
  }

  void describe_storage(io::IndexContents& contents) const override {
    contents.graph = &graph_->parts();
    contents.exact_rows = &graph_->parts().exact_rows;
    contents.graph_storage = storage_;
  }

  void describe_build(core::TraceLine& trace) const override {
    const graph::BuildReport& r = graph_->report();
    trace.add("path", "graph")
        .add("storage", storage_name(storage_))
        .add("degree", graph_->degree())
        .add("ef", graph_->ef())
        .add("calibrated_recall", r.calibrated_recall, 4)
        .add("calibration_queries", r.calibration_queries)
        .add_ms("encode", r.encode_ms)
        .add_ms("insert", r.insert_ms)
        .add_ms("calibrate", r.calibrate_ms);
  }

 private:
  std::unique_ptr<graph::GraphIndex> graph_;
  Storage storage_;
};

}  // namespace

std::unique_ptr<Engine> make_graph_engine(std::unique_ptr<graph::GraphIndex> graph, Storage storage) {
  return std::make_unique<GraphEngine>(std::move(graph), storage);
}

}  // namespace nndex::engine
