// NEON kernels vs scalar, cross-compiled for AArch64 and run under qemu-aarch64 (registered only where
// aarch64-linux-gnu-g++ and qemu-aarch64 exist): the x86 build machines cannot run NEON natively.
// Float32 tiles, then every NEON compressed-row table (baseline and dot) against the scalar reference.
#include <sys/auxv.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include "kernels/code_kernels.hpp"
#include "kernels/kernels.hpp"
using namespace nndex::kernels;

namespace {

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// Zeroed, 64-byte aligned (the layout's line size), freed at scope exit.
template <class T>
struct Buf {
  T* p;
  explicit Buf(size_t n) : p(static_cast<T*>(aligned_alloc(64, round_up(n * sizeof(T) + 1, 64)))) {
    memset(p, 0, round_up(n * sizeof(T) + 1, 64));
  }
  ~Buf() { free(p); }
  T& operator[](size_t i) { return p[i]; }
};

constexpr float kSentinel = -7777.0f;  // score columns past the rows must stay untouched

// Compares the scored rows (bitwise, or within tol[] when given) and checks the padding columns.
bool same_scores(const float* ref, const float* got, size_t nq, size_t rows, size_t stride, const double* tol) {
  for (size_t q = 0; q < nq; ++q) {
    for (size_t r = 0; r < rows; ++r) {
      const size_t i = q * stride + r;
      const bool ok = tol ? std::fabs(double(ref[i]) - double(got[i])) <= tol[i] : memcmp(&ref[i], &got[i], 4) == 0;
      if (!ok) { printf("  q=%zu r=%zu: %.9g vs %.9g\n", q, r, ref[i], got[i]); return false; }
    }
    for (size_t r = rows; r < stride; ++r)
      if (got[q * stride + r] != kSentinel) { printf("  q=%zu wrote past the rows (col %zu)\n", q, r); return false; }
  }
  return true;
}

// One (dims, blocks, nq) case per table: random rows (zero codes past dims), queries padded
// to the aligned stride and to round_up(nq, 16) rows as code_kernels.hpp requires, a score stride with
// spare columns. bf16: the baseline is bit-identical by construction (same fma order), BFDOT within
// float32 rounding of sum |row * query|; int8 always bitwise.
int check_codes(std::mt19937& rng, int& checks) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int bad = 0;
  const Bf16Kernels* bf[] = {bf16_for(CodeIsa::neon), bf16_for(CodeIsa::neon_dot)};
  const Int8Kernels* i8[] = {int8_for(CodeIsa::neon), int8_for(CodeIsa::neon_dot)};
  for (size_t dims : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 48, 100, 127, 768, 1000, 1536})
    for (size_t nb : {1, 3})
      for (size_t nq = 1; nq <= 6; ++nq) {
        const size_t rows = nb * kBlockRows, score_stride = rows + 16, qrows = round_up(nq, 16);
        const size_t nscores = round_up(nq, kScoreRowAlign) * score_stride;
        // bf16
        {
          const size_t lines = (dims + 1) / 2, line_elems = kCodeLineBytes / 2;
          const size_t stride = round_up(dims, kBf16QueryAlign) + (nq % 2 ? kBf16QueryAlign : 0);
          Buf<uint16_t> blocks(nb * lines * line_elems + kCodeSlackBytes / 2), q(qrows * stride);
          Buf<double> tol(nscores);
          for (size_t b = 0; b < nb; ++b)
            for (size_t l = 0; l < lines; ++l)
              for (size_t r = 0; r < kBlockRows; ++r)
                for (size_t i = 0; i < 2; ++i)
                  if (2 * l + i < dims) blocks[(b * lines + l) * line_elems + 2 * r + i] = to_bf16(u(rng));
          for (size_t m = 0; m < nq; ++m)
            for (size_t j = 0; j < dims; ++j) q[m * stride + j] = to_bf16(u(rng));
          for (size_t m = 0; m < nq; ++m)
            for (size_t row = 0; row < rows; ++row) {
              double abs = 0;
              const size_t b = row / kBlockRows, r = row % kBlockRows;
              for (size_t j = 0; j < dims; ++j)
                abs += std::fabs(double(from_bf16(blocks[(b * lines + j / 2) * line_elems + 2 * r + j % 2])) *
                                 from_bf16(q[m * stride + j]));
              tol[m * score_stride + row] = 4.0 * lines * std::ldexp(abs, -23) + 1e-30;
            }
          Buf<float> ref(nscores), got(nscores);
          for (size_t i = 0; i < nscores; ++i) ref[i] = kSentinel;
          bf16_scalar_table().few(blocks.p, nb, lines, q.p, stride, nq, ref.p, score_stride);
          for (const Bf16Kernels* t : bf) {
            if (t == nullptr) continue;
            for (ScoreBf16Fn fn : {t->few, t->many}) {
              for (size_t i = 0; i < nscores; ++i) got[i] = kSentinel;
              fn(blocks.p, nb, lines, q.p, stride, nq, got.p, score_stride);
              ++checks;
              if (!same_scores(ref.p, got.p, nq, rows, score_stride, t->level == CodeIsa::neon ? nullptr : tol.p)) {
                ++bad;
                printf("%s bf16 mismatch d=%zu nb=%zu nq=%zu\n", t->name, dims, nb, nq);
              }
            }
          }
        }
        // int8: stored = code + 128 (zero codes, 128, past dims); offsets as storage computes them, and
        // for odd nq one arbitrary offset, since the kernels must follow the formula for any value.
        {
          const size_t lines = (dims + 3) / 4;
          const size_t stride = round_up(dims, kInt8QueryAlign) + (nq % 2 ? kInt8QueryAlign : 0);
          Buf<uint8_t> blocks(nb * lines * kCodeLineBytes + kCodeSlackBytes);
          Buf<int8_t> q(qrows * stride);
          Buf<float> scales(rows);
          Buf<int32_t> offsets(qrows);
          for (size_t b = 0; b < nb; ++b)
            for (size_t l = 0; l < lines; ++l)
              for (size_t r = 0; r < kBlockRows; ++r)
                for (size_t i = 0; i < 4; ++i)
                  blocks[(b * lines + l) * kCodeLineBytes + 4 * r + i] = 4 * l + i < dims ? byte(rng) : 128;
          for (size_t r = 0; r < rows; ++r) scales[r] = std::fabs(u(rng)) + 1e-3f;
          for (size_t m = 0; m < nq; ++m) {
            int32_t sum = 0;
            for (size_t j = 0; j < dims; ++j) sum += q[m * stride + j] = static_cast<int8_t>(byte(rng) - 128);
            offsets[m] = 128 * sum + (nq % 2 && m == nq - 1 ? 12345 : 0);
          }
          Buf<float> ref(nscores), got(nscores);
          for (size_t i = 0; i < nscores; ++i) ref[i] = kSentinel;
          int8_scalar_table().few(blocks.p, scales.p, nb, lines, q.p, offsets.p, stride, nq, ref.p, score_stride);
          for (const Int8Kernels* t : i8) {
            if (t == nullptr) continue;
            for (ScoreInt8Fn fn : {t->few, t->many}) {
              for (size_t i = 0; i < nscores; ++i) got[i] = kSentinel;
              fn(blocks.p, scales.p, nb, lines, q.p, offsets.p, stride, nq, got.p, score_stride);
              ++checks;
              if (!same_scores(ref.p, got.p, nq, rows, score_stride, nullptr)) {
                ++bad;
                printf("%s int8 mismatch d=%zu nb=%zu nq=%zu\n", t->name, dims, nb, nq);
              }
            }
          }
        }
      }
  return bad;
}

