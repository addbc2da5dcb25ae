#include "gpu/gpu_engine.hpp"

#include <vector>

#include "gpu/gpu_search.hpp"

namespace nndex::gpu {

namespace {

class GpuEngine final : public engine::Engine {
 public:
  GpuEngine(std::unique_ptr<engine::Engine> cpu, const engine::Placement& placement, const kernels::KernelTable& kt)
      : cpu_(std::move(cpu)), backend_(placement.backend) {
    std::vector<float> rows(cpu_->rows() * cpu_->exact_tiles()->dims());
    cpu_->copy_rows(kt, rows.data());
    gpu_ = std::make_unique<GpuSearch>(placement.device, rows.data(), cpu_->rows(), cpu_->exact_tiles()->dims());
  }

  const char* backend() const override { return "gpu"; }
  std::size_t memory_bytes() const override { return cpu_->memory_bytes(); }
  std::size_t rows() const override { return cpu_->rows(); }
  const core::TiledMatrix* exact_tiles() const override { return cpu_->exact_tiles(); }
  void copy_rows(const kernels::KernelTable& kt, float* out) const override { cpu_->copy_rows(kt, out); }
  void describe_storage(io::IndexContents& contents) const override { cpu_->describe_storage(contents); }
  void describe_build(core::TraceLine& trace) const override {
    cpu_->describe_build(trace);
    trace.add("backend", "gpu").add("device", gpu_->context().info().name).add("device_bytes", gpu_->device_bytes());
  }

  void search(const float* queries, std::size_t n, std::size_t k, const SearchParams& params,
              const kernels::KernelTable& kt, std::size_t threads, std::int64_t* out_indices, float* out_scores,
              core::TraceLine* trace, const core::RowFilter* filter) const override {
    const std::size_t work = n * rows() * exact_tiles()->dims();
    if (backend_ == Backend::automatic && work < kAutoMinMultiplyAdds) {
      if (trace) trace->add("backend", "cpu (automatic: small call)");
      cpu_->search(queries, n, k, params, kt, threads, out_indices, out_scores, trace, filter);
      return;
    }
    if (trace) trace->add("backend", "gpu").add("device", gpu_->context().info().name);
    gpu_->search(queries, n, k, filter, out_indices, out_scores);
  }

 private:
  std::unique_ptr<engine::Engine> cpu_;
  Backend backend_;
  std::unique_ptr<GpuSearch> gpu_;
};

}  // namespace

std::unique_ptr<engine::Engine> make_gpu_engine(std::unique_ptr<engine::Engine> cpu, const engine::Placement& placement,
                                                const kernels::KernelTable& kt) {
  return std::make_unique<GpuEngine>(std::move(cpu), placement, kt);
}

}  // namespace nndex::gpu
