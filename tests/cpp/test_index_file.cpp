// The single-file index format (docs/index-format.md): save/load/to_bytes/from_bytes round trips, the
// atomic save, OS errors, and a reader that refuses every malformed file with FileFormatError (never a
// crash, a hang or a huge allocation), including files whose checksums were recomputed after editing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checksum.hpp"
#include "nndex/nndex.hpp"
#include "test_helpers.hpp"

namespace {

namespace fs = std::filesystem;
using nndex::BatchResult;
using nndex::Index;
using nndex::IndexOptions;
using nndex::LoadOptions;
using nndex::SearchParams;
using Bytes = std::vector<std::byte>;

// ---------------------------------------------------------------------------------------------------
// Scratch folders and files.

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "nndex_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    if (info != nullptr) name += std::string("_") + info->name();
    for (char& c : name)
      if (c == '/') c = '_';
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Names in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

void write_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Indexes and result comparison.

BatchResult search(const Index& ix, const std::vector<float>& queries, std::size_t k, std::size_t nprobe = 0) {
  SearchParams p;
  p.nprobe = nprobe;
  return ix.search_batch(queries, queries.size() / ix.dims(), k, p);
}

bool bitwise_equal(const BatchResult& a, const BatchResult& b) {
  return a.queries == b.queries && a.k == b.k && a.indices == b.indices &&
         a.similarities.size() == b.similarities.size() &&
         std::memcmp(a.similarities.data(), b.similarities.data(), a.similarities.size() * sizeof(float)) == 0;
}

// Clustered rows (so IVF lists are uneven, with padding) with arbitrary scale (so dot products differ
// from cosines).
std::vector<float> clustered(std::size_t rows, std::size_t dims, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.5f, 2.0f);
  const std::size_t centres = 12;
  std::vector<float> c(centres * dims);
  for (float& x : c) x = normal(gen);
  std::vector<float> out(rows * dims);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t k = gen() % centres;
    const float s = scale(gen);
    for (std::size_t j = 0; j < dims; ++j) out[r * dims + j] = s * (c[k * dims + j] + 0.6f * normal(gen));
  }
  return out;
}

enum class Kind { Exact, ExactApproxFallback, Ivf, IvfCalibrated };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Exact: return "Exact";
    case Kind::ExactApproxFallback: return "ApproxFallback";
    case Kind::Ivf: return "Ivf";
    case Kind::IvfCalibrated: return "IvfCalibrated";
  }
  return "?";
}

IndexOptions options_for(Kind kind, bool normalized) {
  IndexOptions o;
  o.normalized = normalized;
  o.threads = 2;
  switch (kind) {
    case Kind::Exact: break;
    case Kind::ExactApproxFallback: o.approx = true; break;
    case Kind::Ivf:
      o.approx = true;
      o.nlist = 20;
      o.nprobe = 3;
      break;
    case Kind::IvfCalibrated:
      o.approx = true;
      o.nlist = 25;
      break;
  }
  return o;
}

struct Built {
  std::size_t rows, dims;
  std::vector<float> data;
  Index index;
};

Built build(Kind kind, bool normalized, std::size_t rows = 1203, std::size_t dims = 12, std::uint32_t seed = 7) {
  std::vector<float> data = clustered(rows, dims, seed);
  Index ix(data, rows, dims, options_for(kind, normalized));
  return {rows, dims, std::move(data), std::move(ix)};
}

// Everything observable about two indexes is the same, and they search bit for bit alike.
void expect_same_index(const Index& a, const Index& b, const std::vector<float>& queries, const std::string& where) {
  EXPECT_EQ(a.rows(), b.rows()) << where;
  EXPECT_EQ(a.dims(), b.dims()) << where;
  EXPECT_EQ(a.normalized(), b.normalized()) << where;
  EXPECT_EQ(a.approx(), b.approx()) << where;
  EXPECT_EQ(a.uses_ivf(), b.uses_ivf()) << where;
  EXPECT_EQ(a.nlist(), b.nlist()) << where;
  EXPECT_EQ(a.nprobe(), b.nprobe()) << where;
  EXPECT_EQ(a.isa(), b.isa()) << where;
  EXPECT_EQ(a.storage(), b.storage()) << where;
  std::vector<std::size_t> probes = {0};
  if (a.uses_ivf()) probes = {0, 1, 2, a.nlist()};
  for (const std::size_t nprobe : probes)
    for (const std::size_t k : {std::size_t{1}, std::size_t{10}, a.rows() + 5}) {
      EXPECT_TRUE(bitwise_equal(search(a, queries, k, nprobe), search(b, queries, k, nprobe)))
          << where << ": k " << k << " nprobe " << nprobe;
    }
  const std::span<const float> q(queries.data(), a.dims());
  const auto sa = a.search(q, 7), sb = b.search(q, 7);
  ASSERT_EQ(sa.size(), sb.size()) << where;
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].index, sb[i].index) << where;
    EXPECT_EQ(std::memcmp(&sa[i].similarity, &sb[i].similarity, sizeof(float)), 0) << where;
  }
}

// Runs `f`, which must throw exactly E; returns its message.
template <class E, class F>
std::string expect_exactly(F&& f, const std::string& where) {
  try {
    f();
  } catch (const nndex::Error& e) {
    EXPECT_TRUE(typeid(e) == typeid(E)) << where << ": threw " << typeid(e).name() << " (" << e.what() << ")";
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << where << ": threw a non-nndex exception (" << typeid(e).name() << "): " << e.what();
    return {};
  }
  ADD_FAILURE() << where << ": nothing thrown";
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------------
// Round trips.

enum class Mode { LoadMmap, LoadRead, Bytes };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::LoadMmap: return "LoadMmap";
    case Mode::LoadRead: return "LoadRead";
    case Mode::Bytes: return "Bytes";
  }
  return "?";
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<Kind, bool, Mode>> {};

TEST_P(RoundTrip, SameIndexAfterwards) {
  const auto [kind, normalized, mode] = GetParam();
  const Built b = build(kind, normalized);
  const Index& original = b.index;
  EXPECT_EQ(original.uses_ivf(), kind == Kind::Ivf || kind == Kind::IvfCalibrated);
  const std::vector<float> queries = clustered(25, b.dims, 99);
  const Bytes bytes = original.to_bytes();
  EXPECT_EQ(bytes.size() % 4096, 0u);

  TempDir dir;
  const std::string path = dir.file("index.nndex");
  LoadOptions lo;
  lo.mmap = mode == Mode::LoadMmap;
  lo.threads = 3;
  Index loaded = [&] {
    if (mode == Mode::Bytes) return Index::from_bytes(bytes, lo);
    original.save(path);
    EXPECT_TRUE(read_file(path) == bytes) << "save() and to_bytes() disagree";
    return Index::load(path, lo);
  }();
  EXPECT_EQ(loaded.threads(), 3u);
  expect_same_index(original, loaded, queries, "loaded");
  // Writing the loaded index again gives the same bytes.
  EXPECT_TRUE(loaded.to_bytes() == bytes);
  // A one-thread load searches the same.
  lo.threads = 1;
  const Index single = mode == Mode::Bytes ? Index::from_bytes(bytes, lo) : Index::load(path, lo);
  EXPECT_EQ(single.threads(), 1u);
  expect_same_index(original, single, queries, "one thread");
  // Moving the loaded index keeps its storage alive.
  const Index moved = std::move(loaded);
  expect_same_index(original, moved, queries, "moved");
}

