// The exact engine: every stored row scored for every query (exact::search plans the threads).
#include "core/pack.hpp"
#include "engine/engine.hpp"
#include "exact/exact_search.hpp"

namespace nndex::engine {
namespace {

class ExactEngine final : public Engine {
 public:
  explicit ExactEngine(core::TiledMatrix matrix) : matrix_(std::move(matrix)) {}

  // What this engine allocated; storage borrowed from a loaded file is the Index's to count.
  std::size_t memory_bytes() const override { return matrix_.borrowed() ? 0 : matrix_.bytes(); }

  void search(const float* queries, std::size_t n, std::size_t k, const SearchParams& params,
              const kernels::KernelTable& kt, std::size_t threads, std::int64_t* out_indices, float* out_scores,
              core::TraceLine* trace, const core::RowFilter* filter) const override {
    const exact::Plan plan =
        exact::search(matrix_, queries, n, k, kt, threads, params.should_stop, out_indices, out_scores, filter);
    if (trace != nullptr)
      trace->add("threads", plan.threads)
          .add("path", std::string("exact-") + plan.path)
          .add("qblock", plan.query_block)
          .add("splits", plan.row_splits)
          .add("panel", plan.panel_blocks);
    if (trace != nullptr && filter != nullptr) trace->add("allowed", filter->count());
  }

  std::size_t rows() const override { return matrix_.rows(); }
  void copy_rows(const kernels::KernelTable&, float* out) const override { core::untile_rows(matrix_, out); }
  const core::TiledMatrix* exact_tiles() const override { return &matrix_; }

  void describe_storage(io::IndexContents& contents) const override { contents.matrix = &matrix_; }
  void describe_build(core::TraceLine& trace) const override { trace.add("path", "exact"); }

 private:
  core::TiledMatrix matrix_;
};

}  // namespace

std::unique_ptr<Engine> make_exact_engine(core::TiledMatrix matrix) {
  return std::make_unique<ExactEngine>(std::move(matrix));
}

}  // namespace nndex::engine
