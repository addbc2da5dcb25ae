// membw.cpp -- machine limits for the nndex benchmarks.
//
// Measures sustained memory READ bandwidth on a working set far larger than
// the last-level cache, on 1 thread and on N threads (each thread streams its
// own contiguous slice), and optionally the peak floating-point throughput of
// fused multiply-add loops for the SIMD levels the CPU supports.
//
// Build (deliberately plain: baseline ISA, no -march=native):
//     c++ -O2 -std=c++17 -pthread membw.cpp -o membw
//
// Usage:
//     membw [--mib N] [--reps N] [--threads N] [--fma]
//
//   --mib N      working set in MiB (default 1024)
//   --reps N     timed passes per configuration (default 5); best and median
//                are reported
//   --threads N  thread count for the multi-threaded run
//                (default: std::thread::hardware_concurrency())
//   --fma        also run the peak-FLOP probe
//
// Prints one JSON object on stdout; GB means 1e9 bytes, GFLOP 1e9 flops.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define MEMBW_X86 1
#include <immintrin.h>
#else
#define MEMBW_X86 0
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Result sink so that the compiler cannot drop the reads or the arithmetic.
volatile float g_sink = 0.0f;

// ---------------------------------------------------------------------------
// Thread fan-out: the calling thread takes part 0, helpers take 1..n-1. All
// parts start together after every helper has checked in; the returned time
// runs from that common start until the last part has finished.
// ---------------------------------------------------------------------------
double run_parallel(int nthreads, const std::function<void(int)>& part) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> helpers;
    helpers.reserve(static_cast<size_t>(nthreads > 0 ? nthreads - 1 : 0));
    for (int t = 1; t < nthreads; ++t) {
        helpers.emplace_back([&, t] {
            ready.fetch_add(1, std::memory_order_acq_rel);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            part(t);
        });
    }
    while (ready.load(std::memory_order_acquire) < nthreads - 1) std::this_thread::yield();
    const auto t0 = Clock::now();
    go.store(true, std::memory_order_release);
    part(0);
    for (auto& h : helpers) h.join();
    return seconds_since(t0);
}

// ---------------------------------------------------------------------------
// Read kernel: 8 independent accumulators of 4 floats, 128 bytes per step.
// SSE2 is part of the x86-64 baseline, so no special flags are needed.
// ---------------------------------------------------------------------------
float sum_floats(const float* p, size_t n) {
    size_t i = 0;
#if MEMBW_X86
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m128 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm_add_ps(a0, _mm_load_ps(p + i));
        a1 = _mm_add_ps(a1, _mm_load_ps(p + i + 4));
        a2 = _mm_add_ps(a2, _mm_load_ps(p + i + 8));
        a3 = _mm_add_ps(a3, _mm_load_ps(p + i + 12));
        a4 = _mm_add_ps(a4, _mm_load_ps(p + i + 16));
        a5 = _mm_add_ps(a5, _mm_load_ps(p + i + 20));
        a6 = _mm_add_ps(a6, _mm_load_ps(p + i + 24));
        a7 = _mm_add_ps(a7, _mm_load_ps(p + i + 28));
    }
    __m128 s = _mm_add_ps(_mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)),
                          _mm_add_ps(_mm_add_ps(a4, a5), _mm_add_ps(a6, a7)));
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, s);
    float total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#else
    // Portable fallback: independent scalar chains the compiler may vectorise.
    float acc[16] = {};
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
    float total = 0.0f;
    for (float a : acc) total += a;
#endif
    for (; i < n; ++i) total += p[i];
    return total;
}

struct Slice {
    size_t begin, end;
};

// Contiguous slices whose boundaries are multiples of 64 floats (256 bytes).
std::vector<Slice> make_slices(size_t n, int parts) {
    std::vector<Slice> out;
    const size_t quantum = 64;
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
    double best = 0.0, median = 0.0;
};

Stats summarize(std::vector<double> v) {
    Stats s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    s.best = v.back();
    const size_t m = v.size();
    s.median = (m % 2) ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
    return s;
}

Stats measure_read(const float* data, size_t n, int nthreads, int reps) {
    const auto slices = make_slices(n, nthreads);
    std::vector<float> partial(static_cast<size_t>(nthreads) * 16, 0.0f);  // padded: no false sharing
    auto part = [&](int t) {
        const Slice s = slices[static_cast<size_t>(t)];
        partial[static_cast<size_t>(t) * 16] = sum_floats(data + s.begin, s.end - s.begin);
    };
    run_parallel(nthreads, part);  // untimed warm-up pass
    std::vector<double> gbps;
    for (int r = 0; r < reps; ++r) {
        const double sec = run_parallel(nthreads, part);
        gbps.push_back(static_cast<double>(n) * sizeof(float) / sec / 1e9);
    }
    float total = 0.0f;
    for (int t = 0; t < nthreads; ++t) total += partial[static_cast<size_t>(t) * 16];
    g_sink = total;
    return summarize(gbps);
}

