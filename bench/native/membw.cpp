// membw.cpp -- machine limits for the nndex benchmarks.
//
// 1. Sustained memory READ bandwidth on a working set far larger than the last-level cache, on 1
//    thread and on N threads. Each thread streams its own contiguous slice. Several read kernels
//    are tried and the best is reported: SSE2, AVX2 and AVX-512 loads (whichever the CPU has), each
//    with 1, 2, 4 or 8 concurrent streams per thread (the slice is cut into that many sub-slices
//    read side by side, as nndex's tile kernel reads 8 row blocks at once). The buffer is aligned
//    to 2 MiB and madvise(MADV_HUGEPAGE)'d, as nndex's own storage is, so both see the same TLB cost.
// 2. Optionally (--fma) the peak floating-point throughput of fused multiply-add loops for each
//    SIMD level the CPU supports, on 1 thread and on N threads.
//
// Threads: one persistent worker per thread, pinned to its own CPU of the allowed set (round robin)
// and released together by a spinning barrier, so a timed pass never includes thread creation and
// the N threads really run at the same time. Each pass records every thread's start, end and
// thread CPU time; a pass counts from the first start to the last end. The JSON reports, for the
// best pass, the share of that wall time the threads actually held a CPU ("cpu_share"): well below
// 1 means other processes took the cores, and the figure is then a lower bound.
//
// Why the rework (the first version reported an all-core AVX-512 peak below the 1-thread peak on a
// 2-core machine): it timed 3 long passes (0.1 s each) with freshly created, unpinned threads. One
// descheduled thread stretches a whole pass, and with 3 passes on a shared machine every pass
// tends to be hit. Now many short passes (about 20 ms) are timed and the best is kept, and the
// threads are pinned; when the best pass still shows contention, more passes are taken (up to a
// few seconds) to find a clean one, and "cpu_share" makes any remaining contention visible.
//
// Build (deliberately plain: baseline ISA, no -march=native; the SIMD kernels use target
// attributes and run only after a run-time CPU check):
//     c++ -O2 -std=c++17 -pthread membw.cpp -o membw
//
// Usage:
//     membw [--mib N] [--reps N] [--threads N] [--fma] [--no-pin]
//
//   --mib N      working set in MiB (default 1024)
//   --reps N     timed passes per read configuration (default 5); best and median are reported.
//                The FMA probe times max(15, 3*N) short passes per configuration.
//   --threads N  thread count for the multi-threaded run
//                (default: the CPUs this process may run on)
//   --fma        also run the peak-FLOP probe
//   --no-pin     do not pin threads to CPUs
//
// Prints one JSON object on stdout; GB means 1e9 bytes, GFLOP 1e9 flops.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define MEMBW_X86 1
#include <immintrin.h>
#else
#define MEMBW_X86 0
#endif

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double thread_cpu_s() {
#if defined(__linux__)
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
#else
  return 0.0;
#endif
}

// Result sink so that the compiler cannot drop the reads or the arithmetic.
volatile float g_sink = 0.0f;

// ---------------------------------------------------------------------------
// CPUs and pinning
// ---------------------------------------------------------------------------
std::vector<int> allowed_cpus() {
  std::vector<int> out;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
#endif
  return out;
}

bool pin_to(int cpu) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
#else
  (void)cpu;
  return false;
#endif
}

// ---------------------------------------------------------------------------
// A team of persistent threads. run(part) starts part(t) on threads 0..n-1 together (the caller is
// thread 0) and returns the per-thread timing of that pass.
// ---------------------------------------------------------------------------
struct PassTiming {
  double wall = 0.0;       // first start to last end, seconds
  double cpu_share = 0.0;  // mean over threads of (thread CPU time / wall)
};

