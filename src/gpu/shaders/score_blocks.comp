#version 450
// Pass 1: each workgroup scores one block of 1024 rows against QUERIES queries and writes each
// query's best `keep` rows of the block, best first (select.glsl), to its list in `lists`.
// The block is stored column-major in vec4s (block[c * 1024 + r] holds dims 4c..4c+3 of row r), so
// neighbouring threads read neighbouring addresses.
#extension GL_GOOGLE_include_directive : require
#include "select.glsl"

layout(local_size_x = GROUP) in;
layout(constant_id = 0) const uint QUERIES = 4;

layout(std430, binding = 0) readonly buffer Matrix { vec4 matrix[]; };
layout(std430, binding = 1) readonly buffer Queries { vec4 queries[]; };  // query q, column c: [q * dims4 + c]
layout(std430, binding = 2) readonly buffer Allowed { uint allowed[]; };  // bit per row of the segment
layout(std430, binding = 3) writeonly buffer Lists { uvec2 lists[]; };    // (score bits, row)

layout(push_constant) uniform Params {
  uint rows;         // rows of the segment
  uint dims4;        // vec4 columns per row
  uint queries;      // queries of this pass
  uint keep;         // entries per list (<= 1024)
  uint first_block;  // segment block of this buffer's block 0
  uint group_base;   // block of this buffer scored by workgroup x == 0
  uint query_base;   // first query (of this pass) of workgroup y == 0
  uint filtered;     // 1: only rows whose `allowed` bit is set
  uint lists_per_query;
} p;

void main() {
  const uint t = gl_LocalInvocationID.x;
  const uint block = p.group_base + gl_WorkGroupID.x;  // within this buffer
  const uint segment_block = p.first_block + block;
  const uint q0 = p.query_base + gl_WorkGroupID.y * QUERIES;
  float acc[QUERIES][4];
  for (uint j = 0u; j < QUERIES; ++j)
    for (uint i = 0u; i < 4u; ++i) acc[j][i] = 0.0;
  const uint base = block * p.dims4 * SLOTS;
  for (uint c = 0u; c < p.dims4; ++c) {
    vec4 r[4];
    for (uint i = 0u; i < 4u; ++i) r[i] = matrix[base + c * SLOTS + t + i * GROUP];
    for (uint j = 0u; j < QUERIES; ++j) {
      const vec4 q = queries[min(q0 + j, p.queries - 1u) * p.dims4 + c];
      for (uint i = 0u; i < 4u; ++i) acc[j][i] = fma(r[i].x, q.x, fma(r[i].y, q.y, fma(r[i].z, q.z, fma(r[i].w, q.w, acc[j][i]))));
    }
  }
  for (uint j = 0u; j < QUERIES; ++j) {
    const uint q = q0 + j;
    if (q >= p.queries) break;  // the same for every thread of the group: no barrier is skipped by some only
    for (uint i = 0u; i < 4u; ++i) {
      const uint slot = t + i * GROUP;
      const uint row = segment_block * SLOTS + slot;
      bool ok = row < p.rows;
      if (ok && p.filtered != 0u) ok = ((allowed[row >> 5u] >> (row & 31u)) & 1u) != 0u;
      s_score[slot] = ok ? acc[j][i] : uintBitsToFloat(0xff800000u);
      s_row[slot] = ok ? row : NO_ROW;
    }
    select_best(p.keep);
    const uint out_base = (q * p.lists_per_query + segment_block) * p.keep;
    for (uint e = t; e < p.keep; e += GROUP) lists[out_base + e] = uvec2(floatBitsToUint(s_score[e]), s_row[e]);
    barrier();
  }
}
