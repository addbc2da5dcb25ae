// Kernel microbenchmarks, for every ISA level the CPU runs:
//   ScoreTiles/<isa>/dims/queries  the register-blocked tile kernel on a panel that stays in L2
//                                  (GFLOP/s counter: 2 x rows x dims x queries per call)
//   SelectAbove/<isa>/percent      threshold filter over 4096 scores, `percent` of them passing
//   Dot/<isa>/n                    plain dot product of two vectors of n floats
#include <algorithm>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using nndex::kernels::kBlockRows;
using nndex::kernels::KernelTable;

// 64 blocks (1024 rows) per call: the panel size the scan uses for mid-sized dims.
constexpr std::size_t kPanelBlocks = 64;

void score_tiles(benchmark::State& state, const KernelTable* kt) {
  const auto dims = static_cast<std::size_t>(state.range(0));
  const auto nq = static_cast<std::size_t>(state.range(1));
  const std::size_t rows = kPanelBlocks * kBlockRows;
  const auto data = nndex_bench::unit_rows(rows, dims, 1);
  const auto m = nndex_bench::packed(data, rows, dims);
  const auto queries = nndex_bench::unit_rows(nq, dims, 2);
  std::vector<float> scores(nq * rows);
  for (auto _ : state) {
    kt->score_tiles(m.block(0), kPanelBlocks, dims, queries.data(), nq, scores.data(), rows);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = nndex_bench::flops_counter(2.0 * static_cast<double>(rows * dims * nq));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * dims * sizeof(float)));
}

void select_above(benchmark::State& state, const KernelTable* kt) {
  const auto percent = static_cast<double>(state.range(0));
  const std::size_t n = 4096;
  const auto s = nndex_bench::unit_rows(1, n, 3);  // values ~ N(0, 1/n): pick the threshold by rank
  std::vector<float> sorted(s);
  std::sort(sorted.begin(), sorted.end());
  const auto pass = static_cast<std::size_t>(percent / 100.0 * static_cast<double>(n));
  const float threshold = pass >= n ? -1.0f : sorted[n - 1 - pass];
  std::vector<std::uint32_t> positions(n + nndex::kernels::kSelectSlack);
  std::size_t found = 0;
  for (auto _ : state) {
    found = kt->select_above(s.data(), n, threshold, positions.data());
    benchmark::DoNotOptimize(found);
    benchmark::ClobberMemory();
  }
  state.counters["selected"] = static_cast<double>(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void dot(benchmark::State& state, const KernelTable* kt) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto a = nndex_bench::unit_rows(1, n, 4);
  const auto b = nndex_bench::unit_rows(1, n, 5);
  for (auto _ : state) {
    float r = kt->dot(a.data(), b.data(), n);
    benchmark::DoNotOptimize(r);
  }
  state.counters["FLOP/s"] = nndex_bench::flops_counter(2.0 * static_cast<double>(n));
}

const bool registered = [] {
  for (const KernelTable* kt : nndex_bench::kernel_tables()) {
    const std::string isa = kt->name;
    auto* st = benchmark::RegisterBenchmark(("ScoreTiles/" + isa).c_str(), score_tiles, kt);
    st->ArgNames({"dims", "queries"});
    for (long dims : {48, 128, 384, 768})
      for (long nq : {1, 2, 4, 6}) st->Args({dims, nq});
    benchmark::RegisterBenchmark(("SelectAbove/" + isa).c_str(), select_above, kt)
        ->ArgName("percent")->Arg(0)->Arg(1)->Arg(10)->Arg(50);
    benchmark::RegisterBenchmark(("Dot/" + isa).c_str(), dot, kt)->ArgName("n")->Arg(48)->Arg(128)->Arg(768);
  }
  return true;
}();

}  // namespace
