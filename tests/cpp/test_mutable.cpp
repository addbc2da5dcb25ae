// The mutable index: user ids, add / remove / compact, filtered search on every kind of index, files
// that keep all of it, the errors (each leaving the index as it was), and searches racing mutations
// (each result checked against the state it reports having seen).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "io/checksum.hpp"
#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

using nndex::BatchResult;
using nndex::Filter;
using nndex::Index;
using nndex::IndexOptions;
using nndex::MatrixView;
using nndex::SearchParams;
using nndex::Storage;

std::vector<float> clustered(std::size_t rows, std::size_t dims, std::uint32_t seed) {
  return nndex_test::gaussian_clusters(rows, dims, 40, 0.6f, seed);
}

// The truth: an exact float32 index over just the rows given, with their ids.
struct Oracle {
  std::size_t dims;
  std::map<std::int64_t, std::vector<float>> rows;

  void add(const std::vector<float>& data, const std::vector<std::int64_t>& ids) {
    for (std::size_t i = 0; i < ids.size(); ++i)
      rows[ids[i]] = std::vector<float>(data.begin() + static_cast<std::ptrdiff_t>(i * dims),
                                        data.begin() + static_cast<std::ptrdiff_t>((i + 1) * dims));
  }
  // Exact results among the live rows `allowed` lets through.
  BatchResult search(const std::vector<float>& queries, std::size_t k, const std::set<std::int64_t>* allowed = nullptr,
                     bool normalized = false) const {
    std::vector<float> data;
    std::vector<std::int64_t> ids;
    for (const auto& [id, v] : rows) {
      if (allowed != nullptr && !allowed->count(id)) continue;
      ids.push_back(id);
      data.insert(data.end(), v.begin(), v.end());
    }
    if (ids.empty()) return {};
    IndexOptions o;
    o.normalized = normalized;
    const Index exact(MatrixView::row_major(data.data(), ids.size(), dims), ids, o);
    return exact.search_batch(queries, queries.size() / dims, k);
  }
};

double recall(const BatchResult& got, const BatchResult& truth) {
  if (truth.k == 0) return 1.0;
  std::size_t hit = 0;
  for (std::size_t q = 0; q < truth.queries; ++q) {
    const auto* t = truth.indices.data() + q * truth.k;
    const std::set<std::int64_t> want(t, t + truth.k);
    for (std::size_t i = 0; i < got.k; ++i) hit += want.count(got.indices[q * got.k + i]);
  }
  return static_cast<double>(hit) / static_cast<double>(truth.queries * truth.k);
}

std::vector<std::int64_t> iota_ids(std::int64_t first, std::size_t n, std::int64_t step = 1) {
  std::vector<std::int64_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = first + static_cast<std::int64_t>(i) * step;
  return ids;
}

TEST(Ids, DefaultIdsAreRowNumbersAndCustomIdsComeBack) {
  const std::size_t d = 16;
  const auto data = nndex_test::random_floats(300 * d, 1);
  const Index plain(MatrixView::row_major(data.data(), 300, d));
  EXPECT_EQ(plain.ids(), iota_ids(0, 300));
  EXPECT_EQ(plain.generation(), 0u);
  const auto custom = iota_ids(1000, 300, 7);
  const Index with_ids(MatrixView::row_major(data.data(), 300, d), custom);
  EXPECT_EQ(with_ids.ids(), custom);
  const std::vector<float> q(data.begin(), data.begin() + d);
  const auto a = plain.search(q, 5);
  const auto b = with_ids.search(q, 5);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(custom[static_cast<std::size_t>(a[i].index)], b[i].index);
    EXPECT_EQ(a[i].similarity, b[i].similarity);
  }
}