INSTANTIATE_TEST_SUITE_P(
    All, RoundTrip,
    ::testing::Combine(::testing::Values(Kind::Exact, Kind::ExactApproxFallback, Kind::Ivf, Kind::IvfCalibrated),
                       ::testing::Bool(), ::testing::Values(Mode::LoadMmap, Mode::LoadRead, Mode::Bytes)),
    [](const ::testing::TestParamInfo<std::tuple<Kind, bool, Mode>>& info) {
      return std::string(kind_name(std::get<0>(info.param))) +
             (std::get<1>(info.param) ? "_DotProduct_" : "_Cosine_") + mode_name(std::get<2>(info.param));
    });

TEST(IndexFile, FromBytesNeedsNoAlignmentAndKeepsNoReference) {
  const Built b = build(Kind::Ivf, false);
  const Bytes bytes = b.index.to_bytes();
  // An odd address, and the buffer is destroyed right after loading.
  Index loaded = [&] {
    Bytes shifted(bytes.size() + 1);
    std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
    return Index::from_bytes(std::span<const std::byte>(shifted.data() + 1, bytes.size()));
  }();
  expect_same_index(b.index, loaded, clustered(10, b.dims, 98), "from unaligned bytes");
}

TEST(IndexFile, MappedIndexOutlivesItsFileName) {
  for (const Kind kind : {Kind::Exact, Kind::Ivf}) {
    const Built b = build(kind, false);
    TempDir dir;
    const std::string path = dir.file("gone.nndex");
    b.index.save(path);
    const Index loaded = Index::load(path);  // mmap by default
    fs::remove(path);
    expect_same_index(b.index, loaded, clustered(10, b.dims, 97), kind_name(kind));
  }
}

TEST(IndexFile, FormatMatchesTheDocumentation) {
  // normalized=true stores rows as given, so the tile layout can be checked against the input.
  const std::size_t rows = 37, dims = 5;
  const std::vector<float> data = nndex_test::random_floats(rows * dims, 11);
  IndexOptions o;
  o.normalized = true;
  const Bytes f = Index(data, rows, dims, o).to_bytes();
  auto u32 = [&](std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, f.data() + off, 4);
    return v;
  };
  auto u64 = [&](std::size_t off) {
    std::uint64_t v;
    std::memcpy(&v, f.data() + off, 8);
    return v;
  };
  ASSERT_GE(f.size(), 4096u);
  EXPECT_EQ(std::memcmp(f.data(), "NNDEXIDX", 8), 0);
  EXPECT_EQ(u32(8), 4u);            // version
  EXPECT_EQ(u32(12), 64u + 32u);    // header bytes, one section
  EXPECT_EQ(u32(16), 1u);           // flags: normalized
  EXPECT_EQ(u32(20), 16u);          // block rows
  EXPECT_EQ(u64(24), rows);
  EXPECT_EQ(u64(32), dims);
  EXPECT_EQ(u64(40), 0u);           // nlist
  EXPECT_EQ(u64(48), 0u);           // nprobe
  EXPECT_EQ(u64(56), 1u);           // sections
  EXPECT_EQ(u64(96), nndex::io::xxh64(f.data(), 96));
  EXPECT_EQ(u32(64), 1u);           // tiles
  EXPECT_EQ(u32(68), 4u);
  const std::size_t off = u64(72), len = u64(80);
  EXPECT_EQ(off % 4096, 0u);
  EXPECT_GE(off, 104u);
  EXPECT_EQ(len, 3u * 16u * dims * 4u);
  ASSERT_LE(off + len, f.size());
  EXPECT_EQ(u64(88), nndex::io::xxh64(f.data() + off, len));
  EXPECT_EQ(f.size(), (off + len + 4095) / 4096 * 4096);
  for (std::size_t block = 0; block < 3; ++block)
    for (std::size_t j = 0; j < dims; ++j)
      for (std::size_t r = 0; r < 16; ++r) {
        float v;
        std::memcpy(&v, f.data() + off + ((block * dims + j) * 16 + r) * 4, 4);
        const std::size_t row = block * 16 + r;
        EXPECT_EQ(v, row < rows ? data[row * dims + j] : 0.0f) << "block " << block << " dim " << j << " row " << r;
      }

  // IVF: four sections; ids are a permutation of the rows plus -1 padding; the cluster table is
  // contiguous and adds up; centroids are unit vectors.
  IndexOptions io;
  io.approx = true;
  io.nlist = 9;
  io.nprobe = 4;
  const std::vector<float> more = clustered(400, 6, 12);
  const Bytes g = Index(more, 400, 6, io).to_bytes();
  auto gu32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, g.data() + at, 4);
    return v;
  };
  auto gu64 = [&](std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, g.data() + at, 8);
    return v;
  };
  EXPECT_EQ(gu32(16), 2u | 4u);  // approx, IVF
  EXPECT_EQ(gu64(40), 9u);
  EXPECT_EQ(gu64(48), 4u);
  ASSERT_EQ(gu64(56), 4u);
  ASSERT_EQ(gu32(12), 64u + 4 * 32u);
  EXPECT_EQ(gu64(64 + 4 * 32), nndex::io::xxh64(g.data(), 64 + 4 * 32));
  std::uint64_t sec_off[5] = {}, sec_len[5] = {};
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t e = 64 + 32 * i;
    const std::uint32_t kind = gu32(e);
    ASSERT_GE(kind, 1u);
    ASSERT_LE(kind, 4u);
    EXPECT_EQ(gu32(e + 4), kind == 2 || kind == 3 ? 8u : 4u);
    sec_off[kind] = gu64(e + 8);
    sec_len[kind] = gu64(e + 16);
    EXPECT_EQ(sec_off[kind] % 4096, 0u);
    ASSERT_LE(sec_off[kind] + sec_len[kind], g.size());
    EXPECT_EQ(gu64(e + 24), nndex::io::xxh64(g.data() + sec_off[kind], sec_len[kind]));
  }
  ASSERT_EQ(sec_len[3], 9u * 3 * 8);
  std::uint64_t block = 0, total = 0;
  for (std::size_t c = 0; c < 9; ++c) {
    const std::uint64_t begin = gu64(sec_off[3] + 24 * c), end = gu64(sec_off[3] + 24 * c + 8),
                        crows = gu64(sec_off[3] + 24 * c + 16);
    EXPECT_EQ(begin, block);
    EXPECT_EQ(end - begin, (crows + 15) / 16);
    block = end;
    total += crows;
  }
  EXPECT_EQ(total, 400u);
  EXPECT_EQ(sec_len[1], block * 16 * 6 * 4);
  ASSERT_EQ(sec_len[2], block * 16 * 8);
  std::multiset<std::int64_t> ids;
  for (std::size_t i = 0; i < block * 16; ++i) {
    std::int64_t id;
    std::memcpy(&id, g.data() + sec_off[2] + 8 * i, 8);
    ids.insert(id);
  }
  for (std::int64_t r = 0; r < 400; ++r) EXPECT_EQ(ids.count(r), 1u) << "row " << r;
  EXPECT_EQ(ids.count(-1), block * 16 - 400);
  EXPECT_EQ(sec_len[4], 16u * 6 * 4);  // one block of centroids
  for (std::size_t c = 0; c < 9; ++c) {
    double s = 0.0;
    for (std::size_t j = 0; j < 6; ++j) {
      float v;
      std::memcpy(&v, g.data() + sec_off[4] + (j * 16 + c) * 4, 4);
      s += static_cast<double>(v) * v;
    }
    EXPECT_NEAR(s, 1.0, 1e-5) << "centroid " << c;
  }
}