// Under qemu (default CPU `max`) both dot extensions are present, so every table above must have run.
int check_code_tables(int& checks) {
  const bool dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0, bf16 = (getauxval(AT_HWCAP2) & (1ul << 14)) != 0;
  printf("HWCAP asimddp=%d, HWCAP2 bf16=%d; code tables: bf16 %s, int8 %s\n", dotprod, bf16, active_bf16().name,
         active_int8().name);
  int bad = 0;
  auto expect = [&](bool ok, const char* what) {
    ++checks;
    if (!ok) { ++bad; printf("table check failed: %s\n", what); }
  };
  expect(dotprod && bf16, "the CPU reports dotprod and bf16 (else the dot tables go untested)");
  const Bf16Kernels* b0 = bf16_for(CodeIsa::neon);
  const Bf16Kernels* b1 = bf16_for(CodeIsa::neon_dot);
  const Int8Kernels* i0 = int8_for(CodeIsa::neon);
  const Int8Kernels* i1 = int8_for(CodeIsa::neon_dot);
  expect(b0 && i0 && b1 && i1, "every NEON code level has a table");
  if (!(b0 && i0 && b1 && i1)) return bad;
  expect(!strcmp(b0->name, "neon") && !strcmp(b0->isa_tag, "") && !strcmp(i0->name, "neon") &&
             !strcmp(i0->isa_tag, ""), "baseline names / tags");
  expect(!strcmp(b1->name, "neon-bf16") && !strcmp(b1->isa_tag, "+bf16") && !strcmp(i1->name, "neon-dot") &&
             !strcmp(i1->isa_tag, "+dot"), "dot names / tags");
  expect(b0->level == CodeIsa::neon && i0->level == CodeIsa::neon && b1->level == CodeIsa::neon_dot &&
             i1->level == CodeIsa::neon_dot, "levels");
  expect(b0->many == b0->few && b1->many == b1->few && i0->many == i0->few && i1->many == i1->few &&
             b0->many_group == kMaxQueryGroup && b1->many_group == kMaxQueryGroup &&
             i0->many_group == kMaxQueryGroup && i1->many_group == kMaxQueryGroup, "many == few, group 6");
  if (getenv("NNDEX_ISA") == nullptr)
    expect(&active_bf16() == b1 && &active_int8() == i1, "dispatch picks the dot tables");
  return bad;
}

}  // namespace

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
  bad += check_code_tables(checks);
  bad += check_codes(rng, checks);
  printf("%d/%d checks passed\n", checks - bad, checks);
  return bad != 0;
}
