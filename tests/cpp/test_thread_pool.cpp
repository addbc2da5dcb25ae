// core::parallel_for over the process-wide pool: coverage, errors, cancellation, concurrent callers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_pool.hpp"
#include "nndex/errors.hpp"

namespace {

using nndex::core::parallel_for;
using nndex::core::TaskContext;
using nndex::core::TaskFn;

// Runs parallel_for and checks each task index ran exactly once; returns the participants seen.
std::set<std::size_t> run_counted(std::size_t ntasks, std::size_t max_threads, const nndex::StopCheck& stop = {}) {
  std::unique_ptr<std::atomic<int>[]> counts(new std::atomic<int>[ntasks + 1]);
  for (std::size_t i = 0; i <= ntasks; ++i) counts[i] = 0;
  std::mutex m;
  std::set<std::size_t> participants;
  auto task = [&](std::size_t t, TaskContext& ctx) {
    counts[t].fetch_add(1);
    std::lock_guard lock(m);
    participants.insert(ctx.participant());
  };
  parallel_for(ntasks, max_threads, stop, TaskFn(task));
  for (std::size_t i = 0; i < ntasks; ++i) EXPECT_EQ(counts[i].load(), 1) << "task " << i << " of " << ntasks;
  return participants;
}

class ParallelForCoverage : public ::testing::TestWithParam<std::tuple<std::size_t, std::size_t>> {};

TEST_P(ParallelForCoverage, EveryTaskRunsExactlyOnce) {
  const auto [ntasks, max_threads] = GetParam();
  const std::set<std::size_t> participants = run_counted(ntasks, max_threads);
  if (ntasks == 0) {
    EXPECT_TRUE(participants.empty());
    return;
  }
  // Participants are the caller (0) and helpers 1..max_threads-1, never more than the tasks.
  EXPECT_LE(participants.size(), std::min(ntasks, max_threads));
  for (std::size_t p : participants) EXPECT_LT(p, std::max<std::size_t>(max_threads, 1));
  if (max_threads == 1) {
    EXPECT_EQ(participants, std::set<std::size_t>{0});
  }
}

INSTANTIATE_TEST_SUITE_P(Grid, ParallelForCoverage,
                         ::testing::Combine(::testing::Values<std::size_t>(0, 1, 2, 7, 1000),
                                            ::testing::Values<std::size_t>(1, 2, 4, 16)),
                         [](const auto& info) {
                           std::string name = "tasks";
                           name += std::to_string(std::get<0>(info.param));
                           name += "_threads";
                           name += std::to_string(std::get<1>(info.param));
                           return name;
                         });

TEST(ParallelFor, ZeroMaxThreadsMeansCallerOnly) {
  EXPECT_EQ(run_counted(50, 0), std::set<std::size_t>{0});
}

TEST(ParallelFor, ResultsWrittenByTasksAreVisibleAfterReturn) {
  std::vector<std::size_t> out(5000, 0);
  auto task = [&](std::size_t t, TaskContext&) { out[t] = t * t + 1; };
  parallel_for(out.size(), 4, {}, TaskFn(task));
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], i * i + 1);
}

TEST(ParallelFor, HelpersActuallyShareLongWork) {
  // Tasks that block until a second participant shows up: only completes promptly if helpers run.
  std::atomic<int> arrived{0};
  std::set<std::size_t> seen;
  std::mutex m;
  auto task = [&](std::size_t, TaskContext& ctx) {
    {
      std::lock_guard lock(m);
      seen.insert(ctx.participant());
    }
    arrived.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  };
  parallel_for(2, 2, {}, TaskFn(task));
  EXPECT_EQ(arrived.load(), 2);
  EXPECT_EQ(seen, (std::set<std::size_t>{0, 1}));
}

TEST(ParallelFor, TaskExceptionIsRethrownAndPoolStaysUsable) {
  for (std::size_t threads : {1u, 2u, 4u}) {
    std::atomic<int> ran{0};
    auto task = [&](std::size_t t, TaskContext&) {
      ran.fetch_add(1);
      if (t == 13) throw std::runtime_error("task 13 failed");
    };
    try {
      parallel_for(100, threads, {}, TaskFn(task));
      ADD_FAILURE() << "no exception with threads=" << threads;
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task 13 failed");
    }
    EXPECT_GE(ran.load(), 14 / static_cast<int>(threads));
    // The pool keeps working afterwards.
    run_counted(1000, threads);
  }
}

