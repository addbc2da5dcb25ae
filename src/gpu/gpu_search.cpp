#include "gpu/gpu_search.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "nndex/errors.hpp"

namespace nndex::gpu {

namespace {

constexpr std::size_t kListBudgetBytes = std::size_t{256} << 20;  // per pass, for the blocks' lists
constexpr std::uint32_t kNoRow = 0xffffffffu;

struct Entry {
  std::uint32_t score_bits;
  std::uint32_t row;
};

void ensure(Buffer& buffer, const Context& ctx, std::size_t bytes, Memory memory) {
  if (buffer.handle() != VK_NULL_HANDLE && buffer.bytes() >= bytes) return;
  buffer = Buffer();  // free the old one first: device memory may not hold both
  buffer = Buffer(ctx, std::max<std::size_t>(bytes, 256), memory);
}

VkDescriptorSet allocate_set(const Context& ctx, VkDescriptorPool pool, const Pipeline& p,
                             std::initializer_list<const Buffer*> buffers) {
  const VulkanApi& vk = ctx.vk();
  VkDescriptorSetAllocateInfo alloc{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  alloc.descriptorPool = pool;
  alloc.descriptorSetCount = 1;
  alloc.pSetLayouts = &p.sets;
  VkDescriptorSet set = VK_NULL_HANDLE;
  check(vk.vkAllocateDescriptorSets(ctx.device(), &alloc, &set), "descriptor allocation");
  std::vector<VkDescriptorBufferInfo> infos;
  std::vector<VkWriteDescriptorSet> writes;
  infos.reserve(buffers.size());
  for (const Buffer* b : buffers) infos.push_back({b->handle(), 0, VK_WHOLE_SIZE});
  for (std::uint32_t i = 0; i < infos.size(); ++i) {
    VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    w.dstSet = set;
    w.dstBinding = i;
    w.descriptorCount = 1;
    w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    w.pBufferInfo = &infos[i];
    writes.push_back(w);
  }
  vk.vkUpdateDescriptorSets(ctx.device(), static_cast<std::uint32_t>(writes.size()), writes.data(), 0, nullptr);
  return set;
}

void barrier(const VulkanApi& vk, VkCommandBuffer cmd, VkPipelineStageFlags src, VkAccessFlags src_access,
             VkPipelineStageFlags dst, VkAccessFlags dst_access) {
  VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  b.srcAccessMask = src_access;
  b.dstAccessMask = dst_access;
  vk.vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &b, 0, nullptr, 0, nullptr);
}

// A descriptor pool for one call, destroyed with it.
struct CallPool {
  const Context& ctx;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  CallPool(const Context& c, std::uint32_t sets) : ctx(c) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * 4};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = sets;
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    check(ctx.vk().vkCreateDescriptorPool(ctx.device(), &info, nullptr, &pool), "descriptor pool creation");
  }
  ~CallPool() { ctx.vk().vkDestroyDescriptorPool(ctx.device(), pool, nullptr); }
};

bool better(const Entry& a, const Entry& b) {
  float sa, sb;
  std::memcpy(&sa, &a.score_bits, 4);
  std::memcpy(&sb, &b.score_bits, 4);
  return sa > sb || (sa == sb && a.row < b.row);
}

}  // namespace

GpuSearch::GpuSearch(std::shared_ptr<const Context> context, const float* rows, std::size_t n, std::size_t dims,
                     std::size_t max_part_bytes)
    : context_(std::move(context)),
      dims_(dims),
      matrix_(*context_, rows, n, dims, max_part_bytes),
      pipelines_(*context_) {}

void GpuSearch::search(const float* queries, std::size_t n, std::size_t k, const core::RowFilter* filter,
                       std::int64_t* out_rows, float* out_scores) const {
  const std::size_t allowed = filter != nullptr ? filter->count() : matrix_.rows();
  const std::size_t width = std::min(k, allowed);
  if (n == 0 || width == 0) return;
  const std::size_t keep = std::min<std::size_t>(width, kMaxKeep);
  const std::size_t list_bytes = matrix_.blocks() * keep * sizeof(Entry);
  const std::size_t budget = std::min(kListBudgetBytes, context_->max_buffer_bytes());
  if (list_bytes > budget)
    throw GpuError("nndex: k = " + std::to_string(k) + " over " + std::to_string(matrix_.rows()) +
                   " rows needs more GPU list memory per query than one buffer binds; use a smaller k or backend=\"cpu\"");
  const std::size_t per_pass = std::clamp<std::size_t>(budget / list_bytes, 1, n);
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t q0 = 0; q0 < n; q0 += per_pass) {
    const std::size_t m = std::min(per_pass, n - q0);
    run_pass(queries + q0 * dims_, m, width, filter, out_rows + q0 * width, out_scores + q0 * width);
  }
}

