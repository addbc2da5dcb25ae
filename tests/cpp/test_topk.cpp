// topk::TopK: bounded selection under the order (score desc, index asc), checked against a sort.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "topk/topk.hpp"

namespace {

using nndex::topk::TopK;

struct Entry {
  float score;
  std::int64_t index;
  bool operator==(const Entry&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Entry& e) { return os << "(" << e.score << ", #" << e.index << ")"; }

bool ref_better(const Entry& a, const Entry& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// The best min(k, n) entries, best first, by a plain sort.
std::vector<Entry> reference(std::vector<Entry> all, std::size_t k) {
  const std::size_t kk = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(kk), all.end(), ref_better);
  all.resize(kk);
  return all;
}

// Pushes every entry in the given order into a TopK of capacity k and returns the sorted result.
std::vector<Entry> select(const std::vector<Entry>& pushes, std::size_t k) {
  std::vector<float> scores(k, -7.0f);
  std::vector<std::int64_t> indices(k, -7);
  TopK top(scores.data(), indices.data(), k);
  for (const Entry& e : pushes) top.push(e.score, e.index);
  const std::size_t n = top.size();
  EXPECT_EQ(n, std::min(k, pushes.size()));
  top.sort_descending();
  std::vector<Entry> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = {scores[i], indices[i]};
  // Slots past the size are never written.
  for (std::size_t i = n; i < k; ++i) {
    EXPECT_EQ(scores[i], -7.0f);
    EXPECT_EQ(indices[i], -7);
  }
  return out;
}

std::vector<Entry> scan(const std::vector<float>& scores) {
  std::vector<Entry> out(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i) out[i] = {scores[i], static_cast<std::int64_t>(i)};
  return out;
}

TEST(TopKBetter, Order) {
  using nndex::topk::better;
  EXPECT_TRUE(better(2.0f, 5, 1.0f, 0));
  EXPECT_FALSE(better(1.0f, 0, 2.0f, 5));
  EXPECT_TRUE(better(1.0f, 3, 1.0f, 4));   // tie: lower index wins
  EXPECT_FALSE(better(1.0f, 4, 1.0f, 3));
  EXPECT_FALSE(better(1.0f, 3, 1.0f, 3));  // irreflexive
  EXPECT_TRUE(better(-0.5f, 0, -std::numeric_limits<float>::infinity(), 0));
}

TEST(TopK, OneElement) {
  EXPECT_EQ(select({{0.5f, 42}}, 1), (std::vector<Entry>{{0.5f, 42}}));
  EXPECT_EQ(select({{0.5f, 42}}, 10), (std::vector<Entry>{{0.5f, 42}}));
}

TEST(TopK, NothingPushed) {
  float s[3];
  std::int64_t i[3];
  TopK top(s, i, 3);
  EXPECT_EQ(top.size(), 0u);
  EXPECT_EQ(top.threshold(), -std::numeric_limits<float>::infinity());
  top.sort_descending();
  EXPECT_EQ(top.size(), 0u);
}

TEST(TopK, KEqualsOneKeepsTheBest) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> s(1 + trial * 7);
    for (auto& x : s) x = dist(gen);
    auto pushes = scan(s);
    std::shuffle(pushes.begin(), pushes.end(), gen);
    EXPECT_EQ(select(pushes, 1), reference(pushes, 1)) << "trial " << trial;
  }
}

TEST(TopK, KEqualsRowsSortsEverything) {
  const std::vector<float> s = {0.1f, -3.0f, 0.7f, 0.7f, 2.5f, -0.0f, 0.0f, 1e-30f};
  auto pushes = scan(s);
  std::mt19937 gen(4);
  std::shuffle(pushes.begin(), pushes.end(), gen);
  const auto got = select(pushes, s.size());
  EXPECT_EQ(got, reference(pushes, s.size()));
  ASSERT_EQ(got.size(), s.size());
  EXPECT_EQ(got.front(), (Entry{2.5f, 4}));
  EXPECT_EQ(got.back(), (Entry{-3.0f, 1}));
  // Equal scores come out by index: 0.7 at #2 before #3; -0 == +0 so #5 before #6.
  EXPECT_EQ(got[1], (Entry{0.7f, 2}));
  EXPECT_EQ(got[2], (Entry{0.7f, 3}));
  EXPECT_EQ(got[5].index, 5);
  EXPECT_EQ(got[6].index, 6);
}

TEST(TopK, KLargerThanPushedKeepsAllAndThresholdStaysOpen) {
  std::vector<float> scores(10);
  std::vector<std::int64_t> indices(10);
  TopK top(scores.data(), indices.data(), 10);
  const std::vector<float> s = {3.0f, -1.0f, 2.0f, 2.0f};
  for (std::size_t i = 0; i < s.size(); ++i) {
    top.push(s[i], static_cast<std::int64_t>(i));
    EXPECT_EQ(top.threshold(), -std::numeric_limits<float>::infinity());
  }
  EXPECT_EQ(top.size(), 4u);
  top.sort_descending();
  const std::vector<float> want_s = {3.0f, 2.0f, 2.0f, -1.0f};
  const std::vector<std::int64_t> want_i = {0, 2, 3, 1};
  EXPECT_EQ(std::vector<float>(scores.begin(), scores.begin() + 4), want_s);
  EXPECT_EQ(std::vector<std::int64_t>(indices.begin(), indices.begin() + 4), want_i);
}