struct Kind {
  const char* name;
  bool approx;
  nndex::ApproxMethod method;
  Storage storage;
};
const Kind kKinds[] = {
    {"exact_f32", false, nndex::ApproxMethod::automatic, Storage::f32},
    {"exact_bf16", false, nndex::ApproxMethod::automatic, Storage::bf16},
    {"exact_int8", false, nndex::ApproxMethod::automatic, Storage::int8},
    {"graph_f32", true, nndex::ApproxMethod::graph, Storage::f32},
    {"graph_int8", true, nndex::ApproxMethod::graph, Storage::int8},
    {"ivf_f32", true, nndex::ApproxMethod::ivf, Storage::f32},
    {"ivf_int8", true, nndex::ApproxMethod::ivf, Storage::int8},
};

IndexOptions options_for(const Kind& kind) {
  IndexOptions o;
  o.approx = kind.approx;
  o.method = kind.method;
  o.storage = kind.storage;
  o.threads = 2;
  return o;
}

std::string expected_method(const Kind& kind) {
  return !kind.approx ? "exact" : kind.method == nndex::ApproxMethod::graph ? "graph" : "ivf";
}

class EveryKind : public ::testing::TestWithParam<Kind> {};

// Selective and loose filters, by id list and by mask: exactly min(k, allowed) results, all allowed,
// as good as the oracle's on exact indexes and close on approximate ones.
TEST_P(EveryKind, FilteredSearchReturnsEnoughAllowedRows) {
  const Kind kind = GetParam();
  const std::size_t rows = 12000, d = 48, k = 10, nq = 40;
  // Queries from the same distribution (held out): what approximate search is calibrated for.
  auto data = clustered(rows + nq, d, 3);
  const std::vector<float> queries(data.begin() + static_cast<std::ptrdiff_t>(rows * d), data.end());
  data.resize(rows * d);
  const auto ids = iota_ids(5, rows, 3);  // not row numbers
  const Index index(MatrixView::row_major(data.data(), rows, d), ids, options_for(kind));
  EXPECT_EQ(index.method(), expected_method(kind));
  Oracle oracle{d, {}};
  oracle.add(data, ids);
  std::mt19937 gen(9);
  for (const double fraction : {0.5, 0.1, 0.01, 0.001, 0.0}) {
    std::set<std::int64_t> allowed;
    for (std::int64_t id : ids)
      if (std::uniform_real_distribution<double>(0, 1)(gen) < fraction) allowed.insert(id);
    if (fraction == 0.0) allowed = {ids[7], ids[99], ids[5000]};  // fewer than k
    const std::vector<std::int64_t> list(allowed.begin(), allowed.end());
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(ids.back()) + 1, 0);
    for (std::int64_t id : list) mask[static_cast<std::size_t>(id)] = 1;
    const BatchResult truth = oracle.search(queries, k, &allowed);
    for (const Filter& filter : {Filter::allow_ids(list), Filter::allow_mask(mask)}) {
      SearchParams p;
      p.filter = filter;
      const BatchResult got = index.search_batch(queries, nq, k, p);
      ASSERT_EQ(got.k, std::min(k, allowed.size())) << kind.name << " fraction " << fraction;
      for (std::int64_t id : got.indices) ASSERT_TRUE(allowed.count(id)) << kind.name << " returned " << id;
      const double r = recall(got, truth);
      EXPECT_GE(r, kind.approx ? 0.9 : kind.storage == Storage::f32 ? 1.0 : 0.98)
          << kind.name << " fraction " << fraction;
      if (!kind.approx && kind.storage == Storage::f32) EXPECT_EQ(got.similarities, truth.similarities);
    }
  }
}