// ---------------------------------------------------------------------------------------------------
// Atomic save and OS errors.

TEST(IndexFile, SaveLeavesOnlyTheTargetBehind) {
  const Built b = build(Kind::Ivf, false);
  TempDir dir;
  b.index.save(dir.file("a.nndex"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.nndex"});
  // A relative path works as well.
  {
    struct Restore {
      fs::path cwd = fs::current_path();
      ~Restore() { fs::current_path(cwd); }
    } restore;
    fs::current_path(dir.path());
    EXPECT_NO_THROW(b.index.save("b.nndex"));
  }
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"a.nndex", "b.nndex"}));
  EXPECT_TRUE(read_file(dir.file("b.nndex")) == b.index.to_bytes());
}

TEST(IndexFile, SaveReplacesAnExistingFile) {
  const Built a = build(Kind::Exact, false, 300, 8, 1);
  const Built b = build(Kind::Ivf, true, 900, 8, 2);
  const std::vector<float> queries = clustered(10, 8, 3);
  TempDir dir;
  const std::string path = dir.file("x.nndex");
  {
    const std::string junk(100000, 'j');  // longer than either index file
    write_file(path, std::as_bytes(std::span(junk)));
  }
  a.index.save(path);
  EXPECT_TRUE(read_file(path) == a.index.to_bytes());
  // A reader that mapped the old file keeps a consistent view while it is replaced.
  const Index mapped_a = Index::load(path);
  b.index.save(path);
  EXPECT_TRUE(read_file(path) == b.index.to_bytes());
  expect_same_index(a.index, mapped_a, queries, "old mapping");
  expect_same_index(b.index, Index::load(path), queries, "new file");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"x.nndex"});
}

TEST(IndexFile, SaveIntoAMissingFolderIsAnIoErrorAndLeavesNothing) {
  const Built b = build(Kind::Exact, false, 50, 4);
  TempDir dir;
  const std::string path = dir.file("missing/sub/x.nndex");
  try {
    b.index.save(path);
    ADD_FAILURE() << "no error";
  } catch (const nndex::IoError& e) {
    EXPECT_EQ(e.error_code(), ENOENT) << e.what();
    EXPECT_FALSE(std::string(e.what()).empty());
  }
  EXPECT_FALSE(fs::exists(dir.path() / "missing"));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(IndexFile, SaveOntoAFolderIsAnIoErrorAndLeavesNoTemporaryFile) {
  const Built b = build(Kind::Exact, false, 50, 4);
  TempDir dir;
  fs::create_directory(dir.path() / "taken");
  fs::create_directory(dir.path() / "taken" / "inside");
  expect_exactly<nndex::IoError>([&] { b.index.save(dir.file("taken")); }, "save onto a folder");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(fs::is_directory(dir.path() / "taken" / "inside"));
}

TEST(IndexFile, SaveIntoAReadOnlyFolderIsAnIoError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  const Built b = build(Kind::Exact, false, 50, 4);
  TempDir dir;
  fs::create_directory(dir.path() / "ro");
  fs::permissions(dir.path() / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  try {
    b.index.save(dir.file("ro/x.nndex"));
    ADD_FAILURE() << "no error";
  } catch (const nndex::IoError& e) {
    EXPECT_EQ(e.error_code(), EACCES) << e.what();
  }
  fs::permissions(dir.path() / "ro", fs::perms::owner_all);
  EXPECT_TRUE(fs::is_empty(dir.path() / "ro"));
}

// A write that fails half way (here: the file size limit, as a full disk would) removes the temporary
// file and leaves the previous file untouched.
TEST(IndexFile, FailedWriteLeavesThePreviousFile) {
  const Built small = build(Kind::Exact, false, 20, 4, 1);
  const Built big = build(Kind::Exact, false, 4000, 16, 2);
  TempDir dir;
  const std::string path = dir.file("x.nndex");
  small.index.save(path);
  const Bytes before = read_file(path);
  ASSERT_LT(before.size(), 3u * 4096);

  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = old;
  limited.rlim_cur = 3 * 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  int code = 0;
  try {
    big.index.save(path);
  } catch (const nndex::IoError& e) {
    code = e.error_code();
  } catch (...) {
    code = -1;
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(code, EFBIG);
  EXPECT_TRUE(read_file(path) == before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"x.nndex"});
}

TEST(IndexFile, LoadErrors) {
  TempDir dir;
  for (const bool mmap : {true, false}) {
    LoadOptions lo;
    lo.mmap = mmap;
    const std::string missing = dir.file("nope.nndex");
    try {
      Index::load(missing, lo);
      ADD_FAILURE() << "missing file loaded";
    } catch (const nndex::IoError& e) {
      EXPECT_EQ(e.error_code(), ENOENT);
      EXPECT_EQ(e.path(), missing);
      EXPECT_TRUE(contains(e.what(), "nope.nndex")) << e.what();
    }
    expect_exactly<nndex::IoError>([&] { Index::load(dir.path().string(), lo); }, "load a folder");
    try {
      Index::load(dir.path().string(), lo);
    } catch (const nndex::IoError& e) {
      EXPECT_EQ(e.error_code(), EISDIR);
    } catch (...) {
    }
    const std::string empty = dir.file("empty.nndex");
    write_file(empty, {});
    const std::string msg = expect_exactly<nndex::FileFormatError>([&] { Index::load(empty, lo); }, "empty file");
    EXPECT_TRUE(contains(msg, "empty.nndex")) << msg;
    EXPECT_TRUE(fs::exists("/dev/null"));
    expect_exactly<nndex::FileFormatError>([&] { Index::load("/dev/null", lo); }, "/dev/null");
  }
  expect_exactly<nndex::FileFormatError>([&] { Index::from_bytes({}); }, "no bytes");
}

// An IoError from save() should name the path the caller gave (error_code() and path() are what
// callers and the Python OSError use).
// DISABLED: fails today: path() and the message name the temporary file
// "<folder>/.x.nndex.tmp-<pid>" instead of "<folder>/x.nndex".
TEST(IndexFile, SaveErrorNamesTheTargetPath) {
  const Built b = build(Kind::Exact, false, 50, 4);
  TempDir dir;
  const std::string path = dir.file("missing/x.nndex");
  try {
    b.index.save(path);
    ADD_FAILURE() << "no error";
  } catch (const nndex::IoError& e) {
    EXPECT_EQ(e.path(), path);
    EXPECT_TRUE(contains(e.what(), "'" + path + "'")) << e.what();
  }
}

// Two threads saving to one path: the file must always be one of the two complete indexes, and
// neither call should fail (each save is atomic on its own).
// DISABLED: fails today. save_file names its temporary file ".<name>.tmp-<pid>", so two saves to
// one path from the same process share the temporary: one truncates the other's half-written file,
// the first rename moves a mix of both into place, and the second rename fails with ENOENT.
// Run with --gtest_also_run_disabled_tests.
TEST(IndexFile, ConcurrentSavesToOnePath) {
  const Built a = build(Kind::Exact, false, 3000, 32, 1);
  const Built b = build(Kind::Ivf, false, 3000, 32, 2);
  const Bytes ba = a.index.to_bytes(), bb = b.index.to_bytes();
  TempDir dir;
  const std::string path = dir.file("shared.nndex");
  std::atomic<int> errors{0};
  std::string first_error;
  int bad_files = 0;
  for (int round = 0; round < 30; ++round) {
    auto saver = [&](const Index& ix) {
      try {
        ix.save(path);
      } catch (const nndex::Error& e) {
        if (errors.fetch_add(1) == 0) first_error = e.what();
      }
    };
    std::thread t1(saver, std::cref(a.index));
    std::thread t2(saver, std::cref(b.index));
    t1.join();
    t2.join();
    const Bytes now = read_file(path);
    if (now != ba && now != bb) ++bad_files;
  }
  EXPECT_EQ(errors.load(), 0) << "first error: " << first_error;
  EXPECT_EQ(bad_files, 0) << "the file was neither index after a round of concurrent saves";
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"shared.nndex"});
}

