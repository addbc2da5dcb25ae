// Compressed-row kernels against the float32 tiles, at the two shapes that matter:
//   CodeSingle/<kind>/rows/dims  one query over a matrix far beyond the caches (memory bound):
//                                f32 score_tiles_streaming vs bf16 / int8 `few` (bytes/s = matrix
//                                bytes read per second), called per 64-block panel like the scan
//   CodeBatch/<kind>              2048 queries x 10000 rows x 768 dims (FLOP/s = 2 x q x rows x dims
//                                per iteration): f32 score_tiles (6 queries a call) vs the bf16 /
//                                int8 dot kernels (6) vs AMX (32), panels sized to stay in L2
// Every kernel is the active level's or the named level's where this CPU runs it.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "kernels/code_kernels.hpp"

namespace {

namespace k = nndex::kernels;
using k::kBlockRows;

struct Free {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<std::uint8_t[], Free>;

// 64-byte aligned, filled (so every page is touched before timing).
Buffer aligned(std::size_t bytes) {
  auto* p = static_cast<std::uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (p == nullptr) std::abort();
  return Buffer(p);
}

// Random finite values of each element type (what the bytes hold does not change the speed, only
// that they are finite and the codes in range).
Buffer random_f32(std::size_t n, std::uint64_t seed) {
  Buffer b = aligned(n * 4);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  auto* f = reinterpret_cast<float*>(b.get());
  for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
  return b;
}

Buffer random_bf16(std::size_t n, std::uint64_t seed) {
  Buffer b = aligned(n * 2);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  auto* u = reinterpret_cast<std::uint16_t*>(b.get());
  for (std::size_t i = 0; i < n; ++i) u[i] = k::to_bf16(static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f);
  return b;
}

Buffer random_bytes(std::size_t n, std::uint64_t seed) {
  Buffer b = aligned(n);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(rng());
  return b;
}

constexpr std::size_t kPanelBlocks = 64;  // the scan's panel for a single query

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

// One query over rows x dims, one call per 64-block panel into an L2-resident score buffer.
void single_f32(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), dims = static_cast<std::size_t>(state.range(1));
  const std::size_t nblocks = rows / kBlockRows, block_floats = kBlockRows * dims;
  const Buffer tiles = random_f32(nblocks * block_floats, 1);
  const Buffer query = random_f32(dims, 2);
  std::vector<float> scores(kPanelBlocks * kBlockRows);
  const auto& kt = k::active();
  const auto* t = reinterpret_cast<const float*>(tiles.get());
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += kPanelBlocks)
      kt.score_tiles_streaming(t + b * block_floats, std::min(kPanelBlocks, nblocks - b), dims,
                               reinterpret_cast<const float*>(query.get()), scores.data());
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * dims * sizeof(float)));
  state.SetLabel(kt.name);
}

void single_bf16(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), dims = static_cast<std::size_t>(state.range(1));
  const std::size_t nblocks = rows / kBlockRows, lines = (dims + 1) / 2, block_elems = lines * 32;
  const std::size_t stride = round_up(dims, k::kBf16QueryAlign);
  const Buffer blocks = random_bf16(nblocks * block_elems + k::kCodeSlackBytes / 2, 1);
  const Buffer query = random_bf16(kBlockRows * stride, 2);
  std::vector<float> scores(k::kScoreRowAlign * kPanelBlocks * kBlockRows);
  const auto& kt = k::active_bf16();
  const auto* bp = reinterpret_cast<const std::uint16_t*>(blocks.get());
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += kPanelBlocks)
      kt.few(bp + b * block_elems, std::min(kPanelBlocks, nblocks - b), lines,
             reinterpret_cast<const std::uint16_t*>(query.get()), stride, 1, scores.data(), kPanelBlocks * kBlockRows);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * lines * 4));
  state.SetLabel(kt.name);
}

void single_int8(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), dims = static_cast<std::size_t>(state.range(1));
  const std::size_t nblocks = rows / kBlockRows, lines = (dims + 3) / 4, block_bytes = lines * 64;
  const std::size_t stride = round_up(dims, k::kInt8QueryAlign);
  const Buffer blocks = random_bytes(nblocks * block_bytes + k::kCodeSlackBytes, 1);
  const Buffer query = random_bytes(kBlockRows * stride, 2);
  const std::vector<float> scales(rows, 0.01f);
  const std::vector<std::int32_t> offsets(k::kScoreRowAlign, 0);
  std::vector<float> scores(k::kScoreRowAlign * kPanelBlocks * kBlockRows);
  const auto& kt = k::active_int8();
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += kPanelBlocks)
      kt.few(blocks.get() + b * block_bytes, scales.data() + b * kBlockRows, std::min(kPanelBlocks, nblocks - b), lines,
             reinterpret_cast<const std::int8_t*>(query.get()), offsets.data(), stride, 1, scores.data(),
             kPanelBlocks * kBlockRows);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * block_bytes / kBlockRows));
  state.SetLabel(kt.name);
}

// Batch: 2048 x 10000 x 768. Panels of at most 1 MiB (a share of L2 that leaves room for the
// queries and scores) and 64 blocks (the most one engine call passes), queries in the kernel's
// group size, panel-major like the exact engine. All buffers are 64-byte aligned: a misaligned
// block splits every line across two cache lines (AMX measured 1.6-1.7x slower).
constexpr std::size_t kBatchQueries = 2048, kBatchRows = 10000 / kBlockRows * kBlockRows, kBatchDims = 768;
constexpr std::size_t kPanelBytes = 1u << 20;

