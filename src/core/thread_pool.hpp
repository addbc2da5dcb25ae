// One process-wide pool of worker threads shared by every index and every calling thread.
//
// A call splits its work into tasks and runs them itself, helped by at most `max_threads - 1` workers.
// Helpers are handed out as tickets; tickets a busy pool never started are withdrawn when the caller
// has finished everything itself, so a call never waits on another call's work, and concurrent callers
// share the same workers instead of each bringing their own. Tasks are dealt out as one contiguous
// range per participant (helper h always gets range h, stolen from only when its owner is late), so
// repeated calls keep each thread on the same data. A worker that served a call polls for the next
// one for a bounded ~0.1 ms before it sleeps on a condition variable; an idle pool never spins.
#pragma once

#include <cstddef>
#include <type_traits>

#include "nndex/types.hpp"

namespace nndex::core {

// Passed to each task: lets long tasks notice cancellation (an error elsewhere, or the caller's stop
// check) between steps. On the calling thread it also polls the stop check, at most every few ms.
class TaskContext {
 public:
  virtual bool stop_requested() = 0;
  virtual std::size_t participant() const = 0;  // 0 = the calling thread, 1.. = helpers

 protected:
  ~TaskContext() = default;
};

// A non-owning reference to a callable, cheaper than std::function on this path.
class TaskFn {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, TaskFn>)
  TaskFn(F& f) : object_(&f), call_([](void* o, std::size_t task, TaskContext& ctx) { (*static_cast<F*>(o))(task, ctx); }) {}
  void operator()(std::size_t task, TaskContext& ctx) const { call_(object_, task, ctx); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t, TaskContext&);
};

// Runs fn(0..ntasks-1) on up to max_threads threads (the caller included) and returns when all are
// done. Rethrows the first exception a task threw; throws nndex::Interrupted if should_stop fired.
void parallel_for(std::size_t ntasks, std::size_t max_threads, const StopCheck& should_stop, TaskFn fn);

// True while a worker is still polling after a recent call, or a call ended within that window: a
// loop of calls is under way and one more thread joins for about a microsecond rather than a wake-up.
bool helpers_warm();

// Hardware threads of this machine (at least 1).
std::size_t hardware_threads();

}  // namespace nndex::core