// ---------------------------------------------------------------------------------------------------
// Malformed files. `Image` edits an index file in memory and can recompute its checksums, so each
// check below is reached by itself rather than caught by a checksum first.

constexpr std::size_t kVersionAt = 8, kHeaderBytesAt = 12, kFlagsAt = 16, kBlockRowsAt = 20, kRowsAt = 24,
                      kDimsAt = 32, kNlistAt = 40, kNprobeAt = 48, kSectionsAt = 56, kTableAt = 64;
enum : std::uint32_t { kTiles = 1, kIds = 2, kClusters = 3, kCentroids = 4 };

struct Image {
  Bytes b;

  std::uint32_t u32(std::size_t at) const {
    std::uint32_t v;
    std::memcpy(&v, b.data() + at, 4);
    return v;
  }
  std::uint64_t u64(std::size_t at) const {
    std::uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    return v;
  }
  void set_u32(std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
  void set_u64(std::size_t at, std::uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

  std::size_t header_bytes() const { return u32(kHeaderBytesAt); }
  std::size_t sections() const { return u64(kSectionsAt); }
  static std::size_t entry(std::size_t i) { return kTableAt + 32 * i; }
  std::uint32_t kind(std::size_t i) const { return u32(entry(i)); }
  std::uint64_t offset(std::size_t i) const { return u64(entry(i) + 8); }
  std::uint64_t length(std::size_t i) const { return u64(entry(i) + 16); }
  std::size_t section(std::uint32_t kind) const {
    for (std::size_t i = 0; i < sections(); ++i)
      if (this->kind(i) == kind) return i;
    ADD_FAILURE() << "no section of kind " << kind;
    return 0;
  }
  std::size_t at(std::uint32_t kind) const { return offset(section(kind)); }
  std::size_t end_of_sections() const {
    std::size_t end = 0;
    for (std::size_t i = 0; i < sections(); ++i) end = std::max<std::size_t>(end, offset(i) + length(i));
    return end;
  }

  // Recomputes the header checksum, where the header's length field leaves room for it.
  void fix_header() {
    if (b.size() < kTableAt) return;
    const std::size_t h = header_bytes();
    if (h >= kTableAt && h <= b.size() && b.size() - h >= 8) set_u64(h, nndex::io::xxh64(b.data(), h));
  }
  // Recomputes every section checksum that lies inside the file, then the header checksum.
  void fix_all() {
    if (b.size() < kTableAt) return;
    const std::size_t n = std::min<std::size_t>(sections(), 8);
    for (std::size_t i = 0; i < n; ++i) {
      if (entry(i) + 32 > b.size()) break;
      const std::uint64_t off = offset(i), len = length(i);
      if (off <= b.size() && len <= b.size() - off) set_u64(entry(i) + 24, nndex::io::xxh64(b.data() + off, len));
    }
    fix_header();
  }
};

// Small files for the corruption tests: 37 x 5 exact (3 blocks, the last padded) and 300 x 6 IVF in
// 7 lists.
const Image& exact_image() {
  static const Image img = [] {
    const std::vector<float> data = clustered(37, 5, 21);
    return Image{Index(data, 37, 5).to_bytes()};
  }();
  return img;
}

const Image& ivf_image() {
  static const Image img = [] {
    const std::vector<float> data = clustered(300, 6, 22);
    IndexOptions o;
    o.approx = true;
    o.nlist = 7;
    o.nprobe = 2;
    return Image{Index(data, 300, 6, o).to_bytes()};
  }();
  return img;
}

// Compressed storage: an exact int8 index and a bf16 IVF index (codes, scales, rows sections).
const Image& int8_image() {
  static const Image img = [] {
    const std::vector<float> data = clustered(53, 7, 23);
    IndexOptions o;
    o.storage = nndex::Storage::int8;
    return Image{Index(data, 53, 7, o).to_bytes()};
  }();
  return img;
}

const Image& graph_image() {
  static const Image img = [] {
    const std::vector<float> data = clustered(300, 6, 25);
    IndexOptions o;
    o.approx = true;
    o.method = nndex::ApproxMethod::graph;
    o.graph_degree = 8;
    return Image{Index(data, 300, 6, o).to_bytes()};
  }();
  return img;
}

const Image& bf16_ivf_image() {
  static const Image img = [] {
    const std::vector<float> data = clustered(300, 6, 24);
    IndexOptions o;
    o.approx = true;
    o.nlist = 5;
    o.nprobe = 2;
    o.storage = nndex::Storage::bf16;
    return Image{Index(data, 300, 6, o).to_bytes()};
  }();
  return img;
}

// The file must be refused with FileFormatError (its message containing `fragment`), from memory and
// from disk with both load modes, quickly.
void expect_refused(const Image& img, const std::string& fragment, const std::string& where, bool via_file = true) {
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = expect_exactly<nndex::FileFormatError>([&] { Index::from_bytes(img.b); }, where);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0) << where;
  if (!msg.empty()) {
    EXPECT_TRUE(contains(msg, fragment)) << where << ": message '" << msg << "' lacks '" << fragment << "'";
    EXPECT_TRUE(contains(msg, "<bytes>")) << where << ": " << msg;
  }
  if (!via_file) return;
  TempDir dir;
  const std::string path = dir.file("bad.nndex");
  write_file(path, img.b);
  for (const bool mmap : {true, false}) {
    LoadOptions lo;
    lo.mmap = mmap;
    const std::string m =
        expect_exactly<nndex::FileFormatError>([&] { Index::load(path, lo); }, where + (mmap ? " (mmap)" : " (read)"));
    if (!m.empty()) {
      EXPECT_TRUE(contains(m, path)) << m;
    }
  }
}

TEST(BadFile, ImageHelpersReproduceTheWriter) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    Image copy = *base;
    copy.fix_all();
    EXPECT_TRUE(copy.b == base->b);
    EXPECT_NO_THROW(Index::from_bytes(copy.b));
  }
}

TEST(BadFile, EmptyAndTooShort) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (const std::size_t n : {0u, 1u, 7u, 8u, 12u, 63u, 64u, 71u}) {
      Image img{Bytes(base->b.begin(), base->b.begin() + static_cast<std::ptrdiff_t>(n))};
      expect_refused(img, n == 0 ? "" : "too short", "length " + std::to_string(n), n < 16);
    }
    // Long enough for the fixed header, not for the section table and its checksum.
    const std::size_t h = base->header_bytes();
    for (std::size_t n = 72; n < h + 8; n += 5) {
      Image img{Bytes(base->b.begin(), base->b.begin() + static_cast<std::ptrdiff_t>(n))};
      expect_refused(img, "truncated header", "length " + std::to_string(n), false);
    }
  }
}

TEST(BadFile, WrongMagic) {
  for (std::size_t i = 0; i < 8; ++i) {
    Image img = exact_image();
    img.b[i] ^= std::byte{0x20};
    img.fix_all();
    expect_refused(img, "magic", "magic byte " + std::to_string(i), i == 0);
  }
  Image zeros{Bytes(8192)};
  expect_refused(zeros, "magic", "all zeros");
  const std::string text = "this is not an index file at all, just some text that is long enough for the header";
  expect_refused(Image{Bytes(reinterpret_cast<const std::byte*>(text.data()),
                             reinterpret_cast<const std::byte*>(text.data()) + text.size())},
                 "magic", "text");
}

