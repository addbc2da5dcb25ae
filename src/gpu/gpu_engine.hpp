// An exact float32 engine whose searches run on a GPU: it keeps the CPU engine (saving, merging,
// copying rows, and Backend::automatic's small calls) and a copy of the rows on the device.
#pragma once

#include <memory>

#include "engine/engine.hpp"
#include "engine/placement.hpp"

namespace nndex::gpu {

// Below this many multiply-adds a call under Backend::automatic stays on the CPU, where it takes
// well under a millisecond, less than a GPU submission's round trip. An estimate, not yet measured on
// a hardware GPU: bench/gpu_backend.py reports the crossover that should replace it.
inline constexpr std::size_t kAutoMinMultiplyAdds = std::size_t{1} << 24;

std::unique_ptr<engine::Engine> make_gpu_engine(std::unique_ptr<engine::Engine> cpu, const engine::Placement& placement,
                                                const kernels::KernelTable& kt);

}  // namespace nndex::gpu
