#include "frontend/bounded_worker.hpp"

#include <exception>

#include "logging/log.hpp"
#include "troupe/result.hpp"

namespace troupe::frontend {

bounded_worker::bounded_worker(int num_threads, std::size_t max_num_queued_jobs)
    : max_queued_(max_num_queued_jobs) {
  TROUPE_ASSERT(num_threads >= 1 && max_num_queued_jobs >= 1);
  for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { run(); });
}

bounded_worker::~bounded_worker() { stop(); }

bool bounded_worker::try_submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void bounded_worker::stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  dropped.clear();  // outside the lock: a job's captures may do work when destroyed
  for (auto& t : threads_)
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

void bounded_worker::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      logging::error("worker.job_failed", {{"what", e.what()}});
    }
  }
}

}  // namespace troupe::frontend