TEST(BadFile, NewerAndInvalidVersions) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (const std::uint32_t v : {5u, 6u, 1000u, 0xFFFFFFFFu}) {
      Image img = *base;
      img.set_u32(kVersionAt, v);
      img.fix_header();  // so the version check itself is what refuses it
      const std::string where = "version " + std::to_string(v);
      expect_refused(img, "version " + std::to_string(v), where, v == 5);
      try {
        Index::from_bytes(img.b);
      } catch (const nndex::FileFormatError& e) {
        EXPECT_TRUE(contains(e.what(), "version 4")) << "the message should name this build's version: " << e.what();
        EXPECT_TRUE(contains(e.what(), "newer")) << e.what();
      }
    }
    // Version 1 (XXH3 checksums) is no longer read: the message names it and asks for a re-save.
    Image old = *base;
    old.set_u32(kVersionAt, 1);
    old.fix_header();
    expect_refused(old, "format version 1", "version 1");
    try {
      Index::from_bytes(old.b);
    } catch (const nndex::FileFormatError& e) {
      EXPECT_TRUE(contains(e.what(), "reads version 4")) << e.what();
      EXPECT_TRUE(contains(e.what(), "re-saved by this version")) << e.what();
    }
    // Version 2 (float32 storage only, the same layout) still loads.
    Image two = *base;
    two.set_u32(kVersionAt, 2);
    two.fix_header();
    EXPECT_NO_THROW(Index::from_bytes(two.b));
    Image zero = *base;
    zero.set_u32(kVersionAt, 0);
    zero.fix_header();
    expect_refused(zero, "version 0", "version 0");
  }
}

TEST(BadFile, HeaderChecksumMismatch) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    const std::size_t h = base->header_bytes();
    // Any byte of the checked header [16, H) (bytes before 16 have their own checks), or the sum.
    for (std::size_t at = kFlagsAt; at < h + 8; at += 3) {
      if (at >= kSectionsAt && at < kTableAt) continue;  // the section count is checked first
      Image img = *base;
      img.b[at] ^= std::byte{0x01};
      expect_refused(img, "header checksum", "byte " + std::to_string(at), at % 24 == 0);
    }
  }
}

TEST(BadFile, UnknownFlags) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (unsigned bit = 6; bit < 32; ++bit) {
      Image img = *base;
      img.set_u32(kFlagsAt, img.u32(kFlagsAt) | (1u << bit));
      img.fix_header();
      expect_refused(img, "unknown flags", "flag bit " + std::to_string(bit), bit == 6);
    }
    // The graph flag on a file without the graph sections.
    {
      Image img = *base;
      img.set_u32(kFlagsAt, img.u32(kFlagsAt) | (1u << 5) | (1u << 1));
      img.fix_header();
      expect_refused(img, base == &exact_image() ? "sections, expected 7" : "without IVF", "graph flag", false);
    }
    // The storage flags (bf16, int8) on a float32 file: their sections are missing.
    for (unsigned bit : {3u, 4u}) {
      Image img = *base;
      img.set_u32(kFlagsAt, img.u32(kFlagsAt) | (1u << bit));
      img.fix_header();
      expect_refused(img, "sections, expected", "storage flag bit " + std::to_string(bit), bit == 3);
    }
    Image both = *base;
    both.set_u32(kFlagsAt, both.u32(kFlagsAt) | 8u | 16u);
    both.fix_header();
    expect_refused(both, "both bf16 and int8", "both storage flags");
  }
}

TEST(BadFile, BlockSizeOtherThan16) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (const std::uint32_t rows : {0u, 1u, 8u, 15u, 17u, 32u, 64u, 0xFFFFFFFFu}) {
      Image img = *base;
      img.set_u32(kBlockRowsAt, rows);
      img.fix_header();
      expect_refused(img, "block size", "block rows " + std::to_string(rows), rows == 8);
    }
  }
}

TEST(BadFile, ZeroRowsOrDims) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (const std::size_t field : {kRowsAt, kDimsAt}) {
      Image img = *base;
      img.set_u64(field, 0);
      img.fix_header();
      expect_refused(img, "rows or dims is 0", field == kRowsAt ? "rows 0" : "dims 0");
    }
  }
}

TEST(BadFile, AbsurdShapesAreRefusedQuicklyWithoutAllocating) {
  const std::uint64_t huge[] = {std::uint64_t{1} << 60, std::uint64_t{1} << 63, ~std::uint64_t{0},
                                ~std::uint64_t{0} - 14, std::uint64_t{1} << 32, (std::uint64_t{1} << 62) + 3};
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    const bool ivf = base == &ivf_image();
    std::vector<std::size_t> fields = {kRowsAt, kDimsAt};
    if (ivf) fields.insert(fields.end(), {kNlistAt, kNprobeAt});
    for (const std::size_t field : fields)
      for (const std::uint64_t v : huge) {
        Image img = *base;
        img.set_u64(field, v);
        img.fix_all();
        expect_refused(img, "", "field " + std::to_string(field) + " = " + std::to_string(v), v == huge[0]);
      }
    // Both at once, and shapes whose product overflows.
    for (const auto& [rows, dims] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
             {std::uint64_t{1} << 60, std::uint64_t{1} << 60},
             {std::uint64_t{1} << 33, std::uint64_t{1} << 33},
             {base->b.size(), base->b.size()},
             {~std::uint64_t{0}, 1},
             {1, ~std::uint64_t{0}}}) {
      Image img = *base;
      img.set_u64(kRowsAt, rows);
      img.set_u64(kDimsAt, dims);
      img.fix_all();
      expect_refused(img, "", std::to_string(rows) + " x " + std::to_string(dims), false);
    }
  }
}

TEST(BadFile, MalformedSectionTable) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{1} << 60, ~std::uint64_t{0}}) {
      Image img = *base;
      img.set_u64(kSectionsAt, n);
      img.fix_header();
      expect_refused(img, "section table", "sections " + std::to_string(n), false);
    }
    for (const std::uint32_t h : {0u, 64u, 65u, 95u, 97u, 128u, 64u + 32 * 8, 0xFFFFFFFFu}) {
      if (h == base->header_bytes()) continue;
      Image img = *base;
      img.set_u32(kHeaderBytesAt, h);
      img.fix_header();
      expect_refused(img, "section table", "header bytes " + std::to_string(h), false);
    }
    // A section of an unknown kind instead of a needed one: refused by name before anything else.
    for (std::size_t i = 0; i < base->sections(); ++i) {
      Image img = *base;
      img.set_u32(Image::entry(i), 14);
      img.fix_header();
      expect_refused(img, "unknown section kind", "section " + std::to_string(i) + " of kind 14", i == 0);
    }
  }
}

TEST(BadFile, SectionOutsideTheFile) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    const std::uint64_t size = base->b.size();
    for (std::size_t i = 0; i < base->sections(); ++i) {
      for (const std::uint64_t off : {size, size + 4096, (size + 4095) / 4096 * 4096 + 4096, std::uint64_t{1} << 40,
                                      ~std::uint64_t{0} - 4095, std::uint64_t{1} << 63,
                                      (size - base->length(i)) / 4096 * 4096 + 4096}) {
        if (off <= size && base->length(i) <= size - off) continue;  // still inside
        Image img = *base;
        img.set_u64(Image::entry(i) + 8, off);
        img.fix_all();
        expect_refused(img, "", "section " + std::to_string(i) + " at " + std::to_string(off), off == size);
      }
    }
  }
}

