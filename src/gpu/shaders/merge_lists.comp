#version 450
// Later passes: each workgroup merges `per_group` lists of one query (sorted or not) into one list
// of their best `keep` entries, until few lists are left for the host.
#extension GL_GOOGLE_include_directive : require
#include "select.glsl"

layout(local_size_x = GROUP) in;

layout(std430, binding = 0) readonly buffer Input { uvec2 lists_in[]; };
layout(std430, binding = 1) writeonly buffer Output { uvec2 lists_out[]; };

layout(push_constant) uniform Params {
  uint lists_in_per_query;
  uint lists_out_per_query;
  uint keep;       // entries per list, in and out
  uint per_group;  // lists merged by one workgroup (per_group * keep <= 1024)
  uint query_base; // first query of workgroup y == 0
  uint group_base; // output list of workgroup x == 0
} p;

void main() {
  const uint t = gl_LocalInvocationID.x;
  const uint q = p.query_base + gl_WorkGroupID.y;
  const uint group = p.group_base + gl_WorkGroupID.x;
  const uint first_list = group * p.per_group;
  const uint lists = min(p.per_group, p.lists_in_per_query - first_list);
  const uint count = lists * p.keep;
  const uint in_base = (q * p.lists_in_per_query + first_list) * p.keep;
  for (uint s = t; s < SLOTS; s += GROUP) {
    const uvec2 e = s < count ? lists_in[in_base + s] : uvec2(0xff800000u, NO_ROW);
    s_score[s] = uintBitsToFloat(e.x);
    s_row[s] = e.y;
  }
  select_best(p.keep);
  const uint out_base = (q * p.lists_out_per_query + group) * p.keep;
  for (uint e = t; e < p.keep; e += GROUP) lists_out[out_base + e] = uvec2(floatBitsToUint(s_score[e]), s_row[e]);
}