// Adds (default and custom ids), removes and a compaction against the oracle; recall holds after the
// index doubles and after half the rows go.
TEST_P(EveryKind, AddRemoveCompactMatchTheOracle) {
  const Kind kind = GetParam();
  const std::size_t d = 96, k = 10, nq = 40;  // 6,000 x 96: large enough for IVF
  auto base = clustered(6000 + 6000 + nq, d, 12);
  const std::vector<float> queries(base.begin() + 12000 * static_cast<std::ptrdiff_t>(d), base.end());
  const std::vector<float> more(base.begin() + 6000 * static_cast<std::ptrdiff_t>(d), base.begin() + 12000 * static_cast<std::ptrdiff_t>(d));
  base.resize(6000 * d);
  Index index(MatrixView::row_major(base.data(), 6000, d), options_for(kind));
  Oracle oracle{d, {}};
  oracle.add(base, iota_ids(0, 6000));
  const double floor = kind.approx ? 0.9 : kind.storage == Storage::f32 ? 1.0 : 0.98;

  // Doubling, in one call and then in pieces with custom ids.
  const auto added = index.add(MatrixView::row_major(more.data(), 3000, d));
  EXPECT_EQ(added, iota_ids(6000, 3000));
  oracle.add(std::vector<float>(more.begin(), more.begin() + 3000 * d), added);
  for (std::size_t part = 0; part < 6; ++part) {
    const std::vector<float> rows(more.begin() + static_cast<std::ptrdiff_t>((3000 + part * 500) * d),
                                  more.begin() + static_cast<std::ptrdiff_t>((3500 + part * 500) * d));
    const auto custom = iota_ids(static_cast<std::int64_t>(100000 + part * 1000), 500, 2);
    EXPECT_EQ(index.add(MatrixView::row_major(rows.data(), 500, d), custom), custom);
    oracle.add(rows, custom);
  }
  EXPECT_EQ(index.rows(), 12000u);
  EXPECT_EQ(index.method(), expected_method(kind));
  EXPECT_GE(recall(index.search_batch(queries, nq, k), oracle.search(queries, k)), floor) << kind.name;
  // The next default id follows the largest ever used.
  const std::vector<float> one(more.begin(), more.begin() + d);
  EXPECT_EQ(index.add(one, 1), std::vector<std::int64_t>{105999});
  oracle.add(one, {105999});

  // Half the rows go; removed ids never come back.
  std::vector<std::int64_t> all = index.ids();
  std::mt19937 gen(5);
  std::shuffle(all.begin(), all.end(), gen);
  const std::vector<std::int64_t> gone(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2));
  EXPECT_EQ(index.remove(gone), gone.size());
  for (std::int64_t id : gone) oracle.rows.erase(id);
  EXPECT_EQ(index.rows(), oracle.rows.size());
  const BatchResult after = index.search_batch(queries, nq, k);
  const std::set<std::int64_t> gone_set(gone.begin(), gone.end());
  for (std::int64_t id : after.indices) ASSERT_FALSE(gone_set.count(id));
  EXPECT_GE(recall(after, oracle.search(queries, k)), floor) << kind.name;

  index.compact();
  EXPECT_EQ(index.segments(), 1u);
  EXPECT_EQ(index.removed_rows(), 0u);
  std::vector<std::int64_t> live = index.ids();
  std::sort(live.begin(), live.end());
  std::vector<std::int64_t> want;
  for (const auto& [id, v] : oracle.rows) want.push_back(id);
  EXPECT_EQ(live, want);
  EXPECT_GE(recall(index.search_batch(queries, nq, k), oracle.search(queries, k)), floor) << kind.name;
}

// Files keep ids, removed rows and segments; a loaded index takes further changes.
TEST_P(EveryKind, FilesKeepIdsAndRemovals) {
  const Kind kind = GetParam();
  const std::size_t d = 20, k = 8;
  const auto data = clustered(5000, d, 21);
  const auto queries = clustered(20, d, 22);
  Index index(MatrixView::row_major(data.data(), 4000, d), iota_ids(10, 4000, 2), options_for(kind));
  index.add(MatrixView::row_major(data.data() + 4000 * d, 1000, d));
  index.remove(iota_ids(10, 300, 2));
  const std::string path = ::testing::TempDir() + "/mutable_" + kind.name + ".nndex";
  index.save(path);
  const BatchResult before = index.search_batch(queries, 20, k);
  for (const bool mmap : {true, false}) {
    Index loaded = Index::load(path, {mmap, 2, true});
    EXPECT_EQ(loaded.ids(), index.ids());
    EXPECT_EQ(loaded.segments(), index.segments());
    const BatchResult got = loaded.search_batch(queries, 20, k);
    EXPECT_EQ(got.indices, before.indices) << kind.name;
    EXPECT_EQ(got.similarities, before.similarities) << kind.name;
    // Further changes on the loaded index.
    EXPECT_EQ(loaded.remove(std::vector<std::int64_t>{8008}), 1u);
    EXPECT_EQ(loaded.add(MatrixView::row_major(data.data(), 1, d)), std::vector<std::int64_t>{9009});
    EXPECT_FALSE(loaded.contains(8008));
  }
  const auto bytes = index.to_bytes();
  const Index copy = Index::from_bytes(bytes);
  EXPECT_EQ(copy.search_batch(queries, 20, k).indices, before.indices);
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryKind, ::testing::ValuesIn(kKinds),
                         [](const ::testing::TestParamInfo<Kind>& info) { return std::string(info.param.name); });