class Team {
 public:
  Team(int n, bool pin) : n_(n), slots_(static_cast<size_t>(n)) {
    const std::vector<int> cpus = allowed_cpus();
    if (pin && !cpus.empty()) {
      cpus_.resize(static_cast<size_t>(n));
      for (int t = 0; t < n; ++t) cpus_[static_cast<size_t>(t)] = cpus[static_cast<size_t>(t) % cpus.size()];
    }
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { worker(t); });
    if (!cpus_.empty()) {
      // Pin the caller for the team's lifetime; restored in the destructor.
#if defined(__linux__)
      sched_getaffinity(0, sizeof(saved_), &saved_);
#endif
      pinned_ = pin_to(cpus_[0]);
    }
  }

  ~Team() {
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_acq_rel);
    for (auto& w : workers_) w.join();
#if defined(__linux__)
    if (pinned_) sched_setaffinity(0, sizeof(saved_), &saved_);
#endif
  }

  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  int size() const { return n_; }
  bool pinned() const { return !cpus_.empty(); }

  PassTiming run(const std::function<void(int)>& part) {
    part_ = &part;
    done_.store(0, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);  // releases the workers
    run_one(0);
    while (done_.load(std::memory_order_acquire) < n_ - 1) {
    }
    double first = slots_[0].start, last = slots_[0].end, share = 0.0;
    for (const Slot& s : slots_) {
      first = std::min(first, s.start);
      last = std::max(last, s.end);
    }
    PassTiming out;
    out.wall = std::max(last - first, 1e-9);
    for (const Slot& s : slots_) share += s.cpu / out.wall;
    out.cpu_share = share / n_;
    return out;
  }

 private:
  struct alignas(64) Slot {
    double start = 0, end = 0, cpu = 0;
  };

  void run_one(int t) {
    Slot& s = slots_[static_cast<size_t>(t)];
    const double c0 = thread_cpu_s();
    s.start = now_s();
    (*part_)(t);
    s.end = now_s();
    s.cpu = thread_cpu_s() - c0;
  }

  void worker(int t) {
    if (!cpus_.empty()) pin_to(cpus_[static_cast<size_t>(t)]);
    unsigned seen = 0;
    for (;;) {
      // Spin (with a pause) for the next pass: a sleeping worker would start late.
      unsigned g;
      while ((g = generation_.load(std::memory_order_acquire)) == seen) {
#if MEMBW_X86
        _mm_pause();
#endif
      }
      seen = g;
      if (stop_) return;
      run_one(t);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  int n_;
  std::vector<Slot> slots_;
  std::vector<int> cpus_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* part_ = nullptr;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  bool pinned_ = false;
#if defined(__linux__)
  cpu_set_t saved_{};
#endif
};

// ---------------------------------------------------------------------------
// Read kernels. Each step loads 8 vectors: 8/S consecutive vectors from each of S streams, into 8
// independent accumulators. GCC vector extensions inside a target-attributed function compile to
// that ISA's registers; `#pragma GCC unroll` keeps the accumulators in registers at -O2.
// ---------------------------------------------------------------------------
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));

#define MEMBW_READ_KERNEL(NAME, ATTR, VEC, WIDTH)                                         \
  template <int S>                                                                        \
  ATTR float NAME(const float* p, size_t n) {                                             \
    constexpr int kPer = 8 / S;                      /* vectors per stream per step */    \
    constexpr size_t kStep = static_cast<size_t>(kPer) * (WIDTH); /* floats per stream */ \
    const size_t per_stream = n / S / kStep * kStep;                                      \
    VEC acc[8];                                                                           \
    _Pragma("GCC unroll 8") for (int a = 0; a < 8; ++a) acc[a] = VEC{};                   \
    for (size_t i = 0; i < per_stream; i += kStep) {                                      \
      _Pragma("GCC unroll 8") for (int s = 0; s < S; ++s) {                               \
        const VEC* src = reinterpret_cast<const VEC*>(p + static_cast<size_t>(s) * per_stream + i); \
        _Pragma("GCC unroll 8") for (int v = 0; v < kPer; ++v) acc[s * kPer + v] += src[v]; \
      }                                                                                   \
    }                                                                                     \
    VEC total = acc[0];                                                                   \
    _Pragma("GCC unroll 8") for (int a = 1; a < 8; ++a) total += acc[a];                  \
    float sum = 0.0f;                                                                     \
    for (int l = 0; l < (WIDTH); ++l) sum += total[l];                                    \
    for (size_t i = per_stream * S; i < n; ++i) sum += p[i];                              \
    return sum;                                                                           \
  }