TEST(TopK, AllEqualScoresKeepLowestIndicesAscending) {
  for (std::size_t k : {1u, 2u, 5u, 17u, 64u}) {
    std::vector<Entry> pushes;
    for (std::int64_t i = 0; i < 100; ++i) pushes.push_back({0.5f, i});
    // In scan order and in random order, the result is #0..#k-1.
    for (int shuffled = 0; shuffled < 2; ++shuffled) {
      if (shuffled) {
        std::mt19937 gen(static_cast<std::uint32_t>(k));
        std::shuffle(pushes.begin(), pushes.end(), gen);
      }
      const auto got = select(pushes, k);
      ASSERT_EQ(got.size(), k);
      for (std::size_t i = 0; i < k; ++i) EXPECT_EQ(got[i], (Entry{0.5f, static_cast<std::int64_t>(i)})) << "k=" << k;
    }
  }
}

TEST(TopK, AllNegative) {
  std::vector<float> s;
  for (int i = 0; i < 40; ++i) s.push_back(-1.0f - static_cast<float>((i * 7) % 40));
  const auto pushes = scan(s);
  const auto got = select(pushes, 5);
  EXPECT_EQ(got, reference(pushes, 5));
  EXPECT_EQ(got.front().score, -1.0f);
  EXPECT_EQ(got.back().score, -5.0f);
}

TEST(TopK, InfiniteScores) {
  const float inf = std::numeric_limits<float>::infinity();
  const auto pushes = scan({-inf, 1.0f, inf, -inf, inf, 0.0f});
  EXPECT_EQ(select(pushes, 3), (std::vector<Entry>{{inf, 2}, {inf, 4}, {1.0f, 1}}));
  EXPECT_EQ(select(pushes, 6), reference(pushes, 6));
}

TEST(TopK, RandomOrderMatchesPartialSort) {
  std::mt19937 gen(12345);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t n = 1 + gen() % 300;
    const std::size_t k = 1 + gen() % (n + 10);
    // Few distinct values in some trials so ties are common.
    const int levels = (trial % 3 == 0) ? 4 : 1000000;
    std::vector<Entry> pushes(n);
    for (std::size_t i = 0; i < n; ++i)
      pushes[i] = {static_cast<float>(static_cast<int>(gen() % static_cast<unsigned>(levels)) - levels / 2) / 7.0f,
                   static_cast<std::int64_t>(i)};
    std::shuffle(pushes.begin(), pushes.end(), gen);
    ASSERT_EQ(select(pushes, k), reference(pushes, k)) << "trial " << trial << " n=" << n << " k=" << k;
  }
}

TEST(TopK, ThresholdIsMinusInfinityUntilFullThenTheWorstKept) {
  std::mt19937 gen(99);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (std::size_t k : {1u, 2u, 3u, 8u, 31u}) {
    std::vector<float> scores(k);
    std::vector<std::int64_t> indices(k);
    TopK top(scores.data(), indices.data(), k);
    std::vector<Entry> pushed;
    for (std::int64_t i = 0; i < 200; ++i) {
      // Occasionally repeat the current threshold to exercise ties.
      const float s = (i % 11 == 10 && top.size() == k) ? top.threshold() : dist(gen);
      top.push(s, i);
      pushed.push_back({s, i});
      if (pushed.size() < k) {
        EXPECT_EQ(top.threshold(), -std::numeric_limits<float>::infinity()) << "k=" << k << " after " << i + 1;
        EXPECT_EQ(top.size(), pushed.size());
      } else {
        const auto kept = reference(pushed, k);
        EXPECT_EQ(top.threshold(), kept.back().score) << "k=" << k << " after " << i + 1;
        EXPECT_EQ(top.size(), k);
      }
    }
  }
}

TEST(TopK, ScanSkippingScoresAtOrBelowThresholdLosesNothing) {
  // The search filters with "score > threshold" before pushing; in a scan (indices increasing) that
  // filter must not change the result.
  std::mt19937 gen(7);
  for (int trial = 0; trial < 100; ++trial) {
    const std::size_t n = 1 + gen() % 500;
    const std::size_t k = 1 + gen() % 20;
    std::vector<float> s(n);
    for (auto& x : s) x = static_cast<float>(gen() % 16);  // many ties
    std::vector<float> hs(k);
    std::vector<std::int64_t> hi(k);
    TopK top(hs.data(), hi.data(), k);
    for (std::size_t i = 0; i < n; ++i)
      if (s[i] > top.threshold()) top.push(s[i], static_cast<std::int64_t>(i));
    const std::size_t size = top.size();
    top.sort_descending();
    std::vector<Entry> got(size);
    for (std::size_t i = 0; i < size; ++i) got[i] = {hs[i], hi[i]};
    ASSERT_EQ(got, reference(scan(s), k)) << "trial " << trial;
  }
}

}  // namespace