TEST(BadFile, SectionLengthMismatch) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (std::size_t i = 0; i < base->sections(); ++i) {
      const std::uint64_t len = base->length(i);
      for (const std::uint64_t bad : {std::uint64_t{0}, len - 4, len + 4, len - 8, len + 8, len + 4096, len * 2,
                                      std::uint64_t{1} << 62, ~std::uint64_t{0}}) {
        if (bad == len) continue;
        Image img = *base;
        img.set_u64(Image::entry(i) + 16, bad);
        img.fix_all();
        expect_refused(img, "", "section " + std::to_string(i) + " length " + std::to_string(bad), bad == 0);
      }
    }
  }
}

TEST(BadFile, MisalignedSectionOffset) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (std::size_t i = 0; i < base->sections(); ++i) {
      for (const std::int64_t shift : {4, 8, 64, 2048, -4, -64, -2048}) {
        Image img = *base;
        img.set_u64(Image::entry(i) + 8, base->offset(i) + static_cast<std::uint64_t>(shift));
        img.fix_all();  // the shifted range's checksum is valid: only the alignment is wrong
        expect_refused(img, "", "section " + std::to_string(i) + " shifted " + std::to_string(shift), shift == 64);
      }
    }
  }
}

TEST(BadFile, PayloadChecksumMismatch) {
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    for (std::size_t i = 0; i < base->sections(); ++i) {
      const std::size_t off = base->offset(i), len = base->length(i);
      ASSERT_GT(len, 0u);
      for (const std::size_t at : {off, off + len / 2, off + len - 1}) {
        Image img = *base;
        img.b[at] ^= std::byte{0x40};
        expect_refused(img, "checksum mismatch", "section " + std::to_string(i) + " byte " + std::to_string(at),
                       at == off);
      }
      Image sum = *base;
      sum.set_u64(Image::entry(i) + 24, sum.u64(Image::entry(i) + 24) ^ 1);
      sum.fix_header();
      expect_refused(sum, "checksum mismatch", "section " + std::to_string(i) + " stored checksum", false);
    }
  }
}

void check_truncations(const Image& base, const std::string& name) {
  const std::size_t needed = base.end_of_sections();
  std::set<std::size_t> lengths;
  for (std::size_t n = 0; n < base.b.size(); n += 997) lengths.insert(n);
  for (std::size_t i = 0; i < base.sections(); ++i)
    for (const std::size_t edge : {base.offset(i), base.offset(i) + base.length(i)})
      for (const std::size_t n : {edge - 1, edge, edge + 1})
        if (n < base.b.size()) lengths.insert(n);
  std::size_t refused = 0;
  const std::vector<float> query(base.u64(kDimsAt), 0.5f);
  for (const std::size_t n : lengths) {
    Image img{Bytes(base.b.begin(), base.b.begin() + static_cast<std::ptrdiff_t>(n))};
    const std::string where = name + " truncated to " + std::to_string(n) + " of " + std::to_string(base.b.size());
    // Every cut is refused, including one that removes only padding after the last section: the
    // file must end at the page boundary after it.
    expect_refused(img, "", where, false);
    ++refused;
  }
  EXPECT_GE(refused, 5u) << name;
  // Through real files too, mapped and read.
  TempDir dir;
  const std::string path = dir.file("cut.nndex");
  for (std::size_t n = 1; n < needed; n += 4001) {
    write_file(path, std::span<const std::byte>(base.b.data(), n));
    for (const bool mmap : {true, false}) {
      LoadOptions lo;
      lo.mmap = mmap;
      expect_exactly<nndex::FileFormatError>([&] { Index::load(path, lo); },
                                             name + " file truncated to " + std::to_string(n));
    }
  }
}

TEST(BadFile, TruncatedAtManyLengths) {
  check_truncations(exact_image(), "exact");
  check_truncations(ivf_image(), "ivf");
  // A larger IVF file (several pages per section).
  const Built b = build(Kind::Ivf, true, 3000, 16, 5);
  check_truncations(Image{b.index.to_bytes()}, "larger ivf");
  const Built e = build(Kind::Exact, false, 3000, 16, 6);
  check_truncations(Image{e.index.to_bytes()}, "larger exact");
}

// ---------------------------------------------------------------------------------------------------
// IVF structure: cluster table and row ids, with every checksum recomputed.

struct Cluster {
  std::uint64_t begin, end, rows;
};

std::vector<Cluster> clusters_of(const Image& img) {
  const std::size_t off = img.at(kClusters);
  std::vector<Cluster> out(img.u64(kNlistAt));
  for (std::size_t c = 0; c < out.size(); ++c)
    out[c] = {img.u64(off + 24 * c), img.u64(off + 24 * c + 8), img.u64(off + 24 * c + 16)};
  return out;
}

void set_cluster(Image& img, std::size_t c, const Cluster& v) {
  const std::size_t off = img.at(kClusters);
  img.set_u64(off + 24 * c, v.begin);
  img.set_u64(off + 24 * c + 8, v.end);
  img.set_u64(off + 24 * c + 16, v.rows);
}

TEST(BadFile, IvfHeaderFields) {
  const Image& base = ivf_image();
  const std::uint64_t nlist = base.u64(kNlistAt), rows = base.u64(kRowsAt);
  ASSERT_EQ(nlist, 7u);
  ASSERT_EQ(base.u64(kNprobeAt), 2u);
  for (const std::uint64_t v : {std::uint64_t{0}, nlist - 1, nlist + 1, rows, rows + 1}) {
    Image img = base;
    img.set_u64(kNlistAt, v);
    img.fix_all();
    expect_refused(img, "", "nlist " + std::to_string(v), v == 0);
  }
  for (const std::uint64_t v : {std::uint64_t{0}, nlist + 1, rows}) {
    Image img = base;
    img.set_u64(kNprobeAt, v);
    img.fix_all();
    expect_refused(img, "nprobe", "nprobe " + std::to_string(v), v == 0);
  }
  // Header rows that the clusters do not add up to.
  for (const std::uint64_t v : {rows - 1, rows + 1, rows + 16}) {
    Image img = base;
    img.set_u64(kRowsAt, v);
    img.fix_all();
    expect_refused(img, "", "rows " + std::to_string(v), v == rows + 1);
  }
  // Any nprobe in [1, nlist] is valid.
  for (std::uint64_t v = 1; v <= nlist; ++v) {
    Image img = base;
    img.set_u64(kNprobeAt, v);
    img.fix_all();
    EXPECT_EQ(Index::from_bytes(img.b).nprobe(), v);
  }
}