#if MEMBW_X86
MEMBW_READ_KERNEL(read_sse2, , v4f, 4)
MEMBW_READ_KERNEL(read_avx2, __attribute__((target("avx2"))), v8f, 8)
MEMBW_READ_KERNEL(read_avx512, __attribute__((target("avx512f"))), v16f, 16)
#else
MEMBW_READ_KERNEL(read_generic, , v4f, 4)
#endif

using ReadFn = float (*)(const float*, size_t);

struct ReadKernel {
  std::string name;  // e.g. "avx512x4": ISA and streams per thread
  ReadFn fn;
};

std::vector<ReadKernel> available_read_kernels() {
  std::vector<ReadKernel> out;
#if MEMBW_X86
  __builtin_cpu_init();
  out.push_back({"sse2x1", read_sse2<1>});
  out.push_back({"sse2x4", read_sse2<4>});
  if (__builtin_cpu_supports("avx2")) {
    out.push_back({"avx2x1", read_avx2<1>});
    out.push_back({"avx2x4", read_avx2<4>});
  }
  if (__builtin_cpu_supports("avx512f")) {
    out.push_back({"avx512x1", read_avx512<1>});
    out.push_back({"avx512x2", read_avx512<2>});
    out.push_back({"avx512x4", read_avx512<4>});
    out.push_back({"avx512x8", read_avx512<8>});
  }
#else
  out.push_back({"genericx1", read_generic<1>});
  out.push_back({"genericx4", read_generic<4>});
  out.push_back({"genericx8", read_generic<8>});
#endif
  return out;
}

struct Slice {
  size_t begin, end;
};

// Contiguous slices whose boundaries are multiples of 1024 floats (4 KiB).
std::vector<Slice> make_slices(size_t n, int parts) {
  std::vector<Slice> out;
  const size_t quantum = 1024;
  const size_t blocks = n / quantum;
  size_t start = 0;
  for (int t = 0; t < parts; ++t) {
    size_t end = (t == parts - 1) ? n : (blocks * static_cast<size_t>(t + 1) / parts) * quantum;
    out.push_back({start, end});
    start = end;
  }
  return out;
}

struct Stats {
  double best = 0.0, median = 0.0, cpu_share = 0.0;  // cpu_share of the best pass
};

// values: (rate, cpu_share) per pass.
Stats summarize(std::vector<std::pair<double, double>> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.best = v.back().first;
  s.cpu_share = v.back().second;
  const size_t m = v.size();
  s.median = (m % 2) ? v[m / 2].first : 0.5 * (v[m / 2 - 1].first + v[m / 2].first);
  return s;
}

// A shared machine can take a core away during a pass. After the requested passes, keep going (up
// to a few seconds) until one pass ran with every thread holding a CPU at least 95% of the time.
constexpr double kCleanShare = 0.95;
constexpr double kExtraBudgetS = 3.0;

bool needs_more(const std::vector<std::pair<double, double>>& passes, double t0, double budget_s) {
  if (now_s() - t0 > budget_s) return false;
  const auto best = std::max_element(passes.begin(), passes.end());
  return best == passes.end() || best->second < kCleanShare;
}

// extend: after `reps` passes, look for a clean pass (see needs_more).
Stats measure_read(Team& team, const float* data, size_t n, ReadFn fn, int reps, bool extend) {
  const int nthreads = team.size();
  const auto slices = make_slices(n, nthreads);
  std::vector<float> partial(static_cast<size_t>(nthreads) * 16, 0.0f);  // padded: no false sharing
  auto part = [&](int t) {
    const Slice s = slices[static_cast<size_t>(t)];
    partial[static_cast<size_t>(t) * 16] = fn(data + s.begin, s.end - s.begin);
  };
  team.run(part);  // untimed warm-up pass
  std::vector<std::pair<double, double>> gbps;
  const double t0 = now_s();
  for (int r = 0; r < reps || (extend && needs_more(gbps, t0, kExtraBudgetS)); ++r) {
    const PassTiming pt = team.run(part);
    gbps.emplace_back(static_cast<double>(n) * sizeof(float) / pt.wall / 1e9, pt.cpu_share);
  }
  float total = 0.0f;
  for (int t = 0; t < nthreads; ++t) total += partial[static_cast<size_t>(t) * 16];
  g_sink = total;
  return summarize(gbps);
}

