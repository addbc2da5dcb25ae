#include "engine/placement.hpp"

#include "nndex/errors.hpp"
#include "nndex/gpu.hpp"

#if defined(NNDEX_HAS_GPU)
#include "gpu/gpu_context.hpp"
#include "gpu/gpu_engine.hpp"
#endif

namespace nndex {

#if defined(NNDEX_HAS_GPU)
bool gpu_backend_built() noexcept { return true; }
std::vector<GpuDevice> gpu_devices() { return gpu::list_devices(); }
std::string gpu_unavailable_reason() {
  std::string why;
  return gpu::list_devices(&why).empty() ? why : std::string();
}
#else
bool gpu_backend_built() noexcept { return false; }
std::vector<GpuDevice> gpu_devices() { return {}; }
std::string gpu_unavailable_reason() {
  return "this build of nndex has no GPU backend (it was built without glslc or the Vulkan headers)";
}
#endif

namespace engine {

Placement resolve_placement(Backend backend, std::optional<std::size_t> device) {
  Placement p;
  p.backend = backend;
  if (backend == Backend::cpu) return p;
#if defined(NNDEX_HAS_GPU)
  if (backend == Backend::gpu) {
    p.device = gpu::Context::open(device);
    return p;
  }
  // automatic: a hardware device only.
  const std::vector<GpuDevice> devices = gpu::list_devices();
  if (device) {
    if (*device < devices.size() && !devices[*device].software) p.device = gpu::Context::open(device);
    else if (*device >= devices.size()) p.device = gpu::Context::open(device);  // the out-of-range error
    return p;
  }
  for (const GpuDevice& d : devices)
    if (!d.software) {
      p.device = gpu::Context::open(std::nullopt);
      break;
    }
  return p;
#else
  (void)device;
  if (backend == Backend::gpu) throw GpuError("nndex: backend=\"gpu\" is unavailable: " + gpu_unavailable_reason());
  return p;
#endif
}

std::unique_ptr<Engine> place(std::unique_ptr<Engine> engine, const Placement& placement, const kernels::KernelTable& kt) {
  if (placement.device == nullptr || engine == nullptr || engine->exact_tiles() == nullptr || engine->rows() == 0)
    return engine;
#if defined(NNDEX_HAS_GPU)
  return gpu::make_gpu_engine(std::move(engine), placement, kt);
#else
  (void)kt;
  return engine;
#endif
}

const char* backend_in_use(const Placement& placement) { return placement.device != nullptr ? "gpu" : "cpu"; }

std::optional<GpuDevice> device_of(const Placement& placement) {
#if defined(NNDEX_HAS_GPU)
  if (placement.device != nullptr) return placement.device->info();
#else
  (void)placement;
#endif
  return std::nullopt;
}

}  // namespace engine
}  // namespace nndex
