// The Vulkan entry points the GPU backend calls, loaded from the system's loader at run time
// (dlopen), so nndex links and runs on machines without Vulkan and only backend="gpu" needs it.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace nndex::gpu {

// X(name): every function used, resolved through vkGetInstanceProcAddr / vkGetDeviceProcAddr.
#define NNDEX_VK_INSTANCE_FUNCTIONS(X)                                                                       \
  X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)                        \
  X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceMemoryProperties)                                   \
  X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkCreateDevice) X(vkGetDeviceProcAddr)

#define NNDEX_VK_DEVICE_FUNCTIONS(X)                                                                        \
  X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkQueueSubmit) X(vkQueueWaitIdle) X(vkDeviceWaitIdle)            \
  X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements) X(vkAllocateMemory) X(vkFreeMemory)  \
  X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory) X(vkInvalidateMappedMemoryRanges)                    \
  X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout)                            \
  X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout)                       \
  X(vkCreateComputePipelines) X(vkDestroyPipeline) X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool)      \
  X(vkResetDescriptorPool) X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets) X(vkCreateCommandPool)      \
  X(vkDestroyCommandPool) X(vkAllocateCommandBuffers) X(vkResetCommandBuffer) X(vkBeginCommandBuffer)        \
  X(vkEndCommandBuffer) X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdPushConstants)                \
  X(vkCmdDispatch) X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer) X(vkCreateFence) X(vkDestroyFence)             \
  X(vkResetFences) X(vkWaitForFences)

struct VulkanApi {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  PFN_vkCreateInstance vkCreateInstance = nullptr;
  PFN_vkEnumerateInstanceVersion vkEnumerateInstanceVersion = nullptr;
#define NNDEX_VK_MEMBER(name) PFN_##name name = nullptr;
  NNDEX_VK_INSTANCE_FUNCTIONS(NNDEX_VK_MEMBER)
  NNDEX_VK_DEVICE_FUNCTIONS(NNDEX_VK_MEMBER)
#undef NNDEX_VK_MEMBER

  void load_instance_functions(VkInstance instance);
  void load_device_functions(VkDevice device);
};

// The process's loader, opened on first use; null (with `why` set) when none can be opened.
const VulkanApi* vulkan_api(std::string* why);

// Throws GpuError naming `what` when `result` is not VK_SUCCESS.
void check(VkResult result, const char* what);

}  // namespace nndex::gpu
