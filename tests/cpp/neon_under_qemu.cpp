// NEON kernels vs scalar, cross-compiled for AArch64 and run under qemu-aarch64 (registered only where
// aarch64-linux-gnu-g++ and qemu-aarch64 exist): the x86 build machines cannot run NEON natively.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include "kernels/kernels.hpp"
using namespace nndex::kernels;
int main() {
  const KernelTable& s = scalar_table();
  const KernelTable& n = neon_table();
  std::mt19937 rng(3); std::uniform_real_distribution<float> u(-1, 1);
  int bad = 0, checks = 0;
  for (size_t dims : {1, 3, 15, 17, 48, 100, 768}) for (size_t nb : {1, 2, 3, 5}) for (size_t nq = 1; nq <= 6; ++nq) {
    float* tiles = static_cast<float*>(aligned_alloc(64, nb * dims * 16 * 4 + 64));
    for (size_t i = 0; i < nb * dims * 16; ++i) tiles[i] = u(rng);
    std::vector<float> q(nq * dims); for (auto& v : q) v = u(rng);
    std::vector<float> a(nq * nb * 16), b(nq * nb * 16);
    s.score_tiles(tiles, nb, dims, q.data(), nq, a.data(), nb * 16);
    n.score_tiles(tiles, nb, dims, q.data(), nq, b.data(), nb * 16);
    ++checks; if (memcmp(a.data(), b.data(), a.size() * 4) != 0) { ++bad; printf("score mismatch d=%zu nb=%zu nq=%zu\n", dims, nb, nq); }
    uint32_t p1[1024 + kSelectSlack], p2[1024 + kSelectSlack];
    size_t c1 = s.select_above(a.data(), nb * 16, 0.1f, p1), c2 = n.select_above(a.data(), nb * 16, 0.1f, p2);
    ++checks; if (c1 != c2 || memcmp(p1, p2, c1 * 4) != 0) { ++bad; printf("select mismatch\n"); }
    float d1 = s.dot(q.data(), q.data(), dims), d2 = n.dot(q.data(), q.data(), dims);
    ++checks; if (std::abs(d1 - d2) > 1e-4f * dims) { ++bad; printf("dot mismatch %g %g\n", d1, d2); }
    free(tiles);
  }
  printf("%d/%d checks passed\n", checks - bad, checks);
  return bad != 0;
}
