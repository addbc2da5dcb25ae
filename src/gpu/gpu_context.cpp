#include "gpu/gpu_context.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "nndex/errors.hpp"

namespace nndex::gpu {

namespace {

// The process's instance and its devices, created once and kept for the life of the process (an
// instance torn down during interpreter shutdown would race the drivers' own exit handlers).
struct InstanceState {
  VulkanApi vk;
  VkInstance instance = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> physical;
  std::vector<GpuDevice> devices;
  std::string why;  // set when there is no instance
};

std::string version_string(std::uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) + "." +
         std::to_string(VK_API_VERSION_PATCH(v));
}

GpuDevice describe(const VulkanApi& vk, VkPhysicalDevice physical, std::size_t index) {
  VkPhysicalDeviceProperties p{};
  vk.vkGetPhysicalDeviceProperties(physical, &p);
  VkPhysicalDeviceMemoryProperties m{};
  vk.vkGetPhysicalDeviceMemoryProperties(physical, &m);
  GpuDevice d;
  d.index = index;
  d.name = p.deviceName;
  switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: d.type = "discrete"; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: d.type = "integrated"; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: d.type = "virtual"; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: d.type = "cpu"; break;
    default: d.type = "other"; break;
  }
  d.software = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  for (std::uint32_t h = 0; h < m.memoryHeapCount; ++h)
    if (m.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) d.memory_bytes += m.memoryHeaps[h].size;
  d.api_version = version_string(p.apiVersion);
  d.driver = "vendor 0x" + [&] {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04x", p.vendorID);
    return std::string(buf);
  }() + ", driver version " + std::to_string(p.driverVersion);
  return d;
}

const InstanceState& instance_state() {
  static const InstanceState state = [] {
    InstanceState s;
    const VulkanApi* api = vulkan_api(&s.why);
    if (api == nullptr) return s;
    s.vk = *api;
    std::uint32_t version = VK_API_VERSION_1_0;
    if (s.vk.vkEnumerateInstanceVersion != nullptr) s.vk.vkEnumerateInstanceVersion(&version);
    if (version < VK_API_VERSION_1_1) {
      s.why = "the Vulkan loader supports only Vulkan " + version_string(version) + " (1.1 is required)";
      return s;
    }
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "nndex";
    app.pEngineName = "nndex";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    info.pApplicationInfo = &app;
    // MoltenVK and other portability drivers are listed only to instances that ask for them.
    const char* portability = "VK_KHR_portability_enumeration";
#if defined(__APPLE__)
    info.flags |= 0x00000001;  // VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR
    info.enabledExtensionCount = 1;
    info.ppEnabledExtensionNames = &portability;
#else
    (void)portability;
#endif
    if (s.vk.vkCreateInstance(&info, nullptr, &s.instance) != VK_SUCCESS) {
      s.why = "no Vulkan driver could create an instance (no Vulkan driver installed?)";
      s.instance = VK_NULL_HANDLE;
      return s;
    }
    try {
      s.vk.load_instance_functions(s.instance);
    } catch (const GpuError& e) {
      s.why = e.what();
      return s;
    }
    std::uint32_t count = 0;
    s.vk.vkEnumeratePhysicalDevices(s.instance, &count, nullptr);
    s.physical.resize(count);
    if (count > 0) s.vk.vkEnumeratePhysicalDevices(s.instance, &count, s.physical.data());
    s.physical.resize(count);
    for (std::size_t i = 0; i < s.physical.size(); ++i) {
      VkPhysicalDeviceProperties p{};
      s.vk.vkGetPhysicalDeviceProperties(s.physical[i], &p);
      s.devices.push_back(describe(s.vk, s.physical[i], i));
      if (p.apiVersion < VK_API_VERSION_1_1) s.devices.back().type += " (Vulkan 1.0 only: unusable)";
    }
    if (s.devices.empty()) s.why = "the Vulkan loader found no device";
    return s;
  }();
  return state;
}

// Discrete, then integrated, then virtual, then anything else; software last.
int preference(const GpuDevice& d) {
  if (d.software) return 4;
  if (d.type == "discrete") return 0;
  if (d.type == "integrated") return 1;
  if (d.type == "virtual") return 2;
  return 3;
}

}  // namespace

