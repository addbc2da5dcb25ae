#include "core/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <exception>
#include <limits>
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nndex/errors.hpp"

namespace nndex::core {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStopPollInterval = std::chrono::milliseconds(10);
// How long a worker keeps polling for the next call after serving one. Python's gap between two
// searches in a loop is a few microseconds; far below a millisecond keeps the cost of a spin that
// finds nothing negligible next to the call that preceded it.
constexpr std::int64_t kSpinNs = 100'000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

struct Job {
  TaskFn fn;
  std::size_t ntasks;
  std::size_t participants;
  // One contiguous range of tasks per participant, each taken in order by its owner first and then
  // by whoever runs out of work: a call that repeats over the same data gives every thread the same
  // slice each time, so a slice that fits one core's cache stays there between calls.
  std::unique_ptr<std::atomic<std::size_t>[]> next;
  std::atomic<bool> cancelled{false};
  std::atomic<std::size_t> running_helpers{0};  // changed under the pool mutex, polled without it
  std::mutex error_mutex;
  std::exception_ptr error;

  Job(TaskFn f, std::size_t n, std::size_t p)
      : fn(f), ntasks(n), participants(p), next(new std::atomic<std::size_t>[p]) {
    for (std::size_t r = 0; r < p; ++r) next[r].store(range_begin(r), std::memory_order_relaxed);
  }

  std::size_t range_begin(std::size_t r) const { return ntasks * r / participants; }

  void fail(std::exception_ptr e) {
    {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::move(e);
    }
    cancelled.store(true, std::memory_order_relaxed);
  }

  void run_tasks(TaskContext& ctx) {
    const std::size_t own = ctx.participant() % participants;
    for (std::size_t i = 0; i < participants; ++i) {
      const std::size_t r = (own + i) % participants;
      const std::size_t end = range_begin(r + 1);
      for (;;) {
        if (ctx.stop_requested()) return;
        if (next[r].load(std::memory_order_relaxed) >= end) break;
        const std::size_t task = next[r].fetch_add(1, std::memory_order_relaxed);
        if (task >= end) break;
        try {
          fn(task, ctx);
        } catch (...) {
          fail(std::current_exception());
          return;
        }
      }
    }
  }
};

class HelperContext final : public TaskContext {
 public:
  HelperContext(Job& job, std::size_t id) : job_(job), id_(id) {}
  bool stop_requested() override { return job_.cancelled.load(std::memory_order_relaxed); }
  std::size_t participant() const override { return id_; }

 private:
  Job& job_;
  std::size_t id_;
};

class CallerContext final : public TaskContext {
 public:
  CallerContext(Job& job, const StopCheck& stop) : job_(job), stop_(stop), last_poll_(Clock::now()) {}
  bool stop_requested() override {
    if (job_.cancelled.load(std::memory_order_relaxed)) return true;
    if (stop_ && Clock::now() - last_poll_ >= kStopPollInterval) poll();
    return job_.cancelled.load(std::memory_order_relaxed);
  }
  void poll() {
    last_poll_ = Clock::now();
    try {
      if (stop_()) {
        interrupted_ = true;
        job_.cancelled.store(true, std::memory_order_relaxed);
      }
    } catch (...) {
      job_.fail(std::current_exception());  // helpers still hold the job: never unwind past them
    }
  }
  std::size_t participant() const override { return 0; }
  bool interrupted() const { return interrupted_; }
  bool polls() const { return static_cast<bool>(stop_); }

 private:
  Job& job_;
  const StopCheck& stop_;
  Clock::time_point last_poll_;
  bool interrupted_ = false;
};

struct Ticket {
  Job* job;
  std::size_t helper_id;
};

class ThreadPool {
 public:
  static ThreadPool& instance() {
    // Leaked on purpose: workers may still be parked at process exit, and static destruction order
    // against the Python runtime is not ours to choose.
    static ThreadPool* pool = new ThreadPool();
    return *pool;
  }