// ---------------------------------------------------------------------------
// Peak-FLOP probe. Each kernel runs 12 independent dependency chains of a = a * b + c, enough to
// cover latency x issue width on current cores (4-cycle FMA latency x 2 pipes needs 8).
// ---------------------------------------------------------------------------
constexpr int kChains = 12;

// Explicit named registers: a loop over an array of vectors would stay in memory at -O2 and measure
// store forwarding instead of the FMA units.
#define MEMBW_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#if MEMBW_X86
// SSE2 has no FMA: one multiply plus one add per lane (2 flops).
float chains_sse2(long iters) {
#define X(j) __m128 a##j = _mm_set1_ps(1.0f + 0.01f * (j));
  MEMBW_CHAINS(X)
#undef X
  const __m128 b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-6f);
  for (long i = 0; i < iters; ++i) {
#define X(j) a##j = _mm_add_ps(_mm_mul_ps(a##j, b), c);
    MEMBW_CHAINS(X)
#undef X
  }
  __m128 s = _mm_setzero_ps();
#define X(j) s = _mm_add_ps(s, a##j);
  MEMBW_CHAINS(X)
#undef X
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) float chains_avx2_fma(long iters) {
#define X(j) __m256 a##j = _mm256_set1_ps(1.0f + 0.01f * (j));
  MEMBW_CHAINS(X)
#undef X
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (long i = 0; i < iters; ++i) {
#define X(j) a##j = _mm256_fmadd_ps(a##j, b, c);
    MEMBW_CHAINS(X)
#undef X
  }
  __m256 s = _mm256_setzero_ps();
#define X(j) s = _mm256_add_ps(s, a##j);
  MEMBW_CHAINS(X)
#undef X
  return _mm_cvtss_f32(_mm256_castps256_ps128(s));
}

__attribute__((target("avx512f"))) float chains_avx512f(long iters) {
#define X(j) __m512 a##j = _mm512_set1_ps(1.0f + 0.01f * (j));
  MEMBW_CHAINS(X)
#undef X
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (long i = 0; i < iters; ++i) {
#define X(j) a##j = _mm512_fmadd_ps(a##j, b, c);
    MEMBW_CHAINS(X)
#undef X
  }
  __m512 s = _mm512_setzero_ps();
#define X(j) s = _mm512_add_ps(s, a##j);
  MEMBW_CHAINS(X)
#undef X
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  return lanes[0] + lanes[15];
}
#endif

struct FmaKernel {
  const char* name;
  int lanes;  // float lanes per vector
  float (*fn)(long);
};

std::vector<FmaKernel> available_fma_kernels() {
  std::vector<FmaKernel> out;
#if MEMBW_X86
  out.push_back({"sse2", 4, chains_sse2});
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out.push_back({"avx2", 8, chains_avx2_fma});
  if (__builtin_cpu_supports("avx512f")) out.push_back({"avx512", 16, chains_avx512f});
#endif
  return out;
}

// Iterations that make one pass of `k` last about `target_s` on one thread (best of a few tries,
// so that a descheduled calibration run does not shrink the passes).
long calibrate_fma(const FmaKernel& k, double target_s) {
  long iters = 1L << 12;
  double sec = 0.0;
  for (;;) {
    const double t0 = now_s();
    g_sink = k.fn(iters);
    sec = now_s() - t0;
    if (sec > 0.004 || iters > (1L << 34)) break;
    iters *= 2;
  }
  double best = sec;
  for (int i = 0; i < 4; ++i) {
    const double t0 = now_s();
    g_sink = k.fn(iters);
    best = std::min(best, now_s() - t0);
  }
  return static_cast<long>(static_cast<double>(iters) * target_s / std::max(best, 1e-9)) + 1;
}

