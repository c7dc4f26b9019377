// bounded_worker: a few threads that run jobs from a queue with a fixed capacity, for work too
// slow for an Asio io thread (tokenizing and templating a multi-megabyte prompt takes ~1 s, and
// every connection on that io thread would wait). When the queue is full, try_submit() refuses
// at once: the caller answers 429 instead of queueing without bound.
//
// Jobs run in submission order (FIFO); a job that throws is logged and dropped (whatever it
// held, e.g. an http_exchange, is released: the client gets the exchange's 500).
// stop() finishes the running jobs, drops the queued ones and joins; the destructor stop()s.
//
// Thread-safety: try_submit() and stop() from any thread; jobs run on the worker threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::frontend {

class bounded_worker {
 public:
  // REQUIRES: num_threads >= 1, max_num_queued_jobs >= 1.
  bounded_worker(int num_threads, std::size_t max_num_queued_jobs);
  ~bounded_worker();
  bounded_worker(const bounded_worker&) = delete;
  bounded_worker& operator=(const bounded_worker&) = delete;

  // False (and `job` is destroyed here) when max_num_queued_jobs jobs are already waiting or
  // after stop().
  bool try_submit(std::function<void()> job);
  void stop();

  std::size_t max_num_queued_jobs() const { return max_queued_; }

 private:
  void run();

  const std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace troupe::frontend
