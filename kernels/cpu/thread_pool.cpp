#include "kernels/cpu/thread_pool.hpp"

#include <chrono>

#include "troupe/result.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TROUPE_CPU_RELAX() _mm_pause()
#else
#define TROUPE_CPU_RELAX() ((void)0)
#endif

namespace troupe::kernels {

namespace {
// Long enough to cover the gap between two kernels of one forward pass (a few microseconds),
// short enough that an idle pool is asleep almost at once.
constexpr auto spin_time = std::chrono::microseconds(100);

// Spins until pred() holds or spin_time has passed; true if pred() held.
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + spin_time;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      TROUPE_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}
}  // namespace

thread_pool::thread_pool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (num_threads <= 0) num_threads = 1;
  workers_.reserve(static_cast<size_t>(num_threads - 1));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void thread_pool::run_tasks(int thread_index) {
  for (;;) {
    const int64_t i = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (i >= job_n_tasks_) return;
    job_fn_(job_ctx_, i, thread_index);
  }
}

void thread_pool::run(int64_t n_tasks, task_fn fn, void* ctx) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(ctx, i, 0);
    return;
  }
  job_fn_ = fn;
  job_ctx_ = ctx;
  job_n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  workers_pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the mutex so a worker between "checked generation" and "waits" cannot miss it.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
    if (sleeping_workers_ > 0) wake_cv_.notify_all();
  }
  run_tasks(0);
  // Every worker must leave the job before job_* may be overwritten by the next call.
  auto all_done = [this] { return workers_pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(all_done)) return;
  std::unique_lock lock(mutex_);
  caller_waiting_ = true;
  done_cv_.wait(lock, all_done);
  caller_waiting_ = false;
}

void thread_pool::worker_main(int thread_index) {
  uint64_t seen = 0;
  for (;;) {
    auto new_job = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(new_job)) {
      std::unique_lock lock(mutex_);
      ++sleeping_workers_;
      wake_cv_.wait(lock, new_job);
      --sleeping_workers_;
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    run_tasks(thread_index);
    if (workers_pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);
      if (caller_waiting_) done_cv_.notify_one();
    }
  }
}

}  // namespace troupe::kernels