  void run(Job& job, std::size_t helpers, CallerContext& caller) {
    if (helpers > 0) {
      std::lock_guard lock(mutex_);
      grow(helpers);
      for (std::size_t h = 1; h <= helpers; ++h) queue_.push_back({&job, h});
      pending_.store(queue_.size(), std::memory_order_release);
    }
    if (helpers == 1) wake_.notify_one();
    else if (helpers > 1) wake_.notify_all();

    job.run_tasks(caller);

    if (helpers > 0) {
      std::unique_lock lock(mutex_);
      std::erase_if(queue_, [&](const Ticket& t) { return t.job == &job; });
      pending_.store(queue_.size(), std::memory_order_release);
      if (job.running_helpers > 0) {
        // Helpers usually finish within microseconds of the caller: poll briefly rather than pay a
        // futex wake-up, which costs more than the wait itself in a VM.
        lock.unlock();
        const std::int64_t deadline = now_ns() + kSpinNs;
        while (job.running_helpers.load(std::memory_order_acquire) > 0 && now_ns() < deadline)
          for (int i = 0; i < 16; ++i) cpu_relax();
        lock.lock();
      }
      while (job.running_helpers > 0) {
        if (!caller.polls()) {
          done_.wait(lock);
          continue;
        }
        done_.wait_for(lock, kStopPollInterval);
        if (job.running_helpers > 0 && !job.cancelled.load(std::memory_order_relaxed)) {
          lock.unlock();
          caller.poll();
          lock.lock();
        }
      }
    }
    last_call_end_.store(now_ns(), std::memory_order_relaxed);
  }

  bool warm() const {
    return spinning_.load(std::memory_order_relaxed) > 0 ||
           now_ns() - last_call_end_.load(std::memory_order_relaxed) < kSpinNs;
  }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  }

  void grow(std::size_t helpers) {
    while (workers_.size() < helpers) {
      const std::size_t self = workers_.size();
      workers_.emplace_back([this, self] { work(self); });
    }
  }

  // After serving a call a worker polls for the next one for kSpinNs before it sleeps: a loop of
  // searches then hands work over in well under a microsecond instead of a futex wake-up (tens of
  // microseconds in a VM). The spin is bounded and only follows work, so an idle process spins never.
  bool spin_for_work() {
    spinning_.fetch_add(1, std::memory_order_relaxed);
    const std::int64_t deadline = now_ns() + kSpinNs;
    bool found = false;
    while (!found) {
      for (int i = 0; i < 64 && !found; ++i) {
        found = pending_.load(std::memory_order_acquire) > 0;
        cpu_relax();
      }
      if (now_ns() >= deadline) break;
    }
    spinning_.fetch_sub(1, std::memory_order_relaxed);
    return found;
  }

  // The ticket meant for this worker when there is one (helper h is worker h - 1, so repeated calls
  // give each worker the same share of the work), else the oldest.
  Ticket take_ticket(std::size_t self) {
    auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Ticket& t) { return t.helper_id == self + 1; });
    if (it == queue_.end()) it = queue_.begin();
    const Ticket ticket = *it;
    queue_.erase(it);
    pending_.store(queue_.size(), std::memory_order_release);
    return ticket;
  }

  void work(std::size_t self) {
    std::unique_lock lock(mutex_);
    bool served = false;
    for (;;) {
      if (queue_.empty() && served) {
        lock.unlock();
        spin_for_work();
        lock.lock();
      }
      wake_.wait(lock, [this] { return !queue_.empty(); });
      const Ticket ticket = take_ticket(self);
      Job& job = *ticket.job;
      ++job.running_helpers;
      lock.unlock();
      HelperContext ctx(job, ticket.helper_id);
      job.run_tasks(ctx);
      lock.lock();
      if (--job.running_helpers == 0) done_.notify_all();
      served = true;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Ticket> queue_;
  std::atomic<std::size_t> pending_{0};  // queue_.size(), readable without the lock by spinning workers
  std::atomic<std::size_t> spinning_{0};
  std::atomic<std::int64_t> last_call_end_{std::numeric_limits<std::int64_t>::min() / 2};
  std::vector<std::thread> workers_;
};

}  // namespace

bool helpers_warm() { return ThreadPool::instance().warm(); }

std::size_t hardware_threads() {
  static const std::size_t n = std::max(1u, std::thread::hardware_concurrency());
  return n;
}

void parallel_for(std::size_t ntasks, std::size_t max_threads, const StopCheck& should_stop, TaskFn fn) {
  if (ntasks == 0) return;
  const std::size_t helpers = std::min(ntasks, std::max<std::size_t>(max_threads, 1)) - 1;
  Job job(fn, ntasks, helpers + 1);
  CallerContext caller(job, should_stop);
  ThreadPool::instance().run(job, helpers, caller);
  if (job.error) std::rethrow_exception(job.error);
  if (caller.interrupted()) throw Interrupted();
}

}  // namespace nndex::core