// GFLOP/s of one kernel on the team (best and median of `reps` passes).
Stats measure_fma(Team& team, const FmaKernel& k, long iters, int reps) {
  const int nthreads = team.size();
  std::vector<float> out(static_cast<size_t>(nthreads) * 16, 0.0f);
  auto part = [&](int t) { out[static_cast<size_t>(t) * 16] = k.fn(iters); };
  team.run(part);  // warm-up: clocks up, every thread faulted in
  std::vector<std::pair<double, double>> gflops;
  const double flops = 2.0 * k.lanes * kChains * static_cast<double>(iters) * nthreads;
  const double t0 = now_s();
  for (int r = 0; r < reps || needs_more(gflops, t0, kExtraBudgetS); ++r) {
    const PassTiming pt = team.run(part);
    gflops.emplace_back(flops / pt.wall / 1e9, pt.cpu_share);
  }
  g_sink = out[0];
  return summarize(gflops);
}

struct Options {
  size_t mib = 1024;
  int reps = 5;
  int threads = 0;
  bool fma = false;
  bool pin = true;
};

[[noreturn]] void usage_error(const char* msg) {
  std::fprintf(stderr, "membw: %s\nusage: membw [--mib N] [--reps N] [--threads N] [--fma] [--no-pin]\n", msg);
  std::exit(2);
}

long parse_positive(const char* flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0) {
    std::string msg = std::string("bad value for ") + flag + ": " + text;
    usage_error(msg.c_str());
  }
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--mib") o.mib = static_cast<size_t>(parse_positive("--mib", value()));
    else if (a == "--reps") o.reps = static_cast<int>(parse_positive("--reps", value()));
    else if (a == "--threads") o.threads = static_cast<int>(parse_positive("--threads", value()));
    else if (a == "--fma") o.fma = true;
    else if (a == "--no-pin") o.pin = false;
    else if (a == "-h" || a == "--help") usage_error("help requested");
    else usage_error(("unknown argument " + a).c_str());
  }
  if (o.threads == 0) {
    const size_t allowed = allowed_cpus().size();
    o.threads = static_cast<int>(allowed ? allowed : std::max(1u, std::thread::hardware_concurrency()));
  }
  return o;
}

// Bytes of the mapping [p, p + size) backed by transparent huge pages, from /proc/self/smaps
// (-1 when unknown).
long long huge_page_bytes(const void* p, size_t size) {
#if defined(__linux__)
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  const auto lo = reinterpret_cast<unsigned long long>(p);
  const unsigned long long hi = lo + size;
  char line[512];
  bool inside = false;
  long long total = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long a = 0, b = 0;
    if (std::sscanf(line, "%llx-%llx ", &a, &b) == 2 && std::strchr(line, '-') < std::strchr(line, ' ')) {
      inside = a < hi && b > lo;
      continue;
    }
    long long kb = 0;
    if (inside && std::sscanf(line, "AnonHugePages: %lld kB", &kb) == 1) total += kb * 1024;
  }
  std::fclose(f);
  return total;
#else
  (void)p;
  (void)size;
  return -1;