void GpuSearch::run_pass(const float* queries, std::size_t n, std::size_t width, const core::RowFilter* filter,
                         std::int64_t* out_rows, float* out_scores) const {
  const Context& ctx = *context_;
  const VulkanApi& vk = ctx.vk();
  const std::size_t dims4 = matrix_.dims4();
  const std::uint32_t keep = static_cast<std::uint32_t>(std::min<std::size_t>(width, kMaxKeep));
  const std::size_t blocks = matrix_.blocks();
  Scratch& s = scratch_;

  ensure(s.queries, ctx, n * dims4 * 4 * sizeof(float), Memory::upload);
  auto* q = static_cast<float*>(s.queries.mapped());
  std::memset(q, 0, n * dims4 * 4 * sizeof(float));
  for (std::size_t i = 0; i < n; ++i) std::memcpy(q + i * dims4 * 4, queries + i * dims_, dims_ * sizeof(float));
  const std::size_t filter_bytes = filter != nullptr ? filter->words().size() * sizeof(std::uint64_t) : 0;
  ensure(s.allowed, ctx, filter_bytes, Memory::upload);
  if (filter != nullptr) std::memcpy(s.allowed.mapped(), filter->words().data(), filter_bytes);  // little-endian bits
  ensure(s.lists_a, ctx, n * blocks * keep * sizeof(Entry), Memory::device);
  const std::uint32_t per_group = kMaxKeep / keep;
  ensure(s.lists_b, ctx, per_group >= 2 && blocks > 1 ? n * ((blocks + 1) / 2) * keep * sizeof(Entry) : 16, Memory::device);

  CallPool pool(ctx, static_cast<std::uint32_t>(matrix_.parts().size() + 2));
  std::vector<VkDescriptorSet> score_sets;
  for (const MatrixPart& part : matrix_.parts())
    score_sets.push_back(allocate_set(ctx, pool.pool, pipelines_.score(), {&part.buffer, &s.queries, &s.allowed, &s.lists_a}));
  const VkDescriptorSet a_to_b = allocate_set(ctx, pool.pool, pipelines_.merge(), {&s.lists_a, &s.lists_b});
  const VkDescriptorSet b_to_a = allocate_set(ctx, pool.pool, pipelines_.merge(), {&s.lists_b, &s.lists_a});

  std::size_t lists = blocks;
  bool in_a = true;
  const std::size_t max_groups = ctx.max_groups();
  ctx.run([&](VkCommandBuffer cmd) {
    barrier(vk, cmd, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT);
    const Pipeline& score = pipelines_.score();
    vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, score.pipeline);
    const std::size_t query_groups = (n + kQueriesPerGroup - 1) / kQueriesPerGroup;
    for (std::size_t p = 0; p < matrix_.parts().size(); ++p) {
      const MatrixPart& part = matrix_.parts()[p];
      vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, score.layout, 0, 1, &score_sets[p], 0, nullptr);
      for (std::size_t gy = 0; gy < query_groups; gy += max_groups)
        for (std::size_t gx = 0; gx < part.blocks; gx += max_groups) {
          const ScoreParams params{static_cast<std::uint32_t>(matrix_.rows()), static_cast<std::uint32_t>(dims4),
                                   static_cast<std::uint32_t>(n), keep, static_cast<std::uint32_t>(part.first_block),
                                   static_cast<std::uint32_t>(gx), static_cast<std::uint32_t>(gy * kQueriesPerGroup),
                                   filter != nullptr ? 1u : 0u, static_cast<std::uint32_t>(blocks)};
          vk.vkCmdPushConstants(cmd, score.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof params, &params);
          vk.vkCmdDispatch(cmd, static_cast<std::uint32_t>(std::min(max_groups, part.blocks - gx)),
                           static_cast<std::uint32_t>(std::min(max_groups, query_groups - gy)), 1);
        }
    }
    const Pipeline& merge = pipelines_.merge();
    if (per_group >= 2 && lists > 1) vk.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, merge.pipeline);
    while (per_group >= 2 && lists > 1) {
      barrier(vk, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
      const std::size_t out = (lists + per_group - 1) / per_group;
      vk.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, merge.layout, 0, 1, in_a ? &a_to_b : &b_to_a, 0,
                                 nullptr);
      for (std::size_t gy = 0; gy < n; gy += max_groups)
        for (std::size_t gx = 0; gx < out; gx += max_groups) {
          const MergeParams params{static_cast<std::uint32_t>(lists), static_cast<std::uint32_t>(out), keep, per_group,
                                   static_cast<std::uint32_t>(gy), static_cast<std::uint32_t>(gx)};
          vk.vkCmdPushConstants(cmd, merge.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof params, &params);
          vk.vkCmdDispatch(cmd, static_cast<std::uint32_t>(std::min(max_groups, out - gx)),
                           static_cast<std::uint32_t>(std::min(max_groups, n - gy)), 1);
        }
      lists = out;
      in_a = !in_a;
    }
    const std::size_t result_bytes = n * lists * keep * sizeof(Entry);
    ensure(s.readback, ctx, result_bytes, Memory::readback);
    barrier(vk, cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_TRANSFER_READ_BIT);
    const VkBufferCopy region{0, 0, result_bytes};
    vk.vkCmdCopyBuffer(cmd, (in_a ? s.lists_a : s.lists_b).handle(), s.readback.handle(), 1, &region);
    barrier(vk, cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
            VK_ACCESS_HOST_READ_BIT);
  });
  s.readback.invalidate();

  const auto* entries = static_cast<const Entry*>(s.readback.mapped());
  std::vector<Entry> merged;
  for (std::size_t i = 0; i < n; ++i) {
    const Entry* e = entries + i * lists * keep;
    const Entry* best = e;
    if (lists > 1) {  // k > 512 (lists of the blocks themselves), or one merge round short
      merged.clear();
      for (std::size_t j = 0; j < lists * keep; ++j)
        if (e[j].row != kNoRow) merged.push_back(e[j]);
      if (merged.size() < width) throw GpuError("nndex: the GPU returned fewer results than rows allowed");
      std::partial_sort(merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(width), merged.end(), better);
      best = merged.data();
    }
    for (std::size_t j = 0; j < width; ++j) {
      if (best[j].row == kNoRow) throw GpuError("nndex: the GPU returned fewer results than rows allowed");
      out_rows[i * width + j] = best[j].row;
      std::memcpy(&out_scores[i * width + j], &best[j].score_bits, sizeof(float));
    }
  }
}

}  // namespace nndex::gpu
