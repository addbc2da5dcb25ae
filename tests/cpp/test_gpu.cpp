// The GPU backend (Vulkan) against the CPU's exact search, on whatever Vulkan device the machine has:
// in CI that is Mesa's lavapipe, a CPU implementation, so these check correctness, not speed. With
// NNDEX_EXPECT_GPU=1 (the README's test command installs lavapipe and sets it) a missing device or a
// build without the backend fails instead of skipping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "nndex/gpu.hpp"
#include "nndex/index.hpp"
#include "test_helpers.hpp"

#if defined(NNDEX_HAS_GPU)
#include "gpu/gpu_context.hpp"
#include "gpu/gpu_search.hpp"
#endif

namespace {

using nndex::Backend;
using nndex::Index;
using nndex::IndexOptions;

bool expect_gpu() {
  const char* v = std::getenv("NNDEX_EXPECT_GPU");
  return v != nullptr && std::string(v) == "1";
}

#define NNDEX_REQUIRE_DEVICE()                                                                  \
  do {                                                                                          \
    if (nndex::gpu_devices().empty()) {                                                         \
      if (expect_gpu()) FAIL() << "NNDEX_EXPECT_GPU=1 but: " << nndex::gpu_unavailable_reason(); \
      GTEST_SKIP() << nndex::gpu_unavailable_reason();                                          \
    }                                                                                           \
  } while (0)

IndexOptions on_gpu(bool normalized = false) {
  IndexOptions o;
  o.normalized = normalized;
  o.backend = Backend::gpu;
  return o;
}

// The GPU's results against the CPU's: similarities within 1e-5 (relative, for raw dot products
// beyond 1: both sum in float32, in different orders), and the same ids except among such near ties.
void expect_same(const nndex::BatchResult& cpu, const nndex::BatchResult& gpu, const std::string& where) {
  ASSERT_EQ(cpu.queries, gpu.queries) << where;
  ASSERT_EQ(cpu.k, gpu.k) << where;
  for (std::size_t q = 0; q < cpu.queries; ++q)
    for (std::size_t j = 0; j < cpu.k; ++j) {
      const std::size_t at = q * cpu.k + j;
      const double tol = 1e-5 * std::max(1.0, std::fabs(static_cast<double>(cpu.similarities[at])));
      EXPECT_NEAR(cpu.similarities[at], gpu.similarities[at], tol) << where << " query " << q << " rank " << j;
      if (cpu.indices[at] != gpu.indices[at]) {
        const bool tie = (j > 0 && std::fabs(cpu.similarities[at] - cpu.similarities[at - 1]) <= tol) ||
                         (j + 1 < cpu.k && std::fabs(cpu.similarities[at] - cpu.similarities[at + 1]) <= tol);
        EXPECT_TRUE(tie) << where << " query " << q << " rank " << j << ": cpu id " << cpu.indices[at] << ", gpu id "
                         << gpu.indices[at];
      }
    }
}

TEST(Gpu, DevicesAreListedWithTheirKind) {
  NNDEX_REQUIRE_DEVICE();
  const auto devices = nndex::gpu_devices();
  for (std::size_t i = 0; i < devices.size(); ++i) {
    EXPECT_EQ(devices[i].index, i);
    EXPECT_FALSE(devices[i].name.empty());
    EXPECT_EQ(devices[i].software, devices[i].type == "cpu") << devices[i].name;
    EXPECT_FALSE(devices[i].api_version.empty());
  }
  EXPECT_EQ(nndex::gpu_unavailable_reason(), "");
}

TEST(Gpu, MatchesTheCpuOnAwkwardShapes) {
  NNDEX_REQUIRE_DEVICE();
  struct Shape {
    std::size_t rows, dims, queries;
  };
  const Shape shapes[] = {{1, 1, 1},    {5, 3, 2},     {1000, 17, 7},  {1023, 48, 5}, {1025, 128, 9},
                          {3000, 384, 3}, {2100, 768, 2}, {100000, 3, 2}, {1000, 48, 2048}};
  for (const Shape& s : shapes)
    for (bool normalized : {false, true}) {
      const auto data = nndex_test::random_floats(s.rows * s.dims, 11 + static_cast<std::uint32_t>(s.rows));
      const auto queries = nndex_test::random_floats(s.queries * s.dims, 7);
      IndexOptions cpu_options;
      cpu_options.normalized = normalized;
      const Index cpu(data.data(), s.rows, s.dims, cpu_options);
      const Index gpu(data.data(), s.rows, s.dims, on_gpu(normalized));
      EXPECT_EQ(gpu.backend(), "gpu");
      ASSERT_TRUE(gpu.gpu_device().has_value());
      for (std::size_t k : {1, 10, 100}) {
        const std::string where = std::to_string(s.rows) + "x" + std::to_string(s.dims) + " n=" +
                                  std::to_string(s.queries) + " k=" + std::to_string(k) +
                                  (normalized ? " dot" : " cosine");
        expect_same(cpu.search_batch(queries, s.queries, k), gpu.search_batch(queries, s.queries, k), where);
      }
    }
}

TEST(Gpu, LargeKMergesOnTheHost) {
  NNDEX_REQUIRE_DEVICE();
  const std::size_t rows = 5000, dims = 16;
  const auto data = nndex_test::random_floats(rows * dims, 3);
  const auto queries = nndex_test::random_floats(3 * dims, 4);
  const Index cpu(data.data(), rows, dims);
  const Index gpu(data.data(), rows, dims, on_gpu());
  for (std::size_t k : {511, 512, 513, 1024, 1500, 5000, 6000})
    expect_same(cpu.search_batch(queries, 3, k), gpu.search_batch(queries, 3, k), "k=" + std::to_string(k));
}

TEST(Gpu, TiesGoToTheLowerId) {
  NNDEX_REQUIRE_DEVICE();
  const std::size_t rows = 3000, dims = 8;
  std::vector<float> data(rows * dims, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) data[r * dims + r % 3] = 1.0f;  // three distinct rows, repeated
  const std::vector<float> query = {1, 0, 0, 0, 0, 0, 0, 0};
  const Index gpu(data.data(), rows, dims, on_gpu());
  const auto r = gpu.search(query, 20);
  ASSERT_EQ(r.size(), 20u);
  for (std::size_t j = 0; j < r.size(); ++j) EXPECT_EQ(r[j].index, static_cast<std::int64_t>(3 * j));
}

TEST(Gpu, FiltersAndMutationsMatchTheCpu) {
  NNDEX_REQUIRE_DEVICE();
  const std::size_t rows = 4000, dims = 24;
  const auto data = nndex_test::random_floats(rows * dims, 5);
  const auto more = nndex_test::random_floats(700 * dims, 6);
  const auto queries = nndex_test::random_floats(4 * dims, 8);
  Index cpu(data.data(), rows, dims);
  Index gpu(data.data(), rows, dims, on_gpu());
  std::vector<std::int64_t> gone;
  for (std::int64_t id = 0; id < 4000; id += 3) gone.push_back(id);
  for (Index* i : {&cpu, &gpu}) {
    i->add(more, 700);
    i->remove(gone);
  }
  EXPECT_EQ(gpu.segments(), cpu.segments());
  expect_same(cpu.search_batch(queries, 4, 10), gpu.search_batch(queries, 4, 10), "after add + remove");
  std::vector<std::int64_t> allowed;
  for (std::int64_t id = 1; id < 4700; id += 7) allowed.push_back(id);
  nndex::SearchParams p;
  p.filter = nndex::Filter::allow_ids(allowed);
  expect_same(cpu.search_batch(queries, 4, 50, p), gpu.search_batch(queries, 4, 50, p), "filtered");
  cpu.compact();
  gpu.compact();
  expect_same(cpu.search_batch(queries, 4, 10), gpu.search_batch(queries, 4, 10), "after compact");
  EXPECT_EQ(gpu.backend(), "gpu");
}

TEST(Gpu, LoadsOntoTheGpuAndSavesWhatTheCpuWould) {
  NNDEX_REQUIRE_DEVICE();
  const std::size_t rows = 2000, dims = 32;
  const auto data = nndex_test::random_floats(rows * dims, 9);
  const auto queries = nndex_test::random_floats(2 * dims, 10);
  const Index cpu(data.data(), rows, dims);
  const Index gpu(data.data(), rows, dims, on_gpu());
  EXPECT_EQ(cpu.to_bytes(), gpu.to_bytes());
  nndex::LoadOptions lo;
  lo.backend = Backend::gpu;
  const Index loaded = Index::from_bytes(cpu.to_bytes(), lo);
  EXPECT_EQ(loaded.backend(), "gpu");
  expect_same(cpu.search_batch(queries, 2, 10), loaded.search_batch(queries, 2, 10), "loaded");
}

TEST(Gpu, ApproximateAndCompressedIndexesStayOnTheCpu) {
  NNDEX_REQUIRE_DEVICE();
  const auto data = nndex_test::random_floats(3000 * 16, 12);
  IndexOptions o = on_gpu();
  o.storage = nndex::Storage::int8;
  EXPECT_EQ(Index(data.data(), 3000, 16, o).backend(), "cpu");
}

TEST(Gpu, AutomaticNeverTakesASoftwareDevice) {
  NNDEX_REQUIRE_DEVICE();
  bool hardware = false;
  for (const auto& d : nndex::gpu_devices()) hardware |= !d.software;
  const auto data = nndex_test::random_floats(100 * 8, 13);
  IndexOptions o;
  o.backend = Backend::automatic;
  const Index i(data.data(), 100, 8, o);
  EXPECT_EQ(i.backend(), hardware ? "gpu" : "cpu");
}

TEST(Gpu, ADeviceOutOfRangeIsAGpuError) {
  NNDEX_REQUIRE_DEVICE();
  const auto data = nndex_test::random_floats(10 * 4, 14);
  IndexOptions o = on_gpu();
  o.gpu_device = nndex::gpu_devices().size();
  EXPECT_THROW(Index(data.data(), 10, 4, o), nndex::GpuError);
}

#if defined(NNDEX_HAS_GPU)
// A matrix split over several device buffers (the binding limit lowered) scores like one.
TEST(Gpu, MatrixSplitOverSeveralBuffers) {
  NNDEX_REQUIRE_DEVICE();
  const std::size_t rows = 9000, dims = 20;  // 9 blocks of 1024 rows, 80 KiB each
  const auto data = nndex_test::random_floats(rows * dims, 15);
  const auto queries = nndex_test::random_floats(3 * dims, 16);
  auto ctx = nndex::gpu::Context::open(std::nullopt);
  const nndex::gpu::GpuSearch split(ctx, data.data(), rows, dims, 3 * 20 / 4 * 1024 * 16);  // 3 blocks per buffer
  IndexOptions o;
  o.normalized = true;
  const Index cpu(data.data(), rows, dims, o);
  const auto want = cpu.search_batch(queries, 3, 25);
  nndex::BatchResult got;
  got.queries = 3;
  got.k = 25;
  got.indices.resize(75);
  got.similarities.resize(75);
  split.search(queries.data(), 3, 25, nullptr, got.indices.data(), got.similarities.data());
  expect_same(want, got, "three buffers");
}
#else
TEST(Gpu, ThisBuildHasNoGpuBackend) {
  if (expect_gpu()) FAIL() << "NNDEX_EXPECT_GPU=1 but nndex was built without the GPU backend";
  EXPECT_FALSE(nndex::gpu_backend_built());
  EXPECT_TRUE(nndex::gpu_devices().empty());
  const auto data = nndex_test::random_floats(10 * 4, 14);
  EXPECT_THROW(Index(data.data(), 10, 4, on_gpu()), nndex::GpuError);
}
#endif

}  // namespace