void set_batch_counters(benchmark::State& state) {
  state.counters["FLOP/s"] = nndex_bench::flops_counter(2.0 * kBatchQueries * kBatchRows * kBatchDims);
}

void batch_f32(benchmark::State& state) {
  const std::size_t nblocks = kBatchRows / kBlockRows, block_floats = kBlockRows * kBatchDims;
  const std::size_t panel = std::clamp<std::size_t>(kPanelBytes / (block_floats * 4), 1, kPanelBlocks);
  const Buffer tiles = random_f32(nblocks * block_floats, 1);
  const Buffer queries = random_f32(kBatchQueries * kBatchDims, 2);
  std::vector<float> scores(k::kMaxQueryGroup * panel * kBlockRows);
  const auto& kt = k::active();
  const auto* t = reinterpret_cast<const float*>(tiles.get());
  const auto* q = reinterpret_cast<const float*>(queries.get());
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += panel)
      for (std::size_t q0 = 0; q0 < kBatchQueries; q0 += k::kMaxQueryGroup)
        kt.score_tiles(t + b * block_floats, std::min(panel, nblocks - b), kBatchDims, q + q0 * kBatchDims,
                       std::min(k::kMaxQueryGroup, kBatchQueries - q0), scores.data(), panel * kBlockRows);
    benchmark::ClobberMemory();
  }
  set_batch_counters(state);
  state.SetLabel(std::string(kt.name) + " x6");
}

void batch_bf16(benchmark::State& state, const k::Bf16Kernels* kt) {
  const std::size_t nblocks = kBatchRows / kBlockRows, lines = kBatchDims / 2, block_elems = lines * 32;
  const std::size_t panel = std::clamp<std::size_t>(kPanelBytes / (block_elems * 2), 1, kPanelBlocks);
  const Buffer blocks = random_bf16(nblocks * block_elems + k::kCodeSlackBytes / 2, 1);
  const Buffer queries = random_bf16(kBatchQueries * kBatchDims, 2);  // stride = dims (a multiple of 32)
  const std::size_t group = kt->many_group;
  std::vector<float> scores(round_up(group, k::kScoreRowAlign) * panel * kBlockRows);
  const auto* bp = reinterpret_cast<const std::uint16_t*>(blocks.get());
  const auto* q = reinterpret_cast<const std::uint16_t*>(queries.get());
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += panel)
      for (std::size_t q0 = 0; q0 < kBatchQueries; q0 += group)
        kt->many(bp + b * block_elems, std::min(panel, nblocks - b), lines, q + q0 * kBatchDims, kBatchDims,
                 std::min(group, kBatchQueries - q0), scores.data(), panel * kBlockRows);
    benchmark::ClobberMemory();
  }
  set_batch_counters(state);
  state.SetLabel(std::string(kt->name) + " x" + std::to_string(group));
}

void batch_int8(benchmark::State& state, const k::Int8Kernels* kt) {
  const std::size_t nblocks = kBatchRows / kBlockRows, lines = kBatchDims / 4, block_bytes = lines * 64;
  const std::size_t panel = std::clamp<std::size_t>(kPanelBytes / block_bytes, 1, kPanelBlocks);
  const Buffer blocks = random_bytes(nblocks * block_bytes + k::kCodeSlackBytes, 1);
  const Buffer queries = random_bytes(kBatchQueries * kBatchDims, 2);
  const std::vector<float> scales(kBatchRows, 0.01f);
  const std::vector<std::int32_t> offsets(kBatchQueries, 0);
  const std::size_t group = kt->many_group;
  std::vector<float> scores(round_up(group, k::kScoreRowAlign) * panel * kBlockRows);
  const auto* q = reinterpret_cast<const std::int8_t*>(queries.get());
  for (auto _ : state) {
    for (std::size_t b = 0; b < nblocks; b += panel)
      for (std::size_t q0 = 0; q0 < kBatchQueries; q0 += group)
        kt->many(blocks.get() + b * block_bytes, scales.data() + b * kBlockRows, std::min(panel, nblocks - b), lines,
                 q + q0 * kBatchDims, offsets.data() + q0, kBatchDims, std::min(group, kBatchQueries - q0),
                 scores.data(), panel * kBlockRows);
    benchmark::ClobberMemory();
  }
  set_batch_counters(state);
  state.SetLabel(std::string(kt->name) + " x" + std::to_string(group));
}

const bool registered = [] {
  for (auto* fn : {&single_f32, &single_bf16, &single_int8}) {
    const char* kind = fn == &single_f32 ? "f32" : (fn == &single_bf16 ? "bf16" : "int8");
    benchmark::RegisterBenchmark((std::string("CodeSingle/") + kind).c_str(), fn)
        ->ArgNames({"rows", "dims"})
        ->Args({1000000, 128})
        ->Args({200000, 768})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("CodeBatch/f32", batch_f32)->Unit(benchmark::kMillisecond)->UseRealTime();
  for (k::CodeIsa level : {k::CodeIsa::avx512_dot, k::CodeIsa::amx}) {
    if (const auto* t = k::bf16_for(level))
      benchmark::RegisterBenchmark((std::string("CodeBatch/") + t->name).c_str(), batch_bf16, t)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    if (const auto* t = k::int8_for(level))
      benchmark::RegisterBenchmark((std::string("CodeBatch/") + t->name).c_str(), batch_int8, t)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  return true;
}();

}  // namespace
