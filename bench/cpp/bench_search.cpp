// Exact search through the engine (exact::search), below the Python layer:
//   ExactSingle/rows/dims/threads   one query, k = 10; bytes/s = the matrix streamed per call
//   ExactBatch/rows/dims/queries/threads   k = 10; FLOP/s counter = 2 x queries x rows x dims
// threads 0 means every hardware thread.
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "exact/exact_search.hpp"

namespace {

// One packed matrix per shape, built on first use and kept for the process (1,000,000 x 128 is
// 512 MB: packing it once per benchmark would dominate).
const nndex::core::TiledMatrix& matrix(std::size_t rows, std::size_t dims) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<nndex::core::TiledMatrix>> cache;
  auto& slot = cache[{rows, dims}];
  if (!slot) {
    const auto data = nndex_bench::unit_rows(rows, dims, 11);
    slot = std::make_unique<nndex::core::TiledMatrix>(nndex_bench::packed(data, rows, dims));
  }
  return *slot;
}

void run_search(benchmark::State& state, std::size_t rows, std::size_t dims, std::size_t nq, std::size_t threads) {
  const auto& m = matrix(rows, dims);
  const auto queries = nndex_bench::unit_rows(nq, dims, 12);
  const auto& kt = nndex::kernels::active();
  const std::size_t k = 10;
  std::vector<std::int64_t> ids(nq * k);
  std::vector<float> scores(nq * k);
  if (threads == 0) threads = nndex_bench::all_threads();
  nndex::exact::Plan plan;
  for (auto _ : state) {
    plan = nndex::exact::search(m, queries.data(), nq, k, kt, threads, {}, ids.data(), scores.data());
    benchmark::DoNotOptimize(ids.data());
    benchmark::ClobberMemory();
  }
  state.counters["threads_used"] = static_cast<double>(plan.threads);
  state.counters["FLOP/s"] = nndex_bench::flops_counter(2.0 * static_cast<double>(nq * rows * dims));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * dims * sizeof(float)));
  state.SetLabel(std::string(kt.name) + " " + plan.path);
}

void BM_ExactSingle(benchmark::State& state) {
  run_search(state, static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)), 1,
             static_cast<std::size_t>(state.range(2)));
}
BENCHMARK(BM_ExactSingle)
    ->Name("ExactSingle")
    ->ArgNames({"rows", "dims", "threads"})
    ->Args({10000, 768, 1})
    ->Args({10000, 768, 0})
    ->Args({100000, 128, 1})
    ->Args({100000, 128, 0})
    ->Args({1000000, 128, 1})
    ->Args({1000000, 128, 0})
    ->UseRealTime();

void BM_ExactBatch(benchmark::State& state) {
  run_search(state, static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)),
             static_cast<std::size_t>(state.range(2)), static_cast<std::size_t>(state.range(3)));
}
BENCHMARK(BM_ExactBatch)
    ->Name("ExactBatch")
    ->ArgNames({"rows", "dims", "queries", "threads"})
    ->Args({10000, 768, 128, 1})
    ->Args({10000, 768, 128, 0})
    ->Args({10000, 768, 2048, 1})
    ->Args({10000, 768, 2048, 0})
    ->Args({100000, 128, 128, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