// A segment added to an IVF index beside its first one joins the first one's lists (no k-means):
// recall holds across both.
TEST(Mutable, IvfSegmentJoinsTheFirstSegmentsLists) {
  const std::size_t d = 64, k = 10, nq = 40;
  auto data = clustered(20000 + 9000 + nq, d, 61);
  const std::vector<float> queries(data.begin() + 29000 * static_cast<std::ptrdiff_t>(d), data.end());
  IndexOptions o;
  o.approx = true;
  o.method = nndex::ApproxMethod::ivf;
  Index index(MatrixView::row_major(data.data(), 20000, d), o);
  ASSERT_EQ(index.method(), "ivf");
  const std::size_t nlist = index.nlist();
  index.add(MatrixView::row_major(data.data() + 20000 * d, 9000, d));  // large enough for IVF, not merged
  EXPECT_EQ(index.segments(), 2u);
  EXPECT_EQ(index.nlist(), nlist);
  Oracle oracle{d, {}};
  oracle.add(std::vector<float>(data.begin(), data.begin() + 29000 * static_cast<std::ptrdiff_t>(d)), iota_ids(0, 29000));
  EXPECT_GE(recall(index.search_batch(queries, nq, k), oracle.search(queries, k)), 0.9);
}

// Every refused call names the problem and leaves the index exactly as it was.
TEST(MutableErrors, RefusedCallsChangeNothing) {
  const std::size_t d = 8;
  const auto data = nndex_test::random_floats(200 * d, 31);
  Index index(MatrixView::row_major(data.data(), 200, d), iota_ids(0, 200));
  const std::vector<float> q(data.begin(), data.begin() + d);
  const auto before = index.search_batch(q, 1, 10);
  auto unchanged = [&] {
    EXPECT_EQ(index.rows(), 200u);
    EXPECT_EQ(index.generation(), 0u);
    EXPECT_EQ(index.search_batch(q, 1, 10).indices, before.indices);
  };
  const std::vector<float> two(data.begin(), data.begin() + 2 * d);
  auto add_throws = [&](std::vector<std::int64_t> ids, const char* needle) {
    try {
      index.add(MatrixView::row_major(two.data(), 2, d), ids);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const nndex::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    unchanged();
  };
  add_throws({500, 500}, "500 appears more than once");
  add_throws({-1, 500}, "non-negative");
  add_throws({7, 500}, "7 is already in the index");
  add_throws({500}, "one id per row");
  std::vector<float> bad = two;
  bad[d + 3] = std::nanf("");
  EXPECT_THROW(index.add(MatrixView::row_major(bad.data(), 2, d)), nndex::InvalidArgument);
  unchanged();
  EXPECT_THROW(index.add(MatrixView::row_major(two.data(), 1, d + 1)), nndex::DimensionMismatch);
  unchanged();
  try {
    index.remove(std::vector<std::int64_t>{3, 4000});
    ADD_FAILURE();
  } catch (const nndex::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("4000 is not in the index"), std::string::npos) << e.what();
  }
  unchanged();
  EXPECT_THROW(index.remove(std::vector<std::int64_t>{3, 3}), nndex::InvalidArgument);
  unchanged();
  const std::vector<std::uint8_t> short_mask(199, 1);
  SearchParams p;
  p.filter = Filter::allow_mask(short_mask);
  EXPECT_THROW(index.search_batch(q, 1, 10, p), nndex::InvalidArgument);
  const std::vector<std::int64_t> negative{-4};
  p.filter = Filter::allow_ids(negative);
  EXPECT_THROW(index.search_batch(q, 1, 10, p), nndex::InvalidArgument);
  unchanged();
}

