// The two compute kernels (shaders/, compiled to SPIR-V at build time) made ready on one device.
#pragma once

#include <cstdint>

#include "gpu/gpu_context.hpp"

namespace nndex::gpu {

// Must match the kernels' push-constant blocks.
struct ScoreParams {
  std::uint32_t rows, dims4, queries, keep, first_block, group_base, query_base, filtered, lists_per_query;
};
struct MergeParams {
  std::uint32_t lists_in_per_query, lists_out_per_query, keep, per_group, query_base, group_base;
};

inline constexpr std::uint32_t kBlockRows = 1024;  // rows per workgroup of the scoring kernel (SLOTS)
inline constexpr std::uint32_t kMaxKeep = 1024;    // entries a list can hold
inline constexpr std::uint32_t kQueriesPerGroup = 4;

struct Pipeline {
  VkDescriptorSetLayout sets = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

class Pipelines {
 public:
  explicit Pipelines(const Context& context);
  Pipelines(const Pipelines&) = delete;
  Pipelines& operator=(const Pipelines&) = delete;
  ~Pipelines();

  const Pipeline& score() const { return score_; }  // bindings: matrix, queries, allowed, lists
  const Pipeline& merge() const { return merge_; }  // bindings: lists in, lists out

 private:
  void release();
  const Context& context_;
  Pipeline score_;
  Pipeline merge_;
};

}  // namespace nndex::gpu
