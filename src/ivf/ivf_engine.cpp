// The IVF engine: clusters nearest each query probed (nprobe per call or calibrated), re-ranked exactly.
#include <algorithm>

#include "engine/engine.hpp"

namespace nndex::engine {
namespace {

class IvfEngine final : public Engine {
 public:
  explicit IvfEngine(std::unique_ptr<ivf::IvfIndex> ivf) : ivf_(std::move(ivf)) {}

  const char* method() const override { return "ivf"; }
  bool uses_ivf() const override { return true; }
  std::size_t nlist() const override { return ivf_->nlist(); }
  std::size_t nprobe() const override { return ivf_->nprobe(); }
  std::size_t memory_bytes() const override { return ivf_->memory_bytes(); }

  void search(const float* queries, std::size_t n, std::size_t k, const SearchParams& params,
              const kernels::KernelTable& kt, std::size_t threads, std::int64_t* out_indices, float* out_scores,
              core::TraceLine* trace, const core::RowFilter* filter) const override {
    const std::size_t nprobe = params.nprobe != 0 ? params.nprobe : ivf_->nprobe();
    const ivf::SearchReport r =
        ivf_->search(queries, n, k, nprobe, kt, threads, params.should_stop, out_indices, out_scores, params.oversampling,
                     filter);
    if (trace != nullptr)
      trace->add("threads", r.threads)
          .add("path", "ivf")
          .add("nlist", ivf_->nlist())
          .add("nprobe", std::min(nprobe, ivf_->nlist()))
          .add("probes", r.probed)
          .add("candidates", r.candidates);
    if (trace != nullptr && filter != nullptr) trace->add("allowed", filter->count()).add("exhaustive", r.exhaustive);
    if (trace != nullptr && ivf_->compressed())
      trace->add("storage", storage_name(storage())).add("shortlist", r.shortlist);
  }

  std::size_t rows() const override { return ivf_->rows(); }
  const core::TiledMatrix* ivf_centroids() const override { return &ivf_->parts().centroids; }
  void copy_rows(const kernels::KernelTable& kt, float* out) const override { ivf_->copy_rows(kt, out); }

  void describe_storage(io::IndexContents& contents) const override {
    const auto& parts = ivf_->parts();
    contents.ivf = &parts;
    if (parts.codes) {
      contents.codes = &*parts.codes;
      contents.exact_rows = &parts.exact_rows;
    }
  }

  void describe_build(core::TraceLine& trace) const override {
    const ivf::BuildReport& r = ivf_->report();
    trace.add("path", "ivf")
        .add("storage", storage_name(storage()))
        .add("nlist", ivf_->nlist())
        .add("nprobe", ivf_->nprobe())
        .add("train", r.train_points)
        .add("iterations", r.iterations)
        .add("reseeded", r.reseeded)
        .add("calibrated_recall", r.calibrated_recall, 4)
        .add_ms("seed", r.seed_ms)
        .add_ms("train", r.train_ms)
        .add_ms("assign", r.assign_ms)
        .add_ms("layout", r.layout_ms)
        .add_ms("calibrate", r.calibrate_ms);
  }

 private:
  Storage storage() const {
    const auto& codes = ivf_->parts().codes;
    return !codes ? Storage::f32 : codes->codec() == kernels::Codec::int8 ? Storage::int8 : Storage::bf16;
  }

  std::unique_ptr<ivf::IvfIndex> ivf_;
};

}  // namespace

std::unique_ptr<Engine> make_ivf_engine(std::unique_ptr<ivf::IvfIndex> ivf) {
  return std::make_unique<IvfEngine>(std::move(ivf));
}

}  // namespace nndex::engine
