// Shared by both kernels: a workgroup of 256 threads sorts 1024 (score, row) pairs in shared memory,
// best first (higher score; on a tie, the lower row), with a bitonic network. Empty slots hold
// (-inf, 0xffffffff) and sort last.
#define GROUP 256
#define SLOTS 1024
#define NO_ROW 0xffffffffu

shared float s_score[SLOTS];
shared uint s_row[SLOTS];

bool better(float sa, uint ra, float sb, uint rb) { return sa > sb || (sa == sb && ra < rb); }

void sort_slots() {
  const uint t = gl_LocalInvocationID.x;
  for (uint size = 2u; size <= SLOTS; size <<= 1u) {
    for (uint stride = size >> 1u; stride > 0u; stride >>= 1u) {
      barrier();
      for (uint pair = t; pair < SLOTS / 2u; pair += GROUP) {
        const uint i = 2u * stride * (pair / stride) + (pair % stride);
        const uint j = i + stride;
        // Within each `size` run, the first half is ordered best first and the second worst first,
        // so every run of the next size is bitonic; the last run (size == SLOTS) ends best first.
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
  }
  barrier();
}
