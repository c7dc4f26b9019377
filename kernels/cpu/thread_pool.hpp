// thread_pool: a fixed set of compute threads for the kernels (matmul rows, attention heads).
//
// parallel_for(n_tasks, fn) runs fn(task_index, thread_index) exactly once for every
// task_index in [0, n_tasks) and returns when all of them have finished. The calling thread
// takes part (it is thread_index 0; workers are 1..num_threads()-1), so a pool of N threads
// starts N-1 OS threads. Tasks are handed out dynamically (an atomic counter), so uneven tasks
// balance themselves; give it a few times more tasks than threads.
//
// A worker that wakes too late for a job simply finds nothing to claim; the caller never
// waits for it.
//
// Idle workers spin for a short bounded time (about 100 us, so the back-to-back calls of one
// forward pass do not pay a wake-up each) and then sleep on a condition variable: an idle pool
// uses no CPU. Measured in tests/kernels/test_thread_pool.cpp.
//
// Threading: parallel_for may be called by ONE thread at a time (the owner, e.g. an executor's
// compute thread); it is not reentrant (fn must not call parallel_for on the same pool).
// An exception escaping fn is a programmer error (std::terminate). Destruction joins the
// workers; it must not race a running parallel_for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

// Task indices must fit 22 bits (the claim word); n_tasks < 2^22 is asserted.

namespace troupe::kernels {

class thread_pool {
 public:
  // num_threads <= 0 means std::thread::hardware_concurrency() (at least 1).
  explicit thread_pool(int num_threads = 0);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  // Threads that run tasks, the caller included.
  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // fn: callable as fn(int64_t task_index, int thread_index). Blocks until all tasks are done.
  template <class F>
  void parallel_for(int64_t n_tasks, F&& fn) {
    using fn_t = std::remove_reference_t<F>;
    run(n_tasks,
        [](void* ctx, int64_t task, int thread) { (*static_cast<fn_t*>(ctx))(task, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using task_fn = void (*)(void* ctx, int64_t task, int thread);
  void run(int64_t n_tasks, task_fn fn, void* ctx);
  void worker_main(int thread_index);
  // Claims and runs tasks of the job tagged `tag` until none are left.
  void run_tasks(uint32_t tag, int thread_index);

  std::vector<std::thread> workers_;

  // The current job. A worker may wake late, after its job is over: it must neither run a task
  // of it nor hold the caller up. So tasks are claimed with a CAS on claim_, which holds the
  // job's tag (a counter), its task count and the next task index: a late worker's CAS carries
  // a stale tag and fails, and "any task left?" is always judged with the claimed job's count. The caller waits only for completed_ == n_tasks, never for
  // workers to check in, so a descheduled worker (2 shared cores!) costs nothing unless it
  // holds a task. The fields are atomics because a late worker may read them while the caller
  // writes the next job's; the CAS tells it whether what it read was current.
  std::atomic<task_fn> job_fn_{nullptr};
  std::atomic<void*> job_ctx_{nullptr};
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> completed_{0};
  uint32_t job_tag_ = 0;  // caller only

  std::atomic<uint64_t> generation_{0};  // bumped per job; workers wait for a change
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_cv_;   // workers sleep here
  std::condition_variable done_cv_;   // the caller sleeps here
  int sleeping_workers_ = 0;          // guarded by mutex_
  bool caller_waiting_ = false;       // guarded by mutex_
};

}  // namespace troupe::kernels
