// The IVF index (ivf::IvfIndex) on 100,000 x 128 clustered rows (300 centres):
//   IvfBuild/threads             k-means training, assignment and layout with the default nlist and a
//                                fixed nprobe (no calibration), then with calibration (calibrate=1)
//   IvfSearch/nprobe/queries     k = 10 on all threads
#include <memory>
#include <vector>

#include "bench_util.hpp"
#include "ivf/ivf_index.hpp"

namespace {

constexpr std::size_t kRows = 100000;
constexpr std::size_t kDims = 128;

const std::vector<float>& rows() {
  static const std::vector<float> data = nndex_bench::clustered_rows(kRows, kDims, 300, 21);
  return data;
}

void BM_IvfBuild(benchmark::State& state) {
  const auto& kt = nndex::kernels::active();
  nndex::ivf::BuildParams params;
  params.threads = state.range(0) == 0 ? nndex_bench::all_threads() : static_cast<std::size_t>(state.range(0));
  params.nprobe = state.range(1) ? 0 : 8;  // 0: calibrate for recall 0.95
  params.seed = 1;
  std::size_t nlist = 0;
  for (auto _ : state) {
    nndex::ivf::IvfIndex index(rows().data(), kRows, kDims, params, kt, {});
    nlist = index.nlist();
    benchmark::DoNotOptimize(&index);
  }
  state.counters["nlist"] = static_cast<double>(nlist);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}
BENCHMARK(BM_IvfBuild)
    ->Name("IvfBuild")
    ->ArgNames({"threads", "calibrate"})
    ->Args({1, 0})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

const nndex::ivf::IvfIndex& index() {
  static const std::unique_ptr<nndex::ivf::IvfIndex> ix = [] {
    nndex::ivf::BuildParams params;
    params.threads = nndex_bench::all_threads();
    params.nprobe = 8;
    params.seed = 1;
    return std::make_unique<nndex::ivf::IvfIndex>(rows().data(), kRows, kDims, params, nndex::kernels::active(),
                                                  nndex::StopCheck{});
  }();
  return *ix;
}

void BM_IvfSearch(benchmark::State& state) {
  const auto& ix = index();
  const auto nprobe = static_cast<std::size_t>(state.range(0));
  const auto nq = static_cast<std::size_t>(state.range(1));
  const auto queries = nndex_bench::clustered_rows(nq, kDims, 300, 22);
  const std::size_t k = 10;
  std::vector<std::int64_t> ids(nq * k);
  std::vector<float> scores(nq * k);
  for (auto _ : state) {
    ix.search(queries.data(), nq, k, nprobe, nndex::kernels::active(), nndex_bench::all_threads(), {}, ids.data(),
              scores.data());
    benchmark::DoNotOptimize(ids.data());
    benchmark::ClobberMemory();
  }
  state.counters["nlist"] = static_cast<double>(ix.nlist());
  state.counters["QPS"] = benchmark::Counter(static_cast<double>(nq), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_IvfSearch)
    ->Name("IvfSearch")
    ->ArgNames({"nprobe", "queries"})
    ->Args({1, 1})
    ->Args({4, 1})
    ->Args({16, 1})
    ->Args({64, 1})
    ->Args({4, 256})
    ->Args({16, 256})
    ->Args({64, 256})
    ->UseRealTime();

}  // namespace