TEST(BadFile, InconsistentClusterTable) {
  const Image& base = ivf_image();
  const std::vector<Cluster> cl = clusters_of(base);
  ASSERT_EQ(cl.size(), 7u);
  std::size_t padded = cl.size();  // a cluster with padding rows
  for (std::size_t c = 0; c < cl.size(); ++c)
    if (cl[c].rows % 16 != 0 && cl[c].rows > 16) padded = c;
  ASSERT_LT(padded, cl.size()) << "the test data needs a list with padding and more than one block";
  const std::uint64_t big = std::uint64_t{1} << 60;

  struct Edit {
    std::string name;
    std::size_t c;
    Cluster v;
  };
  std::vector<Edit> edits = {
      {"first list starts at block 1", 0, {1, cl[0].end + 1, cl[0].rows}},
      {"end before begin", padded, {cl[padded].begin, cl[padded].begin - 1, cl[padded].rows}},
      {"rows beyond the blocks", padded, {cl[padded].begin, cl[padded].end, (cl[padded].end - cl[padded].begin) * 16 + 1}},
      {"a spare block", padded, {cl[padded].begin, cl[padded].end, (cl[padded].end - cl[padded].begin - 1) * 16}},
      {"huge end", 6, {cl[6].begin, big, cl[6].rows}},
      {"huge rows", 6, {cl[6].begin, cl[6].end, big}},
      {"huge begin", 3, {big, big + 1, cl[3].rows}},
      {"all ones", 2, {~std::uint64_t{0}, ~std::uint64_t{0}, ~std::uint64_t{0}}},
      {"gap before a list", 4, {cl[4].begin + 1, cl[4].end + 1, cl[4].rows}},
      {"empty list claiming a block", padded, {cl[padded].begin, cl[padded].begin + 1, 0}},
  };
  for (const Edit& e : edits) {
    Image img = base;
    set_cluster(img, e.c, e.v);
    img.fix_all();
    expect_refused(img, "", e.name, &e == &edits.front());
  }
  // Lists swapped: the table is no longer in block order.
  {
    Image img = base;
    set_cluster(img, 1, cl[2]);
    set_cluster(img, 2, cl[1]);
    img.fix_all();
    expect_refused(img, "", "lists swapped", false);
  }
  // One row moved between two lists that keep their block counts: the table itself is consistent,
  // so the ids catch it (a real row's slot becomes padding, or padding becomes a row).
  for (std::size_t c = 0; c + 1 < cl.size(); ++c) {
    if (cl[c].rows == 0 || cl[c].rows % 16 == 1 || cl[c + 1].rows % 16 == 0) continue;
    Image img = base;
    set_cluster(img, c, {cl[c].begin, cl[c].end, cl[c].rows - 1});
    set_cluster(img, c + 1, {cl[c + 1].begin, cl[c + 1].end, cl[c + 1].rows + 1});
    img.fix_all();
    expect_refused(img, "row ids", "a row moved from list " + std::to_string(c), false);
  }
  // Every row claimed by one list, the others empty: blocks no longer match.
  {
    Image img = base;
    std::uint64_t total_blocks = cl.back().end;
    for (std::size_t c = 0; c + 1 < cl.size(); ++c) set_cluster(img, c, {0, 0, 0});
    set_cluster(img, cl.size() - 1, {0, total_blocks, base.u64(kRowsAt)});
    img.fix_all();
    expect_refused(img, "", "one list holds everything", false);
  }
}

TEST(BadFile, RowIdsOutOfRange) {
  const Image& base = ivf_image();
  const std::size_t ids_at = base.at(kIds);
  const std::size_t slots = base.length(base.section(kIds)) / 8;
  const std::int64_t rows = static_cast<std::int64_t>(base.u64(kRowsAt));
  std::size_t real = slots, padding = slots;
  for (std::size_t s = 0; s < slots; ++s) {
    std::int64_t id;
    std::memcpy(&id, base.b.data() + ids_at + 8 * s, 8);
    if (id >= 0 && real == slots) real = s;
    if (id == -1 && padding == slots) padding = s;
  }
  ASSERT_LT(real, slots);
  ASSERT_LT(padding, slots);
  auto with_id = [&](std::size_t slot, std::int64_t id) {
    Image img = base;
    std::memcpy(img.b.data() + ids_at + 8 * slot, &id, 8);
    img.fix_all();
    return img;
  };
  for (const std::int64_t id : {rows, rows + 1, std::int64_t{-1}, std::int64_t{-2},
                                std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()})
    expect_refused(with_id(real, id), "row ids", "real slot id " + std::to_string(id), id == rows);
  for (const std::int64_t id : {std::int64_t{0}, rows - 1, rows, std::int64_t{-2}})
    expect_refused(with_id(padding, id), "row ids", "padding slot id " + std::to_string(id), id == 0);
  // The last slot of the file's ids (padding or not) is checked too.
  expect_refused(with_id(slots - 1, rows + 100), "row ids", "last slot", false);
}

// Checksums only prove the bytes are the ones written, not that a writer was honest: a file whose
// floats were replaced by NaN (checksums recomputed) must be refused, or searched with the usual
// contract (min(k, rows) distinct rows).
// DISABLED: fails today: the reader does not look at the floats, rows scoring NaN never enter the
// top-k, and the missing results come back as row 0 with similarity 0, k times over (search()), or
// leave the caller's arrays unwritten (search_into()).
TEST(BadFile, NonFiniteFloatsInAChecksumValidFile) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Image img = exact_image();
  const std::size_t off = img.at(kTiles), len = img.length(img.section(kTiles));
  for (std::size_t i = 0; i < len; i += 4) std::memcpy(img.b.data() + off + i, &nan, 4);
  img.fix_all();
  try {
    const Index ix = Index::from_bytes(img.b);
    const auto r = ix.search(std::vector<float>(ix.dims(), 1.0f), 4);
    ASSERT_EQ(r.size(), 4u);
    std::set<std::int64_t> ids;
    for (const auto& n : r) ids.insert(n.index);
    EXPECT_EQ(ids.size(), 4u) << "row " << r[0].index << " returned " << 5 - ids.size() << " times";
  } catch (const nndex::FileFormatError&) {
    // Refusing the file is the other acceptable outcome.
  }
}

// ---------------------------------------------------------------------------------------------------
// Random mutations: bit flips, byte and field overwrites, truncations, with and without recomputed
// checksums. Loading either succeeds (and the index then searches without crashing) or throws an
// nndex::Error; nothing else is allowed.