// State::mask_entries is the length a mask needs, the rule search_batch applies: one past the largest
// id of a segment with live rows, even when that id itself is removed (its segment not yet rebuilt).
TEST(Mutable, MaskEntriesIsTheMaskLengthSearchNeeds) {
  const std::size_t d = 4;
  const auto data = nndex_test::random_floats(120 * d, 17);
  Index index(MatrixView::row_major(data.data(), 100, d));
  EXPECT_EQ(index.state().mask_entries, 100u);
  index.remove(std::vector<std::int64_t>{99});
  EXPECT_EQ(index.state().mask_entries, 100u) << "1% removed: the segment is not rebuilt";
  const std::vector<std::int64_t> far{500, 900};
  index.add(MatrixView::row_major(data.data() + 100 * d, 2, d), far);
  EXPECT_EQ(index.state().mask_entries, 901u);
  const auto q = MatrixView::row_major(data.data(), 1, d);
  const auto search_with_mask = [&](std::size_t entries) {
    const std::vector<std::uint8_t> mask(entries, 1);
    SearchParams p;
    p.filter = Filter::allow_mask(mask);
    return index.search_batch(q, 5, p);
  };
  EXPECT_NO_THROW(search_with_mask(index.state().mask_entries));
  EXPECT_THROW(search_with_mask(index.state().mask_entries - 1), nndex::InvalidArgument);
  index.remove(std::vector<std::int64_t>{500, 900});
  EXPECT_EQ(index.state().mask_entries, 100u);
  EXPECT_NO_THROW(search_with_mask(100));
}

// A damaged segment set never crashes the reader: random bytes changed in the table (its checksum
// recomputed for half of them, so the structure checks are reached), the ids and the removal bits;
// what loads searches without fault.
TEST(Mutable, DamagedSegmentSetsAreRefusedOrSafe) {
  const std::size_t d = 8;
  const auto data = nndex_test::random_floats(700 * d, 81);
  Index index(MatrixView::row_major(data.data(), 600, d), iota_ids(3, 600, 5));
  index.add(MatrixView::row_major(data.data() + 600 * d, 100, d));
  index.remove(iota_ids(3, 50, 5));
  ASSERT_EQ(index.segments(), 2u);
  const std::vector<std::byte> clean = index.to_bytes();
  std::uint32_t segments;
  std::memcpy(&segments, clean.data() + 12, 4);
  const std::size_t table_end = 64 + 64 * std::size_t{segments};
  std::mt19937_64 rng(83);
  const std::vector<float> q(data.begin(), data.begin() + d);
  std::size_t loaded = 0;
  for (int it = 0; it < 1500; ++it) {
    std::vector<std::byte> bytes = clean;
    for (int m = 0; m < 1 + static_cast<int>(rng() % 3); ++m) {
      const std::size_t at = rng() % 2 == 0 ? rng() % table_end : rng() % bytes.size();
      bytes[at] ^= std::byte{static_cast<unsigned char>(1u << (rng() % 8))};
    }
    if (it % 2 == 1) {
      const std::uint64_t sum = nndex::io::xxh64(bytes.data(), table_end);
      std::memcpy(bytes.data() + table_end, &sum, sizeof sum);
    }
    for (const bool verify : {true, false}) {
      try {
        const Index got = Index::from_bytes(bytes, {false, 1, verify});
        got.search(q, 5);
        (void)got.ids();
        ++loaded;
      } catch (const nndex::Error&) {
      }
    }
  }
  EXPECT_GT(loaded, 0u);
  EXPECT_LT(loaded, 3000u);
}