// ---------------------------------------------------------------------------
// Peak-FLOP probe. Each kernel runs 12 independent dependency chains of
// a = a * b + c, enough to cover latency x issue width on current cores.
// The ISA-specific kernels are compiled with target attributes, and only run
// after a runtime CPU check, so the binary itself stays baseline.
// ---------------------------------------------------------------------------
constexpr int kChains = 12;

// Explicit named registers: a loop over an array of vectors would stay in
// memory at -O2 and measure store forwarding instead of the FMA units.
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

// GFLOP/s of one kernel on nthreads threads (best of `reps`).
double measure_fma(const FmaKernel& k, int nthreads, int reps) {
    // Calibrate on one thread so that a timed run lasts about 0.1 s.
    long iters = 1L << 16;
    for (;;) {
        const auto t0 = Clock::now();
        g_sink = k.fn(iters);
        const double sec = seconds_since(t0);
        if (sec > 0.02 || iters > (1L << 34)) {
            iters = static_cast<long>(static_cast<double>(iters) * 0.1 / std::max(sec, 1e-9)) + 1;
            break;
        }
        iters *= 4;
    }
    std::vector<float> out(static_cast<size_t>(nthreads) * 16, 0.0f);
    auto part = [&](int t) { out[static_cast<size_t>(t) * 16] = k.fn(iters); };
    double best = 0.0;
    for (int r = 0; r < reps; ++r) {
        const double sec = run_parallel(nthreads, part);
        const double flops = 2.0 * k.lanes * kChains * static_cast<double>(iters) * nthreads;
        best = std::max(best, flops / sec / 1e9);
    }
    g_sink = out[0];
    return best;
}

struct Options {
    size_t mib = 1024;
    int reps = 5;
    int threads = 0;
    bool fma = false;
};

[[noreturn]] void usage_error(const char* msg) {
    std::fprintf(stderr, "membw: %s\nusage: membw [--mib N] [--reps N] [--threads N] [--fma]\n", msg);
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
        else if (a == "-h" || a == "--help") usage_error("help requested");
        else usage_error(("unknown argument " + a).c_str());
    }
    if (o.threads == 0) o.threads = std::max(1u, std::thread::hardware_concurrency());
    return o;
}

struct AlignedFree {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse_args(argc, argv);
    const size_t n = opt.mib * (1024 * 1024 / sizeof(float));

    std::unique_ptr<float[], AlignedFree> buf(
        static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))));
    float* data = buf.get();

    // First touch in parallel with the same slicing the timed runs use, so
    // that pages are faulted in (and, on NUMA systems, placed) up front.
    const auto init_slices = make_slices(n, opt.threads);
    run_parallel(opt.threads, [&](int t) {
        const Slice s = init_slices[static_cast<size_t>(t)];
        for (size_t i = s.begin; i < s.end; ++i) data[i] = 1.0f + static_cast<float>(i & 7) * 0.125f;
    });

    const Stats one = measure_read(data, n, 1, opt.reps);
    const Stats all = measure_read(data, n, opt.threads, opt.reps);
    buf.reset();

    std::printf("{\"read_gbps_1t\": %.3f, \"read_gbps_all\": %.3f, "
                "\"read_gbps_1t_median\": %.3f, \"read_gbps_all_median\": %.3f, "
                "\"threads\": %d, \"hardware_threads\": %u, \"bytes\": %zu, \"reps\": %d",
                one.best, all.best, one.median, all.median, opt.threads,
                std::thread::hardware_concurrency(), n * sizeof(float), opt.reps);

    if (opt.fma) {
        std::printf(", \"peak_gflops\": {");
        bool first = true;
        for (const FmaKernel& k : available_fma_kernels()) {
            const double g1 = measure_fma(k, 1, 3);
            const double gn = measure_fma(k, opt.threads, 3);
            std::printf("%s\"%s\": {\"1t\": %.2f, \"all\": %.2f}", first ? "" : ", ", k.name, g1, gn);
            first = false;
        }
        std::printf("}");
    }
    std::printf("}\n");
    return 0;
}