#endif
}


}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const size_t n = opt.mib * (1024 * 1024 / sizeof(float));
  const size_t bytes = n * sizeof(float);

  // 2 MiB-aligned, huge-page backed where the kernel allows (as nndex's TiledMatrix).
  const size_t huge = size_t{2} << 20;
  const size_t alloc = (bytes + huge - 1) / huge * huge;
  auto* data = static_cast<float*>(std::aligned_alloc(huge, alloc));
  if (!data) {
    std::fprintf(stderr, "membw: cannot allocate %zu bytes\n", alloc);
    return 1;
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(data, alloc, MADV_HUGEPAGE);
#endif

  const std::vector<ReadKernel> kernels = available_read_kernels();
  std::vector<Stats> one(kernels.size()), all(kernels.size());
  bool pinned = false;
  // Only one team exists at a time: idle workers spin, and a spinning core would slow the
  // 1-thread runs (turbo headroom) if a bigger team were alive.
  {
    Team team_all(opt.threads, opt.pin);
    pinned = team_all.pinned();
    // First touch in parallel with the slicing of the timed runs, so that pages are faulted in
    // (and, on NUMA systems, placed) up front.
    const auto init_slices = make_slices(n, opt.threads);
    team_all.run([&](int t) {
      const Slice s = init_slices[static_cast<size_t>(t)];
      for (size_t i = s.begin; i < s.end; ++i) data[i] = 1.0f + static_cast<float>(i & 7) * 0.125f;
    });
  }
  // Every read kernel gets `reps` passes; the best one per thread count then gets more passes when
  // its best pass was disturbed by other processes.
  auto best_of = [&](const std::vector<Stats>& v) {
    size_t b = 0;
    for (size_t i = 1; i < v.size(); ++i)
      if (v[i].best > v[b].best) b = i;
    return b;
  };
  auto refine = [&](Team& team, std::vector<Stats>& v) {
    const size_t b = best_of(v);
    if (v[b].cpu_share < kCleanShare) {
      const Stats more = measure_read(team, data, n, kernels[b].fn, opt.reps, true);
      if (more.best > v[b].best) v[b] = more;
    }
  };
  {
    Team team_one(1, opt.pin);
    for (size_t i = 0; i < kernels.size(); ++i)
      one[i] = measure_read(team_one, data, n, kernels[i].fn, opt.reps, false);
    refine(team_one, one);
  }
  {
    Team team_all(opt.threads, opt.pin);
    for (size_t i = 0; i < kernels.size(); ++i)
      all[i] = measure_read(team_all, data, n, kernels[i].fn, opt.reps, false);
    refine(team_all, all);
  }
  const long long thp = huge_page_bytes(data, alloc);
  std::free(data);

  const size_t b1 = best_of(one), ba = best_of(all);

  std::printf("{\"read_gbps_1t\": %.3f, \"read_gbps_all\": %.3f, "
              "\"read_gbps_1t_median\": %.3f, \"read_gbps_all_median\": %.3f, "
              "\"read_kernel_1t\": \"%s\", \"read_kernel_all\": \"%s\", "
              "\"read_cpu_share_1t\": %.3f, \"read_cpu_share_all\": %.3f, "
              "\"threads\": %d, \"hardware_threads\": %u, \"pinned\": %s, \"bytes\": %zu, "
              "\"huge_page_bytes\": %lld, \"reps\": %d",
              one[b1].best, all[ba].best, one[b1].median, all[ba].median, kernels[b1].name.c_str(),
              kernels[ba].name.c_str(), one[b1].cpu_share, all[ba].cpu_share, opt.threads,
              std::thread::hardware_concurrency(), pinned ? "true" : "false", bytes, thp, opt.reps);
  std::printf(", \"read_variants\": {");
  for (size_t i = 0; i < kernels.size(); ++i)
    std::printf("%s\"%s\": {\"1t\": %.3f, \"all\": %.3f}", i ? ", " : "", kernels[i].name.c_str(), one[i].best,
                all[i].best);
  std::printf("}");

  if (opt.fma) {
    const int fma_reps = std::max(15, 3 * opt.reps);
    std::printf(", \"fma_reps\": %d, \"peak_gflops\": {", fma_reps);
    bool first = true;
    for (const FmaKernel& k : available_fma_kernels()) {
      const long iters = calibrate_fma(k, 0.02);
      Stats g1, gn;
      {
        Team team_one(1, opt.pin);
        g1 = measure_fma(team_one, k, iters, fma_reps);
      }
      {
        Team team_all(opt.threads, opt.pin);
        gn = measure_fma(team_all, k, iters, fma_reps);
      }
      std::printf("%s\"%s\": {\"1t\": %.2f, \"all\": %.2f, \"1t_median\": %.2f, \"all_median\": %.2f, "
                  "\"cpu_share_1t\": %.3f, \"cpu_share_all\": %.3f}",
                  first ? "" : ", ", k.name, g1.best, gn.best, g1.median, gn.median, g1.cpu_share,
                  gn.cpu_share);
      first = false;
    }
    std::printf("}");
  }
  std::printf("}\n");
  return 0;
}
