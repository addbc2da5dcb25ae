// One Vulkan device opened for compute: the process-wide instance and its device list, the logical
// device and queue shared by every index on that device, and device buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gpu/vulkan_api.hpp"
#include "nndex/gpu.hpp"

namespace nndex::gpu {

// Every Vulkan device, in the loader's order; empty when there is no loader or no device (`why`, if
// given, then says which).
std::vector<GpuDevice> list_devices(std::string* why = nullptr);

class Context;

enum class Memory { device, upload, readback };

// A buffer and its own memory; upload / readback buffers stay mapped.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Context& context, std::size_t bytes, Memory memory);
  Buffer(Buffer&& other) noexcept { swap(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    swap(other);
    return *this;
  }
  ~Buffer();

  VkBuffer handle() const { return buffer_; }
  std::size_t bytes() const { return bytes_; }
  void* mapped() const { return mapped_; }
  // Makes the device's writes visible to the host (a no-op on coherent memory).
  void invalidate() const;

 private:
  void swap(Buffer& other) noexcept;
  void release();
  const Context* context_ = nullptr;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
  std::size_t bytes_ = 0;
  bool coherent_ = true;
};

class Context {
 public:
  // The device `index` (GpuDevice::index) or, with none, the best hardware device (discrete, then
  // integrated, then virtual; a software device only when nothing else exists). Shared: every
  // index on one device uses one Context. Throws GpuError when the loader or the device is missing.
  static std::shared_ptr<Context> open(std::optional<std::size_t> index);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  const VulkanApi& vk() const { return vk_; }
  VkDevice device() const { return device_; }
  const GpuDevice& info() const { return info_; }
  std::size_t max_buffer_bytes() const { return max_buffer_bytes_; }
  std::size_t max_groups() const { return max_groups_; }  // workgroups per dispatch dimension
  std::size_t max_shared_bytes() const { return max_shared_bytes_; }
  // Index of a memory type for `memory` that `type_bits` allows; throws GpuError when there is none.
  std::uint32_t memory_type(std::uint32_t type_bits, Memory memory, bool* coherent) const;

  // Records with `record` into a fresh command buffer, submits it and waits for it. Calls from many
  // threads are serialised on the queue.
  template <class Record>
  void run(Record&& record) const {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    begin();
    record(command_buffer_);
    finish();
  }

 private:
  Context(VkPhysicalDevice physical, GpuDevice info);
  void begin() const;
  void finish() const;
  void release();

  VulkanApi vk_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer command_buffer_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties memory_{};
  GpuDevice info_;
  std::size_t max_buffer_bytes_ = 0;
  std::size_t max_groups_ = 0;
  std::size_t max_shared_bytes_ = 0;
  mutable std::mutex queue_mutex_;
};

}  // namespace nndex::gpu
