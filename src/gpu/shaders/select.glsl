// Shared by both kernels: a workgroup of 256 threads keeps the best `keep` of 1024 (score, row) pairs
// in shared memory, best first (higher score; on a tie, the lower row). Empty slots hold
// (-inf, 0xffffffff) and rank last.
//
// Bitonic top-k (Shanbhag, Pirk and Madden, 2018) rather than a full sort: runs of K slots (K = keep
// rounded up to a power of two) are sorted, alternately best first and worst first; then, while more
// than K slots are left, each pair of runs keeps the better of its entries position by position (the
// best K of the pair, in bitonic order), which halves the slots, and a bitonic merge sorts each run
// again. For k = 10 (K = 16) that is 8,144 compare-exchanges against a full sort's 28,160 (47
// barriers against 56); for keep = 1024 it is the full sort.
#define GROUP 256
#define SLOTS 1024
#define NO_ROW 0xffffffffu

shared float s_score[SLOTS];
shared uint s_row[SLOTS];

bool better(float sa, uint ra, float sb, uint rb) { return sa > sb || (sa == sb && ra < rb); }

// One stage of a bitonic network over slots [0, n): pairs `stride` apart, ordered best first where
// (i & size) == 0 and worst first elsewhere.
void compare_pairs(uint n, uint size, uint stride) {
  const uint t = gl_LocalInvocationID.x;
  for (uint pair = t; pair < n / 2u; pair += GROUP) {
    const uint i = 2u * stride * (pair / stride) + (pair % stride);
    const uint j = i + stride;
    const bool best_first = (i & size) == 0u;
    const bool swap_them = best_first ? better(s_score[j], s_row[j], s_score[i], s_row[i])
                                      : better(s_score[i], s_row[i], s_score[j], s_row[j]);
    if (swap_them) {
      const float sc = s_score[i];
      s_score[i] = s_score[j];
      s_score[j] = sc;
      const uint r = s_row[i];
      s_row[i] = s_row[j];
      s_row[j] = r;
    }
  }
}

// Slots [0, keep) end up holding the best `keep` entries, best first. `keep` must be the same for the
// whole workgroup (it is a push constant), so every thread meets every barrier.
void select_best(uint keep) {
  const uint t = gl_LocalInvocationID.x;
  uint run = 1u;
  while (run < keep) run <<= 1u;
  for (uint size = 2u; size <= run; size <<= 1u)
    for (uint stride = size >> 1u; stride > 0u; stride >>= 1u) {
      barrier();
      compare_pairs(SLOTS, size, stride);
    }
  for (uint n = SLOTS; n > run; n >>= 1u) {
    // Runs 2j (best first) and 2j+1 (worst first) -> run j: the better entry at each position.
    barrier();
    float best_score[SLOTS / 2 / GROUP];
    uint best_row[SLOTS / 2 / GROUP];
    uint c = 0u;
    for (uint e = t; e < n / 2u; e += GROUP, ++c) {
      const uint a = 2u * run * (e / run) + (e % run);
      const uint b = a + run;
      const bool take_b = better(s_score[b], s_row[b], s_score[a], s_row[a]);
      best_score[c] = take_b ? s_score[b] : s_score[a];
      best_row[c] = take_b ? s_row[b] : s_row[a];
    }
    barrier();  // every pair read before any slot is overwritten
    c = 0u;
    for (uint e = t; e < n / 2u; e += GROUP, ++c) {
      s_score[e] = best_score[c];
      s_row[e] = best_row[c];
    }
    for (uint stride = run >> 1u; stride > 0u; stride >>= 1u) {
      barrier();
      compare_pairs(n / 2u, run, stride);
    }
  }
  barrier();
}
