// The GPU backend (Vulkan compute): which devices there are, and whether this build has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nndex {

struct GpuDevice {
  std::size_t index = 0;       // what IndexOptions::gpu_device takes
  std::string name;            // "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string type;            // "discrete", "integrated", "virtual", "cpu" or "other"
  bool software = false;       // a CPU implementation (lavapipe, SwiftShader): never chosen by Backend::automatic
  std::uint64_t memory_bytes = 0;  // device-local heaps
  std::string driver;          // driver name and version, as the driver reports them
  std::string api_version;     // "1.3.230"
};

// True when this build of nndex has the GPU backend (its shaders were compiled); false builds raise
// GpuError for Backend::gpu and search on the CPU for Backend::automatic.
bool gpu_backend_built() noexcept;

// Every Vulkan device of this machine (empty without a Vulkan loader or device, or without the GPU
// backend in this build).
std::vector<GpuDevice> gpu_devices();

// Why Backend::gpu cannot run here ("" when it can): no GPU backend in this build, no Vulkan loader,
// or no device.
std::string gpu_unavailable_reason();

}  // namespace nndex
