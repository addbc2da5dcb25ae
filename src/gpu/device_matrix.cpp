#include "gpu/device_matrix.hpp"

#include <algorithm>
#include <cstring>

#include "gpu/gpu_pipelines.hpp"
#include "nndex/errors.hpp"

namespace nndex::gpu {

namespace {
constexpr std::size_t kStagingBytes = std::size_t{64} << 20;
}

std::size_t DeviceMatrix::block_bytes() const { return dims4_ * kBlockRows * 4 * sizeof(float); }

DeviceMatrix::DeviceMatrix(const Context& context, const float* rows, std::size_t n, std::size_t dims,
                           std::size_t max_part_bytes)
    : rows_(n), dims_(dims), dims4_((dims + 3) / 4), blocks_((n + kBlockRows - 1) / kBlockRows) {
  if (n >= 0xffffffffu)
    throw GpuError("nndex: the GPU backend holds at most 4294967294 rows per segment, got " + std::to_string(n));
  const std::size_t limit = max_part_bytes != 0 ? std::min(max_part_bytes, context.max_buffer_bytes())
                                                : context.max_buffer_bytes();
  if (block_bytes() > limit || block_bytes() > kStagingBytes)
    throw GpuError("nndex: " + std::to_string(dims) + " dims do not fit the GPU's buffers (a block of 1024 rows takes " +
                   std::to_string(block_bytes()) + " bytes, the device binds at most " + std::to_string(limit) + ")");
  const std::size_t blocks_per_part = limit / block_bytes();
  const std::size_t blocks_per_stage = kStagingBytes / block_bytes();
  Buffer staging(context, std::min(blocks_per_stage, blocks_) * block_bytes(), Memory::upload);
  auto* out = static_cast<float*>(staging.mapped());
  const VulkanApi& vk = context.vk();
  for (std::size_t first = 0; first < blocks_; first += blocks_per_part) {
    MatrixPart part;
    part.first_block = first;
    part.blocks = std::min(blocks_per_part, blocks_ - first);
    part.buffer = Buffer(context, part.blocks * block_bytes(), Memory::device);
    for (std::size_t b0 = 0; b0 < part.blocks; b0 += blocks_per_stage) {
      const std::size_t nb = std::min(blocks_per_stage, part.blocks - b0);
      std::memset(out, 0, nb * block_bytes());
      for (std::size_t b = 0; b < nb; ++b) {
        float* block = out + b * block_bytes() / sizeof(float);
        const std::size_t row0 = (first + b0 + b) * kBlockRows;
        const std::size_t count = row0 < n ? std::min<std::size_t>(kBlockRows, n - row0) : 0;
        for (std::size_t r = 0; r < count; ++r) {
          const float* src = rows + (row0 + r) * dims;
          for (std::size_t d = 0; d < dims; ++d) block[((d / 4) * kBlockRows + r) * 4 + d % 4] = src[d];
        }
      }
      context.run([&](VkCommandBuffer cmd) {
        const VkBufferCopy region{0, b0 * block_bytes(), nb * block_bytes()};
        vk.vkCmdCopyBuffer(cmd, staging.handle(), part.buffer.handle(), 1, &region);
      });
    }
    parts_.push_back(std::move(part));
  }
}

}  // namespace nndex::gpu