// Exact float32 segments merge by concatenating their tiles, lanes shifted where a part starts inside
// a block: odd-sized adds give the oracle's results and similarities bit for bit.
TEST(Mutable, ConcatenatedTilesMatchTheOracle) {
  const std::size_t d = 19, k = 7;
  const auto data = nndex_test::random_floats(700 * d, 91);
  const auto queries = nndex_test::random_floats(9 * d, 92);
  Index index(MatrixView::row_major(data.data(), 37, d));
  Oracle oracle{d, {}};
  oracle.add(std::vector<float>(data.begin(), data.begin() + 37 * d), iota_ids(0, 37));
  std::size_t at = 37;
  for (const std::size_t n : {5, 100, 16, 1, 33, 64, 3, 200, 15, 17}) {
    const std::vector<float> rows(data.begin() + static_cast<std::ptrdiff_t>(at * d),
                                  data.begin() + static_cast<std::ptrdiff_t>((at + n) * d));
    oracle.add(rows, index.add(MatrixView::row_major(rows.data(), n, d)));
    at += n;
    const BatchResult got = index.search_batch(queries, 9, k);
    const BatchResult truth = oracle.search(queries, k);
    ASSERT_EQ(got.indices, truth.indices) << "after " << at << " rows";
    ASSERT_EQ(got.similarities, truth.similarities);
  }
  EXPECT_LT(index.segments(), 6u);
}

// Parts large enough to be copied by several threads, starting inside a block (4,099 and 4,101 rows),
// on a cosine index, where the added rows are normalised as they are packed.
TEST(Mutable, LargeConcatenationsOnTwoThreadsMatchTheOracle) {
  const std::size_t d = 64, k = 10;
  const std::size_t sizes[] = {4099, 4101, 5003, 7};
  std::size_t total = 0;
  for (std::size_t n : sizes) total += n;
  const auto data = nndex_test::random_floats(total * d, 93);
  const auto queries = nndex_test::random_floats(12 * d, 94);
  Index index(MatrixView::row_major(data.data(), sizes[0], d), options_for(kKinds[0]));  // exact_f32, 2 threads
  Oracle oracle{d, {}};
  oracle.add(std::vector<float>(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(sizes[0] * d)),
             iota_ids(0, sizes[0]));
  std::size_t at = sizes[0];
  for (std::size_t i = 1; i < std::size(sizes); ++i) {
    const std::vector<float> rows(data.begin() + static_cast<std::ptrdiff_t>(at * d),
                                  data.begin() + static_cast<std::ptrdiff_t>((at + sizes[i]) * d));
    oracle.add(rows, index.add(MatrixView::row_major(rows.data(), sizes[i], d)));
    at += sizes[i];
    const BatchResult got = index.search_batch(queries, 12, k);
    const BatchResult truth = oracle.search(queries, k);
    ASSERT_EQ(got.indices, truth.indices) << "after " << at << " rows";
    ASSERT_EQ(got.similarities, truth.similarities);
  }
  EXPECT_EQ(index.rows(), total);
}

// A bad value in added rows names its row within the call, on the tiles path (exact float32) and on
// the rebuild path (every other kind, merged with the new rows), and leaves the index as it was.
TEST(MutableErrors, BadAddedRowIsNamedOnEveryPath) {
  const std::size_t d = 16;
  const auto data = clustered(1300, d, 73);
  for (const Kind& kind : kKinds) {
    SCOPED_TRACE(kind.name);
    Index index(MatrixView::row_major(data.data(), 600, d), options_for(kind));
    std::vector<float> rows(data.begin() + 600 * d, data.end());
    rows[650 * d + 5] = std::numeric_limits<float>::infinity();
    try {
      index.add(MatrixView::row_major(rows.data(), 700, d));
      ADD_FAILURE() << "no error for an infinite value";
    } catch (const nndex::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("row 650"), std::string::npos) << e.what();
    }
    EXPECT_EQ(index.rows(), 600u);
    EXPECT_EQ(index.generation(), 0u);
    EXPECT_EQ(index.segments(), 1u);
  }
}

