#include "gpu/gpu_pipelines.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace nndex::gpu {

namespace {

constexpr std::uint32_t kScoreSpirv[] = {
#include "score_blocks.spv.inc"
};
constexpr std::uint32_t kMergeSpirv[] = {
#include "merge_lists.spv.inc"
};

Pipeline make_pipeline(const Context& ctx, std::span<const std::uint32_t> spirv, std::uint32_t bindings,
                       std::uint32_t push_bytes, const VkSpecializationInfo* specialization) {
  const VulkanApi& vk = ctx.vk();
  Pipeline p;
  std::vector<VkDescriptorSetLayoutBinding> b(bindings);
  for (std::uint32_t i = 0; i < bindings; ++i)
    b[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo sets{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  sets.bindingCount = bindings;
  sets.pBindings = b.data();
  check(vk.vkCreateDescriptorSetLayout(ctx.device(), &sets, nullptr, &p.sets), "descriptor layout creation");
  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
  VkPipelineLayoutCreateInfo layout{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &p.sets;
  layout.pushConstantRangeCount = 1;
  layout.pPushConstantRanges = &push;
  check(vk.vkCreatePipelineLayout(ctx.device(), &layout, nullptr, &p.layout), "pipeline layout creation");
  VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  module_info.codeSize = spirv.size_bytes();
  module_info.pCode = spirv.data();
  VkShaderModule module = VK_NULL_HANDLE;
  check(vk.vkCreateShaderModule(ctx.device(), &module_info, nullptr, &module), "shader loading");
  VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  info.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  info.stage.module = module;
  info.stage.pName = "main";
  info.stage.pSpecializationInfo = specialization;
  info.layout = p.layout;
  const VkResult r = vk.vkCreateComputePipelines(ctx.device(), VK_NULL_HANDLE, 1, &info, nullptr, &p.pipeline);
  vk.vkDestroyShaderModule(ctx.device(), module, nullptr);
  check(r, "shader compilation by the driver");
  return p;
}

void destroy(const Context& ctx, Pipeline& p) {
  const VulkanApi& vk = ctx.vk();
  if (p.pipeline != VK_NULL_HANDLE) vk.vkDestroyPipeline(ctx.device(), p.pipeline, nullptr);
  if (p.layout != VK_NULL_HANDLE) vk.vkDestroyPipelineLayout(ctx.device(), p.layout, nullptr);
  if (p.sets != VK_NULL_HANDLE) vk.vkDestroyDescriptorSetLayout(ctx.device(), p.sets, nullptr);
  p = {};
}

}  // namespace

Pipelines::Pipelines(const Context& context) : context_(context) {
  try {
    const std::uint32_t queries = kQueriesPerGroup;
    const VkSpecializationMapEntry entry{0, 0, sizeof(queries)};
    const VkSpecializationInfo spec{1, &entry, sizeof(queries), &queries};
    score_ = make_pipeline(context, kScoreSpirv, 4, sizeof(ScoreParams), &spec);
    merge_ = make_pipeline(context, kMergeSpirv, 2, sizeof(MergeParams), nullptr);
  } catch (...) {
    release();
    throw;
  }
}

Pipelines::~Pipelines() { release(); }

void Pipelines::release() {
  destroy(context_, score_);
  destroy(context_, merge_);
}

}  // namespace nndex::gpu