TEST(BadFile, RandomMutations) {
  std::mt19937_64 rng(0x5eed5eedULL);
  const Image* bases[] = {&exact_image(), &ivf_image(), &int8_image(), &bf16_ivf_image(), &graph_image()};
  std::size_t loaded = 0, refused = 0, searched = 0;
  const std::size_t kIterations = 6000;  // half of them with recomputed checksums
  for (std::size_t it = 0; it < kIterations; ++it) {
    const Image& base = *bases[it % std::size(bases)];
    const bool fix = (it / std::size(bases)) % 2 == 1;
    Image img = base;
    const std::size_t h = base.header_bytes();
    const std::uint64_t interesting[] = {0, 1, 2, 3, 15, 16, 17, 4095, 4096, 8192, img.b.size(), img.b.size() - 1,
                                         base.u64(kRowsAt), base.u64(kRowsAt) + 1, base.u64(kNlistAt),
                                         0x7FFFFFFFULL, 0xFFFFFFFFULL, std::uint64_t{1} << 32,
                                         std::uint64_t{1} << 60, std::uint64_t{1} << 63, ~std::uint64_t{0}};
    auto position = [&]() -> std::size_t {
      const std::size_t r = rng() % 10;
      if (r < 5) return rng() % (h + 8);  // header, table and header checksum
      if (r < 9) {
        const std::size_t s = rng() % base.sections();
        return base.offset(s) + rng() % base.length(s);
      }
      return rng() % img.b.size();
    };
    const std::size_t mutations = 1 + rng() % 3;
    for (std::size_t m = 0; m < mutations && !img.b.empty(); ++m) {
      switch (rng() % 6) {
        case 0:
        case 1: {
          const std::size_t at = position() % img.b.size();
          img.b[at] ^= std::byte{static_cast<unsigned char>(1u << (rng() % 8))};
          break;
        }
        case 2: {
          const std::size_t at = position() % img.b.size();
          img.b[at] = std::byte{static_cast<unsigned char>(rng())};
          break;
        }
        case 3: {  // an interesting value over a whole aligned field
          const std::size_t at = position() / 8 * 8;
          if (at + 8 <= img.b.size()) img.set_u64(at, interesting[rng() % std::size(interesting)]);
          break;
        }
        case 4: {
          const std::size_t at = position() / 4 * 4;
          if (at + 4 <= img.b.size()) img.set_u32(at, static_cast<std::uint32_t>(interesting[rng() % std::size(interesting)]));
          break;
        }
        case 5:
          img.b.resize(rng() % (img.b.size() + 1));
          break;
      }
    }
    if (fix) img.fix_all();
    try {
      const Index ix = Index::from_bytes(img.b);
      ++loaded;
      // A loaded index answers a search with in-range rows (or refuses it with an nndex::Error).
      ASSERT_GE(ix.rows(), 1u);
      ASSERT_GE(ix.dims(), 1u);
      ASSERT_LE(ix.dims(), img.b.size());
      const std::vector<float> query(ix.dims(), 1.0f);
      for (const std::size_t nprobe : {std::size_t{0}, std::size_t{1}, ix.nlist()})
        for (const std::size_t k : {std::size_t{3}, ix.rows() + 1}) {
          SearchParams p;
          p.nprobe = nprobe;
          p.ef = nprobe;  // graphs: the default, 1 and a small beam
          try {
            const auto r = ix.search(query, k, p);
            ++searched;
            ASSERT_EQ(r.size(), std::min(k, ix.rows())) << "iteration " << it;
            for (const auto& n : r) {
              ASSERT_GE(n.index, 0) << "iteration " << it;
              ASSERT_LT(n.index, static_cast<std::int64_t>(ix.rows())) << "iteration " << it;
            }
          } catch (const nndex::Error&) {
          }
        }
    } catch (const nndex::Error&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << it << (fix ? " (checksums fixed)" : "") << ": non-nndex exception "
                    << typeid(e).name() << ": " << e.what();
    }
  }
  EXPECT_EQ(loaded + refused, kIterations);
  EXPECT_GT(refused, kIterations / 2);
  RecordProperty("loaded", std::to_string(loaded));
  RecordProperty("refused", std::to_string(refused));
  std::printf("random mutations: %zu loaded (%zu searches), %zu refused\n", loaded, searched, refused);
}


// ---------------------------------------------------------------------------------------------------
// XXH64, the index files' checksum (src/io/checksum.cpp), against published vectors: the empty input
// (seed 0 and 1, from the reference implementation's sanity tests) and the xxhsum output for "abc"
// and a 100-byte message; the other lengths cross-check the 32-byte stripe loop against the tail code
// (the pytest suite compares against the PyPI xxhash package on random inputs).

TEST(Checksum, Xxh64KnownVectors) {
  using nndex::io::xxh64;
  EXPECT_EQ(xxh64(nullptr, 0, 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxh64("", 0, 0), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxh64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(xxh64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
  const std::string fox = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(xxh64(fox.data(), fox.size(), 0), 0x0B242D361FDA71BCULL);
}

TEST(Checksum, Xxh64AnyAlignmentSameValue) {
  const std::vector<float> f = nndex_test::random_floats(200, 5);
  Bytes a(reinterpret_cast<const std::byte*>(f.data()), reinterpret_cast<const std::byte*>(f.data()) + 800);
  for (std::size_t len = 0; len < 300; len += 7)
    for (std::size_t off = 1; off < 8; ++off) {
      Bytes shifted(off + len);
      std::memcpy(shifted.data() + off, a.data(), len);
      EXPECT_EQ(nndex::io::xxh64(shifted.data() + off, len), nndex::io::xxh64(a.data(), len)) << len << " " << off;
    }
}

// ---------------------------------------------------------------------------------------------------
// Every byte of a saved file is checked: changing any one of them (header, section table, payload,
// padding between sections, padding at the end) makes it a FileFormatError.

void expect_every_byte_checked(const Bytes& good, const std::string& name) {
  ASSERT_NO_THROW(Index::from_bytes(good));
  std::size_t loaded = 0;
  for (std::size_t at = 0; at < good.size(); ++at)
    for (const std::byte mask : {std::byte{0x01}, std::byte{0x80}}) {
      Bytes b = good;
      b[at] ^= mask;
      try {
        Index::from_bytes(b);
        ++loaded;
        ADD_FAILURE() << name << ": byte " << at << " changed (^" << int(mask) << ") still loads";
      } catch (const nndex::FileFormatError&) {
      }
    }
  EXPECT_EQ(loaded, 0u) << name;
}

TEST(BadFile, FlippingAnyByteIsRefused) {
  expect_every_byte_checked(exact_image().b, "exact");
  expect_every_byte_checked(ivf_image().b, "ivf");
  // Appending or cutting bytes is refused too.
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    Bytes longer = base->b;
    longer.push_back(std::byte{0});
    EXPECT_THROW(Index::from_bytes(longer), nndex::FileFormatError);
    longer.resize(base->b.size() + 4096);
    EXPECT_THROW(Index::from_bytes(longer), nndex::FileFormatError);
  }
}

TEST(BadFile, FlippedByteThroughAMappedFile) {
  TempDir dir;
  const std::string path = dir.file("flip.nndex");
  const Bytes& good = ivf_image().b;
  for (const std::size_t at : {std::size_t{200}, good.size() / 2, good.size() - 1}) {
    Bytes b = good;
    b[at] ^= std::byte{0x10};
    write_file(path, b);
    for (const bool mmap : {true, false}) {
      LoadOptions lo;
      lo.mmap = mmap;
      expect_exactly<nndex::FileFormatError>([&] { Index::load(path, lo); }, "byte " + std::to_string(at));
    }
  }
}

// verify=false skips the checksum pass (a changed payload byte loads) but not the structure checks.
TEST(BadFile, VerifyFalseSkipsChecksumsOnly) {
  TempDir dir;
  const std::string path = dir.file("trusted.nndex");
  for (const Image* base : {&exact_image(), &ivf_image()}) {
    const std::size_t tiles = base->at(1);
    Bytes b = base->b;
    b[tiles + 2] ^= std::byte{0x01};  // the low mantissa bit of a stored float: still finite
    write_file(path, b);
    for (const bool mmap : {true, false}) {
      LoadOptions lo;
      lo.mmap = mmap;
      const std::string m = expect_exactly<nndex::FileFormatError>([&] { Index::load(path, lo); }, "verify=true");
      EXPECT_TRUE(contains(m, "checksum mismatch")) << m;
      lo.verify = false;
      const Index ix = Index::load(path, lo);
      EXPECT_EQ(ix.rows(), base->u64(kRowsAt));
      EXPECT_EQ(search(ix, std::vector<float>(ix.dims(), 0.5f), 3).indices.size(), 3u);
    }
    // The structure is still validated: padding, lengths, header checksum, truncation.
    LoadOptions lax;
    lax.verify = false;
    for (const std::size_t at : {std::size_t{8}, std::size_t{20}, tiles - 1, base->b.size() - 1}) {
      Bytes c = base->b;
      c[at] ^= std::byte{0x04};
      write_file(path, c);
      EXPECT_THROW(Index::load(path, lax), nndex::FileFormatError) << "byte " << at;
    }
    write_file(path, std::span<const std::byte>(base->b.data(), base->b.size() - 4096));
    EXPECT_THROW(Index::load(path, lax), nndex::FileFormatError);
  }
}

}  // namespace