TEST(ParallelFor, TypedErrorKeepsItsType) {
  auto task = [](std::size_t t, TaskContext&) {
    if (t == 3) throw nndex::ZeroNorm("row 3 has zero norm", 3);
  };
  try {
    parallel_for(8, 4, {}, TaskFn(task));
    FAIL() << "no exception";
  } catch (const nndex::ZeroNorm& e) {
    EXPECT_EQ(e.row(), 3u);
  }
}

TEST(ParallelFor, ExceptionCancelsRemainingTasks) {
  // One task fails once another participant is busy in a task that runs until stop_requested(); that
  // task must see the failure and stop (it would otherwise run for 10 s).
  for (std::size_t threads : {2u, 4u}) {
    std::atomic<int> looping{0};
    auto task = [&](std::size_t t, TaskContext& ctx) {
      if (t == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (looping.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        throw std::logic_error("boom");
      }
      looping.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!ctx.stop_requested() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    };
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(parallel_for(threads, threads, {}, TaskFn(task)), std::logic_error);
    EXPECT_GE(looping.load(), 1) << "no second participant ran a task";
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "the failure did not cancel";
  }
}

TEST(ParallelFor, StopCheckThrowsInterrupted) {
  for (std::size_t threads : {1u, 2u, 4u}) {
    std::atomic<int> polled{0};
    auto stop = [&] {
      polled.fetch_add(1);
      return true;
    };
    std::atomic<int> started{0};
    auto task = [&](std::size_t, TaskContext& ctx) {
      started.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!ctx.stop_requested() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    };
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(parallel_for(64, threads, stop, TaskFn(task)), nndex::Interrupted) << "threads=" << threads;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "stop was not noticed promptly";
    EXPECT_GE(polled.load(), 1);
    EXPECT_LT(started.load(), 64) << "tasks kept being started after the stop";
    run_counted(100, threads);  // still usable
  }
}

TEST(ParallelFor, StopCheckReturningFalseChangesNothing) {
  std::atomic<int> polled{0};
  auto stop = [&] {
    polled.fetch_add(1);
    return false;
  };
  auto task = [&](std::size_t, TaskContext& ctx) {
    // Long enough (> the poll interval) that the caller polls at least once.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
    while (std::chrono::steady_clock::now() < until) EXPECT_FALSE(ctx.stop_requested());
  };
  EXPECT_NO_THROW(parallel_for(3, 2, stop, TaskFn(task)));
  EXPECT_GE(polled.load(), 1);
}

TEST(ParallelFor, InterruptedIsAnError) {
  const nndex::Interrupted e;
  const nndex::Error& base = e;
  EXPECT_NE(std::string(base.what()).find("interrupted"), std::string::npos);
}

TEST(ParallelFor, ConcurrentCallersAllComplete) {
  constexpr int kCallers = 8;
  constexpr int kRounds = 30;
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        const std::size_t ntasks = 1 + static_cast<std::size_t>((c * 37 + round * 11) % 200);
        std::vector<std::atomic<int>> counts(ntasks);
        std::vector<std::uint64_t> out(ntasks, 0);
        auto task = [&](std::size_t t, TaskContext&) {
          counts[t].fetch_add(1);
          out[t] = static_cast<std::uint64_t>(c) * 1000003u + t;
        };
        try {
          parallel_for(ntasks, 1 + static_cast<std::size_t>(c % 4), {}, TaskFn(task));
        } catch (...) {
          failures.fetch_add(1);
          continue;
        }
        for (std::size_t t = 0; t < ntasks; ++t)
          if (counts[t].load() != 1 || out[t] != static_cast<std::uint64_t>(c) * 1000003u + t) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ParallelFor, ConcurrentCallersWithErrorsAndStops) {
  // Mixed: some callers fail, some are interrupted, some succeed; each sees only its own outcome.
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 10; ++round) {
        const int kind = (c + round) % 3;
        std::atomic<int> ran{0};
        auto task = [&](std::size_t t, TaskContext& ctx) {
          ran.fetch_add(1);
          if (kind == 1 && t == 5) throw std::runtime_error("mine");
          if (kind == 2) {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (!ctx.stop_requested() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
          }
        };
        const nndex::StopCheck stop = kind == 2 ? nndex::StopCheck([] { return true; }) : nndex::StopCheck();
        int outcome = 0;
        try {
          parallel_for(20, 3, stop, TaskFn(task));
        } catch (const nndex::Interrupted&) {
          outcome = 2;
        } catch (const std::runtime_error& e) {
          outcome = std::string(e.what()) == "mine" ? 1 : -1;
        }
        if (outcome != kind) wrong.fetch_add(1);
        if (kind == 0 && ran.load() != 20) wrong.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Regression (fixed in 87b5946): a StopCheck that throws, polled from Job::run_tasks' loop head or from
// the caller's wait loop, used to unwind out of parallel_for while helpers still ran tasks of the Job
// (which lives on the caller's stack): use-after-scope. Its exception must reach the caller like a
// task's exception, and only once no task of the call is running.
TEST(ParallelFor, ThrowingStopCheckWaitsForHelpers) {
  std::atomic<int> in_flight{0};
  std::atomic<int> in_flight_at_exit{-1};
  auto task = [&](std::size_t, TaskContext& ctx) {
    in_flight.fetch_add(1);
    if (ctx.participant() == 0) {
      // The caller does not poll inside its task; the next poll is at the loop head, after 10 ms.
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    } else {
      // Helpers run on until cancelled, then a little longer.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (!ctx.stop_requested() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    in_flight.fetch_sub(1);
  };
  const nndex::StopCheck stop = []() -> bool { throw std::runtime_error("stop check failed"); };
  try {
    parallel_for(4, 4, stop, TaskFn(task));
    ADD_FAILURE() << "the stop check's exception was swallowed";
  } catch (const std::runtime_error& e) {
    in_flight_at_exit = in_flight.load();
    EXPECT_STREQ(e.what(), "stop check failed");
  }
  // Let stray helpers finish before this frame goes away.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (in_flight.load() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(in_flight_at_exit.load(), 0) << "parallel_for returned while tasks were still running";
  run_counted(100, 4);  // the pool is still usable
}

TEST(ParallelFor, HardwareThreadsIsPositive) {
  EXPECT_GE(nndex::core::hardware_threads(), 1u);
  EXPECT_EQ(nndex::core::hardware_threads(), nndex::core::hardware_threads());
}

}  // namespace

TEST(ParallelFor, HelpersStayWarmBrieflyAfterACallAndThenSleep) {
  std::atomic<int> sum{0};
  auto task = [&](std::size_t, TaskContext&) { sum.fetch_add(1); };
  parallel_for(4, 2, {}, TaskFn(task));
  EXPECT_TRUE(nndex::core::helpers_warm()) << "right after a call a loop of calls is assumed";
  // The spin is bounded (well under a millisecond): long after the call nothing is warm.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(nndex::core::helpers_warm());
  EXPECT_EQ(sum.load(), 4);
}

TEST(ParallelFor, EachParticipantStartsOnItsOwnContiguousRange) {
  // Tasks are dealt out as one contiguous range per participant and taken in order; the caller
  // (participant 0) owns the first range and steals forward from the next, so it runs tasks in
  // ascending order whatever the helper does.
  for (int round = 0; round < 20; ++round) {
    std::vector<std::size_t> who(16, 99);
    std::mutex m;
    std::vector<std::size_t> order_of_caller;
    auto task = [&](std::size_t t, TaskContext& ctx) {
      who[t] = ctx.participant();
      if (ctx.participant() == 0) {
        std::lock_guard lock(m);
        order_of_caller.push_back(t);
      }
    };
    parallel_for(16, 2, {}, TaskFn(task));
    for (std::size_t p : who) EXPECT_LE(p, 1u);
    for (std::size_t i = 1; i < order_of_caller.size(); ++i) EXPECT_LT(order_of_caller[i - 1], order_of_caller[i]);
  }
}
