// Where an index's exact float32 segments are searched: on the CPU, or also on a GPU (gpu/), which
// then holds a copy of their rows. Compressed, IVF and graph segments always search on the CPU.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "engine/engine.hpp"
#include "kernels/kernels.hpp"
#include "nndex/gpu.hpp"
#include "nndex/types.hpp"

namespace nndex::gpu {
class Context;
}

namespace nndex::engine {

struct Placement {
  Backend backend = Backend::cpu;              // as asked
  std::shared_ptr<const gpu::Context> device;  // the GPU in use; null: the CPU only
};

// Opens the device the options ask for. Backend::gpu throws GpuError when there is none (no GPU
// backend in this build, no Vulkan loader, no device, or `device` out of range); automatic takes the
// best hardware device or, with none (software devices are never taken), the CPU.
Placement resolve_placement(Backend backend, std::optional<std::size_t> device);

// `engine` on the placement's GPU when it is an exact float32 engine with rows and the placement has
// a device; otherwise `engine` itself.
std::unique_ptr<Engine> place(std::unique_ptr<Engine> engine, const Placement& placement, const kernels::KernelTable& kt);

// "cpu" or "gpu": where a search of an exact float32 index runs.
const char* backend_in_use(const Placement& placement);
std::optional<GpuDevice> device_of(const Placement& placement);

}  // namespace nndex::engine