std::vector<GpuDevice> list_devices(std::string* why) {
  const InstanceState& s = instance_state();
  if (why != nullptr) *why = s.why;
  return s.devices;
}

std::shared_ptr<Context> Context::open(std::optional<std::size_t> index) {
  const InstanceState& s = instance_state();
  if (s.devices.empty()) throw GpuError("nndex: backend=\"gpu\" is unavailable: " + s.why);
  std::size_t chosen = 0;
  if (index) {
    if (*index >= s.devices.size())
      throw GpuError("nndex: gpu_device_index " + std::to_string(*index) + " is out of range (found " +
                     std::to_string(s.devices.size()) + " Vulkan device(s))");
    chosen = *index;
  } else {
    for (std::size_t i = 1; i < s.devices.size(); ++i)
      if (preference(s.devices[i]) < preference(s.devices[chosen])) chosen = i;
  }
  static std::mutex mutex;
  static std::map<std::size_t, std::weak_ptr<Context>> open_contexts;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto existing = open_contexts[chosen].lock()) return existing;
  std::shared_ptr<Context> context(new Context(s.physical[chosen], s.devices[chosen]));
  open_contexts[chosen] = context;
  return context;
}

Context::Context(VkPhysicalDevice physical, GpuDevice info) : physical_(physical), info_(std::move(info)) {
  const InstanceState& s = instance_state();
  vk_ = s.vk;
  VkPhysicalDeviceProperties props{};
  vk_.vkGetPhysicalDeviceProperties(physical, &props);
  if (props.apiVersion < VK_API_VERSION_1_1)
    throw GpuError("nndex: GPU device " + std::to_string(info_.index) + " (" + info_.name +
                   ") supports only Vulkan 1.0; 1.1 is required");
  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props2.pNext = &m3;
  vk_.vkGetPhysicalDeviceProperties2(physical, &props2);
  // One binding may not exceed either limit; 1 GiB keeps every allocation within what drivers grant.
  max_buffer_bytes_ = std::min<std::size_t>({props.limits.maxStorageBufferRange, m3.maxMemoryAllocationSize,
                                             std::size_t{1} << 30});
  max_groups_ = std::min(props.limits.maxComputeWorkGroupCount[0], props.limits.maxComputeWorkGroupCount[1]);
  max_shared_bytes_ = props.limits.maxComputeSharedMemorySize;
  vk_.vkGetPhysicalDeviceMemoryProperties(physical, &memory_);

  std::uint32_t families = 0;
  vk_.vkGetPhysicalDeviceQueueFamilyProperties(physical, &families, nullptr);
  std::vector<VkQueueFamilyProperties> fp(families);
  vk_.vkGetPhysicalDeviceQueueFamilyProperties(physical, &families, fp.data());
  bool found = false;
  for (std::uint32_t f = 0; f < families && !found; ++f)
    if (fp[f].queueFlags & VK_QUEUE_COMPUTE_BIT) queue_family_ = f, found = true;
  if (!found) throw GpuError("nndex: GPU device " + info_.name + " has no compute queue");

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo queue{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  queue.queueFamilyIndex = queue_family_;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &queue;
  check(vk_.vkCreateDevice(physical, &dci, nullptr, &device_), "device creation");
  try {
    vk_.load_device_functions(device_);
    vk_.vkGetDeviceQueue(device_, queue_family_, 0, &queue_);
    VkCommandPoolCreateInfo pool{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pool.queueFamilyIndex = queue_family_;
    check(vk_.vkCreateCommandPool(device_, &pool, nullptr, &pool_), "command pool creation");
    VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    alloc.commandPool = pool_;
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = 1;
    check(vk_.vkAllocateCommandBuffers(device_, &alloc, &command_buffer_), "command buffer allocation");
    VkFenceCreateInfo fence{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(vk_.vkCreateFence(device_, &fence, nullptr, &fence_), "fence creation");
  } catch (...) {
    release();
    throw;
  }
}

Context::~Context() { release(); }

void Context::release() {
  if (device_ == VK_NULL_HANDLE) return;
  if (vk_.vkDeviceWaitIdle) vk_.vkDeviceWaitIdle(device_);
  if (fence_ != VK_NULL_HANDLE) vk_.vkDestroyFence(device_, fence_, nullptr);
  if (pool_ != VK_NULL_HANDLE) vk_.vkDestroyCommandPool(device_, pool_, nullptr);
  vk_.vkDestroyDevice(device_, nullptr);
  device_ = VK_NULL_HANDLE;
}

std::uint32_t Context::memory_type(std::uint32_t type_bits, Memory memory, bool* coherent) const {
  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
  // Candidates in order of preference; the first a type satisfies wins.
  std::vector<VkMemoryPropertyFlags> wanted;
  if (memory == Memory::device) wanted = {VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0};
  else if (memory == Memory::upload) wanted = {host | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, host};
  else wanted = {host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                 host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, host | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, host};
  for (VkMemoryPropertyFlags flags : wanted)
    for (std::uint32_t t = 0; t < memory_.memoryTypeCount; ++t)
      if ((type_bits & (1u << t)) && (memory_.memoryTypes[t].propertyFlags & flags) == flags) {
        if (coherent) *coherent = memory_.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        return t;
      }
  throw GpuError("nndex: GPU device " + info_.name + " has no suitable memory type");
}

void Context::begin() const {
  check(vk_.vkResetCommandBuffer(command_buffer_, 0), "command buffer reset");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vk_.vkBeginCommandBuffer(command_buffer_, &begin), "command recording");
}

void Context::finish() const {
  check(vk_.vkEndCommandBuffer(command_buffer_), "command recording");
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &command_buffer_;
  check(vk_.vkResetFences(device_, 1, &fence_), "fence reset");
  check(vk_.vkQueueSubmit(queue_, 1, &submit, fence_), "queue submission");
  check(vk_.vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "waiting for the GPU");
}

Buffer::Buffer(const Context& context, std::size_t bytes, Memory memory) : context_(&context), bytes_(bytes) {
  const VulkanApi& vk = context.vk();
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = std::max<std::size_t>(bytes, 16);
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vk.vkCreateBuffer(context.device(), &info, nullptr, &buffer_), "buffer creation");
  VkMemoryRequirements req{};
  vk.vkGetBufferMemoryRequirements(context.device(), buffer_, &req);
  VkMemoryAllocateInfo alloc{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  alloc.allocationSize = req.size;
  try {
    alloc.memoryTypeIndex = context.memory_type(req.memoryTypeBits, memory, &coherent_);
    check(vk.vkAllocateMemory(context.device(), &alloc, nullptr, &memory_), "memory allocation");
    check(vk.vkBindBufferMemory(context.device(), buffer_, memory_, 0), "memory binding");
    if (memory != Memory::device)
      check(vk.vkMapMemory(context.device(), memory_, 0, VK_WHOLE_SIZE, 0, &mapped_), "memory mapping");
  } catch (...) {
    release();
    throw;
  }
}

Buffer::~Buffer() { release(); }

void Buffer::release() {
  if (context_ == nullptr) return;
  const VulkanApi& vk = context_->vk();
  if (buffer_ != VK_NULL_HANDLE) vk.vkDestroyBuffer(context_->device(), buffer_, nullptr);
  if (memory_ != VK_NULL_HANDLE) vk.vkFreeMemory(context_->device(), memory_, nullptr);  // unmaps too
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
}

void Buffer::invalidate() const {
  if (coherent_ || mapped_ == nullptr) return;
  VkMappedMemoryRange range{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
  range.memory = memory_;
  range.size = VK_WHOLE_SIZE;
  check(context_->vk().vkInvalidateMappedMemoryRanges(context_->device(), 1, &range), "reading GPU results");
}

void Buffer::swap(Buffer& other) noexcept {
  std::swap(context_, other.context_);
  std::swap(buffer_, other.buffer_);
  std::swap(memory_, other.memory_);
  std::swap(mapped_, other.mapped_);
  std::swap(bytes_, other.bytes_);
  std::swap(coherent_, other.coherent_);
}

}  // namespace nndex::gpu
