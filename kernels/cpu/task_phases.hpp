// task_phases: several dependent phases of tasks inside ONE thread_pool dispatch.
//
// Why: a batch-1 decode step of a small model is ~10 short kernels per layer. Dispatching each
// to the pool costs a hand-off per kernel, and the serial glue between them (norms, RoPE, K/V
// stores, residual adds) leaves the workers spinning (issue 9, point 4: ~150 dispatches per
// token). Instead the caller dispatches once, pool.parallel_for(pool.num_threads(), ...), and
// every participant calls run(phase, n_tasks, fn) for phases 0, 1, 2, ... in the same order.
// The tasks of a phase are claimed dynamically, and run() returns only once ALL tasks of the
// phase have completed, so the next phase sees every result of this one.
//
// The wait is by completion count, not by arrival: a participant that starts late (or never:
// the pool's caller then runs its slot after its own, finding every phase done) holds nobody
// up unless it has claimed a task -- thread_pool's own rule, which matters on 2 shared cores.
// Which thread runs a task never changes what the task computes, so a split into phases
// cannot change any result.
//
// Threading: reset() by the dispatching thread between dispatches (the pool's dispatch
// publishes it to the workers); run() by the participants of one dispatch.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "troupe/result.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace troupe::kernels {

class task_phases {
 public:
  // Room for n_phases phases, all with nothing claimed and nothing done.
  void reset(int n_phases) {
    if (n_phases > capacity_) {
      counters_ = std::make_unique<phase_counters[]>(static_cast<size_t>(n_phases));
      capacity_ = n_phases;
    }
    for (int i = 0; i < n_phases; ++i) {
      counters_[i].next.v.store(0, std::memory_order_relaxed);
      counters_[i].done.v.store(0, std::memory_order_relaxed);
    }
    n_phases_ = n_phases;
  }

  // fn(task) for tasks of [0, n_tasks) that this participant claims; returns when every task of
  // the phase, whoever ran it, has finished. Every participant passes the same n_tasks.
  template <class F>
  void run(int phase, int64_t n_tasks, F&& fn) {
    TROUPE_ASSERT(phase >= 0 && phase < n_phases_);
    phase_counters& c = counters_[phase];
    for (;;) {
      const int64_t i = c.next.v.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_tasks) break;
      fn(i);
      // The last task of the phase wakes the participants asleep in wait_done (cheap when
      // none is: libstdc++ counts the waiters before making the futex call).
      if (c.done.v.fetch_add(1, std::memory_order_release) + 1 == n_tasks) c.done.v.notify_all();
    }
    wait_done(c.done.v, n_tasks);
  }

 private:
  // next and done on their own cache lines: claims and completions do not bounce one line.
  struct alignas(64) counter {
    std::atomic<int64_t> v{0};
  };
  struct phase_counters {
    counter next, done;
  };

  static void wait_done(std::atomic<int64_t>& done, int64_t n) {
    // Phases are microseconds long: spin first. After ~20 us the other participant was likely
    // descheduled (shared cores): sleep on the counter (a futex) until the task's finisher
    // wakes us. Sleeping, not yielding, matters on a loaded machine: the kernel favours a
    // woken sleeper, while a thread that yields goes to the back of a long run queue
    // (measured: yielding made a loaded 2-thread decode 2-3x slower than per-kernel dispatch).
    for (int spins = 0; spins < 1000; ++spins) {
      if (done.load(std::memory_order_acquire) >= n) return;
#if defined(__x86_64__) || defined(__i386__)
      _mm_pause();
#endif
    }
    for (int64_t seen = done.load(std::memory_order_acquire); seen < n;
         seen = done.load(std::memory_order_acquire))
      done.wait(seen, std::memory_order_acquire);
  }

  std::unique_ptr<phase_counters[]> counters_;
  int capacity_ = 0;
  int n_phases_ = 0;
};

}  // namespace troupe::kernels
