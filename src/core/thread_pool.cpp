#include "core/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "nndex/errors.hpp"

namespace nndex::core {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStopPollInterval = std::chrono::milliseconds(10);

struct Job {
  TaskFn fn;
  std::size_t ntasks;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> cancelled{false};
  std::size_t running_helpers = 0;  // guarded by the pool mutex
  std::mutex error_mutex;
  std::exception_ptr error;

  Job(TaskFn f, std::size_t n) : fn(f), ntasks(n) {}

  void fail(std::exception_ptr e) {
    {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::move(e);
    }
    cancelled.store(true, std::memory_order_relaxed);
  }

  void run_tasks(TaskContext& ctx) {
    for (;;) {
      if (ctx.stop_requested()) return;
      const std::size_t task = next.fetch_add(1, std::memory_order_relaxed);
      if (task >= ntasks) return;
      try {
        fn(task, ctx);
      } catch (...) {
        fail(std::current_exception());
        return;
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
    }
    if (helpers == 1) wake_.notify_one();
    else if (helpers > 1) wake_.notify_all();

    job.run_tasks(caller);

    if (helpers == 0) return;
    std::unique_lock lock(mutex_);
    std::erase_if(queue_, [&](const Ticket& t) { return t.job == &job; });
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

 private:
  void grow(std::size_t helpers) {
    while (workers_.size() < helpers) workers_.emplace_back([this] { work(); });
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return !queue_.empty(); });
      const Ticket ticket = queue_.front();
      queue_.pop_front();
      Job& job = *ticket.job;
      ++job.running_helpers;
      lock.unlock();
      HelperContext ctx(job, ticket.helper_id);
      job.run_tasks(ctx);
      lock.lock();
      if (--job.running_helpers == 0) done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Ticket> queue_;
  std::vector<std::thread> workers_;
};

}  // namespace

std::size_t hardware_threads() {
  static const std::size_t n = std::max(1u, std::thread::hardware_concurrency());
  return n;
}

void parallel_for(std::size_t ntasks, std::size_t max_threads, const StopCheck& should_stop, TaskFn fn) {
  if (ntasks == 0) return;
  Job job(fn, ntasks);
  CallerContext caller(job, should_stop);
  const std::size_t helpers = std::min(ntasks, std::max<std::size_t>(max_threads, 1)) - 1;
  ThreadPool::instance().run(job, helpers, caller);
  if (job.error) std::rethrow_exception(job.error);
  if (caller.interrupted()) throw Interrupted();
}

}  // namespace nndex::core
