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

// The claim word: job tag (20 bits, wraps) | the job's task count (22 bits) | next index
// (22 bits). Carrying the count in the same word as the index means a worker judges "is there
// a task left?" with the count of the job it claims from, never with the next job's.
constexpr int k_count_bits = 22;
constexpr uint64_t k_field_mask = (uint64_t{1} << k_count_bits) - 1;
constexpr uint64_t k_tag_mask = (uint64_t{1} << (64 - 2 * k_count_bits)) - 1;
constexpr uint64_t claim_word(uint32_t tag, uint64_t n_tasks, uint64_t index) {
  return ((tag & k_tag_mask) << (2 * k_count_bits)) | (n_tasks << k_count_bits) | index;
}
constexpr uint32_t claim_tag(uint64_t w) { return static_cast<uint32_t>(w >> (2 * k_count_bits)); }
constexpr int64_t claim_count(uint64_t w) { return static_cast<int64_t>((w >> k_count_bits) & k_field_mask); }
constexpr int64_t claim_index(uint64_t w) { return static_cast<int64_t>(w & k_field_mask); }
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

void thread_pool::run_tasks(uint32_t tag, int thread_index) {
  for (;;) {
    // Load the claim word (acquire: the job's fields, written before it was published, are
    // visible), read the fields, then claim with a CAS on that word. A successful CAS proves the
    // job was not yet fully claimed, hence not finished, hence the caller has not started the
    // next job and the fields read were this job's. The task count comes from the claim word
    // itself: a separately stored count could be the NEXT job's while the word still
    // holds this one's final index, and claim a task that does not exist (it ran the next
    // job's function early and pushed completed_ past the count: a hang, seen under load).
    uint64_t cur = claim_.load(std::memory_order_acquire);
    const task_fn fn = job_fn_.load(std::memory_order_acquire);
    void* const ctx = job_ctx_.load(std::memory_order_acquire);
    int64_t index, n;
    for (;;) {
      if (claim_tag(cur) != (tag & k_tag_mask)) return;
      index = claim_index(cur);
      n = claim_count(cur);
      if (index >= n) return;
      if (claim_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        break;
    }
    fn(ctx, index, thread_index);
    if (completed_.fetch_add(1, std::memory_order_acq_rel) + 1 == n && thread_index != 0) {
      std::lock_guard lock(mutex_);
      if (caller_waiting_) done_cv_.notify_one();
    }
  }
}

void thread_pool::run(int64_t n_tasks, task_fn fn, void* ctx) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(ctx, i, 0);
    return;
  }
  TROUPE_ASSERT(n_tasks <= static_cast<int64_t>(k_field_mask));
  const uint32_t tag = ++job_tag_;
  job_fn_.store(fn, std::memory_order_relaxed);
  job_ctx_.store(ctx, std::memory_order_relaxed);
  completed_.store(0, std::memory_order_relaxed);
  claim_.store(claim_word(tag, static_cast<uint64_t>(n_tasks), 0), std::memory_order_release);
  {
    // Under the mutex so a worker between "checked generation" and "waits" cannot miss it.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
    if (sleeping_workers_ > 0) wake_cv_.notify_all();
  }
  run_tasks(tag, 0);
  auto all_done = [&] { return completed_.load(std::memory_order_acquire) == n_tasks; };
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
    run_tasks(claim_tag(claim_.load(std::memory_order_acquire)), thread_index);
  }
}

}  // namespace troupe::kernels