// A graph named explicitly stays a graph through compaction, however small (as its build was).
TEST(Mutable, CompactKeepsANamedGraph) {
  const std::size_t d = 16;
  const auto data = clustered(600, d, 71);
  IndexOptions o;
  o.approx = true;
  o.method = nndex::ApproxMethod::graph;
  Index index(MatrixView::row_major(data.data(), 600, d), o);
  ASSERT_EQ(index.method(), "graph");
  index.remove(iota_ids(0, 100));
  index.compact();
  EXPECT_EQ(index.method(), "graph");
  EXPECT_EQ(index.rows(), 500u);
}

TEST(Mutable, EmptiedIndexSearchesToNothingAndRefills) {
  const std::size_t d = 8;
  const auto data = nndex_test::random_floats(50 * d, 41);
  Index index(MatrixView::row_major(data.data(), 50, d));
  EXPECT_EQ(index.remove(iota_ids(0, 50)), 50u);
  EXPECT_EQ(index.rows(), 0u);
  const std::vector<float> q(data.begin(), data.begin() + d);
  EXPECT_TRUE(index.search(q, 5).empty());
  const std::string path = ::testing::TempDir() + "/emptied.nndex";
  index.save(path);
  Index loaded = Index::load(path);
  EXPECT_EQ(loaded.rows(), 0u);
  EXPECT_EQ(loaded.dims(), d);
  EXPECT_EQ(loaded.add(q, 1), std::vector<std::int64_t>{50});
  EXPECT_EQ(loaded.search(q, 5).at(0).index, 50);
}

// Searches racing adds and removes: each batch's results are exactly the oracle's for the state its
// generation names (no torn batch, no id that was not live then).
TEST(Mutable, SearchesSeeWholeMutations) {
  const std::size_t d = 16, k = 5, nq = 6;
  const auto data = nndex_test::random_floats(4000 * d, 51);
  const auto queries = nndex_test::random_floats(nq * d, 52);
  Index index(MatrixView::row_major(data.data(), 1000, d));
  std::mutex states_lock;
  std::map<std::uint64_t, std::set<std::int64_t>> states;  // generation -> live ids
  std::set<std::int64_t> live;
  for (std::int64_t i = 0; i < 1000; ++i) live.insert(i);
  states[0] = live;
  std::atomic<bool> done{false};
  std::atomic<int> checked{0};
  auto searcher = [&] {
    while (!done.load()) {
      const BatchResult got = index.search_batch(queries, nq, k);
      std::set<std::int64_t> state;
      {
        std::lock_guard g(states_lock);
        auto it = states.find(got.generation);
        if (it == states.end()) continue;  // published before the writer recorded it
        state = it->second;
      }
      Oracle oracle{d, {}};
      for (std::int64_t id : state)
        oracle.rows[id] = std::vector<float>(data.begin() + id * static_cast<std::int64_t>(d),
                                             data.begin() + (id + 1) * static_cast<std::int64_t>(d));
      const BatchResult truth = oracle.search(queries, k);
      ASSERT_EQ(got.indices, truth.indices) << "generation " << got.generation;
      ASSERT_EQ(got.similarities, truth.similarities);
      ++checked;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(searcher);
  std::mt19937 gen(53);
  for (std::int64_t next = 1000; next < 4000; next += 100) {
    const auto ids = index.add(MatrixView::row_major(data.data() + next * static_cast<std::int64_t>(d), 100, d));
    {
      std::lock_guard g(states_lock);
      live.insert(ids.begin(), ids.end());
      states[index.generation()] = live;
    }
    std::vector<std::int64_t> pick(live.begin(), live.end());
    std::shuffle(pick.begin(), pick.end(), gen);
    pick.resize(40);
    index.remove(pick);
    std::lock_guard g(states_lock);
    for (std::int64_t id : pick) live.erase(id);
    states[index.generation()] = live;
  }
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(checked.load(), 0);
}

}  // namespace
