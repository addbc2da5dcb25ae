// Top-k selection: a scan's worth of scores (1,000,000 random values) pushed into a bounded heap,
// with the cached-threshold test the scan uses in front of it. Items/s = scores offered.
//   TopK/k             uniform random scores (few replacements once the heap is warm)
//   TopKAscending/k    ascending scores: every score replaces the root (the worst case)
#include <random>
#include <vector>

#include "bench_util.hpp"
#include "topk/topk.hpp"

namespace {

constexpr std::size_t kScores = 1'000'000;

void run_topk(benchmark::State& state, const std::vector<float>& scores) {
  const auto k = static_cast<std::size_t>(state.range(0));
  std::vector<float> heap_scores(k);
  std::vector<std::int64_t> heap_ids(k);
  for (auto _ : state) {
    nndex::topk::TopK top(heap_scores.data(), heap_ids.data(), k);
    for (std::size_t i = 0; i < scores.size(); ++i)
      if (scores[i] > top.threshold()) top.push(scores[i], static_cast<std::int64_t>(i));
    top.sort_descending();
    benchmark::DoNotOptimize(heap_scores.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * scores.size()));
}

void BM_TopK(benchmark::State& state) {
  static const std::vector<float> scores = [] {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> s(kScores);
    for (auto& x : s) x = u(rng);
    return s;
  }();
  run_topk(state, scores);
}
BENCHMARK(BM_TopK)->Name("TopK")->ArgName("k")->Arg(1)->Arg(10)->Arg(100)->Arg(1000);

void BM_TopKAscending(benchmark::State& state) {
  static const std::vector<float> scores = [] {
    std::vector<float> s(kScores);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>(i) / static_cast<float>(kScores);
    return s;
  }();
  run_topk(state, scores);
}
BENCHMARK(BM_TopKAscending)->Name("TopKAscending")->ArgName("k")->Arg(10)->Arg(100);

}  // namespace
