#include "gpu/vulkan_api.hpp"

#include <mutex>

#include "nndex/errors.hpp"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace nndex::gpu {

namespace {

void* open_loader(std::string& why) {
#if defined(_WIN32)
  HMODULE h = LoadLibraryA("vulkan-1.dll");
  if (h == nullptr) why = "the Vulkan loader (vulkan-1.dll) could not be loaded";
  return reinterpret_cast<void*>(h);
#else
#if defined(__APPLE__)
  const char* names[] = {"libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"};
#else
  const char* names[] = {"libvulkan.so.1", "libvulkan.so"};
#endif
  for (const char* name : names)
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
  why = std::string("the Vulkan loader (") + names[0] + ") is not installed";
  return nullptr;
#endif
}

void* symbol(void* lib, const char* name) {
#if defined(_WIN32)
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(lib), name));
#else
  return dlsym(lib, name);
#endif
}

}  // namespace

const VulkanApi* vulkan_api(std::string* why) {
  static std::once_flag once;
  static VulkanApi api;
  static std::string failure;
  static bool ok = false;
  std::call_once(once, [] {
    void* lib = open_loader(failure);  // kept open for the life of the process
    if (lib == nullptr) return;
    api.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(symbol(lib, "vkGetInstanceProcAddr"));
    if (api.vkGetInstanceProcAddr == nullptr) {
      failure = "the Vulkan loader has no vkGetInstanceProcAddr";
      return;
    }
    api.vkCreateInstance =
        reinterpret_cast<PFN_vkCreateInstance>(api.vkGetInstanceProcAddr(nullptr, "vkCreateInstance"));
    api.vkEnumerateInstanceVersion = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
        api.vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
    if (api.vkCreateInstance == nullptr) {
      failure = "the Vulkan loader has no vkCreateInstance";
      return;
    }
    ok = true;
  });
  if (!ok && why != nullptr) *why = failure;
  return ok ? &api : nullptr;
}

void VulkanApi::load_instance_functions(VkInstance instance) {
#define NNDEX_VK_LOAD(name)                                                                   \
  name = reinterpret_cast<PFN_##name>(vkGetInstanceProcAddr(instance, #name));                \
  if (name == nullptr) throw GpuError("nndex: the Vulkan loader lacks " #name " (Vulkan 1.1 is required)");
  NNDEX_VK_INSTANCE_FUNCTIONS(NNDEX_VK_LOAD)
#undef NNDEX_VK_LOAD
}

void VulkanApi::load_device_functions(VkDevice device) {
#define NNDEX_VK_LOAD(name)                                                                   \
  name = reinterpret_cast<PFN_##name>(vkGetDeviceProcAddr(device, #name));                    \
  if (name == nullptr) throw GpuError("nndex: the Vulkan driver lacks " #name);
  NNDEX_VK_DEVICE_FUNCTIONS(NNDEX_VK_LOAD)
#undef NNDEX_VK_LOAD
}

void check(VkResult result, const char* what) {
  if (result == VK_SUCCESS) return;
  if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY)
    throw GpuError(std::string("nndex: GPU out of memory during ") + what +
                   " (the index stays usable with backend=\"cpu\")");
  if (result == VK_ERROR_DEVICE_LOST) throw GpuError(std::string("nndex: the GPU device was lost during ") + what);
  throw GpuError(std::string("nndex: Vulkan call failed during ") + what + " (VkResult " + std::to_string(result) + ")");
}

}  // namespace nndex::gpu
