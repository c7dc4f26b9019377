// server_metrics: the counters and latency histograms behind GET /metrics, rendered in the
// Prometheus text format (names follow vLLM's where one exists, prefixed troupe:).
//
// net/ and the request actors record into one shared instance; the scheduler's own numbers
// (queues, KV blocks, preemptions, batch sizes) arrive as a runtime_gauges snapshot at render
// time, so this module never depends on the actors. Every method is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace troupe::net {

// A histogram as the runtime reports it (mirrors actors::histogram_data): counts[i] values
// <= bounds[i], not cumulative; counts.back() the values above every bound.
struct histogram_snapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  double sum = 0;
  std::uint64_t count = 0;
};

// A snapshot of the scheduler's numbers (mirrors actors::scheduler_stats).
struct runtime_gauges {
  std::int64_t num_waiting_seqs = 0;
  std::int64_t num_running_seqs = 0;
  std::int64_t num_kv_blocks_total = 0;
  std::int64_t num_kv_blocks_used = 0;
  std::int64_t num_kv_blocks_cached = 0;
  std::uint64_t num_preemptions_total = 0;
  std::uint64_t num_steps_total = 0;
  std::uint64_t num_prompt_tokens_computed_total = 0;
  std::uint64_t num_prefix_cache_hit_tokens_total = 0;
  std::uint64_t num_executor_replays_total = 0;
  std::uint64_t num_spec_decode_draft_tokens_total = 0;     // speculative decoding
  std::uint64_t num_spec_decode_accepted_tokens_total = 0;
  // Steps with <= 2^i sequences for bucket i; the last bucket is +Inf.
  std::vector<std::uint64_t> batch_num_seqs_buckets;
  // Per-step timers (seconds) and tokens per step; empty histograms are not rendered.
  histogram_snapshot step_plan_build_s;
  histogram_snapshot step_round_trip_s;
  std::vector<histogram_snapshot> step_forward_s;  // per pipeline stage, label stage="k"
  histogram_snapshot step_sample_s;
  histogram_snapshot step_num_tokens;
};

// Appends a histogram's _bucket/_sum/_count lines for `name` (HELP/TYPE not included);
// `labels` (e.g. `stage="0"`) go before le. Nothing when h has no buckets.
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const histogram_snapshot& h);

class latency_histogram {
 public:
  explicit latency_histogram(std::vector<double> bounds_s);
  void observe(double seconds);
  // Appends the _bucket/_sum/_count lines for `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // cumulative at render time, per-bucket here
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

class server_metrics {
 public:
  server_metrics();

  // Every HTTP answer, by status code (4xx/5xx included).
  void count_response(int status);
  // A finished generation request: its outcome (finish reason of choice 0: "stop", "length",
  // "cancelled", "error"), token counts and latencies.
  void observe_request(const std::string& finish_reason, std::int64_t num_prompt_tokens,
                       std::int64_t num_generation_tokens, double e2e_s);
  void observe_time_to_first_token(double s) { ttft_.observe(s); }
  void observe_inter_token(double s) { itl_.observe(s); }

  std::string render(const runtime_gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<int, std::uint64_t> responses_by_status_;
  std::map<std::string, std::uint64_t> requests_by_finish_;
  std::uint64_t prompt_tokens_total_ = 0;
  std::uint64_t generation_tokens_total_ = 0;
  latency_histogram ttft_;
  latency_histogram itl_;
  latency_histogram e2e_;
};

}  // namespace troupe::net
